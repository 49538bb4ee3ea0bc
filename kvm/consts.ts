/**
 * KVM ioctl request numbers, capabilities and exit reasons for x86-64, as produced by the
 * `_IO*` macros of `<linux/kvm.h>` (regenerate with `kvm/tools/kvm_layout.c`).
 *
 * @module
 */

/** ioctl request numbers (x86-64). */
export const IOCTL = {
  KVM_GET_API_VERSION: 0xae00,
  KVM_CREATE_VM: 0xae01,
  KVM_GET_MSR_INDEX_LIST: 0xc004ae02,
  KVM_CHECK_EXTENSION: 0xae03,
  KVM_GET_VCPU_MMAP_SIZE: 0xae04,
  KVM_GET_SUPPORTED_CPUID: 0xc008ae05,
  KVM_CREATE_VCPU: 0xae41,
  KVM_GET_DIRTY_LOG: 0x4010ae42,
  KVM_SET_USER_MEMORY_REGION: 0x4020ae46,
  KVM_SET_TSS_ADDR: 0xae47,
  KVM_SET_IDENTITY_MAP_ADDR: 0x4008ae48,
  KVM_CREATE_IRQCHIP: 0xae60,
  KVM_IRQ_LINE: 0x4008ae61,
  KVM_GET_IRQCHIP: 0xc208ae62,
  KVM_SET_IRQCHIP: 0x8208ae63,
  KVM_CREATE_PIT2: 0x4040ae77,
  KVM_GET_PIT2: 0x8070ae9f,
  KVM_SET_PIT2: 0x4070aea0,
  KVM_GET_CLOCK: 0x8030ae7c,
  KVM_SET_CLOCK: 0x4030ae7b,
  KVM_IRQFD: 0x4020ae76,
  KVM_IOEVENTFD: 0x4040ae79,
  KVM_REGISTER_COALESCED_MMIO: 0x4010ae67,
  KVM_UNREGISTER_COALESCED_MMIO: 0x4010ae68,
  KVM_RUN: 0xae80,
  KVM_GET_REGS: 0x8090ae81,
  KVM_SET_REGS: 0x4090ae82,
  KVM_GET_SREGS: 0x8138ae83,
  KVM_SET_SREGS: 0x4138ae84,
  KVM_GET_FPU: 0x81a0ae8c,
  KVM_SET_FPU: 0x41a0ae8d,
  KVM_GET_MSRS: 0xc008ae88,
  KVM_SET_MSRS: 0x4008ae89,
  KVM_SET_CPUID2: 0x4008ae90,
  KVM_GET_CPUID2: 0xc008ae91,
  KVM_GET_LAPIC: 0x8400ae8e,
  KVM_SET_LAPIC: 0x4400ae8f,
  KVM_GET_XSAVE: 0x9000aea4,
  KVM_SET_XSAVE: 0x5000aea5,
  KVM_GET_XSAVE2: 0x9000aecf,
  KVM_GET_XCRS: 0x8188aea6,
  KVM_SET_XCRS: 0x4188aea7,
  KVM_GET_VCPU_EVENTS: 0x8040ae9f,
  KVM_SET_VCPU_EVENTS: 0x4040aea0,
  KVM_GET_MP_STATE: 0x8004ae98,
  KVM_SET_MP_STATE: 0x4004ae99,
  KVM_GET_DEBUGREGS: 0x8080aea1,
  KVM_SET_DEBUGREGS: 0x4080aea2,
  KVM_KVMCLOCK_CTRL: 0xaead,
  KVM_GET_TSC_KHZ: 0xaea3,
} as const;

/** The name of an ioctl request number, for error messages. */
export type IoctlName = keyof typeof IOCTL;

/** `KVM_CHECK_EXTENSION` capability numbers. */
export const CAP = {
  IRQCHIP: 0,
  HLT: 1,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  NR_VCPUS: 9,
  NR_MEMSLOTS: 10,
  MP_STATE: 14,
  /** Answers the page offset of the coalesced-write ring in the `kvm_run` mapping. */
  COALESCED_MMIO: 15,
  SYNC_MMU: 16,
  IRQFD: 32,
  PIT2: 33,
  IOEVENTFD: 36,
  SET_IDENTITY_MAP_ADDR: 37,
  ADJUST_CLOCK: 39,
  VCPU_EVENTS: 41,
  DEBUGREGS: 50,
  XSAVE: 55,
  XCRS: 56,
  MAX_VCPUS: 66,
  TSC_DEADLINE_TIMER: 72,
  KVMCLOCK_CTRL: 76,
  IOEVENTFD_ANY_LENGTH: 122,
  IMMEDIATE_EXIT: 136,
  COALESCED_PIO: 162,
  XSAVE2: 208,
} as const;

/** `kvm_run.exit_reason` values. */
export const EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  SET_TPR: 11,
  TPR_ACCESS: 12,
  NMI: 16,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
  IOAPIC_EOI: 26,
  X86_RDMSR: 29,
  X86_WRMSR: 30,
} as const;

/** `kvm_run.system_event.type` values. */
export const SYSTEM_EVENT = { SHUTDOWN: 1, RESET: 2, CRASH: 3, WAKEUP: 4, SUSPEND: 5 } as const;

/** `KVM_IRQCHIP` chip ids for `KVM_GET_IRQCHIP`/`KVM_SET_IRQCHIP`. */
export const IRQCHIP = { PIC_MASTER: 0, PIC_SLAVE: 1, IOAPIC: 2 } as const;

/** `kvm_mp_state.mp_state` values. */
export const MP_STATE = {
  RUNNABLE: 0,
  UNINITIALIZED: 1,
  INIT_RECEIVED: 2,
  HALTED: 3,
  SIPI_RECEIVED: 4,
} as const;

/** `kvm_ioeventfd.flags` bits. */
export const IOEVENTFD_FLAG = { DATAMATCH: 1, PIO: 2, DEASSIGN: 4 } as const;

/** `kvm_irqfd.flags` bits. */
export const IRQFD_FLAG = { DEASSIGN: 1, RESAMPLE: 2 } as const;

/** `kvm_userspace_memory_region.flags` bits. */
export const MEM_FLAG = { LOG_DIRTY_PAGES: 1, READONLY: 2 } as const;
