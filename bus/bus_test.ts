import { assertEquals, assertThrows } from "@std/assert";
import { Bus } from "./bus.ts";
import { ByteRing } from "../vstate/byte_ring.ts";

Deno.test("Bus.register() rejects overlapping ranges and bad ranges", () => {
  const bus = new Bus("mmio");
  const dev = { read: () => {}, write: () => {} };
  bus.register(0x1000, 0x100, dev, "a");
  assertThrows(() => bus.register(0x10ff, 1, dev, "b"), RangeError, "overlaps a");
  assertThrows(() => bus.register(0xf00, 0x101, dev, "c"), RangeError, "overlaps a");
  assertThrows(() => bus.register(0, 0, dev), RangeError);
  bus.register(0x1100, 0x100, dev, "d");
  assertEquals(bus.ranges().map((r) => r.name), ["a", "d"]);
  assertEquals(bus.unregister(0x1000), true);
  bus.register(0x1000, 0x10, dev, "e");
});

Deno.test("Bus routes an access only when one device owns all of it", () => {
  const bus = new Bus("pio");
  const seen: [number, number][] = [];
  bus.register(0x10, 4, { read: (o, d) => d.fill(o), write: (o, d) => seen.push([o, d.length]) });
  const d = new Uint8Array(2);
  assertEquals(bus.read(0x12, d), true);
  assertEquals([...d], [2, 2]);
  assertEquals(bus.write(0x13, new Uint8Array(2)), false, "straddles the end");
  assertEquals(bus.write(0x0f, new Uint8Array(1)), false);
  assertEquals(bus.write(0x13, new Uint8Array(1)), true);
  assertEquals(seen, [[3, 1]]);
});

Deno.test("ByteRing carries bytes in order across the wrap and reports free space", () => {
  const r = ByteRing.create(8);
  assertEquals(r.push(new Uint8Array([1, 2, 3, 4, 5, 6])), 6);
  assertEquals([...r.drain()], [1, 2, 3, 4, 5, 6]);
  assertEquals(r.push(new Uint8Array([7, 8, 9, 10, 11, 12, 13, 14, 15])), 8, "capacity 8");
  assertEquals(r.pushByte(16), false);
  assertEquals([...r.drain()], [7, 8, 9, 10, 11, 12, 13, 14]);
  assertEquals(r.free, 8);
  assertThrows(() => new ByteRing(new SharedArrayBuffer(16 + 12)), RangeError);
});
