/**
 * A raw disk image file for virtio-blk: positional reads and writes straight into guest
 * memory (no copy), run off the device thread as non-blocking FFI calls so several
 * requests are in flight at once; FLUSH is a real fdatasync.
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
  O_RDONLY,
  O_RDWR,
  openFile,
  preadOffThread,
  pwriteOffThread,
} from "@denovm/sys";
import type { DiskImage } from "../devices/block.ts";

/** A raw image file opened for a virtio-blk device. */
export class FileDisk implements DiskImage {
  readonly size: number;
  readonly #fd: number;
  #closed = false;

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
