/**
 * virtio-vsock (device type 19), stream sockets between the guest and the host, with the
 * spec's credit-based flow control. The host side is a {@link VsockHost}: in the VMM,
 * Unix sockets in the Firecracker style (`host/vsock_unix.ts`).
 *
 * - A guest connect to host port P asks the host for a connection to P (REQUEST →
 *   RESPONSE, or RST when refused).
 * - A host connection to guest port P ({@link VsockDevice.connectToGuest}) sends the guest
 *   a REQUEST and resolves once it answers RESPONSE.
 * - Data (RW) flows only within the peer's credit: `buf_alloc - (sent - fwd_cnt)`. Host data
 *   is read only when the guest has credit and receive buffers, so nothing is dropped.
 * - After a snapshot restore the host connections are gone: the device sends the guest a
 *   TRANSPORT_RESET event (as Firecracker does) and starts over.
 *
 * @module
 */

import { after, type Timer } from "@denovm/sys/timer";
import { bit, DEVICE_ID, F } from "../virtio/constants.ts";
import type { Persist } from "../bus/persist.ts";
import type { DeviceContext, VirtioBackend } from "../virtio/device.ts";
import { ChainReader, ChainWriter } from "../virtio/queue.ts";
import { serveQueue } from "../virtio/serve.ts";

/** The host's CID. */
export const HOST_CID = 2;
/** Size of `struct virtio_vsock_hdr`. */
export const VSOCK_HDR = 44;
/** Packet operations. */
export const OP = {
  REQUEST: 1,
  RESPONSE: 2,
  RST: 3,
  SHUTDOWN: 4,
  RW: 5,
  CREDIT_UPDATE: 6,
  CREDIT_REQUEST: 7,
} as const;
/** SHUTDOWN flags. */
export const SHUTDOWN_RCV = 1, SHUTDOWN_SEND = 2;
const TYPE_STREAM = 1;
const RX = 0, TX = 1, EVENT = 2;
/** Our receive buffer per connection (advertised as buf_alloc). */
export const VSOCK_BUF_ALLOC = 256 * 1024;
/** The most payload one RW packet carries (Linux's VIRTIO_VSOCK_MAX_PKT_BUF_SIZE). */
export const VSOCK_MAX_PAYLOAD = 64 * 1024;
/**
 * Resets for connections that do not exist, held while the guest posts no receive
 * buffers. Control packets of open connections are never dropped (they are flags on the
 * connection, at most one of each kind); past this many resets for unknown ports the
 * device counts and reports the ones it drops ({@link VsockDevice.droppedResets}).
 */
export const VSOCK_MAX_PENDING_RESETS = 4096;
/** The most connections a guest may hold open at once (more are reset). */
export const VSOCK_MAX_CONNECTIONS = 1024;
/** Control packets a connection owes the guest: flags, so a full ring never loses one. */
const CTL_REQUEST = 1, CTL_RESPONSE = 2, CTL_CREDIT = 4, CTL_SHUTDOWN = 8;
/** How long a host connect waits for the guest to answer before it is reset (ms). */
export const VSOCK_CONNECT_TIMEOUT_MS = 10_000;
/** Host-initiated connections use local ports from here up. */
const EPHEMERAL_BASE = 0x4000_0000;

/** A connection on the host side. */
export interface VsockConn {
  /** Reads up to `buf.byteLength` bytes; null at end of stream. */
  read(buf: Uint8Array): Promise<number | null>;
  /** Writes all of `data`. */
  write(data: Uint8Array): Promise<void>;
  /**
   * Half-closes: the guest will send nothing more, so the host reads end of stream while
   * it may still write. Without it, the connection stays open until either side closes.
   */
  closeWrite?(): Promise<void>;
  close(): void;
}

/** The host side of the device. */
export interface VsockHost {
  /** The guest connects to host port `port`: a connection, or null to refuse. */
  connect(port: number): Promise<VsockConn | null>;
}

/** A vsock packet header. */
export interface VsockHeader {
  srcCid: bigint;
  dstCid: bigint;
  srcPort: number;
  dstPort: number;
  len: number;
  type: number;
  op: number;
  flags: number;
  bufAlloc: number;
  fwdCnt: number;
}

