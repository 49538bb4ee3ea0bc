/**
 * Loading a kernel into a machine and setting up its vCPUs for the x86-64 boot protocol
 * (or PVH): kernel segments, command line, initrd, zero page, GDT and page tables, MP
 * table, and per-vCPU CPUID, MSRs, FPU, LAPIC and entry registers. Secondary vCPUs stay in
 * KVM's wait-for-SIPI state until the kernel starts them.
 *
 * @module
 */

import { CAP, type Fpu, type Regs, type Sregs } from "@denovm/deno-kvm-ffi";
import type { GuestMemory } from "../memory/guest_memory.ts";
import { type AcpiMachine, acpiTables, VMGENID_ADDR, VMGENID_SIZE } from "../boot/acpi.ts";
import type { Machine } from "../vstate/machine.ts";
import { bootFpu, bootMsrs, bootXcr0, cpuidFor } from "../boot/cpu.ts";
import { KERNEL_LOAD, KernelError, type KernelImage } from "../boot/kernel.ts";
import {
  BOOT,
  bootParams,
  e820Map,
  entryRegs,
  lapicWithLints,
  longModeSregs,
  mpTable,
  placeInitrd,
  pvhSregs,
  pvhStartInfo,
  writeBootTables,
  ZP,
} from "../boot/x86.ts";

/** What {@link loadKernel} needs besides the kernel. */
export interface BootOptions {
  cmdline: string;
  initrd?: Uint8Array;
  /** Describe the machine with ACPI tables too (placed below 1 MiB, RSDP in the zero page). */
  acpi?: AcpiMachine;
}

/** Where things went (for logs and tests). */
export interface BootLayout {
  /** The guest-physical address vCPU 0 starts at. */
  entry: number;
  /** The boot protocol: the Linux 64-bit entry (zero page in RSI) or PVH (start info in RBX). */
  mode: "64-bit" | "pvh";
  /** The command line given to the kernel. */
  cmdline: string;
  /** Where the initrd was placed in guest memory, and its size in bytes. */
  initrd?: { addr: number; size: number };
}

/** Writes the kernel and boot structures into guest memory and sets up every vCPU. */
export async function loadKernel(m: Machine, k: KernelImage, o: BootOptions): Promise<BootLayout> {
  const layout = writeBootImage(m.memory, k, o, m.vcpus.length);
  await setupBootVcpus(m, k, layout);
  return layout;
}

/**
 * The memory half of {@link loadKernel}: kernel segments, command line, initrd, zero
 * page, GDT and page tables, the MP table for `vcpus` CPUs and (PVH) the start info. No
 * KVM: runs on any {@link GuestMemory}.
 */
export function writeBootImage(
  mem: GuestMemory,
  k: KernelImage,
  o: BootOptions,
  vcpus: number,
): BootLayout {
  const low = mem.regions[0]!;
  const lowEnd = low.gpa + low.bytes.byteLength;
  const kernelEnd = Math.max(
    KERNEL_LOAD + k.initSize,
    ...k.segments.map((s) => s.gpa + s.memSize),
  );
  if (kernelEnd > lowEnd) {
    throw new KernelError(
      `Cannot boot: the kernel needs RAM up to 0x${
        kernelEnd.toString(16)
      }; give the VM more memory`,
    );
  }
  for (const s of k.segments) {
    mem.write(s.gpa, s.bytes);
    if (s.memSize > s.bytes.byteLength) {
      mem.fill(s.gpa + s.bytes.byteLength, s.memSize - s.bytes.byteLength, 0);
    }
  }
  const cmd = new TextEncoder().encode(o.cmdline);
  if (cmd.byteLength > k.cmdlineMax) {
    throw new KernelError(
      `Cannot boot: the command line is ${cmd.byteLength} bytes, the kernel takes ${k.cmdlineMax}`,
    );
  }
  mem.write(BOOT.CMDLINE, cmd);
  mem.writeU8(BOOT.CMDLINE + cmd.byteLength, 0);
  let initrd: { addr: number; size: number } | undefined;
  if (o.initrd) {
    const addr = placeInitrd(o.initrd.byteLength, {
      ramEnd: lowEnd,
      initrdAddrMax: k.initrdAddrMax,
      kernelEnd,
    });
    mem.write(addr, o.initrd);
    initrd = { addr, size: o.initrd.byteLength };
  }
  const e820 = e820Map(mem.regions.map((r) => ({ gpa: r.gpa, size: r.bytes.byteLength })));
  const zp = bootParams({
    ...(k.setupHeader ? { setupHeader: k.setupHeader } : {}),
    cmdline: { addr: BOOT.CMDLINE, size: cmd.byteLength },
    ...(initrd ? { initrd } : {}),
    e820,
  });
  if (o.acpi) {
    const t = acpiTables(o.acpi);
    for (const [addr, bytes] of t.blobs) mem.write(addr, bytes);
    if (o.acpi.vmgenid) {
      mem.write(VMGENID_ADDR, crypto.getRandomValues(new Uint8Array(VMGENID_SIZE)));
    }
    // boot_params.acpi_rsdp_addr (protocol 2.14), for kernels that read it; older kernels
    // find the RSDP by scanning.
    new DataView(zp.buffer, zp.byteOffset).setBigUint64(ZP.ACPI_RSDP_ADDR, BigInt(t.rsdp), true);
  }
  mem.write(BOOT.ZERO_PAGE, zp);
  writeBootTables(mem);
  mem.write(BOOT.MPTABLE, mpTable(vcpus));
  const pvh = k.kind === "elf" && k.pvhEntry !== undefined;
  if (pvh) {
    mem.write(
      BOOT.PVH_INFO,
      pvhStartInfo({ cmdline: BOOT.CMDLINE, ...(initrd ? { initrd } : {}), e820 }),
    );
  }

  return {
    entry: pvh ? k.pvhEntry! : k.entry64,
    mode: pvh ? "pvh" : "64-bit",
    cmdline: o.cmdline,
    ...(initrd ? { initrd } : {}),
  };
}

