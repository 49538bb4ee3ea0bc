/** The CLI: its argument checks (no VM is started, no KVM needed; issue 12, item 13) and its last line of defence. */

import { assert, assertEquals, assertRejects } from "@std/assert";
import { configFromArgs } from "./cli_main.ts";
import { ConfigError } from "../vmm/config.ts";

Deno.test("cli args: an empty value names its flag", async () => {
  for (const flag of ["--disk", "--net", "--api-sock", "--kernel", "--config"]) {
    const e = await assertRejects(() => configFromArgs([flag, ""]));
    assertEquals((e as Error).message, `${flag} expects a value`);
    const e2 = await assertRejects(() => configFromArgs([`${flag}=`]));
    assertEquals((e2 as Error).message, `${flag} expects a value`);
  }
  const last = await assertRejects(() => configFromArgs(["--disk"]));
  assertEquals((last as Error).message, "--disk expects a value");
});

Deno.test("cli args: ACPI is the kernels' default; --no-acpi turns it off; both at once is an error", async () => {
  const k = ["--kernel", "/k"];
  assertEquals((await configFromArgs(k)).config.acpi, undefined, "left to the default (on)");
  assertEquals((await configFromArgs([...k, "--acpi"])).config.acpi, true);
  assertEquals((await configFromArgs([...k, "--no-acpi"])).config.acpi, false);
  const e = await assertRejects(() => configFromArgs([...k, "--acpi", "--no-acpi"]));
  assertEquals((e as Error).message, "--acpi and --no-acpi contradict each other");
});

Deno.test("cli args: errors show at most 80 characters of a bad value", async () => {
  const big = "x".repeat(1 << 20);
  for (const args of [[big], ["--mem", big], ["--disk", `a.img,${big}`], [`--${big}`]]) {
    const e = await assertRejects(() => configFromArgs(args));
    assert((e as Error).message.length < 200, `${(e as Error).message.length} characters`);
  }
});

Deno.test("cli args: disk files are checked before any VM exists (config errors, exit 2)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    const good = `${dir}/good.img`;
    await Deno.writeFile(good, new Uint8Array(4096));
    await Deno.writeFile(`${dir}/odd.img`, new Uint8Array(1000));
    await Deno.mkdir(`${dir}/d`);
    const fifo = `${dir}/fifo`;
    await new Deno.Command("mkfifo", { args: [fifo] }).output();
    const cases: [string[], string][] = [
      [["--disk", `${dir}/d`], "is not a regular file"],
      [["--disk", fifo], "is not a regular file"],
      [["--disk", "/dev/zero"], "is not a regular file"],
      [["--disk", `${dir}/odd.img`], "not a multiple of 512"],
      [["--disk", `${dir}/missing.img`], "cannot open"],
      [["--disk", good, "--disk", good], "one file may be attached twice only read-only"],
      [["--disk", good, "--disk", `${good},ro`], "one file may be attached twice only read-only"],
    ];
    for (const [args, message] of cases) {
      const e = await assertRejects(() => configFromArgs(args), ConfigError);
      assert(e.message.includes(message), `${args.join(" ")}: ${e.message}`);
      assert(e.message.startsWith("disks["), e.message);
    }
    const ok = await configFromArgs(["--disk", `${good},ro`, "--disk", `${good},ro`]);
    assertEquals(ok.config.disks.length, 2, "the same file twice, both read-only, is fine");
    // A config file must be a regular file of at most 1 MiB, checked before it is read.
    await Deno.writeFile(`${dir}/big.json`, new Uint8Array((1 << 20) + 1));
    const big = await assertRejects(() => configFromArgs(["--config", `${dir}/big.json`]));
    assert((big as Error).message.includes("over 1 MiB"), (big as Error).message);
    const dev = await assertRejects(() => configFromArgs(["--config", "/dev/zero"]));
    assert((dev as Error).message.includes("not a regular file"), (dev as Error).message);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("last line of defence: an escaped rejection or exception is logged, the process lives on", async () => {
  // Issue 12, systemic: whatever escapes every device guard must not end the process (and
  // with it every VM it runs); it is logged as the bug it is.
  const script = `
    import { installLastDefence } from ${
    JSON.stringify(new URL("./cli_main.ts", import.meta.url).href)
  };
    installLastDefence();
    Promise.reject(new Error("escaped rejection"));
    setTimeout(() => { throw new Error("escaped exception"); }, 0);
    setTimeout(() => console.log("still alive"), 50);
  `;
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["eval", "--no-check", script],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(new TextDecoder().decode(out.stdout).trim(), "still alive");
  assertEquals(out.code, 0, stderr);
  assert(stderr.includes("internal error, kept running: Error: escaped rejection"), stderr);
  assert(stderr.includes("internal error, kept running: Error: escaped exception"), stderr);
});

Deno.test("cli args: --admin-vq adds a management device; --admin-disk gives it disks (and implies it)", async () => {
  assertEquals((await configFromArgs([])).config.admin, undefined);
  assertEquals((await configFromArgs(["--admin-vq"])).config.admin, { disks: [] });
  const dir = await Deno.makeTempDir();
  try {
    await Deno.writeFile(`${dir}/a.img`, new Uint8Array(1024));
    await Deno.writeFile(`${dir}/b.img`, new Uint8Array(512));
    const c = await configFromArgs([
      "--admin-disk",
      `${dir}/a.img`,
      "--admin-disk",
      `${dir}/b.img,ro`,
    ]);
    assertEquals(c.config.admin, {
      disks: [{ path: `${dir}/a.img` }, { path: `${dir}/b.img`, readOnly: true }],
    });
    const bad = await assertRejects(() => configFromArgs(["--admin-disk", `${dir}/a.img,rw`]));
    assertEquals((bad as Error).message, `--admin-disk option "rw": only "ro" is known`);
    // The same file writable as a disk and as an admin disk is refused, naming both.
    const twice = await assertRejects(() =>
      configFromArgs(["--disk", `${dir}/a.img`, "--admin-disk", `${dir}/a.img`])
    );
    assert(twice instanceof ConfigError);
    assertEquals(twice.field, "admin.disks[0].path");
    assert(twice.message.includes("is already disks[0]"), twice.message);
    const missing = await assertRejects(() => configFromArgs(["--admin-disk", `${dir}/none`]));
    assertEquals((missing as ConfigError).field, "admin.disks[0].path");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
