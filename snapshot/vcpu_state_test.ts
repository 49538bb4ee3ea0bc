/** vCPU state validation: the shape and sizes KVM needs, refused field by field. */

import { assertEquals, assertThrows } from "@std/assert";
import { vcpuState } from "../testing/snapshot_fixture.ts";
import { SnapshotError } from "./format.ts";
import { validateVcpuState } from "./vcpu_state.ts";

Deno.test("validateVcpuState: a complete state passes; each defect names its part", () => {
  assertEquals(validateVcpuState(vcpuState(0), 0).id, 0);
  const cases: [string, (s: Record<string, unknown>) => void, string][] = [
    ["id", (s) => (s.id = 1), "state is for vCPU 1"],
    ["mp", (s) => (s.mpState = 99), "bad MP state"],
    ["regs", (s) => ((s.regs as Record<string, unknown>).rip = -1n), "bad registers"],
    ["regs type", (s) => ((s.regs as Record<string, unknown>).rax = 5), "bad registers"],
    ["sregs", (s) => ((s.sregs as Record<string, unknown>).cr0 = 1 << 70), "special registers"],
    ["segment", (s) => ((s.sregs as Record<string, unknown>).cs = {}), "special registers"],
    ["xsave", (s) => (s.xsave = new Uint8Array(10)), "xsave"],
    [
      "xcrs",
      (s) => (s.xcrs = { flags: 0, xcrs: new Array(17).fill({ xcr: 0, value: 0n }) }),
      "xcrs",
    ],
    ["lapic", (s) => (s.lapic = new Uint8Array(1023)), "LAPIC"],
    ["events", (s) => (s.events = [1, 2]), "vCPU events"],
    ["msrs", (s) => (s.msrs = [{ index: -1, data: 0n }]), "MSRs"],
    ["debug", (s) => (s.debugRegs = { db: [0n], dr6: 0n, dr7: 0n, flags: 0n }), "debug"],
    ["cpuid", (s) => (s.cpuid = [{ function: "x" }]), "CPUID"],
    ["none", (s) => Object.keys(s).forEach((k) => delete s[k]), "state is for vCPU"],
  ];
  for (const [name, mutate, want] of cases) {
    const s = vcpuState(0) as unknown as Record<string, unknown>;
    mutate(s);
    assertThrows(() => validateVcpuState(s, 0), SnapshotError, want, name);
  }
  assertThrows(() => validateVcpuState(null, 0), SnapshotError, "no state");
});
