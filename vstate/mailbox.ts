/**
 * Shared-memory channels between vCPU workers and the device thread.
 *
 * - An exit **mailbox** per vCPU: the worker posts a PIO/MMIO access its local bus cannot
 *   serve, rings the device thread's **doorbell**, and waits (spin, then `Atomics.wait`)
 *   for the answer.
 * - A **control** block per vCPU: what the device thread asks of the worker (run, pause,
 *   stop) and what the worker reports (its thread id, its state).
 *
 * @module
 */

/** Mailbox words (Int32). */
export const MB = {
  /** IDLE, REQUEST or RESPONSE. */
  STATE: 0,
  /** One of `ACCESS`. */
  KIND: 1,
  ADDR_LO: 2,
  ADDR_HI: 3,
  LEN: 4,
  /** Byte offset of the 8 data bytes. */
  DATA_BYTE: 32,
  BYTES: 64,
} as const;

/** Mailbox states. */
export const MB_STATE = { IDLE: 0, REQUEST: 1, RESPONSE: 2 } as const;

/** Access kinds carried by a mailbox. */
export const ACCESS = { PIO_OUT: 0, PIO_IN: 1, MMIO_WRITE: 2, MMIO_READ: 3 } as const;

/** Control words (Int32). */
export const CTL = {
  /** What the device thread asks: `REQ`. */
  REQUEST: 0,
  /** The worker's kernel thread id, for tgkill. */
  TID: 1,
  /** What the worker is doing: `VSTATE`. */
  STATE: 2,
  /** Count of exits served (diagnostics, benchmarks). */
  EXITS: 3,
  /** Count of exits that crossed to the device thread. */
  CROSSINGS: 4,
  BYTES: 64,
} as const;

/** Requests from the device thread to a vCPU worker. */
export const REQ = { RUN: 0, PAUSE: 1, STOP: 2 } as const;

/** vCPU worker states. */
export const VSTATE = { IDLE: 0, RUNNING: 1, PAUSED: 2, EXITED: 3 } as const;

/** The doorbell: word 0 counts requests posted by any vCPU; the device thread waits on it. */
export const DOORBELL_BYTES = 16;

/**
 * Whether this process can run on one CPU only (its affinity or cgroup allows no more).
 * Spinning for the other thread's answer is then pure loss: the other thread cannot run
 * until the spinner gives up the CPU (the portable machine has one).
 */
export const SINGLE_CPU = (globalThis.navigator?.hardwareConcurrency ?? 2) <= 1;

/**
 * How long a waiting side spins before it blocks in the kernel (iterations); none where
 * only one CPU is available ({@link SINGLE_CPU}).
 */
export const SPIN_ITERATIONS = SINGLE_CPU ? 0 : 2000;

/** Views of one mailbox. */
export class Mailbox {
  /** The mailbox words, indexed by {@link MB}. */
  readonly i32: Int32Array;
  /** The access's data: 8 bytes, the first `LEN` of them used. */
  readonly data: Uint8Array;

  /** Views of a mailbox in `sab` ({@link MB}.BYTES long), shared with the other thread. */
  constructor(readonly sab: SharedArrayBuffer) {
    this.i32 = new Int32Array(sab, 0, MB.BYTES / 4);
    this.data = new Uint8Array(sab, MB.DATA_BYTE, 8);
  }

  /** A new, zeroed (IDLE) mailbox. */
  static create(): Mailbox {
    return new Mailbox(new SharedArrayBuffer(MB.BYTES));
  }

  /** The access address (ports and MMIO addresses below 2^53). */
  get addr(): number {
    return (this.i32[MB.ADDR_HI]! >>> 0) * 0x1_0000_0000 + (this.i32[MB.ADDR_LO]! >>> 0);
  }
}
