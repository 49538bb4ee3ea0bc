/**
 * The legacy serial port of a machine: one 8250 UART whose guest accesses are served by
 * the vCPU workers (no thread crossing for console output) and whose output, input and
 * snapshots are handled on the device thread.
 *
 * @module
 */

import { Uart } from "../devices/uart.ts";
import { closeFd, eventfd, eventfdWrite } from "@denovm/sys";
import { after, type Timer } from "@denovm/sys/timer";
import { ByteRing } from "../vstate/byte_ring.ts";
import type { LocalDeviceSpec } from "../vstate/local_devices.ts";
import type { Machine } from "../vstate/machine.ts";

/**
 * How long serial output may gather before the device thread looks at it again while the
 * guest keeps writing (the longest a byte waits to go out). 20 ms: in the portable machine
 * (one CPU) 4 ms cost the device thread twice the CPU during the guest's console output.
 */
export const OUTPUT_BATCH_MS = 20;

/** COM1. */
export const COM1_PORT = 0x3f8, COM1_IRQ = 4;

/** A serial port: create it before the machine (its spec goes to the vCPU workers). */
export class SerialPort {
  /** The UART's first I/O port (eight ports from here). */
  readonly port: number;
  /** The UART's interrupt line. */
  readonly irq: number;
  /** The device thread's view of the UART (input, snapshots). */
  readonly uart: Uart;
  readonly #ring = ByteRing.create(1 << 16);
  readonly #irqFd = eventfd();
  readonly #output: (bytes: Uint8Array) => void;
  #pendingInput: Uint8Array = new Uint8Array(0);
  #closed = false;
  #batchTimer: Timer | undefined;

  /** A UART at `port` and `irq` (default COM1) whose transmitted bytes go to `output`. */
  constructor(opts: { port?: number; irq?: number; output: (bytes: Uint8Array) => void }) {
    this.port = opts.port ?? COM1_PORT;
    this.irq = opts.irq ?? COM1_IRQ;
    this.#output = opts.output;
    this.uart = new Uart(Uart.createState(), {
      // The device thread never transmits: guest writes are served by the vCPU workers.
      output: (b) => this.#output(new Uint8Array([b])),
      interrupt: { trigger: () => eventfdWrite(this.#irqFd) },
    });
  }

  /** What the vCPU workers need to serve the UART. */
  get spec(): LocalDeviceSpec {
    return {
      kind: "uart",
      port: this.port,
      state: this.uart.state,
      ring: this.#ring.sab,
      irqFd: this.#irqFd,
      irq: this.irq,
    };
  }

  /** Binds the interrupt to the machine's irqchip and drains output on every wake. */
  attach(m: Machine): void {
    m.vm.irqfd(this.#irqFd, this.irq);
    m.dispatcher.addWakeHandler(() => {
      this.#drainBatched();
      this.#feed();
    });
    m.onClose(() => this.close(m));
  }

  /** Forwards transmitted bytes to the output (and asks to be woken for the next). */
  drain(): void {
    const b = this.#ring.drainArmed();
    if (b.byteLength) this.#output(b);
  }

  /**
   * On a wake: what is there goes out at once, then the device thread looks again every
   * {@link OUTPUT_BATCH_MS} while output keeps coming, and asks to be woken by the next byte
   * only once a look finds nothing. A guest writing steadily then costs the device thread one
   * turn per batch (a timer, no wake from the vCPU thread) instead of one per vCPU exit; on a
   * one-CPU host that time is the guest's.
   */
  #drainBatched(): void {
    if (this.#closed) return; // close() forwarded the last bytes
    const b = this.#ring.drain();
    if (b.byteLength) this.#output(b);
    this.#lookLater();
  }

  #lookLater(): void {
    if (this.#batchTimer !== undefined) return;
    this.#batchTimer = after(OUTPUT_BATCH_MS, () => {
      this.#batchTimer = undefined;
      if (this.#closed) return;
      const b = this.#ring.drain();
      if (b.byteLength) {
        this.#output(b);
        this.#lookLater(); // still coming: no wake needed for the next batch
      } else this.drain(); // quiet: the next byte wakes the device thread
    });
  }

  /** Bytes of input not yet in the UART's FIFO. */
  get pendingInput(): number {
    return this.#pendingInput.byteLength;
  }

  /** Queues bytes for the guest; they enter the FIFO as it has room (nothing is dropped). */
  input(bytes: Uint8Array): void {
    const all = new Uint8Array(this.#pendingInput.byteLength + bytes.byteLength);
    all.set(this.#pendingInput);
    all.set(bytes, this.#pendingInput.byteLength);
    this.#pendingInput = all;
    this.#feed();
  }

  #feed(): void {
    if (this.#pendingInput.byteLength === 0) return;
    const n = this.uart.receive(this.#pendingInput);
    this.#pendingInput = this.#pendingInput.subarray(n);
  }

  /**
   * Forwards the last output, unbinds the interrupt from `m`'s VM and closes the eventfd.
   * Idempotent.
   */
  close(m?: Machine): void {
    if (this.#closed) return;
    this.#closed = true;
    this.#batchTimer?.cancel();
    this.#batchTimer = undefined;
    this.drain();
    try {
      m?.vm.irqfd(this.#irqFd, this.irq, { deassign: true });
    } catch {
      // the VM may be gone already
    }
    closeFd(this.#irqFd);
  }
}
