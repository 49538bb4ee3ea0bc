/**
 * The host side of virtio-vsock over Unix sockets, as Firecracker does it:
 * - a guest connect to port P connects to the Unix socket `<path>_P`;
 * - a host program connects to the Unix socket `<path>`, writes `CONNECT <P>\n`, and once
 *   the guest listener on P accepts, reads `OK <host port>\n`; then the stream is raw.
 * The socket is created with owner-only permissions.
 *
 * @module
 */

import {
  VSOCK_MAX_CONNECTIONS,
  type VsockConn,
  type VsockDevice,
  type VsockHost,
} from "../devices/vsock.ts";
import { after } from "@denovm/sys/timer";
import { removeStaleSocket } from "./unix_socket.ts";

const MAX_CONNECT_LINE = 64;
/** A host program must send its `CONNECT <port>` line within this (ms). */
export const CONNECT_LINE_TIMEOUT_MS = 10_000;

/** A stream connection as the vsock device sees it (with bytes read ahead first). */
function wrap(
  conn: Deno.Conn,
  ahead = new Uint8Array(0),
  onClose: () => void = () => {},
): VsockConn {
  let pre = ahead;
  let closed = false;
  return {
    async read(buf) {
      if (pre.byteLength) {
        const n = Math.min(pre.byteLength, buf.byteLength);
        buf.set(pre.subarray(0, n));
        pre = pre.subarray(n);
        return n;
      }
      try {
        return await conn.read(buf);
      } catch {
        return null;
      }
    },
    async write(data) {
      let o = 0;
      while (o < data.byteLength) o += await conn.write(data.subarray(o));
    },
    async closeWrite() {
      if (!closed) await (conn as Deno.UnixConn).closeWrite();
    },
    close() {
      if (closed) return;
      closed = true;
      onClose();
      try {
        conn.close();
      } catch {
        // already closed by the peer
      }
    },
  };
}

/** Unix-socket host side of a vsock device. */
export class UnixVsockHost implements VsockHost {
  #listener: Deno.Listener<Deno.UnixConn> | undefined;
  #open = new Set<Deno.Conn>();
  #created = false;

  readonly #maxConnections: number;
  readonly #lineTimeoutMs: number;
  readonly #connectPort: (port: number) => Promise<Deno.Conn | null>;

  /**
   * Serves `path`. `opts.maxConnections` (default {@link VSOCK_MAX_CONNECTIONS}) bounds the
   * Unix connections open at once, those still handshaking included;
   * `opts.connectLineTimeoutMs` (default {@link CONNECT_LINE_TIMEOUT_MS}) is how long a host
   * program may take to send its `CONNECT` line. `opts.connectPort` makes a guest's
   * connect to host port P some other way than the Unix socket `<path>_P` (the portable
   * machine reaches this host's `<path>_P` through its bridge); null means refused.
   */
  constructor(
    readonly path: string,
    opts: {
      maxConnections?: number;
      connectLineTimeoutMs?: number;
      connectPort?: (port: number) => Promise<Deno.Conn | null>;
    } = {},
  ) {
    this.#maxConnections = opts.maxConnections ?? VSOCK_MAX_CONNECTIONS;
    this.#lineTimeoutMs = opts.connectLineTimeoutMs ?? CONNECT_LINE_TIMEOUT_MS;
    this.#connectPort = opts.connectPort ??
      ((port) => Deno.connect({ transport: "unix", path: `${this.path}_${port}` }));
  }

  /** A guest connect to `port`: `<path>_<port>`, or null when nobody listens there. */
  async connect(port: number): Promise<VsockConn | null> {
    try {
      const c = await this.#connectPort(port);
      if (!c) return null;
      this.#open.add(c);
      return wrap(c, undefined, () => this.#open.delete(c));
    } catch {
      return null;
    }
  }

  /**
   * Accepts host connections on `path` and forwards each to the guest port it names. Only a
   * stale socket (one nobody listens on) is replaced; anything else at `path` is refused,
   * never deleted.
   */
  async listen(device: VsockDevice): Promise<void> {
    await removeStaleSocket(this.path, "vsock");
    this.#listener = Deno.listen({ transport: "unix", path: this.path });
    this.#created = true;
    Deno.chmodSync(this.path, 0o600);
    void this.#accept(device, this.#listener);
  }

  async #accept(device: VsockDevice, l: Deno.Listener<Deno.UnixConn>): Promise<void> {
    try {
      for await (const conn of l) {
        // Host connections waiting for their CONNECT line or for the guest count too:
        // past the device's cap a new one is closed at once.
        if (this.#open.size >= this.#maxConnections) this.#drop(conn);
        else void this.#handshake(device, conn);
      }
    } catch {
      // listener closed
    }
  }

  async #handshake(device: VsockDevice, conn: Deno.UnixConn): Promise<void> {
    this.#open.add(conn);
    const buf = new Uint8Array(MAX_CONNECT_LINE);
    let n = 0, nl = -1;
    const timer = after(this.#lineTimeoutMs, () => this.#drop(conn));
    try {
      while (nl < 0 && n < buf.byteLength) {
        const r = await conn.read(buf.subarray(n));
        if (r === null) break;
        n += r;
        nl = buf.subarray(0, n).indexOf(0x0a);
      }
    } catch {
      // the peer went away, or the line did not come in time
    } finally {
      timer.cancel();
    }
    const line = nl >= 0 ? new TextDecoder().decode(buf.subarray(0, nl)) : "";
    const m = /^CONNECT (\d{1,10})$/.exec(line.trim());
    const port = m ? Number(m[1]) : -1;
    if (port < 0 || port > 0xffff_ffff) return this.#drop(conn);
    const vc = wrap(conn, buf.slice(nl + 1, n), () => this.#open.delete(conn));
    const local = await device.connectToGuest(port, vc);
    if (local === null) return this.#drop(conn);
    try {
      await vc.write(new TextEncoder().encode(`OK ${local}\n`));
    } catch {
      this.#drop(conn);
    }
  }

  #drop(conn: Deno.Conn): void {
    this.#open.delete(conn);
    try {
      conn.close();
    } catch {
      // already closed
    }
  }

  /** Stops listening, closes every connection and removes the socket file. */
  close(): void {
    try {
      this.#listener?.close();
    } catch {
      // already closed
    }
    this.#listener = undefined;
    for (const c of this.#open) this.#drop(c);
    if (!this.#created) return;
    this.#created = false;
    try {
      Deno.removeSync(this.path);
    } catch {
      // gone already
    }
  }

  /** Host connections open now (tests: a closed one must not stay here). */
  get openConnections(): number {
    return this.#open.size;
  }
}
