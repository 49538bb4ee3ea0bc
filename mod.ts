/**
 * denovm: a KVM microVM monitor in TypeScript on Deno.
 *
 * This module is the library for scripted microVMs: {@link Vmm} builds a VM from a
 * {@link VmConfig} (the same type as the CLI flags and the config file), starts, pauses,
 * snapshots, restores and stops it. Below it, {@link Machine} is the bare machine layer
 * (KVM VM, guest RAM, in-kernel irqchip, one worker thread per vCPU, port and MMIO buses).
 *
 * @example
 * ```ts ignore
 * import { Vmm } from "./mod.ts";
 * await using vm = await Vmm.create({ memMiB: 64, rng: true });
 * vm.start();
 * console.log(await vm.whenExit()); // the demo guest: { kind: "exit", code: 0, vcpu: 0 }
 * ```
 *
 * @module
 */

export {
  type AdminDeviceInfo,
  type AdminDeviceSpec,
  type BootTimings,
  type RealModeImage,
  type RestoreOptions,
  type SnapshotOptions,
  Vmm,
  type VmmOptions,
} from "./vmm/vmm.ts";
export {
  type AdminConfig,
  ConfigError,
  defaultConfig,
  type DiskConfig,
  loadConfig,
  type NetConfig,
  parseConfig,
  type VmConfig,
  type VsockConfig,
} from "./vmm/config.ts";
export { AGENT_PORT, exec, ExecError, type ExecOptions, type ExecResult } from "./host/exec.ts";
export {
  createLogger,
  type LogFields,
  type Logger,
  type LoggerOptions,
  type LogLevel,
  silentLogger,
} from "./vmm/log.ts";
export { type ApiOptions, ApiServer } from "./frontend/api.ts";
export { SnapshotError } from "./snapshot/format.ts";
export type { VcpuState } from "./snapshot/vcpu_state.ts";
export { Machine, type MachineOptions } from "./vstate/machine.ts";
export { type IsrWord, VirtioIsrTable } from "./vstate/virtio_isr.ts";
export { prewarmVcpuWorkers } from "./vstate/worker_pool.ts";
export { ramLayout } from "./boot/x86.ts";
export { Bus, type BusDevice } from "./bus/bus.ts";
export { type DemoOptions, runDemo } from "./frontend/demo.ts";
export { checkHost, type HostCheck, type KvmStatus, KvmUnavailableError } from "./vstate/host.ts";
export {
  PORTABLE_HOST,
  type PortableOptions,
  type PortableResult,
  runPortable,
} from "./portable/machine.ts";
export type { LocalDeviceSpec } from "./vstate/local_devices.ts";
export type { StopReason } from "./vstate/vcpu_worker.ts";
export { VcpuThread } from "./vstate/vcpu_thread.ts";
export {
  type DeviceMemory,
  GuestMemory,
  GuestMemoryError,
  type Region,
} from "./memory/guest_memory.ts";
export { MmapGuestMemory } from "./memory/mmap.ts";
export * as kvm from "@denovm/deno-kvm-ffi";

// Types the API above names (the type of a property, parameter or result), exported so
// scripts can name them. Type-only: their values are not part of the library.
export type { LOG_LEVELS } from "./vmm/log.ts";
export type { BootLayout } from "./vmm/kernel_boot.ts";
export type { Console, WaitOptions } from "./vmm/console_api.ts";
export type { Devices } from "./vmm/devices_setup.ts";
export type { SerialPort } from "./vmm/serial.ts";
export type { AttachedVirtio } from "./vmm/virtio_mmio.ts";
export type { ExitDispatcher } from "./vstate/exit_dispatcher.ts";
export type { EventPoller } from "./vstate/event_poller.ts";
export type { Mailbox } from "./vstate/mailbox.ts";
export type { VCPU_OPS, VcpuOp } from "./vstate/vcpu_worker.ts";
export type { HostRegion } from "./memory/mmap.ts";
export type { DiskImage } from "./devices/block.ts";
export type { ManagementDevice } from "./devices/management.ts";
export type {
  AdminEvent,
  AdminReply,
  AdminState,
  AdminTransport,
  VdevOrigin,
  VdevState,
  VirtualDevice,
  VirtualDeviceFactory,
} from "./transports/admin_vq.ts";
export type { DeviceMmu, MmuMapping } from "./transports/device_mmu.ts";
export type { ConsoleDevice, ConsoleState } from "./devices/console.ts";
export type { Persist } from "./bus/persist.ts";
export type { I8042, I8042State } from "./devices/i8042.ts";
export type { Rtc, RtcOptions, RtcState } from "./devices/rtc.ts";
export type { Uart, UartState } from "./devices/uart.ts";
export type { MmioState, MmioTransport } from "./transports/mmio.ts";
export type {
  DeviceContext,
  VirtioBackend,
  VirtioDevice,
  VirtioState,
  VirtioStateSpec,
} from "./virtio/device.ts";
export type {
  Buffer,
  DescriptorChain,
  Queue,
  QueueState,
  RamMap,
  RingField,
  ScratchChain,
} from "./virtio/queue.ts";
export type { RING_ALIGN } from "./virtio/queue.ts";
export type {
  ClockData,
  CpuidEntry,
  DebugRegs,
  DTable,
  Fpu,
  IoeventfdOptions,
  Kvm,
  MemoryRegion,
  MsrEntry,
  REG_NAMES,
  Regs,
  Segment,
  Sregs,
  Vcpu,
  VcpuExit,
  Vm,
  Xcrs,
} from "@denovm/deno-kvm-ffi";
export type { FdHandle } from "@denovm/sys";
