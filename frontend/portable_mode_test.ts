/** The CLI's portable mode without QEMU: what it refuses, and its one notice line. */

import { assert, assertEquals } from "@std/assert";
import { portableNotice, portableRefusal } from "./portable_mode.ts";
import { parseConfig } from "../vmm/config.ts";
import { describeHost } from "../vstate/host.ts";

Deno.test("portable CLI: refuses only what cannot cross the machine, names why it runs there", async () => {
  const base = { quiet: false, help: false, log: { level: "warn" as const, json: false } };
  assertEquals(await portableRefusal({ ...base, config: parseConfig({}) }), undefined);
  // The API and vsock sockets cross through the bridge now.
  assertEquals(
    await portableRefusal({ ...base, config: parseConfig({}), apiSock: "/x" }),
    undefined,
  );
  assertEquals(
    await portableRefusal({ ...base, config: parseConfig({ vsock: { cid: 3, path: "/v" } }) }),
    undefined,
  );
  const net = await portableRefusal({ ...base, config: parseConfig({ nets: [{ tap: "tap0" }] }) });
  assert(net?.startsWith("--net does not work through the portable machine"), net);
  // A snapshot with a vsock device: refused with the reason.
  const dir = await Deno.makeTempDir();
  try {
    const { encodeState } = await import("../snapshot/format.ts");
    await Deno.writeFile(
      `${dir}/state.bin`,
      await encodeState({ config: { vsock: { cid: 3, path: "/v" } } }),
    );
    const r = await portableRefusal({ ...base, config: parseConfig({}), restore: dir });
    assert(r?.includes("vsock device"), r);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
  const missing = describeHost("none", { status: "missing", detail: "/dev/kvm is missing" });
  const line = portableNotice(missing, false);
  assert(line.includes("portable machine") && line.includes("/dev/kvm is missing"), line);
  assert(line.includes("native speed"), line);
  assert(!line.includes("\n"), "one line");
});
