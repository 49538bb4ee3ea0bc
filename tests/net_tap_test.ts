/**
 * virtio-net for real: a TAP device in a network namespace made by the test, frames sent
 * from the host side reach the guest-side harness, and frames the harness transmits reach
 * the host side. Needs root, /dev/net/tun, iproute2 and python3 (CI installs them); set
 * DENOVM_SKIP_NET=1 to skip on purpose.
 */

import { assertEquals } from "@std/assert";
import { NET_HDR, NetDevice } from "../devices/net.ts";
import { TEST_ETHERTYPE, TestNetns } from "../testing/netns.ts";
import { harness } from "../testing/setup.ts";
import { sleep } from "@denovm/sys/timer";

const ignore = Deno.env.get("DENOVM_SKIP_NET") === "1";

function testFrame(payload: string): Uint8Array {
  const p = new TextEncoder().encode(payload);
  const f = new Uint8Array(NET_HDR + 14 + p.byteLength);
  f.set([0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x52, 0x54, 0, 0x12, 0x34, 0x56], NET_HDR);
  f[NET_HDR + 12] = TEST_ETHERTYPE >> 8;
  f[NET_HDR + 13] = TEST_ETHERTYPE & 0xff;
  f.set(p, NET_HDR + 14);
  return f;
}

Deno.test({
  name: "virtio-net over a TAP in a namespace: host frames reach the guest side and back",
  ignore,
  sanitizeResources: false, // the helper process's pipes are Deno's, closed when it exits
  async fn() {
    const ns = await TestNetns.create();
    try {
      const h = harness(new NetDevice(ns.tap, { mac: "52:54:00:12:34:56" }), { memSize: 0x400000 });
      if (!h.driver.init().ok) throw new Error("handshake failed");
      const rx = h.driver.setupQueue(0, 64), tx = h.driver.setupQueue(1, 64);
      h.driver.driverOk();
      const bufs = new Map<number, number>();
      for (let i = 0; i < 32; i++) {
        const b = h.driver.inBuffer(2048);
        bufs.set(rx.add([b]), b.addr);
      }
      h.driver.kick(rx);
      const peer = ns.peer(["host-0", "host-1", "host-2"], { expect: 3, listenMs: 10_000 });
      // Guest side: collect the host's frames (readiness is polled here; the VMM uses epoll).
      const got: string[] = [];
      const t0 = Date.now();
      while (got.length < 3 && Date.now() - t0 < 10_000) {
        h.backend.backendReadable();
        for (const u of rx.drainUsed()) {
          const addr = bufs.get(u.id)!;
          const f = h.mem.read(addr, u.len);
          if (((f[NET_HDR + 12]! << 8) | f[NET_HDR + 13]!) === TEST_ETHERTYPE) {
            got.push(new TextDecoder().decode(f.subarray(NET_HDR + 14)));
          }
        }
        await sleep(5);
      }
      assertEquals(got, ["host-0", "host-1", "host-2"]);
      for (const p of ["guest-0", "guest-1", "guest-2"]) tx.add([h.driver.outBuffer(testFrame(p))]);
      h.driver.kick(tx);
      assertEquals(tx.drainUsed().length, 3);
      const r = await peer;
      assertEquals(r.got, ["guest-0", "guest-1", "guest-2"]);
      assertEquals(h.backend.stats.txFrames, 3);
    } finally {
      await ns.close();
    }
  },
});
