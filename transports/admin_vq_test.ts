import { assert, assertEquals, assertFalse, assertThrows } from "@std/assert";
import { AdminDriver, VirtualDriver } from "../testing/admin_driver.ts";
import { RngDevice } from "../devices/rng.ts";
import { BLK_S, BLK_T, BlockDevice, type DiskImage, MemoryDisk } from "../devices/block.ts";
import { ConsoleDevice } from "../devices/console.ts";
import { bit, DEVICE_ID, F, STATUS } from "../virtio/constants.ts";
import {
  ADMIN_CAP,
  ADMIN_CLASS,
  ADMIN_CMD,
  ADMIN_ERR,
  ADMIN_EVENT,
  AdminError,
  AdminTransport,
  type VirtualDeviceFactory,
} from "./admin_vq.ts";
import { ManagementDevice } from "../devices/management.ts";
import { harness } from "../testing/setup.ts";
import { sleep } from "@denovm/sys/timer";

const MiB = 1 << 20;
const u16 = (n: number) => Uint8Array.of(n & 0xff, n >> 8);
const u64s = (...xs: (number | bigint)[]) => {
  const b = new Uint8Array(8 * xs.length), v = new DataView(b.buffer);
  xs.forEach((x, i) => v.setBigUint64(8 * i, BigInt.asUintN(64, BigInt(x)), true));
  return b;
};
const le64 = (b: Uint8Array, o = 0) => new DataView(b.buffer, b.byteOffset).getBigUint64(o, true);

/** rng (4), console (3), and blk (2) over `disks[attrs[0]]`. */
function factory(disks: DiskImage[] = [], consoleOut: number[] = []): VirtualDeviceFactory {
  return (type, attrs) => {
    if (type === DEVICE_ID.RNG) {
      if (attrs.byteLength) throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, "rng takes none");
      return new RngDevice();
    }
    if (type === DEVICE_ID.CONSOLE) {
      return new ConsoleDevice({ output: (b) => consoleOut.push(...b) });
    }
    if (type === DEVICE_ID.BLOCK) {
      const i = attrs.byteLength === 4 ? new DataView(attrs.buffer).getUint32(0, true) : -1;
      const d = disks[i];
      if (!d) throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, `no disk ${i}`);
      return new BlockDevice(d, { id: `vdisk${i}` });
    }
    throw new AdminError(ADMIN_ERR.UNSUPPORTED_DEVICE_TYPE, `type ${type}`);
  };
}
const diskAttr = (i: number) => Uint8Array.of(i, 0, 0, 0);
const exclusive = (type: number, attrs: Uint8Array) =>
  type === DEVICE_ID.BLOCK ? `disk ${attrs[0]}` : undefined;

/** A live virtual rng: created, RAM mapped 1:1, negotiated, queue 0 up, DRIVER_OK. */
function liveRng(a: AdminDriver, wanted = ~0n) {
  const v = new VirtualDriver(a, a.create(DEVICE_ID.RNG));
  assertEquals(v.map(0, 0, MiB).ack, 0);
  assert(v.init(wanted));
  const q = v.setupQueue(0, 8);
  assertEquals(v.driverOk().ack, 0);
  return { v, q };
}

Deno.test("admin vq: capabilities on vdev_id 0 only", () => {
  const a = AdminDriver.open({ factory: factory() });
  assertEquals(
    le64(a.ok(0n, ADMIN_CLASS.CAP, ADMIN_CMD.CAP_GET, undefined, 8)),
    ADMIN_CAP.VDEV | ADMIN_CAP.MMU | ADMIN_CAP.EVENTQ,
  );
  const r = a.command(1n, ADMIN_CLASS.CAP, ADMIN_CMD.CAP_GET);
  assertEquals([r.ack, r.error], [1, ADMIN_ERR.INVALID_DEVICE_ID]);
  // The management device refuses FEATURES_OK without VIRTIO_F_ADMIN_VQ.
  let refused = false;
  try {
    AdminDriver.open({ factory: factory(), wanted: bit(F.VERSION_1) });
  } catch (e) {
    refused = String(e).includes("refused FEATURES_OK");
  }
  assert(refused);
});

Deno.test("admin vq: a virtual rng from create to destroy, its interrupt on the event queue", async () => {
  const a = AdminDriver.open({ factory: factory() });
  const { v, q } = liveRng(a);
  assertEquals(v.id, 1n);
  assertEquals(v.status, 15);
  const buf = a.h.driver.inBuffer(64);
  q.add([buf]);
  assert(v.kick(q));
  const u = q.getUsed();
  assertEquals(u?.len, 64);
  assert(a.mem.read(buf.addr, 64).some((b) => b !== 0));
  const ev = a.events();
  assertEquals(ev, [{ vdevId: 1, type: ADMIN_EVENT.INTERRUPT, data: 1, addr: 0 }]);
  // The list names it; destroy waits for nothing here and answers OK.
  const list = a.ok(0n, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_LIST, undefined, 64);
  assertEquals(new DataView(list.buffer).getUint32(0, true), 1);
  assertEquals(le64(list, 8), 1n);
  const d = await a.commandAsync(1n, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_DESTROY);
  assertEquals([d.ack, d.error], [0, 0]);
  const gone = a.command(1n, ADMIN_CLASS.STATUS, ADMIN_CMD.STATUS_GET, undefined, 1);
  assertEquals([gone.ack, gone.error], [1, ADMIN_ERR.NO_SUCH_DEVICE]);
  // Ids are never reused.
  assertEquals(a.create(DEVICE_ID.RNG), 2n);
});

