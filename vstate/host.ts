/**
 * What this host's KVM can run, in one line that names the cause and the fix: no
 * `/dev/kvm`, no permission, a device with no driver behind it (ENODEV), a wrong API
 * version, or a KVM that only emulates (no `vmx`/`svm`: small test guests run, Linux does
 * not). Where guests cannot run here, the CLI and the test tier use the portable machine.
 *
 * @module
 */

import { hostVirtualization, Kvm, KvmError } from "@denovm/deno-kvm-ffi";

/** Why KVM can or cannot be used here. */
export type KvmStatus = "ok" | "missing" | "eacces" | "enodev" | "api-version" | "error";

/** The host check result. */
export interface HostCheck {
  /** "vmx", "svm" or "none". */
  virtualization: "vmx" | "svm" | "none";
  /** Whether `/dev/kvm` opened and speaks API 12, and if not, why. */
  kvm: KvmStatus;
  /** Whether guests can run on this host's KVM at all (perhaps emulated). */
  usable: boolean;
  /** Whether guests run on hardware virtualization. */
  native: boolean;
  /** One line for the user: what this host can do, and how to fix it where it cannot. */
  message: string;
  /** Where guests cannot run natively: why, without the fix. */
  reason?: string;
  /** Where guests cannot run natively: how to get native speed. */
  fix?: string;
}

/** KVM cannot be used on this host; `reason` says why and `message` how to fix it. */
export class KvmUnavailableError extends Error {
  /** Always "KvmUnavailableError". */
  override name = "KvmUnavailableError";
  /** Why (the same values as {@link HostCheck.kvm}). */
  readonly reason: KvmStatus;

  /**
   * The error for a failed host check: its message is the check's line with the fix.
   *
   * @param check the failed host check
   */
  constructor(check: HostCheck) {
    super(check.message.replace(/^denovm: /, ""));
    this.reason = check.kvm;
  }
}

const FIX_MISSING =
  "load the module (modprobe kvm_intel or kvm_amd; enable virtualization in the firmware), or start the container with --device /dev/kvm";
const FIX_EACCES =
  'add your user to the kvm group (usermod -aG kvm $USER, then log in again), or on a CI runner add a udev rule: KERNEL=="kvm", GROUP="kvm", MODE="0666"';

/** Probes `/dev/kvm` (at `path`): opened, and API version 12? */
export function probeKvm(path = "/dev/kvm"): { status: KvmStatus; detail: string } {
  try {
    Deno.statSync(path);
  } catch {
    return { status: "missing", detail: `${path} is missing` };
  }
  try {
    using _kvm = Kvm.open(path);
    return { status: "ok", detail: "" };
  } catch (e) {
    if (e instanceof KvmError) {
      if (e.code === "EACCES" || e.code === "EPERM") {
        return { status: "eacces", detail: `${path}: permission denied` };
      }
      if (e.code === "ENODEV" || e.code === "ENXIO") {
        return {
          status: "enodev",
          detail: `${path} exists but no KVM driver answers (${e.code})`,
        };
      }
      if (e.code === "ENOENT") return { status: "missing", detail: `${path} is missing` };
      return { status: "error", detail: `${path}: ${e.message}` };
    }
    const m = /API version (\d+)/.exec(String((e as Error).message));
    if (m) return { status: "api-version", detail: `${path} speaks KVM API ${m[1]}, not 12` };
    return { status: "error", detail: `${path}: ${(e as Error).message}` };
  }
}

/** The host check from its parts (pure; tested for every case). */
export function describeHost(
  virtualization: "vmx" | "svm" | "none",
  probe: { status: KvmStatus; detail: string },
): HostCheck {
  const base = { virtualization, kvm: probe.status };
  const cannot = (reason: string, fix: string): HostCheck => ({
    ...base,
    usable: false,
    native: false,
    message: `denovm: ${reason}; ${fix}`,
    reason,
    fix,
  });
  switch (probe.status) {
    case "missing":
      return cannot(`${probe.detail}: no guest can run on this host's KVM`, FIX_MISSING);
    case "eacces":
      return cannot(probe.detail, FIX_EACCES);
    case "enodev":
      return cannot(
        `${probe.detail}: the kernel is itself a guest without nested virtualization, or kvm_intel/kvm_amd is not loaded`,
        FIX_MISSING,
      );
    case "api-version":
      return cannot(
        `${probe.detail}: this kernel's KVM is too old or not Linux's`,
        "run on a Linux host with a current kernel",
      );
    case "error":
      return cannot(probe.detail, "check that /dev/kvm is the KVM device");
    case "ok":
      if (virtualization === "none") {
        const reason =
          "this CPU has no vmx/svm, so KVM emulates guest instructions: small test guests run, a Linux kernel will not boot";
        const fix = "use a host with hardware virtualization, or the portable machine";
        return {
          ...base,
          usable: true,
          native: false,
          message: `denovm: ${reason} (${fix})`,
          reason,
          fix,
        };
      }
      return {
        ...base,
        usable: true,
        native: true,
        message: `denovm: KVM with hardware virtualization (${virtualization})`,
      };
  }
}

/**
 * Checks whether `/dev/kvm` can be used and whether guests will run natively.
 *
 * @example
 * ```ts
 * import { checkHost } from "./host.ts";
 * const h = await checkHost();
 * console.assert(typeof h.message === "string");
 * ```
 */
export async function checkHost(): Promise<HostCheck> {
  return describeHost(await hostVirtualization(), probeKvm());
}
