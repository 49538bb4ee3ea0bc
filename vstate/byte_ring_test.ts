/** The serial output ring between a vCPU worker and the device thread. */

import { assert, assertEquals, assertThrows } from "@std/assert";
import { ByteRing } from "./byte_ring.ts";

Deno.test("ByteRing: bytes come out in order, across the wrap, never more than fits", () => {
  const r = ByteRing.create(8);
  assertEquals(r.push(new Uint8Array([1, 2, 3, 4, 5, 6])), 6);
  assertEquals([...r.drain()], [1, 2, 3, 4, 5, 6]);
  assertEquals(r.push(new Uint8Array([7, 8, 9, 10, 11, 12, 13, 14, 15, 16])), 8, "8 fit");
  assertEquals(r.free, 0);
  assertEquals(r.push(new Uint8Array([99])), 0, "full: nothing taken");
  assertEquals([...r.drain()], [7, 8, 9, 10, 11, 12, 13, 14]);
  assertEquals([r.length, r.free], [0, 8]);
  assertEquals(r.drain().byteLength, 0);
});

Deno.test("ByteRing: a view from another SharedArrayBuffer holder sees the same bytes", () => {
  const a = ByteRing.create(16);
  const b = new ByteRing(a.sab);
  a.push(new TextEncoder().encode("shared"));
  assertEquals(new TextDecoder().decode(b.drain()), "shared");
  assertEquals(a.length, 0);
  assertThrows(() => new ByteRing(new SharedArrayBuffer(16 + 12)), RangeError, "power of two");
});

Deno.test("ByteRing: the writer wakes the reader once per batch, and never loses a byte", () => {
  const r = ByteRing.create(16);
  assert(r.pushByte(1));
  assertEquals(r.takeWakeRequest(), true, "the first byte wakes the idle reader");
  assert(r.pushByte(2));
  assertEquals(r.takeWakeRequest(), false, "the reader is awake: no second wake");
  assertEquals([...r.drainArmed()], [1, 2]);
  assert(r.pushByte(3));
  assertEquals(r.takeWakeRequest(), true, "drained and idle again: the next byte wakes it");
  // A byte pushed between the reader's drain and its request is found by its second look.
  const w = new ByteRing(r.sab);
  assertEquals([...r.drain()], [3]);
  assert(w.pushByte(4)); // the writer sees no request (taken above) and wakes nobody
  assertEquals(w.takeWakeRequest(), false);
  assertEquals([...r.drainArmed()], [4]);
});
