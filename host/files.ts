/**
 * Reading files the VMM does not trust (kernels, initrds, images, snapshot state, config):
 * opened once, checked to be a regular file no larger than a cap before a byte is read, and
 * read through the same handle, so a FIFO cannot hang the VMM, a device like /dev/zero
 * cannot grow it, and the size read is the opened handle's own (checked again after open).
 * A FIFO swapped in between the stat and the open would still block the open: the window is
 * one system call wide, and closing it needs O_NONBLOCK, which Deno.open does not offer.
 *
 * @module
 */

/** A file that cannot be read within its bounds; the message names the file and why. */
export class FileBoundsError extends Error {
  override name = "FileBoundsError";
}

/**
 * The whole of `path`, a regular file of at most `max` bytes (`what` names it in errors,
 * e.g. "kernel"). Throws a {@link FileBoundsError} otherwise.
 */
export async function readBounded(path: string, max: number, what: string): Promise<Uint8Array> {
  let f: Deno.FsFile;
  try {
    // Opening a FIFO blocks until a writer comes: refuse it by type first (stat follows
    // links as open does), then check the opened handle again.
    const pre = await Deno.stat(path);
    if (!pre.isFile) {
      throw new FileBoundsError(`Cannot read the ${what} ${path}: not a regular file`);
    }
    f = await Deno.open(path, { read: true });
  } catch (e) {
    if (e instanceof FileBoundsError) throw e;
    throw new FileBoundsError(
      `Cannot read the ${what} ${path}: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
  try {
    const info = await f.stat();
    if (!info.isFile) {
      throw new FileBoundsError(`Cannot read the ${what} ${path}: not a regular file`);
    }
    if (info.size > max) {
      throw new FileBoundsError(
        `Cannot read the ${what} ${path}: ${info.size} bytes, more than the ${max} allowed`,
      );
    }
    const out = new Uint8Array(info.size);
    let got = 0;
    while (got < out.byteLength) {
      const n = await f.read(out.subarray(got));
      if (n === null) break;
      got += n;
    }
    // Grown since the stat: refuse rather than read on.
    if (got === out.byteLength && (await f.read(new Uint8Array(1))) !== null) {
      throw new FileBoundsError(`Cannot read the ${what} ${path}: it grew while being read`);
    }
    return got === out.byteLength ? out : out.subarray(0, got);
  } finally {
    f.close();
  }
}
