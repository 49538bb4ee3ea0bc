import { assert, assertEquals, assertThrows } from "@std/assert";
import { GuestMemory } from "../memory/guest_memory.ts";
import { GuestAllocator, VirtqueueDriver } from "../testing/driver.ts";
import { DESC_F } from "./constants.ts";
import {
  ChainReader,
  ChainWriter,
  copyChain,
  Queue,
  QueueError,
  ScratchChain,
  UNUSABLE_RING_ADDR,
} from "./queue.ts";
import { vringNeedEvent, wrap16 } from "./ring.ts";

function setup(size = 8, opts: { eventIdx?: boolean; indirect?: boolean } = {}) {
  const mem = GuestMemory.allocate([{ gpa: 0, size: 0x40000 }]);
  const alloc = new GuestAllocator(mem, 0x1000, 0x40000);
  const q = new Queue(size);
  q.setAddress("descAddr", alloc.alloc(16 * size, 16));
  q.setAddress("availAddr", alloc.alloc(6 + 2 * size, 2));
  q.setAddress("usedAddr", alloc.alloc(6 + 8 * size, 4));
  q.setReady(true);
  q.eventIdx = opts.eventIdx ?? false;
  q.indirect = opts.indirect ?? false;
  const d = new VirtqueueDriver(mem, alloc, 0, {
    size,
    desc: q.descAddr,
    avail: q.availAddr,
    used: q.usedAddr,
  });
  d.eventIdx = q.eventIdx;
  assertEquals(q.invalidReason(mem), undefined);
  return { mem, alloc, q, d };
}

function writeDesc(
  mem: GuestMemory,
  table: number,
  i: number,
  addr: number,
  len: number,
  flags: number,
  next = 0,
) {
  mem.writeU64(table + 16 * i, addr);
  mem.writeU32(table + 16 * i + 8, len);
  mem.writeU16(table + 16 * i + 12, flags);
  mem.writeU16(table + 16 * i + 14, next);
}

Deno.test("Queue.pop() returns null when empty and parses readable then writable buffers", () => {
  const { mem, q, d } = setup();
  assertEquals(q.pop(mem), null);
  const head = d.add([{ addr: 0x8000, len: 10, write: false }, {
    addr: 0x9000,
    len: 20,
    write: true,
  }, {
    addr: 0x9100,
    len: 4,
    write: true,
  }]);
  const c = q.pop(mem)!;
  assertEquals(c.error, undefined);
  assertEquals(c.head, head);
  assertEquals(c.readable, [{ addr: 0x8000, len: 10 }]);
  assertEquals(c.writable, [{ addr: 0x9000, len: 20 }, { addr: 0x9100, len: 4 }]);
  assertEquals([c.readableLen, c.writableLen], [10, 24]);
  assertEquals(q.pop(mem), null);
  q.addUsed(mem, c.head, 24);
  assertEquals(d.getUsed(), { id: head, len: 24 });
});

Deno.test("Queue.pop() follows an indirect table only when VIRTIO_F_INDIRECT_DESC is negotiated", () => {
  const on = setup(8, { indirect: true });
  on.d.add([{ addr: 0x8000, len: 3, write: false }, { addr: 0x9000, len: 5, write: true }], {
    indirect: true,
  });
  const c = on.q.pop(on.mem)!;
  assertEquals(c.error, undefined);
  assertEquals([c.readableLen, c.writableLen], [3, 5]);

  const off = setup(8, { indirect: false });
  off.d.add([{ addr: 0x8000, len: 3, write: false }], { indirect: true });
  assert(off.q.pop(off.mem)!.error?.includes("without VIRTIO_F_INDIRECT_DESC"));
});

Deno.test("Queue.pop() rejects indirect-in-indirect, INDIRECT|NEXT and bad table lengths", () => {
  const { mem, alloc, q, d } = setup(8, { indirect: true });
  const inner = alloc.alloc(32, 16);
  writeDesc(mem, inner, 0, inner, 16, DESC_F.INDIRECT);
  writeDesc(mem, q.descAddr, 0, inner, 16, DESC_F.INDIRECT);
  d.publish(0);
  assert(q.pop(mem)!.error?.includes("inside an indirect table"));
  writeDesc(mem, q.descAddr, 1, inner, 16, DESC_F.INDIRECT | DESC_F.NEXT, 2);
  d.publish(1);
  assert(q.pop(mem)!.error?.includes("with NEXT"));
  writeDesc(mem, q.descAddr, 2, inner, 24, DESC_F.INDIRECT);
  d.publish(2);
  assert(q.pop(mem)!.error?.includes("multiple of 16"));
  writeDesc(mem, q.descAddr, 3, inner, 16 * 9, DESC_F.INDIRECT);
  d.publish(3);
  assert(q.pop(mem)!.error?.includes("exceeds size"));
});

