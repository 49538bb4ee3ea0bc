import { assertEquals } from "@std/assert";
import { EscapeFilter, Terminal, TERMINAL_BACKLOG } from "./terminal.ts";
import { sleep } from "@denovm/sys/timer";

const bytes = (...b: number[]) => new Uint8Array(b);

Deno.test("EscapeFilter: Ctrl-A x quits, Ctrl-A Ctrl-A sends one Ctrl-A, across chunks", () => {
  const f = new EscapeFilter();
  assertEquals(f.feed(bytes(0x61, 0x62)), { data: bytes(0x61, 0x62), quit: false });
  assertEquals(f.feed(bytes(0x01)), { data: bytes(), quit: false });
  assertEquals(f.feed(bytes(0x01, 0x63)), { data: bytes(0x01, 0x63), quit: false });
  assertEquals(f.feed(bytes(0x64, 0x01, 0x7a, 0x65)), { data: bytes(0x64, 0x65), quit: false });
  assertEquals(f.feed(bytes(0x66, 0x01, 0x78, 0x67)), { data: bytes(0x66), quit: true });
});

Deno.test("Terminal: feeds the sink, quits on the escape, and stops reading while the guest lags", async () => {
  const chunks = [bytes(0x68, 0x69), bytes(0x01, 0x78)];
  let reads = 0;
  const fakeStdin = {
    isTerminal: () => false,
    setRaw: () => {},
    read: (buf: Uint8Array) => {
      reads++;
      const c = chunks.shift();
      if (!c) return Promise.resolve(null);
      buf.set(c);
      return Promise.resolve(c.byteLength);
    },
  } as unknown as typeof Deno.stdin;
  const got: number[] = [];
  let pending = TERMINAL_BACKLOG + 1;
  const sink = {
    input: (b: Uint8Array) => got.push(...b),
    get pendingInput() {
      return pending;
    },
  };
  let quit = false;
  const t = new Terminal(sink, () => (quit = true), fakeStdin);
  await sleep(30);
  assertEquals(reads, 0, "no read while the backlog is full");
  pending = 0;
  await t.done;
  t.close();
  assertEquals(got, [0x68, 0x69]);
  assertEquals(quit, true);
});
