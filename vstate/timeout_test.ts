/** within(): a value or undefined, and no timer left behind either way (the sanitizer checks). */

import { assertEquals } from "@std/assert";
import { within } from "./timeout.ts";
import { Ticker } from "./ticker.ts";

Deno.test("within: the promise's value when it settles first", async () => {
  assertEquals(await within(Promise.resolve(5), 10_000), 5);
});

Deno.test("within: undefined after the time, the promise left alone", async () => {
  assertEquals(await within(new Promise<number>(() => {}), 10), undefined);
});

Deno.test("Ticker: tick() resolves after pending macrotasks ran", async () => {
  const t = new Ticker();
  let ran = false;
  setTimeout(() => (ran = true), 0);
  for (let i = 0; i < 200 && !ran; i++) await t.tick();
  assertEquals(ran, true);
  t.close();
});
