import { assertEquals } from "@std/assert";
import { compareLogs, logLines, shape } from "./parity.ts";

Deno.test("parity: timestamps dropped, numbers and addresses masked", () => {
  assertEquals(
    shape("[    1.234567] hrtimer: interrupt took 2730406 ns"),
    "hrtimer: interrupt took # ns",
  );
  assertEquals(
    shape("[0.5] ACPI: IRQ 5 at 0xfee00000 deadbeef"),
    "ACPI: IRQ # at # #",
  );
  assertEquals(logLines("[1.0] a 1\r\n\ndenovm-init: up\n[2.0] b"), ["a #", "b"]);
});

Deno.test("parity: only interrupt-took-long lines are tolerated; every other extra line fails", () => {
  const qemu = logLines("[0.1] x86/fpu: something 5\n");
  const ours = logLines(
    "[0.1] x86/fpu: something 7\n" +
      "[3.2] hrtimer: interrupt took 1234567 ns\n" +
      "[3.4] hrtimer: interrupt took too long on CPU 1\n" +
      "[4.0] virtio_mmio: unknown device 9\n",
  );
  const r = compareLogs(ours, qemu);
  assertEquals(r.tolerated, ["hrtimer: interrupt took # ns"]);
  assertEquals(r.extra, [
    "hrtimer: interrupt took too long on CPU #",
    "virtio_mmio: unknown device #",
  ]);
});
