// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/**
 * The UART's transmit register under a real guest: KVM batches its writes (coalesced port
 * I/O) where it can, the bytes still come out in order, and bytes a guest wrote just before
 * halting for good come out too (the device thread pokes a vCPU out of KVM_RUN for them).
 */

import { assert, assertEquals } from "@std/assert";
import { CAP, Kvm } from "@denovm/deno-kvm-ffi";
import { Vmm } from "../mod.ts";
import { buildGuest } from "../testing/guest_build.ts";
import { deadline, LOW_RAM } from "../testing/kvm_guests.ts";
import { sleep } from "@denovm/sys/timer";

const EXPECTED = "x".repeat(200) + "\n";

async function run(coalescedSerial: boolean, exit: boolean) {
  let out = "";
  const dec = new TextDecoder();
  const vm = await Vmm.create({ console: "serial" }, {
    ram: LOW_RAM,
    image: { bytes: await buildGuest("thr"), load: 0x1000 },
    output: (b) => out += dec.decode(b),
    coalescedSerial,
  });
  try {
    vm.machine.memory.writeU8(0x5000, exit ? 1 : 0);
    vm.start();
    if (exit) {
      assertEquals(await deadline(vm.whenExit(), 60_000, "thr guest"), {
        kind: "exit",
        code: 0,
        vcpu: 0,
      });
    }
    await deadline(
      (async () => {
        while (out.length < EXPECTED.length) await sleep(10);
      })(),
      60_000,
      () => `the guest's output (${out.length} bytes so far)`,
    );
    assertEquals(out, EXPECTED);
    return vm.machine.vcpus[0]!.counters.exits;
  } finally {
    await vm.stop();
  }
}

Deno.test("serial: writes to the transmit register come out in order, batched by KVM where it can", async () => {
  const batched = await run(true, true);
  const plain = await run(false, true);
  assert(plain >= 201, `without batching each of the 201 writes exits (${plain} exits)`);
  using kvm = Kvm.open();
  using vm = kvm.createVm();
  if (vm.checkExtension(CAP.COALESCED_PIO) > 0) {
    assert(batched < 50, `KVM batched the writes: ${batched} exits for 201 bytes`);
  }
});

Deno.test("serial: bytes written just before the guest halts for good still come out", async () => {
  await run(true, false);
});
