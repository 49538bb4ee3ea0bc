/**
 * The CLI's prebuilt bundle: `deno task bundle` (tools/bundle.ts) writes the VMM's module
 * graph as one JavaScript file (`dist/cli_main.js`) and the vCPU worker's as another
 * (`dist/vcpu_worker.js`), with a stamp naming every source file they were built from and a
 * digest of their bytes. `cli.ts` loads the bundle only when the stamp matches the sources
 * as they are now (one file instead of ~80 modules: in the portable machine, where V8 and
 * Deno's loader run emulated, the first guest instruction comes ~0.5 s sooner); an edited
 * source, a missing bundle or a checkout read over the network means the modules themselves.
 *
 * Reading and hashing every source costs ~0.4 s in the portable machine (its checkout is
 * read over 9p), so a match is remembered in the cache directory with each file's size,
 * modification time and inode; the next start only stats the files (as `make` would) and
 * reads them again when any of that changed.
 *
 * Modules in the bundle resolve `new URL(..., import.meta.url)` from `dist/`, one directory
 * below the root like every source directory, so such URLs are written from the root down
 * (`"../portable/x.ts"`, never `"./x.ts"`): they then name the same file either way.
 *
 * @module
 */

import { cacheDir } from "../portable/cache.ts";

/** Where the stamp is, from the checkout's root. */
export const STAMP_FILE = "dist/stamp.json";

/** What `dist/stamp.json` holds. */
export interface BundleStamp {
  /** The source files the bundle was built from, relative to the root, in digest order. */
  files: string[];
  /** SHA-256 (hex) of every file's path, length and bytes, in order. */
  sha256: string;
}

/** SHA-256 (hex) over each of `files` (relative to `root`): its path, its length, its bytes. */
export async function sourceDigest(root: URL, files: readonly string[]): Promise<string> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  let total = 0;
  for (const f of files) {
    if (f.startsWith("/") || f.split("/").includes("..")) {
      throw new Error(`Bundle stamp names ${f}: not a path inside the checkout`);
    }
    const bytes = Deno.readFileSync(new URL(f, root));
    const head = enc.encode(`${f}\0${bytes.byteLength}\0`);
    parts.push(head, bytes);
    total += head.byteLength + bytes.byteLength;
  }
  const all = new Uint8Array(total);
  let at = 0;
  for (const p of parts) {
    all.set(p, at);
    at += p.byteLength;
  }
  const d = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(d, (b) => b.toString(16).padStart(2, "0")).join("");
}

/** Parses a stamp file's text; throws when it is not one. */
export function parseStamp(text: string): BundleStamp {
  const s = JSON.parse(text) as Partial<BundleStamp>;
  if (
    !Array.isArray(s.files) || s.files.length === 0 ||
    !s.files.every((f) => typeof f === "string") ||
    typeof s.sha256 !== "string" || !/^[0-9a-f]{64}$/.test(s.sha256)
  ) {
    throw new Error("Bundle stamp: not a list of files and a SHA-256 digest");
  }
  return { files: s.files, sha256: s.sha256 };
}

/**
 * Whether the bundle under `root` (a `file:` URL ending in `/`) was built from the sources
 * there as they are now; false when the stamp or a file is missing, unreadable or different,
 * or `root` is not on the local disk.
 */
export async function bundleIsFresh(
  root: URL,
  opts: { verifiedDir?: string } = {},
): Promise<boolean> {
  if (root.protocol !== "file:") return false;
  let stamp: BundleStamp;
  try {
    stamp = parseStamp(Deno.readTextFileSync(new URL(STAMP_FILE, root)));
  } catch {
    return false;
  }
  const memo = `${opts.verifiedDir ?? cacheDir("bundle-verified")}/${pathKey(root)}.json`;
  let seen: string[] | undefined;
  try {
    seen = fileStats(root, stamp.files);
    const m = JSON.parse(Deno.readTextFileSync(memo)) as { sha256?: unknown; stats?: unknown };
    if (m.sha256 === stamp.sha256 && JSON.stringify(m.stats) === JSON.stringify(seen)) return true;
  } catch {
    // no memo yet, or a file is missing (then the digest below fails too)
  }
  try {
    if ((await sourceDigest(root, stamp.files)) !== stamp.sha256) return false;
  } catch {
    return false;
  }
  try {
    // Stats taken before the read: a file changed in between fails the next comparison.
    if (seen) {
      Deno.mkdirSync(memo.slice(0, memo.lastIndexOf("/")), { recursive: true });
      Deno.writeTextFileSync(memo, JSON.stringify({ sha256: stamp.sha256, stats: seen }));
    }
  } catch {
    // a read-only cache: hash again next time
  }
  return true;
}

/** Size, modification time and inode of each file, one string per file. */
function fileStats(root: URL, files: readonly string[]): string[] {
  const dir = decodeURIComponent(root.pathname);
  return files.map((f) => {
    const st = Deno.statSync(`${dir}${f}`);
    return `${st.size} ${st.mtime?.getTime() ?? 0} ${st.ino ?? 0}`;
  });
}

/**
 * A short name for the checkout at `root`, for its memo file: two 32-bit FNV-1a hashes of
 * its URL (no WebCrypto on this path: its first use in a process costs ~0.2 s emulated).
 */
function pathKey(root: URL): string {
  let a = 0x811c9dc5, b = 0x01000193;
  for (const c of new TextEncoder().encode(root.href)) {
    a = Math.imul(a ^ c, 0x01000193) >>> 0;
    b = Math.imul(b ^ c, 0x811c9dc5) >>> 0;
  }
  return a.toString(16).padStart(8, "0") + b.toString(16).padStart(8, "0");
}
