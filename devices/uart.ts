/**
 * A 16550A-compatible 8250 UART (8 registers at e.g. 0x3f8, IRQ 4): transmit to an output
 * sink, receive into a bounded FIFO, and the IER/IIR/LCR/MCR/LSR/MSR/SCR behaviour
 * Linux's 8250 driver relies on (FIFO detection through IIR, the scratch register,
 * loopback for autoconfig, the THRE interrupt when it is enabled with the transmitter
 * empty).
 *
 * Its state lives in a SharedArrayBuffer behind a small lock, so one UART can be served
 * from several threads: vCPU workers serve guest accesses locally (console output never
 * crosses threads), while the device thread feeds received bytes and takes snapshots.
 *
 * @module
 */

import type { Interrupt } from "../bus/interrupt.ts";
import type { Persist } from "../bus/persist.ts";

/** Register offsets. */
export const UART_REG = {
  DATA: 0,
  IER: 1,
  IIR_FCR: 2,
  LCR: 3,
  MCR: 4,
  LSR: 5,
  MSR: 6,
  SCR: 7,
} as const;

const IER_RDI = 0x01, IER_THRI = 0x02, IER_RLSI = 0x04, IER_MSI = 0x08;
const IIR_NONE = 0x01,
  IIR_MSI = 0x00,
  IIR_THRI = 0x02,
  IIR_RDI = 0x04,
  IIR_RLSI = 0x06,
  IIR_FIFO = 0xc0;
const LCR_DLAB = 0x80;
const MCR_DTR = 0x01, MCR_RTS = 0x02, MCR_OUT1 = 0x04, MCR_OUT2 = 0x08, MCR_LOOP = 0x10;
const LSR_DR = 0x01, LSR_OE = 0x02, LSR_THRE = 0x20, LSR_TEMT = 0x40;
const MSR_DCTS = 0x01, MSR_DDSR = 0x02, MSR_TERI = 0x04, MSR_DDCD = 0x08;
const MSR_CTS = 0x10, MSR_DSR = 0x20, MSR_RI = 0x40, MSR_DCD = 0x80;

/** Bytes the receive FIFO holds before it drops input (and reports an overrun). */
export const UART_FIFO = 64;

// State words (Int32) in the shared buffer.
const W = {
  LOCK: 0,
  IER: 1,
  LCR: 2,
  MCR: 3,
  LSR_ERR: 4,
  MSR: 5,
  SCR: 6,
  DLL: 7,
  DLM: 8,
  FCR: 9,
  THR_PENDING: 10,
  RX_HEAD: 11,
  RX_TAIL: 12,
  COUNT: 13,
} as const;
const RX_BYTE = W.COUNT * 4;
const STATE_BYTES = RX_BYTE + UART_FIFO;

/** Saved UART state (plain data). */
export interface UartState {
  /** Interrupt Enable Register. */
  ier: number;
  /** Line Control Register (bit 7: divisor latch access). */
  lcr: number;
  /** Modem Control Register. */
  mcr: number;
  /** Line Status error bits not yet read (overrun). */
  lsrErrors: number;
  /** Modem Status Register. */
  msr: number;
  /** Scratch register. */
  scr: number;
  /** Divisor latch, low byte. */
  dll: number;
  /** Divisor latch, high byte. */
  dlm: number;
  /** FIFO Control Register: the enable, DMA mode and trigger level bits last written. */
  fcr: number;
  /** A transmitter-empty (THRE) interrupt is pending. */
  thrPending: boolean;
  /** The receive FIFO's bytes, oldest first. */
  rx: number[];
}

/** Options of {@link Uart}. */
export interface UartOptions {
  /** Receives transmitted bytes. */
  output: (byte: number) => void;
  /** The UART's interrupt line (edge: raised whenever a new interrupt becomes pending). */
  interrupt: Interrupt;
}

