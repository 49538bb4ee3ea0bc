/**
 * A raw disk image file for virtio-blk: positional reads and writes straight into guest
 * memory (no copy), run off the device thread as non-blocking FFI calls so several
 * requests are in flight at once; a request spread over many guest pages is one
 * preadv/pwritev (iovec arrays come from a pool, not allocated per request); FLUSH is a real
 * fdatasync.
 *
 * @module
 */

import {
  closeFd,
  FALLOC_FL_KEEP_SIZE,
  FALLOC_FL_PUNCH_HOLE,
  FALLOC_FL_ZERO_RANGE,
  fallocateOffThread,
  fdatasyncOffThread,
  fillIovecs,
  IOV_MAX,
  IOVEC_SIZE,
  O_RDONLY,
  O_RDWR,
  openFile,
  preadOffThread,
  preadvOffThread,
  pwriteOffThread,
  pwritevOffThread,
} from "@denovm/sys";
import type { DiskImage } from "../devices/block.ts";

/** Entries of a pooled iovec array, and how many arrays the pool keeps at most. */
const POOLED_IOVECS = 256, MAX_POOLED = 64;

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

/** A raw image file opened for a virtio-blk device. */
export class FileDisk implements DiskImage {
  readonly size: number;
  readonly #fd: number;
  #closed = false;
  /** Iovec arrays not in use (one per vectored call in flight; kept for reuse). */
  #iovs: Uint8Array[] = [];

  private constructor(readonly path: string, fd: number, size: number, readonly readOnly: boolean) {
    this.#fd = fd;
    this.size = size;
  }

  /** Opens `path` (read-only with `readOnly`); its size must be a multiple of 512. */
  static open(path: string, opts: { readOnly?: boolean } = {}): FileDisk {
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
    return new FileDisk(path, fd, info.size, ro);
  }

  #live(): void {
    if (this.#closed) throw new Error(`Disk ${this.path} is closed`);
  }

  async read(dst: Uint8Array, offset: number): Promise<void> {
    let done = 0;
    while (done < dst.byteLength) {
      this.#live();
      const part = dst.subarray(done);
      // dst is a view of guest RAM (or a test buffer) that stays mapped during the call.
      const n = await preadOffThread(this.#fd, part, offset + done);
      if (n < 0) throw new Error(`pread of ${this.path} at ${offset + done} failed`);
      if (n === 0) throw new Error(`pread of ${this.path} at ${offset + done}: end of file`);
      done += n;
    }
  }

  /** Fills `dsts` in order from `offset`: one preadv per call (more only for short reads). */
  readv(dsts: readonly Uint8Array[], offset: number): Promise<void> {
    return this.#vectored(dsts, offset, false);
  }

  /** Writes `srcs` in order from `offset`, like {@link readv}. */
  writev(srcs: readonly Uint8Array[], offset: number): Promise<void> {
    if (this.readOnly) return Promise.reject(new Error(`Disk ${this.path} is read-only`));
    return this.#vectored(srcs, offset, true);
  }

  async #vectored(bufs: readonly Uint8Array[], offset: number, write: boolean): Promise<void> {
    // Pooled arrays hold POOLED_IOVECS entries, enough for any request of a 256-entry queue;
    // a longer one gets an array of its own.
    const big = bufs.length > POOLED_IOVECS;
    const iov = big
      ? new Uint8Array(IOV_MAX * IOVEC_SIZE)
      : this.#iovs.pop() ?? new Uint8Array(POOLED_IOVECS * IOVEC_SIZE);
    try {
      let i = 0, skip = 0, pos = offset;
      while (i < bufs.length) {
        if (bufs[i]!.byteLength === skip) {
          i++;
          skip = 0;
          continue;
        }
        this.#live();
        const count = fillIovecs(iov, bufs, i, skip);
        // The buffers are views of guest RAM (or a test's) that stay mapped during the call.
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
      if (!big && this.#iovs.length < MAX_POOLED) this.#iovs.push(iov);
    }
  }

  async write(src: Uint8Array, offset: number): Promise<void> {
    if (this.readOnly) throw new Error(`Disk ${this.path} is read-only`);
    let done = 0;
    while (done < src.byteLength) {
      this.#live();
      const part = src.subarray(done);
      // src is a view of guest RAM (or a test buffer) that stays mapped during the call.
      const n = await pwriteOffThread(this.#fd, part, offset + done);
      if (n <= 0) throw new Error(`pwrite of ${this.path} at ${offset + done} failed`);
      done += n;
    }
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
    const zeros = new Uint8Array(Math.min(len, 1 << 20));
    for (let done = 0; done < len; done += zeros.byteLength) {
      await this.write(zeros.subarray(0, Math.min(zeros.byteLength, len - done)), offset + done);
    }
  }

  /** Closes the file (after the device stopped: in-flight calls would fail). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.#fd);
  }
}
