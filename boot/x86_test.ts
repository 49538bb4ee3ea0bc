/** Boot structures against the documented layouts (boot.rst, Intel MP spec 1.4). */

import { assert, assertEquals, assertThrows } from "@std/assert";
import { GuestMemory } from "../memory/guest_memory.ts";
import { bootMsrs, cpuidFor } from "./cpu.ts";
import { KernelError, parseBzImage, parseElf, parseKernel } from "./kernel.ts";
import {
  BOOT,
  bootParams,
  E820,
  e820Map,
  GDT_ENTRIES,
  lapicWithLints,
  longModeSregs,
  mpTable,
  placeInitrd,
  pvhStartInfo,
  ramLayout,
  segmentFor,
  writeBootTables,
  ZP,
} from "./x86.ts";

/** A synthetic bzImage: setup header fields at their documented offsets. */
export function fakeBzImage(
  o: { protocol?: number; xload?: number; setupSects?: number; initSize?: number } = {},
) {
  const setupSects = o.setupSects ?? 4;
  const f = new Uint8Array((setupSects + 1) * 512 + 4096);
  const v = new DataView(f.buffer);
  f[0x1f1] = setupSects;
  v.setUint16(0x1fe, 0xaa55, true);
  f[0x200] = 0xeb; // jmp
  f[0x201] = 0x6a; // to 0x26c: header end
  v.setUint32(0x202, 0x53726448, true);
  v.setUint16(0x206, o.protocol ?? 0x020f, true);
  f[0x211] = 0x01; // LOADED_HIGH
  v.setUint32(0x22c, 0x7fffffff, true);
  v.setUint16(0x236, o.xload ?? 0x3, true);
  v.setUint32(0x238, 2047, true);
  v.setUint32(0x260, o.initSize ?? 0x100000, true);
  return f;
}

Deno.test("parseBzImage() reads the setup header and the 64-bit entry", () => {
  const k = parseBzImage(fakeBzImage());
  assertEquals(k.entry64, 0x100200);
  assertEquals(k.segments[0]!.gpa, 0x100000);
  assertEquals(k.segments[0]!.bytes.byteLength, 4096);
  assertEquals([k.protocol, k.cmdlineMax, k.initrdAddrMax, k.initSize], [
    0x020f,
    2047,
    0x7fffffff,
    0x100000,
  ]);
  assertEquals(k.setupHeader!.byteLength, 0x26c - 0x1f1);
  assertEquals(
    parseBzImage(fakeBzImage({ setupSects: 0 })).segments[0]!.bytes.byteLength,
    512 + 4096 - 5 * 512, // setup_sects 0 means 4: the kernel starts at 5 * 512
  );
});

Deno.test("parseKernel() refuses files that are not bootable, saying why", () => {
  const cases: [Uint8Array, string][] = [
    [new Uint8Array(100), "too small"],
    [new Uint8Array(4096), "no HdrS signature"],
    [fakeBzImage({ protocol: 0x020a }), "too old"],
    [fakeBzImage({ xload: 0 }), "no 64-bit entry point"],
    [fakeBzImage({ initSize: 16 }), "init_size 16 is smaller"],
    [
      (() => {
        const f = fakeBzImage();
        f[0x1f1] = 200;
        return f;
      })(),
      "leaves no protected-mode kernel",
    ],
    [new Uint8Array([0x7f, 0x45, 0x4c, 0x46, 1, 1, 1]), "truncated ELF header"],
  ];
  for (const [f, msg] of cases) {
    const e = assertThrows(() => parseKernel(f, "k"), KernelError);
    assert(e.message.includes(msg), e.message);
    assert(e.message.startsWith("Cannot boot k: "));
  }
});