/** Encodes a header. */
export function encodeHeader(h: VsockHeader): Uint8Array {
  const b = new Uint8Array(VSOCK_HDR);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, h.srcCid, true);
  v.setBigUint64(8, h.dstCid, true);
  v.setUint32(16, h.srcPort, true);
  v.setUint32(20, h.dstPort, true);
  v.setUint32(24, h.len, true);
  v.setUint16(28, h.type, true);
  v.setUint16(30, h.op, true);
  v.setUint32(32, h.flags, true);
  v.setUint32(36, h.bufAlloc, true);
  v.setUint32(40, h.fwdCnt, true);
  return b;
}

/** Decodes a header. */
export function decodeHeader(b: Uint8Array): VsockHeader {
  const v = new DataView(b.buffer, b.byteOffset, VSOCK_HDR);
  return {
    srcCid: v.getBigUint64(0, true),
    dstCid: v.getBigUint64(8, true),
    srcPort: v.getUint32(16, true),
    dstPort: v.getUint32(20, true),
    len: v.getUint32(24, true),
    type: v.getUint16(28, true),
    op: v.getUint16(30, true),
    flags: v.getUint32(32, true),
    bufAlloc: v.getUint32(36, true),
    fwdCnt: v.getUint32(40, true),
  };
}

type State = "connecting" | "connected" | "closing";

interface Conn {
  hostPort: number;
  guestPort: number;
  state: State;
  host: VsockConn | undefined;
  /** Peer credit: its buffer and how much of what we sent it has consumed. */
  peerBufAlloc: number;
  peerFwdCnt: number;
  /** Bytes we sent the guest (RW payload), mod 2^32. */
  txCnt: number;
  /** Bytes of guest data we delivered to the host, mod 2^32. */
  fwdCnt: number;
  /** fwdCnt the guest last heard of. */
  fwdCntSent: number;
  /** Guest bytes received but not yet written to the host. */
  inFlight: number;
  /** Host data read but not yet sent to the guest. */
  pending: Uint8Array | undefined;
  reading: boolean;
  hostEof: boolean;
  /** SHUTDOWN flags the guest sent so far (RCV: it takes no more data; SEND: it sends none). */
  peerShutdown: number;
  /** Control packets owed to the guest (CTL_* flags). */
  ctl: number;
  /** Host-initiated: settles when the guest answers (with our port, or null). */
  opened?: { resolve: (port: number | null) => void; timer: Timer };
  writeChain: Promise<void>;
}

/** A connection in the connecting state, with no credit known yet. */
function newConn(hostPort: number, guestPort: number, host: VsockConn | undefined): Conn {
  return {
    hostPort,
    guestPort,
    state: "connecting",
    host,
    peerBufAlloc: 0,
    peerFwdCnt: 0,
    txCnt: 0,
    fwdCnt: 0,
    fwdCntSent: 0,
    inFlight: 0,
    pending: undefined,
    reading: false,
    hostEof: false,
    peerShutdown: 0,
    ctl: 0,
    writeChain: Promise.resolve(),
  };
}

/** Saved state of {@link VsockDevice}. */
export interface VsockState {
  /** The guest CID, as a decimal string. */
  cid: string;
}

/** Options of {@link VsockDevice}. */
export interface VsockOptions {
  /** The guest's CID (3 or more). */
  cid: number;
  host: VsockHost;
  queueSize?: number;
  log?: (message: string) => void;
}

/**
 * The virtio-vsock device model.
 *
 * @example
 * ```ts
 * import { VsockDevice } from "./vsock.ts";
 * const v = new VsockDevice({ cid: 3, host: { connect: () => Promise.resolve(null) } });
 * console.assert(v.deviceType === 19);
 * ```
 */
export class VsockDevice implements VirtioBackend, Persist<VsockState> {
  readonly deviceType = DEVICE_ID.VSOCK;
  readonly queueMaxSizes: number[];
  readonly features = bit(F.EVENT_IDX) | bit(F.INDIRECT_DESC);
  readonly configSize = 8;
  readonly cid: bigint;
  #host: VsockHost;
  #ctx: DeviceContext | undefined;
  #conns = new Map<string, Conn>();
  /** Connections owing the guest a control packet, in the order they asked. */
  #ctlConns = new Set<Conn>();
  /** Resets owed for unknown connections: key → [host port, guest port]. */
  #resets = new Map<string, [number, number]>();
  #droppedResets = 0;
  #nextEphemeral = EPHEMERAL_BASE;
  #resetPending = false;
  #log: (m: string) => void;

