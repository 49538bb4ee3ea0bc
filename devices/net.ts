/**
 * virtio-net (device type 1) over a {@link NetBackend} (a TAP device in the VMM): one
 * receive and one transmit queue, the MAC in config, link status, and checksum/TSO
 * offloads negotiated honestly (guest-side offloads are turned on in the backend only as
 * negotiated; feature dependencies are enforced at FEATURES_OK). A received frame waits
 * for the guest to post a buffer: it is never read from the backend without one.
 *
 * @module
 */

import { bit, DEVICE_ID, F } from "../virtio/constants.ts";
import type { Persist } from "../bus/persist.ts";
import type { DeviceContext, VirtioBackend } from "../virtio/device.ts";
import { ChainReader, ChainWriter } from "../virtio/queue.ts";
import { serveQueue } from "../virtio/serve.ts";

/** Where frames go and come from. Frames carry the 12-byte virtio-net header. */
export interface NetBackend {
  /** Reads one frame into `buf`; 0 when none is waiting. */
  read(buf: Uint8Array): number;
  /** Sends one frame; false when it was dropped (backend full). */
  write(frame: Uint8Array): boolean;
  /** Which offloads (TUN_F bits: 1 csum, 2 tso4, 4 tso6, 8 ecn) received frames may use. */
  setOffload(flags: number): void;
}

/** virtio-net feature bits. */
export const NET_F = {
  CSUM: 0n,
  GUEST_CSUM: 1n,
  MTU: 3n,
  MAC: 5n,
  GUEST_TSO4: 7n,
  GUEST_TSO6: 8n,
  GUEST_ECN: 9n,
  HOST_TSO4: 11n,
  HOST_TSO6: 12n,
  HOST_ECN: 13n,
  MRG_RXBUF: 15n,
  STATUS: 16n,
} as const;

/** Size of `struct virtio_net_hdr_v1`. */
export const NET_HDR = 12;
/** The largest frame (with header) the device moves: 64 KiB of TSO payload plus headers. */
export const NET_MAX_FRAME = NET_HDR + 65550;
const RX = 0, TX = 1;
const TUN_CSUM = 1, TUN_TSO4 = 2, TUN_TSO6 = 4, TUN_ECN = 8;

/** Saved state of {@link NetDevice}. */
export interface NetState {
  mac: Uint8Array;
  /** A frame read from the backend, waiting for a receive buffer (at most one). */
  staged: Uint8Array;
}

/** Options of {@link NetDevice}. */
export interface NetOptions {
  /** 6-byte MAC, e.g. "52:54:00:12:34:56". */
  mac: string;
  queueSize?: number;
  /** Offer checksum and TSO offloads (the backend must support TUNSETOFFLOAD). */
  offloads?: boolean;
}

/** Counters, for tests and benchmarks. */
export interface NetStats {
  rxFrames: number;
  txFrames: number;
  rxDropped: number;
  txDropped: number;
}

/** Parses "aa:bb:cc:dd:ee:ff". */
export function parseMac(mac: string): Uint8Array {
  const parts = mac.split(":");
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
    throw new TypeError(
      `Cannot use MAC ${JSON.stringify(mac)}: expected six hex bytes like 52:54:00:12:34:56`,
    );
  }
  return new Uint8Array(parts.map((p) => parseInt(p, 16)));
}

/**
 * The virtio-net device model.
 *
 * @example
 * ```ts
 * import { NetDevice } from "./net.ts";
 * const net = new NetDevice({ read: () => 0, write: () => true, setOffload: () => {} }, {
 *   mac: "52:54:00:12:34:56",
 * });
 * console.assert(net.deviceType === 1);
 * ```
 */
export class NetDevice implements VirtioBackend, Persist<NetState> {
  readonly deviceType = DEVICE_ID.NET;
  readonly queueMaxSizes: number[];
  readonly features: bigint;
  readonly configSize = 10;
  readonly stats: NetStats = { rxFrames: 0, txFrames: 0, rxDropped: 0, txDropped: 0 };
  #config = new Uint8Array(10);
  #backend: NetBackend;
  #ctx: DeviceContext | undefined;
  #staged = new Uint8Array(NET_MAX_FRAME);
  #stagedLen = 0;
  #txBuf = new Uint8Array(NET_MAX_FRAME);

