/**
 * Guest physical memory: a set of non-overlapping regions, each backed by bytes (an
 * `ArrayBuffer` in unit tests, an `mmap` in a VM). Every access checks the whole range it
 * touches; guest-controlled addresses never reach a typed array unchecked.
 *
 * @module
 */

/** One region of guest-physical address space and its backing bytes. */
export interface Region {
  /** First guest-physical address. */
  readonly gpa: number;
  /** The backing bytes; `bytes.byteLength` is the region size. */
  readonly bytes: Uint8Array;
}

/** Thrown when an access falls outside guest RAM. */
export class GuestMemoryError extends RangeError {
  /** The first address of the access. */
  readonly addr: number;
  /** The access length in bytes. */
  readonly len: number;

  /** The error for an access of `len` bytes at guest-physical `addr`. */
  constructor(addr: number, len: number) {
    super(`Cannot access guest memory: 0x${addr.toString(16)}+${len} is outside guest RAM`);
    this.name = "GuestMemoryError";
    this.addr = addr;
    this.len = len;
  }
}

interface Slot {
  gpa: number;
  end: number;
  bytes: Uint8Array;
  dv: DataView;
  u16: Uint16Array | undefined;
  /** One bit per 4 KiB page written through this object, while tracking is on. */
  dirty: Uint8Array | undefined;
  /** Where `bytes` starts in the host's address space, once asked for. */
  host: number | undefined;
}

/**
 * The accesses a device makes to the memory it was given: {@link GuestMemory} itself, or a
 * view that translates device addresses first (a virtual device's device MMU). Every
 * method checks the whole range and throws a `RangeError` (usually a
 * {@link GuestMemoryError}) for an address the device may not reach.
 */
export interface DeviceMemory {
  /** Whether the whole range [addr, addr+len) is reachable in one piece. */
  contains(addr: number, len: number): boolean;
  /** The byte at `addr`. */
  readU8(addr: number): number;
  /** A little-endian u16. */
  readU16(addr: number): number;
  /** A little-endian u32. */
  readU32(addr: number): number;
  /** A little-endian u64 as a bigint. */
  readU64(addr: number): bigint;
  /** A little-endian u64 as a number (see {@link GuestMemory.readU64Number}). */
  readU64Number(addr: number): number;
  /** A u16 read with sequentially consistent ordering; `addr` even. */
  loadU16Atomic(addr: number): number;
  /** A u16 write with sequentially consistent ordering; `addr` even. */
  storeU16Atomic(addr: number, v: number): void;
  /** Writes the byte `v`. */
  writeU8(addr: number, v: number): void;
  /** Writes a little-endian u16. */
  writeU16(addr: number, v: number): void;
  /** Writes a little-endian u32. */
  writeU32(addr: number, v: number): void;
  /** Writes a little-endian u64 (reduced modulo 2^64). */
  writeU64(addr: number, v: bigint | number): void;
  /** A zero-copy view of [addr, addr+len), which must be reachable in one piece. */
  slice(addr: number, len: number): Uint8Array;
  /**
   * The host address of [addr, addr+len) (reachable in one piece), for a system call that
   * reads or writes guest memory itself; like {@link slice}, the range counts as written.
   */
  hostAddress(addr: number, len: number): number;
  /** Copies [addr, addr+len) out. */
  read(addr: number, len: number): Uint8Array;
  /** Copies memory at `addr` into `dst`. */
  readInto(addr: number, dst: Uint8Array): void;
  /** Copies `src` in at `addr`. */
  write(addr: number, src: Uint8Array): void;
  /** Fills [addr, addr+len) with `value`. */
  fill(addr: number, len: number, value?: number): void;
}

/**
 * Guest physical memory.
 *
 * @example
 * ```ts
 * import { GuestMemory } from "./guest_memory.ts";
 * const mem = GuestMemory.allocate([{ gpa: 0, size: 0x10000 }]);
 * mem.writeU32(0x100, 0xdeadbeef);
 * console.assert(mem.readU32(0x100) === 0xdeadbeef);
 * ```
 */
export class GuestMemory implements DeviceMemory {
  readonly #slots: Slot[];
  #last: Slot;

