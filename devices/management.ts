/**
 * The management device: a virtio device of its own type ({@link MANAGEMENT_DEVICE_TYPE})
 * that offers VIRTIO_F_ADMIN_VQ, with an admin virtqueue (queue 0) whose commands create,
 * configure, drive and destroy virtual devices, and an event queue (queue 1) on which their
 * interrupts, device MMU faults and host-side additions arrive. The commands themselves are
 * executed by the {@link AdminTransport}; this file carries them over the queues.
 *
 * Commands are served in order, one at a time: a destroy that waits for a virtual device's
 * requests in flight holds the admin queue until it completes (and counts as in flight for
 * a snapshot's stop).
 *
 * @module
 */

import { bit, DEVICE_ID, F } from "../virtio/constants.ts";
import { BlockDevice, type DiskImage } from "./block.ts";
import { ConsoleDevice } from "./console.ts";
import { RngDevice } from "./rng.ts";
import type { DeviceContext, VirtioBackend } from "../virtio/device.ts";
import { ChainReader, ChainWriter, type DescriptorChain, type RamMap } from "../virtio/queue.ts";
import {
  ADMIN_ACK,
  ADMIN_ERR,
  ADMIN_EVENT_SIZE,
  ADMIN_HEADER,
  ADMIN_REPLY_HEADER,
  ADMIN_VQ_FEATURE,
  AdminError,
  type AdminReply,
  type AdminState,
  AdminTransport,
  type AdminTransportOptions,
  MAX_OUT_DATA,
  type VirtualDeviceFactory,
} from "../transports/admin_vq.ts";

/** Our device type for a management device (no virtio type is assigned to one). */
export const MANAGEMENT_DEVICE_TYPE = 0xad;
/** Queue indices. */
export const MANAGEMENT_QUEUE = { ADMIN: 0, EVENT: 1 } as const;
/** Bytes of config space: `le32 max_virtual_devices, le32 num_virtual_devices`. */
export const MANAGEMENT_CONFIG_SIZE = 8;

/** Options of {@link ManagementDevice}: the transport's, less the event hook it owns. */
export type ManagementOptions = Omit<AdminTransportOptions, "onEvent">;

/**
 * A management device.
 *
 * @example
 * ```ts
 * import { GuestMemory } from "../memory/guest_memory.ts";
 * import { RngDevice } from "./rng.ts";
 * import { ManagementDevice } from "./management.ts";
 * const mgmt = new ManagementDevice({
 *   mem: GuestMemory.allocate([{ gpa: 0, size: 0x10000 }]),
 *   factory: () => new RngDevice(),
 * });
 * console.assert(mgmt.queueMaxSizes.length === 2);
 * ```
 */
export class ManagementDevice implements VirtioBackend {
  readonly deviceType: number = MANAGEMENT_DEVICE_TYPE;
  readonly queueMaxSizes: readonly number[] = [64, 64];
  readonly features: bigint = ADMIN_VQ_FEATURE | bit(F.EVENT_IDX) | bit(F.INDIRECT_DESC);
  readonly configSize: number = MANAGEMENT_CONFIG_SIZE;
  /** The virtual devices and the command set. */
  readonly transport: AdminTransport;
  #ctx: DeviceContext | undefined;
  #pending = false;
  #epoch = 0;
  #log: (m: string) => void;

  /** A management device with no virtual devices. */
  constructor(opts: ManagementOptions) {
    this.#log = opts.log ?? (() => {});
    this.transport = new AdminTransport({
      ...opts,
      onEvent: () => this.#ctx?.guard("event queue", () => this.#deliverEvents()),
      // num_virtual_devices in config space changed.
      onChange: () => this.#ctx?.configChanged(),
    });
  }

  /** The admin virtqueue is the device's only function: FEATURES_OK needs it. */
  acceptFeatures(acked: bigint): boolean {
    return (acked & ADMIN_VQ_FEATURE) !== 0n;
  }

  readConfig(offset: number, data: Uint8Array): void {
    const c = new Uint8Array(MANAGEMENT_CONFIG_SIZE), v = new DataView(c.buffer);
    v.setUint32(0, this.transport.maxDevices, true);
    v.setUint32(4, this.transport.devices.length, true);
    data.set(c.subarray(offset, offset + data.byteLength));
  }

