import { assert, assertEquals } from "@std/assert";
import { harness } from "../testing/setup.ts";
import { VsockGuest } from "../testing/vsock_guest.ts";
import {
  OP,
  SHUTDOWN_RCV,
  SHUTDOWN_SEND,
  VSOCK_MAX_CONNECTIONS,
  VSOCK_MAX_PAYLOAD,
  VSOCK_MAX_PENDING_RESETS,
  type VsockConn,
  VsockDevice,
  type VsockHost,
} from "./vsock.ts";
import { sleep } from "@denovm/sys/timer";

/** One end of an in-memory duplex stream, as the device sees the host socket. */
class MemConn implements VsockConn {
  incoming: Uint8Array[] = [];
  written: number[] = [];
  closed = false;
  #waiter: (() => void) | undefined;
  read(buf: Uint8Array): Promise<number | null> {
    const next = async (): Promise<number | null> => {
      for (;;) {
        const c = this.incoming.shift();
        if (c) {
          const n = Math.min(c.byteLength, buf.byteLength);
          buf.set(c.subarray(0, n));
          if (n < c.byteLength) this.incoming.unshift(c.subarray(n));
          return n;
        }
        if (this.closed) return null;
        await new Promise<void>((r) => (this.#waiter = r));
      }
    };
    return next();
  }
  write(data: Uint8Array): Promise<void> {
    this.written.push(...data);
    return Promise.resolve();
  }
  /** The host application sends data (or EOF with null). */
  push(data: Uint8Array | null): void {
    if (data) this.incoming.push(data);
    else this.closed = true;
    this.#waiter?.();
  }
  writeClosed = false;
  closeWrite(): Promise<void> {
    this.writeClosed = true;
    return Promise.resolve();
  }
  close(): void {
    this.closed = true;
    this.#waiter?.();
  }
}

class MemHost implements VsockHost {
  listening = new Set<number>();
  conns: MemConn[] = [];
  connect(port: number): Promise<VsockConn | null> {
    if (!this.listening.has(port)) return Promise.resolve(null);
    const c = new MemConn();
    this.conns.push(c);
    return Promise.resolve(c);
  }
}

const settle = () => sleep(2);
const text = (b: Uint8Array | number[]) => new TextDecoder().decode(new Uint8Array(b));
const bytes = (s: string) => new TextEncoder().encode(s);

function live() {
  const host = new MemHost();
  const log: string[] = [];
  const h = harness(new VsockDevice({ cid: 3, host, log: (m) => log.push(m) }), {
    memSize: 0x400000,
  });
  assert(h.driver.init().ok);
  const rx = h.driver.setupQueue(0, 32),
    tx = h.driver.setupQueue(1, 32),
    ev = h.driver.setupQueue(2, 4);
  h.driver.driverOk();
  const g = new VsockGuest(h.driver, rx, tx, ev);
  return { ...h, host, g, rx, vlog: log };
}

Deno.test("vsock config holds the guest CID", () => {
  const h = live();
  assertEquals(new DataView(h.driver.readConfig(0, 8).buffer).getBigUint64(0, true), 3n);
});

Deno.test("vsock: a guest connect reaches a host listener; data flows both ways", async () => {
  const h = live();
  h.host.listening.add(1234);
  h.g.send(OP.REQUEST, 5000, 1234);
  await settle();
  const [resp] = h.g.receive();
  assertEquals(resp?.hdr.op, OP.RESPONSE);
  assertEquals([resp?.hdr.srcPort, resp?.hdr.dstPort], [1234, 5000]);
  h.g.send(OP.RW, 5000, 1234, bytes("ping"));
  await settle();
  assertEquals(text(h.host.conns[0]!.written), "ping");
  h.host.conns[0]!.push(bytes("pong"));
  await settle();
  const data = h.g.receive().filter((p) => p.hdr.op === OP.RW);
  assertEquals(data.map((p) => text(p.payload)), ["pong"]);
  assertEquals(h.backend.connections, 1);
});

Deno.test("vsock: a guest connect to a port nobody listens on gets RST", async () => {
  const h = live();
  h.g.send(OP.REQUEST, 5001, 9999);
  await settle();
  assertEquals(h.g.receive().map((p) => p.hdr.op), [OP.RST]);
  assertEquals(h.backend.connections, 0);
  h.g.send(OP.RW, 5001, 9999, bytes("stray"));
  await settle();
  assertEquals(h.g.receive().map((p) => p.hdr.op), [OP.RST], "data for no connection is reset");
});

Deno.test("vsock: a host connect reaches a guest listener once it answers RESPONSE", async () => {
  const h = live();
  const hostSide = new MemConn();
  const opened = h.backend.connectToGuest(52, hostSide);
  await settle();
  const [req] = h.g.receive();
  assertEquals(req?.hdr.op, OP.REQUEST);
  assertEquals(req?.hdr.dstPort, 52);
  h.g.send(OP.RESPONSE, 52, req!.hdr.srcPort);
  assertEquals(await opened, req!.hdr.srcPort, "resolves with the host-side port");
  h.g.send(OP.RW, 52, req!.hdr.srcPort, bytes("hello host"));
  await settle();
  assertEquals(text(hostSide.written), "hello host");
  // A refused one resolves null.
  const refused = h.backend.connectToGuest(53, new MemConn());
  await settle();
  const [req2] = h.g.receive();
  h.g.send(OP.RST, 53, req2!.hdr.srcPort);
  assertEquals(await refused, null);
});

Deno.test("vsock credit: the device sends no more than the guest's buf_alloc until it hears fwd_cnt", async () => {
  const h = live();
  h.host.listening.add(7);
  h.g.bufAlloc = 10;
  h.g.send(OP.REQUEST, 100, 7);
  await settle();
  h.g.receive();
  h.host.conns[0]!.push(bytes("abcdefghijklmnopqrstuvwxy"));
  await settle();
  const first = h.g.receive().filter((p) => p.hdr.op === OP.RW).map((p) => text(p.payload)).join(
    "",
  );
  assertEquals(first, "abcdefghij", "10 bytes of credit");
  h.g.send(OP.CREDIT_UPDATE, 100, 7); // carries fwd_cnt = 10
  await settle();
  const second = h.g.receive().filter((p) => p.hdr.op === OP.RW).map((p) => text(p.payload)).join(
    "",
  );
  assertEquals(second, "klmnopqrst");
  h.g.send(OP.CREDIT_REQUEST, 100, 7);
  await settle();
  const upd = h.g.receive();
  assert(upd.some((p) => p.hdr.op === OP.CREDIT_UPDATE), "a credit request is answered");
});

Deno.test("vsock: guest shutdown closes the host side; host EOF sends SHUTDOWN", async () => {
  const h = live();
  h.host.listening.add(8);
  h.g.send(OP.REQUEST, 200, 8);
  await settle();
  h.g.receive();
  h.host.conns[0]!.push(null); // the host application closed
  await settle();
  const sd = h.g.receive().find((p) => p.hdr.op === OP.SHUTDOWN);
  assertEquals(sd?.hdr.flags, SHUTDOWN_RCV | SHUTDOWN_SEND);
  h.g.send(OP.SHUTDOWN, 200, 8, new Uint8Array(0), SHUTDOWN_RCV | SHUTDOWN_SEND);
  await settle();
  assert(h.g.receive().some((p) => p.hdr.op === OP.RST));
  assertEquals(h.backend.connections, 0);
  assert(h.host.conns[0]!.closed);
});

Deno.test("vsock: a guest SHUTDOWN_SEND half-closes the host side; the host's reply still flows", async () => {
  const h = live();
  h.host.listening.add(9);
  h.g.send(OP.REQUEST, 300, 9);
  await settle();
  h.g.receive();
  h.g.send(OP.RW, 300, 9, bytes("question"));
  h.g.send(OP.SHUTDOWN, 300, 9, new Uint8Array(0), SHUTDOWN_SEND);
  await settle();
  const hc = h.host.conns[0]!;
  assertEquals(text(hc.written), "question", "data before the shutdown reached the host");
  assert(hc.writeClosed, "the host reads end of stream");
  assert(!hc.closed, "but the connection stays open");
  assertEquals(h.g.receive().filter((p) => p.hdr.op === OP.RST), []);
  hc.push(bytes("answer"));
  await settle();
  const got = h.g.receive().filter((p) => p.hdr.op === OP.RW).map((p) => text(p.payload));
  assertEquals(got, ["answer"]);
  // Data after SHUTDOWN_SEND breaks the protocol: reset.
  h.g.send(OP.RW, 300, 9, bytes("late"));
  await settle();
  assert(h.g.receive().some((p) => p.hdr.op === OP.RST));
  assertEquals(h.backend.connections, 0);
  assertEquals(text(hc.written), "question");
});

Deno.test("vsock: a guest SHUTDOWN_RCV stops host data; adding SEND later closes", async () => {
  const h = live();
  h.host.listening.add(10);
  h.g.send(OP.REQUEST, 301, 10);
  await settle();
  h.g.receive();
  h.g.send(OP.SHUTDOWN, 301, 10, new Uint8Array(0), SHUTDOWN_RCV);
  await settle();
  h.host.conns[0]!.push(bytes("unwanted"));
  await settle();
  assertEquals(h.g.receive().filter((p) => p.hdr.op === OP.RW), [], "nothing sent to it");
  h.g.send(OP.SHUTDOWN, 301, 10, new Uint8Array(0), SHUTDOWN_SEND);
  await settle();
  assert(h.g.receive().some((p) => p.hdr.op === OP.RST));
  assertEquals(h.backend.connections, 0);
  assert(h.host.conns[0]!.closed);
});

Deno.test("vsock: stopped, it takes no packets; after restore it sends TRANSPORT_RESET", async () => {
  const h = live();
  h.host.listening.add(9);
  await h.transport.stop();
  h.g.send(OP.REQUEST, 300, 9);
  await settle();
  assertEquals(h.host.conns.length, 0, "no packet read while stopped");
  const s = JSON.parse(JSON.stringify(h.transport.save()));
  const host2 = new MemHost();
  const h2 = harness(new VsockDevice({ cid: 3, host: host2 }), { mem: h.mem });
  h2.transport.restore(s);
  h2.transport.resume();
  await settle();
  assertEquals(h.g.eventsReceived(), 1, "TRANSPORT_RESET on the event queue");
  const bad = { ...s, device: { ...s.device, backend: { cid: "4" } } };
  let err = "";
  try {
    harness(new VsockDevice({ cid: 3, host: host2 }), { mem: h.mem }).transport.restore(bad);
  } catch (e) {
    err = (e as Error).message;
  }
  assert(err.includes("CID"));
});

Deno.test("vsock: a guest cannot hold more than VSOCK_MAX_CONNECTIONS connections", async () => {
  const h = live();
  h.host.listening.add(77);
  const { VSOCK_MAX_CONNECTIONS } = await import("./vsock.ts");
  for (let p = 0; p < VSOCK_MAX_CONNECTIONS + 3; p++) {
    h.g.send(OP.REQUEST, 10_000 + p, 77);
    if (p % 16 === 0) {
      await settle();
      h.g.receive();
    }
  }
  await settle();
  h.g.receive();
  assertEquals(h.backend.connections, VSOCK_MAX_CONNECTIONS);
});

Deno.test("vsock: host events after the guest corrupts its receive ring mark the device broken, never escape", async () => {
  // Issue 12.2: a host connect, host data or a credit update walked the corrupted ring from
  // an async callback; the QueueError escaped there and ended the process.
  const h = live();
  const rejections: unknown[] = [];
  const onRejection = (e: PromiseRejectionEvent) => {
    rejections.push(e.reason);
    e.preventDefault();
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  try {
    h.mem.writeU16(h.rx.avail + 2, 0x8000);
    const opened = h.backend.connectToGuest(52, new MemConn());
    await settle();
    assertEquals(h.driver.status & 0x40, 0x40, "DEVICE_NEEDS_RESET");
    assert(h.log.some((l) => /needs reset.*vsock receive queue/i.test(l)), h.log.join("\n"));
    h.driver.writeReg(0x070, 0); // the driver resets the broken device
    assertEquals(await opened, null, "the pending connect ends with the reset");
    await settle();
    assertEquals(rejections, []);
  } finally {
    globalThis.removeEventListener("unhandledrejection", onRejection);
  }
});

Deno.test("vsock: control packets of open connections survive a full receive ring", async () => {
  // Issue 12.7: control packets went to one queue capped at 1024 and were dropped silently
  // when the guest's receive ring was full (3912 of 5000 in one run).
  const h = live();
  h.host.listening.add(80);
  const N = 300;
  for (let p = 0; p < N; p++) h.g.send(OP.REQUEST, 20_000 + p, 80);
  await settle();
  for (let i = 0; i < 5000; i++) h.g.send(OP.CREDIT_REQUEST, 20_000 + (i % N), 80);
  await settle();
  const got: { op: number; port: number }[] = [];
  for (let round = 0; round < 200; round++) {
    const pkts = h.g.receive();
    got.push(...pkts.map((p) => ({ op: p.hdr.op, port: p.hdr.dstPort })));
    await settle();
    if (pkts.length === 0 && round > 2) break;
  }
  const ports = (op: number) => new Set(got.filter((p) => p.op === op).map((p) => p.port));
  assertEquals(ports(OP.RESPONSE).size, N, "every connection got its RESPONSE");
  assertEquals(ports(OP.CREDIT_UPDATE).size, N, "every connection got a CREDIT_UPDATE");
  assertEquals(got.filter((p) => p.op === OP.RST).length, 0);
  assert(got.length < 4 * N, `coalesced, not one per request (${got.length})`);
  assertEquals(h.backend.connections, N);
  assertEquals(h.vlog, []);
});

Deno.test("vsock: resets for unknown ports are bounded, and a drop is said", () => {
  const h = live();
  // The guest posts nothing more: its 32 buffers fill and the rest wait.
  for (let p = 0; p < VSOCK_MAX_PENDING_RESETS + 100; p++) h.g.send(OP.RW, 30_000 + p, 9);
  assertEquals(h.backend.droppedResets, 100 - 32);
  assert(h.vlog.some((l) => /resets wait for receive buffers.*dropped/.test(l)), h.vlog.join());
});

Deno.test("vsock: an oversized or short data packet resets its connection, nothing is cut", async () => {
  // Issue 12.7: a 100 KiB packet was cut to 64 KiB without notice.
  const h = live();
  h.host.listening.add(81);
  h.g.send(OP.REQUEST, 6000, 81);
  await settle();
  assertEquals(h.g.receive().map((p) => p.hdr.op), [OP.RESPONSE]);
  h.g.send(OP.RW, 6000, 81, new Uint8Array(100 * 1024).fill(7));
  await settle();
  assertEquals(h.host.conns[0]!.written.length, 0, "no truncated data reached the host");
  assertEquals(h.g.receive().map((p) => p.hdr.op), [OP.RST]);
  assertEquals(h.backend.connections, 0);
  assert(h.vlog.some((l) => l.includes(`the most is ${VSOCK_MAX_PAYLOAD}`)), h.vlog.join());
  // A header that claims more than the chain carries.
  h.g.send(OP.REQUEST, 6001, 81);
  await settle();
  h.g.receive();
  const pkt = new Uint8Array(44 + 10);
  const { encodeHeader, HOST_CID } = await import("./vsock.ts");
  pkt.set(encodeHeader({
    srcCid: 3n,
    dstCid: BigInt(HOST_CID),
    srcPort: 6001,
    dstPort: 81,
    len: 1000,
    type: 1,
    op: OP.RW,
    flags: 0,
    bufAlloc: 65536,
    fwdCnt: 0,
  }));
  h.g.tx.add([h.driver.outBuffer(pkt)]);
  h.driver.kick(h.g.tx);
  await settle();
  assertEquals(h.host.conns[1]!.written.length, 0);
  assertEquals(h.g.receive().map((p) => p.hdr.op), [OP.RST]);
  assert(h.vlog.some((l) => l.includes("its buffers hold 10")), h.vlog.join());
});

Deno.test("vsock: host connects count against the cap and time out when the guest is silent", async () => {
  const h = live();
  // A guest that never answers: the host connect ends (null) and the guest gets a RST.
  const silent = await h.backend.connectToGuest(52, new MemConn(), 30);
  assertEquals(silent, null);
  assertEquals(h.backend.connections, 0);
  assertEquals(h.g.receive().map((p) => p.hdr.op), [OP.REQUEST, OP.RST]);
  // Connects in flight are connections: past the cap the next is refused at once.
  const pending: Promise<number | null>[] = [];
  for (let i = 0; i < VSOCK_MAX_CONNECTIONS; i++) {
    pending.push(h.backend.connectToGuest(1000 + i, new MemConn(), 60_000));
  }
  assertEquals(h.backend.connections, VSOCK_MAX_CONNECTIONS);
  assertEquals(await h.backend.connectToGuest(99, new MemConn()), null);
  assert(h.vlog.some((l) => /connections open; host connect refused/.test(l)), h.vlog.join());
  h.driver.writeReg(0x070, 0); // reset: every pending connect ends, no timer is left
  assertEquals((await Promise.all(pending)).every((p) => p === null), true);
});
