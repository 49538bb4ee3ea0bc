/**
 * The embedded demo: a real-mode guest that greets through the 8250 UART and exits. It
 * needs nothing but `/dev/kvm`, so it is the first thing to run on a new host.
 *
 * @module
 */

import { after, type Timer } from "@denovm/sys/timer";
import { defaultConfig, type VmConfig } from "../vmm/config.ts";
import { runVm } from "./run.ts";

export { EXIT_PORT } from "../vmm/vmm.ts";
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
  let timer: Timer | undefined;
  const timeout = new Promise<never>((_, reject) => {
    timer = after(
      opts.timeoutMs ?? 10_000,
      () => reject(new Error("Demo guest did not finish in time")),
    );
  });
  try {
    return await Promise.race([
      runVm({
        config: cfg,
        stdin: opts.interactive ?? false,
        ...(opts.output ? { output: opts.output } : {}),
      }),
      timeout,
    ]);
  } finally {
    timer?.cancel();
  }
}
