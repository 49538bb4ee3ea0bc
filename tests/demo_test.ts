// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/** The embedded demo guest and the CLI's demo path. */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { runDemo } from "../frontend/demo.ts";
import { DEMO_GUEST } from "../guest/demo_guest.ts";
import { buildGuest } from "../testing/guest_build.ts";

Deno.test("DEMO_GUEST equals a fresh build of tests/guests/demo.S", async () => {
  assertEquals(DEMO_GUEST, await buildGuest("demo"));
});

Deno.test({
  name: "runDemo() prints the greeting through the 8250 and exits 0",
  async fn() {
    const chunks: Uint8Array[] = [];
    // A generous limit: under `deno test` the vCPU worker's modules are type-checked when it
    // starts, which in the portable machine can take longer than the demo's own 10 s default.
    const code = await runDemo({ output: (b) => chunks.push(b.slice()), timeoutMs: 120_000 });
    assertEquals(code, 0);
    const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
    assertEquals(
      text,
      "Hello from a denovm guest: real mode, 8250 UART, KVM exits served by Deno.\r\n",
    );
  },
});

async function cli(...args: string[]) {
  return await cliWith({}, ...args);
}

async function cliWith(env: Record<string, string>, ...args: string[]) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("../cli.ts", import.meta.url).pathname, ...args],
    env,
    stdout: "piped",
    stderr: "piped",
  }).output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "cli.ts with no --kernel boots the demo guest, from its bundle and from the modules",
  async fn() {
    // DENOVM_BUNDLE=1: the bundle in dist/ or an error (it must match the sources);
    // 0: the modules themselves, as after an edit.
    for (const bundle of ["1", "0"]) {
      const r = await cliWith({ DENOVM_BUNDLE: bundle });
      assertEquals(r.code, 0, `DENOVM_BUNDLE=${bundle}: ${r.stderr}`);
      assertStringIncludes(r.stdout, "Hello from a denovm guest");
      assert(
        /^denovm: (KVM with hardware virtualization|this CPU has no vmx\/svm)/m.test(r.stderr),
      );
    }
  },
});

Deno.test("cli.ts rejects an unknown flag with exit code 2 and the usage", async () => {
  const r = await cli("--bogus");
  assertEquals(r.code, 2);
  assertStringIncludes(r.stderr, "Unknown option: --bogus");
  assertStringIncludes(r.stderr, "Usage:");
});

Deno.test("cli.ts --help prints the usage and exits 0", async () => {
  const r = await cli("--help");
  assertEquals(r.code, 0);
  assertStringIncludes(r.stdout, "Usage:");
});

Deno.test({
  name: "cli.ts --config boots with the file's devices; a bad file exits 2 naming the field",
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeFile(`${dir}/d.img`, new Uint8Array(1 << 20));
      await Deno.writeTextFile(
        `${dir}/vm.json`,
        JSON.stringify({
          memMiB: 64,
          rng: true,
          disks: [{ path: `${dir}/d.img` }],
          vsock: { cid: 3, path: `${dir}/v.sock` },
        }),
      );
      const ok = await cli("--config", `${dir}/vm.json`, "--quiet");
      assertEquals(ok.code, 0, ok.stderr);
      assertStringIncludes(ok.stdout, "Hello from a denovm guest");
      await Deno.writeTextFile(`${dir}/bad.json`, JSON.stringify({ disks: [{ path: 7 }] }));
      const bad = await cli("--config", `${dir}/bad.json`);
      assertEquals(bad.code, 2);
      assertStringIncludes(bad.stderr, "disks[0].path: expected a non-empty string");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
