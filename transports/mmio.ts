/**
 * The virtio-mmio transport: the version 2 register file (and the legacy version 1
 * layout, for old guests, where the device offers no VERSION_1), as one `switch` for
 * reads and one for writes over a {@link VirtioDevice}.
 *
 * Registers are 32-bit; other widths are ignored (reads give 0). Config space at 0x100
 * takes 1, 2 and 4 byte accesses. Illegal accesses are logged and ignored, never fatal.
 *
 * @module
 */

import type { BusDevice } from "../bus/bus.ts";
import { checkVirtioState, type VirtioDevice, type VirtioStateSpec } from "../virtio/device.ts";
import type { RamMap } from "../virtio/queue.ts";

/** Register offsets. */
export const REG = {
  MAGIC: 0x000,
  VERSION: 0x004,
  DEVICE_ID: 0x008,
  VENDOR_ID: 0x00c,
  DEVICE_FEATURES: 0x010,
  DEVICE_FEATURES_SEL: 0x014,
  DRIVER_FEATURES: 0x020,
  DRIVER_FEATURES_SEL: 0x024,
  GUEST_PAGE_SIZE: 0x028,
  QUEUE_SEL: 0x030,
  QUEUE_NUM_MAX: 0x034,
  QUEUE_NUM: 0x038,
  QUEUE_ALIGN: 0x03c,
  QUEUE_PFN: 0x040,
  QUEUE_READY: 0x044,
  QUEUE_NOTIFY: 0x050,
  INTERRUPT_STATUS: 0x060,
  INTERRUPT_ACK: 0x064,
  STATUS: 0x070,
  QUEUE_DESC_LOW: 0x080,
  QUEUE_DESC_HIGH: 0x084,
  QUEUE_AVAIL_LOW: 0x090,
  QUEUE_AVAIL_HIGH: 0x094,
  QUEUE_USED_LOW: 0x0a0,
  QUEUE_USED_HIGH: 0x0a4,
  SHM_SEL: 0x0ac,
  SHM_LEN_LOW: 0x0b0,
  SHM_LEN_HIGH: 0x0b4,
  SHM_BASE_LOW: 0x0b8,
  SHM_BASE_HIGH: 0x0bc,
  CONFIG_GENERATION: 0x0fc,
  CONFIG: 0x100,
} as const;

/** "virt" */
export const MMIO_MAGIC = 0x74726976;
/** Our vendor id: "DENO" in little-endian bytes. */
export const MMIO_VENDOR = 0x4f4e4544;
/** Size of a virtio-mmio device window. */
export const MMIO_WINDOW = 0x1000;

/**
 * Binds a queue's notifications to something faster than an MMIO exit (KVM_IOEVENTFD on
 * QueueNotify with datamatch = queue index). Provided by the VMM; tests leave it out.
 */
export interface NotifyBinder {
  /** Starts delivering notifications of queue `index` to `notify`. */
  bind(index: number, notify: () => void): void;
  /** Stops delivering them. */
  unbind(index: number): void;
}

/** Options of {@link MmioTransport}. */
export interface MmioOptions {
  /** Bind queue notifications to ioeventfds when the driver goes live. */
  notifier?: NotifyBinder;
  log?: (message: string) => void;
}

const MAX_DEFERRED_WRITES = 4096;

/** A virtio device on the MMIO bus. */
export class MmioTransport implements BusDevice {
  /** The device core behind the registers. */
  readonly device: VirtioDevice;
  /** 2 (modern) or 1 (legacy), chosen by the device's interface. */
  readonly version: number;
  #notifier: NotifyBinder | undefined;
  #log: (m: string) => void;
  #deviceFeaturesSel = 0;
  #driverFeaturesSel = 0;
  #queueSel = 0;
  #guestPageSize = 4096;
  #queueAlign = new Map<number, number>();
  #queuePfn = new Map<number, number>();
  #bound = new Set<number>();
  #deferred: [number, Uint8Array][] = [];

  /** The register window of `device`: version 1 if the device is legacy, else 2. */
  constructor(device: VirtioDevice, opts: MmioOptions = {}) {
    this.device = device;
    this.version = device.legacy ? 1 : 2;
    this.#notifier = opts.notifier;
    this.#log = opts.log ?? (() => {});
  }

