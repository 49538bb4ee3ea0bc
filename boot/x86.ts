/**
 * The x86-64 boot structures a Linux guest expects from its loader, built as bytes in
 * guest memory: the zero page (boot_params) with the setup header and an e820 map, a GDT
 * with the boot protocol's 0x10 code and 0x18 data descriptors, identity page tables for
 * the first 4 GiB, an Intel MP table so Linux finds every vCPU and the IOAPIC without
 * ACPI, and PVH's hvm_start_info. Also the register state of a vCPU at the 64-bit (or PVH
 * 32-bit) entry.
 *
 * @module
 */

import type { GuestMemory } from "../memory/guest_memory.ts";
import type { Regs, Segment, Sregs } from "@denovm/deno-kvm-ffi";

/** Where the x86 MMIO gap below 4 GiB starts; RAM above it continues at 4 GiB. */
export const MMIO_GAP_START = 0xc000_0000;
export const MMIO_GAP_END = 0x1_0000_0000;

/** The RAM layout for `memMiB`: below the MMIO gap, then from 4 GiB. */
export function ramLayout(memMiB: number): { gpa: number; size: number }[] {
  if (!Number.isInteger(memMiB) || memMiB < 1 || memMiB > 1024 * 1024) {
    throw new RangeError(`Cannot size guest RAM: ${memMiB} MiB is not between 1 and 1048576`);
  }
  const bytes = memMiB * 1024 * 1024;
  if (bytes <= MMIO_GAP_START) return [{ gpa: 0, size: bytes }];
  return [{ gpa: 0, size: MMIO_GAP_START }, {
    gpa: MMIO_GAP_END,
    size: bytes - MMIO_GAP_START,
  }];
}

/** Guest-physical addresses of the boot structures (all in the first MiB). */
export const BOOT = {
  GDT: 0x500,
  ZERO_PAGE: 0x7000,
  STACK: 0x8ff0,
  PML4: 0x9000,
  PDPT: 0xa000,
  PD: 0xb000, // four pages: 0xb000-0xefff
  PVH_INFO: 0x6000,
  CMDLINE: 0x20000,
  /** The MP table goes at the start of the EBDA, just below 640 KiB. */
  MPTABLE: 0x9fc00,
  /** End of conventional memory. */
  LOW_END: 0xa0000,
  HIGH: 0x100000,
} as const;

/** e820 entry types. */
export const E820 = { RAM: 1, RESERVED: 2 } as const;

/** An e820 entry. */
export interface E820Entry {
  addr: number;
  size: number;
  type: number;
}

/**
 * The e820 map for RAM `regions` (from {@link ramLayout}): RAM below the MP table, the
 * MP table and the legacy ROM area reserved, RAM from 1 MiB up to the MMIO gap, and RAM
 * above 4 GiB.
 */
export function e820Map(regions: readonly { gpa: number; size: number }[]): E820Entry[] {
  const out: E820Entry[] = [{ addr: 0, size: BOOT.MPTABLE, type: E820.RAM }];
  out.push({ addr: BOOT.MPTABLE, size: BOOT.HIGH - BOOT.MPTABLE, type: E820.RESERVED });
  for (const r of regions) {
    const start = Math.max(r.gpa, BOOT.HIGH), end = r.gpa + r.size;
    if (end > start) out.push({ addr: start, size: end - start, type: E820.RAM });
  }
  return out;
}

/** Offsets in `struct boot_params`. */
export const ZP = {
  EXT_RAMDISK_IMAGE: 0x0c0,
  EXT_RAMDISK_SIZE: 0x0c4,
  EXT_CMD_LINE_PTR: 0x0c8,
  E820_ENTRIES: 0x1e8,
  HDR: 0x1f1,
  TYPE_OF_LOADER: 0x210,
  LOADFLAGS: 0x211,
  RAMDISK_IMAGE: 0x218,
  RAMDISK_SIZE: 0x21c,
  HEAP_END_PTR: 0x224,
  CMD_LINE_PTR: 0x228,
  ACPI_RSDP_ADDR: 0x070,
  E820_TABLE: 0x2d0,
  E820_MAX: 128,
} as const;

