/**
 * TypeScript mirrors of the KVM C structs (x86-64): each has a `*_SIZE`, an offset table
 * checked against `<linux/kvm.h>` by `structs_test.ts`, and an encode/decode pair between
 * bytes and a plain object. 64-bit fields are `bigint`.
 *
 * @module
 */

/** Register names of `struct kvm_regs`, in layout order (8 bytes each). */
export const REG_NAMES = [
  "rax",
  "rbx",
  "rcx",
  "rdx",
  "rsi",
  "rdi",
  "rsp",
  "rbp",
  "r8",
  "r9",
  "r10",
  "r11",
  "r12",
  "r13",
  "r14",
  "r15",
  "rip",
  "rflags",
] as const;

/** `struct kvm_regs`. */
export type Regs = { [K in (typeof REG_NAMES)[number]]: bigint };
/** `sizeof(struct kvm_regs)`. */
export const REGS_SIZE = 144;

/** Decodes `struct kvm_regs`. */
export function decodeRegs(b: Uint8Array): Regs {
  const v = view(b, REGS_SIZE);
  const r = {} as Regs;
  REG_NAMES.forEach((n, i) => (r[n] = v.getBigUint64(i * 8, true)));
  return r;
}

/** Encodes `struct kvm_regs`. */
export function encodeRegs(r: Regs): Uint8Array {
  const b = new Uint8Array(REGS_SIZE);
  const v = view(b, REGS_SIZE);
  REG_NAMES.forEach((n, i) => v.setBigUint64(i * 8, BigInt.asUintN(64, r[n]), true));
  return b;
}

/** `struct kvm_segment`. */
export interface Segment {
  /** `base`: the segment's base address. */
  base: bigint;
  /** `limit`: the segment limit in bytes (granularity already applied). */
  limit: number;
  /** `selector`: the selector loaded in the segment register. */
  selector: number;
  /** `type`: the 4-bit descriptor type (e.g. 0xb: code, execute/read, accessed). */
  type: number;
  /** `present`: the P bit (1 = present). */
  present: number;
  /** `dpl`: the descriptor privilege level, 0 to 3. */
  dpl: number;
  /** `db`: the D/B bit (1 = 32-bit default operand size). */
  db: number;
  /** `s`: the S bit (1 = code or data, 0 = system segment). */
  s: number;
  /** `l`: the L bit (1 = 64-bit code segment). */
  l: number;
  /** `g`: the G bit (1 = limit counted in 4 KiB units in the descriptor). */
  g: number;
  /** `avl`: the AVL bit, free for software. */
  avl: number;
  /** `unusable`: KVM's flag for a segment register that holds no usable segment. */
  unusable: number;
}
/** `sizeof(struct kvm_segment)`. */
export const SEGMENT_SIZE = 24;
/** Byte offsets in `struct kvm_segment`. */
export const SEGMENT_OFFSETS = {
  base: 0,
  limit: 8,
  selector: 12,
  type: 14,
  present: 15,
  dpl: 16,
  db: 17,
  s: 18,
  l: 19,
  g: 20,
  avl: 21,
  unusable: 22,
} as const;
const SEG_BYTES = ["type", "present", "dpl", "db", "s", "l", "g", "avl", "unusable"] as const;

function decodeSegment(v: DataView, o: number): Segment {
  const s = {
    base: v.getBigUint64(o, true),
    limit: v.getUint32(o + 8, true),
    selector: v.getUint16(o + 12, true),
  } as Segment;
  for (const k of SEG_BYTES) s[k] = v.getUint8(o + SEGMENT_OFFSETS[k]);
  return s;
}

function encodeSegment(v: DataView, o: number, s: Segment): void {
  v.setBigUint64(o, BigInt.asUintN(64, s.base), true);
  v.setUint32(o + 8, s.limit >>> 0, true);
  v.setUint16(o + 12, s.selector & 0xffff, true);
  for (const k of SEG_BYTES) v.setUint8(o + SEGMENT_OFFSETS[k], s[k] & 0xff);
}

