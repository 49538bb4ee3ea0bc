/**
 * The portable machine: QEMU in software mode (`-accel tcg -cpu max`, which gives the CPU
 * SVM and nested paging) boots Debian's kernel with KVM inside, and runs one command there
 * with this host's files visible. It is how denovm runs where the host has no usable KVM:
 * the CLI (`--portable`), the test tier (`deno task test`), the Linux lane and the
 * benchmarks all use this one implementation.
 *
 * Inside, the host's `/` is mounted read-only over 9p under a tmpfs overlay (writes the
 * command makes land in memory and vanish), except the directories named in `writable`,
 * which are 9p shares of the host directories (writes land on the host). The command runs
 * in the same directory as here, with ttyS0 as its stdin/stdout and ttyS1 as its stderr;
 * QEMU connects those to this process's stdio, or to pipes.
 *
 * @module
 */

import { after, type Timer } from "@denovm/sys/timer";
import { ensurePortableAssets, type PortableAssets } from "./assets.ts";
import { SIGNAL_NUMBERS } from "./job_frames.ts";

/** Options of {@link runPortable}. */
export interface PortableOptions {
  /** The command (a shell command line, run with `/bin/sh -c` semantics). */
  command: string;
  /** Where it runs (default: the current directory; the same path exists inside). */
  cwd?: string;
  /** Extra environment variables for the command. */
  env?: Record<string, string>;
  /** Host directories the command may write (each becomes a read-write 9p share). */
  writable?: string[];
  /**
   * `inherit`: the command's stdout/stderr are this process's, and where stdin is a
   * terminal it is the command's terminal too (interactive, Ctrl-C reaches the command).
   * `piped`: stdout and stderr are collected and returned.
   */
  stdio?: "inherit" | "piped";
  /** Called with each chunk of stdout when piped (for live progress). */
  onStdout?: (chunk: Uint8Array) => void;
  /** Called with each chunk of stderr when piped. */
  onStderr?: (chunk: Uint8Array) => void;
  /** L1 memory in MiB (default 4096). */
  memMiB?: number;
  /** CPUs of the portable machine (default {@link PORTABLE_CPUS}). */
  cpus?: number;
  /** Give up after this many seconds (default: no limit). */
  timeoutS?: number;
  /**
   * A network for the machine (QEMU user mode: it is 10.0.2.15, this host's loopback is
   * 10.0.2.2 from inside), with host TCP ports forwarded to ports inside. The socket
   * bridge (`bridge.ts`) uses it.
   */
  net?: { forwards: { host: number; guest: number }[] };
}

/** What came back. */
export interface PortableResult {
  /** The command's exit status (124 on timeout, 125 when L1 could not run it). */
  status: number;
  /** Piped stdout (empty with `inherit`). */
  stdout: Uint8Array;
  /** Piped stderr (empty with `inherit`). */
  stderr: Uint8Array;
  /** L1's own log (kernel messages at warning level and the init's lines). */
  log: string;
  /** Wall time from QEMU's start to its end, in seconds. */
  seconds: number;
}

/** A short description of the portable machine, for "where did this run" lines. */
export const PORTABLE_HOST = "portable (tcg+nested svm)";

/** Quotes `s` for a POSIX shell. */
export function shellQuote(s: string): string {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}

