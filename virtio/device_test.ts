/** The virtio device core and the virtio-mmio transport, driven like Linux drives them. */

import { assert, assertEquals, assertFalse, assertThrows } from "@std/assert";
import { DummyDevice, F_DUMMY_A, F_DUMMY_B, F_DUMMY_NEEDS_B } from "../testing/dummy_device.ts";
import type { MmioDriver, VirtqueueDriver } from "../testing/driver.ts";
import { harness } from "../testing/setup.ts";
import { REG } from "../transports/mmio.ts";
import { bit, F, ISR, STATUS } from "./constants.ts";
import { STATUS_STEPS } from "./device.ts";

const ACK = STATUS.ACKNOWLEDGE,
  DRV = STATUS.DRIVER,
  FOK = STATUS.FEATURES_OK,
  DOK = STATUS.DRIVER_OK;

function echo(
  drv: MmioDriver,
  q: VirtqueueDriver,
  text: string,
  opts: { indirect?: boolean } = {},
) {
  const data = new TextEncoder().encode(text);
  const out = drv.outBuffer(data), inn = drv.inBuffer(data.byteLength);
  const id = q.add([out, inn], opts);
  drv.kick(q);
  return { id, read: () => new TextDecoder().decode(drv.mem.read(inn.addr, inn.len)) };
}

function live(opts: ConstructorParameters<typeof DummyDevice>[0] = {}, legacy = false) {
  const h = harness(new DummyDevice(opts), { legacy });
  const r = h.driver.init();
  assert(r.ok, r.error);
  const q = h.driver.setupQueue(0);
  h.driver.driverOk();
  return { ...h, q };
}

Deno.test("handshake: ACK, DRIVER, features, FEATURES_OK re-read, DRIVER_OK, then a request", () => {
  const h = harness(new DummyDevice());
  const r = h.driver.init({ wanted: bit(F.VERSION_1) | bit(F.EVENT_IDX) | bit(F_DUMMY_A) });
  assert(r.ok);
  assertEquals(r.status, ACK | DRV | FOK);
  assertEquals(h.device.driverFeatures, bit(F.VERSION_1) | bit(F.EVENT_IDX) | bit(F_DUMMY_A));
  assertEquals(h.driver.readReg(REG.VERSION), 2);
  assertEquals(h.driver.readReg(REG.DEVICE_ID), 0x7ffe);
  assertEquals(h.driver.readReg(REG.MAGIC), 0x74726976);
  const q = h.driver.setupQueue(0, 8);
  assertEquals(h.backend.activations, 0);
  h.driver.driverOk();
  assertEquals(h.driver.status, ACK | DRV | FOK | DOK);
  assertEquals(h.backend.activations, 1);
  const e = echo(h.driver, q, "hello");
  assertEquals(q.getUsed(), { id: e.id, len: 5 });
  assertEquals(e.read(), "olleh");
  assertEquals(h.irq.count, 1);
  assertEquals(h.driver.ackInterrupt(), ISR.USED_BUFFER);
  assertEquals(h.device.isr, 0);
});

Deno.test("FEATURES_OK: the device refuses a subset it cannot support; the re-read sees it clear", () => {
  const h = harness(new DummyDevice());
  const r = h.driver.init({ force: bit(F.VERSION_1) | bit(F_DUMMY_NEEDS_B) });
  assertFalse(r.ok);
  assertEquals(r.error, "device refused FEATURES_OK");
  assertEquals(r.status, ACK | DRV | STATUS.FAILED, "the driver gave up with FAILED");
  assert(h.log.some((l) => l.startsWith("Refused FEATURES_OK: device cannot work")));
  // The same device accepts the subset with B.
  assert(h.driver.init({ force: bit(F.VERSION_1) | bit(F_DUMMY_NEEDS_B) | bit(F_DUMMY_B) }).ok);
});

