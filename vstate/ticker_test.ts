/** Ticker: a yield to the event loop through a MessageChannel. */

import { assertEquals } from "@std/assert";
import { Ticker } from "./ticker.ts";

Deno.test("Ticker: tick() resolves after pending macrotasks ran", async () => {
  const t = new Ticker();
  let ran = false;
  setTimeout(() => (ran = true), 0);
  for (let i = 0; i < 200 && !ran; i++) await t.tick();
  assertEquals(ran, true);
  t.close();
});
