// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/** The README's scripting example, run as it stands. */

import { assertEquals, assertStringIncludes } from "@std/assert";

Deno.test({
  name: "README: the 'Scripting microVMs' example runs",
  async fn() {
    const root = new URL("../", import.meta.url).pathname;
    const readme = await Deno.readTextFile(`${root}README.md`);
    const section = readme.slice(readme.indexOf("## Scripting microVMs"));
    const code = /```ts\n([\s\S]*?)```/.exec(section)?.[1];
    if (!code) throw new Error("no ts block in the Scripting microVMs section");
    const file = `${root}.readme_example_${Deno.pid}.ts`;
    await Deno.writeTextFile(file, code);
    try {
      const out = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", file],
        stdout: "piped",
        stderr: "piped",
      })
        .output();
      const stdout = new TextDecoder().decode(out.stdout);
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
      assertStringIncludes(stdout, "the guest said: Hello from a denovm guest");
      assertStringIncludes(stdout, "guest stopped: exit");
    } finally {
      await Deno.remove(file);
    }
  },
});

Deno.test("README: the CLI section shows exactly what `cli.ts --help` prints", async () => {
  const root = new URL("../", import.meta.url).pathname;
  const readme = await Deno.readTextFile(`${root}README.md`);
  const block = /## CLI\n\n```\n([\s\S]*?)```/.exec(readme)?.[1];
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", `${root}cli.ts`, "--help"],
    stdout: "piped",
  }).output();
  assertEquals(block?.trimEnd(), new TextDecoder().decode(out.stdout).trimEnd());
});
