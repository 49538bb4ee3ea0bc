/**
 * Where a benchmark runs: on this host's KVM when it can be used, else inside the portable
 * machine (the whole script, so ratios against the C loop or QEMU are measured in the same
 * place in the same run). Every benchmark prints the place as its first line:
 * `host: kvm (svm)`, `host: kvm (emulated)`, `host: portable (tcg+nested svm)`, or
 * `host: no kvm needed` for those that drive devices without a guest.
 *
 * @module
 */

import { checkHost } from "../vstate/host.ts";
import { PORTABLE_HOST, runPortable } from "./machine.ts";
import { vmmV8FlagsEnv } from "./v8_flags.ts";

/**
 * For a benchmark that needs KVM: prints where it runs, and where this host's KVM cannot be
 * used (or `DENOVM_PORTABLE=on`), runs `script` with the same arguments in the portable
 * machine and exits with its status instead of returning.
 */
export async function benchOnKvm(script: string | URL): Promise<void> {
  if (Deno.env.get("DENOVM_PORTABLE_INSIDE") === "1") {
    console.log(`host: ${PORTABLE_HOST}`);
    return;
  }
  const host = await checkHost();
  if (host.usable && Deno.env.get("DENOVM_PORTABLE") !== "on") {
    console.log(`host: kvm (${host.native ? host.virtualization : "emulated"})`);
    return;
  }
  const path = new URL(script).pathname;
  const q = (a: string) => `'${a.replaceAll("'", `'\\''`)}'`;
  const r = await runPortable({
    command: [Deno.execPath(), "run", "-A", path, ...Deno.args].map(q).join(" "),
    // One machine, many VMM processes (the bench's and its children): see v8_flags.ts.
    env: vmmV8FlagsEnv(),
    stdio: "inherit",
    memMiB: 6144,
  });
  if (r.status >= 124 && r.status <= 125) console.error(r.log);
  Deno.exit(r.status);
}

/** For a benchmark that needs no KVM: prints that as its first line. */
export function benchWithoutKvm(): void {
  const inside = Deno.env.get("DENOVM_PORTABLE_INSIDE") === "1";
  console.log(`host: ${inside ? PORTABLE_HOST : "no kvm needed"}`);
}
