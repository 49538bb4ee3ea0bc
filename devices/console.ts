/**
 * virtio-console (device type 3), single port: the transmit queue goes to an output sink,
 * host input fills the buffers the guest posts on the receive queue (input waits for
 * buffers, it is never dropped: the caller is told how much is queued so it can stop
 * reading its source), a console size in config (VIRTIO_CONSOLE_F_SIZE, with resize
 * events) and emergency writes (VIRTIO_CONSOLE_F_EMERG_WRITE).
 *
 * @module
 */

import { bit, DEVICE_ID, F } from "../virtio/constants.ts";
import type { Persist } from "../bus/persist.ts";
import type { DeviceContext, VirtioBackend } from "../virtio/device.ts";
import { ChainReader, ChainWriter } from "../virtio/queue.ts";
import { serveQueue } from "../virtio/serve.ts";

/** Feature bits of virtio-console. */
export const CONSOLE_F = { SIZE: 0n, MULTIPORT: 1n, EMERG_WRITE: 2n } as const;
const RX = 0, TX = 1;
/** Host input held while the guest posts no receive buffers. */
export const CONSOLE_MAX_PENDING = 1 << 20;
/**
 * Largest piece of a transmit chain handed to the output at once: a chain may describe
 * gigabytes, the host copies at most this much per call (one reused buffer).
 */
export const CONSOLE_TX_PIECE = 1 << 16;

/** Saved state of {@link ConsoleDevice}: its size and the host input not yet delivered. */
export interface ConsoleState {
  /** Console width in columns. */
  cols: number;
  /** Console height in rows. */
  rows: number;
  /** Host input waiting for receive buffers (at most {@link CONSOLE_MAX_PENDING} bytes). */
  pending: Uint8Array;
}

/** Options of {@link ConsoleDevice}. */
export interface ConsoleOptions {
  /** Receives what the guest writes. */
  output: (bytes: Uint8Array) => void;
  cols?: number;
  rows?: number;
  queueSize?: number;
}

/**
 * The virtio-console device model.
 *
 * @example
 * ```ts
 * import { ConsoleDevice } from "./console.ts";
 * const c = new ConsoleDevice({ output: (b) => console.log(b) });
 * console.assert(c.input(new Uint8Array([0x61])) === 1);
 * ```
 */
export class ConsoleDevice implements VirtioBackend, Persist<ConsoleState> {
  readonly deviceType: number = DEVICE_ID.CONSOLE;
  readonly queueMaxSizes: number[];
  readonly features: bigint = bit(F.EVENT_IDX) | bit(F.INDIRECT_DESC) | bit(CONSOLE_F.SIZE) |
    bit(CONSOLE_F.EMERG_WRITE);
  readonly configSize = 12;
  #config = new Uint8Array(12);
  #ctx: DeviceContext | undefined;
  #pending: Uint8Array[] = [];
  #pendingBytes = 0;
  readonly #output: (bytes: Uint8Array) => void;

