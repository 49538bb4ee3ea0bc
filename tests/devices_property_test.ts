/**
 * Property tests for the devices: random guest requests (random descriptor layouts,
 * headers, lengths, sectors, ports and ops) never throw out of the transport, never hang,
 * and leave the device in a spec-allowed state. PROPERTY_CASES scales it (default 5000
 * per device).
 */

import { assert } from "@std/assert";
import { BlockDevice, MemoryDisk } from "../devices/block.ts";
import { ConsoleDevice } from "../devices/console.ts";
import { NetDevice } from "../devices/net.ts";
import { RngDevice } from "../devices/rng.ts";
import { encodeHeader, VsockDevice } from "../devices/vsock.ts";
import { GuestMemory } from "../memory/guest_memory.ts";
import type { Segment, VirtqueueDriver } from "../testing/driver.ts";
import { Prng } from "../testing/prng.ts";
import { moveGuestBytes } from "../testing/disk.ts";
import { harness } from "../testing/setup.ts";
import { STATUS } from "../virtio/constants.ts";
import type { DeviceMemory } from "../memory/guest_memory.ts";
import type { Buffer } from "../virtio/queue.ts";
import type { VirtioBackend } from "../virtio/device.ts";
import { Ticker } from "../vstate/ticker.ts";

const CASES = Math.max(1, Math.floor(Number(Deno.env.get("PROPERTY_CASES") ?? 50_000) / 10));
const SEED = Number(Deno.env.get("PROPERTY_SEED") ?? 20261121);
const MEM = 0x40000;

/** Random bytes, biased towards small integers and header-like values. */
function noise(rng: Prng, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = rng.chance(0.5) ? rng.int(16) : rng.int(256);
  return b;
}

/** A random chain: readable segments (random content) then writable ones; some bogus. */
function chain(rng: Prng, h: ReturnType<typeof harness>, head?: Uint8Array): Segment[] {
  const segs: Segment[] = [];
  if (head) segs.push(h.driver.outBuffer(head));
  for (let i = rng.int(3); i > 0; i--) segs.push(h.driver.outBuffer(noise(rng, rng.int(600))));
  for (let i = rng.int(3); i > 0; i--) segs.push(h.driver.inBuffer(rng.int(1200)));
  if (rng.chance(0.05)) {
    segs.push({ addr: rng.u32() * 16, len: rng.int(4096), write: rng.chance(0.5) });
  }
  if (segs.length === 0) segs.push(h.driver.inBuffer(1));
  return segs;
}

async function fuzz(
  name: string,
  make: () => VirtioBackend,
  queues: number,
  header: (rng: Prng) => Uint8Array | undefined,
): Promise<void> {
  const rng = new Prng(SEED ^ name.length * 7919);
  const ticker = new Ticker();
  const mem = GuestMemory.allocate([{ gpa: 0, size: MEM }]);
  for (let c = 0; c < CASES; c++) {
    const where = `${name} case ${c} (seed ${SEED})`;
    mem.fill(0, MEM, 0);
    const h = harness(make(), { mem });
    assert(h.driver.init().ok, where);
    const qs: VirtqueueDriver[] = [];
    for (let i = 0; i < queues; i++) qs.push(h.driver.setupQueue(i, 8));
    h.driver.driverOk();
    for (let n = 1 + rng.int(6); n > 0; n--) {
      const q = qs[rng.int(queues)]!;
      if (q.freeCount < 6) break;
      try {
        q.add(chain(rng, h, header(rng)), { indirect: rng.chance(0.2) });
      } catch (e) {
        if (!(e instanceof RangeError)) throw e; // the test allocator ran out: fine
        break;
      }
      // Sometimes several chains before one notification (a block device merges them).
      if (rng.chance(0.6)) h.driver.kick(q);
    }
    for (const q of qs) h.driver.kick(q);
    if (rng.chance(0.2)) await h.transport.stop().then(() => h.transport.resume());
    await ticker.tick(); // let asynchronous completions run
    const s = h.device.status;
    assert((s & 0x0f) === 15, `${where}: status 0x${s.toString(16)}`);
    assert(!(s & STATUS.FAILED), where);
    for (const q of qs) q.drainUsed(); // the used ring must parse: ids it handed out only
  }
  ticker.close();
}

