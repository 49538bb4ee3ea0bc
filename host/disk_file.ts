/**
 * A raw disk image file for virtio-blk: positional reads and writes straight into guest
 * memory (no copy). A request is first tried on the device thread, when the page cache can
 * serve it without waiting: with RWF_NOWAIT (one preadv2/pwritev2, no thread hop), or, where
 * the filesystem refuses RWF_NOWAIT reads (overlayfs, tmpfs on older kernels), as a plain
 * preadv after mincore(2) on a read-only mapping of the file found every page of the range
 * cached. What cannot be done that way runs off the device thread as a non-blocking FFI call,
 * so the event loop does not wait for the disk and several requests are in flight at once. A
 * request spread over many guest pages is one vectored call (iovec arrays come from a pool,
 * not allocated per request); FLUSH is a real fdatasync.
 *
 * @module
 */

import {
  closeFd,
  EINVAL,
  ENOSYS,
  EOPNOTSUPP,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  fallocateOffThread,
  fdatasyncOffThread,
  fillIovecs,
  fsType,
  IOV_MAX,
  IOVEC_SIZE,
  MAP_SHARED,
  mincore,
  mmap,
  munmap,
  O_RDONLY,
  O_RDWR,
  openFile,
  OVERLAYFS_SUPER_MAGIC,
  PAGE_SIZE,
  preadvNowait,
  preadvOffThread,
  preadvSync,
  PROT_READ,
  pwritevNowait,
  pwritevOffThread,
  setIovec,
  TMPFS_MAGIC,
} from "@denovm/sys";
import type { DiskImage } from "../devices/block.ts";
import type { DeviceMemory } from "../memory/guest_memory.ts";
import { type Buffer, bufferViews } from "../virtio/queue.ts";

/** Entries of a pooled iovec array, and how many arrays the pool keeps at most. */
const POOLED_IOVECS = 256, MAX_POOLED = 64;
/**
 * The largest request tried on the device thread: copying 1 MiB from the page cache takes
 * ~0.1-0.3 ms, the longest the event loop is held; a larger one goes off-thread.
 */
const NOWAIT_MAX = 1 << 20;
/**
 * Filesystems that refuse RWF_NOWAIT reads but whose cached pages a plain read copies without
 * waiting for anything else: overlayfs (its layers local) and tmpfs. Elsewhere a cached page
 * does not mean that: NFS may revalidate with the server first, FUSE may ask its daemon, CIFS
 * may read uncached; there reads go off the thread.
 */
const RESIDENT_FS = new Set([OVERLAYFS_SUPER_MAGIC, TMPFS_MAGIC]);
/** Pages a residency check covers at most: a NOWAIT_MAX range, page-aligned at both ends. */
const RESIDENT_PAGES = NOWAIT_MAX / PAGE_SIZE + 1;
/**
 * The most bytes copied on the thread in one synchronous stretch (all the requests one queue
 * notification starts, on every disk of the thread; it ends at the next microtask checkpoint):
 * past it, requests go off-thread so other devices' events are not held up for more than
 * ~1 ms. Loops inside this module that await between transfers go off-thread instead.
 */
const NOWAIT_STRETCH = 4 << 20;
let stretchBytes = 0, stretchEndQueued = false;

/**
 * Where a vectored transfer goes on after `n` more bytes, from piece `i` at byte `skip`: a
 * short transfer stops anywhere, even inside a piece. Returns the new `[i, skip]`.
 */
export function advanceIovecs(
  bufs: readonly Uint8Array[],
  i: number,
  skip: number,
  n: number,
): [number, number] {
  let left = n;
  while (left > 0 && i < bufs.length) {
    const rest = bufs[i]!.byteLength - skip;
    if (left >= rest) {
      left -= rest;
      i++;
      skip = 0;
    } else {
      skip += left;
      left = 0;
    }
  }
  return [i, skip];
}

