import { assertEquals, assertThrows } from "@std/assert";
import { ConfigError, defaultConfig, loadConfig, parseConfig } from "./config.ts";
import { configFromArgs } from "../cli.ts";

Deno.test("parseConfig() fills defaults and keeps what is given", () => {
  assertEquals(parseConfig({}), defaultConfig());
  const c = parseConfig({
    kernel: "bzImage",
    initrd: "initrd.cpio",
    cmdline: "console=ttyS0",
    memMiB: 256,
    vcpus: 2,
    disks: [{ path: "root.img", readOnly: true, id: "root" }],
    nets: [{ tap: "tap0", mac: "52:54:00:aa:bb:cc" }],
    rng: true,
    console: "virtio",
    vsock: { cid: 3, path: "/tmp/v.sock" },
  });
  assertEquals(c.disks, [{ path: "root.img", readOnly: true, id: "root" }]);
  assertEquals(c.vsock, { cid: 3, path: "/tmp/v.sock" });
});

Deno.test("parseConfig() names the field that is wrong", () => {
  const bad: [unknown, string][] = [
    [{ memMiB: "big" }, "memMiB: expected an integer from 16 to 1048576"],
    [{ vcpus: 0 }, "vcpus: expected an integer from 1 to 64"],
    [{ disks: [{ path: "" }] }, "disks[0].path: expected a non-empty string"],
    [{ disks: [{ path: "a", ro: true }] }, "disks[0].ro: unknown field"],
    [{ nets: [{ tap: "t", mac: "zz" }] }, "nets[0].mac: expected six hex bytes"],
    [{ nets: [{ tap: "a-very-long-tap-name" }] }, "nets[0].tap: longer than 15 bytes"],
    [{ console: "tty" }, 'console: expected "serial", "virtio" or "none"'],
    [{ vsock: { cid: 2, path: "x" } }, "vsock.cid: expected an integer from 3"],
    [{ initrd: "x" }, "initrd: needs a kernel"],
    [{ kernal: "typo" }, "kernal: unknown field"],
    [[], ": expected an object"],
  ];
  for (const [input, msg] of bad) {
    const e = assertThrows(() => parseConfig(input), ConfigError);
    assertEquals(e.message.startsWith(msg), true, `${JSON.stringify(input)} -> ${e.message}`);
  }
});

Deno.test("loadConfig() reads a file and reports unreadable or non-JSON files", async () => {
  const path = await Deno.makeTempFile({ suffix: ".json" });
  try {
    await Deno.writeTextFile(path, JSON.stringify({ memMiB: 64, rng: true }));
    assertEquals((await loadConfig(path)).memMiB, 64);
    await Deno.writeTextFile(path, "{ nope");
    const e = await loadConfig(path).catch((e) => e);
    assertEquals(e instanceof ConfigError && e.message.includes("is not JSON"), true);
  } finally {
    await Deno.remove(path);
  }
  const e = await loadConfig("/nonexistent/vm.json").catch((e) => e);
  assertEquals(e instanceof ConfigError && e.message.includes("cannot read"), true);
});

Deno.test("CLI flags become the same config as the file", async () => {
  // The CLI checks disk files before anything else: they must exist.
  const dir = await Deno.makeTempDir();
  const a = `${dir}/a.img`, b = `${dir}/b.img`;
  await Deno.writeFile(a, new Uint8Array(512));
  await Deno.writeFile(b, new Uint8Array(512));
  const { config } = await configFromArgs([
    "--mem",
    "256",
    "--cpus",
    "2",
    "--disk",
    `${a},ro`,
    "--disk",
    b,
    "--net",
    "tap0,mac=52:54:00:00:00:01",
    "--rng",
    "--console",
    "virtio",
    "--vsock",
    "3,/tmp/v.sock",
  ]);
  assertEquals(
    config,
    parseConfig({
      memMiB: 256,
      vcpus: 2,
      disks: [{ path: a, readOnly: true }, { path: b }],
      nets: [{ tap: "tap0", mac: "52:54:00:00:00:01" }],
      rng: true,
      console: "virtio",
      vsock: { cid: 3, path: "/tmp/v.sock" },
    }),
  );
  await assertRejects(["--disk", "a.img,rw"], 'only "ro"');
  await assertRejects(["--vsock", "3"], "<cid>,<path>");
  await assertRejects(["--config", "x.json", "--rng"], "cannot be combined");
  await Deno.remove(dir, { recursive: true });
});

async function assertRejects(args: string[], msg: string) {
  const e = await configFromArgs(args).catch((e) => e);
  assertEquals(e instanceof Error && e.message.includes(msg), true, `${args.join(" ")}: ${e}`);
}

Deno.test("parseConfig(): admin takes disks like disks, and counts as a virtio device", () => {
  assertEquals(parseConfig({ admin: {} }).admin, { disks: [] });
  assertEquals(parseConfig({ admin: { disks: [{ path: "a.img", readOnly: true }] } }).admin, {
    disks: [{ path: "a.img", readOnly: true }],
  });
  for (
    const [input, field] of [
      [{ admin: [] }, "admin"],
      [{ admin: { disks: {} } }, "admin.disks"],
      [{ admin: { disks: [{}] } }, "admin.disks[0].path"],
      [{ admin: { vms: 1 } }, "admin.vms"],
      [{ rng: true, disks: Array(15).fill({ path: "d" }), admin: {} }, "disks"],
    ] as const
  ) {
    let got = "";
    try {
      parseConfig(input);
    } catch (e) {
      got = (e as ConfigError).field;
    }
    assertEquals(got, field, JSON.stringify(input).slice(0, 60));
  }
});
