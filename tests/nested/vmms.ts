/**
 * The command lines that boot a Linux kernel under our CLI and under QEMU's microvm, shared
 * by the lane's peer comparison, parity check and CLI step.
 *
 * @module
 */

import { vmmV8FlagsEnv } from "../../portable/v8_flags.ts";

const CLI = new URL("../../cli.ts", import.meta.url).pathname;

/**
 * The environment of our VMM's processes: inside the portable machine, with the V8 flags of
 * `portable/v8_flags.ts` (one machine runs the whole lane); on a host with KVM, this one's.
 */
export function oursEnv(): Record<string, string> {
  return Deno.env.get("DENOVM_PORTABLE_INSIDE") === "1" ? vmmV8FlagsEnv() : {};
}

/** What to boot and how. */
export interface BootSpec {
  kernel: string;
  initrd: string;
  /** The kernel command line. */
  append: string;
  /** vCPUs (default 1). */
  cpus?: number;
}

/** `deno run -A cli.ts ...` for `s`, with `extra` CLI flags (e.g. `--rng`, `--disk`). */
export function oursArgv(s: BootSpec, extra: string[] = []): string[] {
  return [
    Deno.execPath(),
    "run",
    "-A",
    CLI,
    "--quiet",
    "--kernel",
    s.kernel,
    "--initrd",
    s.initrd,
    "--mem",
    "256",
    "--cpus",
    String(s.cpus ?? 1),
    "--cmdline",
    s.append,
    ...extra,
  ];
}

/**
 * QEMU's microvm on KVM for `s` (no option ROMs, an i8042 for `reboot=k`), with `rtc` and
 * `acpi` on or off (default off) and `extra` QEMU arguments (devices, drives).
 */
export function qemuArgv(
  s: BootSpec,
  o: { rtc?: boolean; acpi?: boolean; extra?: string[] } = {},
): string[] {
  return [
    "qemu-system-x86_64",
    "-M",
    `microvm,x-option-roms=off,rtc=${o.rtc ? "on" : "off"},isa-serial=on,` +
    `auto-kernel-cmdline=on,acpi=${o.acpi ? "on" : "off"}`,
    "-enable-kvm",
    "-cpu",
    "host",
    "-m",
    "256",
    "-smp",
    String(s.cpus ?? 1),
    "-nodefaults",
    "-no-user-config",
    "-nographic",
    "-serial",
    "stdio",
    "-no-reboot",
    "-device",
    "i8042,mouse-irq=15",
    "-kernel",
    s.kernel,
    "-initrd",
    s.initrd,
    "-append",
    s.append,
    ...(o.extra ?? []),
  ];
}

/** Starts `argv` with stdin closed and stdout and stderr piped. */
export function spawn(argv: string[]): Deno.ChildProcess {
  return new Deno.Command(argv[0]!, {
    args: argv.slice(1),
    env: oursEnv(), // (QEMU ignores DENO_V8_FLAGS)
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}
