/**
 * The snapshot's memory files: a full file of guest RAM (mapped copy-on-write on restore),
 * and diff layers (sparse files holding only the pages dirtied since the layer below).
 *
 * @module
 */

import { closeFd, fdatasync, O_RDWR, openFile, pwriteAll } from "@denovm/sys";
import type { GuestMemory } from "../memory/guest_memory.ts";
import { SnapshotError } from "./format.ts";

/** One layer of guest memory in a snapshot: a full file, or the pages a diff changed. */
export interface MemoryLayer {
  /**
   * In a state file: a plain file name inside the snapshot directory (a snapshot directory
   * holds every layer it needs). In memory, after a restore: the absolute path.
   */
  file: string;
  /** For a diff: [file offset, length] runs, page aligned; absent for a full file. */
  ranges?: [number, number][];
}

export const MEMORY_FILE = "memory.bin";
export const DIFF_FILE = "memory.diff";
export const PAGE = 4096;
export const MAX_RANGES = 1 << 20;

/** Writes the full memory file (the regions one after another), atomically. */
export async function writeMemory(path: string, regions: Uint8Array[]): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    for (const r of regions) {
      for (let o = 0; o < r.byteLength;) {
        o += await f.write(r.subarray(o, Math.min(r.byteLength, o + (8 << 20))));
      }
    }
    await f.syncData();
  } finally {
    f.close();
  }
  await Deno.rename(tmp, path);
}

/**
 * Puts memory layer `src` at `dst` (atomically): a hard link where the file system allows
 * one, else a copy. Nothing to do when both name the same file. The memory files are
 * always replaced by rename, never rewritten in place, so a linked layer never changes
 * under another snapshot.
 */
export async function placeLayer(src: string, dst: string): Promise<void> {
  const [a, b] = await Promise.all([Deno.stat(src), Deno.stat(dst).catch(() => undefined)]);
  if (b && a.dev === b.dev && a.ino === b.ino) return;
  const tmp = `${dst}.tmp-${Deno.pid}`;
  await Deno.remove(tmp).catch(() => {}); // our own leftover name
  try {
    await Deno.link(src, tmp);
  } catch {
    await Deno.copyFile(src, tmp);
  }
  await Deno.rename(tmp, dst);
}

/** Page-aligned [offset, length] runs of set bits, as offsets in the concatenated memory. */
export function dirtyRanges(bitmaps: Uint8Array[], sizes: number[]): [number, number][] {
  const out: [number, number][] = [];
  let base = 0;
  for (const [r, bits] of bitmaps.entries()) {
    const pages = sizes[r]! / PAGE;
    let start = -1;
    for (let p = 0; p <= pages; p++) {
      const set = p < pages && (bits[p >>> 3]! & (1 << (p & 7))) !== 0;
      if (set && start < 0) start = p;
      if (!set && start >= 0) {
        out.push([base + start * PAGE, (p - start) * PAGE]);
        start = -1;
      }
    }
    base += sizes[r]!;
  }
  return out;
}

/** The region holding [off, off+len) of the concatenated memory, and the offset in it. */
export function locate(regions: Uint8Array[], off: number, len: number): [Uint8Array, number] {
  let base = 0;
  for (const r of regions) {
    if (off >= base && off + len <= base + r.byteLength) return [r, off - base];
    base += r.byteLength;
  }
  throw new SnapshotError(`Cannot use memory range ${off}+${len}: it spans regions`);
}

/** A sparse file of `size` bytes holding only `ranges` of the memory (one pwrite each). */
export async function writeDiff(
  path: string,
  regions: Uint8Array[],
  ranges: [number, number][],
  size: number,
) {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeFile(tmp, new Uint8Array(0), { mode: 0o600 });
  await Deno.truncate(tmp, size);
  const fd = openFile(tmp, O_RDWR);
  try {
    for (const [off, len] of ranges) {
      const [r, o] = locate(regions, off, len);
      pwriteAll(fd, r.subarray(o, o + len), off);
    }
    fdatasync(fd);
  } finally {
    closeFd(fd);
  }
  await Deno.rename(tmp, path);
}

/** Copies each diff layer's pages over the base mapping (they become private pages). */
export async function applyDiffs(mem: GuestMemory, layers: MemoryLayer[]): Promise<void> {
  const regions = mem.regions.map((r) => r.bytes);
  for (const l of layers) {
    const f = await Deno.open(l.file, { read: true });
    try {
      for (const [off, len] of l.ranges!) {
        const [r, o] = locate(regions, off, len);
        const dst = r.subarray(o, o + len);
        await f.seek(off, Deno.SeekMode.Start);
        for (let got = 0; got < len;) {
          const n = await f.read(dst.subarray(got));
          if (n === null) throw new SnapshotError(`Cannot restore: ${l.file} ends early`);
          got += n;
        }
      }
    } finally {
      f.close();
    }
  }
}