/** Builds the zero page: the kernel's setup header plus what the loader fills in. */
export function bootParams(o: {
  setupHeader?: Uint8Array;
  cmdline: { addr: number; size: number };
  initrd?: { addr: number; size: number };
  e820: E820Entry[];
}): Uint8Array {
  const zp = new Uint8Array(4096);
  const v = new DataView(zp.buffer);
  if (o.setupHeader) zp.set(o.setupHeader.subarray(0, 4096 - ZP.HDR), ZP.HDR);
  zp[ZP.TYPE_OF_LOADER] = 0xff; // undefined loader
  zp[ZP.LOADFLAGS] = (zp[ZP.LOADFLAGS]! | 0x01 | 0x80) & 0xff; // LOADED_HIGH, CAN_USE_HEAP
  v.setUint16(ZP.HEAP_END_PTR, 0xfe00, true);
  v.setUint32(ZP.CMD_LINE_PTR, o.cmdline.addr >>> 0, true);
  v.setUint32(ZP.EXT_CMD_LINE_PTR, Math.floor(o.cmdline.addr / 2 ** 32), true);
  if (o.initrd) {
    v.setUint32(ZP.RAMDISK_IMAGE, o.initrd.addr >>> 0, true);
    v.setUint32(ZP.RAMDISK_SIZE, o.initrd.size >>> 0, true);
    v.setUint32(ZP.EXT_RAMDISK_IMAGE, Math.floor(o.initrd.addr / 2 ** 32), true);
    v.setUint32(ZP.EXT_RAMDISK_SIZE, Math.floor(o.initrd.size / 2 ** 32), true);
  }
  if (o.e820.length > ZP.E820_MAX) {
    throw new RangeError(`Cannot boot: ${o.e820.length} e820 entries, at most 128`);
  }
  zp[ZP.E820_ENTRIES] = o.e820.length;
  o.e820.forEach((e, i) => {
    const b = ZP.E820_TABLE + i * 20;
    v.setBigUint64(b, BigInt(e.addr), true);
    v.setBigUint64(b + 8, BigInt(e.size), true);
    v.setUint32(b + 16, e.type, true);
  });
  return zp;
}

/** GDT entries: null, 32-bit code (0x08, PVH), 64-bit code (0x10), data (0x18), TSS (0x20). */
export const GDT_ENTRIES = [
  0n,
  0x00cf_9b00_0000_ffffn, // 0x08: code, 32-bit, 4 GiB, execute/read
  0x00af_9b00_0000_ffffn, // 0x10: code, 64-bit (L), execute/read
  0x00cf_9300_0000_ffffn, // 0x18: data, 4 GiB, read/write
  0x0000_8b00_0000_0067n, // 0x20: 64-bit TSS, busy, base 0, limit 0x67
] as const;
export const SEL = { CODE32: 0x08, CODE64: 0x10, DATA: 0x18, TSS: 0x20 } as const;

/** The kvm_segment for GDT entry `selector`, decoded from its descriptor. */
export function segmentFor(selector: number): Segment {
  const d = GDT_ENTRIES[selector >> 3]!;
  const n = (shift: bigint, bits: bigint) => Number((d >> shift) & ((1n << bits) - 1n));
  const limit = n(0n, 16n) | (n(48n, 4n) << 16);
  const g = n(55n, 1n);
  return {
    base: BigInt(n(16n, 24n) | (n(56n, 8n) << 24)),
    limit: g ? limit * 4096 + 0xfff : limit,
    selector,
    type: n(40n, 4n),
    s: n(44n, 1n),
    dpl: n(45n, 2n),
    present: n(47n, 1n),
    avl: n(52n, 1n),
    l: n(53n, 1n),
    db: n(54n, 1n),
    g,
    unusable: 0,
  };
}

/** Writes the GDT and identity page tables (2 MiB pages, first 4 GiB). */
export function writeBootTables(mem: GuestMemory): void {
  GDT_ENTRIES.forEach((e, i) => mem.writeU64(BOOT.GDT + i * 8, e));
  mem.fill(BOOT.PML4, 0x6000, 0);
  mem.writeU64(BOOT.PML4, BOOT.PDPT | 0x3); // present, writable
  for (let i = 0; i < 4; i++) {
    mem.writeU64(BOOT.PDPT + i * 8, (BOOT.PD + i * 0x1000) | 0x3);
    for (let j = 0; j < 512; j++) {
      const addr = (i * 512 + j) * 0x20_0000;
      mem.writeU64(BOOT.PD + i * 0x1000 + j * 8, BigInt(addr) | 0x83n); // present, writable, 2 MiB
    }
  }
}

const CR0_PE = 1n, CR0_ET = 0x10n, CR0_NE = 0x20n, CR0_PG = 0x8000_0000n;
const CR4_PAE = 0x20n, EFER_LME = 0x100n, EFER_LMA = 0x400n;

