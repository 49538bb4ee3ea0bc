/**
 * The CLI's prebuilt bundle: `deno task bundle` (tools/bundle.ts) writes the VMM's module
 * graph as one JavaScript file (`dist/cli_main.js`) and the vCPU worker's as another
 * (`dist/vcpu_worker.js`), with a stamp naming every source file they were built from and a
 * digest of their bytes. `cli.ts` loads the bundle only when the stamp matches the sources
 * as they are now (one file instead of ~80 modules: in the portable machine, where V8 and
 * Deno's loader run emulated, the first guest instruction comes ~0.5 s sooner); an edited
 * source, a missing bundle or a checkout read over the network means the modules themselves.
 *
 * Reading and hashing every file costs ~0.4 s in the portable machine (its checkout is read
 * over 9p), so the answer is remembered in the cache directory with each file's size, times,
 * inode and device; the next start only stats the files (as `make` would) and reads them
 * again when any of that changed.
 *
 * Modules in the bundle resolve `new URL(..., import.meta.url)` from `dist/`, one directory
 * below the root like every source directory, so such URLs are written from the root down
 * (`"../portable/x.ts"`, never `"./x.ts"`): they then name the same file either way.
 *
 * @module
 */

import { cacheDir, contentHash } from "../portable/cache.ts";

/** Where the stamp is, from the checkout's root. */
export const STAMP_FILE = "dist/stamp.json";

/** What `dist/stamp.json` holds. */
export interface BundleStamp {
  /**
   * The source files the bundle was built from and the bundle's own files, relative to the
   * root, in digest order.
   */
  files: string[];
  /** SHA-256 (hex) of every file's path, length and bytes, in order. */
  sha256: string;
}

/** SHA-256 (hex) over each of `files` (relative to `root`): its path, its length, its bytes. */
export async function sourceDigest(root: URL, files: readonly string[]): Promise<string> {
  const parts: (string | Uint8Array)[] = [];
  for (const f of files) {
    if (f.startsWith("/") || f.split("/").includes("..")) {
      throw new Error(`Bundle stamp names ${f}: not a path inside the checkout`);
    }
    const bytes = Deno.readFileSync(new URL(f, root));
    parts.push(`${f}\0${bytes.byteLength}\0`, bytes);
  }
  return await contentHash(parts, 32);
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
 * there as they are now (the stamp lists the bundle's own files too); false when the stamp
 * or a file is missing, unreadable or different, or `root` is not on the local disk. The
 * answer is remembered in `verifiedDir` (default `~/.cache/denovm/bundle-verified`) with
 * every file's size, times, inode and device, and given again while none of them changed.
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
  let seen: FileStats | undefined;
  try {
    seen = fileStats(root, stamp.files);
  } catch {
    return false; // a file is missing
  }
  try {
    const m = JSON.parse(Deno.readTextFileSync(memo)) as Partial<Memo>;
    if (
      m.sha256 === stamp.sha256 && typeof m.fresh === "boolean" &&
      JSON.stringify(m.stats) === JSON.stringify(seen.stats)
    ) {
      return m.fresh;
    }
  } catch {
    // no memo yet
  }
  let fresh: boolean;
  try {
    fresh = (await sourceDigest(root, stamp.files)) === stamp.sha256;
  } catch {
    return false;
  }
  // Stats taken before the read: a file changed since fails the next comparison. A file
  // changed in the last seconds could change again within its time's resolution: not kept.
  if (!seen.recent) {
    try {
      Deno.mkdirSync(memo.slice(0, memo.lastIndexOf("/")), { recursive: true });
      const m: Memo = { sha256: stamp.sha256, stats: seen.stats, fresh };
      Deno.writeTextFileSync(memo, JSON.stringify(m));
    } catch {
      // a read-only cache: hash again next time
    }
  }
  return fresh;
}

/** What the memo file holds: the stamp's digest, the files' stats, and the answer. */
interface Memo {
  sha256: string;
  stats: string[];
  fresh: boolean;
}

/** How near now a file's change may be for its stats to be trusted later (ms). */
const RACY_MS = 2000;

interface FileStats {
  /** Size, modification and change times, inode and device of each file. */
  stats: string[];
  /** Whether a file changed within {@link RACY_MS} of now. */
  recent: boolean;
}

function fileStats(root: URL, files: readonly string[]): FileStats {
  const dir = decodeURIComponent(root.pathname);
  const now = Date.now();
  let recent = false;
  const stats = files.map((f) => {
    const st = Deno.statSync(`${dir}${f}`);
    const mtime = st.mtime?.getTime() ?? 0, ctime = st.ctime?.getTime() ?? 0;
    if (Math.abs(now - mtime) < RACY_MS || Math.abs(now - ctime) < RACY_MS) recent = true;
    return `${st.size} ${mtime} ${ctime} ${st.ino ?? 0} ${st.dev}`;
  });
  return { stats, recent };
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