  writeConfig(): void {
    this.#log("Ignored write to the management device's read-only config space");
  }

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
    this.#deliverEvents();
  }

  processQueue(index: number): void {
    if (index === MANAGEMENT_QUEUE.ADMIN) this.#serveAdmin();
    else if (index === MANAGEMENT_QUEUE.EVENT) this.#deliverEvents();
  }

  reset(): void {
    this.#epoch++;
    this.#pending = false;
    this.#ctx = undefined;
    this.transport.reset();
  }

  inflight(): number {
    return this.#pending ? 1 : 0;
  }

  stop(): Promise<void> {
    return this.transport.stop();
  }

  resume(): void {
    this.transport.resume();
  }

  dispose(): void {
    this.transport.dispose();
  }

  save(): AdminState {
    return this.transport.save();
  }

  restore(state: unknown): void {
    this.transport.restore(state as AdminState);
  }

  /**
   * Validates a saved state (untrusted) against the RAM layout `ram`, with `factory`
   * building inert virtual devices: pure ({@link AdminTransport.check}).
   */
  static check(
    state: unknown,
    ram: RamMap,
    factory: VirtualDeviceFactory,
    exclusive?: (deviceType: number, attrs: Uint8Array) => string | undefined,
  ): AdminState {
    return AdminTransport.check(state, ram, factory, exclusive);
  }

  #serveAdmin(): void {
    const ctx = this.#ctx;
    if (!ctx) return;
    const q = ctx.queues[MANAGEMENT_QUEUE.ADMIN]!;
    let used = false;
    for (;;) {
      q.disableNotification(ctx.mem);
      while (ctx.canProcess() && !this.#pending) {
        const chain = q.pop(ctx.mem);
        if (!chain) break;
        const r = this.#command(ctx, chain);
        if (typeof r === "number") {
          q.addUsed(ctx.mem, chain.head, r);
          used = true;
          continue;
        }
        this.#pending = true;
        const epoch = this.#epoch;
        void r.then((reply) => {
          if (epoch !== this.#epoch) return; // the device was reset meanwhile
          ctx.guard("admin queue", () => {
            this.#pending = false;
            q.addUsed(ctx.mem, chain.head, this.#reply(ctx, chain, reply));
            ctx.signalUsed(MANAGEMENT_QUEUE.ADMIN);
            this.#serveAdmin();
          });
        });
      }
      if (!ctx.canProcess() || this.#pending || !q.enableNotification(ctx.mem)) break;
    }
    if (used) ctx.signalUsed(MANAGEMENT_QUEUE.ADMIN);
  }

  /** Runs one command chain: the bytes written, or a promise of the reply. */
  #command(ctx: DeviceContext, chain: DescriptorChain): number | Promise<AdminReply> {
    if (chain.error) {
      this.#log(`Admin command chain refused: ${chain.error}`);
      return 0;
    }
    if (chain.writableLen < ADMIN_REPLY_HEADER) {
      this.#log(`Admin command without room for a reply (${chain.writableLen} bytes)`);
      return 0;
    }
    const bad = (why: string) =>
      this.#reply(ctx, chain, { error: ADMIN_ERR.MALFORMED, data: new Uint8Array(0), why });
    if (chain.readableLen < ADMIN_HEADER) {
      return bad(`command of ${chain.readableLen} bytes, shorter than its header`);
    }
    if (chain.readableLen > ADMIN_HEADER + MAX_OUT_DATA) {
      return bad(`command of ${chain.readableLen} bytes, more than ${MAX_OUT_DATA} of out-data`);
    }
    const bytes = new ChainReader(ctx.mem, chain).read(chain.readableLen);
    const h = new DataView(bytes.buffer);
    const r = this.transport.execute(
      h.getBigUint64(0, true),
      h.getUint16(8, true),
      h.getUint16(10, true),
      bytes.subarray(ADMIN_HEADER),
      chain.writableLen - ADMIN_REPLY_HEADER,
    );
    return r instanceof Promise ? r : this.#reply(ctx, chain, r);
  }

  /** Writes the reply header and in-data; returns the bytes written. */
  #reply(ctx: DeviceContext, chain: DescriptorChain, r: AdminReply): number {
    let { error, data } = r;
    let why = r.why;
    if (!error && ADMIN_REPLY_HEADER + data.byteLength > chain.writableLen) {
      error = ADMIN_ERR.MALFORMED;
      why = `reply of ${data.byteLength} bytes does not fit in ${
        chain.writableLen - ADMIN_REPLY_HEADER
      }`;
      data = new Uint8Array(0);
    }
    if (error) {
      data = new Uint8Array(0);
      this.#log(`Admin command refused (error ${error}): ${why ?? ""}`);
    }
    const head = new Uint8Array(ADMIN_REPLY_HEADER), v = new DataView(head.buffer);
    head[0] = error ? ADMIN_ACK.ERR : ADMIN_ACK.OK;
    v.setUint16(2, error, true);
    v.setUint32(4, data.byteLength, true);
    const w = new ChainWriter(ctx.mem, chain);
    w.write(head);
    w.write(data);
    return w.written;
  }

  #deliverEvents(): void {
    const ctx = this.#ctx;
    if (!ctx) return;
    const q = ctx.queues[MANAGEMENT_QUEUE.EVENT]!;
    if (!q.ready) return;
    let used = false;
    for (;;) {
      while (ctx.canProcess() && this.transport.hasEvents) {
        const chain = q.pop(ctx.mem);
        if (!chain) break;
        if (chain.error || chain.writableLen < ADMIN_EVENT_SIZE) {
          this.#log(`Event buffer refused: ${chain.error ?? `${chain.writableLen} bytes`}`);
          q.addUsed(ctx.mem, chain.head, 0);
          used = true;
          continue;
        }
        const e = this.transport.takeEvent();
        if (!e) {
          q.undoPop();
          break;
        }
        const b = new Uint8Array(ADMIN_EVENT_SIZE), v = new DataView(b.buffer);
        v.setBigUint64(0, BigInt(e.vdevId), true);
        v.setUint16(8, e.type, true);
        v.setUint32(12, e.data, true);
        v.setBigUint64(16, BigInt(e.addr), true);
        const w = new ChainWriter(ctx.mem, chain);
        w.write(b);
        q.addUsed(ctx.mem, chain.head, w.written);
        used = true;
      }
      // Publish avail_event (or clear NO_NOTIFY) so that new buffers are announced.
      const more = q.enableNotification(ctx.mem);
      if (!more || !ctx.canProcess() || !this.transport.hasEvents) break;
    }
    if (used) ctx.signalUsed(MANAGEMENT_QUEUE.EVENT);
  }
}