Deno.test("FEATURES_OK is refused without VERSION_1 or with features never offered", () => {
  const h = harness(new DummyDevice());
  assertEquals(h.driver.init({ force: bit(F_DUMMY_A) }).ok, false);
  assert(h.log.some((l) => l.includes("did not accept VIRTIO_F_VERSION_1")));
  assertEquals(h.driver.init({ force: bit(F.VERSION_1) | bit(40n) }).ok, false);
  assert(h.log.some((l) => l.includes("did not offer")));
  assertEquals(h.backend.activations, 0);
});

Deno.test("status: only the next step of the table is taken; bits are never cleared but by reset", () => {
  const h = harness(new DummyDevice());
  const d = h.driver;
  d.writeReg(REG.STATUS, DRV);
  assertEquals(d.status, 0, "DRIVER before ACKNOWLEDGE");
  d.writeReg(REG.STATUS, ACK | DRV);
  assertEquals(d.status, 0, "two steps at once");
  d.writeReg(REG.STATUS, ACK);
  d.writeReg(REG.STATUS, ACK | DRV);
  d.writeReg(REG.STATUS, ACK | DRV | DOK);
  assertEquals(d.status, ACK | DRV, "DRIVER_OK before FEATURES_OK");
  d.writeReg(REG.STATUS, ACK);
  assertEquals(d.status, ACK | DRV, "clearing DRIVER");
  d.writeReg(REG.STATUS, ACK | DRV | STATUS.DEVICE_NEEDS_RESET);
  assertEquals(d.status, ACK | DRV, "DEVICE_NEEDS_RESET is the device's bit");
  d.writeReg(REG.STATUS, ACK | DRV | STATUS.FAILED);
  assertEquals(d.status, ACK | DRV | STATUS.FAILED, "FAILED from anywhere");
  d.writeReg(REG.STATUS, ACK | DRV | STATUS.FAILED | FOK);
  assertEquals(d.status, ACK | DRV | STATUS.FAILED, "nothing after FAILED but reset");
  d.writeReg(REG.STATUS, 0);
  assertEquals(d.status, 0);
  assertEquals(h.backend.resets, 1);
});

Deno.test("reset (status 0) clears features, queues and interrupt status", () => {
  const h = live();
  echo(h.driver, h.q, "x");
  assert(h.device.isr !== 0);
  h.driver.writeReg(REG.STATUS, 0);
  assertEquals(h.device.driverFeatures, 0n);
  assertEquals(h.device.isr, 0);
  h.driver.writeReg(REG.QUEUE_SEL, 0);
  assertEquals(h.driver.readReg(REG.QUEUE_READY), 0);
  assertEquals(h.device.queues[0]!.save().nextAvail, 0);
  // And the device can be brought up again.
  assert(h.driver.init().ok);
});

Deno.test("registers are gated on status: features before FEATURES_OK, queues before DRIVER_OK", () => {
  const h = harness(new DummyDevice());
  const d = h.driver;
  d.writeReg(REG.QUEUE_SEL, 0);
  d.writeReg(REG.QUEUE_NUM, 4);
  assertEquals(h.device.queues[0]!.size, 16, "QueueNum before FEATURES_OK is ignored");
  assert(d.init().ok);
  d.writeReg(REG.DRIVER_FEATURES_SEL, 0);
  d.writeReg(REG.DRIVER_FEATURES, 0);
  assert(h.device.driverFeatures !== 0n, "DriverFeatures after FEATURES_OK is ignored");
  d.writeReg(REG.QUEUE_NUM, 6);
  assertEquals(h.device.queues[0]!.size, 16, "QueueNum not a power of two is ignored");
  d.writeReg(REG.QUEUE_NUM, 32);
  assertEquals(h.device.queues[0]!.size, 16, "QueueNum above QueueNumMax is ignored");
  const q = d.setupQueue(0, 4);
  d.writeReg(REG.QUEUE_NOTIFY, 0);
  assertEquals(h.backend.processed, 0, "no processing before DRIVER_OK");
  d.driverOk();
  d.writeReg(REG.QUEUE_SEL, 0);
  d.writeReg(REG.QUEUE_DESC_LOW, 0x5000);
  assertEquals(h.device.queues[0]!.descAddr, q.desc, "queue address after DRIVER_OK is ignored");
  d.writeReg(REG.QUEUE_SEL, 7);
  assertEquals(d.readReg(REG.QUEUE_NUM_MAX), 0, "no queue 7");
  d.writeReg(REG.QUEUE_NOTIFY, 7);
  const b = new Uint8Array(2);
  h.transport.read(REG.STATUS, b);
  assertEquals([...b], [0, 0], "a 2-byte register read gives 0");
  assertEquals(d.readReg(REG.SHM_LEN_LOW), 0xffff_ffff, "no shared memory regions");
});