  constructor(opts: VsockOptions) {
    if (!Number.isInteger(opts.cid) || opts.cid < 3 || opts.cid > 0xffff_fffe) {
      throw new RangeError(`Cannot use vsock CID ${opts.cid}: it must be 3 or more`);
    }
    this.cid = BigInt(opts.cid);
    this.#host = opts.host;
    const qs = opts.queueSize ?? 256;
    this.queueMaxSizes = [qs, qs, qs];
    this.#log = opts.log ?? (() => {});
  }

  /** Open connections (including host connects the guest has not answered yet). */
  get connections(): number {
    return this.#conns.size;
  }

  /** Resets for unknown connections dropped because too many waited for receive buffers. */
  get droppedResets(): number {
    return this.#droppedResets;
  }

  readConfig(offset: number, data: Uint8Array): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, this.cid, true);
    data.set(b.subarray(offset, offset + data.byteLength));
  }

  writeConfig(): void {}

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
  }

  reset(): void {
    this.#closeAll();
    this.#ctx = undefined;
  }

  processQueue(index: number): void {
    if (index === TX) this.#transmit();
    else if (index === RX) this.#flush();
    else if (index === EVENT) this.#sendReset();
  }

  #key(hostPort: number, guestPort: number): string {
    return `${hostPort}:${guestPort}`;
  }

  #header(c: Conn, op: number, len = 0, flags = 0): Uint8Array {
    return encodeHeader({
      srcCid: BigInt(HOST_CID),
      dstCid: this.cid,
      srcPort: c.hostPort,
      dstPort: c.guestPort,
      len,
      type: TYPE_STREAM,
      op,
      flags,
      bufAlloc: VSOCK_BUF_ALLOC,
      fwdCnt: c.fwdCnt,
    });
  }

  #rst(srcPort: number, dstPort: number): Uint8Array {
    return encodeHeader({
      srcCid: BigInt(HOST_CID),
      dstCid: this.cid,
      srcPort,
      dstPort,
      len: 0,
      type: TYPE_STREAM,
      op: OP.RST,
      flags: 0,
      bufAlloc: 0,
      fwdCnt: 0,
    });
  }

  /** `c` owes the guest a control packet (coalesced: one of each kind at most). */
  #queueCtl(c: Conn, flag: number): void {
    c.ctl |= flag;
    this.#ctlConns.add(c);
    this.#flush();
  }

  /** A reset for a connection that does not exist (or no longer does). */
  #queueRst(hostPort: number, guestPort: number): void {
    const key = this.#key(hostPort, guestPort);
    if (this.#resets.has(key)) return;
    if (this.#resets.size >= VSOCK_MAX_PENDING_RESETS) {
      if (this.#droppedResets++ % 1024 === 0) {
        this.#log(
          `vsock: ${VSOCK_MAX_PENDING_RESETS} resets wait for receive buffers the guest does ` +
            `not post; dropped ${this.#droppedResets} so far`,
        );
      }
      return;
    }
    this.#resets.set(key, [hostPort, guestPort]);
    this.#flush();
  }

  /** Guest → host packets. */
  #transmit(): void {
    const ctx = this.#ctx;
    if (!ctx) return;
    serveQueue(ctx, TX, (chain) => {
      if (!chain.error && chain.readableLen >= VSOCK_HDR) {
        const r = new ChainReader(ctx.mem, chain);
        const h = decodeHeader(r.read(VSOCK_HDR));
        if (h.op === OP.RW && (h.len > VSOCK_MAX_PAYLOAD || h.len > r.remaining)) {
          this.#malformed(h, r.remaining);
        } else {
          this.#packet(h, h.op === OP.RW && h.len > 0 ? r.read(h.len) : new Uint8Array(0));
        }
      }
      return 0;
    });
    this.#flush();
  }

  /** An RW packet longer than the protocol allows or than its own buffers: reset, said. */
  #malformed(h: VsockHeader, carried: number): void {
    this.#log(
      `vsock: guest port ${h.srcPort} sent a data packet of ${h.len} bytes ` +
        (h.len > VSOCK_MAX_PAYLOAD
          ? `(the most is ${VSOCK_MAX_PAYLOAD})`
          : `but its buffers hold ${carried}`) +
        "; resetting the connection",
    );
    const c = this.#conns.get(this.#key(h.dstPort, h.srcPort));
    if (c && h.srcCid === this.cid) this.#drop(c, true);
    else this.#queueRst(h.dstPort, h.srcPort);
  }

  #packet(h: VsockHeader, payload: Uint8Array): void {
    if (h.srcCid !== this.cid || h.dstCid !== BigInt(HOST_CID) || h.type !== TYPE_STREAM) {
      if (h.op !== OP.RST) this.#queueRst(h.dstPort, h.srcPort);
      return;
    }
    const key = this.#key(h.dstPort, h.srcPort);
    const c = this.#conns.get(key);
    if (h.op === OP.REQUEST) {
      if (c) return this.#drop(c, true); // a second REQUEST on an open connection
      if (this.#conns.size >= VSOCK_MAX_CONNECTIONS) return this.#queueRst(h.dstPort, h.srcPort);
      return this.#guestConnect(h);
    }
    if (!c) {
      if (h.op !== OP.RST) this.#queueRst(h.dstPort, h.srcPort);
      return;
    }
    c.peerBufAlloc = h.bufAlloc;
    c.peerFwdCnt = h.fwdCnt;
    switch (h.op) {
      case OP.RESPONSE:
        if (c.state === "connecting" && c.opened) {
          c.state = "connected";
          c.opened.timer.cancel();
          c.opened.resolve(c.hostPort);
          delete c.opened;
          this.#pump(c);
        }
        return;
      case OP.RW:
        if (c.state !== "connected" || !c.host) return;
        if (c.peerShutdown & SHUTDOWN_SEND) {
          this.#log(`vsock: guest port ${c.guestPort} sent data after SHUTDOWN_SEND; resetting`);
          return this.#drop(c, true);
        }
        if (c.inFlight + payload.byteLength > VSOCK_BUF_ALLOC) {
          this.#log(`vsock: guest port ${c.guestPort} overran its credit; resetting`);
          return this.#drop(c, true);
        }
        c.inFlight += payload.byteLength;
        c.writeChain = c.writeChain.then(async () => {
          try {
            await c.host!.write(payload);
          } catch {
            return this.#drop(c, true);
          }
          c.inFlight -= payload.byteLength;
          c.fwdCnt = (c.fwdCnt + payload.byteLength) >>> 0;
          // Tell the guest about freed credit once half the buffer was consumed.
          if (((c.fwdCnt - c.fwdCntSent) >>> 0) >= VSOCK_BUF_ALLOC / 2) this.#creditUpdate(c);
        });
        return;
      case OP.CREDIT_REQUEST:
        return this.#creditUpdate(c);
      case OP.CREDIT_UPDATE:
        return this.#pump(c);
      case OP.SHUTDOWN: {
        // Half-closes are kept: a guest that only stops sending still gets the host's
        // reply (shutdown(SHUT_WR) then read). Both directions shut: close and reset, once
        // the guest's data reached the host.
        const before = c.peerShutdown;
        c.peerShutdown |= h.flags & (SHUTDOWN_RCV | SHUTDOWN_SEND);
        if (c.peerShutdown === (SHUTDOWN_RCV | SHUTDOWN_SEND)) {
          void c.writeChain.then(() => this.#drop(c, true));
        } else if (c.peerShutdown & SHUTDOWN_SEND && !(before & SHUTDOWN_SEND)) {
          const host = c.host;
          c.writeChain = c.writeChain.then(() => host?.closeWrite?.()).catch(() => {});
        }
        if (c.peerShutdown & SHUTDOWN_RCV) c.pending = undefined;
        return;
      }
      case OP.RST:
        return this.#drop(c, false);
    }
  }

  #creditUpdate(c: Conn): void {
    this.#queueCtl(c, CTL_CREDIT);
  }

  #guestConnect(h: VsockHeader): void {
    const c = newConn(h.dstPort, h.srcPort, undefined);
    c.peerBufAlloc = h.bufAlloc;
    c.peerFwdCnt = h.fwdCnt;
    const key = this.#key(c.hostPort, c.guestPort);
    this.#conns.set(key, c);
    this.#host.connect(h.dstPort).then(
      (conn) => {
        if (this.#conns.get(key) !== c) return conn?.close();
        if (!conn) return this.#drop(c, true);
        c.host = conn;
        c.state = "connected";
        this.#queueCtl(c, CTL_RESPONSE);
        this.#pump(c);
      },
      () => this.#drop(c, true),
    );
  }

  /**
   * Opens a connection from the host to guest port `port`, carried by `host`. Resolves
   * with the host-side port once the guest accepts, or null when it refuses (RST), does
   * not answer within `timeoutMs`, or {@link VSOCK_MAX_CONNECTIONS} are open already.
   */
  connectToGuest(
    port: number,
    host: VsockConn,
    timeoutMs: number = VSOCK_CONNECT_TIMEOUT_MS,
  ): Promise<number | null> {
    if (!this.#ctx) return Promise.resolve(null);
    if (this.#conns.size >= VSOCK_MAX_CONNECTIONS) {
      this.#log(`vsock: ${VSOCK_MAX_CONNECTIONS} connections open; host connect refused`);
      return Promise.resolve(null);
    }
    const hostPort = this.#nextEphemeral++;
    if (this.#nextEphemeral > 0xffff_fff0) this.#nextEphemeral = EPHEMERAL_BASE;
    const c = newConn(hostPort, port, host);
    this.#conns.set(this.#key(hostPort, port), c);
    return new Promise((resolve) => {
      const timer = after(timeoutMs, () => {
        this.#log(`vsock: guest port ${port} did not answer a host connect in ${timeoutMs} ms`);
        this.#drop(c, true);
      });
      c.opened = { resolve, timer };
      this.#queueCtl(c, CTL_REQUEST);
    });
  }

  /** Credit the guest has left for data from us. */
  #credit(c: Conn): number {
    return c.peerBufAlloc - ((c.txCnt - c.peerFwdCnt) >>> 0);
  }

  /** Reads more host data for `c` when it has none waiting and the guest has credit. */
  #pump(c: Conn): void {
    if (c.state !== "connected" || !c.host) return;
    if (c.peerShutdown & SHUTDOWN_RCV) return; // the guest takes no more data
    if (c.pending) return this.#flush(); // the flush pumps again once it is sent
    if (c.reading || c.hostEof || this.#credit(c) <= 0 || !this.#ctx?.canProcess()) return;
    c.reading = true;
    const buf = new Uint8Array(Math.min(VSOCK_MAX_PAYLOAD, this.#credit(c)));
    c.host.read(buf).then(
      (n) => {
        c.reading = false;
        if (c.state !== "connected") return;
        if (n === null) {
          c.hostEof = true;
          this.#queueCtl(c, CTL_SHUTDOWN); // sent after any data still pending
          return;
        }
        if (n > 0) c.pending = buf.subarray(0, n);
        this.#pump(c);
      },
      () => {
        c.reading = false;
        this.#drop(c, true);
      },
    );
  }

  /** Fills receive buffers: control packets first, then pending data within credit. */
  #flush(): void {
    this.#ctx?.guard("vsock receive queue", () => this.#fillRx());
  }

  #fillRx(): void {
    const ctx = this.#ctx;
    if (!ctx || !ctx.canProcess()) return;
    const q = ctx.queues[RX]!;
    if (!q.ready) return;
    let used = false;
    let out = false; // no receive buffer left
    const pop = () => {
      for (;;) {
        const chain = q.pop(ctx.mem);
        if (chain) return chain;
        if (!q.enableNotification(ctx.mem)) {
          out = true;
          return null;
        }
      }
    };
    /**
     * Writes one packet into the next receive buffer: true when written, false when that
     * buffer was too small or broken (the packet stays owed), null when none is left.
     */
    const put = (pkt: Uint8Array): boolean | null => {
      const chain = pop();
      if (!chain) return null;
      const w = new ChainWriter(ctx.mem, chain);
      const ok = !chain.error && w.remaining >= pkt.byteLength;
      if (ok) w.write(pkt);
      q.addUsed(ctx.mem, chain.head, w.written);
      used = true;
      return ok;
    };
    for (const [key, [hostPort, guestPort]] of this.#resets) {
      if (out) break;
      if (put(this.#rst(hostPort, guestPort))) this.#resets.delete(key);
    }
    // Connection set-up and credit first, then data, then SHUTDOWN (after the data).
    const control = (kinds: number) => {
      for (const c of this.#ctlConns) {
        if (out) return;
        while (!out && c.ctl & kinds) {
          const flag = c.ctl & kinds & -(c.ctl & kinds); // lowest: REQUEST, RESPONSE, CREDIT
          if (flag === CTL_SHUTDOWN && c.pending) break;
          const op = flag === CTL_REQUEST
            ? OP.REQUEST
            : flag === CTL_RESPONSE
            ? OP.RESPONSE
            : flag === CTL_CREDIT
            ? OP.CREDIT_UPDATE
            : OP.SHUTDOWN;
          const pkt = this.#header(c, op, 0, op === OP.SHUTDOWN ? SHUTDOWN_RCV | SHUTDOWN_SEND : 0);
          const ok = put(pkt);
          if (ok === null) break;
          if (ok) {
            c.ctl &= ~flag;
            if (flag === CTL_CREDIT) c.fwdCntSent = c.fwdCnt;
          }
        }
        if (c.ctl === 0) this.#ctlConns.delete(c);
      }
    };
    control(CTL_REQUEST | CTL_RESPONSE | CTL_CREDIT);
    const emptied: Conn[] = [];
    for (const c of this.#conns.values()) {
      while (!out && c.pending && c.state === "connected" && !(c.ctl & CTL_RESPONSE)) {
        if (this.#credit(c) <= 0) break; // wait for a CREDIT_UPDATE
        const chain = pop();
        if (!chain) break;
        const w = new ChainWriter(ctx.mem, chain);
        if (!chain.error && w.remaining > VSOCK_HDR) {
          const n = Math.min(c.pending.byteLength, w.remaining - VSOCK_HDR, this.#credit(c));
          c.fwdCntSent = c.fwdCnt;
          w.write(this.#header(c, OP.RW, n));
          w.write(c.pending.subarray(0, n));
          c.txCnt = (c.txCnt + n) >>> 0;
          c.pending = n === c.pending.byteLength ? undefined : c.pending.subarray(n);
          if (!c.pending) emptied.push(c);
        }
        q.addUsed(ctx.mem, chain.head, w.written);
        used = true;
      }
    }
    control(CTL_SHUTDOWN);
    if (used) ctx.signalUsed(RX);
    for (const c of emptied) this.#pump(c);
  }

  #drop(c: Conn, sendRst: boolean): void {
    const key = this.#key(c.hostPort, c.guestPort);
    if (this.#conns.get(key) !== c) return;
    this.#conns.delete(key);
    c.state = "closing";
    c.ctl = 0;
    this.#ctlConns.delete(c);
    c.host?.close();
    c.opened?.timer.cancel();
    c.opened?.resolve(null);
    if (sendRst) this.#queueRst(c.hostPort, c.guestPort);
  }

  #closeAll(): void {
    for (const c of [...this.#conns.values()]) this.#drop(c, false);
    this.#ctlConns.clear();
    this.#resets.clear();
  }

  /** Sends VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (after a restore, host sockets are gone). */
  #sendReset(): void {
    this.#ctx?.guard("vsock event queue", () => this.#writeReset());
  }

  #writeReset(): void {
    const ctx = this.#ctx;
    if (!this.#resetPending || !ctx || !ctx.canProcess()) return;
    const q = ctx.queues[EVENT]!;
    if (!q.ready) return;
    const chain = q.pop(ctx.mem);
    if (!chain) return;
    const w = new ChainWriter(ctx.mem, chain);
    if (!chain.error && w.remaining >= 4) w.write(new Uint8Array(4)); // id 0: TRANSPORT_RESET
    q.addUsed(ctx.mem, chain.head, w.written);
    this.#resetPending = false;
    ctx.signalUsed(EVENT);
  }

  /**
   * The CID. Connections are not saved: their host sockets cannot come along, so a restored
   * device sends the guest TRANSPORT_RESET (as Firecracker does).
   */
  save(): VsockState {
    return { cid: this.cid.toString() };
  }

  /** Validates a saved state (untrusted), pure; see `bus/persist.ts`. */
  static check(x: unknown): VsockState {
    const s = x as VsockState;
    if (
      typeof s !== "object" || s === null || typeof s.cid !== "string" || !/^\d{1,10}$/.test(s.cid)
    ) {
      throw new RangeError("Cannot restore virtio-vsock: bad CID");
    }
    return { cid: s.cid };
  }

  /** Applies a saved state ({@link VsockDevice.check} first; the CID must be this device's). */
  restore(saved: VsockState): void {
    const s = VsockDevice.check(saved);
    if (s.cid !== this.cid.toString()) {
      throw new RangeError(`Cannot restore virtio-vsock: the saved CID differs from ${this.cid}`);
    }
    this.#closeAll();
    this.#resetPending = true; // sent once the device resumes (processQueue(EVENT) on kick)
  }
}
