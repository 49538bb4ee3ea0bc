import { assert, assertEquals, assertFalse } from "@std/assert";
import { moveGuestBytes } from "../testing/disk.ts";
import { harness } from "../testing/setup.ts";
import { REG } from "../transports/mmio.ts";
import { bit, STATUS } from "../virtio/constants.ts";
import { FileDisk } from "../host/disk_file.ts";
import type { DeviceMemory } from "../memory/guest_memory.ts";
import { type Buffer, bufferViews } from "../virtio/queue.ts";
import { BLK_F, BLK_S, BLK_T, BlockDevice, type DiskImage, MemoryDisk } from "./block.ts";
import { sleep } from "@denovm/sys/timer";

const MiB = 1 << 20;

function live(disk: DiskImage, opts: ConstructorParameters<typeof BlockDevice>[1] = {}) {
  const errors: string[] = [];
  const h = harness(new BlockDevice(disk, { ...opts, onError: (m) => errors.push(m) }), {
    memSize: 4 * MiB,
  });
  assert(h.driver.init().ok);
  const q = h.driver.setupQueue(0);
  h.driver.driverOk();
  /** Sends one request; resolves with its status, used length and the data read. */
  const request = async (
    type: number,
    sector: number,
    o: { out?: Uint8Array; inLen?: number; split?: number } = {},
  ) => {
    const hdr = new Uint8Array(16);
    const v = new DataView(hdr.buffer);
    v.setUint32(0, type, true);
    v.setBigUint64(8, BigInt(sector), true);
    const segs = [h.driver.outBuffer(hdr)];
    if (o.out) {
      const n = o.split ?? o.out.byteLength;
      for (let i = 0; i < o.out.byteLength; i += n) {
        segs.push(h.driver.outBuffer(o.out.subarray(i, i + n)));
      }
    }
    const ins = [];
    if (o.inLen) {
      const n = o.split ?? o.inLen;
      for (let i = 0; i < o.inLen; i += n) ins.push(h.driver.inBuffer(Math.min(n, o.inLen - i)));
    }
    const status = h.driver.inBuffer(1);
    h.mem.writeU8(status.addr, 0xff);
    const id = q.add([...segs, ...ins, status]);
    h.driver.kick(q);
    for (let i = 0; i < 1000; i++) {
      const u = q.getUsed();
      if (u) {
        assertEquals(u.id, id);
        const data = new Uint8Array(ins.flatMap((b) => [...h.mem.read(b.addr, b.len)]));
        return { status: h.mem.readU8(status.addr), len: u.len, data };
      }
      await sleep(1);
    }
    throw new Error("request never completed");
  };
  return { ...h, q, request, errors };
}

Deno.test("virtio-blk config: capacity, blk_size, seg_max; features match the disk", () => {
  const h = live(new MemoryDisk(MiB));
  const cfg = new DataView(h.driver.readConfig(0, 60).buffer);
  assertEquals(cfg.getBigUint64(0, true), 2048n);
  assertEquals(cfg.getUint32(20, true), 512);
  assertEquals(cfg.getUint32(12, true), 254);
  const f = h.device.driverFeatures;
  assert(f & bit(BLK_F.FLUSH) && f & bit(BLK_F.DISCARD) && f & bit(BLK_F.WRITE_ZEROES));
  assertFalse(f & bit(BLK_F.RO));
  const ro = live(new MemoryDisk(MiB, true));
  assert(ro.device.driverFeatures & bit(BLK_F.RO));
  assertFalse(ro.device.driverFeatures & bit(BLK_F.DISCARD));
});

Deno.test("virtio-blk OUT then IN round-trips data across several buffers", async () => {
  const disk = new MemoryDisk(MiB);
  const h = live(disk);
  const data = new Uint8Array(4096).map((_, i) => (i * 7) & 0xff);
  assertEquals(await h.request(BLK_T.OUT, 8, { out: data, split: 1024 }), {
    status: BLK_S.OK,
    len: 1,
    data: new Uint8Array(0),
  });
  assertEquals(disk.bytes.subarray(8 * 512, 8 * 512 + 4096), data);
  const r = await h.request(BLK_T.IN, 8, { inLen: 4096, split: 512 });
  assertEquals([r.status, r.len], [BLK_S.OK, 4097]);
  assertEquals(r.data, data);
});

