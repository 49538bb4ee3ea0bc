/**
 * A small i8042 keyboard controller (ports 0x60 data, 0x64 status/command): enough for
 * Linux to probe it quickly and find a keyboard, and, above all, to turn the guest's reset
 * command (0xFE to port 0x64, or an output-port write that pulls the reset line) into a
 * clean VM stop.
 *
 * @module
 */

import type { Persist } from "../bus/persist.ts";

/** Port numbers. */
export const I8042_DATA = 0x60, I8042_COMMAND = 0x64;

const STATUS_OBF = 0x01, STATUS_SYS = 0x04, STATUS_CMD = 0x08, STATUS_KEYLOCK = 0x10;
const STATUS_AUXDATA = 0x20, STATUS_TIMEOUT = 0x40;
const CTR_KBDINT = 0x01, CTR_KBDDIS = 0x10, CTR_AUXDIS = 0x20;
const CMD_READ_CTR = 0x20, CMD_WRITE_CTR = 0x60;
const CMD_AUX_DISABLE = 0xa7, CMD_AUX_ENABLE = 0xa8, CMD_AUX_TEST = 0xa9;
const CMD_SELF_TEST = 0xaa, CMD_KBD_TEST = 0xab, CMD_KBD_DISABLE = 0xad, CMD_KBD_ENABLE = 0xae;
const CMD_READ_OUTP = 0xd0, CMD_WRITE_OUTP = 0xd1, CMD_WRITE_KBD_OUT = 0xd2;
const CMD_AUX_LOOP = 0xd3, CMD_AUX_SEND = 0xd4, CMD_RESET = 0xfe;
const OUTP_RESET_LINE = 0x01; // 0 = reset asserted
const BUFFER = 16;
/** In the saved output buffer, a byte from the AUX side carries this flag... */
const AUX = 0x100;
/** ...and an AUX byte that reports a timeout (no device) this one. */
const AUX_TIMEOUT = 0x200;

/** Saved i8042 state. */
export interface I8042State {
  /** The controller configuration byte ("command byte"). */
  ctr: number;
  /** The output port; bit 0 low asserts the CPU reset line. */
  outp: number;
  /** A command waiting for its data byte on port 0x60, or -1. */
  pendingCommand: number;
  /** Output bytes, oldest first; AUX-side bytes have 0x100 set (0x200 too for a timeout). */
  buffer: number[];
}

/** Options of {@link I8042}. */
export interface I8042Options {
  onReset: () => void;
  /** Raises IRQ 1 (edge) when the keyboard has a byte for the guest. */
  onInterrupt?: () => void;
}

/**
 * The i8042 controller; register it on the port bus at 0x60 with size 5 (0x60..0x64).
 *
 * It models a controller with a keyboard port and no AUX (mouse) port, so that Linux
 * settles its probe at once instead of waiting on timeouts: the AUX loopback (0xD3)
 * answers 0xFF and the AUX interface test (0xA9) reports the clock line stuck (0x02), so
 * the driver registers no AUX port; the AUX and keyboard disable bits of the command
 * byte follow 0xA7/0xA8 and 0xAD/0xAE; the keyboard acknowledges every command (0xFA),
 * answers reset (0xFF) with 0xAA and identify (0xF2) with 0xAB 0x83, and raises IRQ 1.
 *
 * @example
 * ```ts
 * import { I8042 } from "./i8042.ts";
 * let reset = false;
 * const kbd = new I8042({ onReset: () => (reset = true) });
 * kbd.write(4, new Uint8Array([0xfe]));
 * console.assert(reset);
 * ```
 */
export class I8042 implements Persist<I8042State> {
  #ctr = 0x47; // interrupts on, system flag, translation: what firmware leaves
  #outp = OUTP_RESET_LINE | 0x02;
  #pending = -1;
  #buf: number[] = [];
  #lastCommand = false;
  readonly #onReset: () => void;
  readonly #onInterrupt: (() => void) | undefined;

  /** A controller in the state firmware leaves it in; `opts.onReset` is its reset line. */
  constructor(opts: I8042Options) {
    this.#onReset = opts.onReset;
    this.#onInterrupt = opts.onInterrupt;
  }