Deno.test("activation failure sets DEVICE_NEEDS_RESET and raises a config interrupt", () => {
  const h = harness(new DummyDevice({ failActivation: true }));
  assert(h.driver.init().ok);
  h.driver.setupQueue(0);
  h.driver.driverOk();
  assert(h.driver.status & STATUS.DEVICE_NEEDS_RESET);
  assertEquals(h.device.isr & ISR.CONFIG_CHANGE, ISR.CONFIG_CHANGE);
  assertEquals(h.irq.count, 1);
});

Deno.test("a queue outside guest RAM at DRIVER_OK means DEVICE_NEEDS_RESET", () => {
  const h = harness(new DummyDevice());
  assert(h.driver.init().ok);
  h.driver.writeReg(REG.QUEUE_SEL, 0);
  h.driver.writeReg(REG.QUEUE_NUM, 16);
  h.driver.writeReg(REG.QUEUE_DESC_HIGH, 0x10);
  h.driver.writeReg(REG.QUEUE_READY, 1);
  h.driver.driverOk();
  assert(h.driver.status & STATUS.DEVICE_NEEDS_RESET);
  assertEquals(h.backend.activations, 0);
});

Deno.test("a broken ring after DRIVER_OK: DEVICE_NEEDS_RESET, config interrupt, no more processing", () => {
  const h = live();
  h.q.setAvailIdx(100); // 100 entries ahead of a queue of 16
  h.driver.writeReg(REG.QUEUE_NOTIFY, 0);
  assert(h.driver.status & STATUS.DEVICE_NEEDS_RESET);
  assertEquals(h.driver.ackInterrupt(), ISR.CONFIG_CHANGE);
  h.q.setAvailIdx(0);
  echo(h.driver, h.q, "ignored");
  h.driver.writeReg(REG.QUEUE_NOTIFY, 0);
  assertEquals(h.backend.processed, 0);
  const t = live({ throwOnProcess: true });
  echo(t.driver, t.q, "boom");
  assert(t.driver.status & STATUS.DEVICE_NEEDS_RESET, "a device exception is contained");
});

Deno.test("a malformed chain is returned with length 0 and the device goes on", () => {
  const h = live();
  h.q.add([{ addr: 0xfffff, len: 2, write: false }]);
  h.driver.kick(h.q);
  const bad = h.q.getUsed()!;
  assertEquals(bad.len, 0);
  assertEquals(h.backend.malformed.length, 1);
  const e = echo(h.driver, h.q, "ok");
  assertEquals(h.q.getUsed(), { id: e.id, len: 2 });
  assertEquals(h.driver.status & STATUS.DEVICE_NEEDS_RESET, 0);
});

Deno.test("config generation changes with device config; the driver's read is consistent", () => {
  const h = live();
  const g0 = h.driver.readReg(REG.CONFIG_GENERATION);
  h.backend.changeConfig();
  assertEquals(h.driver.readReg(REG.CONFIG_GENERATION), g0 + 1);
  assertEquals(h.driver.ackInterrupt(), ISR.CONFIG_CHANGE);
  assertEquals([...h.driver.readConfig(4, 4)], [1, 0, 0, 0]);
  h.driver.writeConfig(0, new Uint8Array([7, 0, 0, 0]));
  assertEquals(h.driver.readConfig(0, 1)[0], 7);
  h.driver.writeConfig(4, new Uint8Array([9]));
  assertEquals(h.driver.readConfig(4, 1)[0], 1, "the counter is read-only");
  const b = new Uint8Array(4);
  h.transport.read(REG.CONFIG + 6, b);
  assertEquals([...b], [0, 0, 0, 0], "a read past the config space gives zeros");
});

