import { assertEquals, assertRejects } from "@std/assert";
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
