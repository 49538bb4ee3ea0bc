/**
 * Builds the test guests (`tests/guests/*.S`) from source with binutils, into a cache keyed
 * by the hash of the source (and of the shared includes), so a test run assembles each
 * guest once. Nothing built is committed. Tests and benchmarks both use it.
 *
 * @module
 */

import { cacheDir, contentHash } from "../portable/cache.ts";

/** Where the guests' sources are. */
const HERE = new URL("../tests/guests/", import.meta.url);
/** Where every real-mode guest is loaded and entered (0000:1000). */
export const GUEST_LOAD = 0x1000;

async function run(cmd: string, args: string[]): Promise<void> {
  let out: Deno.CommandOutput;
  try {
    out = await new Deno.Command(cmd, { args, stdout: "piped", stderr: "piped" }).output();
  } catch (e) {
    if (e instanceof Deno.errors.NotFound) {
      throw new Error(
        `Cannot build test guests: '${cmd}' is not installed (apt-get install binutils)`,
      );
    }
    throw e;
  }
  if (!out.success) {
    throw new Error(
      `Cannot build test guest: ${cmd} ${args.join(" ")} failed:\n${
        new TextDecoder().decode(out.stderr)
      }`,
    );
  }
}

/** Options of {@link buildGuest}. */
export interface BuildOptions {
  /** Link address (default 0x1000). */
  base?: number;
  /** 16-bit real mode (default) or 64-bit code (`--64`, ELF x86-64 link). */
  arch?: "i386" | "x86_64";
}

/** Assembles `tests/guests/<name>.S` into a flat binary and returns its bytes. */
export async function buildGuest(name: string, opts: BuildOptions = {}): Promise<Uint8Array> {
  const base = opts.base ?? GUEST_LOAD;
  const arch = opts.arch ?? "i386";
  const src = await Deno.readFile(new URL(`${name}.S`, HERE));
  const incs = [];
  for (
    const e of [...Deno.readDirSync(HERE)].filter((e) => e.name.endsWith(".inc")).sort((a, b) =>
      a.name < b.name ? -1 : 1
    )
  ) {
    incs.push(await Deno.readFile(new URL(e.name, HERE)));
  }
  const key = await contentHash([src, ...incs, `${base}:${arch}`], 12);
  const dir = cacheDir("guests");
  const bin = `${dir}/${name}-${key}.bin`;
  try {
    return await Deno.readFile(bin);
  } catch {
    // not cached yet
  }
  await Deno.mkdir(dir, { recursive: true });
  const tmp = await Deno.makeTempDir({ prefix: "denovm-guest-" });
  try {
    const obj = `${tmp}/${name}.o`;
    const srcPath = new URL(`${name}.S`, HERE).pathname;
    const incDir = new URL(".", HERE).pathname;
    await run("as", [arch === "i386" ? "--32" : "--64", "-I", incDir, "-o", obj, srcPath]);
    await run("ld", [
      "-m",
      arch === "i386" ? "elf_i386" : "elf_x86_64",
      `-Ttext=0x${base.toString(16)}`,
      "-e",
      "_start",
      "--oformat=binary",
      "-o",
      `${tmp}/${name}.bin`,
      obj,
    ]);
    const bytes = await Deno.readFile(`${tmp}/${name}.bin`);
    // Write under a temporary name and rename, so a parallel build never reads half a file.
    await Deno.writeFile(`${bin}.${Deno.pid}`, bytes);
    await Deno.rename(`${bin}.${Deno.pid}`, bin);
    return bytes;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}
