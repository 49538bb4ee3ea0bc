/**
 * Running a VM to the end from the CLI: build or restore it, attach the terminal to the
 * serial console, take a snapshot when asked (a signal, or a pattern in the console
 * output), and turn the guest's stop into a process exit code.
 *
 * @module
 */

import { sleep } from "@denovm/sys/timer";
import type { VmConfig } from "../vmm/config.ts";
import { Terminal } from "../host/terminal.ts";
import type { StopReason } from "../vstate/vcpu_worker.ts";
import { type BootTimings, type RealModeImage, Vmm } from "../vmm/vmm.ts";
import { createLogger, type Logger } from "../vmm/log.ts";

/** When to take the snapshot: a signal name, or a regular expression on console output. */
export type SnapshotTrigger = { signal: Deno.Signal } | { pattern: RegExp };

/** Parses `--snapshot-on`: "SIGHUP" (or SIGINT, SIGTERM, SIGQUIT) or "pattern:<regex>". */
export function parseTrigger(s: string): SnapshotTrigger {
  if (s.startsWith("pattern:")) {
    try {
      return { pattern: new RegExp(s.slice(8)) };
    } catch (e) {
      throw new TypeError(
        `--snapshot-on pattern is not a regular expression: ${(e as Error).message}`,
      );
    }
  }
  const signals = ["SIGHUP", "SIGINT", "SIGTERM", "SIGQUIT"];
  if (!signals.includes(s)) {
    throw new TypeError(
      `--snapshot-on expects one of ${signals.join(", ")} or pattern:<regex>, got ${
        JSON.stringify(s)
      }`,
    );
  }
  return { signal: s as Deno.Signal };
}

/** Options of {@link runVm}. */
export interface RunOptions {
  config: VmConfig;
  /** A flat real-mode image to boot instead of the demo guest. */
  image?: RealModeImage;
  /** Restore this snapshot instead of booting (disks/TAPs of `config` override the saved). */
  restore?: string;
  overrideDisks?: boolean;
  overrideTaps?: boolean;
  snapshot?: { dir: string; on: SnapshotTrigger };
  output?: (bytes: Uint8Array) => void;
  /** Feed stdin to the serial console (default true when the console is the serial port). */
  stdin?: boolean;
  log?: (message: string) => void;
  /** Lifecycle logs and notices (default: text at level warn, to stderr). */
  logger?: Logger;
  /** Print the boot phase times once the boot marker arrives (or at exit). */
  timings?: boolean;
  /** When the VMM's code finished loading (ms since process start), for the timings. */
  codeLoaded?: number;
  /** How guest vsock connects reach host ports (see `VmmOptions.vsockConnect`). */
  vsockConnect?: (port: number) => Promise<Deno.Conn | null>;
}

/** Prints the boot timings as one notice. */
export function reportTimings(
  logger: Logger,
  t: BootTimings & { codeLoaded?: number },
  exitMs?: number,
): void {
  const f = (v: number | undefined) => v === undefined ? undefined : Number(v.toFixed(1));
  logger.notice("timings (ms since process start)", {
    code_loaded: f(t.codeLoaded),
    ...(t.restoreStarted !== undefined
      ? {
        restore_started: f(t.restoreStarted),
        state_validated: f(t.stateValidated),
        vm_created: f(t.vmCreated),
        state_applied: f(t.stateApplied),
      }
      : { vm_created: f(t.vmCreated), kernel_loaded: f(t.kernelLoaded) }),
    first_instruction: f(t.firstInstruction),
    boot_marker: f(t.bootMarker),
    exit: f(exitMs),
  });
}

/** The process exit code for a guest stop. */
export function exitCode(r: StopReason): number {
  switch (r.kind) {
    case "exit":
      return r.code;
    case "reset":
    case "shutdown":
    case "quit":
    case "stopped":
      return 0;
    default:
      return 1;
  }
}

/**
 * Prints the boot timings once the guest writes the boot marker (a restore's once the
 * restored vCPUs run); the returned function,
 * called when the VM ends, prints them then if the marker never came.
 */
