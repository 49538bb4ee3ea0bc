/**
 * Debian's stock kernel under our CLI as a user boots a distribution kernel (issue 15):
 * ACPI by default, the initramfs from `deno task guest:stock` (the recipe's plus the
 * package's virtio drivers). Its 2 CPUs come from our MADT; its virtio-mmio devices (blk,
 * net on a TAP, rng, console, vsock) from our DSDT, each bound to its driver; the disk reads
 * back what the host wrote; the RTC binds through PNP; and `poweroff -f` reaches our ACPI
 * sleep control register and ends the VM with exit code 0. Run in the Linux lane (as root:
 * the TAP is created by the VMM).
 *
 *   deno run -A tests/nested/stock_acpi.ts <vmlinuz> <stock initramfs>
 *
 * @module
 */

import { oursArgv, spawn } from "./vmms.ts";

const [kernel, initrd] = Deno.args;
if (!kernel || !initrd) {
  console.error("usage: stock_acpi.ts <vmlinuz> <initramfs>");
  Deno.exit(2);
}
const dir = await Deno.makeTempDir({ prefix: "denovm-stock-" });
const disk = `${dir}/disk.img`;
const image = new Uint8Array(1 << 20);
image.set(new TextEncoder().encode("DENOVM-STOCK-DISK"));
await Deno.writeFile(disk, image);
const run = "echo cpus $(nproc); echo rtc $(cat /sys/class/rtc/rtc0/name); " +
  "for d in /sys/bus/virtio/devices/*; do " +
  'echo "virtio $(cat $d/device) $(basename $(readlink $d/driver))"; done; ' +
  "echo disk $(head -c 17 /dev/vda); echo net $(ls /sys/class/net | grep -c eth); poweroff -f";
const argv = oursArgv({
  kernel,
  initrd,
  cpus: 2,
  append: `console=ttyS0 reboot=k panic=1 pci=off quiet denovm.run=${btoa(run)}`,
}, [
  "--disk",
  disk,
  "--net",
  "dnvstock0",
  "--rng",
  "--console",
  "virtio",
  "--vsock",
  `3,${dir}/v.sock`,
]);
const p = spawn(argv);
let timer: ReturnType<typeof setTimeout> | undefined;
const late = new Promise<"late">((r) => (timer = setTimeout(() => r("late"), 180_000)));
const done = await Promise.race([p.output(), late]);
clearTimeout(timer);
await Deno.remove(dir, { recursive: true });
if (done === "late") {
  p.kill("SIGKILL");
  console.error("stock-acpi: FAILED: the VM did not end within 180 s (no ACPI power-off?)");
  Deno.exit(1);
}
const out = new TextDecoder().decode(done.stdout);
const checks: [boolean, string][] = [
  [/cpus 2\b/.test(out), "2 CPUs from the MADT"],
  [/rtc rtc_cmos/.test(out), "the RTC from the DSDT (rtc_cmos bound through PNP)"],
  ...([
    ["0x0002", "virtio_blk"],
    ["0x0001", "virtio_net"],
    ["0x0004", "virtio_rng"],
    ["0x0003", "virtio_console"],
    ["0x0013", "vmw_vsock_virtio_transport"],
  ] as const).map(([id, driver]): [boolean, string] => [
    out.includes(`virtio ${id} ${driver}`),
    `virtio device ${id} found through the DSDT and bound to ${driver}`,
  ]),
  [/disk DENOVM-STOCK-DISK/.test(out), "the disk reads back what the host wrote"],
  [/net 1\b/.test(out), "the network interface is there"],
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
