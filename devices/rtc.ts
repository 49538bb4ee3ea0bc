/**
 * A minimal CMOS RTC (MC146818) at ports 0x70 (index; bit 7 is the NMI mask, ignored) and
 * 0x71 (data), as every distribution kernel expects one (`RTC_DRV_CMOS`, and x86's boot-time
 * wall clock): the time of day from the host clock (plus whatever offset the guest set),
 * in BCD or binary and 12- or 24-hour mode as register B says; status registers A-D with
 * the update-in-progress flag up only in the last 244 µs of each second, as the chip does;
 * the 114 bytes of CMOS RAM kept. No alarms, periodic or update interrupts (register C
 * reads 0, and the interrupt enables are kept but never fire). Its state goes into
 * snapshots (the Persist shape of `bus/persist.ts`); the time goes on from the host clock.
 *
 * @module
 */

import type { BusDevice } from "../bus/bus.ts";
import type { Persist } from "../bus/persist.ts";

/** Register indices. */
export const RTC_REG = {
  SECONDS: 0x00,
  MINUTES: 0x02,
  HOURS: 0x04,
  DAY_OF_WEEK: 0x06,
  DAY_OF_MONTH: 0x07,
  MONTH: 0x08,
  YEAR: 0x09,
  A: 0x0a,
  B: 0x0b,
  C: 0x0c,
  D: 0x0d,
  /** Where PCs (and ACPI's FADT century field) keep the century. */
  CENTURY: 0x32,
} as const;

const A_UIP = 0x80;
const B_SET = 0x80, B_DM_BINARY = 0x04, B_24H = 0x02;
const D_VRT = 0x80;
/** The chip raises UIP this long before each second's update (µs). */
const UIP_US = 244;
const TIME_REGS = [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32];
/** The furthest the guest may set the clock from the host's (~317 years), in ms. */
export const RTC_MAX_OFFSET_MS = 1e13;

/** Saved state of {@link Rtc}. */
export interface RtcState {
  /** The selected register (port 0x70, without the NMI bit). */
  index: number;
  /** The 128 CMOS bytes as last written (the time bytes are recomputed on read). */
  cmos: Uint8Array;
  /** Guest time minus host time, in ms (what the guest set it to, relative). */
  offsetMs: number;
}

/** Options of {@link Rtc}. */
export interface RtcOptions {
  /** Milliseconds since the epoch (default: `Date.now()`, fractional with `performance`). */
  now?: () => number;
}

const bcd = (v: number) => ((Math.floor(v / 10) << 4) | (v % 10)) & 0xff;
const unbcd = (v: number) => (v >> 4) * 10 + (v & 0x0f);

/**
 * The CMOS RTC; register it on the port bus at 0x70 with size 2.
 *
 * @example
 * ```ts
 * import { Rtc, RTC_REG } from "./rtc.ts";
 * const rtc = new Rtc({ now: () => Date.UTC(2026, 10, 27, 16, 0, 0) });
 * rtc.write(0, new Uint8Array([RTC_REG.HOURS]));
 * const b = new Uint8Array(1);
 * rtc.read(1, b);
 * console.assert(b[0] === 0x16); // BCD, 24-hour
 * ```
 */
export class Rtc implements BusDevice, Persist<RtcState> {
  #index = 0;
  #cmos: Uint8Array = new Uint8Array(128);
  #offsetMs = 0;
  /** While register B's SET bit is up: the time the guest is writing, as fields. */
  #setting: Uint8Array | undefined;
  readonly #now: () => number;

  /** An RTC showing the host's time, BCD and 24-hour mode, its RAM zeroed. */
  constructor(opts: RtcOptions = {}) {
    this.#now = opts.now ?? (() => performance.timeOrigin + performance.now());
    this.#cmos[RTC_REG.A] = 0x26; // 32.768 kHz time base, 1024 Hz rate: what firmware leaves
    this.#cmos[RTC_REG.B] = B_24H;
    this.#cmos[RTC_REG.D] = D_VRT;
  }

  /** Port reads: 0x70 reads back nothing useful (0xff), 0x71 the selected register. */
  read(offset: number, data: Uint8Array): void {
    data.fill(0xff);
    if (offset === 1 && data.byteLength >= 1) data[0] = this.#readReg(this.#index);
  }

  /** Port writes: 0x70 selects a register, 0x71 writes it. */
  write(offset: number, data: Uint8Array): void {
    if (data.byteLength < 1) return;
    if (offset === 0) this.#index = data[0]! & 0x7f;
    else if (offset === 1) this.#writeReg(this.#index, data[0]!);
  }

