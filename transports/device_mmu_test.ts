import { assertEquals, assertThrows } from "@std/assert";
import { GuestMemory } from "../memory/guest_memory.ts";
import { DeviceMmu, MmuFault } from "./device_mmu.ts";

Deno.test("DeviceMmu.hostAddress translates through one mapping and faults outside it", () => {
  const ram = GuestMemory.allocate([{ gpa: 0, size: 0x100000 }]);
  const faults: string[] = [];
  const mmu = new DeviceMmu(ram, { onFault: (iova, len) => faults.push(`${iova}+${len}`) });
  assertEquals(mmu.map(0x1000, 0x40000, 0x2000), undefined);
  assertEquals(mmu.hostAddress(0x1010, 16), ram.hostAddress(0x40010, 16));
  assertEquals(mmu.hostAddress(0x2fff, 1), ram.hostAddress(0x41fff, 1));
  assertThrows(() => mmu.hostAddress(0x2ff0, 32), MmuFault); // past the mapping's end
  assertThrows(() => mmu.hostAddress(0x40010, 16), MmuFault); // a guest address, not mapped
  assertEquals(faults.length, 2);
});