Deno.test("admin vq: vdev_id rules, unknown commands and types, limits", () => {
  const a = AdminDriver.open({
    factory: factory([new MemoryDisk(MiB)]),
    maxDevices: 3,
    exclusive,
  });
  const err = (id: bigint, cls: number, cmd: number, out?: Uint8Array) => {
    const r = a.command(id, cls, cmd, out);
    assertEquals(r.ack, 1, `class ${cls} command ${cmd}`);
    return r.error;
  };
  const create = (type: number, attrs = new Uint8Array(0)) => {
    const out = new Uint8Array(16 + attrs.byteLength), w = new DataView(out.buffer);
    w.setUint32(0, type, true);
    w.setBigUint64(8, ~0n, true);
    out.set(attrs, 16);
    return out;
  };
  assertEquals(
    err(5n, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_CREATE, create(4)),
    ADMIN_ERR.INVALID_DEVICE_ID,
  );
  assertEquals(err(0n, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_DESTROY), ADMIN_ERR.INVALID_DEVICE_ID);
  for (const cls of [ADMIN_CLASS.FEAT, ADMIN_CLASS.STATUS, ADMIN_CLASS.GENERATION]) {
    assertEquals(err(0n, cls, 0), ADMIN_ERR.INVALID_DEVICE_ID);
    assertEquals(err(77n, cls, 0), ADMIN_ERR.NO_SUCH_DEVICE);
  }
  assertEquals(err(0n, 1, 0), ADMIN_ERR.UNKNOWN_COMMAND);
  assertEquals(err(0n, ADMIN_CLASS.CAP, 9), ADMIN_ERR.UNKNOWN_COMMAND);
  assertEquals(err(0n, 200, 0), ADMIN_ERR.UNKNOWN_COMMAND);
  assertEquals(
    err(0n, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_CREATE, create(9)),
    ADMIN_ERR.UNSUPPORTED_DEVICE_TYPE,
  );
  assertEquals(
    err(0n, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_CREATE, create(4, Uint8Array.of(1))),
    ADMIN_ERR.INVALID_ATTRIBUTE,
  );
  assertEquals(
    err(0n, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_CREATE, create(2, diskAttr(3))),
    ADMIN_ERR.INVALID_ATTRIBUTE,
  );
  assertEquals(
    err(0n, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_CREATE, new Uint8Array(3)),
    ADMIN_ERR.MALFORMED,
  );
  assertEquals(a.create(DEVICE_ID.BLOCK, diskAttr(0)), 1n);
  // The one disk is held by device 1.
  assertEquals(
    err(0n, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_CREATE, create(2, diskAttr(0))),
    ADMIN_ERR.NO_RESOURCES,
  );
  a.create(DEVICE_ID.RNG);
  a.create(DEVICE_ID.RNG);
  assertEquals(err(0n, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_CREATE, create(4)), ADMIN_ERR.NO_RESOURCES);
  // Wrong lengths of out-data.
  assertEquals(
    err(1n, ADMIN_CLASS.STATUS, ADMIN_CMD.STATUS_SET, new Uint8Array(2)),
    ADMIN_ERR.MALFORMED,
  );
  assertEquals(
    err(1n, ADMIN_CLASS.FEAT, ADMIN_CMD.FEAT_DRIVER_SET, new Uint8Array(4)),
    ADMIN_ERR.MALFORMED,
  );
  // A reply that does not fit: ERR, nothing written beyond the header.
  const small = a.command(0n, ADMIN_CLASS.CAP, ADMIN_CMD.CAP_GET, undefined, 4);
  assertEquals([small.ack, small.error, small.usedLen], [1, ADMIN_ERR.MALFORMED, 8]);
  // The management device's config: max and current count.
  const cfg = new DataView(a.h.driver.readConfig(0, 8).buffer);
  assertEquals([cfg.getUint32(0, true), cfg.getUint32(4, true)], [3, 3]);
  assertFalse(a.h.device.status & STATUS.DEVICE_NEEDS_RESET);
});