  #readReg(i: number): number {
    if (TIME_REGS.includes(i)) return (this.#setting ?? this.#timeFields())[TIME_REGS.indexOf(i)]!;
    switch (i) {
      case RTC_REG.A: {
        const us = (this.#now() + this.#offsetMs) % 1000 * 1000;
        const uip = !this.#setting && us >= 1_000_000 - UIP_US;
        return (this.#cmos[RTC_REG.A]! & 0x7f) | (uip ? A_UIP : 0);
      }
      case RTC_REG.C:
        return 0; // no interrupt ever pending
      case RTC_REG.D:
        return D_VRT;
      default:
        return this.#cmos[i]!;
    }
  }

  #writeReg(i: number, v: number): void {
    if (TIME_REGS.includes(i)) {
      // Time writes count while SET is up (the chip's way); otherwise they set the time
      // at once, as a guest writing one field expects.
      const fields = this.#setting ?? this.#timeFields();
      fields[TIME_REGS.indexOf(i)] = v;
      if (!this.#setting) this.#setFrom(fields);
      return;
    }
    switch (i) {
      case RTC_REG.A:
        this.#cmos[i] = v & 0x7f; // UIP is read-only
        return;
      case RTC_REG.B: {
        const was = this.#cmos[i]!;
        if (v & B_SET && !(was & B_SET)) this.#setting = this.#timeFields();
        if (!(v & B_SET) && was & B_SET && this.#setting) {
          const fields = this.#setting;
          this.#setting = undefined;
          this.#cmos[i] = v;
          this.#setFrom(fields);
          return;
        }
        this.#cmos[i] = v;
        return;
      }
      case RTC_REG.C:
      case RTC_REG.D:
        return; // read-only
      default:
        this.#cmos[i] = v;
    }
  }

  #binary(): boolean {
    return (this.#cmos[RTC_REG.B]! & B_DM_BINARY) !== 0;
  }

  /** The current time as register values (in TIME_REGS order), in the guest's format. */
  #timeFields(): Uint8Array {
    const d = new Date(Math.floor(this.#now() + this.#offsetMs));
    const enc = this.#binary() ? (v: number) => v : bcd;
    let hour = d.getUTCHours();
    let pm = 0;
    if (!(this.#cmos[RTC_REG.B]! & B_24H)) {
      pm = hour >= 12 ? 0x80 : 0;
      hour = hour % 12 || 12;
    }
    const year = d.getUTCFullYear();
    return new Uint8Array([
      enc(d.getUTCSeconds()),
      enc(d.getUTCMinutes()),
      enc(hour) | pm,
      enc(d.getUTCDay() + 1),
      enc(d.getUTCDate()),
      enc(d.getUTCMonth() + 1),
      enc(year % 100),
      enc(Math.floor(year / 100)),
    ]);
  }

  /** The guest set the time to `fields`: keep it as an offset from the host clock. */
  #setFrom(fields: Uint8Array): void {
    const dec = this.#binary() ? (v: number) => v : unbcd;
    let hour = dec(fields[2]! & 0x7f);
    if (!(this.#cmos[RTC_REG.B]! & B_24H)) hour = (hour % 12) + (fields[2]! & 0x80 ? 12 : 0);
    const t = Date.UTC(
      dec(fields[7]!) * 100 + dec(fields[6]!),
      dec(fields[5]!) - 1,
      dec(fields[4]!),
      hour,
      dec(fields[1]!),
      dec(fields[0]!),
    );
    if (!Number.isFinite(t)) return; // nonsense fields: the time stays as it was
    const offset = t - Math.floor(this.#now() / 1000) * 1000;
    // A time further off than a snapshot may hold (non-BCD digits can spell year 16665) is
    // refused: the clock keeps its time and the VM stays restorable.
    if (Math.abs(offset) > RTC_MAX_OFFSET_MS) return;
    this.#offsetMs = offset;
  }

  /** The registers, the CMOS RAM and the guest's offset from the host clock. */
  save(): RtcState {
    return { index: this.#index, cmos: this.#cmos.slice(), offsetMs: this.#offsetMs };
  }

  /** Validates a saved state (untrusted), pure; see `bus/persist.ts`. */
  static check(x: unknown): RtcState {
    const s = x as RtcState;
    if (
      typeof s !== "object" || s === null || !Number.isInteger(s.index) || s.index < 0 ||
      s.index > 0x7f || !(s.cmos instanceof Uint8Array) || s.cmos.byteLength !== 128 ||
      typeof s.offsetMs !== "number" || !Number.isFinite(s.offsetMs) ||
      Math.abs(s.offsetMs) > RTC_MAX_OFFSET_MS
    ) throw new RangeError("Cannot restore RTC: bad state");
    return { index: s.index, cmos: s.cmos.slice(), offsetMs: s.offsetMs };
  }

  /** Applies a saved state ({@link Rtc.check} first); the clock goes on from the host's. */
  restore(saved: RtcState): void {
    const s = Rtc.check(saved);
    this.#index = s.index;
    this.#cmos = s.cmos;
    this.#offsetMs = s.offsetMs;
    this.#setting = undefined;
  }
}
