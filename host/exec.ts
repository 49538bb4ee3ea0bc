/**
 * The host side of `vm.exec`: runs a shell command in the guest through the denovm guest
 * agent (`guest/agent.c`, in the initramfs recipe), reached over virtio-vsock. The host
 * connects to the vsock device's Unix socket, asks for the agent's port with
 * `CONNECT 1024`, sends one request and reads framed output until the exit frame.
 *
 * Everything the agent sends is untrusted: frame types and lengths are checked, and the
 * output kept is capped.
 *
 * @module
 */

import { after, sleep } from "@denovm/sys/timer";

/** The vsock port the guest agent listens on. */
export const AGENT_PORT = 1024;

const MAX_CMD = 64 * 1024;
const MAX_STDIN = 64 * 1024 * 1024;
const MAX_FRAME = 1 << 20;
const MAX_OUTPUT = 64 * 1024 * 1024;

/** What a command run with {@link exec} produced. */
export interface ExecResult {
  /** The exit code, or 128 + the signal number when a signal ended it. */
  code: number;
  /** Standard output, decoded as UTF-8. */
  stdout: string;
  /** Standard error, decoded as UTF-8. */
  stderr: string;
  /** Standard output as bytes (for binary output). */
  stdoutBytes: Uint8Array;
}

/** Options of {@link exec}. */
export interface ExecOptions {
  /** Bytes (or text) for the command's standard input. */
  stdin?: Uint8Array | string;
  /** Give up after this many milliseconds (default 30000); the guest kills the command. */
  timeout?: number;
  /** How long to retry while no agent listens yet, in ms (default 3000, within `timeout`). */
  agentWait?: number;
}

/** vm.exec failed: no agent, a broken reply, or a timeout. */
export class ExecError extends Error {
  /** Always "ExecError". */
  override name = "ExecError";
}

/** Reads exactly what `want` asks for from a stream, with the bytes read ahead kept. */
class Reader {
  #buf = new Uint8Array(0);
  #chunk = new Uint8Array(65536);
  constructor(readonly conn: Deno.Conn) {}

