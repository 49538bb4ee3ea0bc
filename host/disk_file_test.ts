import { assertEquals, assertRejects, assertThrows } from "@std/assert";
import {
  closeFd,
  fillIovecs,
  fsType,
  IOVEC_SIZE,
  MAP_SHARED,
  mincore,
  mmap,
  munmap,
  O_RDONLY,
  openFile,
  OVERLAYFS_SUPER_MAGIC,
  PAGE_SIZE,
  preadSync,
  preadvNowait,
  PROT_READ,
  TMPFS_MAGIC,
} from "@denovm/sys";
import { GuestMemory } from "../memory/guest_memory.ts";
import { advanceIovecs, FileDisk } from "./disk_file.ts";

const MiB = 1 << 20;

async function withImage(size: number, fn: (path: string) => Promise<void>): Promise<void> {
  const path = await Deno.makeTempFile({ suffix: ".img" });
  try {
    await Deno.writeFile(path, new Uint8Array(size).map((_, i) => (i * 7 + (i >> 9)) & 0xff));
    await fn(path);
  } finally {
    await Deno.remove(path);
  }
}

Deno.test("FileDisk.readv/writev: pieces of any size land in order, the file matches", async () => {
  await withImage(MiB, async (path) => {
    const disk = FileDisk.open(path);
    const file = await Deno.readFile(path);
    // Odd sizes and a zero-length piece, as the pieces of one request may be.
    const sizes = [512, 1, 4095, 0, 4096, 3000, 8192];
    const bufs = sizes.map((n) => new Uint8Array(n));
    await disk.readv(bufs, 4096);
    let at = 4096;
    for (const b of bufs) {
      assertEquals(b, file.subarray(at, at + b.byteLength));
      at += b.byteLength;
    }
    const src = sizes.map((n, k) => new Uint8Array(n).fill(k + 1));
    await disk.writev(src, 65536);
    const after = await Deno.readFile(path);
    at = 65536;
    for (const b of src) {
      assertEquals(after.subarray(at, at + b.byteLength), b);
      at += b.byteLength;
    }
    assertEquals(after.subarray(0, 65536), file.subarray(0, 65536));
    assertEquals(after.subarray(at), file.subarray(at));
    disk.close();
  });
});

Deno.test("FileDisk.readv: more pieces than one preadv takes (1024) are read in several calls", async () => {
  await withImage(MiB, async (path) => {
    const disk = FileDisk.open(path);
    const file = await Deno.readFile(path);
    const bufs = Array.from({ length: 1500 }, () => new Uint8Array(512));
    await disk.readv(bufs, 0);
    assertEquals(bufs.every((b, i) => b.every((x, j) => x === file[i * 512 + j])), true);
    // Views into one larger buffer (as guest RAM is) work the same.
    const ram = new Uint8Array(64 * 1024);
    const views = [ram.subarray(8192, 12288), ram.subarray(0, 4096), ram.subarray(40000, 40512)];
    await disk.readv(views, 512);
    assertEquals(ram.subarray(8192, 12288), file.subarray(512, 4608));
    assertEquals(ram.subarray(0, 4096), file.subarray(4608, 8704));
    assertEquals(ram.subarray(40000, 40512), file.subarray(8704, 9216));
    disk.close();
  });
});

Deno.test("FileDisk.readv/writev: end of file, a read-only disk and a closed disk are errors", async () => {
  await withImage(8192, async (path) => {
    const disk = FileDisk.open(path);
    await assertRejects(
      () => disk.readv([new Uint8Array(4096), new Uint8Array(8192)], 0),
      Error,
      "end of file",
    );
    disk.close();
    await assertRejects(() => disk.readv([new Uint8Array(512)], 0), Error, "is closed");
    const ro = FileDisk.open(path, { readOnly: true });
    await assertRejects(() => ro.writev([new Uint8Array(512)], 0), Error, "read-only");
    ro.close();
  });
});

/**
 * Whether every page of [offset, offset + length) of `path` is in the page cache, as mincore
 * on a mapping of the file reports it; undefined where the file cannot be mapped.
 */
function cachedPages(path: string, offset = 0, length = PAGE_SIZE): boolean | undefined {
  const fd = openFile(path, O_RDONLY);
  try {
    const first = Math.floor(offset / PAGE_SIZE) * PAGE_SIZE;
    const size = Math.ceil((offset + length) / PAGE_SIZE) * PAGE_SIZE - first;
    let p: Deno.PointerObject;
    try {
      p = mmap(size, PROT_READ, MAP_SHARED, fd, first);
    } catch {
      return undefined;
    }
    const vec = new Uint8Array(size / PAGE_SIZE);
    const r = mincore(Number(Deno.UnsafePointer.value(p)), size, vec);
    munmap(p, size);
    return r === 0 && vec.every((v) => (v & 1) === 1);
  } finally {
    closeFd(fd);
  }
}

