/**
 * The guest side of virtio-vsock for tests: posts receive buffers, sends packets on the
 * transmit queue and parses what the device delivers.
 *
 * @module
 */

import {
  decodeHeader,
  encodeHeader,
  HOST_CID,
  OP,
  VSOCK_HDR,
  type VsockHeader,
} from "../devices/vsock.ts";
import type { MmioDriver, Segment, VirtqueueDriver } from "./driver.ts";

/** A packet the guest received. */
export interface GuestPacket {
  hdr: VsockHeader;
  payload: Uint8Array;
}

/** Guest-side vsock driver, over the harness. */
export class VsockGuest {
  #bufs = new Map<number, Segment>();
  #spare: Segment[] = [];
  /** What the guest advertises as its receive buffer. */
  bufAlloc = 65536;
  /** Bytes of payload the guest has consumed, per "hostPort:guestPort". */
  fwd = new Map<string, number>();

  constructor(
    readonly drv: MmioDriver,
    readonly rx: VirtqueueDriver,
    readonly tx: VirtqueueDriver,
    readonly events: VirtqueueDriver,
    readonly cid = 3n,
  ) {
    this.refill();
    const e = drv.inBuffer(8);
    events.add([e]);
    drv.kick(events);
  }

  /** Posts receive buffers until the queue is full. */
  refill(): void {
    while (this.rx.freeCount > 0) {
      const b = this.#spare.pop() ?? this.drv.inBuffer(4096);
      this.#bufs.set(this.rx.add([b]), b);
    }
    this.drv.kick(this.rx);
  }

  /** Sends one packet from guest port `src` to host port `dst`. */
  send(op: number, src: number, dst: number, payload = new Uint8Array(0), flags = 0): void {
    const hdr: VsockHeader = {
      srcCid: this.cid,
      dstCid: BigInt(HOST_CID),
      srcPort: src,
      dstPort: dst,
      len: payload.byteLength,
      type: 1,
      op,
      flags,
      bufAlloc: this.bufAlloc,
      fwdCnt: this.fwd.get(`${dst}:${src}`) ?? 0,
    };
    const pkt = new Uint8Array(VSOCK_HDR + payload.byteLength);
    pkt.set(encodeHeader(hdr));
    pkt.set(payload, VSOCK_HDR);
    this.tx.add([this.drv.outBuffer(pkt)]);
    this.drv.kick(this.tx);
    this.tx.drainUsed();
  }

  /** Packets delivered so far (the buffers are reposted). */
  receive(): GuestPacket[] {
    const out: GuestPacket[] = [];
    for (const u of this.rx.drainUsed()) {
      const b = this.#bufs.get(u.id)!;
      this.#bufs.delete(u.id);
      this.#spare.push(b); // reposted by refill() once read
      if (u.len < VSOCK_HDR) continue;
      const bytes = this.drv.mem.read(b.addr, u.len);
      const hdr = decodeHeader(bytes);
      const payload = bytes.slice(VSOCK_HDR, VSOCK_HDR + hdr.len);
      if (hdr.op === OP.RW) {
        const k = `${hdr.srcPort}:${hdr.dstPort}`;
        this.fwd.set(k, ((this.fwd.get(k) ?? 0) + payload.byteLength) >>> 0);
      }
      out.push({ hdr, payload });
    }
    this.refill();
    return out;
  }

  /** Transport-reset events received. */
  eventsReceived(): number {
    return this.events.drainUsed().length;
  }
}