  async #fill(n: number): Promise<boolean> {
    while (this.#buf.byteLength < n) {
      const r = await this.conn.read(this.#chunk);
      if (r === null) return false;
      const next = new Uint8Array(this.#buf.byteLength + r);
      next.set(this.#buf);
      next.set(this.#chunk.subarray(0, r), this.#buf.byteLength);
      this.#buf = next;
    }
    return true;
  }

  /** `n` bytes, or null at end of stream. */
  async take(n: number): Promise<Uint8Array | null> {
    if (!(await this.#fill(n))) return null;
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }

  /** One line without its `\n` (at most `max` bytes), or null at end of stream. */
  async line(max: number): Promise<string | null> {
    for (;;) {
      const i = this.#buf.indexOf(10);
      if (i >= 0) {
        const s = new TextDecoder().decode(this.#buf.subarray(0, i));
        this.#buf = this.#buf.subarray(i + 1);
        return s;
      }
      if (this.#buf.byteLength >= max) return null;
      if (!(await this.#fill(this.#buf.byteLength + 1))) return null;
    }
  }
}

function u32(n: number): Uint8Array {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}

function concat(parts: Uint8Array[]): Uint8Array {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}

/**
 * Connects to the agent through the vsock device; null when the guest refused. A guest that
 * neither accepts nor refuses is given up on after `waitMs` (an ExecError).
 */
async function connectAgent(
  socketPath: string,
  waitMs: number,
): Promise<{ conn: Deno.UnixConn; r: Reader } | null> {
  let conn: Deno.UnixConn;
  try {
    conn = await Deno.connect({ transport: "unix", path: socketPath });
  } catch (e) {
    throw new ExecError(`Cannot reach the vsock device at ${socketPath}: ${(e as Error).message}`);
  }
  const r = new Reader(conn);
  let timedOut = false;
  const timer = after(Math.max(0, waitMs), () => {
    timedOut = true;
    conn.close();
  });
  try {
    await conn.write(new TextEncoder().encode(`CONNECT ${AGENT_PORT}\n`));
    const ok = await r.line(64);
    if (ok !== null && /^OK \d+$/.test(ok)) return { conn, r };
  } catch {
    // reset by the device (refused), or closed by the timer
  } finally {
    timer.cancel();
  }
  if (timedOut) {
    throw new ExecError(
      `Timed out after ${
        Math.round(waitMs)
      } ms: the guest neither accepted nor refused the connection to vsock port ${AGENT_PORT}`,
    );
  }
  conn.close();
  return null;
}

/**
 * Runs `cmd` with `/bin/sh -c` in the guest whose vsock device listens on the Unix socket
 * `socketPath` (the config's `vsock.path`).
 */
export async function exec(
  socketPath: string,
  cmd: string,
  opts: ExecOptions = {},
): Promise<ExecResult> {
  const cmdBytes = new TextEncoder().encode(cmd);
  if (cmdBytes.byteLength === 0 || cmdBytes.byteLength > MAX_CMD || cmd.includes("\0")) {
    throw new RangeError(`Cannot exec: the command must be 1 byte to 64 KiB, without NUL`);
  }
  const stdin = typeof opts.stdin === "string"
    ? new TextEncoder().encode(opts.stdin)
    : opts.stdin ?? new Uint8Array(0);
  if (stdin.byteLength > MAX_STDIN) throw new RangeError("Cannot exec: stdin over 64 MiB");
  const timeout = opts.timeout ?? 30_000;
  // A negative time is none left (as it was); what is not a number would turn into a wait
  // that never ends or a timer refused after connecting: refused before anything is opened.
  for (const [name, v] of [["timeout", timeout], ["agentWait", opts.agentWait ?? 0]] as const) {
    if (typeof v !== "number" || Number.isNaN(v)) {
      throw new RangeError(`Cannot exec: ${name} must be a number of ms, not ${v}`);
    }
  }
  const start = performance.now();
  // The agent may still be starting (it is launched just before the boot marker): retry a
  // refused CONNECT for a little while.
  const retryUntil = start + Math.min(timeout, opts.agentWait ?? 3000);
  let attempt: { conn: Deno.UnixConn; r: Reader } | null = null;
  for (let delay = 20; attempt === null; delay = Math.min(delay * 2, 250)) {
    attempt = await connectAgent(socketPath, timeout - (performance.now() - start));
    if (attempt === null) {
      if (performance.now() + delay > retryUntil) {
        throw new ExecError(
          `No guest agent answered on vsock port ${AGENT_PORT} (is the guest running denovm-agent?)`,
        );
      }
      await sleep(delay);
    }
  }
  const { conn, r } = attempt;
  let timedOut = false;
  const timer = after(Math.max(0, timeout - (performance.now() - start)), () => {
    timedOut = true;
    conn.close();
  });
  try {
    const req = concat([
      new TextEncoder().encode("DNX1"),
      u32(cmdBytes.byteLength),
      cmdBytes,
      u32(stdin.byteLength),
      stdin,
    ]);
    for (let o = 0; o < req.byteLength;) o += await conn.write(req.subarray(o));
    const out: Uint8Array[] = [], err: Uint8Array[] = [];
    let total = 0;
    for (;;) {
      const head = await r.take(5);
      if (head === null) throw new ExecError("The guest agent hung up before the exit status");
      const type = head[0]!;
      const len = new DataView(head.buffer, head.byteOffset).getUint32(1, true);
      if (len > MAX_FRAME) throw new ExecError(`The guest agent sent a ${len}-byte frame`);
      const body = await r.take(len);
      if (body === null) throw new ExecError("The guest agent hung up inside a frame");
      if (type === 1 || type === 2) {
        total += len;
        if (total > MAX_OUTPUT) throw new ExecError("The command's output is over 64 MiB");
        (type === 1 ? out : err).push(body);
      } else if (type === 3 && len === 4) {
        const stdoutBytes = concat(out);
        return {
          code: new DataView(body.buffer, body.byteOffset).getInt32(0, true),
          stdout: new TextDecoder().decode(stdoutBytes),
          stderr: new TextDecoder().decode(concat(err)),
          stdoutBytes,
        };
      } else if (type === 4) {
        throw new ExecError(`The guest agent refused: ${new TextDecoder().decode(body)}`);
      } else {
        throw new ExecError(`The guest agent sent an unknown frame (type ${type}, ${len} bytes)`);
      }
    }
  } catch (e) {
    if (timedOut) {
      throw new ExecError(
        `Timed out after ${timeout} ms running ${JSON.stringify(cmd.slice(0, 80))}`,
      );
    }
    if (e instanceof ExecError) throw e;
    throw new ExecError(`Lost the guest agent: ${(e as Error).message}`);
  } finally {
    timer.cancel();
    try {
      conn.close();
    } catch {
      // closed by the timeout
    }
  }
}
