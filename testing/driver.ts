/**
 * A driver-side test harness: drives any virtio-mmio device through its register file and
 * guest memory the way Linux's `virtio_mmio` and `virtio_ring` drivers do — the status
 * handshake with the FEATURES_OK re-read, queue setup (modern and legacy layouts),
 * adding direct and indirect chains, kicking with notification suppression, reaping the
 * used ring, and interrupt suppression with or without event index.
 *
 * @module
 */

import type { GuestMemory } from "../memory/guest_memory.ts";
import type { BusDevice } from "../bus/bus.ts";
import {
  bit,
  DESC_F,
  F,
  STATUS,
  VRING_AVAIL_F_NO_INTERRUPT,
  VRING_USED_F_NO_NOTIFY,
} from "../virtio/constants.ts";
import { vringNeedEvent, wrap16 } from "../virtio/ring.ts";
import { REG } from "../transports/mmio.ts";

/** Hands out guest memory for rings and buffers (a bump allocator). */
export class GuestAllocator {
  #next: number;

  constructor(readonly mem: GuestMemory, readonly base: number, readonly end: number) {
    this.#next = base;
  }

  /** `size` bytes aligned to `align`, zeroed. */
  alloc(size: number, align = 16): number {
    const a = Math.ceil(this.#next / align) * align;
    if (a + size > this.end) throw new RangeError(`Test allocator out of memory (${size} bytes)`);
    this.#next = a + size;
    this.mem.fill(a, size, 0);
    return a;
  }
}

/** A buffer of a chain, as the driver adds it. */
export interface Segment {
  addr: number;
  len: number;
  /** Device-writable. */
  write: boolean;
}

/** The driver side of one split virtqueue, like Linux's `vring_virtqueue`. */
export class VirtqueueDriver {
  readonly size: number;
  readonly desc: number;
  readonly avail: number;
  readonly used: number;
  /** VIRTIO_F_EVENT_IDX negotiated. */
  eventIdx = false;
  #free: number[];
  #availIdx = 0;
  #kickedAt = 0;
  #lastUsed = 0;
  #chains = new Map<number, number[]>(); // head -> descriptors to free
  #cbEnabled = true;
  #indirectTables = new Map<number, number>();

  constructor(
    readonly mem: GuestMemory,
    readonly alloc: GuestAllocator,
    readonly index: number,
    layout: { size: number; desc: number; avail: number; used: number },
  ) {
    this.size = layout.size;
    this.desc = layout.desc;
    this.avail = layout.avail;
    this.used = layout.used;
    this.#free = Array.from({ length: this.size }, (_, i) => i);
  }

  /** Free descriptors. */
  get freeCount(): number {
    return this.#free.length;
  }

  /** The avail index the driver has published. */
  get availIdx(): number {
    return this.#availIdx;
  }

  #writeDesc(table: number, i: number, s: Segment, next: number | undefined): void {
    const d = table + 16 * i;
    this.mem.writeU64(d, s.addr);
    this.mem.writeU32(d + 8, s.len);
    this.mem.writeU16(
      d + 12,
      (s.write ? DESC_F.WRITE : 0) | (next !== undefined ? DESC_F.NEXT : 0),
    );
    this.mem.writeU16(d + 14, next ?? 0);
  }

