/**
 * Per-vCPU setup for a Linux guest: CPUID from KVM_GET_SUPPORTED_CPUID with this vCPU's
 * APIC id and the topology leaves, the hypervisor and KVM leaves; the MSRs Linux expects
 * at entry; FPU defaults.
 *
 * @module
 */

import type { CpuidEntry, Fpu, MsrEntry } from "@denovm/deno-kvm-ffi";

const HYPERVISOR_BIT = 1 << 31, HTT_BIT = 1 << 28, TSC_DEADLINE_BIT = 1 << 24;
const KVM_SIGNATURE = [0x4b4d564b, 0x564b4d56, 0x0000004d]; // "KVMKVMKVM\0\0\0" as EBX, ECX, EDX

function leaf(entries: CpuidEntry[], fn: number, index = 0): CpuidEntry | undefined {
  return entries.find((e) => e.function === fn && e.index === index);
}

/** Options of {@link cpuidFor}. */
export interface CpuidOptions {
  /**
   * KVM emulates the LAPIC's TSC-deadline timer (KVM_CAP_TSC_DEADLINE_TIMER): say so in
   * leaf 1, which KVM_GET_SUPPORTED_CPUID leaves to the VMM. Linux then needs no LAPIC
   * timer calibration.
   */
  tscDeadline?: boolean;
}

/** The XSAVE features (XCR0 bits) leaf 0xD offers, after {@link cpuidFor}'s checks. */
export function offeredXcr0(entries: readonly CpuidEntry[]): bigint {
  const l = leaf(entries as CpuidEntry[], 0xd, 0);
  return l ? BigInt(l.eax >>> 0) | (BigInt(l.edx >>> 0) << 32n) : 0n;
}

/**
 * The standard-format XSAVE area size for features `xcr0`: the legacy area and header
 * (576 bytes), and each extended feature at the offset its leaf 0xD subleaf gives.
 */
export function xsaveSize(entries: readonly CpuidEntry[], xcr0: bigint): number {
  let size = 576;
  for (let i = 2; i < 63; i++) {
    if (!(xcr0 & (1n << BigInt(i)))) continue;
    const sub = leaf(entries as CpuidEntry[], 0xd, i);
    if (sub) size = Math.max(size, sub.ebx + sub.eax);
  }
  return size;
}

/**
 * Leaf 0xD made consistent with itself: a user feature is offered only with a subleaf
 * that gives it a size and an offset past the legacy area (else the guest kernel warns
 * "XSAVE consistency problem", or worse); supervisor features (XSS, in subleaf 1's
 * ECX/EDX) are left as KVM says. EBX and ECX of subleaf 0 become the size for all the
 * offered features, which is what XCR0 holds once the guest (or {@link bootXcr0}) sets it.
 */
function fixXsaveLeaf(out: CpuidEntry[]): void {
  const l0 = leaf(out, 0xd, 0);
  if (!l0) return;
  let mask = offeredXcr0(out);
  for (let i = 2; i < 63; i++) {
    const bit = 1n << BigInt(i);
    if (!(mask & bit)) continue;
    const sub = leaf(out, 0xd, i);
    if (!sub || sub.eax === 0 || sub.ebx < 576) mask &= ~bit;
  }
  // AVX-512's three parts go together, as XSETBV requires.
  const avx512 = 0xe0n;
  if ((mask & avx512) !== avx512) mask &= ~avx512;
  l0.eax = Number(mask & 0xffff_ffffn) >>> 0;
  l0.edx = Number(mask >> 32n) >>> 0;
  l0.ebx = l0.ecx = xsaveSize(out, mask);
}

/**
 * XCR0 for a vCPU at boot: every feature the (fixed) leaf 0xD offers. Set before the guest
 * runs, so the size KVM reports in leaf 0xD matches what the kernel computes from the
 * subleaves once it enables the same features (KVM refreshes that size only when XCR0
 * changes in some bits; the kernel's own XSETBV of the same value changes none).
 */
export function bootXcr0(entries: readonly CpuidEntry[]): bigint {
  return offeredXcr0(entries) | 1n; // x87 is always on
}

