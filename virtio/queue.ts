/**
 * The device side of a split virtqueue. A {@link Queue} holds plain values (addresses,
 * size, next indices, event-index state); guest memory is an argument of every ring
 * operation, so a queue is trivial to save, restore and test on an `ArrayBuffer`.
 *
 * Everything the guest controls is bounded: a chain walk stops after the queue size (the
 * indirect table's size inside one), its total length stays below 2^32, an indirect table
 * may not hold another, each descriptor's whole buffer must be guest RAM, and an avail
 * index more than `size` ahead is a queue error, not a loop.
 *
 * @module
 */

import type { DeviceMemory } from "../memory/guest_memory.ts";
import { DESC_F, VRING_AVAIL_F_NO_INTERRUPT, VRING_USED_F_NO_NOTIFY } from "./constants.ts";
import { vringNeedEvent, wrap16 } from "./ring.ts";

/** A queue the device cannot go on with (the driver broke the ring itself). */
export class QueueError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "QueueError";
  }
}

/** One buffer of a chain. */
export interface Buffer {
  /** Guest-physical address. */
  addr: number;
  /** Length in bytes. */
  len: number;
}

/**
 * A descriptor chain taken from the avail ring. `error` is set when the chain is
 * malformed; such a chain must be returned with {@link Queue.addUsed}(head, 0) and its
 * buffers left alone.
 */
export interface DescriptorChain {
  /** Head descriptor index (the id to return in the used ring). */
  head: number;
  /** Device-readable buffers, in order. */
  readable: Buffer[];
  /** Device-writable buffers, in order. */
  writable: Buffer[];
  /** Total bytes of the readable buffers. */
  readableLen: number;
  /** Total bytes of the writable buffers. */
  writableLen: number;
  /** Why the chain is unusable, when it is. */
  error?: string | undefined;
}

/**
 * A chain filled in place by {@link Queue.popInto}: its arrays and buffer objects are reused
 * from one chain to the next, so taking a chain allocates nothing once they have grown. It
 * describes the last chain taken only until the next fill; a device that keeps a chain past
 * serving it keeps a {@link copyChain} of it.
 */
export class ScratchChain implements DescriptorChain {
  head = 0;
  readable: Buffer[] = [];
  writable: Buffer[] = [];
  readableLen = 0;
  writableLen = 0;
  error: string | undefined = undefined;
  /** Buffer objects handed out by the fills, reused in order. */
  readonly pool: Buffer[] = [];

  /** Empties the chain for a fill with head `head`. */
  reset(head: number): void {
    this.head = head;
    // pop() keeps the arrays' backing stores (setting length to 0 frees them, and the
    // fill's pushes allocate them again: ~60 ns a chain where this takes ~5).
    emptyArray(this.readable);
    emptyArray(this.writable);
    this.readableLen = 0;
    this.writableLen = 0;
    this.error = undefined;
  }
}

/** Empties `a` in place, keeping its storage for the next pushes. */
export function emptyArray(a: unknown[]): void {
  while (a.length > 0) a.pop();
}

/** A chain that owns its arrays and buffers (to keep one taken with {@link Queue.popInto}). */
export function copyChain(c: DescriptorChain): DescriptorChain {
  return {
    head: c.head,
    readable: c.readable.map((b) => ({ addr: b.addr, len: b.len })),
    writable: c.writable.map((b) => ({ addr: b.addr, len: b.len })),
    readableLen: c.readableLen,
    writableLen: c.writableLen,
    ...(c.error !== undefined ? { error: c.error } : {}),
  };
}

/** Buffer `i` of `pool` set to (addr, len); the pool grows by one when `i` is its length. */
function pooled(pool: Buffer[], i: number, addr: number, len: number): Buffer {
  const b = pool[i];
  if (b === undefined) {
    const fresh = { addr, len };
    pool.push(fresh);
    return fresh;
  }
  b.addr = addr;
  b.len = len;
  return b;
}

/** The saved form of a queue (plain data). */
export interface QueueState {
  /** Negotiated size (QueueNum). */
  size: number;
  /** Whether the driver enabled the queue. */
  ready: boolean;
  /** Descriptor table address. */
  descAddr: number;
  /** Avail ring address. */
  availAddr: number;
  /** Used ring address. */
  usedAddr: number;
  /** Next avail ring entry the device will read. */
  nextAvail: number;
  /** Next used ring entry the device will write. */
  nextUsed: number;
  /** Used index at the last interrupt decision. */
  signalledUsed: number;
  /** Whether `signalledUsed` holds a decision. */
  signalledUsedValid: boolean;
  /** VIRTIO_F_EVENT_IDX negotiated. */
  eventIdx: boolean;
  /** VIRTIO_F_INDIRECT_DESC negotiated. */
  indirect: boolean;
}

