/**
 * vCPU worker threads, optionally started ahead of need: a worker takes ~30 ms to boot its
 * isolate and load its modules, which a CLI can overlap with its own start-up.
 *
 * @module
 */

// Kept on the global object: `cli.ts` prewarms through this module as a source file, then
// runs the VMM from its bundle (frontend/bundle_stamp.ts), which has its own copy of it.
const g = globalThis as { [k: symbol]: unknown };
const POOL = Symbol.for("denovm.vcpuWorkerPool");
const pool: Worker[] = (g[POOL] ??= []) as Worker[];
/** Where {@link setVcpuWorkerScript} put the worker's script (the bundled one), if it did. */
const SCRIPT = Symbol.for("denovm.vcpuWorkerScript");

/**
 * Makes new vCPU workers run `url` (the bundled worker) instead of `vstate/vcpu_worker.ts`;
 * `undefined` goes back to the module.
 */
export function setVcpuWorkerScript(url: URL | undefined): void {
  g[SCRIPT] = url;
}

/** Starts a new vCPU worker thread (not yet bound to a vCPU). */
export function spawnVcpuWorker(): Worker {
  // From the root down: the same file from vstate/ and from the bundle in dist/.
  const url = (g[SCRIPT] as URL | undefined) ??
    new URL("../vstate/vcpu_worker.ts", import.meta.url);
  const w = new Worker(url, { type: "module" });
  // The first message each way costs ~1-2 ms on either side (cold paths in the runtime):
  // one round trip now, while the worker loads, keeps that off the machine's start.
  w.onmessage = () => {};
  w.postMessage({ type: "warm", cell: new SharedArrayBuffer(8) });
  return w;
}

/** Starts `n` workers now so the next machine can use them without waiting. */
export function prewarmVcpuWorkers(n = 1): void {
  for (let i = 0; i < n; i++) pool.push(spawnVcpuWorker());
}

/** A prewarmed worker if one is waiting, else a new one. */
export function takeVcpuWorker(): Worker {
  return pool.pop() ?? spawnVcpuWorker();
}

/** Ends prewarmed workers nobody took. */
export function drainVcpuWorkerPool(): void {
  for (const w of pool.splice(0)) w.terminate();
}
