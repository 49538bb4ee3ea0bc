/**
 * virtio-blk (device type 2) over a {@link DiskImage}: IN, OUT, FLUSH, GET_ID, DISCARD and
 * WRITE_ZEROES with the matching feature bits; capacity, blk_size and seg_max in config.
 * A request the disk finishes before returning (data the host's page cache serves) is used
 * in the same pass over the queue; the others run concurrently, each awaiting its own disk
 * I/O, so the device thread's event loop never waits for the disk. A host I/O error fails
 * only that request (VIRTIO_BLK_S_IOERR), and a request that reaches past the end of the
 * disk fails before any I/O is done. Reads (or writes) of adjacent sectors that one pass
 * over the queue takes, one after another, are merged into one disk call where the disk
 * offers {@link DiskImage.transferGuestNow} (what it does not move at once goes request by
 * request); any other request moves the merge first, so requests start in ring order.
 *
 * @module
 */

import { bit, DEVICE_ID, F } from "../virtio/constants.ts";
import type { DeviceContext, VirtioBackend } from "../virtio/device.ts";
import type { DeviceMemory } from "../memory/guest_memory.ts";
import {
  type Buffer,
  bufferViews,
  ChainReader,
  copyChain,
  type DescriptorChain,
  emptyArray,
  ScratchChain,
} from "../virtio/queue.ts";
import { serveQueue } from "../virtio/serve.ts";

/** What the block device reads and writes: a disk image, however it is stored. */
export interface DiskImage {
  /** Size in bytes (a multiple of 512). */
  readonly size: number;
  /** Refuse writes; the device offers VIRTIO_BLK_F_RO. */
  readonly readOnly: boolean;
  /** Fills `dst` from `offset`; throws on error or end of file. */
  read(dst: Uint8Array, offset: number): Promise<void>;
  /** Writes all of `src` at `offset`; throws on error. */
  write(src: Uint8Array, offset: number): Promise<void>;
  /**
   * Optional: fills `dsts` in order from `offset` as one operation (a request whose data
   * spans many guest pages); without it the device reads each piece with {@link read}.
   */
  readv?(dsts: readonly Uint8Array[], offset: number): Promise<void>;
  /** Optional: writes `srcs` in order from `offset` as one operation, like {@link readv}. */
  writev?(srcs: readonly Uint8Array[], offset: number): Promise<void>;
  /**
   * Optional: reads [skip, skip+len) of the guest buffers `bufs` (their concatenation) from
   * `offset`, or writes it there with `write`. Returns undefined when all of it was done before
   * returning, else a promise for the end; errors throw or reject. The device uses it for reads
   * and writes when present: no views or promise per request the host serves at once. `bufs`
   * and its objects are the device's scratch, valid only during the call.
   */
  transferGuest?(
    mem: DeviceMemory,
    bufs: readonly Buffer[],
    skip: number,
    len: number,
    offset: number,
    write: boolean,
  ): Promise<void> | undefined;
  /**
   * Optional: moves as much of the first `len` bytes of the guest buffers `bufs` (their
   * concatenation) as the host can at once, on the calling thread, from the disk at `offset`
   * (or to it with `write`): the bytes moved from the start, 0 when none could be. It never
   * waits for the disk and reports no errors: what it did not move the device moves request by
   * request, whose own transfers report them. With it, the device serves the requests for
   * adjacent sectors that one notification brings (at most {@link MERGE_MAX_BYTES} and
   * {@link MERGE_MAX_SEGMENTS}) with one call. `bufs` is the device's scratch.
   */
  transferGuestNow?(
    mem: DeviceMemory,
    bufs: readonly Buffer[],
    len: number,
    offset: number,
    write: boolean,
  ): number;
  /** Makes written data durable (fdatasync). */
  flush(): Promise<void>;
  /** Lets the host drop [offset, offset+len) (the data may read back as anything). */
  discard(offset: number, len: number): Promise<void>;
  /** Makes [offset, offset+len) read back as zeros. */
  writeZeroes(offset: number, len: number): Promise<void>;
}

