// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/**
 * Leaf 0xD against this host's real KVM (issue 17): from KVM_GET_SUPPORTED_CPUID, the leaves
 * we give a vCPU offer only XSAVE features with a usable subleaf, KVM accepts the boot XCR0
 * built from them, and the size KVM then reports in leaf 0xD (what a kernel compares with
 * its own sum, or warns "XSAVE consistency problem") equals the size the subleaves give.
 */

import { assert, assertEquals } from "@std/assert";
import { Kvm } from "@denovm/deno-kvm-ffi";
import { bootXcr0, cpuidFor, offeredXcr0, xsaveSize } from "../boot/cpu.ts";

Deno.test("cpuid 0xD: KVM's reported XSAVE size equals the offered features' once XCR0 is set", () => {
  using kvm = Kvm.open();
  const supported = kvm.supportedCpuid();
  const out = cpuidFor(supported, 0, 2);
  const l0 = out.find((e) => e.function === 0xd && e.index === 0)!;
  assert(l0, "KVM offers leaf 0xD");
  const mask = offeredXcr0(out);
  for (let i = 2n; i < 63n; i++) {
    if (!(mask & (1n << i))) continue;
    const sub = out.find((e) => e.function === 0xd && e.index === Number(i));
    assert(sub && sub.eax > 0 && sub.ebx >= 576, `feature ${i} has a usable subleaf`);
  }
  using vm = kvm.createVm();
  vm.createIrqchip();
  using vcpu = vm.createVcpu(0);
  vcpu.setCpuid2(out);
  vcpu.setXcrs({ flags: 0, xcrs: [{ xcr: 0, value: bootXcr0(out) }] });
  assertEquals(vcpu.getXcrs().xcrs.find((x) => x.xcr === 0)?.value, bootXcr0(out));
  const reported = vcpu.getCpuid2().find((e) => e.function === 0xd && e.index === 0)!;
  assertEquals(reported.ebx, xsaveSize(out, bootXcr0(out)), "KVM's size for XCR0 = ours");
  assertEquals(l0.ecx, xsaveSize(out, mask));
});