/** `struct kvm_dtable`. */
export interface DTable {
  /** `base`: the table's linear address. */
  base: bigint;
  /** `limit`: the table's size in bytes minus one, as LGDT/LIDT take it. */
  limit: number;
}

/** `struct kvm_sregs`. */
export interface Sregs {
  /** `cs`: the code segment. */
  cs: Segment;
  /** `ds`: the data segment. */
  ds: Segment;
  /** `es`: an extra data segment. */
  es: Segment;
  /** `fs`: an extra data segment (thread-local storage in 64-bit code). */
  fs: Segment;
  /** `gs`: an extra data segment (per-CPU data in the Linux kernel). */
  gs: Segment;
  /** `ss`: the stack segment. */
  ss: Segment;
  /** `tr`: the task register (the TSS). */
  tr: Segment;
  /** `ldt`: the local descriptor table register. */
  ldt: Segment;
  /** `gdt`: the global descriptor table register. */
  gdt: DTable;
  /** `idt`: the interrupt descriptor table register. */
  idt: DTable;
  /** `cr0`: control register 0 (PE, PG, ...). */
  cr0: bigint;
  /** `cr2`: the page-fault linear address. */
  cr2: bigint;
  /** `cr3`: the page table root. */
  cr3: bigint;
  /** `cr4`: control register 4 (PAE, ...). */
  cr4: bigint;
  /** `cr8`: the task priority (the local APIC's TPR bits 7:4). */
  cr8: bigint;
  /** `efer`: the IA32_EFER MSR (LME, LMA, NXE, SCE). */
  efer: bigint;
  /** `apic_base`: the IA32_APIC_BASE MSR. */
  apicBase: bigint;
  /** `interrupt_bitmap`: an external interrupt pending injection, one bit per vector 0-255. */
  interruptBitmap: [bigint, bigint, bigint, bigint];
}
/** `sizeof(struct kvm_sregs)`. */
export const SREGS_SIZE = 312;
const SEG_NAMES = ["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"] as const;
const CR_NAMES = ["cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apicBase"] as const;
/** Byte offsets in `struct kvm_sregs`. */
export const SREGS_OFFSETS = {
  cs: 0,
  ds: 24,
  es: 48,
  fs: 72,
  gs: 96,
  ss: 120,
  tr: 144,
  ldt: 168,
  gdt: 192,
  idt: 208,
  cr0: 224,
  cr2: 232,
  cr3: 240,
  cr4: 248,
  cr8: 256,
  efer: 264,
  apicBase: 272,
  interruptBitmap: 280,
} as const;

/** Decodes `struct kvm_sregs`. */
export function decodeSregs(b: Uint8Array): Sregs {
  const v = view(b, SREGS_SIZE);
  const s = {} as Sregs;
  for (const n of SEG_NAMES) s[n] = decodeSegment(v, SREGS_OFFSETS[n]);
  for (const n of ["gdt", "idt"] as const) {
    const o = SREGS_OFFSETS[n];
    s[n] = { base: v.getBigUint64(o, true), limit: v.getUint16(o + 8, true) };
  }
  for (const n of CR_NAMES) s[n] = v.getBigUint64(SREGS_OFFSETS[n], true);
  const ib = SREGS_OFFSETS.interruptBitmap;
  s.interruptBitmap = [0, 1, 2, 3].map((i) => v.getBigUint64(ib + i * 8, true)) as [
    bigint,
    bigint,
    bigint,
    bigint,
  ];
  return s;
}