Deno.test("admin vq: FEATURES_OK refused and re-read; wrong states; reset completes before the reply", () => {
  const a = AdminDriver.open({ factory: factory() });
  const v = new VirtualDriver(a, a.create(DEVICE_ID.RNG));
  // Queue setup before FEATURES_OK, DRIVER_OK out of order: WRONG_STATE.
  const q = new Uint8Array(32);
  assertEquals(
    a.command(v.id, ADMIN_CLASS.QUEUE, ADMIN_CMD.QUEUE_SET, q).error,
    ADMIN_ERR.WRONG_STATE,
  );
  assertEquals(v.setStatus(1).ack, 0);
  assertEquals(v.setStatus(1 | 4).error, ADMIN_ERR.WRONG_STATE);
  assertEquals(v.setStatus(3).ack, 0);
  // Without VERSION_1 the device refuses FEATURES_OK: the command succeeds, the re-read
  // shows the bit clear.
  a.ok(v.id, ADMIN_CLASS.FEAT, ADMIN_CMD.FEAT_DRIVER_SET, u64s(0));
  assertEquals(v.setStatus(11).ack, 0);
  assertEquals(v.status, 3);
  // Unoffered features are refused the same way.
  a.ok(v.id, ADMIN_CLASS.FEAT, ADMIN_CMD.FEAT_DRIVER_SET, u64s(bit(F.VERSION_1) | 1n << 50n));
  assertEquals(v.setStatus(11).ack, 0);
  assertEquals(v.status, 3);
  a.ok(v.id, ADMIN_CLASS.FEAT, ADMIN_CMD.FEAT_DRIVER_SET, u64s(bit(F.VERSION_1)));
  assertEquals(v.setStatus(11).ack, 0);
  assertEquals(v.status, 11);
  assertEquals(
    le64(a.ok(v.id, ADMIN_CLASS.FEAT, ADMIN_CMD.FEAT_DRIVER_GET, undefined, 8)),
    bit(F.VERSION_1),
  );
  // Features are final after FEATURES_OK.
  assertEquals(
    a.command(v.id, ADMIN_CLASS.FEAT, ADMIN_CMD.FEAT_DRIVER_SET, u64s(0)).error,
    ADMIN_ERR.WRONG_STATE,
  );
  // Bad queue setups change nothing.
  const bad = new Uint8Array(32), w = new DataView(bad.buffer);
  w.setUint16(2, 3, true); // not a power of two
  assertEquals(
    a.command(v.id, ADMIN_CLASS.QUEUE, ADMIN_CMD.QUEUE_SET, bad).error,
    ADMIN_ERR.INVALID_ATTRIBUTE,
  );
  w.setUint16(0, 5, true);
  assertEquals(
    a.command(v.id, ADMIN_CLASS.QUEUE, ADMIN_CMD.QUEUE_SET, bad).error,
    ADMIN_ERR.INVALID_ATTRIBUTE,
  );
  const qq = v.setupQueue(0, 4);
  const got = a.ok(v.id, ADMIN_CLASS.QUEUE, ADMIN_CMD.QUEUE_GET, u16(0), 32);
  const g = new DataView(got.buffer);
  assertEquals([g.getUint16(0, true), g.getUint16(2, true), got[4]], [256, 4, 1]);
  assertEquals(Number(g.getBigUint64(8, true)), qq.desc);
  // An enabled queue cannot be set again.
  assertEquals(
    a.command(v.id, ADMIN_CLASS.QUEUE, ADMIN_CMD.QUEUE_ENABLE, u16(0)).error,
    ADMIN_ERR.WRONG_STATE,
  );
  assertEquals(v.driverOk().ack, 0);
  assertEquals(
    a.command(v.id, ADMIN_CLASS.QUEUE, ADMIN_CMD.QUEUE_RESET, u16(0)).error,
    ADMIN_ERR.WRONG_STATE,
  );
  // Reset: done when the command answers; the re-read is 0 and the queue is gone.
  assertEquals(v.setStatus(0).ack, 0);
  assertEquals(v.status, 0);
  const after = a.ok(v.id, ADMIN_CLASS.QUEUE, ADMIN_CMD.QUEUE_GET, u16(0), 32);
  assertEquals(after[4], 0);
  assertEquals(le64(a.ok(v.id, ADMIN_CLASS.FEAT, ADMIN_CMD.FEAT_DRIVER_GET, undefined, 8)), 0n);
  // And it comes back up.
  assert(v.init());
});

