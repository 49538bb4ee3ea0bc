#include <stdio.h>
#include <stddef.h>
#include <linux/kvm.h>
#define IOC(n) printf("  %s: 0x%lx,\n", #n, (unsigned long)(n));
#define SZ(s) printf("%s size %zu\n", #s, sizeof(struct s));
#define OFF(s,f) printf("  %s.%s %zu\n", #s, #f, offsetof(struct s, f));
int main(){
IOC(KVM_GET_API_VERSION) IOC(KVM_CREATE_VM) IOC(KVM_GET_MSR_INDEX_LIST) IOC(KVM_GET_MSR_FEATURE_INDEX_LIST) IOC(KVM_CHECK_EXTENSION) IOC(KVM_GET_VCPU_MMAP_SIZE) IOC(KVM_GET_SUPPORTED_CPUID)
IOC(KVM_CREATE_VCPU) IOC(KVM_GET_DIRTY_LOG) IOC(KVM_SET_USER_MEMORY_REGION) IOC(KVM_SET_TSS_ADDR) IOC(KVM_SET_IDENTITY_MAP_ADDR)
IOC(KVM_CREATE_IRQCHIP) IOC(KVM_IRQ_LINE) IOC(KVM_IRQ_LINE_STATUS) IOC(KVM_GET_IRQCHIP) IOC(KVM_SET_IRQCHIP) IOC(KVM_CREATE_PIT2) IOC(KVM_GET_PIT2) IOC(KVM_SET_PIT2)
IOC(KVM_GET_CLOCK) IOC(KVM_SET_CLOCK) IOC(KVM_IRQFD) IOC(KVM_IOEVENTFD)
IOC(KVM_RUN) IOC(KVM_GET_REGS) IOC(KVM_SET_REGS) IOC(KVM_GET_SREGS) IOC(KVM_SET_SREGS) IOC(KVM_GET_FPU) IOC(KVM_SET_FPU)
IOC(KVM_GET_MSRS) IOC(KVM_SET_MSRS) IOC(KVM_SET_CPUID2) IOC(KVM_GET_CPUID2) IOC(KVM_GET_LAPIC) IOC(KVM_SET_LAPIC)
IOC(KVM_GET_XSAVE) IOC(KVM_SET_XSAVE) IOC(KVM_GET_XCRS) IOC(KVM_SET_XCRS) IOC(KVM_GET_VCPU_EVENTS) IOC(KVM_SET_VCPU_EVENTS)
IOC(KVM_GET_MP_STATE) IOC(KVM_SET_MP_STATE) IOC(KVM_GET_DEBUGREGS) IOC(KVM_SET_DEBUGREGS) IOC(KVM_KVMCLOCK_CTRL) IOC(KVM_TRANSLATE) IOC(KVM_GET_TSC_KHZ) IOC(KVM_SET_TSC_KHZ) IOC(KVM_ENABLE_CAP) IOC(KVM_SET_GSI_ROUTING) IOC(KVM_SIGNAL_MSI) IOC(KVM_GET_XSAVE2) IOC(KVM_SET_BOOT_CPU_ID)
SZ(kvm_regs) OFF(kvm_regs,rax) OFF(kvm_regs,rsp) OFF(kvm_regs,rip) OFF(kvm_regs,rflags)
SZ(kvm_segment) OFF(kvm_segment,base) OFF(kvm_segment,limit) OFF(kvm_segment,selector) OFF(kvm_segment,type) OFF(kvm_segment,present) OFF(kvm_segment,dpl) OFF(kvm_segment,db) OFF(kvm_segment,s) OFF(kvm_segment,l) OFF(kvm_segment,g) OFF(kvm_segment,avl) OFF(kvm_segment,unusable)
SZ(kvm_dtable) OFF(kvm_dtable,limit)
SZ(kvm_sregs) OFF(kvm_sregs,cs) OFF(kvm_sregs,ds) OFF(kvm_sregs,es) OFF(kvm_sregs,fs) OFF(kvm_sregs,gs) OFF(kvm_sregs,ss) OFF(kvm_sregs,tr) OFF(kvm_sregs,ldt) OFF(kvm_sregs,gdt) OFF(kvm_sregs,idt) OFF(kvm_sregs,cr0) OFF(kvm_sregs,cr2) OFF(kvm_sregs,cr3) OFF(kvm_sregs,cr4) OFF(kvm_sregs,cr8) OFF(kvm_sregs,efer) OFF(kvm_sregs,apic_base) OFF(kvm_sregs,interrupt_bitmap)
SZ(kvm_fpu) OFF(kvm_fpu,fpr) OFF(kvm_fpu,fcw) OFF(kvm_fpu,fsw) OFF(kvm_fpu,ftwx) OFF(kvm_fpu,last_opcode) OFF(kvm_fpu,last_ip) OFF(kvm_fpu,last_dp) OFF(kvm_fpu,xmm) OFF(kvm_fpu,mxcsr)
SZ(kvm_userspace_memory_region) OFF(kvm_userspace_memory_region,slot) OFF(kvm_userspace_memory_region,flags) OFF(kvm_userspace_memory_region,guest_phys_addr) OFF(kvm_userspace_memory_region,memory_size) OFF(kvm_userspace_memory_region,userspace_addr)
SZ(kvm_run) OFF(kvm_run,request_interrupt_window) OFF(kvm_run,immediate_exit) OFF(kvm_run,exit_reason) OFF(kvm_run,ready_for_interrupt_injection) OFF(kvm_run,if_flag) OFF(kvm_run,flags) OFF(kvm_run,cr8) OFF(kvm_run,apic_base) OFF(kvm_run,io) OFF(kvm_run,mmio) OFF(kvm_run,hw) OFF(kvm_run,fail_entry) OFF(kvm_run,internal) OFF(kvm_run,system_event) OFF(kvm_run,ex) OFF(kvm_run,kvm_valid_regs) OFF(kvm_run,kvm_dirty_regs) OFF(kvm_run,s)
printf("  io.direction %zu size %zu port %zu count %zu data_offset %zu\n", offsetof(struct kvm_run, io.direction), offsetof(struct kvm_run, io.size), offsetof(struct kvm_run, io.port), offsetof(struct kvm_run, io.count), offsetof(struct kvm_run, io.data_offset));
printf("  mmio.phys_addr %zu data %zu len %zu is_write %zu\n", offsetof(struct kvm_run, mmio.phys_addr), offsetof(struct kvm_run, mmio.data), offsetof(struct kvm_run, mmio.len), offsetof(struct kvm_run, mmio.is_write));
printf("  internal.suberror %zu ndata %zu data %zu\n", offsetof(struct kvm_run, internal.suberror), offsetof(struct kvm_run, internal.ndata), offsetof(struct kvm_run, internal.data));
printf("  system_event.type %zu ndata %zu data %zu\n", offsetof(struct kvm_run, system_event.type), offsetof(struct kvm_run, system_event.ndata), offsetof(struct kvm_run, system_event.data));
printf("  fail_entry.hardware_entry_failure_reason %zu cpu %zu\n", offsetof(struct kvm_run, fail_entry.hardware_entry_failure_reason), offsetof(struct kvm_run, fail_entry.cpu));
printf("  ex.exception %zu error_code %zu\n", offsetof(struct kvm_run, ex.exception), offsetof(struct kvm_run, ex.error_code));
SZ(kvm_msrs) SZ(kvm_msr_entry) OFF(kvm_msr_entry,index) OFF(kvm_msr_entry,reserved) OFF(kvm_msr_entry,data) OFF(kvm_msrs,nmsrs) OFF(kvm_msrs,entries)
SZ(kvm_msr_list) OFF(kvm_msr_list,indices)
SZ(kvm_cpuid2) OFF(kvm_cpuid2,nent) OFF(kvm_cpuid2,entries) SZ(kvm_cpuid_entry2) OFF(kvm_cpuid_entry2,function) OFF(kvm_cpuid_entry2,index) OFF(kvm_cpuid_entry2,flags) OFF(kvm_cpuid_entry2,eax) OFF(kvm_cpuid_entry2,ebx) OFF(kvm_cpuid_entry2,ecx) OFF(kvm_cpuid_entry2,edx)
SZ(kvm_lapic_state) SZ(kvm_xsave) SZ(kvm_xcrs) OFF(kvm_xcrs,nr_xcrs) OFF(kvm_xcrs,flags) OFF(kvm_xcrs,xcrs) SZ(kvm_xcr) OFF(kvm_xcr,xcr) OFF(kvm_xcr,value)
SZ(kvm_vcpu_events) OFF(kvm_vcpu_events,exception) OFF(kvm_vcpu_events,interrupt) OFF(kvm_vcpu_events,nmi) OFF(kvm_vcpu_events,sipi_vector) OFF(kvm_vcpu_events,flags) OFF(kvm_vcpu_events,smi) OFF(kvm_vcpu_events,triple_fault) OFF(kvm_vcpu_events,exception_has_payload) OFF(kvm_vcpu_events,exception_payload)
SZ(kvm_mp_state) SZ(kvm_debugregs) OFF(kvm_debugregs,db) OFF(kvm_debugregs,dr6) OFF(kvm_debugregs,dr7) OFF(kvm_debugregs,flags)
SZ(kvm_irqchip) OFF(kvm_irqchip,chip_id) OFF(kvm_irqchip,pad) OFF(kvm_irqchip,chip) SZ(kvm_pic_state) SZ(kvm_ioapic_state)
SZ(kvm_pit_state2) OFF(kvm_pit_state2,channels) OFF(kvm_pit_state2,flags) SZ(kvm_pit_channel_state) SZ(kvm_pit_config)
SZ(kvm_clock_data) OFF(kvm_clock_data,clock) OFF(kvm_clock_data,flags) OFF(kvm_clock_data,realtime) OFF(kvm_clock_data,host_tsc)
SZ(kvm_irq_level) OFF(kvm_irq_level,irq) OFF(kvm_irq_level,level)
SZ(kvm_irqfd) OFF(kvm_irqfd,fd) OFF(kvm_irqfd,gsi) OFF(kvm_irqfd,flags) OFF(kvm_irqfd,resamplefd)
SZ(kvm_ioeventfd) OFF(kvm_ioeventfd,datamatch) OFF(kvm_ioeventfd,addr) OFF(kvm_ioeventfd,len) OFF(kvm_ioeventfd,fd) OFF(kvm_ioeventfd,flags)
SZ(kvm_dirty_log) OFF(kvm_dirty_log,slot) OFF(kvm_dirty_log,dirty_bitmap)
SZ(kvm_enable_cap) OFF(kvm_enable_cap,cap) OFF(kvm_enable_cap,flags) OFF(kvm_enable_cap,args)
printf("KVM_CAP_IRQCHIP %d KVM_CAP_HLT %d KVM_CAP_USER_MEMORY %d KVM_CAP_SET_TSS_ADDR %d KVM_CAP_EXT_CPUID %d KVM_CAP_PIT2 %d KVM_CAP_IRQFD %d KVM_CAP_IOEVENTFD %d KVM_CAP_IMMEDIATE_EXIT %d KVM_CAP_NR_VCPUS %d KVM_CAP_MAX_VCPUS %d KVM_CAP_NR_MEMSLOTS %d KVM_CAP_KVMCLOCK_CTRL %d KVM_CAP_XSAVE %d KVM_CAP_XCRS %d KVM_CAP_VCPU_EVENTS %d KVM_CAP_DEBUGREGS %d KVM_CAP_ADJUST_CLOCK %d KVM_CAP_SET_IDENTITY_MAP_ADDR %d KVM_CAP_XSAVE2 %d KVM_CAP_MP_STATE %d KVM_CAP_TSC_CONTROL %d KVM_CAP_GET_TSC_KHZ %d KVM_CAP_IOEVENTFD_ANY_LENGTH %d KVM_CAP_SYNC_MMU %d\n",
KVM_CAP_IRQCHIP, KVM_CAP_HLT, KVM_CAP_USER_MEMORY, KVM_CAP_SET_TSS_ADDR, KVM_CAP_EXT_CPUID, KVM_CAP_PIT2, KVM_CAP_IRQFD, KVM_CAP_IOEVENTFD, KVM_CAP_IMMEDIATE_EXIT, KVM_CAP_NR_VCPUS, KVM_CAP_MAX_VCPUS, KVM_CAP_NR_MEMSLOTS, KVM_CAP_KVMCLOCK_CTRL, KVM_CAP_XSAVE, KVM_CAP_XCRS, KVM_CAP_VCPU_EVENTS, KVM_CAP_DEBUGREGS, KVM_CAP_ADJUST_CLOCK, KVM_CAP_SET_IDENTITY_MAP_ADDR, KVM_CAP_XSAVE2, KVM_CAP_MP_STATE, KVM_CAP_TSC_CONTROL, KVM_CAP_GET_TSC_KHZ, KVM_CAP_IOEVENTFD_ANY_LENGTH, KVM_CAP_SYNC_MMU);
return 0;}