  /** A one-port console, `cols`×`rows` (default 80×25); guest output goes to `opts.output`. */
  constructor(opts: ConsoleOptions) {
    this.#output = opts.output;
    const qs = opts.queueSize ?? 256;
    this.queueMaxSizes = [qs, qs];
    const v = new DataView(this.#config.buffer);
    v.setUint16(0, opts.cols ?? 80, true);
    v.setUint16(2, opts.rows ?? 25, true);
    v.setUint32(4, 1, true); // max_nr_ports
  }

  /** Bytes of host input waiting for receive buffers. */
  get pendingInput(): number {
    return this.#pendingBytes;
  }

  /** Reads `virtio_console_config`: cols, rows, max_nr_ports (1), emerg_wr. */
  readConfig(offset: number, data: Uint8Array): void {
    data.set(this.#config.subarray(offset, offset + data.byteLength));
  }

  /** A write to `emerg_wr` (offset 8), once negotiated, prints its character; others do nothing. */
  writeConfig(offset: number, data: Uint8Array): void {
    // emerg_wr (offset 8): a write-only register whose low byte is a character to print.
    if (offset === 8 && this.#ctx && this.#ctx.features & bit(CONSOLE_F.EMERG_WRITE)) {
      this.#output(data.slice(0, 1));
    }
  }

  /** The console size changed: new config and a config interrupt. */
  resize(cols: number, rows: number): void {
    const v = new DataView(this.#config.buffer);
    v.setUint16(0, cols, true);
    v.setUint16(2, rows, true);
    this.#ctx?.configChanged();
  }

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
    this.#fill();
  }

  reset(): void {
    this.#ctx = undefined;
  }

  /**
   * Queues host input for the guest; returns how many bytes were accepted (fewer once
   * {@link CONSOLE_MAX_PENDING} bytes wait: stop reading the source until they drain).
   */
  input(bytes: Uint8Array): number {
    const n = Math.min(bytes.byteLength, CONSOLE_MAX_PENDING - this.#pendingBytes);
    if (n > 0) {
      this.#pending.push(bytes.slice(0, n));
      this.#pendingBytes += n;
      this.#fill();
    }
    return n;
  }

  processQueue(index: number): void {
    if (index === RX) return this.#fill();
    if (index === TX) this.#transmit();
  }

  #transmit(): void {
    const ctx = this.#ctx;
    if (!ctx) return;
    serveQueue(ctx, TX, (chain) => {
      if (chain.error || chain.readableLen === 0) return 0;
      // Bounded by the device, not by the chain: one piece at a time, each a fresh copy
      // (the sink may keep it) of at most CONSOLE_TX_PIECE bytes.
      const r = new ChainReader(ctx.mem, chain);
      while (r.remaining > 0) this.#output(r.read(Math.min(r.remaining, CONSOLE_TX_PIECE)));
      return 0;
    });
  }

  /** Moves pending input into the receive buffers the guest has posted. */
  #fill(): void {
    this.#ctx?.guard("console receive queue", () => this.#fillRx());
  }

  #fillRx(): void {
    const ctx = this.#ctx;
    if (!ctx || !ctx.canProcess() || this.#pendingBytes === 0) return;
    const q = ctx.queues[RX]!;
    if (!q.ready) return;
    let used = false;
    for (;;) {
      while (this.#pendingBytes > 0) {
        const chain = q.pop(ctx.mem);
        if (!chain) break;
        const w = new ChainWriter(ctx.mem, chain);
        if (!chain.error) {
          while (w.remaining > 0 && this.#pending.length) {
            const head = this.#pending[0]!;
            const n = Math.min(head.byteLength, w.remaining);
            w.write(head.subarray(0, n));
            this.#pendingBytes -= n;
            if (n === head.byteLength) this.#pending.shift();
            else this.#pending[0] = head.subarray(n);
          }
        }
        q.addUsed(ctx.mem, chain.head, w.written);
        used = true;
      }
      // Input is left only when the buffers ran out: ask to be notified of the next one
      // (and re-check, in case it was posted meanwhile).
      if (this.#pendingBytes === 0 || !q.enableNotification(ctx.mem)) break;
    }
    if (used) ctx.signalUsed(RX);
  }

  /** The size and the pending input. */
  save(): ConsoleState {
    const v = new DataView(this.#config.buffer);
    const pending = new Uint8Array(this.#pendingBytes);
    let o = 0;
    for (const p of this.#pending) {
      pending.set(p, o);
      o += p.byteLength;
    }
    return { cols: v.getUint16(0, true), rows: v.getUint16(2, true), pending };
  }

  /** Validates a saved state (untrusted), pure; see `bus/persist.ts`. */
  static check(x: unknown): ConsoleState {
    const s = x as ConsoleState;
    const u16 = (v: unknown) =>
      typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffff;
    if (
      typeof s !== "object" || s === null || !u16(s.cols) || !u16(s.rows) ||
      !(s.pending instanceof Uint8Array) || s.pending.byteLength > CONSOLE_MAX_PENDING
    ) throw new RangeError("Cannot restore virtio-console: bad state");
    return { cols: s.cols, rows: s.rows, pending: s.pending.slice() };
  }

  /** Applies a saved state ({@link ConsoleDevice.check} first). */
  restore(saved: ConsoleState): void {
    const s = ConsoleDevice.check(saved);
    const v = new DataView(this.#config.buffer);
    v.setUint16(0, s.cols, true);
    v.setUint16(2, s.rows, true);
    this.#pending = s.pending.byteLength ? [s.pending] : [];
    this.#pendingBytes = s.pending.byteLength;
  }
}
