/**
 * Restores the snapshot in `Deno.args[0]` in this fresh process, as `cli.ts --restore`
 * does (vCPU thread started at process start), and prints `restore_ms N`: from the
 * `Vmm.restore()` call until the vCPUs run, process start not counted; and
 * `restore_phases V B A R`: how that time splits (ms): reading and checking the snapshot,
 * building the machine (KVM VM, memory mapped from the file, vCPUs, each with its saved state
 * since 7158383, devices), applying the VM's and the devices' saved state, and resuming.
 */
import { sleep } from "@denovm/sys/timer";
import { prewarmVcpuWorkers } from "../vstate/worker_pool.ts";

// The vCPU thread starts first, then the rest of the VMM loads (as cli.ts does).
prewarmVcpuWorkers(1);
const { Vmm } = await import("../vmm/vmm.ts");

const dir = Deno.args[0];
if (!dir) throw new Error("usage: restore_child.ts <snapshot dir>");
// Let the prewarmed worker finish booting, as it does while a real restore reads its flags
// (with the VMM's own timer: the global one would load Node's timers, which the CLI never
// does, before the timed window).
await sleep(100);
const t = performance.now();
const vm = await Vmm.restore(dir, { output: () => {} });
const end = performance.now();
const ms = end - t;
const p = vm.timings;
await vm.stop();
console.log(`restore_ms ${ms.toFixed(1)}`);
const phases = [
  p.stateValidated! - p.restoreStarted!,
  p.vmCreated! - p.stateValidated!,
  p.stateApplied! - p.vmCreated!,
  end - p.stateApplied!,
];
console.log(`restore_phases ${phases.map((x) => x.toFixed(1)).join(" ")}`);
Deno.exit(0);
