/**
 * The driver side of a management device and its virtual devices, for tests on
 * `ArrayBuffer` memory: {@link AdminDriver} sets up the admin and event queues through
 * virtio-mmio and sends commands; {@link VirtualDriver} drives one virtual device through
 * them the way a guest driver would (status handshake, features, device MMU mappings,
 * queue setup, kicks).
 *
 * @module
 */

import { GuestMemory } from "../memory/guest_memory.ts";
import { ManagementDevice, type ManagementOptions } from "../devices/management.ts";
import {
  ADMIN_CLASS,
  ADMIN_CMD,
  ADMIN_EVENT_SIZE,
  ADMIN_HEADER,
  ADMIN_REPLY_HEADER,
  type AdminEvent,
} from "../transports/admin_vq.ts";
import { bit, F, STATUS } from "../virtio/constants.ts";
import { MmioDriver, VirtqueueDriver } from "./driver.ts";
import { type Harness, harness } from "./setup.ts";

/** A command's answer as the driver reads it. */
export interface AdminAnswer {
  ack: number;
  error: number;
  data: Uint8Array;
  /** Bytes the device reported in the used ring. */
  usedLen: number;
}

/** Event buffers the driver keeps posted. */
const EVENT_BUFFERS = 16;

/** Options of {@link AdminDriver.open}. */
export interface AdminDriverOptions extends Partial<Omit<ManagementOptions, "mem">> {
  /** Guest RAM bytes (default 1 MiB). */
  memSize?: number;
  /** Features to accept (default: all offered). */
  wanted?: bigint;
}

/** The management device's driver. */
export class AdminDriver {
  readonly h: Harness<ManagementDevice>;
  adminq!: VirtqueueDriver;
  eventq!: VirtqueueDriver;
  /** What the management device and its virtual devices logged. */
  readonly log: string[];
  #eventBufs = new Map<number, number>();

  private constructor(h: Harness<ManagementDevice>, log: string[]) {
    this.h = h;
    this.log = log;
  }

  /** A management device over fresh memory, its driver live, event buffers posted. */
  static open(opts: AdminDriverOptions = {}): AdminDriver {
    const size = opts.memSize ?? 0x100000;
    const mem = GuestMemory.allocate([{ gpa: 0, size }]);
    const log: string[] = [];
    const backend = new ManagementDevice({
      ...opts,
      mem,
      factory: opts.factory ?? (() => {
        throw new Error("no factory");
      }),
      log: (m) => log.push(m),
    });
    const h = harness(backend, { mem, memSize: size });
    const d = new AdminDriver(h, log);
    const init = h.driver.init(opts.wanted !== undefined ? { wanted: opts.wanted } : {});
    if (!init.ok) throw new Error(`management device init failed: ${init.error}`);
    d.adminq = h.driver.setupQueue(0, 16);
    d.eventq = h.driver.setupQueue(1, EVENT_BUFFERS);
    h.driver.driverOk();
    for (let i = 0; i < EVENT_BUFFERS; i++) d.#postEventBuffer();
    h.driver.kick(d.eventq);
    return d;
  }

  /**
   * Goes on with a management device restored from a snapshot of this one over the same
   * memory (as a restored VM's driver does: its rings and buffers are where they were).
   */
  reattach(restored: Harness<ManagementDevice>): void {
    this.h.device = restored.device;
    this.h.transport = restored.transport;
    this.h.backend = restored.backend;
    this.h.driver = new MmioDriver(restored.transport, this.h.mem, this.h.alloc);
  }

  get mem(): GuestMemory {
    return this.h.mem;
  }

