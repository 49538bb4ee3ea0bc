/**
 * A structurally valid vCPU state for tests that need one without KVM (snapshot validation,
 * persist round trips): zero registers, flat segments, zeroed xsave/LAPIC/events.
 *
 * @module
 */

import { REG_NAMES, XSAVE_SIZE } from "@denovm/deno-kvm-ffi";

/** A vCPU state that passes `validateVcpuState` for vCPU `id`. */
export function vcpuState(id: number) {
  const seg = {
    base: 0n,
    limit: 0xffff,
    selector: 0,
    type: 3,
    present: 1,
    dpl: 0,
    db: 0,
    s: 1,
    l: 0,
    g: 0,
    avl: 0,
    unusable: 0,
  };
  return {
    id,
    mpState: 0,
    regs: Object.fromEntries(REG_NAMES.map((n) => [n, 0n])),
    sregs: {
      ...Object.fromEntries(["cs", "ds", "es", "fs", "gs", "ss", "tr", "ldt"].map((k) => [k, seg])),
      gdt: { base: 0n, limit: 0 },
      idt: { base: 0n, limit: 0 },
      ...Object.fromEntries(
        ["cr0", "cr2", "cr3", "cr4", "cr8", "efer", "apicBase"].map((k) => [k, 0n]),
      ),
      interruptBitmap: [0n, 0n, 0n, 0n],
    },
    xsave: new Uint8Array(XSAVE_SIZE),
    xcrs: { flags: 0, xcrs: [] },
    lapic: new Uint8Array(1024),
    msrs: [],
    debugRegs: { db: [0n, 0n, 0n, 0n], dr6: 0n, dr7: 0n, flags: 0n },
    cpuid: [],
    events: new Uint8Array(64),
  };
}
