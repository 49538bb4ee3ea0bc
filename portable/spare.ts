/**
 * A spare: a VMM process waiting, fully loaded, inside the resident portable machine
 * (`resident.ts`). The machine's init starts one per slot at the lowest priority; it
 * computes the checkout's code fingerprint, loads the CLI's modules and a vCPU worker, and
 * waits for one job on its slot's port ({@link SPARE_PORTS}). With a job it takes normal
 * priority, tells init (which starts the slot's next spare), makes the job's host directories writable, points its own
 * stdin, stdout and stderr at pipes the relay thread empties, runs `cli.ts`'s body with the
 * job's arguments, environment and directory, and sends the exit status. One job per
 * process: state never leaks from one job into the next.
 *
 * Signals from the host are delivered as on a host: to the job's own listeners (a
 * `--snapshot-on SIGHUP`, the API server's SIGTERM) when it has any, else the job ends with
 * 128 + the signal number. A lost connection ends the job at once.
 *
 * Started by `init.sh` as `spare.ts <slot> <n>`; not meant to be run by hand.
 *
 * @module
 */

import type { Timer } from "@denovm/sys/timer";
import { codeFingerprint, type Job, SIGNAL_NUMBERS } from "./job_frames.ts";

/** The TCP ports spares listen on inside the resident machine, one per slot. */
export const SPARE_PORTS = [7001, 7002];
/** Where the resident machine's control share is seen inside. */
const CTL = "/run/denovm-ctl";
/** Where init and the spares meet (a FIFO for init, a file per running job). */
const WARM = "/run/denovm-warm";
/** The host's `/`, read-write (binds of the job's writable directories come from here). */
const HOST_RW = "/run/denovm-hostrw";

