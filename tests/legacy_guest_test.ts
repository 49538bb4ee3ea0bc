// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/** The 8250 UART (interrupt-driven input, output from the vCPU worker) and the i8042 reset
 * under a real-mode guest on /dev/kvm. */

import { assertEquals } from "@std/assert";
import { I8042 } from "../devices/i8042.ts";
import { SerialPort } from "../vmm/serial.ts";
import { deadline, LOW_RAM, standardLocal } from "../testing/kvm_guests.ts";
import { Machine } from "../vstate/machine.ts";
import { buildGuest, GUEST_LOAD } from "../testing/guest_build.ts";
import { sleep } from "@denovm/sys/timer";

Deno.test({
  name: "real-mode guest: UART output, interrupt-driven input with echo, and i8042 reset",
  async fn() {
    let text = "";
    const serial = new SerialPort({ output: (b) => (text += new TextDecoder().decode(b)) });
    await using m = await Machine.create({
      ram: LOW_RAM,
      local: () => [...standardLocal(new SharedArrayBuffer(8)), serial.spec],
    });
    serial.attach(m);
    m.pio.register(
      0x60,
      5,
      new I8042({ onReset: () => void m.requestStop({ kind: "reset" }) }),
      "i8042",
    );
    m.memory.write(GUEST_LOAD, await buildGuest("uart"));
    await m.setRealMode(0, { ip: GUEST_LOAD, sp: 0x7000 });
    m.run();
    await deadline(
      (async () => {
        while (!text.includes("ready")) await sleep(5);
      })(),
      20_000,
      "the guest's ready line",
    );
    serial.input(new TextEncoder().encode("hello, uart\n"));
    const r = await deadline(m.whenExit(), 20_000, "the guest's reset");
    serial.drain();
    assertEquals(r, { kind: "reset", vcpu: -1 });
    assertEquals(text, "ready\r\nHELLO, UARTbye\r\n");
  },
});
