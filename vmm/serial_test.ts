import { assertEquals } from "@std/assert";
// The port's own timers: deadlines in one queue fire in order even when the host is slow
// (a global setTimeout here raced the port's timed looks under load in CI once).
import { sleep } from "@denovm/sys/timer";
import { ByteRing } from "../vstate/byte_ring.ts";
import type { Machine } from "../vstate/machine.ts";
import { OUTPUT_BATCH_MS, SerialPort } from "./serial.ts";

/** The parts of a machine a serial port uses: the irqfd binding, wake handlers, close hooks. */
function fakeMachine() {
  const wakes: (() => void)[] = [], closes: (() => void)[] = [];
  const m = {
    vm: { irqfd: () => {} },
    dispatcher: { addWakeHandler: (f: () => void) => wakes.push(f) },
    onClose: (f: () => void) => closes.push(f),
  };
  return { m: m as unknown as Machine, wake: () => wakes.forEach((f) => f()), closes };
}

/** The ring the vCPU workers write the port's output to. */
function workerRing(port: SerialPort): ByteRing {
  const spec = port.spec;
  if (spec.kind !== "uart") throw new Error(`unexpected spec ${spec.kind}`);
  return new ByteRing(spec.ring);
}

const text = (chunks: Uint8Array[]) => chunks.map((c) => new TextDecoder().decode(c));

Deno.test("SerialPort: output goes out on a wake, then on timed looks while it flows; a quiet look re-arms the wake", async () => {
  const out: Uint8Array[] = [];
  const port = new SerialPort({ output: (b) => out.push(b) });
  const { m, wake } = fakeMachine();
  port.attach(m);
  const ring = workerRing(port);
  try {
    ring.push(new TextEncoder().encode("a"));
    assertEquals(ring.takeWakeRequest(), true); // the first byte wakes the device thread
    wake();
    assertEquals(text(out), ["a"]); // at once
    ring.push(new TextEncoder().encode("bc"));
    assertEquals(ring.takeWakeRequest(), false); // flowing: no wake asked for
    await sleep(OUTPUT_BATCH_MS + 15);
    assertEquals(text(out), ["a", "bc"]); // the timed look found it
    ring.push(new TextEncoder().encode("d"));
    assertEquals(ring.takeWakeRequest(), false); // still looked at on a timer
    await sleep(OUTPUT_BATCH_MS + 15);
    assertEquals(text(out), ["a", "bc", "d"]);
    await sleep(OUTPUT_BATCH_MS + 15); // a look that finds nothing: asks for a wake again
    ring.push(new TextEncoder().encode("e"));
    assertEquals(ring.takeWakeRequest(), true);
    wake();
    assertEquals(text(out), ["a", "bc", "d", "e"]);
  } finally {
    port.close(m);
  }
  // Closing forwards what is left and stops the timer (the test's op sanitizer checks it).
  assertEquals(out.length, 4);
});

Deno.test("SerialPort: close forwards bytes still in the ring", () => {
  const out: Uint8Array[] = [];
  const port = new SerialPort({ output: (b) => out.push(b) });
  workerRing(port).push(new TextEncoder().encode("bye"));
  port.close();
  assertEquals(text(out), ["bye"]);
});
