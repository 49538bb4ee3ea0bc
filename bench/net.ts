/**
 * `deno task bench:net`: virtio-net packets per second through a TAP in a network
 * namespace made for the run (needs root, iproute2, python3).
 * - `net_rx_pps`: frames a host-side raw socket sends, as the device delivers them into
 *   posted guest buffers;
 * - `net_tx_pps`: frames the guest side transmits, as the device writes them to the TAP.
 */

import { NET_HDR, NetDevice } from "../devices/net.ts";
import { TEST_ETHERTYPE, TestNetns } from "../testing/netns.ts";
import { harness } from "../testing/setup.ts";
import { Ticker } from "../vstate/ticker.ts";
import { benchWithoutKvm } from "../portable/bench.ts";

benchWithoutKvm();

const ticker = new Ticker();
const tick = () => ticker.tick();

const ns = await TestNetns.create("dvmbench0");
try {
  const h = harness(new NetDevice(ns.tap, { mac: "52:54:00:12:34:56" }), { memSize: 0x2000000 });
  if (!h.driver.init().ok) throw new Error("handshake failed");
  const rx = h.driver.setupQueue(0, 256), tx = h.driver.setupQueue(1, 256);
  h.driver.driverOk();
  const spare = Array.from({ length: 256 }, () => h.driver.inBuffer(2048));
  const byId = new Map<number, (typeof spare)[number]>();
  const post = () => {
    while (rx.freeCount > 0 && spare.length) {
      const b = spare.pop()!;
      byId.set(rx.add([b]), b);
    }
    h.driver.kick(rx);
  };
  // RX: the peer sends 30000 frames as fast as it can; the guest side reposts buffers.
  const N = 30_000;
  post();
  const peer = ns.peer(["x".repeat(50)], { expect: 0, listenMs: 0, count: N });
  let got = 0, first = 0, last = 0;
  const deadline = Date.now() + 20_000;
  while (got < N && Date.now() < deadline) {
    h.backend.backendReadable();
    const used = rx.drainUsed();
    let n = 0;
    for (const u of used) {
      const b = byId.get(u.id)!;
      spare.push(b);
      // Count only the peer's frames (the kernel sends a few of its own on link up).
      const et = (h.mem.readU8(b.addr + NET_HDR + 12) << 8) | h.mem.readU8(b.addr + NET_HDR + 13);
      if (u.len > NET_HDR + 14 && et === TEST_ETHERTYPE) n++;
    }
    if (used.length) post();
    if (n) {
      if (!first) first = performance.now();
      got += n;
      last = performance.now();
    } else await tick();
  }
  await peer;
  const rxPps = got > 1 ? (got - 1) / ((last - first) / 1000) : 0;
  // TX: the guest side transmits 50000 frames, 128 at a time.
  const frame = new Uint8Array(NET_HDR + 64);
  frame.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56], NET_HDR);
  frame[NET_HDR + 12] = TEST_ETHERTYPE >> 8;
  frame[NET_HDR + 13] = TEST_ETHERTYPE & 0xff;
  const seg = h.driver.outBuffer(frame);
  const M = 50_000;
  const t0 = performance.now();
  for (let sent = 0; sent < M;) {
    for (let i = 0; i < 128 && sent < M; i++, sent++) tx.add([seg]);
    h.driver.kick(tx);
    tx.drainUsed();
  }
  const txPps = M / ((performance.now() - t0) / 1000);
  console.log(`net_rx_pps ${Math.round(rxPps)}`);
  console.log(`net_tx_pps ${Math.round(txPps)}`);
  console.error(`(rx: ${got} of ${N} frames delivered, ${h.backend.stats.txDropped} tx drops)`);
} finally {
  ticker.close();
  await ns.close();
}