/** Encodes `struct kvm_sregs`. */
export function encodeSregs(s: Sregs): Uint8Array {
  const b = new Uint8Array(SREGS_SIZE);
  const v = view(b, SREGS_SIZE);
  for (const n of SEG_NAMES) encodeSegment(v, SREGS_OFFSETS[n], s[n]);
  for (const n of ["gdt", "idt"] as const) {
    const o = SREGS_OFFSETS[n];
    v.setBigUint64(o, BigInt.asUintN(64, s[n].base), true);
    v.setUint16(o + 8, s[n].limit & 0xffff, true);
  }
  for (const n of CR_NAMES) v.setBigUint64(SREGS_OFFSETS[n], BigInt.asUintN(64, s[n]), true);
  s.interruptBitmap.forEach((x, i) =>
    v.setBigUint64(SREGS_OFFSETS.interruptBitmap + i * 8, x, true)
  );
  return b;
}

/** `struct kvm_fpu`: x87 registers as 8 × 16 bytes, SSE registers as 16 × 16 bytes. */
export interface Fpu {
  /** `fpr`: the x87/MMX registers ST0-ST7, 16 bytes each (128 bytes). */
  fpr: Uint8Array;
  /** `fcw`: the x87 control word. */
  fcw: number;
  /** `fsw`: the x87 status word. */
  fsw: number;
  /** `ftwx`: the x87 tag word, abridged to one bit per register (FXSAVE format). */
  ftwx: number;
  /** `last_opcode`: the opcode of the last x87 instruction (FOP). */
  lastOpcode: number;
  /** `last_ip`: the address of the last x87 instruction. */
  lastIp: bigint;
  /** `last_dp`: the address of the last x87 memory operand. */
  lastDp: bigint;
  /** `xmm`: the SSE registers XMM0-XMM15, 16 bytes each (256 bytes). */
  xmm: Uint8Array;
  /** `mxcsr`: the SSE control and status register. */
  mxcsr: number;
}
/** `sizeof(struct kvm_fpu)`. */
export const FPU_SIZE = 416;
/** Byte offsets in `struct kvm_fpu`. */
export const FPU_OFFSETS = {
  fpr: 0,
  fcw: 128,
  fsw: 130,
  ftwx: 132,
  lastOpcode: 134,
  lastIp: 136,
  lastDp: 144,
  xmm: 152,
  mxcsr: 408,
} as const;

/** Decodes `struct kvm_fpu`. */
export function decodeFpu(b: Uint8Array): Fpu {
  const v = view(b, FPU_SIZE);
  const o = FPU_OFFSETS;
  return {
    fpr: b.slice(o.fpr, o.fpr + 128),
    fcw: v.getUint16(o.fcw, true),
    fsw: v.getUint16(o.fsw, true),
    ftwx: v.getUint8(o.ftwx),
    lastOpcode: v.getUint16(o.lastOpcode, true),
    lastIp: v.getBigUint64(o.lastIp, true),
    lastDp: v.getBigUint64(o.lastDp, true),
    xmm: b.slice(o.xmm, o.xmm + 256),
    mxcsr: v.getUint32(o.mxcsr, true),
  };
}

/** Encodes `struct kvm_fpu`. */
export function encodeFpu(f: Fpu): Uint8Array {
  const b = new Uint8Array(FPU_SIZE);
  const v = view(b, FPU_SIZE);
  const o = FPU_OFFSETS;
  b.set(f.fpr.subarray(0, 128), o.fpr);
  v.setUint16(o.fcw, f.fcw, true);
  v.setUint16(o.fsw, f.fsw, true);
  v.setUint8(o.ftwx, f.ftwx);
  v.setUint16(o.lastOpcode, f.lastOpcode, true);
  v.setBigUint64(o.lastIp, f.lastIp, true);
  v.setBigUint64(o.lastDp, f.lastDp, true);
  b.set(f.xmm.subarray(0, 256), o.xmm);
  v.setUint32(o.mxcsr, f.mxcsr, true);
  return b;
}

