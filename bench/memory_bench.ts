/** `deno task bench`: host-side micro-benchmarks of the hot paths (no KVM needed). */

import { GuestMemory } from "../memory/guest_memory.ts";
import { Bus } from "../bus/bus.ts";

const mem = GuestMemory.allocate([{ gpa: 0, size: 1 << 20 }, { gpa: 0x100000, size: 1 << 20 }]);
let sink = 0;

Deno.bench("GuestMemory.readU32 (bounds-checked)", () => {
  for (let i = 0; i < 1000; i++) sink += mem.readU32((i * 64) & 0xffff);
});

Deno.bench("GuestMemory.writeU16 + readU16", () => {
  for (let i = 0; i < 1000; i++) {
    mem.writeU16(0x100000 + i * 2, i);
    sink += mem.readU16(0x100000 + i * 2);
  }
});

Deno.bench("GuestMemory.slice 4 KiB (zero-copy)", () => {
  for (let i = 0; i < 100; i++) sink += mem.slice(i * 4096, 4096).byteLength;
});

const bus = new Bus("mmio");
for (let i = 0; i < 8; i++) {
  bus.register(0xd000_0000 + i * 0x1000, 0x1000, {
    read: (_o, d) => d.fill(0),
    write: () => sink++,
  });
}
const data = new Uint8Array(4);
Deno.bench("Bus.write routed among 8 devices", () => {
  for (let i = 0; i < 1000; i++) bus.write(0xd000_0000 + (i & 7) * 0x1000 + 0x50, data);
});

globalThis.addEventListener("unload", () => {
  if (sink === -1) console.log(sink);
});
