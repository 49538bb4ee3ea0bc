/** Restores a Linux snapshot in a fresh process and prints the guest's console until it resets. */
import { Vmm } from "../../vmm/vmm.ts";

const vm = await Vmm.restore(Deno.args[0]!, { output: (b) => Deno.stdout.writeSync(b) });
const r = await vm.whenExit();
vm.serial.drain();
await vm.stop();
Deno.exit(r.kind === "reset" ? 0 : 1);
