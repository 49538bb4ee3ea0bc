/**
 * The CLI's portable mode: the same `cli.ts` with the same arguments, run inside the
 * portable machine, for a host whose KVM cannot run the guest. The user's terminal is the
 * guest's console (input, Ctrl-A x), and the exit code is the guest's.
 *
 * The user's files: `--kernel`, `--initrd`, `--config`, `--image` and `--restore` are read
 * where they are (the host's `/` is visible inside, read-only); each writable `--disk` (and
 * `--admin-disk`) and
 * the `--snapshot` directory are shared read-write, so guest writes and snapshots land on
 * the host. `--api-sock` and `--vsock` sockets are on this host, joined to the inner VMM's
 * by the socket bridge (`portable/bridge.ts`). Refused, with the reason: `--net` (a TAP
 * device inside the portable machine is not one on this host), `PUT /vsock` over the API
 * (give `--vsock` instead, so the bridge knows the path) and restoring a snapshot that has a
 * vsock device.
 *
 * @module
 */

import { decodeState } from "../snapshot/format.ts";
import type { CliRequest } from "./cli_main.ts";
import { parseConfig, type VmConfig } from "../vmm/config.ts";
import type { HostCheck } from "../vstate/host.ts";
import type { Logger } from "../vmm/log.ts";
import { MissingToolError } from "../portable/apt.ts";
import { innerEnv, runPortable } from "../portable/machine.ts";
import { idleSeconds, ResidentUnavailable, runOnResident } from "../portable/resident.ts";
import { BRIDGE_GUEST_PORT, HostBridge } from "../portable/bridge.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

function dirname(p: string): string {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}

function quote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`;
}

/** What portable mode cannot do for this request (and why), or undefined. */
export async function portableRefusal(req: CliRequest): Promise<string | undefined> {
  if (req.config.nets.length > 0) {
    return "--net does not work through the portable machine (a TAP device inside it is not one on this host)";
  }
  if (req.restore !== undefined && (await savedConfig(req.restore))?.vsock !== undefined) {
    return "restoring a snapshot with a vsock device does not work through the portable machine yet (its socket would exist only inside it)";
  }
  return undefined;
}

/** The config saved in a snapshot, or undefined (the VMM inside refuses a bad one). */
async function savedConfig(dir: string) {
  try {
    const path = `${dir}/state.bin`;
    const info = await Deno.stat(path);
    if (!info.isFile || info.size > 64 << 20) return undefined;
    const s = await decodeState(await Deno.readFile(path)) as { config?: unknown };
    return parseConfig(s.config);
  } catch {
    return undefined;
  }
}

/** Host directories the inner VMM must write: writable disks' folders, the snapshot dir. */
export async function writableDirs(req: CliRequest): Promise<string[]> {
  const dirs: string[] = [];
  for (const d of [...req.config.disks, ...req.config.admin?.disks ?? []]) {
    if (d.readOnly) continue;
    const real = await Deno.realPath(d.path).catch(() => undefined);
    if (real !== undefined) dirs.push(dirname(real));
  }
  if (req.restore !== undefined && req.config.disks.length === 0) {
    // Restored with the saved disk paths: those the guest may write are shared too. A state
    // file that does not decode is left for the VMM inside to refuse with its reason.
    const saved = await savedConfig(req.restore);
    for (const d of [...saved?.disks ?? [], ...saved?.admin?.disks ?? []]) {
      if (d.readOnly) continue;
      const real = await Deno.realPath(d.path).catch(() => undefined);
      if (real !== undefined) dirs.push(dirname(real));
    }
  }
  if (req.snapshot) {
    await Deno.mkdir(req.snapshot.dir, { recursive: true });
    dirs.push(await Deno.realPath(req.snapshot.dir));
  }
  return [...new Set(dirs)];
}

/** Why this host needs the portable machine, and how to get native speed, in one line. */
export function portableNotice(host: HostCheck, forced: boolean): string {
  const why = forced ? "--portable on was given" : host.reason ?? host.message;
  const fix = host.fix ?? "run on a host with /dev/kvm and hardware virtualization";
  return `running in the portable machine (QEMU in software mode with KVM inside, far slower than native) because ${why}. For native speed: ${fix}`;
}

/** The largest guest (MiB) the resident machine takes: two at once fit in its memory. */
export const RESIDENT_GUEST_MIB = 1024;

/**
 * The configuration of the guest the run boots (for `--restore`, the saved one) when the
 * run can go to the resident machine: one is wanted (an idle time above 0), the guest is at
 * most {@link RESIDENT_GUEST_MIB}, and no socket needs the bridge (each such run gets a
 * machine of its own, with its own port). Undefined otherwise.
 */
export async function residentConfig(req: CliRequest): Promise<VmConfig | undefined> {
  if (idleSeconds() === 0 || req.apiSock !== undefined || req.config.vsock !== undefined) {
    return undefined;
  }
  const config = req.restore !== undefined ? await savedConfig(req.restore) : req.config;
  if (!config || config.memMiB > RESIDENT_GUEST_MIB || config.vsock) return undefined;
  return config;
}

function writeAllSync(f: typeof Deno.stdout, b: Uint8Array): void {
  let off = 0;
  while (off < b.byteLength) off += f.writeSync(b.subarray(off));
}

/**
 * Runs the CLI on the resident portable machine (starting it when none runs); undefined
 * when it could not take the run (then a machine of its own runs it).
 */
async function runResident(
  innerArgs: string[],
  req: CliRequest,
  config: VmConfig,
  logger: Logger,
): Promise<number | undefined> {
  // As the VMM does on a host with KVM: only a serial console reads stdin (raw on a terminal).
  const serial = config.console === "serial";
  const interactive = serial && Deno.stdin.isTerminal();
  let raw = false;
  try {
    return await runOnResident(
      { args: innerArgs, cwd: Deno.cwd(), env: innerEnv(), writable: await writableDirs(req) },
      {
        stdout: (b) => writeAllSync(Deno.stdout, b),
        stderr: (b) => writeAllSync(Deno.stderr, b),
        ...(serial ? { stdin: Deno.stdin } : {}),
        onWaiting: (why) =>
          logger.notice(
            why === "starting"
              ? `starting the portable machine; it stays up for later runs until ${idleSeconds()} s without one (deno task portable --stop stops it; DENOVM_PORTABLE_IDLE_S=0 keeps none)`
              : "waiting for the portable machine to load the VMM again (after a run or a change to the code)",
          ),
        onAccepted: (spare) => {
          logger.info(`the resident portable machine's spare ${spare} runs this`);
          // The guest's console gets keys as typed (Ctrl-A x quits), as on a host with KVM.
          if (interactive) {
            Deno.stdin.setRaw(true);
            raw = true;
          }
        },
      },
    );
  } catch (e) {
    if (e instanceof ResidentUnavailable) {
      logger.warn(`the resident portable machine: ${e.message}; starting one for this run`);
      return undefined;
    }
    throw e;
  } finally {
    if (raw) Deno.stdin.setRaw(false);
  }
}

