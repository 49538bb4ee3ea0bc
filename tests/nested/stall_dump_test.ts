import { assertEquals, assertMatch } from "@std/assert";
import { describeStall, ioapicPins, lapicVectors } from "./stall_dump.ts";

Deno.test("stall dump: local APIC vectors from ISR/IRR banks, IOAPIC pins set up or pending", () => {
  const lapic = new Uint8Array(1024);
  const v = new DataView(lapic.buffer);
  v.setUint32(0x100 + 16 * 1, 1 << 4, true); // ISR: vector 36
  v.setUint32(0x200 + 16 * 7, 1 << 31, true); // IRR: vector 255
  v.setUint32(0x200, 1 << 0, true); // IRR: vector 0
  assertEquals(lapicVectors(lapic, 0x100), [36]);
  assertEquals(lapicVectors(lapic, 0x200), [0, 255]);

  const io = new Uint8Array(24 + 24 * 8);
  const d = new DataView(io.buffer);
  for (let pin = 0; pin < 24; pin++) d.setUint32(24 + 8 * pin, 1 << 16, true); // all masked
  d.setUint32(24 + 8 * 4, 36, true); // pin 4: vector 36, edge, unmasked
  d.setUint32(24 + 8 * 4 + 4, 1 << 24, true); // dest 1
  d.setUint32(24 + 8 * 9, 41 | (1 << 15) | (1 << 14) | (1 << 16), true); // pin 9: level, masked
  d.setUint32(16, 1 << 9, true); // pin 9 pending
  assertEquals(ioapicPins(io), [
    { pin: 4, vector: 36, masked: false, level: false, remoteIrr: false, irr: false, dest: 1 },
    { pin: 9, vector: 41, masked: true, level: true, remoteIrr: true, irr: true, dest: 0 },
  ]);
  assertEquals(ioapicPins(new Uint8Array(8)), [], "too short: nothing");
});

Deno.test("stall dump: a directory without a snapshot says so", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const lines = await describeStall(dir);
    assertEquals(lines.length, 1);
    assertMatch(lines[0]!, /^no snapshot to describe: /);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
