/**
 * A single-producer, single-consumer byte ring in a SharedArrayBuffer, for output that a
 * vCPU worker produces (serial transmit) and the device thread consumes.
 *
 * @module
 */

const HEAD = 0, TAIL = 1, WANT = 2, HEADER_BYTES = 16;

/**
 * Bytes in flight between two threads. `head` and `tail` count bytes ever written and
 * read (wrapping at 2^32); the capacity is a power of two.
 *
 * @example
 * ```ts
 * import { ByteRing } from "./byte_ring.ts";
 * const ring = ByteRing.create(16);
 * ring.push(new TextEncoder().encode("hi"));
 * console.assert(new TextDecoder().decode(ring.drain()) === "hi");
 * ```
 */
export class ByteRing {
  readonly #idx: Int32Array;
  readonly #data: Uint8Array;
  readonly #mask: number;

  constructor(readonly sab: SharedArrayBuffer) {
    const cap = sab.byteLength - HEADER_BYTES;
    if (cap <= 0 || (cap & (cap - 1)) !== 0) {
      throw new RangeError(`Cannot use byte ring: capacity ${cap} is not a power of two`);
    }
    this.#idx = new Int32Array(sab, 0, 3);
    this.#data = new Uint8Array(sab, HEADER_BYTES, cap);
    this.#mask = cap - 1;
  }

  /** A ring holding up to `capacity` bytes (a power of two). */
  static create(capacity = 65536): ByteRing {
    const r = new ByteRing(new SharedArrayBuffer(HEADER_BYTES + capacity));
    Atomics.store(r.#idx, WANT, 1); // the reader has nothing: it wants to hear of the first byte
    return r;
  }

  /**
   * For the writer, after pushing: whether the reader asked to be woken (it drained the ring
   * and has not been woken since). True at most once per {@link drainArmed}, so a writer
   * producing a byte at a time wakes the reader once per batch, not once per byte.
   */
  takeWakeRequest(): boolean {
    return Atomics.exchange(this.#idx, WANT, 0) === 1;
  }

  /** Bytes waiting to be read. */
  get length(): number {
    return (Atomics.load(this.#idx, HEAD) - Atomics.load(this.#idx, TAIL)) >>> 0;
  }

  /** Free space in bytes. */
  get free(): number {
    return this.#data.byteLength - this.length;
  }

  /** Appends as many bytes of `src` as fit; returns how many were written. */
  push(src: Uint8Array): number {
    const head = Atomics.load(this.#idx, HEAD);
    const n = Math.min(src.byteLength, this.free);
    for (let i = 0; i < n; i++) this.#data[(head + i) & this.#mask] = src[i]!;
    Atomics.store(this.#idx, HEAD, (head + n) | 0);
    return n;
  }

  /** Appends one byte; false when the ring is full. */
  pushByte(b: number): boolean {
    if (this.free === 0) return false;
    const head = Atomics.load(this.#idx, HEAD);
    this.#data[head & this.#mask] = b;
    Atomics.store(this.#idx, HEAD, (head + 1) | 0);
    return true;
  }

  /** Removes and returns everything waiting. */
  drain(): Uint8Array {
    const tail = Atomics.load(this.#idx, TAIL);
    const n = this.length;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.#data[(tail + i) & this.#mask]!;
    Atomics.store(this.#idx, TAIL, (tail + n) | 0);
    Atomics.notify(this.#idx, TAIL);
    return out;
  }

  /**
   * For the reader: {@link drain}, then ask to be woken for the next byte, then look once
   * more (a byte pushed between the drain and the request would otherwise wait unseen).
   */
  drainArmed(): Uint8Array {
    const first = this.drain();
    Atomics.store(this.#idx, WANT, 1);
    if (this.length === 0) return first;
    const more = this.drain();
    const all = new Uint8Array(first.byteLength + more.byteLength);
    all.set(first);
    all.set(more, first.byteLength);
    return all;
  }

  /** Blocks (worker threads only) until the reader frees space or `ms` passes. */
  waitForSpace(ms: number): void {
    const tail = Atomics.load(this.#idx, TAIL);
    if (this.free > 0) return;
    Atomics.wait(this.#idx, TAIL, tail, ms);
  }
}
