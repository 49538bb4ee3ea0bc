/**
 * Struct layouts against `<linux/kvm.h>` on x86-64. Expected numbers were printed by
 * `kvm/tools/kvm_layout.c` (gcc, Debian 12 linux-libc-dev); rerun it to regenerate.
 */

import { assertEquals } from "@std/assert";
import { IOCTL } from "./consts.ts";
import { decodeExit } from "./exit.ts";
import {
  CLOCK_DATA_SIZE,
  CPUID2_HEADER_SIZE,
  CPUID_ENTRY_OFFSETS,
  CPUID_ENTRY_SIZE,
  DEBUGREGS_SIZE,
  decodeCpuid,
  decodeDebugRegs,
  decodeFpu,
  decodeMsrs,
  decodeRegs,
  decodeSregs,
  decodeXcrs,
  DIRTY_LOG_SIZE,
  encodeClock,
  encodeCpuid,
  encodeDebugRegs,
  encodeFpu,
  encodeMsrs,
  encodeRegs,
  encodeSregs,
  encodeXcrs,
  FPU_OFFSETS,
  FPU_SIZE,
  IOEVENTFD_SIZE,
  IRQ_LEVEL_SIZE,
  IRQCHIP_DATA_OFFSET,
  IRQCHIP_SIZE,
  IRQFD_SIZE,
  LAPIC_SIZE,
  MEMORY_REGION_SIZE,
  MSR_ENTRY_SIZE,
  MSRS_HEADER_SIZE,
  PIT_CONFIG_SIZE,
  PIT_STATE2_SIZE,
  REG_NAMES,
  REGS_SIZE,
  RUN,
  SEGMENT_OFFSETS,
  SEGMENT_SIZE,
  SREGS_OFFSETS,
  SREGS_SIZE,
  VCPU_EVENTS_OFFSETS,
  VCPU_EVENTS_SIZE,
  XCRS_SIZE,
  XSAVE_SIZE,
} from "./structs.ts";

Deno.test("struct sizes match <linux/kvm.h>", () => {
  assertEquals(
    {
      REGS_SIZE,
      SEGMENT_SIZE,
      SREGS_SIZE,
      FPU_SIZE,
      MEMORY_REGION_SIZE,
      run: RUN.size,
      MSRS_HEADER_SIZE,
      MSR_ENTRY_SIZE,
      CPUID2_HEADER_SIZE,
      CPUID_ENTRY_SIZE,
      LAPIC_SIZE,
      XSAVE_SIZE,
      XCRS_SIZE,
      VCPU_EVENTS_SIZE,
      DEBUGREGS_SIZE,
      IRQCHIP_SIZE,
      IRQCHIP_DATA_OFFSET,
      PIT_STATE2_SIZE,
      PIT_CONFIG_SIZE,
      CLOCK_DATA_SIZE,
      IRQ_LEVEL_SIZE,
      IRQFD_SIZE,
      IOEVENTFD_SIZE,
      DIRTY_LOG_SIZE,
    },
    {
      REGS_SIZE: 144,
      SEGMENT_SIZE: 24,
      SREGS_SIZE: 312,
      FPU_SIZE: 416,
      MEMORY_REGION_SIZE: 32,
      run: 2352,
      MSRS_HEADER_SIZE: 8,
      MSR_ENTRY_SIZE: 16,
      CPUID2_HEADER_SIZE: 8,
      CPUID_ENTRY_SIZE: 40,
      LAPIC_SIZE: 1024,
      XSAVE_SIZE: 4096,
      XCRS_SIZE: 392,
      VCPU_EVENTS_SIZE: 64,
      DEBUGREGS_SIZE: 128,
      IRQCHIP_SIZE: 520,
      IRQCHIP_DATA_OFFSET: 8,
      PIT_STATE2_SIZE: 112,
      PIT_CONFIG_SIZE: 64,
      CLOCK_DATA_SIZE: 48,
      IRQ_LEVEL_SIZE: 8,
      IRQFD_SIZE: 32,
      IOEVENTFD_SIZE: 64,
      DIRTY_LOG_SIZE: 16,
    },
  );
});

Deno.test("kvm_segment, kvm_sregs and kvm_fpu field offsets match <linux/kvm.h>", () => {
  assertEquals(SEGMENT_OFFSETS, {
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
  });
  assertEquals(SREGS_OFFSETS, {
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
  });
  assertEquals(FPU_OFFSETS, {
    fpr: 0,
    fcw: 128,
    fsw: 130,
    ftwx: 132,
    lastOpcode: 134,
    lastIp: 136,
    lastDp: 144,
    xmm: 152,
    mxcsr: 408,
  });
  assertEquals(CPUID_ENTRY_OFFSETS, {
    function: 0,
    index: 4,
    flags: 8,
    eax: 12,
    ebx: 16,
    ecx: 20,
    edx: 24,
  });
  assertEquals(VCPU_EVENTS_OFFSETS, {
    exception: 0,
    interrupt: 8,
    nmi: 12,
    sipiVector: 16,
    flags: 20,
    smi: 24,
    tripleFault: 28,
    exceptionHasPayload: 55,
    exceptionPayload: 56,
  });
});

