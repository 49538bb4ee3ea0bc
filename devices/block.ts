/**
 * virtio-blk (device type 2) over a {@link DiskImage}: IN, OUT, FLUSH, GET_ID, DISCARD and
 * WRITE_ZEROES with the matching feature bits; capacity, blk_size and seg_max in config.
 * A request the disk finishes before returning (data the host's page cache serves) is used
 * in the same pass over the queue; the others run concurrently, each awaiting its own disk
 * I/O, so the device thread's event loop never waits for the disk. A host I/O error fails
 * only that request (VIRTIO_BLK_S_IOERR), and a request that reaches past the end of the
 * disk fails before any I/O is done.
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
  }

  inflight(): number {
    return this.#inflight;
  }

  processQueue(index: number): void {
    const ctx = this.#ctx;
    if (!ctx) return;
    serveQueue(ctx, index, (chain) => this.#start(ctx, index, chain), this.#scratch);
  }

  /**
   * Starts one request. When it is already done (a bad request, or data the disk moved before
   * returning) its status byte is written and the used length returned for the queue loop to
   * publish; otherwise undefined, and {@link #finish} returns the chain when the I/O ends.
   */
  #start(ctx: DeviceContext, index: number, chain: DescriptorChain): number | undefined {
    let r: number | Promise<number>;
    try {
      r = this.#serve(ctx, chain);
    } catch (e) {
      return this.#complete(ctx, chain, this.#failure(e), 0);
    }
    if (typeof r === "number") return this.#complete(ctx, chain, BLK_S.OK, r);
    // `chain` is the queue loop's scratch, refilled by the next chain: keep a copy.
    const kept = copyChain(chain), epoch = this.#epoch;
    this.#inflight++;
    r.then(
      (len) => this.#finish(ctx, index, kept, epoch, BLK_S.OK, len),
      (e) => this.#finish(ctx, index, kept, epoch, this.#failure(e), 0),
    );
    return undefined;
  }

  /** Counts and reports a failed request; its status. */
  #failure(e: unknown): number {
    this.stats.errors++;
    this.#onError(`virtio-blk request failed: ${e instanceof Error ? e.message : String(e)}`);
    return e instanceof RequestError ? e.status : BLK_S.IOERR;
  }

  /** Writes a finished request's status byte; the length to put in the used ring. */
  #complete(ctx: DeviceContext, chain: DescriptorChain, status: number, dataLen: number): number {
    this.stats.requests++;
    const at = statusByte(chain);
    if (chain.error || at === undefined) return 0; // nowhere to put a status
    ctx.mem.writeU8(at, status);
    return dataLen + 1;
  }

  /** Returns a request that finished later to the driver (unless the device was reset since). */
  #finish(
    ctx: DeviceContext,
    index: number,
    chain: DescriptorChain,
    epoch: number,
    status: number,
    dataLen: number,
  ): void {
    if (epoch !== this.#epoch) return; // the device was reset meanwhile
    this.#inflight--;
    ctx.guard(`virtio-blk queue ${index}`, () => {
      const len = this.#complete(ctx, chain, status, dataLen);
      ctx.queues[index]!.addUsed(ctx.mem, chain.head, len);
      ctx.signalUsed(index);
    });
  }

  /**
   * Serves one request: the data bytes written to the guest, at once or as a promise. Reads
   * and writes finish before returning when the disk can do them at once; a bad request throws.
   */
  #serve(ctx: DeviceContext, chain: DescriptorChain): number | Promise<number> {
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
      return this.#move(mem, chain.writable, 0, inLen, off, false);
    }
    if (type === BLK_T.OUT) {
      if (this.disk.readOnly) throw new RequestError(BLK_S.IOERR, "write to a read-only disk");
      const off = this.#range(sector, outLen);
      return this.#move(mem, chain.readable, HEADER, outLen, off, true);
    }
    return this.#serveOther(ctx, copyChain(chain), type, inLen, outLen);
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
