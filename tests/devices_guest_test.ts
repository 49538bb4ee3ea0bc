// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/**
 * Devices under a real guest on /dev/kvm: a real-mode driver uses virtio-rng and a
 * virtio-blk disk backed by an image file, notifying through ioeventfds.
 */

import { assert, assertEquals } from "@std/assert";
import { BlockDevice } from "../devices/block.ts";
import { RngDevice } from "../devices/rng.ts";
import { REG } from "../transports/mmio.ts";
import { FileDisk } from "../host/disk_file.ts";
import { attachVirtioMmio } from "../vmm/virtio_mmio.ts";
import { bootGuest, deadline, guestProgress } from "../testing/kvm_guests.ts";

Deno.test({
  name: "real-mode guest: virtio-blk write/read-back on an image file, and virtio-rng",
  async fn() {
    const path = await Deno.makeTempFile({ suffix: ".img" });
    try {
      const image = new Uint8Array(64 * 1024);
      image.set(new TextEncoder().encode("HOSTDATA"), 0);
      await Deno.writeFile(path, image);
      const disk = FileDisk.open(path);
      await using m = await bootGuest("devices");
      m.onClose(() => disk.close());
      const rng = new RngDevice();
      const blk = new BlockDevice(disk);
      const log: string[] = [];
      const devs = [
        attachVirtioMmio(m, rng, { base: 0xd0000, gsi: 5, log: (l) => log.push(l) }),
        attachVirtioMmio(m, blk, { base: 0xd1000, gsi: 6, log: (l) => log.push(l) }),
      ];
      let notifyExits = 0;
      for (const d of devs) {
        const write = d.transport.write.bind(d.transport);
        d.transport.write = (o, data) => {
          if (o === REG.QUEUE_NOTIFY) notifyExits++;
          write(o, data);
        };
      }
      m.run();
      const r = await deadline(m.whenExit(), 30_000, () => `devices guest${guestProgress(m)}`);
      assertEquals(
        r,
        { kind: "exit", code: 0, vcpu: 0 },
        `guest failed check ${"code" in r ? r.code : "?"}; ${log.join("; ")}`,
      );
      assertEquals(notifyExits, 0, "every QueueNotify went through an ioeventfd");
      assertEquals(rng.bytesServed, 32);
      assertEquals(blk.stats.requests, 3);
      const sector2 = (await Deno.readFile(path)).subarray(1024, 1536);
      assertEquals(new TextDecoder().decode(sector2.subarray(0, 10)), "DENOVM-BLK");
      assert(sector2.subarray(10).every((b) => b === 0x5a));
    } finally {
      await Deno.remove(path);
    }
  },
});