  #postEventBuffer(): void {
    const seg = this.h.driver.inBuffer(ADMIN_EVENT_SIZE);
    const head = this.eventq.add([seg]);
    this.#eventBufs.set(head, seg.addr);
  }

  /** Posts a command and kicks; returns the reply buffer's address and its head. */
  post(
    vdevId: bigint,
    cls: number,
    cmd: number,
    out: Uint8Array = new Uint8Array(0),
    inLen = 64,
  ): { head: number; reply: number } {
    const req = new Uint8Array(ADMIN_HEADER + out.byteLength), v = new DataView(req.buffer);
    v.setBigUint64(0, vdevId, true);
    v.setUint16(8, cls, true);
    v.setUint16(10, cmd, true);
    req.set(out, ADMIN_HEADER);
    const inSeg = this.h.driver.inBuffer(ADMIN_REPLY_HEADER + inLen);
    const head = this.adminq.add([this.h.driver.outBuffer(req), inSeg]);
    this.h.driver.kick(this.adminq);
    return { head, reply: inSeg.addr };
  }

  /** The answer to a posted command, or undefined while it is not back. */
  answer(p: { head: number; reply: number }): AdminAnswer | undefined {
    const u = this.adminq.getUsed();
    if (!u) return undefined;
    if (u.id !== p.head) throw new Error(`reply for ${u.id}, expected ${p.head}`);
    const hdr = this.mem.read(p.reply, ADMIN_REPLY_HEADER), v = new DataView(hdr.buffer);
    const n = v.getUint32(4, true);
    return {
      ack: hdr[0]!,
      error: v.getUint16(2, true),
      data: u.len >= ADMIN_REPLY_HEADER + n
        ? this.mem.read(p.reply + ADMIN_REPLY_HEADER, n)
        : new Uint8Array(0),
      usedLen: u.len,
    };
  }

  /** Sends a command that answers at once. */
  command(
    vdevId: bigint,
    cls: number,
    cmd: number,
    out?: Uint8Array,
    inLen?: number,
  ): AdminAnswer {
    const p = this.post(vdevId, cls, cmd, out, inLen);
    const a = this.answer(p);
    if (!a) throw new Error(`no reply to class ${cls} command ${cmd}`);
    return a;
  }

  /** Sends a command and waits (in event-loop turns) for its answer. */
  async commandAsync(
    vdevId: bigint,
    cls: number,
    cmd: number,
    out?: Uint8Array,
    inLen?: number,
  ): Promise<AdminAnswer> {
    const p = this.post(vdevId, cls, cmd, out, inLen);
    for (let i = 0; i < 10_000; i++) {
      const a = this.answer(p);
      if (a) return a;
      await new Promise((r) => setTimeout(r, 0));
    }
    throw new Error(`no reply to class ${cls} command ${cmd}`);
  }

  /** Like {@link command}, but throws unless the answer is OK. */
  ok(vdevId: bigint, cls: number, cmd: number, out?: Uint8Array, inLen?: number): Uint8Array {
    const a = this.command(vdevId, cls, cmd, out, inLen);
    if (a.ack !== 0) throw new Error(`class ${cls} command ${cmd} failed: error ${a.error}`);
    return a.data;
  }

  /** Creates a virtual device of `type` (all features unless `mask`); returns its id. */
  create(type: number, attrs = new Uint8Array(0), mask = ~0n): bigint {
    const out = new Uint8Array(16 + attrs.byteLength), v = new DataView(out.buffer);
    v.setUint32(0, type, true);
    v.setBigUint64(8, BigInt.asUintN(64, mask), true);
    out.set(attrs, 16);
    const d = this.ok(0n, ADMIN_CLASS.VDEV, ADMIN_CMD.VDEV_CREATE, out, 8);
    return new DataView(d.buffer).getBigUint64(0, true);
  }

  /** The events delivered so far (their buffers are posted again). */
  events(): AdminEvent[] {
    const out: AdminEvent[] = [];
    const used = this.eventq.drainUsed();
    for (const u of used) {
      const addr = this.#eventBufs.get(u.id)!;
      this.#eventBufs.delete(u.id);
      if (u.len >= ADMIN_EVENT_SIZE) {
        const b = this.mem.read(addr, ADMIN_EVENT_SIZE), v = new DataView(b.buffer);
        out.push({
          vdevId: Number(v.getBigUint64(0, true)),
          type: v.getUint16(8, true),
          data: v.getUint32(12, true),
          addr: Number(v.getBigUint64(16, true)),
        });
      }
    }
    // Only now: a buffer posted inside the loop could take an id still to be read.
    for (let i = 0; i < used.length; i++) this.#postEventBuffer();
    if (used.length) this.h.driver.kick(this.eventq);
    return out;
  }
}