/**
 * Whether a disk opened on `path` with `opts` reads cached data on the calling thread: with
 * RWF_NOWAIT where the filesystem serves it (overlayfs on Linux 6.1 does not), else after
 * mincore found the pages cached (a file that cannot be mapped: never).
 */
function cachedReads(path: string, opts: { nowait?: boolean } = {}): boolean {
  const fd = openFile(path, O_RDONLY);
  try {
    if (opts.nowait !== false) {
      const iov = new Uint8Array(IOVEC_SIZE);
      if (preadvNowait(fd, iov, fillIovecs(iov, [new Uint8Array(512)]), 0) > 0) return true;
      // Refused: the residency check, on overlayfs and tmpfs only.
      if (![OVERLAYFS_SUPER_MAGIC, TMPFS_MAGIC].includes(fsType(fd))) return false;
    }
  } finally {
    closeFd(fd);
  }
  return cachedPages(path) === true;
}

/** Both ways a disk finds cached data: RWF_NOWAIT where served, and the residency check. */
const WAYS = [{}, { nowait: false }] as const;

Deno.test("FileDisk: cached data is read on the calling thread, the rest off it, exact both ways", async () => {
  for (const way of WAYS) {
    await withImage(4 * MiB, async (path) => {
      const file = await Deno.readFile(path); // and in the page cache
      const disk = FileDisk.open(path, way);
      const onThread = cachedReads(path, way);
      const a = new Uint8Array(4096), b = new Uint8Array(8192), c = new Uint8Array(3584);
      await disk.readv([a, b], 512);
      await disk.read(c, 3 * MiB);
      assertEquals(a, file.subarray(512, 4608));
      assertEquals(b, file.subarray(4608, 12800));
      assertEquals(c, file.subarray(3 * MiB, 3 * MiB + 3584));
      assertEquals(
        disk.calls,
        onThread ? { onThread: 2, offThread: 0 } : { onThread: 0, offThread: 2 },
      );
      // More than 1 MiB in one request: off the thread, however cached (the event loop is not
      // held for the copy).
      const big = new Uint8Array(2 * MiB);
      await disk.readv([big.subarray(0, MiB), big.subarray(MiB)], MiB);
      assertEquals(big, file.subarray(MiB, 3 * MiB));
      assertEquals(disk.calls.offThread, onThread ? 1 : 3);
      // Past the end: what the cache has, then the off-thread call finds the end of the file.
      await assertRejects(
        () => disk.readv([new Uint8Array(4096), new Uint8Array(8192)], 4 * MiB - 4096),
        Error,
        "end of file",
      );
      assertEquals(
        disk.calls,
        onThread ? { onThread: 3, offThread: 2 } : { onThread: 0, offThread: 5 },
      );
      // Writes land exactly whichever way they were made (ext4 refuses RWF_NOWAIT writes).
      const src = [new Uint8Array(1000).fill(1), new Uint8Array(3096).fill(2)];
      await disk.writev(src, 8192);
      await disk.write(new Uint8Array(512).fill(3), 0);
      const after = await Deno.readFile(path);
      assertEquals(after.subarray(0, 512).every((v) => v === 3), true);
      assertEquals(after.subarray(512, 8192), file.subarray(512, 8192));
      assertEquals(after.subarray(8192, 9192).every((v) => v === 1), true);
      assertEquals(after.subarray(9192, 12288).every((v) => v === 2), true);
      assertEquals(after.subarray(12288), file.subarray(12288));
      assertEquals(disk.calls.onThread + disk.calls.offThread, 7);
      disk.close();
    });
  }
});

