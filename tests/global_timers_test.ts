/**
 * No shipped module touches the global timers (Node's in Deno 2.9, loaded at the first read
 * of any of them; `sys/timer.ts` says why): `tests/timers_test.ts` watches the main thread
 * of a VMM process at run time, this test reads every module outside the tests, benches and
 * tools (worker entries included) and the committed bundle (which also holds the npm code
 * the CLI uses).
 */

import { assertEquals } from "@std/assert";

const ROOT = new URL("../", import.meta.url);
const SKIP_DIRS = new Set(["tests", "testing", "bench", "tools", "node_modules"]);
/** A use of one of the globals: a call, a read, `globalThis.name`; not a quoted name. */
const USE = /(?<![\w$"'`])(?:set|clear)(?:Timeout|Interval|Immediate)\b(?!["'`])/;

async function* modules(dir: URL, rel = ""): AsyncGenerator<string> {
  for await (const e of Deno.readDir(dir)) {
    if (e.name.startsWith(".")) continue;
    if (e.isDirectory) {
      if (rel === "" && SKIP_DIRS.has(e.name)) continue;
      yield* modules(new URL(`${e.name}/`, dir), `${rel}${e.name}/`);
    } else if (/\.(ts|js)$/.test(e.name) && !e.name.endsWith("_test.ts")) {
      yield `${rel}${e.name}`;
    }
  }
}

Deno.test("global timers: no shipped module uses setTimeout, setInterval, setImmediate or their clears", async () => {
  const found: string[] = [];
  let n = 0;
  for await (const f of modules(ROOT)) {
    n++;
    const lines = (await Deno.readTextFile(new URL(f, ROOT))).split("\n");
    lines.forEach((line, i) => {
      const code = line.trim();
      if (code.startsWith("//") || code.startsWith("*") || code.startsWith("/*")) return;
      if (USE.test(code)) found.push(`${f}:${i + 1}: ${code}`);
    });
  }
  assertEquals(found, []);
  // The walk found the tree (a wrong root would pass with nothing read).
  assertEquals(n > 50, true, `${n} modules`);
});