Deno.test("admin vq: virtual blk writes and reads back through the device MMU; config space", async () => {
  const disk = new MemoryDisk(MiB);
  const a = AdminDriver.open({ factory: factory([disk]), exclusive, memSize: 4 * MiB });
  const v = new VirtualDriver(a, a.create(DEVICE_ID.BLOCK, diskAttr(0)));
  // Capacity (sectors) from config space, and the generation.
  assertEquals(le64(v.readConfig(0, 8)), 2048n);
  const gen = a.ok(v.id, ADMIN_CLASS.GENERATION, ADMIN_CMD.GENERATION_GET, undefined, 4);
  assertEquals(gen.byteLength, 4);
  assertEquals(
    a.command(v.id, ADMIN_CLASS.CONFIG, ADMIN_CMD.CONFIG_READ, u64s(0x0000_0100_0000_0000)).error,
    ADMIN_ERR.INVALID_ATTRIBUTE,
  );
  // Rings and request buffers at their guest addresses, the data buffer at I/O address
  // 0x8000_0000 mapped to guest page 0x300000.
  assertEquals(v.map(0, 0, 0x200000).ack, 0);
  assertEquals(v.map(0x8000_0000, 0x300000, 0x1000).ack, 0);
  assertEquals(v.map(0x8000_0800, 0x100000, 0x1000).error, ADMIN_ERR.INVALID_ATTRIBUTE); // overlap
  assertEquals(v.map(0x9000_0000, 4 * MiB - 0x800, 0x1000).error, ADMIN_ERR.INVALID_ATTRIBUTE); // not RAM
  assert(v.init());
  const q = v.setupQueue(0, 8);
  v.driverOk();
  const request = async (
    type: number,
    sector: number,
    data: { addr: number; len: number; write: boolean },
  ) => {
    const hdr = new Uint8Array(16), w = new DataView(hdr.buffer);
    w.setUint32(0, type, true);
    w.setBigUint64(8, BigInt(sector), true);
    const status = a.h.driver.inBuffer(1);
    a.mem.writeU8(status.addr, 0xff);
    q.add([a.h.driver.outBuffer(hdr), data, status]);
    v.kick(q, true);
    for (let i = 0; i < 1000; i++) {
      const u = q.getUsed();
      if (u) return a.mem.readU8(status.addr);
      await sleep(1);
    }
    throw new Error("no completion");
  };
  a.mem.fill(0x300000, 512, 0x5a);
  a.mem.write(0x300000, new TextEncoder().encode("VIRTUAL-BLK"));
  assertEquals(
    await request(BLK_T.OUT, 3, { addr: 0x8000_0000, len: 512, write: false }),
    BLK_S.OK,
  );
  const onDisk = new Uint8Array(512);
  await disk.read(onDisk, 3 * 512);
  assertEquals(new TextDecoder().decode(onDisk.subarray(0, 11)), "VIRTUAL-BLK");
  a.mem.fill(0x300000, 512, 0);
  assertEquals(await request(BLK_T.IN, 3, { addr: 0x8000_0000, len: 512, write: true }), BLK_S.OK);
  assertEquals(a.mem.read(0x300000, 512), onDisk);
  assertEquals(v.status, 15);
});

Deno.test("admin vq: an access outside the mappings sets DEVICE_MMU_FAIL with NEEDS_RESET and reports it", () => {
  const a = AdminDriver.open({ factory: factory() });
  const v = new VirtualDriver(a, a.create(DEVICE_ID.RNG));
  // Only the first 512 KiB, where the allocator puts rings first.
  assertEquals(v.map(0, 0, 0x80000).ack, 0);
  assert(v.init());
  const q = v.setupQueue(0, 8);
  v.driverOk();
  a.events();
  q.add([{ addr: 0xa0000, len: 16, write: true }]);
  v.kick(q);
  assertEquals(v.status, 15 | STATUS.DEVICE_MMU_FAIL | STATUS.DEVICE_NEEDS_RESET);
  assertEquals(q.getUsed()?.len, 0); // the chain comes back untouched
  const ev = a.events();
  assertEquals(ev.find((e) => e.type === ADMIN_EVENT.MMU_FAULT), {
    vdevId: 1,
    type: ADMIN_EVENT.MMU_FAULT,
    data: 16,
    addr: 0xa0000,
  });
  assert(ev.some((e) => e.type === ADMIN_EVENT.INTERRUPT && e.data & 2)); // config change
  // Nothing more is processed until a reset; after it the device works again.
  const ok = a.h.driver.inBuffer(8);
  q.add([ok]);
  v.kick(q, true);
  assertEquals(q.getUsed(), null);
  // The driver cannot clear the device's bits by writing status; only a reset does.
  assertEquals(v.setStatus(15).ack, 0);
  assertEquals(v.status, 0x6f);
  assertEquals(v.setStatus(0).ack, 0);
  assertEquals(v.status, 0);
  assert(a.log.some((l) => l.includes("device MMU: no mapping covers 0xa0000+16")));
  // Rings outside the mappings fail at DRIVER_OK.
  const w = new VirtualDriver(a, a.create(DEVICE_ID.RNG));
  assert(w.init());
  w.setupQueue(0, 8);
  w.driverOk();
  assertEquals(w.status & (STATUS.DEVICE_MMU_FAIL | STATUS.DEVICE_NEEDS_RESET), 0x60);
});

Deno.test("admin vq: event-idx on a virtual device's queue suppresses interrupts both ways", () => {
  const a = AdminDriver.open({ factory: factory() });
  const { v, q } = liveRng(a);
  assert(q.eventIdx);
  a.events();
  q.delayInterrupts(3); // the driver asks for an interrupt after the 3rd buffer
  for (let i = 0; i < 3; i++) {
    q.add([a.h.driver.inBuffer(8)]);
    v.kick(q, true);
    if (i < 2) assertEquals(a.events(), [], `no interrupt after buffer ${i}`);
  }
  assertEquals(a.events().map((e) => e.type), [ADMIN_EVENT.INTERRUPT]);
});

