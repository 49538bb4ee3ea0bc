/**
 * A gzip'd cpio archive in the "newc" format, as the Linux kernel unpacks an initramfs
 * (Documentation/driver-api/early-userspace/buffer-format.rst): a 110-byte ASCII header a
 * file, the name, padding to 4 bytes, the data, padding to 4 bytes, and a `TRAILER!!!`
 * entry at the end.
 *
 * @module
 */

/** One entry: a regular file (with `data`), a directory, or a symbolic link. */
export interface CpioEntry {
  /** Path inside the archive, without a leading slash. */
  path: string;
  /** File mode bits (permissions); the type comes from the kind of entry. */
  mode: number;
  /** File contents; absent for a directory. */
  data?: Uint8Array;
  /** Link target: makes the entry a symbolic link. */
  symlink?: string;
}

const S_IFDIR = 0o040000, S_IFREG = 0o100000, S_IFLNK = 0o120000;

function hex8(n: number): string {
  return n.toString(16).padStart(8, "0");
}

/** The uncompressed newc archive of `entries` (directories must come before their files). */
export function cpioNewc(entries: CpioEntry[]): Uint8Array<ArrayBuffer> {
  const enc = new TextEncoder();
  const parts: Uint8Array[] = [];
  let size = 0;
  const push = (b: Uint8Array) => {
    parts.push(b);
    size += b.byteLength;
    const pad = (4 - (size % 4)) % 4;
    if (pad) {
      parts.push(new Uint8Array(pad));
      size += pad;
    }
  };
  const all = [...entries, { path: "TRAILER!!!", mode: 0, data: new Uint8Array(0) }];
  all.forEach((e, i) => {
    const body = e.symlink !== undefined ? enc.encode(e.symlink) : e.data ?? new Uint8Array(0);
    const type = e.symlink !== undefined ? S_IFLNK : e.data !== undefined ? S_IFREG : S_IFDIR;
    const mode = e.path === "TRAILER!!!" ? 0 : type | (e.mode & 0o7777);
    const name = enc.encode(e.path + "\0");
    const header = "070701" + hex8(i + 1) + hex8(mode) + hex8(0) + hex8(0) +
      hex8(type === S_IFDIR ? 2 : 1) + hex8(0) + hex8(body.byteLength) + hex8(0) + hex8(0) +
      hex8(0) + hex8(0) + hex8(name.byteLength) + hex8(0);
    const head = new Uint8Array(110 + name.byteLength);
    head.set(enc.encode(header));
    head.set(name, 110);
    push(head);
    if (body.byteLength) push(body);
  });
  const out = new Uint8Array(size);
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/** `cpioNewc(entries)` compressed with gzip (what `-initrd` and the kernel take). */
export async function cpioGzip(entries: CpioEntry[]): Promise<Uint8Array> {
  const stream = new Blob([cpioNewc(entries)]).stream().pipeThrough(
    new CompressionStream("gzip"),
  );
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
