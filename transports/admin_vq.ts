/**
 * Virtio over an admin virtqueue: the transport of virtual devices that have no transport
 * resources of their own (no MMIO window, no interrupt line), created, configured, driven
 * and destroyed by commands on a management device's admin virtqueue (the RFC "Introduce
 * admin virtqueue as a new transport", with its review's points resolved; the wire format is
 * in `docs/admin-virtqueue.md`).
 *
 * {@link AdminTransport} holds the virtual devices and executes one decoded command at a
 * time; `devices/management.ts` is the management device that carries commands and events
 * over its queues. Each virtual device is an ordinary {@link VirtioDevice} (the same status
 * handshake, event-idx queues, DEVICE_NEEDS_RESET, stop/resume as on virtio-mmio) whose
 * memory is a {@link DeviceMmu} and whose interrupt becomes an event on the event queue.
 *
 * @module
 */

import type { GuestMemory } from "../memory/guest_memory.ts";
import { bit, STATUS } from "../virtio/constants.ts";
import {
  checkVirtioState,
  offeredFeatures,
  STATUS_STEPS,
  type VirtioBackend,
  VirtioDevice,
  type VirtioState,
} from "../virtio/device.ts";
import { queueSizeProblem, type RamMap, ringAddrProblem } from "../virtio/queue.ts";
import {
  DeviceMmu,
  mappingProblem,
  mappingsRamMap,
  MAX_MAPPINGS,
  type MmuMapping,
} from "./device_mmu.ts";

/** Command classes (the RFC's numbers; 6 and up are ours, in the same style). */
export const ADMIN_CLASS = {
  CAP: 0,
  VDEV: 2,
  FEAT: 3,
  STATUS: 4,
  GENERATION: 5,
  CONFIG: 6,
  QUEUE: 7,
  NOTIFY: 8,
  MMU: 9,
} as const;

/** Commands, per class. */
export const ADMIN_CMD = {
  CAP_GET: 0,
  VDEV_CREATE: 0,
  VDEV_DESTROY: 1,
  VDEV_LIST: 2,
  FEAT_DEVICE_GET: 0,
  FEAT_DRIVER_SET: 1,
  FEAT_DRIVER_GET: 2,
  STATUS_SET: 0,
  STATUS_GET: 1,
  GENERATION_GET: 0,
  CONFIG_READ: 0,
  CONFIG_WRITE: 1,
  QUEUE_GET: 0,
  QUEUE_SET: 1,
  QUEUE_ENABLE: 2,
  QUEUE_RESET: 3,
  NOTIFY_KICK: 0,
  MMU_MAP: 0,
  MMU_UNMAP: 1,
} as const;

/** The `ack` byte. */
export const ADMIN_ACK = { OK: 0, ERR: 1 } as const;

/** Why a command failed (the `error` field, besides ERR). */
export const ADMIN_ERR = {
  NONE: 0,
  /** No room for another virtual device, mapping or resource (a disk already in use). */
  NO_RESOURCES: 1,
  /** A creation attribute, queue index, address, size or config range is not acceptable. */
  INVALID_ATTRIBUTE: 2,
  /** The management device cannot create a virtual device of that type. */
  UNSUPPORTED_DEVICE_TYPE: 3,
  /** The command is not allowed in the virtual device's current state. */
  WRONG_STATE: 4,
  /** Unknown class or command. */
  UNKNOWN_COMMAND: 5,
  /** `vdev_id` is 0 where a virtual device is needed, or not 0 where it must be. */
  INVALID_DEVICE_ID: 6,
  /** No virtual device has that `vdev_id`. */
  NO_SUCH_DEVICE: 7,
  /** The command's out-data has the wrong length, or the in-data does not fit. */
  MALFORMED: 8,
} as const;

/** Capability bits of `CAP_GET` (a u64 bit mask). */
export const ADMIN_CAP = {
  /** Virtual devices are created, configured and destroyed through the admin virtqueue. */
  VDEV: 1n << 0n,
  /** Each virtual device has a device MMU (MMU class). */
  MMU: 1n << 1n,
  /** Interrupts and faults of virtual devices arrive on the event queue. */
  EVENTQ: 1n << 2n,
} as const;

/** Event types on the event queue. */
export const ADMIN_EVENT = {
  /** A virtual device interrupts: `data` holds its interrupt status (1 used buffer, 2 config). */
  INTERRUPT: 1,
  /** A device MMU translation failed: `addr` is the I/O address, `data` the length. */
  MMU_FAULT: 2,
  /** The host created a virtual device: `data` is its device type. */
  DEVICE_ADDED: 3,
  /** The host destroyed a virtual device. */
  DEVICE_REMOVED: 4,
  /** Events were dropped because the driver left no buffers for too long. */
  EVENTS_LOST: 5,
} as const;

