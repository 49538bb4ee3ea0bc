/**
 * The portable machine's socket bridge, both sides on this host (no QEMU): the inner
 * side's TCP port stands in for QEMU's forward, 127.0.0.1 for QEMU's 10.0.2.2.
 */

import { assertEquals } from "@std/assert";
import { BRIDGE_ENV, HostBridge, InnerBridge } from "./bridge.ts";
import { sleep } from "@denovm/sys/timer";

const enc = (s: string) => new TextEncoder().encode(s);
const dec = (b: Uint8Array) => new TextDecoder().decode(b);

async function readAll(c: Deno.Conn): Promise<string> {
  const parts: string[] = [];
  const buf = new Uint8Array(1024);
  for (;;) {
    const n = await c.read(buf).catch(() => null);
    if (n === null) return parts.join("");
    parts.push(dec(buf.subarray(0, n)));
  }
}

/** A Unix echo service: answers "<prefix><what it read>" and closes. */
function service(path: string, prefix: string): Deno.UnixListener {
  const l = Deno.listen({ transport: "unix", path });
  (async () => {
    for await (const c of l) {
      (async () => {
        const got = await readAll(c);
        await c.write(enc(prefix + got)).catch(() => {});
        c.close();
      })();
    }
  })().catch(() => {});
  return l;
}

async function ask(path: string, what: string): Promise<string> {
  const c = await Deno.connect({ transport: "unix", path });
  await c.write(enc(what));
  await c.closeWrite();
  const r = await readAll(c);
  c.close();
  return r;
}

Deno.test({
  name: "bridge: API and vsock connections cross both ways; a late inner side is waited for",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "denovm-bridge-" });
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const innerPort = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const host = await HostBridge.start({
      api: `${dir}/api.sock`,
      vsock: `${dir}/v.sock`,
      inTarget: { hostname: "127.0.0.1", port: innerPort },
    });
    const inner = new InnerBridge(host.env[BRIDGE_ENV]!, { hostAlias: "127.0.0.1" });
    const listeners: Deno.Listener[] = [];
    try {
      assertEquals((await Deno.stat(`${dir}/api.sock`)).mode! & 0o777, 0o600);
      // A client that comes before the inner side is up: it waits, then gets through.
      const early = ask(`${dir}/api.sock`, "GET /");
      await sleep(400);
      inner.listen({ api: `${dir}/inner-api.sock`, vsock: `${dir}/inner-v.sock` }, innerPort);
      listeners.push(service(`${dir}/inner-api.sock`, "api:"));
      listeners.push(service(`${dir}/inner-v.sock`, "vsock:"));
      assertEquals(await early, "api:GET /");
      assertEquals(await ask(`${dir}/v.sock`, "CONNECT 52\n"), "vsock:CONNECT 52\n");
      // Out: the guest connects to host port 52; nobody listens on 53.
      listeners.push(service(`${dir}/v.sock_52`, "host52:"));
      const c = await inner.connectHostPort(52);
      if (!c) throw new Error("not connected");
      await c.write(enc("hello"));
      await (c as Deno.TcpConn).closeWrite();
      assertEquals(await readAll(c), "host52:hello");
      c.close();
      assertEquals(await inner.connectHostPort(53), null);
    } finally {
      for (const l of listeners) l.close();
      inner.close();
      host.close();
    }
    assertEquals([...Deno.readDirSync(dir)].some((e) => e.name === "api.sock"), false);
    await Deno.remove(dir, { recursive: true });
  },
});

Deno.test({
  name: "bridge: a TCP connection without the token is closed on both sides",
  sanitizeOps: false,
  sanitizeResources: false,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "denovm-bridge-" });
    const host = await HostBridge.start({ vsock: `${dir}/v.sock` });
    const inner = new InnerBridge(host.env[BRIDGE_ENV]!, { hostAlias: "127.0.0.1" });
    const innerPort = inner.listen({ vsock: `${dir}/inner-v.sock` }, 0);
    const svc = service(`${dir}/v.sock_1`, "secret:");
    try {
      for (const port of [host.outPort, innerPort]) {
        const t = await Deno.connect({ hostname: "127.0.0.1", port });
        await t.write(enc(`${"0".repeat(48)} PORT 1\n`));
        await t.write(enc(`${"0".repeat(48)} vsock\n`)).catch(() => {});
        assertEquals(await readAll(t), "", `port ${port}: nothing for a wrong token`);
        t.close();
      }
    } finally {
      svc.close();
      inner.close();
      host.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