const u16 = (n: number) => Uint8Array.of(n & 0xff, n >> 8);
const u64s = (...xs: (number | bigint)[]) => {
  const b = new Uint8Array(8 * xs.length), v = new DataView(b.buffer);
  xs.forEach((x, i) => v.setBigUint64(8 * i, BigInt(x), true));
  return b;
};

/** A virtual device's driver, speaking through an {@link AdminDriver}. */
export class VirtualDriver {
  constructor(readonly admin: AdminDriver, readonly id: bigint) {}

  get status(): number {
    return this.admin.ok(this.id, ADMIN_CLASS.STATUS, ADMIN_CMD.STATUS_GET, undefined, 1)[0]!;
  }

  setStatus(s: number) {
    return this.admin.command(this.id, ADMIN_CLASS.STATUS, ADMIN_CMD.STATUS_SET, Uint8Array.of(s));
  }

  /** Maps `size` bytes at I/O address `iova` to guest RAM at `gpa`. */
  map(iova: number, gpa: number, size: number) {
    return this.admin.command(this.id, ADMIN_CLASS.MMU, ADMIN_CMD.MMU_MAP, u64s(iova, gpa, size));
  }

  /**
   * Reset, ACKNOWLEDGE, DRIVER, features (`wanted` & offered, VERSION_1 always),
   * FEATURES_OK and its re-read. Returns whether the device kept FEATURES_OK.
   */
  init(wanted = ~0n): boolean {
    this.setStatus(0);
    this.setStatus(STATUS.ACKNOWLEDGE);
    this.setStatus(STATUS.ACKNOWLEDGE | STATUS.DRIVER);
    const offered = new DataView(
      this.admin.ok(this.id, ADMIN_CLASS.FEAT, ADMIN_CMD.FEAT_DEVICE_GET, undefined, 8).buffer,
    ).getBigUint64(0, true);
    const f = offered & (wanted | bit(F.VERSION_1));
    this.admin.ok(this.id, ADMIN_CLASS.FEAT, ADMIN_CMD.FEAT_DRIVER_SET, u64s(f));
    this.setStatus(STATUS.ACKNOWLEDGE | STATUS.DRIVER | STATUS.FEATURES_OK);
    this.#features = f;
    return (this.status & STATUS.FEATURES_OK) !== 0;
  }

  #features = 0n;

  /** Sets up queue `index` (rings from the test allocator, at I/O address = guest address). */
  setupQueue(index: number, size = 8): VirtqueueDriver {
    const a = this.admin.h.alloc;
    const layout = {
      size,
      desc: a.alloc(16 * size, 16),
      avail: a.alloc(6 + 2 * size, 2),
      used: a.alloc(6 + 8 * size, 4),
    };
    const out = new Uint8Array(32), v = new DataView(out.buffer);
    v.setUint16(0, index, true);
    v.setUint16(2, size, true);
    v.setBigUint64(8, BigInt(layout.desc), true);
    v.setBigUint64(16, BigInt(layout.avail), true);
    v.setBigUint64(24, BigInt(layout.used), true);
    this.admin.ok(this.id, ADMIN_CLASS.QUEUE, ADMIN_CMD.QUEUE_SET, out);
    this.admin.ok(this.id, ADMIN_CLASS.QUEUE, ADMIN_CMD.QUEUE_ENABLE, u16(index));
    const q = new VirtqueueDriver(this.admin.mem, a, index, layout);
    q.eventIdx = (this.#features & bit(F.EVENT_IDX)) !== 0n;
    return q;
  }

  driverOk() {
    return this.setStatus(this.status | STATUS.DRIVER_OK);
  }

  /** Notifies queue `q` through the admin queue when the device asked for it. */
  kick(q: VirtqueueDriver, force = false): boolean {
    if (!force && !q.needsKick()) return false;
    this.admin.ok(this.id, ADMIN_CLASS.NOTIFY, ADMIN_CMD.NOTIFY_KICK, u16(q.index));
    return true;
  }

  /** Reads config space. */
  readConfig(offset: number, len: number): Uint8Array {
    const out = new Uint8Array(8), v = new DataView(out.buffer);
    v.setUint32(0, offset, true);
    v.setUint32(4, len, true);
    return this.admin.ok(this.id, ADMIN_CLASS.CONFIG, ADMIN_CMD.CONFIG_READ, out, len);
  }
}