/**
 * The vCPU half of {@link loadKernel}: CPUID, MSRs, FPU and LAPIC on every vCPU; on the
 * first, the segment registers and entry registers of the boot protocol `layout` says.
 */
async function setupBootVcpus(m: Machine, k: KernelImage, layout: BootLayout): Promise<void> {
  const pvh = layout.mode === "pvh";
  const supported = m.kvm.supportedCpuid();
  const tscDeadline = m.kvm.checkExtension(CAP.TSC_DEADLINE_TIMER) > 0;
  // Each call is a message to the vCPU's thread and back, which costs more than the ioctl
  // it carries (~15 ms in the portable machine): the calls go out together, two rounds per
  // vCPU (the worker runs them in the order posted, the same order as one at a time), and
  // every vCPU at once.
  await Promise.all(m.vcpus.map(async (t, id) => {
    const cpuid = cpuidFor(supported, id, m.vcpus.length, { tscDeadline });
    const first: Promise<unknown>[] = [t.call("setCpuid2", cpuid)];
    if (cpuid.some((e) => e.function === 0xd)) {
      // XCR0 with every offered feature: see bootXcr0. A KVM that refuses it keeps x87.
      first.push(
        t.call("setXcrs", { flags: 0, xcrs: [{ xcr: 0, value: bootXcr0(cpuid) }] }).catch(() => {}),
      );
    }
    first.push(t.call("setMsrs", bootMsrs()));
    const fpu = t.call<Fpu>("getFpu");
    const lapic = t.call<Uint8Array>("getLapic");
    // APs wait for INIT/SIPI from the kernel: only the first vCPU gets entry registers.
    const sregs = id === 0 ? t.call<Sregs>("getSregs") : undefined;
    const regs = id === 0 ? t.call<Regs>("getRegs") : undefined;
    const [f, l, s, r] = await Promise.all([fpu, lapic, sregs, regs, ...first]) as [
      Fpu,
      Uint8Array,
      Sregs | undefined,
      Regs | undefined,
    ];
    const second: Promise<unknown>[] = [
      t.call("setFpu", bootFpu(f)),
      t.call("setLapic", lapicWithLints(l)),
    ];
    if (s && r) {
      if (pvh) {
        second.push(t.call("setSregs", pvhSregs(s)));
        second.push(t.call("setRegs", entryRegs(r, { rip: k.pvhEntry!, rbx: BOOT.PVH_INFO })));
      } else {
        second.push(t.call("setSregs", longModeSregs(s)));
        second.push(t.call("setRegs", entryRegs(r, { rip: k.entry64, rsi: BOOT.ZERO_PAGE })));
      }
    }
    await Promise.all(second);
  }));
}
