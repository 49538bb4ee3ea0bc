// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/** The library as scripts use it: the demo in five lines, the console API, events. */

import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { Vmm } from "../mod.ts";
import { buildGuest } from "../testing/guest_build.ts";

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
    await new Promise((r) => setTimeout(r, 0));
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
