/** The host check names every case and its fix, in one line each. */

import { assert, assertEquals } from "@std/assert";
import { describeHost, KvmUnavailableError, probeKvm } from "./host.ts";

Deno.test("host check: every KVM state gives one line with its cause and fix", () => {
  const cases = [
    ["missing", "/dev/kvm is missing", ["modprobe", "--device /dev/kvm"]],
    ["eacces", "/dev/kvm: permission denied", ["kvm group", "udev rule", 'MODE="0666"']],
    ["enodev", "/dev/kvm exists but no KVM driver answers (ENODEV)", ["nested", "kvm_amd"]],
    ["api-version", "/dev/kvm speaks KVM API 11, not 12", ["too old"]],
    ["error", "/dev/kvm: open failed: EIO", ["EIO"]],
  ] as const;
  for (const [status, detail, words] of cases) {
    const h = describeHost("svm", { status, detail });
    assertEquals(h.kvm, status);
    assertEquals(h.usable, false);
    assertEquals(h.native, false);
    assert(!h.message.includes("\n"), "one line");
    assert(!/open failed: ENOENT/.test(h.message), "never the raw errno for a missing device");
    for (const w of words) assert(h.message.includes(w), `${status}: "${w}" in ${h.message}`);
    const e = new KvmUnavailableError(h);
    assertEquals(e.reason, status);
    assertEquals(e.name, "KvmUnavailableError");
  }
  const emulated = describeHost("none", { status: "ok", detail: "" });
  assertEquals([emulated.usable, emulated.native], [true, false]);
  assert(emulated.message.includes("emulates"));
  const native = describeHost("vmx", { status: "ok", detail: "" });
  assertEquals([native.usable, native.native], [true, true]);
});

Deno.test("host check: probing a path that is missing or not KVM says so", async () => {
  assertEquals(probeKvm("/nonexistent/kvm").status, "missing");
  const f = await Deno.makeTempFile();
  try {
    // A regular file opens, but KVM_GET_API_VERSION on it fails (ENOTTY): an error line.
    const p = probeKvm(f);
    assertEquals(p.status, "error");
    assert(p.detail.includes(f));
  } finally {
    await Deno.remove(f);
  }
});