Deno.test("FileDisk.transfer: done before it returns when the page cache serves it, else a promise", async () => {
  for (const way of WAYS) {
    await withImage(4 * MiB, async (path) => {
      const file = await Deno.readFile(path);
      const disk = FileDisk.open(path, way);
      const onThread = cachedReads(path, way);
      const a = new Uint8Array(4096), b = new Uint8Array(512);
      const r = disk.transfer([a, new Uint8Array(0), b], 1024, false);
      if (onThread) {
        // Finished: no promise, the bytes already there.
        assertEquals(r, undefined);
        assertEquals(a, file.subarray(1024, 5120));
        assertEquals(b, file.subarray(5120, 5632));
      } else {
        assertEquals(r instanceof Promise, true);
        await r;
        assertEquals(a, file.subarray(1024, 5120));
      }
      // Over 1 MiB: always a promise, settled with the data in place.
      const big = new Uint8Array(2 * MiB);
      const p = disk.transfer([big], 0, false);
      assertEquals(p instanceof Promise, true);
      await p;
      assertEquals(big, file.subarray(0, 2 * MiB));
      // Nothing to move: done at once.
      assertEquals(disk.transfer([new Uint8Array(0)], 0, false), undefined);
      // A write: exact on the file whichever way it went.
      await disk.transfer([new Uint8Array(512).fill(9)], 512, true);
      assertEquals((await Deno.readFile(path)).subarray(512, 1024).every((v) => v === 9), true);
      disk.close();
      assertThrows(() => disk.transfer([a], 0, false), Error, "closed");
      const ro = FileDisk.open(path, { readOnly: true });
      assertThrows(() => ro.transfer([a], 0, true), Error, "read-only");
      await assertRejects(() => ro.write(a, 0), Error, "read-only");
      ro.close();
    });
  }
});

Deno.test("FileDisk.transferGuest: guest buffers clipped to [skip, skip+len), exact either way", async () => {
  await withImage(4 * MiB, async (path) => {
    const file = await Deno.readFile(path);
    const mem = GuestMemory.allocate([{ gpa: 0, size: 0x40000 }]);
    for (const opts of [...WAYS, { onThread: false }]) {
      const disk = FileDisk.open(path, opts);
      const quick = !("onThread" in opts) && cachedReads(path, opts);
      mem.fill(0, 0x40000, 0xee);
      // A header, two scattered pages, a status byte: the data is [16, 16 + 8192).
      const bufs = [
        { addr: 0x3000, len: 16 },
        { addr: 0x10000, len: 4096 },
        { addr: 0x8000, len: 4096 },
        { addr: 0x20000, len: 1 },
      ];
      const r = disk.transferGuest(mem, bufs, 16, 8192, 512, false);
      assertEquals(r === undefined, quick, "done before returning only from the page cache");
      await r;
      assertEquals(mem.read(0x10000, 4096), file.subarray(512, 4608));
      assertEquals(mem.read(0x8000, 4096), file.subarray(4608, 8704));
      assertEquals(mem.readU8(0x3000), 0xee, "the header is not touched");
      assertEquals(mem.readU8(0x20000), 0xee, "nor the status byte");
      assertEquals(mem.readU8(0x10000 + 4096), 0xee, "nor past a piece");
      assertEquals(
        disk.calls,
        quick ? { onThread: 1, offThread: 0 } : { onThread: 0, offThread: 1 },
      );
      // Past the end of the file: what there is, then the end-of-file error.
      await assertRejects(
        async () => await disk.transferGuest(mem, bufs, 16, 8192, 4 * MiB - 4096, false),
        Error,
        "end of file",
      );
      assertEquals(mem.read(0x10000, 4096), file.subarray(4 * MiB - 4096));
      disk.close();
      assertThrows(() => disk.transferGuest(mem, bufs, 16, 512, 0, false), Error, "closed");
    }
    // Writes land exactly whichever way they were made.
    const disk = FileDisk.open(path);
    mem.fill(0x10000, 4096, 5);
    mem.fill(0x8000, 4096, 6);
    await disk.transferGuest(
      mem,
      [{ addr: 0x10000, len: 4096 }, { addr: 0x8000, len: 4096 }],
      1024,
      5120,
      0,
      true,
    );
    const after = await Deno.readFile(path);
    assertEquals(after.subarray(0, 3072).every((v) => v === 5), true);
    assertEquals(after.subarray(3072, 5120).every((v) => v === 6), true);
    assertEquals(after.subarray(5120), file.subarray(5120));
    assertEquals(disk.transferGuest(mem, [{ addr: 0, len: 512 }], 512, 0, 0, false), undefined);
    disk.close();
    const ro = FileDisk.open(path, { readOnly: true });
    assertThrows(
      () => ro.transferGuest(mem, [{ addr: 0, len: 512 }], 0, 512, 0, true),
      Error,
      "read-only",
    );
    ro.close();
  });
});