async function concat(stream: ReadableStream<Uint8Array>, each?: (b: Uint8Array) => void) {
  const parts: Uint8Array[] = [];
  for await (const c of stream) {
    parts.push(c);
    each?.(c);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/**
 * CPUs of the portable machine. One, measured: with two, KVM inside lost cross-CPU events
 * under QEMU's emulation, and guests broke in ways no guest on real hardware does. Under
 * multi-threaded TCG a two-vCPU test guest got the L1 kernel's registers (RIP
 * 0xffffffffc0...) or garbage in 2-3 of 8 runs; under single-threaded TCG a two-vCPU Linux
 * guest hit `kernel BUG at kernel/time/hrtimer.c:1854` or RCU stalls in 2 of 5 boots, and a
 * one-vCPU Linux guest deadlocked with interrupts off in `queued_spin_lock_slowpath` in 3
 * of 4 snapshot runs. With one CPU: 6 of 6 two-vCPU boots and 2 of 2 snapshot runs clean.
 * Single-threaded TCG costs nothing more with one CPU. DENOVM_PORTABLE_CPUS,
 * DENOVM_PORTABLE_TCG_THREAD and DENOVM_PORTABLE_KVM_AMD (kvm_amd module parameters, e.g.
 * "vgif=0") override these for experiments.
 */
export const PORTABLE_CPUS = 1;
/** TCG threading of the portable machine (see {@link PORTABLE_CPUS}). */
export const TCG_THREAD = "single";
/** kvm_amd module parameters inside the portable machine: the module's defaults. */
export const KVM_AMD_PARAMS = "";

/** The QEMU command line for a portable machine (exported for tests). */
export function qemuArgs(a: PortableAssets, ctl: string, o: {
  memMiB: number;
  cpus: number;
  shares: string[];
  net?: { forwards: { host: number; guest: number }[] };
  /** A resident machine: no stdio, and the host's `/` also read-write (tag `hostrw`). */
  resident?: boolean;
}): string[] {
  const args = [
    "-accel",
    `tcg,thread=${Deno.env.get("DENOVM_PORTABLE_TCG_THREAD") ?? TCG_THREAD}`,
    "-cpu",
    "max",
    "-smp",
    String(o.cpus),
    "-m",
    String(o.memMiB),
    "-kernel",
    a.kernel,
    "-initrd",
    a.initrd,
    "-append",
    `console=ttyS2 loglevel=4 panic=-1 quiet portable.kvm_amd=${
      (Deno.env.get("DENOVM_PORTABLE_KVM_AMD") ?? KVM_AMD_PARAMS).replaceAll(" ", ",")
    }`,
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-no-reboot",
    "-chardev",
    o.resident ? "null,id=s0" : "stdio,id=s0,signal=off",
    "-serial",
    "chardev:s0",
    "-chardev",
    o.resident ? "null,id=s1" : "file,id=s1,path=/proc/self/fd/2,append=on",
    "-serial",
    "chardev:s1",
    "-chardev",
    `file,id=s2,path=${ctl}/log`,
    "-serial",
    "chardev:s2",
    "-virtfs",
    "local,path=/,mount_tag=hostroot,readonly=on,security_model=none,multidevs=remap",
    "-virtfs",
    `local,path=${ctl},mount_tag=ctl,security_model=none`,
  ];
  if (o.resident) {
    args.push(
      "-virtfs",
      "local,path=/,mount_tag=hostrw,security_model=none,multidevs=remap",
    );
  }
  o.shares.forEach((dir, i) => {
    args.push("-virtfs", `local,path=${dir},mount_tag=rw${i},security_model=none`);
  });
  if (o.net) {
    const fwd = o.net.forwards.map((f) => `,hostfwd=tcp:127.0.0.1:${f.host}-:${f.guest}`).join("");
    args.push("-netdev", `user,id=n0${fwd}`, "-device", "virtio-net-pci,netdev=n0");
  }
  return args;
}

/** Signals that stop a running portable machine (and then this process) rather than orphan it. */
const FORWARDED_SIGNALS: Deno.Signal[] = ["SIGINT", "SIGTERM", "SIGHUP"];

/**
 * The environment a command gets inside: this process's basics and its `DENO_*` variables
 * (so Deno inside uses the same module cache, `DENO_DIR`, and certificates), then `extra`.
 */
export function innerEnv(extra: Record<string, string> = {}): Record<string, string> {
  const deno = Object.entries(Deno.env.toObject()).filter(([k]) => k.startsWith("DENO_"));
  return {
    ...Object.fromEntries(deno),
    HOME: Deno.env.get("HOME") ?? "/root",
    PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
    DENOVM_PORTABLE_INSIDE: "1",
    TERM: Deno.env.get("TERM") ?? "dumb",
    ...(Deno.env.get("NO_COLOR") ? { NO_COLOR: "1" } : {}),
    ...(Deno.env.get("CI") ? { CI: Deno.env.get("CI")! } : {}),
    ...extra,
  };
}

/**
 * Writes the control share's files `init.sh` reads: the working directory, the command
 * (`run.sh`), the read-write shares and the environment (exported for `resident.ts`).
 */
export async function writeControl(ctl: string, o: {
  cwd: string;
  command: string;
  shares: string[];
  env: Record<string, string>;
}): Promise<void> {
  await Deno.writeTextFile(`${ctl}/cwd`, o.cwd);
  await Deno.writeTextFile(`${ctl}/run.sh`, o.command + "\n");
  await Deno.writeTextFile(`${ctl}/shares`, o.shares.map((d, i) => `rw${i} ${d}\n`).join(""));
  await Deno.writeTextFile(
    `${ctl}/env`,
    Object.entries(innerEnv(o.env)).map(([k, v]) => `export ${k}=${shellQuote(v)}\n`).join(""),
  );
}

/**
 * Boots a portable machine, runs `o.command` in it, and returns its exit status (and the
 * piped output). The first call on a machine installs QEMU and fetches Debian's kernel.
 */
export async function runPortable(o: PortableOptions): Promise<PortableResult> {
  const assets = await ensurePortableAssets();
  const cwd = o.cwd ?? Deno.cwd();
  const ctl = await Deno.makeTempDir({ prefix: "denovm-portable-" });
  const interactive = (o.stdio ?? "piped") === "inherit" && Deno.stdin.isTerminal();
  try {
    const shares: string[] = [];
    for (const w of o.writable ?? []) {
      const real = await Deno.realPath(w);
      if (!shares.includes(real)) shares.push(real);
    }
    await writeControl(ctl, { cwd, command: o.command, shares, env: o.env ?? {} });
    if (interactive) {
      const { columns, rows } = Deno.consoleSize();
      await Deno.writeTextFile(`${ctl}/tty`, `rows ${rows} cols ${columns}`);
      await Deno.writeTextFile(`${ctl}/stdin`, "");
    }
    if (o.net) await Deno.writeTextFile(`${ctl}/net`, "10.0.2.15/24 10.0.2.2\n");
    const args = qemuArgs(assets, ctl, {
      memMiB: o.memMiB ?? 4096,
      cpus: o.cpus ?? Number(Deno.env.get("DENOVM_PORTABLE_CPUS") ?? PORTABLE_CPUS),
      shares,
      ...(o.net ? { net: o.net } : {}),
    });
    const piped = (o.stdio ?? "piped") === "piped";
    const t0 = performance.now();
    const child = new Deno.Command(assets.qemu, {
      args,
      stdin: interactive ? "inherit" : "null",
      stdout: piped ? "piped" : "inherit",
      stderr: piped ? "piped" : "inherit",
    }).spawn();
    const out = piped ? concat(child.stdout, o.onStdout) : Promise.resolve(new Uint8Array());
    const err = piped ? concat(child.stderr, o.onStderr) : Promise.resolve(new Uint8Array());
    let timer: Timer | undefined;
    let timedOut = false;
    if (o.timeoutS !== undefined) {
      timer = after(o.timeoutS * 1000, () => {
        timedOut = true;
        try {
          child.kill("SIGKILL");
        } catch {
          // already gone
        }
      });
    }
    // A signal to this process (the CLI stopped with SIGTERM, a Ctrl-C) stops the machine
    // too: without this QEMU would outlive its parent and go on running the command.
    let signalled: Deno.Signal | undefined;
    const stopOn = (sig: Deno.Signal) => () => {
      signalled ??= sig;
      try {
        child.kill("SIGTERM");
      } catch {
        // already gone
      }
    };
    const listeners = FORWARDED_SIGNALS.map((sig) => [sig, stopOn(sig)] as const);
    for (const [sig, f] of listeners) Deno.addSignalListener(sig, f);
    let qemuStatus: Deno.CommandStatus;
    try {
      qemuStatus = await child.status;
    } finally {
      for (const [sig, f] of listeners) Deno.removeSignalListener(sig, f);
    }
    timer?.cancel();
    const [stdout, stderr] = await Promise.all([out, err]);
    const seconds = (performance.now() - t0) / 1000;
    const log = await Deno.readTextFile(`${ctl}/log`).catch(() => "");
    const statusText = (await Deno.readTextFile(`${ctl}/status`).catch(() => "")).trim();
    let status: number;
    if (timedOut) status = 124;
    else if (signalled) status = 128 + (SIGNAL_NUMBERS[signalled] ?? 0);
    else if (/^\d+$/.test(statusText)) status = Number(statusText);
    else status = 125;
    const note = timedOut
      ? `portable: timed out after ${o.timeoutS} s\n`
      : signalled
      ? `portable: stopped by ${signalled}\n`
      : status === 125 && statusText === ""
      ? `portable: the machine ended (qemu exit ${qemuStatus.code}) without running the command\n`
      : "";
    return { status, stdout, stderr, log: log + note, seconds };
  } finally {
    await Deno.remove(ctl, { recursive: true }).catch(() => {});
  }
}
