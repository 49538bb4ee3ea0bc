/** Builds the C baselines under `bench/c/` for the benchmarks that compare with them. @module */

/**
 * Compiles `bench/c/<name>.c` into `<dir>/<name>` with `cc -O2`; returns the executable's
 * path, or undefined when no C compiler is installed (or it fails), and the benchmark then
 * leaves its C figures out.
 */
export async function compileC(name: string, dir: string): Promise<string | undefined> {
  const exe = `${dir}/${name}`;
  const src = new URL(`./${name}.c`, import.meta.url).pathname;
  const cc = await new Deno.Command("cc", { args: ["-O2", "-o", exe, src], stderr: "piped" })
    .output().catch(() => undefined);
  return cc?.success ? exe : undefined;
}
