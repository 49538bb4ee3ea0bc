/**
 * The resident portable machine: a portable machine (`machine.ts`) that stays up in the
 * background between runs, so a run on a host without usable KVM does not pay for QEMU's
 * boot, Deno's start and the VMM's module loading each time. One per checkout and user;
 * it powers itself off after {@link DEFAULT_IDLE_S} seconds without a job (the
 * `DENOVM_PORTABLE_IDLE_S` environment variable; 0 means no resident machine at all: each
 * run boots a machine of its own), and `deno task portable --stop` stops it at once.
 *
 * Inside, a *spare* (`spare.ts`) waits with everything loaded; a job (the CLI's arguments,
 * directory, environment and writable directories) goes to it over one TCP connection
 * through QEMU's user-mode network (a port forwarded from this host's loopback, with a
 * random token only this user can read), and its stdin, stdout, stderr, signals and exit
 * status travel as frames (`job_frames.ts`). A spare runs one job; the machine starts the
 * next one meanwhile, at the lowest priority. A spare started before the checkout's code
 * changed refuses the job and the next one loads the new code.
 *
 * State lives in `<cache>/portable/resident/<hash of the checkout>/` (owner-only): the
 * QEMU pid and port in `machine.json`, and `ctl/`, the machine's control share (token,
 * state, the spares' log).
 *
 * @module
 */

import { after, sleep, type Timer } from "@denovm/sys/timer";
import { ensurePortableAssets } from "./assets.ts";
import { cacheDir, contentHash } from "./cache.ts";
import { codeFingerprint, F, frame, FrameReader, type Job, SIGNAL_NUMBERS } from "./job_frames.ts";
import { qemuArgs, shellQuote, writeControl } from "./machine.ts";
import { SPARE_PORTS } from "./spare.ts";

/** Seconds without a job after which the resident machine powers off (by default). */
export const DEFAULT_IDLE_S = 600;
/** The resident machine's memory (MiB); a guest that needs more gets a machine of its own. */
export const RESIDENT_MEM_MIB = 4096;
/** How long a job waits for a spare (machine boot plus a spare's start), in ms. */
const SPARE_WAIT_MS = 180_000;
/** How long a connection to a spare's port waits for its answer, in ms. */
const ANSWER_MS = 60_000;

/** The checkout this module belongs to (what the spares run). */
export const CHECKOUT = decodeURIComponent(new URL("..", import.meta.url).pathname)
  .replace(/\/$/, "");

/** The resident machine could not take the job (the caller may run it another way). */
export class ResidentUnavailable extends Error {}

/** The idle timeout in seconds from `DENOVM_PORTABLE_IDLE_S` (0: no resident machine). */
export function idleSeconds(): number {
  const v = Deno.env.get("DENOVM_PORTABLE_IDLE_S");
  if (v === undefined || v === "") return DEFAULT_IDLE_S;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : DEFAULT_IDLE_S;
}

/**
 * The state directory of the resident machine for `root`. `DENOVM_PORTABLE_INSTANCE`
 * names a machine of its own for the same checkout (tests and benchmarks use one, so they
 * neither use nor stop the user's).
 */
export async function residentDir(root = CHECKOUT): Promise<string> {
  const instance = Deno.env.get("DENOVM_PORTABLE_INSTANCE") ?? "";
  return cacheDir(`portable/resident/${await contentHash([root, instance])}`);
}

interface MachineFile {
  pid: number;
  /** This host's ports forwarded to the spares' slots, in slot order. */
  ports: number[];
  started: number;
}

async function readMachine(dir: string): Promise<MachineFile | undefined> {
  try {
    const m = JSON.parse(await Deno.readTextFile(`${dir}/machine.json`)) as MachineFile;
    return Number.isInteger(m.pid) && Array.isArray(m.ports) && m.ports.every(Number.isInteger)
      ? m
      : undefined;
  } catch {
    return undefined;
  }
}

/** Whether process `pid` is a QEMU serving `dir` (not a stranger that got its pid). */
async function qemuAlive(pid: number, dir: string): Promise<boolean> {
  try {
    const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    return cmd.includes(`${dir}/ctl`);
  } catch {
    return false;
  }
}

/** What {@link residentStatus} reports. */
export interface ResidentStatus {
  /** The state directory. */
  dir: string;
  /** Whether the machine's QEMU runs. */
  running: boolean;
  /** QEMU's pid, when running. */
  pid?: number;
  /** The machine's last state line (`up`, `ready <n>`, `failed`, ...). */
  state?: string;
  /** Seconds since it started, when running. */
  uptimeS?: number;
  /** Each slot's spare: `loading`, `ready`, `busy` or `stale`, and its number (`ready 3`). */
  slots: string[];
}

