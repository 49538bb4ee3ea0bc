/** The CLI's portable mode without QEMU: what it refuses, and its one notice line. */

import { assert, assertEquals } from "@std/assert";
import { portableNotice, portableRefusal } from "./portable_mode.ts";
import { parseConfig } from "../vmm/config.ts";
import { describeHost } from "../vstate/host.ts";

Deno.test("portable CLI: refuses what does not cross the machine yet, names why it runs there", () => {
  const base = { quiet: false, help: false, log: { level: "warn" as const, json: false } };
  assertEquals(portableRefusal({ ...base, config: parseConfig({}) }), undefined);
  assertEquals(portableRefusal({ ...base, config: parseConfig({}), apiSock: "/x" }), "--api-sock");
  assertEquals(
    portableRefusal({ ...base, config: parseConfig({ vsock: { cid: 3, path: "/v" } }) }),
    "--vsock",
  );
  assertEquals(
    portableRefusal({ ...base, config: parseConfig({ nets: [{ tap: "tap0" }] }) }),
    "--net",
  );
  const missing = describeHost("none", { status: "missing", detail: "/dev/kvm is missing" });
  const line = portableNotice(missing, false);
  assert(line.includes("portable machine") && line.includes("/dev/kvm is missing"), line);
  assert(line.includes("native speed"), line);
  assert(!line.includes("\n"), "one line");
});