export function watchTimings(vm: Vmm, logger: Logger, codeLoaded?: number): () => void {
  const all = () => ({ ...vm.timings, ...(codeLoaded !== undefined ? { codeLoaded } : {}) });
  let shown = false;
  void (async () => {
    // The marker cell is written by a vCPU thread, with its time; look at it until it is
    // set. Looking more often would print the line sooner, not change what it says, and
    // cost the guest: every wake is ~0.1 ms of CPU here, ~3 ms in the portable machine.
    // A restored guest booted long ago: its timings are complete once it runs again.
    const done = () =>
      vm.bootMarkerMs !== undefined ||
      (vm.timings.restoreStarted !== undefined && vm.timings.firstInstruction !== undefined);
    const t0 = performance.now();
    while (!shown && vm.state !== "stopped" && !done()) {
      await sleep(performance.now() - t0 < 10_000 ? 50 : 200);
    }
    if (!shown && vm.state !== "stopped") {
      shown = true;
      reportTimings(logger, all());
    }
  })();
  return () => {
    if (shown) return;
    shown = true;
    reportTimings(logger, all(), performance.now());
  };
}

/** Runs a VM until it stops (or a snapshot is taken); resolves with the exit code. */
export async function runVm(o: RunOptions): Promise<number> {
  const out = o.output ?? ((b: Uint8Array) => Deno.stdout.writeSync(b));
  const logger = o.logger ?? createLogger();
  let seen = "";
  let fire: (() => void) | undefined;
  const pattern = o.snapshot && "pattern" in o.snapshot.on ? o.snapshot.on.pattern : undefined;
  const output = (b: Uint8Array) => {
    out(b);
    if (pattern) {
      seen = (seen + new TextDecoder().decode(b)).slice(-4096);
      if (pattern.test(seen)) fire?.();
    }
  };
  const vm = o.restore
    ? await Vmm.restore(o.restore, {
      output,
      ...(o.overrideDisks ? { disks: o.config.disks.map((d) => d.path) } : {}),
      ...(o.overrideTaps ? { taps: o.config.nets.map((n) => n.tap) } : {}),
      ...(o.log ? { log: o.log } : {}),
      ...(o.vsockConnect ? { vsockConnect: o.vsockConnect } : {}),
      logger,
    })
    : await Vmm.create(o.config, {
      output,
      ...(o.image ? { image: o.image } : {}),
      ...(o.log ? { log: o.log } : {}),
      ...(o.vsockConnect ? { vsockConnect: o.vsockConnect } : {}),
      logger,
    });
  const term = (o.stdin ?? true) && vm.config.console === "serial"
    ? new Terminal(vm.serial, () => void vm.machine.requestStop({ kind: "quit" }))
    : undefined;
  let removeSignal = () => {};
  try {
    const snapshotTaken = new Promise<void>((resolve) => {
      if (!o.snapshot) return;
      const dir = o.snapshot.dir;
      let done = false;
      fire = () => {
        if (done) return;
        done = true;
        (async () => {
          await vm.pause();
          await vm.snapshot(dir);
          logger.notice(`snapshot written to ${dir}`);
          resolve();
        })().catch((e) => {
          logger.error(`snapshot failed: ${e instanceof Error ? e.message : String(e)}`);
          resolve();
        });
      };
      if ("signal" in o.snapshot.on) {
        const sig = o.snapshot.on.signal;
        Deno.addSignalListener(sig, fire);
        removeSignal = () => Deno.removeSignalListener(sig, fire!);
      }
    });
    if (vm.state === "created") vm.start();
    const timings = o.timings ? watchTimings(vm, logger, o.codeLoaded) : undefined;
    const r = await Promise.race([
      vm.whenExit(),
      snapshotTaken.then(() => ({ kind: "stopped" as const, vcpu: -1 })),
    ]);
    timings?.();
    if (r.kind === "error") logger.error(`the guest stopped: ${r.message}`);
    return exitCode(r);
  } finally {
    removeSignal();
    term?.close();
    await vm.stop();
  }
}
