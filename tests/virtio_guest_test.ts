// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/**
 * The virtio core and MMIO transport under a real guest on /dev/kvm: a real-mode driver
 * does the handshake and one request; the notification goes through the ioeventfd and
 * the completion interrupt comes back through the irqfd into its handler.
 */

import { assertEquals } from "@std/assert";
import { DummyDevice } from "../testing/dummy_device.ts";
import { REG } from "../transports/mmio.ts";
import { STATUS } from "../virtio/constants.ts";
import { attachVirtioMmio } from "../vmm/virtio_mmio.ts";
import { bootGuest, deadline, guestProgress } from "../testing/kvm_guests.ts";

for (const local of [false, true]) {
  Deno.test({
    name: `real-mode guest: virtio handshake, request via ioeventfd, completion via irqfd${
      local ? "; the vCPU worker answers InterruptStatus/ACK" : ""
    }`,
    async fn() {
      await using m = await bootGuest(
        "virtio",
        local ? { virtioIsr: { base: 0xd0000, slots: 4 } } : {},
      );
      const backend = new DummyDevice({ queues: [8] });
      const log: string[] = [];
      const v = attachVirtioMmio(m, backend, { base: 0xd0000, gsi: 5, log: (l) => log.push(l) });
      let notifyExits = 0, isrCrossings = 0;
      const write = v.transport.write.bind(v.transport);
      v.transport.write = (o, d) => {
        if (o === REG.QUEUE_NOTIFY) notifyExits++;
        if (o === REG.INTERRUPT_ACK) isrCrossings++;
        write(o, d);
      };
      const read = v.transport.read.bind(v.transport);
      v.transport.read = (o, d) => {
        if (o === REG.INTERRUPT_STATUS) isrCrossings++;
        read(o, d);
      };
      m.run();
      const r = await deadline(m.whenExit(), 30_000, () => `virtio guest${guestProgress(m)}`);
      assertEquals(
        r,
        { kind: "exit", code: 0, vcpu: 0 },
        `guest failed check ${"code" in r ? r.code : "?"}; ${log.join("; ")}`,
      );
      assertEquals(backend.processed, 1);
      assertEquals(notifyExits, 0, "QueueNotify never exited: the ioeventfd took it");
      assertEquals(
        v.device.status,
        STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK | STATUS.DRIVER_OK,
      );
      assertEquals(v.device.isr, 0, "the guest acknowledged the interrupt");
      if (local) assertEquals(isrCrossings, 0, "status and ACK were answered in the worker");
      else assertEquals(isrCrossings >= 2, true, "status and ACK crossed to the device thread");
      assertEquals(log, []);
    },
  });
}
