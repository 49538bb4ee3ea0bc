import { assertEquals } from "@std/assert";
import { ISR_ACK, ISR_STATUS, ISR_WINDOW, VirtioIsrTable } from "./virtio_isr.ts";
import { VirtioDevice } from "../virtio/device.ts";
import { DummyDevice } from "../testing/dummy_device.ts";
import { GuestMemory } from "../memory/guest_memory.ts";

const BASE = 0xd000_0000;
const le = (v: number) => new Uint8Array(new Uint32Array([v]).buffer);
const val = (d: Uint8Array) => new DataView(d.buffer, d.byteOffset, 4).getUint32(0, true);

Deno.test("ISR table: claimed windows answer status reads and ACK writes; nothing else", () => {
  const t = VirtioIsrTable.create(BASE, 4);
  const w = t.claim(BASE + ISR_WINDOW)!;
  assertEquals(w.index, 3);
  assertEquals(t.claim(BASE + 4 * ISR_WINDOW), undefined, "past the last slot");
  assertEquals(t.claim(BASE + 0x800), undefined, "not a window base");
  assertEquals(t.claim(BASE - ISR_WINDOW), undefined);
  Atomics.store(w.words, w.index, 1);
  assertEquals(t.claim(BASE + ISR_WINDOW), undefined, "a second device cannot take the slot");
  assertEquals(Atomics.load(w.words, w.index), 1, "and the first device's status is kept");
  Atomics.store(w.words, w.index, 0);
  Atomics.or(w.words, w.index, 3);
  const d = new Uint8Array(4);
  assertEquals(t.serve(BASE + ISR_WINDOW + ISR_STATUS, d, false), true);
  assertEquals(val(d), 3);
  assertEquals(t.serve(BASE + ISR_WINDOW + ISR_ACK, le(1), true), true);
  assertEquals(Atomics.load(w.words, w.index), 2);
  // Left to the device thread: unclaimed windows, other registers, other sizes, a write to
  // the status register, a read of ACK, addresses outside the table.
  assertEquals(t.serve(BASE + ISR_STATUS, d, false), false);
  assertEquals(t.serve(BASE + ISR_WINDOW + 0x70, d, false), false);
  assertEquals(t.serve(BASE + ISR_WINDOW + ISR_STATUS, new Uint8Array(2), false), false);
  assertEquals(t.serve(BASE + ISR_WINDOW + ISR_STATUS, le(2), true), false);
  assertEquals(t.serve(BASE + ISR_WINDOW + ISR_ACK, d, false), false);
  assertEquals(t.serve(BASE + 4 * ISR_WINDOW + ISR_STATUS, d, false), false);
  assertEquals(t.serve(BASE - 4, d, false), false);
  assertEquals(Atomics.load(w.words, w.index), 2);
  // The worker's view of the same buffer sees the same words.
  const worker = new VirtioIsrTable(BASE, 4, t.sab);
  assertEquals(worker.serve(BASE + ISR_WINDOW + ISR_ACK, le(0xffff_ffff), true), true);
  assertEquals(Atomics.load(w.words, w.index), 0);
  t.release(BASE + ISR_WINDOW);
  assertEquals(t.serve(BASE + ISR_WINDOW + ISR_STATUS, d, false), false, "released: crosses");
  assertEquals(t.claim(BASE + ISR_WINDOW)?.index, 3, "and can be claimed again");
});

Deno.test("ISR table: a device keeps its interrupt status in its claimed word", () => {
  const t = VirtioIsrTable.create(BASE, 2);
  const isrWord = t.claim(BASE)!;
  const mem = GuestMemory.allocate([{ gpa: 0, size: 0x10000 }]);
  let fired = 0;
  const dev = new VirtioDevice(new DummyDevice({ queues: [8] }), {
    mem,
    interrupt: { trigger: () => fired++ },
    isrWord,
  });
  dev.writeStatus(1); // ACKNOWLEDGE
  dev.writeStatus(1 | 2); // DRIVER
  dev.writeDriverFeaturesWord(1, 1); // VERSION_1
  dev.writeStatus(1 | 2 | 8); // FEATURES_OK
  dev.writeStatus(1 | 2 | 8 | 4); // DRIVER_OK
  assertEquals(dev.status, 15);
  dev.configChanged();
  assertEquals(fired, 1);
  assertEquals(dev.isr, 2);
  const d = new Uint8Array(4);
  assertEquals(t.serve(BASE + ISR_STATUS, d, false), true);
  assertEquals(val(d), 2, "the worker reads what the device raised");
  t.serve(BASE + ISR_ACK, le(2), true);
  assertEquals(dev.isr, 0, "the device sees the worker's ACK");
  dev.configChanged();
  const saved = dev.save();
  dev.reset();
  assertEquals(Atomics.load(isrWord.words, isrWord.index), 0, "reset clears the shared word");
  dev.restore(saved);
  assertEquals(Atomics.load(isrWord.words, isrWord.index), 2, "restore sets it");
});
