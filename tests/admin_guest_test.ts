// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/**
 * The admin virtqueue under a real guest on KVM: a real-mode driver (tests/guests/admin.S)
 * creates a virtual rng through the management device's admin queue, maps its memory,
 * negotiates, sets up its queue, reads random bytes, and destroys it; once straight
 * through, once with a snapshot and restore in between.
 */

import { assert, assertEquals } from "@std/assert";
import { Vmm } from "../mod.ts";
import { buildGuest } from "../testing/guest_build.ts";
import { deadline, guestProgress, LOW_RAM } from "../testing/kvm_guests.ts";
import { sleep } from "@denovm/sys/timer";

const STAGE = 0x5100, GO = 0x5104;

async function boot() {
  return await Vmm.create({ admin: { disks: [] }, console: "none" }, {
    ram: LOW_RAM,
    mmioBase: 0xd0000,
    image: { bytes: await buildGuest("admin"), load: 0x1000 },
  });
}

async function until(vm: Vmm, what: string, ok: () => boolean) {
  await deadline(
    (async () => {
      while (!ok()) await sleep(5);
    })(),
    60_000,
    () => `${what}${guestProgress(vm.machine)}`,
  );
}

Deno.test({
  name:
    "admin vq guest: a virtual rng created, negotiated, read and destroyed through the admin queue",
  async fn() {
    await using vm = await boot();
    const log: string[] = [];
    vm.events.addEventListener("device-error", (e) => log.push((e as CustomEvent).detail));
    vm.machine.memory.writeU32(GO, 1);
    vm.start();
    const r = await deadline(
      vm.whenExit(),
      60_000,
      () => `admin guest${guestProgress(vm.machine)}`,
    );
    assertEquals(r, { kind: "exit", code: 0, vcpu: 0 }, `failed check; ${log.join("; ")}`);
    assertEquals(vm.adminDevices, [], "the guest destroyed its device");
    assert(log.length === 0 || log.every((l) => l.includes("MMU")), log.join("; "));
    // Two reads of 32 bytes landed in guest memory through the device MMU.
    for (const at of [0x6000, 0x6100]) {
      assert(vm.machine.memory.read(at, 32).some((b) => b !== 0), `bytes at 0x${at.toString(16)}`);
    }
  },
});

Deno.test({
  name: "admin vq guest: the host adds and removes a virtual device on the running VM",
  async fn() {
    await using vm = await boot();
    vm.start();
    await until(vm, "first read", () => vm.machine.memory.readU32(STAGE) === 1);
    const added = vm.createAdminDevice({ type: "console" });
    assertEquals(added, { id: 2, type: "console", deviceType: 3, status: 0, origin: "host" });
    assertEquals(vm.adminDevices.map((d) => d.id), [1, 2]);
    let refused = "";
    try {
      vm.createAdminDevice({ type: "blk", disk: 0 });
    } catch (e) {
      refused = (e as Error).message;
    }
    assert(refused.includes("blk needs a le32 disk index below 0"), refused);
    await vm.destroyAdminDevice(2);
    assertEquals(vm.adminDevices.map((d) => d.id), [1]);
    vm.machine.memory.writeU32(GO, 1);
    const r = await deadline(
      vm.whenExit(),
      60_000,
      () => `admin guest${guestProgress(vm.machine)}`,
    );
    assertEquals(r, { kind: "exit", code: 0, vcpu: 0 });
  },
});

Deno.test({
  name: "admin vq guest: a snapshot taken with a live virtual device restores it where it was",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "denovm-admin-snap-" });
    try {
      {
        await using vm = await boot();
        vm.start();
        await until(vm, "first read", () => vm.machine.memory.readU32(STAGE) === 1);
        await vm.pause();
        assertEquals(vm.adminDevices, [{
          id: 1,
          type: "rng",
          deviceType: 4,
          status: 15,
          origin: "driver",
        }]);
        await vm.snapshot(dir);
        await vm.stop();
      }
      await using vm = await Vmm.restore(dir, { paused: true });
      // The restored VM has the guest's virtual device, its mapping and its queue.
      assertEquals(vm.adminDevices.map((d) => [d.id, d.type, d.status]), [[1, "rng", 15]]);
      const v = vm.devices.admin!.transport.devices[0]!;
      assertEquals(v.mmu.mappings, [{ iova: 0, gpa: 0, size: 0x10000 }]);
      assertEquals(v.device.queues[0]!.nextUsed, 1);
      vm.machine.memory.writeU32(GO, 1);
      vm.resume();
      const r = await deadline(
        vm.whenExit(),
        60_000,
        () => `restored admin guest${guestProgress(vm.machine)}`,
      );
      assertEquals(r, { kind: "exit", code: 0, vcpu: 0 });
      assertEquals(vm.adminDevices, []);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
