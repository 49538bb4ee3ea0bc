/**
 * Property tests: whatever the guest writes (random descriptor tables, avail rings and
 * indices, random register sequences), the device never throws out of the transport,
 * never loops, and ends in a state the spec allows. PROPERTY_CASES sets the number of
 * cases of each test (default 50000 each, 100000 in all; `deno task test:property` runs
 * a million). PROPERTY_SEED picks the seed; a failure prints the seed of its case.
 */

import { assert } from "@std/assert";
import { GuestMemory } from "../memory/guest_memory.ts";
import { DummyDevice } from "../testing/dummy_device.ts";
import { Prng } from "../testing/prng.ts";
import { harness } from "../testing/setup.ts";
import { REG } from "../transports/mmio.ts";
import { STATUS } from "../virtio/constants.ts";
import type { VirtioDevice } from "../virtio/device.ts";

const CASES = Number(Deno.env.get("PROPERTY_CASES") ?? 50_000);
const SEED = Number(Deno.env.get("PROPERTY_SEED") ?? 20261121);
const MEM = 0x10000;

const MODERN_STEPS = new Set([0, 1, 3, 11, 15]);
const LEGACY_STEPS = new Set([0, 1, 3, 7]);

/** The spec-allowed shapes of the status register and queue fields. */
function checkState(dev: VirtioDevice, where: string): void {
  const s = dev.status;
  const steps = dev.legacy ? LEGACY_STEPS : MODERN_STEPS;
  assert(steps.has(s & 0x0f), `${where}: status 0x${s.toString(16)}`);
  assert(
    !(s & STATUS.DEVICE_NEEDS_RESET) || s & STATUS.DRIVER_OK,
    `${where}: NEEDS_RESET before DRIVER_OK`,
  );
  assert((s & 0x30) === 0, `${where}: reserved status bits`);
  assert((dev.isr & ~3) === 0, `${where}: isr 0x${dev.isr.toString(16)}`);
  for (const q of dev.queues) {
    assert(
      q.size > 0 && (q.size & (q.size - 1)) === 0 && q.size <= q.maxSize,
      `${where}: queue size ${q.size}`,
    );
    assert(q.nextAvail >= 0 && q.nextAvail <= 0xffff && q.nextUsed >= 0 && q.nextUsed <= 0xffff);
  }
  if (dev.active) {
    for (const q of dev.queues) {
      if (q.ready) {
        assert(q.invalidReason(dev.mem) === undefined, `${where}: a live queue is invalid`);
      }
    }
  }
}

Deno.test(`property: ${CASES} random descriptor tables and avail indices never throw, hang or corrupt`, () => {
  const rng = new Prng(SEED);
  const mem = GuestMemory.allocate([{ gpa: 0, size: MEM }]);
  for (let c = 0; c < CASES; c++) {
    const where = `queue case ${c} (seed ${SEED})`;
    mem.fill(0, MEM, 0);
    const h = harness(new DummyDevice({ queues: [16] }), { mem });
    assert(h.driver.init().ok);
    const size = 1 << rng.int(5);
    const q = h.driver.setupQueue(0, size);
    h.driver.driverOk();
    // Scribble over the descriptor table, the avail ring and a few more pages.
    const addr = () => rng.chance(0.8) ? rng.int(MEM) : rng.u32() * (rng.chance(0.5) ? 1 : 0x10000);
    for (let i = 0; i < size; i++) {
      const d = q.desc + 16 * i;
      mem.writeU64(d, Math.min(addr(), Number.MAX_SAFE_INTEGER));
      mem.writeU32(d + 8, rng.chance(0.7) ? rng.int(64) : rng.u32());
      mem.writeU16(d + 12, rng.int(8));
      mem.writeU16(d + 14, rng.chance(0.8) ? rng.int(size + 1) : rng.int(0x10000));
      mem.writeU16(q.avail + 4 + 2 * i, rng.chance(0.9) ? rng.int(size) : rng.int(0x10000));
    }
    // (not over the used ring: the device owns it, and the check below reads it)
    const usedEnd = q.used + 6 + 8 * size;
    for (let i = 0; i < 4; i++) {
      const t = rng.int(MEM - 64);
      if (t + 64 > q.used && t < usedEnd) continue;
      for (let k = 0; k < 64; k += 4) mem.writeU32(t + k, rng.u32());
    }
    mem.writeU16(q.avail, rng.int(2));
    mem.writeU16(q.avail + 4 + 2 * size, rng.int(0x10000)); // used_event
    const rounds = 1 + rng.int(3);
    for (let r = 0; r < rounds; r++) {
      const jump = rng.chance(0.9) ? rng.int(size + 1) : rng.int(0x10000);
      q.setAvailIdx(h.device.queues[0]!.nextAvail + jump);
      h.transport.write(REG.QUEUE_NOTIFY, new Uint8Array([0, 0, 0, 0]));
      checkState(h.device, where);
    }
    const dq = h.device.queues[0]!;
    assert(mem.readU16(q.used + 2) === dq.nextUsed, `${where}: used.idx != device next used`);
    const broke = (h.device.status & STATUS.DEVICE_NEEDS_RESET) !== 0;
    if (!broke) assert(dq.availIdx(mem) === dq.nextAvail, `${where}: a sane ring was not drained`);
  }
});