/** A DataView of each pooled iovec array, made once. */
const iovecViews = new WeakMap<Uint8Array, DataView>();
function iovecView(iov: Uint8Array): DataView {
  let v = iovecViews.get(iov);
  if (v === undefined) {
    v = new DataView(iov.buffer, iov.byteOffset, iov.byteLength);
    iovecViews.set(iov, v);
  }
  return v;
}

/**
 * Writes the iovecs for [skip, skip+len) of the guest buffers `bufs` (host addresses of
 * guest RAM) into `view`; returns how many. The caller checked that they fit.
 */
function guestIovecs(
  view: DataView,
  mem: DeviceMemory,
  bufs: readonly Buffer[],
  skip: number,
  len: number,
): number {
  const end = skip + len;
  let pos = 0, n = 0;
  for (const b of bufs) {
    const from = Math.max(skip, pos), to = Math.min(end, pos + b.len);
    if (to > from) {
      setIovec(view, n++, mem.hostAddress(b.addr + (from - pos), to - from), to - from);
    }
    pos += b.len;
    if (pos >= end) break;
  }
  return n;
}

/** The promise of a transfer that may have finished (undefined) or thrown before returning. */
function promised(start: () => Promise<void> | undefined): Promise<void> {
  try {
    return start() ?? Promise.resolve();
  } catch (e) {
    return Promise.reject(e);
  }
}

/** How a direction's transfers are tried on the calling thread (see `FileDisk`). */
type OnThread = "nowait" | "resident" | "off";

/** A raw image file opened for a virtio-blk device. */
export class FileDisk implements DiskImage {
  readonly size: number;
  readonly #fd: number;
  #closed = false;
  /** Iovec arrays not in use (one per vectored call in flight; kept for reuse). */
  #iovs: Uint8Array[] = [];
  /**
   * Read and write system calls made so far: served on the device thread from the page cache
   * (`onThread`: RWF_NOWAIT, or a plain read of pages found cached) or off it (`offThread`,
   * Deno's blocking pool). For tests and stats.
   */
  readonly calls = { onThread: 0, offThread: 0 };
  /**
   * How reads ([0]) and writes ([1]) are tried on this thread: with RWF_NOWAIT; for reads
   * the filesystem refused that way, a plain preadv of pages `mincore` found cached
   * ("resident"); or not at all ("off").
   */
  #onThread: [OnThread, OnThread] = ["nowait", "nowait"];
  /** The file mapped read-only, for residency checks only (never read through). */
  #map: { ptr: Deno.PointerObject; base: number; length: number } | undefined;
  /** One byte per page of a residency check. */
  #vec: Uint8Array | undefined;

  private constructor(readonly path: string, fd: number, size: number, readonly readOnly: boolean) {
    this.#fd = fd;
    this.size = size;
  }

