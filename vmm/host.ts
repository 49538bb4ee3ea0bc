/**
 * What this host's KVM can run: with `vmx`/`svm` guests run natively; without them (as on
 * a KVM that emulates instructions) only small test guests run and Linux cannot boot.
 *
 * @module
 */

import { hostVirtualization } from "../kvm/mod.ts";

/** The host check result. */
export interface HostCheck {
  /** "vmx", "svm" or "none". */
  virtualization: "vmx" | "svm" | "none";
  /** Whether guests run on hardware virtualization. */
  native: boolean;
  /** One line for the user. */
  message: string;
}

/**
 * Checks whether `/dev/kvm` exists and whether guests will run natively.
 *
 * @example
 * ```ts
 * import { checkHost } from "./host.ts";
 * const h = await checkHost();
 * console.assert(typeof h.message === "string");
 * ```
 */
export async function checkHost(): Promise<HostCheck> {
  const virtualization = await hostVirtualization();
  let hasKvm = true;
  try {
    await Deno.stat("/dev/kvm");
  } catch {
    hasKvm = false;
  }
  if (!hasKvm) {
    return {
      virtualization,
      native: false,
      message: "denovm: /dev/kvm is missing: no guest can run on this host",
    };
  }
  if (virtualization === "none") {
    return {
      virtualization,
      native: false,
      message:
        "denovm: this CPU has no vmx/svm, so KVM emulates guest instructions: small test guests run, a Linux kernel will not boot (use a host with hardware virtualization or the nested lane)",
    };
  }
  return {
    virtualization,
    native: true,
    message: `denovm: KVM with hardware virtualization (${virtualization})`,
  };
}
