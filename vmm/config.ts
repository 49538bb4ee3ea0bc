/**
 * The machine configuration: one type for the library, the CLI flags and the config
 * file. {@link parseConfig} validates untrusted input (a JSON file) and names the field
 * that is wrong.
 *
 * @module
 */

/** A virtio-blk disk. */
export interface DiskConfig {
  /** Raw image file. */
  path: string;
  /** Open the image read-only; the guest sees a read-only disk (VIRTIO_BLK_F_RO). */
  readOnly?: boolean;
  /** Serial returned to GET_ID (up to 20 bytes). */
  id?: string;
}

/** A virtio-net interface on a TAP device. */
export interface NetConfig {
  /** TAP interface name (created if missing; needs CAP_NET_ADMIN). */
  tap: string;
  /** MAC address; default derived from the index. */
  mac?: string;
}

/** virtio-vsock. */
export interface VsockConfig {
  /** Guest CID (3 or more). */
  cid: number;
  /** Unix socket path of the host side (see host/vsock_unix.ts). */
  path: string;
}

/** What the VMM boots. */
export interface VmConfig {
  /** Linux kernel (bzImage or vmlinux); none boots the embedded demo guest. */
  kernel?: string;
  /** initramfs loaded with the kernel (needs `kernel`). */
  initrd?: string;
  /**
   * Kernel command line; the default names the console (`console=ttyS0` or `hvc0`) and
   * sets `reboot=k panic=1 pci=off` and friends. Without ACPI the virtio-mmio devices'
   * `virtio_mmio.device=` entries are appended either way.
   */
  cmdline?: string;
  /** Guest RAM in MiB. */
  memMiB: number;
  /** Number of vCPUs, 1 to 64. */
  vcpus: number;
  /** virtio-blk disks, in order. */
  disks: DiskConfig[];
  /** virtio-net interfaces, in order. */
  nets: NetConfig[];
  /** Add a virtio-rng device. */
  rng: boolean;
  /** Where the guest console goes: the 8250 UART, virtio-console, or nowhere. */
  console: "serial" | "virtio" | "none";
  /** A virtio-vsock device, with its host side on a Unix socket. */
  vsock?: VsockConfig;
  /**
   * Describe the machine to a kernel with ACPI tables (`boot/acpi.ts`): CPUs from the MADT,
   * devices from the DSDT (the virtio devices are then not announced on the command line),
   * power-off through the sleep control register, a VM generation ID that changes on
   * restore. On by default for kernels (`undefined` means on); `false` keeps the MP table and
   * the `virtio_mmio.device=` announcement for kernels built without ACPI.
   */
  acpi?: boolean;
  /**
   * A management device with an admin virtqueue (`docs/admin-virtqueue.md`): the guest, or
   * the host through the library and the API, creates virtual rng, console and blk devices
   * on it at run time. `disks` are the images its virtual blk devices may use (by index).
   */
  admin?: AdminConfig;
}

/** The management device's configuration. */
export interface AdminConfig {
  /** Disk images virtual blk devices are created over, by index (each one at a time). */
  disks: DiskConfig[];
}

/** A configuration error that names the field. */
export class ConfigError extends TypeError {
  /** `field` is the path of the wrong field, e.g. `disks[0].path` ("" for the whole object). */
  constructor(readonly field: string, message: string) {
    super(`${field}: ${message}`);
    this.name = "ConfigError";
  }
}

/** The defaults of every field. */
export function defaultConfig(): VmConfig {
  return { memMiB: 128, vcpus: 1, disks: [], nets: [], rng: false, console: "serial" };
}

const KEYS = [
  "kernel",
  "initrd",
  "cmdline",
  "memMiB",
  "vcpus",
  "disks",
  "nets",
  "rng",
  "console",
  "vsock",
  "acpi",
  "admin",
];

function str(v: unknown, field: string): string {
  if (typeof v !== "string" || v.length === 0) {
    throw new ConfigError(field, "expected a non-empty string");
  }
  return v;
}

function int(v: unknown, field: string, min: number, max: number): number {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(
      field,
      `expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`,
    );
  }
  return v;
}

function bool(v: unknown, field: string): boolean {
  if (typeof v !== "boolean") {
    throw new ConfigError(field, `expected true or false, got ${JSON.stringify(v)}`);
  }
  return v;
}

function obj(v: unknown, field: string, keys: string[]): Record<string, unknown> {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ConfigError(field, "expected an object");
  }
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) {
      throw new ConfigError(`${field}.${k}`.replace(/^\./, ""), `unknown field`);
    }
  }
  return v as Record<string, unknown>;
}

const MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;

/**
 * Validates a configuration object (e.g. parsed JSON); missing fields take their defaults.
 *
 * @example
 * ```ts
 * import { parseConfig } from "./config.ts";
 * const c = parseConfig({ memMiB: 256, disks: [{ path: "root.img", readOnly: true }] });
 * console.assert(c.vcpus === 1 && c.disks[0]!.readOnly === true);
 * ```
 */
