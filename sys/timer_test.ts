/** Timers on `AbortSignal.timeout`: order, cancelling, and what they do to the process. */

import { assert, assertEquals, assertThrows } from "@std/assert";
import { after, afterInSteps, every, sleep, within } from "./timer.ts";
import { evalChild, TIMER_SPY } from "./timer_spy.ts";

/**
 * Arms a timer with `arm` and waits for it, then `settle` ms more; returns how often its
 * callback ran and when it first did (ms after arming).
 */
async function fired(
  arm: (fn: () => void) => void,
  settle: number,
): Promise<{ runs: number; at: number }> {
  const t0 = performance.now();
  let at = -1, runs = 0;
  await new Promise<void>((r) =>
    arm(() => {
      if (runs++ === 0) at = performance.now() - t0;
      r();
    })
  );
  await sleep(settle);
  return { runs, at };
}

Deno.test("timer: after() runs its callback once, not before its delay", async () => {
  const { runs, at } = await fired((fn) => after(20, fn), 30);
  assertEquals(runs, 1);
  // The timer's clock has whole ms; allow that rounding, never more.
  assert(at >= 19, `fired after ${at} ms`);
});

Deno.test("timer: a cancelled after() never runs; cancel() twice and after firing is harmless", async () => {
  let runs = 0;
  const t = after(5, () => runs++);
  t.cancel();
  t.cancel();
  await sleep(30);
  assertEquals(runs, 0);
  const u = after(0, () => runs++);
  await sleep(10);
  u.cancel();
  assertEquals(runs, 1);
});

Deno.test("timer: every() repeats until cancelled, also from its own callback", async () => {
  let n = 0;
  await new Promise<void>((r) => {
    const t = every(2, () => {
      if (++n === 3) {
        t.cancel();
        r();
      }
    });
  });
  await sleep(20);
  assertEquals(n, 3);
  let m = 0;
  const u = every(1, () => m++);
  await sleep(15);
  u.cancel();
  const seen = m;
  assert(seen >= 1, "every(1) ran in 15 ms");
  await sleep(15);
  assertEquals(m, seen);
});

Deno.test("timer: timers run in the order of their deadlines; a negative delay is 0", async () => {
  const order: string[] = [];
  after(15, () => order.push("15"));
  after(-5, () => order.push("0"));
  after(5, () => order.push("5"));
  await sleep(40);
  assertEquals(order, ["0", "5", "15"]);
});

Deno.test("timer: a delay that is not a number is refused; an infinite one never fires", async () => {
  for (const bad of [NaN, "5" as unknown as number, undefined as unknown as number]) {
    assertThrows(() => after(bad, () => {}), RangeError);
    assertThrows(() => every(bad, () => {}), RangeError);
  }
  let runs = 0;
  after(Infinity, () => runs++).cancel();
  after(Infinity, () => runs++);
  every(Infinity, () => runs++);
  await sleep(10);
  assertEquals(runs, 0);
});

Deno.test("timer: a delay longer than one timer takes (2^31 ms and more) does not fire early", async () => {
  let runs = 0;
  const timers = [2 ** 31, 2 ** 32 + 5, 2 ** 60].map((ms) => after(ms, () => runs++));
  await sleep(30);
  for (const t of timers) t.cancel();
  assertEquals(runs, 0);
});

Deno.test("timer: a delay waited out in steps fires once, after all of them; a cancel between steps holds", async () => {
  const { runs, at } = await fired((fn) => afterInSteps(35, fn, 10), 20);
  assertEquals(runs, 1);
  assert(at >= 34, `fired after ${at} ms`);
  let later = 0;
  const t = afterInSteps(40, () => later++, 10);
  await sleep(25); // two steps gone, the third waiting
  t.cancel();
  await sleep(40);
  assertEquals(later, 0);
});

Deno.test("within: the promise's value when it settles first, else undefined after the time", async () => {
  assertEquals(await within(Promise.resolve(5), 10_000), 5);
  assertEquals(await within(new Promise<number>(() => {}), 10), undefined);
});

/** Runs `body` in a fresh process with this module imported; returns its output. */
async function child(body: string, prelude = ""): Promise<{ stdout: string; ms: number }> {
  const mod = new URL("./timer.ts", import.meta.url).href;
  // A process that a cancelled 60 s timer held would be stopped after 20 s, and fail below.
  const r = await evalChild(
    `${prelude}
    const { after, every, sleep } = await import(${JSON.stringify(mod)});
    ${body}`,
    20_000,
  );
  assertEquals(r.code, 0, r.stderr);
  return r;
}

Deno.test("timer: a pending timer keeps the process alive until it fires", async () => {
  const r = await child(`after(200, () => console.log("fired"));`);
  assertEquals(r.stdout, "fired\n");
});

Deno.test("timer: a cancelled timer does not keep the process alive", async () => {
  const r = await child(`
    const { afterInSteps } = await import(${
    JSON.stringify(new URL("./timer.ts", import.meta.url).href)
  });
    const stepped = afterInSteps(60_000, () => console.log("stepped"), 5);
    await sleep(12); // cancelled while its third step waits
    stepped.cancel();
    after(60_000, () => console.log("fired")).cancel();
    after(Infinity, () => console.log("never"));
    const t = every(60_000, () => console.log("ticked"));
    t.cancel();
    const { within } = await import(${JSON.stringify(new URL("./timer.ts", import.meta.url).href)});
    console.log(await within(Promise.resolve("in time"), 60_000));
    console.log("done");`);
  assertEquals(r.stdout, "in time\ndone\n");
  assert(r.ms < 20_000, `the child took ${r.ms} ms`);
});

Deno.test("timer: after, every and sleep leave the global (Node) timers untouched", async () => {
  const r = await child(
    `await sleep(1);
    await new Promise((res) => { const t = every(1, () => { t.cancel(); res(); }); });
    after(1, () => {}).cancel();
    console.log(JSON.stringify(globalThis.globalTimers));`,
    TIMER_SPY,
  );
  assertEquals(r.stdout, "[]\n");
});

Deno.test("timer: the spy sees a use of the global timers", async () => {
  const r = await child(
    `await new Promise((res) => setTimeout(res, 1));
    console.log(JSON.stringify(globalThis.globalTimers));`,
    TIMER_SPY,
  );
  assertEquals(r.stdout, '["setTimeout"]\n');
});
