/**
 * V8 flags for the VMM's processes where one portable machine runs many of them (the
 * benchmarks, the Linux lane's VMM processes): `--no-lazy` compiles every function with its
 * script, so the code cache Deno writes right after compiling holds them all and later runs
 * skip the compile V8 otherwise does at each function's first call (in the portable machine
 * every instruction is emulated: a cold path costs 30-50x what it does on hardware). Measured
 * there, 8 boots each way alternating (recipe kernel, `quiet`, each way with its own warm
 * cache): process start to init median 7.83 s lazily, 6.86 s with it. V8's code cache records
 * the flags it was made with, so a run with other flags recompiles: a portable CLI run in a
 * machine of its own (whose cache does not outlive it, and whose host-made cache was made
 * without the flag) would compile everything eagerly every time, so those keep V8's
 * defaults, as do spares (they ran their code once already) and other commands. So does the
 * lane's warm boot (a second boot in one process, its modules loaded from source): with the
 * flag it took 5783 and 6398 ms in two of three peer runs against 3700-4400 before, though
 * even (3272-4073 against 3865-4315) with a warm cache each way; a lane runs it once, with a
 * cache made without the flag.
 *
 * @module
 */

/** The flags (a `DENO_V8_FLAGS` value). */
export const VMM_V8_FLAGS = "--no-lazy";

/**
 * `DENO_V8_FLAGS` for such a process: {@link VMM_V8_FLAGS}, then this process's own
 * `DENO_V8_FLAGS` (later flags win, so a caller's `--lazy` still applies).
 */
export function vmmV8FlagsEnv(): { DENO_V8_FLAGS: string } {
  const own = Deno.env.get("DENO_V8_FLAGS");
  return { DENO_V8_FLAGS: own ? `${VMM_V8_FLAGS},${own}` : VMM_V8_FLAGS };
}
