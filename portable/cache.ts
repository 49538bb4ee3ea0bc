/**
 * Where denovm caches what it fetches or builds outside the repo (`$XDG_CACHE_HOME/denovm`,
 * else `~/.cache/denovm`), and the content hash that keys each entry.
 *
 * @module
 */

/** `<cache root>/denovm/<sub>`. */
export function cacheDir(sub: string): string {
  const base = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`;
  return `${base}/denovm/${sub}`;
}

/** The first `bytes` bytes of the SHA-256 of `parts` (strings as UTF-8), in hex. */
export async function contentHash(parts: (string | Uint8Array)[], bytes = 8): Promise<string> {
  const enc = parts.map((p) => typeof p === "string" ? new TextEncoder().encode(p) : p);
  const all = new Uint8Array(enc.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of enc) {
    all.set(p, o);
    o += p.byteLength;
  }
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(h.subarray(0, bytes), (b) => b.toString(16).padStart(2, "0")).join("");
}
