/**
 * Timers that leave Deno's Node-compatible timers unloaded.
 *
 * In Deno 2.9 the global `setTimeout` and `setInterval` are Node's: their first use in an
 * isolate loads `node:timers` and ~20 modules of Node compatibility with it, 5-17 ms on a
 * host and 260-370 ms in the portable machine (where every instruction is emulated). A VMM
 * process set its first timer while it built the machine, so each boot and each restore
 * paid that before the guest's first instruction. `AbortSignal.timeout` is Deno's own timer,
 * part of the runtime every process starts with. Its timer keeps the event loop alive while
 * the signal has an abort listener, and stops doing so when the last listener is removed
 * (Deno refs and unrefs it in `addEventListener`/`removeEventListener`): a timer here is
 * such a signal with one listener, and cancelling it removes the listener. A cancelled
 * timer stays in Deno's timer list until its deadline (~0.6 KiB each): nothing here sets and
 * cancels timers per exit or per request, only per wait (console waits, connects, exec,
 * {@link within} on the stop paths).
 * `timer_test.ts` checks both behaviours, so a Deno that changes them fails there.
 *
 * ```ts
 * import { after, every, sleep } from "./timer.ts";
 * await sleep(1);
 * const t = after(10_000, () => console.log("never"));
 * t.cancel(); // the process does not wait for it
 * let n = 0;
 * const tick = every(1, () => {
 *   if (++n === 3) tick.cancel();
 * });
 * ```
 *
 * @module
 */

/** A pending timer. */
export interface Timer {
  /** Stops it: its callback will not run (again), and it no longer keeps the process alive. */
  cancel(): void;
}

/** The delay `AbortSignal.timeout` takes for `ms`: whole ms, never shorter than asked. */
function delayOf(ms: number): number {
  if (typeof ms !== "number" || Number.isNaN(ms)) {
    throw new RangeError(`A timer's delay must be a number of ms, not ${ms}`);
  }
  return Math.max(0, Math.ceil(ms));
}

const NEVER: Timer = { cancel() {} };

/**
 * The longest delay one timer takes: Deno's timers (like Node's) fire a longer one at once,
 * so a longer delay is waited out in steps of this.
 */
const MAX_STEP = 0x7fff_ffff;

/**
 * Runs `fn` once after `ms` milliseconds (like `setTimeout`), unless cancelled first. An
 * infinite delay never fires and does not keep the process alive.
 */
export function after(ms: number, fn: () => void): Timer {
  return afterInSteps(ms, fn, MAX_STEP);
}

/**
 * {@link after} with a delay of more than `maxStep` ms waited out in steps of at most
 * `maxStep` (exported for tests, which take short steps; not part of `mod.ts`).
 */
export function afterInSteps(ms: number, fn: () => void, maxStep: number): Timer {
  const delay = delayOf(ms);
  if (delay === Infinity) return NEVER;
  let live = true;
  // The step now waiting: its signal and listener, which cancel() removes.
  let current: { signal: AbortSignal; fire: () => void };
  const arm = (left: number) => {
    const step = Math.min(left, maxStep);
    const signal = AbortSignal.timeout(step);
    const fire = () => {
      signal.removeEventListener("abort", fire);
      if (!live) return;
      if (left > step) return arm(left - step);
      live = false;
      fn();
    };
    current = { signal, fire };
    signal.addEventListener("abort", fire);
  };
  arm(delay);
  return {
    cancel() {
      if (!live) return;
      live = false;
      current.signal.removeEventListener("abort", current.fire);
    },
  };
}

/**
 * Runs `fn` every `ms` milliseconds (like `setInterval`: the next run is armed before `fn`
 * runs) until cancelled; never, for an infinite `ms`.
 */
export function every(ms: number, fn: () => void): Timer {
  const delay = delayOf(ms);
  if (delay === Infinity) return NEVER;
  let live = true;
  let current: Timer;
  const arm = () => {
    current = after(delay, () => {
      if (!live) return;
      arm();
      fn();
    });
  };
  arm();
  return {
    cancel() {
      live = false;
      current.cancel();
    },
  };
}

/**
 * Resolves after `ms` milliseconds; a pending sleep keeps the process alive (an infinite one
 * never resolves, and does not).
 */
export function sleep(ms: number): Promise<void> {
  return new Promise((resolve) => after(ms, resolve));
}

/**
 * Resolves with `p`'s value, or with `undefined` after `ms` (leaving `p` alone); its timer is
 * cancelled either way, so a promise that settles in time leaves nothing holding the process.
 */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: Timer | undefined;
  const late = new Promise<undefined>((r) => (timer = after(ms, () => r(undefined))));
  try {
    return await Promise.race([p, late]);
  } finally {
    timer?.cancel();
  }
}
