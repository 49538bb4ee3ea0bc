/** The state file format: encoding, every refusal, atomic writes. */

import { assert, assertEquals, assertRejects } from "@std/assert";
import {
  decodeState,
  encodeState,
  fromJson,
  SNAPSHOT_MAX_STATE,
  SNAPSHOT_VERSION,
  SnapshotError,
  toJson,
  writeAtomic,
} from "./format.ts";

Deno.test("format: byte arrays and 64-bit values survive the JSON payload exactly", async () => {
  const state = {
    big: (1n << 64n) - 1n,
    neg: -5n,
    bytes: new Uint8Array([0, 255, 128, 7]),
    big0: new Uint8Array(70_000).fill(0xa5), // more than one base64 chunk
    nested: [{ v: 1n, b: new Uint8Array(0) }],
    plain: { s: "x", n: 3.5, t: true, z: null },
  };
  assertEquals(fromJson(toJson(state)), state);
  const bytes = await encodeState(state);
  assertEquals(new TextDecoder().decode(bytes.subarray(0, 8)), "DNVMSNAP");
  assertEquals(new DataView(bytes.buffer).getUint32(8, true), SNAPSHOT_VERSION);
  assertEquals(await decodeState(bytes), state);
});

Deno.test("format: a tag that is not exactly a tag stays plain data", () => {
  // Only a one-key object is a tag; an over-long number is not a bigint.
  const x = fromJson('{"a":{"$big":"12","x":1},"b":{"$big":"1' + "0".repeat(60) + '"}}');
  assertEquals(x, { a: { $big: "12", x: 1 }, b: { $big: "1" + "0".repeat(60) } });
});

Deno.test('format: a "__proto__" key stays plain data; tags under it are still read', () => {
  const x = fromJson('{"__proto__":{"$big":"7"},"a":{"__proto__":{"b":{"$b64":"AQI="}}}}') as {
    a: Record<string, unknown>;
  };
  assertEquals(Object.getPrototypeOf(x), Object.prototype);
  assertEquals(Object.getOwnPropertyDescriptor(x, "__proto__")?.value, 7n);
  assertEquals(Object.getPrototypeOf(x.a), Object.prototype);
  const inner = Object.getOwnPropertyDescriptor(x.a, "__proto__")?.value as { b: unknown };
  assertEquals(inner.b, new Uint8Array([1, 2]));
});

Deno.test("format: a payload nested too deep or with bad base64 is refused, not thrown", async () => {
  const payload = async (text: string) => {
    const p = new TextEncoder().encode(text);
    const out = new Uint8Array(48 + p.length);
    out.set(new TextEncoder().encode("DNVMSNAP"));
    new DataView(out.buffer).setUint32(8, SNAPSHOT_VERSION, true);
    new DataView(out.buffer).setUint32(12, p.length, true);
    out.set(new Uint8Array(await crypto.subtle.digest("SHA-256", p)), 16);
    out.set(p, 48);
    return out;
  };
  const deep = "[".repeat(200_000) + "]".repeat(200_000);
  await assertRejects(async () => decodeState(await payload(deep)), SnapshotError, "bad payload");
  await assertRejects(
    async () => decodeState(await payload('{"x":{"$b64":"not base64!"}}')),
    SnapshotError,
    "bad payload",
  );
});

Deno.test("format: truncated, wrong magic, wrong version, over the cap, corrupt: refused", async () => {
  const good = await encodeState({ kind: "x", n: 1n });
  const variant = (f: (b: Uint8Array) => Uint8Array) => f(good.slice());
  const cases: [Uint8Array, string][] = [
    [good.subarray(0, 20), "truncated"],
    [good.subarray(0, good.length - 1), "its header says"],
    [variant((b) => (b[0] = 0x58, b)), "wrong magic"],
    [variant((b) => (new DataView(b.buffer).setUint32(8, 7, true), b)), "format version 7"],
    [
      variant((b) => (new DataView(b.buffer).setUint32(12, SNAPSHOT_MAX_STATE + 1, true), b)),
      "over the cap",
    ],
    [variant((b) => (b[b.length - 2]! ^= 1, b)), "checksum mismatch"],
  ];
  for (const [bytes, want] of cases) {
    await assertRejects(() => decodeState(bytes), SnapshotError, want);
  }
  // Version 2 files (before the machine section named interrupt lines) still read.
  const v2 = variant((b) => (new DataView(b.buffer).setUint32(8, 2, true), b));
  assertEquals(await decodeState(v2), { kind: "x", n: 1n });
  // A payload that passes the checksum but is not JSON.
  const junk = new TextEncoder().encode("{not json");
  const hdr = new Uint8Array(48 + junk.length);
  hdr.set(new TextEncoder().encode("DNVMSNAP"));
  const v = new DataView(hdr.buffer);
  v.setUint32(8, SNAPSHOT_VERSION, true);
  v.setUint32(12, junk.length, true);
  hdr.set(new Uint8Array(await crypto.subtle.digest("SHA-256", junk)), 16);
  hdr.set(junk, 48);
  await assertRejects(() => decodeState(hdr), SnapshotError, "bad payload");
});

Deno.test("format: writeAtomic replaces the file whole and leaves no temporary behind", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const path = `${dir}/state.bin`;
    await Deno.writeTextFile(path, "old");
    const linked = `${dir}/other`;
    await Deno.link(path, linked);
    await writeAtomic(path, new TextEncoder().encode("new contents"));
    assertEquals(await Deno.readTextFile(path), "new contents");
    assertEquals(await Deno.readTextFile(linked), "old", "a new file, not the old one rewritten");
    assertEquals([...Deno.readDirSync(dir)].map((e) => e.name).sort(), ["other", "state.bin"]);
    assertEquals((await Deno.stat(path)).mode! & 0o777, 0o600);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("format: encodeState refuses a state over the cap", async () => {
  const huge = { b: "x".repeat(SNAPSHOT_MAX_STATE) };
  const e = await assertRejects(() => encodeState(huge), SnapshotError);
  assert(e.message.includes("over the cap"));
});