Deno.test("parseElf() loads PT_LOAD segments, checks the entry and finds the PVH note", () => {
  const f = new Uint8Array(0x3000);
  const v = new DataView(f.buffer);
  f.set([0x7f, 0x45, 0x4c, 0x46, 2, 1, 1]);
  v.setUint16(18, 62, true);
  v.setBigUint64(24, 0x1000100n, true); // entry
  v.setBigUint64(32, 64n, true); // phoff
  v.setUint16(54, 56, true);
  v.setUint16(56, 2, true);
  // PT_LOAD: file 0x1000..0x2000 at 0x1000000, memsz 0x3000
  v.setUint32(64, 1, true);
  v.setBigUint64(64 + 8, 0x1000n, true);
  v.setBigUint64(64 + 24, 0x1000000n, true);
  v.setBigUint64(64 + 32, 0x1000n, true);
  v.setBigUint64(64 + 40, 0x3000n, true);
  // PT_NOTE at 0x2000: "Xen", type 18, desc = 0x1000200
  v.setUint32(120, 4, true);
  v.setBigUint64(120 + 8, 0x2000n, true);
  v.setBigUint64(120 + 32, 20n, true);
  v.setUint32(0x2000, 4, true);
  v.setUint32(0x2004, 4, true);
  v.setUint32(0x2008, 18, true);
  f.set(new TextEncoder().encode("Xen\0"), 0x200c);
  v.setUint32(0x2010, 0x1000200, true);
  const k = parseElf(f);
  assertEquals(k.entry64, 0x1000100);
  assertEquals(k.pvhEntry, 0x1000200);
  assertEquals(k.segments, [{
    gpa: 0x1000000,
    bytes: f.subarray(0x1000, 0x2000),
    memSize: 0x3000,
  }]);
  v.setBigUint64(24, 0x5000000n, true);
  assertThrows(() => parseElf(f), KernelError, "not in a loaded segment");
});

Deno.test("e820Map(): low RAM, the reserved MP table/BIOS area, RAM from 1 MiB, and above 4 GiB", () => {
  assertEquals(e820Map(ramLayout(128)), [
    { addr: 0, size: 0x9fc00, type: E820.RAM },
    { addr: 0x9fc00, size: 0x100000 - 0x9fc00, type: E820.RESERVED },
    { addr: 0x100000, size: 128 * 2 ** 20 - 0x100000, type: E820.RAM },
  ]);
  const big = e820Map(ramLayout(4096));
  assertEquals(big.slice(2), [
    { addr: 0x100000, size: 0xc0000000 - 0x100000, type: E820.RAM },
    { addr: 2 ** 32, size: 2 ** 30, type: E820.RAM },
  ]);
});

Deno.test("bootParams(): setup header at 0x1f1, loader fields, cmdline, initrd and e820 at their offsets", () => {
  const k = parseBzImage(fakeBzImage());
  const zp = bootParams({
    setupHeader: k.setupHeader!,
    cmdline: { addr: 0x20000, size: 10 },
    initrd: { addr: 0x7f00000, size: 0x12345 },
    e820: e820Map(ramLayout(128)),
  });
  const v = new DataView(zp.buffer);
  assertEquals(v.getUint32(0x202, true), 0x53726448, "HdrS copied");
  assertEquals(zp[ZP.TYPE_OF_LOADER], 0xff);
  assertEquals(zp[ZP.LOADFLAGS]! & 1, 1);
  assertEquals(v.getUint32(ZP.CMD_LINE_PTR, true), 0x20000);
  assertEquals(v.getUint32(ZP.RAMDISK_IMAGE, true), 0x7f00000);
  assertEquals(v.getUint32(ZP.RAMDISK_SIZE, true), 0x12345);
  assertEquals(zp[ZP.E820_ENTRIES], 3);
  assertEquals(v.getBigUint64(ZP.E820_TABLE + 40, true), 0x100000n);
  assertEquals(v.getUint32(ZP.E820_TABLE + 40 + 16, true), E820.RAM);
});