/** Feature bits of virtio-blk. */
export const BLK_F = {
  SIZE_MAX: 1n,
  SEG_MAX: 2n,
  RO: 5n,
  BLK_SIZE: 6n,
  FLUSH: 9n,
  DISCARD: 13n,
  WRITE_ZEROES: 14n,
} as const;

/** Request types. */
export const BLK_T = { IN: 0, OUT: 1, FLUSH: 4, GET_ID: 8, DISCARD: 11, WRITE_ZEROES: 13 } as const;
/** Request status values. */
export const BLK_S = { OK: 0, IOERR: 1, UNSUPP: 2 } as const;

/**
 * The most bytes, and guest buffers, that requests merged into one
 * {@link DiskImage.transferGuestNow} call cover (a disk takes at least this much at once).
 */
export const MERGE_MAX_BYTES = 1 << 20, MERGE_MAX_SEGMENTS = 256;

const SECTOR = 512;
const HEADER = 16;
const ID_BYTES = 20;
const SEGMENT = 16; // struct virtio_blk_discard_write_zeroes
const MAX_DISCARD_SECTORS = 0x3f_ffff;
const MAX_DISCARD_SEGMENTS = 16;
const CONFIG_SIZE = 60;

/** Options of {@link BlockDevice}. */
export interface BlockOptions {
  queueSize?: number;
  /** The serial returned by GET_ID (up to 20 bytes). */
  id?: string;
  /** Called when a request fails on the host (for logs). */
  onError?: (message: string) => void;
}

/** A request in the merge: its head, status byte, data length and end in the merge's buffers. */
interface Merged {
  head: number;
  at: number | undefined;
  len: number;
  end: number;
}

/** A failure of the device's queue itself while it moved a merge (not of one request). */
class DeviceFault extends Error {}

class RequestError extends Error {
  constructor(readonly status: number, message: string) {
    super(message);
  }
}

/**
 * The virtio-blk device model.
 *
 * @example
 * ```ts
 * import { BlockDevice, type DiskImage } from "./block.ts";
 * const disk: DiskImage = {
 *   size: 1 << 20, readOnly: true,
 *   read: async (d) => { d.fill(0); }, write: async () => {}, flush: async () => {},
 *   discard: async () => {}, writeZeroes: async () => {},
 * };
 * const blk = new BlockDevice(disk);
 * console.assert(blk.capacity === 2048);
 * ```
 */
export class BlockDevice implements VirtioBackend {
  readonly deviceType = DEVICE_ID.BLOCK;
  readonly queueMaxSizes: number[];
  readonly features: bigint;
  readonly configSize = CONFIG_SIZE;
  readonly disk: DiskImage;
  /** Capacity in 512-byte sectors. */
  readonly capacity: number;
  #config = new Uint8Array(CONFIG_SIZE);
  #id: Uint8Array;
  #ctx: DeviceContext | undefined;
  #inflight = 0;
  #epoch = 0;
  /** Each chain taken from the queue is filled into this one (no allocation per request). */
  readonly #scratch = new ScratchChain();
  /**
   * The merge: reads (or writes) for adjacent sectors taken in this pass over the queue, not
   * yet moved. Its requests, its data buffers in order, their total and where it starts on
   * the disk; the objects in the arrays are reused from one merge to the next.
   */
  readonly #merged: Merged[] = [];
  #mergedCount = 0;
  readonly #mergedBufs: Buffer[] = [];
  readonly #bufPool: Buffer[] = [];
  #mergedLen = 0;
  #mergedOffset = 0;
  #mergedWrite = false;
  /** Used entries were added by a merge since the end of the last pass. */
  #mergedUsed = false;
  #onError: (m: string) => void;
  /** Completed requests by type, for tests and stats. */
  readonly stats = { requests: 0, errors: 0, bytesRead: 0, bytesWritten: 0 };

