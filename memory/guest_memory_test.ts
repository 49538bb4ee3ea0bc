/** One suite, run against both backings of guest memory. */

import { assert, assertEquals, assertThrows } from "@std/assert";
import { GuestMemory, GuestMemoryError } from "./guest_memory.ts";
import { attachGuestMemory, MmapGuestMemory } from "./mmap.ts";

const LAYOUT = [{ gpa: 0, size: 0x10000 }, { gpa: 0x10000, size: 0x1000 }, {
  gpa: 0x40000,
  size: 0x2000,
}];

const backings: [string, () => GuestMemory & { close?: () => void }][] = [
  ["ArrayBuffer", () => GuestMemory.allocate(LAYOUT)],
  ["mmap", () => MmapGuestMemory.create(LAYOUT)],
];

for (const [name, make] of backings) {
  Deno.test(`GuestMemory (${name}) reads and writes u8/u16/u32/u64 little-endian`, () => {
    const m = make();
    m.writeU8(1, 0xab);
    m.writeU16(2, 0xbeef);
    m.writeU32(4, 0xdeadbeef);
    m.writeU64(8, 0x0123_4567_89ab_cdefn);
    assertEquals(m.readU8(1), 0xab);
    assertEquals(m.readU16(2), 0xbeef);
    assertEquals(m.readU32(4), 0xdeadbeef);
    assertEquals(m.readU64(8), 0x0123_4567_89ab_cdefn);
    assertEquals(m.readU64Number(8), 0x0123_4567_89ab_cdef);
    assertEquals([...m.read(4, 4)], [0xef, 0xbe, 0xad, 0xde]);
    m.close?.();
  });

  Deno.test(`GuestMemory (${name}) checks the whole range, not only its start`, () => {
    const m = make();
    assertThrows(() => m.readU32(0x43000), GuestMemoryError);
    assertThrows(() => m.readU32(0x10ffe), GuestMemoryError); // straddles the end of a region
    assertThrows(() => m.readU64(0x41ffc), GuestMemoryError);
    assertThrows(() => m.slice(0x41000, 0x1001), GuestMemoryError);
    assertThrows(() => m.read(0x11000, 1), GuestMemoryError); // the gap between regions
    assertThrows(() => m.write(0x10f00, new Uint8Array(0x200)), GuestMemoryError);
    assertThrows(() => m.readU8(-1), GuestMemoryError);
    assertThrows(() => m.read(0, -1), RangeError);
    assertThrows(() => m.read(2 ** 64, 1), GuestMemoryError);
    assert(m.contains(0x41ff8, 8));
    assert(!m.contains(0x41ff9, 8));
    assert(!m.contains(Number.MAX_SAFE_INTEGER, 1));
    // A failed write changes nothing.
    assertEquals(m.readU8(0x10fff), 0);
    m.close?.();
  });

  Deno.test(`GuestMemory (${name}) copies across adjacent regions, slices only within one`, () => {
    const m = make();
    const data = new Uint8Array(32).map((_, i) => i + 1);
    m.write(0xfff0, data);
    assertEquals(m.read(0xfff0, 32), data);
    assertThrows(() => m.slice(0xfff0, 32), GuestMemoryError);
    const s = m.slice(0x40010, 4);
    s.set([9, 8, 7, 6]);
    assertEquals(m.readU32(0x40010), 0x06070809, "a slice is a view, not a copy");
    m.fill(0x40010, 4, 0xff);
    assertEquals(m.readU32(0x40010), 0xffffffff);
    m.close?.();
  });

  Deno.test(`GuestMemory (${name}) hostAddress: where a slice's bytes are, checked and marked dirty`, () => {
    const m = make();
    const at = (v: Uint8Array) => Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(v)));
    for (const [addr, len] of [[0, 16], [0xfff0, 16], [0x10000, 0x1000], [0x41fff, 1]]) {
      assertEquals(m.hostAddress(addr!, len!), at(m.slice(addr!, len!)), `0x${addr!.toString(16)}`);
    }
    assertThrows(() => m.hostAddress(0xfff0, 32), GuestMemoryError); // two regions
    assertThrows(() => m.hostAddress(0x11000, 1), GuestMemoryError); // the gap
    assertThrows(() => m.hostAddress(0, -1), RangeError);
    m.trackDirty(true);
    m.hostAddress(0x40000 + 4096 + 8, 16);
    assertEquals([...m.takeDirty()[2]!], [0b10], "the page a system call may write is dirty");
    m.close?.();
  });
}

Deno.test("GuestMemory rejects overlapping and empty regions", () => {
  assertThrows(
    () => GuestMemory.allocate([{ gpa: 0, size: 0x2000 }, { gpa: 0x1000, size: 0x1000 }]),
    RangeError,
    "overlap",
  );
  assertThrows(() => GuestMemory.allocate([]), RangeError);
  assertThrows(() => MmapGuestMemory.create([{ gpa: 0, size: 100 }]), RangeError, "page aligned");
});

Deno.test("attachGuestMemory() views the same mapping", () => {
  using m = MmapGuestMemory.create([{ gpa: 0x1000, size: 0x1000 }]);
  const other = attachGuestMemory(m.hostRegions);
  m.writeU32(0x1800, 77);
  assertEquals(other.readU32(0x1800), 77);
});