Deno.test("admin vq: host-side create and destroy are announced; destroy completes requests in flight first", async () => {
  let release: (() => void) | undefined;
  const mem = new MemoryDisk(MiB);
  const slow: DiskImage = {
    ...mem,
    size: mem.size,
    readOnly: false,
    read: (b, pos) =>
      new Promise<void>((r) => release = () => r(mem.read(b, pos) as unknown as void)),
    write: (b, pos) => mem.write(b, pos),
    flush: () => mem.flush(),
    discard: (o, n) => mem.discard(o, n),
    writeZeroes: (o, n) => mem.writeZeroes(o, n),
  };
  const a = AdminDriver.open({ factory: factory([slow]), exclusive, memSize: 2 * MiB });
  const dev = a.h.backend.transport.create(DEVICE_ID.BLOCK, diskAttr(0));
  assertEquals(a.events(), [{ vdevId: 1, type: ADMIN_EVENT.DEVICE_ADDED, data: 2, addr: 0 }]);
  const v = new VirtualDriver(a, BigInt(dev.id));
  v.map(0, 0, 2 * MiB);
  assert(v.init());
  const q = v.setupQueue(0, 8);
  v.driverOk();
  const hdr = new Uint8Array(16);
  const status = a.h.driver.inBuffer(1);
  q.add([a.h.driver.outBuffer(hdr), a.h.driver.inBuffer(512), status]);
  v.kick(q, true);
  assertEquals(dev.device.backend.inflight?.(), 1);
  // The driver destroys it with the read in flight: no answer until the read completed.
  const p = a.post(v.id, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_DESTROY);
  await sleep(5);
  assertEquals(a.answer(p), undefined);
  assertEquals(q.getUsed(), null);
  release!();
  let answer;
  for (let i = 0; i < 100 && !answer; i++) {
    await sleep(1);
    answer = a.answer(p);
  }
  assertEquals(answer?.ack, 0);
  assertEquals(q.getUsed()?.len, 513);
  assertEquals(a.mem.readU8(status.addr), BLK_S.OK);
  // The disk is free again; a host-side destroy is announced.
  const again = a.h.backend.transport.create(DEVICE_ID.BLOCK, diskAttr(0));
  a.events();
  await a.h.backend.transport.destroy(again.id);
  assertEquals(a.events(), [{ vdevId: 2, type: ADMIN_EVENT.DEVICE_REMOVED, data: 2, addr: 0 }]);
});

Deno.test("admin vq: a stopped management device stops its virtual devices and resumes them where they were", async () => {
  const a = AdminDriver.open({ factory: factory() });
  const { v, q } = liveRng(a);
  a.events();
  await a.h.transport.stop();
  // Commands wait in the ring while stopped; so do the virtual device's buffers.
  q.add([a.h.driver.inBuffer(8)]);
  const p = a.post(v.id, ADMIN_CLASS.NOTIFY, ADMIN_CMD.NOTIFY_KICK, u16(0));
  assertEquals(a.answer(p), undefined);
  assertEquals(q.getUsed(), null);
  assertEquals(a.events(), []);
  a.h.transport.resume();
  assertEquals(a.answer(p)?.ack, 0);
  assertEquals(q.getUsed()?.len, 8);
  assertEquals(a.events().map((e) => e.type), [ADMIN_EVENT.INTERRUPT]);
});

Deno.test("admin vq: snapshot and restore bring the virtual devices back where they were", () => {
  const out: number[] = [];
  const a = AdminDriver.open({ factory: factory([], out) });
  const { v, q } = liveRng(a);
  const c = new VirtualDriver(a, a.create(DEVICE_ID.CONSOLE));
  c.map(0, 0, MiB);
  assert(c.init());
  c.setupQueue(0, 4);
  const tx = c.setupQueue(1, 4);
  c.driverOk();
  a.events();
  q.add([a.h.driver.inBuffer(8)]);
  v.kick(q);
  assertEquals(q.getUsed()?.len, 8);
  a.events();
  // Save, then restore into a new management device over the same memory.
  const saved = structuredClone(a.h.transport.save());
  const out2: number[] = [];
  const h2 = harness(new ManagementDevice({ mem: a.mem, factory: factory([], out2) }), {
    mem: a.mem,
  });
  h2.transport.restore(saved);
  h2.transport.resume();
  a.reattach(h2);
  const t2 = h2.backend.transport;
  assertEquals(t2.devices.map((d) => [d.id, d.deviceType, d.device.status]), [[1, 4, 15], [
    2,
    3,
    15,
  ]]);
  assertEquals(t2.devices[0]!.mmu.mappings, [{ iova: 0, gpa: 0, size: MiB }]);
  assertEquals(h2.transport.save(), saved);
  // The restored rng fills a buffer, the restored console sends what the driver queues,
  // and their interrupts arrive on the event queue as before.
  q.add([a.h.driver.inBuffer(8)]);
  v.kick(q);
  assertEquals(q.getUsed()?.len, 8);
  tx.add([a.h.driver.outBuffer(new TextEncoder().encode("after restore"))]);
  c.kick(tx);
  assertEquals(new TextDecoder().decode(Uint8Array.from(out2)), "after restore");
  assertEquals(out, []);
  const evs = a.events();
  assertEquals(new Set(evs.map((e) => e.vdevId)), new Set([1, 2]));
  // A fresh id continues after the saved ones.
  assertEquals(a.create(DEVICE_ID.RNG), 3n);
  // Bad states are refused whole.
  const broken = structuredClone(saved.device.backend) as { devices: { mappings: number[][] }[] };
  broken.devices[0]!.mappings = [[0, 2 * MiB, 4096]];
  let why = "";
  try {
    AdminTransport.check(broken, a.mem, factory());
  } catch (e) {
    why = String(e);
  }
  assert(why.includes("is not guest RAM"), why);
  const dup = structuredClone(saved.device.backend) as { devices: { id: number }[] };
  dup.devices[1]!.id = 1;
  assertThrows(() => AdminTransport.check(dup, a.mem, factory()), RangeError, "not unique");
});

