/**
 * Builds a machine's devices from a {@link VmConfig}: each virtio device gets a 4 KiB
 * MMIO window from {@link VIRTIO_MMIO_BASE} up and its own interrupt line from
 * {@link VIRTIO_GSIS}; the i8042 sits at 0x60 and the CMOS RTC at 0x70. The kernel learns of
 * each virtio device from the ACPI DSDT, or without ACPI through a
 * `virtio_mmio.device=4K@<base>:<irq>` cmdline entry.
 *
 * @module
 */

import { BlockDevice, type DiskImage } from "../devices/block.ts";
import { ConsoleDevice } from "../devices/console.ts";
import { I8042 } from "../devices/i8042.ts";
import { Rtc } from "../devices/rtc.ts";
import { S5_SLP_TYP, SLEEP_CONTROL_PORT, SLP_EN, SLP_TYP_SHIFT } from "../boot/acpi.ts";
import { NetDevice } from "../devices/net.ts";
import { RngDevice } from "../devices/rng.ts";
import { ManagementDevice, virtualDeviceResource, virtualDevices } from "../devices/management.ts";
import { GuestMemory } from "../memory/guest_memory.ts";
import { VsockDevice } from "../devices/vsock.ts";
import type { VirtioBackend } from "../virtio/device.ts";
import type { VmConfig } from "./config.ts";
import { FileDisk } from "../host/disk_file.ts";
import type { Machine } from "../vstate/machine.ts";
import { Tap } from "../host/tap.ts";
import { type AttachedVirtio, attachVirtioMmio } from "./virtio_mmio.ts";
import { UnixVsockHost } from "../host/vsock_unix.ts";

/** First virtio-mmio window (inside the MMIO gap below 4 GiB). */
export const VIRTIO_MMIO_BASE = 0xd000_0000;
/**
 * The virtio devices' interrupt lines (GSIs), one each in window order: IOAPIC pins the
 * legacy devices do not use (1 and 12 are the i8042's, 4 COM1's, 8 the RTC's, whose drivers
 * take their lines unshared) and below the ACPI GED's (23). Enough for the 16 devices a
 * config may have.
 */
export const VIRTIO_GSIS: readonly number[] = [
  5,
  6,
  7,
  9,
  10,
  11,
  13,
  14,
  15,
  16,
  17,
  18,
  19,
  20,
  21,
  22,
];
/** The lines snapshots taken before {@link VIRTIO_GSIS} used: 5 up, one per device. */
export const legacyVirtioGsis = (n: number): number[] => Array.from({ length: n }, (_, i) => 5 + i);

/** The devices of a machine. */
export interface Devices {
  /** `virtio_mmio.device=...` cmdline entries, one per virtio device. */
  announce: string[];
  /** The virtio devices in window order, named "disk0", "net0", "rng", "console", "vsock". */
  virtio: (AttachedVirtio & { name: string })[];
  /** The virtio-console, when the config's console is "virtio". */
  console?: ConsoleDevice;
  /** The i8042 at port 0x60: the guest's keyboard probe and its reset command. */
  i8042: I8042;
  /** The CMOS RTC at ports 0x70-0x71: the guest's wall clock. */
  rtc: Rtc;
  /** The management device (admin virtqueue), when the config has `admin`. */
  admin?: ManagementDevice;
}

/** Options of {@link attachDevices}. */
export interface DeviceIo {
  /** Where virtio-console output goes. */
  consoleOutput?: (bytes: Uint8Array) => void;
  log?: (message: string) => void;
  /** Where the first window goes (default {@link VIRTIO_MMIO_BASE}). */
  mmioBase?: number;
  /** Each virtio device's GSI in window order (default {@link VIRTIO_GSIS}; a restore passes
   * the snapshot's). */
  gsis?: readonly number[];
  /** Disk images to use instead of opening the configured paths (same order). */
  diskImages?: DiskImage[];
  /**
   * Whether disk files may copy cached data on the device thread (RWF_NOWAIT, or after a
   * residency check; default true).
   * A restored VM passes false: its RAM is mapped from the snapshot's memory file, and the
   * first touch of each page would read that file on the device thread.
   */
  diskOnThread?: boolean;
  /** How a guest's vsock connect to host port P is made (default: the socket `<path>_P`). */
  vsockConnect?: (port: number) => Promise<Deno.Conn | null>;
}

