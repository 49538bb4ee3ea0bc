/**
 * The virtio-mmio interrupt status of every device window, in one SharedArrayBuffer, so the
 * vCPU workers answer the two accesses a driver makes on each interrupt themselves: the
 * InterruptStatus read (offset 0x60) and the InterruptACK write (0x64). Without this, each
 * crossed to the device thread and waited for it (on a one-CPU host, a thread switch and a
 * turn of the device thread's event loop, twice per interrupt). Every other register of a
 * window still crosses. The device thread raises bits with `Atomics.or` before it triggers
 * the interrupt, so a driver that reads the status after the interrupt sees them.
 *
 * Layout: two Int32 words per window slot, `[claimed, status]`; a slot answers locally only
 * once a device claimed it (a window with no device still reaches the device thread, which
 * reports the miss).
 *
 * @module
 */

/** Size of one virtio-mmio window. */
export const ISR_WINDOW = 0x1000;
/** Register offsets answered locally. */
export const ISR_STATUS = 0x60, ISR_ACK = 0x64;

/** A device's interrupt status word: `words[index]`. */
export interface IsrWord {
  /** The table's words. */
  words: Int32Array;
  /** The index of the status word. */
  index: number;
}

/** The interrupt status words of `slots` windows from `base`. */
export class VirtioIsrTable {
  /** `[claimed, status]` per slot. */
  readonly words: Int32Array;

  /**
   * A view of `sab` (from {@link VirtioIsrTable.create}, possibly on another thread) for
   * `slots` windows from `base`.
   */
  constructor(
    /** The first window's guest-physical address. */
    readonly base: number,
    /** How many 4 KiB windows from `base` the table covers. */
    readonly slots: number,
    /** The shared words (hand it to the vCPU workers). */
    readonly sab: SharedArrayBuffer,
  ) {
    if (sab.byteLength < slots * 8) {
      throw new RangeError(`Cannot use ISR table: ${sab.byteLength} bytes for ${slots} slots`);
    }
    this.words = new Int32Array(sab, 0, slots * 2);
  }

  /** A table for `slots` windows from `base`, none claimed. */
  static create(base: number, slots: number): VirtioIsrTable {
    return new VirtioIsrTable(base, slots, new SharedArrayBuffer(slots * 8));
  }

  /**
   * Claims the slot of the window at `windowBase`; undefined when it has none or another
   * device holds it (that device's word is left alone).
   */
  claim(windowBase: number): IsrWord | undefined {
    const slot = this.#slot(windowBase);
    if (slot === undefined || Atomics.load(this.words, slot * 2) === 1) return undefined;
    Atomics.store(this.words, slot * 2 + 1, 0);
    Atomics.store(this.words, slot * 2, 1);
    return { words: this.words, index: slot * 2 + 1 };
  }

  /** Gives the slot of `windowBase` back (its device is gone): its accesses cross again. */
  release(windowBase: number): void {
    const slot = this.#slot(windowBase);
    if (slot === undefined) return;
    Atomics.store(this.words, slot * 2, 0);
    Atomics.store(this.words, slot * 2 + 1, 0);
  }

  #slot(windowBase: number): number | undefined {
    const off = windowBase - this.base;
    if (off < 0 || off % ISR_WINDOW || off / ISR_WINDOW >= this.slots) return undefined;
    return off / ISR_WINDOW;
  }

  /**
   * For a vCPU worker: serves the access if it is a 4-byte InterruptStatus read or
   * InterruptACK write of a claimed window (true), else leaves it alone (false).
   */
  serve(addr: number, data: Uint8Array, isWrite: boolean): boolean {
    const off = addr - this.base;
    if (off < 0 || off >= this.slots * ISR_WINDOW || data.byteLength !== 4) return false;
    const slot = Math.floor(off / ISR_WINDOW), reg = off % ISR_WINDOW;
    if (Atomics.load(this.words, slot * 2) !== 1) return false;
    const at = slot * 2 + 1;
    if (!isWrite && reg === ISR_STATUS) {
      const v = Atomics.load(this.words, at);
      data[0] = v & 0xff;
      data[1] = (v >>> 8) & 0xff;
      data[2] = (v >>> 16) & 0xff;
      data[3] = (v >>> 24) & 0xff;
      return true;
    }
    if (isWrite && reg === ISR_ACK) {
      const v = data[0]! | (data[1]! << 8) | (data[2]! << 16) | (data[3]! << 24);
      Atomics.and(this.words, at, ~v);
      return true;
    }
    return false;
  }
}
