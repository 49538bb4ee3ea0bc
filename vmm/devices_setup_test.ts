/** The device plan's fixed choices (no KVM). */

import { assert, assertEquals } from "@std/assert";
import { legacyVirtioGsis, VIRTIO_GSIS } from "./devices_setup.ts";
import { GED_GSI } from "../boot/acpi.ts";

Deno.test("virtio interrupt lines: one each for 16 devices, none a legacy device's or the GED's", () => {
  // A virtio device on GSI 8 or 12 took the line rtc_cmos or the i8042's AUX port requests
  // unshared (4 and 8 devices in): one of the two drivers then failed to probe.
  assertEquals(VIRTIO_GSIS.length, 16, "a config may have 16 virtio devices");
  assertEquals(new Set(VIRTIO_GSIS).size, 16);
  for (const taken of [0, 1, 2, 4, 8, 12, GED_GSI]) {
    assert(!VIRTIO_GSIS.includes(taken), `GSI ${taken} is taken`);
  }
  assert(VIRTIO_GSIS.every((g) => g < 24), "IOAPIC pins");
  assertEquals(legacyVirtioGsis(3), [5, 6, 7], "older snapshots keep their lines");
});
