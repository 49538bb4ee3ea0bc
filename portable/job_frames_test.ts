import { assert, assertEquals, assertNotEquals, assertRejects, assertThrows } from "@std/assert";
import {
  codeFingerprint,
  F,
  frame,
  FrameError,
  FrameReader,
  MAX_FRAME,
  parseJob,
} from "./job_frames.ts";

/** A reader over `bytes` that hands out at most `step` bytes a call. */
function chunked(bytes: Uint8Array, step: number) {
  let off = 0;
  return (b: Uint8Array) => {
    if (off >= bytes.byteLength) return Promise.resolve(null);
    const n = Math.min(step, b.byteLength, bytes.byteLength - off);
    b.set(bytes.subarray(off, off + n));
    off += n;
    return Promise.resolve(n);
  };
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) out.set(p, o), o += p.byteLength;
  return out;
}

Deno.test("frames: what is written comes back frame by frame, however the stream is cut", async () => {
  const big = new Uint8Array(200_000).map((_, i) => i & 0xff);
  const wire = concat([frame(F.stdout, "hello"), frame(F.stdinEnd), frame(F.stderr, big)]);
  for (const step of [1, 3, 4096, 1 << 20]) {
    const r = new FrameReader(chunked(wire, step));
    const a = await r.next();
    assertEquals(a?.type, F.stdout);
    assertEquals(new TextDecoder().decode(a!.payload), "hello");
    const b = await r.next();
    assertEquals([b?.type, b?.payload.byteLength], [F.stdinEnd, 0]);
    const c = await r.next();
    assertEquals(c?.type, F.stderr);
    assertEquals(c?.payload, big);
    assertEquals(await r.next(), undefined, "a clean end");
  }
});

Deno.test("frames: a stream cut inside a frame, or a frame over the limit, is an error", async () => {
  const whole = frame(F.stdout, "0123456789");
  await assertRejects(() => new FrameReader(chunked(whole.slice(0, 3), 2)).next(), FrameError);
  await assertRejects(() => new FrameReader(chunked(whole.slice(0, 9), 2)).next(), FrameError);
  const huge = new Uint8Array(5);
  huge[0] = F.job;
  new DataView(huge.buffer).setUint32(1, MAX_FRAME + 1, true);
  await assertRejects(() => new FrameReader(chunked(huge, 5)).next(), FrameError, "at most");
  // A read that fails counts as the end of the stream.
  assertEquals(await new FrameReader(() => Promise.reject(new Error("reset"))).next(), undefined);
});

Deno.test("jobs: a well-formed job parses; anything else is refused with a reason", () => {
  const good = {
    token: "t",
    fingerprint: "f",
    args: ["--image", "/x"],
    cwd: "/home/u",
    env: { TERM: "xterm" },
    writable: ["/home/u/snap"],
  };
  const enc = (o: unknown) => new TextEncoder().encode(JSON.stringify(o));
  assertEquals(parseJob(enc(good)), good);
  assertThrows(() => parseJob(new TextEncoder().encode("{")), Error, "not JSON");
  for (
    const bad of [
      null,
      [],
      { ...good, token: 1 },
      { ...good, args: "--image" },
      { ...good, args: [1] },
      { ...good, cwd: "relative" },
      { ...good, writable: ["relative"] },
      { ...good, writable: ["/a/../etc"] },
      { ...good, env: { A: 1 } },
      { ...good, env: null },
      { ...good, fingerprint: undefined },
    ]
  ) {
    assertThrows(() => parseJob(enc(bad)), Error, "", JSON.stringify(bad));
  }
});

Deno.test("code fingerprint: changes with a code file's time or size, not with tests or dot dirs", async () => {
  const root = await Deno.makeTempDir();
  try {
    await Deno.mkdir(`${root}/vmm`);
    await Deno.mkdir(`${root}/tests`);
    await Deno.mkdir(`${root}/.git`);
    await Deno.writeTextFile(`${root}/vmm/a.ts`, "export {};\n");
    await Deno.writeTextFile(`${root}/deno.json`, "{}\n");
    const first = await codeFingerprint(root);
    assertEquals(await codeFingerprint(root), first, "stable");
    await Deno.writeTextFile(`${root}/tests/x_test.ts`, "");
    await Deno.writeTextFile(`${root}/.git/HEAD`, "ref");
    await Deno.writeTextFile(`${root}/vmm/notes.txt`, "not code");
    assertEquals(await codeFingerprint(root), first, "tests, dot dirs, other files");
    await Deno.utime(`${root}/vmm/a.ts`, new Date(), new Date(Date.now() + 10_000));
    const touched = await codeFingerprint(root);
    assertNotEquals(touched, first, "a newer time");
    await Deno.writeTextFile(`${root}/vmm/b.ts`, "");
    assertNotEquals(await codeFingerprint(root), touched, "a new file");
    assert(/^[0-9a-f]{32}$/.test(first));
  } finally {
    await Deno.remove(root, { recursive: true });
  }
});
