/**
 * An I/O bus (port or MMIO space): devices own address ranges, overlaps are refused, and
 * an access is routed to the device with its offset inside the range.
 *
 * @module
 */

/** A device on a bus. `data` is the access: fill it on read, read it on write. */
export interface BusDevice {
  /** A read of `data.length` bytes at `offset` into the device's range: fill `data`. */
  read(offset: number, data: Uint8Array): void;
  /** A write of `data` at `offset` into the device's range. */
  write(offset: number, data: Uint8Array): void;
}

interface Range {
  base: number;
  size: number;
  device: BusDevice;
  name: string;
}

/**
 * Routes accesses by address range.
 *
 * @example
 * ```ts
 * import { Bus } from "./bus.ts";
 * const bus = new Bus("pio");
 * const seen: number[] = [];
 * bus.register(0x3f8, 8, { read: (_o, d) => d.fill(0), write: (o) => seen.push(o) }, "uart");
 * bus.write(0x3f9, new Uint8Array([1]));
 * console.assert(seen[0] === 1);
 * ```
 */
export class Bus {
  /** "pio" or "mmio", for messages. */
  readonly kind: string;
  #ranges: Range[] = [];
  #last: Range | undefined;

  /** An empty bus; `kind` ("pio" or "mmio") names it in messages. */
  constructor(kind: string) {
    this.kind = kind;
  }

  /** Adds `device` at [base, base+size); throws when that overlaps a registered range. */
  register(base: number, size: number, device: BusDevice, name = "device"): void {
    if (!Number.isSafeInteger(base) || base < 0 || !Number.isSafeInteger(size) || size <= 0) {
      throw new RangeError(`Cannot register ${name} on the ${this.kind} bus: bad range`);
    }
    for (const r of this.#ranges) {
      if (base < r.base + r.size && r.base < base + size) {
        throw new RangeError(
          `Cannot register ${name} at 0x${base.toString(16)}+0x${
            size.toString(16)
          } on the ${this.kind} bus: overlaps ${r.name} at 0x${r.base.toString(16)}+0x${
            r.size.toString(16)
          }`,
        );
      }
    }
    this.#ranges.push({ base, size, device, name });
    this.#ranges.sort((a, b) => a.base - b.base);
  }

  /** Removes the device registered at `base`; returns whether there was one. */
  unregister(base: number): boolean {
    const i = this.#ranges.findIndex((r) => r.base === base);
    if (i < 0) return false;
    this.#ranges.splice(i, 1);
    this.#last = undefined;
    return true;
  }

  /** The registered ranges, in address order. */
  ranges(): { base: number; size: number; name: string }[] {
    return this.#ranges.map(({ base, size, name }) => ({ base, size, name }));
  }

  #find(addr: number, len: number): Range | undefined {
    const l = this.#last;
    if (l && addr >= l.base && addr + len <= l.base + l.size) return l;
    for (const r of this.#ranges) {
      if (addr >= r.base && addr + len <= r.base + r.size) return (this.#last = r);
    }
    return undefined;
  }

  /** Routes a read; returns false (and leaves `data` alone) when no device owns it all. */
  read(addr: number, data: Uint8Array): boolean {
    const r = this.#find(addr, data.byteLength);
    if (!r) return false;
    r.device.read(addr - r.base, data);
    return true;
  }

  /** Routes a write; returns false when no device owns the whole access. */
  write(addr: number, data: Uint8Array): boolean {
    const r = this.#find(addr, data.byteLength);
    if (!r) return false;
    r.device.write(addr - r.base, data);
    return true;
  }
}