Deno.test("virtio-blk refuses requests past the end or not in whole sectors, before any I/O", async () => {
  const disk = new MemoryDisk(MiB);
  const h = live(disk);
  assertEquals(
    (await h.request(BLK_T.OUT, 2047, { out: new Uint8Array(1024).fill(1) })).status,
    BLK_S.IOERR,
  );
  assertEquals(disk.bytes.subarray(2047 * 512).every((b) => b === 0), true, "nothing written");
  assertEquals((await h.request(BLK_T.IN, 2048, { inLen: 512 })).status, BLK_S.IOERR);
  assertEquals((await h.request(BLK_T.IN, 2 ** 60, { inLen: 512 })).status, BLK_S.IOERR);
  assertEquals((await h.request(BLK_T.IN, 0, { inLen: 100 })).status, BLK_S.IOERR);
  assertEquals(
    (await h.request(BLK_T.IN, 2047, { inLen: 512 })).status,
    BLK_S.OK,
    "the last sector",
  );
});

Deno.test("virtio-blk on a read-only disk fails writes; FLUSH, GET_ID and unknown types", async () => {
  const ro = live(new MemoryDisk(MiB, true));
  assertEquals((await ro.request(BLK_T.OUT, 0, { out: new Uint8Array(512) })).status, BLK_S.IOERR);
  const disk = new MemoryDisk(MiB);
  const h = live(disk, { id: "serial-123" });
  assertEquals((await h.request(BLK_T.FLUSH, 0)).status, BLK_S.OK);
  assertEquals(disk.flushes, 1);
  const id = await h.request(BLK_T.GET_ID, 0, { inLen: 20 });
  assertEquals([id.status, id.len], [BLK_S.OK, 21]);
  assertEquals(new TextDecoder().decode(id.data).replace(/\0+$/, ""), "serial-123");
  assertEquals((await h.request(99, 0)).status, BLK_S.UNSUPP);
});

Deno.test("virtio-blk DISCARD and WRITE_ZEROES zero their ranges; bad segments are refused", async () => {
  const disk = new MemoryDisk(MiB);
  disk.bytes.fill(0xaa);
  const h = live(disk);
  const seg = (sector: number, count: number, flags = 0) => {
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, BigInt(sector), true);
    v.setUint32(8, count, true);
    v.setUint32(12, flags, true);
    return b;
  };
  assertEquals((await h.request(BLK_T.WRITE_ZEROES, 0, { out: seg(2, 2, 1) })).status, BLK_S.OK);
  assertEquals(disk.bytes.subarray(1024, 2048).every((b) => b === 0), true);
  assertEquals(disk.bytes[2048], 0xaa);
  assertEquals((await h.request(BLK_T.DISCARD, 0, { out: seg(10, 1) })).status, BLK_S.OK);
  assertEquals((await h.request(BLK_T.DISCARD, 0, { out: seg(10, 1, 1) })).status, BLK_S.UNSUPP);
  assertEquals((await h.request(BLK_T.DISCARD, 0, { out: seg(2047, 2) })).status, BLK_S.IOERR);
  assertEquals(
    (await h.request(BLK_T.DISCARD, 0, { out: new Uint8Array(8) })).status,
    BLK_S.UNSUPP,
  );
});

Deno.test("virtio-blk: a host I/O error fails that request only", async () => {
  const disk = new MemoryDisk(MiB);
  const h = live(disk);
  disk.failNext = true;
  assertEquals((await h.request(BLK_T.IN, 0, { inLen: 512 })).status, BLK_S.IOERR);
  assertEquals(h.errors.length, 1);
  assertEquals((await h.request(BLK_T.IN, 0, { inLen: 512 })).status, BLK_S.OK);
});

Deno.test("virtio-blk: malformed requests get IOERR or an empty used entry, never a crash", async () => {
  const h = live(new MemoryDisk(MiB));
  const status = h.driver.inBuffer(1);
  const id = h.q.add([h.driver.outBuffer(new Uint8Array(8)), status]);
  h.driver.kick(h.q);
  await sleep(5);
  assertEquals(h.q.getUsed(), { id, len: 1 });
  assertEquals(h.mem.readU8(status.addr), BLK_S.IOERR, "header too short");
  const id2 = h.q.add([h.driver.outBuffer(new Uint8Array(16))]);
  h.driver.kick(h.q);
  await sleep(5);
  assertEquals(h.q.getUsed(), { id: id2, len: 0 }, "no status byte to write");
});

class SlowDisk extends MemoryDisk {
  pending: (() => void)[] = [];
  override read(dst: Uint8Array, offset: number): Promise<void> {
    return new Promise((r) => this.pending.push(() => r(super.read(dst, offset))));
  }
}

