/**
 * The body of the denovm command line (`cli.ts` loads it after starting the first vCPU
 * thread). With no `--kernel` it boots the embedded demo guest.
 *
 * @module
 */

import { parseArgs } from "@std/cli/parse-args";
import {
  checkDiskFiles,
  ConfigError,
  loadConfig,
  parseConfig,
  type VmConfig,
} from "../vmm/config.ts";
import { readBounded } from "../host/files.ts";
import { checkHost } from "../vstate/host.ts";
import { type ApiOptions, ApiServer } from "./api.ts";
import { createLogger, type LogLevel, parseLogLevel } from "../vmm/log.ts";
import { parseTrigger, runVm, type SnapshotTrigger } from "./run.ts";
import { drainVcpuWorkerPool } from "../vstate/worker_pool.ts";
import { INNER_SOCKETS, InnerBridge } from "../portable/bridge.ts";
import { keepKickSignal } from "../vstate/kick_signal.ts";

const USAGE = `Usage: deno run -A cli.ts [options]

With no --kernel, boots the embedded demo guest (works on any host with /dev/kvm).

Options:
  --kernel <path>          Linux kernel (bzImage, or ELF vmlinux) to boot
  --initrd <path>          initramfs for the kernel
  --cmdline <string>       kernel command line
  --mem <MiB>              guest RAM (default 128)
  --cpus <n>               vCPUs (default 1)
  --disk <path>[,ro]       a virtio-blk disk (repeatable; ",ro" for read-only)
  --net <tap>[,mac=<mac>]  a virtio-net interface on a TAP device (repeatable)
  --rng                    a virtio-rng device
  --console <where>        serial (default), virtio or none
  --vsock <cid>,<path>     virtio-vsock with guest CID <cid>, host Unix socket <path>
  --admin-vq               a management device with an admin virtqueue: the guest (or
                           the API) creates virtual rng, console and blk devices on it
                           at run time (docs/admin-virtqueue.md)
  --admin-disk <path>[,ro] a disk virtual blk devices may use (repeatable; implies
                           --admin-vq; index 0, 1, ... in order)
  --no-acpi                no ACPI tables: the MP table and virtio_mmio.device= on the
                           command line describe the machine (kernels built without
                           ACPI). By default a kernel gets ACPI tables (--acpi)
  --config <file.json>     read the configuration from a file (no other machine flags)
  --image <file>           boot a flat real-mode image at 0x1000 instead of the demo
  --snapshot <dir>         where --snapshot-on writes a snapshot (then the VMM exits 0)
  --snapshot-on <when>     SIGHUP, SIGINT, SIGTERM, SIGQUIT, or pattern:<regex> matched
                           against the console output
  --restore <dir>          restore a snapshot and run it (--disk/--net replace the saved
                           disk paths and TAP names, in order)
  --api-sock <path>        serve the control API (HTTP over this Unix socket). Alone, the
                           VM waits for configuration and InstanceStart; with machine
                           flags or --config it boots at once and stays controllable
  --log-level <level>      error, warn (default), info or debug
  --log-json               log one JSON object a line (time, level, msg, fields)
  --timings                print boot phase times (code loaded, VM created, kernel
                           loaded, first instruction, boot marker) once the guest's
                           init reports in; with --restore: restore started, state
                           validated, VM created, state applied, first instruction
  --allow-emulated         boot --kernel even where KVM only emulates (test kernels)
  --portable <mode>        auto (default): where this host's KVM cannot run the guest,
                           run inside the portable machine (QEMU/TCG with KVM inside,
                           much slower); on: always; off: never
  --quiet                  do not print the host check line (it is still printed when
                           the host cannot run Linux)
  -h, --help               show this help

Exit codes: the guest's exit code, 1 for a VMM error, 2 for a usage error.
`;

class UsageError extends Error {}

function many(v: unknown): string[] {
  if (v === undefined) return [];
  return (Array.isArray(v) ? v : [v]).map(String);
}

function num(v: string | undefined, flag: string): number | undefined {
  if (v === undefined) return undefined;
  if (!/^\d+$/.test(v)) {
    throw new UsageError(`${flag} expects a whole number, got ${shown(v)}`);
  }
  return Number(v);
}