Deno.test("GDT: 0x10 is flat 64-bit code, 0x18 flat read/write data (boot protocol)", () => {
  assertEquals(GDT_ENTRIES[2], 0x00af9b000000ffffn);
  assertEquals(GDT_ENTRIES[3], 0x00cf93000000ffffn);
  const cs = segmentFor(0x10), ds = segmentFor(0x18);
  assertEquals([cs.l, cs.db, cs.g, cs.type, cs.present, cs.s, cs.limit], [
    1,
    0,
    1,
    11,
    1,
    1,
    0xffffffff,
  ]);
  assertEquals([ds.l, ds.db, ds.g, ds.type, ds.present, ds.limit], [0, 1, 1, 3, 1, 0xffffffff]);
  const seg = segmentFor(0);
  const s = longModeSregs({
    cs: seg,
    ds: seg,
    es: seg,
    fs: seg,
    gs: seg,
    ss: seg,
    tr: seg,
    ldt: seg,
    gdt: { base: 0n, limit: 0 },
    idt: { base: 0n, limit: 0 },
    cr0: 0n,
    cr2: 0n,
    cr3: 0n,
    cr4: 0n,
    cr8: 0n,
    efer: 0n,
    apicBase: 0xfee00900n,
    interruptBitmap: [0n, 0n, 0n, 0n],
  });
  assertEquals([s.cs.selector, s.ds.selector, s.ss.selector], [0x10, 0x18, 0x18]);
  assertEquals(s.efer & 0x500n, 0x500n, "LME and LMA");
  assertEquals(s.cr0 & 0x80000001n, 0x80000001n, "PG and PE");
  assertEquals(s.cr4 & 0x20n, 0x20n, "PAE");
});

Deno.test("writeBootTables(): identity 2 MiB pages for the first 4 GiB", () => {
  const mem = GuestMemory.allocate([{ gpa: 0, size: 0x100000 }]);
  writeBootTables(mem);
  assertEquals(mem.readU64(BOOT.PML4), BigInt(BOOT.PDPT | 3));
  assertEquals(mem.readU64(BOOT.PDPT + 8 * 3), BigInt((BOOT.PD + 0x3000) | 3));
  assertEquals(mem.readU64(BOOT.PD + 8), 0x200000n | 0x83n);
  assertEquals(
    mem.readU64(BOOT.PD + 0x3000 + 511 * 8),
    BigInt(0xffe00000) | 0x83n,
    "the last 2 MiB below 4 GiB",
  );
  assertEquals(mem.readU64(BOOT.GDT + 16), GDT_ENTRIES[2]);
});

Deno.test("mpTable(): floating pointer and config table with valid checksums and every vCPU", () => {
  const t = mpTable(2);
  const sum = (b: Uint8Array) => b.reduce((s, x) => (s + x) & 0xff, 0);
  assertEquals(new TextDecoder().decode(t.subarray(0, 4)), "_MP_");
  assertEquals(sum(t.subarray(0, 16)), 0, "floating pointer checksum");
  const v = new DataView(t.buffer);
  assertEquals(v.getUint32(4, true), BOOT.MPTABLE + 16);
  const ct = t.subarray(16);
  assertEquals(new TextDecoder().decode(ct.subarray(0, 4)), "PCMP");
  assertEquals(v.getUint16(16 + 4, true), ct.byteLength, "base table length");
  assertEquals(sum(ct), 0, "configuration table checksum");
  assertEquals(v.getUint16(16 + 34, true), 2 + 1 + 1 + 24 + 2, "entry count");
  assertEquals([ct[44], ct[45], ct[47]], [0, 0, 3], "CPU 0: processor, APIC id 0, enabled + BSP");
  assertEquals([ct[64], ct[65], ct[67]], [0, 1, 1], "CPU 1: enabled, not BSP");
  assertEquals([ct[84], ct[92], ct[93]], [1, 2, 2], "ISA bus, then the IOAPIC with id 2");
  assertEquals(v.getUint32(16 + 92 + 4, true), 0xfec00000);
  assertThrows(() => mpTable(0), RangeError);
});