  constructor(backend: NetBackend, opts: NetOptions) {
    this.#backend = backend;
    const qs = opts.queueSize ?? 256;
    this.queueMaxSizes = [qs, qs];
    let f = bit(F.EVENT_IDX) | bit(F.INDIRECT_DESC) | bit(NET_F.MAC) | bit(NET_F.STATUS);
    if (opts.offloads ?? true) {
      f |= bit(NET_F.CSUM) | bit(NET_F.GUEST_CSUM) | bit(NET_F.GUEST_TSO4) | bit(NET_F.GUEST_TSO6) |
        bit(NET_F.GUEST_ECN) | bit(NET_F.HOST_TSO4) | bit(NET_F.HOST_TSO6) | bit(NET_F.HOST_ECN);
    }
    this.features = f;
    this.#config.set(parseMac(opts.mac), 0);
    const v = new DataView(this.#config.buffer);
    v.setUint16(6, 1, true); // status: VIRTIO_NET_S_LINK_UP
    v.setUint16(8, 1, true); // max_virtqueue_pairs
  }

  /** The spec's feature dependencies: a device must refuse a driver that breaks them. */
  acceptFeatures(acked: bigint): boolean {
    const has = (b: bigint) => (acked & bit(b)) !== 0n;
    if ((has(NET_F.GUEST_TSO4) || has(NET_F.GUEST_TSO6)) && !has(NET_F.GUEST_CSUM)) return false;
    if (has(NET_F.GUEST_ECN) && !(has(NET_F.GUEST_TSO4) || has(NET_F.GUEST_TSO6))) return false;
    if ((has(NET_F.HOST_TSO4) || has(NET_F.HOST_TSO6)) && !has(NET_F.CSUM)) return false;
    if (has(NET_F.HOST_ECN) && !(has(NET_F.HOST_TSO4) || has(NET_F.HOST_TSO6))) return false;
    return true;
  }

  readConfig(offset: number, data: Uint8Array): void {
    data.set(this.#config.subarray(offset, offset + data.byteLength));
  }

  writeConfig(): void {
    // The MAC is not writable without VIRTIO_NET_F_CTRL_MAC_ADDR (not offered).
  }

  activate(ctx: DeviceContext): void {
    const f = ctx.features;
    let tun = 0;
    if (f & bit(NET_F.GUEST_CSUM)) tun |= TUN_CSUM;
    if (f & bit(NET_F.GUEST_TSO4)) tun |= TUN_TSO4;
    if (f & bit(NET_F.GUEST_TSO6)) tun |= TUN_TSO6;
    if (f & bit(NET_F.GUEST_ECN)) tun |= TUN_ECN;
    this.#backend.setOffload(tun);
    this.#ctx = ctx;
    this.backendReadable();
  }

  reset(): void {
    this.#ctx = undefined;
  }

  processQueue(index: number): void {
    if (index === RX) this.backendReadable();
    else if (index === TX) this.#transmit();
  }

  /** The backend has frames (call from its readiness callback; edge-triggered is fine). */
  backendReadable(): void {
    this.#ctx?.guard("net receive queue", () => this.#receive());
  }

  #receive(): void {
    const ctx = this.#ctx;
    if (!ctx || !ctx.canProcess()) return;
    const q = ctx.queues[RX]!;
    if (!q.ready) return;
    let used = false;
    for (;;) {
      if (this.#stagedLen === 0) {
        this.#stagedLen = this.#backend.read(this.#staged);
        if (this.#stagedLen === 0) break; // the backend is drained
      }
      const chain = q.pop(ctx.mem);
      if (!chain) {
        // No buffer: keep the frame, ask to be told of the next buffer, re-check the race.
        if (q.enableNotification(ctx.mem)) continue;
        break;
      }
      const w = new ChainWriter(ctx.mem, chain);
      if (chain.error || w.remaining < this.#stagedLen) {
        q.addUsed(ctx.mem, chain.head, 0);
        this.stats.rxDropped++;
      } else {
        // num_buffers = 1: MRG_RXBUF is not offered, each frame fills one buffer chain.
        this.#staged[10] = 1;
        this.#staged[11] = 0;
        w.write(this.#staged.subarray(0, this.#stagedLen));
        q.addUsed(ctx.mem, chain.head, w.written);
        this.stats.rxFrames++;
      }
      this.#stagedLen = 0;
      used = true;
    }
    if (used) ctx.signalUsed(RX);
  }

  #transmit(): void {
    const ctx = this.#ctx;
    if (!ctx) return;
    serveQueue(ctx, TX, (chain) => {
      const len = chain.readableLen;
      if (chain.error || len < NET_HDR || len > NET_MAX_FRAME) {
        this.stats.txDropped++;
      } else {
        const frame = this.#txBuf.subarray(0, len);
        new ChainReader(ctx.mem, chain).readInto(frame);
        if (this.#backend.write(frame)) this.stats.txFrames++;
        else this.stats.txDropped++;
      }
      return 0;
    });
  }

  /** The MAC and the frame read from the TAP but not yet delivered. */
  save(): NetState {
    return { mac: this.#config.slice(0, 6), staged: this.#staged.slice(0, this.#stagedLen) };
  }

  /** Validates a saved state (untrusted), pure; see `bus/persist.ts`. */
  static check(x: unknown): NetState {
    const s = x as NetState;
    if (
      typeof s !== "object" || s === null || !(s.mac instanceof Uint8Array) ||
      s.mac.byteLength !== 6
    ) {
      throw new RangeError("Cannot restore virtio-net: bad MAC");
    }
    if (!(s.staged instanceof Uint8Array) || s.staged.byteLength > NET_MAX_FRAME) {
      throw new RangeError("Cannot restore virtio-net: bad staged frame");
    }
    return { mac: s.mac.slice(), staged: s.staged.slice() };
  }

  /** Applies a saved state ({@link NetDevice.check} first; the MAC must be this device's). */
  restore(saved: NetState): void {
    const s = NetDevice.check(saved);
    if (!s.mac.every((b, i) => b === this.#config[i])) {
      throw new RangeError("Cannot restore virtio-net: the saved MAC differs from this device's");
    }
    this.#staged.set(s.staged);
    this.#stagedLen = s.staged.byteLength;
  }
}