/** What the flags ask for. */
export interface CliRequest {
  /** The machine, from the flags or the `--config` file, validated. */
  config: VmConfig;
  /** `--quiet`: leave out the host check line (still printed where guests cannot run natively). */
  quiet: boolean;
  /** `-h`/`--help`: print the usage and exit 0; the other fields are then defaults. */
  help: boolean;
  /** `--image`: a flat real-mode image to boot at 0x1000 instead of the demo guest. */
  image?: string;
  /** `--restore`: the snapshot directory to restore and run. */
  restore?: string;
  /** Boot a kernel even when KVM only emulates (small test kernels). */
  allowEmulated?: boolean;
  /** `--snapshot` and `--snapshot-on`: where to write a snapshot, and on which signal or output. */
  snapshot?: { dir: string; on: SnapshotTrigger };
  /** Serve the control API on this Unix socket. */
  apiSock?: string;
  /** With --api-sock: machine flags or --config were given, so boot at once. */
  configured?: boolean;
  /** `--log-level` (default "warn") and `--log-json`. */
  log: { level: LogLevel; json: boolean };
  /** `--timings`: print the boot phase times once the guest's init reports in. */
  timings?: boolean;
  /** Run inside the portable machine: "auto" where this host cannot run the guest. */
  portable?: "auto" | "on" | "off";
}

/** Flags that take a value. */
const VALUE_FLAGS = [
  "kernel",
  "initrd",
  "cmdline",
  "mem",
  "cpus",
  "disk",
  "admin-disk",
  "net",
  "console",
  "vsock",
  "config",
  "image",
  "snapshot",
  "snapshot-on",
  "restore",
  "api-sock",
  "log-level",
  "portable",
] as const;