Deno.test("kvm_run exit union offsets match <linux/kvm.h>", () => {
  assertEquals(
    [RUN.immediateExit, RUN.exitReason, RUN.readyForInterruptInjection, RUN.ifFlag, RUN.cr8],
    [1, 8, 12, 13, 16],
  );
  assertEquals([RUN.ioDirection, RUN.ioSize, RUN.ioPort, RUN.ioCount, RUN.ioDataOffset], [
    32,
    33,
    34,
    36,
    40,
  ]);
  assertEquals([RUN.mmioPhysAddr, RUN.mmioData, RUN.mmioLen, RUN.mmioIsWrite], [32, 40, 48, 52]);
  assertEquals([RUN.internalSuberror, RUN.internalNdata, RUN.internalData], [32, 36, 40]);
  assertEquals([RUN.systemEventType, RUN.systemEventNdata, RUN.systemEventData], [32, 36, 40]);
  assertEquals([RUN.failEntryReason, RUN.failEntryCpu], [32, 40]);
});

Deno.test("ioctl numbers match the _IO* macros of <linux/kvm.h>", () => {
  const expected: Partial<Record<keyof typeof IOCTL, number>> = {
    KVM_CREATE_VM: 0xae01,
    KVM_RUN: 0xae80,
    KVM_GET_REGS: 0x8090ae81,
    KVM_SET_SREGS: 0x4138ae84,
    KVM_GET_SUPPORTED_CPUID: 0xc008ae05,
    KVM_SET_USER_MEMORY_REGION: 0x4020ae46,
    KVM_GET_IRQCHIP: 0xc208ae62,
    KVM_IRQFD: 0x4020ae76,
    KVM_IOEVENTFD: 0x4040ae79,
    KVM_GET_VCPU_EVENTS: 0x8040ae9f,
    KVM_GET_PIT2: 0x8070ae9f,
    KVM_GET_XSAVE: 0x9000aea4,
    KVM_GET_LAPIC: 0x8400ae8e,
    KVM_KVMCLOCK_CTRL: 0xaead,
  };
  for (const [k, v] of Object.entries(expected)) {
    assertEquals(IOCTL[k as keyof typeof IOCTL], v, k);
  }
  // The size field (bits 16..29) of each struct ioctl equals the struct size.
  const size = (n: number) => (n >>> 16) & 0x3fff;
  assertEquals(size(IOCTL.KVM_GET_REGS), REGS_SIZE);
  assertEquals(size(IOCTL.KVM_GET_SREGS), SREGS_SIZE);
  assertEquals(size(IOCTL.KVM_GET_FPU), FPU_SIZE);
  assertEquals(size(IOCTL.KVM_GET_LAPIC), LAPIC_SIZE);
  assertEquals(size(IOCTL.KVM_GET_XCRS), XCRS_SIZE);
  assertEquals(size(IOCTL.KVM_GET_DEBUGREGS), DEBUGREGS_SIZE);
  assertEquals(size(IOCTL.KVM_GET_VCPU_EVENTS), VCPU_EVENTS_SIZE);
  assertEquals(size(IOCTL.KVM_GET_PIT2), PIT_STATE2_SIZE);
  assertEquals(size(IOCTL.KVM_GET_CLOCK), CLOCK_DATA_SIZE);
  assertEquals(size(IOCTL.KVM_IOEVENTFD), IOEVENTFD_SIZE);
  assertEquals(size(IOCTL.KVM_IRQFD), IRQFD_SIZE);
  assertEquals(size(IOCTL.KVM_GET_IRQCHIP), IRQCHIP_SIZE);
  assertEquals(size(IOCTL.KVM_SET_USER_MEMORY_REGION), MEMORY_REGION_SIZE);
});

Deno.test("encodeRegs()/decodeRegs() place each register at 8*index and round-trip", () => {
  const r = decodeRegs(new Uint8Array(REGS_SIZE));
  REG_NAMES.forEach((n, i) => (r[n] = BigInt(i + 1) * 0x0101_0101_0101n));
  const b = encodeRegs(r);
  const v = new DataView(b.buffer);
  assertEquals(v.getBigUint64(128, true), 17n * 0x0101_0101_0101n, "rip at 128");
  assertEquals(v.getBigUint64(136, true), 18n * 0x0101_0101_0101n, "rflags at 136");
  assertEquals(decodeRegs(b), r);
});