/** The CPUID leaves for vCPU `id` of `cpus`, derived from what KVM supports. */
export function cpuidFor(
  supported: readonly CpuidEntry[],
  id: number,
  cpus: number,
  opts: CpuidOptions = {},
): CpuidEntry[] {
  const out = supported.map((e) => ({ ...e }));
  const shift = Math.max(0, Math.ceil(Math.log2(cpus)));
  const l1 = leaf(out, 1);
  if (l1) {
    l1.ebx = ((l1.ebx & 0x0000_ffff) | ((cpus & 0xff) << 16) | ((id & 0xff) << 24)) >>> 0;
    l1.ecx = (l1.ecx | HYPERVISOR_BIT | (opts.tscDeadline ? TSC_DEADLINE_BIT : 0)) >>> 0;
    l1.edx = cpus > 1 ? (l1.edx | HTT_BIT) >>> 0 : (l1.edx & ~HTT_BIT) >>> 0;
  }
  for (const fn of [0xb, 0x1f]) {
    for (const e of out.filter((x) => x.function === fn)) {
      e.edx = id; // x2APIC id
      if (e.index === 0) {
        e.eax = 0;
        e.ebx = 1;
        e.ecx = (1 << 8) | 0; // SMT level
      } else if (e.index === 1) {
        e.eax = shift;
        e.ebx = cpus;
        e.ecx = (2 << 8) | 1; // core level
      } else {
        e.eax = e.ebx = 0;
        e.ecx = e.index;
      }
    }
  }
  for (const e of out.filter((x) => x.function === 4)) {
    e.eax = ((e.eax & 0x03ff_ffff) | (((cpus - 1) & 0x3f) << 26)) >>> 0; // cores per package - 1
  }
  fixXsaveLeaf(out);
  const amd = leaf(out, 0x8000_0008);
  if (amd) amd.ecx = ((amd.ecx & ~0xff) | ((cpus - 1) & 0xff)) >>> 0;
  const hv = leaf(out, 0x4000_0000);
  if (hv) {
    hv.ebx = KVM_SIGNATURE[0]!;
    hv.ecx = KVM_SIGNATURE[1]!;
    hv.edx = KVM_SIGNATURE[2]!;
    hv.eax = Math.max(hv.eax, 0x4000_0001);
  } else {
    out.push({
      function: 0x4000_0000,
      index: 0,
      flags: 0,
      eax: 0x4000_0001,
      ebx: KVM_SIGNATURE[0]!,
      ecx: KVM_SIGNATURE[1]!,
      edx: KVM_SIGNATURE[2]!,
    });
  }
  return out;
}

/** MSR indices. */
export const MSR = {
  TSC: 0x10,
  SYSENTER_CS: 0x174,
  SYSENTER_ESP: 0x175,
  SYSENTER_EIP: 0x176,
  MISC_ENABLE: 0x1a0,
  MTRR_DEF_TYPE: 0x2ff,
  STAR: 0xc000_0081,
  LSTAR: 0xc000_0082,
  CSTAR: 0xc000_0083,
  SYSCALL_MASK: 0xc000_0084,
  KERNEL_GS_BASE: 0xc000_0102,
} as const;

/** The MSRs at boot: syscall/sysenter cleared, fast strings on, MTRRs enabled with WB default. */
export function bootMsrs(): MsrEntry[] {
  return [
    { index: MSR.SYSENTER_CS, data: 0n },
    { index: MSR.SYSENTER_ESP, data: 0n },
    { index: MSR.SYSENTER_EIP, data: 0n },
    { index: MSR.STAR, data: 0n },
    { index: MSR.CSTAR, data: 0n },
    { index: MSR.KERNEL_GS_BASE, data: 0n },
    { index: MSR.SYSCALL_MASK, data: 0n },
    { index: MSR.LSTAR, data: 0n },
    { index: MSR.TSC, data: 0n },
    { index: MSR.MISC_ENABLE, data: 1n }, // fast string operations
    { index: MSR.MTRR_DEF_TYPE, data: 0x806n }, // MTRRs on, default write-back
  ];
}

/** FPU state at reset as Linux expects it (FCW 0x37f; MXCSR 0x1f80 is KVM's reset value). */
export function bootFpu(base: Fpu): Fpu {
  return { ...base, fcw: 0x37f, mxcsr: 0x1f80 };
}
