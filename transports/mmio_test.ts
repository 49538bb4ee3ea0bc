/**
 * The virtio-mmio register window itself (the device core's rules are in
 * `virtio/device_test.ts`): identity registers, access widths, queue selection, address
 * halves, deferred writes while stopped, interrupt acknowledge, notifier binding.
 */

import { assert, assertEquals } from "@std/assert";
import { DummyDevice } from "../testing/dummy_device.ts";
import { harness } from "../testing/setup.ts";
import { STATUS } from "../virtio/constants.ts";
import { UNUSABLE_RING_ADDR } from "../virtio/queue.ts";
import { MMIO_MAGIC, MMIO_VENDOR, type NotifyBinder, REG } from "./mmio.ts";

const u32 = (v: number) => {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, v >>> 0, true);
  return b;
};

/** Up to FEATURES_OK: the queue registers are writable from there to DRIVER_OK. */
function toDriver(h: ReturnType<typeof harness>) {
  assert(h.driver.init().ok);
}

Deno.test("mmio: identity registers, and reads of other widths or offsets return zero", () => {
  const h = harness(new DummyDevice({ queues: [8, 4] }));
  assertEquals(h.driver.readReg(REG.MAGIC), MMIO_MAGIC);
  assertEquals(h.driver.readReg(REG.VERSION), 2);
  assertEquals(h.driver.readReg(REG.DEVICE_ID), h.backend.deviceType);
  assertEquals(h.driver.readReg(REG.VENDOR_ID), MMIO_VENDOR);
  assertEquals(h.driver.readReg(REG.SHM_LEN_LOW), 0xffff_ffff, "no shared memory regions");
  const two = new Uint8Array([9, 9]);
  h.transport.read(REG.MAGIC, two);
  assertEquals([...two], [0, 0]);
  const odd = new Uint8Array(4).fill(9);
  h.transport.read(REG.MAGIC + 2, odd);
  assertEquals([...odd], [0, 0, 0, 0]);
  assert(h.log.some((l) => l.includes("2-byte register read")));
  const legacy = harness(new DummyDevice({ queues: [8] }), { legacy: true });
  assertEquals(legacy.driver.readReg(REG.VERSION), 1);
});

Deno.test("mmio: QueueSel picks the queue; a queue that does not exist reads max 0", () => {
  const h = harness(new DummyDevice({ queues: [8, 4] }));
  toDriver(h);
  h.driver.writeReg(REG.QUEUE_SEL, 1);
  assertEquals(h.driver.readReg(REG.QUEUE_NUM_MAX), 4);
  h.driver.writeReg(REG.QUEUE_NUM, 2);
  assertEquals(h.device.queues[1]!.size, 2);
  assertEquals(h.device.queues[0]!.size, 8, "queue 0 untouched");
  h.driver.writeReg(REG.QUEUE_SEL, 7);
  assertEquals(h.driver.readReg(REG.QUEUE_NUM_MAX), 0);
  h.driver.writeReg(REG.QUEUE_NUM, 2); // ignored, nothing to set
  h.driver.writeReg(REG.QUEUE_SEL, 1);
  h.driver.writeReg(REG.QUEUE_NUM, 3);
  assertEquals(h.device.queues[1]!.size, 2, "3 is not a power of two");
  assert(h.log.some((l) => l.includes("Ignored QueueNum 3")), h.log.join("\n"));
});

Deno.test("mmio: queue addresses compose from halves; misaligned is refused, past 2^53 unusable", () => {
  const h = harness(new DummyDevice({ queues: [8] }));
  toDriver(h);
  h.driver.writeReg(REG.QUEUE_SEL, 0);
  h.driver.writeReg(REG.QUEUE_DESC_LOW, 0x1000);
  h.driver.writeReg(REG.QUEUE_DESC_HIGH, 0x1);
  assertEquals(h.device.queues[0]!.descAddr, 0x1_0000_1000);
  h.driver.writeReg(REG.QUEUE_DESC_HIGH, 0);
  assertEquals(h.device.queues[0]!.descAddr, 0x1000);
  h.driver.writeReg(REG.QUEUE_DESC_LOW, 0x1008);
  assertEquals(h.device.queues[0]!.descAddr, 0x1000, "not 16-aligned: refused");
  h.driver.writeReg(REG.QUEUE_USED_LOW, 0x3000);
  h.driver.writeReg(REG.QUEUE_USED_HIGH, 0x0040_0000);
  assertEquals(h.device.queues[0]!.usedAddr, UNUSABLE_RING_ADDR);
  assert(h.log.some((l) => l.includes("not 16-aligned")), h.log.join("\n"));
});

Deno.test("mmio: writes while stopped wait, in order, and are replayed on resume", async () => {
  const h = harness(new DummyDevice({ queues: [8] }));
  await h.transport.stop();
  h.transport.write(REG.STATUS, u32(STATUS.ACKNOWLEDGE));
  h.transport.write(REG.STATUS, u32(STATUS.ACKNOWLEDGE | STATUS.DRIVER));
  assertEquals(h.device.status, 0, "nothing applied while stopped");
  h.transport.resume();
  assertEquals(h.device.status, STATUS.ACKNOWLEDGE | STATUS.DRIVER);
});

Deno.test("mmio: InterruptACK clears the bits written; the line stays for the others", () => {
  const h = harness(new DummyDevice({ queues: [8] }));
  assert(h.driver.init().ok);
  h.driver.setupQueue(0);
  h.driver.driverOk();
  h.backend.changeConfig();
  assertEquals(h.driver.readReg(REG.INTERRUPT_STATUS) & 2, 2, "config change pending");
  h.driver.writeReg(REG.INTERRUPT_ACK, 2);
  assertEquals(h.driver.readReg(REG.INTERRUPT_STATUS) & 2, 0);
});

Deno.test("mmio: queue notifications are bound at DRIVER_OK and unbound at reset", () => {
  const bound = new Set<number>();
  const notifier: NotifyBinder = {
    bind: (i) => void bound.add(i),
    unbind: (i) => void bound.delete(i),
  };
  const h = harness(new DummyDevice({ queues: [8, 4] }), { notifier });
  assert(h.driver.init().ok);
  h.driver.setupQueue(0);
  h.driver.setupQueue(1);
  assertEquals(bound.size, 0, "not before DRIVER_OK");
  h.driver.driverOk();
  assertEquals([...bound].sort(), [0, 1]);
  h.driver.writeReg(REG.STATUS, 0);
  assertEquals(bound.size, 0, "reset unbinds");
});