  /** Bus read at `offset` from 0x60 (0 = data, 4 = status). */
  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset === 0) data[0] = (this.#buf.shift() ?? 0) & 0xff;
    else if (offset === 4) {
      const head = this.#buf[0];
      data[0] = STATUS_SYS | STATUS_KEYLOCK | (head !== undefined ? STATUS_OBF : 0) |
        (this.#lastCommand ? STATUS_CMD : 0) |
        (head !== undefined && head & AUX ? STATUS_AUXDATA : 0) |
        (head !== undefined && head & AUX_TIMEOUT ? STATUS_TIMEOUT : 0);
    }
  }

  /** Bus write at `offset` from 0x60. */
  write(offset: number, data: Uint8Array): void {
    const v = data[0]!;
    if (offset === 4) {
      this.#lastCommand = true;
      this.#command(v);
    } else if (offset === 0) {
      this.#lastCommand = false;
      const cmd = this.#pending;
      this.#pending = -1;
      switch (cmd) {
        case CMD_WRITE_CTR:
          this.#ctr = v;
          return;
        case CMD_WRITE_OUTP:
          this.#outp = v;
          if (!(v & OUTP_RESET_LINE)) this.#onReset();
          return;
        case CMD_WRITE_KBD_OUT:
          return this.#keyboardOut([v]);
        case CMD_AUX_LOOP:
          return this.#out(0xff | AUX); // no AUX port: the loop does not work
        case CMD_AUX_SEND:
          return this.#out(0xfe | AUX | AUX_TIMEOUT); // no device answers
        default:
          return this.#keyboard(v);
      }
    }
  }

  /** A byte the guest sends to the keyboard. */
  #keyboard(b: number): void {
    this.#ctr &= ~CTR_KBDDIS; // sending to the keyboard enables its port
    if (b === 0xff) return this.#keyboardOut([0xfa, 0xaa]); // reset, self test passed
    if (b === 0xf2) return this.#keyboardOut([0xfa, 0xab, 0x83]); // identify: MF2
    if (b === 0xee) return this.#keyboardOut([0xee]); // echo
    this.#keyboardOut([0xfa]); // everything else (LEDs, rate, scan set, enable...): ACK
  }

  #keyboardOut(bytes: number[]): void {
    for (const b of bytes) this.#out(b);
    if (this.#ctr & CTR_KBDINT) this.#onInterrupt?.();
  }

  #out(b: number): void {
    if (this.#buf.length < BUFFER) this.#buf.push(b);
  }

  #command(c: number): void {
    switch (c) {
      case CMD_READ_CTR:
        return this.#out(this.#ctr);
      case CMD_WRITE_CTR:
      case CMD_WRITE_OUTP:
      case CMD_WRITE_KBD_OUT:
      case CMD_AUX_LOOP:
      case CMD_AUX_SEND:
        this.#pending = c;
        return;
      case CMD_READ_OUTP:
        return this.#out(this.#outp);
      case CMD_AUX_DISABLE:
        this.#ctr |= CTR_AUXDIS;
        return;
      case CMD_AUX_ENABLE:
        this.#ctr &= ~CTR_AUXDIS;
        return;
      case CMD_AUX_TEST:
        return this.#out(0x02); // clock line stuck high: nothing there
      case CMD_KBD_DISABLE:
        this.#ctr |= CTR_KBDDIS;
        return;
      case CMD_KBD_ENABLE:
        this.#ctr &= ~CTR_KBDDIS;
        return;
      case CMD_SELF_TEST:
        return this.#out(0x55);
      case CMD_KBD_TEST:
        return this.#out(0x00);
      case CMD_RESET:
        return this.#onReset();
      default:
        return; // the rest: accepted, no effect
    }
  }

  /** The controller's state, for a snapshot. */
  save(): I8042State {
    return {
      ctr: this.#ctr,
      outp: this.#outp,
      pendingCommand: this.#pending,
      buffer: [...this.#buf],
    };
  }

  /** Validates a saved state (untrusted), pure; see `bus/persist.ts`. */
  static check(x: unknown): I8042State {
    const s = x as I8042State;
    const byte = (v: unknown) =>
      typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xff;
    const entry = (v: unknown) =>
      typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0x3ff &&
      (!(v & AUX_TIMEOUT) || (v & AUX) !== 0);
    if (
      typeof s !== "object" || s === null || !byte(s.ctr) || !byte(s.outp) ||
      !(s.pendingCommand === -1 || byte(s.pendingCommand)) || !Array.isArray(s.buffer) ||
      s.buffer.length > BUFFER || !s.buffer.every(entry)
    ) throw new RangeError("Cannot restore i8042: bad state");
    return { ctr: s.ctr, outp: s.outp, pendingCommand: s.pendingCommand, buffer: [...s.buffer] };
  }

  /** Loads a saved state; throws a RangeError (and changes nothing) when it is malformed. */
  restore(saved: I8042State): void {
    const s = I8042.check(saved);
    this.#ctr = s.ctr;
    this.#outp = s.outp;
    this.#pending = s.pendingCommand;
    this.#buf = [...s.buffer];
  }
}