Deno.test("virtio-blk keeps several requests in flight, and stop() waits for them", async () => {
  const disk = new SlowDisk(MiB);
  const h = live(disk);
  const reqs = [0, 1, 2].map((s) => h.request(BLK_T.IN, s, { inLen: 512 }));
  await sleep(2);
  assertEquals(disk.pending.length, 3, "three reads at once");
  assertEquals(h.backend.inflight(), 3);
  let stopped = false;
  const stop = h.transport.stop().then(() => (stopped = true));
  await sleep(2);
  assertFalse(stopped);
  const irqs = h.irq.count;
  for (const p of disk.pending.splice(0)) p();
  await stop;
  assert(stopped);
  assertEquals(h.irq.count, irqs, "completions while stopping raise no interrupt");
  h.transport.resume();
  for (const r of await Promise.all(reqs)) assertEquals(r.status, BLK_S.OK);
  assert(h.irq.count > irqs);
});

Deno.test("virtio-blk save/restore round-trip continues on a fresh device", async () => {
  const disk = new MemoryDisk(MiB);
  const h = live(disk);
  await h.request(BLK_T.OUT, 1, { out: new Uint8Array(512).fill(5) });
  const s = JSON.parse(JSON.stringify(h.transport.save()));
  const h2 = harness(new BlockDevice(disk), { mem: h.mem });
  h2.transport.restore(s);
  assertEquals(h2.transport.save(), s);
});