/** Whether the resident machine for `root` runs, and its state. */
export async function residentStatus(root = CHECKOUT): Promise<ResidentStatus> {
  const dir = await residentDir(root);
  const m = await readMachine(dir);
  const running = m !== undefined && await qemuAlive(m.pid, dir);
  const state = (await Deno.readTextFile(`${dir}/ctl/state`).catch(() => "")).trim()
    .split("\n").pop();
  const slots: string[] = [];
  for (let i = 1; i <= SPARE_PORTS.length; i++) {
    const v = running ? await Deno.readTextFile(`${dir}/ctl/slot${i}`).catch(() => "") : "";
    slots.push(v.trim() || "none");
  }
  return {
    dir,
    running,
    slots,
    ...(running ? { pid: m!.pid, uptimeS: Math.round((Date.now() - m!.started) / 1000) } : {}),
    ...(state ? { state } : {}),
  };
}

/** Waits until every slot of the resident machine has a spare waiting (tests, benchmarks). */
export async function allSlotsReady(root = CHECKOUT, timeoutMs = 180_000): Promise<void> {
  const t0 = Date.now();
  for (;;) {
    const s = await residentStatus(root);
    if (s.running && s.slots.every((x) => x.startsWith("ready"))) return;
    if (Date.now() - t0 > timeoutMs) {
      throw new Error(`the resident machine's spares are not all ready: ${s.slots.join(", ")}`);
    }
    await sleep(100);
  }
}

/** Stops the resident machine for `root`; resolves whether one was running. */
export async function stopResident(root = CHECKOUT): Promise<boolean> {
  const dir = await residentDir(root);
  const m = await readMachine(dir);
  if (!m || !(await qemuAlive(m.pid, dir))) return false;
  try {
    Deno.kill(m.pid, "SIGTERM");
  } catch {
    return false;
  }
  for (let i = 0; i < 100 && await qemuAlive(m.pid, dir); i++) {
    await sleep(50);
  }
  if (await qemuAlive(m.pid, dir)) Deno.kill(m.pid, "SIGKILL");
  await Deno.remove(`${dir}/machine.json`).catch(() => {});
  return true;
}

function freePort(): number {
  const l = Deno.listen({ hostname: "127.0.0.1", port: 0 });
  const port = (l.addr as Deno.NetAddr).port;
  l.close();
  return port;
}

/** Takes `dir`'s start lock (an exclusive flock; one starter at a time); resolves its release. */
async function startLock(dir: string): Promise<() => void> {
  const f = await Deno.open(`${dir}/start.lock`, { read: true, write: true, create: true });
  await f.lock(true);
  return () => {
    try {
      f.unlock();
    } finally {
      f.close();
    }
  };
}

/** The running resident machine's port and token, starting it first when none runs. */
export async function ensureResident(
  root = CHECKOUT,
): Promise<{ dir: string; ports: number[]; token: string; started: boolean }> {
  const dir = await residentDir(root);
  await Deno.mkdir(dir, { recursive: true, mode: 0o700 });
  // Ours and private: another user must not be able to plant a machine or read the token.
  const st = await Deno.lstat(dir);
  if (!st.isDirectory || st.uid !== Deno.uid() || (st.mode ?? 0) & 0o077) {
    throw new ResidentUnavailable(`${dir} is not a private directory of this user`);
  }
  const token = async () => (await Deno.readTextFile(`${dir}/ctl/token`)).trim();
  const running = async () => {
    const m = await readMachine(dir);
    if (!m || !(await qemuAlive(m.pid, dir))) return undefined;
    const state = (await Deno.readTextFile(`${dir}/ctl/state`).catch(() => "")).trim();
    if (state.endsWith("failed") || state.endsWith("off")) return undefined;
    return m;
  };
  const m = await running();
  if (m) return { dir, ports: m.ports, token: await token(), started: false };
  const release = await startLock(dir);
  try {
    // Another process may have started it while this one waited for the lock.
    const again = await running();
    if (again) return { dir, ports: again.ports, token: await token(), started: false };
    await stopResident(root);
    const assets = await ensurePortableAssets();
    const ctl = `${dir}/ctl`;
    await Deno.remove(ctl, { recursive: true }).catch(() => {});
    await Deno.mkdir(ctl, { mode: 0o700 });
    const secret = Array.from(
      crypto.getRandomValues(new Uint8Array(24)),
      (b) => b.toString(16).padStart(2, "0"),
    ).join("");
    await Deno.writeTextFile(`${ctl}/token`, secret + "\n", { mode: 0o600 });
    await Deno.writeTextFile(`${ctl}/resident`, "");
    await Deno.writeTextFile(`${ctl}/idle`, `${idleSeconds()}\n`);
    await Deno.writeTextFile(`${ctl}/net`, "10.0.2.15/24 10.0.2.2\n");
    // The Deno the spares run: this one's, until a job from another version asks for its own.
    await Deno.writeTextFile(`${ctl}/deno`, Deno.execPath() + "\n");
    await Deno.writeTextFile(
      `${ctl}/spare.sh`,
      `exec "$(cat /run/denovm-ctl/deno)" run -A ${shellQuote(`${root}/portable/spare.ts`)} "$@"\n`,
    );
    await writeControl(ctl, { cwd: root, command: "true", shares: [], env: {} });
    const ports: number[] = [];
    for (const _ of SPARE_PORTS) ports.push(freePort());
    const child = new Deno.Command(assets.qemu, {
      args: qemuArgs(assets, ctl, {
        memMiB: RESIDENT_MEM_MIB,
        cpus: 1,
        shares: [],
        net: { forwards: SPARE_PORTS.map((guest, i) => ({ host: ports[i]!, guest })) },
        resident: true,
      }),
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true,
    }).spawn();
    child.unref();
    const file: MachineFile = { pid: child.pid, ports, started: Date.now() };
    await Deno.writeTextFile(`${dir}/machine.json`, JSON.stringify(file) + "\n");
    return { dir, ports, token: secret, started: true };
  } finally {
    release();
  }
}