Deno.test("event index: the device interrupts only when used_event is crossed", () => {
  const h = live();
  assert(h.q.eventIdx);
  h.q.delayInterrupts(3);
  const d = h.driver;
  for (let i = 0; i < 3; i++) h.q.add([d.outBuffer(new Uint8Array([i])), d.inBuffer(1)]);
  d.kick(h.q);
  assertEquals(h.q.drainUsed().length, 3);
  assertEquals(h.irq.count, 1, "one interrupt for three buffers");
  h.q.disableInterrupts();
  echo(d, h.q, "a");
  assertEquals(h.irq.count, 1, "no interrupt while disabled");
  assertEquals(h.q.enableInterrupts(), true, "but the re-check finds the used buffer");
});

Deno.test("without event index: VRING_AVAIL_F_NO_INTERRUPT suppresses interrupts", () => {
  const h = harness(new DummyDevice());
  assert(h.driver.init({ wanted: ~bit(F.EVENT_IDX) }).ok);
  const q = h.driver.setupQueue(0);
  h.driver.driverOk();
  assertFalse(q.eventIdx);
  q.disableInterrupts();
  echo(h.driver, q, "a");
  assertEquals(h.irq.count, 0);
  q.enableInterrupts();
  echo(h.driver, q, "b");
  assertEquals(h.irq.count, 1);
});

Deno.test("notification suppression: the driver kicks only when the device asks", () => {
  const h = live();
  const d = h.driver;
  let kicks = 0;
  for (let i = 0; i < 5; i++) {
    h.q.add([d.outBuffer(new Uint8Array([i])), d.inBuffer(1)]);
    if (d.kick(h.q)) kicks++;
  }
  assertEquals(kicks, 5, "the device drains each time and asks for the next one");
  // Publish two without kicking: avail_event stays behind, so one kick covers both.
  h.q.add([d.outBuffer(new Uint8Array([1])), d.inBuffer(1)]);
  h.q.add([d.outBuffer(new Uint8Array([2])), d.inBuffer(1)]);
  assert(d.kick(h.q));
  assertEquals(h.backend.processed, 7);
});

Deno.test("indirect descriptors through the transport", () => {
  const h = live();
  const e = echo(h.driver, h.q, "indirect", { indirect: true });
  assertEquals(h.q.getUsed(), { id: e.id, len: 8 });
  assertEquals(e.read(), "tceridni");
});

Deno.test("legacy (version 1): no VERSION_1, no FEATURES_OK, QueuePFN layout, unoffered bits masked", () => {
  const h = harness(new DummyDevice(), { legacy: true });
  const r = h.driver.init({ force: bit(F_DUMMY_A) | bit(F.EVENT_IDX) | bit(20n) });
  assert(r.ok);
  assertEquals(h.driver.version, 1);
  assertEquals(
    h.device.driverFeatures,
    bit(F_DUMMY_A) | bit(F.EVENT_IDX),
    "bit 20 was never offered",
  );
  assertEquals(h.device.offered & bit(F.VERSION_1), 0n);
  assertEquals(r.status, ACK | DRV);
  const q = h.driver.setupQueue(0, 8);
  h.driver.driverOk();
  assertEquals(h.driver.status, ACK | DRV | DOK);
  const e = echo(h.driver, q, "legacy");
  assertEquals(q.getUsed(), { id: e.id, len: 6 });
  assertEquals(e.read(), "ycagel");
  assertEquals(h.driver.readReg(REG.CONFIG_GENERATION), 0);
});