/** Runs the CLI inside the portable machine; resolves with the exit code to use. */
export async function runCliPortable(
  args: string[],
  req: CliRequest,
  host: HostCheck,
  logger: Logger,
): Promise<number> {
  const refused = await portableRefusal(req);
  if (refused) {
    logger.error(`${refused}; ${host.message.replace(/^denovm: /, "")}`);
    return 1;
  }
  logger.notice(portableNotice(host, req.portable === "on"));
  // --quiet: the host check inside would describe the portable machine, not this host.
  const innerArgs = [...args, "--portable", "off", "--quiet"];
  const resident = await residentConfig(req);
  if (resident) {
    const code = await runResident(innerArgs, req, resident, logger);
    if (code !== undefined) return code;
  }
  const inner = [Deno.execPath(), "run", "-A", CLI, ...innerArgs];
  // The API and vsock sockets live here; the bridge joins them to the inner VMM's.
  const bridge = req.apiSock !== undefined || req.config.vsock !== undefined
    ? await HostBridge.start({
      ...(req.apiSock !== undefined ? { api: req.apiSock } : {}),
      ...(req.config.vsock ? { vsock: req.config.vsock.path } : {}),
    })
    : undefined;
  try {
    const r = await runPortable({
      command: inner.map(quote).join(" "),
      stdio: "inherit",
      writable: await writableDirs(req),
      memMiB: Math.max(1536, req.config.memMiB + 1024),
      ...(bridge
        ? {
          env: bridge.env,
          net: { forwards: [{ host: bridge.inPort, guest: BRIDGE_GUEST_PORT }] },
        }
        : {}),
    });
    if (r.status >= 124 && r.status <= 125) {
      logger.error(r.log.trim().split("\n").slice(-5).join(" | "));
    }
    return r.status;
  } catch (e) {
    if (e instanceof MissingToolError) {
      logger.error(e.message);
      return 1;
    }
    throw e;
  } finally {
    bridge?.close();
  }
}
