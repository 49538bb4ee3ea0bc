/**
 * The warm start in the Linux lane (issue 16), next to the peer comparison: one process
 * boots the kernel through the library twice, as a rig that keeps a VMM process running
 * does (a vCPU thread started ahead with `prewarmVcpuWorkers`), and prints the second
 * boot's time from the `Vmm.create` call to the init's "denovm-init: up" line:
 *
 *   warm_boot_to_init_ms N
 *
 *   deno run -A tests/nested/warm_boot.ts <bzImage> <initramfs> <cmdline>
 *
 * @module
 */

import { prewarmVcpuWorkers, Vmm } from "../../mod.ts";

const [kernel, initrd, cmdline] = Deno.args;
if (!kernel || !initrd || !cmdline) {
  console.error("usage: warm_boot.ts <bzImage> <initramfs> <cmdline>");
  Deno.exit(2);
}

/** Boots once; ms from the create call to the init line. */
async function once(): Promise<number> {
  const dec = new TextDecoder();
  let out = "", at = NaN;
  let up!: () => void;
  const reached = new Promise<void>((r) => up = r);
  const t0 = performance.now();
  const vm = await Vmm.create({
    kernel: kernel!,
    initrd: initrd!,
    cmdline: cmdline!,
    memMiB: 256,
    vcpus: 1,
    disks: [],
    nets: [],
    rng: false,
    console: "serial",
  }, {
    output: (b) => {
      out = (out + dec.decode(b, { stream: true })).slice(-4096);
      if (Number.isNaN(at) && out.includes("denovm-init: up")) {
        at = performance.now() - t0;
        up();
      }
    },
  });
  vm.start();
  const timer = setTimeout(up, 120_000);
  await Promise.race([reached, vm.whenExit()]);
  clearTimeout(timer);
  await vm.stop();
  if (Number.isNaN(at)) throw new Error(`no init line:\n${out.slice(-2000)}`);
  return at;
}

prewarmVcpuWorkers(1);
await once(); // cold: loads and compiles what a boot runs
let best = Infinity;
for (let i = 0; i < 3; i++) {
  prewarmVcpuWorkers(1);
  await new Promise((r) => setTimeout(r, 200)); // the rig's thread is ready before a request
  best = Math.min(best, await once());
}
console.log(`warm_boot_to_init_ms ${best.toFixed(0)}`);
Deno.exit(0);
