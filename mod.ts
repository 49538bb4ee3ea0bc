/**
 * denovm: a KVM microVM monitor in TypeScript on Deno.
 *
 * This module is the library for scripted microVMs. Today it offers the machine layer:
 * a KVM VM with guest RAM, in-kernel irqchip, one worker thread per vCPU, port and MMIO
 * buses served on the calling thread, pause/resume, and the embedded demo guest.
 *
 * @example
 * ```ts ignore
 * import { runDemo } from "./mod.ts";
 * const code = await runDemo({ output: (b) => console.log(new TextDecoder().decode(b)) });
 * ```
 *
 * @module
 */

export { Machine, type MachineOptions, ramLayout } from "./vmm/machine.ts";
export { Bus, type BusDevice } from "./vmm/bus.ts";
export { type DemoOptions, runDemo } from "./vmm/demo.ts";
export { checkHost, type HostCheck } from "./vmm/host.ts";
export type { LocalDeviceSpec } from "./vmm/local_devices.ts";
export type { StopReason } from "./vmm/vcpu_worker.ts";
export { VcpuThread } from "./vmm/vcpu_thread.ts";
export { GuestMemory, GuestMemoryError, type Region } from "./memory/guest_memory.ts";
export { MmapGuestMemory } from "./memory/mmap.ts";
export * as kvm from "./kvm/mod.ts";
