/**
 * `deno task test:linux`: the Linux guest suite (tests/linux/) inside the nested lane.
 * Builds (or takes from the cache) the recipe kernel and initramfs here, boots L1 under
 * QEMU/TCG with SVM, and runs `deno test` there, where KVM runs real Linux guests.
 * Then runs the QEMU microvm peer comparison (tests/nested/peer.ts) in the same L1 run.
 * Prints the suite's output and the comparison, and exits with the suite's status.
 */

import { buildInitramfs, buildKernel } from "../../guest/build.ts";
import { runInL1 } from "./lane.ts";

const repo = new URL("../../", import.meta.url).pathname.replace(/\/$/, "");
const kernel = await buildKernel();
const initrd = await buildInitramfs();
const deno = Deno.execPath();
const filter = Deno.args.length ? ` --filter ${JSON.stringify(Deno.args.join(" "))}` : "";
const vmlinux = kernel.replace(/bzImage$/, "vmlinux");
const hasVmlinux = await Deno.stat(vmlinux).then(() => true, () => false);
const suite = `${
  hasVmlinux ? `DENOVM_VMLINUX=${vmlinux} ` : ""
}DENOVM_KERNEL=${kernel} DENOVM_INITRD=${initrd} NO_COLOR=1 ${deno} test -A${filter} tests/linux/ 2>&1`;
// Then, in the same L1 run, the peer comparison with QEMU's microvm (numbers, not a test).
const peer = `${deno} run -A tests/nested/peer.ts ${kernel} ${initrd} 2>&1`;
const command = Deno.env.get("DENOVM_LANE_NO_PEER") ? suite : `${suite} && ${peer}`;
console.error(`lane: booting L1 to run the Linux guest suite (kernel ${kernel})`);
const r = await runInL1({
  command,
  cwd: repo,
  timeoutS: Number(Deno.env.get("DENOVM_LANE_TIMEOUT") ?? 1500),
  ...(Deno.env.get("DENOVM_LANE_VERBOSE")
    ? { console: (t: string) => Deno.stderr.writeSync(new TextEncoder().encode(t)) }
    : {}),
});
console.log(r.log);
if (r.status !== 0) console.error(r.console.slice(-4000));
console.error(`lane: Linux guest suite status ${r.status} in ${r.seconds.toFixed(1)} s`);
Deno.exit(r.status);