  /** Wraps regions (sorted by address, non-overlapping, non-empty). */
  constructor(regions: readonly Region[]) {
    if (regions.length === 0) throw new RangeError("Cannot create guest memory: no regions");
    const slots = regions
      .map((r) => ({
        gpa: r.gpa,
        end: r.gpa + r.bytes.byteLength,
        bytes: r.bytes,
        dv: new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength),
        u16: undefined as Uint16Array | undefined,
        dirty: undefined as Uint8Array | undefined,
        host: undefined as number | undefined,
      }))
      .sort((a, b) => a.gpa - b.gpa);
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i]!;
      if (!Number.isSafeInteger(s.gpa) || s.gpa < 0 || s.end === s.gpa) {
        throw new RangeError(`Cannot create guest memory: bad region at 0x${s.gpa.toString(16)}`);
      }
      const prev = slots[i - 1];
      if (prev && prev.end > s.gpa) {
        throw new RangeError(
          `Cannot create guest memory: regions at 0x${prev.gpa.toString(16)} and 0x${
            s.gpa.toString(16)
          } overlap`,
        );
      }
    }
    this.#slots = slots;
    this.#last = slots[0]!;
  }

  /** Guest memory backed by fresh zeroed `ArrayBuffer`s (for tests and tools). */
  static allocate(layout: readonly { gpa: number; size: number }[]): GuestMemory {
    return new GuestMemory(layout.map((l) => ({ gpa: l.gpa, bytes: new Uint8Array(l.size) })));
  }

  /** The regions, in address order. */
  get regions(): Region[] {
    return this.#slots.map((s) => ({ gpa: s.gpa, bytes: s.bytes }));
  }

  /** Total bytes of RAM over all regions. */
  get totalSize(): number {
    return this.#slots.reduce((n, s) => n + s.bytes.byteLength, 0);
  }

  /** One past the highest guest-physical address backed by RAM. */
  get end(): number {
    return this.#slots[this.#slots.length - 1]!.end;
  }

  /** The slot holding [addr, addr+len), or undefined when the range is not in one region. */
  #find(addr: number, len: number): Slot | undefined {
    const l = this.#last;
    // addr - gpa >= 0 and (addr - gpa) + len <= size, without overflowing into floats.
    if (addr >= l.gpa && len <= l.end - addr) return l;
    for (const s of this.#slots) {
      if (addr >= s.gpa && addr < s.end && len <= s.end - addr) {
        this.#last = s;
        return s;
      }
    }
    return undefined;
  }

  #slot(addr: number, len: number): Slot {
    const s = typeof addr === "number" && addr >= 0 ? this.#find(addr, len) : undefined;
    if (s === undefined) throw new GuestMemoryError(addr, len);
    return s;
  }

  /**
   * Starts (or stops) recording which pages are written through this object (device
   * writes, which KVM's dirty log does not see). Zero-copy slices count as written.
   */
  trackDirty(on: boolean): void {
    for (const s of this.#slots) {
      s.dirty = on ? new Uint8Array(Math.ceil(s.bytes.byteLength / 4096 / 8)) : undefined;
    }
  }

  /** The dirty-page bitmaps per region (bit i = page i), cleared by the call. */
  takeDirty(): Uint8Array[] {
    return this.#slots.map((s) => {
      const d = s.dirty ?? new Uint8Array(Math.ceil(s.bytes.byteLength / 4096 / 8));
      if (s.dirty) s.dirty = new Uint8Array(d.byteLength);
      return d;
    });
  }

  #mark(s: Slot, addr: number, len: number): void {
    const d = s.dirty;
    if (d === undefined || len === 0) return;
    const first = (addr - s.gpa) >>> 12, last = (addr - s.gpa + len - 1) >>> 12;
    for (let p = first; p <= last; p++) d[p >>> 3]! |= 1 << (p & 7);
  }

  /** Whether the whole range [addr, addr+len) lies in one region. */
  contains(addr: number, len: number): boolean {
    return Number.isSafeInteger(addr) && addr >= 0 && Number.isSafeInteger(len) && len >= 0 &&
      this.#find(addr, len) !== undefined;
  }

  /** The byte at `addr`. */
  readU8(addr: number): number {
    const s = this.#slot(addr, 1);
    return s.dv.getUint8(addr - s.gpa);
  }

  /** A little-endian u16. */
  readU16(addr: number): number {
    const s = this.#slot(addr, 2);
    return s.dv.getUint16(addr - s.gpa, true);
  }

  /** A little-endian u32. */
  readU32(addr: number): number {
    const s = this.#slot(addr, 4);
    return s.dv.getUint32(addr - s.gpa, true);
  }

  /** A little-endian u64 as a bigint. */
  readU64(addr: number): bigint {
    const s = this.#slot(addr, 8);
    return s.dv.getBigUint64(addr - s.gpa, true);
  }

  /**
   * A little-endian u64 as a number; values of 2^53 and above lose low bits but stay at
   * least 2^53, so they still fail any bounds check against guest RAM.
   */
  readU64Number(addr: number): number {
    const s = this.#slot(addr, 8);
    const o = addr - s.gpa;
    return s.dv.getUint32(o + 4, true) * 0x1_0000_0000 + s.dv.getUint32(o, true);
  }

  /**
   * A u16 read with sequentially consistent ordering (`Atomics.load`): for ring indices
   * that another thread (a vCPU) writes. `addr` must be even.
   */
  loadU16Atomic(addr: number): number {
    const s = this.#slot(addr, 2);
    return Atomics.load(this.#u16(s, addr), (addr - s.gpa) >>> 1);
  }

  /** A u16 write with sequentially consistent ordering (`Atomics.store`); `addr` even. */
  storeU16Atomic(addr: number, v: number): void {
    const s = this.#slot(addr, 2);
    if (s.dirty) this.#mark(s, addr, 2);
    Atomics.store(this.#u16(s, addr), (addr - s.gpa) >>> 1, v);
  }

  #u16(s: Slot, addr: number): Uint16Array {
    if ((addr - s.gpa) & 1 || s.bytes.byteOffset & 1) {
      throw new RangeError(`Cannot access guest memory atomically: 0x${addr.toString(16)} is odd`);
    }
    return s.u16 ??= new Uint16Array(s.bytes.buffer, s.bytes.byteOffset, s.bytes.byteLength >>> 1);
  }

  /** Writes the byte `v` at `addr`. */
  writeU8(addr: number, v: number): void {
    const s = this.#slot(addr, 1);
    if (s.dirty) this.#mark(s, addr, 1);
    s.dv.setUint8(addr - s.gpa, v);
  }

  /** Writes `v` as a little-endian u16. */
  writeU16(addr: number, v: number): void {
    const s = this.#slot(addr, 2);
    if (s.dirty) this.#mark(s, addr, 2);
    s.dv.setUint16(addr - s.gpa, v, true);
  }

  /** Writes `v` as a little-endian u32. */
  writeU32(addr: number, v: number): void {
    const s = this.#slot(addr, 4);
    if (s.dirty) this.#mark(s, addr, 4);
    s.dv.setUint32(addr - s.gpa, v, true);
  }

  /** Writes `v` as a little-endian u64 (reduced modulo 2^64). */
  writeU64(addr: number, v: bigint | number): void {
    const s = this.#slot(addr, 8);
    if (s.dirty) this.#mark(s, addr, 8);
    s.dv.setBigUint64(addr - s.gpa, BigInt.asUintN(64, BigInt(v)), true);
  }

  /**
   * A zero-copy view of [addr, addr+len). The range must lie in one region; writes to the
   * view are writes to guest memory.
   */
  slice(addr: number, len: number): Uint8Array {
    checkLen(len);
    const s = this.#slot(addr, len);
    if (s.dirty) this.#mark(s, addr, len);
    const o = addr - s.gpa;
    return s.bytes.subarray(o, o + len);
  }

  /**
   * The host address of [addr, addr+len) (one region), for a system call that reads or
   * writes it directly, with no view made; the range counts as written, like {@link slice}.
   * Region bytes never move (mmap'd RAM, or an ArrayBuffer's fixed backing store), and stay
   * valid while this object is alive.
   */
  hostAddress(addr: number, len: number): number {
    checkLen(len);
    const s = this.#slot(addr, len);
    if (s.dirty) this.#mark(s, addr, len);
    // Userspace addresses are below 2^47: exact as a number.
    s.host ??= Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(s.bytes.buffer))) +
      s.bytes.byteOffset;
    return s.host + (addr - s.gpa);
  }

  /** Copies [addr, addr+len) out of guest memory (may span adjacent regions). */
  read(addr: number, len: number): Uint8Array {
    const out = new Uint8Array(len);
    this.readInto(addr, out);
    return out;
  }

  /** Copies guest memory at `addr` into `dst` (may span adjacent regions). */
  readInto(addr: number, dst: Uint8Array): void {
    this.#spans(addr, dst.byteLength, (s, o, d, n) => dst.set(s.bytes.subarray(o, o + n), d));
  }

  /** Copies `src` into guest memory at `addr` (may span adjacent regions). */
  write(addr: number, src: Uint8Array): void {
    this.#spans(addr, src.byteLength, (s, o, d, n) => {
      if (s.dirty) this.#mark(s, s.gpa + o, n);
      s.bytes.set(src.subarray(d, d + n), o);
    });
  }

  /** Fills [addr, addr+len) with `value`. */
  fill(addr: number, len: number, value = 0): void {
    this.#spans(addr, len, (s, o, _d, n) => {
      if (s.dirty) this.#mark(s, s.gpa + o, n);
      s.bytes.fill(value, o, o + n);
    });
  }

  /** Checks the whole range first, then calls `fn` for each region piece. */
  #spans(
    addr: number,
    len: number,
    fn: (s: Slot, offset: number, done: number, n: number) => void,
  ): void {
    checkLen(len);
    if (!Number.isSafeInteger(addr) || addr < 0) throw new GuestMemoryError(addr, len);
    const one = this.#find(addr, len);
    if (one) return fn(one, addr - one.gpa, 0, len);
    // Spanning: every byte must be covered by regions that touch end to end.
    const pieces: [Slot, number, number, number][] = [];
    let a = addr, done = 0;
    while (done < len) {
      const s = this.#slots.find((x) => a >= x.gpa && a < x.end);
      if (!s) throw new GuestMemoryError(addr, len);
      const n = Math.min(len - done, s.end - a);
      pieces.push([s, a - s.gpa, done, n]);
      a += n;
      done += n;
    }
    for (const p of pieces) fn(...p);
  }
}

function checkLen(len: number): void {
  if (!Number.isSafeInteger(len) || len < 0) {
    throw new RangeError(`Cannot access guest memory: bad length ${len}`);
  }
}