  constructor(disk: DiskImage, opts: BlockOptions = {}) {
    if (disk.size % SECTOR) {
      throw new RangeError(`Cannot use disk: ${disk.size} bytes is not a multiple of 512`);
    }
    this.disk = disk;
    this.capacity = disk.size / SECTOR;
    const qs = opts.queueSize ?? 256;
    this.queueMaxSizes = [qs];
    this.#onError = opts.onError ?? (() => {});
    this.#id = new TextEncoder().encode((opts.id ?? "denovm-disk").slice(0, ID_BYTES));
    let f = bit(F.EVENT_IDX) | bit(F.INDIRECT_DESC) | bit(BLK_F.SEG_MAX) | bit(BLK_F.BLK_SIZE) |
      bit(BLK_F.FLUSH);
    if (disk.readOnly) f |= bit(BLK_F.RO);
    else f |= bit(BLK_F.DISCARD) | bit(BLK_F.WRITE_ZEROES);
    this.features = f;
    const v = new DataView(this.#config.buffer);
    v.setBigUint64(0, BigInt(this.capacity), true); // capacity
    v.setUint32(12, qs - 2, true); // seg_max: the queue minus header and status
    v.setUint32(20, SECTOR, true); // blk_size
    v.setUint16(34, 1, true); // num_queues
    v.setUint32(36, MAX_DISCARD_SECTORS, true);
    v.setUint32(40, MAX_DISCARD_SEGMENTS, true);
    v.setUint32(44, 1, true); // discard_sector_alignment
    v.setUint32(48, MAX_DISCARD_SECTORS, true);
    v.setUint32(52, MAX_DISCARD_SEGMENTS, true);
  }

  readConfig(offset: number, data: Uint8Array): void {
    data.set(this.#config.subarray(offset, offset + data.byteLength));
  }

  writeConfig(): void {
    // writeback (CONFIG_WCE) is not offered: the config space is read-only.
  }

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
  }

  reset(): void {
    // Requests still running finish their I/O but write no used entry (new epoch).
    this.#epoch++;
    this.#inflight = 0;
    this.#ctx = undefined;
    this.#dropMerge();
    this.#mergedUsed = false;
  }

  inflight(): number {
    return this.#inflight;
  }

  processQueue(index: number): void {
    const ctx = this.#ctx;
    if (!ctx) return;
    try {
      serveQueue(
        ctx,
        index,
        (chain) => this.#start(ctx, index, chain),
        this.#scratch,
        () => this.#endPass(ctx, index),
      );
    } finally {
      // A pass cut short (a broken ring threw) still finishes the requests it merged, and
      // signals what it returned.
      if ((this.#mergedCount > 0 || this.#mergedUsed) && this.#endPass(ctx, index)) {
        ctx.signalUsed(index);
      }
    }
  }

  /** The end of a pass over the queue: moves the merge; whether used entries were added. */
  #endPass(ctx: DeviceContext, index: number): boolean {
    this.#flushMerge(ctx, index);
    const used = this.#mergedUsed;
    this.#mergedUsed = false;
    return used;
  }

  /**
   * Starts one request. When it is already done (a bad request, or data the disk moved before
   * returning) its status byte is written and the used length returned for the queue loop to
   * publish; otherwise undefined: it joined the merge, which returns it at the end of the
   * pass, or {@link #finish} returns it when its I/O ends.
   */
  #start(ctx: DeviceContext, index: number, chain: DescriptorChain): number | undefined {
    let r: number | Promise<number> | null;
    try {
      r = this.#serve(ctx, index, chain);
    } catch (e) {
      if (e instanceof DeviceFault) throw e; // not this request's: the queue is broken
      return this.#complete(ctx, chain, this.#failure(e), 0);
    }
    if (r === null) return undefined;
    if (typeof r === "number") return this.#complete(ctx, chain, BLK_S.OK, r);
    // `chain` is the queue loop's scratch, refilled by the next chain: keep what is needed.
    this.#await(ctx, index, chain.head, chain.error ? undefined : statusByte(chain), r);
    return undefined;
  }

