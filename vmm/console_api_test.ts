/** The scripting console, fed by hand (no VM): waits, matches in order, lines, input, stop. */

import { assertEquals, assertRejects } from "@std/assert";
import { Console, CONSOLE_KEEP } from "./console_api.ts";
import { sleep } from "@denovm/sys/timer";

const enc = (s: string) => new TextEncoder().encode(s);

Deno.test("console: waitFor matches in order, each after the previous, text already there too", async () => {
  const c = new Console(() => {});
  c.push(enc("boot ok\nlogin: "));
  assertEquals((await c.waitFor("ok"))[0], "ok");
  const later = c.waitFor(/# $/, { timeout: 5000 });
  c.push(enc("root\n# "));
  const m = await later;
  assertEquals(m.index, c.text.length - 2, "an offset in the whole text");
  await assertRejects(() => c.waitFor("ok", { timeout: 10 }), Error, "Timed out after 10 ms");
  // A literal string is not a pattern.
  c.push(enc("a.b"));
  assertEquals((await c.waitFor("a.b"))[0], "a.b");
});

Deno.test("console: a UTF-8 character split across pushes arrives whole", async () => {
  const c = new Console(() => {});
  const bytes = enc("é!");
  c.push(bytes.subarray(0, 1));
  c.push(bytes.subarray(1));
  assertEquals((await c.waitFor("é!"))[0], "é!");
});

Deno.test("console: lines() yields complete lines until the VM stops; waits then fail", async () => {
  const c = new Console(() => {});
  const got: string[] = [];
  const reading = (async () => {
    for await (const l of c.lines()) got.push(l);
  })();
  c.push(enc("one\r\ntw"));
  c.push(enc("o\nthree"));
  await sleep(0);
  const pending = c.waitFor("never", { timeout: 60_000 });
  const unbounded = c.waitFor("never either", { timeout: Infinity });
  c.close();
  await reading;
  assertEquals(got, ["one", "two"]);
  await assertRejects(() => pending, Error, "stopped before");
  await assertRejects(() => unbounded, Error, "stopped before");
  await assertRejects(() => c.waitFor("never"), Error, "stopped before");
});

Deno.test("console: waitFor with an infinite timeout waits until the text comes", async () => {
  const c = new Console(() => {});
  const later = c.waitFor("late", { timeout: Infinity });
  let settled = false;
  later.then(() => settled = true, () => settled = true);
  // Node's timers fired an infinite (or any over 2^31 ms) delay at once: still waiting here.
  await sleep(30);
  assertEquals(settled, false);
  c.push(enc("too late"));
  assertEquals((await later)[0], "late");
});

Deno.test("console: write() sends bytes to the guest input; the kept text is bounded", () => {
  const sent: number[] = [];
  const c = new Console((b) => sent.push(...b));
  c.write("ls\n");
  c.write(new Uint8Array([3]));
  assertEquals(sent, [0x6c, 0x73, 0x0a, 3]);
  c.push(enc("x".repeat(CONSOLE_KEEP + 100)));
  assertEquals(c.text.length, CONSOLE_KEEP);
});