/** Where a job's output goes, and where its input comes from. */
export interface JobIo {
  /** Stdout bytes. */
  stdout(b: Uint8Array): void;
  /** Stderr bytes. */
  stderr(b: Uint8Array): void;
  /** Stdin (read until its end); undefined: none. */
  stdin?: { read(b: Uint8Array): Promise<number | null> };
  /** Called once when a spare took the job (`<slot> <n>`), the moment it starts to run. */
  onAccepted?: (spare: string) => void;
  /**
   * Called when the job waits longer than a moment: `starting` when this call started the
   * machine, `loading` when the machine runs but its next spare is still loading.
   */
  onWaiting?: (why: "starting" | "loading") => void;
}

/** The job and how to reach the machine. */
export interface ResidentJob {
  /** `cli.ts` arguments. */
  args: string[];
  /** Where it runs. */
  cwd: string;
  /** Environment variables for it (besides the machine's). */
  env: Record<string, string>;
  /** Host directories it may write. */
  writable: string[];
}

async function writeAll(c: Deno.Conn, b: Uint8Array): Promise<void> {
  let off = 0;
  while (off < b.byteLength) off += await c.write(b.subarray(off));
}

/**
 * Runs `job` on the resident machine for `root` (starting it when none runs) and resolves
 * with its exit status. Throws {@link ResidentUnavailable} when no spare took the job.
 */
