/**
 * The wire between this host and the resident portable machine (`resident.ts`, `spare.ts`):
 * one TCP connection per job, carrying frames of `u8 type, le32 length, payload`.
 *
 * Host to machine: `J` the job (JSON, first and once), `I` stdin bytes, `E` end of stdin,
 * `S` a signal name. Machine to host: `A` accepted (which spare), `C` stdin credit (bytes
 * the host may send beyond what it sent, decimal), `R` refused (a reason), `O` stdout
 * bytes, `W` stderr bytes, `Q` the exit status (decimal). Also the code fingerprint both
 * sides compare, so a machine never runs code older than the checkout's.
 *
 * @module
 */

/** Frame types. */
export const F = {
  job: 0x4a, // J
  stdin: 0x49, // I
  stdinEnd: 0x45, // E
  signal: 0x53, // S
  credit: 0x43, // C
  accepted: 0x41, // A
  refused: 0x52, // R
  stdout: 0x4f, // O
  stderr: 0x57, // W
  status: 0x51, // Q
} as const;

/** The signals a run forwards (a `S` frame names one), with their numbers (exit 128 + n). */
export const SIGNAL_NUMBERS: Readonly<Record<string, number>> = {
  SIGHUP: 1,
  SIGINT: 2,
  SIGQUIT: 3,
  SIGTERM: 15,
};

/** The largest payload either side accepts (a job, or a chunk of output). */
export const MAX_FRAME = 1 << 20;

/** A job: what the host asks the machine to run, and how. */
export interface Job {
  /** The machine's token (proves the sender can read the machine's control directory). */
  token: string;
  /** {@link codeFingerprint} of the host's checkout. */
  fingerprint: string;
  /** Arguments for `cli.ts` (already with `--portable off --quiet`). */
  args: string[];
  /** The directory the job runs in. */
  cwd: string;
  /** Environment variables to set. */
  env: Record<string, string>;
  /** Host directories the job may write (bound read-write over the machine's view). */
  writable: string[];
}

/** Encodes one frame. */
export function frame(type: number, payload: Uint8Array | string = new Uint8Array()): Uint8Array {
  const p = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const out = new Uint8Array(5 + p.byteLength);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, p.byteLength, true);
  out.set(p, 5);
  return out;
}

/** A bad frame on the wire (too long, or cut short). */
export class FrameError extends Error {}

/** Reads frames from a byte stream; `next()` resolves undefined at a clean end of stream. */
export class FrameReader {
  // Bytes read and not yet taken are buf[start, end); the buffer grows by doubling.
  #buf = new Uint8Array(65536);
  #start = 0;
  #end = 0;
  #done = false;

  /** Reads from `read` (a `Deno.Conn`'s `read`, or any function like it). */
  constructor(readonly read: (b: Uint8Array) => Promise<number | null>) {}

  async #fill(n: number): Promise<boolean> {
    while (this.#end - this.#start < n && !this.#done) {
      if (this.#buf.byteLength - this.#start < n || this.#end === this.#buf.byteLength) {
        // Move what is kept to the front, into a larger buffer when it would not fit.
        const kept = this.#end - this.#start;
        let size = this.#buf.byteLength;
        while (size < n || size - kept < 4096) size *= 2;
        const next = size === this.#buf.byteLength ? this.#buf : new Uint8Array(size);
        next.set(this.#buf.subarray(this.#start, this.#end), 0);
        this.#buf = next;
        this.#start = 0;
        this.#end = kept;
      }
      const got = await this.read(this.#buf.subarray(this.#end)).catch(() => null);
      if (got === null || got === 0) {
        this.#done = true;
        break;
      }
      this.#end += got;
    }
    return this.#end - this.#start >= n;
  }

  /** The next frame, or undefined at the end of the stream (throws on a bad frame). */
  async next(): Promise<{ type: number; payload: Uint8Array } | undefined> {
    if (!(await this.#fill(5))) {
      if (this.#end === this.#start) return undefined;
      throw new FrameError("the stream ended inside a frame header");
    }
    const view = new DataView(this.#buf.buffer, this.#buf.byteOffset + this.#start);
    const len = view.getUint32(1, true);
    if (len > MAX_FRAME) throw new FrameError(`a frame of ${len} bytes (at most ${MAX_FRAME})`);
    if (!(await this.#fill(5 + len))) throw new FrameError("the stream ended inside a frame");
    const type = this.#buf[this.#start]!;
    const payload = this.#buf.slice(this.#start + 5, this.#start + 5 + len);
    this.#start += 5 + len;
    if (this.#start === this.#end) this.#start = this.#end = 0;
    return { type, payload };
  }
}

/** Parses and checks a job frame's payload; throws a plain message when it is not a job. */
export function parseJob(payload: Uint8Array): Job {
  let v: unknown;
  try {
    v = JSON.parse(new TextDecoder().decode(payload));
  } catch {
    throw new Error("the job is not JSON");
  }
  const o = v as Record<string, unknown>;
  const strings = (x: unknown) => Array.isArray(x) && x.every((s) => typeof s === "string");
  if (
    typeof o !== "object" || o === null || typeof o.token !== "string" ||
    typeof o.fingerprint !== "string" || !strings(o.args) || typeof o.cwd !== "string" ||
    !o.cwd.startsWith("/") || !strings(o.writable) ||
    !(o.writable as string[]).every((d) => d.startsWith("/") && !d.split("/").includes("..")) ||
    typeof o.env !== "object" || o.env === null ||
    !Object.values(o.env).every((s) => typeof s === "string")
  ) {
    throw new Error("the job is missing a field or has one of the wrong type");
  }
  return o as unknown as Job;
}

/** Directories of a checkout whose files are not part of what `cli.ts` runs. */
const NOT_CODE = new Set(["tests", "bench", "docs", "node_modules", "testing"]);

/**
 * A fingerprint of the code a job would run: Deno's version and the path,
 * size and modification time of every `.ts`/`.json`/`.lock` file of the checkout at
 * `root` (not tests, benchmarks or docs). A resident machine started before a change has
 * a different one and is not used for the job.
 */
export async function codeFingerprint(root: string): Promise<string> {
  const lines: string[] = [`deno ${Deno.version.deno} ${root}`];
  const walk = async (dir: string, rel: string) => {
    const entries: Deno.DirEntry[] = [];
    for await (const e of Deno.readDir(dir)) entries.push(e);
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) {
        if (!(rel === "" && NOT_CODE.has(e.name))) await walk(path, `${rel}${e.name}/`);
      } else if (/\.(ts|json|lock)$/.test(e.name)) {
        const st = await Deno.stat(path).catch(() => undefined);
        if (st) lines.push(`${rel}${e.name} ${st.size} ${st.mtime?.getTime() ?? 0}`);
      }
    }
  };
  await walk(root, "");
  lines.sort();
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(lines.join("\n")));
  return Array.from(new Uint8Array(digest).subarray(0, 16), (b) => b.toString(16).padStart(2, "0"))
    .join("");
}