/** One MSR: `struct kvm_msr_entry` (16 bytes: index, reserved, data). */
export interface MsrEntry {
  /** `index`: the MSR number (what RDMSR takes in ECX). */
  index: number;
  /** `data`: the MSR's 64-bit value. */
  data: bigint;
}
/** Bytes of `struct kvm_msrs` before its entries (`nmsrs` and padding). */
export const MSRS_HEADER_SIZE = 8;
/** `sizeof(struct kvm_msr_entry)`. */
export const MSR_ENTRY_SIZE = 16;

/** Encodes `struct kvm_msrs` with its entries. */
export function encodeMsrs(entries: readonly MsrEntry[]): Uint8Array {
  const b = new Uint8Array(MSRS_HEADER_SIZE + MSR_ENTRY_SIZE * entries.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, entries.length, true);
  entries.forEach((e, i) => {
    const o = MSRS_HEADER_SIZE + i * MSR_ENTRY_SIZE;
    v.setUint32(o, e.index >>> 0, true);
    v.setBigUint64(o + 8, BigInt.asUintN(64, e.data), true);
  });
  return b;
}

/** Decodes the first `count` entries of `struct kvm_msrs`. */
export function decodeMsrs(b: Uint8Array, count: number): MsrEntry[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out: MsrEntry[] = [];
  for (let i = 0; i < count; i++) {
    const o = MSRS_HEADER_SIZE + i * MSR_ENTRY_SIZE;
    out.push({ index: v.getUint32(o, true), data: v.getBigUint64(o + 8, true) });
  }
  return out;
}

/** One CPUID leaf: `struct kvm_cpuid_entry2` (40 bytes). */
export interface CpuidEntry {
  /** `function`: the leaf (CPUID's EAX input). */
  function: number;
  /** `index`: the subleaf (CPUID's ECX input), where the leaf has subleaves. */
  index: number;
  /** `flags`: `KVM_CPUID_FLAG_*` bits; bit 0 says `index` is significant. */
  flags: number;
  /** `eax`: the EAX output. */
  eax: number;
  /** `ebx`: the EBX output. */
  ebx: number;
  /** `ecx`: the ECX output. */
  ecx: number;
  /** `edx`: the EDX output. */
  edx: number;
}
/** Bytes of `struct kvm_cpuid2` before its entries (`nent` and padding). */
export const CPUID2_HEADER_SIZE = 8;
/** `sizeof(struct kvm_cpuid_entry2)`. */
export const CPUID_ENTRY_SIZE = 40;
/** Byte offsets in `struct kvm_cpuid_entry2`. */
export const CPUID_ENTRY_OFFSETS = {
  function: 0,
  index: 4,
  flags: 8,
  eax: 12,
  ebx: 16,
  ecx: 20,
  edx: 24,
} as const;
const CPUID_FIELDS = Object.keys(CPUID_ENTRY_OFFSETS) as (keyof CpuidEntry)[];

/** Encodes `struct kvm_cpuid2` with its entries. */
export function encodeCpuid(entries: readonly CpuidEntry[]): Uint8Array {
  const b = new Uint8Array(CPUID2_HEADER_SIZE + CPUID_ENTRY_SIZE * entries.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, entries.length, true);
  entries.forEach((e, i) => {
    const o = CPUID2_HEADER_SIZE + i * CPUID_ENTRY_SIZE;
    for (const f of CPUID_FIELDS) v.setUint32(o + CPUID_ENTRY_OFFSETS[f], e[f] >>> 0, true);
  });
  return b;
}

/** Decodes `struct kvm_cpuid2` (entry count from its `nent`). */
export function decodeCpuid(b: Uint8Array): CpuidEntry[] {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = v.getUint32(0, true);
  const out: CpuidEntry[] = [];
  for (let i = 0; i < n; i++) {
    const o = CPUID2_HEADER_SIZE + i * CPUID_ENTRY_SIZE;
    const e = {} as CpuidEntry;
    for (const f of CPUID_FIELDS) e[f] = v.getUint32(o + CPUID_ENTRY_OFFSETS[f], true);
    out.push(e);
  }
  return out;
}

