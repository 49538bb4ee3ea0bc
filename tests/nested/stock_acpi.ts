/**
 * Debian's stock kernel under our CLI with `--acpi` (issue 15, first steps): its CPUs come
 * from our MADT, its RTC from our DSDT, and `poweroff -f` in the guest reaches our ACPI
 * sleep control register and ends the VM with exit code 0. Run in the Linux lane.
 *
 *   deno run -A tests/nested/stock_acpi.ts <vmlinuz> <initramfs>
 *
 * @module
 */

import { oursArgv, spawn } from "./vmms.ts";

const [kernel, initrd] = Deno.args;
if (!kernel || !initrd) {
  console.error("usage: stock_acpi.ts <vmlinuz> <initramfs>");
  Deno.exit(2);
}
const run = "echo cpus $(nproc); echo rtc $(cat /sys/class/rtc/rtc0/name); poweroff -f";
const argv = oursArgv({
  kernel,
  initrd,
  cpus: 2,
  append: `console=ttyS0 reboot=k panic=1 pci=off quiet denovm.run=${btoa(run)}`,
}, ["--acpi"]);
const p = spawn(argv);
let timer: ReturnType<typeof setTimeout> | undefined;
const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), 180_000)));
const done = await Promise.race([p.output(), late]);
clearTimeout(timer);
if (done === "late") {
  p.kill("SIGKILL");
  console.error("stock-acpi: FAILED: the VM did not end within 180 s (no ACPI power-off?)");
  Deno.exit(1);
}
const out = new TextDecoder().decode(done.stdout);
const checks: [boolean, string][] = [
  [/cpus 2\b/.test(out), "2 CPUs from the MADT"],
  [/rtc rtc_cmos/.test(out), "the RTC from the DSDT (rtc_cmos bound through PNP)"],
  [
    /reboot: Power down/.test(out) && done.code === 0,
    "poweroff -f through ACPI ends the VM, exit 0",
  ],
];
let failed = false;
for (const [ok, what] of checks) {
  console.error(`stock-acpi: ${ok ? "ok" : "FAILED"}: ${what}`);
  failed ||= !ok;
}
if (failed) console.error(out.slice(-3000) + new TextDecoder().decode(done.stderr).slice(-2000));
Deno.exit(failed ? 1 : 0);
