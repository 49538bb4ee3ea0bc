/**
 * The spare's relay thread (a Worker of `spare.ts`, inside the resident portable machine).
 * It accepts the one job connection, checks the token and the code fingerprint, and then
 * moves bytes: host stdin frames into the job's stdin pipe, the job's stdout and stderr
 * pipes out as frames. It is a thread of its own so that the job's main thread, blocked
 * writing a full stdout pipe, never stops the relay that empties it.
 *
 * Host stdin is credit-based: the host sends at most {@link STDIN_CREDIT} bytes ahead of
 * what reached the pipe, so reading frames never waits on the job, and signals and the end
 * of the connection are always seen.
 *
 * Messages from the spare: `listen` {port, token, fingerprint, who, jobs}, `pipes` {stdin, stdout,
 * stderr} (fd numbers of the ends this thread owns), `exit` {code}. To the spare:
 * `listening`, `job` {job}, `stale`, `signal` {name}, `hangup`, `flushed`.
 *
 * @module
 */

import { after, type Timer } from "@denovm/sys/timer";
import { F, frame, FrameReader, type Job, parseJob } from "./job_frames.ts";

/** How long a new connection may take to send its job (ms). */
const JOB_WAIT_MS = 10_000;

type Msg =
  | {
    kind: "listen";
    port: number;
    token: string;
    fingerprint: string;
    who: string;
    jobs: string;
  }
  | { kind: "pipes"; stdin: number; stdout: number; stderr: number }
  | { kind: "exit"; code: number };

const self = globalThis as unknown as {
  onmessage: ((e: MessageEvent<Msg>) => void) | null;
  postMessage(m: unknown): void;
};

let conn: Deno.Conn | undefined;
let reader: FrameReader | undefined;
let stdinPipe: Deno.FsFile | undefined;
let outputs: Promise<void> | undefined;
let sending: Promise<unknown> = Promise.resolve();

/** Writes a frame after those before it (frames never interleave). */
function send(type: number, payload?: Uint8Array | string): Promise<unknown> {
  const c = conn;
  if (!c) return Promise.resolve();
  const bytes = frame(type, payload);
  sending = sending.then(async () => {
    let off = 0;
    while (off < bytes.byteLength) off += await c.write(bytes.subarray(off));
  }).catch(() => {});
  return sending;
}

function sameToken(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return d === 0;
}

/** The first frame of `c`, if it is a job that comes in time. */
async function readJob(r: FrameReader): Promise<Job | string> {
  let timer: Timer | undefined;
  const late = new Promise<"late">((res) => (timer = after(JOB_WAIT_MS, () => res("late"))));
  try {
    const f = await Promise.race([r.next(), late]);
    if (f === "late") return "no job in time";
    if (f === undefined) return "closed";
    if (f.type !== F.job) return "the first frame is not a job";
    return parseJob(f.payload);
  } catch (e) {
    return e instanceof Error ? e.message : String(e);
  } finally {
    timer?.cancel();
  }
}

async function listen(m: Extract<Msg, { kind: "listen" }>): Promise<void> {
  const { port, token, fingerprint } = m;
  const listener = Deno.listen({ hostname: "0.0.0.0", port });
  self.postMessage({ kind: "listening" });
  for (;;) {
    const c = await listener.accept();
    const r = new FrameReader((b) => c.read(b));
    const job = await readJob(r);
    if (typeof job === "string" || !sameToken(job.token, token)) {
      // Not our host (or not a job): drop it and go on waiting.
      try {
        c.close();
      } catch {
        // already closed
      }
      continue;
    }
    listener.close();
    conn = c;
    reader = r;
    if (job.fingerprint !== fingerprint) {
      await send(F.refused, `stale ${m.who}`);
      c.close();
      self.postMessage({ kind: "stale" });
      return;
    }
    // Marked as running before the host hears it was taken: an idle check never misses it.
    Deno.writeTextFileSync(`${m.jobs}/${Deno.pid}`, "");
    await send(F.accepted, m.who);
    await send(F.credit, String(STDIN_CREDIT));
    self.postMessage({ kind: "job", job });
    void fromHost();
    return;
  }
}

/** Stdin bytes the host may send before it hears they were written (its credit). */
const STDIN_CREDIT = 256 * 1024;
/** Stdin from the host waiting for the pipe (never more than the credit), then its end. */
const stdinQueue: (Uint8Array | "end")[] = [];
let stdinWake: (() => void) | undefined;
let stdinQueued = 0;

/** Writes queued stdin into the job's pipe, and gives the host credit for each chunk. */
async function stdinWriter(): Promise<void> {
  for (;;) {
    while (stdinQueue.length === 0) await new Promise<void>((r) => (stdinWake = r));
    const c = stdinQueue.shift()!;
    if (c === "end") break;
    try {
      let off = 0;
      while (off < c.byteLength) off += await stdinPipe!.write(c.subarray(off));
    } catch {
      // The job closed its stdin: the bytes have nowhere to go (as on a host).
    }
    stdinQueued -= c.byteLength;
    void send(F.credit, String(c.byteLength));
  }
  try {
    stdinPipe?.close();
  } catch {
    // already closed
  }
  stdinPipe = undefined;
}

/**
 * Host frames after the job: stdin (queued, so this loop never waits on the job), its end,
 * signals; a lost connection is a hang-up.
 */
async function fromHost(): Promise<void> {
  const r = reader!;
  void stdinWriter();
  for (;;) {
    let f;
    try {
      f = await r.next();
    } catch {
      f = undefined;
    }
    if (f === undefined) {
      self.postMessage({ kind: "hangup" });
      return;
    }
    if (f.type === F.stdin) {
      // Within the credit this never holds more than STDIN_CREDIT; past it, bytes are
      // dropped rather than held without bound.
      if (stdinQueued + f.payload.byteLength <= STDIN_CREDIT) {
        stdinQueued += f.payload.byteLength;
        stdinQueue.push(f.payload);
        stdinWake?.();
      }
    } else if (f.type === F.stdinEnd) {
      stdinQueue.push("end");
      stdinWake?.();
    } else if (f.type === F.signal) {
      self.postMessage({ kind: "signal", name: new TextDecoder().decode(f.payload) });
    }
  }
}

async function pump(file: Deno.FsFile, type: number): Promise<void> {
  const buf = new Uint8Array(65536);
  try {
    for (;;) {
      const n = await file.read(buf);
      if (n === null) break;
      await send(type, buf.slice(0, n));
    }
  } catch {
    // the pipe broke: nothing more to relay
  } finally {
    try {
      file.close();
    } catch {
      // already closed
    }
  }
}

self.onmessage = async (e: MessageEvent<Msg>) => {
  const m = e.data;
  if (m.kind === "listen") {
    await listen(m);
  } else if (m.kind === "pipes") {
    stdinPipe = await Deno.open(`/proc/self/fd/${m.stdin}`, { write: true });
    const out = await Deno.open(`/proc/self/fd/${m.stdout}`, { read: true });
    const err = await Deno.open(`/proc/self/fd/${m.stderr}`, { read: true });
    outputs = Promise.all([pump(out, F.stdout), pump(err, F.stderr)]).then(() => {});
    self.postMessage({ kind: "piped" });
  } else if (m.kind === "exit") {
    // The spare closed its ends of stdout and stderr: relay what is left, then the status.
    await outputs;
    await send(F.status, String(m.code));
    try {
      conn?.close();
    } catch {
      // already closed
    }
    self.postMessage({ kind: "flushed" });
  }
};