if (import.meta.main) {
  const slot = Number(Deno.args[0] ?? "1");
  const id = Deno.args[1] ?? "0";
  const port = SPARE_PORTS[slot - 1];
  if (port === undefined) throw new Error(`no slot ${slot}`);
  // Lines for the slot's loop in init.sh: "<ready|taken|stale|idle> <id>".
  const tell = async (what: string) => {
    await Deno.writeTextFile(`${WARM}/fifo${slot}`, `${what} ${id}\n`, { append: true });
  };
  // The slot's state for the host: loading, ready, busy or stale, and this spare's number.
  const slotState = (what: string) =>
    Deno.writeTextFile(`${CTL}/slot${slot}`, `${what} ${id}\n`).catch(() => {});
  await slotState("loading");
  // Decoded as the host's CHECKOUT is (resident.ts): both print the same path.
  const root = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
  // Before any of the code loads: a change after this point shows as a different print.
  const fingerprint = await codeFingerprint(root);
  // Count the job's signal listeners; the spare's own keep it alive when the job has none.
  const counts = new Map<string, number>();
  const addListener = Deno.addSignalListener;
  const removeListener = Deno.removeSignalListener;
  Deno.addSignalListener = (sig, f) => {
    counts.set(sig, (counts.get(sig) ?? 0) + 1);
    addListener(sig, f);
  };
  Deno.removeSignalListener = (sig, f) => {
    counts.set(sig, Math.max(0, (counts.get(sig) ?? 0) - 1));
    removeListener(sig, f);
  };
  for (const sig of Object.keys(SIGNAL_NUMBERS)) addListener(sig as Deno.Signal, () => {});

  const { prewarmVcpuWorkers } = await import("../vstate/worker_pool.ts");
  prewarmVcpuWorkers(1);
  const cli = await import("../frontend/cli_main.ts");
  const sys = await import("@denovm/sys");
  // A warm-up: the demo guest once, its output dropped, so the code a job runs is compiled
  // now rather than on the job's time (V8 compiles each function on its first call).
  const nul = sys.openFile("/dev/null", sys.O_RDWR);
  sys.dup2(nul, 0);
  sys.dup2(nul, 1);
  const warm = await cli.main(["--portable", "off", "--quiet"]).catch((e) => e);
  if (warm !== 0) console.error(`spare ${id}: the warm-up run failed: ${warm}`);
  prewarmVcpuWorkers(1);
  const token = (await Deno.readTextFile(`${CTL}/token`)).trim();
  const idleMs = Number((await Deno.readTextFile(`${CTL}/idle`).catch(() => "600")).trim()) * 1000;

  const relay = new Worker(new URL("../portable/spare_relay.ts", import.meta.url), {
    type: "module",
  });
  const next = (kind: string) =>
    new Promise<MessageEvent>((resolve) => {
      const on = (e: MessageEvent) => {
        if (e.data?.kind === kind) {
          relay.removeEventListener("message", on);
          resolve(e);
        }
      };
      relay.addEventListener("message", on);
    });

  let job: Job | undefined;
  // Idle: when no job came for `idle` seconds and none runs, the machine powers off.
  const started = Date.now();
  let idleTimer: Timer | undefined;
  const running = async () => {
    let n = 0;
    for await (const e of Deno.readDir(`${WARM}/jobs`)) {
      if (await Deno.stat(`/proc/${e.name}`).catch(() => undefined)) n++;
      else await Deno.remove(`${WARM}/jobs/${e.name}`).catch(() => {});
    }
    return n;
  };
  const checkIdle = async () => {
    const last = (await Deno.stat(`${WARM}/last`).catch(() => undefined))?.mtime?.getTime() ?? 0;
    const quiet = Date.now() - Math.max(started, last);
    if (quiet >= idleMs && (await running()) === 0 && job === undefined) {
      await tell("idle");
      Deno.exit(0);
    }
    idleTimer = sys.after(Math.max(1000, idleMs - quiet), checkIdle);
  };
  if (idleMs > 0) idleTimer = sys.after(idleMs, checkIdle);

  // stdin, stdout and stderr will be pipes whose other ends the relay owns.
  const [inR, inW] = sys.pipe();
  const [outR, outW] = sys.pipe();
  const [errR, errW] = sys.pipe();
  const piped = next("piped");
  relay.postMessage({ kind: "pipes", stdin: inW, stdout: outR, stderr: errR });
  await piped;
  for (const fd of [inW, outR, errR]) sys.closeFd(fd);

  // Control messages from the relay can come as soon as it has a job: the listener is in
  // place before that, and acts on whatever phase the job is in.
  let finishing: Promise<never> | undefined;
  const mounted: string[] = [];
  const cleanup = () => {
    for (const d of mounted.splice(0).reverse()) {
      try {
        sys.umount(d, sys.MNT_DETACH);
      } catch {
        // already gone (the spare's own mount namespace goes with it anyway)
      }
    }
    try {
      Deno.removeSync(`${WARM}/jobs/${Deno.pid}`);
      Deno.writeTextFileSync(`${WARM}/last`, `${Date.now()}\n`);
    } catch {
      // the machine is going down
    }
  };
  /** Ends the job with `code`: the output still in the pipes goes first, then the status. */
  const finish = (code: number): Promise<never> =>
    finishing ??= (async () => {
      cleanup();
      // Closing our ends of stdout and stderr lets the relay see their end.
      for (const fd of [0, 1, 2]) sys.dup2(nul, fd);
      const flushed = next("flushed");
      relay.postMessage({ kind: "exit", code });
      // The relay answers once all is sent, or at once when the host is gone (a hang-up).
      await Promise.race([flushed, next("hangup")]);
      Deno.exit(code);
    })();
  relay.addEventListener("message", (e: MessageEvent) => {
    if (e.data?.kind === "job") job = e.data.job as Job;
    if (e.data?.kind === "hangup" && !finishing) {
      // The host's side is gone: nobody can see the job any more (as if it were killed).
      cleanup();
      Deno.exit(137);
    } else if (e.data?.kind === "signal") {
      const name = String(e.data.name);
      const num = SIGNAL_NUMBERS[name];
      if (num === undefined) return;
      if ((counts.get(name) ?? 0) > 0) Deno.kill(Deno.pid, name as Deno.Signal);
      else void finish(128 + num);
    }
  });

  const listening = next("listening");
  const jobOrStale = Promise.race([next("job"), next("stale")]);
  relay.postMessage({
    kind: "listen",
    port,
    token,
    fingerprint,
    who: `${slot} ${id}`,
    jobs: `${WARM}/jobs`,
  });
  await listening;
  await Deno.writeTextFile(`${CTL}/state`, `ready ${slot}.${id}\n`, { append: true });
  await slotState("ready");
  await tell("ready");
  const got = await jobOrStale;
  idleTimer?.cancel();
  if (got.data.kind === "stale") {
    await slotState("stale");
    await tell("stale");
    Deno.exit(0);
  }
  if (!job) throw new Error("a job message without a job");

  // Normal priority for every thread (nice is per thread on Linux), then the next spare.
  for await (const t of Deno.readDir("/proc/self/task")) {
    try {
      sys.setThreadNice(Number(t.name), 0);
    } catch {
      // a thread that just ended
    }
  }
  await slotState("busy");
  await tell("taken");

  // What the host may have changed since the machine cached it is read afresh.
  await Deno.writeTextFile("/proc/sys/vm/drop_caches", "3").catch(() => {});

  sys.dup2(inR, 0);
  sys.dup2(outW, 1);
  sys.dup2(errW, 2);
  for (const fd of [inR, outW, errW]) sys.closeFd(fd);

  let code: number;
  try {
    for (const k of ["NO_COLOR", "CI"]) if (!(k in job.env)) Deno.env.delete(k);
    for (const [k, v] of Object.entries(job.env)) Deno.env.set(k, v);
    for (const dir of job.writable) {
      sys.mountBind(`${HOST_RW}${dir}`, dir);
      mounted.push(dir);
    }
    // After the binds, so a writable working directory is the bound one.
    Deno.chdir(job.cwd);
    code = await cli.run(job.args);
  } catch (e) {
    console.error(`denovm: portable machine: ${e instanceof Error ? e.message : String(e)}`);
    code = 125;
  }
  await finish(code);
}
