/**
 * Unix sockets across the portable machine. The inner VMM's control API and vsock sockets
 * exist inside the portable machine; the user's live on this host. The bridge joins them
 * over QEMU's user-mode network (the one network the portable machine has):
 *
 * - **In** (the API socket, and host programs connecting to the vsock socket): the host
 *   side listens on the user's Unix path; each connection goes over TCP to a port QEMU
 *   forwards into the machine (`hostfwd`), where the inner side connects it to the inner
 *   VMM's socket and acknowledges with one byte. Until the inner side is up (the machine
 *   boots in seconds), the host side retries.
 * - **Out** (the guest connecting to host vsock port P, Firecracker's `<path>_P`): the
 *   inner VMM connects over TCP to the host (QEMU's 10.0.2.2 is this host's loopback) and
 *   names the port; the host side connects `<path>_P` here and acknowledges, or closes.
 *
 * Every TCP connection starts with a random token only the two sides know (it travels in
 * the portable machine's control share, never on a command line), so other local users
 * reach neither the API nor the vsock services through the TCP ports.
 *
 * @module
 */

import { sleep, within } from "@denovm/sys/timer";
import { removeStaleSocket } from "../host/unix_socket.ts";

/** The TCP port the inner side listens on inside the portable machine. */
export const BRIDGE_GUEST_PORT = 7000;
/** QEMU user networking's address for the host's loopback, as seen inside. */
export const BRIDGE_HOST_ALIAS = "10.0.2.2";
/** The environment variable that carries the bridge to the inner CLI. */
export const BRIDGE_ENV = "DENOVM_PORTABLE_BRIDGE";
/** Where the inner VMM's sockets live inside the portable machine. */
export const INNER_SOCKETS = {
  api: "/run/denovm-bridge/api.sock",
  vsock: "/run/denovm-bridge/vsock",
};
/** How long a connection waits for the other side to come up (ms). */
const UP_WAIT_MS = 120_000;
const ACK = 1;
const MAX_LINE = 256;

type Name = keyof typeof INNER_SOCKETS;

/** Reads one line (up to MAX_LINE bytes, no more than the line) from `c`; undefined on EOF. */
async function readLine(c: Deno.Conn): Promise<string | undefined> {
  const buf = new Uint8Array(MAX_LINE);
  const one = new Uint8Array(1);
  let n = 0;
  while (n < MAX_LINE) {
    const r = await c.read(one).catch(() => null);
    if (r === null) return undefined;
    if (one[0] === 0x0a) return new TextDecoder().decode(buf.subarray(0, n));
    buf[n++] = one[0]!;
  }
  return undefined;
}

/** Reads the one-byte acknowledgement; false on EOF, error or anything else. */
async function readAck(c: Deno.Conn, ms: number): Promise<boolean> {
  const b = new Uint8Array(1);
  const n = await within(c.read(b).catch(() => null), ms);
  return n === 1 && b[0] === ACK;
}

function close(c: Deno.Conn | undefined): void {
  try {
    c?.close();
  } catch {
    // closed already
  }
}

/** Copies both ways until either side ends; half-closes are passed on. */
async function pipe(a: Deno.Conn, b: Deno.Conn): Promise<void> {
  const one = async (from: Deno.Conn, to: Deno.Conn) => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        for (let o = 0; o < n;) o += await to.write(buf.subarray(o, n));
      }
      await (to as Deno.TcpConn).closeWrite?.();
    } catch {
      close(a);
      close(b);
    }
  };
  await Promise.all([one(a, b), one(b, a)]);
  close(a);
  close(b);
}

function sameToken(a: string, b: string): boolean {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return d === 0;
}

/** Options of {@link HostBridge.start}. */
export interface HostBridgeOptions {
  /** The user's API socket path (`--api-sock`). */
  api?: string;
  /** The user's vsock socket path (`--vsock <cid>,<path>`). */
  vsock?: string;
  /**
   * Where "in" connections go (tests): by default 127.0.0.1 at {@link HostBridge.inPort},
   * the port QEMU forwards into the machine.
   */
  inTarget?: { hostname: string; port: number };
}

