/**
 * Boots with the CLI's flags and prints `marker_ms N`: process start to the boot marker.
 * With DENOVM_BENCH_WARM=N it then boots the same machine N more times in this process, as
 * a rig that keeps one process (or the control API server) running does, each with a vCPU
 * thread started beforehand ({@link prewarmVcpuWorkers}), and prints `warm_marker_ms N` and
 * `warm_first_instruction_ms N` for each: from the `Vmm.create` call.
 */
import { prewarmVcpuWorkers } from "../vstate/worker_pool.ts";

// The vCPU thread starts first, then the rest of the VMM loads (as cli.ts does).
prewarmVcpuWorkers(1);
const { configFromArgs } = await import("../cli.ts");
const { Vmm } = await import("../vmm/vmm.ts");

const { config } = await configFromArgs(Deno.args);
const vm = await Vmm.create({ ...config, console: "none" });
vm.start();
await vm.whenExit();
console.log(`marker_ms ${vm.bootMarkerMs?.toFixed(1) ?? "none"}`);
await vm.stop();
const warm = Number(Deno.env.get("DENOVM_BENCH_WARM") ?? 0);
// Loaded with the VMM already (imported here, not above, so the vCPU thread starts first).
const { sleep } = await import("@denovm/sys/timer");
for (let i = 0; i < warm; i++) {
  prewarmVcpuWorkers(config.vcpus);
  await sleep(200); // the rig's threads are ready before a request
  const t0 = performance.now();
  const again = await Vmm.create({ ...config, console: "none" });
  again.start();
  await again.whenExit();
  const marker = again.bootMarkerMs, first = again.timings.firstInstruction;
  if (marker === undefined || first === undefined) throw new Error("no boot marker");
  console.log(`warm_marker_ms ${(marker - t0).toFixed(1)}`);
  console.log(`warm_first_instruction_ms ${(first - t0).toFixed(1)}`);
  await again.stop();
}
Deno.exit(0);
