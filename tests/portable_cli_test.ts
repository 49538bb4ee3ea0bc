/**
 * The CLI's portable mode end to end: `cli.ts --portable on` runs the demo guest inside the
 * portable machine (QEMU/TCG with KVM inside) on any host, with or without /dev/kvm; the
 * guest's console and exit code come back, and one line says why and how to get native
 * speed. Needs qemu-system-x86 and Debian's kernel (installed and fetched once).
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";

const CLI = new URL("../cli.ts", import.meta.url).pathname;

Deno.test("cli --portable on: the demo guest's greeting and exit code come back from the portable machine", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "--portable", "on"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, stderr);
  assertStringIncludes(stdout, "Hello from a denovm guest");
  const notice = stderr.split("\n").filter((l) => l.includes("portable machine"));
  assertEquals(notice.length, 1, `one line says it runs portable:\n${stderr}`);
  assertStringIncludes(notice[0]!, "--portable on was given");
  assertStringIncludes(notice[0]!, "For native speed");
  assert(!stderr.includes("hardware virtualization (svm)"), "the inner host line is not shown");
});

Deno.test("cli --portable: a bad mode is a usage error (exit 2)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "--portable", "sometimes"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 2);
  assertStringIncludes(new TextDecoder().decode(out.stderr), "--portable expects auto, on or off");
});
