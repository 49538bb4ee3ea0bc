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
import { harness } from "../testing/setup.ts";
import { STATUS } from "../virtio/constants.ts";
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
      h.driver.kick(q);
    }
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