Deno.test("encodeSregs()/decodeSregs() round-trip every field", () => {
  const b = new Uint8Array(SREGS_SIZE);
  for (let i = 0; i < b.length; i++) b[i] = (i * 7 + 3) & 0xff;
  // Padding bytes are not carried by the object; zero them to compare.
  for (let s = 0; s < 8; s++) b[s * 24 + 23] = 0;
  for (const o of [192, 208]) b.fill(0, o + 10, o + 16);
  assertEquals(encodeSregs(decodeSregs(b)), b);
});

Deno.test("encodeFpu()/decodeFpu(), msrs, cpuid, xcrs, debugregs and clock round-trip", () => {
  const f = decodeFpu(new Uint8Array(FPU_SIZE));
  f.fcw = 0x37f;
  f.mxcsr = 0x1f80;
  f.xmm[255] = 9;
  const fb = encodeFpu(f);
  assertEquals(new DataView(fb.buffer).getUint16(128, true), 0x37f);
  assertEquals(new DataView(fb.buffer).getUint32(408, true), 0x1f80);
  assertEquals(decodeFpu(fb), f);

  const msrs = [{ index: 0x2ff, data: 6n }, { index: 0xc0000080, data: 0x500n }];
  const mb = encodeMsrs(msrs);
  assertEquals(mb.byteLength, 8 + 32);
  assertEquals(decodeMsrs(mb, 2), msrs);

  const leaves = [{ function: 1, index: 0, flags: 0, eax: 1, ebx: 0x0100_0800, ecx: 3, edx: 4 }];
  assertEquals(decodeCpuid(encodeCpuid(leaves)), leaves);

  const x = { flags: 0, xcrs: [{ xcr: 0, value: 7n }] };
  assertEquals(decodeXcrs(encodeXcrs(x)), x);

  const d = {
    db: [1n, 2n, 3n, 4n] as [bigint, bigint, bigint, bigint],
    dr6: 5n,
    dr7: 6n,
    flags: 0n,
  };
  assertEquals(decodeDebugRegs(encodeDebugRegs(d)), d);

  const c = encodeClock({ clock: 123n, flags: 2, realtime: 0n, hostTsc: 0n });
  assertEquals(new DataView(c.buffer).getBigUint64(0, true), 123n);
});

Deno.test("decodeExit() reads io, mmio, internal error and system event exits", () => {
  const run = new Uint8Array(3 * 4096); // KVM_GET_VCPU_MMAP_SIZE on x86: io data on page 1
  const dv = new DataView(run.buffer);
  dv.setUint32(8, 2, true); // KVM_EXIT_IO
  dv.setUint8(32, 1); // out
  dv.setUint8(33, 2);
  dv.setUint16(34, 0x3f8, true);
  dv.setUint32(36, 1, true);
  dv.setBigUint64(40, 0x1000n, true);
  run[0x1000] = 0x41;
  run[0x1001] = 0x42;
  const io = decodeExit(run, dv);
  assertEquals(io.kind, "io_out");
  if (io.kind === "io_out") {
    assertEquals([io.port, io.size, [...io.data]], [0x3f8, 2, [0x41, 0x42]]);
  }

  dv.setBigUint64(40, 0xfffn * 0x1000n, true); // data offset beyond the page: refused
  assertEquals(decodeExit(run, dv).kind, "other");

  dv.setUint32(8, 6, true); // KVM_EXIT_MMIO
  dv.setBigUint64(32, 0xd0000010n, true);
  dv.setUint32(48, 4, true);
  dv.setUint8(52, 0);
  const mm = decodeExit(run, dv);
  assertEquals(mm.kind === "mmio_read" && [mm.addr, mm.len, mm.data.byteOffset], [
    0xd0000010,
    4,
    40,
  ]);

  dv.setUint32(8, 17, true); // KVM_EXIT_INTERNAL_ERROR
  dv.setUint32(32, 1, true);
  dv.setUint32(36, 2, true);
  dv.setBigUint64(40, 0xdeadn, true);
  dv.setBigUint64(48, 0xbeefn, true);
  assertEquals(decodeExit(run, dv), {
    kind: "internal_error",
    suberror: 1,
    data: [0xdeadn, 0xbeefn],
  });

  dv.setUint32(8, 24, true); // KVM_EXIT_SYSTEM_EVENT
  dv.setUint32(32, 2, true);
  dv.setUint32(36, 0, true);
  assertEquals(decodeExit(run, dv), { kind: "system_event", type: 2, data: [] });
});
