/**
 * Devices a vCPU worker serves itself, without crossing to the device thread: they are
 * described by plain data (posted to the worker) and keep their shared state in
 * SharedArrayBuffers.
 *
 * @module
 */

import { Uart } from "../devices/uart.ts";
import { eventfdWrite } from "@denovm/sys";
import type { Vm } from "@denovm/deno-kvm-ffi";
import type { Bus, BusDevice } from "../bus/bus.ts";
import { ByteRing } from "./byte_ring.ts";

/** A worker-local device, as plain data. */
export type LocalDeviceSpec =
  /** A write of value V stops this vCPU with `{kind: "exit", code: V}` (like isa-debug-exit). */
  | { kind: "exit"; port: number }
  /**
   * Counts writes: word 0 of `counter` counts, word 1 holds the last value written. For
   * benchmarks and tests that need a port with no side effect.
   */
  | { kind: "counter"; port: number; counter: SharedArrayBuffer }
  /**
   * An 8250 UART at `port` (8 registers) whose state is shared with the device thread:
   * transmitted bytes go to `ring` (drained by the device thread), the interrupt is a write
   * to `irqFd` (an eventfd bound to the UART's GSI with KVM_IRQFD).
   */
  /**
   * The boot-time marker: the first write records the time (ms since the epoch, as a
   * float64 in `cell`), so the VMM can report time from process start to guest userspace.
   */
  | { kind: "marker"; port: number; cell: SharedArrayBuffer }
  /**
   * The virtio-mmio windows' interrupt status words (`virtio_isr.ts`): the worker answers
   * InterruptStatus reads and InterruptACK writes of claimed windows itself. Not a port
   * device: the worker checks it on MMIO exits before crossing.
   */
  | { kind: "virtio_isr"; base: number; slots: number; words: SharedArrayBuffer }
  | {
    kind: "uart";
    port: number;
    state: SharedArrayBuffer;
    ring: SharedArrayBuffer;
    irqFd: number;
    /**
     * The UART's GSI: when given (and the worker has the VM's fd), the worker pulses it
     * with `KVM_IRQ_LINE` itself, which reaches the guest at once; an irqfd's injection of
     * an IOAPIC line waits for a kernel worker thread to run.
     */
    irq?: number;
  };

/** What a local device asks of the vCPU loop after an access. */
export interface LocalEffects {
  /** Set by an exit device: stop with this code. */
  exitCode?: number;
  /** Set when output was produced and the device thread should be woken. */
  wake?: boolean;
  /** Wakes the device thread at once (a device that must wait for it to make room). */
  wakeNow?: () => void;
}

/** Registers each spec on `bus`; `effects` is shared with the vCPU loop. */
export function registerLocalDevices(
  bus: Bus,
  specs: readonly LocalDeviceSpec[],
  effects: LocalEffects,
  vm?: Vm,
): void {
  for (const spec of specs) {
    switch (spec.kind) {
      case "exit":
        bus.register(spec.port, 1, exitDevice(effects), "exit");
        break;
      case "counter":
        bus.register(spec.port, 4, counterDevice(new Int32Array(spec.counter)), "counter");
        break;
      case "uart":
        bus.register(spec.port, 8, uart(spec, effects, vm), "uart");
        break;
      case "marker":
        bus.register(spec.port, 1, marker(new Float64Array(spec.cell)), "marker");
        break;
      case "virtio_isr":
        break; // served on MMIO exits (vcpu_worker.ts), not on the port bus
    }
  }
}

function exitDevice(effects: LocalEffects): BusDevice {
  return {
    read: (_o, d) => d.fill(0),
    write: (_o, d) => {
      effects.exitCode = d[0]!;
    },
  };
}

function counterDevice(words: Int32Array): BusDevice {
  return {
    read: (_o, d) => {
      const v = Atomics.load(words, 0);
      for (let i = 0; i < d.length; i++) d[i] = (v >>> (8 * i)) & 0xff;
    },
    write: (_o, d) => {
      let v = 0;
      for (let i = d.length - 1; i >= 0; i--) v = (v << 8) | d[i]!;
      Atomics.add(words, 0, 1);
      Atomics.store(words, 1, v);
    },
  };
}

function marker(cell: Float64Array): BusDevice {
  return {
    read: (_o, d) => d.fill(0),
    write: () => {
      if (cell[0] === 0) cell[0] = performance.timeOrigin + performance.now();
    },
  };
}

function uart(
  spec: { state: SharedArrayBuffer; ring: SharedArrayBuffer; irqFd: number; irq?: number },
  effects: LocalEffects,
  vm: Vm | undefined,
): BusDevice {
  const ring = new ByteRing(spec.ring);
  const irq = spec.irq;
  // An ISA edge: raise and lower the line, as the irqfd would.
  const trigger = vm && irq !== undefined
    ? () => {
      vm.irqLine(irq, 1);
      vm.irqLine(irq, 0);
    }
    : () => eventfdWrite(spec.irqFd);
  return new Uart(spec.state, {
    output: (b) => {
      // A full ring means the reader is behind: wait for it in short slices, then drop.
      for (let tries = 0; !ring.pushByte(b) && tries < 100; tries++) {
        effects.wakeNow?.();
        ring.waitForSpace(10);
      }
      // Wake the device thread only if it asked (it drained and is idle): a burst of output
      // costs one wake, not one per byte.
      if (ring.takeWakeRequest()) effects.wake = true;
    },
    interrupt: { trigger },
  });
}
