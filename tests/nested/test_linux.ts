/**
 * `deno task test:linux`: the Linux guest suite (tests/linux/). Builds (or takes from the
 * cache) the recipe kernel and initramfs here, then runs `deno test` on this host's KVM
 * where it has hardware virtualization, and otherwise inside the portable machine (QEMU/TCG
 * with SVM, KVM inside): the same `portable/` code the CLI and the fast tier use. Then runs
 * the QEMU microvm peer comparison (tests/nested/peer.ts) in the same place and run.
 * Then runs `cli.ts --vsock` as a user would here (tests/nested/cli_vsock.ts: through the
 * portable machine's socket bridge on a host without KVM). Prints the suite's output and
 * the comparison, and exits with the suite's status (or the CLI step's).
 *
 *   deno task test:linux [--portable] [filter words...]
 *
 * @module
 */

import { buildInitramfs, buildKernel, buildStockGuest } from "../../guest/build.ts";
import { PORTABLE_HOST, runPortable } from "../../portable/machine.ts";
import { checkHost } from "../../vstate/host.ts";

const repo = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const args = Deno.args.filter((a) => a !== "--portable");
const host = await checkHost();
const portable = Deno.args.includes("--portable") || Deno.env.get("DENOVM_PORTABLE") === "on" ||
  !host.native;
const kernel = await buildKernel();
const initrd = await buildInitramfs();
const deno = Deno.execPath();
const filter = args.length ? ` --filter ${JSON.stringify(args.join(" "))}` : "";
const vmlinux = kernel.replace(/bzImage$/, "vmlinux");
const hasVmlinux = await Deno.stat(vmlinux).then(() => true, () => false);
const suite = `${
  hasVmlinux ? `DENOVM_VMLINUX=${vmlinux} ` : ""
}DENOVM_KERNEL=${kernel} DENOVM_INITRD=${initrd} NO_COLOR=1 ${deno} test -A --no-check${filter} tests/linux/ 2>&1`;
// Then, in the same run, the boot-log parity check against QEMU's microvm (a test: any
// kernel warning under ours that QEMU does not print fails the lane) and the peer
// comparison (numbers, not a test).
// Debian's stock kernel too (the portable machine's: fetched once, cached), and the stock
// initramfs with its virtio drivers (guest:stock). Each kernel with and without ACPI.
const stock = await buildStockGuest();
const parity = `${deno} run -A tests/nested/parity.ts ${kernel} ${initrd} 2>&1 && ` +
  `${deno} run -A tests/nested/parity.ts ${kernel} ${initrd} --acpi 2>&1 && ` +
  `${deno} run -A tests/nested/parity.ts ${stock.kernel} ${initrd} 2>&1 && ` +
  `${deno} run -A tests/nested/parity.ts ${stock.kernel} ${initrd} --acpi 2>&1 && ` +
  `${deno} run -A tests/nested/stock_acpi.ts ${stock.kernel} ${stock.initrd} 2>&1`;
const peer = `${deno} run -A tests/nested/peer.ts ${kernel} ${initrd} 2>&1`;
const command = Deno.env.get("DENOVM_LANE_NO_PEER")
  ? `${suite} && ${parity}`
  : `${suite} && ${parity} && ${peer}`;
const where = portable ? PORTABLE_HOST : `kvm (${host.virtualization})`;
console.error(`lane: running the Linux guest suite on ${where} (kernel ${kernel})`);
const check = await new Deno.Command(deno, { args: ["check", "tests/linux/"], cwd: repo })
  .output();
if (!check.success) {
  Deno.stderr.writeSync(check.stderr);
  Deno.exit(1);
}
const t0 = performance.now();
let status: number;
if (portable) {
  const r = await runPortable({
    command,
    cwd: repo,
    env: { NO_COLOR: "1" },
    memMiB: 6144,
    timeoutS: Number(Deno.env.get("DENOVM_LANE_TIMEOUT") ?? 1800),
    onStdout: (c) => Deno.stdout.writeSync(c),
    onStderr: (c) => Deno.stderr.writeSync(c),
  });
  if (r.status !== 0) console.error(r.log.slice(-4000));
  status = r.status;
} else {
  const r = await new Deno.Command("sh", {
    args: ["-c", command],
    cwd: repo,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  status = r.code;
}
console.error(
  `lane: Linux guest suite status ${status} in ${
    ((performance.now() - t0) / 1000).toFixed(1)
  } s on ${where}`,
);
// The CLI as a user runs it here, with --vsock: through the portable machine on a host
// without KVM, so the socket bridge is checked both ways (tests/nested/cli_vsock.ts).
if (status === 0 && !args.length) {
  const t1 = performance.now();
  const cli = await new Deno.Command(deno, {
    args: ["run", "-A", "tests/nested/cli_vsock.ts", kernel, initrd],
    cwd: repo,
    stdout: "inherit",
    stderr: "inherit",
  }).output();
  console.error(
    `lane: cli --vsock step status ${cli.code} in ${
      ((performance.now() - t1) / 1000).toFixed(1)
    } s (${portable ? "through the portable machine" : "native"})`,
  );
  status = cli.code;
}
Deno.exit(status);