/** The host's side of the bridge. */
export class HostBridge {
  /** The secret both sides prove on every TCP connection (hex). */
  readonly token: string;
  /** The host TCP port QEMU forwards to {@link BRIDGE_GUEST_PORT} inside. */
  readonly inPort: number;
  readonly #out: Deno.TcpListener;
  readonly #unix: { name: Name; path: string; listener: Deno.UnixListener }[] = [];
  readonly #conns = new Set<Deno.Conn>();
  readonly #inTarget: { hostname: string; port: number };
  #closed = false;

  private constructor(o: HostBridgeOptions, inPort: number, out: Deno.TcpListener) {
    const t = crypto.getRandomValues(new Uint8Array(24));
    this.token = [...t].map((b) => b.toString(16).padStart(2, "0")).join("");
    this.inPort = inPort;
    this.#out = out;
    this.#inTarget = o.inTarget ?? { hostname: "127.0.0.1", port: inPort };
  }

  /** Listens on the user's socket paths and on the "out" TCP port. */
  static async start(o: HostBridgeOptions): Promise<HostBridge> {
    // A free port for QEMU's forward (QEMU binds it itself, a moment later).
    const probe = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const inPort = (probe.addr as Deno.NetAddr).port;
    probe.close();
    const out = Deno.listen({ hostname: "127.0.0.1", port: 0 });
    const b = new HostBridge(o, inPort, out);
    try {
      for (const name of ["api", "vsock"] as const) {
        const path = o[name];
        if (path === undefined) continue;
        await removeStaleSocket(path, name === "api" ? "API" : "vsock");
        const listener = Deno.listen({ transport: "unix", path });
        Deno.chmodSync(path, 0o600);
        b.#unix.push({ name, path, listener });
      }
    } catch (e) {
      b.close();
      throw e;
    }
    for (const u of b.#unix) void b.#acceptIn(u.name, u.listener);
    if (o.vsock !== undefined) void b.#acceptOut(o.vsock);
    return b;
  }

  /** The "out" port the inner side connects to (through {@link BRIDGE_HOST_ALIAS}). */
  get outPort(): number {
    return (this.#out.addr as Deno.NetAddr).port;
  }

  /** The environment value that tells the inner CLI how to reach this side. */
  get env(): Record<string, string> {
    return { [BRIDGE_ENV]: `${this.token},${this.outPort}` };
  }

  #track(c: Deno.Conn): void {
    this.#conns.add(c);
  }

  async #acceptIn(name: Name, l: Deno.UnixListener): Promise<void> {
    try {
      for await (const c of l) {
        this.#track(c);
        void this.#forwardIn(name, c).finally(() => this.#conns.delete(c));
      }
    } catch {
      // listener closed
    }
  }

  async #forwardIn(name: Name, client: Deno.Conn): Promise<void> {
    const until = Date.now() + UP_WAIT_MS;
    while (!this.#closed && Date.now() < until) {
      const tcp = await Deno.connect(this.#inTarget).catch(() => undefined);
      if (tcp) {
        this.#track(tcp);
        const ok = await tcp.write(new TextEncoder().encode(`${this.token} ${name}\n`))
          .then(() => readAck(tcp, 10_000), () => false);
        if (ok) return await pipe(client, tcp).finally(() => this.#conns.delete(tcp));
        close(tcp);
        this.#conns.delete(tcp);
      }
      await sleep(250); // the machine is still booting
    }
    close(client);
  }

  async #acceptOut(vsockPath: string): Promise<void> {
    try {
      for await (const c of this.#out) {
        this.#track(c);
        void this.#forwardOut(vsockPath, c).finally(() => this.#conns.delete(c));
      }
    } catch {
      // listener closed
    }
  }

  async #forwardOut(vsockPath: string, tcp: Deno.Conn): Promise<void> {
    const line = await readLine(tcp);
    const m = line === undefined ? null : /^(\S+) PORT (\d{1,10})$/.exec(line);
    if (!m || !sameToken(m[1]!, this.token) || Number(m[2]) > 0xffff_ffff) return close(tcp);
    const target = await Deno.connect({ transport: "unix", path: `${vsockPath}_${m[2]}` })
      .catch(() => undefined);
    if (!target) return close(tcp);
    this.#track(target);
    try {
      await tcp.write(new Uint8Array([ACK]));
    } catch {
      close(target);
      return close(tcp);
    }
    await pipe(tcp, target).finally(() => this.#conns.delete(target));
  }