/** Bytes of a command header (`le64 vdev_id, le16 class, le16 command`). */
export const ADMIN_HEADER = 12;
/** Bytes of a reply header (`u8 ack, u8 reserved, le16 error, le32 in_len`). */
export const ADMIN_REPLY_HEADER = 8;
/** Bytes of an event. */
export const ADMIN_EVENT_SIZE = 24;
/** The most virtual devices one management device holds. */
export const MAX_VIRTUAL_DEVICES = 32;
/** The most undelivered events kept (beyond: one EVENTS_LOST). */
export const MAX_EVENTS = 256;
/** The most out-data bytes a command may carry. */
export const MAX_OUT_DATA = 4096;

/** A command refused with an error code. */
export class AdminError extends Error {
  /** A refusal with `code` (an {@link ADMIN_ERR} value). */
  constructor(readonly code: number, message: string) {
    super(message);
    this.name = "AdminError";
  }
}

/** Builds the backend of a new virtual device, or throws {@link AdminError}. */
export type VirtualDeviceFactory = (
  deviceType: number,
  attrs: Uint8Array,
) => VirtioBackend;

/** One event for the event queue. */
export interface AdminEvent {
  /** The virtual device it is about (0: the management device). */
  vdevId: number;
  /** An {@link ADMIN_EVENT} value. */
  type: number;
  /** Type-specific: interrupt status, access length, device type. */
  data: number;
  /** For MMU faults, the I/O virtual address. */
  addr: number;
}

/** A command's outcome: an error code (0 = OK) and the in-data. */
export interface AdminReply {
  /** 0 (OK) or an {@link ADMIN_ERR} code. */
  error: number;
  /** The in-data. */
  data: Uint8Array;
  /** What went wrong, for the log. */
  why?: string;
}

/** Who created a virtual device. */
export type VdevOrigin = "driver" | "host";

/** A virtual device and its transport state. */
export interface VirtualDevice {
  /** Its vdev_id (never 0, never reused). */
  readonly id: number;
  /** The virtio device type. */
  readonly deviceType: number;
  /** The creation attributes. */
  readonly attrs: Uint8Array;
  /** The features it may offer (of its backend's). */
  readonly featureMask: bigint;
  /** Who created it. */
  readonly origin: VdevOrigin;
  /** Its device MMU: every access it makes goes through it. */
  readonly mmu: DeviceMmu;
  /** The device core, as on any transport. */
  readonly device: VirtioDevice;
  /** Set while a destroy waits for requests in flight. */
  destroying: boolean;
}

/** Options of {@link AdminTransport}. */
export interface AdminTransportOptions {
  /** Guest memory, which the virtual devices reach through their MMUs. */
  mem: GuestMemory;
  /** Builds virtual devices' backends. */
  factory: VirtualDeviceFactory;
  /** Called when there is an event to deliver. */
  onEvent?: () => void;
  /** Called when a virtual device was created or destroyed. */
  onChange?: () => void;
  /** Where refused commands and device errors are reported. */
  log?: (message: string) => void;
  /** The most virtual devices (default {@link MAX_VIRTUAL_DEVICES}). */
  maxDevices?: number;
  /**
   * The host resource a device of this type and these attributes holds alone (a disk), as a
   * key: a second device with the same key is refused with NO_RESOURCES.
   */
  exclusive?: (deviceType: number, attrs: Uint8Array) => string | undefined;
}

/** A saved virtual device. */
export interface VdevState {
  /** Its vdev_id. */
  id: number;
  /** The virtio device type. */
  deviceType: number;
  /** Creation attributes, hex. */
  attrs: string;
  /** Feature mask, hex. */
  featureMask: string;
  /** Who created it. */
  origin: VdevOrigin;
  /** Its MMU mappings as [iova, gpa, size]. */
  mappings: [number, number, number][];
  /** The device core's state. */
  device: VirtioState;
}

/** Saved state of an {@link AdminTransport}. */
export interface AdminState {
  /** The id the next virtual device gets. */
  nextId: number;
  /** Whether events were dropped (an EVENTS_LOST is owed). */
  lost: boolean;
  /** Undelivered events, in order. */
  events: AdminEvent[];
  /** The virtual devices, in id order. */
  devices: VdevState[];
}

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
const unhex = (s: string) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
const u64 = (v: bigint) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
  return b;
};
const ok = (data = new Uint8Array(0)): AdminReply => ({ error: 0, data });
const NO_DATA = new Uint8Array(0);