Deno.test("a modern device ignores the legacy queue registers", () => {
  const h = harness(new DummyDevice());
  assert(h.driver.init().ok);
  h.driver.writeReg(REG.QUEUE_SEL, 0);
  h.driver.writeReg(REG.QUEUE_PFN, 0x10);
  assertEquals(h.device.queues[0]!.ready, false);
  assert(h.log.some((l) => l.includes("QueuePFN on a modern device")));
});

Deno.test("stop(): no new requests, in-flight completed, config frozen, no interrupts; resume() continues", async () => {
  const h = live({ async: true });
  const d = h.driver;
  const a = echo(d, h.q, "one");
  const b = echo(d, h.q, "two");
  assertEquals(h.backend.inflight(), 2);
  let stopped = false;
  const stopping = h.transport.stop().then(() => (stopped = true));
  await Promise.resolve();
  assertFalse(stopped, "not stopped while requests are in flight");
  assertFalse(h.device.stopped);
  // A new request arrives while stopping: the device must not read it.
  const c = echo(d, h.q, "three");
  h.device.notify(0);
  assertEquals(h.device.queues[0]!.nextAvail, 2, "the third request was not taken");
  // Config changes wait; the in-flight requests complete without an interrupt.
  const gen = d.readReg(REG.CONFIG_GENERATION);
  h.backend.changeConfig();
  const irqs = h.irq.count;
  h.backend.completeAll();
  await stopping;
  assert(stopped && h.device.stopped);
  assertEquals(h.irq.count, irqs, "no interrupt while stopped");
  assertEquals(d.readReg(REG.CONFIG_GENERATION), gen, "config unchanged while stopped");
  assertEquals(
    h.q.drainUsed().map((u) => u.id).sort(),
    [a.id, b.id].sort(),
    "in-flight were completed",
  );
  // Register writes wait too, and are replayed on resume, before the deferred events.
  const isrBefore = h.device.isr;
  d.writeReg(REG.INTERRUPT_ACK, 3);
  assertEquals(h.device.isr, isrBefore, "the ack waits for resume");
  h.transport.resume();
  assertEquals(h.device.isr & ISR.CONFIG_CHANGE, ISR.CONFIG_CHANGE, "the deferred config change");
  assertEquals(d.readReg(REG.CONFIG_GENERATION), gen + 1);
  assert(h.irq.count > irqs, "the deferred interrupt was delivered");
  assertEquals(h.backend.inflight(), 1, "resume re-kicked the queue: the third request was taken");
  h.backend.completeAll();
  assertEquals(h.q.getUsed()?.id, c.id);
  assertEquals(c.read(), "eerht");
});

Deno.test("save()/restore() carries a live device to a fresh one that continues", () => {
  const h = live();
  echo(h.driver, h.q, "before");
  h.q.drainUsed();
  const state = h.transport.save();
  const json = JSON.parse(JSON.stringify(state));
  const h2 = harness(new DummyDevice(), { mem: h.mem });
  h2.transport.restore(json);
  assertEquals(h2.device.status, ACK | DRV | FOK | DOK);
  assertEquals(h2.backend.activations, 1);
  assertEquals(h2.transport.save(), state);
  assert(h2.device.stopped, "a restored device waits for resume");
  h2.transport.resume();
  // The driver's queue (same memory) keeps working against the restored device.
  const e = echo(h.driver, h.q, "after");
  h2.device.notify(0);
  assertEquals(h.q.getUsed(), { id: e.id, len: 5 });
  assertEquals(e.read(), "retfa");
});

