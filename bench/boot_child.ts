/** Boots with the CLI's flags and prints `marker_ms N`: process start to the boot marker. */
import "../vmm/prewarm.ts";
import { configFromArgs } from "../cli.ts";
import { Vmm } from "../vmm/vmm.ts";

const { config } = await configFromArgs(Deno.args);
const vm = await Vmm.create({ ...config, console: "none" });
vm.start();
await vm.whenExit();
console.log(`marker_ms ${vm.bootMarkerMs?.toFixed(1) ?? "none"}`);
await vm.stop();
Deno.exit(0);
