/**
 * The embedded demo: a real-mode guest that greets through the 8250 UART and exits. It
 * needs nothing but `/dev/kvm`, so it is the first thing to run on a new host.
 *
 * @module
 */

import { defaultConfig, type VmConfig } from "./config.ts";
import { DEMO_GUEST } from "./demo_guest.ts";
import { attachDevices } from "./devices_setup.ts";
import { Machine } from "./machine.ts";
import { SerialPort } from "./serial.ts";
import { Terminal } from "./terminal.ts";

/** The exit port the demo (and the test guests) use: a write of V ends with code V. */
export const EXIT_PORT = 0x501;
/** Options of {@link runDemo}. */
export interface DemoOptions {
  /** Receives the guest's serial output (default: stdout). */
  output?: (bytes: Uint8Array) => void;
  /** Give up after this many ms (default 10000). */
  timeoutMs?: number;
  /** Machine configuration (RAM size and devices; the demo guest uses one vCPU). */
  config?: VmConfig;
  /** Feed stdin to the serial console (raw mode on a terminal; Ctrl-A x quits). */
  interactive?: boolean;
}

/**
 * Boots the demo guest, forwards its serial output and resolves with its exit code.
 *
 * @example
 * ```ts ignore
 * import { runDemo } from "./demo.ts";
 * const code = await runDemo();
 * console.assert(code === 0);
 * ```
 */
export async function runDemo(opts: DemoOptions = {}): Promise<number> {
  const cfg = opts.config ?? defaultConfig();
  const output = cfg.console === "none"
    ? () => {}
    : opts.output ?? ((b: Uint8Array) => Deno.stdout.writeSync(b));
  const serial = new SerialPort({ output });
  await using m = await Machine.create({
    memMiB: cfg.memMiB,
    local: () => [{ kind: "exit", port: EXIT_PORT }, serial.spec],
  }).catch((e) => {
    serial.close();
    throw e;
  });
  serial.attach(m);
  attachDevices(m, cfg);
  const term = opts.interactive && cfg.console === "serial"
    ? new Terminal(serial, () => void m.requestStop({ kind: "quit" }))
    : undefined;
  m.onClose(() => term?.close());
  m.memory.write(0x1000, DEMO_GUEST);
  await m.setRealMode(0, { ip: 0x1000, sp: 0x7000 });
  m.run();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = setTimeout(
      () => reject(new Error("Demo guest did not finish in time")),
      opts.timeoutMs ?? 10_000,
    );
  });
  try {
    const r = await Promise.race([m.whenExit(), timeout]);
    serial.drain();
    if (r.kind === "quit") return 0;
    if (r.kind !== "exit") throw new Error(`Demo guest stopped: ${JSON.stringify(r)}`);
    return r.code;
  } finally {
    clearTimeout(timer);
  }
}
