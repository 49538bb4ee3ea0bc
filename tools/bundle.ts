/**
 * `deno task bundle`: writes the CLI's bundle (`dist/cli_main.js`, `dist/vcpu_worker.js`)
 * and its stamp (`dist/stamp.json`, see frontend/bundle_stamp.ts). Run it after changing
 * any module the CLI loads; the fast test tier fails while the stamp is stale (and the CLI
 * meanwhile loads the modules themselves, never a stale bundle).
 *
 *   deno task bundle
 *
 * @module
 */

import { type BundleStamp, sourceDigest, STAMP_FILE } from "../frontend/bundle_stamp.ts";

const ROOT = new URL("../", import.meta.url);
/** Entry module and the bundle written for it. */
export const ENTRIES: readonly [string, string][] = [
  ["frontend/cli_main.ts", "dist/cli_main.js"],
  ["vstate/vcpu_worker.ts", "dist/vcpu_worker.js"],
];
/** Not modules, but they decide what the modules resolve to. */
const CONFIG_FILES = ["deno.json", "deno.lock", "sys/deno.json", "kvm/deno.json"];

async function deno(args: string[]): Promise<string> {
  const out = await new Deno.Command(Deno.execPath(), {
    args,
    cwd: ROOT,
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(`deno ${args.join(" ")} failed:\n${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** The local source files in the module graphs of the entries, relative to the root, sorted. */
export async function bundleSources(): Promise<string[]> {
  const files = new Set<string>(CONFIG_FILES);
  const root = ROOT.href;
  for (const [entry] of ENTRIES) {
    const info = JSON.parse(await deno(["info", "--json", entry])) as {
      modules: { specifier: string }[];
    };
    for (const m of info.modules) {
      if (m.specifier.startsWith(root)) files.add(m.specifier.slice(root.length));
    }
  }
  return [...files].sort();
}

if (import.meta.main) {
  await Deno.mkdir(new URL("dist/", ROOT), { recursive: true });
  for (const [entry, out] of ENTRIES) {
    await deno(["bundle", "--quiet", "--platform", "deno", "-o", out, entry]);
  }
  const files = [...await bundleSources(), ...ENTRIES.map(([, out]) => out)].sort();
  const stamp: BundleStamp = { files, sha256: await sourceDigest(ROOT, files) };
  await Deno.writeTextFile(new URL(STAMP_FILE, ROOT), JSON.stringify(stamp, null, 2) + "\n");
  const n = files.length - ENTRIES.length;
  console.log(`bundle: ${ENTRIES.map(([, o]) => o).join(", ")} from ${n} files`);
}