const MAX_CHAIN_BYTES = 0x1_0000_0000;

/**
 * Zero-copy views of guest memory covering [skip, skip+len) of the concatenation of `bufs`
 * (a chain's readable or writable buffers, each already checked to lie in guest RAM).
 */
export function bufferViews(
  mem: DeviceMemory,
  bufs: readonly Buffer[],
  skip: number,
  len: number,
): Uint8Array[] {
  const out: Uint8Array[] = [];
  const end = skip + len;
  let pos = 0;
  for (const b of bufs) {
    const from = Math.max(skip, pos), to = Math.min(end, pos + b.len);
    if (to > from) out.push(mem.slice(b.addr + (from - pos), to - from));
    pos += b.len;
    if (pos >= end) break;
  }
  return out;
}

/**
 * What a queue's rings are checked against: guest memory, or only its layout (a snapshot
 * is validated before any memory exists).
 */
export interface RamMap {
  /** Whether the whole range [addr, addr+len) lies in one RAM region. */
  contains(addr: number, len: number): boolean;
}

/** A {@link RamMap} for a RAM layout (regions of `size` bytes at `gpa`). */
export function layoutRamMap(layout: readonly { gpa: number; size: number }[]): RamMap {
  return {
    contains: (addr, len) =>
      Number.isSafeInteger(addr) && addr >= 0 && Number.isSafeInteger(len) && len >= 0 &&
      layout.some((r) => addr >= r.gpa && addr < r.gpa + r.size && len <= r.gpa + r.size - addr),
  };
}

/** The rings of a split virtqueue, with the alignment the spec requires of each. */
export const RING_ALIGN = { descAddr: 16, availAddr: 2, usedAddr: 4 } as const;
/** One of a queue's ring addresses. */
export type RingField = keyof typeof RING_ALIGN;
/** Where a queue address the guest set beyond 2^53 goes: aligned, never guest RAM. */
export const UNUSABLE_RING_ADDR = 2 ** 53 - 4096;

/** Why `n` cannot be a queue's size (QueueNum), or undefined when it can. */
export function queueSizeProblem(n: unknown, maxSize: number): string | undefined {
  return isPow2(n as number) && (n as number) <= maxSize
    ? undefined
    : `size ${String(n)} is not a power of two <= ${maxSize}`;
}

/** Why `addr` cannot be the address of ring `field`, or undefined when it can. */
export function ringAddrProblem(field: RingField, addr: unknown): string | undefined {
  if (typeof addr !== "number" || !Number.isSafeInteger(addr) || addr < 0) {
    return `${field} ${String(addr)} is not an address`;
  }
  const a = RING_ALIGN[field];
  return addr % a ? `${field} 0x${addr.toString(16)} is not ${a}-aligned` : undefined;
}

/**
 * Why queue placement `q` cannot be used, or undefined when it can: size a power of two
 * up to `maxSize`, rings aligned (16, 2, 4) and wholly inside RAM.
 */
export function queuePlacementError(
  q: Pick<QueueState, "size" | "descAddr" | "availAddr" | "usedAddr">,
  maxSize: number,
  ram: RamMap,
): string | undefined {
  const n = q.size;
  const bad = queueSizeProblem(n, maxSize) ?? ringAddrProblem("descAddr", q.descAddr) ??
    ringAddrProblem("availAddr", q.availAddr) ?? ringAddrProblem("usedAddr", q.usedAddr);
  if (bad) return bad;
  if (!ram.contains(q.descAddr, 16 * n)) return "descriptor table outside guest RAM";
  if (!ram.contains(q.availAddr, 6 + 2 * n)) return "avail ring outside guest RAM";
  if (!ram.contains(q.usedAddr, 6 + 8 * n)) return "used ring outside guest RAM";
  return undefined;
}

/**
 * Validates a saved queue (untrusted) for a queue of `maxSize`: every field checked the
 * way the driver's register writes are, and a ready queue must lie in `ram`. Pure: returns
 * the state to apply, or throws a RangeError saying what is wrong.
 */
