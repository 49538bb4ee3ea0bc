/**
 * Restores a Linux snapshot in a fresh process and prints the guest's console until it resets.
 * A guest that has not reset after DENOVM_RESTORE_WAIT_S (default 240) seconds ends the child
 * with exit code 3 and a line on stderr saying what its vCPUs were doing, so a restored guest
 * that stalls fails the test instead of hanging the lane.
 */
import { Vmm } from "../../vmm/vmm.ts";

const WAIT_S = Number(Deno.env.get("DENOVM_RESTORE_WAIT_S") ?? 240);
const vm = await Vmm.restore(Deno.args[0]!, { output: (b) => Deno.stdout.writeSync(b) });
let timer: ReturnType<typeof setTimeout> | undefined;
const stalled = new Promise<"stalled">((
  r,
) => (timer = setTimeout(() => r("stalled"), WAIT_S * 1000)));
const r = await Promise.race([vm.whenExit(), stalled]);
clearTimeout(timer);
if (r === "stalled") {
  const counts = () => vm.machine.vcpus.map((t) => t.counters.exits);
  const before = counts();
  await new Promise((res) => setTimeout(res, 1000));
  console.error(
    `restore_child: no reset after ${WAIT_S} s (state ${vm.state}; vCPU exits ${
      before.join(",")
    }, ` +
      `one second later ${counts().join(",")})`,
  );
  vm.serial.drain();
  Deno.exit(3);
}
vm.serial.drain();
await vm.stop();
Deno.exit(r.kind === "reset" ? 0 : 1);
