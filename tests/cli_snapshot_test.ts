// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/**
 * The CLI's snapshot workflow on /dev/kvm: boot a test guest with --image, take a
 * snapshot when the console shows a pattern, then --restore it in a new process that
 * takes console input and runs to the guest's i8042 reset.
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { buildGuest } from "../testing/guest_build.ts";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

async function cli(args: string[], stdin?: string, quiet = true) {
  const p = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, ...(quiet ? ["--quiet"] : []), ...args],
    stdin: stdin === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  if (stdin !== undefined) {
    const w = p.stdin.getWriter();
    await w.write(new TextEncoder().encode(stdin));
    await w.close();
  }
  const out = await p.output();
  const dec = new TextDecoder();
  return { code: out.code, stdout: dec.decode(out.stdout), stderr: dec.decode(out.stderr) };
}

Deno.test({
  name: "cli: --snapshot-on pattern:… writes a snapshot; --restore continues it with input",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "denovm-cli-" });
    try {
      await Deno.writeFile(`${dir}/uart.bin`, await buildGuest("uart"));
      const a = await cli([
        "--mem",
        "16",
        "--image",
        `${dir}/uart.bin`,
        "--snapshot",
        `${dir}/snap`,
        "--snapshot-on",
        // The whole line: a pattern of "ready" alone may pause the guest between the "\r"
        // and the "\n" (it did in the portable machine), and the "\n" then comes after
        // the restore, correctly but not where this test looks for it.
        "pattern:ready\\r\\n",
      ]);
      assertEquals(a.code, 0, a.stderr);
      assert(a.stdout.endsWith("ready\r\n"), JSON.stringify(a.stdout));
      assertStringIncludes(a.stderr, `snapshot written to ${dir}/snap`);
      const b = await cli(["--restore", `${dir}/snap`], "resumed\n");
      assertEquals(b.code, 0, b.stderr);
      // Exactly this: nothing the first process printed comes out again (a vCPU parked
      // mid-instruction would repeat its last port write after the restore).
      assertEquals(b.stdout, "RESUMEDbye\r\n", "the restored guest echoed the input and reset");
      // The same snapshot again, with --timings: the restore's phases, in order.
      const c = await cli(
        ["--restore", `${dir}/snap`, "--timings", "--log-json", "--log-level", "info"],
        "resumed\n",
        false,
      );
      assertEquals(c.code, 0, c.stderr);
      assertEquals(c.stdout, "RESUMEDbye\r\n");
      const t = c.stderr.trim().split("\n").map((l) => JSON.parse(l))
        .find((l) => l.msg.startsWith("timings"));
      const phases = [
        t?.restore_started,
        t?.state_validated,
        t?.vm_created,
        t?.state_applied,
        t?.first_instruction,
      ];
      assert(phases.every((v) => typeof v === "number"), JSON.stringify(t));
      assert(phases.every((v, i) => i === 0 || v >= phases[i - 1]), JSON.stringify(t));
      assertEquals(t.kernel_loaded, undefined, "a restore loads no kernel");
      const bad = await cli(["--restore", `${dir}/nope`]);
      assertEquals(bad.code, 1);
      assertStringIncludes(bad.stderr, "Cannot read snapshot");
      const usage = await cli(["--snapshot", `${dir}/x`]);
      assertEquals(usage.code, 2);
      assertStringIncludes(usage.stderr, "--snapshot and --snapshot-on go together");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
