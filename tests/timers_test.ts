// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/**
 * A VMM process never touches the global timers (Node's in Deno 2.9, whose first use loads
 * ~20 modules: 5-17 ms on a host, 260-370 ms in the portable machine, once paid before every
 * guest's first instruction): the CLI's demo boot, and a library boot, pause, snapshot,
 * restore and run to the end, each in a fresh process with a spy on the globals.
 */

import { assertEquals } from "@std/assert";
import { evalChild, TIMER_SPY } from "../sys/timer_spy.ts";

/** Runs `body` (JavaScript) after the spy in a fresh process; returns its last line. */
async function child(body: string): Promise<string> {
  const r = await evalChild(`${TIMER_SPY}\n${body}`, 120_000);
  assertEquals(r.code, 0, `${r.stdout}\n${r.stderr}`);
  return r.stdout.trimEnd().split("\n").at(-1) ?? "";
}

const url = (p: string) => JSON.stringify(new URL(p, import.meta.url).href);

Deno.test("timers: the CLI's demo boot uses no global timer", async () => {
  const last = await child(`
    const { main } = await import(${url("../cli.ts")});
    const code = await main([]);
    console.log(JSON.stringify({ code, timers: globalThis.globalTimers }));`);
  assertEquals(JSON.parse(last), { code: 0, timers: [] });
});

Deno.test("timers: a library boot, pause, snapshot, restore and run use no global timer", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovm-timers-" });
  try {
    const last = await child(`
      const { Vmm } = await import(${url("../mod.ts")});
      const { buildGuest } = await import(${url("../testing/guest_build.ts")});
      const image = { bytes: await buildGuest("uart"), load: 0x1000 };
      const a = await Vmm.create({ memMiB: 16 }, { image });
      a.start();
      await a.console.waitFor("ready", { timeout: 10_000 });
      await a.pause();
      await a.snapshot(${JSON.stringify(`${dir}/s`)});
      await a.stop();
      const b = await Vmm.restore(${JSON.stringify(`${dir}/s`)}, { output: () => {} });
      b.console.write("scripted\\n");
      await b.console.waitFor(/SCRIPTED/, { timeout: 10_000 });
      const r = await b.whenExit();
      await b.stop();
      console.log(JSON.stringify({ exit: r.kind, timers: globalThis.globalTimers }));`);
    assertEquals(JSON.parse(last), { exit: "reset", timers: [] });
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