/** A MAC for net device `i` when none is configured (locally administered). */
export function defaultMac(i: number): string {
  return `52:54:00:12:34:${(0x56 + i).toString(16).padStart(2, "0")}`;
}

/** One virtio device a config asks for, in window order. */
export type PlannedVirtio =
  | { name: string; kind: "disk"; index: number; disk: VmConfig["disks"][number] }
  | { name: string; kind: "net"; index: number; net: VmConfig["nets"][number] }
  | { name: string; kind: "rng" }
  | { name: string; kind: "console" }
  | { name: string; kind: "vsock"; vsock: NonNullable<VmConfig["vsock"]> }
  | { name: string; kind: "admin"; admin: NonNullable<VmConfig["admin"]> };

/**
 * The virtio devices of `cfg` in window order ("disk0".., "net0".., "rng", "console",
 * "vsock", "admin"): the one list both {@link attachDevices} and snapshot validation follow.
 */
export function planVirtio(cfg: VmConfig): PlannedVirtio[] {
  const plan: PlannedVirtio[] = [];
  cfg.disks.forEach((disk, index) =>
    plan.push({ name: `disk${index}`, kind: "disk", index, disk })
  );
  cfg.nets.forEach((net, index) => plan.push({ name: `net${index}`, kind: "net", index, net }));
  if (cfg.rng) plan.push({ name: "rng", kind: "rng" });
  if (cfg.console === "virtio") plan.push({ name: "console", kind: "console" });
  if (cfg.vsock) plan.push({ name: "vsock", kind: "vsock", vsock: cfg.vsock });
  if (cfg.admin) plan.push({ name: "admin", kind: "admin", admin: cfg.admin });
  return plan;
}

/**
 * The device model `p` describes over inert host sides (an empty disk of the configured
 * mode, a TAP that never has frames, a vsock host that refuses): the same features, queues
 * and state checks as the real one, with no host resource opened. Snapshot restore runs
 * the saved state through these before it touches anything.
 */
export function shadowBackend(p: PlannedVirtio): VirtioBackend {
  switch (p.kind) {
    case "disk":
      return new BlockDevice(shadowDisk(p.disk.readOnly ?? false), { id: p.disk.id ?? p.name });
    case "net":
      return new NetDevice({ read: () => 0, write: () => false, setOffload: () => {} }, {
        mac: p.net.mac ?? defaultMac(p.index),
      });
    case "rng":
      return new RngDevice();
    case "console":
      return new ConsoleDevice({ output: () => {} });
    case "vsock":
      return new VsockDevice({ cid: p.vsock.cid, host: { connect: () => Promise.resolve(null) } });
    case "admin":
      // Its saved state is checked with ManagementDevice.check against the RAM layout.
      return new ManagementDevice({
        mem: GuestMemory.allocate([{ gpa: 0, size: 4096 }]),
        factory: shadowVirtualDevices(p.admin),
      });
  }
}

function shadowDisk(readOnly: boolean): DiskImage {
  const none = () => Promise.reject(new Error("shadow disk"));
  return {
    size: 0,
    readOnly,
    read: none,
    write: none,
    flush: none,
    discard: none,
    writeZeroes: none,
  };
}

/** The virtual devices of a management device over inert disks (for snapshot checks). */
export function shadowVirtualDevices(admin: NonNullable<VmConfig["admin"]>) {
  return virtualDevices({ disks: admin.disks.map((d) => shadowDisk(d.readOnly ?? false)) });
}