Deno.test("Queue.pop() stops a descriptor loop after the queue size (TTL)", () => {
  const { mem, q, d } = setup(8);
  writeDesc(mem, q.descAddr, 0, 0x8000, 1, DESC_F.NEXT, 1);
  writeDesc(mem, q.descAddr, 1, 0x8000, 1, DESC_F.NEXT, 0);
  d.publish(0);
  assert(q.pop(mem)!.error?.includes("longer than its table"));
  writeDesc(mem, q.descAddr, 2, 0x8000, 1, DESC_F.NEXT, 9);
  d.publish(2);
  assert(q.pop(mem)!.error?.includes("beyond table size"));
});

Deno.test("Queue.pop() checks each buffer's whole range against guest RAM", () => {
  const { mem, q, d } = setup(8);
  d.add([{ addr: 0x3ffff, len: 2, write: false }]);
  assert(q.pop(mem)!.error?.includes("outside guest RAM"));
  d.add([{ addr: 2 ** 60, len: 1, write: true }]);
  assert(q.pop(mem)!.error?.includes("outside guest RAM"));
  d.add([{ addr: 0x3fff0, len: 16, write: true }]);
  assertEquals(q.pop(mem)!.error, undefined, "a buffer ending exactly at the end of RAM is fine");
});

Deno.test("Queue.pop() refuses a readable buffer after a writable one", () => {
  const { mem, q, d } = setup(8);
  d.add([{ addr: 0x8000, len: 1, write: true }, { addr: 0x8100, len: 1, write: false }]);
  assert(q.pop(mem)!.error?.includes("readable buffer after a writable one"));
});

Deno.test("Queue.popInto() fills one chain in place, reusing its buffers; copyChain keeps one", () => {
  const { mem, q, d } = setup(8);
  const chains = [
    [{ addr: 0x8000, len: 16, write: false }, { addr: 0x9000, len: 512, write: true }, {
      addr: 0x9800,
      len: 1,
      write: true,
    }],
    [{ addr: 0x8100, len: 1, write: true }, { addr: 0x8200, len: 1, write: false }], // bad
    [{ addr: 0xa000, len: 32, write: false }],
  ];
  for (const c of chains) d.add(c);
  // The same chains through pop(), for comparison (then offered again).
  const expected = chains.map(() => q.pop(mem)!);
  q.undoPop(3);
  const scratch = new ScratchChain();
  assert(q.popInto(mem, scratch));
  assertEquals({ ...scratch, pool: undefined }, {
    ...expected[0]!,
    error: undefined,
    pool: undefined,
  });
  const kept = copyChain(scratch);
  const first = scratch.writable[0]!;
  assert(q.popInto(mem, scratch));
  assert(scratch.error?.includes("readable buffer after a writable one"));
  assert(q.popInto(mem, scratch));
  assertEquals(scratch.error, undefined, "a fill clears the last chain's error");
  assertEquals(scratch.head, expected[2]!.head);
  assertEquals(scratch.readable, [{ addr: 0xa000, len: 32 }]);
  assertEquals(scratch.writable, []);
  assertEquals([scratch.readableLen, scratch.writableLen], [32, 0]);
  assert(scratch.readable[0] === scratch.pool[0], "the pool's objects, not new ones");
  assert(first === scratch.pool[1]);
  assertEquals(scratch.pool.length, 3, "no more buffer objects than the longest chain");
  // The copy still describes the first chain.
  assertEquals(kept, expected[0]);
  assert(!q.popInto(mem, scratch), "empty");
});

Deno.test("Queue.pop() refuses chains of 4 GiB or more", () => {
  class Roomy extends GuestMemory {
    override contains(): boolean {
      return true;
    }
  }
  const mem = new Roomy([{ gpa: 0, bytes: new Uint8Array(0x10000) }]);
  const q = new Queue(4);
  q.setAddress("descAddr", 0x1000);
  q.setAddress("availAddr", 0x2000);
  q.setAddress("usedAddr", 0x3000);
  writeDesc(mem, 0x1000, 0, 0, 0x8000_0000, DESC_F.NEXT, 1);
  writeDesc(mem, 0x1000, 1, 0, 0x8000_0000, 0);
  mem.writeU16(0x2004, 0);
  mem.writeU16(0x2002, 1);
  assert(q.pop(mem)!.error?.includes("4 GiB"));
});