export function checkQueueState(s: unknown, maxSize: number, ram: RamMap): QueueState {
  const u16 = (v: unknown, name: string) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffff) {
      throw new RangeError(`Cannot restore queue: ${name} ${String(v)} is not a 16-bit index`);
    }
    return v;
  };
  // The same checks as the driver's register writes (Queue.setSize, Queue.setAddress).
  const addr = (v: unknown, name: RingField) => {
    const why = ringAddrProblem(name, v);
    if (why) throw new RangeError(`Cannot restore queue: ${why}`);
    return v as number;
  };
  const bool = (v: unknown, name: string) => {
    if (typeof v !== "boolean") {
      throw new RangeError(`Cannot restore queue: ${name} is not a boolean`);
    }
    return v;
  };
  if (typeof s !== "object" || s === null) throw new RangeError("Cannot restore queue: no state");
  const q = s as Record<keyof QueueState, unknown>;
  const sizeWhy = queueSizeProblem(q.size, maxSize);
  if (sizeWhy) throw new RangeError(`Cannot restore queue: ${sizeWhy}`);
  const next: QueueState = {
    size: q.size as number,
    ready: bool(q.ready, "ready"),
    descAddr: addr(q.descAddr, "descAddr"),
    availAddr: addr(q.availAddr, "availAddr"),
    usedAddr: addr(q.usedAddr, "usedAddr"),
    nextAvail: u16(q.nextAvail, "nextAvail"),
    nextUsed: u16(q.nextUsed, "nextUsed"),
    signalledUsed: u16(q.signalledUsed, "signalledUsed"),
    signalledUsedValid: bool(q.signalledUsedValid, "signalledUsedValid"),
    eventIdx: bool(q.eventIdx, "eventIdx"),
    indirect: bool(q.indirect, "indirect"),
  };
  const why = next.ready ? queuePlacementError(next, maxSize, ram) : undefined;
  if (why) throw new RangeError(`Cannot restore queue: ${why}`);
  return next;
}

function isPow2(n: number): boolean {
  return Number.isInteger(n) && n > 0 && (n & (n - 1)) === 0;
}

/**
 * A split virtqueue, device side.
 *
 * @example
 * ```ts
 * import { Queue } from "./queue.ts";
 * const q = new Queue(256);
 * q.setSize(16); // the driver's QueueNum
 * console.assert(q.save().size === 16);
 * console.assert(q.setSize(24) !== undefined); // refused: not a power of two
 * ```
 */
export class Queue {
  /** The largest size the device allows (QueueNumMax). */
  readonly maxSize: number;
  #size: number;
  #ready = false;
  #descAddr = 0;
  #availAddr = 0;
  #usedAddr = 0;
  /** Next avail ring entry the device will read (free-running 16-bit). */
  nextAvail = 0;
  /** Next used ring entry the device will write (free-running 16-bit). */
  nextUsed = 0;
  /** Used index at the last interrupt decision (event-index mode). */
  signalledUsed = 0;
  /** Whether `signalledUsed` holds a decision (false after reset: the next one interrupts). */
  signalledUsedValid = false;
  /** VIRTIO_F_EVENT_IDX negotiated. */
  eventIdx = false;
  /** VIRTIO_F_INDIRECT_DESC negotiated. */
  indirect = false;

  /** A queue in reset state; `maxSize` must be a power of two up to 32768. */
  constructor(maxSize: number) {
    if (!isPow2(maxSize) || maxSize > 32768) {
      throw new RangeError(
        `Cannot create queue: max size ${maxSize} is not a power of two <= 32768`,
      );
    }
    this.maxSize = maxSize;
    this.#size = maxSize;
  }

  /** Negotiated size: a power of two up to maxSize (QueueNum). */
  get size(): number {
    return this.#size;
  }
  /** Whether the driver enabled the queue. */
  get ready(): boolean {
    return this.#ready;
  }
  /** Guest-physical address of the descriptor table (16-byte aligned). */
  get descAddr(): number {
    return this.#descAddr;
  }
  /** Guest-physical address of the avail (driver) ring (2-byte aligned). */
  get availAddr(): number {
    return this.#availAddr;
  }
  /** Guest-physical address of the used (device) ring (4-byte aligned). */
  get usedAddr(): number {
    return this.#usedAddr;
  }