Deno.test("restore() refuses a wrong device type, unoffered features and bad queues", () => {
  const h = live();
  const s = JSON.parse(JSON.stringify(h.transport.save()));
  const fresh = () => harness(new DummyDevice(), { mem: h.mem }).transport;
  assertThrows(
    () => fresh().restore({ ...s, device: { ...s.device, deviceType: 2 } }),
    RangeError,
    "type",
  );
  assertThrows(
    () => fresh().restore({ ...s, device: { ...s.device, driverFeatures: "ffffffffffffffff" } }),
    RangeError,
    "not offered",
  );
  const badQ = { ...s.device.queues[0], size: 3 };
  assertThrows(
    () => fresh().restore({ ...s, device: { ...s.device, queues: [badQ] } }),
    RangeError,
  );
  assertThrows(
    () => fresh().restore({ ...s, device: { ...s.device, queues: [] } }),
    RangeError,
    "queues",
  );
  assertThrows(() => fresh().restore({ ...s, queueSel: -1 }), RangeError, "u32");
  assertThrows(
    () => fresh().restore({ ...s, device: { ...s.device, backend: { config: [1] } } }),
    RangeError,
    "dummy",
  );
});

Deno.test("status table: every write from every reachable status obeys the table (modern and legacy)", () => {
  // Exhaustive: breadth-first over the statuses a driver can reach by writes, then all 256
  // byte values from each. A write is 0 (reset), or keeps every bit and adds at most the
  // table's next step plus FAILED; FEATURES_OK only with features the device accepts.
  for (const legacy of [false, true]) {
    const steps = legacy ? STATUS_STEPS.legacy : STATUS_STEPS.modern;
    const reach = (path: number[]) => {
      const h = harness(new DummyDevice({}), { legacy });
      for (const v of path) {
        h.driver.writeReg(REG.STATUS, v);
        if (!legacy && (h.device.status & 0x0f) === (ACK | DRV)) {
          // Features the device accepts (VERSION_1, bit 32), so FEATURES_OK can be taken.
          h.driver.writeReg(REG.DRIVER_FEATURES_SEL, 1);
          h.driver.writeReg(REG.DRIVER_FEATURES, 1);
        }
      }
      return h;
    };
    const seen = new Map<number, number[]>([[0, []]]);
    const frontier = [0];
    let writes = 0;
    while (frontier.length) {
      const s = frontier.shift()!;
      const path = seen.get(s)!;
      for (let v = 0; v < 256; v++) {
        const h = reach(path);
        assertEquals(h.device.status, s, `replay of ${path}`);
        h.driver.writeReg(REG.STATUS, v);
        writes++;
        const r = h.device.status;
        const where = `${legacy ? "legacy" : "modern"} 0x${s.toString(16)} + write 0x${
          v.toString(16)
        } -> 0x${r.toString(16)}`;
        if (v === 0) {
          assertEquals(r, 0, where);
          continue;
        }
        assertEquals(r & s, s, `${where}: a bit was cleared`);
        const added = r & ~s;
        const base = s & ~STATUS.FAILED & ~STATUS.DEVICE_NEEDS_RESET;
        const next = s & STATUS.FAILED ? 0 : steps.get(base) ?? 0;
        assertEquals(added & ~(next | STATUS.FAILED), 0, `${where}: more than the next step`);
        if (added & next) {
          // Only the device's own bits (NEEDS_RESET, MMU_FAIL) are not the driver's to set.
          const deviceBits = STATUS.DEVICE_NEEDS_RESET | STATUS.DEVICE_MMU_FAIL;
          assertEquals(v & ~r & ~deviceBits, 0, `${where}: a step lost a bit`);
        }
        if (v === (s | next) && next) assertEquals(added, next, `${where}: the step was refused`);
        if (!seen.has(r)) {
          seen.set(r, [...path, v]);
          frontier.push(r);
        }
      }
    }
    // The handshake's states, each with and without FAILED, and nothing else.
    const states = [
      ...steps.keys(),
      [...steps.keys()].reduce((a, b) => a | b) | [...steps.values()].at(-1)!,
    ];
    const expect = new Set(states.flatMap((k) => [k, k | STATUS.FAILED]));
    assertEquals(
      new Set(seen.keys()),
      expect,
      `${legacy ? "legacy" : "modern"} reachable statuses`,
    );
    assertEquals(writes, 256 * expect.size, "every byte from every reachable status");
  }
});
