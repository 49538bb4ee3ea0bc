/** The control API's socket handling, without a VM (no KVM needed). */

import { assert, assertEquals, assertRejects } from "@std/assert";
import { ApiServer } from "./api.ts";

const apiTemps = async () => {
  const out: string[] = [];
  for await (const e of Deno.readDir("/tmp")) {
    if (e.name.startsWith("denovm-api-")) out.push(e.name);
  }
  return out.sort();
};

Deno.test("api socket: a regular file at the path is refused and kept; nothing left in /tmp", async () => {
  // Issue 12.10: --api-sock pointing at a regular file deleted that file.
  const dir = await Deno.makeTempDir();
  const before = await apiTemps();
  try {
    const path = `${dir}/api.sock`;
    await Deno.writeTextFile(path, "precious");
    await assertRejects(() => ApiServer.listen(path), Error, "not a socket is there (not removed)");
    assertEquals(await Deno.readTextFile(path), "precious");
    await Deno.mkdir(`${dir}/d`);
    await assertRejects(() => ApiServer.listen(`${dir}/d`), Error, "not a socket");
    assertEquals((await Deno.stat(`${dir}/d`)).isDirectory, true);
    // A live socket is refused too; a stale one is replaced and served.
    const live = Deno.listen({ transport: "unix", path: `${dir}/live.sock` });
    await assertRejects(
      () => ApiServer.listen(`${dir}/live.sock`),
      Error,
      "another process listens",
    );
    live.close();
    const s = await ApiServer.listen(`${dir}/live.sock`);
    assertEquals((await Deno.lstat(`${dir}/live.sock`)).isSocket, true, "ours now");
    await s.close();
    assertEquals(await apiTemps(), before, "no private bind directory left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

/** Sends raw bytes to the socket and returns the start of the reply. */
async function rawRequest(path: string, head: string, body: Uint8Array): Promise<string> {
  const c = await Deno.connect({ transport: "unix", path });
  try {
    await c.write(new TextEncoder().encode(head));
    try {
      for (let o = 0; o < body.byteLength;) o += await c.write(body.subarray(o));
    } catch {
      // the server may answer and close before the whole body is sent
    }
    const buf = new Uint8Array(4096);
    const n = await c.read(buf);
    return new TextDecoder().decode(buf.subarray(0, n ?? 0));
  } finally {
    c.close();
  }
}

Deno.test("api body cap: a declared or streamed body over 1 MiB gets 400 without being read whole", async () => {
  // Issue 12.8: the cap was checked after the whole body was read, and counted characters.
  const dir = await Deno.makeTempDir();
  const path = `${dir}/api.sock`;
  const s = await ApiServer.listen(path);
  try {
    const declared = await rawRequest(
      path,
      "PUT /machine-config HTTP/1.1\r\nHost: x\r\nContent-Length: 268435456\r\n\r\n",
      new Uint8Array(0),
    );
    assert(declared.startsWith("HTTP/1.1 400"), declared);
    assert(declared.includes("request body over 1 MiB"), declared);
    // Chunked, 2 MiB of multi-byte characters: 1 MiB of bytes is reached at half the length.
    const chunk = new TextEncoder().encode("é".repeat(1 << 18)); // 512 KiB a chunk
    const parts: Uint8Array[] = [];
    for (let i = 0; i < 4; i++) {
      parts.push(new TextEncoder().encode(`${chunk.byteLength.toString(16)}\r\n`), chunk);
      parts.push(new TextEncoder().encode("\r\n"));
    }
    parts.push(new TextEncoder().encode("0\r\n\r\n"));
    const body = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
    let o = 0;
    for (const p of parts) body.set(p, (o += p.byteLength) - p.byteLength);
    const streamed = await rawRequest(
      path,
      "PUT /machine-config HTTP/1.1\r\nHost: x\r\nTransfer-Encoding: chunked\r\n\r\n",
      body,
    );
    // 2 MiB of bytes but exactly 1 Mi characters: counted in characters it passed the cap.
    assert(streamed.startsWith("HTTP/1.1 400"), streamed);
    assert(streamed.includes("request body over 1 MiB"), streamed);
  } finally {
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("api requests: a NIC PUT twice is replaced, not added; flags must be booleans", async () => {
  // Issue 12.12: each PUT /network-interfaces/eth0 added another NIC; smt and
  // track_dirty_pages took any type.
  const dir = await Deno.makeTempDir();
  const path = `${dir}/api.sock`;
  const s = await ApiServer.listen(path);
  const put = async (p: string, body: unknown) => {
    const json = JSON.stringify(body);
    return await rawRequest(
      path,
      `PUT ${p} HTTP/1.1\r\nHost: x\r\nContent-Length: ${json.length}\r\n\r\n${json}`,
      new Uint8Array(0),
    );
  };
  try {
    const ok = (r: string) => assert(r.startsWith("HTTP/1.1 204"), r);
    ok(await put("/network-interfaces/eth0", { iface_id: "eth0", host_dev_name: "tap0" }));
    ok(await put("/network-interfaces/eth0", { iface_id: "eth0", host_dev_name: "tap9" }));
    assertEquals(s.config.nets.map((n) => n.tap), ["tap9"], "replaced");
    ok(await put("/network-interfaces/eth1", { iface_id: "eth1", host_dev_name: "tap1" }));
    assertEquals(s.config.nets.map((n) => n.tap), ["tap9", "tap1"]);
    for (
      const [body, message] of [
        [{ smt: "yes" }, "'smt' must be true or false"],
        [{ smt: true }, "'smt' true is not supported"],
        [{ track_dirty_pages: 1 }, "'track_dirty_pages' must be true or false"],
        [{ acpi: "off" }, "'acpi' must be true or false"],
      ] as const
    ) {
      const r = await put("/machine-config", body);
      assert(r.startsWith("HTTP/1.1 400") && r.includes(message), r);
    }
    ok(await put("/machine-config", { smt: false, track_dirty_pages: true }));
    assertEquals(s.config.acpi, undefined, "ACPI left to its default (on for kernels)");
    ok(await put("/machine-config", { acpi: false }));
    assertEquals(s.config.acpi, false, "a kernel built without ACPI");
    // The management device: before boot its disks; virtual devices need a running VM.
    ok(await put("/admin-vq", { disks: [{ path_on_host: "/x.img", is_read_only: true }] }));
    assertEquals(s.config.admin, { disks: [{ path: "/x.img", readOnly: true }] });
    for (
      const [p, body, message] of [
        ["/admin-vq", { disks: "x" }, "'disks' must be an array"],
        ["/admin-vq", { disks: [{}] }, "path_on_host"],
        [
          "/admin-vq",
          { disks: [{ path_on_host: "/x", is_read_only: 1 }] },
          "must be true or false",
        ],
        ["/admin-vq", { nope: 1 }, "nope"],
        ["/admin-devices", { type: "rng" }, "the VM is not started"],
      ] as const
    ) {
      const r = await put(p, body);
      assert(r.startsWith("HTTP/1.1 400") && r.includes(message), r);
    }
  } finally {
    await s.close();
    await Deno.remove(dir, { recursive: true });
  }
});