/** `struct kvm_lapic_state`: the 1 KiB local APIC register page. */
export const LAPIC_SIZE = 1024;
/** `struct kvm_xsave` (the legacy 4 KiB form; `KVM_GET_XSAVE2` may need more). */
export const XSAVE_SIZE = 4096;

/** `struct kvm_xcrs`: up to 16 extended control registers. */
export interface Xcrs {
  /** `flags`: none are defined; 0. */
  flags: number;
  /** `xcrs[nr_xcrs]`: each register's number (`xcr`, 0 for XCR0) and value. */
  xcrs: { xcr: number; value: bigint }[];
}
/** `sizeof(struct kvm_xcrs)`. */
export const XCRS_SIZE = 392;
const XCRS_MAX = 16;

/** Decodes `struct kvm_xcrs`. */
export function decodeXcrs(b: Uint8Array): Xcrs {
  const v = view(b, XCRS_SIZE);
  const n = Math.min(v.getUint32(0, true), XCRS_MAX);
  const xcrs = [];
  for (let i = 0; i < n; i++) {
    xcrs.push({ xcr: v.getUint32(8 + i * 16, true), value: v.getBigUint64(16 + i * 16, true) });
  }
  return { flags: v.getUint32(4, true), xcrs };
}

/** Encodes `struct kvm_xcrs`. */
export function encodeXcrs(x: Xcrs): Uint8Array {
  if (x.xcrs.length > XCRS_MAX) {
    throw new RangeError(`Cannot encode xcrs: ${x.xcrs.length} entries exceed ${XCRS_MAX}`);
  }
  const b = new Uint8Array(XCRS_SIZE);
  const v = view(b, XCRS_SIZE);
  v.setUint32(0, x.xcrs.length, true);
  v.setUint32(4, x.flags, true);
  x.xcrs.forEach((e, i) => {
    v.setUint32(8 + i * 16, e.xcr, true);
    v.setBigUint64(16 + i * 16, e.value, true);
  });
  return b;
}

/** `struct kvm_vcpu_events` is kept as its 64 raw bytes; these are its field offsets. */
export const VCPU_EVENTS_SIZE = 64;
/** Byte offsets in `struct kvm_vcpu_events` (its sub-structs and fields). */
export const VCPU_EVENTS_OFFSETS = {
  exception: 0,
  interrupt: 8,
  nmi: 12,
  sipiVector: 16,
  flags: 20,
  smi: 24,
  tripleFault: 28,
  exceptionHasPayload: 55,
  exceptionPayload: 56,
} as const;

/** `struct kvm_debugregs`. */
export interface DebugRegs {
  /** `db`: the breakpoint address registers DR0-DR3. */
  db: [bigint, bigint, bigint, bigint];
  /** `dr6`: the debug status register. */
  dr6: bigint;
  /** `dr7`: the debug control register. */
  dr7: bigint;
  /** `flags`: none are defined; 0. */
  flags: bigint;
}
/** `sizeof(struct kvm_debugregs)`. */
export const DEBUGREGS_SIZE = 128;

/** Decodes `struct kvm_debugregs`. */
export function decodeDebugRegs(b: Uint8Array): DebugRegs {
  const v = view(b, DEBUGREGS_SIZE);
  const q = (o: number) => v.getBigUint64(o, true);
  return { db: [q(0), q(8), q(16), q(24)], dr6: q(32), dr7: q(40), flags: q(48) };
}

/** Encodes `struct kvm_debugregs`. */
export function encodeDebugRegs(d: DebugRegs): Uint8Array {
  const b = new Uint8Array(DEBUGREGS_SIZE);
  const v = view(b, DEBUGREGS_SIZE);
  d.db.forEach((x, i) => v.setBigUint64(i * 8, x, true));
  v.setBigUint64(32, d.dr6, true);
  v.setBigUint64(40, d.dr7, true);
  v.setBigUint64(48, d.flags, true);
  return b;
}