export async function runOnResident(
  job: ResidentJob,
  io: JobIo,
  root = CHECKOUT,
): Promise<number> {
  const fingerprint = await codeFingerprint(root);
  const t0 = Date.now();
  // Whether this run finds no machine up (then it starts one, perhaps installing QEMU first).
  let startedHere = !(await residentStatus(root)).running;
  const waiting = after(1500, () => io.onWaiting?.(startedHere ? "starting" : "loading"));
  // Per slot, the first spare that refused the job as stale.
  const stale = new Map<string, number>();
  let conn: Deno.Conn | undefined;
  let reader: FrameReader | undefined;
  let spare = "";
  const attempts = new Map<number, string>();
  let startedPid: number | undefined;
  try {
    for (let round = 0;; round++) {
      if (round > 0) {
        // A machine whose spares keep dying before they are ready is not restarted for ever:
        // the run goes elsewhere, with the spares' last words.
        const dir = await residentDir(root);
        const state = (await Deno.readTextFile(`${dir}/ctl/state`).catch(() => "")).trim();
        if (state.endsWith("failed")) {
          waiting.cancel();
          const log = (await Deno.readTextFile(`${dir}/ctl/spare.log`).catch(() => ""))
            .trim().split("\n").slice(-3).join(" | ");
          throw new ResidentUnavailable(`its spares fail to start (${log || "no log"})`);
        }
      }
      const m = await ensureResident(root);
      if (m.started) {
        // The machine this run started died: starting more would not help.
        if (startedPid !== undefined) {
          throw new ResidentUnavailable("the machine it started stopped before taking the run");
        }
        startedPid = (await readMachine(m.dir))?.pid ?? -1;
      }
      startedHere ||= m.started;
      for (const port of m.ports) {
        const c = await Deno.connect({ hostname: "127.0.0.1", port }).catch(() => undefined);
        if (!c) continue;
        const full: Job = { ...job, token: m.token, fingerprint };
        const r = new FrameReader((b) => c.read(b));
        // A spare answers at once; a port where nothing answers is given up after a while.
        let timer: Timer | undefined;
        const first = await Promise.race([
          writeAll(c, frame(F.job, JSON.stringify(full))).then(() => r.next()),
          new Promise<"late">((res) => (timer = after(ANSWER_MS, () => res("late")))),
        ]).catch(() => undefined).finally(() => timer?.cancel());
        attempts.set(
          port,
          first === "late" ? "no answer" : first === undefined ? "closed" : `frame ${first.type}`,
        );
        if (first === "late") {
          try {
            c.close();
          } catch {
            // already closed
          }
          continue;
        }
        if (first?.type === F.accepted) {
          conn = c;
          reader = r;
          spare = new TextDecoder().decode(first.payload);
          break;
        }
        if (first?.type === F.refused) {
          // A spare loaded other code (or runs another Deno): the next one loads this
          // checkout with this Deno. Refused again by that fresh one: the machine sees
          // the files differently, and waiting would not help.
          const why = new TextDecoder().decode(first.payload);
          const [, slot, n] = why.split(" ");
          const before = stale.get(slot ?? "");
          if (before !== undefined && Number(n) > before) {
            waiting.cancel();
            throw new ResidentUnavailable(`its spares refuse the job (${why})`);
          }
          if (before === undefined) stale.set(slot ?? "", Number(n));
          await Deno.writeTextFile(`${m.dir}/ctl/deno`, Deno.execPath() + "\n");
        }
        try {
          c.close();
        } catch {
          // already closed
        }
      }
      if (conn) break;
      if (Date.now() - t0 > SPARE_WAIT_MS) {
        waiting.cancel();
        throw new ResidentUnavailable(
          `no spare took the job within ${SPARE_WAIT_MS / 1000} s (last tries: ${
            [...attempts].map(([p, what]) => `port ${p} ${what}`).join(", ")
          }; see ${m.dir}/ctl/spare.log)`,
        );
      }
      await sleep(100);
    }
  } catch (e) {
    // Whatever stopped the run before a spare took it, it can still run elsewhere.
    waiting.cancel();
    if (e instanceof ResidentUnavailable) throw e;
    throw new ResidentUnavailable(e instanceof Error ? e.message : String(e));
  }
  waiting.cancel();
  io.onAccepted?.(spare);
  const c = conn;
  let sending: Promise<unknown> = Promise.resolve();
  const send = (type: number, payload?: Uint8Array | string) => {
    const b = frame(type, payload);
    sending = sending.then(() => writeAll(c, b)).catch(() => {});
    return sending;
  };
  let signalled: string | undefined;
  const listeners = Object.keys(SIGNAL_NUMBERS).map((sig) => {
    const f = () => {
      signalled ??= sig;
      void send(F.signal, sig);
    };
    Deno.addSignalListener(sig as Deno.Signal, f);
    return [sig as Deno.Signal, f] as const;
  });
  let done = false;
  // Stdin goes within the spare's credit only, so the connection never backs up with it and
  // signals always get through.
  let credit = 0;
  let creditWake: (() => void) | undefined;
  if (io.stdin) {
    const stdin = io.stdin;
    void (async () => {
      const buf = new Uint8Array(16384);
      for (;;) {
        while (credit <= 0 && !done) await new Promise<void>((r) => (creditWake = r));
        const n = await stdin.read(buf.subarray(0, Math.min(buf.byteLength, credit)))
          .catch(() => null);
        if (done) return;
        if (n === null) {
          await send(F.stdinEnd);
          return;
        }
        credit -= n;
        await send(F.stdin, buf.slice(0, n));
      }
    })();
  } else {
    void send(F.stdinEnd);
  }
  try {
    for (;;) {
      const f = await reader!.next().catch(() => undefined);
      if (f === undefined) {
        // The machine went away without a status (stopped, or the job was killed).
        return signalled ? 128 + SIGNAL_NUMBERS[signalled]! : 125;
      }
      if (f.type === F.credit) {
        const n = Number(new TextDecoder().decode(f.payload));
        if (Number.isInteger(n) && n > 0) credit += n;
        creditWake?.();
      } else if (f.type === F.stdout) io.stdout(f.payload);
      else if (f.type === F.stderr) io.stderr(f.payload);
      else if (f.type === F.status) {
        const code = Number(new TextDecoder().decode(f.payload));
        return Number.isInteger(code) ? code : 125;
      }
    }
  } finally {
    done = true;
    creditWake?.();
    for (const [sig, f] of listeners) Deno.removeSignalListener(sig, f);
    try {
      c.close();
    } catch {
      // already closed
    }
  }
}