const blkHeader = (rng: Prng) => {
  const b = new Uint8Array(16);
  const v = new DataView(b.buffer);
  v.setUint32(0, rng.pick([0, 1, 4, 8, 11, 13, rng.int(32), rng.u32()]), true);
  v.setBigUint64(
    8,
    BigInt(rng.chance(0.8) ? rng.int(300) : rng.u32()) << BigInt(rng.chance(0.1) ? 31 : 0),
    true,
  );
  return rng.chance(0.9) ? b : b.subarray(0, rng.int(16));
};

Deno.test(`property: virtio-blk survives ${CASES} random request sets`, async () => {
  await fuzz("blk", () => new BlockDevice(new MemoryDisk(128 * 1024)), 1, blkHeader);
  const rng = new Prng(SEED);
  await fuzz("blk-merging", () => new BlockDevice(new PartialDisk(128 * 1024, rng)), 1, blkHeader);
});

Deno.test(`property: virtio-net survives ${CASES} random transmit and receive chains`, async () => {
  const backend = { read: () => 0, write: () => true, setOffload: () => {} };
  await fuzz("net", () => new NetDevice(backend, { mac: "52:54:00:00:00:01" }), 2, () => undefined);
});

Deno.test(`property: virtio-vsock survives ${CASES} random packets`, async () => {
  const host = { connect: () => Promise.resolve(null) };
  await fuzz("vsock", () => new VsockDevice({ cid: 3, host }), 3, (rng) =>
    encodeHeader({
      srcCid: rng.chance(0.8) ? 3n : BigInt(rng.u32()),
      dstCid: rng.chance(0.8) ? 2n : BigInt(rng.int(5)),
      srcPort: rng.int(8),
      dstPort: rng.int(8),
      len: rng.chance(0.7) ? rng.int(64) : rng.u32(),
      type: rng.chance(0.9) ? 1 : rng.int(4),
      op: rng.int(9),
      flags: rng.int(4),
      bufAlloc: rng.u32(),
      fwdCnt: rng.u32(),
    }));
});

Deno.test(`property: virtio-console and virtio-rng survive ${CASES} random chains`, async () => {
  await fuzz("console", () => new ConsoleDevice({ output: () => {} }), 2, () => undefined);
  await fuzz("rng", () => new RngDevice(), 1, () => undefined);
});

/**
 * A disk that takes merged transfers and moves a random part of each (none, some, all; or
 * throws): what it leaves, the device moves request by request. Its own transfers are done
 * when called (one vectored call per request), so every request takes effect when it starts,
 * in ring order, as the model below applies them.
 */
class PartialDisk extends MemoryDisk {
  constructor(size: number, readonly rng: Prng) {
    super(size);
  }
  readv(dsts: readonly Uint8Array[], offset: number): Promise<void> {
    for (const d of dsts) {
      d.set(this.bytes.subarray(offset, offset + d.byteLength));
      offset += d.byteLength;
    }
    return Promise.resolve();
  }
  writev(srcs: readonly Uint8Array[], offset: number): Promise<void> {
    for (const b of srcs) {
      this.bytes.set(b, offset);
      offset += b.byteLength;
    }
    return Promise.resolve();
  }
  transferGuestNow(
    mem: DeviceMemory,
    bufs: readonly Buffer[],
    len: number,
    offset: number,
    write: boolean,
  ): number {
    const roll = this.rng.int(8);
    if (roll === 0) throw new Error("injected");
    // None, any part, a byte either side of a sector boundary (where requests end), or all.
    const edge = this.rng.int(len / 512 + 1) * 512 + (this.rng.chance(0.5) ? 1 : -1);
    const n = [0, this.rng.int(len + 1), Math.max(0, Math.min(len, edge))][roll - 1] ?? len;
    moveGuestBytes(this.bytes, mem, bufs, n, offset, write);
    return n;
  }
}

