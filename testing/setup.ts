/**
 * Builds a device, its MMIO transport and a driver over `ArrayBuffer` guest memory, for
 * tests of devices and transports without KVM.
 *
 * @module
 */

import { GuestMemory } from "../memory/guest_memory.ts";
import { MmioTransport, type NotifyBinder } from "../transports/mmio.ts";
import { type VirtioBackend, VirtioDevice } from "../virtio/device.ts";
import { CountingInterrupt } from "./dummy_device.ts";
import { GuestAllocator, MmioDriver } from "./driver.ts";

/** Everything a device test needs. */
export interface Harness<B extends VirtioBackend> {
  mem: GuestMemory;
  alloc: GuestAllocator;
  irq: CountingInterrupt;
  device: VirtioDevice;
  transport: MmioTransport;
  driver: MmioDriver;
  backend: B;
  log: string[];
}

/** A backend behind a virtio-mmio transport, with a driver, on 1 MiB of test memory. */
export function harness<B extends VirtioBackend>(
  backend: B,
  opts: {
    legacy?: boolean;
    memSize?: number;
    notifier?: NotifyBinder;
    mem?: GuestMemory;
    /**
     * Where the driver's rings and buffers go (default [0x1000, memSize)): two drivers on one
     * memory need ranges apart.
     */
    allocRange?: [number, number];
  } = {},
): Harness<B> {
  const size = opts.memSize ?? 0x100000;
  const mem = opts.mem ?? GuestMemory.allocate([{ gpa: 0, size }]);
  const [from, to] = opts.allocRange ?? [0x1000, size];
  const alloc = new GuestAllocator(mem, from, to);
  const irq = new CountingInterrupt();
  const log: string[] = [];
  const device = new VirtioDevice(backend, {
    mem,
    interrupt: irq,
    legacy: opts.legacy ?? false,
    log: (m) => log.push(m),
  });
  const transport = new MmioTransport(device, {
    log: (m) => log.push(m),
    ...(opts.notifier ? { notifier: opts.notifier } : {}),
  });
  const driver = new MmioDriver(transport, mem, alloc);
  return { mem, alloc, irq, device, transport, driver, backend, log };
}