Deno.test("placeInitrd(): page aligned, as high as allowed, refused when it would hit the kernel", () => {
  assertEquals(
    placeInitrd(0x1800, { ramEnd: 0x8000000, initrdAddrMax: 0x7fffffff, kernelEnd: 0x2000000 }),
    0x7ffe000,
  );
  assertEquals(
    placeInitrd(0x1000, { ramEnd: 0x8000000, initrdAddrMax: 0x37ffffff, kernelEnd: 0 }),
    0x7fff000,
  );
  assertThrows(() =>
    placeInitrd(0x7000000, { ramEnd: 0x8000000, initrdAddrMax: 0x7fffffff, kernelEnd: 0x2000000 })
  );
});

Deno.test("cpuidFor(): APIC id and counts per vCPU, hypervisor bit and KVM signature", () => {
  const supported = [
    { function: 1, index: 0, flags: 0, eax: 0x806, ebx: 0xff_ff_00_10, ecx: 0, edx: 0 },
    { function: 0xb, index: 0, flags: 1, eax: 0, ebx: 0, ecx: 0, edx: 0 },
    { function: 0xb, index: 1, flags: 1, eax: 0, ebx: 0, ecx: 0, edx: 0 },
  ];
  const c = cpuidFor(supported, 1, 2);
  const l1 = c.find((e) => e.function === 1)!;
  assertEquals(l1.ebx >>> 24, 1, "APIC id");
  assertEquals((l1.ebx >>> 16) & 0xff, 2, "logical processors");
  assertEquals(l1.ebx & 0xffff, 0x0010, "the rest kept");
  assertEquals(l1.ecx >>> 31, 1, "hypervisor");
  assertEquals((l1.ecx >>> 24) & 1, 0, "no TSC-deadline timer unless KVM has it");
  const withDeadline = cpuidFor(supported, 0, 1, { tscDeadline: true }).find((e) =>
    e.function === 1
  )!;
  assertEquals((withDeadline.ecx >>> 24) & 1, 1, "TSC-deadline timer");
  assertEquals(c.filter((e) => e.function === 0xb).map((e) => e.edx), [1, 1], "x2APIC id");
  const hv = c.find((e) => e.function === 0x40000000)!;
  assertEquals(
    new TextDecoder().decode(new Uint8Array(new Uint32Array([hv.ebx, hv.ecx, hv.edx]).buffer)),
    "KVMKVMKVM\0\0\0",
  );
  assertEquals(supported[0]!.ebx, 0xff_ff_00_10, "the input is not modified");
});

Deno.test("bootMsrs() and lapicWithLints(): MTRRdefType WB, LINT0 ExtINT, LINT1 NMI", () => {
  assertEquals(bootMsrs().find((m) => m.index === 0x2ff)?.data, 0x806n);
  const l = lapicWithLints(new Uint8Array(1024).fill(0xff));
  const v = new DataView(l.buffer);
  assertEquals((v.getUint32(0x350, true) >> 8) & 7, 7);
  assertEquals((v.getUint32(0x360, true) >> 8) & 7, 4);
  assertEquals(v.getUint32(0x350, true) & 0x10000, 0, "unmasked");
});

Deno.test("pvhStartInfo(): magic, version, cmdline, memory map and the initrd module", () => {
  const b = pvhStartInfo({
    cmdline: 0x20000,
    initrd: { addr: 0x7000000, size: 4096 },
    e820: e820Map(ramLayout(64)),
  });
  const v = new DataView(b.buffer);
  assertEquals(v.getUint32(0, true), 0x336ec578);
  assertEquals(v.getUint32(12, true), 1);
  assertEquals(v.getBigUint64(24, true), 0x20000n);
  assertEquals(v.getUint32(48, true), 3);
  assertEquals(v.getBigUint64(56 + 3 * 24, true), 0x7000000n);
});