Deno.test("Queue.pop() throws QueueError for an avail index beyond the size and a bad head", () => {
  const { mem, q, d } = setup(8);
  d.setAvailIdx(9);
  assertThrows(() => q.pop(mem), QueueError, "more than the size");
  const s2 = setup(8);
  s2.mem.writeU16(s2.q.availAddr + 4, 8); // head 8 in a queue of 8
  s2.d.setAvailIdx(1);
  assertThrows(() => s2.q.pop(s2.mem), QueueError, "beyond size");
});

Deno.test("Queue indices wrap at 65536: 65548 requests through a queue of 4", () => {
  const { mem, q, d } = setup(4, { eventIdx: true });
  let interrupts = 0;
  for (let i = 0; i < 65536 + 12; i++) {
    const head = d.add([{ addr: 0x8000, len: 1, write: true }]);
    const c = q.pop(mem)!;
    assertEquals(c.head, head);
    q.addUsed(mem, c.head, 1);
    if (q.needsInterrupt(mem)) interrupts++;
    assertEquals(d.getUsed(), { id: head, len: 1 });
  }
  assertEquals(q.nextAvail, 12);
  assertEquals(q.nextUsed, 12);
  assertEquals(mem.readU16(q.usedAddr + 2), 12);
  assertEquals(interrupts, 65536 + 12, "the driver asked for each one (used_event = last used)");
});

Deno.test("vringNeedEvent() across the wrap and wrap16()", () => {
  assertEquals(wrap16(65536 + 5), 5);
  assertEquals(wrap16(-1), 0xffff);
  assert(vringNeedEvent(0xfffe, 1, 0xfffd));
  assert(vringNeedEvent(0, 1, 0xffff));
  assert(!vringNeedEvent(2, 1, 0xffff));
  assert(!vringNeedEvent(0xffff, 0xffff, 0xfffe), "event at the new index is not crossed yet");
});

Deno.test("Queue.needsInterrupt() honours used_event (event index) and NO_INTERRUPT (flags)", () => {
  const ev = setup(8, { eventIdx: true });
  ev.d.delayInterrupts(3); // interrupt once the third buffer is used
  for (let i = 0; i < 3; i++) ev.d.add([{ addr: 0x8000, len: 1, write: true }]);
  const got: boolean[] = [];
  for (let i = 0; i < 3; i++) {
    const c = ev.q.pop(ev.mem)!;
    ev.q.addUsed(ev.mem, c.head, 0);
    got.push(ev.q.needsInterrupt(ev.mem));
  }
  // The first decision has no previous one to compare with, so it interrupts (as vhost does).
  assertEquals(got, [true, false, true]);

  const fl = setup(8);
  fl.d.disableInterrupts();
  fl.d.add([{ addr: 0x8000, len: 1, write: true }]);
  fl.q.addUsed(fl.mem, fl.q.pop(fl.mem)!.head, 0);
  assertEquals(fl.q.needsInterrupt(fl.mem), false);
  fl.d.enableInterrupts();
  assertEquals(fl.q.needsInterrupt(fl.mem), true);
});

Deno.test("enableNotification() publishes avail_event and reports buffers that raced in", () => {
  const { mem, q, d } = setup(8, { eventIdx: true });
  d.add([{ addr: 0x8000, len: 1, write: true }]);
  q.disableNotification(mem);
  q.pop(mem);
  assertEquals(q.enableNotification(mem), false);
  assertEquals(mem.readU16(q.usedAddr + 4 + 8 * 8), 1, "avail_event = next avail");
  assertEquals(d.needsKick(), false, "the device already took entry 0: no kick needed");
  d.add([{ addr: 0x8000, len: 1, write: true }]); // arrives while the device "was busy"
  assertEquals(d.needsKick(), true, "entry 1 crosses avail_event = 1");
  assertEquals(q.enableNotification(mem), true, "the re-check sees it");

  const f = setup(8);
  f.q.disableNotification(f.mem);
  assertEquals(f.mem.readU16(f.q.usedAddr), 1, "VRING_USED_F_NO_NOTIFY set");
  f.d.add([{ addr: 0x8000, len: 1, write: true }]);
  assertEquals(f.d.needsKick(), false);
  assertEquals(f.q.enableNotification(f.mem), true);
  assertEquals(f.mem.readU16(f.q.usedAddr), 0);
});

