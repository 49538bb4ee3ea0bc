/**
 * A prelude for child processes that records every use of the global timers: in Deno 2.9
 * those are Node's, and their first use loads ~20 modules of Node compatibility
 * (`timer.ts` says why the VMM avoids them). After the prelude, `globalThis.globalTimers`
 * lists the names used, in order. A test helper: `mod.ts` does not export it.
 *
 * @module
 */

/** The prelude (JavaScript, for `deno eval`). */
export const TIMER_SPY = `
  globalThis.globalTimers = [];
  for (const name of ["setTimeout", "setInterval", "clearTimeout", "clearInterval"]) {
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
