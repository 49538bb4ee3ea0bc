// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/** The library as scripts use it: the demo in five lines, the console API, events. */

import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { Vmm } from "../mod.ts";
import { buildGuest } from "../testing/guest_build.ts";
import { sleep } from "@denovm/sys/timer";

Deno.test({
  name: "library: boot the demo, wait for its greeting, stop — in five lines",
  async fn() {
    const t0 = performance.now();
    await using vm = await Vmm.create({ memMiB: 16 });
    vm.start();
    await vm.console.waitFor(/Hello from a denovm guest/, { timeout: 5000 });
    await vm.stop();
    console.error(`library demo: ${(performance.now() - t0).toFixed(0)} ms`);
  },
});

Deno.test({
  name: "library: console.write() reaches the guest, lines() and waitFor() read it, events fire",
  async fn() {
    await using vm = await Vmm.create({ memMiB: 16 }, {
      image: { bytes: await buildGuest("uart"), load: 0x1000 },
    });
    const events: string[] = [];
    vm.events.addEventListener("exit", () => events.push("exit"));
    vm.events.addEventListener("reset", () => events.push("reset"));
    const lines: string[] = [];
    const reading = (async () => {
      for await (const l of vm.console.lines()) lines.push(l);
    })();
    vm.start();
    const m = await vm.console.waitFor("ready", { timeout: 10_000 });
    assertEquals(m[0], "ready");
    vm.console.write("scripted\n");
    await vm.console.waitFor(/SCRIPTED/, { timeout: 10_000 });
    const r = await vm.whenExit();
    assertEquals(r.kind, "reset");
    await reading; // the iterator ends when the VM stops
    assertEquals(lines, ["ready", "SCRIPTEDbye"]);
    await sleep(0);
    assertEquals(events, ["exit", "reset"]);
    await assertRejects(() => vm.console.waitFor("never"), Error, "stopped before");
    assertStringIncludes(vm.console.text, "SCRIPTEDbye");
  },
});

Deno.test({
  name: "library: waitFor() times out with a clear error",
  async fn() {
    await using vm = await Vmm.create({ memMiB: 16 }, {
      image: { bytes: await buildGuest("loop"), load: 0x1000 },
    });
    vm.start();
    const e = await assertRejects(() => vm.console.waitFor(/nothing/, { timeout: 50 }), Error);
    assert(e.message.includes("Timed out after 50 ms waiting for /nothing/"));
  },
});

Deno.test({
  name:
    "library: a ring the guest breaks raises device-error; the VM and the other devices live on",
  async fn() {
    // Issue 12, systemic: a broken queue becomes DEVICE_NEEDS_RESET + a config interrupt +
    // a `device-error` event, never an exception out of the VMM.
    const { LOW_RAM } = await import("../testing/kvm_guests.ts");
    const { deadline } = await import("../testing/kvm_guests.ts");
    const dir = await Deno.makeTempDir({ prefix: "denovm-deverr-" });
    try {
      await Deno.writeFile(`${dir}/d.img`, new Uint8Array(128 * 512));
      await using vm = await Vmm.create({
        disks: [{ path: `${dir}/d.img` }],
        rng: true,
        console: "none",
      }, {
        ram: LOW_RAM,
        mmioBase: 0xd0000,
        image: { bytes: await buildGuest("snap"), load: 0x1000 },
      });
      vm.machine.memory.writeU32(0x6004, 1_000_000);
      const errors: string[] = [];
      vm.events.addEventListener("device-error", (e) => errors.push((e as CustomEvent).detail));
      vm.start();
      const mem = vm.machine.memory;
      await deadline(
        (async () => {
          while (mem.readU32(0x6000) < 2) await sleep(5);
        })(),
        60_000,
        "two iterations",
      );
      await vm.pause();
      // The guest "corrupts" its rng ring: avail.idx a thousand entries ahead.
      const rng = vm.devices.virtio.find((d) => d.name === "rng")!;
      const q = rng.device.queues[0]!;
      mem.writeU16(q.availAddr + 2, (q.nextAvail + 1000) & 0xffff);
      vm.resume(); // the resume re-kicks the queue and finds the broken ring
      await deadline(
        (async () => {
          while (errors.length === 0) await sleep(5);
        })(),
        60_000,
        "device-error",
      );
      assertStringIncludes(errors[0]!, "rng");
      assertStringIncludes(errors[0]!.toLowerCase(), "needs reset");
      assertEquals(rng.device.status & 0x40, 0x40, "DEVICE_NEEDS_RESET");
      assertEquals(rng.device.isr & 2, 2, "a config interrupt");
      const disk = vm.devices.virtio.find((d) => d.name === "disk0")!;
      assertEquals(disk.device.status & 0x40, 0, "the disk is unaffected");
      assertEquals(vm.state, "running");
      await vm.stop();
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