  /**
   * Opens `path` (read-only with `readOnly`); its size must be a multiple of 512. With
   * `onThread: false` every transfer runs off the calling thread (for guest RAM whose pages
   * may fault in from a file, as after a snapshot restore). `nowait: false` never asks for
   * RWF_NOWAIT: reads go by the residency check at once, whatever the filesystem, as on one
   * that refuses it (for tests and benchmarks).
   */
  static open(
    path: string,
    opts: { readOnly?: boolean; onThread?: boolean; nowait?: boolean } = {},
  ): FileDisk {
    let info: Deno.FileInfo;
    try {
      info = Deno.statSync(path);
    } catch (e) {
      throw new Error(`Cannot open disk ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!info.isFile) throw new Error(`Cannot open disk ${path}: not a regular file`);
    if (info.size % 512) {
      throw new Error(`Cannot open disk ${path}: ${info.size} bytes is not a multiple of 512`);
    }
    const ro = opts.readOnly ?? false;
    const fd = openFile(path, ro ? O_RDONLY : O_RDWR);
    const disk = new FileDisk(path, fd, info.size, ro);
    if (opts.onThread === false) disk.#onThread = ["off", "off"];
    else if (opts.nowait === false) disk.#onThread = [disk.#residentReads(true), "off"];
    return disk;
  }

  #live(): void {
    if (this.#closed) throw new Error(`Disk ${this.path} is closed`);
  }

  /** Fills `dst` from `offset`. */
  read(dst: Uint8Array, offset: number): Promise<void> {
    return promised(() => this.transfer([dst], offset, false));
  }

  /** Fills `dsts` in order from `offset`: one preadv per call (more only for short reads). */
  readv(dsts: readonly Uint8Array[], offset: number): Promise<void> {
    return promised(() => this.transfer(dsts, offset, false));
  }

  /** Writes `srcs` in order from `offset`, like {@link readv}. */
  writev(srcs: readonly Uint8Array[], offset: number): Promise<void> {
    return promised(() => this.transfer(srcs, offset, true));
  }

  /**
   * Reads `bufs` in order from `offset` (or writes them there with `write`), on this thread
   * when the page cache can take or give everything at once: then it returns undefined, the
   * transfer done. Otherwise the rest goes off-thread and the promise settles when it is done.
   * Errors (a closed disk, a write to a read-only one, a failed call) throw or reject.
   */
  transfer(
    bufs: readonly Uint8Array[],
    offset: number,
    write: boolean,
  ): Promise<void> | undefined {
    if (write && this.readOnly) throw new Error(`Disk ${this.path} is read-only`);
    return this.#vectored(bufs, offset, write);
  }

  /**
   * Like {@link transfer} for [skip, skip+len) of the guest buffers `bufs` (what virtio-blk
   * calls): when the page cache can serve it all at once, one call on this thread (RWF_NOWAIT,
   * or after the residency check) whose iovecs name guest RAM by host address (no views, no
   * promise); the rest goes through views.
   */
  transferGuest(
    mem: DeviceMemory,
    bufs: readonly Buffer[],
    skip: number,
    len: number,
    offset: number,
    write: boolean,
  ): Promise<void> | undefined {
    if (write && this.readOnly) throw new Error(`Disk ${this.path} is read-only`);
    if (len === 0) return undefined;
    this.#live();
    const now = this.#now(mem, bufs, skip, len, offset, write);
    const moved = Math.max(now, 0);
    if (moved === len) return undefined;
    // What is left (all of it, or past a short transfer): through views; off the thread once
    // the page cache was asked (asking again at once would only fail again).
    const rest = bufferViews(mem, bufs, skip + moved, len - moved);
    return this.#vectored(rest, offset + moved, write, now < 0);
  }

  /**
   * What virtio-blk calls for requests it merged: one call on this thread, as in
   * {@link transferGuest}, for the first `len` bytes of `bufs` (at most 256 buffers and
   * 1 MiB); the bytes it moved from the start, 0 when it moved none or could not try (a
   * closed or read-only disk, data not cached). Never waits for the disk; errors are left to
   * the requests' own transfers.
   */
  transferGuestNow(
    mem: DeviceMemory,
    bufs: readonly Buffer[],
    len: number,
    offset: number,
    write: boolean,
  ): number {
    if (this.#closed || (write && this.readOnly) || len === 0) return 0;
    return Math.max(this.#now(mem, bufs, 0, len, offset, write), 0);
  }

  /**
   * One call on this thread for [skip, skip+len) of `bufs` when the page cache may serve it:
   * the bytes moved (0 when none), or -1 when it was not tried (this direction goes
   * off-thread, too many buffers or bytes, or the thread's stretch is used up).
   */
  #now(
    mem: DeviceMemory,
    bufs: readonly Buffer[],
    skip: number,
    len: number,
    offset: number,
    write: boolean,
  ): number {
    if (
      this.#onThread[write ? 1 : 0] === "off" || bufs.length > POOLED_IOVECS ||
      len > NOWAIT_MAX || stretchBytes + len > NOWAIT_STRETCH
    ) return -1;
    const iov = this.#iovs.pop() ?? new Uint8Array(POOLED_IOVECS * IOVEC_SIZE);
    let moved: number;
    try {
      const count = guestIovecs(iovecView(iov), mem, bufs, skip, len);
      moved = this.#cached(iov, count, offset, len, write);
    } finally {
      this.#release(iov, false);
    }
    if (moved > 0) this.calls.onThread++;
    return moved;
  }

  #vectored(
    bufs: readonly Uint8Array[],
    offset: number,
    write: boolean,
    onThread = true,
  ): Promise<void> | undefined {
    let total = 0;
    for (const b of bufs) total += b.byteLength;
    if (total === 0) return undefined;
    this.#live();
    // Pooled arrays hold POOLED_IOVECS entries, enough for any request of a 256-entry queue;
    // a longer one gets an array of its own.
    const big = bufs.length > POOLED_IOVECS;
    const iov = big
      ? new Uint8Array(IOV_MAX * IOVEC_SIZE)
      : this.#iovs.pop() ?? new Uint8Array(POOLED_IOVECS * IOVEC_SIZE);
    let i = 0, skip = 0, pos = offset, left = total;
    try {
      if (onThread && total <= NOWAIT_MAX && stretchBytes + total <= NOWAIT_STRETCH) {
        while (left > 0) {
          if (bufs[i]!.byteLength === skip) {
            i++;
            skip = 0;
            continue;
          }
          // The buffers are views of guest RAM (or a test's) that stay mapped during the call.
          const n = this.#cached(iov, fillIovecs(iov, bufs, i, skip), pos, left, write);
          if (n <= 0) break;
          this.calls.onThread++;
          pos += n;
          left -= n;
          if (left > 0) [i, skip] = advanceIovecs(bufs, i, skip, n);
        }
      }
    } catch (e) {
      this.#release(iov, big);
      throw e;
    }
    if (left === 0) {
      this.#release(iov, big);
      return undefined;
    }
    return this.#offThread(bufs, iov, big, i, skip, pos, write);
  }

  /** The rest of a transfer, off the device thread, from piece `i` at byte `skip`. */
  async #offThread(
    bufs: readonly Uint8Array[],
    iov: Uint8Array,
    big: boolean,
    i: number,
    skip: number,
    pos: number,
    write: boolean,
  ): Promise<void> {
    try {
      while (i < bufs.length) {
        if (bufs[i]!.byteLength === skip) {
          i++;
          skip = 0;
          continue;
        }
        this.#live();
        const count = fillIovecs(iov, bufs, i, skip);
        this.calls.offThread++;
        const n = write
          ? await pwritevOffThread(this.#fd, iov, count, pos)
          : await preadvOffThread(this.#fd, iov, count, pos);
        const what = write ? "pwritev" : "preadv";
        if (n < 0) throw new Error(`${what} of ${this.path} at ${pos} failed`);
        if (n === 0) {
          throw new Error(
            `${what} of ${this.path} at ${pos}: ${write ? "no progress" : "end of file"}`,
          );
        }
        pos += n;
        [i, skip] = advanceIovecs(bufs, i, skip, n);
      }
    } finally {
      this.#release(iov, big);
    }
  }

  #release(iov: Uint8Array, big: boolean): void {
    if (!big && this.#iovs.length < MAX_POOLED) this.#iovs.push(iov);
  }

  /** Writes all of `src` at `offset`. */
  write(src: Uint8Array, offset: number): Promise<void> {
    return promised(() => this.transfer([src], offset, true));
  }

  /**
   * One call on this thread for what the page cache holds of the `len` bytes at `pos` (the
   * iovecs may cover less): the bytes it moved, or 0 when the rest must go off-thread
   * (nothing cached, end of file, an error the off-thread call will report). A file, kernel
   * or libc that cannot do RWF_NOWAIT is not asked again in that direction; its reads go by
   * the residency check from then on.
   */
  #cached(iov: Uint8Array, count: number, pos: number, len: number, write: boolean): number {
    const dir = write ? 1 : 0;
    let n = 0;
    if (this.#onThread[dir] === "nowait") {
      n = write
        ? pwritevNowait(this.#fd, iov, count, pos)
        : preadvNowait(this.#fd, iov, count, pos);
      if (n === -EOPNOTSUPP || n === -EINVAL || n === -ENOSYS) {
        this.#onThread[dir] = write ? "off" : this.#residentReads();
      }
    }
    // Up to the end of the file: past it, the off-thread call reports the end of file.
    if (
      this.#onThread[dir] === "resident" && pos < this.size &&
      this.#resident(pos, Math.min(len, this.size - pos))
    ) {
      // Every page is in the page cache: the read copies without waiting for the disk (one
      // evicted between the check and the call would be read here, the rare slow case).
      n = preadvSync(this.#fd, iov, count, pos);
    }
    if (n <= 0) return 0;
    stretchBytes += n;
    if (!stretchEndQueued) {
      // Microtasks run once the synchronous stretch that started these requests is over.
      stretchEndQueued = true;
      queueMicrotask(() => {
        stretchBytes = 0;
        stretchEndQueued = false;
      });
    }
    return n;
  }

  /**
   * Maps the file for residency checks: "resident", or "off" where it cannot be mapped or
   * (unless `anyFs`) its filesystem is not one of {@link RESIDENT_FS}.
   */
  #residentReads(anyFs = false): OnThread {
    if (this.#map) return "resident";
    if (this.size === 0) return "off";
    try {
      if (!anyFs && !RESIDENT_FS.has(fsType(this.#fd))) return "off";
      const ptr = mmap(this.size, PROT_READ, MAP_SHARED, this.#fd);
      // Userspace addresses are below 2^47: exact as a number.
      this.#map = { ptr, base: Number(Deno.UnsafePointer.value(ptr)), length: this.size };
      this.#vec = new Uint8Array(RESIDENT_PAGES);
      return "resident";
    } catch {
      return "off"; // e.g. a filesystem without mmap: everything off-thread, as before
    }
  }

  /** Whether every page of [pos, pos + len) is in the page cache (false past the end). */
  #resident(pos: number, len: number): boolean {
    const map = this.#map, vec = this.#vec;
    if (!map || !vec || pos + len > map.length) return false;
    const first = Math.floor(pos / PAGE_SIZE), end = Math.ceil((pos + len) / PAGE_SIZE);
    const pages = end - first;
    if (pages > vec.byteLength) return false;
    if (mincore(map.base + first * PAGE_SIZE, pages * PAGE_SIZE, vec) < 0) return false;
    for (let i = 0; i < pages; i++) if ((vec[i]! & 1) === 0) return false;
    return true;
  }

  async flush(): Promise<void> {
    this.#live();
    if ((await fdatasyncOffThread(this.#fd)) < 0) {
      throw new Error(`fdatasync of ${this.path} failed`);
    }
  }

  async discard(offset: number, len: number): Promise<void> {
    this.#live();
    const mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    // A filesystem without hole punching keeps the data: discard is only a hint.
    await fallocateOffThread(this.#fd, mode, offset, len);
  }

  async writeZeroes(offset: number, len: number): Promise<void> {
    this.#live();
    const r = await fallocateOffThread(
      this.#fd,
      FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE,
      offset,
      len,
    );
    if (r === 0) return;
    // Off-thread: this loop awaits between writes, which would start a new on-thread stretch
    // each time (a guest's WRITE_ZEROES may cover gigabytes).
    const zeros = new Uint8Array(Math.min(len, 1 << 20));
    for (let done = 0; done < len; done += zeros.byteLength) {
      const part = zeros.subarray(0, Math.min(zeros.byteLength, len - done));
      await this.#vectored([part], offset + done, true, false);
    }
  }

  /** Closes the file (after the device stopped: in-flight calls would fail). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    const map = this.#map;
    this.#map = undefined;
    try {
      if (map) munmap(map.ptr, map.length);
    } finally {
      closeFd(this.#fd);
    }
  }
}
