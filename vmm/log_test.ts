import { assertEquals, assertThrows } from "@std/assert";
import { createLogger, parseLogLevel } from "./log.ts";

Deno.test("createLogger() drops entries below its level and formats text with fields", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "info", write: (l) => lines.push(l) });
  log.debug("hidden");
  log.info("vm created", { vcpus: 2, path: "/a b", skip: undefined });
  log.error("boom");
  log.notice("snapshot written to /x");
  assertEquals(lines, [
    'denovm: info: vm created vcpus=2 path="/a b"',
    "denovm: error: boom",
    "denovm: snapshot written to /x",
  ]);
});

Deno.test("createLogger({json}) writes one parseable object a line; notices pass any level", () => {
  const lines: string[] = [];
  const log = createLogger({ level: "error", json: true, write: (l) => lines.push(l) });
  log.warn("hidden");
  log.error('bad "quote"\nnewline', { code: 3 });
  log.notice("timings", { boot_marker: 12.5 });
  const objs = lines.map((l) => JSON.parse(l));
  assertEquals(objs.map((o) => [o.level, o.msg]), [
    ["error", 'bad "quote"\nnewline'],
    ["notice", "timings"],
  ]);
  assertEquals([objs[0].code, objs[1].boot_marker], [3, 12.5]);
  assertEquals(typeof objs[0].time, "string");
});

Deno.test("parseLogLevel() accepts the four levels and names them when refusing", () => {
  assertEquals(parseLogLevel("debug"), "debug");
  assertThrows(() => parseLogLevel("verbose"), TypeError, "error, warn, info, debug");
});
