/** Machine.create's argument checks, made before KVM, memory or a worker is touched. */

import { assertRejects } from "@std/assert";
import { Machine } from "./machine.ts";

Deno.test("machine: a vCPU count out of range or a saved state per vCPU missing is refused first", async () => {
  await assertRejects(() => Machine.create({ vcpus: 0 }), RangeError, "0 vCPUs");
  await assertRejects(() => Machine.create({ vcpus: 65 }), RangeError, "65 vCPUs");
  // A restore's states must cover every vCPU: none may start without its saved state.
  await assertRejects(
    () => Machine.create({ vcpus: 2, vcpuStates: [] }),
    RangeError,
    "0 saved vCPU states for 2 vCPUs",
  );
});