/** `struct kvm_irqchip`: chip id then 512 bytes of PIC or IOAPIC state. */
export const IRQCHIP_SIZE = 520;
/** Offset of the `chip` union (the PIC or IOAPIC state) in `struct kvm_irqchip`. */
export const IRQCHIP_DATA_OFFSET = 8;
/** `struct kvm_pit_state2`: three 24-byte channels then flags. */
export const PIT_STATE2_SIZE = 112;
/** `struct kvm_pit_config`. */
export const PIT_CONFIG_SIZE = 64;

/** `struct kvm_clock_data`. */
export interface ClockData {
  /** `clock`: the guest's kvmclock time, in ns. */
  clock: bigint;
  /** `flags`: `KVM_CLOCK_*` bits, e.g. which of the fields below are valid. */
  flags: number;
  /** `realtime`: the host's CLOCK_REALTIME in ns at that moment (with KVM_CLOCK_REALTIME). */
  realtime: bigint;
  /** `host_tsc`: the host's TSC at that moment (with KVM_CLOCK_HOST_TSC). */
  hostTsc: bigint;
}
/** `sizeof(struct kvm_clock_data)`. */
export const CLOCK_DATA_SIZE = 48;

/** Decodes `struct kvm_clock_data`. */
export function decodeClock(b: Uint8Array): ClockData {
  const v = view(b, CLOCK_DATA_SIZE);
  return {
    clock: v.getBigUint64(0, true),
    flags: v.getUint32(8, true),
    realtime: v.getBigUint64(16, true),
    hostTsc: v.getBigUint64(24, true),
  };
}

/** Encodes `struct kvm_clock_data`; only `clock` and `flags` are read by KVM_SET_CLOCK. */
export function encodeClock(c: ClockData): Uint8Array {
  const b = new Uint8Array(CLOCK_DATA_SIZE);
  const v = view(b, CLOCK_DATA_SIZE);
  v.setBigUint64(0, c.clock, true);
  v.setUint32(8, c.flags, true);
  v.setBigUint64(16, c.realtime, true);
  v.setBigUint64(24, c.hostTsc, true);
  return b;
}

/** `struct kvm_userspace_memory_region`. */
export const MEMORY_REGION_SIZE = 32;
/** `struct kvm_irqfd`. */
export const IRQFD_SIZE = 32;
/** `struct kvm_ioeventfd`. */
export const IOEVENTFD_SIZE = 64;
/** `struct kvm_irq_level`. */
export const IRQ_LEVEL_SIZE = 8;
/** `struct kvm_dirty_log`. */
export const DIRTY_LOG_SIZE = 16;

/** Offsets inside `struct kvm_run` (the page shared with KVM for each vCPU). */
export const RUN = {
  requestInterruptWindow: 0,
  immediateExit: 1,
  exitReason: 8,
  readyForInterruptInjection: 12,
  ifFlag: 13,
  flags: 14,
  cr8: 16,
  apicBase: 24,
  /** Start of the exit-specific union. */
  exit: 32,
  ioDirection: 32,
  ioSize: 33,
  ioPort: 34,
  ioCount: 36,
  ioDataOffset: 40,
  mmioPhysAddr: 32,
  mmioData: 40,
  mmioLen: 48,
  mmioIsWrite: 52,
  failEntryReason: 32,
  failEntryCpu: 40,
  internalSuberror: 32,
  internalNdata: 36,
  internalData: 40,
  systemEventType: 32,
  systemEventNdata: 36,
  systemEventData: 40,
  exException: 32,
  exErrorCode: 36,
  size: 2352,
} as const;

function view(b: Uint8Array, size: number): DataView {
  if (b.byteLength < size) {
    throw new RangeError(`Cannot decode struct: ${b.byteLength} bytes, need ${size}`);
  }
  return new DataView(b.buffer, b.byteOffset, size);
}
