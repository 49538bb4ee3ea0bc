/**
 * The device MMU of an admin-virtqueue virtual device (the RFC's DMA isolation): a table of
 * mappings from I/O virtual addresses (what the device's driver writes into rings and
 * descriptors) to guest-physical memory, set by the management driver with admin commands.
 * Every access the device makes goes through it; an access no single mapping covers is a
 * translation failure: `onFault` is told (the management device sets DEVICE_MMU_FAIL with
 * DEVICE_NEEDS_RESET and reports it on the event queue) and the access throws
 * {@link MmuFault}. A new virtual device has no mappings: it reaches nothing until its
 * driver maps something.
 *
 * Writes go through the backing {@link GuestMemory}, so its dirty-page tracking sees them.
 *
 * @module
 */

import { type DeviceMemory, type GuestMemory, GuestMemoryError } from "../memory/guest_memory.ts";
import type { RamMap } from "../virtio/queue.ts";

/** One mapping: `size` bytes at I/O virtual address `iova` are guest RAM at `gpa`. */
export interface MmuMapping {
  /** First I/O virtual address. */
  iova: number;
  /** The guest-physical address it maps to. */
  gpa: number;
  /** Bytes. */
  size: number;
}

/** An access outside the device's mappings. */
export class MmuFault extends GuestMemoryError {
  /** The fault for an access of `len` bytes at I/O virtual address `iova`. */
  constructor(iova: number, len: number) {
    super(iova, len);
    this.name = "MmuFault";
    this.message = `Device MMU: no mapping covers 0x${iova.toString(16)}+${len}`;
  }
}

/** The most mappings one device may hold. */
export const MAX_MAPPINGS = 64;

/** Options of {@link DeviceMmu}. */
export interface DeviceMmuOptions {
  /** Called once per failed translation, before the access throws. */
  onFault?: (iova: number, len: number) => void;
  /** The most mappings (default {@link MAX_MAPPINGS}). */
  maxMappings?: number;
}

const isAddr = (v: unknown): v is number =>
  typeof v === "number" && Number.isSafeInteger(v) && v >= 0;

/**
 * Why mapping `m` cannot join `existing` over guest RAM `ram`, or undefined when it can:
 * addresses and size integers below 2^53, the size non-zero, the guest range inside one RAM
 * region, the I/O range clear of every other mapping, fewer than `max` mappings so far.
 * Pure: also what a snapshot's mappings are checked with.
 */
export function mappingProblem(
  existing: readonly MmuMapping[],
  m: { iova: unknown; gpa: unknown; size: unknown },
  ram: RamMap,
  max = MAX_MAPPINGS,
): string | undefined {
  const { iova, gpa, size } = m;
  if (!isAddr(iova) || !isAddr(gpa) || !isAddr(size) || size === 0) {
    return "address or size is not a non-zero 53-bit value";
  }
  if (!Number.isSafeInteger(iova + size)) return "I/O range wraps";
  if (!ram.contains(gpa, size)) {
    return `0x${gpa.toString(16)}+0x${size.toString(16)} is not guest RAM`;
  }
  if (existing.some((e) => iova < e.iova + e.size && e.iova < iova + size)) {
    return `0x${iova.toString(16)}+0x${size.toString(16)} overlaps a mapping`;
  }
  if (existing.length >= max) return `already ${max} mappings`;
  return undefined;
}

/** A {@link RamMap} of what `mappings` cover (one mapping per range), for checks. */
export function mappingsRamMap(mappings: readonly MmuMapping[]): RamMap {
  return {
    contains: (a, len) =>
      isAddr(a) && isAddr(len) &&
      mappings.some((m) => a >= m.iova && a < m.iova + m.size && len <= m.iova + m.size - a),
  };
}

/**
 * A device's view of guest memory through its mappings.
 *
 * @example
 * ```ts
 * import { GuestMemory } from "../memory/guest_memory.ts";
 * import { DeviceMmu } from "./device_mmu.ts";
 * const ram = GuestMemory.allocate([{ gpa: 0, size: 0x10000 }]);
 * const mmu = new DeviceMmu(ram);
 * console.assert(mmu.map(0x100000, 0x2000, 0x1000) === undefined);
 * mmu.writeU32(0x100010, 7);
 * console.assert(ram.readU32(0x2010) === 7);
 * console.assert(!mmu.contains(0x3000, 4));
 * ```
 */
export class DeviceMmu implements DeviceMemory {
  /** The guest memory the mappings point into. */
  readonly backing: GuestMemory;
  #maps: MmuMapping[] = [];
  #last: MmuMapping | undefined;
  #onFault: (iova: number, len: number) => void;
  #max: number;

  /** An MMU with no mappings over `backing`. */
  constructor(backing: GuestMemory, opts: DeviceMmuOptions = {}) {
    this.backing = backing;
    this.#onFault = opts.onFault ?? (() => {});
    this.#max = opts.maxMappings ?? MAX_MAPPINGS;
  }

  /** The mappings, in I/O address order (copies). */
  get mappings(): MmuMapping[] {
    return this.#maps.map((m) => ({ ...m }));
  }