  /** Bus read. */
  read(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset >= REG.CONFIG) return this.device.readConfig(offset - REG.CONFIG, data);
    if (data.byteLength !== 4 || offset % 4) {
      return this.#log(`Ignored ${data.byteLength}-byte register read at 0x${offset.toString(16)}`);
    }
    const v = this.#readReg(offset);
    new DataView(data.buffer, data.byteOffset, 4).setUint32(0, v >>> 0, true);
  }

  #readReg(offset: number): number {
    const d = this.device;
    const q = d.queues[this.#queueSel];
    switch (offset) {
      case REG.MAGIC:
        return MMIO_MAGIC;
      case REG.VERSION:
        return this.version;
      case REG.DEVICE_ID:
        return d.backend.deviceType;
      case REG.VENDOR_ID:
        return MMIO_VENDOR;
      case REG.DEVICE_FEATURES:
        return d.deviceFeaturesWord(this.#deviceFeaturesSel);
      case REG.QUEUE_NUM_MAX:
        return q ? q.maxSize : 0;
      case REG.QUEUE_READY:
        return this.version === 2 && q?.ready ? 1 : 0;
      case REG.QUEUE_PFN:
        return this.version === 1 ? this.#queuePfn.get(this.#queueSel) ?? 0 : 0;
      case REG.INTERRUPT_STATUS:
        return d.isr;
      case REG.STATUS:
        return d.status;
      case REG.SHM_LEN_LOW:
      case REG.SHM_LEN_HIGH:
      case REG.SHM_BASE_LOW:
      case REG.SHM_BASE_HIGH:
        return 0xffff_ffff; // no shared memory regions
      case REG.CONFIG_GENERATION:
        return this.version === 2 ? d.configGeneration : 0;
      default:
        this.#log(`Read of write-only or unknown register 0x${offset.toString(16)}`);
        return 0;
    }
  }

  /** Bus write. While the device is stopped, writes wait and are replayed on resume. */
  write(offset: number, data: Uint8Array): void {
    if (this.device.frozen) {
      if (this.#deferred.length < MAX_DEFERRED_WRITES) this.#deferred.push([offset, data.slice()]);
      else this.#log(`Dropped register write at 0x${offset.toString(16)}: too many while stopped`);
      return;
    }
    this.#write(offset, data);
  }

  #write(offset: number, data: Uint8Array): void {
    if (offset >= REG.CONFIG) return this.device.writeConfig(offset - REG.CONFIG, data);
    if (data.byteLength !== 4 || offset % 4) {
      return this.#log(
        `Ignored ${data.byteLength}-byte register write at 0x${offset.toString(16)}`,
      );
    }
    const v = new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true);
    this.#writeReg(offset, v);
  }

  #writeReg(offset: number, v: number): void {
    const d = this.device;
    const q = d.queues[this.#queueSel];
    const queueReg = (what: string): boolean => {
      if (!q) {
        this.#log(`Ignored ${what}: queue ${this.#queueSel} does not exist`);
        return false;
      }
      if (!d.queuesWritable) {
        this.#log(`Ignored ${what} in status 0x${d.status.toString(16)}`);
        return false;
      }
      if (q.ready && what !== "QueueReady") {
        this.#log(`Ignored ${what}: queue ${this.#queueSel} is ready`);
        return false;
      }
      return true;
    };
    switch (offset) {
      case REG.DEVICE_FEATURES_SEL:
        this.#deviceFeaturesSel = v;
        return;
      case REG.DRIVER_FEATURES:
        return d.writeDriverFeaturesWord(this.#driverFeaturesSel, v);
      case REG.DRIVER_FEATURES_SEL:
        this.#driverFeaturesSel = v;
        return;
      case REG.QUEUE_SEL:
        this.#queueSel = v;
        return;
      case REG.QUEUE_NUM:
        if (queueReg("QueueNum")) {
          const why = q!.setSize(v);
          if (why) this.#log(`Ignored QueueNum ${v}: ${why}`);
        }
        return;
      case REG.QUEUE_READY:
        if (this.version !== 2) return this.#log("Ignored QueueReady on a legacy device");
        if (v === 0 && q) return q.setReady(false);
        if (queueReg("QueueReady")) q!.setReady(v === 1);
        return;
      case REG.QUEUE_DESC_LOW:
      case REG.QUEUE_DESC_HIGH:
      case REG.QUEUE_AVAIL_LOW:
      case REG.QUEUE_AVAIL_HIGH:
      case REG.QUEUE_USED_LOW:
      case REG.QUEUE_USED_HIGH: {
        if (this.version !== 2) return this.#log("Ignored queue address write on a legacy device");
        if (!queueReg("queue address")) return;
        const field = offset < REG.QUEUE_AVAIL_LOW
          ? "descAddr"
          : offset < REG.QUEUE_USED_LOW
          ? "availAddr"
          : "usedAddr";
        const high = (offset & 4) !== 0;
        const cur = q![field];
        const lo = cur % 0x1_0000_0000, hi = Math.floor(cur / 0x1_0000_0000);
        // Beyond 2^53 the setter stores an address no RAM holds: unusable rather than wrong.
        const why = q!.setAddress(field, (high ? v : hi) * 0x1_0000_0000 + (high ? lo : v));
        if (why) this.#log(`Ignored queue address write: ${why}`);
        return;
      }
      case REG.QUEUE_NOTIFY:
        return d.notify(v);
      case REG.INTERRUPT_ACK:
        return d.ackInterrupt(v);
      case REG.STATUS:
        return this.#writeStatus(v);
      case REG.GUEST_PAGE_SIZE:
        if (this.version !== 1) return this.#log("Ignored GuestPageSize on a modern device");
        if (v === 0 || (v & (v - 1)) !== 0) return this.#log(`Ignored GuestPageSize ${v}`);
        this.#guestPageSize = v;
        return;
      case REG.QUEUE_ALIGN:
        if (this.version !== 1) return this.#log("Ignored QueueAlign on a modern device");
        if (v === 0 || (v & (v - 1)) !== 0) return this.#log(`Ignored QueueAlign ${v}`);
        if (queueReg("QueueAlign")) this.#queueAlign.set(this.#queueSel, v);
        return;
      case REG.QUEUE_PFN:
        if (this.version !== 1) return this.#log("Ignored QueuePFN on a modern device");
        if (!q) return this.#log(`Ignored QueuePFN: queue ${this.#queueSel} does not exist`);
        if (v === 0) {
          q.setReady(false);
          this.#queuePfn.set(this.#queueSel, 0);
          return;
        }
        if (!queueReg("QueuePFN")) return;
        this.#legacyQueue(v);
        return;
      case REG.SHM_SEL:
        return;
      default:
        this.#log(`Write to read-only or unknown register 0x${offset.toString(16)}`);
    }
  }

  /** Legacy layout: descriptors at PFN * page size, avail after them, used aligned after. */
  #legacyQueue(pfn: number): void {
    const q = this.device.queues[this.#queueSel]!;
    const align = this.#queueAlign.get(this.#queueSel) ?? 4096;
    const desc = pfn * this.#guestPageSize;
    const avail = desc + 16 * q.size;
    const used = Math.ceil((avail + 6 + 2 * q.size) / align) * align;
    const why = q.setAddress("descAddr", desc) ?? q.setAddress("availAddr", avail) ??
      q.setAddress("usedAddr", used);
    if (why) return this.#log(`Ignored QueuePFN ${pfn}: ${why}`);
    q.setReady(true);
    this.#queuePfn.set(this.#queueSel, pfn);
  }

  #writeStatus(v: number): void {
    const d = this.device;
    const wasLive = (d.status & 4) !== 0;
    d.writeStatus(v);
    if (d.status === 0) {
      this.#unbindAll();
      this.#queuePfn.clear();
      this.#queueAlign.clear();
      this.#deviceFeaturesSel = this.#driverFeaturesSel = this.#queueSel = 0;
      return;
    }
    if (!wasLive && d.active) this.#bindAll();
  }

  #bindAll(): void {
    if (!this.#notifier) return;
    this.device.queues.forEach((q, i) => {
      if (!q.ready || this.#bound.has(i)) return;
      this.#notifier!.bind(i, () => this.device.notify(i));
      this.#bound.add(i);
    });
  }

  #unbindAll(): void {
    for (const i of this.#bound) this.#notifier?.unbind(i);
    this.#bound.clear();
  }

  /** Re-binds notifications after a restore (the device came back live). */
  rebind(): void {
    this.#unbindAll();
    if (this.device.active) this.#bindAll();
  }

  /** Stops the device (see {@link VirtioDevice.stop}). */
  stop(): Promise<void> {
    return this.device.stop();
  }

  /** Resumes the device, then replays the register writes that came while stopped. */
  resume(): void {
    this.device.resume(() => {
      for (const [o, d] of this.#deferred.splice(0)) this.#write(o, d);
    });
  }

  /** Transport registers as plain data (for snapshots). */
  save(): MmioState {
    return {
      deviceFeaturesSel: this.#deviceFeaturesSel,
      driverFeaturesSel: this.#driverFeaturesSel,
      queueSel: this.#queueSel,
      guestPageSize: this.#guestPageSize,
      queueAlign: [...this.#queueAlign],
      queuePfn: [...this.#queuePfn],
      device: this.device.save(),
    };
  }

  /**
   * Validates a saved transport state (untrusted), pure: its registers, then the device
   * core's part against `spec` and `ram` (see `bus/persist.ts`).
   */
  static check(s: unknown, spec: VirtioStateSpec, ram: RamMap): MmioState {
    const r = checkMmioRegisters(s, spec.queueMaxSizes.length);
    return {
      deviceFeaturesSel: r.dfs,
      driverFeaturesSel: r.drs,
      queueSel: r.qs,
      guestPageSize: r.gps,
      queueAlign: [...r.qa],
      queuePfn: [...r.qp],
      device: checkVirtioState((s as MmioState).device, spec, ram),
    };
  }

  /** Restores {@link save} output (untrusted: validated). */
  restore(s: MmioState): void {
    const next = checkMmioRegisters(s, this.device.queues.length);
    this.device.restore(s.device);
    this.#deviceFeaturesSel = next.dfs;
    this.#driverFeaturesSel = next.drs;
    this.#queueSel = next.qs;
    this.#guestPageSize = next.gps;
    this.#queueAlign = next.qa;
    this.#queuePfn = next.qp;
    this.rebind();
  }
}

/** The transport registers of a saved {@link MmioState}, checked. */
export interface MmioRegisters {
  dfs: number;
  drs: number;
  qs: number;
  gps: number;
  qa: Map<number, number>;
  qp: Map<number, number>;
}

/**
 * Validates the transport's own registers in a saved state (untrusted) for a device with
 * `queueCount` queues. Pure: the device core part is checked by `checkVirtioState`.
 */
export function checkMmioRegisters(s: unknown, queueCount: number): MmioRegisters {
  if (typeof s !== "object" || s === null) {
    throw new RangeError("Cannot restore virtio-mmio transport: no state");
  }
  const m = s as MmioState;
  const u32 = (v: unknown, n: string) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 0xffff_ffff) {
      throw new RangeError(`Cannot restore virtio-mmio transport: ${n} is not a u32`);
    }
    return v;
  };
  const pairs = (v: unknown, n: string) => {
    if (!Array.isArray(v) || v.length > queueCount) {
      throw new RangeError(`Cannot restore virtio-mmio transport: bad ${n}`);
    }
    return new Map(v.map((p) => [u32(p?.[0], n), u32(p?.[1], n)] as [number, number]));
  };
  return {
    dfs: u32(m.deviceFeaturesSel, "deviceFeaturesSel"),
    drs: u32(m.driverFeaturesSel, "driverFeaturesSel"),
    qs: u32(m.queueSel, "queueSel"),
    gps: u32(m.guestPageSize, "guestPageSize"),
    qa: pairs(m.queueAlign, "queueAlign"),
    qp: pairs(m.queuePfn, "queuePfn"),
  };
}

/** Saved virtio-mmio transport state. */
export interface MmioState {
  /** DeviceFeaturesSel: which 32-bit word of the device features reads return. */
  deviceFeaturesSel: number;
  /** DriverFeaturesSel: which 32-bit word of the driver features writes set. */
  driverFeaturesSel: number;
  /** QueueSel: the queue the queue registers address. */
  queueSel: number;
  /** GuestPageSize (legacy interface): the unit of QueuePFN, in bytes. */
  guestPageSize: number;
  /** QueueAlign (legacy) per queue, as [queue index, alignment in bytes] pairs. */
  queueAlign: [number, number][];
  /** QueuePFN (legacy) per queue, as [queue index, page frame number] pairs. */
  queuePfn: [number, number][];
  /** The device core's state. */
  device: import("../virtio/device.ts").VirtioState;
}
