/** The devices a vCPU worker serves itself, on a bus in this thread (no KVM). */

import { assert, assertEquals } from "@std/assert";
import { Bus } from "../bus/bus.ts";
import { closeFd, eventfd } from "@denovm/sys";
import { Uart } from "../devices/uart.ts";
import { ByteRing } from "./byte_ring.ts";
import { type LocalEffects, registerLocalDevices } from "./local_devices.ts";

Deno.test("local devices: exit code, counter, boot marker and a UART whose output is rung", () => {
  const bus = new Bus("pio");
  const counter = new SharedArrayBuffer(8), cell = new SharedArrayBuffer(8);
  const ring = ByteRing.create(64), irqFd = eventfd();
  try {
    const effects: LocalEffects = {};
    registerLocalDevices(bus, [
      { kind: "exit", port: 0xf4 },
      { kind: "counter", port: 0x510, counter },
      { kind: "marker", port: 0x520, cell },
      { kind: "uart", port: 0x3f8, state: Uart.createState(), ring: ring.sab, irqFd },
    ], effects);
    bus.write(0x510, new Uint8Array([0x34, 0x12]));
    bus.write(0x510, new Uint8Array([7]));
    assertEquals([...new Int32Array(counter)], [2, 7]);
    const back = new Uint8Array(4);
    bus.read(0x510, back);
    assertEquals(back[0], 2, "reads the count");
    const before = performance.timeOrigin + performance.now();
    bus.write(0x520, new Uint8Array([1]));
    const first = new Float64Array(cell)[0]!;
    assert(first >= before, "the marker holds the time of the first write");
    bus.write(0x520, new Uint8Array([1]));
    assertEquals(new Float64Array(cell)[0], first, "later writes keep it");
    bus.write(0x3f8, new TextEncoder().encode("h"));
    bus.write(0x3f8, new TextEncoder().encode("i"));
    assertEquals(new TextDecoder().decode(ring.drain()), "hi");
    assertEquals(effects.wake, true);
    bus.write(0xf4, new Uint8Array([3]));
    assertEquals(effects.exitCode, 3);
  } finally {
    closeFd(irqFd);
  }
});