Deno.test("FileDisk.transferGuestNow: cached data in one call on the thread; 0 where it cannot", async () => {
  await withImage(4 * MiB, async (path) => {
    const file = await Deno.readFile(path);
    const mem = GuestMemory.allocate([{ gpa: 0, size: 0x40000 }]);
    // Two requests' data, as virtio-blk merges them: three pieces, then one not covered.
    const bufs = [
      { addr: 0x10000, len: 4096 },
      { addr: 0x8000, len: 512 },
      { addr: 0x20000, len: 1024 },
      { addr: 0x30000, len: 512 },
    ];
    for (const opts of [...WAYS, { onThread: false }]) {
      const disk = FileDisk.open(path, opts);
      const quick = !("onThread" in opts) && cachedReads(path, opts);
      mem.fill(0, 0x40000, 0xee);
      assertEquals(disk.transferGuestNow(mem, bufs, 5632, 1024, false), quick ? 5632 : 0);
      assertEquals(disk.calls, { onThread: quick ? 1 : 0, offThread: 0 }, "never off-thread");
      if (quick) {
        assertEquals(mem.read(0x10000, 4096), file.subarray(1024, 5120));
        assertEquals(mem.read(0x8000, 512), file.subarray(5120, 5632));
        assertEquals(mem.read(0x20000, 1024), file.subarray(5632, 6656));
        // Up to the end of the file: what there is.
        assertEquals(disk.transferGuestNow(mem, bufs, 5632, 4 * MiB - 1024, false), 1024);
        assertEquals(mem.read(0x10000, 1024), file.subarray(4 * MiB - 1024));
      }
      assertEquals(mem.readU8(0x30000), 0xee, "past len: not touched");
      // More buffers (257) or bytes (1 MiB + 512) than one call takes: not tried.
      const many = Array.from({ length: 257 }, (_, i) => ({ addr: i * 512, len: 512 }));
      assertEquals(disk.transferGuestNow(mem, many, 257 * 512, 0, false), 0);
      assertEquals(
        disk.transferGuestNow(mem, [{ addr: 0, len: MiB + 512 }], MiB + 512, 0, false),
        0,
      );
      disk.close();
      assertEquals(disk.transferGuestNow(mem, bufs, 512, 0, false), 0, "closed: 0, no throw");
    }
    // Writes: done on the thread where the filesystem takes RWF_NOWAIT writes, else 0; exact.
    const disk = FileDisk.open(path);
    mem.fill(0x10000, 4096, 3);
    mem.fill(0x8000, 512, 4);
    const n = disk.transferGuestNow(mem, bufs.slice(0, 2), 4608, 8192, true);
    assertEquals(n === 0 || n === 4608, true, `${n}`);
    await disk.transferGuest(mem, bufs.slice(0, 2), n, 4608 - n, 8192 + n, true);
    const after = await Deno.readFile(path);
    assertEquals(after.subarray(8192, 12288).every((v) => v === 3), true);
    assertEquals(after.subarray(12288, 12800).every((v) => v === 4), true);
    assertEquals(after.subarray(12800), file.subarray(12800));
    disk.close();
    const ro = FileDisk.open(path, { readOnly: true });
    assertEquals(ro.transferGuestNow(mem, bufs, 512, 0, true), 0, "read-only: 0, no throw");
    ro.close();
  });
});

Deno.test("FileDisk: one synchronous stretch copies at most 4 MiB on the thread, the rest goes off it", async () => {
  for (const way of WAYS) {
    await withImage(8 * MiB, async (path) => {
      const file = await Deno.readFile(path);
      const disk = FileDisk.open(path, { readOnly: true, ...way });
      const onThread = cachedReads(path, way);
      // Six 1 MiB requests started back to back, as one queue notification starts them.
      const bufs = Array.from({ length: 6 }, () => new Uint8Array(MiB));
      await Promise.all(bufs.map((b, i) => disk.read(b, i * MiB)));
      bufs.forEach((b, i) => assertEquals(b, file.subarray(i * MiB, (i + 1) * MiB)));
      assertEquals(
        disk.calls,
        onThread ? { onThread: 4, offThread: 2 } : { onThread: 0, offThread: 6 },
      );
      // The next stretch starts with the whole budget again.
      await disk.read(bufs[0]!, 7 * MiB);
      assertEquals(bufs[0], file.subarray(7 * MiB));
      assertEquals(disk.calls.onThread, onThread ? 5 : 0);
      disk.close();
    });
  }
});

const fadvise = Deno.dlopen("libc.so.6", {
  posix_fadvise: { parameters: ["i32", "i64", "i64", "i32"], result: "i32" },
}).symbols.posix_fadvise;
const POSIX_FADV_RANDOM = 1, POSIX_FADV_DONTNEED = 4;

