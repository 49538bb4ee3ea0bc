/** virtio-vsock with its real host side: Unix sockets in the Firecracker style. */

import { assert, assertEquals, assertRejects } from "@std/assert";
import { OP, VsockDevice } from "../devices/vsock.ts";
import { harness } from "../testing/setup.ts";
import { VsockGuest } from "../testing/vsock_guest.ts";
import { UnixVsockHost } from "../host/vsock_unix.ts";
import { sleep } from "@denovm/sys/timer";

const settle = (ms = 5) => sleep(ms);
const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function until<T>(f: () => T | undefined, what: string): Promise<T> {
  for (let i = 0; i < 400; i++) {
    const v = f();
    if (v !== undefined) return v;
    await settle();
  }
  throw new Error(`Timed out waiting for ${what}`);
}

/** A vsock device on `host`, with the driver side set up and a guest-side helper. */
function liveDevice(host: UnixVsockHost) {
  const h = harness(new VsockDevice({ cid: 3, host }), { memSize: 0x400000 });
  assert(h.driver.init().ok);
  const g = new VsockGuest(
    h.driver,
    h.driver.setupQueue(0, 32),
    h.driver.setupQueue(1, 32),
    h.driver.setupQueue(2, 4),
  );
  h.driver.driverOk();
  return { h, g };
}

Deno.test({
  name: "vsock over Unix sockets: guest → <path>_P, and host CONNECT P → guest listener",
  sanitizeResources: false, // Deno closes accepted Unix streams asynchronously
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/v.sock`;
    const host = new UnixVsockHost(path);
    const { h, g } = liveDevice(host);
    await host.listen(h.backend);
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600, "owner-only socket");
    const svc = Deno.listen({ transport: "unix", path: `${path}_1234` });
    try {
      // Guest → host service on port 1234.
      g.send(OP.REQUEST, 5000, 1234);
      const accepted = await svc.accept();
      await until(() => g.receive().find((p) => p.hdr.op === OP.RESPONSE), "RESPONSE");
      g.send(OP.RW, 5000, 1234, enc("ping"));
      const buf = new Uint8Array(16);
      const n = (await accepted.read(buf))!;
      assertEquals(dec(buf.subarray(0, n)), "ping");
      await accepted.write(enc("pong"));
      const pong = await until(() => g.receive().find((p) => p.hdr.op === OP.RW), "pong");
      assertEquals(dec(pong.payload), "pong");
      accepted.close();

      // Host program → guest listener on port 52.
      const client = await Deno.connect({ transport: "unix", path });
      await client.write(enc("CONNECT 52\nhi guest"));
      const req = await until(() => g.receive().find((p) => p.hdr.op === OP.REQUEST), "REQUEST");
      assertEquals(req.hdr.dstPort, 52);
      g.send(OP.RESPONSE, 52, req.hdr.srcPort);
      const line = new Uint8Array(64);
      const m = (await client.read(line))!;
      assertEquals(dec(line.subarray(0, m)), `OK ${req.hdr.srcPort}\n`);
      const data = await until(
        () => g.receive().find((p) => p.hdr.op === OP.RW),
        "data after CONNECT",
      );
      assertEquals(dec(data.payload), "hi guest", "bytes after the CONNECT line are data");
      g.send(OP.RW, 52, req.hdr.srcPort, enc("hi host"));
      const k = (await client.read(line))!;
      assertEquals(dec(line.subarray(0, k)), "hi host");
      client.close();

      // A malformed CONNECT line is refused without reaching the guest.
      const bad = await Deno.connect({ transport: "unix", path });
      await bad.write(enc("HELLO\n"));
      assertEquals(await bad.read(line), null);
      bad.close();
    } finally {
      svc.close();
      host.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "vsock host side: closed connections are forgotten; only a stale socket is replaced",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/v.sock`;
    try {
      // Issue 12.10: whatever was at the path was deleted. A regular file is refused and kept.
      await Deno.writeTextFile(path, "precious");
      const refused = new UnixVsockHost(path);
      const h0 = harness(new VsockDevice({ cid: 3, host: refused }), { memSize: 0x400000 });
      await assertRejects(
        () => refused.listen(h0.backend),
        Error,
        "not a socket is there (not removed)",
      );
      refused.close();
      assertEquals(await Deno.readTextFile(path), "precious", "the file is still there");
      await Deno.remove(path);
      // A live socket is refused; a stale one (nobody listening) is replaced.
      const live = Deno.listen({ transport: "unix", path });
      await assertRejects(() => refused.listen(h0.backend), Error, "another process listens");
      live.close();
      await settle(20);

      // Issue 12.6: every guest connection left an entry behind in the host side's set.
      const host = new UnixVsockHost(path);
      const { h, g } = liveDevice(host);
      await host.listen(h.backend);
      const svc = Deno.listen({ transport: "unix", path: `${path}_1234` });
      try {
        for (let i = 0; i < 5; i++) {
          g.send(OP.REQUEST, 5000 + i, 1234);
          const accepted = await svc.accept();
          await until(() => g.receive().find((p) => p.hdr.op === OP.RESPONSE), "RESPONSE");
          g.send(OP.RST, 5000 + i, 1234);
          await until(() => host.openConnections === 0 ? true : undefined, "connection forgotten");
          accepted.close();
        }
        assertEquals(host.openConnections, 0);
      } finally {
        svc.close();
        host.close();
      }
      assertEquals(await Deno.lstat(path).then(() => true, () => false), false, "ours: removed");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "vsock host side: connections are capped, a silent host program is cut off",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // Issue 12.7: host connects in flight were not counted against any cap, and a program
    // that never sent its CONNECT line held its connection for ever.
    const dir = await Deno.makeTempDir();
    const path = `${dir}/v.sock`;
    const host = new UnixVsockHost(path, { maxConnections: 3, connectLineTimeoutMs: 100 });
    const { h } = liveDevice(host);
    await host.listen(h.backend);
    const clients: Deno.UnixConn[] = [];
    try {
      for (let i = 0; i < 3; i++) clients.push(await Deno.connect({ transport: "unix", path }));
      await until(() => host.openConnections === 3 ? true : undefined, "three handshaking");
      // The fourth is closed at once: it reads end of stream.
      const extra = await Deno.connect({ transport: "unix", path });
      clients.push(extra);
      assertEquals(await extra.read(new Uint8Array(8)), null, "over the cap: closed");
      assertEquals(host.openConnections, 3);
      // The silent three are cut off once their line is late.
      await until(() => host.openConnections === 0 ? true : undefined, "silent ones closed");
      assertEquals(await clients[0]!.read(new Uint8Array(8)), null);
    } finally {
      for (const c of clients) {
        try {
          c.close();
        } catch { /* closed */ }
      }
      host.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
