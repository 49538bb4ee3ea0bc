/**
 * A minimal i8042 keyboard controller (ports 0x60 data, 0x64 status/command): enough for
 * Linux to probe it and, above all, to turn the guest's reset command (0xFE to port 0x64,
 * or an output-port write that pulls the reset line) into a clean VM stop.
 *
 * @module
 */

/** Port numbers. */
export const I8042_DATA = 0x60, I8042_COMMAND = 0x64;

const STATUS_OBF = 0x01, STATUS_SYS = 0x04, STATUS_CMD = 0x08;
const CMD_READ_CTR = 0x20, CMD_WRITE_CTR = 0x60, CMD_SELF_TEST = 0xaa, CMD_KBD_TEST = 0xab;
const CMD_READ_OUTP = 0xd0, CMD_WRITE_OUTP = 0xd1, CMD_RESET = 0xfe;
const OUTP_RESET_LINE = 0x01; // 0 = reset asserted
const BUFFER = 16;

/** Saved i8042 state. */
export interface I8042State {
  ctr: number;
  outp: number;
  pendingCommand: number;
  buffer: number[];
}

/**
 * The i8042 controller; register it on the port bus at 0x60 with size 5 (0x60..0x64).
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
export class I8042 {
  #ctr = 0x47; // interrupts on, system flag, translation: what firmware leaves
  #outp = OUTP_RESET_LINE | 0x02;
  #pending = -1;
  #buf: number[] = [];
  #lastCommand = false;
  readonly #onReset: () => void;

  constructor(opts: { onReset: () => void }) {
    this.#onReset = opts.onReset;
  }

  /** Bus read at `offset` from 0x60 (0 = data, 4 = status). */
  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset === 0) data[0] = this.#buf.shift() ?? 0;
    else if (offset === 4) {
      data[0] = STATUS_SYS | (this.#buf.length ? STATUS_OBF : 0) |
        (this.#lastCommand ? STATUS_CMD : 0);
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
      if (cmd === CMD_WRITE_CTR) this.#ctr = v;
      else if (cmd === CMD_WRITE_OUTP) {
        this.#outp = v;
        if (!(v & OUTP_RESET_LINE)) this.#onReset();
      } else this.#out(0xfa); // a byte for the keyboard: acknowledge it
    }
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
        this.#pending = c;
        return;
      case CMD_READ_OUTP:
        return this.#out(this.#outp);
      case CMD_SELF_TEST:
        return this.#out(0x55);
      case CMD_KBD_TEST:
        return this.#out(0x00);
      case CMD_RESET:
        return this.#onReset();
      default:
        return; // enable/disable keyboard or aux, and the rest: accepted, no effect
    }
  }

  save(): I8042State {
    return {
      ctr: this.#ctr,
      outp: this.#outp,
      pendingCommand: this.#pending,
      buffer: [...this.#buf],
    };
  }

  restore(s: I8042State): void {
    const byte = (v: unknown) =>
      typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 0xff;
    if (
      typeof s !== "object" || s === null || !byte(s.ctr) || !byte(s.outp) ||
      !(s.pendingCommand === -1 || byte(s.pendingCommand)) || !Array.isArray(s.buffer) ||
      s.buffer.length > BUFFER || !s.buffer.every(byte)
    ) throw new RangeError("Cannot restore i8042: bad state");
    this.#ctr = s.ctr;
    this.#outp = s.outp;
    this.#pending = s.pendingCommand;
    this.#buf = [...s.buffer];
  }
}
