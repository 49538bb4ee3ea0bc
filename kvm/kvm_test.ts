// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/** System-level KVM binding tests on /dev/kvm (fail, not skip, when KVM is broken). */

import { assert, assertEquals, assertThrows } from "@std/assert";
import { CAP, Kvm, KvmError, MP_STATE } from "./mod.ts";

Deno.test({
  name: "Kvm reports API 12, capabilities, CPUID leaves and MSRs",
  fn() {
    using kvm = Kvm.open();
    assertEquals(kvm.apiVersion(), 12);
    for (const cap of [CAP.IRQCHIP, CAP.USER_MEMORY, CAP.IRQFD, CAP.IOEVENTFD, CAP.PIT2]) {
      assert(kvm.checkExtension(cap) > 0, `capability ${cap}`);
    }
    assert(kvm.vcpuMmapSize() >= 4096);
    const leaves = kvm.supportedCpuid();
    assert(leaves.some((l) => l.function === 0), "leaf 0");
    assert(kvm.msrIndexList().includes(0x10), "IA32_TSC is in the MSR list");
  },
});

Deno.test({
  name: "KVM_CREATE_VCPU twice with one id fails with EEXIST",
  fn() {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    using vcpu = vm.createVcpu(0);
    const e = assertThrows(() => vm.createVcpu(0), KvmError);
    assertEquals(e.message, "KVM_CREATE_VCPU failed: EEXIST");
    assertEquals(e.code, "EEXIST");
    assertEquals(vcpu.id, 0);
  },
});

Deno.test({
  name: "Vm and Vcpu state ioctls round-trip",
  fn() {
    using kvm = Kvm.open();
    using vm = kvm.createVm();
    vm.createIrqchip();
    vm.createPit2();
    using vcpu = vm.createVcpu(0);
    vcpu.setCpuid2(kvm.supportedCpuid());
    assert(vcpu.getCpuid2().length > 0);
    const regs = vcpu.getRegs();
    regs.rax = 0x1234n;
    regs.rip = 0xfff0n;
    vcpu.setRegs(regs);
    assertEquals(vcpu.getRegs().rax, 0x1234n);
    const s = vcpu.getSregs();
    vcpu.setSregs(s);
    assertEquals(vcpu.getSregs().cs.selector, s.cs.selector);
    const f = vcpu.getFpu();
    f.fcw = 0x37f;
    f.mxcsr = 0x1f80;
    vcpu.setFpu(f);
    assertEquals(vcpu.getFpu().fcw, 0x37f);
    // KVM_GET_FPU/KVM_SET_FPU do not carry MXCSR (the kernel copies every field but it);
    // the xsave area does, at byte 24 of the legacy region, with the reset value 0x1f80.
    assertEquals(new DataView(vcpu.getXsave().buffer).getUint32(24, true), 0x1f80);
    vcpu.setMsrs([{ index: 0x2ff, data: 0x806n }]); // MTRRdefType: enabled, WB
    assertEquals(vcpu.getMsrs([0x2ff])[0]!.data, 0x806n);
    vcpu.setLapic(vcpu.getLapic());
    vcpu.setXsave(vcpu.getXsave());
    vcpu.setXcrs(vcpu.getXcrs());
    vcpu.setVcpuEvents(vcpu.getVcpuEvents());
    vcpu.setDebugRegs(vcpu.getDebugRegs());
    assertEquals(vcpu.getMpState(), MP_STATE.RUNNABLE);
    vcpu.setMpState(MP_STATE.RUNNABLE);
    assertEquals(vcpu.kvmclockCtrl(), false, "no kvmclock page in a guest that never ran");
    for (const chip of [0, 1, 2]) vm.setIrqchip(chip, vm.getIrqchip(chip));
    vm.setPit2(vm.getPit2());
    const clock = vm.getClock();
    vm.setClock(clock);
    assertThrows(() => vm.setIrqchip(0, new Uint8Array(3)), RangeError);
  },
});