  /** Returns request `head` (status byte at `at`) when `pending` settles. */
  #await(
    ctx: DeviceContext,
    index: number,
    head: number,
    at: number | undefined,
    pending: Promise<number>,
  ): void {
    const epoch = this.#epoch;
    this.#inflight++;
    pending.then(
      (len) => this.#finish(ctx, index, head, at, epoch, BLK_S.OK, len),
      (e) => this.#finish(ctx, index, head, at, epoch, this.#failure(e), 0),
    );
  }

  /** Counts and reports a failed request; its status. */
  #failure(e: unknown): number {
    this.stats.errors++;
    this.#onError(`virtio-blk request failed: ${e instanceof Error ? e.message : String(e)}`);
    return e instanceof RequestError ? e.status : BLK_S.IOERR;
  }

  /** Writes a finished request's status byte; the length to put in the used ring. */
  #complete(ctx: DeviceContext, chain: DescriptorChain, status: number, dataLen: number): number {
    return this.#completeAt(ctx, chain.error ? undefined : statusByte(chain), status, dataLen);
  }

  /** Writes `status` at `at` (nowhere when undefined); the length to put in the used ring. */
  #completeAt(ctx: DeviceContext, at: number | undefined, status: number, dataLen: number): number {
    this.stats.requests++;
    if (at === undefined) return 0; // nowhere to put a status
    ctx.mem.writeU8(at, status);
    return dataLen + 1;
  }

  /** Returns a request that finished later to the driver (unless the device was reset since). */
  #finish(
    ctx: DeviceContext,
    index: number,
    head: number,
    at: number | undefined,
    epoch: number,
    status: number,
    dataLen: number,
  ): void {
    if (epoch !== this.#epoch) return; // the device was reset meanwhile
    this.#inflight--;
    ctx.guard(`virtio-blk queue ${index}`, () => {
      const len = this.#completeAt(ctx, at, status, dataLen);
      ctx.queues[index]!.addUsed(ctx.mem, head, len);
      ctx.signalUsed(index);
    });
  }

  /**
   * Serves one request: the data bytes written to the guest, at once or as a promise, or null
   * when it joined the merge. Reads and writes finish before returning when the disk can do
   * them at once; a bad request throws. Any other request moves the merge first, so requests
   * start in the order the driver made them available.
   */
  #serve(
    ctx: DeviceContext,
    index: number,
    chain: DescriptorChain,
  ): number | Promise<number> | null {
    if (chain.error) throw new RequestError(BLK_S.IOERR, `malformed chain: ${chain.error}`);
    if (chain.writableLen < 1) throw new RequestError(BLK_S.IOERR, "no status byte");
    if (chain.readableLen < HEADER) throw new RequestError(BLK_S.IOERR, "request header too short");
    const mem = ctx.mem, first = chain.readable[0]!;
    let type: number, sector: number;
    if (first.len >= HEADER) {
      // The usual layout: the whole header in the first buffer (read without a copy).
      type = mem.readU32(first.addr);
      sector = mem.readU64Number(first.addr + 8);
    } else {
      const h = new DataView(new ChainReader(mem, chain).read(HEADER).buffer);
      type = h.getUint32(0, true);
      sector = Number(h.getBigUint64(8, true));
    }
    const inLen = chain.writableLen - 1; // data the device may write (before the status byte)
    const outLen = chain.readableLen - HEADER; // data the driver sent (after the header)
    if (type === BLK_T.IN) {
      const off = this.#range(sector, inLen);
      if (this.#merge(ctx, index, chain, chain.writable, 0, inLen, off, false)) return null;
      return this.#move(mem, chain.writable, 0, inLen, off, false);
    }
    if (type === BLK_T.OUT) {
      if (this.disk.readOnly) throw new RequestError(BLK_S.IOERR, "write to a read-only disk");
      const off = this.#range(sector, outLen);
      if (this.#merge(ctx, index, chain, chain.readable, HEADER, outLen, off, true)) return null;
      return this.#move(mem, chain.readable, HEADER, outLen, off, true);
    }
    this.#flushMerge(ctx, index);
    return this.#serveOther(ctx, copyChain(chain), type, inLen, outLen);
  }

  /**
   * Adds a read or write of [skip, skip+len) of `bufs` at disk offset `off` to the merge when
   * the disk can take merged transfers: true when it joined. One that cannot follow the merge
   * (the other direction, not adjacent, past the limits) moves the merge first; one that
   * cannot join any (empty, or larger than a merge) is served on its own (false).
   */
  #merge(
    ctx: DeviceContext,
    index: number,
    chain: DescriptorChain,
    bufs: readonly Buffer[],
    skip: number,
    len: number,
    off: number,
    write: boolean,
  ): boolean {
    if (this.disk.transferGuestNow === undefined) return false;
    let pieces = 0;
    for (let i = 0, pos = 0; i < bufs.length && pos < skip + len; i++) {
      const b = bufs[i]!;
      if (pos + b.len > skip) pieces++;
      pos += b.len;
    }
    const fits = len > 0 && len <= MERGE_MAX_BYTES && pieces <= MERGE_MAX_SEGMENTS;
    if (
      this.#mergedCount > 0 &&
      (!fits || write !== this.#mergedWrite || off !== this.#mergedOffset + this.#mergedLen ||
        this.#mergedLen + len > MERGE_MAX_BYTES ||
        this.#mergedBufs.length + pieces > MERGE_MAX_SEGMENTS)
    ) {
      this.#flushMerge(ctx, index);
    }
    if (!fits) return false;
    if (this.#mergedCount === 0) {
      this.#mergedWrite = write;
      this.#mergedOffset = off;
    }
    // The data pieces, trimmed to [skip, skip+len), into reused objects.
    const out = this.#mergedBufs, pool = this.#bufPool, end = skip + len;
    for (let i = 0, pos = 0; i < bufs.length && pos < end; i++) {
      const b = bufs[i]!;
      const from = Math.max(skip, pos), to = Math.min(end, pos + b.len);
      pos += b.len;
      if (to <= from) continue;
      const k = out.length;
      const piece = pool[k] ?? (pool[k] = { addr: 0, len: 0 });
      piece.addr = b.addr + (from - (pos - b.len));
      piece.len = to - from;
      out.push(piece);
    }
    const n = this.#mergedCount++;
    const m = this.#merged[n] ?? (this.#merged[n] = { head: 0, at: undefined, len: 0, end: 0 });
    m.head = chain.head;
    m.at = statusByte(chain);
    m.len = len;
    m.end = out.length;
    this.#mergedLen += len;
    return true;
  }

  /**
   * Moves the merge with one {@link DiskImage.transferGuestNow} call and returns its requests
   * (status OK); a request the call did not move in full is served on its own, as if it had
   * not been merged (a read or write of the same data again is harmless).
   */
  #flushMerge(ctx: DeviceContext, index: number): void {
    const count = this.#mergedCount;
    if (count === 0) return;
    try {
      this.#moveMerge(ctx, index, count);
    } catch (e) {
      // Host errors are handled per request inside: this is the used ring or guest memory
      // failing, the device's fault (DEVICE_NEEDS_RESET), not the request being served.
      throw e instanceof DeviceFault
        ? e
        : new DeviceFault(e instanceof Error ? e.message : String(e));
    } finally {
      this.#dropMerge();
    }
  }

  #moveMerge(ctx: DeviceContext, index: number, count: number): void {
    const mem = ctx.mem, q = ctx.queues[index]!, write = this.#mergedWrite;
    const bufs = this.#mergedBufs, offset = this.#mergedOffset;
    let moved = 0;
    try {
      moved = this.disk.transferGuestNow!(mem, bufs, this.#mergedLen, offset, write);
    } catch {
      moved = 0; // each request's own transfer reports the error
    }
    let pos = 0, first = 0;
    for (let i = 0; i < count; i++) {
      const m = this.#merged[i]!;
      if (pos + m.len <= moved) {
        q.addUsed(mem, m.head, this.#completeAt(ctx, m.at, BLK_S.OK, this.#moved(write, m.len)));
        this.#mergedUsed = true;
      } else {
        // Its own pieces, copied: the merge's objects are reused by the next one.
        const own = bufs.slice(first, m.end).map((b) => ({ addr: b.addr, len: b.len }));
        let r: number | Promise<number>, status: number = BLK_S.OK;
        try {
          r = this.#move(mem, own, 0, m.len, offset + pos, write);
        } catch (e) {
          status = this.#failure(e);
          r = 0;
        }
        if (typeof r === "number") {
          q.addUsed(mem, m.head, this.#completeAt(ctx, m.at, status, r));
          this.#mergedUsed = true;
        } else this.#await(ctx, index, m.head, m.at, r);
      }
      pos += m.len;
      first = m.end;
    }
  }

  /** Empties the merge (its objects kept for the next). */
  #dropMerge(): void {
    this.#mergedCount = 0;
    this.#mergedLen = 0;
    emptyArray(this.#mergedBufs);
  }

  /**
   * Moves [skip, skip+len) of the guest buffers `bufs` from the disk at `off` (or to it with
   * `write`): the data bytes written to the guest, at once or as a promise.
   */
  #move(
    mem: DeviceMemory,
    bufs: readonly Buffer[],
    skip: number,
    len: number,
    off: number,
    write: boolean,
  ): number | Promise<number> {
    const disk = this.disk;
    const pending = disk.transferGuest
      ? disk.transferGuest(mem, bufs, skip, len, off, write)
      : this.#transfer(bufferViews(mem, bufs, skip, len), off, write);
    if (pending === undefined) return this.#moved(write, len);
    return pending.then(() => this.#moved(write, len));
  }

  #moved(write: boolean, len: number): number {
    if (write) {
      this.stats.bytesWritten += len;
      return 0;
    }
    this.stats.bytesRead += len;
    return len;
  }

  /** FLUSH, GET_ID, DISCARD, WRITE_ZEROES and unknown types. */
  async #serveOther(
    ctx: DeviceContext,
    chain: DescriptorChain,
    type: number,
    inLen: number,
    outLen: number,
  ): Promise<number> {
    switch (type) {
      case BLK_T.FLUSH:
        await this.disk.flush();
        return 0;
      case BLK_T.GET_ID: {
        const n = Math.min(ID_BYTES, inLen);
        const id = new Uint8Array(ID_BYTES);
        id.set(this.#id);
        let done = 0;
        for (const v of bufferViews(ctx.mem, chain.writable, 0, n)) {
          v.set(id.subarray(done, done + v.byteLength));
          done += v.byteLength;
        }
        return n;
      }
      case BLK_T.DISCARD:
      case BLK_T.WRITE_ZEROES: {
        const discard = type === BLK_T.DISCARD;
        if (this.disk.readOnly) throw new RequestError(BLK_S.IOERR, "discard on a read-only disk");
        if (outLen === 0 || outLen % SEGMENT || outLen / SEGMENT > MAX_DISCARD_SEGMENTS) {
          throw new RequestError(
            BLK_S.UNSUPP,
            `bad discard/write-zeroes payload of ${outLen} bytes`,
          );
        }
        const r = new ChainReader(ctx.mem, chain);
        r.skip(HEADER);
        const segs = [];
        for (let i = 0; i < outLen / SEGMENT; i++) {
          const s = new DataView(r.read(SEGMENT).buffer);
          const start = Number(s.getBigUint64(0, true));
          const count = s.getUint32(8, true), flags = s.getUint32(12, true);
          if ((discard && flags !== 0) || (flags & ~1) !== 0) {
            throw new RequestError(
              BLK_S.UNSUPP,
              `unsupported segment flags 0x${flags.toString(16)}`,
            );
          }
          if (count > MAX_DISCARD_SECTORS) throw new RequestError(BLK_S.IOERR, "segment too large");
          segs.push({ off: this.#range(start, count * SECTOR), len: count * SECTOR });
        }
        for (const s of segs) {
          if (discard) await this.disk.discard(s.off, s.len);
          else await this.disk.writeZeroes(s.off, s.len);
        }
        return 0;
      }
      default:
        throw new RequestError(BLK_S.UNSUPP, `unsupported request type ${type}`);
    }
  }

  /**
   * Reads the disk into (or writes it from) the guest views, in order from `off`, for a disk
   * without {@link DiskImage.transferGuest}: one vectored call where the disk has one and there are
   * several pieces.
   */
  async #transfer(views: Uint8Array[], off: number, write: boolean): Promise<void> {
    const vectored = write ? this.disk.writev : this.disk.readv;
    if (vectored && views.length > 1) {
      await vectored.call(this.disk, views, off);
      return;
    }
    let pos = off;
    for (const view of views) {
      await (write ? this.disk.write(view, pos) : this.disk.read(view, pos));
      pos += view.byteLength;
    }
  }

  /** The byte offset of `sector`, after checking [sector, +len) is whole sectors on the disk. */
  #range(sector: number, len: number): number {
    if (len % SECTOR) throw new RequestError(BLK_S.IOERR, `length ${len} is not a multiple of 512`);
    if (
      !Number.isSafeInteger(sector) || sector > this.capacity ||
      len / SECTOR > this.capacity - sector
    ) {
      throw new RequestError(
        BLK_S.IOERR,
        `sectors ${sector}+${len / SECTOR} beyond the disk (${this.capacity})`,
      );
    }
    return sector * SECTOR;
  }
}

/**
 * The guest address of the status byte: the last byte of the chain's writable area
 * (zero-length descriptors hold no byte, so they are skipped), or undefined when the chain
 * has no writable byte at all.
 */
export function statusByte(chain: DescriptorChain): number | undefined {
  for (let i = chain.writable.length - 1; i >= 0; i--) {
    const b = chain.writable[i]!;
    if (b.len > 0) return b.addr + b.len - 1;
  }
  return undefined;
}

/** A disk held in memory (tests, scratch disks). */
export class MemoryDisk implements DiskImage {
  readonly bytes: Uint8Array;
  readonly size: number;
  flushes = 0;
  /** Make the next I/O fail (tests of host errors). */
  failNext = false;

  constructor(size: number, readonly readOnly = false) {
    this.bytes = new Uint8Array(size);
    this.size = size;
  }

  #check(): void {
    if (this.failNext) {
      this.failNext = false;
      throw new Error("injected I/O error");
    }
  }

  read(dst: Uint8Array, offset: number): Promise<void> {
    this.#check();
    if (offset + dst.byteLength > this.size) return Promise.reject(new Error("read past the end"));
    dst.set(this.bytes.subarray(offset, offset + dst.byteLength));
    return Promise.resolve();
  }

  write(src: Uint8Array, offset: number): Promise<void> {
    this.#check();
    if (offset + src.byteLength > this.size) return Promise.reject(new Error("write past the end"));
    this.bytes.set(src, offset);
    return Promise.resolve();
  }

  flush(): Promise<void> {
    this.#check();
    this.flushes++;
    return Promise.resolve();
  }

  discard(offset: number, len: number): Promise<void> {
    return this.writeZeroes(offset, len);
  }

  writeZeroes(offset: number, len: number): Promise<void> {
    this.#check();
    this.bytes.fill(0, offset, offset + len);
    return Promise.resolve();
  }
}