  /**
   * QueueNum: sets the size unless it is not a power of two up to {@link maxSize}; returns
   * why it was refused (the size is then unchanged), or undefined.
   */
  setSize(n: number): string | undefined {
    const why = queueSizeProblem(n, this.maxSize);
    if (!why) this.#size = n;
    return why;
  }

  /**
   * Sets a ring address unless it is misaligned (16, 2, 4 bytes); returns why it was
   * refused (the address is then unchanged), or undefined. An address beyond 2^53 (a
   * guest can write one in two halves) becomes {@link UNUSABLE_RING_ADDR}, which no RAM
   * contains: the queue then fails at activation instead of using a wrong address.
   */
  setAddress(field: RingField, addr: number): string | undefined {
    if (Number.isInteger(addr) && addr > Number.MAX_SAFE_INTEGER) addr = UNUSABLE_RING_ADDR;
    const why = ringAddrProblem(field, addr);
    if (why) return why;
    if (field === "descAddr") this.#descAddr = addr;
    else if (field === "availAddr") this.#availAddr = addr;
    else this.#usedAddr = addr;
    return undefined;
  }

  /** QueueReady (or a legacy QueuePFN): the driver enables or disables the queue. */
  setReady(ready: boolean): void {
    this.#ready = ready;
  }

  /** Back to the reset state (size = max, not ready, zero addresses and indices). */
  reset(): void {
    this.#size = this.maxSize;
    this.#ready = false;
    this.#descAddr = this.#availAddr = this.#usedAddr = 0;
    this.nextAvail = this.nextUsed = this.signalledUsed = 0;
    this.signalledUsedValid = false;
    this.eventIdx = this.indirect = false;
  }

  /**
   * Why the queue cannot be used with `mem`, or undefined when it can: size a power of
   * two up to the max, rings aligned (16, 2, 4) and wholly inside guest RAM.
   */
  invalidReason(mem: RamMap): string | undefined {
    return queuePlacementError(this, this.maxSize, mem);
  }