/**
 * The virtual devices of one management device, and the commands that drive them.
 *
 * @example
 * ```ts
 * import { GuestMemory } from "../memory/guest_memory.ts";
 * import { RngDevice } from "../devices/rng.ts";
 * import { ADMIN_CLASS, ADMIN_CMD, AdminTransport } from "./admin_vq.ts";
 * const t = new AdminTransport({
 *   mem: GuestMemory.allocate([{ gpa: 0, size: 0x10000 }]),
 *   factory: () => new RngDevice(),
 * });
 * const out = new Uint8Array(16); // device type 4 (rng), all features
 * new DataView(out.buffer).setUint32(0, 4, true);
 * new DataView(out.buffer).setBigUint64(8, ~0n, true);
 * const r = t.execute(0n, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_CREATE, out);
 * console.assert(!(r instanceof Promise) && r.error === 0);
 * ```
 */
export class AdminTransport {
  readonly #mem: GuestMemory;
  readonly #factory: VirtualDeviceFactory;
  readonly #onEvent: () => void;
  readonly #onChange: () => void;
  readonly #log: (m: string) => void;
  readonly #max: number;
  readonly #exclusive: (deviceType: number, attrs: Uint8Array) => string | undefined;
  #devices = new Map<number, VirtualDevice>();
  #nextId = 1;
  #events: AdminEvent[] = [];
  #lost = false;
  #frozen = false;

  /** A transport with no virtual devices. */
  constructor(opts: AdminTransportOptions) {
    this.#mem = opts.mem;
    this.#factory = opts.factory;
    this.#onEvent = opts.onEvent ?? (() => {});
    this.#onChange = opts.onChange ?? (() => {});
    this.#log = opts.log ?? (() => {});
    this.#max = opts.maxDevices ?? MAX_VIRTUAL_DEVICES;
    this.#exclusive = opts.exclusive ?? (() => undefined);
  }