Deno.test("FileDisk: virtio-blk reads, writes and flushes a real image file", async () => {
  const path = await Deno.makeTempFile({ suffix: ".img" });
  try {
    await Deno.writeFile(path, new Uint8Array(MiB));
    const disk = FileDisk.open(path);
    const h = live(disk);
    const data = new Uint8Array(8192).map((_, i) => (i * 13) & 0xff);
    assertEquals((await h.request(BLK_T.OUT, 100, { out: data, split: 4096 })).status, BLK_S.OK);
    assertEquals((await h.request(BLK_T.FLUSH, 0)).status, BLK_S.OK);
    const onDisk = (await Deno.readFile(path)).subarray(100 * 512, 100 * 512 + 8192);
    assertEquals(onDisk, data);
    const r = await h.request(BLK_T.IN, 100, { inLen: 8192 });
    assertEquals(r.data, data);
    assertEquals(
      (await h.request(BLK_T.WRITE_ZEROES, 0, {
        out: (() => {
          const b = new Uint8Array(16);
          new DataView(b.buffer).setBigUint64(0, 100n, true);
          new DataView(b.buffer).setUint32(8, 1, true);
          return b;
        })(),
      })).status,
      BLK_S.OK,
    );
    assertEquals(
      (await Deno.readFile(path)).subarray(100 * 512, 101 * 512).every((b) => b === 0),
      true,
    );
    disk.close();
    const ro = FileDisk.open(path, { readOnly: true });
    assertEquals(ro.readOnly, true);
    ro.close();
    await Deno.writeFile(path, new Uint8Array(1000));
    let err = "";
    try {
      FileDisk.open(path);
    } catch (e) {
      err = (e as Error).message;
    }
    assertEquals(err, `Cannot open disk ${path}: 1000 bytes is not a multiple of 512`);
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("virtio-blk: a request over many buffers is one readv/writev when the disk has them", async () => {
  class VectorDisk extends MemoryDisk {
    calls: string[] = [];
    async readv(dsts: readonly Uint8Array[], offset: number): Promise<void> {
      this.calls.push(`readv ${dsts.map((d) => d.byteLength).join(",")} @${offset}`);
      for (const d of dsts) {
        await super.read(d, offset); // not logged: only what the device calls is
        offset += d.byteLength;
      }
    }
    async writev(srcs: readonly Uint8Array[], offset: number): Promise<void> {
      this.calls.push(`writev ${srcs.map((d) => d.byteLength).join(",")} @${offset}`);
      for (const d of srcs) {
        await super.write(d, offset);
        offset += d.byteLength;
      }
    }
    override read(dst: Uint8Array, offset: number): Promise<void> {
      this.calls.push(`read ${dst.byteLength} @${offset}`);
      return super.read(dst, offset);
    }
    override write(src: Uint8Array, offset: number): Promise<void> {
      this.calls.push(`write ${src.byteLength} @${offset}`);
      return super.write(src, offset);
    }
  }
  const disk = new VectorDisk(MiB);
  const h = live(disk);
  const data = new Uint8Array(6144).map((_, i) => (i * 31) & 0xff);
  assertEquals((await h.request(BLK_T.OUT, 8, { out: data, split: 2048 })).status, BLK_S.OK);
  const r = await h.request(BLK_T.IN, 8, { inLen: 6144, split: 1024 });
  assertEquals(r.data, data);
  const one = await h.request(BLK_T.IN, 8, { inLen: 512 });
  assertEquals(one.data, data.subarray(0, 512));
  const tail = data.slice(0, 512).reverse();
  assertEquals((await h.request(BLK_T.OUT, 20, { out: tail })).status, BLK_S.OK);
  assertEquals(disk.bytes.subarray(20 * 512, 21 * 512), tail);
  // A single piece needs no vector, either way.
  assertEquals(disk.calls, [
    "writev 2048,2048,2048 @4096",
    "readv 1024,1024,1024,1024,1024,1024 @4096",
    "read 512 @4096",
    "write 512 @10240",
  ]);
});

/** The next used entry of `q`, waiting up to a second for the asynchronous completion. */
async function usedOf(q: { getUsed(): { id: number; len: number } | null }) {
  for (let i = 0; i < 1000; i++) {
    const u = q.getUsed();
    if (u) return u;
    await sleep(1);
  }
  throw new Error("the request never completed");
}

Deno.test("virtio-blk: a zero-length last writable descriptor puts the status in the last real byte", async () => {
  // Issue 12.1: the status went to addr + len - 1 of the last descriptor even when its length
  // was 0: one byte before that buffer (at guest address 0, an exception that ended the VMM).
  for (const zeroAt of [0, 0x9000]) {
    const h = live(new MemoryDisk(MiB));
    const hdr = new Uint8Array(16); // IN, sector 0
    const data = h.driver.inBuffer(512);
    const status = h.driver.inBuffer(1);
    h.mem.writeU8(status.addr, 0xff);
    h.mem.writeU8(zeroAt === 0 ? 0 : zeroAt - 1, 0x77);
    const id = h.q.add([
      h.driver.outBuffer(hdr),
      data,
      status,
      { addr: zeroAt, len: 0, write: true },
    ]);
    h.driver.kick(h.q);
    const u = await usedOf(h.q);
    assertEquals(u.id, id);
    assertEquals(u.len, 513);
    assertEquals(h.mem.readU8(status.addr), BLK_S.OK, "the status byte is the last real byte");
    assertEquals(h.mem.readU8(zeroAt === 0 ? 0 : zeroAt - 1), 0x77, "no byte outside the chain");
    assertEquals(h.driver.status & 0x40, 0, "the device is not broken");
  }
});

Deno.test("virtio-blk: a chain with only zero-length writable descriptors completes with no status", async () => {
  const h = live(new MemoryDisk(MiB));
  h.mem.writeU8(0, 0x55);
  const id = h.q.add([h.driver.outBuffer(new Uint8Array(16)), { addr: 0, len: 0, write: true }]);
  h.driver.kick(h.q);
  const u = await usedOf(h.q);
  assertEquals([u.id, u.len], [id, 0]);
  assertEquals(h.mem.readU8(0), 0x55);
});

Deno.test("virtio-blk: requests the disk finishes at once are used in the same pass, one interrupt", async () => {
  /** A disk whose transfer is done before it returns, except where told to wait or fail. */
  class NowDisk extends MemoryDisk {
    waits = new Set<number>();
    failAt = -1;
    transferGuest(
      mem: DeviceMemory,
      bufs: readonly Buffer[],
      skip: number,
      len: number,
      offset: number,
      write: boolean,
    ) {
      if (offset === this.failAt) throw new Error("injected at once");
      // The buffer list is the device's scratch: made into views before returning.
      const views = bufferViews(mem, bufs, skip, len);
      const move = () => {
        let pos = offset;
        for (const b of views) {
          if (write) this.bytes.set(b, pos);
          else b.set(this.bytes.subarray(pos, pos + b.byteLength));
          pos += b.byteLength;
        }
      };
      if (this.waits.has(offset)) return sleep(5).then(move);
      move();
      return undefined;
    }
  }
  const disk = new NowDisk(MiB);
  disk.bytes.forEach((_, i, a) => (a[i] = (i * 3) & 0xff));
  const errors: string[] = [];
  const h = harness(new BlockDevice(disk, { onError: (m) => errors.push(m) }), {
    memSize: 4 * MiB,
  });
  assert(h.driver.init().ok);
  const q = h.driver.setupQueue(0);
  h.driver.driverOk();
  const send = (sector: number, pieces: number[]) => {
    const hdr = new Uint8Array(16);
    new DataView(hdr.buffer).setBigUint64(8, BigInt(sector), true);
    const data = pieces.map((n) => h.driver.inBuffer(n));
    const status = h.driver.inBuffer(1);
    h.mem.writeU8(status.addr, 0xff);
    const id = q.add([h.driver.outBuffer(hdr), ...data, status]);
    return { id, data, status, sector };
  };
  disk.waits.add(4 * 512);
  disk.failAt = 6 * 512;
  const reqs = [send(0, [512]), send(1, [1024, 512]), send(4, [512]), send(6, [512])];
  const irqs = h.irq.count;
  h.driver.kick(q);
  await Promise.resolve(); // the notification's own microtask, not the disk's timer
  // Three are back (two read, one failed when it started); the waiting one is still out.
  const used = q.drainUsed();
  assertEquals(used.map((u) => u.id), [reqs[0]!.id, reqs[1]!.id, reqs[3]!.id]);
  assertEquals(used.map((u) => u.len), [513, 1537, 1]);
  assertEquals(h.irq.count, irqs + 1, "one interrupt for the three");
  assertEquals(h.backend.inflight(), 1);
  for (const r of reqs.slice(0, 2)) {
    assertEquals(h.mem.readU8(r.status.addr), BLK_S.OK);
    let pos = r.sector * 512;
    for (const d of r.data) {
      assertEquals(h.mem.read(d.addr, d.len), disk.bytes.subarray(pos, pos + d.len));
      pos += d.len;
    }
  }
  assertEquals(h.mem.readU8(reqs[3]!.status.addr), BLK_S.IOERR);
  assertEquals(errors, ["virtio-blk request failed: injected at once"]);
  assertEquals(h.backend.stats.requests, 3);
  // The one that waited comes back on its own, with its interrupt.
  for (let i = 0; i < 100 && h.backend.inflight() > 0; i++) {
    await sleep(2);
  }
  const late = q.drainUsed();
  assertEquals(late.map((u) => [u.id, u.len]), [[reqs[2]!.id, 513]]);
  // Its status went to its own chain (kept apart from the queue loop's scratch chain).
  assertEquals(h.mem.readU8(reqs[2]!.status.addr), BLK_S.OK);
  assertEquals(h.mem.readU8(reqs[3]!.status.addr), BLK_S.IOERR);
  assertEquals(h.mem.read(reqs[2]!.data[0]!.addr, 512), disk.bytes.subarray(2048, 2560));
  assertEquals(h.irq.count, irqs + 2);
  assertEquals(h.backend.stats, { requests: 4, errors: 1, bytesRead: 2560, bytesWritten: 0 });
});

Deno.test("virtio-blk: a guest that keeps adding requests gets a queue's worth per pass, the rest later", async () => {
  const SIZE = 8, TOTAL = 40;
  let served = 0;
  // Each request the disk serves makes the "guest" add another, as a guest polling the used
  // ring could: without a cap the device thread would loop as long as the guest likes.
  let addOne = () => {};
  class EagerDisk extends MemoryDisk {
    transferGuest(): undefined {
      served++;
      if (served + SIZE - 1 <= TOTAL) addOne();
      return undefined;
    }
  }
  const h = harness(new BlockDevice(new EagerDisk(MiB), { queueSize: SIZE }), { memSize: 4 * MiB });
  assert(h.driver.init().ok);
  const q = h.driver.setupQueue(0, SIZE);
  h.driver.driverOk();
  const hdr = h.driver.outBuffer(new Uint8Array(16)); // IN, sector 0
  const data = h.driver.inBuffer(512), status = h.driver.inBuffer(1);
  let reaped = 0;
  addOne = () => {
    // Free the descriptors of what the device already used, then add one more request (in
    // an indirect table: one ring descriptor each).
    while (q.getUsed()) reaped++;
    q.add([hdr, data, status], { indirect: true });
  };
  for (let i = 0; i < SIZE - 1; i++) q.add([hdr, data, status], { indirect: true });
  h.driver.kick(q);
  assertEquals(served, SIZE, "one pass stops after the queue's size of chains");
  for (let i = 0; i < 200 && served < TOTAL; i++) await sleep(1);
  assertEquals(served, TOTAL, "the rest comes from later passes");
  while (q.getUsed()) reaped++;
  assertEquals(reaped, TOTAL);
  await sleep(5); // the last pass's own re-queue, if any
});

Deno.test("virtio-blk: after dispose (the machine closing) nothing touches the queue or memory", async () => {
  const disk = new SlowDisk(MiB);
  const h = live(disk);
  const status = h.driver.inBuffer(1);
  h.mem.writeU8(status.addr, 0xff);
  const hdr = h.driver.outBuffer(new Uint8Array(16));
  h.q.add([hdr, h.driver.inBuffer(512), status]);
  h.driver.kick(h.q);
  await sleep(2);
  assertEquals(disk.pending.length, 1, "one read in flight");
  const irqs = h.irq.count;
  h.device.dispose();
  for (const p of disk.pending.splice(0)) p();
  await sleep(5);
  assertEquals(h.q.getUsed(), null, "no used entry after dispose");
  assertEquals(h.mem.readU8(status.addr), 0xff, "no status byte written");
  assertEquals(h.irq.count, irqs, "no interrupt");
  // A notification after dispose is dropped too.
  h.q.add([hdr, h.driver.inBuffer(512), h.driver.inBuffer(1)]);
  h.driver.kick(h.q);
  await sleep(2);
  assertEquals(disk.pending.length, 0);
});

/**
 * A disk that takes merged transfers: it records each call, moves at most `limit` bytes of
 * one, and throws when told to.
 */
class MergeDisk extends MemoryDisk {
  calls: { offset: number; len: number; pieces: number; write: boolean }[] = [];
  events: string[] = [];
  limit = Infinity;
  throwNext = false;
  transferGuestNow(
    mem: DeviceMemory,
    bufs: readonly Buffer[],
    len: number,
    offset: number,
    write: boolean,
  ): number {
    this.calls.push({ offset, len, pieces: bufs.length, write });
    this.events.push(`${write ? "write" : "read"} ${offset}+${len}`);
    if (this.throwNext) {
      this.throwNext = false;
      throw new Error("injected merge failure");
    }
    const n = Math.min(len, this.limit);
    moveGuestBytes(this.bytes, mem, bufs, n, offset, write);
    return n;
  }
  override flush(): Promise<void> {
    this.events.push("flush");
    return super.flush();
  }
}

/** A device on a MergeDisk of 8 MiB with patterned bytes, and a way to queue requests. */
function merging() {
  const disk = new MergeDisk(8 * MiB);
  disk.bytes.forEach((_, i, a) => (a[i] = (i * 5 + (i >> 9)) & 0xff));
  const errors: string[] = [];
  const h = harness(new BlockDevice(disk, { onError: (m) => errors.push(m) }), {
    memSize: 8 * MiB,
  });
  assert(h.driver.init().ok);
  const q = h.driver.setupQueue(0);
  h.driver.driverOk();
  /** Queues (does not kick) a request; `pieces` are the data buffers' sizes. */
  const send = (
    type: number,
    sector: number,
    pieces: number[],
    o: { statusInData?: boolean; fill?: number; indirect?: boolean } = {},
  ) => {
    const hdr = new Uint8Array(16);
    new DataView(hdr.buffer).setUint32(0, type, true);
    new DataView(hdr.buffer).setBigUint64(8, BigInt(sector), true);
    const write = type === BLK_T.OUT;
    const data = pieces.map((n, k) => {
      if (!write) return h.driver.inBuffer(n + (o.statusInData && k === pieces.length - 1 ? 1 : 0));
      return h.driver.outBuffer(new Uint8Array(n).fill((o.fill ?? 1) + k));
    });
    const status = o.statusInData ? undefined : h.driver.inBuffer(1);
    const at = status ? status.addr : data[data.length - 1]!.addr + pieces[pieces.length - 1]!;
    h.mem.writeU8(at, 0xff);
    const id = q.add([h.driver.outBuffer(hdr), ...data, ...(status ? [status] : [])], {
      indirect: o.indirect ?? false,
    });
    return { id, data, pieces, at, sector, write };
  };
  /** Checks a read's data against the disk. */
  const readBack = (r: ReturnType<typeof send>) => {
    let pos = r.sector * 512;
    r.data.forEach((d, k) => {
      const n = r.pieces[k]!;
      assertEquals(h.mem.read(d.addr, n), disk.bytes.subarray(pos, pos + n), `${r.sector}/${k}`);
      pos += n;
    });
  };
  return { ...h, disk, q, send, readBack, errors };
}

Deno.test("virtio-blk merges the reads and writes of adjacent sectors a notification brings", async () => {
  const h = merging();
  const reads = [
    h.send(BLK_T.IN, 0, [512, 512]),
    h.send(BLK_T.IN, 2, [512]),
    h.send(BLK_T.IN, 3, [1024], { statusInData: true }), // status in the data's buffer
  ];
  const apart = h.send(BLK_T.IN, 10, [512]); // not adjacent: a merge of its own
  const writes = [h.send(BLK_T.OUT, 11, [512], { fill: 7 }), h.send(BLK_T.OUT, 12, [512, 512])];
  const flush = h.send(BLK_T.FLUSH, 0, []);
  const after = h.send(BLK_T.IN, 14, [512]);
  const irqs = h.irq.count;
  h.driver.kick(h.q);
  assertEquals(h.irq.count - irqs, 1, "one interrupt for the pass");
  assertEquals(h.disk.calls, [
    { offset: 0, len: 2560, pieces: 4, write: false },
    { offset: 5120, len: 512, pieces: 1, write: false },
    { offset: 5632, len: 1536, pieces: 3, write: true },
    { offset: 7168, len: 512, pieces: 1, write: false },
  ]);
  // The writes before the FLUSH were on the disk when it started.
  assertEquals(h.disk.events.slice(2, 4), ["write 5632+1536", "flush"]);
  await sleep(2); // FLUSH completes from a promise
  const used = h.q.drainUsed();
  const all = [...reads, apart, ...writes, flush, after];
  assertEquals(used.length, all.length, "each returned once");
  assertEquals(new Set(used.map((u) => u.id)), new Set(all.map((r) => r.id)));
  const lens = new Map(used.map((u) => [u.id, u.len]));
  assertEquals(all.map((r) => lens.get(r.id)), [1025, 513, 1025, 513, 1, 1, 1, 513]);
  for (const r of all) assertEquals(h.mem.readU8(r.at), BLK_S.OK);
  for (const r of [...reads, apart, after]) h.readBack(r);
  assertEquals(h.disk.bytes.subarray(5632, 6144).every((b) => b === 7), true);
  assertEquals(h.disk.bytes.subarray(6144, 6656).every((b) => b === 1), true);
  assertEquals(h.disk.bytes.subarray(6656, 7168).every((b) => b === 2), true);
  assertEquals(h.backend.stats, { requests: 8, errors: 0, bytesRead: 3584, bytesWritten: 1536 });
  assertEquals(h.errors, []);
});

Deno.test("virtio-blk merges writes whose header shares a buffer with their data", () => {
  const h = merging();
  const ids = [20, 21].map((sector) => {
    // One readable buffer: the 16-byte header, then 512 bytes of data.
    const buf = new Uint8Array(16 + 512).fill(0x40 + sector);
    new DataView(buf.buffer).setUint32(0, BLK_T.OUT, true);
    new DataView(buf.buffer).setBigUint64(8, BigInt(sector), true);
    const status = h.driver.inBuffer(1);
    return { id: h.q.add([h.driver.outBuffer(buf), status]), status: status.addr };
  });
  h.driver.kick(h.q);
  assertEquals(h.disk.calls, [{ offset: 20 * 512, len: 1024, pieces: 2, write: true }]);
  assertEquals(h.q.drainUsed().map((u) => [u.id, u.len]), ids.map((r) => [r.id, 1]));
  for (const r of ids) assertEquals(h.mem.readU8(r.status), BLK_S.OK);
  assertEquals(h.disk.bytes.subarray(20 * 512, 21 * 512).every((b) => b === 0x40 + 20), true);
  assertEquals(h.disk.bytes.subarray(21 * 512, 22 * 512).every((b) => b === 0x40 + 21), true);
});

Deno.test("virtio-blk: what a merged call did not move is served request by request", async () => {
  const h = merging();
  // Moves 700 bytes: the first request whole, the second in part (read again on its own).
  h.disk.limit = 700;
  const part = [h.send(BLK_T.IN, 0, [512]), h.send(BLK_T.IN, 1, [512]), h.send(BLK_T.IN, 2, [512])];
  h.driver.kick(h.q);
  assertEquals(h.disk.calls.length, 1);
  assertEquals(h.q.drainUsed().map((u) => u.id), [part[0]!.id], "the one moved whole, at once");
  await sleep(2); // MemoryDisk's own reads settle as promises
  assertEquals(h.q.drainUsed().map((u) => u.id), [part[1]!.id, part[2]!.id]);
  for (const r of part) {
    assertEquals(h.mem.readU8(r.at), BLK_S.OK);
    h.readBack(r);
  }
  assertEquals(h.backend.stats.bytesRead, 1536);
  // A call that throws: every request on its own, and a host error fails only its own.
  h.disk.limit = Infinity;
  h.disk.throwNext = true;
  h.disk.failNext = true; // the first request's own read
  const failed = [h.send(BLK_T.IN, 4, [512]), h.send(BLK_T.IN, 5, [512])];
  h.driver.kick(h.q);
  await sleep(2);
  assertEquals(h.q.drainUsed().map((u) => [u.id, u.len]), [[failed[0]!.id, 1], [
    failed[1]!.id,
    513,
  ]]);
  assertEquals(h.mem.readU8(failed[0]!.at), BLK_S.IOERR);
  assertEquals(h.mem.readU8(failed[1]!.at), BLK_S.OK);
  h.readBack(failed[1]!);
  assertEquals(h.errors, ["virtio-blk request failed: injected I/O error"]);
  // A write moved in part is written again whole on its own: the disk ends up exact.
  h.disk.limit = 100;
  const w = h.send(BLK_T.OUT, 8, [512], { fill: 9 });
  h.driver.kick(h.q);
  await sleep(2);
  assertEquals(h.q.drainUsed().map((u) => u.id), [w.id]);
  assertEquals(h.disk.bytes.subarray(4096, 4608).every((b) => b === 9), true);
});

Deno.test("virtio-blk: a merge covers at most 1 MiB and 256 buffers; a larger request goes alone", async () => {
  const h = merging();
  const half = 512 * 1024;
  // Three adjacent 512 KiB reads: two merged (1 MiB), the third starts the next merge.
  const big = [0, 1024, 2048].map((s) => h.send(BLK_T.IN, s, [half]));
  // Then 1.5 MiB in one request: more than a merge, served alone.
  const huge = h.send(BLK_T.IN, 3072, [3 * half]);
  h.driver.kick(h.q);
  assertEquals(h.disk.calls.map((c) => [c.offset, c.len]), [[0, 2 * half], [2 * half, half]]);
  // Two requests of 200 pieces each (indirect tables): 400 buffers, so two calls.
  const many = [0, 200].map((s) =>
    h.send(BLK_T.IN, 6144 + s, Array(200).fill(512), { indirect: true })
  );
  h.driver.kick(h.q);
  assertEquals(h.disk.calls.slice(2).map((c) => c.pieces), [200, 200]);
  await sleep(2); // the large one through MemoryDisk's read
  const used = h.q.drainUsed();
  assertEquals(used.length, 6);
  for (const r of [...big, huge, ...many]) {
    assertEquals(h.mem.readU8(r.at), BLK_S.OK);
    h.readBack(r);
  }
});

Deno.test("virtio-blk: requests merged before a broken ring entry are still returned", () => {
  const h = merging();
  const ok = [h.send(BLK_T.IN, 0, [512]), h.send(BLK_T.IN, 1, [512])];
  // An avail entry naming a descriptor beyond the ring: the pass throws there.
  h.q.publish(h.q.size + 3);
  h.driver.kick(h.q);
  assertEquals(h.disk.calls.length, 1);
  assertEquals(h.q.drainUsed().map((u) => u.id), ok.map((r) => r.id));
  for (const r of ok) {
    assertEquals(h.mem.readU8(r.at), BLK_S.OK);
    h.readBack(r);
  }
  assert(h.driver.status & STATUS.DEVICE_NEEDS_RESET);
});

Deno.test("virtio-blk: a merge moved before a broken ring entry still raises its interrupt", () => {
  const h = merging();
  const ok = [h.send(BLK_T.IN, 0, [512]), h.send(BLK_T.IN, 1, [512])];
  // A read with no data cannot join: it moves the merge (used entries added) and goes on its
  // own (MemoryDisk answers with a promise), so the merge is empty when the pass throws.
  h.send(BLK_T.IN, 2, []);
  h.q.publish(h.q.size + 3);
  h.driver.kick(h.q);
  assertEquals(h.q.drainUsed().map((u) => u.id), ok.map((r) => r.id));
  const isr = h.driver.readReg(REG.INTERRUPT_STATUS);
  assertEquals(isr & 1, 1, "the used-buffer interrupt for what was returned");
  assertEquals(isr & 2, 2, "and the config interrupt of DEVICE_NEEDS_RESET");
});
