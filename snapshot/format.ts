/**
 * The snapshot state file: a small binary header (magic, format version, payload length,
 * SHA-256 of the payload) and a JSON payload. Byte arrays in the payload are base64
 * strings tagged `{"$b64": ...}` and 64-bit values are decimal strings tagged
 * `{"$big": ...}`, so nothing is lost in JSON. Reading checks the magic, the version, the
 * size cap and the checksum before parsing anything.
 *
 * Layout: "DNVMSNAP" (8 bytes) | version u32 LE | payload length u32 LE | sha256 (32) |
 * payload.
 *
 * @module
 */

/** The file magic. */
export const SNAPSHOT_MAGIC = "DNVMSNAP";
/**
 * The format version this code writes. 3 added each virtio device's interrupt line and the VM
 * generation ID to the machine section (an older VMM must not restore such a snapshot with
 * its own line numbering); version 2 files still read (their devices keep lines 5 up).
 */
export const SNAPSHOT_VERSION = 3;
/** The format versions this code reads. */
export const SNAPSHOT_READS: readonly number[] = [2, 3];
/** The largest state payload accepted (memory is in its own file). */
export const SNAPSHOT_MAX_STATE = 64 * 1024 * 1024;
const HEADER = 8 + 4 + 4 + 32;

/** A snapshot file that cannot be used, and why. */
export class SnapshotError extends Error {
  /** `message` says what is wrong with the snapshot; the name is "SnapshotError". */
  constructor(message: string) {
    super(message);
    this.name = "SnapshotError";
  }
}

function b64(bytes: Uint8Array): string {
  let s = "";
  for (let i = 0; i < bytes.length; i += 0x8000) {
    s += String.fromCharCode(...bytes.subarray(i, i + 0x8000));
  }
  return btoa(s);
}

// Native base64 decoding where the runtime has it (V8 ships it): the byte loop below runs
// cold on a restore's path and costs milliseconds there.
const fromBase64 = (Uint8Array as unknown as { fromBase64?: (s: string) => Uint8Array })
  .fromBase64;

function unb64(s: string): Uint8Array {
  if (fromBase64) return fromBase64(s);
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}

/** JSON text for a value that may hold Uint8Arrays and bigints. */
export function toJson(value: unknown): string {
  return JSON.stringify(value, (_k, v) => {
    if (typeof v === "bigint") return { $big: v.toString() };
    if (v instanceof Uint8Array) return { $b64: b64(v) };
    return v;
  });
}

const BIG = /^-?\d{1,40}$/;

/** A tag's value, or `v` itself when `v` is not exactly a tag. */
function untag(v: unknown): unknown {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i], y = untag(x);
      if (y !== x) v[i] = y;
    }
    return v;
  }
  const o = v as Record<string, unknown>;
  const keys = Object.keys(o);
  if (keys.length === 1) {
    if (typeof o.$big === "string" && BIG.test(o.$big)) return BigInt(o.$big);
    if (typeof o.$b64 === "string") return unb64(o.$b64);
  }
  for (const k of keys) {
    const x = o[k], y = untag(x);
    // A data property, as JSON.parse made it (a "__proto__" key must not set the prototype).
    if (y !== x) Object.defineProperty(o, k, { value: y, writable: true, enumerable: true });
  }
  return o;
}

/**
 * The inverse of {@link toJson}. Parses plainly, then replaces the tags in one walk (a
 * reviver calls back for every value and runs several times slower on a cold restore).
 */
export function fromJson(text: string): unknown {
  return untag(JSON.parse(text));
}

async function sha256(b: Uint8Array): Promise<Uint8Array> {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", b as Uint8Array<ArrayBuffer>));
}

/** Encodes a state object into the file format. */
export async function encodeState(state: unknown): Promise<Uint8Array> {
  const payload = new TextEncoder().encode(toJson(state));
  if (payload.byteLength > SNAPSHOT_MAX_STATE) {
    throw new SnapshotError(
      `Cannot write snapshot: state is ${payload.byteLength} bytes, over the cap`,
    );
  }
  const out = new Uint8Array(HEADER + payload.byteLength);
  out.set(new TextEncoder().encode(SNAPSHOT_MAGIC), 0);
  const v = new DataView(out.buffer);
  v.setUint32(8, SNAPSHOT_VERSION, true);
  v.setUint32(12, payload.byteLength, true);
  out.set(await sha256(payload), 16);
  out.set(payload, HEADER);
  return out;
}

/** Decodes and verifies a state file's bytes. */
export async function decodeState(bytes: Uint8Array): Promise<unknown> {
  if (bytes.byteLength < HEADER) {
    throw new SnapshotError(
      `Cannot read snapshot: the state file is truncated (${bytes.byteLength} bytes)`,
    );
  }
  if (new TextDecoder().decode(bytes.subarray(0, 8)) !== SNAPSHOT_MAGIC) {
    throw new SnapshotError(
      "Cannot read snapshot: the state file has the wrong magic (not a denovm snapshot)",
    );
  }
  const v = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  const version = v.getUint32(8, true);
  if (!SNAPSHOT_READS.includes(version)) {
    throw new SnapshotError(
      `Cannot read snapshot: format version ${version}, this VMM reads ${
        SNAPSHOT_READS.join(" and ")
      }`,
    );
  }
  const len = v.getUint32(12, true);
  if (len > SNAPSHOT_MAX_STATE) {
    throw new SnapshotError(`Cannot read snapshot: state of ${len} bytes is over the cap`);
  }
  if (HEADER + len !== bytes.byteLength) {
    throw new SnapshotError(
      `Cannot read snapshot: the state file is ${bytes.byteLength} bytes, its header says ${
        HEADER + len
      } (truncated?)`,
    );
  }
  const payload = bytes.subarray(HEADER);
  const want = bytes.subarray(16, 48), got = await sha256(payload);
  if (!want.every((b, i) => b === got[i])) {
    throw new SnapshotError("Cannot read snapshot: checksum mismatch (corrupt)");
  }
  try {
    return fromJson(new TextDecoder().decode(payload));
  } catch (e) {
    throw new SnapshotError(
      `Cannot read snapshot: bad payload: ${e instanceof Error ? e.message : String(e)}`,
    );
  }
}

/** Writes `bytes` to `path` through a temporary name and a rename (never half a file). */
export async function writeAtomic(path: string, bytes: Uint8Array): Promise<void> {
  const tmp = `${path}.tmp-${Deno.pid}`;
  const f = await Deno.open(tmp, { write: true, create: true, truncate: true, mode: 0o600 });
  try {
    let o = 0;
    while (o < bytes.byteLength) o += await f.write(bytes.subarray(o));
    await f.syncData();
  } finally {
    f.close();
  }
  await Deno.rename(tmp, path);
}
