/**
 * Property test of the admin virtqueue: whatever the guest's management driver sends
 * (random classes, commands, ids and out-data, well-formed commands with random arguments,
 * chains too short for a header or without room for a reply, random MMU mappings, random
 * kicks of virtual devices with scribbled rings), nothing throws out of the transport,
 * nothing hangs, every command chain comes back, every refusal carries an error code, the
 * management device never breaks, and every virtual device stays in a spec-allowed state.
 * PROPERTY_CASES scales the number of cases (default 50000 → 2500 command sequences);
 * PROPERTY_SEED picks the seed.
 */

import { assert } from "@std/assert";
import { type AdminAnswer, AdminDriver, VirtualDriver } from "../testing/admin_driver.ts";
import { Prng } from "../testing/prng.ts";
import { ManagementDevice, virtualDeviceResource, virtualDevices } from "../devices/management.ts";
import { harness } from "../testing/setup.ts";
import { MemoryDisk } from "../devices/block.ts";
import { ADMIN_CLASS, ADMIN_ERR, AdminTransport } from "../transports/admin_vq.ts";
import { STATUS } from "../virtio/constants.ts";
import { sleep } from "@denovm/sys/timer";

const CASES = Math.max(50, Math.floor(Number(Deno.env.get("PROPERTY_CASES") ?? 50_000) / 20));
const SEED = Number(Deno.env.get("PROPERTY_SEED") ?? 20261127);
const MEM = 0x40000;
const CLASSES = Object.values(ADMIN_CLASS);
const STEPS = new Set([0, 1, 3, 11, 15]);

