/**
 * A prelude for child processes that records every use of the global timers: in Deno 2.9
 * those are Node's, and their first use loads ~20 modules of Node compatibility
 * (`timer.ts` says why the VMM avoids them). After the prelude, `globalThis.globalTimers`
 * lists the names used, in order; {@link evalChild} runs such a process. Test helpers:
 * `mod.ts` does not export them.
 *
 * @module
 */

import { after } from "./timer.ts";

/** The prelude (JavaScript, for `deno eval`). */
export const TIMER_SPY = `
  globalThis.globalTimers = [];
  for (const name of [
    "setTimeout", "setInterval", "setImmediate",
    "clearTimeout", "clearInterval", "clearImmediate",
  ]) {
    const d = Object.getOwnPropertyDescriptor(globalThis, name);
    Object.defineProperty(globalThis, name, {
      configurable: true,
      get() {
        globalThis.globalTimers.push(name);
        return d.get ? d.get.call(globalThis) : d.value;
      },
      set(v) {
        Object.defineProperty(globalThis, name, { value: v, writable: true, configurable: true });
      },
    });
  }`;

/** How a child process ended. */
export interface ChildRun {
  code: number;
  stdout: string;
  stderr: string;
  /** ms from spawn to exit. */
  ms: number;
}

/**
 * Runs `code` (JavaScript) with `deno eval` in a fresh process, killed (SIGKILL) if it is
 * still running after `limitMs`: a process that a timer keeps alive by mistake ends there.
 */
export async function evalChild(code: string, limitMs: number): Promise<ChildRun> {
  const t0 = performance.now();
  const p = new Deno.Command(Deno.execPath(), {
    args: ["eval", "--ext=js", code],
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  const guard = after(limitMs, () => p.kill("SIGKILL"));
  const out = await p.output();
  guard.cancel();
  const dec = new TextDecoder();
  return {
    code: out.code,
    stdout: dec.decode(out.stdout),
    stderr: dec.decode(out.stderr),
    ms: performance.now() - t0,
  };
}