  /**
   * Adds a chain (readable segments first) and publishes it; returns its head id. With
   * `indirect`, the segments go in an indirect table behind one ring descriptor.
   */
  add(segments: Segment[], opts: { indirect?: boolean } = {}): number {
    if (segments.length === 0) throw new RangeError("Cannot add an empty chain");
    let head: number;
    if (opts.indirect) {
      const id = this.#free.pop();
      if (id === undefined) throw new RangeError("Queue full");
      const table = this.alloc.alloc(16 * segments.length, 16);
      segments.forEach((s, i) =>
        this.#writeDesc(table, i, s, i + 1 < segments.length ? i + 1 : undefined)
      );
      const d = this.desc + 16 * id;
      this.mem.writeU64(d, table);
      this.mem.writeU32(d + 8, 16 * segments.length);
      this.mem.writeU16(d + 12, DESC_F.INDIRECT);
      this.mem.writeU16(d + 14, 0);
      this.#chains.set(id, [id]);
      this.#indirectTables.set(id, table);
      head = id;
    } else {
      if (segments.length > this.#free.length) throw new RangeError("Queue full");
      const ids = segments.map(() => this.#free.pop()!);
      segments.forEach((s, i) => this.#writeDesc(this.desc, ids[i]!, s, ids[i + 1]));
      head = ids[0]!;
      this.#chains.set(head, ids);
    }
    this.publish(head);
    return head;
  }

  /** Puts `head` in the avail ring and moves avail.idx (what `virtqueue_add` ends with). */
  publish(head: number): void {
    this.mem.writeU16(this.avail + 4 + 2 * (this.#availIdx & (this.size - 1)), head);
    this.#availIdx = wrap16(this.#availIdx + 1);
    this.mem.storeU16Atomic(this.avail + 2, this.#availIdx);
  }

  /** Sets avail.idx directly (for tests that lie to the device). */
  setAvailIdx(idx: number): void {
    this.#availIdx = wrap16(idx);
    this.mem.storeU16Atomic(this.avail + 2, this.#availIdx);
  }

  /** Whether the device wants a notification for what was published since the last kick. */
  needsKick(): boolean {
    const old = this.#kickedAt, now = this.#availIdx;
    this.#kickedAt = now;
    if (this.eventIdx) {
      const availEvent = this.mem.loadU16Atomic(this.used + 4 + 8 * this.size);
      return vringNeedEvent(availEvent, now, old);
    }
    return (this.mem.loadU16Atomic(this.used) & VRING_USED_F_NO_NOTIFY) === 0;
  }

  /** The next used element, freeing its descriptors; null when the used ring is empty. */
  getUsed(): { id: number; len: number } | null {
    const usedIdx = this.mem.loadU16Atomic(this.used + 2);
    if (usedIdx === this.#lastUsed) return null;
    const e = this.used + 4 + 8 * (this.#lastUsed & (this.size - 1));
    const id = this.mem.readU32(e), len = this.mem.readU32(e + 4);
    this.#lastUsed = wrap16(this.#lastUsed + 1);
    const ids = this.#chains.get(id);
    if (ids === undefined) throw new Error(`Device returned unknown id ${id}`);
    this.#chains.delete(id);
    this.#indirectTables.delete(id);
    this.#free.push(...ids);
    // Like virtqueue_get_buf: while interrupts are wanted, ask for one at the next entry.
    if (this.eventIdx && this.#cbEnabled) {
      this.mem.storeU16Atomic(this.avail + 4 + 2 * this.size, this.#lastUsed);
    }
    return { id, len };
  }

  /** All used elements now available. */
  drainUsed(): { id: number; len: number }[] {
    const out = [];
    for (let u = this.getUsed(); u; u = this.getUsed()) out.push(u);
    return out;
  }

  /**
   * Asks for no interrupts: VRING_AVAIL_F_NO_INTERRUPT, or with event index a used_event
   * half the index space away (the device must then not interrupt).
   */
  disableInterrupts(): void {
    this.#cbEnabled = false;
    if (this.eventIdx) {
      this.mem.storeU16Atomic(this.avail + 4 + 2 * this.size, wrap16(this.#lastUsed + 0x8000));
    } else this.mem.storeU16Atomic(this.avail, VRING_AVAIL_F_NO_INTERRUPT);
  }

  /**
   * Asks for an interrupt at the next used buffer, then re-checks: true when used buffers
   * arrived meanwhile (the caller must reap again: the `virtqueue_enable_cb` contract).
   */
  enableInterrupts(): boolean {
    this.#cbEnabled = true;
    if (this.eventIdx) this.mem.storeU16Atomic(this.avail + 4 + 2 * this.size, this.#lastUsed);
    else this.mem.storeU16Atomic(this.avail, 0);
    return this.mem.loadU16Atomic(this.used + 2) !== this.#lastUsed;
  }

  /** Asks for an interrupt only once `n` more buffers are used (event index only). */
  delayInterrupts(n: number): void {
    this.mem.storeU16Atomic(this.avail + 4 + 2 * this.size, wrap16(this.#lastUsed + n - 1));
  }
}

/** Result of {@link MmioDriver.init}. */
export interface InitResult {
  ok: boolean;
  /** Features written to the device. */
  features: bigint;
  /** Status read back after the handshake. */
  status: number;
  /** Why it failed, when it did. */
  error?: string;
}

/** Drives a virtio-mmio device through its registers like Linux's virtio_mmio. */
export class MmioDriver {
  readonly queues: VirtqueueDriver[] = [];
  version = 0;
  #features = 0n;

  constructor(readonly dev: BusDevice, readonly mem: GuestMemory, readonly alloc: GuestAllocator) {}

  readReg(offset: number): number {
    const b = new Uint8Array(4);
    this.dev.read(offset, b);
    return new DataView(b.buffer).getUint32(0, true);
  }

  writeReg(offset: number, value: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, value >>> 0, true);
    this.dev.write(offset, b);
  }

  get status(): number {
    return this.readReg(REG.STATUS);
  }

  /** Reads config bytes consistently: retries while the generation changes. */
  readConfig(offset: number, len: number): Uint8Array {
    for (let tries = 0; tries < 100; tries++) {
      const gen = this.readReg(REG.CONFIG_GENERATION);
      const out = new Uint8Array(len);
      for (let i = 0; i < len; i++) {
        const b = new Uint8Array(1);
        this.dev.read(REG.CONFIG + offset + i, b);
        out[i] = b[0]!;
      }
      if (this.readReg(REG.CONFIG_GENERATION) === gen) return out;
    }
    throw new Error("Config generation never settled");
  }

  writeConfig(offset: number, bytes: Uint8Array): void {
    this.dev.write(REG.CONFIG + offset, bytes);
  }

  /** The device's offered features (both words on modern, word 0 on legacy). */
  deviceFeatures(): bigint {
    this.writeReg(REG.DEVICE_FEATURES_SEL, 0);
    let f = BigInt(this.readReg(REG.DEVICE_FEATURES));
    if (this.version === 2) {
      this.writeReg(REG.DEVICE_FEATURES_SEL, 1);
      f |= BigInt(this.readReg(REG.DEVICE_FEATURES)) << 32n;
    }
    return f;
  }

  /**
   * Reset, ACKNOWLEDGE, DRIVER, feature negotiation (`wanted` & offered, or exactly
   * `force` when given), FEATURES_OK and its re-read. On refusal it sets FAILED, as Linux does.
   */
  init(opts: { wanted?: bigint; force?: bigint } = {}): InitResult {
    if (this.readReg(REG.MAGIC) !== 0x74726976) {
      return { ok: false, features: 0n, status: 0, error: "bad magic" };
    }
    this.version = this.readReg(REG.VERSION);
    if (this.version !== 1 && this.version !== 2) {
      return { ok: false, features: 0n, status: 0, error: `version ${this.version}` };
    }
    this.writeReg(REG.STATUS, 0);
    if (this.status !== 0) {
      return { ok: false, features: 0n, status: this.status, error: "reset did not clear status" };
    }
    this.writeReg(REG.STATUS, STATUS.ACKNOWLEDGE);
    this.writeReg(REG.STATUS, STATUS.ACKNOWLEDGE | STATUS.DRIVER);
    const offered = this.deviceFeatures();
    if (this.version === 2 && !(offered & bit(F.VERSION_1))) {
      return {
        ok: false,
        features: 0n,
        status: this.status,
        error: "version 2 device without VERSION_1",
      };
    }
    const features = opts.force ?? (offered & (opts.wanted ?? offered));
    this.writeReg(REG.DRIVER_FEATURES_SEL, 0);
    this.writeReg(REG.DRIVER_FEATURES, Number(features & 0xffff_ffffn));
    if (this.version === 2) {
      this.writeReg(REG.DRIVER_FEATURES_SEL, 1);
      this.writeReg(REG.DRIVER_FEATURES, Number((features >> 32n) & 0xffff_ffffn));
      this.writeReg(REG.STATUS, STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK);
      const s = this.status;
      if (!(s & STATUS.FEATURES_OK)) {
        this.writeReg(REG.STATUS, s | STATUS.FAILED);
        return { ok: false, features, status: this.status, error: "device refused FEATURES_OK" };
      }
    } else {
      this.writeReg(REG.GUEST_PAGE_SIZE, 4096);
    }
    this.#features = features;
    return { ok: true, features, status: this.status };
  }

  /** Sets up queue `index` with at most `size` entries (Linux `vm_setup_vq`). */
  setupQueue(index: number, size?: number): VirtqueueDriver {
    this.writeReg(REG.QUEUE_SEL, index);
    const busy = this.version === 2 ? this.readReg(REG.QUEUE_READY) : this.readReg(REG.QUEUE_PFN);
    if (busy) throw new Error(`Queue ${index} is already set up`);
    const max = this.readReg(REG.QUEUE_NUM_MAX);
    if (max === 0) throw new Error(`Queue ${index} is not available`);
    const n = Math.min(max, size ?? max);
    this.writeReg(REG.QUEUE_NUM, n);
    let layout;
    if (this.version === 2) {
      layout = {
        size: n,
        desc: this.alloc.alloc(16 * n, 16),
        avail: this.alloc.alloc(6 + 2 * n, 2),
        used: this.alloc.alloc(6 + 8 * n, 4),
      };
      const hi = (a: number) => Math.floor(a / 0x1_0000_0000);
      this.writeReg(REG.QUEUE_DESC_LOW, layout.desc >>> 0);
      this.writeReg(REG.QUEUE_DESC_HIGH, hi(layout.desc));
      this.writeReg(REG.QUEUE_AVAIL_LOW, layout.avail >>> 0);
      this.writeReg(REG.QUEUE_AVAIL_HIGH, hi(layout.avail));
      this.writeReg(REG.QUEUE_USED_LOW, layout.used >>> 0);
      this.writeReg(REG.QUEUE_USED_HIGH, hi(layout.used));
      this.writeReg(REG.QUEUE_READY, 1);
    } else {
      const availSize = 6 + 2 * n;
      const usedOff = Math.ceil((16 * n + availSize) / 4096) * 4096;
      const base = this.alloc.alloc(usedOff + 6 + 8 * n, 4096);
      layout = { size: n, desc: base, avail: base + 16 * n, used: base + usedOff };
      this.writeReg(REG.QUEUE_ALIGN, 4096);
      this.writeReg(REG.QUEUE_PFN, base / 4096);
    }
    const q = new VirtqueueDriver(this.mem, this.alloc, index, layout);
    q.eventIdx = (this.#features & bit(F.EVENT_IDX)) !== 0n;
    this.queues[index] = q;
    return q;
  }

  /** DRIVER_OK: the device goes live. */
  driverOk(): void {
    this.writeReg(REG.STATUS, this.status | STATUS.DRIVER_OK);
  }

  /** Notifies the device about queue `q` if it asked to be notified; returns whether it did. */
  kick(q: VirtqueueDriver): boolean {
    if (!q.needsKick()) return false;
    this.writeReg(REG.QUEUE_NOTIFY, q.index);
    return true;
  }

  /** Reads and acknowledges the interrupt status (what the interrupt handler does). */
  ackInterrupt(): number {
    const isr = this.readReg(REG.INTERRUPT_STATUS);
    if (isr) this.writeReg(REG.INTERRUPT_ACK, isr);
    return isr;
  }

  /** Copies `data` into fresh guest buffers and returns them as a readable segment. */
  outBuffer(data: Uint8Array): Segment {
    const addr = this.alloc.alloc(Math.max(data.byteLength, 1), 8);
    this.mem.write(addr, data);
    return { addr, len: data.byteLength, write: false };
  }

  /** A fresh writable guest buffer of `len` bytes. */
  inBuffer(len: number): Segment {
    return { addr: this.alloc.alloc(Math.max(len, 1), 8), len, write: true };
  }
}