Deno.test(`property: ${CASES} random admin command sequences never throw, hang or break the management device`, async () => {
  const rng = new Prng(SEED);
  let live = 0, restores = 0;
  for (let c = 0; c < CASES; c++) {
    const where = `admin case ${c} (seed ${SEED})`;
    const disks = [new MemoryDisk(64 * 1024)];
    const factory = virtualDevices({ disks });
    const a = AdminDriver.open({
      memSize: MEM,
      factory,
      maxDevices: 4,
      exclusive: virtualDeviceResource,
    });
    const ids = () => a.h.backend.transport.devices.map((d) => BigInt(d.id));
    const ops = 5 + rng.int(30);
    for (let i = 0; i < ops; i++) {
      const pickId = () =>
        rng.chance(0.7) && ids().length ? rng.pick(ids()) : BigInt(rng.pick([0, 1, 2, 99, -1]));
      const id = BigInt.asUintN(64, pickId());
      const cls = rng.chance(0.9) ? rng.pick(CLASSES) : rng.int(0x10000);
      const cmd = rng.chance(0.9) ? rng.int(4) : rng.int(0x10000);
      let out: Uint8Array;
      const roll = rng.int(10);
      if (cls === ADMIN_CLASS.VDEV && cmd === 0 && roll < 6) {
        out = new Uint8Array(16 + (rng.chance(0.3) ? 4 : 0));
        const v = new DataView(out.buffer);
        v.setUint32(0, rng.pick([2, 3, 4, 1, 19, 0xad]), true);
        v.setBigUint64(8, rng.chance(0.7) ? ~0n & 0xffff_ffff_ffff_ffffn : BigInt(rng.u32()), true);
      } else if (cls === ADMIN_CLASS.MMU && roll < 6) {
        out = new Uint8Array(24);
        const v = new DataView(out.buffer);
        v.setBigUint64(0, BigInt(rng.chance(0.5) ? 0 : rng.int(MEM * 2)), true);
        v.setBigUint64(8, BigInt(rng.chance(0.5) ? 0 : rng.int(MEM * 2)), true);
        v.setBigUint64(16, BigInt(rng.chance(0.5) ? MEM : rng.int(MEM)), true);
      } else if (cls === ADMIN_CLASS.STATUS && cmd === 0 && roll < 7) {
        out = Uint8Array.of(rng.pick([0, 1, 3, 11, 15, 0x80, 0x40, 0x20, 0xff, 7]));
      } else if (cls === ADMIN_CLASS.QUEUE && roll < 6) {
        out = new Uint8Array(cmd === 1 ? 32 : 2);
        const v = new DataView(out.buffer);
        v.setUint16(0, rng.int(3), true);
        if (cmd === 1) {
          v.setUint16(2, rng.pick([0, 1, 3, 4, 8, 1024]), true);
          for (const o of [8, 16, 24]) v.setBigUint64(o, BigInt(rng.int(MEM) & ~15), true);
        }
      } else {
        out = new Uint8Array(rng.chance(0.8) ? rng.int(40) : rng.int(5000));
        for (let k = 0; k < out.byteLength; k++) out[k] = rng.u32() & 0xff;
      }
      // A well-behaved bring-up now and then, so that live virtual devices get the random
      // kicks, scribbles and resets too.
      if (rng.chance(0.15)) {
        try {
          if (!ids().length || rng.chance(0.3)) a.create(rng.pick([3, 4]));
          const v = new VirtualDriver(a, rng.pick(ids()));
          v.map(0, 0, MEM);
          if (v.init()) {
            const q = v.setupQueue(0, 4);
            v.driverOk();
            q.add([a.h.driver.inBuffer(16)]);
            v.kick(q, true);
            live++;
          }
        } catch (e) {
          if (!(e instanceof Error) || !/failed: error|out of memory/.test(e.message)) throw e;
        }
      }
      // Sometimes scribble over guest memory, where virtual devices' rings may be.
      if (rng.chance(0.1)) {
        const t = 0x10000 + rng.int(MEM - 0x10100);
        for (let k = 0; k < 64; k += 4) a.mem.writeU32(t + k, rng.u32());
      }
      const before = JSON.stringify(a.h.backend.transport.save());
      let answer: AdminAnswer | undefined;
      try {
        const p = a.post(id, cls, cmd, out.subarray(0, 4096), rng.pick([0, 1, 8, 64, 600]));
        for (let t = 0; t < 1000 && !answer; t++) {
          answer = a.answer(p);
          if (!answer) await sleep(0);
        }
      } catch (e) {
        if (e instanceof RangeError && /out of memory|Queue full/.test(e.message)) break;
        throw e;
      }
      if (!answer) {
        throw new Error(`${where}: command ${i} (class ${cls} command ${cmd}) never came back`);
      }
      if (answer.usedLen > 0) {
        assert(answer.ack === 0 || answer.ack === 1, `${where}: ack ${answer.ack}`);
        const codes = Object.values(ADMIN_ERR) as number[];
        assert(
          answer.ack === 0 ? answer.error === 0 : answer.error > 0 && codes.includes(answer.error),
          `${where}: ack ${answer.ack} with error ${answer.error}`,
        );
        if (answer.ack === 1) {
          assert(
            JSON.stringify(a.h.backend.transport.save()) === before,
            `${where}: refused command ${i} (class ${cls} command ${cmd}, error ${answer.error}) changed state`,
          );
        }
      }
      // Pause and resume now and then; every state reached must be one a snapshot restores,
      // and sometimes is restored into a new management device that the driver goes on with.
      if (rng.chance(0.05)) {
        await a.h.transport.stop();
        const saved = structuredClone(a.h.transport.save());
        AdminTransport.check(saved.device.backend, a.mem, factory, virtualDeviceResource);
        if (rng.chance(0.5)) {
          const h2 = harness(
            new ManagementDevice({ mem: a.mem, factory, exclusive: virtualDeviceResource }),
            { mem: a.mem },
          );
          h2.transport.restore(saved);
          h2.transport.resume();
          a.reattach(h2);
          restores++;
        } else a.h.transport.resume();
      }
      a.events();
      const mgmt = a.h.device.status;
      assert(mgmt === 15, `${where}: management device status 0x${mgmt.toString(16)}`);
      for (const v of a.h.backend.transport.devices) {
        const s = v.device.status;
        assert(STEPS.has(s & 0x0f), `${where}: virtual device ${v.id} status 0x${s.toString(16)}`);
        assert(!(s & STATUS.DEVICE_NEEDS_RESET) || s & STATUS.DRIVER_OK, `${where}: early reset`);
        assert(
          !(s & STATUS.DEVICE_MMU_FAIL) || s & STATUS.DEVICE_NEEDS_RESET,
          `${where}: MMU_FAIL without NEEDS_RESET`,
        );
      }
    }
  }
  assert(live > CASES / 10, `only ${live} virtual devices were brought up`);
  assert(restores > CASES / 10, `only ${restores} restores`);
});