/** A value as an error shows it: quoted, and cut to 80 characters. */
function shown(v: string): string {
  return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}…` : v);
}

/** An empty or missing value is a usage error that names its flag. */
function checkValues(args: string[]): void {
  for (let i = 0; i < args.length; i++) {
    const a = args[i]!;
    const m = /^--([a-z-]+)(=(.*))?$/s.exec(a);
    if (!m || !(VALUE_FLAGS as readonly string[]).includes(m[1]!)) continue;
    const v = m[2] !== undefined ? m[3]! : args[i + 1];
    if (v === undefined || v === "") throw new UsageError(`--${m[1]} expects a value`);
    if (m[2] === undefined) i++;
  }
}

/** The configuration the flags describe (validated by parseConfig). */
export async function configFromArgs(args: string[]): Promise<CliRequest> {
  checkValues(args);
  const f = parseArgs(args, {
    string: VALUE_FLAGS,
    boolean: [
      "help",
      "quiet",
      "rng",
      "admin-vq",
      "acpi",
      "no-acpi",
      "allow-emulated",
      "log-json",
      "timings",
    ],
    collect: ["disk", "net", "admin-disk"],
    alias: { h: "help" },
    unknown: (arg: string) => {
      const a = arg.length > 80 ? `${arg.slice(0, 80)}…` : arg;
      if (arg.startsWith("-")) throw new UsageError(`Unknown option: ${a}`);
      throw new UsageError(`Unexpected argument: ${a}`);
    },
  });
  if (f.help) {
    return {
      config: parseConfig({}),
      quiet: true,
      help: true,
      log: { level: "warn", json: false },
    };
  }
  let level: LogLevel = "warn";
  if (f["log-level"] !== undefined) {
    try {
      level = parseLogLevel(f["log-level"]);
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  const extra: Partial<CliRequest> & Pick<CliRequest, "log"> = {
    log: { level, json: f["log-json"] },
  };
  if (f.timings) extra.timings = true;
  if (f.portable !== undefined) {
    if (!["auto", "on", "off"].includes(f.portable)) {
      throw new UsageError(`--portable expects auto, on or off, got ${shown(f.portable)}`);
    }
    extra.portable = f.portable as "auto" | "on" | "off";
  }
  if (f.acpi && f["no-acpi"]) throw new UsageError("--acpi and --no-acpi contradict each other");
  if (f["allow-emulated"]) extra.allowEmulated = true;
  if (f.image !== undefined) extra.image = f.image;
  if (f["api-sock"] !== undefined) {
    if (f["api-sock"] === "") throw new UsageError("--api-sock expects a path");
    if (f.restore !== undefined || f.snapshot !== undefined) {
      throw new UsageError(
        "--api-sock cannot be combined with --restore or --snapshot (use the snapshot/load and snapshot/create requests)",
      );
    }
    extra.apiSock = f["api-sock"];
    extra.configured = f.image !== undefined || f.config !== undefined || f.rng || f.acpi ||
      f["no-acpi"] || f["admin-vq"] || many(f["admin-disk"]).length > 0 ||
      many(f.disk).length > 0 || many(f.net).length > 0 ||
      ["kernel", "initrd", "cmdline", "mem", "cpus", "console", "vsock"].some((k) =>
        (f as Record<string, unknown>)[k] !== undefined
      );
  }
  if (f.restore !== undefined) {
    if (f.image !== undefined || f.kernel !== undefined || f.config !== undefined) {
      throw new UsageError("--restore cannot be combined with --kernel, --image or --config");
    }
    extra.restore = f.restore;
  }
  if ((f.snapshot === undefined) !== (f["snapshot-on"] === undefined)) {
    throw new UsageError("--snapshot and --snapshot-on go together");
  }
  if (f.snapshot !== undefined) {
    try {
      extra.snapshot = { dir: f.snapshot, on: parseTrigger(f["snapshot-on"]!) };
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
  }
  if (f.config !== undefined) {
    const others = ["kernel", "initrd", "cmdline", "mem", "cpus", "console", "vsock"].filter((k) =>
      (f as Record<string, unknown>)[k] !== undefined
    );
    if (
      others.length || many(f.disk).length || many(f.net).length || f.rng || f.acpi ||
      f["no-acpi"] || f["admin-vq"] || many(f["admin-disk"]).length
    ) {
      throw new UsageError(
        `--config cannot be combined with machine flags (${others.join(", ") || "devices"})`,
      );
    }
    const config = await loadConfig(f.config);
    await checkDiskFiles(config.disks, config.admin?.disks);
    return { config, quiet: f.quiet, help: false, ...extra };
  }
  const disk = (flag: string) => (d: string) => {
    const [path, ...opts] = d.split(",");
    for (const o of opts) {
      if (o !== "ro") throw new UsageError(`--${flag} option ${shown(o)}: only "ro" is known`);
    }
    return { path, ...(opts.includes("ro") ? { readOnly: true } : {}) };
  };
  const adminDisks = many(f["admin-disk"]).map(disk("admin-disk"));
  const raw: Record<string, unknown> = {
    disks: many(f.disk).map(disk("disk")),
    ...(f["admin-vq"] || adminDisks.length ? { admin: { disks: adminDisks } } : {}),
    nets: many(f.net).map((n) => {
      const [tap, ...opts] = n.split(",");
      const net: Record<string, string> = { tap: tap ?? "" };
      for (const o of opts) {
        if (!o.startsWith("mac=")) {
          throw new UsageError(`--net option ${shown(o)}: only "mac=" is known`);
        }
        net.mac = o.slice(4);
      }
      return net;
    }),
    rng: f.rng,
    ...(f.acpi ? { acpi: true } : {}),
    ...(f["no-acpi"] ? { acpi: false } : {}),
  };
  if (f.kernel !== undefined) raw.kernel = f.kernel;
  if (f.initrd !== undefined) raw.initrd = f.initrd;
  if (f.cmdline !== undefined) raw.cmdline = f.cmdline;
  const mem = num(f.mem, "--mem"), cpus = num(f.cpus, "--cpus");
  if (mem !== undefined) raw.memMiB = mem;
  if (cpus !== undefined) raw.vcpus = cpus;
  if (f.console !== undefined) raw.console = f.console;
  if (f.vsock !== undefined) {
    const m = /^(\d+),(.+)$/.exec(f.vsock);
    if (!m) throw new UsageError(`--vsock expects <cid>,<path>, got ${shown(f.vsock)}`);
    raw.vsock = { cid: Number(m[1]), path: m[2] };
  }
  const config = parseConfig(raw);
  await checkDiskFiles(config.disks, config.admin?.disks);
  return { config, quiet: f.quiet, help: false, ...extra };
}

/** Runs the CLI with `args`; resolves with the process exit code. */
export async function main(args: string[]): Promise<number> {
  const codeLoaded = performance.now();
  const req = await configFromArgs(args);
  const { config, quiet, help } = req;
  if (help) {
    console.log(USAGE);
    return 0;
  }
  const logger = createLogger({ level: req.log.level, json: req.log.json });
  // Inside the portable machine, with sockets bridged to the host: the VMM's sockets go
  // where the bridge expects them, and guest vsock connects go through it to the host.
  const bridge = InnerBridge.fromEnv();
  if (bridge) {
    await Deno.mkdir(INNER_SOCKETS.api.slice(0, INNER_SOCKETS.api.lastIndexOf("/")), {
      recursive: true,
    });
    if (req.apiSock !== undefined) req.apiSock = INNER_SOCKETS.api;
    if (config.vsock) config.vsock = { ...config.vsock, path: INNER_SOCKETS.vsock };
    bridge.listen();
  }
  const vsockConnect = bridge ? (port: number) => bridge.connectHostPort(port) : undefined;
  const host = await checkHost();
  const mode = Deno.env.get("DENOVM_PORTABLE_INSIDE") === "1" ? "off" : req.portable ?? "auto";
  const needsNative = config.kernel !== undefined && !req.allowEmulated;
  if (mode === "on" || (mode === "auto" && (!host.usable || (needsNative && !host.native)))) {
    const { runCliPortable } = await import("./portable_mode.ts");
    return await runCliPortable(args, req, host, logger);
  }
  if (!quiet || !host.native) logger.notice(host.message.replace(/^denovm: /, ""));
  if (!host.usable) {
    logger.error(
      "no guest can run here; --portable auto (the default) runs it in the portable machine",
    );
    return 1;
  }
  const refusal =
    "not booting the kernel: on this host it would run for minutes and then fail. Pass --allow-emulated to try anyway (small test kernels work)";
  if (config.kernel !== undefined && !host.native && !req.allowEmulated) {
    logger.error(refusal);
    return 1;
  }
  let image;
  if (req.image !== undefined) {
    try {
      image = { bytes: await readBounded(req.image, 0x90000, "--image"), load: 0x1000 };
    } catch (e) {
      throw new UsageError((e as Error).message);
    }
    if (image.bytes.byteLength === 0 || image.bytes.byteLength > 0x90000) {
      throw new UsageError(`--image ${req.image} must be 1 byte to 576 KiB`);
    }
  }
  if (req.apiSock !== undefined) {
    return await serveApi(req.apiSock, {
      config,
      ...(image ? { image } : {}),
      ...(req.configured ? { start: true } : {}),
      ...(!host.native && !req.allowEmulated ? { kernelRefusal: refusal } : {}),
      logger,
      ...(req.timings ? { timings: true, codeLoaded } : {}),
      ...(vsockConnect ? { vsockConnect } : {}),
      ...(bridge
        ? {
          vsockRefusal:
            "PUT /vsock does not work through the portable machine: give --vsock <cid>,<path> on the command line instead",
        }
        : {}),
    });
  }
  return await runVm({
    config,
    logger,
    ...(req.timings ? { timings: true, codeLoaded } : {}),
    ...(image ? { image } : {}),
    ...(req.restore
      ? {
        restore: req.restore,
        overrideDisks: config.disks.length > 0,
        overrideTaps: config.nets.length > 0,
      }
      : {}),
    ...(req.snapshot ? { snapshot: req.snapshot } : {}),
    ...(vsockConnect ? { vsockConnect } : {}),
  });
}

/** Serves the control API until the VM stops (its exit code) or a SIGINT/SIGTERM (0). */
async function serveApi(path: string, opts: ApiOptions): Promise<number> {
  const out = (b: Uint8Array) => {
    let off = 0;
    while (off < b.byteLength) off += Deno.stdout.writeSync(b.subarray(off));
  };
  const server = await ApiServer.listen(path, { ...opts, output: out });
  const stop = () => void server.close();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  try {
    return await server.done;
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    await server.close();
  }
}

/**
 * The process's last line of defence: an exception or rejection that escaped every device
 * guard is logged and the process (and every VM in it) keeps running; the guard that
 * should have caught it is the bug to fix.
 */
export function installLastDefence(): void {
  const say = (what: unknown) =>
    console.error(
      `denovm: error: internal error, kept running: ${
        what instanceof Error ? what.stack ?? what.message : String(what)
      }`,
    );
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    say(e.reason);
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    say(e.error);
  });
}

/** Runs the CLI as a program: usage errors exit 2, VMM errors 1, else the guest's code. */
export async function run(args: string[]): Promise<number> {
  installLastDefence();
  // The program ends when its VM stops: the vCPU kick's listener stays to the end, so no
  // kick still on its way can find it gone (vstate/kick_signal.ts).
  keepKickSignal();
  let code: number;
  try {
    code = await main(args);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      console.error(`denovm: ${e.message}\n\n${USAGE}`);
      code = 2;
    } else {
      console.error(`denovm: ${e instanceof Error ? e.message : String(e)}`);
      code = 1;
    }
  }
  drainVcpuWorkerPool();
  return code;
}
