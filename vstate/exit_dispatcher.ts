/**
 * The device thread's side of the vCPU mailboxes: waits on the doorbell without blocking
 * the event loop (`Atomics.waitAsync`), serves every pending access on the PIO or MMIO
 * bus, and answers. After serving it polls briefly before going back to sleep, because a
 * guest driver's accesses come in bursts and a sleeping thread is slow to wake (where the
 * process has more than one CPU: on one, polling only keeps the vCPU from running).
 *
 * @module
 */

import { every, type Timer } from "@denovm/sys/timer";
import type { Bus } from "../bus/bus.ts";
import { ACCESS, DOORBELL_BYTES, type Mailbox, MB, MB_STATE, SINGLE_CPU } from "./mailbox.ts";
import { Ticker } from "./ticker.ts";

/**
 * How long the device thread keeps polling after it served an access (ms). Not at all on a
 * single CPU: the vCPU that would make the next access cannot run while this thread polls.
 */
const POLL_MS = SINGLE_CPU ? 0 : 0.2;
/** How often a polling device thread lets timers and I/O callbacks run (ms). */
const YIELD_MS = 2;

/** Options of {@link ExitDispatcher}. */
export interface DispatcherOptions {
  pio: Bus;
  mmio: Bus;
  /** Called on every wake, e.g. to drain output rings. */
  onWake?: () => void;
  /** Called when a device throws (and for unhandled accesses when `onMiss` is not given). */
  onFault?: (message: string) => void;
  /**
   * Called for an access that hits no device: normal guest behaviour (a kernel probing for
   * hardware), so rate-limited: the first {@link MISS_LINES} per address, then one line at
   * each power of ten.
   */
  onMiss?: (message: string) => void;
}

/** Unhandled accesses reported per address before the reports thin out. */
export const MISS_LINES = 3;

/** Serves the mailboxes of a VM's vCPUs. */
export class ExitDispatcher {
  /** The doorbell SharedArrayBuffer to hand to every vCPU worker. */
  readonly doorbell: SharedArrayBuffer = new SharedArrayBuffer(DOORBELL_BYTES);
  readonly #bell = new Int32Array(this.doorbell);
  readonly #mailboxes: Mailbox[] = [];
  readonly #o: DispatcherOptions;
  #running = false;
  #wakeHandlers: (() => void)[] = [];
  #loop: Promise<void> | undefined;
  #keepAlive: Timer | undefined;
  #wakeStop: (() => void) | undefined;
  #ticker: Ticker | undefined;
  #stopped: Promise<void> = new Promise((r) => (this.#wakeStop = r));

  /** A dispatcher serving on `opts.pio` and `opts.mmio`; it waits for {@link start}. */
  constructor(opts: DispatcherOptions) {
    this.#o = opts;
  }

  /** Adds a function to run on every wake (after the mailboxes are served). */
  addWakeHandler(fn: () => void): void {
    this.#wakeHandlers.push(fn);
  }

  /** Adds a vCPU mailbox to serve. */
  add(mb: Mailbox): void {
    this.#mailboxes.push(mb);
  }

  /** Starts serving. */
  start(): void {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
    // Atomics.waitAsync does not keep the event loop alive; this interval does, and serves
    // as a safety net should a wake ever be missed.
    this.#keepAlive = every(100, () => this.serveAll());
  }

  /** Stops serving after answering what is pending. */
  async stop(): Promise<void> {
    if (!this.#running) return;
    this.#running = false;
    this.#keepAlive?.cancel();
    this.#wakeStop?.();
    Atomics.add(this.#bell, 0, 1);
    Atomics.notify(this.#bell, 0);
    await this.#loop;
    this.#ticker?.close();
    this.#ticker = undefined;
    this.serveAll();
  }

  async #run(): Promise<void> {
    let lastServed = -Infinity, lastYield = performance.now();
    while (this.#running) {
      const seen = Atomics.load(this.#bell, 0);
      const now = performance.now();
      if (this.serveAll() > 0) lastServed = now;
      if (now - lastServed < POLL_MS) {
        // Inside a burst: keep polling, but let timers and I/O run every few ms.
        if (now - lastYield > YIELD_MS) {
          // Made at the first burst: a one-CPU host never polls (POLL_MS is 0 there), and
          // the channel's first use costs ~50 ms in the portable machine.
          await (this.#ticker ??= new Ticker()).tick();
          lastYield = performance.now();
        }
        continue;
      }
      const w = Atomics.waitAsync(this.#bell, 0, seen);
      // V8 settles waitAsync from a task Deno does not count as pending work, so a stop
      // must not depend on it: race it with a promise that stop() settles directly.
      if (w.async) await Promise.race([w.value, this.#stopped]);
      lastYield = performance.now();
    }
  }

  /** Serves every pending mailbox once; returns how many were served. */
  serveAll(): number {
    let n = 0;
    for (const mb of this.#mailboxes) {
      if (Atomics.load(mb.i32, MB.STATE) === MB_STATE.REQUEST) {
        this.#serve(mb);
        n++;
      }
    }
    this.#o.onWake?.();
    for (const f of this.#wakeHandlers) f();
    return n;
  }

  #serve(mb: Mailbox): void {
    const kind = mb.i32[MB.KIND]!;
    const addr = mb.addr;
    const len = Math.min(Math.max(mb.i32[MB.LEN]!, 0), 8);
    const data = mb.data.subarray(0, len);
    try {
      switch (kind) {
        case ACCESS.PIO_OUT:
          if (!this.#o.pio.write(addr, data)) this.#miss("port write", addr, len);
          break;
        case ACCESS.PIO_IN:
          if (!this.#o.pio.read(addr, data)) data.fill(0xff);
          break;
        case ACCESS.MMIO_WRITE:
          if (!this.#o.mmio.write(addr, data)) this.#miss("MMIO write", addr, len);
          break;
        case ACCESS.MMIO_READ:
          if (!this.#o.mmio.read(addr, data)) data.fill(0);
          break;
      }
    } catch (e) {
      // A device fault must not take the VMM down: the access completes as a no-op.
      if (kind === ACCESS.PIO_IN || kind === ACCESS.MMIO_READ) data.fill(0xff);
      this.#o.onFault?.(
        `Device failed on ${kind} at 0x${addr.toString(16)}: ${
          e instanceof Error ? e.message : String(e)
        }`,
      );
    }
    Atomics.store(mb.i32, MB.STATE, MB_STATE.RESPONSE);
    Atomics.notify(mb.i32, MB.STATE);
  }

  readonly #misses = new Map<string, number>();

  #miss(what: string, addr: number, len: number): void {
    const report = this.#o.onMiss ?? this.#o.onFault;
    if (!report) return;
    const key = `${what}@${addr}`;
    const n = (this.#misses.get(key) ?? 0) + 1;
    if (this.#misses.size < 4096 || this.#misses.has(key)) this.#misses.set(key, n);
    if (n <= MISS_LINES) {
      report(`Unhandled ${what} at 0x${addr.toString(16)} (${len} bytes)`);
    } else if (Number.isInteger(Math.log10(n))) {
      report(`Unhandled ${what} at 0x${addr.toString(16)}: ${n} times so far`);
    }
  }
}