export function parseConfig(input: unknown): VmConfig {
  const o = obj(input, "", KEYS);
  const c = defaultConfig();
  if (o.kernel !== undefined) c.kernel = str(o.kernel, "kernel");
  if (o.initrd !== undefined) c.initrd = str(o.initrd, "initrd");
  if (o.cmdline !== undefined) {
    if (typeof o.cmdline !== "string") throw new ConfigError("cmdline", "expected a string");
    c.cmdline = o.cmdline;
  }
  if (c.initrd && !c.kernel) throw new ConfigError("initrd", "needs a kernel");
  if (o.memMiB !== undefined) c.memMiB = int(o.memMiB, "memMiB", 16, 1024 * 1024);
  if (o.vcpus !== undefined) c.vcpus = int(o.vcpus, "vcpus", 1, 64);
  if (o.rng !== undefined) c.rng = bool(o.rng, "rng");
  if (o.acpi !== undefined) c.acpi = bool(o.acpi, "acpi");
  if (o.console !== undefined) {
    if (o.console !== "serial" && o.console !== "virtio" && o.console !== "none") {
      throw new ConfigError(
        "console",
        `expected "serial", "virtio" or "none", got ${JSON.stringify(o.console)}`,
      );
    }
    c.console = o.console;
  }
  const disks = (v: unknown, field: string): DiskConfig[] => {
    if (!Array.isArray(v)) throw new ConfigError(field, "expected an array");
    return v.map((d, i) => {
      const f = `${field}[${i}]`;
      const x = obj(d, f, ["path", "readOnly", "id"]);
      const disk: DiskConfig = { path: str(x.path, `${f}.path`) };
      if (x.readOnly !== undefined) disk.readOnly = bool(x.readOnly, `${f}.readOnly`);
      if (x.id !== undefined) {
        disk.id = str(x.id, `${f}.id`);
        if (new TextEncoder().encode(disk.id).byteLength > 20) {
          throw new ConfigError(`${f}.id`, "longer than 20 bytes");
        }
      }
      return disk;
    });
  };
  if (o.disks !== undefined) c.disks = disks(o.disks, "disks");
  if (o.admin !== undefined) {
    const x = obj(o.admin, "admin", ["disks"]);
    c.admin = { disks: x.disks !== undefined ? disks(x.disks, "admin.disks") : [] };
    if (c.admin.disks.length > 16) throw new ConfigError("admin.disks", "at most 16");
  }
  if (o.nets !== undefined) {
    if (!Array.isArray(o.nets)) throw new ConfigError("nets", "expected an array");
    c.nets = o.nets.map((n, i) => {
      const f = `nets[${i}]`;
      const x = obj(n, f, ["tap", "mac"]);
      const tap = str(x.tap, `${f}.tap`);
      if (new TextEncoder().encode(tap).byteLength > 15) {
        throw new ConfigError(`${f}.tap`, "longer than 15 bytes");
      }
      const net: NetConfig = { tap };
      if (x.mac !== undefined) {
        const mac = str(x.mac, `${f}.mac`);
        if (!MAC.test(mac)) {
          throw new ConfigError(`${f}.mac`, `expected six hex bytes like 52:54:00:12:34:56`);
        }
        net.mac = mac;
      }
      return net;
    });
  }
  if (o.vsock !== undefined) {
    const x = obj(o.vsock, "vsock", ["cid", "path"]);
    c.vsock = { cid: int(x.cid, "vsock.cid", 3, 0xffff_fffe), path: str(x.path, "vsock.path") };
  }
  const devices = c.disks.length + c.nets.length + (c.rng ? 1 : 0) +
    (c.console === "virtio" ? 1 : 0) +
    (c.vsock ? 1 : 0) + (c.admin ? 1 : 0);
  if (devices > 16) throw new ConfigError("disks", `${devices} virtio devices; at most 16`);
  return c;
}

/** The largest config file read (a real one is a few hundred bytes). */
export const MAX_CONFIG_BYTES = 1 << 20;

/**
 * Checks the disk files before anything else happens: each must be a regular file (not a
 * directory, FIFO or device) whose size is a whole number of 512-byte sectors, and no file
 * may be attached twice when either attachment is writable. Errors name the field.
 */
export async function checkDiskFiles(
  disks: readonly DiskConfig[],
  adminDisks: readonly DiskConfig[] = [],
): Promise<void> {
  const seen = new Map<string, { name: string; readOnly: boolean }>();
  const all = [
    ...disks.map((d, i) => [d, `disks[${i}]`] as const),
    ...adminDisks.map((d, i) => [d, `admin.disks[${i}]`] as const),
  ];
  for (const [d, name] of all) {
    const f = `${name}.path`;
    let info: Deno.FileInfo;
    let real: string;
    try {
      info = await Deno.stat(d.path);
      real = await Deno.realPath(d.path);
    } catch (e) {
      throw new ConfigError(f, `cannot open ${d.path}: ${e instanceof Error ? e.message : e}`);
    }
    if (!info.isFile) throw new ConfigError(f, `${d.path} is not a regular file`);
    if (info.size % 512) {
      throw new ConfigError(f, `${d.path} is ${info.size} bytes, not a multiple of 512`);
    }
    const other = seen.get(real);
    if (other && (!other.readOnly || !d.readOnly)) {
      throw new ConfigError(
        f,
        `${d.path} is already ${other.name}; one file may be attached twice only read-only`,
      );
    }
    seen.set(real, { name, readOnly: d.readOnly ?? false });
  }
}

/** Reads and validates a JSON config file (a regular file of at most 1 MiB). */
export async function loadConfig(path: string): Promise<VmConfig> {
  let text: string;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw new Error("not a regular file");
    if (info.size > MAX_CONFIG_BYTES) throw new Error(`${info.size} bytes, over 1 MiB`);
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new ConfigError(
      "config",
      `cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  let json: unknown;
  try {
    json = JSON.parse(text);
  } catch (e) {
    throw new ConfigError(
      "config",
      `${path} is not JSON: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  return parseConfig(json);
}