/** Drops a whole file's (clean) pages from the page cache. */
function dropCached(path: string): void {
  const fd = openFile(path, O_RDONLY);
  try {
    assertEquals(fadvise(fd, 0n, 0n, POSIX_FADV_DONTNEED), 0);
  } finally {
    closeFd(fd);
  }
}

/** Brings the one page at `offset` into the page cache, no read-ahead beyond it. */
function cacheOnePage(path: string, offset: number): void {
  const fd = openFile(path, O_RDONLY);
  try {
    assertEquals(fadvise(fd, 0n, 0n, POSIX_FADV_RANDOM), 0);
    assertEquals(preadSync(fd, new Uint8Array(PAGE_SIZE), offset), PAGE_SIZE);
  } finally {
    closeFd(fd);
  }
}

Deno.test("FileDisk residency check: a range with a page not cached goes off the thread", async () => {
  await withImage(MiB, async (path) => {
    const file = await Deno.readFile(path);
    // Written pages must reach the disk before the kernel lets them go.
    const f = await Deno.open(path, { read: true, write: true });
    await f.syncData();
    f.close();
    const disk = FileDisk.open(path, { readOnly: true, nowait: false });
    // Whether a read of the range should be done on the thread, asked before each read (on
    // tmpfs, as in the portable machine, pages stay cached whatever is dropped; a file that
    // cannot be mapped is never read on the thread).
    const mapped = cachedPages(path) !== undefined;
    const quick = (at: number, n: number) => mapped && cachedPages(path, at, n) === true;
    let expect = { onThread: 0, offThread: 0 };
    const read = async (buf: Uint8Array, at: number) => {
      const onThread = quick(at, buf.byteLength);
      const r = disk.transfer([buf], at, false);
      assertEquals(r === undefined, onThread, `${buf.byteLength} bytes at ${at}`);
      await r;
      assertEquals(buf, file.subarray(at, at + buf.byteLength));
      expect = onThread
        ? { ...expect, onThread: expect.onThread + 1 }
        : { ...expect, offThread: expect.offThread + 1 };
      assertEquals(disk.calls, expect);
    };
    dropCached(path);
    await read(new Uint8Array(8192), 65536);
    // That read brought the pages in: now on the thread (where it can map the file).
    assertEquals(quick(65536, 8192), mapped);
    await read(new Uint8Array(8192), 65536);
    // Page 0 cached, page 1 not: a read of both goes off the thread, one of page 0 does not.
    dropCached(path);
    cacheOnePage(path, 0);
    if (cachedPages(path, PAGE_SIZE, PAGE_SIZE) !== false) {
      // tmpfs keeps its pages (the portable machine's /tmp): only the cached case runs here.
      console.log("pages stay cached on this filesystem: the uncached case is not exercised");
    }
    await read(new Uint8Array(8192), 0);
    dropCached(path);
    cacheOnePage(path, 0);
    await read(new Uint8Array(4096), 0);
    disk.close();
  });
});

Deno.test("FileDisk with onThread: false never copies on the calling thread", async () => {
  await withImage(MiB, async (path) => {
    const file = await Deno.readFile(path);
    const disk = FileDisk.open(path, { onThread: false });
    const a = new Uint8Array(4096), b = new Uint8Array(512);
    await disk.readv([a, b], 8192);
    await disk.read(a, 0);
    await disk.write(b, 4096);
    assertEquals(a, file.subarray(0, 4096));
    assertEquals(disk.calls, { onThread: 0, offThread: 3 });
    disk.close();
  });
});

Deno.test("advanceIovecs: a short transfer resumes mid-piece, on a boundary, past empty pieces", () => {
  const bufs = [4096, 512, 0, 1000].map((n) => new Uint8Array(n));
  assertEquals(advanceIovecs(bufs, 0, 0, 100), [0, 100]);
  assertEquals(advanceIovecs(bufs, 0, 100, 3996), [1, 0]);
  assertEquals(advanceIovecs(bufs, 0, 100, 4000), [1, 4]);
  assertEquals(advanceIovecs(bufs, 1, 4, 508), [2, 0]);
  assertEquals(advanceIovecs(bufs, 1, 4, 509), [3, 1]);
  assertEquals(advanceIovecs(bufs, 0, 0, 5608), [4, 0]);
  assertEquals(advanceIovecs(bufs, 3, 999, 1), [4, 0]);
});
