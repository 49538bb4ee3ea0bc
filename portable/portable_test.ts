/** The portable machine's parts that run without QEMU: cpio, module order, QEMU's arguments. */

import { assert, assertEquals, assertThrows } from "@std/assert";
import { loadOrder, moduleDepends, moduleName } from "./assets.ts";
import { cpioNewc } from "./cpio.ts";
import { innerEnv, qemuArgs } from "./machine.ts";
import { VMM_V8_FLAGS, vmmV8FlagsEnv } from "./v8_flags.ts";

/** Reads a newc archive back: [path, mode, data] per entry, trailer excluded. */
function readNewc(a: Uint8Array): [string, number, Uint8Array][] {
  const dec = new TextDecoder();
  const out: [string, number, Uint8Array][] = [];
  let o = 0;
  const align = (n: number) => (n + 3) & ~3;
  for (;;) {
    const h = dec.decode(a.subarray(o, o + 110));
    assertEquals(h.slice(0, 6), "070701", `magic at ${o}`);
    const field = (i: number) => parseInt(h.slice(6 + i * 8, 14 + i * 8), 16);
    const mode = field(1), size = field(6), nameSize = field(11);
    const name = dec.decode(a.subarray(o + 110, o + 110 + nameSize - 1));
    o = align(o + 110 + nameSize);
    const data = a.subarray(o, o + size);
    o = align(o + size);
    if (name === "TRAILER!!!") return out;
    out.push([name, mode, data]);
  }
}

Deno.test("cpio newc: directories, files and links read back with their modes and data", () => {
  const a = cpioNewc([
    { path: "bin", mode: 0o755 },
    { path: "bin/x", mode: 0o755, data: new Uint8Array([1, 2, 3]) },
    { path: "init", mode: 0o700, data: new TextEncoder().encode("#!/bin/sh\n") },
    { path: "sh", mode: 0o777, symlink: "bin/x" },
  ]);
  assertEquals(a.byteLength % 4, 0);
  const e = readNewc(a);
  assertEquals(e.map(([p, m]) => [p, m.toString(8)]), [
    ["bin", "40755"],
    ["bin/x", "100755"],
    ["init", "100700"],
    ["sh", "120777"],
  ]);
  assertEquals([...e[1]![2]], [1, 2, 3]);
  assertEquals(new TextDecoder().decode(e[3]![2]), "bin/x");
});

Deno.test("modules: names, depends= from .modinfo, and a load order with dependencies first", () => {
  assertEquals(moduleName("/x/kernel/arch/x86/kvm/kvm-amd.ko.xz"), "kvm_amd");
  assertEquals(moduleName("9pnet_virtio.ko"), "9pnet_virtio");
  const ko = new TextEncoder().encode("\x7fELF...\0license=GPL\0depends=kvm,ccp\0name=kvm_amd\0");
  assertEquals(moduleDepends(ko), ["kvm", "ccp"]);
  assertEquals(moduleDepends(new TextEncoder().encode("\0depends=\0")), []);
  const deps: Record<string, string[]> = {
    kvm_amd: ["kvm", "ccp"],
    kvm: ["irqbypass"],
    irqbypass: [],
    ccp: [],
    "9p": ["9pnet", "netfs"],
    "9pnet": [],
    netfs: [],
  };
  assertEquals(loadOrder(["kvm_amd", "9p"], (n) => deps[n]), [
    "irqbypass",
    "kvm",
    "ccp",
    "kvm_amd",
    "9pnet",
    "netfs",
    "9p",
  ]);
  assertThrows(() => loadOrder(["nope"], (n) => deps[n]), Error, "not in the kernel package");
  assertThrows(
    () => loadOrder(["a"], (n) => ({ a: ["b"], b: ["a"] } as Record<string, string[]>)[n]),
    Error,
    "loop",
  );
});

Deno.test("qemu arguments: TCG with -cpu max, stdio on ttyS0, the shares", () => {
  const args = qemuArgs(
    { qemu: "q", kernel: "/k/vmlinuz", initrd: "/k/i.gz", release: "6.1" },
    "/tmp/ctl",
    { memMiB: 2048, cpus: 2, shares: ["/data", "/snap"] },
  );
  const s = args.join(" ");
  assert(/-accel tcg,thread=(single|multi) -cpu max -smp 2 -m 2048/.test(s), s);
  assert(s.includes("-chardev stdio,id=s0,signal=off -serial chardev:s0"));
  assert(s.includes("path=/,mount_tag=hostroot,readonly=on"));
  assert(s.includes("local,path=/data,mount_tag=rw0,security_model=none"));
  assert(s.includes("local,path=/snap,mount_tag=rw1,security_model=none"));
  assert(!s.includes("-enable-kvm"), "the portable machine never needs the host's KVM");
});

Deno.test("inner environment: Deno's own variables (module cache, certificates) go inside too", () => {
  const had = Deno.env.get("DENO_DIR");
  Deno.env.set("DENO_DIR", "/somewhere/deno-cache");
  try {
    const env = innerEnv({ EXTRA: "1" });
    assertEquals(env.DENO_DIR, "/somewhere/deno-cache");
    assertEquals(env.DENOVM_PORTABLE_INSIDE, "1");
    assertEquals(env.EXTRA, "1");
    assert(
      !Object.keys(env).some((k) => k.startsWith("DENOVM_") && k !== "DENOVM_PORTABLE_INSIDE"),
    );
  } finally {
    if (had === undefined) Deno.env.delete("DENO_DIR");
    else Deno.env.set("DENO_DIR", had);
  }
});

Deno.test("the VMM's V8 flags in the portable machine: ours first, the caller's after them", () => {
  const had = Deno.env.get("DENO_V8_FLAGS");
  try {
    Deno.env.delete("DENO_V8_FLAGS");
    assertEquals(vmmV8FlagsEnv(), { DENO_V8_FLAGS: VMM_V8_FLAGS });
    assertEquals(VMM_V8_FLAGS, "--no-lazy");
    Deno.env.set("DENO_V8_FLAGS", "--lazy,--max-old-space-size=64");
    // V8 takes the last of two contradicting flags: the caller's --lazy wins.
    assertEquals(vmmV8FlagsEnv(), { DENO_V8_FLAGS: "--no-lazy,--lazy,--max-old-space-size=64" });
    // Inside, a command's own environment (runPortable's `env`) goes over the forwarded one.
    assertEquals(
      innerEnv(vmmV8FlagsEnv()).DENO_V8_FLAGS,
      "--no-lazy,--lazy,--max-old-space-size=64",
    );
  } finally {
    if (had === undefined) Deno.env.delete("DENO_V8_FLAGS");
    else Deno.env.set("DENO_V8_FLAGS", had);
  }
});