/** Flat segments from the boot GDT with code selector `code`, and the given control registers. */
function flatSregs(
  base: Sregs,
  code: number,
  ctl: Pick<Sregs, "cr0" | "cr3" | "cr4" | "efer">,
): Sregs {
  const data = segmentFor(SEL.DATA);
  return {
    ...base,
    cs: segmentFor(code),
    ds: data,
    es: data,
    fs: data,
    gs: data,
    ss: data,
    tr: segmentFor(SEL.TSS),
    gdt: { base: BigInt(BOOT.GDT), limit: GDT_ENTRIES.length * 8 - 1 },
    idt: { base: 0n, limit: 0 },
    ...ctl,
  };
}

/** Special registers for the 64-bit entry: long mode, paging on the identity tables. */
export function longModeSregs(base: Sregs): Sregs {
  return flatSregs(base, SEL.CODE64, {
    cr0: CR0_PE | CR0_PG | CR0_ET | CR0_NE,
    cr3: BigInt(BOOT.PML4),
    cr4: CR4_PAE,
    efer: EFER_LME | EFER_LMA,
  });
}

/** Special registers for PVH: 32-bit protected mode, paging off. */
export function pvhSregs(base: Sregs): Sregs {
  return flatSregs(base, SEL.CODE32, { cr0: CR0_PE | CR0_ET | CR0_NE, cr3: 0n, cr4: 0n, efer: 0n });
}

/** General registers at the entry: RIP, boot_params in RSI (64-bit) or start_info in RBX (PVH). */
export function entryRegs(base: Regs, o: { rip: number; rsi?: number; rbx?: number }): Regs {
  const r = { ...base };
  for (const k of Object.keys(r) as (keyof Regs)[]) r[k] = 0n;
  r.rip = BigInt(o.rip);
  r.rsi = BigInt(o.rsi ?? 0);
  r.rbx = BigInt(o.rbx ?? 0);
  r.rsp = BigInt(BOOT.STACK);
  r.rbp = BigInt(BOOT.STACK);
  r.rflags = 2n; // interrupts off
  return r;
}

/** Where the initrd goes: page aligned, as high as allowed, above the kernel. */
export function placeInitrd(
  size: number,
  o: { ramEnd: number; initrdAddrMax: number; kernelEnd: number },
): number {
  const top = Math.min(o.ramEnd, o.initrdAddrMax + 1);
  const addr = Math.floor((top - size) / 4096) * 4096;
  if (size <= 0 || addr < o.kernelEnd) {
    throw new RangeError(
      `Cannot place an initrd of ${size} bytes: not enough low RAM above the kernel`,
    );
  }
  return addr;
}

/** The 8-bit checksum that makes `b`'s bytes sum to zero (MP and ACPI tables). */
export function checksum(b: Uint8Array): number {
  let s = 0;
  for (const x of b) s = (s + x) & 0xff;
  return (0x100 - s) & 0xff;
}

/** The IOAPIC's address and the interrupt lines it routes from ISA. */
export const IOAPIC_ADDR = 0xfec0_0000, APIC_ADDR = 0xfee0_0000, IOAPIC_PINS = 24;

/**
 * An Intel MP table (spec 1.4): floating pointer, then the configuration table with one
 * processor entry per vCPU (vCPU 0 the bootstrap processor), an ISA bus, the IOAPIC (id =
 * vCPU count), an I/O interrupt entry per IOAPIC pin, and ExtINT on LINT0, NMI on LINT1.
 */
