/** The memory half of kernel loading, on ArrayBuffer memory (no KVM). */

import { assert, assertEquals, assertThrows } from "@std/assert";
import { KERNEL_LOAD, KernelError, type KernelImage } from "../boot/kernel.ts";
import { BOOT, ZP } from "../boot/x86.ts";
import { GuestMemory } from "../memory/guest_memory.ts";
import { writeBootImage } from "./kernel_boot.ts";
import { ACPI_BASE, VMGENID_ADDR, VMGENID_SIZE } from "../boot/acpi.ts";

const MiB = 1 << 20;

function kernel(over: Partial<KernelImage> = {}): KernelImage {
  return {
    kind: "bzimage",
    segments: [{ gpa: KERNEL_LOAD, bytes: new Uint8Array([0xeb, 0xfe, 1, 2]), memSize: 0x2000 }],
    entry64: KERNEL_LOAD + 0x200,
    initrdAddrMax: 0x37ff_ffff,
    cmdlineMax: 255,
    initSize: 2 * MiB,
    ...over,
  };
}

Deno.test("writeBootImage: kernel, bss, command line, initrd and zero page where the protocol says", () => {
  const mem = GuestMemory.allocate([{ gpa: 0, size: 64 * MiB }]);
  mem.fill(KERNEL_LOAD + 4, 16, 0xaa); // the bss must come out zeroed
  const initrd = new Uint8Array(3 * 4096).fill(7);
  const layout = writeBootImage(mem, kernel(), { cmdline: "console=ttyS0 quiet", initrd }, 2);
  assertEquals(layout.mode, "64-bit");
  assertEquals(layout.entry, KERNEL_LOAD + 0x200);
  assertEquals([...mem.read(KERNEL_LOAD, 4)], [0xeb, 0xfe, 1, 2]);
  assertEquals([...mem.read(KERNEL_LOAD + 4, 16)], new Array(16).fill(0), "bss zeroed");
  const cmd = new TextDecoder().decode(mem.read(BOOT.CMDLINE, 19));
  assertEquals(cmd, "console=ttyS0 quiet");
  assertEquals(mem.readU8(BOOT.CMDLINE + 19), 0, "NUL-terminated");
  const zp = BOOT.ZERO_PAGE;
  assertEquals(mem.readU32(zp + ZP.CMD_LINE_PTR), BOOT.CMDLINE);
  const { addr, size } = layout.initrd ?? { addr: -1, size: -1 };
  assertEquals(size, initrd.byteLength);
  assertEquals(addr % 4096, 0, "page aligned");
  assert(addr >= KERNEL_LOAD + 2 * MiB && addr + size <= 64 * MiB, "above the kernel, in RAM");
  assertEquals(mem.readU32(zp + ZP.RAMDISK_IMAGE), addr);
  assertEquals(mem.readU32(zp + ZP.RAMDISK_SIZE), size);
  assertEquals([...mem.read(addr, 4)], [7, 7, 7, 7]);
  assert(mem.readU8(zp + ZP.E820_ENTRIES) >= 3, "e820 entries");
  assertEquals(new TextDecoder().decode(mem.read(BOOT.MPTABLE, 4)), "_MP_");
});

Deno.test("writeBootImage: an ELF with a PVH note gets the PVH start info", () => {
  const mem = GuestMemory.allocate([{ gpa: 0, size: 32 * MiB }]);
  const layout = writeBootImage(
    mem,
    kernel({ kind: "elf", pvhEntry: 0x1000_00c, initSize: 0 }),
    { cmdline: "x" },
    1,
  );
  assertEquals(layout.mode, "pvh");
  assertEquals(layout.entry, 0x1000_00c);
  assertEquals(mem.readU32(BOOT.PVH_INFO), 0x336ec578, "hvm_start_info magic");
});

Deno.test("writeBootImage: too little RAM or too long a command line is a KernelError", () => {
  const small = GuestMemory.allocate([{ gpa: 0, size: 2 * MiB }]);
  assertThrows(
    () => writeBootImage(small, kernel(), { cmdline: "" }, 1),
    KernelError,
    "more memory",
  );
  const mem = GuestMemory.allocate([{ gpa: 0, size: 16 * MiB }]);
  assertThrows(
    () => writeBootImage(mem, kernel(), { cmdline: "a".repeat(256) }, 1),
    KernelError,
    "the kernel takes 255",
  );
});

Deno.test("writeBootImage with ACPI: the tables below 1 MiB, the RSDP in the zero page", () => {
  const mem = GuestMemory.allocate([{ gpa: 0, size: 16 * MiB }]);
  writeBootImage(mem, kernel(), {
    cmdline: "console=ttyS0",
    acpi: { vcpus: 2, virtio: [{ base: 0xd000_0000, gsi: 5 }], i8042: true, rtc: true },
  }, 2);
  const rsdp = mem.readU32(BOOT.ZERO_PAGE + ZP.ACPI_RSDP_ADDR);
  assertEquals(rsdp, ACPI_BASE);
  assertEquals(new TextDecoder().decode(mem.read(rsdp, 8)), "RSD PTR ");
  assertEquals(mem.read(rsdp, 36).reduce((s, x) => (s + x) & 0xff, 0), 0);
  const xsdt = Number(new DataView(mem.read(rsdp + 24, 8).buffer).getBigUint64(0, true));
  assertEquals(new TextDecoder().decode(mem.read(xsdt, 4)), "XSDT");
  // No generation ID was asked for: its page stays empty.
  assertEquals([...mem.read(VMGENID_ADDR, VMGENID_SIZE)], new Array(VMGENID_SIZE).fill(0));
  // Without ACPI nothing is there.
  const bare = GuestMemory.allocate([{ gpa: 0, size: 16 * MiB }]);
  writeBootImage(bare, kernel(), { cmdline: "" }, 1);
  assertEquals(bare.readU32(ACPI_BASE), 0);
});

Deno.test("writeBootImage with a VM generation ID: 16 random bytes, new at every boot", () => {
  const ids = [0, 1].map(() => {
    const mem = GuestMemory.allocate([{ gpa: 0, size: 16 * MiB }]);
    writeBootImage(mem, kernel(), {
      cmdline: "",
      acpi: { vcpus: 1, virtio: [], vmgenid: true },
    }, 1);
    return [...mem.read(VMGENID_ADDR, VMGENID_SIZE)].join(",");
  });
  assert(ids[0] !== new Array(VMGENID_SIZE).fill(0).join(","), "an ID was written");
  assert(ids[0] !== ids[1], "two boots, two IDs");
});