const OFFSETS = Object.values(REG);

Deno.test(`property: ${CASES} random register write sequences end in spec-allowed states`, () => {
  const rng = new Prng(SEED ^ 0x5a5a5a5a);
  const mem = GuestMemory.allocate([{ gpa: 0, size: MEM }]);
  const statusValues = [0, 1, 3, 7, 11, 15, 0x80, 0x40, 0x4f, 0xff, 2, 4, 8];
  for (let c = 0; c < CASES; c++) {
    const where = `register case ${c} (seed ${SEED})`;
    const legacy = rng.chance(0.25);
    const h = harness(new DummyDevice({ queues: [8, 4], async: rng.chance(0.2) }), { mem, legacy });
    const ops = 10 + rng.int(40);
    for (let i = 0; i < ops; i++) {
      const roll = rng.int(100);
      if (roll < 50) {
        const off = rng.chance(0.9) ? rng.pick(OFFSETS) : rng.int(0x120);
        const width = rng.chance(0.9) ? 4 : rng.pick([1, 2, 8]);
        let v = rng.u32();
        if (off === REG.STATUS) v = rng.pick(statusValues);
        else if (off === REG.QUEUE_NUM) v = rng.pick([0, 1, 2, 3, 4, 8, 16, 1024, v]);
        else if (off === REG.QUEUE_SEL || off === REG.QUEUE_NOTIFY) v = rng.int(4);
        else if (off === REG.QUEUE_READY) v = rng.int(3);
        else if ((off & 0xf0) >= 0x80 && off < 0xb0) v = rng.chance(0.7) ? rng.int(MEM) & ~15 : v;
        else if (off === REG.QUEUE_PFN) v = rng.int(MEM / 4096);
        const b = new Uint8Array(width);
        if (width >= 4) new DataView(b.buffer).setUint32(0, v, true);
        else b.fill(v & 0xff);
        h.transport.write(off, b);
      } else if (roll < 80) {
        h.transport.read(
          rng.chance(0.9) ? rng.pick(OFFSETS) : rng.int(0x120),
          new Uint8Array(rng.pick([1, 2, 4])),
        );
      } else if (roll < 88) {
        // A well-behaved step, so sequences also reach the deeper states.
        const s = h.device.status;
        const next = s === 0 ? 1 : s === 1 ? 3 : s === 3 ? (legacy ? 7 : 11) : s === 11 ? 15 : s;
        h.transport.write(REG.STATUS, new Uint8Array([next, 0, 0, 0]));
      } else if (roll < 94) {
        h.backend.changeConfig();
      } else if (roll < 97) {
        void h.device.stop();
      } else {
        h.transport.resume();
      }
      checkState(h.device, where);
    }
    h.transport.resume();
    checkState(h.device, where);
  }
});