  /** The driver's avail.idx. */
  availIdx(mem: DeviceMemory): number {
    return mem.loadU16Atomic(this.#availAddr + 2);
  }

  /** How many chains are waiting; throws QueueError when the driver claims more than size. */
  pending(mem: DeviceMemory): number {
    const n = wrap16(this.availIdx(mem) - this.nextAvail);
    if (n > this.#size) {
      throw new QueueError(
        `avail index is ${n} entries ahead of the device, more than the size ${this.#size}`,
      );
    }
    return n;
  }

  /**
   * Takes the next chain from the avail ring, or null when there is none. Throws
   * {@link QueueError} when the ring itself is broken (index jump, head out of range).
   */
  pop(mem: DeviceMemory): DescriptorChain | null {
    const head = this.#take(mem);
    if (head < 0) return null;
    return this.#walk(mem, {
      head,
      readable: [],
      writable: [],
      readableLen: 0,
      writableLen: 0,
    }, undefined);
  }

  /**
   * Like {@link pop}, but fills `into` in place (no allocation once its arrays have grown);
   * false when there is no chain. `into` describes the chain only until its next fill.
   */
  popInto(mem: DeviceMemory, into: ScratchChain): boolean {
    const head = this.#take(mem);
    if (head < 0) return false;
    into.reset(head);
    this.#walk(mem, into, into.pool);
    return true;
  }

  /** The next avail ring entry's head (and moves past it), or -1 when there is none. */
  #take(mem: DeviceMemory): number {
    if (this.pending(mem) === 0) return -1;
    const slot = this.nextAvail & (this.#size - 1);
    const head = mem.readU16(this.#availAddr + 4 + 2 * slot);
    if (head >= this.#size) {
      throw new QueueError(
        `avail ring entry ${slot} names descriptor ${head}, beyond size ${this.#size}`,
      );
    }
    this.nextAvail = wrap16(this.nextAvail + 1);
    return head;
  }

  /** Returns `n` chains to the avail ring (the device took them but will not serve them now). */
  undoPop(n = 1): void {
    this.nextAvail = wrap16(this.nextAvail - n);
  }

  /**
   * Follows the chain from `chain.head` into `chain` (empty), its buffer objects taken from
   * `pool` when given (reused) or made fresh.
   */
  #walk(mem: DeviceMemory, chain: DescriptorChain, pool: Buffer[] | undefined): DescriptorChain {
    let table = this.#descAddr, tableSize = this.#size, index = chain.head;
    let inIndirect = false, ttl = this.#size, total = 0, used = 0;
    for (;;) {
      if (ttl-- <= 0) return fail(chain, "chain longer than its table (a loop?)");
      if (index >= tableSize) {
        return fail(chain, `next index ${index} beyond table size ${tableSize}`);
      }
      const d = table + 16 * index;
      const addr = mem.readU64Number(d);
      const len = mem.readU32(d + 8);
      const flags = mem.readU16(d + 12);
      const next = mem.readU16(d + 14);
      if (flags & DESC_F.INDIRECT) {
        if (!this.indirect) {
          return fail(chain, "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
        }
        if (inIndirect) return fail(chain, "indirect descriptor inside an indirect table");
        if (flags & DESC_F.NEXT) return fail(chain, "indirect descriptor with NEXT set");
        if (len === 0 || len % 16) {
          return fail(chain, `indirect table length ${len} is not a multiple of 16`);
        }
        const entries = len / 16;
        if (entries > this.#size) {
          return fail(chain, `indirect table of ${entries} entries exceeds size ${this.#size}`);
        }
        if (!mem.contains(addr, len)) return fail(chain, "indirect table outside guest RAM");
        table = addr;
        tableSize = entries;
        index = 0;
        ttl = entries;
        inIndirect = true;
        continue;
      }
      if (!mem.contains(addr, len)) {
        return fail(chain, `buffer 0x${addr.toString(16)}+${len} outside guest RAM`);
      }
      total += len;
      if (total >= MAX_CHAIN_BYTES) return fail(chain, "chain longer than 4 GiB");
      const b = pool ? pooled(pool, used++, addr, len) : { addr, len };
      if (flags & DESC_F.WRITE) {
        chain.writable.push(b);
        chain.writableLen += len;
      } else {
        if (chain.writable.length) return fail(chain, "readable buffer after a writable one");
        chain.readable.push(b);
        chain.readableLen += len;
      }
      if (!(flags & DESC_F.NEXT)) return chain;
      index = next;
    }
  }

  /** Puts `head` in the used ring with `len` bytes written, and publishes used.idx. */
  addUsed(mem: DeviceMemory, head: number, len: number): void {
    const slot = this.nextUsed & (this.#size - 1);
    const e = this.#usedAddr + 4 + 8 * slot;
    mem.writeU32(e, head);
    mem.writeU32(e + 4, len);
    this.nextUsed = wrap16(this.nextUsed + 1);
    // The element is written before the index (Atomics orders the two stores).
    mem.storeU16Atomic(this.#usedAddr + 2, this.nextUsed);
  }

  /**
   * Whether the driver wants an interrupt for what was added since the last call: with
   * event index, `vring_need_event(used_event, used idx, used idx at last decision)`;
   * without, unless the driver set VRING_AVAIL_F_NO_INTERRUPT.
   */
  needsInterrupt(mem: DeviceMemory): boolean {
    if (!this.eventIdx) {
      return (mem.loadU16Atomic(this.#availAddr) & VRING_AVAIL_F_NO_INTERRUPT) === 0;
    }
    const old = this.signalledUsed, valid = this.signalledUsedValid;
    this.signalledUsed = this.nextUsed;
    this.signalledUsedValid = true;
    if (!valid) return true;
    const usedEvent = mem.loadU16Atomic(this.#availAddr + 4 + 2 * this.#size);
    return vringNeedEvent(usedEvent, this.nextUsed, old);
  }

  /**
   * Asks the driver not to notify (VRING_USED_F_NO_NOTIFY; with event index the device
   * simply stops moving avail_event).
   */
  disableNotification(mem: DeviceMemory): void {
    if (this.eventIdx) return;
    mem.storeU16Atomic(this.#usedAddr, VRING_USED_F_NO_NOTIFY);
  }

  /**
   * Asks the driver to notify for the next buffer (clears NO_NOTIFY, or publishes
   * avail_event = next avail), then re-checks: returns true when buffers arrived in the
   * meantime, so the caller must drain again (no notification is lost).
   */
  enableNotification(mem: DeviceMemory): boolean {
    if (this.eventIdx) mem.storeU16Atomic(this.#usedAddr + 4 + 8 * this.#size, this.nextAvail);
    else mem.storeU16Atomic(this.#usedAddr, 0);
    return this.availIdx(mem) !== this.nextAvail;
  }

  /** The queue as plain data. */
  save(): QueueState {
    return {
      size: this.#size,
      ready: this.#ready,
      descAddr: this.#descAddr,
      availAddr: this.#availAddr,
      usedAddr: this.#usedAddr,
      nextAvail: this.nextAvail,
      nextUsed: this.nextUsed,
      signalledUsed: this.signalledUsed,
      signalledUsedValid: this.signalledUsedValid,
      eventIdx: this.eventIdx,
      indirect: this.indirect,
    };
  }

  /**
   * Rebuilds the queue from saved state, which is untrusted: every field is checked the
   * way the driver's register writes are, and a ready queue must be valid in `mem`.
   */
  restore(s: QueueState, mem: RamMap): void {
    this.#apply(checkQueueState(s, this.maxSize, mem));
  }

  /** Applies a checked state ({@link checkQueueState}); all fields at once. */
  #apply(s: QueueState): void {
    this.#size = s.size;
    this.#ready = s.ready;
    this.#descAddr = s.descAddr;
    this.#availAddr = s.availAddr;
    this.#usedAddr = s.usedAddr;
    this.nextAvail = s.nextAvail;
    this.nextUsed = s.nextUsed;
    this.signalledUsed = s.signalledUsed;
    this.signalledUsedValid = s.signalledUsedValid;
    this.eventIdx = s.eventIdx;
    this.indirect = s.indirect;
  }

  /** Validates a saved queue for this queue (see {@link checkQueueState}). */
  static check(s: unknown, maxSize: number, ram: RamMap): QueueState {
    return checkQueueState(s, maxSize, ram);
  }
}

function fail(chain: DescriptorChain, error: string): DescriptorChain {
  chain.error = error;
  return chain;
}

/** A position in a list of guest buffers, shared by the chain reader and writer. */
class ChainCursor {
  #bufs: Buffer[];
  #i = 0;
  #off = 0;
  #left: number;

  constructor(bufs: Buffer[], total: number) {
    this.#bufs = bufs;
    this.#left = total;
  }

  /** Bytes left. */
  get remaining(): number {
    return this.#left;
  }

  /** Moves over `n` bytes, calling `fn(guest address, bytes done before, length)` per piece. */
  protected advance(
    n: number,
    what: string,
    fn: (addr: number, done: number, len: number) => void,
  ): void {
    if (n > this.#left) {
      throw new RangeError(`Cannot ${what} ${n} bytes: the chain has ${this.#left} left`);
    }
    let done = 0;
    while (done < n) {
      const b = this.#bufs[this.#i]!;
      const take = Math.min(n - done, b.len - this.#off);
      fn(b.addr + this.#off, done, take);
      done += take;
      this.#off += take;
      if (this.#off === b.len) {
        this.#i++;
        this.#off = 0;
      }
    }
    this.#left -= n;
  }
}

/** Copies bytes out of a chain's readable buffers, in order. */
export class ChainReader extends ChainCursor {
  constructor(readonly mem: DeviceMemory, chain: DescriptorChain) {
    super(chain.readable, chain.readableLen);
  }

  /** Reads exactly `n` bytes; throws RangeError when fewer remain. */
  read(n: number): Uint8Array {
    const out = new Uint8Array(n);
    this.readInto(out);
    return out;
  }

  /** Fills `dst` (all of it must be available). */
  readInto(dst: Uint8Array): void {
    this.advance(dst.byteLength, "read", (a, d, n) => this.mem.readInto(a, dst.subarray(d, d + n)));
  }

  /** Skips `n` bytes. */
  skip(n: number): void {
    this.advance(n, "skip", () => {});
  }
}

/** Copies bytes into a chain's writable buffers, in order. */
export class ChainWriter extends ChainCursor {
  /** Bytes written so far (the length to report in the used ring). */
  written = 0;

  constructor(readonly mem: DeviceMemory, chain: DescriptorChain) {
    super(chain.writable, chain.writableLen);
  }

  /** Writes all of `src`; throws RangeError (writing nothing) when it does not fit. */
  write(src: Uint8Array): void {
    this.advance(src.byteLength, "write", (a, d, n) => this.mem.write(a, src.subarray(d, d + n)));
    this.written += src.byteLength;
  }
}
