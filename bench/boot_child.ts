/** Boots with the CLI's flags and prints `marker_ms N`: process start to the boot marker. */
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
Deno.exit(0);
