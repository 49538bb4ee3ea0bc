/** Memory files: full and diff layers, their ranges, and how layers are shared. */

import { assertEquals, assertThrows } from "@std/assert";
import { GuestMemory } from "../memory/guest_memory.ts";
import { SnapshotError } from "./format.ts";
import {
  applyDiffs,
  dirtyRanges,
  locate,
  PAGE,
  placeLayer,
  writeDiff,
  writeMemory,
} from "./memory_file.ts";

Deno.test("dirtyRanges: runs of set bits become page ranges in the concatenated memory", () => {
  // Region 0: 8 pages, pages 1-2 and 7 dirty; region 1: 4 pages, page 0 dirty.
  const r0 = new Uint8Array([0b1000_0110]), r1 = new Uint8Array([0b0001]);
  assertEquals(dirtyRanges([r0, r1], [8 * PAGE, 4 * PAGE]), [
    [PAGE, 2 * PAGE],
    [7 * PAGE, PAGE],
    [8 * PAGE, PAGE],
  ]);
  assertEquals(dirtyRanges([new Uint8Array(1)], [8 * PAGE]), []);
});

Deno.test("locate: a range inside one region, or a SnapshotError when it spans two", () => {
  const a = new Uint8Array(2 * PAGE), b = new Uint8Array(PAGE);
  const [r, o] = locate([a, b], 2 * PAGE + 16, 32);
  assertEquals([r === b, o], [true, 16]);
  assertThrows(() => locate([a, b], PAGE, 2 * PAGE), SnapshotError, "spans regions");
});

Deno.test("full + diff files restore the memory they were taken from", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const regions = [new Uint8Array(4 * PAGE).fill(1), new Uint8Array(2 * PAGE).fill(2)];
    await writeMemory(`${dir}/memory.bin`, regions);
    regions[0]!.fill(9, PAGE, 2 * PAGE);
    regions[1]!.fill(8, 0, PAGE);
    const ranges: [number, number][] = [[PAGE, PAGE], [4 * PAGE, PAGE]];
    await writeDiff(`${dir}/memory.diff.1`, regions, ranges, 6 * PAGE);
    assertEquals((await Deno.stat(`${dir}/memory.diff.1`)).size, 6 * PAGE);
    // A restore: the base, then the diff's ranges over it.
    const base = await Deno.readFile(`${dir}/memory.bin`);
    const mem = new GuestMemory([
      { gpa: 0, bytes: base.slice(0, 4 * PAGE) },
      { gpa: 0x10_0000, bytes: base.slice(4 * PAGE) },
    ]);
    await applyDiffs(mem, [{ file: `${dir}/memory.diff.1`, ranges }]);
    assertEquals(mem.read(0, 4 * PAGE), regions[0]);
    assertEquals(mem.read(0x10_0000, 2 * PAGE), regions[1]);
    assertEquals([...Deno.readDirSync(dir)].length, 2, "no temporary files left");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("placeLayer: links (or copies) a layer; a later rewrite of the source leaves it", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${dir}/a`);
    await Deno.mkdir(`${dir}/b`);
    await writeMemory(`${dir}/a/memory.bin`, [new Uint8Array(PAGE).fill(1)]);
    await placeLayer(`${dir}/a/memory.bin`, `${dir}/b/memory.bin`);
    await placeLayer(`${dir}/a/memory.bin`, `${dir}/b/memory.bin`); // same file: nothing to do
    await placeLayer(`${dir}/b/memory.bin`, `${dir}/b/memory.bin`);
    assertEquals((await Deno.readFile(`${dir}/b/memory.bin`))[0], 1);
    // A new full snapshot in a/ replaces its file by rename: b/ keeps the old pages.
    await writeMemory(`${dir}/a/memory.bin`, [new Uint8Array(PAGE).fill(2)]);
    assertEquals((await Deno.readFile(`${dir}/b/memory.bin`))[0], 1);
    assertEquals((await Deno.readFile(`${dir}/a/memory.bin`))[0], 2);
    assertEquals([...Deno.readDirSync(`${dir}/b`)].map((e) => e.name), ["memory.bin"]);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
