/**
 * Puts a virtio device on a machine's MMIO bus: queue notifications through
 * `KVM_IOEVENTFD` (datamatch = queue index, so they never exit to userspace) and the
 * interrupt through `KVM_IRQFD`. This is the only place that joins virtio and KVM.
 *
 * @module
 */

import { type Vm } from "@denovm/deno-kvm-ffi";
import { closeFd, eventfd, eventfdWrite } from "@denovm/sys";
import { MMIO_WINDOW, MmioTransport, type NotifyBinder, REG } from "../transports/mmio.ts";
import type { Interrupt } from "../bus/interrupt.ts";
import { type VirtioBackend, VirtioDevice } from "../virtio/device.ts";
import type { EventPoller } from "../vstate/event_poller.ts";
import { within } from "@denovm/sys/timer";
import type { Machine } from "../vstate/machine.ts";

/**
 * How long a closing machine waits for a virtio device's requests in flight (disk I/O into
 * guest memory) before it unmaps that memory anyway.
 */
export const CLOSE_DRAIN_MS = 2000;

/** An interrupt line driven through an irqfd. */
export class IrqfdInterrupt implements Interrupt {
  readonly fd = eventfd();
  #closed = false;

  constructor(readonly vm: Vm, readonly gsi: number) {
    vm.irqfd(this.fd, gsi);
  }

  trigger(): void {
    if (!this.#closed) eventfdWrite(this.fd);
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    this.vm.irqfd(this.fd, this.gsi, { deassign: true });
    closeFd(this.fd);
  }
}

/** Queue notifications of one virtio-mmio device through ioeventfds. */
export class IoeventfdNotifier implements NotifyBinder {
  readonly #fds = new Map<number, number>();
  readonly #bound = new Set<number>();

  constructor(readonly vm: Vm, readonly poller: EventPoller, readonly base: number) {}

  bind(index: number, notify: () => void): void {
    if (this.#bound.has(index)) return;
    let fd = this.#fds.get(index);
    if (fd === undefined) this.#fds.set(index, fd = eventfd());
    this.vm.ioeventfd({ addr: this.base + REG.QUEUE_NOTIFY, len: 4, fd, datamatch: index });
    this.poller.watch(fd, notify);
    this.#bound.add(index);
  }

  unbind(index: number): void {
    const fd = this.#fds.get(index);
    if (fd === undefined || !this.#bound.delete(index)) return;
    this.poller.unwatch(fd);
    this.vm.ioeventfd({
      addr: this.base + REG.QUEUE_NOTIFY,
      len: 4,
      fd,
      datamatch: index,
      deassign: true,
    });
  }

  /** Unbinds every queue and closes the eventfds. */
  close(): void {
    for (const i of [...this.#bound]) this.unbind(i);
    for (const fd of this.#fds.values()) closeFd(fd);
    this.#fds.clear();
  }
}

/** A virtio device attached to a machine. */
export interface AttachedVirtio {
  /** The device core: feature negotiation, status, queues, around the backend. */
  device: VirtioDevice;
  /** The virtio-mmio register window the guest programs. */
  transport: MmioTransport;
  /** Guest-physical address of the 4 KiB MMIO window. */
  base: number;
  /** The device's interrupt line (GSI). */
  gsi: number;
}

/** Options of {@link attachVirtioMmio}. */
export interface AttachOptions {
  /** MMIO window base (4 KiB). */
  base: number;
  /** Interrupt line (GSI). */
  gsi: number;
  /** Present the legacy (version 1) interface. */
  legacy?: boolean;
  log?: (message: string) => void;
}

/** Creates the device and its transport and registers them on `m`. */
export function attachVirtioMmio(
  m: Machine,
  backend: VirtioBackend,
  o: AttachOptions,
): AttachedVirtio {
  const irq = new IrqfdInterrupt(m.vm, o.gsi);
  const notifier = new IoeventfdNotifier(m.vm, m.events, o.base);
  const log = o.log ?? (() => {});
  const isrWord = m.virtioIsr?.claim(o.base);
  const device = new VirtioDevice(backend, {
    mem: m.memory,
    interrupt: irq,
    legacy: o.legacy ?? false,
    log,
    ...(isrWord ? { isrWord } : {}),
  });
  const transport = new MmioTransport(device, { notifier, log });
  try {
    m.mmio.register(o.base, MMIO_WINDOW, transport, `virtio-mmio@0x${o.base.toString(16)}`);
  } catch (e) {
    if (isrWord) m.virtioIsr!.release(o.base);
    throw e;
  }
  m.onClose(async () => {
    // Before guest memory is unmapped and the disks closed: requests still in flight (disk
    // I/O off the thread, into guest memory) finish first, for at most CLOSE_DRAIN_MS; then
    // nothing of the device touches memory again (a straggler's completion is dropped).
    try {
      await within(device.stop(), CLOSE_DRAIN_MS);
    } finally {
      device.dispose();
      notifier.close();
      irq.close();
    }
  });
  return { device, transport, base: o.base, gsi: o.gsi };
}
