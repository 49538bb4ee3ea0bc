import { fromJson, toJson } from "../snapshot/format.ts";
import type { MmioState } from "../transports/mmio.ts";
import { assert, assertEquals, assertFalse, assertThrows } from "@std/assert";
import { harness } from "../testing/setup.ts";
import { bit, F } from "../virtio/constants.ts";
import { NET_F, NET_HDR, type NetBackend, NetDevice, parseMac } from "./net.ts";

class FakeBackend implements NetBackend {
  inbox: Uint8Array[] = [];
  sent: Uint8Array[] = [];
  offload = -1;
  full = false;
  read(buf: Uint8Array): number {
    const f = this.inbox.shift();
    if (!f) return 0;
    buf.set(f);
    return f.byteLength;
  }
  write(frame: Uint8Array): boolean {
    if (this.full) return false;
    this.sent.push(frame.slice());
    return true;
  }
  setOffload(flags: number): void {
    this.offload = flags;
  }
}

function frame(payload: string): Uint8Array {
  const p = new TextEncoder().encode(payload);
  const f = new Uint8Array(NET_HDR + 14 + p.byteLength);
  f.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 2, 0, 0, 0, 0, 1, 0x88, 0xb5], NET_HDR);
  f.set(p, NET_HDR + 14);
  return f;
}

function live(opts: { wanted?: bigint } = {}) {
  const be = new FakeBackend();
  const h = harness(new NetDevice(be, { mac: "52:54:00:12:34:56" }));
  const r = h.driver.init(opts.wanted === undefined ? {} : { wanted: opts.wanted });
  assert(r.ok, r.error);
  const rx = h.driver.setupQueue(0), tx = h.driver.setupQueue(1);
  h.driver.driverOk();
  return { ...h, be, rx, tx };
}

Deno.test("virtio-net config: MAC, link up, one queue pair", () => {
  const h = live();
  const cfg = h.driver.readConfig(0, 10);
  assertEquals([...cfg.subarray(0, 6)], [0x52, 0x54, 0, 0x12, 0x34, 0x56]);
  assertEquals(new DataView(cfg.buffer).getUint16(6, true), 1);
  assertEquals(new DataView(cfg.buffer).getUint16(8, true), 1);
  assertThrows(() => parseMac("52:54:00:12:34"), TypeError, "six hex bytes");
});

Deno.test("virtio-net offloads follow what was negotiated, and dependencies are enforced", () => {
  const all = live();
  assertEquals(all.be.offload, 1 | 2 | 4 | 8, "csum, tso4, tso6, ecn");
  const plain = live({ wanted: bit(F.VERSION_1) | bit(NET_F.MAC) });
  assertEquals(plain.be.offload, 0);
  const h = harness(new NetDevice(new FakeBackend(), { mac: "02:00:00:00:00:01" }));
  const r = h.driver.init({ force: bit(F.VERSION_1) | bit(NET_F.GUEST_TSO4) });
  assertFalse(r.ok, "GUEST_TSO4 without GUEST_CSUM is refused at FEATURES_OK");
  assertFalse(h.driver.init({ force: bit(F.VERSION_1) | bit(NET_F.HOST_TSO6) }).ok);
});

Deno.test("virtio-net receive: frames wait for posted buffers, num_buffers = 1", () => {
  const h = live();
  h.be.inbox.push(frame("one"), frame("two"));
  h.backend.backendReadable();
  assertEquals(h.backend.stats.rxFrames, 0, "no buffers posted yet");
  assertEquals(h.be.inbox.length, 1, "one frame staged, the other still in the backend");
  const b = h.driver.inBuffer(2048);
  const id = h.rx.add([b]);
  h.driver.kick(h.rx);
  const u = h.rx.getUsed()!;
  assertEquals(u.id, id);
  assertEquals(u.len, frame("one").byteLength);
  assertEquals(h.mem.readU16(b.addr + 10), 1, "num_buffers");
  assertEquals(new TextDecoder().decode(h.mem.read(b.addr + NET_HDR + 14, 3)), "one");
  h.rx.add([h.driver.inBuffer(2048)]);
  h.rx.add([h.driver.inBuffer(2048)]);
  h.driver.kick(h.rx);
  assertEquals(h.rx.drainUsed().length, 1, "'two' arrives; the third buffer waits");
  h.be.inbox.push(frame("three"));
  h.backend.backendReadable();
  assertEquals(h.rx.getUsed()?.len, frame("three").byteLength);
  assertEquals(h.backend.stats.rxFrames, 3);
});

Deno.test("virtio-net receive: a buffer too small for the frame drops it, visibly", () => {
  const h = live();
  h.be.inbox.push(frame("x".repeat(200)));
  h.rx.add([h.driver.inBuffer(64)]);
  h.driver.kick(h.rx);
  assertEquals(h.rx.getUsed()?.len, 0);
  assertEquals(h.backend.stats.rxDropped, 1);
});

Deno.test("virtio-net transmit: header and frame across buffers reach the backend", () => {
  const h = live();
  const f = frame("hello");
  const id = h.tx.add([
    h.driver.outBuffer(f.subarray(0, NET_HDR)),
    h.driver.outBuffer(f.subarray(NET_HDR)),
  ]);
  h.driver.kick(h.tx);
  assertEquals(h.tx.getUsed(), { id, len: 0 });
  assertEquals(h.be.sent, [f]);
  h.tx.add([h.driver.outBuffer(new Uint8Array(4))]);
  h.driver.kick(h.tx);
  assertEquals(h.backend.stats.txDropped, 1, "shorter than the header");
  h.be.full = true;
  h.tx.add([h.driver.outBuffer(f)]);
  h.driver.kick(h.tx);
  assertEquals(h.backend.stats.txDropped, 2, "backend full");
  assertEquals(h.tx.drainUsed().length, 2, "every chain is returned");
});

Deno.test("virtio-net stop/resume and save/restore keep a staged frame", async () => {
  const h = live();
  h.be.inbox.push(frame("held"));
  h.backend.backendReadable(); // staged: no buffer
  await h.transport.stop();
  h.rx.add([h.driver.inBuffer(2048)]);
  h.driver.kick(h.rx);
  assertEquals(h.rx.getUsed(), null, "nothing delivered while stopped");
  const s = fromJson(toJson(h.transport.save())) as MmioState; // as a snapshot stores it
  const h2 = harness(new NetDevice(new FakeBackend(), { mac: "52:54:00:12:34:56" }), {
    mem: h.mem,
  });
  h2.transport.restore(s);
  assertEquals(h2.transport.save(), s);
  h2.transport.resume();
  assertEquals(h.rx.getUsed()?.len, frame("held").byteLength, "the restored device delivers it");
  assertThrows(
    () =>
      harness(new NetDevice(new FakeBackend(), { mac: "02:00:00:00:00:09" }), { mem: h.mem })
        .transport
        .restore(s),
    RangeError,
    "MAC",
  );
});

Deno.test("virtio-net: backend readiness after the guest corrupts its receive ring marks the device broken, never throws", () => {
  // Issue 12.3: Queue.pop's QueueError escaped from backendReadable() to the TAP poller.
  const h = live();
  h.mem.writeU16(h.rx.avail + 2, 0x8000);
  h.be.inbox.push(frame("after corruption"));
  h.backend.backendReadable();
  assertEquals(h.driver.status & 0x40, 0x40, "DEVICE_NEEDS_RESET");
  assert(h.log.some((l) => /needs reset.*net receive queue/i.test(l)), h.log.join("\n"));
});