  /** The virtual devices, in id order. */
  get devices(): VirtualDevice[] {
    return [...this.#devices.values()].sort((a, b) => a.id - b.id);
  }

  /** The most virtual devices. */
  get maxDevices(): number {
    return this.#max;
  }

  /** Whether events wait for delivery. */
  get hasEvents(): boolean {
    return this.#events.length > 0 || this.#lost;
  }

  /**
   * Takes the next event to deliver (an interrupt event carries the device's interrupt
   * status now, which delivery acknowledges), or undefined.
   */
  takeEvent(): AdminEvent | undefined {
    while (this.#events.length) {
      const e = this.#events.shift()!;
      if (e.type !== ADMIN_EVENT.INTERRUPT) return e;
      const v = this.#devices.get(e.vdevId);
      if (!v || v.device.isr === 0) continue;
      const isr = v.device.isr;
      v.device.ackInterrupt(isr);
      return { ...e, data: isr };
    }
    if (this.#lost) {
      this.#lost = false;
      return { vdevId: 0, type: ADMIN_EVENT.EVENTS_LOST, data: 0, addr: 0 };
    }
    return undefined;
  }

  #post(e: AdminEvent): void {
    if (
      e.type === ADMIN_EVENT.INTERRUPT &&
      this.#events.some((x) => x.type === e.type && x.vdevId === e.vdevId)
    ) return; // one pending interrupt event per device: it carries all bits at delivery
    if (this.#events.length >= MAX_EVENTS) {
      this.#lost = true;
      this.#log(`Event queue full: dropped event ${e.type} of virtual device ${e.vdevId}`);
    } else this.#events.push(e);
    if (!this.#frozen) this.#onEvent();
  }

  /** Creates a virtual device; throws {@link AdminError}. Host-created ones are announced. */
  create(
    deviceType: number,
    attrs: Uint8Array,
    featureMask = ~0n,
    origin: VdevOrigin = "host",
  ): VirtualDevice {
    if (this.#devices.size >= this.#max) {
      throw new AdminError(ADMIN_ERR.NO_RESOURCES, `already ${this.#max} virtual devices`);
    }
    if (this.#nextId >= MAX_ID) throw new AdminError(ADMIN_ERR.NO_RESOURCES, "no ids left");
    const key = this.#exclusive(deviceType, attrs);
    if (key !== undefined) {
      const holder = [...this.#devices.values()].find((d) =>
        this.#exclusive(d.deviceType, d.attrs) === key
      );
      if (holder) {
        throw new AdminError(
          ADMIN_ERR.NO_RESOURCES,
          `${key} is in use by virtual device ${holder.id}`,
        );
      }
    }
    const backend = this.#factory(deviceType, attrs);
    const v = this.#build(this.#nextId++, deviceType, attrs, featureMask, origin, backend);
    this.#devices.set(v.id, v);
    this.#log(`Created virtual device ${v.id} (type ${deviceType}) for the ${origin}`);
    this.#onChange();
    if (origin === "host") {
      this.#post({ vdevId: v.id, type: ADMIN_EVENT.DEVICE_ADDED, data: deviceType, addr: 0 });
    }
    return v;
  }

  #build(
    id: number,
    deviceType: number,
    attrs: Uint8Array,
    featureMask: bigint,
    origin: VdevOrigin,
    backend: VirtioBackend,
  ): VirtualDevice {
    const ref: { device?: VirtioDevice } = {};
    const mmu = new DeviceMmu(this.#mem, {
      onFault: (iova, len) => {
        const device = ref.device;
        if (!device || device.status & STATUS.DEVICE_MMU_FAIL) return;
        device.fail(
          `device MMU: no mapping covers 0x${iova.toString(16)}+${len}`,
          STATUS.DEVICE_MMU_FAIL,
        );
        // Reported once per failure (also when the device needed a reset already); an
        // address of 2^53 or more is reported as 2^53 - 1.
        if (device.status & STATUS.DEVICE_MMU_FAIL) {
          this.#post({
            vdevId: id,
            type: ADMIN_EVENT.MMU_FAULT,
            data: Math.min(len, 0xffff_ffff),
            addr: Math.min(iova, Number.MAX_SAFE_INTEGER),
          });
        }
      },
    });
    const device = ref.device = new VirtioDevice(backend, {
      mem: mmu,
      interrupt: {
        trigger: () => this.#post({ vdevId: id, type: ADMIN_EVENT.INTERRUPT, data: 0, addr: 0 }),
      },
      log: (m) => this.#log(`virtual device ${id}: ${m}`),
      featureMask,
    });
    return { id, deviceType, attrs, featureMask, origin, mmu, device, destroying: false };
  }

  /**
   * Destroys a virtual device: it takes no new request, the requests in flight complete
   * (their used entries are written; no interrupt follows), then it is reset and removed.
   * Host-side destroys are announced on the event queue.
   */
  async destroy(id: number, by: VdevOrigin = "host"): Promise<void> {
    const v = this.#devices.get(id);
    if (!v) throw new AdminError(ADMIN_ERR.NO_SUCH_DEVICE, `no virtual device ${id}`);
    if (v.destroying) throw new AdminError(ADMIN_ERR.WRONG_STATE, `${id} is being destroyed`);
    v.destroying = true;
    await v.device.stop();
    v.device.reset();
    v.mmu.clear();
    this.#devices.delete(id);
    this.#events = this.#events.filter((e) => e.vdevId !== id || e.type !== ADMIN_EVENT.INTERRUPT);
    this.#log(`Destroyed virtual device ${id} (by the ${by})`);
    this.#onChange();
    if (by === "host") {
      this.#post({ vdevId: id, type: ADMIN_EVENT.DEVICE_REMOVED, data: v.deviceType, addr: 0 });
    }
  }

  /**
   * Runs one command. A destroy returns a promise (it waits for requests in flight);
   * everything else answers at once. Never throws for anything the driver sent.
   */
  execute(
    vdevId: bigint,
    cls: number,
    cmd: number,
    out: Uint8Array,
    capacity = Infinity,
  ): AdminReply | Promise<AdminReply> {
    try {
      const r = this.#execute(vdevId, cls, cmd, out, capacity);
      if (r instanceof Promise) {
        return r.then((x) => x, (e) => this.#refusal(e));
      }
      return r;
    } catch (e) {
      return this.#refusal(e);
    }
  }

  #refusal(e: unknown): AdminReply {
    if (e instanceof AdminError) return { error: e.code, data: NO_DATA, why: e.message };
    const m = e instanceof Error ? e.message : String(e);
    return { error: ADMIN_ERR.WRONG_STATE, data: NO_DATA, why: `device error: ${m}` };
  }

  #execute(
    vdevId: bigint,
    cls: number,
    cmd: number,
    out: Uint8Array,
    capacity: number,
  ): AdminReply | Promise<AdminReply> {
    // Precedence of refusals: unknown command, then the vdev_id, then the out-data.
    if (!(KNOWN[cls]?.includes(cmd) ?? false)) {
      throw new AdminError(ADMIN_ERR.UNKNOWN_COMMAND, `unknown class ${cls} command ${cmd}`);
    }
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const len = (n: number, atLeast = false) => {
      if (atLeast ? out.byteLength < n : out.byteLength !== n) {
        throw new AdminError(
          ADMIN_ERR.MALFORMED,
          `class ${cls} command ${cmd}: ${out.byteLength} bytes of out-data, expected ${
            atLeast ? "at least " : ""
          }${n}`,
        );
      }
    };
    const management = () => {
      if (vdevId !== 0n) {
        throw new AdminError(ADMIN_ERR.INVALID_DEVICE_ID, "this command is for vdev_id 0");
      }
    };
    const vdev = () => {
      if (vdevId === 0n) {
        throw new AdminError(ADMIN_ERR.INVALID_DEVICE_ID, "vdev_id 0 is the management device");
      }
      const v = vdevId <= BigInt(Number.MAX_SAFE_INTEGER)
        ? this.#devices.get(Number(vdevId))
        : undefined;
      if (!v) throw new AdminError(ADMIN_ERR.NO_SUCH_DEVICE, `no virtual device ${vdevId}`);
      if (v.destroying) throw new AdminError(ADMIN_ERR.WRONG_STATE, "being destroyed");
      return v;
    };
    const unknown = () =>
      new AdminError(ADMIN_ERR.UNKNOWN_COMMAND, `unknown class ${cls} command ${cmd}`);
    switch (cls) {
      case ADMIN_CLASS.CAP: {
        if (cmd !== ADMIN_CMD.CAP_GET) throw unknown();
        management();
        len(0);
        return ok(u64(ADMIN_CAP.VDEV | ADMIN_CAP.MMU | ADMIN_CAP.EVENTQ));
      }
      case ADMIN_CLASS.VDEV:
        switch (cmd) {
          case ADMIN_CMD.VDEV_CREATE: {
            management();
            len(16, true);
            if (capacity < 8) {
              // Checked first: a device whose id the driver cannot learn must not exist.
              throw new AdminError(ADMIN_ERR.MALFORMED, "no room for the new vdev_id");
            }
            if (out.byteLength > 16 + 256) {
              throw new AdminError(ADMIN_ERR.MALFORMED, "creation attributes beyond 256 bytes");
            }
            if (dv.getUint32(4, true) !== 0) {
              throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, "reserved field is not 0");
            }
            const v = this.create(
              dv.getUint32(0, true),
              out.slice(16),
              dv.getBigUint64(8, true),
              "driver",
            );
            return ok(u64(BigInt(v.id)));
          }
          case ADMIN_CMD.VDEV_DESTROY: {
            const v = vdev();
            len(0);
            return this.destroy(v.id, "driver").then(() => ok());
          }
          case ADMIN_CMD.VDEV_LIST: {
            management();
            len(0);
            const list = this.devices;
            const b = new Uint8Array(8 + 16 * list.length);
            const w = new DataView(b.buffer);
            w.setUint32(0, list.length, true);
            list.forEach((v, i) => {
              w.setBigUint64(8 + 16 * i, BigInt(v.id), true);
              w.setUint32(16 + 16 * i, v.deviceType, true);
              w.setUint32(20 + 16 * i, v.device.status, true);
            });
            return ok(b);
          }
        }
        throw unknown();
      case ADMIN_CLASS.FEAT: {
        const v = vdev();
        switch (cmd) {
          case ADMIN_CMD.FEAT_DEVICE_GET:
            len(0);
            return ok(u64(v.device.offered));
          case ADMIN_CMD.FEAT_DRIVER_SET: {
            len(8);
            if (!v.device.featuresWritable) {
              throw new AdminError(
                ADMIN_ERR.WRONG_STATE,
                `features are not writable in status 0x${v.device.status.toString(16)}`,
              );
            }
            const f = dv.getBigUint64(0, true);
            v.device.writeDriverFeaturesWord(0, Number(f & 0xffff_ffffn));
            v.device.writeDriverFeaturesWord(1, Number(f >> 32n));
            return ok();
          }
          case ADMIN_CMD.FEAT_DRIVER_GET:
            len(0);
            return ok(u64(v.device.driverFeatures));
        }
        throw unknown();
      }
      case ADMIN_CLASS.STATUS: {
        const v = vdev();
        switch (cmd) {
          case ADMIN_CMD.STATUS_SET: {
            len(1);
            const want = out[0]!;
            // Checked before anything changes: 0 resets, FAILED may be added at any time,
            // otherwise exactly the handshake's next step. A refused command changes
            // nothing. Reset completes before the reply; a FEATURES_OK the device refuses
            // is for the driver's re-read (the command itself succeeded).
            const why = statusStepProblem(v.device.status, want);
            if (why) {
              throw new AdminError(
                ADMIN_ERR.WRONG_STATE,
                `status 0x${want.toString(16)} refused in status 0x${
                  v.device.status.toString(16)
                }: ${why}`,
              );
            }
            v.device.writeStatus(want);
            return ok();
          }
          case ADMIN_CMD.STATUS_GET:
            len(0);
            return ok(Uint8Array.of(v.device.status));
        }
        throw unknown();
      }
      case ADMIN_CLASS.GENERATION: {
        const v = vdev();
        if (cmd !== ADMIN_CMD.GENERATION_GET) throw unknown();
        len(0);
        const b = new Uint8Array(4);
        new DataView(b.buffer).setUint32(0, v.device.configGeneration, true);
        return ok(b);
      }
      case ADMIN_CLASS.CONFIG: {
        const v = vdev();
        const size = v.device.backend.configSize;
        const range = (off: number, n: number) => {
          if (n > size || off > size - n) {
            throw new AdminError(
              ADMIN_ERR.INVALID_ATTRIBUTE,
              `config range ${off}+${n} outside ${size} bytes`,
            );
          }
        };
        switch (cmd) {
          case ADMIN_CMD.CONFIG_READ: {
            len(8);
            const off = dv.getUint32(0, true), n = dv.getUint32(4, true);
            range(off, n);
            const b = new Uint8Array(n);
            v.device.readConfig(off, b);
            return ok(b);
          }
          case ADMIN_CMD.CONFIG_WRITE: {
            len(8, true);
            const off = dv.getUint32(0, true), n = dv.getUint32(4, true);
            len(8 + Math.min(n, MAX_OUT_DATA));
            range(off, n);
            if (!(v.device.status & STATUS.DRIVER)) {
              throw new AdminError(ADMIN_ERR.WRONG_STATE, "config write before DRIVER");
            }
            v.device.writeConfig(off, out.slice(8));
            return ok();
          }
        }
        throw unknown();
      }
      case ADMIN_CLASS.QUEUE: {
        const v = vdev();
        len(cmd === ADMIN_CMD.QUEUE_SET ? 32 : 2);
        const index = dv.getUint16(0, true);
        const q = v.device.queues[index];
        if (!q) {
          throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, `no queue ${index}`);
        }
        const writable = () => {
          if (!v.device.queuesWritable || q.ready) {
            throw new AdminError(
              ADMIN_ERR.WRONG_STATE,
              `queue ${index} cannot be set up in status 0x${v.device.status.toString(16)}${
                q.ready ? " (it is enabled)" : ""
              }`,
            );
          }
        };
        switch (cmd) {
          case ADMIN_CMD.QUEUE_GET: {
            const b = new Uint8Array(32), w = new DataView(b.buffer);
            w.setUint16(0, q.maxSize, true);
            w.setUint16(2, q.size, true);
            b[4] = q.ready ? 1 : 0;
            w.setBigUint64(8, BigInt(q.descAddr), true);
            w.setBigUint64(16, BigInt(q.availAddr), true);
            w.setBigUint64(24, BigInt(q.usedAddr), true);
            return ok(b);
          }
          case ADMIN_CMD.QUEUE_SET: {
            writable();
            if (dv.getUint32(4, true) !== 0) {
              throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, "reserved field is not 0");
            }
            const addr = (o: number) => {
              const a = dv.getBigUint64(o, true);
              return a > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(a);
            };
            const size = dv.getUint16(2, true);
            const rings = [["descAddr", addr(8)], ["availAddr", addr(16)], [
              "usedAddr",
              addr(24),
            ]] as const;
            // All checked before any is set: a refused command changes nothing.
            const why = queueSizeProblem(size, q.maxSize) ??
              rings.map(([f, a]) => ringAddrProblem(f, a)).find((w) => w);
            if (why) throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, why);
            q.setSize(size);
            for (const [f, a] of rings) q.setAddress(f, a);
            return ok();
          }
          case ADMIN_CMD.QUEUE_ENABLE:
            writable();
            q.setReady(true);
            return ok();
          case ADMIN_CMD.QUEUE_RESET:
            if (v.device.status & STATUS.DRIVER_OK) {
              throw new AdminError(
                ADMIN_ERR.WRONG_STATE,
                "queue reset of a live device (reset the device)",
              );
            }
            q.reset();
            return ok();
        }
        throw unknown();
      }
      case ADMIN_CLASS.NOTIFY: {
        const v = vdev();
        if (cmd !== ADMIN_CMD.NOTIFY_KICK) throw unknown();
        len(2);
        const index = dv.getUint16(0, true);
        if (!v.device.queues[index]) {
          throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, `no queue ${index}`);
        }
        v.device.notify(index);
        return ok();
      }
      case ADMIN_CLASS.MMU: {
        const v = vdev();
        const n = (o: number) => {
          const a = dv.getBigUint64(o, true);
          return a > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(a);
        };
        switch (cmd) {
          case ADMIN_CMD.MMU_MAP: {
            len(24);
            const why = v.mmu.map(n(0), n(8), n(16));
            if (why) {
              // mappingProblem names a full table only for an otherwise valid mapping.
              throw new AdminError(
                why.startsWith("already ") ? ADMIN_ERR.NO_RESOURCES : ADMIN_ERR.INVALID_ATTRIBUTE,
                why,
              );
            }
            return ok();
          }
          case ADMIN_CMD.MMU_UNMAP: {
            len(16);
            if (!v.mmu.unmap(n(0), n(8))) {
              throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, "no such mapping");
            }
            return ok();
          }
        }
        throw unknown();
      }
    }
    throw unknown();
  }

  /**
   * The management device was reset: every virtual device is reset (status 0, queues
   * gone, mappings gone) and undelivered events are dropped. The devices stay: they belong
   * to the management device, not to one session of its driver.
   */
  reset(): void {
    for (const v of this.#devices.values()) {
      v.device.reset();
      v.mmu.clear();
    }
    this.#events = [];
    this.#lost = false;
  }

  /** Stops every virtual device (see {@link VirtioDevice.stop}); events wait. */
  async stop(): Promise<void> {
    this.#frozen = true;
    await Promise.all([...this.#devices.values()].map((v) => v.device.stop()));
  }

  /** The machine is closing: every virtual device stops touching memory (see VirtioDevice). */
  dispose(): void {
    for (const v of this.#devices.values()) v.device.dispose();
  }

  /** Resumes every virtual device, then delivers what waited. */
  resume(): void {
    this.#frozen = false;
    // A device being destroyed stays stopped: its destroy completes in a moment.
    for (const v of this.#devices.values()) if (!v.destroying) v.device.resume();
    if (this.hasEvents) this.#onEvent();
  }

  /** The state as plain data. */
  save(): AdminState {
    return {
      nextId: this.#nextId,
      lost: this.#lost,
      events: this.#events.map((e) => ({ ...e })),
      devices: this.devices.map((v) => ({
        id: v.id,
        deviceType: v.deviceType,
        attrs: hex(v.attrs),
        featureMask: BigInt.asUintN(64, v.featureMask).toString(16),
        origin: v.origin,
        mappings: v.mmu.mappings.map((m) => [m.iova, m.gpa, m.size]),
        device: v.device.save(),
      })),
    };
  }

  /**
   * Validates a saved state (untrusted) against guest RAM `ram`, building each virtual
   * device's backend with `factory` (which opens nothing) to check its part. Pure; throws a
   * RangeError naming the field.
   */
  static check(
    s: unknown,
    ram: RamMap,
    factory: VirtualDeviceFactory,
    exclusive: (deviceType: number, attrs: Uint8Array) => string | undefined = () => undefined,
  ): AdminState {
    const bad = (m: string): never => {
      throw new RangeError(`Cannot restore admin virtqueue transport: ${m}`);
    };
    if (typeof s !== "object" || s === null) bad("no state");
    const a = s as AdminState;
    const id = (v: unknown, n: string) =>
      Number.isSafeInteger(v) && (v as number) >= 0 ? v as number : bad(`${n} is not an id`);
    const nextId = id(a.nextId, "nextId");
    if (nextId > MAX_ID) bad("nextId is too large");
    const held = new Map<string, number>();
    if (typeof a.lost !== "boolean") bad("lost is not a boolean");
    if (!Array.isArray(a.events) || a.events.length > MAX_EVENTS) bad("bad events");
    if (!Array.isArray(a.devices) || a.devices.length > MAX_VIRTUAL_DEVICES) bad("bad devices");
    const seen = new Set<number>();
    const devices = a.devices.map((d, i) => {
      const n = `devices[${i}]`;
      if (typeof d !== "object" || d === null) bad(`${n} is not an object`);
      const vid = id(d.id, `${n}.id`);
      if (vid === 0 || vid >= nextId || seen.has(vid)) bad(`${n}.id ${vid} is not unique`);
      seen.add(vid);
      if (!Number.isInteger(d.deviceType) || d.deviceType < 0 || d.deviceType > 0xffff_ffff) {
        bad(`${n}.deviceType`);
      }
      if (typeof d.attrs !== "string" || !/^([0-9a-f]{2}){0,256}$/.test(d.attrs)) {
        bad(`${n}.attrs`);
      }
      if (typeof d.featureMask !== "string" || !/^[0-9a-f]{1,16}$/.test(d.featureMask)) {
        bad(`${n}.featureMask`);
      }
      if (d.origin !== "driver" && d.origin !== "host") bad(`${n}.origin`);
      if (!Array.isArray(d.mappings) || d.mappings.length > MAX_MAPPINGS) bad(`${n}.mappings`);
      const maps: MmuMapping[] = [];
      for (const m of d.mappings) {
        if (!Array.isArray(m) || m.length !== 3) bad(`${n}.mappings entry`);
        const why = mappingProblem(maps, { iova: m[0], gpa: m[1], size: m[2] }, ram);
        if (why) bad(`${n}.mappings: ${why}`);
        maps.push({ iova: m[0], gpa: m[1], size: m[2] });
      }
      const attrs = unhex(d.attrs);
      const key = exclusive(d.deviceType, attrs);
      if (key !== undefined) {
        if (held.has(key)) bad(`${n}: ${key} is also held by virtual device ${held.get(key)}`);
        held.set(key, vid);
      }
      let backend: VirtioBackend;
      try {
        backend = factory(d.deviceType, attrs);
      } catch (e) {
        return bad(`${n}: ${e instanceof Error ? e.message : String(e)}`);
      }
      const mask = BigInt("0x" + d.featureMask);
      const device = checkVirtioState(d.device, {
        deviceType: d.deviceType,
        offered: offeredFeatures(backend.features & mask, false),
        queueMaxSizes: backend.queueMaxSizes,
      }, mappingsRamMap(maps));
      if (device.backend !== undefined) backend.restore?.(device.backend);
      return { ...d, mappings: maps.map((m) => [m.iova, m.gpa, m.size]), device } as VdevState;
    });
    const events = a.events.map((e, i) => {
      const n = `events[${i}]`;
      if (typeof e !== "object" || e === null) bad(n);
      const t = e.type;
      if (!Number.isInteger(t) || t < ADMIN_EVENT.INTERRUPT || t > ADMIN_EVENT.DEVICE_REMOVED) {
        bad(`${n}.type`);
      }
      id(e.vdevId, `${n}.vdevId`);
      if (!Number.isInteger(e.data) || e.data < 0 || e.data > 0xffff_ffff) bad(`${n}.data`);
      id(e.addr, `${n}.addr`);
      return { vdevId: e.vdevId, type: t, data: e.data, addr: e.addr };
    });
    return { nextId, lost: a.lost, events, devices };
  }

  /**
   * Restores {@link save} output (untrusted: checked first, nothing changes when refused).
   * The virtual devices come back stopped, as their management device does; resume()
   * starts them.
   */
  restore(state: AdminState): void {
    const s = AdminTransport.check(state, this.#mem, this.#factory, this.#exclusive);
    const built = s.devices.map((d) => {
      const v = this.#build(
        d.id,
        d.deviceType,
        unhex(d.attrs),
        BigInt("0x" + d.featureMask),
        d.origin,
        this.#factory(d.deviceType, unhex(d.attrs)),
      );
      for (const [iova, gpa, size] of d.mappings) v.mmu.map(iova, gpa, size);
      return [v, d.device] as const;
    });
    for (const v of this.#devices.values()) v.device.reset();
    this.#devices = new Map();
    for (const [v, st] of built) {
      v.device.restore(st);
      this.#devices.set(v.id, v);
    }
    this.#nextId = s.nextId;
    this.#events = s.events;
    this.#lost = s.lost;
    this.#frozen = true;
    // An interrupt raised while the devices stopped is owed as an event (its bits are in
    // the device's saved interrupt status; delivery reads them).
    for (const v of this.#devices.values()) {
      if (v.device.isr) this.#post({ vdevId: v.id, type: ADMIN_EVENT.INTERRUPT, data: 0, addr: 0 });
    }
  }
}

/** Status bits only a device sets. */
const DEVICE_BITS = STATUS.DEVICE_NEEDS_RESET | STATUS.DEVICE_MMU_FAIL;

/** Ids stay below this (safe integers, with room to spare). */
const MAX_ID = 2 ** 52;

/** The commands each class has. */
const KNOWN: Record<number, readonly number[]> = {
  [ADMIN_CLASS.CAP]: [0],
  [ADMIN_CLASS.VDEV]: [0, 1, 2],
  [ADMIN_CLASS.FEAT]: [0, 1, 2],
  [ADMIN_CLASS.STATUS]: [0, 1],
  [ADMIN_CLASS.GENERATION]: [0],
  [ADMIN_CLASS.CONFIG]: [0, 1],
  [ADMIN_CLASS.QUEUE]: [0, 1, 2, 3],
  [ADMIN_CLASS.NOTIFY]: [0],
  [ADMIN_CLASS.MMU]: [0, 1],
};

/**
 * Why writing `want` to a modern device's status `cur` is not a step the handshake allows,
 * or undefined when it is: 0 (reset); the bits it has plus FAILED; or plus exactly the
 * next step of {@link STATUS_STEPS} (FAILED may come along). The device's own bits
 * (NEEDS_RESET, MMU_FAIL) are ignored on both sides.
 */
export function statusStepProblem(cur: number, want: number): string | undefined {
  const s = cur & ~DEVICE_BITS, w = want & ~DEVICE_BITS & 0xff;
  if (w === 0) return undefined;
  if (s & ~w) return "the driver may not clear bits";
  const add = w & ~s & ~STATUS.FAILED;
  if (add === 0) return undefined;
  if (s & STATUS.FAILED) return "the device is FAILED: reset first";
  const next = STATUS_STEPS.modern.get(s) ?? 0;
  return add === next ? undefined : `the next step is 0x${next.toString(16)}`;
}

/** The feature bit a management device offers: it has an admin virtqueue. */
export const VIRTIO_F_ADMIN_VQ = 41n;
/** {@link VIRTIO_F_ADMIN_VQ} as a mask. */
export const ADMIN_VQ_FEATURE: bigint = bit(VIRTIO_F_ADMIN_VQ);
