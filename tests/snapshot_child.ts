/**
 * Restores a snapshot in a fresh process (for tests/snapshot_test.ts): `deno run -A
 * tests/snapshot_child.ts <dir> <disk>`; waits for the guest to exit and prints one JSON
 * line: the exit, the guest's counter, and the requests this process served.
 */

import { BlockDevice } from "../devices/block.ts";
import { RngDevice } from "../devices/rng.ts";
import { Vmm } from "../vmm/vmm.ts";
import { PROGRESS_ADDR } from "../testing/kvm_guests.ts";

const [dir, disk] = Deno.args;
const t0 = performance.now();
const vm = await Vmm.restore(dir!, { disks: [disk!], output: () => {} });
const restoreMs = performance.now() - t0;
// Bounded in wall-clock time: a restored guest that never finishes is reported, not waited on.
let timer: ReturnType<typeof setTimeout> | undefined;
const r = await Promise.race([
  vm.whenExit(),
  new Promise<{ kind: "timeout"; waitingAtCheck: number }>((res) => {
    timer = setTimeout(
      () => res({ kind: "timeout", waitingAtCheck: vm.machine.memory.readU16(PROGRESS_ADDR) }),
      60_000,
    );
  }),
]);
clearTimeout(timer);
const blk = vm.devices.virtio[0]!.device.backend as BlockDevice;
const rng = vm.devices.virtio[1]!.device.backend as RngDevice;
console.log(JSON.stringify({
  exit: r,
  counter: vm.machine.memory.readU32(0x6000),
  blkRequests: blk.stats.requests,
  rngBytes: rng.bytesServed,
  restoreMs,
}));
await vm.stop();