/** A disk whose reads wait for `release()`. */
function slowDisk() {
  const mem = new MemoryDisk(MiB);
  const waiting: (() => void)[] = [];
  const disk: DiskImage = {
    size: mem.size,
    readOnly: false,
    read: (b, pos) =>
      new Promise<void>((r) => waiting.push(() => void mem.read(b, pos).then(() => r()))),
    write: (b, pos) => mem.write(b, pos),
    flush: () => mem.flush(),
    discard: (o, n) => mem.discard(o, n),
    writeZeroes: (o, n) => mem.writeZeroes(o, n),
  };
  return { disk, release: () => waiting.splice(0).forEach((f) => f()) };
}

/** A live virtual blk over `disk` with one read in flight on its queue. */
function blkWithRead(a: AdminDriver) {
  const v = new VirtualDriver(a, a.create(DEVICE_ID.BLOCK, diskAttr(0)));
  v.map(0, 0, 2 * MiB);
  assert(v.init());
  const q = v.setupQueue(0, 8);
  v.driverOk();
  const status = a.h.driver.inBuffer(1);
  a.mem.writeU8(status.addr, 0xff);
  q.add([a.h.driver.outBuffer(new Uint8Array(16)), a.h.driver.inBuffer(512), status]);
  return { v, q, status };
}

const tick = () => sleep(2);

Deno.test("admin vq: a management reset while a destroy waits completes the destroy and frees the disk", async () => {
  const { disk } = slowDisk();
  const a = AdminDriver.open({ factory: factory([disk]), exclusive, memSize: 2 * MiB });
  const { v, q } = blkWithRead(a);
  v.kick(q, true);
  const t = a.h.backend.transport;
  const hostDestroy = t.destroy(Number(v.id));
  await tick();
  assertEquals(t.devices[0]!.destroying, true);
  a.h.driver.writeReg(0x070, 0); // the management driver resets its device
  await hostDestroy; // resolves: the reset dropped what was in flight
  assertEquals(t.devices, []);
  assertEquals(t.create(DEVICE_ID.BLOCK, diskAttr(0)).id, 2, "the disk is free again");
});

Deno.test("admin vq: an interrupt raised while stopping survives a snapshot and is delivered after restore", async () => {
  const { disk, release } = slowDisk();
  const a = AdminDriver.open({ factory: factory([disk]), exclusive, memSize: 2 * MiB });
  const { v, q, status } = blkWithRead(a);
  v.kick(q, true);
  a.events();
  const stopping = a.h.transport.stop();
  release();
  await stopping; // the read completed while stopping: used entry written, interrupt deferred
  assertEquals(q.getUsed()?.len, 513);
  assertEquals(a.mem.readU8(status.addr), BLK_S.OK);
  const saved = structuredClone(a.h.transport.save());
  const h2 = harness(
    new ManagementDevice({ mem: a.mem, factory: factory([new MemoryDisk(MiB)]), exclusive }),
    { mem: a.mem },
  );
  h2.transport.restore(saved);
  h2.transport.resume();
  a.reattach(h2);
  assertEquals(a.events(), [{ vdevId: 1, type: ADMIN_EVENT.INTERRUPT, data: 1, addr: 0 }]);
});