Deno.test("Queue.save()/restore() round-trip and refuse bad state", () => {
  const { mem, q, d } = setup(8, { eventIdx: true });
  d.add([{ addr: 0x8000, len: 1, write: true }]);
  q.addUsed(mem, q.pop(mem)!.head, 1);
  const s = q.save();
  const r = new Queue(8);
  r.restore(s, mem);
  assertEquals(r.save(), s);
  assertThrows(
    () => new Queue(8).restore({ ...s, size: 16 }, mem),
    RangeError,
    "power of two <= 8",
  );
  assertThrows(() => new Queue(8).restore({ ...s, size: 6 }, mem), RangeError);
  assertThrows(() => new Queue(8).restore({ ...s, nextAvail: 70000 }, mem), RangeError, "16-bit");
  assertThrows(
    () => new Queue(8).restore({ ...s, descAddr: 0x1008 }, mem),
    RangeError,
    "16-aligned",
  );
  assertThrows(() => new Queue(8).restore({ ...s, usedAddr: 0x3fffc }, mem), RangeError, "outside");
  assertThrows(
    () => new Queue(8).restore({ ...s, ready: "yes" } as unknown as typeof s, mem),
    RangeError,
    "boolean",
  );
  const untouched = new Queue(8);
  assertThrows(() => untouched.restore({ ...s, usedAddr: 0x3fffc }, mem));
  assertEquals(untouched.ready, false, "a refused restore changes nothing");
});

Deno.test("ChainReader/ChainWriter copy across buffers and refuse overflow", () => {
  const { mem, q, d } = setup(8);
  mem.write(0x8000, new Uint8Array([1, 2, 3]));
  mem.write(0x8100, new Uint8Array([4, 5]));
  d.add([{ addr: 0x8000, len: 3, write: false }, { addr: 0x8100, len: 2, write: false }, {
    addr: 0x9000,
    len: 2,
    write: true,
  }, { addr: 0x9100, len: 3, write: true }]);
  const c = q.pop(mem)!;
  const r = new ChainReader(mem, c);
  assertEquals([...r.read(4)], [1, 2, 3, 4]);
  assertEquals(r.remaining, 1);
  assertThrows(() => r.read(2), RangeError);
  const w = new ChainWriter(mem, c);
  w.write(new Uint8Array([9, 8, 7, 6]));
  assertEquals([...mem.read(0x9000, 2), ...mem.read(0x9100, 2)], [9, 8, 7, 6]);
  assertThrows(() => w.write(new Uint8Array(2)), RangeError);
  assertEquals(w.written, 4);
});

Deno.test("queue setters validate like the spec: size a power of two <= max, rings aligned", () => {
  const q = new Queue(16);
  assertEquals(q.setSize(8), undefined);
  assertEquals(q.size, 8);
  for (const bad of [0, 3, 32, 12, -4, 1.5]) {
    assert(q.setSize(bad)?.includes("not a power of two <= 16"), `size ${bad}`);
    assertEquals(q.size, 8, "a refused size changes nothing");
  }
  assertEquals(q.setAddress("descAddr", 0x1000), undefined);
  assert(q.setAddress("descAddr", 0x1008)?.includes("not 16-aligned"));
  assert(q.setAddress("availAddr", 0x2001)?.includes("not 2-aligned"));
  assert(q.setAddress("usedAddr", 0x3002)?.includes("not 4-aligned"));
  assertEquals([q.descAddr, q.availAddr, q.usedAddr], [0x1000, 0, 0]);
  // Beyond 2^53 (two 32-bit halves can say so): stored as an address no RAM holds.
  assertEquals(q.setAddress("usedAddr", 2 ** 60), undefined);
  assertEquals(q.usedAddr, UNUSABLE_RING_ADDR);
  const mem = GuestMemory.allocate([{ gpa: 0, size: 0x10000 }]);
  q.setReady(true);
  assert(q.invalidReason(mem)?.includes("used ring outside guest RAM"));
  // Restore runs the same checks, ready or not.
  const saved = { ...q.save(), ready: false, availAddr: 0x2001 };
  assertThrows(() => new Queue(16).restore(saved, mem), RangeError, "not 2-aligned");
  assertThrows(
    () => new Queue(16).restore({ ...q.save(), ready: false, size: 32 }, mem),
    RangeError,
    "not a power of two <= 16",
  );
});