/** What {@link virtualDevices} builds virtual devices with. */
export interface VirtualDeviceSet {
  /** The disks virtual blk devices may use, by index (creation attribute `le32 index`). */
  disks: readonly DiskImage[];
  /** Where virtual consoles' output goes. */
  consoleOutput?: (bytes: Uint8Array) => void;
  /** Where device errors go. */
  log?: (message: string) => void;
}

/**
 * The virtual devices a management device offers: rng (type 4, no attributes), console
 * (type 3, no attributes; output only) and blk (type 2, attributes `le32 disk index`).
 * Builds backends only; opens nothing.
 */
export function virtualDevices(set: VirtualDeviceSet): VirtualDeviceFactory {
  return (type, attrs) => {
    const none = () => {
      if (attrs.byteLength) {
        throw new AdminError(
          ADMIN_ERR.INVALID_ATTRIBUTE,
          `device type ${type} takes no creation attributes`,
        );
      }
    };
    switch (type) {
      case DEVICE_ID.RNG:
        none();
        return new RngDevice();
      case DEVICE_ID.CONSOLE:
        none();
        return new ConsoleDevice({ output: set.consoleOutput ?? (() => {}) });
      case DEVICE_ID.BLOCK: {
        const i = diskIndex(attrs);
        const disk = i === undefined ? undefined : set.disks[i];
        if (!disk) {
          throw new AdminError(
            ADMIN_ERR.INVALID_ATTRIBUTE,
            `blk needs a le32 disk index below ${set.disks.length}`,
          );
        }
        return new BlockDevice(disk, {
          id: `admin-disk${i}`,
          ...(set.log ? { onError: set.log } : {}),
        });
      }
    }
    throw new AdminError(ADMIN_ERR.UNSUPPORTED_DEVICE_TYPE, `no virtual device of type ${type}`);
  };
}

function diskIndex(attrs: Uint8Array): number | undefined {
  return attrs.byteLength === 4
    ? new DataView(attrs.buffer, attrs.byteOffset, 4).getUint32(0, true)
    : undefined;
}

/** A virtual blk device holds its disk alone: the key of that resource. */
export function virtualDeviceResource(type: number, attrs: Uint8Array): string | undefined {
  return type === DEVICE_ID.BLOCK ? `admin disk ${diskIndex(attrs)}` : undefined;
}