  /**
   * Why `size` bytes at `iova` cannot map to guest RAM at `gpa`, or undefined when they
   * can: addresses and size must be integers below 2^53, the size non-zero, the guest range
   * inside one RAM region, the I/O range clear of every other mapping.
   */
  mapProblem(iova: unknown, gpa: unknown, size: unknown): string | undefined {
    return mappingProblem(this.#maps, { iova, gpa, size }, this.backing, this.#max);
  }

  /** Adds a mapping; returns why not (and changes nothing) when {@link mapProblem} says so. */
  map(iova: number, gpa: number, size: number): string | undefined {
    const why = this.mapProblem(iova, gpa, size);
    if (why) return why;
    this.#maps.push({ iova, gpa, size });
    this.#maps.sort((a, b) => a.iova - b.iova);
    return undefined;
  }

  /** Removes the mapping made with exactly this `iova` and `size`; false when there is none. */
  unmap(iova: number, size: number): boolean {
    const i = this.#maps.findIndex((m) => m.iova === iova && m.size === size);
    if (i < 0) return false;
    this.#maps.splice(i, 1);
    this.#last = undefined;
    return true;
  }

  /** Removes every mapping. */
  clear(): void {
    this.#maps = [];
    this.#last = undefined;
  }

  /** The guest-physical address of [iova, iova+len), when one mapping covers it. */
  translate(iova: number, len: number): number | undefined {
    if (!isAddr(iova) || !isAddr(len)) return undefined;
    const l = this.#last;
    if (l && iova >= l.iova && len <= l.iova + l.size - iova) return l.gpa + (iova - l.iova);
    for (const m of this.#maps) {
      if (iova >= m.iova && iova < m.iova + m.size && len <= m.iova + m.size - iova) {
        this.#last = m;
        return m.gpa + (iova - m.iova);
      }
    }
    return undefined;
  }

  #gpa(iova: number, len: number): number {
    const g = this.translate(iova, len);
    if (g !== undefined) return g;
    this.#onFault(iova, len);
    throw new MmuFault(iova, len);
  }

  /** Whether one mapping covers the range; a range none covers is a translation failure. */
  contains(addr: number, len: number): boolean {
    if (this.translate(addr, len) !== undefined) return true;
    this.#onFault(addr, len);
    return false;
  }

  /** The byte at I/O address `addr`. */
  readU8(addr: number): number {
    return this.backing.readU8(this.#gpa(addr, 1));
  }
  /** A little-endian u16. */
  readU16(addr: number): number {
    return this.backing.readU16(this.#gpa(addr, 2));
  }
  /** A little-endian u32. */
  readU32(addr: number): number {
    return this.backing.readU32(this.#gpa(addr, 4));
  }
  /** A little-endian u64 as a bigint. */
  readU64(addr: number): bigint {
    return this.backing.readU64(this.#gpa(addr, 8));
  }
  /** A little-endian u64 as a number. */
  readU64Number(addr: number): number {
    return this.backing.readU64Number(this.#gpa(addr, 8));
  }
  /** A u16 read with sequentially consistent ordering. */
  loadU16Atomic(addr: number): number {
    return this.backing.loadU16Atomic(this.#gpa(addr, 2));
  }
  /** A u16 write with sequentially consistent ordering. */
  storeU16Atomic(addr: number, v: number): void {
    this.backing.storeU16Atomic(this.#gpa(addr, 2), v);
  }
  /** Writes a byte. */
  writeU8(addr: number, v: number): void {
    this.backing.writeU8(this.#gpa(addr, 1), v);
  }
  /** Writes a little-endian u16. */
  writeU16(addr: number, v: number): void {
    this.backing.writeU16(this.#gpa(addr, 2), v);
  }
  /** Writes a little-endian u32. */
  writeU32(addr: number, v: number): void {
    this.backing.writeU32(this.#gpa(addr, 4), v);
  }
  /** Writes a little-endian u64. */
  writeU64(addr: number, v: bigint | number): void {
    this.backing.writeU64(this.#gpa(addr, 8), v);
  }
  /** A zero-copy view (inside one mapping). */
  slice(addr: number, len: number): Uint8Array {
    return this.backing.slice(this.#gpa(addr, len), len);
  }
  /** The host address of a range inside one mapping. */
  hostAddress(addr: number, len: number): number {
    return this.backing.hostAddress(this.#gpa(addr, len), len);
  }
  /** Copies bytes out. */
  read(addr: number, len: number): Uint8Array {
    return this.backing.read(this.#gpa(addr, len), len);
  }
  /** Copies bytes into `dst`. */
  readInto(addr: number, dst: Uint8Array): void {
    this.backing.readInto(this.#gpa(addr, dst.byteLength), dst);
  }
  /** Copies `src` in. */
  write(addr: number, src: Uint8Array): void {
    this.backing.write(this.#gpa(addr, src.byteLength), src);
  }
  /** Fills a range with `value`. */
  fill(addr: number, len: number, value = 0): void {
    this.backing.fill(this.#gpa(addr, len), len, value);
  }
}