export function mpTable(cpus: number, base = BOOT.MPTABLE): Uint8Array {
  if (cpus < 1 || cpus > 254) throw new RangeError(`Cannot build an MP table for ${cpus} vCPUs`);
  const entries: Uint8Array[] = [];
  const entry = (size: number, fill: (v: DataView, b: Uint8Array) => void) => {
    const b = new Uint8Array(size);
    fill(new DataView(b.buffer), b);
    entries.push(b);
  };
  for (let id = 0; id < cpus; id++) {
    entry(20, (v, b) => {
      b[0] = 0; // processor
      b[1] = id; // local APIC id
      b[2] = 0x14; // local APIC version
      b[3] = 0x01 | (id === 0 ? 0x02 : 0); // enabled, bootstrap
      v.setUint32(4, 0x600, true); // CPU signature: family 6
      v.setUint32(8, 0x201, true); // features: FPU, APIC
    });
  }
  entry(8, (_v, b) => {
    b[0] = 1; // bus
    b[1] = 0;
    b.set(new TextEncoder().encode("ISA   "), 2);
  });
  const ioapicId = cpus;
  entry(8, (v, b) => {
    b[0] = 2; // I/O APIC
    b[1] = ioapicId;
    b[2] = 0x11;
    b[3] = 1; // enabled
    v.setUint32(4, IOAPIC_ADDR, true);
  });
  for (let pin = 0; pin < IOAPIC_PINS; pin++) {
    entry(8, (_v, b) => {
      b[0] = 3; // I/O interrupt
      b[1] = 0; // INT
      b[4] = 0; // source bus
      b[5] = pin; // source IRQ
      b[6] = ioapicId;
      b[7] = pin;
    });
  }
  for (const [type, lint] of [[3, 0], [1, 1]] as const) {
    entry(8, (_v, b) => {
      b[0] = 4; // local interrupt
      b[1] = type; // ExtINT, NMI
      b[4] = 0;
      b[5] = 0;
      b[6] = 0xff; // every local APIC
      b[7] = lint;
    });
  }
  const body = entries.reduce((n, e) => n + e.byteLength, 0);
  const table = new Uint8Array(16 + 44 + body);
  // Floating pointer structure.
  const fp = table.subarray(0, 16);
  fp.set(new TextEncoder().encode("_MP_"), 0);
  new DataView(fp.buffer, fp.byteOffset).setUint32(4, base + 16, true);
  fp[8] = 1; // length in 16-byte units
  fp[9] = 4; // spec 1.4
  fp[10] = checksum(fp);
  // Configuration table.
  const ct = table.subarray(16);
  const v = new DataView(ct.buffer, ct.byteOffset, ct.byteLength);
  ct.set(new TextEncoder().encode("PCMP"), 0);
  v.setUint16(4, 44 + body, true);
  ct[6] = 4;
  ct.set(new TextEncoder().encode("DENOVM  "), 8);
  ct.set(new TextEncoder().encode("MICROVM     "), 16);
  v.setUint16(34, entries.length, true);
  v.setUint32(36, APIC_ADDR, true);
  let o = 44;
  for (const e of entries) {
    ct.set(e, o);
    o += e.byteLength;
  }
  ct[7] = checksum(ct);
  return table;
}

/** hvm_start_info for PVH (and its memory map), at `at`. */
export function pvhStartInfo(
  o: { cmdline: number; initrd?: { addr: number; size: number }; e820: E820Entry[] },
  at = BOOT.PVH_INFO,
): Uint8Array {
  const memmap = at + 56, mods = memmap + 24 * o.e820.length;
  const b = new Uint8Array(56 + 24 * o.e820.length + (o.initrd ? 32 : 0));
  const v = new DataView(b.buffer);
  v.setUint32(0, 0x336e_c578, true); // XEN_HVM_START_MAGIC_VALUE
  v.setUint32(4, 1, true); // version
  v.setUint32(12, o.initrd ? 1 : 0, true); // nr_modules
  v.setBigUint64(16, BigInt(o.initrd ? mods : 0), true);
  v.setBigUint64(24, BigInt(o.cmdline), true);
  v.setBigUint64(40, BigInt(memmap), true);
  v.setUint32(48, o.e820.length, true);
  o.e820.forEach((e, i) => {
    v.setBigUint64(56 + 24 * i, BigInt(e.addr), true);
    v.setBigUint64(56 + 24 * i + 8, BigInt(e.size), true);
    v.setUint32(56 + 24 * i + 16, e.type, true);
  });
  if (o.initrd) {
    const m = 56 + 24 * o.e820.length;
    v.setBigUint64(m, BigInt(o.initrd.addr), true);
    v.setBigUint64(m + 8, BigInt(o.initrd.size), true);
  }
  return b;
}

/** LAPIC register offsets and the LVT delivery modes Linux expects on LINT0/LINT1. */
export const LAPIC = { LINT0: 0x350, LINT1: 0x360 } as const;
const DM_EXTINT = 7 << 8, DM_NMI = 4 << 8;

/** The LAPIC page with LINT0 = ExtINT and LINT1 = NMI (the PIC and NMI wiring). */
export function lapicWithLints(lapic: Uint8Array): Uint8Array {
  const b = lapic.slice();
  const v = new DataView(b.buffer);
  const set = (off: number, mode: number) =>
    v.setUint32(off, (v.getUint32(off, true) & ~0x700 & ~0x10000) | mode, true);
  set(LAPIC.LINT0, DM_EXTINT);
  set(LAPIC.LINT1, DM_NMI);
  return b;
}