  /** Stops listening, closes every connection and removes the sockets it created. */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    try {
      this.#out.close();
    } catch {
      // closed
    }
    for (const u of this.#unix) {
      try {
        u.listener.close();
      } catch {
        // closed
      }
      try {
        Deno.removeSync(u.path);
      } catch {
        // gone
      }
    }
    for (const c of this.#conns) close(c);
    this.#conns.clear();
  }
}

/** The inner side, in the portable machine (the inner CLI runs it). */
export class InnerBridge {
  readonly #token: string;
  readonly #outPort: number;
  readonly #hostAlias: string;
  #listener: Deno.TcpListener | undefined;
  readonly #conns = new Set<Deno.Conn>();

  /** From {@link BRIDGE_ENV}'s value (`<token>,<out port>`). */
  constructor(value: string, opts: { hostAlias?: string } = {}) {
    const m = /^([0-9a-f]{16,128}),(\d{1,5})$/.exec(value);
    if (!m) throw new TypeError(`${BRIDGE_ENV} is malformed`);
    this.#token = m[1]!;
    this.#outPort = Number(m[2]);
    this.#hostAlias = opts.hostAlias ?? BRIDGE_HOST_ALIAS;
  }

  /** The bridge the outer CLI set up, when this process runs inside the portable machine. */
  static fromEnv(): InnerBridge | undefined {
    const v = Deno.env.get(BRIDGE_ENV);
    return v ? new InnerBridge(v) : undefined;
  }

  /**
   * Accepts "in" connections on `port` and connects each to the inner socket it names
   * (`paths`, by default {@link INNER_SOCKETS}), waiting for that socket to appear.
   */
  listen(
    paths: Partial<Record<Name, string>> = INNER_SOCKETS,
    port: number = BRIDGE_GUEST_PORT,
  ): number {
    const l = Deno.listen({ hostname: "0.0.0.0", port });
    this.#listener = l;
    (async () => {
      try {
        for await (const c of l) {
          this.#conns.add(c);
          void this.#serveIn(c, paths).finally(() => this.#conns.delete(c));
        }
      } catch {
        // closed
      }
    })();
    return (l.addr as Deno.NetAddr).port;
  }

  async #serveIn(tcp: Deno.Conn, paths: Partial<Record<Name, string>>): Promise<void> {
    const line = await readLine(tcp);
    const m = line === undefined ? null : /^(\S+) (api|vsock)$/.exec(line);
    if (!m || !sameToken(m[1]!, this.#token)) return close(tcp);
    const path = paths[m[2] as Name];
    if (path === undefined) return close(tcp);
    const until = Date.now() + UP_WAIT_MS;
    let target: Deno.Conn | undefined;
    while (!target && Date.now() < until) {
      target = await Deno.connect({ transport: "unix", path }).catch(() => undefined);
      if (!target) await sleep(100); // the VMM is starting
    }
    if (!target) return close(tcp);
    this.#conns.add(target);
    try {
      await tcp.write(new Uint8Array([ACK]));
    } catch {
      close(target);
      return close(tcp);
    }
    await pipe(tcp, target).finally(() => this.#conns.delete(target!));
  }

  /**
   * How the inner VMM makes a guest's connect to host vsock port `port`: through the host
   * side to `<path>_<port>` on the host; null when nobody listens there.
   */
  async connectHostPort(port: number): Promise<Deno.Conn | null> {
    const tcp = await Deno.connect({ hostname: this.#hostAlias, port: this.#outPort })
      .catch(() => undefined);
    if (!tcp) return null;
    try {
      await tcp.write(new TextEncoder().encode(`${this.#token} PORT ${port}\n`));
      if (await readAck(tcp, 10_000)) return tcp;
    } catch {
      // the host side went away
    }
    close(tcp);
    return null;
  }

  /** Stops listening and closes every connection. */
  close(): void {
    try {
      this.#listener?.close();
    } catch {
      // closed
    }
    for (const c of this.#conns) close(c);
    this.#conns.clear();
  }
}