Deno.test(
  `property: virtio-blk with merging gives the data of requests served one by one, in order (${
    Math.ceil(CASES / 5)
  } cases)`,
  async () => {
    const rng = new Prng(SEED ^ 0x6d65);
    const ticker = new Ticker();
    const SECTORS = 64;
    const mem = GuestMemory.allocate([{ gpa: 0, size: MEM }]);
    for (let c = 0; c < Math.ceil(CASES / 5); c++) {
      const where = `merge case ${c} (seed ${SEED})`;
      const disk = new PartialDisk(SECTORS * 512, rng);
      for (let i = 0; i < disk.size; i++) disk.bytes[i] = rng.int(256);
      const model = disk.bytes.slice();
      const h = harness(new BlockDevice(disk), { mem });
      assert(h.driver.init().ok, where);
      const q = h.driver.setupQueue(0, 128);
      h.driver.driverOk();
      const sent: {
        id: number;
        read: boolean;
        data: Segment[];
        status: number;
        want?: Uint8Array;
      }[] = [];
      // Requests near each other (adjacent, overlapping, apart), reads and writes mixed, each
      // checked against a model that applies them one by one in ring order.
      let sector = rng.int(SECTORS - 4);
      for (let n = 1 + rng.int(12); n > 0; n--) {
        const count = 1 + rng.int(3), bytes = count * 512;
        sector = rng.chance(0.6) ? sector : rng.int(SECTORS - count);
        if (sector + count > SECTORS) sector = 0;
        const read = rng.chance(0.6);
        const cuts = [0, ...Array.from({ length: rng.int(3) }, () => rng.int(bytes)), bytes].sort(
          (a, b) => a - b,
        );
        const hdr = new Uint8Array(16);
        new DataView(hdr.buffer).setUint32(0, read ? 0 : 1, true);
        new DataView(hdr.buffer).setBigUint64(8, BigInt(sector), true);
        const src = noise(rng, bytes);
        const data: Segment[] = [];
        for (let k = 1; k < cuts.length; k++) {
          const len = cuts[k]! - cuts[k - 1]!;
          if (len === 0 && rng.chance(0.5)) continue;
          data.push(
            read
              ? h.driver.inBuffer(len)
              : h.driver.outBuffer(src.subarray(cuts[k - 1]!, cuts[k]!)),
          );
        }
        const status = h.driver.inBuffer(1);
        h.mem.writeU8(status.addr, 0xff);
        const off = sector * 512;
        let want: Uint8Array | undefined;
        if (read) want = model.slice(off, off + bytes);
        else model.set(src, off);
        const id = q.add([h.driver.outBuffer(hdr), ...data, status], { indirect: rng.chance(0.3) });
        sent.push({ id, read, data, status: status.addr, ...(want ? { want } : {}) });
        sector += count;
        if (rng.chance(0.2)) h.driver.kick(q);
      }
      h.driver.kick(q);
      for (let i = 0; i < 5; i++) await ticker.tick();
      const drained = q.drainUsed();
      assert(drained.length === sent.length, `${where}: ${drained.length} used for ${sent.length}`);
      const used = new Map(drained.map((u) => [u.id, u.len]));
      for (const r of sent) {
        assert(used.has(r.id), `${where}: request ${r.id} not returned`);
        assert(h.mem.readU8(r.status) === 0, `${where}: request ${r.id} status`);
        if (!r.want) {
          assert(used.get(r.id) === 1, `${where}: a write's used length`);
          continue;
        }
        assert(used.get(r.id) === r.want.byteLength + 1, `${where}: used length`);
        const got = new Uint8Array(r.data.flatMap((d) => [...h.mem.read(d.addr, d.len)]));
        assert(got.every((v, i) => v === r.want![i]), `${where}: read ${r.id} data`);
      }
      assert(disk.bytes.every((v, i) => v === model[i]), `${where}: disk contents`);
    }
    ticker.close();
  },
);