/**
 * One view of a shared 8250 UART.
 *
 * @example
 * ```ts
 * import { Uart } from "./uart.ts";
 * const out: number[] = [];
 * const uart = new Uart(Uart.createState(), { output: (b) => out.push(b), interrupt: { trigger() {} } });
 * uart.write(0, new Uint8Array([0x41]));
 * console.assert(out[0] === 0x41);
 * ```
 */
export class Uart implements Persist<UartState> {
  /** The shared state: registers, lock and receive FIFO; post it to build other views. */
  readonly state: SharedArrayBuffer;
  readonly #w: Int32Array;
  readonly #rx: Uint8Array;
  readonly #o: UartOptions;

  /** A view of `state` (from {@link Uart.createState}); throws a RangeError on a wrong size. */
  constructor(state: SharedArrayBuffer, opts: UartOptions) {
    if (state.byteLength !== STATE_BYTES) throw new RangeError("Cannot use UART state: wrong size");
    this.state = state;
    this.#w = new Int32Array(state, 0, W.COUNT);
    this.#rx = new Uint8Array(state, RX_BYTE, UART_FIFO);
    this.#o = opts;
  }

  /** Fresh shared state: the power-on register values (MSR lines up, 115200 baud). */
  static createState(): SharedArrayBuffer {
    const sab = new SharedArrayBuffer(STATE_BYTES);
    const w = new Int32Array(sab, 0, W.COUNT);
    w[W.MSR] = MSR_DCD | MSR_DSR | MSR_CTS;
    w[W.DLL] = 1; // 115200 baud
    w[W.MCR] = MCR_OUT2;
    return sab;
  }

  #lock(): void {
    while (Atomics.compareExchange(this.#w, W.LOCK, 0, 1) !== 0) {
      // Held only for a register access on another thread: spin.
    }
  }

  #unlock(): void {
    Atomics.store(this.#w, W.LOCK, 0);
  }

  #rxCount(): number {
    return (this.#w[W.RX_HEAD]! - this.#w[W.RX_TAIL]!) >>> 0;
  }

  /** The interrupt identification, by priority. */
  #iir(): number {
    const w = this.#w, ier = w[W.IER]!;
    let id = IIR_NONE;
    if (ier & IER_RLSI && w[W.LSR_ERR]! & LSR_OE) id = IIR_RLSI;
    else if (ier & IER_RDI && this.#rxCount() > 0) id = IIR_RDI;
    else if (ier & IER_THRI && w[W.THR_PENDING]) id = IIR_THRI;
    else if (ier & IER_MSI && w[W.MSR]! & 0x0f) id = IIR_MSI;
    return id | (w[W.FCR]! & 1 ? IIR_FIFO : 0);
  }

  #pending(): boolean {
    return (this.#iir() & IIR_NONE) === 0;
  }