Deno.test("admin vq: a destroy waiting in the ring at resume completes the request before it", async () => {
  const { disk, release } = slowDisk();
  const a = AdminDriver.open({ factory: factory([disk]), exclusive, memSize: 2 * MiB });
  const { v, q, status } = blkWithRead(a); // made available, not yet kicked
  await a.h.transport.stop();
  const p = a.post(v.id, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_DESTROY);
  a.h.transport.resume(); // the device resumes where it was (it takes the read), then the destroy runs
  await tick();
  assertEquals(a.answer(p), undefined, "the destroy waits for the read");
  release();
  let answer;
  for (let i = 0; i < 100 && !answer; i++) {
    await tick();
    answer = a.answer(p);
  }
  assertEquals(answer?.ack, 0);
  assertEquals(q.getUsed()?.len, 513, "the read was completed, not dropped");
  assertEquals(a.mem.readU8(status.addr), BLK_S.OK);
});

Deno.test("admin vq: refused commands change nothing (create without room for the id, illegal status steps)", () => {
  const a = AdminDriver.open({ factory: factory([new MemoryDisk(MiB)]), exclusive });
  const out = new Uint8Array(20), w = new DataView(out.buffer);
  w.setUint32(0, DEVICE_ID.BLOCK, true);
  w.setBigUint64(8, ~0n & 0xffff_ffff_ffff_ffffn, true);
  const r = a.command(0n, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_CREATE, out, 4);
  assertEquals([r.ack, r.error], [1, ADMIN_ERR.MALFORMED]);
  assertEquals(a.h.backend.transport.devices, [], "no device the driver cannot name");
  assertEquals(a.create(DEVICE_ID.BLOCK, diskAttr(0)), 1n, "and the disk is not held");
  const v = new VirtualDriver(a, a.create(DEVICE_ID.RNG));
  for (
    const [from, write] of [[0, 8], [0, 4], [1, 9], [1, 0x85], [3, 0x87], [3, 1]] as const
  ) {
    v.setStatus(0);
    for (const step of [1, 3].filter((s) => s <= from)) v.setStatus(step);
    assertEquals(v.status, from);
    const x = v.setStatus(write);
    assertEquals(
      [x.ack, x.error],
      [1, ADMIN_ERR.WRONG_STATE],
      `0x${write.toString(16)} from ${from}`,
    );
    assertEquals(v.status, from, "unchanged");
  }
  // FAILED alone may be added at any time; then nothing but a reset.
  assertEquals(v.setStatus(0x83).ack, 0);
  assertEquals(v.setStatus(0x8b).error, ADMIN_ERR.WRONG_STATE);
  assertEquals(v.setStatus(0).ack, 0);
  // Unknown commands come first, then the id, then the out-data.
  assertEquals(a.command(77n, ADMIN_CLASS.QUEUE, 9).error, ADMIN_ERR.UNKNOWN_COMMAND);
  assertEquals(a.command(77n, ADMIN_CLASS.QUEUE, 0).error, ADMIN_ERR.NO_SUCH_DEVICE);
  assertEquals(a.command(v.id, ADMIN_CLASS.QUEUE, 0).error, ADMIN_ERR.MALFORMED);
});

Deno.test("admin vq: an MMU fault is reported even after NEEDS_RESET, and at any address; the snapshot still checks", () => {
  const a = AdminDriver.open({ factory: factory() });
  const { v } = liveRng(a);
  a.events();
  const dev = a.h.backend.transport.devices[0]!;
  dev.device.fail("something else broke first");
  assertEquals(v.status, 0x4f);
  dev.mmu.contains(2 ** 60, 16); // e.g. an in-flight completion after an unmap
  assertEquals(v.status, 0x6f);
  assertEquals(
    a.events().filter((e) => e.type === ADMIN_EVENT.MMU_FAULT).map((e) => e.addr),
    [Number.MAX_SAFE_INTEGER],
  );
  // Undelivered, such an event is saved as it is and the snapshot checks.
  const saved = structuredClone(a.h.transport.save().device.backend) as {
    events: { vdevId: number; type: number; data: number; addr: number }[];
  };
  saved.events.push({
    vdevId: 1,
    type: ADMIN_EVENT.MMU_FAULT,
    data: 16,
    addr: Number.MAX_SAFE_INTEGER,
  });
  AdminTransport.check(saved, a.mem, factory()); // does not throw
});

Deno.test("admin vq: a snapshot with two virtual blks on one disk is refused", () => {
  const a = AdminDriver.open({
    factory: factory([new MemoryDisk(MiB), new MemoryDisk(MiB)]),
    exclusive,
  });
  a.create(DEVICE_ID.BLOCK, diskAttr(0));
  a.create(DEVICE_ID.BLOCK, diskAttr(1));
  const s = structuredClone(a.h.transport.save().device.backend) as {
    devices: { attrs: string }[];
  };
  AdminTransport.check(s, a.mem, factory([new MemoryDisk(MiB), new MemoryDisk(MiB)]), exclusive);
  s.devices[1]!.attrs = s.devices[0]!.attrs;
  assertThrows(
    () => AdminTransport.check(s, a.mem, factory([new MemoryDisk(MiB)]), exclusive),
    RangeError,
    "also held by virtual device 1",
  );
});

