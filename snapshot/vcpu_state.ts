/**
 * A vCPU's full state for snapshots, and the order KVM needs: on save, MP state first and
 * vCPU events last; on restore, CPUID, MP state, regs, sregs, xsave, xcrs, debug regs,
 * then the LAPIC (after sregs, which set the APIC base), then MSRs (after the LAPIC, for
 * TSC deadline), and vCPU events last (after regs). {@link validateVcpuState} checks
 * untrusted state before a single ioctl runs.
 *
 * @module
 */

import {
  type CpuidEntry,
  type DebugRegs,
  DEBUGREGS_SIZE,
  LAPIC_SIZE,
  type MsrEntry,
  REG_NAMES,
  type Regs,
  type Sregs,
  type Vcpu,
  VCPU_EVENTS_SIZE,
  type Xcrs,
  XSAVE_SIZE,
} from "@denovm/deno-kvm-ffi";
import { SnapshotError } from "./format.ts";

/** Everything KVM keeps for one vCPU (what a snapshot saves and a restore sets). */
export interface VcpuState {
  /** The vCPU's index in its VM. */
  id: number;
  /** `KVM_GET_MP_STATE` (runnable, halted, waiting for INIT/SIPI...). */
  mpState: number;
  /** General registers. */
  regs: Regs;
  /** Segment, control and descriptor-table registers. */
  sregs: Sregs;
  /** `KVM_GET_XSAVE`: the FPU, SSE and AVX state, as KVM lays it out. */
  xsave: Uint8Array;
  /** Extended control registers (XCR0). */
  xcrs: Xcrs;
  /** The local APIC's registers (`kvm_lapic_state`). */
  lapic: Uint8Array;
  /** The model-specific registers KVM lists and this vCPU could read. */
  msrs: MsrEntry[];
  /** Debug registers. */
  debugRegs: DebugRegs;
  /** The CPUID the vCPU was given. */
  cpuid: CpuidEntry[];
  /** Pending exceptions, interrupts and NMIs (`kvm_vcpu_events`). */
  events: Uint8Array;
}

/** The MSRs of `candidates` this vCPU can read (KVM lists some it cannot always return). */
export function readableMsrs(vcpu: Vcpu, candidates: readonly number[]): number[] {
  return candidates.filter((i) => {
    try {
      vcpu.getMsrs([i]);
      return true;
    } catch {
      return false;
    }
  });
}

/** Reads the state in KVM's save order (MP state first, events last). */
export function saveVcpu(vcpu: Vcpu, msrs: readonly number[]): VcpuState {
  const mpState = vcpu.getMpState();
  const regs = vcpu.getRegs();
  const sregs = vcpu.getSregs();
  const xsave = vcpu.getXsave();
  const xcrs = vcpu.getXcrs();
  const lapic = vcpu.getLapic();
  const msrEntries = vcpu.getMsrs(msrs);
  const debugRegs = vcpu.getDebugRegs();
  const cpuid = vcpu.getCpuid2();
  const events = vcpu.getVcpuEvents();
  return {
    id: vcpu.id,
    mpState,
    regs,
    sregs,
    xsave,
    xcrs,
    lapic,
    msrs: msrEntries,
    debugRegs,
    cpuid,
    events,
  };
}

/** Writes the state in KVM's restore order. */
export function restoreVcpu(vcpu: Vcpu, s: VcpuState): void {
  if (s.cpuid.length) vcpu.setCpuid2(s.cpuid);
  vcpu.setMpState(s.mpState);
  vcpu.setRegs(s.regs);
  vcpu.setSregs(s.sregs);
  vcpu.setXsave(s.xsave);
  vcpu.setXcrs(s.xcrs);
  vcpu.setDebugRegs(s.debugRegs);
  vcpu.setLapic(s.lapic);
  if (s.msrs.length) vcpu.setMsrs(s.msrs);
  vcpu.setVcpuEvents(s.events);
}

const u32 = (v: unknown) =>
  typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xffff_ffff;
const u64 = (v: unknown) => typeof v === "bigint" && v >= 0n && v < 1n << 64n;
const bytes = (v: unknown, n: number) => v instanceof Uint8Array && v.byteLength === n;

function fail(id: unknown, what: string): never {
  throw new SnapshotError(`Cannot restore vCPU ${String(id)}: ${what}`);
}

/** Checks that `s` has the shape and sizes of a {@link VcpuState}. */
export function validateVcpuState(s: unknown, id: number): VcpuState {
  if (typeof s !== "object" || s === null) fail(id, "no state");
  const v = s as Record<string, unknown>;
  if (v.id !== id) fail(id, `state is for vCPU ${String(v.id)}`);
  if (!u32(v.mpState) || (v.mpState as number) > 8) fail(id, "bad MP state");
  const regs = v.regs as Record<string, unknown> | undefined;
  if (!regs || !REG_NAMES.every((n) => u64(regs[n]))) fail(id, "bad registers");
  const sregs = v.sregs as Record<string, unknown> | undefined;
  const segOk = (x: unknown) => {
    const g = x as Record<string, unknown> | undefined;
    return !!g && u64(g.base) && u32(g.limit) &&
      ["selector", "type", "present", "dpl", "db", "s", "l", "g", "avl", "unusable"].every((k) =>
        u32(g[k])
      );
  };
  const dtOk = (x: unknown) =>
    !!x && u64((x as Record<string, unknown>).base) && u32((x as Record<string, unknown>).limit);
  if (
    !sregs || !["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"].every((k) => segOk(sregs[k])) ||
    !dtOk(sregs.gdt) || !dtOk(sregs.idt) ||
    !["cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apicBase"].every((k) => u64(sregs[k])) ||
    !Array.isArray(sregs.interruptBitmap) || sregs.interruptBitmap.length !== 4 ||
    !sregs.interruptBitmap.every(u64)
  ) fail(id, "bad special registers");
  if (
    !(v.xsave instanceof Uint8Array) || v.xsave.byteLength < XSAVE_SIZE ||
    v.xsave.byteLength > 1 << 20
  ) {
    fail(id, "bad xsave area");
  }
  const xcrs = v.xcrs as Record<string, unknown> | undefined;
  if (
    !xcrs || !u32(xcrs.flags) || !Array.isArray(xcrs.xcrs) || xcrs.xcrs.length > 16 ||
    !xcrs.xcrs.every((x) => u32(x?.xcr) && u64(x?.value))
  ) fail(id, "bad xcrs");
  if (!bytes(v.lapic, LAPIC_SIZE)) fail(id, "bad LAPIC state");
  if (!bytes(v.events, VCPU_EVENTS_SIZE)) fail(id, "bad vCPU events");
  if (
    !Array.isArray(v.msrs) || v.msrs.length > 4096 ||
    !v.msrs.every((m) => u32(m?.index) && u64(m?.data))
  ) {
    fail(id, "bad MSRs");
  }
  const d = v.debugRegs as Record<string, unknown> | undefined;
  if (
    !d || !Array.isArray(d.db) || d.db.length !== 4 || !d.db.every(u64) || !u64(d.dr6) ||
    !u64(d.dr7) || !u64(d.flags)
  ) {
    fail(id, "bad debug registers");
  }
  if (
    !Array.isArray(v.cpuid) || v.cpuid.length > 4096 ||
    !v.cpuid.every((e) =>
      ["function", "index", "flags", "eax", "ebx", "ecx", "edx"].every((k) => u32(e?.[k]))
    )
  ) fail(id, "bad CPUID");
  void DEBUGREGS_SIZE;
  return s as VcpuState;
}