/** Opens the backends named in `cfg` and attaches every device to `m`. */
export async function attachDevices(
  m: Machine,
  cfg: VmConfig,
  io: DeviceIo = {},
): Promise<Devices> {
  const i8042 = new I8042({
    onReset: () => void m.requestStop({ kind: "reset" }),
    // IRQ 1 is edge-triggered on the ISA side: a pulse.
    onInterrupt: () => {
      m.vm.irqLine(1, 1);
      m.vm.irqLine(1, 0);
    },
  });
  const devices: Devices = { announce: [], virtio: [], i8042, rtc: new Rtc() };
  const mmioBase = io.mmioBase ?? VIRTIO_MMIO_BASE;
  const add = (name: string, backend: VirtioBackend) => {
    const i = devices.virtio.length;
    const base = mmioBase + i * 0x1000, gsi = (io.gsis ?? VIRTIO_GSIS)[i];
    if (gsi === undefined) throw new RangeError(`No interrupt line for virtio device ${i}`);
    const log = io.log ? (msg: string) => io.log!(`${name}: ${msg}`) : undefined;
    const v = attachVirtioMmio(m, backend, { base, gsi, ...(log ? { log } : {}) });
    devices.virtio.push({ ...v, name });
    devices.announce.push(`virtio_mmio.device=4K@0x${base.toString(16)}:${gsi}`);
  };
  m.pio.register(0x60, 5, i8042, "i8042");
  m.pio.register(0x70, 2, devices.rtc, "rtc");
  // The ACPI sleep control and status registers (FADT): SLP_EN with the \_S5 sleep type
  // powers the machine off, as the i8042's reset line resets it.
  m.pio.register(SLEEP_CONTROL_PORT, 2, {
    read: (_o, d) => d.fill(0),
    write: (o, d) => {
      const v = d[0] ?? 0;
      if (o === 0 && v & SLP_EN && ((v >> SLP_TYP_SHIFT) & 7) === S5_SLP_TYP) {
        void m.requestStop({ kind: "shutdown" });
      }
    },
  }, "acpi-sleep");
  for (const p of planVirtio(cfg)) {
    switch (p.kind) {
      case "disk": {
        let disk: DiskImage | undefined = io.diskImages?.[p.index];
        if (!disk) {
          const file = FileDisk.open(p.disk.path, {
            readOnly: p.disk.readOnly ?? false,
            onThread: io.diskOnThread ?? true,
          });
          m.onClose(() => file.close());
          disk = file;
        }
        add(
          p.name,
          new BlockDevice(disk, {
            id: p.disk.id ?? p.name,
            ...(io.log ? { onError: io.log } : {}),
          }),
        );
        break;
      }
      case "net": {
        const tap = Tap.open(p.net.tap);
        m.onClose(() => tap.close());
        const net = new NetDevice(tap, { mac: p.net.mac ?? defaultMac(p.index) });
        add(p.name, net);
        m.events.watch(tap.fd, () => net.backendReadable(), { passive: true });
        break;
      }
      case "rng":
        add(p.name, new RngDevice());
        break;
      case "console":
        devices.console = new ConsoleDevice({
          output: io.consoleOutput ?? ((b) => Deno.stdout.writeSync(b)),
        });
        add(p.name, devices.console);
        break;
      case "vsock": {
        const host = new UnixVsockHost(
          p.vsock.path,
          io.vsockConnect ? { connectPort: io.vsockConnect } : {},
        );
        const vsock = new VsockDevice({
          cid: p.vsock.cid,
          host,
          ...(io.log ? { log: io.log } : {}),
        });
        add(p.name, vsock);
        m.onClose(() => host.close());
        await host.listen(vsock);
        break;
      }
      case "admin": {
        const disks = p.admin.disks.map((d) => {
          const file = FileDisk.open(d.path, {
            readOnly: d.readOnly ?? false,
            onThread: io.diskOnThread ?? true,
          });
          m.onClose(() => file.close());
          return file;
        });
        const log = io.log ? (msg: string) => io.log!(`admin: ${msg}`) : undefined;
        devices.admin = new ManagementDevice({
          mem: m.memory,
          factory: virtualDevices({
            disks,
            consoleOutput: io.consoleOutput ?? ((b) => Deno.stdout.writeSync(b)),
            ...(log ? { log } : {}),
          }),
          exclusive: virtualDeviceResource,
          ...(log ? { log } : {}),
        });
        add(p.name, devices.admin);
        break;
      }
    }
  }
  return devices;
}
