/**
 * vCPU worker threads, optionally started ahead of need: a worker takes ~30 ms to boot its
 * isolate and load its modules, which a CLI can overlap with its own start-up.
 *
 * @module
 */

const pool: Worker[] = [];

/** Starts a new vCPU worker thread (not yet bound to a vCPU). */
export function spawnVcpuWorker(): Worker {
  return new Worker(new URL("./vcpu_worker.ts", import.meta.url), { type: "module" });
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