  /** Bus read of register `offset`. */
  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    this.#lock();
    try {
      data[0] = this.#readReg(offset & 7);
    } finally {
      this.#unlock();
    }
  }

  #readReg(o: number): number {
    const w = this.#w;
    const dlab = (w[W.LCR]! & LCR_DLAB) !== 0;
    switch (o) {
      case UART_REG.DATA: {
        if (dlab) return w[W.DLL]!;
        if (this.#rxCount() === 0) return 0;
        const b = this.#rx[w[W.RX_TAIL]! % UART_FIFO]!;
        w[W.RX_TAIL] = (w[W.RX_TAIL]! + 1) | 0;
        return b;
      }
      case UART_REG.IER:
        return dlab ? w[W.DLM]! : w[W.IER]!;
      case UART_REG.IIR_FCR: {
        const iir = this.#iir();
        // Reading IIR while it reports THRE acknowledges that interrupt.
        if ((iir & 0x0f) === IIR_THRI) w[W.THR_PENDING] = 0;
        return iir;
      }
      case UART_REG.LCR:
        return w[W.LCR]!;
      case UART_REG.MCR:
        return w[W.MCR]!;
      case UART_REG.LSR: {
        const lsr = LSR_THRE | LSR_TEMT | (this.#rxCount() > 0 ? LSR_DR : 0) | w[W.LSR_ERR]!;
        w[W.LSR_ERR] = 0; // error bits clear on read
        return lsr;
      }
      case UART_REG.MSR: {
        const msr = w[W.MSR]!;
        w[W.MSR] = msr & 0xf0; // delta bits clear on read
        return msr;
      }
      default:
        return w[W.SCR]!;
    }
  }

  /** Bus write of register `offset`. */
  write(offset: number, data: Uint8Array): void {
    const v = data[0]!;
    let out = -1;
    let raise = false;
    this.#lock();
    try {
      const before = this.#pending();
      out = this.#writeReg(offset & 7, v);
      raise = !before && this.#pending();
    } finally {
      this.#unlock();
    }
    if (out >= 0) this.#o.output(out);
    if (raise) this.#o.interrupt.trigger();
  }

  /** Applies a register write; returns a byte to transmit, or -1. */
  #writeReg(o: number, v: number): number {
    const w = this.#w;
    const dlab = (w[W.LCR]! & LCR_DLAB) !== 0;
    switch (o) {
      case UART_REG.DATA:
        if (dlab) {
          w[W.DLL] = v;
          return -1;
        }
        if (w[W.MCR]! & MCR_LOOP) {
          this.#push(v); // loopback: what is sent is received
          w[W.THR_PENDING] = 1;
          return -1;
        }
        w[W.THR_PENDING] = 1; // transmission is instant: THR is empty again
        return v;
      case UART_REG.IER:
        if (dlab) {
          w[W.DLM] = v;
          return -1;
        }
        // Enabling THRE interrupts with the transmitter empty raises one at once.
        if (v & IER_THRI && !(w[W.IER]! & IER_THRI)) w[W.THR_PENDING] = 1;
        w[W.IER] = v & 0x0f;
        return -1;
      case UART_REG.IIR_FCR:
        w[W.FCR] = v & 0xc9;
        if (v & 0x02) w[W.RX_TAIL] = w[W.RX_HEAD]!; // clear the receive FIFO
        return -1;
      case UART_REG.LCR:
        w[W.LCR] = v;
        return -1;
      case UART_REG.MCR:
        this.#setMcr(v & 0x1f);
        return -1;
      case UART_REG.LSR:
      case UART_REG.MSR:
        return -1; // read-only
      default:
        w[W.SCR] = v;
        return -1;
    }
  }

  #setMcr(v: number): void {
    const w = this.#w;
    w[W.MCR] = v;
    const old = w[W.MSR]!;
    let lines: number;
    if (v & MCR_LOOP) {
      // Loopback wiring: RTS->CTS, DTR->DSR, OUT1->RI, OUT2->DCD.
      lines = (v & MCR_RTS ? MSR_CTS : 0) | (v & MCR_DTR ? MSR_DSR : 0) |
        (v & MCR_OUT1 ? MSR_RI : 0) | (v & MCR_OUT2 ? MSR_DCD : 0);
    } else lines = MSR_DCD | MSR_DSR | MSR_CTS;
    const changed = (old ^ lines) & 0xf0;
    let delta = old & 0x0f;
    if (changed & MSR_CTS) delta |= MSR_DCTS;
    if (changed & MSR_DSR) delta |= MSR_DDSR;
    if (changed & MSR_DCD) delta |= MSR_DDCD;
    if (old & MSR_RI && !(lines & MSR_RI)) delta |= MSR_TERI;
    w[W.MSR] = lines | delta;
  }

  #push(b: number): boolean {
    const w = this.#w;
    if (this.#rxCount() >= UART_FIFO) {
      w[W.LSR_ERR] = w[W.LSR_ERR]! | LSR_OE;
      return false;
    }
    this.#rx[w[W.RX_HEAD]! % UART_FIFO] = b;
    w[W.RX_HEAD] = (w[W.RX_HEAD]! + 1) | 0;
    return true;
  }

  /**
   * Puts received bytes in the FIFO; returns how many fit (the caller keeps the rest and
   * offers them again later, so no input is lost while the guest is slow).
   */
  receive(bytes: Uint8Array): number {
    let n = 0, raise = false;
    this.#lock();
    try {
      if (this.#w[W.MCR]! & MCR_LOOP) return 0; // in loopback the line is disconnected
      const before = this.#pending();
      while (n < bytes.byteLength && this.#rxCount() < UART_FIFO) this.#push(bytes[n++]!);
      raise = !before && this.#pending();
    } finally {
      this.#unlock();
    }
    if (raise) this.#o.interrupt.trigger();
    return n;
  }

  /** Free space in the receive FIFO. */
  get rxSpace(): number {
    return UART_FIFO - this.#rxCount();
  }

  /** The state as plain data. */
  save(): UartState {
    this.#lock();
    try {
      const w = this.#w;
      const rx = [];
      for (let i = 0; i < this.#rxCount(); i++) rx.push(this.#rx[(w[W.RX_TAIL]! + i) % UART_FIFO]!);
      return {
        ier: w[W.IER]!,
        lcr: w[W.LCR]!,
        mcr: w[W.MCR]!,
        lsrErrors: w[W.LSR_ERR]!,
        msr: w[W.MSR]!,
        scr: w[W.SCR]!,
        dll: w[W.DLL]!,
        dlm: w[W.DLM]!,
        fcr: w[W.FCR]!,
        thrPending: w[W.THR_PENDING] === 1,
        rx,
      };
    } finally {
      this.#unlock();
    }
  }

  /** Validates a saved state (untrusted), pure; see `bus/persist.ts`. */
  static check(x: unknown): UartState {
    const byte = (v: unknown, n: string) => {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xff) {
        throw new RangeError(`Cannot restore UART: ${n} is not a byte`);
      }
      return v;
    };
    if (typeof x !== "object" || x === null) throw new RangeError("Cannot restore UART: no state");
    const s = x as UartState;
    if (!Array.isArray(s.rx) || s.rx.length > UART_FIFO) {
      throw new RangeError("Cannot restore UART: bad FIFO");
    }
    if (typeof s.thrPending !== "boolean") throw new RangeError("Cannot restore UART: thrPending");
    return {
      ier: byte(s.ier, "ier") & 0x0f,
      lcr: byte(s.lcr, "lcr"),
      mcr: byte(s.mcr, "mcr") & 0x1f,
      lsrErrors: byte(s.lsrErrors, "lsrErrors"),
      msr: byte(s.msr, "msr"),
      scr: byte(s.scr, "scr"),
      dll: byte(s.dll, "dll"),
      dlm: byte(s.dlm, "dlm"),
      fcr: byte(s.fcr, "fcr"),
      thrPending: s.thrPending,
      rx: s.rx.map((b, i) => byte(b, `rx[${i}]`)),
    };
  }

  /** Restores saved state (untrusted: {@link Uart.check} first, then all at once). */
  restore(saved: UartState): void {
    const s = Uart.check(saved);
    const rx = s.rx;
    const vals = [s.ier, s.lcr, s.mcr, s.lsrErrors, s.msr, s.scr, s.dll, s.dlm, s.fcr];
    this.#lock();
    try {
      const w = this.#w;
      const slots = [W.IER, W.LCR, W.MCR, W.LSR_ERR, W.MSR, W.SCR, W.DLL, W.DLM, W.FCR];
      slots.forEach((slot, i) => (w[slot] = vals[i]!));
      w[W.THR_PENDING] = s.thrPending ? 1 : 0;
      w[W.RX_TAIL] = 0;
      w[W.RX_HEAD] = rx.length;
      this.#rx.set(rx);
    } finally {
      this.#unlock();
    }
  }
}

/** Re-exported for the interrupt-enable bits a driver writes. */
export const UART_IER = { RDI: IER_RDI, THRI: IER_THRI, RLSI: IER_RLSI, MSI: IER_MSI } as const;
export const UART_MCR = {
  DTR: MCR_DTR,
  RTS: MCR_RTS,
  OUT1: MCR_OUT1,
  OUT2: MCR_OUT2,
  LOOP: MCR_LOOP,
} as const;