Deno.test("admin vq: unmap, config write, queue reset, the device list, lost events, config-change on create", () => {
  const a = AdminDriver.open({ factory: factory() });
  const c = new VirtualDriver(a, a.create(DEVICE_ID.CONSOLE));
  // The create changed the management device's config (num_virtual_devices): a config
  // interrupt, acknowledged here so the next one is seen fresh.
  assertEquals(a.h.driver.ackInterrupt() & 2, 2, "the first create raised a config interrupt");
  assertEquals(a.h.device.isr & 2, 0);
  // Another create: a new generation and a new config interrupt.
  const gen = a.h.driver.readReg(0x0fc);
  a.create(DEVICE_ID.RNG);
  assertEquals(a.h.driver.readReg(0x0fc), gen + 1);
  assertEquals(a.h.driver.ackInterrupt() & 2, 2, "a config interrupt");
  // MMU_UNMAP takes exactly a mapping that exists.
  assertEquals(c.map(0x10000, 0x10000, 0x1000).ack, 0);
  const unmap = (iova: number, size: number) =>
    a.command(c.id, ADMIN_CLASS.MMU, ADMIN_CMD.MMU_UNMAP, u64s(iova, size));
  assertEquals(unmap(0x10000, 0x800).error, ADMIN_ERR.INVALID_ATTRIBUTE);
  assertEquals(unmap(0x10000, 0x1000).ack, 0);
  assertEquals(unmap(0x10000, 0x1000).error, ADMIN_ERR.INVALID_ATTRIBUTE);
  assertEquals(a.h.backend.transport.devices[0]!.mmu.mappings, []);
  // CONFIG_WRITE: DRIVER first; inside config space; the length must match.
  const cw = (off: number, bytes: Uint8Array, n = bytes.byteLength) => {
    const out = new Uint8Array(8 + bytes.byteLength), w = new DataView(out.buffer);
    w.setUint32(0, off, true);
    w.setUint32(4, n, true);
    out.set(bytes, 8);
    return a.command(c.id, ADMIN_CLASS.CONFIG, ADMIN_CMD.CONFIG_WRITE, out);
  };
  assertEquals(cw(0, Uint8Array.of(1, 2)).error, ADMIN_ERR.WRONG_STATE);
  c.setStatus(1);
  c.setStatus(3);
  assertEquals(cw(0, Uint8Array.of(1, 2)).ack, 0);
  assertEquals(cw(0, Uint8Array.of(1, 2), 3).error, ADMIN_ERR.MALFORMED);
  assertEquals(cw(1 << 20, Uint8Array.of(1)).error, ADMIN_ERR.INVALID_ATTRIBUTE);
  // QUEUE_RESET before DRIVER_OK: the queue is back to its reset values.
  c.setStatus(0);
  assert(c.init());
  c.setupQueue(1, 4);
  assertEquals(a.ok(c.id, ADMIN_CLASS.QUEUE, ADMIN_CMD.QUEUE_GET, u16(1), 32)[4], 1);
  assertEquals(a.command(c.id, ADMIN_CLASS.QUEUE, ADMIN_CMD.QUEUE_RESET, u16(1)).ack, 0);
  const g = a.ok(c.id, ADMIN_CLASS.QUEUE, ADMIN_CMD.QUEUE_GET, u16(1), 32);
  assertEquals([g[4], le64(g, 8)], [0, 0n]);
  // VDEV_LIST names each device with its type and status.
  const list = a.ok(0n, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_LIST, undefined, 64);
  const lv = new DataView(list.buffer);
  assertEquals(lv.getUint32(0, true), 2);
  assertEquals(
    [0, 1].map((
      i,
    ) => [
      lv.getBigUint64(8 + 16 * i, true),
      lv.getUint32(16 + 16 * i, true),
      lv.getUint32(20 + 16 * i, true),
    ]),
    [[1n, 3, 11], [2n, 4, 0]],
  );
});

Deno.test("admin vq: events beyond 256 without buffers become one EVENTS_LOST", async () => {
  const a = AdminDriver.open({ factory: factory() });
  const t = a.h.backend.transport;
  // 16 buffers are posted; 300 host-side adds and removes are 600 events.
  for (let i = 0; i < 300; i++) await t.destroy(t.create(DEVICE_ID.RNG, new Uint8Array(0)).id);
  let got = a.events();
  const all = [...got];
  while (got.length) all.push(...(got = a.events()));
  assertEquals(all.filter((e) => e.type === ADMIN_EVENT.EVENTS_LOST).length, 1);
  assertEquals(all.length, 16 + 256 + 1);
  assert(a.log.some((l) => l.includes("Event queue full")));
});

Deno.test("admin vq: disposing the management device disposes its virtual devices (no more queue work)", () => {
  const a = AdminDriver.open({ factory: factory() });
  liveRng(a);
  const [vdev] = a.h.backend.transport.devices;
  let ran = 0;
  vdev!.device.guard("before", () => ran++);
  a.h.device.dispose();
  // Work of requests still in flight comes through guard: dropped now.
  vdev!.device.guard("after", () => ran++);
  assertEquals(ran, 1);
});
