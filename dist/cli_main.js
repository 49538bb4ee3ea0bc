var __defProp = Object.defineProperty;
var __getOwnPropNames = Object.getOwnPropertyNames;
var __esm = (fn, res) => function __init() {
  return fn && (res = (0, fn[__getOwnPropNames(fn)[0]])(fn = 0)), res;
};
var __export = (target, all) => {
  for (var name2 in all)
    __defProp(target, name2, { get: all[name2], enumerable: true });
};

// vmm/config.ts
function defaultConfig() {
  return {
    memMiB: 128,
    vcpus: 1,
    disks: [],
    nets: [],
    rng: false,
    console: "serial"
  };
}
function str(v, field) {
  if (typeof v !== "string" || v.length === 0) {
    throw new ConfigError(field, "expected a non-empty string");
  }
  return v;
}
function int(v, field, min, max) {
  if (typeof v !== "number" || !Number.isInteger(v) || v < min || v > max) {
    throw new ConfigError(field, `expected an integer from ${min} to ${max}, got ${JSON.stringify(v)}`);
  }
  return v;
}
function bool(v, field) {
  if (typeof v !== "boolean") {
    throw new ConfigError(field, `expected true or false, got ${JSON.stringify(v)}`);
  }
  return v;
}
function obj(v, field, keys) {
  if (typeof v !== "object" || v === null || Array.isArray(v)) {
    throw new ConfigError(field, "expected an object");
  }
  for (const k of Object.keys(v)) {
    if (!keys.includes(k)) {
      throw new ConfigError(`${field}.${k}`.replace(/^\./, ""), `unknown field`);
    }
  }
  return v;
}
function parseConfig(input) {
  const o = obj(input, "", KEYS);
  const c = defaultConfig();
  if (o.kernel !== void 0) c.kernel = str(o.kernel, "kernel");
  if (o.initrd !== void 0) c.initrd = str(o.initrd, "initrd");
  if (o.cmdline !== void 0) {
    if (typeof o.cmdline !== "string") throw new ConfigError("cmdline", "expected a string");
    c.cmdline = o.cmdline;
  }
  if (c.initrd && !c.kernel) throw new ConfigError("initrd", "needs a kernel");
  if (o.memMiB !== void 0) c.memMiB = int(o.memMiB, "memMiB", 16, 1024 * 1024);
  if (o.vcpus !== void 0) c.vcpus = int(o.vcpus, "vcpus", 1, 64);
  if (o.rng !== void 0) c.rng = bool(o.rng, "rng");
  if (o.acpi !== void 0) c.acpi = bool(o.acpi, "acpi");
  if (o.console !== void 0) {
    if (o.console !== "serial" && o.console !== "virtio" && o.console !== "none") {
      throw new ConfigError("console", `expected "serial", "virtio" or "none", got ${JSON.stringify(o.console)}`);
    }
    c.console = o.console;
  }
  const disks = (v, field) => {
    if (!Array.isArray(v)) throw new ConfigError(field, "expected an array");
    return v.map((d, i) => {
      const f = `${field}[${i}]`;
      const x = obj(d, f, [
        "path",
        "readOnly",
        "id"
      ]);
      const disk = {
        path: str(x.path, `${f}.path`)
      };
      if (x.readOnly !== void 0) disk.readOnly = bool(x.readOnly, `${f}.readOnly`);
      if (x.id !== void 0) {
        disk.id = str(x.id, `${f}.id`);
        if (new TextEncoder().encode(disk.id).byteLength > 20) {
          throw new ConfigError(`${f}.id`, "longer than 20 bytes");
        }
      }
      return disk;
    });
  };
  if (o.disks !== void 0) c.disks = disks(o.disks, "disks");
  if (o.admin !== void 0) {
    const x = obj(o.admin, "admin", [
      "disks"
    ]);
    c.admin = {
      disks: x.disks !== void 0 ? disks(x.disks, "admin.disks") : []
    };
    if (c.admin.disks.length > 16) throw new ConfigError("admin.disks", "at most 16");
  }
  if (o.nets !== void 0) {
    if (!Array.isArray(o.nets)) throw new ConfigError("nets", "expected an array");
    c.nets = o.nets.map((n, i) => {
      const f = `nets[${i}]`;
      const x = obj(n, f, [
        "tap",
        "mac"
      ]);
      const tap = str(x.tap, `${f}.tap`);
      if (new TextEncoder().encode(tap).byteLength > 15) {
        throw new ConfigError(`${f}.tap`, "longer than 15 bytes");
      }
      const net = {
        tap
      };
      if (x.mac !== void 0) {
        const mac = str(x.mac, `${f}.mac`);
        if (!MAC.test(mac)) {
          throw new ConfigError(`${f}.mac`, `expected six hex bytes like 52:54:00:12:34:56`);
        }
        net.mac = mac;
      }
      return net;
    });
  }
  if (o.vsock !== void 0) {
    const x = obj(o.vsock, "vsock", [
      "cid",
      "path"
    ]);
    c.vsock = {
      cid: int(x.cid, "vsock.cid", 3, 4294967294),
      path: str(x.path, "vsock.path")
    };
  }
  const devices = c.disks.length + c.nets.length + (c.rng ? 1 : 0) + (c.console === "virtio" ? 1 : 0) + (c.vsock ? 1 : 0) + (c.admin ? 1 : 0);
  if (devices > 16) throw new ConfigError("disks", `${devices} virtio devices; at most 16`);
  return c;
}
async function checkDiskFiles(disks, adminDisks = []) {
  const seen = /* @__PURE__ */ new Map();
  const all = [
    ...disks.map((d, i) => [
      d,
      `disks[${i}]`
    ]),
    ...adminDisks.map((d, i) => [
      d,
      `admin.disks[${i}]`
    ])
  ];
  for (const [d, name2] of all) {
    const f = `${name2}.path`;
    let info;
    let real;
    try {
      info = await Deno.stat(d.path);
      real = await Deno.realPath(d.path);
    } catch (e) {
      throw new ConfigError(f, `cannot open ${d.path}: ${e instanceof Error ? e.message : e}`);
    }
    if (!info.isFile) throw new ConfigError(f, `${d.path} is not a regular file`);
    if (info.size % 512) {
      throw new ConfigError(f, `${d.path} is ${info.size} bytes, not a multiple of 512`);
    }
    const other = seen.get(real);
    if (other && (!other.readOnly || !d.readOnly)) {
      throw new ConfigError(f, `${d.path} is already ${other.name}; one file may be attached twice only read-only`);
    }
    seen.set(real, {
      name: name2,
      readOnly: d.readOnly ?? false
    });
  }
}
async function loadConfig(path) {
  let text;
  try {
    const info = await Deno.stat(path);
    if (!info.isFile) throw new Error("not a regular file");
    if (info.size > MAX_CONFIG_BYTES) throw new Error(`${info.size} bytes, over 1 MiB`);
    text = await Deno.readTextFile(path);
  } catch (e) {
    throw new ConfigError("config", `cannot read ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  let json2;
  try {
    json2 = JSON.parse(text);
  } catch (e) {
    throw new ConfigError("config", `${path} is not JSON: ${e instanceof Error ? e.message : String(e)}`);
  }
  return parseConfig(json2);
}
var ConfigError, KEYS, MAC, MAX_CONFIG_BYTES;
var init_config = __esm({
  "vmm/config.ts"() {
    ConfigError = class extends TypeError {
      field;
      /** `field` is the path of the wrong field, e.g. `disks[0].path` ("" for the whole object). */
      constructor(field, message) {
        super(`${field}: ${message}`), this.field = field;
        this.name = "ConfigError";
      }
    };
    KEYS = [
      "kernel",
      "initrd",
      "cmdline",
      "memMiB",
      "vcpus",
      "disks",
      "nets",
      "rng",
      "console",
      "vsock",
      "acpi",
      "admin"
    ];
    MAC = /^[0-9a-fA-F]{2}(:[0-9a-fA-F]{2}){5}$/;
    MAX_CONFIG_BYTES = 1 << 20;
  }
});

// sys/timer.ts
function delayOf(ms) {
  if (typeof ms !== "number" || Number.isNaN(ms)) {
    throw new RangeError(`A timer's delay must be a number of ms, not ${ms}`);
  }
  return Math.max(0, Math.ceil(ms));
}
function after(ms, fn) {
  return afterInSteps(ms, fn, MAX_STEP);
}
function afterInSteps(ms, fn, maxStep) {
  const delay = delayOf(ms);
  if (delay === Infinity) return NEVER;
  let live = true;
  let current;
  const arm = (left) => {
    const step = Math.min(left, maxStep);
    const signal = AbortSignal.timeout(step);
    const fire = () => {
      signal.removeEventListener("abort", fire);
      if (!live) return;
      if (left > step) return arm(left - step);
      live = false;
      fn();
    };
    current = {
      signal,
      fire
    };
    signal.addEventListener("abort", fire);
  };
  arm(delay);
  return {
    cancel() {
      if (!live) return;
      live = false;
      current.signal.removeEventListener("abort", current.fire);
    }
  };
}
function every(ms, fn) {
  const delay = delayOf(ms);
  if (delay === Infinity) return NEVER;
  let live = true;
  let current;
  const arm = () => {
    current = after(delay, () => {
      if (!live) return;
      arm();
      fn();
    });
  };
  arm();
  return {
    cancel() {
      live = false;
      current.cancel();
    }
  };
}
function sleep(ms) {
  return new Promise((resolve) => after(ms, resolve));
}
async function within(p, ms) {
  let timer;
  const late = new Promise((r) => timer = after(ms, () => r(void 0)));
  try {
    return await Promise.race([
      p,
      late
    ]);
  } finally {
    timer?.cancel();
  }
}
var NEVER, MAX_STEP;
var init_timer = __esm({
  "sys/timer.ts"() {
    NEVER = {
      cancel() {
      }
    };
    MAX_STEP = 2147483647;
  }
});

// host/unix_socket.ts
async function removeStaleSocket(path, what) {
  let info;
  try {
    info = await Deno.lstat(path);
  } catch {
    return;
  }
  if (!info.isSocket) {
    throw new Error(`Cannot create the ${what} socket ${path}: something that is not a socket is there (not removed)`);
  }
  try {
    const c = await Deno.connect({
      transport: "unix",
      path
    });
    c.close();
  } catch {
    await Deno.remove(path);
    return;
  }
  throw new Error(`Cannot create the ${what} socket ${path}: another process listens on it`);
}
var init_unix_socket = __esm({
  "host/unix_socket.ts"() {
  }
});

// snapshot/format.ts
function b64(bytes2) {
  let s = "";
  for (let i = 0; i < bytes2.length; i += 32768) {
    s += String.fromCharCode(...bytes2.subarray(i, i + 32768));
  }
  return btoa(s);
}
function unb64(s) {
  if (fromBase64) return fromBase64(s);
  const bin = atob(s);
  const out = new Uint8Array(bin.length);
  for (let i = 0; i < bin.length; i++) out[i] = bin.charCodeAt(i);
  return out;
}
function toJson(value) {
  return JSON.stringify(value, (_k, v) => {
    if (typeof v === "bigint") return {
      $big: v.toString()
    };
    if (v instanceof Uint8Array) return {
      $b64: b64(v)
    };
    return v;
  });
}
function untag(v) {
  if (v === null || typeof v !== "object") return v;
  if (Array.isArray(v)) {
    for (let i = 0; i < v.length; i++) {
      const x = v[i], y = untag(x);
      if (y !== x) v[i] = y;
    }
    return v;
  }
  const o = v;
  const keys = Object.keys(o);
  if (keys.length === 1) {
    if (typeof o.$big === "string" && BIG.test(o.$big)) return BigInt(o.$big);
    if (typeof o.$b64 === "string") return unb64(o.$b64);
  }
  for (const k of keys) {
    const x = o[k], y = untag(x);
    if (y !== x) Object.defineProperty(o, k, {
      value: y,
      writable: true,
      enumerable: true
    });
  }
  return o;
}
function fromJson(text) {
  return untag(JSON.parse(text));
}
async function sha256(b) {
  return new Uint8Array(await crypto.subtle.digest("SHA-256", b));
}
async function encodeState(state) {
  const payload = new TextEncoder().encode(toJson(state));
  if (payload.byteLength > SNAPSHOT_MAX_STATE) {
    throw new SnapshotError(`Cannot write snapshot: state is ${payload.byteLength} bytes, over the cap`);
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
async function decodeState(bytes2) {
  if (bytes2.byteLength < HEADER) {
    throw new SnapshotError(`Cannot read snapshot: the state file is truncated (${bytes2.byteLength} bytes)`);
  }
  if (new TextDecoder().decode(bytes2.subarray(0, 8)) !== SNAPSHOT_MAGIC) {
    throw new SnapshotError("Cannot read snapshot: the state file has the wrong magic (not a denovm snapshot)");
  }
  const v = new DataView(bytes2.buffer, bytes2.byteOffset, bytes2.byteLength);
  const version = v.getUint32(8, true);
  if (!SNAPSHOT_READS.includes(version)) {
    throw new SnapshotError(`Cannot read snapshot: format version ${version}, this VMM reads ${SNAPSHOT_READS.join(" and ")}`);
  }
  const len = v.getUint32(12, true);
  if (len > SNAPSHOT_MAX_STATE) {
    throw new SnapshotError(`Cannot read snapshot: state of ${len} bytes is over the cap`);
  }
  if (HEADER + len !== bytes2.byteLength) {
    throw new SnapshotError(`Cannot read snapshot: the state file is ${bytes2.byteLength} bytes, its header says ${HEADER + len} (truncated?)`);
  }
  const payload = bytes2.subarray(HEADER);
  const want = bytes2.subarray(16, 48), got = await sha256(payload);
  if (!want.every((b, i) => b === got[i])) {
    throw new SnapshotError("Cannot read snapshot: checksum mismatch (corrupt)");
  }
  try {
    return fromJson(new TextDecoder().decode(payload));
  } catch (e) {
    throw new SnapshotError(`Cannot read snapshot: bad payload: ${e instanceof Error ? e.message : String(e)}`);
  }
}
async function writeAtomic(path, bytes2) {
  const tmp = `${path}.tmp-${Deno.pid}`;
  const f = await Deno.open(tmp, {
    write: true,
    create: true,
    truncate: true,
    mode: 384
  });
  try {
    let o = 0;
    while (o < bytes2.byteLength) o += await f.write(bytes2.subarray(o));
    await f.syncData();
  } finally {
    f.close();
  }
  await Deno.rename(tmp, path);
}
var SNAPSHOT_MAGIC, SNAPSHOT_VERSION, SNAPSHOT_READS, SNAPSHOT_MAX_STATE, HEADER, SnapshotError, fromBase64, BIG;
var init_format = __esm({
  "snapshot/format.ts"() {
    SNAPSHOT_MAGIC = "DNVMSNAP";
    SNAPSHOT_VERSION = 3;
    SNAPSHOT_READS = [
      2,
      3
    ];
    SNAPSHOT_MAX_STATE = 64 * 1024 * 1024;
    HEADER = 8 + 4 + 4 + 32;
    SnapshotError = class extends Error {
      /** `message` says what is wrong with the snapshot; the name is "SnapshotError". */
      constructor(message) {
        super(message);
        this.name = "SnapshotError";
      }
    };
    fromBase64 = Uint8Array.fromBase64;
    BIG = /^-?\d{1,40}$/;
  }
});

// portable/bridge.ts
async function readLine(c) {
  const buf = new Uint8Array(MAX_LINE);
  const one = new Uint8Array(1);
  let n = 0;
  while (n < MAX_LINE) {
    const r = await c.read(one).catch(() => null);
    if (r === null) return void 0;
    if (one[0] === 10) return new TextDecoder().decode(buf.subarray(0, n));
    buf[n++] = one[0];
  }
  return void 0;
}
async function readAck(c, ms) {
  const b = new Uint8Array(1);
  const n = await within(c.read(b).catch(() => null), ms);
  return n === 1 && b[0] === ACK2;
}
function close(c) {
  try {
    c?.close();
  } catch {
  }
}
async function pipe(a, b) {
  const one = async (from, to) => {
    const buf = new Uint8Array(64 * 1024);
    try {
      for (; ; ) {
        const n = await from.read(buf);
        if (n === null) break;
        for (let o = 0; o < n; ) o += await to.write(buf.subarray(o, n));
      }
      await to.closeWrite?.();
    } catch {
      close(a);
      close(b);
    }
  };
  await Promise.all([
    one(a, b),
    one(b, a)
  ]);
  close(a);
  close(b);
}
function sameToken(a, b) {
  if (a.length !== b.length) return false;
  let d = 0;
  for (let i = 0; i < a.length; i++) d |= a.charCodeAt(i) ^ b.charCodeAt(i);
  return d === 0;
}
var BRIDGE_GUEST_PORT, BRIDGE_HOST_ALIAS, BRIDGE_ENV, INNER_SOCKETS, UP_WAIT_MS, ACK2, MAX_LINE, HostBridge, InnerBridge;
var init_bridge = __esm({
  "portable/bridge.ts"() {
    init_timer();
    init_unix_socket();
    BRIDGE_GUEST_PORT = 7e3;
    BRIDGE_HOST_ALIAS = "10.0.2.2";
    BRIDGE_ENV = "DENOVM_PORTABLE_BRIDGE";
    INNER_SOCKETS = {
      api: "/run/denovm-bridge/api.sock",
      vsock: "/run/denovm-bridge/vsock"
    };
    UP_WAIT_MS = 12e4;
    ACK2 = 1;
    MAX_LINE = 256;
    HostBridge = class _HostBridge {
      /** The secret both sides prove on every TCP connection (hex). */
      token;
      /** The host TCP port QEMU forwards to {@link BRIDGE_GUEST_PORT} inside. */
      inPort;
      #out;
      #unix = [];
      #conns = /* @__PURE__ */ new Set();
      #inTarget;
      #closed = false;
      constructor(o, inPort, out) {
        const t = crypto.getRandomValues(new Uint8Array(24));
        this.token = [
          ...t
        ].map((b) => b.toString(16).padStart(2, "0")).join("");
        this.inPort = inPort;
        this.#out = out;
        this.#inTarget = o.inTarget ?? {
          hostname: "127.0.0.1",
          port: inPort
        };
      }
      /** Listens on the user's socket paths and on the "out" TCP port. */
      static async start(o) {
        const probe = Deno.listen({
          hostname: "127.0.0.1",
          port: 0
        });
        const inPort = probe.addr.port;
        probe.close();
        const out = Deno.listen({
          hostname: "127.0.0.1",
          port: 0
        });
        const b = new _HostBridge(o, inPort, out);
        try {
          for (const name2 of [
            "api",
            "vsock"
          ]) {
            const path = o[name2];
            if (path === void 0) continue;
            await removeStaleSocket(path, name2 === "api" ? "API" : "vsock");
            const listener = Deno.listen({
              transport: "unix",
              path
            });
            Deno.chmodSync(path, 384);
            b.#unix.push({
              name: name2,
              path,
              listener
            });
          }
        } catch (e) {
          b.close();
          throw e;
        }
        for (const u of b.#unix) void b.#acceptIn(u.name, u.listener);
        if (o.vsock !== void 0) void b.#acceptOut(o.vsock);
        return b;
      }
      /** The "out" port the inner side connects to (through {@link BRIDGE_HOST_ALIAS}). */
      get outPort() {
        return this.#out.addr.port;
      }
      /** The environment value that tells the inner CLI how to reach this side. */
      get env() {
        return {
          [BRIDGE_ENV]: `${this.token},${this.outPort}`
        };
      }
      #track(c) {
        this.#conns.add(c);
      }
      async #acceptIn(name2, l) {
        try {
          for await (const c of l) {
            this.#track(c);
            void this.#forwardIn(name2, c).finally(() => this.#conns.delete(c));
          }
        } catch {
        }
      }
      async #forwardIn(name2, client) {
        const until = Date.now() + UP_WAIT_MS;
        while (!this.#closed && Date.now() < until) {
          const tcp = await Deno.connect(this.#inTarget).catch(() => void 0);
          if (tcp) {
            this.#track(tcp);
            const ok2 = await tcp.write(new TextEncoder().encode(`${this.token} ${name2}
`)).then(() => readAck(tcp, 1e4), () => false);
            if (ok2) return await pipe(client, tcp).finally(() => this.#conns.delete(tcp));
            close(tcp);
            this.#conns.delete(tcp);
          }
          await sleep(250);
        }
        close(client);
      }
      async #acceptOut(vsockPath) {
        try {
          for await (const c of this.#out) {
            this.#track(c);
            void this.#forwardOut(vsockPath, c).finally(() => this.#conns.delete(c));
          }
        } catch {
        }
      }
      async #forwardOut(vsockPath, tcp) {
        const line = await readLine(tcp);
        const m = line === void 0 ? null : /^(\S+) PORT (\d{1,10})$/.exec(line);
        if (!m || !sameToken(m[1], this.token) || Number(m[2]) > 4294967295) return close(tcp);
        const target = await Deno.connect({
          transport: "unix",
          path: `${vsockPath}_${m[2]}`
        }).catch(() => void 0);
        if (!target) return close(tcp);
        this.#track(target);
        try {
          await tcp.write(new Uint8Array([
            ACK2
          ]));
        } catch {
          close(target);
          return close(tcp);
        }
        await pipe(tcp, target).finally(() => this.#conns.delete(target));
      }
      /** Stops listening, closes every connection and removes the sockets it created. */
      close() {
        if (this.#closed) return;
        this.#closed = true;
        try {
          this.#out.close();
        } catch {
        }
        for (const u of this.#unix) {
          try {
            u.listener.close();
          } catch {
          }
          try {
            Deno.removeSync(u.path);
          } catch {
          }
        }
        for (const c of this.#conns) close(c);
        this.#conns.clear();
      }
    };
    InnerBridge = class _InnerBridge {
      #token;
      #outPort;
      #hostAlias;
      #listener;
      #conns = /* @__PURE__ */ new Set();
      /** From {@link BRIDGE_ENV}'s value (`<token>,<out port>`). */
      constructor(value, opts = {}) {
        const m = /^([0-9a-f]{16,128}),(\d{1,5})$/.exec(value);
        if (!m) throw new TypeError(`${BRIDGE_ENV} is malformed`);
        this.#token = m[1];
        this.#outPort = Number(m[2]);
        this.#hostAlias = opts.hostAlias ?? BRIDGE_HOST_ALIAS;
      }
      /** The bridge the outer CLI set up, when this process runs inside the portable machine. */
      static fromEnv() {
        const v = Deno.env.get(BRIDGE_ENV);
        return v ? new _InnerBridge(v) : void 0;
      }
      /**
       * Accepts "in" connections on `port` and connects each to the inner socket it names
       * (`paths`, by default {@link INNER_SOCKETS}), waiting for that socket to appear.
       */
      listen(paths = INNER_SOCKETS, port = BRIDGE_GUEST_PORT) {
        const l = Deno.listen({
          hostname: "0.0.0.0",
          port
        });
        this.#listener = l;
        (async () => {
          try {
            for await (const c of l) {
              this.#conns.add(c);
              void this.#serveIn(c, paths).finally(() => this.#conns.delete(c));
            }
          } catch {
          }
        })();
        return l.addr.port;
      }
      async #serveIn(tcp, paths) {
        const line = await readLine(tcp);
        const m = line === void 0 ? null : /^(\S+) (api|vsock)$/.exec(line);
        if (!m || !sameToken(m[1], this.#token)) return close(tcp);
        const path = paths[m[2]];
        if (path === void 0) return close(tcp);
        const until = Date.now() + UP_WAIT_MS;
        let target;
        while (!target && Date.now() < until) {
          target = await Deno.connect({
            transport: "unix",
            path
          }).catch(() => void 0);
          if (!target) await sleep(100);
        }
        if (!target) return close(tcp);
        this.#conns.add(target);
        try {
          await tcp.write(new Uint8Array([
            ACK2
          ]));
        } catch {
          close(target);
          return close(tcp);
        }
        await pipe(tcp, target).finally(() => this.#conns.delete(target));
      }
      /**
       * How the inner VMM makes a guest's connect to host vsock port `port`: through the host
       * side to `<path>_<port>` on the host; null when nobody listens there.
       */
      async connectHostPort(port) {
        const tcp = await Deno.connect({
          hostname: this.#hostAlias,
          port: this.#outPort
        }).catch(() => void 0);
        if (!tcp) return null;
        try {
          await tcp.write(new TextEncoder().encode(`${this.#token} PORT ${port}
`));
          if (await readAck(tcp, 1e4)) return tcp;
        } catch {
        }
        close(tcp);
        return null;
      }
      /** Stops listening and closes every connection. */
      close() {
        try {
          this.#listener?.close();
        } catch {
        }
        for (const c of this.#conns) close(c);
        this.#conns.clear();
      }
    };
  }
});

// portable/apt.ts
async function sh(cmd, opts = {}) {
  const out = await new Deno.Command("bash", {
    args: [
      "-c",
      cmd
    ],
    ...opts.cwd ? {
      cwd: opts.cwd
    } : {},
    stdin: "null",
    stdout: "piped",
    stderr: "piped"
  }).output();
  if (!out.success) {
    throw new Error(`${cmd} failed (${out.code}):
${new TextDecoder().decode(out.stderr).slice(-4e3)}`);
  }
  return new TextDecoder().decode(out.stdout);
}
async function hasPackage(name2) {
  const out = await sh(`dpkg-query -W -f='\${Status}' ${name2} 2>/dev/null || true`);
  return out.includes("install ok installed");
}
async function aptUpdate() {
  if (updated) return;
  await sh("apt-get update -qq");
  updated = true;
}
function aptAvailable() {
  try {
    return Deno.statSync("/usr/bin/apt-get").isFile;
  } catch {
    return false;
  }
}
async function ensurePackages(pkgs, why) {
  const missing = [];
  for (const p of pkgs) if (!await hasPackage(p)) missing.push(p);
  if (missing.length === 0) return;
  if (!aptAvailable() || Deno.uid?.() !== 0) {
    throw new MissingToolError(`${why} needs the Debian packages ${missing.join(", ")}; install them (as root: apt-get install --no-install-recommends ${missing.join(" ")}) and run again`);
  }
  console.error(`denovm: installing ${missing.join(" ")} (${why}; once)`);
  await aptUpdate();
  await sh(`DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${missing.join(" ")}`);
}
var MissingToolError, updated;
var init_apt = __esm({
  "portable/apt.ts"() {
    MissingToolError = class extends Error {
      name = "MissingToolError";
    };
    updated = false;
  }
});

// portable/cache.ts
function cacheDir(sub) {
  const base = Deno.env.get("XDG_CACHE_HOME") ?? `${Deno.env.get("HOME") ?? "/tmp"}/.cache`;
  return `${base}/denovm/${sub}`;
}
async function contentHash(parts, bytes2 = 8) {
  const enc = parts.map((p) => typeof p === "string" ? new TextEncoder().encode(p) : p);
  const all = new Uint8Array(enc.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of enc) {
    all.set(p, o);
    o += p.byteLength;
  }
  const h = new Uint8Array(await crypto.subtle.digest("SHA-256", all));
  return Array.from(h.subarray(0, bytes2), (b) => b.toString(16).padStart(2, "0")).join("");
}
var init_cache = __esm({
  "portable/cache.ts"() {
  }
});

// portable/cpio.ts
function hex8(n) {
  return n.toString(16).padStart(8, "0");
}
function cpioNewc(entries) {
  const enc = new TextEncoder();
  const parts = [];
  let size = 0;
  const push = (b) => {
    parts.push(b);
    size += b.byteLength;
    const pad = (4 - size % 4) % 4;
    if (pad) {
      parts.push(new Uint8Array(pad));
      size += pad;
    }
  };
  const all = [
    ...entries,
    {
      path: "TRAILER!!!",
      mode: 0,
      data: new Uint8Array(0)
    }
  ];
  all.forEach((e, i) => {
    const body = e.symlink !== void 0 ? enc.encode(e.symlink) : e.data ?? new Uint8Array(0);
    const type = e.symlink !== void 0 ? S_IFLNK : e.data !== void 0 ? S_IFREG : S_IFDIR;
    const mode = e.path === "TRAILER!!!" ? 0 : type | e.mode & 4095;
    const name2 = enc.encode(e.path + "\0");
    const header = "070701" + hex8(i + 1) + hex8(mode) + hex8(0) + hex8(0) + hex8(type === S_IFDIR ? 2 : 1) + hex8(0) + hex8(body.byteLength) + hex8(0) + hex8(0) + hex8(0) + hex8(0) + hex8(name2.byteLength) + hex8(0);
    const head = new Uint8Array(110 + name2.byteLength);
    head.set(enc.encode(header));
    head.set(name2, 110);
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
async function cpioGzip(entries) {
  const stream = new Blob([
    cpioNewc(entries)
  ]).stream().pipeThrough(new CompressionStream("gzip"));
  return new Uint8Array(await new Response(stream).arrayBuffer());
}
var S_IFDIR, S_IFREG, S_IFLNK;
var init_cpio = __esm({
  "portable/cpio.ts"() {
    S_IFDIR = 16384;
    S_IFREG = 32768;
    S_IFLNK = 40960;
  }
});

// portable/assets.ts
function portableCacheDir() {
  return cacheDir("portable");
}
async function exists(p) {
  return await Deno.stat(p).then(() => true, () => false);
}
async function which(cmd) {
  const out = await sh(`command -v ${cmd} || true`);
  return out.trim() || void 0;
}
function moduleName(file) {
  return file.replace(/^.*\//, "").replace(/\.ko(\.(xz|zst|gz))?$/, "").replaceAll("-", "_");
}
function moduleDepends(ko) {
  const key = new TextEncoder().encode("\0depends=");
  outer: for (let i = 0; i + key.length <= ko.length; i++) {
    for (let j = 0; j < key.length; j++) if (ko[i + j] !== key[j]) continue outer;
    let end = i + key.length;
    while (end < ko.length && ko[end] !== 0) end++;
    const v = new TextDecoder().decode(ko.subarray(i + key.length, end));
    return v.split(",").filter((s) => s.length > 0).map((s) => s.replaceAll("-", "_"));
  }
  return [];
}
function loadOrder(wanted, deps) {
  const order = [];
  const seen = /* @__PURE__ */ new Set();
  const visit = (name2, path) => {
    if (seen.has(name2)) return;
    if (path.includes(name2)) {
      throw new Error(`module dependency loop: ${[
        ...path,
        name2
      ].join(" -> ")}`);
    }
    const d = deps(name2);
    if (d === void 0) throw new Error(`module ${name2} is not in the kernel package`);
    for (const x of d) visit(x, [
      ...path,
      name2
    ]);
    seen.add(name2);
    order.push(name2);
  };
  for (const w of wanted) visit(w, []);
  return order;
}
async function decompressModule(path) {
  if (path.endsWith(".ko")) return await Deno.readFile(path);
  const tool = path.endsWith(".xz") ? "xz" : path.endsWith(".zst") ? "zstd" : "gzip";
  const out = await new Deno.Command(tool, {
    args: [
      "-dc",
      path
    ],
    stdout: "piped"
  }).output();
  if (!out.success) throw new Error(`cannot decompress ${path} with ${tool}`);
  return out.stdout;
}
async function moduleClosure(files, wanted) {
  const found = /* @__PURE__ */ new Map();
  const queue = [
    ...wanted
  ];
  while (queue.length) {
    const name2 = queue.shift();
    if (found.has(name2)) continue;
    const file = files.get(name2);
    if (file === void 0) throw new Error(`module ${name2} is not in the kernel package`);
    const data = await decompressModule(file);
    const deps = moduleDepends(data);
    found.set(name2, {
      deps,
      data
    });
    queue.push(...deps);
  }
  return found;
}
async function ensureKernel(cache = portableCacheDir()) {
  await Deno.mkdir(cache, {
    recursive: true
  });
  const have = [];
  for await (const e of Deno.readDir(cache)) {
    if (!e.isDirectory || !e.name.startsWith("kernel-")) continue;
    const ok2 = await Deno.readTextFile(`${cache}/${e.name}/ok`).catch(() => "");
    if (ok2.split("\n").includes(MODULES_LINE)) have.push(e.name);
  }
  const newest = have.sort().at(-1);
  if (newest) return {
    dir: `${cache}/${newest}`,
    release: newest.slice("kernel-".length)
  };
  if (!await which("apt-get") || !await which("dpkg-deb")) {
    throw new MissingToolError("the portable machine needs Debian's kernel package linux-image-amd64, and this host has no apt-get/dpkg-deb to fetch it");
  }
  let deps = await sh("apt-cache depends linux-image-amd64 2>/dev/null || true");
  if (!/Depends: linux-image-/.test(deps)) {
    await aptUpdate();
    deps = await sh("apt-cache depends linux-image-amd64 2>/dev/null || true");
  }
  const pkg2 = /Depends: (linux-image-[0-9]\S*-amd64)\b/.exec(deps)?.[1];
  if (!pkg2) throw new MissingToolError("apt knows no linux-image-amd64 package to fetch");
  const release = pkg2.slice("linux-image-".length);
  const dir = `${cache}/kernel-${release}`;
  const work = await Deno.makeTempDir({
    dir: cache,
    prefix: "fetch-"
  });
  try {
    console.error(`denovm: fetching Debian's ${pkg2} for the portable machine (once, ~70 MB)`);
    await sh(`apt-get download -q -o APT::Sandbox::User=root ${pkg2} >&2`, {
      cwd: work
    });
    const deb = (await sh(`ls ${work}/*.deb`)).trim();
    console.error(`denovm: unpacking ${deb.replace(/^.*\//, "")}`);
    await sh(`dpkg-deb --fsys-tarfile ${deb} | tar -x -C ${work} ./boot ./lib/modules`);
    const modRoot = `${work}/lib/modules/${release}/kernel`;
    const files = /* @__PURE__ */ new Map();
    for (const f of (await sh(`find ${modRoot} -name '*.ko*'`)).split("\n").filter(Boolean)) {
      files.set(moduleName(f), f);
    }
    await Deno.remove(dir, {
      recursive: true
    }).catch(() => {
    });
    for (const [sub, wanted] of [
      [
        "modules",
        L1_MODULES
      ],
      [
        "guest-modules",
        GUEST_MODULES
      ]
    ]) {
      await Deno.mkdir(`${dir}/${sub}`, {
        recursive: true
      });
      let mods, order;
      try {
        mods = await moduleClosure(files, wanted);
        order = loadOrder(wanted, (n) => mods.get(n)?.deps);
      } catch (e) {
        if (sub === "modules") throw e;
        await Deno.writeTextFile(`${dir}/${sub}/missing`, e.message);
        continue;
      }
      for (const n of order) await Deno.writeFile(`${dir}/${sub}/${n}.ko`, mods.get(n).data);
      await Deno.writeTextFile(`${dir}/${sub}/order`, order.map((n) => `${n}.ko`).join("\n") + "\n");
    }
    await Deno.copyFile(`${work}/boot/vmlinuz-${release}`, `${dir}/vmlinuz`);
    await Deno.writeTextFile(`${dir}/ok`, `${pkg2}
${MODULES_LINE}
`);
    return {
      dir,
      release
    };
  } finally {
    await Deno.remove(work, {
      recursive: true
    }).catch(() => {
    });
  }
}
async function moduleEntries(src, dest) {
  const order = await Deno.readFile(`${src}/order`);
  const entries = [
    {
      path: dest,
      mode: 493
    },
    {
      path: `${dest}/order`,
      mode: 420,
      data: order
    }
  ];
  for (const line of new TextDecoder().decode(order).split("\n").filter(Boolean)) {
    entries.push({
      path: `${dest}/${line}`,
      mode: 420,
      data: await Deno.readFile(`${src}/${line}`)
    });
  }
  return entries;
}
async function ensureInitramfs(cache, kernelDir) {
  const busybox = await Deno.readFile("/bin/busybox");
  const init = await Deno.readFile(`${HERE}init.sh`);
  const order = await Deno.readFile(`${kernelDir}/modules/order`);
  const out = `${cache}/initramfs-${await contentHash([
    busybox,
    init,
    order,
    kernelDir
  ])}.cpio.gz`;
  if (await exists(out)) return out;
  const entries = [
    {
      path: "bin",
      mode: 493
    },
    {
      path: "bin/busybox",
      mode: 493,
      data: busybox
    },
    {
      path: "init",
      mode: 493,
      data: init
    },
    ...await moduleEntries(`${kernelDir}/modules`, "modules")
  ];
  await Deno.writeFile(`${out}.tmp`, await cpioGzip(entries));
  await Deno.rename(`${out}.tmp`, out);
  return out;
}
async function ensurePortableAssets() {
  const cache = portableCacheDir();
  await Deno.mkdir(cache, {
    recursive: true
  });
  const pkgs = [];
  if (!await which("qemu-system-x86_64")) pkgs.push("qemu-system-x86");
  if (!await hasStaticBusybox()) pkgs.push("busybox-static");
  if (pkgs.length) await ensurePackages(pkgs, "the portable machine");
  const qemu = await which("qemu-system-x86_64");
  if (!qemu) throw new MissingToolError("qemu-system-x86_64 is still missing after the install");
  const { dir, release } = await ensureKernel(cache);
  const initrd = await ensureInitramfs(cache, dir);
  return {
    qemu,
    kernel: `${dir}/vmlinuz`,
    initrd,
    release
  };
}
async function hasStaticBusybox() {
  try {
    const head = await Deno.readFile("/bin/busybox");
    return !new TextDecoder("latin1").decode(head.subarray(0, 4096)).includes("/lib64/ld-linux");
  } catch {
    return false;
  }
}
var HERE, L1_MODULES, GUEST_MODULES, MODULES_LINE;
var init_assets = __esm({
  "portable/assets.ts"() {
    init_apt();
    init_cache();
    init_cpio();
    HERE = new URL("../portable/", import.meta.url).pathname;
    L1_MODULES = [
      "kvm_amd",
      "virtio_pci",
      "9pnet_virtio",
      "9p",
      "overlay",
      "tun",
      "veth",
      "virtio_net"
    ];
    GUEST_MODULES = [
      "virtio_mmio",
      "virtio_blk",
      "virtio_net",
      "virtio_rng",
      "virtio_console",
      "vmw_vsock_virtio_transport"
    ];
    MODULES_LINE = `modules ${L1_MODULES.join(",")} guest ${GUEST_MODULES.join(",")}`;
  }
});

// portable/job_frames.ts
function frame(type, payload = new Uint8Array()) {
  const p = typeof payload === "string" ? new TextEncoder().encode(payload) : payload;
  const out = new Uint8Array(5 + p.byteLength);
  out[0] = type;
  new DataView(out.buffer).setUint32(1, p.byteLength, true);
  out.set(p, 5);
  return out;
}
async function codeFingerprint(root) {
  const lines = [
    `deno ${Deno.version.deno} ${root}`
  ];
  const walk = async (dir, rel) => {
    const entries = [];
    for await (const e of Deno.readDir(dir)) entries.push(e);
    for (const e of entries) {
      if (e.name.startsWith(".")) continue;
      const path = `${dir}/${e.name}`;
      if (e.isDirectory) {
        if (!(rel === "" && NOT_CODE.has(e.name))) await walk(path, `${rel}${e.name}/`);
      } else if (/\.(ts|json|lock)$/.test(e.name)) {
        const st = await Deno.stat(path).catch(() => void 0);
        if (st) lines.push(`${rel}${e.name} ${st.size} ${st.mtime?.getTime() ?? 0}`);
      }
    }
  };
  await walk(root, "");
  lines.sort();
  const digest = await crypto.subtle.digest("SHA-256", new TextEncoder().encode(lines.join("\n")));
  return Array.from(new Uint8Array(digest).subarray(0, 16), (b) => b.toString(16).padStart(2, "0")).join("");
}
var F2, SIGNAL_NUMBERS, MAX_FRAME2, FrameError, FrameReader, NOT_CODE;
var init_job_frames = __esm({
  "portable/job_frames.ts"() {
    F2 = {
      job: 74,
      stdin: 73,
      stdinEnd: 69,
      signal: 83,
      credit: 67,
      accepted: 65,
      refused: 82,
      stdout: 79,
      stderr: 87,
      status: 81
    };
    SIGNAL_NUMBERS = {
      SIGHUP: 1,
      SIGINT: 2,
      SIGQUIT: 3,
      SIGTERM: 15
    };
    MAX_FRAME2 = 1 << 20;
    FrameError = class extends Error {
    };
    FrameReader = class {
      read;
      // Bytes read and not yet taken are buf[start, end); the buffer grows by doubling.
      #buf;
      #start;
      #end;
      #done;
      /** Reads from `read` (a `Deno.Conn`'s `read`, or any function like it). */
      constructor(read) {
        this.read = read;
        this.#buf = new Uint8Array(65536);
        this.#start = 0;
        this.#end = 0;
        this.#done = false;
      }
      async #fill(n) {
        while (this.#end - this.#start < n && !this.#done) {
          if (this.#buf.byteLength - this.#start < n || this.#end === this.#buf.byteLength) {
            const kept2 = this.#end - this.#start;
            let size = this.#buf.byteLength;
            while (size < n || size - kept2 < 4096) size *= 2;
            const next = size === this.#buf.byteLength ? this.#buf : new Uint8Array(size);
            next.set(this.#buf.subarray(this.#start, this.#end), 0);
            this.#buf = next;
            this.#start = 0;
            this.#end = kept2;
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
      async next() {
        if (!await this.#fill(5)) {
          if (this.#end === this.#start) return void 0;
          throw new FrameError("the stream ended inside a frame header");
        }
        const view2 = new DataView(this.#buf.buffer, this.#buf.byteOffset + this.#start);
        const len = view2.getUint32(1, true);
        if (len > MAX_FRAME2) throw new FrameError(`a frame of ${len} bytes (at most ${MAX_FRAME2})`);
        if (!await this.#fill(5 + len)) throw new FrameError("the stream ended inside a frame");
        const type = this.#buf[this.#start];
        const payload = this.#buf.slice(this.#start + 5, this.#start + 5 + len);
        this.#start += 5 + len;
        if (this.#start === this.#end) this.#start = this.#end = 0;
        return {
          type,
          payload
        };
      }
    };
    NOT_CODE = /* @__PURE__ */ new Set([
      "tests",
      "bench",
      "docs",
      "node_modules",
      "testing"
    ]);
  }
});

// portable/machine.ts
function shellQuote(s) {
  return `'${s.replaceAll("'", `'\\''`)}'`;
}
async function concat3(stream, each) {
  const parts = [];
  for await (const c of stream) {
    parts.push(c);
    each?.(c);
  }
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}
function qemuArgs(a, ctl, o) {
  const args = [
    "-accel",
    `tcg,thread=${Deno.env.get("DENOVM_PORTABLE_TCG_THREAD") ?? TCG_THREAD}`,
    "-cpu",
    "max",
    "-smp",
    String(o.cpus),
    "-m",
    String(o.memMiB),
    "-kernel",
    a.kernel,
    "-initrd",
    a.initrd,
    "-append",
    `console=ttyS2 loglevel=4 panic=-1 quiet portable.kvm_amd=${(Deno.env.get("DENOVM_PORTABLE_KVM_AMD") ?? KVM_AMD_PARAMS).replaceAll(" ", ",")}`,
    "-nodefaults",
    "-no-user-config",
    "-display",
    "none",
    "-no-reboot",
    "-chardev",
    o.resident ? "null,id=s0" : "stdio,id=s0,signal=off",
    "-serial",
    "chardev:s0",
    "-chardev",
    o.resident ? "null,id=s1" : "file,id=s1,path=/proc/self/fd/2,append=on",
    "-serial",
    "chardev:s1",
    "-chardev",
    `file,id=s2,path=${ctl}/log`,
    "-serial",
    "chardev:s2",
    "-virtfs",
    "local,path=/,mount_tag=hostroot,readonly=on,security_model=none,multidevs=remap",
    "-virtfs",
    `local,path=${ctl},mount_tag=ctl,security_model=none`
  ];
  if (o.resident) {
    args.push("-virtfs", "local,path=/,mount_tag=hostrw,security_model=none,multidevs=remap");
  }
  o.shares.forEach((dir, i) => {
    args.push("-virtfs", `local,path=${dir},mount_tag=rw${i},security_model=none`);
  });
  if (o.net) {
    const fwd = o.net.forwards.map((f) => `,hostfwd=tcp:127.0.0.1:${f.host}-:${f.guest}`).join("");
    args.push("-netdev", `user,id=n0${fwd}`, "-device", "virtio-net-pci,netdev=n0");
  }
  return args;
}
function innerEnv(extra = {}) {
  const deno = Object.entries(Deno.env.toObject()).filter(([k]) => k.startsWith("DENO_"));
  return {
    ...Object.fromEntries(deno),
    HOME: Deno.env.get("HOME") ?? "/root",
    PATH: Deno.env.get("PATH") ?? "/usr/local/bin:/usr/bin:/bin",
    DENOVM_PORTABLE_INSIDE: "1",
    TERM: Deno.env.get("TERM") ?? "dumb",
    ...Deno.env.get("NO_COLOR") ? {
      NO_COLOR: "1"
    } : {},
    ...Deno.env.get("CI") ? {
      CI: Deno.env.get("CI")
    } : {},
    ...extra
  };
}
async function writeControl(ctl, o) {
  await Deno.writeTextFile(`${ctl}/cwd`, o.cwd);
  await Deno.writeTextFile(`${ctl}/run.sh`, o.command + "\n");
  await Deno.writeTextFile(`${ctl}/shares`, o.shares.map((d, i) => `rw${i} ${d}
`).join(""));
  await Deno.writeTextFile(`${ctl}/env`, Object.entries(innerEnv(o.env)).map(([k, v]) => `export ${k}=${shellQuote(v)}
`).join(""));
}
async function runPortable(o) {
  const assets = await ensurePortableAssets();
  const cwd = o.cwd ?? Deno.cwd();
  const ctl = await Deno.makeTempDir({
    prefix: "denovm-portable-"
  });
  const interactive = (o.stdio ?? "piped") === "inherit" && Deno.stdin.isTerminal();
  try {
    const shares = [];
    for (const w of o.writable ?? []) {
      const real = await Deno.realPath(w);
      if (!shares.includes(real)) shares.push(real);
    }
    await writeControl(ctl, {
      cwd,
      command: o.command,
      shares,
      env: o.env ?? {}
    });
    if (interactive) {
      const { columns, rows } = Deno.consoleSize();
      await Deno.writeTextFile(`${ctl}/tty`, `rows ${rows} cols ${columns}`);
      await Deno.writeTextFile(`${ctl}/stdin`, "");
    }
    if (o.net) await Deno.writeTextFile(`${ctl}/net`, "10.0.2.15/24 10.0.2.2\n");
    const args = qemuArgs(assets, ctl, {
      memMiB: o.memMiB ?? 4096,
      cpus: o.cpus ?? Number(Deno.env.get("DENOVM_PORTABLE_CPUS") ?? PORTABLE_CPUS),
      shares,
      ...o.net ? {
        net: o.net
      } : {}
    });
    const piped = (o.stdio ?? "piped") === "piped";
    const t0 = performance.now();
    const child = new Deno.Command(assets.qemu, {
      args,
      stdin: interactive ? "inherit" : "null",
      stdout: piped ? "piped" : "inherit",
      stderr: piped ? "piped" : "inherit"
    }).spawn();
    const out = piped ? concat3(child.stdout, o.onStdout) : Promise.resolve(new Uint8Array());
    const err = piped ? concat3(child.stderr, o.onStderr) : Promise.resolve(new Uint8Array());
    let timer;
    let timedOut = false;
    if (o.timeoutS !== void 0) {
      timer = after(o.timeoutS * 1e3, () => {
        timedOut = true;
        try {
          child.kill("SIGKILL");
        } catch {
        }
      });
    }
    let signalled;
    const stopOn = (sig) => () => {
      signalled ??= sig;
      try {
        child.kill("SIGTERM");
      } catch {
      }
    };
    const listeners = FORWARDED_SIGNALS.map((sig) => [
      sig,
      stopOn(sig)
    ]);
    for (const [sig, f] of listeners) Deno.addSignalListener(sig, f);
    let qemuStatus;
    try {
      qemuStatus = await child.status;
    } finally {
      for (const [sig, f] of listeners) Deno.removeSignalListener(sig, f);
    }
    timer?.cancel();
    const [stdout, stderr] = await Promise.all([
      out,
      err
    ]);
    const seconds = (performance.now() - t0) / 1e3;
    const log = await Deno.readTextFile(`${ctl}/log`).catch(() => "");
    const statusText = (await Deno.readTextFile(`${ctl}/status`).catch(() => "")).trim();
    let status;
    if (timedOut) status = 124;
    else if (signalled) status = 128 + (SIGNAL_NUMBERS[signalled] ?? 0);
    else if (/^\d+$/.test(statusText)) status = Number(statusText);
    else status = 125;
    const note = timedOut ? `portable: timed out after ${o.timeoutS} s
` : signalled ? `portable: stopped by ${signalled}
` : status === 125 && statusText === "" ? `portable: the machine ended (qemu exit ${qemuStatus.code}) without running the command
` : "";
    return {
      status,
      stdout,
      stderr,
      log: log + note,
      seconds
    };
  } finally {
    await Deno.remove(ctl, {
      recursive: true
    }).catch(() => {
    });
  }
}
var PORTABLE_CPUS, TCG_THREAD, KVM_AMD_PARAMS, FORWARDED_SIGNALS;
var init_machine = __esm({
  "portable/machine.ts"() {
    init_timer();
    init_assets();
    init_job_frames();
    PORTABLE_CPUS = 1;
    TCG_THREAD = "single";
    KVM_AMD_PARAMS = "";
    FORWARDED_SIGNALS = [
      "SIGINT",
      "SIGTERM",
      "SIGHUP"
    ];
  }
});

// portable/spare.ts
var SPARE_PORTS;
var init_spare = __esm({
  async "portable/spare.ts"() {
    init_job_frames();
    SPARE_PORTS = [
      7001,
      7002
    ];
    if (false) {
      const slot = Number(Deno.args[0] ?? "1");
      const id = Deno.args[1] ?? "0";
      const port = SPARE_PORTS[slot - 1];
      if (port === void 0) throw new Error(`no slot ${slot}`);
      const tell = async (what) => {
        await Deno.writeTextFile(`${WARM}/fifo${slot}`, `${what} ${id}
`, {
          append: true
        });
      };
      const slotState = (what) => Deno.writeTextFile(`${CTL}/slot${slot}`, `${what} ${id}
`).catch(() => {
      });
      await slotState("loading");
      const root = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
      const fingerprint = await codeFingerprint2(root);
      const counts = /* @__PURE__ */ new Map();
      const addListener = Deno.addSignalListener;
      const removeListener = Deno.removeSignalListener;
      Deno.addSignalListener = (sig, f) => {
        counts.set(sig, (counts.get(sig) ?? 0) + 1);
        addListener(sig, f);
      };
      Deno.removeSignalListener = (sig, f) => {
        counts.set(sig, Math.max(0, (counts.get(sig) ?? 0) - 1));
        removeListener(sig, f);
      };
      for (const sig of Object.keys(SIGNAL_NUMBERS2)) addListener(sig, () => {
      });
      const { prewarmVcpuWorkers } = await null;
      prewarmVcpuWorkers(1);
      const cli = await null;
      const sys = await null;
      const nul = sys.openFile("/dev/null", sys.O_RDWR);
      sys.dup2(nul, 0);
      sys.dup2(nul, 1);
      const warm = await cli.main([
        "--portable",
        "off",
        "--quiet"
      ]).catch((e) => e);
      if (warm !== 0) console.error(`spare ${id}: the warm-up run failed: ${warm}`);
      prewarmVcpuWorkers(1);
      const token = (await Deno.readTextFile(`${CTL}/token`)).trim();
      const idleMs = Number((await Deno.readTextFile(`${CTL}/idle`).catch(() => "600")).trim()) * 1e3;
      const relay = new Worker(new URL("../portable/spare_relay.ts", import.meta.url), {
        type: "module"
      });
      const next = (kind) => new Promise((resolve) => {
        const on = (e) => {
          if (e.data?.kind === kind) {
            relay.removeEventListener("message", on);
            resolve(e);
          }
        };
        relay.addEventListener("message", on);
      });
      let job;
      const started = Date.now();
      let idleTimer;
      const running = async () => {
        let n = 0;
        for await (const e of Deno.readDir(`${WARM}/jobs`)) {
          if (await Deno.stat(`/proc/${e.name}`).catch(() => void 0)) n++;
          else await Deno.remove(`${WARM}/jobs/${e.name}`).catch(() => {
          });
        }
        return n;
      };
      const checkIdle = async () => {
        const last = (await Deno.stat(`${WARM}/last`).catch(() => void 0))?.mtime?.getTime() ?? 0;
        const quiet = Date.now() - Math.max(started, last);
        if (quiet >= idleMs && await running() === 0 && job === void 0) {
          await tell("idle");
          Deno.exit(0);
        }
        idleTimer = sys.after(Math.max(1e3, idleMs - quiet), checkIdle);
      };
      if (idleMs > 0) idleTimer = sys.after(idleMs, checkIdle);
      const [inR, inW] = sys.pipe();
      const [outR, outW] = sys.pipe();
      const [errR, errW] = sys.pipe();
      const piped = next("piped");
      relay.postMessage({
        kind: "pipes",
        stdin: inW,
        stdout: outR,
        stderr: errR
      });
      await piped;
      for (const fd of [
        inW,
        outR,
        errR
      ]) sys.closeFd(fd);
      let finishing;
      const mounted = [];
      const cleanup = () => {
        for (const d of mounted.splice(0).reverse()) {
          try {
            sys.umount(d, sys.MNT_DETACH);
          } catch {
          }
        }
        try {
          Deno.removeSync(`${WARM}/jobs/${Deno.pid}`);
          Deno.writeTextFileSync(`${WARM}/last`, `${Date.now()}
`);
        } catch {
        }
      };
      const finish = (code2) => finishing ??= (async () => {
        cleanup();
        for (const fd of [
          0,
          1,
          2
        ]) sys.dup2(nul, fd);
        const flushed = next("flushed");
        relay.postMessage({
          kind: "exit",
          code: code2
        });
        await Promise.race([
          flushed,
          next("hangup")
        ]);
        Deno.exit(code2);
      })();
      relay.addEventListener("message", (e) => {
        if (e.data?.kind === "job") job = e.data.job;
        if (e.data?.kind === "hangup" && !finishing) {
          cleanup();
          Deno.exit(137);
        } else if (e.data?.kind === "signal") {
          const name2 = String(e.data.name);
          const num2 = SIGNAL_NUMBERS2[name2];
          if (num2 === void 0) return;
          if ((counts.get(name2) ?? 0) > 0) Deno.kill(Deno.pid, name2);
          else void finish(128 + num2);
        }
      });
      const listening = next("listening");
      const jobOrStale = Promise.race([
        next("job"),
        next("stale")
      ]);
      relay.postMessage({
        kind: "listen",
        port,
        token,
        fingerprint,
        who: `${slot} ${id}`,
        jobs: `${WARM}/jobs`
      });
      await listening;
      await Deno.writeTextFile(`${CTL}/state`, `ready ${slot}.${id}
`, {
        append: true
      });
      await slotState("ready");
      await tell("ready");
      const got = await jobOrStale;
      idleTimer?.cancel();
      if (got.data.kind === "stale") {
        await slotState("stale");
        await tell("stale");
        Deno.exit(0);
      }
      if (!job) throw new Error("a job message without a job");
      for await (const t of Deno.readDir("/proc/self/task")) {
        try {
          sys.setThreadNice(Number(t.name), 0);
        } catch {
        }
      }
      await slotState("busy");
      await tell("taken");
      await Deno.writeTextFile("/proc/sys/vm/drop_caches", "3").catch(() => {
      });
      sys.dup2(inR, 0);
      sys.dup2(outW, 1);
      sys.dup2(errW, 2);
      for (const fd of [
        inR,
        outW,
        errW
      ]) sys.closeFd(fd);
      let code;
      try {
        for (const k of [
          "NO_COLOR",
          "CI"
        ]) if (!(k in job.env)) Deno.env.delete(k);
        for (const [k, v] of Object.entries(job.env)) Deno.env.set(k, v);
        for (const dir of job.writable) {
          sys.mountBind(`${HOST_RW}${dir}`, dir);
          mounted.push(dir);
        }
        Deno.chdir(job.cwd);
        code = await cli.run(job.args);
      } catch (e) {
        console.error(`denovm: portable machine: ${e instanceof Error ? e.message : String(e)}`);
        code = 125;
      }
      await finish(code);
    }
  }
});

// portable/resident.ts
function idleSeconds() {
  const v = Deno.env.get("DENOVM_PORTABLE_IDLE_S");
  if (v === void 0 || v === "") return DEFAULT_IDLE_S;
  const n = Number(v);
  return Number.isInteger(n) && n >= 0 ? n : DEFAULT_IDLE_S;
}
async function residentDir(root = CHECKOUT) {
  const instance = Deno.env.get("DENOVM_PORTABLE_INSTANCE") ?? "";
  return cacheDir(`portable/resident/${await contentHash([
    root,
    instance
  ])}`);
}
async function readMachine(dir) {
  try {
    const m = JSON.parse(await Deno.readTextFile(`${dir}/machine.json`));
    return Number.isInteger(m.pid) && Array.isArray(m.ports) && m.ports.every(Number.isInteger) ? m : void 0;
  } catch {
    return void 0;
  }
}
async function qemuAlive(pid, dir) {
  try {
    const cmd = await Deno.readTextFile(`/proc/${pid}/cmdline`);
    return cmd.includes(`${dir}/ctl`);
  } catch {
    return false;
  }
}
async function residentStatus(root = CHECKOUT) {
  const dir = await residentDir(root);
  const m = await readMachine(dir);
  const running = m !== void 0 && await qemuAlive(m.pid, dir);
  const state = (await Deno.readTextFile(`${dir}/ctl/state`).catch(() => "")).trim().split("\n").pop();
  const slots = [];
  for (let i = 1; i <= SPARE_PORTS.length; i++) {
    const v = running ? await Deno.readTextFile(`${dir}/ctl/slot${i}`).catch(() => "") : "";
    slots.push(v.trim() || "none");
  }
  return {
    dir,
    running,
    slots,
    ...running ? {
      pid: m.pid,
      uptimeS: Math.round((Date.now() - m.started) / 1e3)
    } : {},
    ...state ? {
      state
    } : {}
  };
}
async function stopResident(root = CHECKOUT) {
  const dir = await residentDir(root);
  const m = await readMachine(dir);
  if (!m || !await qemuAlive(m.pid, dir)) return false;
  try {
    Deno.kill(m.pid, "SIGTERM");
  } catch {
    return false;
  }
  for (let i = 0; i < 100 && await qemuAlive(m.pid, dir); i++) {
    await sleep(50);
  }
  if (await qemuAlive(m.pid, dir)) Deno.kill(m.pid, "SIGKILL");
  await Deno.remove(`${dir}/machine.json`).catch(() => {
  });
  return true;
}
function freePort() {
  const l = Deno.listen({
    hostname: "127.0.0.1",
    port: 0
  });
  const port = l.addr.port;
  l.close();
  return port;
}
async function startLock(dir) {
  const f = await Deno.open(`${dir}/start.lock`, {
    read: true,
    write: true,
    create: true
  });
  await f.lock(true);
  return () => {
    try {
      f.unlock();
    } finally {
      f.close();
    }
  };
}
async function ensureResident(root = CHECKOUT) {
  const dir = await residentDir(root);
  await Deno.mkdir(dir, {
    recursive: true,
    mode: 448
  });
  const st = await Deno.lstat(dir);
  if (!st.isDirectory || st.uid !== Deno.uid() || (st.mode ?? 0) & 63) {
    throw new ResidentUnavailable(`${dir} is not a private directory of this user`);
  }
  const token = async () => (await Deno.readTextFile(`${dir}/ctl/token`)).trim();
  const running = async () => {
    const m2 = await readMachine(dir);
    if (!m2 || !await qemuAlive(m2.pid, dir)) return void 0;
    const state = (await Deno.readTextFile(`${dir}/ctl/state`).catch(() => "")).trim();
    if (state.endsWith("failed") || state.endsWith("off")) return void 0;
    return m2;
  };
  const m = await running();
  if (m) return {
    dir,
    ports: m.ports,
    token: await token(),
    started: false
  };
  const release = await startLock(dir);
  try {
    const again = await running();
    if (again) return {
      dir,
      ports: again.ports,
      token: await token(),
      started: false
    };
    await stopResident(root);
    const assets = await ensurePortableAssets();
    const ctl = `${dir}/ctl`;
    await Deno.remove(ctl, {
      recursive: true
    }).catch(() => {
    });
    await Deno.mkdir(ctl, {
      mode: 448
    });
    const secret = Array.from(crypto.getRandomValues(new Uint8Array(24)), (b) => b.toString(16).padStart(2, "0")).join("");
    await Deno.writeTextFile(`${ctl}/token`, secret + "\n", {
      mode: 384
    });
    await Deno.writeTextFile(`${ctl}/resident`, "");
    await Deno.writeTextFile(`${ctl}/idle`, `${idleSeconds()}
`);
    await Deno.writeTextFile(`${ctl}/net`, "10.0.2.15/24 10.0.2.2\n");
    await Deno.writeTextFile(`${ctl}/deno`, Deno.execPath() + "\n");
    await Deno.writeTextFile(`${ctl}/spare.sh`, `exec "$(cat /run/denovm-ctl/deno)" run -A ${shellQuote(`${root}/portable/spare.ts`)} "$@"
`);
    await writeControl(ctl, {
      cwd: root,
      command: "true",
      shares: [],
      env: {}
    });
    const ports = [];
    for (const _ of SPARE_PORTS) ports.push(freePort());
    const child = new Deno.Command(assets.qemu, {
      args: qemuArgs(assets, ctl, {
        memMiB: RESIDENT_MEM_MIB,
        cpus: 1,
        shares: [],
        net: {
          forwards: SPARE_PORTS.map((guest, i) => ({
            host: ports[i],
            guest
          }))
        },
        resident: true
      }),
      stdin: "null",
      stdout: "null",
      stderr: "null",
      detached: true
    }).spawn();
    child.unref();
    const file = {
      pid: child.pid,
      ports,
      started: Date.now()
    };
    await Deno.writeTextFile(`${dir}/machine.json`, JSON.stringify(file) + "\n");
    return {
      dir,
      ports,
      token: secret,
      started: true
    };
  } finally {
    release();
  }
}
async function writeAll(c, b) {
  let off = 0;
  while (off < b.byteLength) off += await c.write(b.subarray(off));
}
async function runOnResident(job, io, root = CHECKOUT) {
  const fingerprint = await codeFingerprint(root);
  const t0 = Date.now();
  let startedHere = !(await residentStatus(root)).running;
  const waiting = after(1500, () => io.onWaiting?.(startedHere ? "starting" : "loading"));
  const stale = /* @__PURE__ */ new Map();
  let conn;
  let reader;
  let spare = "";
  const attempts = /* @__PURE__ */ new Map();
  let startedPid;
  try {
    for (let round = 0; ; round++) {
      if (round > 0) {
        const dir = await residentDir(root);
        const state = (await Deno.readTextFile(`${dir}/ctl/state`).catch(() => "")).trim();
        if (state.endsWith("failed")) {
          waiting.cancel();
          const log = (await Deno.readTextFile(`${dir}/ctl/spare.log`).catch(() => "")).trim().split("\n").slice(-3).join(" | ");
          throw new ResidentUnavailable(`its spares fail to start (${log || "no log"})`);
        }
      }
      const m = await ensureResident(root);
      if (m.started) {
        if (startedPid !== void 0) {
          throw new ResidentUnavailable("the machine it started stopped before taking the run");
        }
        startedPid = (await readMachine(m.dir))?.pid ?? -1;
      }
      startedHere ||= m.started;
      for (const port of m.ports) {
        const c2 = await Deno.connect({
          hostname: "127.0.0.1",
          port
        }).catch(() => void 0);
        if (!c2) continue;
        const full = {
          ...job,
          token: m.token,
          fingerprint
        };
        const r = new FrameReader((b) => c2.read(b));
        let timer;
        const first = await Promise.race([
          writeAll(c2, frame(F2.job, JSON.stringify(full))).then(() => r.next()),
          new Promise((res) => timer = after(ANSWER_MS, () => res("late")))
        ]).catch(() => void 0).finally(() => timer?.cancel());
        attempts.set(port, first === "late" ? "no answer" : first === void 0 ? "closed" : `frame ${first.type}`);
        if (first === "late") {
          try {
            c2.close();
          } catch {
          }
          continue;
        }
        if (first?.type === F2.accepted) {
          conn = c2;
          reader = r;
          spare = new TextDecoder().decode(first.payload);
          break;
        }
        if (first?.type === F2.refused) {
          const why = new TextDecoder().decode(first.payload);
          const [, slot, n] = why.split(" ");
          const before = stale.get(slot ?? "");
          if (before !== void 0 && Number(n) > before) {
            waiting.cancel();
            throw new ResidentUnavailable(`its spares refuse the job (${why})`);
          }
          if (before === void 0) stale.set(slot ?? "", Number(n));
          await Deno.writeTextFile(`${m.dir}/ctl/deno`, Deno.execPath() + "\n");
        }
        try {
          c2.close();
        } catch {
        }
      }
      if (conn) break;
      if (Date.now() - t0 > SPARE_WAIT_MS) {
        waiting.cancel();
        throw new ResidentUnavailable(`no spare took the job within ${SPARE_WAIT_MS / 1e3} s (last tries: ${[
          ...attempts
        ].map(([p, what]) => `port ${p} ${what}`).join(", ")}; see ${m.dir}/ctl/spare.log)`);
      }
      await sleep(100);
    }
  } catch (e) {
    waiting.cancel();
    if (e instanceof ResidentUnavailable) throw e;
    throw new ResidentUnavailable(e instanceof Error ? e.message : String(e));
  }
  waiting.cancel();
  io.onAccepted?.(spare);
  const c = conn;
  let sending = Promise.resolve();
  const send = (type, payload) => {
    const b = frame(type, payload);
    sending = sending.then(() => writeAll(c, b)).catch(() => {
    });
    return sending;
  };
  let signalled;
  const listeners = Object.keys(SIGNAL_NUMBERS).map((sig) => {
    const f = () => {
      signalled ??= sig;
      void send(F2.signal, sig);
    };
    Deno.addSignalListener(sig, f);
    return [
      sig,
      f
    ];
  });
  let done = false;
  let credit = 0;
  let creditWake;
  if (io.stdin) {
    const stdin = io.stdin;
    void (async () => {
      const buf = new Uint8Array(16384);
      for (; ; ) {
        while (credit <= 0 && !done) await new Promise((r) => creditWake = r);
        const n = await stdin.read(buf.subarray(0, Math.min(buf.byteLength, credit))).catch(() => null);
        if (done) return;
        if (n === null) {
          await send(F2.stdinEnd);
          return;
        }
        credit -= n;
        await send(F2.stdin, buf.slice(0, n));
      }
    })();
  } else {
    void send(F2.stdinEnd);
  }
  try {
    for (; ; ) {
      const f = await reader.next().catch(() => void 0);
      if (f === void 0) {
        return signalled ? 128 + SIGNAL_NUMBERS[signalled] : 125;
      }
      if (f.type === F2.credit) {
        const n = Number(new TextDecoder().decode(f.payload));
        if (Number.isInteger(n) && n > 0) credit += n;
        creditWake?.();
      } else if (f.type === F2.stdout) io.stdout(f.payload);
      else if (f.type === F2.stderr) io.stderr(f.payload);
      else if (f.type === F2.status) {
        const code = Number(new TextDecoder().decode(f.payload));
        return Number.isInteger(code) ? code : 125;
      }
    }
  } finally {
    done = true;
    creditWake?.();
    for (const [sig, f] of listeners) Deno.removeSignalListener(sig, f);
    try {
      c.close();
    } catch {
    }
  }
}
var DEFAULT_IDLE_S, RESIDENT_MEM_MIB, SPARE_WAIT_MS, ANSWER_MS, CHECKOUT, ResidentUnavailable;
var init_resident = __esm({
  async "portable/resident.ts"() {
    init_timer();
    init_assets();
    init_cache();
    init_job_frames();
    init_machine();
    await init_spare();
    DEFAULT_IDLE_S = 600;
    RESIDENT_MEM_MIB = 4096;
    SPARE_WAIT_MS = 18e4;
    ANSWER_MS = 6e4;
    CHECKOUT = decodeURIComponent(new URL("..", import.meta.url).pathname).replace(/\/$/, "");
    ResidentUnavailable = class extends Error {
    };
  }
});

// frontend/portable_mode.ts
var portable_mode_exports = {};
__export(portable_mode_exports, {
  RESIDENT_GUEST_MIB: () => RESIDENT_GUEST_MIB,
  portableNotice: () => portableNotice,
  portableRefusal: () => portableRefusal,
  residentConfig: () => residentConfig,
  runCliPortable: () => runCliPortable,
  writableDirs: () => writableDirs
});
function dirname(p) {
  const i = p.lastIndexOf("/");
  return i <= 0 ? "/" : p.slice(0, i);
}
function quote(a) {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`;
}
async function portableRefusal(req) {
  if (req.config.nets.length > 0) {
    return "--net does not work through the portable machine (a TAP device inside it is not one on this host)";
  }
  if (req.restore !== void 0 && (await savedConfig(req.restore))?.vsock !== void 0) {
    return "restoring a snapshot with a vsock device does not work through the portable machine yet (its socket would exist only inside it)";
  }
  return void 0;
}
async function savedConfig(dir) {
  try {
    const path = `${dir}/state.bin`;
    const info = await Deno.stat(path);
    if (!info.isFile || info.size > 64 << 20) return void 0;
    const s = await decodeState(await Deno.readFile(path));
    return parseConfig(s.config);
  } catch {
    return void 0;
  }
}
async function writableDirs(req) {
  const dirs = [];
  for (const d of [
    ...req.config.disks,
    ...req.config.admin?.disks ?? []
  ]) {
    if (d.readOnly) continue;
    const real = await Deno.realPath(d.path).catch(() => void 0);
    if (real !== void 0) dirs.push(dirname(real));
  }
  if (req.restore !== void 0 && req.config.disks.length === 0) {
    const saved = await savedConfig(req.restore);
    for (const d of [
      ...saved?.disks ?? [],
      ...saved?.admin?.disks ?? []
    ]) {
      if (d.readOnly) continue;
      const real = await Deno.realPath(d.path).catch(() => void 0);
      if (real !== void 0) dirs.push(dirname(real));
    }
  }
  if (req.snapshot) {
    await Deno.mkdir(req.snapshot.dir, {
      recursive: true
    });
    dirs.push(await Deno.realPath(req.snapshot.dir));
  }
  return [
    ...new Set(dirs)
  ];
}
function portableNotice(host, forced) {
  const why = forced ? "--portable on was given" : host.reason ?? host.message;
  const fix = host.fix ?? "run on a host with /dev/kvm and hardware virtualization";
  return `running in the portable machine (QEMU in software mode with KVM inside, far slower than native) because ${why}. For native speed: ${fix}`;
}
async function residentConfig(req) {
  if (idleSeconds() === 0 || req.apiSock !== void 0 || req.config.vsock !== void 0) {
    return void 0;
  }
  const config = req.restore !== void 0 ? await savedConfig(req.restore) : req.config;
  if (!config || config.memMiB > RESIDENT_GUEST_MIB || config.vsock) return void 0;
  return config;
}
function writeAllSync(f, b) {
  let off = 0;
  while (off < b.byteLength) off += f.writeSync(b.subarray(off));
}
async function runResident(innerArgs, req, config, logger) {
  const serial = config.console === "serial";
  const interactive = serial && Deno.stdin.isTerminal();
  let raw2 = false;
  try {
    return await runOnResident({
      args: innerArgs,
      cwd: Deno.cwd(),
      env: innerEnv(),
      writable: await writableDirs(req)
    }, {
      stdout: (b) => writeAllSync(Deno.stdout, b),
      stderr: (b) => writeAllSync(Deno.stderr, b),
      ...serial ? {
        stdin: Deno.stdin
      } : {},
      onWaiting: (why) => logger.notice(why === "starting" ? `starting the portable machine; it stays up for later runs until ${idleSeconds()} s without one (deno task portable --stop stops it; DENOVM_PORTABLE_IDLE_S=0 keeps none)` : "waiting for the portable machine to load the VMM again (after a run or a change to the code)"),
      onAccepted: (spare) => {
        logger.info(`the resident portable machine's spare ${spare} runs this`);
        if (interactive) {
          Deno.stdin.setRaw(true);
          raw2 = true;
        }
      }
    });
  } catch (e) {
    if (e instanceof ResidentUnavailable) {
      logger.warn(`the resident portable machine: ${e.message}; starting one for this run`);
      return void 0;
    }
    throw e;
  } finally {
    if (raw2) Deno.stdin.setRaw(false);
  }
}
async function runCliPortable(args, req, host, logger) {
  const refused = await portableRefusal(req);
  if (refused) {
    logger.error(`${refused}; ${host.message.replace(/^denovm: /, "")}`);
    return 1;
  }
  logger.notice(portableNotice(host, req.portable === "on"));
  const innerArgs = [
    ...args,
    "--portable",
    "off",
    "--quiet"
  ];
  const resident = await residentConfig(req);
  if (resident) {
    const code = await runResident(innerArgs, req, resident, logger);
    if (code !== void 0) return code;
  }
  const inner = [
    Deno.execPath(),
    "run",
    "-A",
    CLI,
    ...innerArgs
  ];
  const bridge = req.apiSock !== void 0 || req.config.vsock !== void 0 ? await HostBridge.start({
    ...req.apiSock !== void 0 ? {
      api: req.apiSock
    } : {},
    ...req.config.vsock ? {
      vsock: req.config.vsock.path
    } : {}
  }) : void 0;
  try {
    const r = await runPortable({
      command: inner.map(quote).join(" "),
      stdio: "inherit",
      writable: await writableDirs(req),
      memMiB: Math.max(1536, req.config.memMiB + 1024),
      ...bridge ? {
        env: bridge.env,
        net: {
          forwards: [
            {
              host: bridge.inPort,
              guest: BRIDGE_GUEST_PORT
            }
          ]
        }
      } : {}
    });
    if (r.status >= 124 && r.status <= 125) {
      logger.error(r.log.trim().split("\n").slice(-5).join(" | "));
    }
    return r.status;
  } catch (e) {
    if (e instanceof MissingToolError) {
      logger.error(e.message);
      return 1;
    }
    throw e;
  } finally {
    bridge?.close();
  }
}
var CLI, RESIDENT_GUEST_MIB;
var init_portable_mode = __esm({
  async "frontend/portable_mode.ts"() {
    init_format();
    init_config();
    init_apt();
    init_machine();
    await init_resident();
    init_bridge();
    CLI = new URL("../cli.ts", import.meta.url).pathname;
    RESIDENT_GUEST_MIB = 1024;
  }
});

// ../../root/.cache/deno/npm/registry.npmjs.org/deno-std/1.4.0/cli/parse_args.js
var FLAG_REGEXP = /^(?:-(?:(?<doubleDash>-)(?<negated>no-)?)?)(?<key>.+?)(?:=(?<value>.*))?$/s;
var LETTER_REGEXP = /[A-Za-z]/;
var NUMBER_REGEXP = /-?\d+(\.\d*)?(e-?\d+)?$/;
var HYPHEN_REGEXP = /^(-|--)[^-]/;
var VALUE_REGEXP = /=(?<value>.+)/;
var FLAG_NAME_REGEXP = /^--[^=]+$/;
var SPECIAL_CHAR_REGEXP = /\W/;
var NON_WHITESPACE_REGEXP = /\S/;
function isNumber(string2) {
  return NON_WHITESPACE_REGEXP.test(string2) && Number.isFinite(Number(string2));
}
function isConstructorOrProto(obj3, key) {
  return key === "constructor" && typeof obj3[key] === "function" || key === "__proto__";
}
function setNested(object, keys, value, collect = false) {
  keys = [
    ...keys
  ];
  const key = keys.pop();
  for (const k of keys) {
    if (isConstructorOrProto(object, k)) {
      return;
    }
    object = object[k] ??= {};
  }
  if (isConstructorOrProto(object, key)) {
    return;
  }
  if (collect) {
    const v = object[key];
    if (Array.isArray(v)) {
      v.push(value);
      return;
    }
    value = v ? [
      v,
      value
    ] : [
      value
    ];
  }
  object[key] = value;
}
function hasNested(object, keys) {
  for (const key of keys) {
    const value = object[key];
    if (!Object.hasOwn(object, key)) {
      return false;
    }
    object = value;
  }
  return true;
}
function aliasIsBoolean(aliasMap, booleanSet, key) {
  const set = aliasMap.get(key);
  if (set === void 0) {
    return false;
  }
  for (const alias of set) {
    if (booleanSet.has(alias)) {
      return true;
    }
  }
  return false;
}
function isBooleanString(value) {
  return value === "true" || value === "false";
}
function parseBooleanString(value) {
  return value !== "false";
}
function parseArgs(args, options) {
  const { "--": doubleDash = false, alias = {}, boolean = false, default: defaults = {}, stopEarly = false, string: string2 = [], collect = [], negatable = [], unknown: unknownFn = (i) => i } = options ?? {};
  const aliasMap = /* @__PURE__ */ new Map();
  const booleanSet = /* @__PURE__ */ new Set();
  const stringSet = /* @__PURE__ */ new Set();
  const collectSet = /* @__PURE__ */ new Set();
  const negatableSet = /* @__PURE__ */ new Set();
  let allBools = false;
  if (alias) {
    for (const [key, value] of Object.entries(alias)) {
      if (value === void 0) {
        throw new TypeError("Alias value must be defined");
      }
      const aliases = Array.isArray(value) ? value : [
        value
      ];
      aliasMap.set(key, new Set(aliases));
      aliases.forEach((alias2) => aliasMap.set(alias2, /* @__PURE__ */ new Set([
        key,
        ...aliases.filter((it) => it !== alias2)
      ])));
    }
  }
  if (boolean) {
    if (typeof boolean === "boolean") {
      allBools = boolean;
    } else {
      const booleanArgs = Array.isArray(boolean) ? boolean : [
        boolean
      ];
      for (const key of booleanArgs.filter(Boolean)) {
        booleanSet.add(key);
        aliasMap.get(key)?.forEach((al) => {
          booleanSet.add(al);
        });
      }
    }
  }
  if (string2) {
    const stringArgs = Array.isArray(string2) ? string2 : [
      string2
    ];
    for (const key of stringArgs.filter(Boolean)) {
      stringSet.add(key);
      aliasMap.get(key)?.forEach((al) => stringSet.add(al));
    }
  }
  if (collect) {
    const collectArgs = Array.isArray(collect) ? collect : [
      collect
    ];
    for (const key of collectArgs.filter(Boolean)) {
      collectSet.add(key);
      aliasMap.get(key)?.forEach((al) => collectSet.add(al));
    }
  }
  if (negatable) {
    const negatableArgs = Array.isArray(negatable) ? negatable : [
      negatable
    ];
    for (const key of negatableArgs.filter(Boolean)) {
      negatableSet.add(key);
      aliasMap.get(key)?.forEach((alias2) => negatableSet.add(alias2));
    }
  }
  const argv = {
    _: []
  };
  function setArgument(key, value, arg2, collect2) {
    if (!booleanSet.has(key) && !stringSet.has(key) && !aliasMap.has(key) && !collectSet.has(key) && !(allBools && FLAG_NAME_REGEXP.test(arg2)) && unknownFn?.(arg2, key, value) === false) {
      return;
    }
    if (typeof value === "string" && !stringSet.has(key)) {
      value = isNumber(value) ? Number(value) : value;
    }
    const collectable = collect2 && collectSet.has(key);
    setNested(argv, key.split("."), value, collectable);
    aliasMap.get(key)?.forEach((key2) => {
      setNested(argv, key2.split("."), value, collectable);
    });
  }
  let notFlags = [];
  const index = args.indexOf("--");
  if (index !== -1) {
    notFlags = args.slice(index + 1);
    args = args.slice(0, index);
  }
  argsLoop: for (let i = 0; i < args.length; i++) {
    const arg2 = args[i];
    const groups = arg2.match(FLAG_REGEXP)?.groups;
    if (groups) {
      const { doubleDash: doubleDash2, negated } = groups;
      let key = groups.key;
      let value = groups.value;
      if (doubleDash2) {
        if (value != null) {
          if (booleanSet.has(key)) {
            value = parseBooleanString(value);
          }
          setArgument(key, value, arg2, true);
          continue;
        }
        if (negated) {
          if (negatableSet.has(key)) {
            setArgument(key, false, arg2, false);
            continue;
          }
          key = `no-${key}`;
        }
        const next = args[i + 1];
        if (next) {
          if (!booleanSet.has(key) && !allBools && !next.startsWith("-") && (!aliasMap.has(key) || !aliasIsBoolean(aliasMap, booleanSet, key))) {
            value = next;
            i++;
            setArgument(key, value, arg2, true);
            continue;
          }
          if (isBooleanString(next)) {
            value = parseBooleanString(next);
            i++;
            setArgument(key, value, arg2, true);
            continue;
          }
        }
        value = stringSet.has(key) ? "" : true;
        setArgument(key, value, arg2, true);
        continue;
      }
      const letters = arg2.slice(1, -1).split("");
      for (const [j, letter] of letters.entries()) {
        const next = arg2.slice(j + 2);
        if (next === "-") {
          setArgument(letter, next, arg2, true);
          continue;
        }
        if (next === "=") {
          setArgument(letter, "", arg2, true);
          continue argsLoop;
        }
        if (LETTER_REGEXP.test(letter)) {
          const groups2 = VALUE_REGEXP.exec(next)?.groups;
          if (groups2) {
            setArgument(letter, groups2.value, arg2, true);
            continue argsLoop;
          }
          if (NUMBER_REGEXP.test(next)) {
            setArgument(letter, next, arg2, true);
            continue argsLoop;
          }
        }
        if (letters[j + 1]?.match(SPECIAL_CHAR_REGEXP)) {
          setArgument(letter, arg2.slice(j + 2), arg2, true);
          continue argsLoop;
        }
        setArgument(letter, stringSet.has(letter) ? "" : true, arg2, true);
      }
      key = arg2.slice(-1);
      if (key === "-") {
        continue;
      }
      const nextArg = args[i + 1];
      if (nextArg) {
        if (!HYPHEN_REGEXP.test(nextArg) && !booleanSet.has(key) && (!aliasMap.has(key) || !aliasIsBoolean(aliasMap, booleanSet, key))) {
          setArgument(key, nextArg, arg2, true);
          i++;
          continue;
        }
        if (isBooleanString(nextArg)) {
          const value2 = parseBooleanString(nextArg);
          setArgument(key, value2, arg2, true);
          i++;
          continue;
        }
      }
      setArgument(key, stringSet.has(key) ? "" : true, arg2, true);
      continue;
    }
    if (unknownFn?.(arg2) !== false) {
      argv._.push(stringSet.has("_") || !isNumber(arg2) ? arg2 : Number(arg2));
    }
    if (stopEarly) {
      argv._.push(...args.slice(i + 1));
      break;
    }
  }
  for (const [key, value] of Object.entries(defaults)) {
    const keys = key.split(".");
    if (!hasNested(argv, keys)) {
      setNested(argv, keys, value);
      aliasMap.get(key)?.forEach((key2) => setNested(argv, key2.split("."), value));
    }
  }
  for (const key of booleanSet.keys()) {
    const keys = key.split(".");
    if (!hasNested(argv, keys)) {
      const value = collectSet.has(key) ? [] : false;
      setNested(argv, keys, value);
    }
  }
  for (const key of stringSet.keys()) {
    const keys = key.split(".");
    if (!hasNested(argv, keys) && collectSet.has(key)) {
      setNested(argv, keys, []);
    }
  }
  if (doubleDash) {
    argv["--"] = notFlags;
  } else {
    argv._.push(...notFlags);
  }
  return argv;
}

// frontend/cli_main.ts
init_config();

// host/files.ts
var FileBoundsError = class extends Error {
  name = "FileBoundsError";
};
async function readBounded(path, max, what) {
  let f;
  try {
    const pre = await Deno.stat(path);
    if (!pre.isFile) {
      throw new FileBoundsError(`Cannot read the ${what} ${path}: not a regular file`);
    }
    f = await Deno.open(path, {
      read: true
    });
  } catch (e) {
    if (e instanceof FileBoundsError) throw e;
    throw new FileBoundsError(`Cannot read the ${what} ${path}: ${e instanceof Error ? e.message : String(e)}`);
  }
  try {
    const info = await f.stat();
    if (!info.isFile) {
      throw new FileBoundsError(`Cannot read the ${what} ${path}: not a regular file`);
    }
    if (info.size > max) {
      throw new FileBoundsError(`Cannot read the ${what} ${path}: ${info.size} bytes, more than the ${max} allowed`);
    }
    const out = new Uint8Array(info.size);
    let got = 0;
    while (got < out.byteLength) {
      const n = await f.read(out.subarray(got));
      if (n === null) break;
      got += n;
    }
    if (got === out.byteLength && await f.read(new Uint8Array(1)) !== null) {
      throw new FileBoundsError(`Cannot read the ${what} ${path}: it grew while being read`);
    }
    return got === out.byteLength ? out : out.subarray(0, got);
  } finally {
    f.close();
  }
}

// kvm/consts.ts
var IOCTL = {
  KVM_GET_API_VERSION: 44544,
  KVM_CREATE_VM: 44545,
  KVM_GET_MSR_INDEX_LIST: 3221532162,
  KVM_CHECK_EXTENSION: 44547,
  KVM_GET_VCPU_MMAP_SIZE: 44548,
  KVM_GET_SUPPORTED_CPUID: 3221794309,
  KVM_CREATE_VCPU: 44609,
  KVM_GET_DIRTY_LOG: 1074835010,
  KVM_SET_USER_MEMORY_REGION: 1075883590,
  KVM_SET_TSS_ADDR: 44615,
  KVM_SET_IDENTITY_MAP_ADDR: 1074310728,
  KVM_CREATE_IRQCHIP: 44640,
  KVM_IRQ_LINE: 1074310753,
  KVM_GET_IRQCHIP: 3255348834,
  KVM_SET_IRQCHIP: 2181607011,
  KVM_CREATE_PIT2: 1077980791,
  KVM_GET_PIT2: 2154868383,
  KVM_SET_PIT2: 1081126560,
  KVM_GET_CLOCK: 2150674044,
  KVM_SET_CLOCK: 1076932219,
  KVM_IRQFD: 1075883638,
  KVM_IOEVENTFD: 1077980793,
  KVM_REGISTER_COALESCED_MMIO: 1074835047,
  KVM_UNREGISTER_COALESCED_MMIO: 1074835048,
  KVM_RUN: 44672,
  KVM_GET_REGS: 2156965505,
  KVM_SET_REGS: 1083223682,
  KVM_GET_SREGS: 2167975555,
  KVM_SET_SREGS: 1094233732,
  KVM_GET_FPU: 2174791308,
  KVM_SET_FPU: 1101049485,
  KVM_GET_MSRS: 3221794440,
  KVM_SET_MSRS: 1074310793,
  KVM_SET_CPUID2: 1074310800,
  KVM_GET_CPUID2: 3221794449,
  KVM_GET_LAPIC: 2214637198,
  KVM_SET_LAPIC: 1140895375,
  KVM_GET_XSAVE: 2415963812,
  KVM_SET_XSAVE: 1342221989,
  KVM_GET_XSAVE2: 2415963855,
  KVM_GET_XCRS: 2173218470,
  KVM_SET_XCRS: 1099476647,
  KVM_GET_VCPU_EVENTS: 2151722655,
  KVM_SET_VCPU_EVENTS: 1077980832,
  KVM_GET_MP_STATE: 2147790488,
  KVM_SET_MP_STATE: 1074048665,
  KVM_GET_DEBUGREGS: 2155916961,
  KVM_SET_DEBUGREGS: 1082175138,
  KVM_KVMCLOCK_CTRL: 44717,
  KVM_GET_TSC_KHZ: 44707
};
var CAP = {
  IRQCHIP: 0,
  HLT: 1,
  USER_MEMORY: 3,
  SET_TSS_ADDR: 4,
  EXT_CPUID: 7,
  NR_VCPUS: 9,
  NR_MEMSLOTS: 10,
  MP_STATE: 14,
  /** Answers the page offset of the coalesced-write ring in the `kvm_run` mapping. */
  COALESCED_MMIO: 15,
  SYNC_MMU: 16,
  IRQFD: 32,
  PIT2: 33,
  IOEVENTFD: 36,
  SET_IDENTITY_MAP_ADDR: 37,
  ADJUST_CLOCK: 39,
  VCPU_EVENTS: 41,
  DEBUGREGS: 50,
  XSAVE: 55,
  XCRS: 56,
  MAX_VCPUS: 66,
  TSC_DEADLINE_TIMER: 72,
  KVMCLOCK_CTRL: 76,
  IOEVENTFD_ANY_LENGTH: 122,
  IMMEDIATE_EXIT: 136,
  COALESCED_PIO: 162,
  XSAVE2: 208
};
var EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  SET_TPR: 11,
  TPR_ACCESS: 12,
  NMI: 16,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
  IOAPIC_EOI: 26,
  X86_RDMSR: 29,
  X86_WRMSR: 30
};
var IRQCHIP = {
  PIC_MASTER: 0,
  PIC_SLAVE: 1,
  IOAPIC: 2
};
var IOEVENTFD_FLAG = {
  DATAMATCH: 1,
  PIO: 2,
  DEASSIGN: 4
};
var IRQFD_FLAG = {
  DEASSIGN: 1,
  RESAMPLE: 2
};

// kvm/structs.ts
var REG_NAMES = [
  "rax",
  "rbx",
  "rcx",
  "rdx",
  "rsi",
  "rdi",
  "rsp",
  "rbp",
  "r8",
  "r9",
  "r10",
  "r11",
  "r12",
  "r13",
  "r14",
  "r15",
  "rip",
  "rflags"
];
var REGS_SIZE = 144;
function decodeRegs(b) {
  const v = view(b, REGS_SIZE);
  const r = {};
  REG_NAMES.forEach((n, i) => r[n] = v.getBigUint64(i * 8, true));
  return r;
}
function encodeRegs(r) {
  const b = new Uint8Array(REGS_SIZE);
  const v = view(b, REGS_SIZE);
  REG_NAMES.forEach((n, i) => v.setBigUint64(i * 8, BigInt.asUintN(64, r[n]), true));
  return b;
}
var SEGMENT_OFFSETS = {
  base: 0,
  limit: 8,
  selector: 12,
  type: 14,
  present: 15,
  dpl: 16,
  db: 17,
  s: 18,
  l: 19,
  g: 20,
  avl: 21,
  unusable: 22
};
var SEG_BYTES = [
  "type",
  "present",
  "dpl",
  "db",
  "s",
  "l",
  "g",
  "avl",
  "unusable"
];
function decodeSegment(v, o) {
  const s = {
    base: v.getBigUint64(o, true),
    limit: v.getUint32(o + 8, true),
    selector: v.getUint16(o + 12, true)
  };
  for (const k of SEG_BYTES) s[k] = v.getUint8(o + SEGMENT_OFFSETS[k]);
  return s;
}
function encodeSegment(v, o, s) {
  v.setBigUint64(o, BigInt.asUintN(64, s.base), true);
  v.setUint32(o + 8, s.limit >>> 0, true);
  v.setUint16(o + 12, s.selector & 65535, true);
  for (const k of SEG_BYTES) v.setUint8(o + SEGMENT_OFFSETS[k], s[k] & 255);
}
var SREGS_SIZE = 312;
var SEG_NAMES = [
  "cs",
  "ds",
  "es",
  "fs",
  "gs",
  "ss",
  "tr",
  "ldt"
];
var CR_NAMES = [
  "cr0",
  "cr2",
  "cr3",
  "cr4",
  "cr8",
  "efer",
  "apicBase"
];
var SREGS_OFFSETS = {
  cs: 0,
  ds: 24,
  es: 48,
  fs: 72,
  gs: 96,
  ss: 120,
  tr: 144,
  ldt: 168,
  gdt: 192,
  idt: 208,
  cr0: 224,
  cr2: 232,
  cr3: 240,
  cr4: 248,
  cr8: 256,
  efer: 264,
  apicBase: 272,
  interruptBitmap: 280
};
function decodeSregs(b) {
  const v = view(b, SREGS_SIZE);
  const s = {};
  for (const n of SEG_NAMES) s[n] = decodeSegment(v, SREGS_OFFSETS[n]);
  for (const n of [
    "gdt",
    "idt"
  ]) {
    const o = SREGS_OFFSETS[n];
    s[n] = {
      base: v.getBigUint64(o, true),
      limit: v.getUint16(o + 8, true)
    };
  }
  for (const n of CR_NAMES) s[n] = v.getBigUint64(SREGS_OFFSETS[n], true);
  const ib = SREGS_OFFSETS.interruptBitmap;
  s.interruptBitmap = [
    0,
    1,
    2,
    3
  ].map((i) => v.getBigUint64(ib + i * 8, true));
  return s;
}
function encodeSregs(s) {
  const b = new Uint8Array(SREGS_SIZE);
  const v = view(b, SREGS_SIZE);
  for (const n of SEG_NAMES) encodeSegment(v, SREGS_OFFSETS[n], s[n]);
  for (const n of [
    "gdt",
    "idt"
  ]) {
    const o = SREGS_OFFSETS[n];
    v.setBigUint64(o, BigInt.asUintN(64, s[n].base), true);
    v.setUint16(o + 8, s[n].limit & 65535, true);
  }
  for (const n of CR_NAMES) v.setBigUint64(SREGS_OFFSETS[n], BigInt.asUintN(64, s[n]), true);
  s.interruptBitmap.forEach((x, i) => v.setBigUint64(SREGS_OFFSETS.interruptBitmap + i * 8, x, true));
  return b;
}
var FPU_SIZE = 416;
var FPU_OFFSETS = {
  fpr: 0,
  fcw: 128,
  fsw: 130,
  ftwx: 132,
  lastOpcode: 134,
  lastIp: 136,
  lastDp: 144,
  xmm: 152,
  mxcsr: 408
};
function decodeFpu(b) {
  const v = view(b, FPU_SIZE);
  const o = FPU_OFFSETS;
  return {
    fpr: b.slice(o.fpr, o.fpr + 128),
    fcw: v.getUint16(o.fcw, true),
    fsw: v.getUint16(o.fsw, true),
    ftwx: v.getUint8(o.ftwx),
    lastOpcode: v.getUint16(o.lastOpcode, true),
    lastIp: v.getBigUint64(o.lastIp, true),
    lastDp: v.getBigUint64(o.lastDp, true),
    xmm: b.slice(o.xmm, o.xmm + 256),
    mxcsr: v.getUint32(o.mxcsr, true)
  };
}
function encodeFpu(f) {
  const b = new Uint8Array(FPU_SIZE);
  const v = view(b, FPU_SIZE);
  const o = FPU_OFFSETS;
  b.set(f.fpr.subarray(0, 128), o.fpr);
  v.setUint16(o.fcw, f.fcw, true);
  v.setUint16(o.fsw, f.fsw, true);
  v.setUint8(o.ftwx, f.ftwx);
  v.setUint16(o.lastOpcode, f.lastOpcode, true);
  v.setBigUint64(o.lastIp, f.lastIp, true);
  v.setBigUint64(o.lastDp, f.lastDp, true);
  b.set(f.xmm.subarray(0, 256), o.xmm);
  v.setUint32(o.mxcsr, f.mxcsr, true);
  return b;
}
var MSRS_HEADER_SIZE = 8;
var MSR_ENTRY_SIZE = 16;
function encodeMsrs(entries) {
  const b = new Uint8Array(MSRS_HEADER_SIZE + MSR_ENTRY_SIZE * entries.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, entries.length, true);
  entries.forEach((e, i) => {
    const o = MSRS_HEADER_SIZE + i * MSR_ENTRY_SIZE;
    v.setUint32(o, e.index >>> 0, true);
    v.setBigUint64(o + 8, BigInt.asUintN(64, e.data), true);
  });
  return b;
}
function decodeMsrs(b, count) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = [];
  for (let i = 0; i < count; i++) {
    const o = MSRS_HEADER_SIZE + i * MSR_ENTRY_SIZE;
    out.push({
      index: v.getUint32(o, true),
      data: v.getBigUint64(o + 8, true)
    });
  }
  return out;
}
var CPUID2_HEADER_SIZE = 8;
var CPUID_ENTRY_SIZE = 40;
var CPUID_ENTRY_OFFSETS = {
  function: 0,
  index: 4,
  flags: 8,
  eax: 12,
  ebx: 16,
  ecx: 20,
  edx: 24
};
var CPUID_FIELDS = Object.keys(CPUID_ENTRY_OFFSETS);
function encodeCpuid(entries) {
  const b = new Uint8Array(CPUID2_HEADER_SIZE + CPUID_ENTRY_SIZE * entries.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, entries.length, true);
  entries.forEach((e, i) => {
    const o = CPUID2_HEADER_SIZE + i * CPUID_ENTRY_SIZE;
    for (const f of CPUID_FIELDS) v.setUint32(o + CPUID_ENTRY_OFFSETS[f], e[f] >>> 0, true);
  });
  return b;
}
function decodeCpuid(b) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = v.getUint32(0, true);
  const out = [];
  for (let i = 0; i < n; i++) {
    const o = CPUID2_HEADER_SIZE + i * CPUID_ENTRY_SIZE;
    const e = {};
    for (const f of CPUID_FIELDS) e[f] = v.getUint32(o + CPUID_ENTRY_OFFSETS[f], true);
    out.push(e);
  }
  return out;
}
var LAPIC_SIZE = 1024;
var XSAVE_SIZE = 4096;
var XCRS_SIZE = 392;
var XCRS_MAX = 16;
function decodeXcrs(b) {
  const v = view(b, XCRS_SIZE);
  const n = Math.min(v.getUint32(0, true), XCRS_MAX);
  const xcrs = [];
  for (let i = 0; i < n; i++) {
    xcrs.push({
      xcr: v.getUint32(8 + i * 16, true),
      value: v.getBigUint64(16 + i * 16, true)
    });
  }
  return {
    flags: v.getUint32(4, true),
    xcrs
  };
}
function encodeXcrs(x) {
  if (x.xcrs.length > XCRS_MAX) {
    throw new RangeError(`Cannot encode xcrs: ${x.xcrs.length} entries exceed ${XCRS_MAX}`);
  }
  const b = new Uint8Array(XCRS_SIZE);
  const v = view(b, XCRS_SIZE);
  v.setUint32(0, x.xcrs.length, true);
  v.setUint32(4, x.flags, true);
  x.xcrs.forEach((e, i) => {
    v.setUint32(8 + i * 16, e.xcr, true);
    v.setBigUint64(16 + i * 16, e.value, true);
  });
  return b;
}
var VCPU_EVENTS_SIZE = 64;
var DEBUGREGS_SIZE = 128;
function decodeDebugRegs(b) {
  const v = view(b, DEBUGREGS_SIZE);
  const q = (o) => v.getBigUint64(o, true);
  return {
    db: [
      q(0),
      q(8),
      q(16),
      q(24)
    ],
    dr6: q(32),
    dr7: q(40),
    flags: q(48)
  };
}
function encodeDebugRegs(d) {
  const b = new Uint8Array(DEBUGREGS_SIZE);
  const v = view(b, DEBUGREGS_SIZE);
  d.db.forEach((x, i) => v.setBigUint64(i * 8, x, true));
  v.setBigUint64(32, d.dr6, true);
  v.setBigUint64(40, d.dr7, true);
  v.setBigUint64(48, d.flags, true);
  return b;
}
var IRQCHIP_SIZE = 520;
var IRQCHIP_DATA_OFFSET = 8;
var PIT_STATE2_SIZE = 112;
var PIT_CONFIG_SIZE = 64;
var CLOCK_DATA_SIZE = 48;
function decodeClock(b) {
  const v = view(b, CLOCK_DATA_SIZE);
  return {
    clock: v.getBigUint64(0, true),
    flags: v.getUint32(8, true),
    realtime: v.getBigUint64(16, true),
    hostTsc: v.getBigUint64(24, true)
  };
}
function encodeClock(c) {
  const b = new Uint8Array(CLOCK_DATA_SIZE);
  const v = view(b, CLOCK_DATA_SIZE);
  v.setBigUint64(0, c.clock, true);
  v.setUint32(8, c.flags, true);
  v.setBigUint64(16, c.realtime, true);
  v.setBigUint64(24, c.hostTsc, true);
  return b;
}
var MEMORY_REGION_SIZE = 32;
var IRQFD_SIZE = 32;
var IOEVENTFD_SIZE = 64;
var IRQ_LEVEL_SIZE = 8;
var DIRTY_LOG_SIZE = 16;
var RUN = {
  requestInterruptWindow: 0,
  immediateExit: 1,
  exitReason: 8,
  readyForInterruptInjection: 12,
  ifFlag: 13,
  flags: 14,
  cr8: 16,
  apicBase: 24,
  /** Start of the exit-specific union. */
  exit: 32,
  ioDirection: 32,
  ioSize: 33,
  ioPort: 34,
  ioCount: 36,
  ioDataOffset: 40,
  mmioPhysAddr: 32,
  mmioData: 40,
  mmioLen: 48,
  mmioIsWrite: 52,
  failEntryReason: 32,
  failEntryCpu: 40,
  internalSuberror: 32,
  internalNdata: 36,
  internalData: 40,
  systemEventType: 32,
  systemEventNdata: 36,
  systemEventData: 40,
  exException: 32,
  exErrorCode: 36,
  size: 2352
};
function view(b, size) {
  if (b.byteLength < size) {
    throw new RangeError(`Cannot decode struct: ${b.byteLength} bytes, need ${size}`);
  }
  return new DataView(b.buffer, b.byteOffset, size);
}

// kvm/exit.ts
var views = /* @__PURE__ */ new WeakMap();
function dataView(run2, off, len) {
  let m = views.get(run2);
  if (m === void 0) views.set(run2, m = /* @__PURE__ */ new Map());
  const key = off * 16 + len;
  let v = m.get(key);
  if (v === void 0) {
    if (m.size > 64) m.clear();
    m.set(key, v = run2.subarray(off, off + len));
  }
  return v;
}
function u64(dv, o) {
  return dv.getUint32(o + 4, true) * 4294967296 + dv.getUint32(o, true);
}
function decodeExit(run2, dv) {
  const reason = dv.getUint32(RUN.exitReason, true);
  switch (reason) {
    case EXIT.IO: {
      const size = dv.getUint8(RUN.ioSize);
      const count = dv.getUint32(RUN.ioCount, true);
      const off = u64(dv, RUN.ioDataOffset);
      const len = size * count;
      if (off + len > run2.byteLength) {
        return {
          kind: "other",
          reason
        };
      }
      const data = dataView(run2, off, len);
      const port = dv.getUint16(RUN.ioPort, true);
      return dv.getUint8(RUN.ioDirection) === 1 ? {
        kind: "io_out",
        port,
        size,
        count,
        data
      } : {
        kind: "io_in",
        port,
        size,
        count,
        data
      };
    }
    case EXIT.MMIO: {
      const addr = u64(dv, RUN.mmioPhysAddr);
      const len = Math.min(dv.getUint32(RUN.mmioLen, true), 8);
      const data = dataView(run2, RUN.mmioData, len);
      return dv.getUint8(RUN.mmioIsWrite) ? {
        kind: "mmio_write",
        addr,
        len,
        data
      } : {
        kind: "mmio_read",
        addr,
        len,
        data
      };
    }
    case EXIT.HLT:
      return {
        kind: "hlt"
      };
    case EXIT.SHUTDOWN:
      return {
        kind: "shutdown"
      };
    case EXIT.INTR:
      return {
        kind: "intr"
      };
    case EXIT.IRQ_WINDOW_OPEN:
      return {
        kind: "irq_window_open"
      };
    case EXIT.DEBUG:
      return {
        kind: "debug"
      };
    case EXIT.EXCEPTION:
      return {
        kind: "exception",
        exception: dv.getUint32(RUN.exException, true),
        errorCode: dv.getUint32(RUN.exErrorCode, true)
      };
    case EXIT.FAIL_ENTRY:
      return {
        kind: "fail_entry",
        reason: dv.getBigUint64(RUN.failEntryReason, true),
        cpu: dv.getUint32(RUN.failEntryCpu, true)
      };
    case EXIT.INTERNAL_ERROR: {
      const n = Math.min(dv.getUint32(RUN.internalNdata, true), 16);
      const data = [];
      for (let i = 0; i < n; i++) data.push(dv.getBigUint64(RUN.internalData + i * 8, true));
      return {
        kind: "internal_error",
        suberror: dv.getUint32(RUN.internalSuberror, true),
        data
      };
    }
    case EXIT.SYSTEM_EVENT: {
      const n = Math.min(dv.getUint32(RUN.systemEventNdata, true), 16);
      const data = [];
      for (let i = 0; i < n; i++) data.push(dv.getBigUint64(RUN.systemEventData + i * 8, true));
      return {
        kind: "system_event",
        type: dv.getUint32(RUN.systemEventType, true),
        data
      };
    }
    case EXIT.UNKNOWN:
      return {
        kind: "unknown",
        hardwareReason: dv.getBigUint64(RUN.exit, true)
      };
    default:
      return {
        kind: "other",
        reason
      };
  }
}

// sys/errno.ts
var NAMES = /* @__PURE__ */ new Map([
  [
    1,
    "EPERM"
  ],
  [
    2,
    "ENOENT"
  ],
  [
    3,
    "ESRCH"
  ],
  [
    4,
    "EINTR"
  ],
  [
    5,
    "EIO"
  ],
  [
    6,
    "ENXIO"
  ],
  [
    7,
    "E2BIG"
  ],
  [
    8,
    "ENOEXEC"
  ],
  [
    9,
    "EBADF"
  ],
  [
    10,
    "ECHILD"
  ],
  [
    11,
    "EAGAIN"
  ],
  [
    12,
    "ENOMEM"
  ],
  [
    13,
    "EACCES"
  ],
  [
    14,
    "EFAULT"
  ],
  [
    15,
    "ENOTBLK"
  ],
  [
    16,
    "EBUSY"
  ],
  [
    17,
    "EEXIST"
  ],
  [
    18,
    "EXDEV"
  ],
  [
    19,
    "ENODEV"
  ],
  [
    20,
    "ENOTDIR"
  ],
  [
    21,
    "EISDIR"
  ],
  [
    22,
    "EINVAL"
  ],
  [
    23,
    "ENFILE"
  ],
  [
    24,
    "EMFILE"
  ],
  [
    25,
    "ENOTTY"
  ],
  [
    26,
    "ETXTBSY"
  ],
  [
    27,
    "EFBIG"
  ],
  [
    28,
    "ENOSPC"
  ],
  [
    29,
    "ESPIPE"
  ],
  [
    30,
    "EROFS"
  ],
  [
    31,
    "EMLINK"
  ],
  [
    32,
    "EPIPE"
  ],
  [
    33,
    "EDOM"
  ],
  [
    34,
    "ERANGE"
  ],
  [
    35,
    "EDEADLOCK"
  ],
  [
    36,
    "ENAMETOOLONG"
  ],
  [
    37,
    "ENOLCK"
  ],
  [
    38,
    "ENOSYS"
  ],
  [
    39,
    "ENOTEMPTY"
  ],
  [
    40,
    "ELOOP"
  ],
  [
    42,
    "ENOMSG"
  ],
  [
    43,
    "EIDRM"
  ],
  [
    44,
    "ECHRNG"
  ],
  [
    45,
    "EL2NSYNC"
  ],
  [
    46,
    "EL3HLT"
  ],
  [
    47,
    "EL3RST"
  ],
  [
    48,
    "ELNRNG"
  ],
  [
    49,
    "EUNATCH"
  ],
  [
    50,
    "ENOCSI"
  ],
  [
    51,
    "EL2HLT"
  ],
  [
    52,
    "EBADE"
  ],
  [
    53,
    "EBADR"
  ],
  [
    54,
    "EXFULL"
  ],
  [
    55,
    "ENOANO"
  ],
  [
    56,
    "EBADRQC"
  ],
  [
    57,
    "EBADSLT"
  ],
  [
    59,
    "EBFONT"
  ],
  [
    60,
    "ENOSTR"
  ],
  [
    61,
    "ENODATA"
  ],
  [
    62,
    "ETIME"
  ],
  [
    63,
    "ENOSR"
  ],
  [
    64,
    "ENONET"
  ],
  [
    65,
    "ENOPKG"
  ],
  [
    66,
    "EREMOTE"
  ],
  [
    67,
    "ENOLINK"
  ],
  [
    68,
    "EADV"
  ],
  [
    69,
    "ESRMNT"
  ],
  [
    70,
    "ECOMM"
  ],
  [
    71,
    "EPROTO"
  ],
  [
    72,
    "EMULTIHOP"
  ],
  [
    73,
    "EDOTDOT"
  ],
  [
    74,
    "EBADMSG"
  ],
  [
    75,
    "EOVERFLOW"
  ],
  [
    76,
    "ENOTUNIQ"
  ],
  [
    77,
    "EBADFD"
  ],
  [
    78,
    "EREMCHG"
  ],
  [
    79,
    "ELIBACC"
  ],
  [
    80,
    "ELIBBAD"
  ],
  [
    81,
    "ELIBSCN"
  ],
  [
    82,
    "ELIBMAX"
  ],
  [
    83,
    "ELIBEXEC"
  ],
  [
    84,
    "EILSEQ"
  ],
  [
    85,
    "ERESTART"
  ],
  [
    86,
    "ESTRPIPE"
  ],
  [
    87,
    "EUSERS"
  ],
  [
    88,
    "ENOTSOCK"
  ],
  [
    89,
    "EDESTADDRREQ"
  ],
  [
    90,
    "EMSGSIZE"
  ],
  [
    91,
    "EPROTOTYPE"
  ],
  [
    92,
    "ENOPROTOOPT"
  ],
  [
    93,
    "EPROTONOSUPPORT"
  ],
  [
    94,
    "ESOCKTNOSUPPORT"
  ],
  [
    95,
    "ENOTSUP"
  ],
  [
    96,
    "EPFNOSUPPORT"
  ],
  [
    97,
    "EAFNOSUPPORT"
  ],
  [
    98,
    "EADDRINUSE"
  ],
  [
    99,
    "EADDRNOTAVAIL"
  ],
  [
    100,
    "ENETDOWN"
  ],
  [
    101,
    "ENETUNREACH"
  ],
  [
    102,
    "ENETRESET"
  ],
  [
    103,
    "ECONNABORTED"
  ],
  [
    104,
    "ECONNRESET"
  ],
  [
    105,
    "ENOBUFS"
  ],
  [
    106,
    "EISCONN"
  ],
  [
    107,
    "ENOTCONN"
  ],
  [
    108,
    "ESHUTDOWN"
  ],
  [
    109,
    "ETOOMANYREFS"
  ],
  [
    110,
    "ETIMEDOUT"
  ],
  [
    111,
    "ECONNREFUSED"
  ],
  [
    112,
    "EHOSTDOWN"
  ],
  [
    113,
    "EHOSTUNREACH"
  ],
  [
    114,
    "EALREADY"
  ],
  [
    115,
    "EINPROGRESS"
  ],
  [
    116,
    "ESTALE"
  ],
  [
    117,
    "EUCLEAN"
  ],
  [
    118,
    "ENOTNAM"
  ],
  [
    119,
    "ENAVAIL"
  ],
  [
    120,
    "EISNAM"
  ],
  [
    121,
    "EREMOTEIO"
  ],
  [
    122,
    "EDQUOT"
  ],
  [
    123,
    "ENOMEDIUM"
  ],
  [
    124,
    "EMEDIUMTYPE"
  ],
  [
    125,
    "ECANCELED"
  ],
  [
    126,
    "ENOKEY"
  ],
  [
    127,
    "EKEYEXPIRED"
  ],
  [
    128,
    "EKEYREVOKED"
  ],
  [
    129,
    "EKEYREJECTED"
  ],
  [
    130,
    "EOWNERDEAD"
  ],
  [
    131,
    "ENOTRECOVERABLE"
  ],
  [
    132,
    "ERFKILL"
  ]
]);
function errnoName(errno) {
  return NAMES.get(errno) ?? `errno ${errno}`;
}

// sys/libc.ts
var symbols = {
  ioctl: {
    name: "ioctl",
    parameters: [
      "i32",
      "u64",
      "buffer"
    ],
    result: "i32"
  },
  ioctlInt: {
    name: "ioctl",
    parameters: [
      "i32",
      "u64",
      "u64"
    ],
    result: "i32"
  },
  // KVM_RUN, on the hot path: numbers only (the kernel reads the request as 32 bits).
  ioctlRun: {
    name: "ioctl",
    parameters: [
      "i32",
      "u32",
      "pointer"
    ],
    result: "i32"
  },
  open: {
    parameters: [
      "buffer",
      "i32",
      "u32"
    ],
    result: "i32"
  },
  close: {
    parameters: [
      "i32"
    ],
    result: "i32"
  },
  read: {
    parameters: [
      "i32",
      "buffer",
      "usize"
    ],
    result: "isize"
  },
  write: {
    parameters: [
      "i32",
      "buffer",
      "usize"
    ],
    result: "isize"
  },
  pread: {
    name: "pread64",
    parameters: [
      "i32",
      "buffer",
      "usize",
      "i64"
    ],
    result: "isize"
  },
  pwrite: {
    name: "pwrite64",
    parameters: [
      "i32",
      "buffer",
      "usize",
      "i64"
    ],
    result: "isize"
  },
  fdatasync: {
    parameters: [
      "i32"
    ],
    result: "i32"
  },
  mmap: {
    parameters: [
      "pointer",
      "usize",
      "i32",
      "i32",
      "i32",
      "i64"
    ],
    result: "pointer"
  },
  munmap: {
    parameters: [
      "pointer",
      "usize"
    ],
    result: "i32"
  },
  madvise: {
    parameters: [
      "pointer",
      "usize",
      "i32"
    ],
    result: "i32"
  },
  eventfd: {
    parameters: [
      "u32",
      "i32"
    ],
    result: "i32"
  },
  epoll_create1: {
    parameters: [
      "i32"
    ],
    result: "i32"
  },
  epoll_ctl: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "buffer"
    ],
    result: "i32"
  },
  epoll_wait: {
    parameters: [
      "i32",
      "buffer",
      "i32",
      "i32"
    ],
    result: "i32"
  },
  gettid: {
    parameters: [],
    result: "i32"
  },
  getpid: {
    parameters: [],
    result: "i32"
  },
  tgkill: {
    parameters: [
      "i32",
      "i32",
      "i32"
    ],
    result: "i32"
  },
  errno_location: {
    name: "__errno_location",
    parameters: [],
    result: "pointer"
  },
  setns: {
    parameters: [
      "i32",
      "i32"
    ],
    result: "i32"
  },
  pipe2: {
    parameters: [
      "buffer",
      "i32"
    ],
    result: "i32"
  },
  dup2: {
    parameters: [
      "i32",
      "i32"
    ],
    result: "i32"
  },
  mount: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "u64",
      "pointer"
    ],
    result: "i32"
  },
  umount2: {
    parameters: [
      "buffer",
      "i32"
    ],
    result: "i32"
  },
  setpriority: {
    parameters: [
      "i32",
      "u32",
      "i32"
    ],
    result: "i32"
  },
  // Disk I/O off the calling thread (Deno's blocking pool), so the device thread never
  // blocks. These return errno themselves (see the *Async wrappers), because errno is
  // per-thread and the call runs on another thread.
  preadAsync: {
    name: "pread64",
    parameters: [
      "i32",
      "pointer",
      "usize",
      "i64"
    ],
    result: "isize",
    nonblocking: true
  },
  pwriteAsync: {
    name: "pwrite64",
    parameters: [
      "i32",
      "pointer",
      "usize",
      "i64"
    ],
    result: "isize",
    nonblocking: true
  },
  // Vectored: one call for a request whose data is spread over many guest pages.
  preadvAsync: {
    name: "preadv",
    parameters: [
      "i32",
      "pointer",
      "i32",
      "i64"
    ],
    result: "isize",
    nonblocking: true
  },
  pwritevAsync: {
    name: "pwritev",
    parameters: [
      "i32",
      "pointer",
      "i32",
      "i64"
    ],
    result: "isize",
    nonblocking: true
  },
  // On this thread with RWF_NOWAIT: served from the page cache without waiting, or EAGAIN.
  // Optional: a libc older than 2.26 has no preadv2 (the calls then report ENOSYS).
  preadv2: {
    name: "preadv2",
    parameters: [
      "i32",
      "buffer",
      "i32",
      "i64",
      "i32"
    ],
    result: "isize",
    optional: true
  },
  pwritev2: {
    name: "pwritev2",
    parameters: [
      "i32",
      "buffer",
      "i32",
      "i64",
      "i32"
    ],
    result: "isize",
    optional: true
  },
  // On this thread without flags: for data a residency check found in the page cache.
  preadvSync: {
    name: "preadv",
    parameters: [
      "i32",
      "buffer",
      "i32",
      "i64"
    ],
    result: "isize"
  },
  // Which pages of a mapping are in memory (for a file mapping: in the page cache).
  mincore: {
    parameters: [
      "usize",
      "usize",
      "buffer"
    ],
    result: "i32"
  },
  fstatfs: {
    parameters: [
      "i32",
      "buffer"
    ],
    result: "i32"
  },
  fdatasyncAsync: {
    name: "fdatasync",
    parameters: [
      "i32"
    ],
    result: "i32",
    nonblocking: true
  },
  epollWaitAsync: {
    name: "epoll_wait",
    parameters: [
      "i32",
      "pointer",
      "i32",
      "i32"
    ],
    result: "i32",
    nonblocking: true
  },
  fallocateAsync: {
    name: "fallocate64",
    parameters: [
      "i32",
      "i32",
      "i64",
      "i64"
    ],
    result: "i32",
    nonblocking: true
  }
};
var lib = Deno.dlopen("libc.so.6", symbols);
function libc() {
  return lib.symbols;
}
function lastErrno() {
  const p = libc().errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32(0);
}
var SysError = class extends Error {
  /** The call that failed, e.g. `KVM_CREATE_VCPU` or `mmap`. */
  op;
  /** The numeric errno. */
  errno;
  /** The symbolic errno, e.g. `EEXIST`. */
  code;
  /**
   * The error for `op` failing with `errno`; `detail` (e.g. a path) goes in the message.
   *
   * @example
   * ```ts
   * import { SysError } from "./libc.ts";
   * const e = new SysError("open", 2, "/nope");
   * console.assert(e.message === "open failed: ENOENT (/nope)");
   * ```
   */
  constructor(op, errno, detail) {
    const code = errnoName(errno);
    super(`${op} failed: ${code}${detail ? ` (${detail})` : ""}`);
    this.name = "SysError";
    this.op = op;
    this.errno = errno;
    this.code = code;
  }
};
function check(op, ret) {
  if (ret < 0) throw new SysError(op, lastErrno());
  return ret;
}
var MAP_FAILED = 0xffffffffffffffffn;
var PROT_READ = 1;
var PROT_WRITE = 2;
var MAP_SHARED = 1;
var MAP_PRIVATE = 2;
var MAP_ANONYMOUS = 32;
var MAP_NORESERVE = 16384;
var O_RDONLY = 0;
var O_RDWR = 2;
var O_CLOEXEC = 524288;
var O_NONBLOCK = 2048;
var EFD_CLOEXEC = 524288;
var EFD_NONBLOCK = 2048;
function mmap(length, prot, flags, fd = -1, offset = 0) {
  const p = libc().mmap(null, BigInt(length), prot, flags, fd, BigInt(offset));
  if (p === null || Deno.UnsafePointer.value(p) === MAP_FAILED) {
    throw new SysError("mmap", lastErrno(), `${length} bytes`);
  }
  return p;
}
function munmap(p, length) {
  check("munmap", libc().munmap(p, BigInt(length)));
}
function openFile(path, flags, mode = 384) {
  const c = new TextEncoder().encode(path + "\0");
  const fd = libc().open(c, flags | O_CLOEXEC, mode);
  if (fd < 0) throw new SysError("open", lastErrno(), path);
  return fd;
}
function closeFd(fd) {
  libc().close(fd);
}
var FdHandle = class {
  /** The file descriptor. */
  fd;
  #closed = false;
  /** Takes ownership of `fd`. */
  constructor(fd) {
    this.fd = fd;
  }
  /** Whether {@link close} ran. */
  get closed() {
    return this.#closed;
  }
  /** Closes the fd (idempotent). */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.fd);
  }
  /** {@link close}, for `using`. */
  [Symbol.dispose]() {
    this.close();
  }
};
function eventfd(initval = 0, blocking = false) {
  return check("eventfd", libc().eventfd(initval, EFD_CLOEXEC | (blocking ? 0 : EFD_NONBLOCK)));
}
var u64buf = new BigUint64Array(1);
function eventfdWrite(fd, value = 1n) {
  u64buf[0] = value;
  const n = Number(libc().write(fd, u64buf, 8n));
  if (n !== 8) throw new SysError("write(eventfd)", lastErrno());
}
function eventfdRead(fd) {
  u64buf[0] = 0n;
  const n = Number(libc().read(fd, u64buf, 8n));
  if (n === 8) return u64buf[0];
  const e = lastErrno();
  if (e === 11) return 0n;
  throw new SysError("read(eventfd)", e);
}
function readFd(fd, buf) {
  const n = Number(libc().read(fd, buf, BigInt(buf.byteLength)));
  if (n >= 0) return n;
  const e = lastErrno();
  if (e === 11) return -1;
  throw new SysError("read", e);
}
function writeFd(fd, buf) {
  const n = Number(libc().write(fd, buf, BigInt(buf.byteLength)));
  if (n >= 0) return n;
  const e = lastErrno();
  if (e === 11) return -1;
  throw new SysError("write", e);
}
function pwriteAll(fd, bytes2, offset) {
  let done = 0;
  while (done < bytes2.byteLength) {
    const part = bytes2.subarray(done);
    const n = Number(libc().pwrite(fd, part, BigInt(part.byteLength), BigInt(offset + done)));
    if (n <= 0) throw new SysError("pwrite", lastErrno(), `at ${offset + done}`);
    done += n;
  }
}
var IOV_MAX = 1024;
var IOVEC_SIZE = 16;
var bufferBases = /* @__PURE__ */ new WeakMap();
function bufferBase(ab) {
  let base = bufferBases.get(ab);
  if (base === void 0) {
    base = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(ab)));
    bufferBases.set(ab, base);
  }
  return base;
}
function fillIovecs(iov, bufs, first = 0, skip = 0) {
  if (first < 0 || first > bufs.length || first < bufs.length && (skip < 0 || skip > bufs[first].byteLength) || first === bufs.length && skip !== 0) {
    throw new RangeError(`fillIovecs: skip ${skip} of buffer ${first} is out of range`);
  }
  const dv = new DataView(iov.buffer, iov.byteOffset, iov.byteLength);
  const room = Math.min(IOV_MAX, Math.floor(iov.byteLength / IOVEC_SIZE));
  let n = 0;
  for (let i = first; i < bufs.length && n < room; i++) {
    const b = bufs[i], off = i === first ? skip : 0;
    setIovec(dv, n++, bufferBase(b.buffer) + b.byteOffset + off, b.byteLength - off);
  }
  return n;
}
function setIovec(view2, index, addr, len) {
  const at = index * IOVEC_SIZE;
  view2.setUint32(at, addr >>> 0, true);
  view2.setUint32(at + 4, Math.floor(addr / 4294967296), true);
  view2.setUint32(at + 8, len, true);
  view2.setUint32(at + 12, 0, true);
}
function preadvOffThread(fd, iov, count, offset) {
  return vectoredOffThread("preadv", fd, iov, count, offset);
}
function pwritevOffThread(fd, iov, count, offset) {
  return vectoredOffThread("pwritev", fd, iov, count, offset);
}
async function vectoredOffThread(call, fd, iov, count, offset) {
  if (count < 1 || count > IOV_MAX || count * IOVEC_SIZE > iov.byteLength) {
    throw new RangeError(`${call}: ${count} iovecs do not fit the ${iov.byteLength}-byte array`);
  }
  const fn = call === "preadv" ? libc().preadvAsync : libc().pwritevAsync;
  return Number(await fn(fd, Deno.UnsafePointer.of(iov), count, BigInt(offset)));
}
var RWF_NOWAIT = 8;
var EINVAL = 22;
var ENOSYS = 38;
var EOPNOTSUPP = 95;
function preadvNowait(fd, iov, count, offset) {
  return vectoredNowait("preadv2", fd, iov, count, offset);
}
function pwritevNowait(fd, iov, count, offset) {
  return vectoredNowait("pwritev2", fd, iov, count, offset);
}
function vectoredNowait(call, fd, iov, count, offset) {
  if (count < 1 || count > IOV_MAX || count * IOVEC_SIZE > iov.byteLength) {
    throw new RangeError(`${call}: ${count} iovecs do not fit the ${iov.byteLength}-byte array`);
  }
  const fn = libc()[call];
  if (fn === null) return -ENOSYS;
  const n = Number(fn(fd, iov, count, BigInt(offset), RWF_NOWAIT));
  return n < 0 ? -lastErrno() : n;
}
function preadvSync(fd, iov, count, offset) {
  if (count < 1 || count > IOV_MAX || count * IOVEC_SIZE > iov.byteLength) {
    throw new RangeError(`preadv: ${count} iovecs do not fit the ${iov.byteLength}-byte array`);
  }
  const n = Number(libc().preadvSync(fd, iov, count, BigInt(offset)));
  return n < 0 ? -lastErrno() : n;
}
var PAGE_SIZE = 4096;
function mincore(addr, length, vec) {
  const pages = Math.ceil(length / PAGE_SIZE);
  if (addr % PAGE_SIZE !== 0 || length < 0 || pages > vec.byteLength) {
    throw new RangeError(`mincore: ${length} bytes at ${addr} do not fit ${vec.byteLength} pages`);
  }
  const r = libc().mincore(BigInt(addr), BigInt(length), vec);
  return r < 0 ? -lastErrno() : 0;
}
var OVERLAYFS_SUPER_MAGIC = 2035054128;
var TMPFS_MAGIC = 16914836;
function fsType(fd) {
  const buf = new BigInt64Array(15);
  if (libc().fstatfs(fd, new Uint8Array(buf.buffer)) < 0) {
    throw new SysError("fstatfs", lastErrno());
  }
  return Number(buf[0]);
}
async function fdatasyncOffThread(fd) {
  return await libc().fdatasyncAsync(fd);
}
async function fallocateOffThread(fd, mode, offset, len) {
  return await libc().fallocateAsync(fd, mode, BigInt(offset), BigInt(len));
}
var FALLOC_FL_KEEP_SIZE = 1;
var FALLOC_FL_PUNCH_HOLE = 2;
var FALLOC_FL_ZERO_RANGE = 16;
function fdatasync(fd) {
  check("fdatasync", libc().fdatasync(fd));
}
function getpid() {
  return libc().getpid();
}
function tgkill(pid, tid, signal) {
  check("tgkill", libc().tgkill(pid, tid, signal));
}
var SIGUSR2 = 12;
var EPOLLIN = 1;
var EPOLLET = 2147483648;
var EPOLL_CLOEXEC = 524288;
var EPOLL_CTL_ADD = 1;
var EPOLL_CTL_DEL = 2;
var EPOLL_EVENT_SIZE = 12;
var Epoll = class _Epoll extends FdHandle {
  maxEvents;
  #ev;
  #out;
  #asyncOut;
  #waiting;
  /**
   * A new epoll instance (or one wrapping `fd`) that reports up to `maxEvents` events a
   * wait.
   */
  constructor(maxEvents = 64, fd) {
    super(fd ?? check("epoll_create1", libc().epoll_create1(EPOLL_CLOEXEC))), this.maxEvents = maxEvents, this.#ev = new Uint8Array(EPOLL_EVENT_SIZE), this.#waiting = false;
    this.#out = new Uint8Array(EPOLL_EVENT_SIZE * maxEvents);
    this.#asyncOut = new Uint8Array(EPOLL_EVENT_SIZE * maxEvents);
  }
  /** Wraps an epoll fd created elsewhere (e.g. on another thread); close() closes it. */
  static fromFd(fd, maxEvents = 64) {
    return new _Epoll(maxEvents, fd);
  }
  /** Watches `fd` for `events`, reporting it with `tag`. */
  add(fd, events, tag) {
    const v = new DataView(this.#ev.buffer);
    v.setUint32(0, events, true);
    v.setBigUint64(4, BigInt(tag >>> 0), true);
    check("epoll_ctl", libc().epoll_ctl(this.fd, EPOLL_CTL_ADD, fd, this.#ev));
  }
  /** Stops watching `fd`. */
  remove(fd) {
    check("epoll_ctl", libc().epoll_ctl(this.fd, EPOLL_CTL_DEL, fd, this.#ev));
  }
  /** Waits up to `timeoutMs` (-1: forever) and returns the ready tags; EINTR gives []. */
  wait(timeoutMs) {
    const n = libc().epoll_wait(this.fd, this.#out, this.maxEvents, timeoutMs);
    if (n < 0) {
      const e = lastErrno();
      if (e === 4) return [];
      throw new SysError("epoll_wait", e);
    }
    return decodeEvents(this.#out, n);
  }
  /**
   * Like {@link wait}, but blocks a thread of Deno's blocking pool instead of this one.
   * One at a time; it fills a buffer of its own, which nothing else touches meanwhile.
   * Resolves null when the call failed (errno belongs to the other thread: usually EINTR).
   */
  async waitAsync(timeoutMs) {
    if (this.#waiting) throw new Error("Cannot wait: a waitAsync() is already pending");
    this.#waiting = true;
    try {
      const n = await libc().epollWaitAsync(this.fd, Deno.UnsafePointer.of(this.#asyncOut), this.maxEvents, timeoutMs);
      return n < 0 ? null : decodeEvents(this.#asyncOut, n);
    } finally {
      this.#waiting = false;
    }
  }
};
function decodeEvents(buf, n) {
  const v = new DataView(buf.buffer);
  const out = [];
  for (let i = 0; i < n; i++) {
    const o = i * EPOLL_EVENT_SIZE;
    out.push({
      events: v.getUint32(o, true),
      tag: Number(v.getBigUint64(o + 4, true) & 0xffffffffn)
    });
  }
  return out;
}

// sys/tun.ts
var TUNSETIFF = 1074025674;
var TUNSETOFFLOAD = 1074025680;
var TUNSETVNETHDRSZ = 1074025688;
var IFF_TAP = 2;
var IFF_NO_PI = 4096;
var IFF_VNET_HDR = 16384;
function tunSetIff(fd, name2, flags) {
  const enc = new TextEncoder().encode(name2);
  if (enc.byteLength === 0 || enc.byteLength > 15) {
    throw new RangeError(`Cannot open TAP ${JSON.stringify(name2)}: a name has 1 to 15 bytes`);
  }
  const ifr = new Uint8Array(40);
  ifr.set(enc);
  new DataView(ifr.buffer).setUint16(16, flags, true);
  if (libc().ioctl(fd, BigInt(TUNSETIFF), ifr) < 0) {
    throw new SysError("TUNSETIFF", lastErrno(), name2);
  }
}
function tunSetVnetHdrSize(fd, size) {
  const sz = new Int32Array([
    size
  ]);
  if (libc().ioctl(fd, BigInt(TUNSETVNETHDRSZ), sz) < 0) {
    throw new SysError("TUNSETVNETHDRSZ", lastErrno());
  }
}
function tunSetOffload(fd, flags) {
  if (libc().ioctlInt(fd, BigInt(TUNSETOFFLOAD), BigInt(flags)) < 0) {
    throw new SysError("TUNSETOFFLOAD", lastErrno());
  }
}

// sys/mod.ts
init_timer();

// kvm/kvm.ts
var KvmError = class extends SysError {
  /**
   * The error for ioctl `op` failing with `errno`.
   *
   * @example
   * ```ts
   * import { KvmError } from "./kvm.ts";
   * const e = new KvmError("KVM_CREATE_VCPU", 17);
   * console.assert(e.message === "KVM_CREATE_VCPU failed: EEXIST");
   * ```
   */
  constructor(op, errno, detail) {
    super(op, errno, detail);
    this.name = "KvmError";
  }
};
var EINTR = 4;
var E2BIG = 7;
var EAGAIN = 11;
function ptr(b) {
  return b === null ? null : Deno.UnsafePointer.of(b);
}
var TRACE = (() => {
  try {
    if (Deno.permissions.querySync({
      name: "env",
      variable: "DENOVM_KVM_TRACE"
    }).state !== "granted") {
      return void 0;
    }
    return Deno.env.get("DENOVM_KVM_TRACE") || void 0;
  } catch {
    return void 0;
  }
})();
var traceRoles = /* @__PURE__ */ new Map();
function traceRole(fd, role) {
  if (TRACE) traceRoles.set(fd, role);
}
function record(fd, req, arg2, int2) {
  const body = arg2 ?? new Uint8Array(0);
  const rec = new Uint8Array(24 + body.byteLength), v = new DataView(rec.buffer);
  v.setUint32(0, traceRoles.get(fd) ?? 4294967295, true);
  v.setUint32(4, req >>> 0, true);
  v.setUint32(8, arg2 === null ? 1 : 0, true);
  v.setUint32(12, body.byteLength, true);
  v.setBigUint64(16, BigInt.asUintN(64, BigInt(int2)), true);
  rec.set(body, 24);
  Deno.writeFileSync(TRACE, rec, {
    append: true
  });
}
var requests = /* @__PURE__ */ new Map();
function request(name2) {
  let r = requests.get(name2);
  if (r === void 0) requests.set(name2, r = BigInt(IOCTL[name2]));
  return r;
}
function ioctl(fd, name2, arg2 = null) {
  const ret = libc().ioctl(fd, request(name2), arg2);
  if (TRACE && ret >= 0) record(fd, IOCTL[name2], arg2 ?? new Uint8Array(0), 0);
  if (ret < 0) throw new KvmError(name2, lastErrno());
  return ret;
}
function getStruct(fd, name2, size, decode) {
  const b = new Uint8Array(size);
  ioctl(fd, name2, b);
  return decode(b);
}
var raw = (b) => b;
function cpuidIoctl(fd, name2) {
  for (let n = 64; n <= 4096; n *= 2) {
    const b = new Uint8Array(CPUID2_HEADER_SIZE + n * CPUID_ENTRY_SIZE);
    new DataView(b.buffer).setUint32(0, n, true);
    const ret = libc().ioctl(fd, request(name2), b);
    if (ret >= 0) return decodeCpuid(b);
    const e = lastErrno();
    if (e !== E2BIG) throw new KvmError(name2, e);
  }
  throw new KvmError(name2, E2BIG);
}
function ioctlInt(fd, name2, arg2 = 0) {
  const ret = libc().ioctlInt(fd, request(name2), BigInt(arg2));
  if (TRACE && ret >= 0) record(fd, IOCTL[name2], null, arg2);
  if (ret < 0) throw new KvmError(name2, lastErrno());
  return ret;
}
var Kvm = class _Kvm extends FdHandle {
  constructor(fd) {
    super(fd);
    traceRole(fd, 0);
  }
  /** Opens `/dev/kvm` (or `path`) and checks the API version is 12. */
  static open(path = "/dev/kvm") {
    const kvm = new _Kvm(openFile(path, O_RDWR));
    const v = kvm.apiVersion();
    if (v !== 12) {
      kvm.close();
      throw new Error(`Cannot use ${path}: KVM API version ${v}, expected 12`);
    }
    return kvm;
  }
  /** `KVM_GET_API_VERSION`. */
  apiVersion() {
    return ioctlInt(this.fd, "KVM_GET_API_VERSION");
  }
  /** `KVM_CHECK_EXTENSION`: 0 when unsupported, else a capability-specific value. */
  checkExtension(cap) {
    return ioctlInt(this.fd, "KVM_CHECK_EXTENSION", cap);
  }
  /** `KVM_GET_VCPU_MMAP_SIZE`: bytes to map for each vCPU's `kvm_run`. */
  vcpuMmapSize() {
    return ioctlInt(this.fd, "KVM_GET_VCPU_MMAP_SIZE");
  }
  /** `KVM_GET_SUPPORTED_CPUID`: the CPUID leaves KVM can present to a guest. */
  supportedCpuid() {
    return cpuidIoctl(this.fd, "KVM_GET_SUPPORTED_CPUID");
  }
  /** `KVM_GET_MSR_INDEX_LIST`: the MSRs KVM saves and restores for a vCPU. */
  msrIndexList() {
    const probe = new Uint8Array(4);
    const ret = libc().ioctl(this.fd, request("KVM_GET_MSR_INDEX_LIST"), probe);
    const n = new DataView(probe.buffer).getUint32(0, true);
    if (ret < 0 && lastErrno() !== E2BIG) throw new KvmError("KVM_GET_MSR_INDEX_LIST", lastErrno());
    const b = new Uint8Array(4 + 4 * n);
    new DataView(b.buffer).setUint32(0, n, true);
    ioctl(this.fd, "KVM_GET_MSR_INDEX_LIST", b);
    const v = new DataView(b.buffer);
    const count = v.getUint32(0, true);
    return Array.from({
      length: count
    }, (_, i) => v.getUint32(4 + 4 * i, true));
  }
  /** `KVM_CREATE_VM`. */
  createVm() {
    return new Vm(ioctlInt(this.fd, "KVM_CREATE_VM", 0), this.vcpuMmapSize());
  }
};
var Vm = class extends FdHandle {
  /** Bytes of each vCPU's `kvm_run` mapping. */
  runSize;
  #irqLevel = new Uint8Array(IRQ_LEVEL_SIZE);
  #irqLevelView = new DataView(this.#irqLevel.buffer);
  /** Wraps an existing VM fd (e.g. passed to a worker). Close every vCPU before it. */
  constructor(fd, runSize) {
    super(fd);
    this.runSize = runSize;
    traceRole(fd, 1);
  }
  /** `KVM_CHECK_EXTENSION` on the VM (answers may differ per VM). */
  checkExtension(cap) {
    return ioctlInt(this.fd, "KVM_CHECK_EXTENSION", cap);
  }
  /** `KVM_SET_USER_MEMORY_REGION`; a size of 0 deletes the slot. */
  setUserMemoryRegion(r) {
    const b = new Uint8Array(MEMORY_REGION_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, r.slot, true);
    v.setUint32(4, r.flags ?? 0, true);
    v.setBigUint64(8, BigInt(r.guestPhysAddr), true);
    v.setBigUint64(16, BigInt(r.size), true);
    v.setBigUint64(24, r.userspaceAddr, true);
    ioctl(this.fd, "KVM_SET_USER_MEMORY_REGION", b);
  }
  /** `KVM_SET_TSS_ADDR`: three pages below 4 GiB that the guest never uses (Intel). */
  setTssAddr(addr) {
    ioctlInt(this.fd, "KVM_SET_TSS_ADDR", addr);
  }
  /** `KVM_SET_IDENTITY_MAP_ADDR`: one page for the EPT identity map (Intel). */
  setIdentityMapAddr(addr) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(addr), true);
    ioctl(this.fd, "KVM_SET_IDENTITY_MAP_ADDR", b);
  }
  /** `KVM_CREATE_IRQCHIP`: in-kernel PIC pair, IOAPIC and per-vCPU LAPICs. */
  createIrqchip() {
    ioctl(this.fd, "KVM_CREATE_IRQCHIP");
  }
  /** `KVM_GET_IRQCHIP`: 512 bytes of state for chip 0 (PIC master), 1 (slave), 2 (IOAPIC). */
  getIrqchip(chipId) {
    const b = new Uint8Array(IRQCHIP_SIZE);
    new DataView(b.buffer).setUint32(0, chipId, true);
    ioctl(this.fd, "KVM_GET_IRQCHIP", b);
    return b.slice(IRQCHIP_DATA_OFFSET);
  }
  /** `KVM_SET_IRQCHIP`. */
  setIrqchip(chipId, state) {
    if (state.byteLength !== IRQCHIP_SIZE - IRQCHIP_DATA_OFFSET) {
      throw new RangeError(`Cannot set irqchip ${chipId}: state is ${state.byteLength} bytes`);
    }
    const b = new Uint8Array(IRQCHIP_SIZE);
    new DataView(b.buffer).setUint32(0, chipId, true);
    b.set(state, IRQCHIP_DATA_OFFSET);
    ioctl(this.fd, "KVM_SET_IRQCHIP", b);
  }
  /** `KVM_CREATE_PIT2` (flags: 1 = KVM_PIT_SPEAKER_DUMMY). */
  createPit2(flags = 0) {
    const b = new Uint8Array(PIT_CONFIG_SIZE);
    new DataView(b.buffer).setUint32(0, flags, true);
    ioctl(this.fd, "KVM_CREATE_PIT2", b);
  }
  /** `KVM_GET_PIT2`: raw `struct kvm_pit_state2`. */
  getPit2() {
    return getStruct(this.fd, "KVM_GET_PIT2", PIT_STATE2_SIZE, raw);
  }
  /** `KVM_SET_PIT2`. */
  setPit2(state) {
    if (state.byteLength !== PIT_STATE2_SIZE) {
      throw new RangeError(`Cannot set PIT state: ${state.byteLength} bytes, need 112`);
    }
    ioctl(this.fd, "KVM_SET_PIT2", state.slice());
  }
  /** `KVM_GET_CLOCK`. */
  getClock() {
    return getStruct(this.fd, "KVM_GET_CLOCK", CLOCK_DATA_SIZE, decodeClock);
  }
  /** `KVM_SET_CLOCK`. */
  setClock(c) {
    ioctl(this.fd, "KVM_SET_CLOCK", encodeClock(c));
  }
  /** `KVM_IRQ_LINE`: drive a GSI of the in-kernel irqchip high (1) or low (0). */
  irqLine(irq, level) {
    const b = this.#irqLevel, v = this.#irqLevelView;
    v.setUint32(0, irq, true);
    v.setUint32(4, level, true);
    ioctl(this.fd, "KVM_IRQ_LINE", b);
  }
  /** `KVM_IRQFD`: writes to `fd` inject GSI `gsi` (edge) without leaving the kernel. */
  irqfd(fd, gsi, opts = {}) {
    const b = new Uint8Array(IRQFD_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, fd, true);
    v.setUint32(4, gsi, true);
    let flags = opts.deassign ? IRQFD_FLAG.DEASSIGN : 0;
    if (opts.resampleFd !== void 0) {
      flags |= IRQFD_FLAG.RESAMPLE;
      v.setUint32(12, opts.resampleFd, true);
    }
    v.setUint32(8, flags, true);
    ioctl(this.fd, "KVM_IRQFD", b);
  }
  /**
   * `KVM_REGISTER_COALESCED_MMIO`: guest writes inside [addr, addr+size) (port I/O with
   * `pio`, which needs KVM_CAP_COALESCED_PIO) no longer exit; KVM appends them to the ring
   * at page `KVM_CHECK_EXTENSION(KVM_CAP_COALESCED_MMIO)` of every `kvm_run` mapping
   * ({@link Vcpu.drainCoalesced}), which userspace must empty before it handles any exit.
   * Reads still exit.
   */
  registerCoalesced(z, unregister = false) {
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, BigInt(z.addr), true);
    v.setUint32(8, z.size, true);
    v.setUint32(12, z.pio ? 1 : 0, true);
    ioctl(this.fd, unregister ? "KVM_UNREGISTER_COALESCED_MMIO" : "KVM_REGISTER_COALESCED_MMIO", b);
  }
  /** `KVM_IOEVENTFD`: a guest write to `addr` signals `fd` instead of exiting. */
  ioeventfd(o) {
    const b = new Uint8Array(IOEVENTFD_SIZE);
    const v = new DataView(b.buffer);
    let flags = 0;
    if (o.datamatch !== void 0) {
      flags |= IOEVENTFD_FLAG.DATAMATCH;
      v.setBigUint64(0, BigInt(o.datamatch), true);
    }
    if (o.pio) flags |= IOEVENTFD_FLAG.PIO;
    if (o.deassign) flags |= IOEVENTFD_FLAG.DEASSIGN;
    v.setBigUint64(8, BigInt(o.addr), true);
    v.setUint32(16, o.len, true);
    v.setInt32(20, o.fd, true);
    v.setUint32(24, flags, true);
    ioctl(this.fd, "KVM_IOEVENTFD", b);
  }
  /**
   * `KVM_GET_DIRTY_LOG`: one bit per page of `slot` (which must have been registered with
   * `LOG_DIRTY_PAGES`), cleared by the call.
   */
  getDirtyLog(slot, pages) {
    const bitmap = new Uint8Array(Math.ceil(pages / 64) * 8);
    const b = new Uint8Array(DIRTY_LOG_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, slot, true);
    v.setBigUint64(8, Deno.UnsafePointer.value(ptr(bitmap)), true);
    ioctl(this.fd, "KVM_GET_DIRTY_LOG", b);
    return bitmap;
  }
  /** `KVM_CREATE_VCPU` and the mapping of its `kvm_run` page. */
  createVcpu(id) {
    const fd = ioctlInt(this.fd, "KVM_CREATE_VCPU", id);
    let run2;
    try {
      run2 = mmap(this.runSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    } catch (e) {
      closeFd(fd);
      throw e;
    }
    return new Vcpu(fd, id, Deno.UnsafePointer.value(run2), this.runSize, true);
  }
};
var Vcpu = class {
  /** The vCPU file descriptor. */
  fd;
  /** The vCPU id (APIC id). */
  id;
  /** Host address of the `kvm_run` mapping (post it to a worker to rebuild the Vcpu). */
  runAddr;
  /** Bytes in the `kvm_run` mapping. */
  runSize;
  /** The run page as bytes (zero-copy). */
  runPage;
  #dv;
  #owner;
  #closed = false;
  /**
   * Wraps an existing vCPU fd and its `kvm_run` mapping. `owner` decides whether
   * {@link close} unmaps and closes them.
   */
  constructor(fd, id, runAddr, runSize, owner = false) {
    this.fd = fd;
    this.id = id;
    this.runAddr = runAddr;
    this.runSize = runSize;
    this.#owner = owner;
    traceRole(fd, 2 + id);
    const p = Deno.UnsafePointer.create(runAddr);
    if (p === null) throw new TypeError("Cannot wrap vCPU: null kvm_run address");
    const ab = Deno.UnsafePointerView.getArrayBuffer(p, runSize);
    this.runPage = new Uint8Array(ab);
    this.#dv = new DataView(ab);
  }
  /**
   * Empties the coalesced-write ring (`struct kvm_coalesced_mmio_ring` at page `pageOffset`
   * of the `kvm_run` mapping, shared by every vCPU of the VM): `fn` gets each write in the
   * order KVM took them (port or guest-physical address, its bytes, whether it is port I/O).
   * The caller serializes drains across vCPUs. Returns the number of writes.
   */
  drainCoalesced(pageOffset, fn) {
    const base = pageOffset * 4096;
    if (base + 4096 > this.runSize) return 0;
    const max = (4096 - 8) / 24 | 0;
    const dv = this.#dv;
    let first = dv.getUint32(base, true), n = 0;
    while (first !== dv.getUint32(base + 4, true) && first < max && n <= max) {
      const e = base + 8 + 24 * first;
      const len = Math.min(dv.getUint32(e + 8, true), 8);
      const addr = dv.getUint32(e + 4, true) * 4294967296 + dv.getUint32(e, true);
      fn(addr, this.runPage.slice(e + 16, e + 16 + len), dv.getUint32(e + 12, true) !== 0);
      first = (first + 1) % max;
      dv.setUint32(base, first, true);
      n++;
    }
    return n;
  }
  /** Whether the coalesced-write ring at `pageOffset` holds writes. */
  coalescedPending(pageOffset) {
    const base = pageOffset * 4096;
    if (base + 4096 > this.runSize) return false;
    return this.#dv.getUint32(base, true) !== this.#dv.getUint32(base + 4, true);
  }
  /** `kvm_run.immediate_exit`: when 1, the next `KVM_RUN` returns EINTR at once. */
  get immediateExit() {
    return this.runPage[RUN.immediateExit];
  }
  set immediateExit(v) {
    this.runPage[RUN.immediateExit] = v;
  }
  /** `kvm_run.request_interrupt_window`. */
  set requestInterruptWindow(v) {
    this.runPage[RUN.requestInterruptWindow] = v;
  }
  /** `kvm_run.ready_for_interrupt_injection`. */
  get readyForInterruptInjection() {
    return this.runPage[RUN.readyForInterruptInjection] !== 0;
  }
  /** `KVM_RUN` until the next exit; EINTR (signal or immediate_exit) becomes `intr`. */
  run() {
    const ret = libc().ioctlRun(this.fd, IOCTL.KVM_RUN, null);
    if (ret < 0) {
      const e = lastErrno();
      if (e === EINTR || e === EAGAIN) return {
        kind: "intr"
      };
      throw new KvmError("KVM_RUN", e);
    }
    return decodeExit(this.runPage, this.#dv);
  }
  /** `KVM_GET_REGS`. */
  getRegs() {
    return getStruct(this.fd, "KVM_GET_REGS", REGS_SIZE, decodeRegs);
  }
  /** `KVM_SET_REGS`. */
  setRegs(r) {
    ioctl(this.fd, "KVM_SET_REGS", encodeRegs(r));
  }
  /** `KVM_GET_SREGS`. */
  getSregs() {
    return getStruct(this.fd, "KVM_GET_SREGS", SREGS_SIZE, decodeSregs);
  }
  /** `KVM_SET_SREGS`. */
  setSregs(s) {
    ioctl(this.fd, "KVM_SET_SREGS", encodeSregs(s));
  }
  /** `KVM_GET_FPU` (`mxcsr` always reads 0: the kernel does not fill it). */
  getFpu() {
    return getStruct(this.fd, "KVM_GET_FPU", FPU_SIZE, decodeFpu);
  }
  /** `KVM_SET_FPU`. The kernel ignores `mxcsr` here; set it through {@link setXsave}. */
  setFpu(f) {
    ioctl(this.fd, "KVM_SET_FPU", encodeFpu(f));
  }
  /** `KVM_GET_MSRS` for `indices`; throws when KVM could read only some of them. */
  getMsrs(indices) {
    const b = encodeMsrs(indices.map((index) => ({
      index,
      data: 0n
    })));
    const n = ioctl(this.fd, "KVM_GET_MSRS", b);
    if (n !== indices.length) {
      const bad = indices[n] ?? 0;
      throw new KvmError("KVM_GET_MSRS", 22, `read ${n} of ${indices.length}, MSR 0x${bad.toString(16)}`);
    }
    return decodeMsrs(b, n);
  }
  /** `KVM_SET_MSRS`; throws when KVM could write only some of them. */
  setMsrs(entries) {
    const n = ioctl(this.fd, "KVM_SET_MSRS", encodeMsrs(entries));
    if (n !== entries.length) {
      const bad = entries[n]?.index ?? 0;
      throw new KvmError("KVM_SET_MSRS", 22, `wrote ${n} of ${entries.length}, MSR 0x${bad.toString(16)}`);
    }
  }
  /** `KVM_SET_CPUID2`. */
  setCpuid2(entries) {
    ioctl(this.fd, "KVM_SET_CPUID2", encodeCpuid(entries));
  }
  /** `KVM_GET_CPUID2`: the leaves set by `KVM_SET_CPUID2`. */
  getCpuid2() {
    return cpuidIoctl(this.fd, "KVM_GET_CPUID2");
  }
  /** `KVM_GET_LAPIC`: the 1 KiB local APIC register page. */
  getLapic() {
    return getStruct(this.fd, "KVM_GET_LAPIC", LAPIC_SIZE, raw);
  }
  /** `KVM_SET_LAPIC`. */
  setLapic(state) {
    ioctl(this.fd, "KVM_SET_LAPIC", sized(state, LAPIC_SIZE, "lapic"));
  }
  /** `KVM_GET_XSAVE`, or `KVM_GET_XSAVE2` with `size` when KVM_CAP_XSAVE2 asks for more. */
  getXsave(size = XSAVE_SIZE) {
    const b = new Uint8Array(Math.max(size, XSAVE_SIZE));
    ioctl(this.fd, size > XSAVE_SIZE ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE", b);
    return b;
  }
  /** `KVM_SET_XSAVE` (at least 4096 bytes; larger buffers carry extended state). */
  setXsave(state) {
    if (state.byteLength < XSAVE_SIZE) {
      throw new RangeError(`Cannot set xsave: ${state.byteLength} bytes, need at least 4096`);
    }
    ioctl(this.fd, "KVM_SET_XSAVE", state.slice());
  }
  /** `KVM_GET_XCRS`. */
  getXcrs() {
    return getStruct(this.fd, "KVM_GET_XCRS", XCRS_SIZE, decodeXcrs);
  }
  /** `KVM_SET_XCRS`. */
  setXcrs(x) {
    ioctl(this.fd, "KVM_SET_XCRS", encodeXcrs(x));
  }
  /** `KVM_GET_VCPU_EVENTS`: pending exceptions, interrupts, NMI, SMI (raw 64 bytes). */
  getVcpuEvents() {
    return getStruct(this.fd, "KVM_GET_VCPU_EVENTS", VCPU_EVENTS_SIZE, raw);
  }
  /** `KVM_SET_VCPU_EVENTS`. */
  setVcpuEvents(state) {
    ioctl(this.fd, "KVM_SET_VCPU_EVENTS", sized(state, VCPU_EVENTS_SIZE, "vcpu events"));
  }
  /** `KVM_GET_MP_STATE` (see `MP_STATE`). */
  getMpState() {
    const b = new Uint8Array(4);
    ioctl(this.fd, "KVM_GET_MP_STATE", b);
    return new DataView(b.buffer).getUint32(0, true);
  }
  /** `KVM_SET_MP_STATE`. */
  setMpState(state) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, state, true);
    ioctl(this.fd, "KVM_SET_MP_STATE", b);
  }
  /** `KVM_GET_DEBUGREGS`. */
  getDebugRegs() {
    return getStruct(this.fd, "KVM_GET_DEBUGREGS", DEBUGREGS_SIZE, decodeDebugRegs);
  }
  /** `KVM_SET_DEBUGREGS`. */
  setDebugRegs(d) {
    ioctl(this.fd, "KVM_SET_DEBUGREGS", encodeDebugRegs(d));
  }
  /**
   * `KVM_KVMCLOCK_CTRL`: tell the guest it was paused, so its soft-lockup watchdog does
   * not fire. Returns false when the guest has no kvmclock page (EINVAL).
   */
  kvmclockCtrl() {
    const ret = libc().ioctlInt(this.fd, BigInt(IOCTL.KVM_KVMCLOCK_CTRL), 0n);
    if (ret >= 0) return true;
    const e = lastErrno();
    if (e === 22) return false;
    throw new KvmError("KVM_KVMCLOCK_CTRL", e);
  }
  /** `KVM_GET_TSC_KHZ`. */
  getTscKhz() {
    return ioctlInt(this.fd, "KVM_GET_TSC_KHZ");
  }
  /** Unmaps `kvm_run` and closes the fd when this object owns them. */
  close() {
    if (this.#closed || !this.#owner) return;
    this.#closed = true;
    const p = Deno.UnsafePointer.create(this.runAddr);
    if (p !== null) munmap(p, this.runSize);
    closeFd(this.fd);
  }
  /** {@link close}, for `using`. */
  [Symbol.dispose]() {
    this.close();
  }
};
function sized(b, size, what) {
  if (b.byteLength !== size) {
    throw new RangeError(`Cannot set ${what}: ${b.byteLength} bytes, need ${size}`);
  }
  return b.slice();
}
async function hostVirtualization() {
  try {
    const text = await Deno.readTextFile("/proc/cpuinfo");
    const flags = text.split("\n").find((l) => l.startsWith("flags")) ?? "";
    const words = new Set(flags.split(/\s+/));
    if (words.has("vmx")) return "vmx";
    if (words.has("svm")) return "svm";
    return "none";
  } catch {
    return "none";
  }
}

// vstate/host.ts
var KvmUnavailableError = class extends Error {
  /** Always "KvmUnavailableError". */
  name = "KvmUnavailableError";
  /** Why (the same values as {@link HostCheck.kvm}). */
  reason;
  /**
   * The error for a failed host check: its message is the check's line with the fix.
   *
   * @param check the failed host check
   */
  constructor(check2) {
    super(check2.message.replace(/^denovm: /, ""));
    this.reason = check2.kvm;
  }
};
var FIX_MISSING = "load the module (modprobe kvm_intel or kvm_amd; enable virtualization in the firmware), or start the container with --device /dev/kvm";
var FIX_EACCES = 'add your user to the kvm group (usermod -aG kvm $USER, then log in again), or on a CI runner add a udev rule: KERNEL=="kvm", GROUP="kvm", MODE="0666"';
function probeKvm(path = "/dev/kvm") {
  try {
    Deno.statSync(path);
  } catch {
    return {
      status: "missing",
      detail: `${path} is missing`
    };
  }
  try {
    using _kvm = Kvm.open(path);
    return {
      status: "ok",
      detail: ""
    };
  } catch (e) {
    if (e instanceof KvmError) {
      if (e.code === "EACCES" || e.code === "EPERM") {
        return {
          status: "eacces",
          detail: `${path}: permission denied`
        };
      }
      if (e.code === "ENODEV" || e.code === "ENXIO") {
        return {
          status: "enodev",
          detail: `${path} exists but no KVM driver answers (${e.code})`
        };
      }
      if (e.code === "ENOENT") return {
        status: "missing",
        detail: `${path} is missing`
      };
      return {
        status: "error",
        detail: `${path}: ${e.message}`
      };
    }
    const m = /API version (\d+)/.exec(String(e.message));
    if (m) return {
      status: "api-version",
      detail: `${path} speaks KVM API ${m[1]}, not 12`
    };
    return {
      status: "error",
      detail: `${path}: ${e.message}`
    };
  }
}
function describeHost(virtualization, probe) {
  const base = {
    virtualization,
    kvm: probe.status
  };
  const cannot = (reason, fix) => ({
    ...base,
    usable: false,
    native: false,
    message: `denovm: ${reason}; ${fix}`,
    reason,
    fix
  });
  switch (probe.status) {
    case "missing":
      return cannot(`${probe.detail}: no guest can run on this host's KVM`, FIX_MISSING);
    case "eacces":
      return cannot(probe.detail, FIX_EACCES);
    case "enodev":
      return cannot(`${probe.detail}: the kernel is itself a guest without nested virtualization, or kvm_intel/kvm_amd is not loaded`, FIX_MISSING);
    case "api-version":
      return cannot(`${probe.detail}: this kernel's KVM is too old or not Linux's`, "run on a Linux host with a current kernel");
    case "error":
      return cannot(probe.detail, "check that /dev/kvm is the KVM device");
    case "ok":
      if (virtualization === "none") {
        const reason = "this CPU has no vmx/svm, so KVM emulates guest instructions: small test guests run, a Linux kernel will not boot";
        const fix = "use a host with hardware virtualization, or the portable machine";
        return {
          ...base,
          usable: true,
          native: false,
          message: `denovm: ${reason} (${fix})`,
          reason,
          fix
        };
      }
      return {
        ...base,
        usable: true,
        native: true,
        message: `denovm: KVM with hardware virtualization (${virtualization})`
      };
  }
}
async function checkHost() {
  return describeHost(await hostVirtualization(), probeKvm());
}

// frontend/api.ts
init_config();
init_unix_socket();

// vmm/vmm.ts
init_format();

// snapshot/memory_file.ts
init_format();
var MEMORY_FILE = "memory.bin";
var DIFF_FILE = "memory.diff";
var PAGE = 4096;
var MAX_RANGES = 1 << 20;
async function writeMemory(path, regions) {
  const tmp = `${path}.tmp-${Deno.pid}`;
  const f = await Deno.open(tmp, {
    write: true,
    create: true,
    truncate: true,
    mode: 384
  });
  try {
    for (const r of regions) {
      for (let o = 0; o < r.byteLength; ) {
        o += await f.write(r.subarray(o, Math.min(r.byteLength, o + (8 << 20))));
      }
    }
    await f.syncData();
  } finally {
    f.close();
  }
  await Deno.rename(tmp, path);
}
async function placeLayer(src, dst) {
  const [a, b] = await Promise.all([
    Deno.stat(src),
    Deno.stat(dst).catch(() => void 0)
  ]);
  if (b && a.dev === b.dev && a.ino === b.ino) return;
  const tmp = `${dst}.tmp-${Deno.pid}`;
  await Deno.remove(tmp).catch(() => {
  });
  try {
    await Deno.link(src, tmp);
  } catch {
    await Deno.copyFile(src, tmp);
  }
  await Deno.rename(tmp, dst);
}
function dirtyRanges(bitmaps, sizes) {
  const out = [];
  let base = 0;
  for (const [r, bits] of bitmaps.entries()) {
    const pages = sizes[r] / PAGE;
    let start = -1;
    for (let p = 0; p <= pages; p++) {
      const set = p < pages && (bits[p >>> 3] & 1 << (p & 7)) !== 0;
      if (set && start < 0) start = p;
      if (!set && start >= 0) {
        out.push([
          base + start * PAGE,
          (p - start) * PAGE
        ]);
        start = -1;
      }
    }
    base += sizes[r];
  }
  return out;
}
function locate(regions, off, len) {
  let base = 0;
  for (const r of regions) {
    if (off >= base && off + len <= base + r.byteLength) return [
      r,
      off - base
    ];
    base += r.byteLength;
  }
  throw new SnapshotError(`Cannot use memory range ${off}+${len}: it spans regions`);
}
async function writeDiff(path, regions, ranges, size) {
  const tmp = `${path}.tmp-${Deno.pid}`;
  await Deno.writeFile(tmp, new Uint8Array(0), {
    mode: 384
  });
  await Deno.truncate(tmp, size);
  const fd = openFile(tmp, O_RDWR);
  try {
    for (const [off, len] of ranges) {
      const [r, o] = locate(regions, off, len);
      pwriteAll(fd, r.subarray(o, o + len), off);
    }
    fdatasync(fd);
  } finally {
    closeFd(fd);
  }
  await Deno.rename(tmp, path);
}
async function applyDiffs(mem, layers) {
  const regions = mem.regions.map((r) => r.bytes);
  for (const l of layers) {
    const f = await Deno.open(l.file, {
      read: true
    });
    try {
      for (const [off, len] of l.ranges) {
        const [r, o] = locate(regions, off, len);
        const dst = r.subarray(o, o + len);
        await f.seek(off, Deno.SeekMode.Start);
        for (let got = 0; got < len; ) {
          const n = await f.read(dst.subarray(got));
          if (n === null) throw new SnapshotError(`Cannot restore: ${l.file} ends early`);
          got += n;
        }
      }
    } finally {
      f.close();
    }
  }
}

// boot/x86.ts
var MMIO_GAP_START = 3221225472;
var MMIO_GAP_END = 4294967296;
function ramLayout(memMiB) {
  if (!Number.isInteger(memMiB) || memMiB < 1 || memMiB > 1024 * 1024) {
    throw new RangeError(`Cannot size guest RAM: ${memMiB} MiB is not between 1 and 1048576`);
  }
  const bytes2 = memMiB * 1024 * 1024;
  if (bytes2 <= MMIO_GAP_START) return [
    {
      gpa: 0,
      size: bytes2
    }
  ];
  return [
    {
      gpa: 0,
      size: MMIO_GAP_START
    },
    {
      gpa: MMIO_GAP_END,
      size: bytes2 - MMIO_GAP_START
    }
  ];
}
var BOOT = {
  GDT: 1280,
  ZERO_PAGE: 28672,
  STACK: 36848,
  PML4: 36864,
  PDPT: 40960,
  PD: 45056,
  PVH_INFO: 24576,
  CMDLINE: 131072,
  /** The MP table goes at the start of the EBDA, just below 640 KiB. */
  MPTABLE: 654336,
  /** End of conventional memory. */
  LOW_END: 655360,
  HIGH: 1048576
};
var E820 = {
  RAM: 1,
  RESERVED: 2
};
function e820Map(regions) {
  const out = [
    {
      addr: 0,
      size: BOOT.MPTABLE,
      type: E820.RAM
    }
  ];
  out.push({
    addr: BOOT.MPTABLE,
    size: BOOT.HIGH - BOOT.MPTABLE,
    type: E820.RESERVED
  });
  for (const r of regions) {
    const start = Math.max(r.gpa, BOOT.HIGH), end = r.gpa + r.size;
    if (end > start) out.push({
      addr: start,
      size: end - start,
      type: E820.RAM
    });
  }
  return out;
}
var ZP = {
  EXT_RAMDISK_IMAGE: 192,
  EXT_RAMDISK_SIZE: 196,
  EXT_CMD_LINE_PTR: 200,
  E820_ENTRIES: 488,
  HDR: 497,
  TYPE_OF_LOADER: 528,
  LOADFLAGS: 529,
  RAMDISK_IMAGE: 536,
  RAMDISK_SIZE: 540,
  HEAP_END_PTR: 548,
  CMD_LINE_PTR: 552,
  ACPI_RSDP_ADDR: 112,
  E820_TABLE: 720,
  E820_MAX: 128
};
function bootParams(o) {
  const zp = new Uint8Array(4096);
  const v = new DataView(zp.buffer);
  if (o.setupHeader) zp.set(o.setupHeader.subarray(0, 4096 - ZP.HDR), ZP.HDR);
  zp[ZP.TYPE_OF_LOADER] = 255;
  zp[ZP.LOADFLAGS] = (zp[ZP.LOADFLAGS] | 1 | 128) & 255;
  v.setUint16(ZP.HEAP_END_PTR, 65024, true);
  v.setUint32(ZP.CMD_LINE_PTR, o.cmdline.addr >>> 0, true);
  v.setUint32(ZP.EXT_CMD_LINE_PTR, Math.floor(o.cmdline.addr / 2 ** 32), true);
  if (o.initrd) {
    v.setUint32(ZP.RAMDISK_IMAGE, o.initrd.addr >>> 0, true);
    v.setUint32(ZP.RAMDISK_SIZE, o.initrd.size >>> 0, true);
    v.setUint32(ZP.EXT_RAMDISK_IMAGE, Math.floor(o.initrd.addr / 2 ** 32), true);
    v.setUint32(ZP.EXT_RAMDISK_SIZE, Math.floor(o.initrd.size / 2 ** 32), true);
  }
  if (o.e820.length > ZP.E820_MAX) {
    throw new RangeError(`Cannot boot: ${o.e820.length} e820 entries, at most 128`);
  }
  zp[ZP.E820_ENTRIES] = o.e820.length;
  o.e820.forEach((e, i) => {
    const b = ZP.E820_TABLE + i * 20;
    v.setBigUint64(b, BigInt(e.addr), true);
    v.setBigUint64(b + 8, BigInt(e.size), true);
    v.setUint32(b + 16, e.type, true);
  });
  return zp;
}
var GDT_ENTRIES = [
  0n,
  0x00cf9b000000ffffn,
  0x00af9b000000ffffn,
  0x00cf93000000ffffn,
  0x00008b0000000067n
];
var SEL = {
  CODE32: 8,
  CODE64: 16,
  DATA: 24,
  TSS: 32
};
function segmentFor(selector) {
  const d = GDT_ENTRIES[selector >> 3];
  const n = (shift, bits) => Number(d >> shift & (1n << bits) - 1n);
  const limit = n(0n, 16n) | n(48n, 4n) << 16;
  const g2 = n(55n, 1n);
  return {
    base: BigInt(n(16n, 24n) | n(56n, 8n) << 24),
    limit: g2 ? limit * 4096 + 4095 : limit,
    selector,
    type: n(40n, 4n),
    s: n(44n, 1n),
    dpl: n(45n, 2n),
    present: n(47n, 1n),
    avl: n(52n, 1n),
    l: n(53n, 1n),
    db: n(54n, 1n),
    g: g2,
    unusable: 0
  };
}
function writeBootTables(mem) {
  GDT_ENTRIES.forEach((e, i) => mem.writeU64(BOOT.GDT + i * 8, e));
  mem.fill(BOOT.PML4, 24576, 0);
  mem.writeU64(BOOT.PML4, BOOT.PDPT | 3);
  for (let i = 0; i < 4; i++) {
    mem.writeU64(BOOT.PDPT + i * 8, BOOT.PD + i * 4096 | 3);
    for (let j = 0; j < 512; j++) {
      const addr = (i * 512 + j) * 2097152;
      mem.writeU64(BOOT.PD + i * 4096 + j * 8, BigInt(addr) | 0x83n);
    }
  }
}
var CR0_PE = 1n;
var CR0_ET = 0x10n;
var CR0_NE = 0x20n;
var CR0_PG = 0x80000000n;
var CR4_PAE = 0x20n;
var EFER_LME = 0x100n;
var EFER_LMA = 0x400n;
function flatSregs(base, code, ctl) {
  const data = segmentFor(SEL.DATA);
  return {
    ...base,
    cs: segmentFor(code),
    ds: data,
    es: data,
    fs: data,
    gs: data,
    ss: data,
    tr: segmentFor(SEL.TSS),
    gdt: {
      base: BigInt(BOOT.GDT),
      limit: GDT_ENTRIES.length * 8 - 1
    },
    idt: {
      base: 0n,
      limit: 0
    },
    ...ctl
  };
}
function longModeSregs(base) {
  return flatSregs(base, SEL.CODE64, {
    cr0: CR0_PE | CR0_PG | CR0_ET | CR0_NE,
    cr3: BigInt(BOOT.PML4),
    cr4: CR4_PAE,
    efer: EFER_LME | EFER_LMA
  });
}
function pvhSregs(base) {
  return flatSregs(base, SEL.CODE32, {
    cr0: CR0_PE | CR0_ET | CR0_NE,
    cr3: 0n,
    cr4: 0n,
    efer: 0n
  });
}
function entryRegs(base, o) {
  const r = {
    ...base
  };
  for (const k of Object.keys(r)) r[k] = 0n;
  r.rip = BigInt(o.rip);
  r.rsi = BigInt(o.rsi ?? 0);
  r.rbx = BigInt(o.rbx ?? 0);
  r.rsp = BigInt(BOOT.STACK);
  r.rbp = BigInt(BOOT.STACK);
  r.rflags = 2n;
  return r;
}
function placeInitrd(size, o) {
  const top = Math.min(o.ramEnd, o.initrdAddrMax + 1);
  const addr = Math.floor((top - size) / 4096) * 4096;
  if (size <= 0 || addr < o.kernelEnd) {
    throw new RangeError(`Cannot place an initrd of ${size} bytes: not enough low RAM above the kernel`);
  }
  return addr;
}
function checksum(b) {
  let s = 0;
  for (const x of b) s = s + x & 255;
  return 256 - s & 255;
}
var IOAPIC_ADDR = 4273995776;
var APIC_ADDR = 4276092928;
var IOAPIC_PINS = 24;
function mpTable(cpus, base = BOOT.MPTABLE) {
  if (cpus < 1 || cpus > 254) throw new RangeError(`Cannot build an MP table for ${cpus} vCPUs`);
  const entries = [];
  const entry = (size, fill) => {
    const b = new Uint8Array(size);
    fill(new DataView(b.buffer), b);
    entries.push(b);
  };
  for (let id = 0; id < cpus; id++) {
    entry(20, (v2, b) => {
      b[0] = 0;
      b[1] = id;
      b[2] = 20;
      b[3] = 1 | (id === 0 ? 2 : 0);
      v2.setUint32(4, 1536, true);
      v2.setUint32(8, 513, true);
    });
  }
  entry(8, (_v, b) => {
    b[0] = 1;
    b[1] = 0;
    b.set(new TextEncoder().encode("ISA   "), 2);
  });
  const ioapicId = cpus;
  entry(8, (v2, b) => {
    b[0] = 2;
    b[1] = ioapicId;
    b[2] = 17;
    b[3] = 1;
    v2.setUint32(4, IOAPIC_ADDR, true);
  });
  for (let pin = 0; pin < IOAPIC_PINS; pin++) {
    entry(8, (_v, b) => {
      b[0] = 3;
      b[1] = 0;
      b[4] = 0;
      b[5] = pin;
      b[6] = ioapicId;
      b[7] = pin;
    });
  }
  for (const [type, lint] of [
    [
      3,
      0
    ],
    [
      1,
      1
    ]
  ]) {
    entry(8, (_v, b) => {
      b[0] = 4;
      b[1] = type;
      b[4] = 0;
      b[5] = 0;
      b[6] = 255;
      b[7] = lint;
    });
  }
  const body = entries.reduce((n, e) => n + e.byteLength, 0);
  const table2 = new Uint8Array(16 + 44 + body);
  const fp = table2.subarray(0, 16);
  fp.set(new TextEncoder().encode("_MP_"), 0);
  new DataView(fp.buffer, fp.byteOffset).setUint32(4, base + 16, true);
  fp[8] = 1;
  fp[9] = 4;
  fp[10] = checksum(fp);
  const ct = table2.subarray(16);
  const v = new DataView(ct.buffer, ct.byteOffset, ct.byteLength);
  ct.set(new TextEncoder().encode("PCMP"), 0);
  v.setUint16(4, 44 + body, true);
  ct[6] = 4;
  ct.set(new TextEncoder().encode("DENOVM  "), 8);
  ct.set(new TextEncoder().encode("MICROVM     "), 16);
  v.setUint16(34, entries.length, true);
  v.setUint32(36, APIC_ADDR, true);
  let o = 44;
  for (const e of entries) {
    ct.set(e, o);
    o += e.byteLength;
  }
  ct[7] = checksum(ct);
  return table2;
}
function pvhStartInfo(o, at = BOOT.PVH_INFO) {
  const memmap = at + 56, mods = memmap + 24 * o.e820.length;
  const b = new Uint8Array(56 + 24 * o.e820.length + (o.initrd ? 32 : 0));
  const v = new DataView(b.buffer);
  v.setUint32(0, 862897528, true);
  v.setUint32(4, 1, true);
  v.setUint32(12, o.initrd ? 1 : 0, true);
  v.setBigUint64(16, BigInt(o.initrd ? mods : 0), true);
  v.setBigUint64(24, BigInt(o.cmdline), true);
  v.setBigUint64(40, BigInt(memmap), true);
  v.setUint32(48, o.e820.length, true);
  o.e820.forEach((e, i) => {
    v.setBigUint64(56 + 24 * i, BigInt(e.addr), true);
    v.setBigUint64(56 + 24 * i + 8, BigInt(e.size), true);
    v.setUint32(56 + 24 * i + 16, e.type, true);
  });
  if (o.initrd) {
    const m = 56 + 24 * o.e820.length;
    v.setBigUint64(m, BigInt(o.initrd.addr), true);
    v.setBigUint64(m + 8, BigInt(o.initrd.size), true);
  }
  return b;
}
var LAPIC = {
  LINT0: 848,
  LINT1: 864
};
var DM_EXTINT = 7 << 8;
var DM_NMI = 4 << 8;
function lapicWithLints(lapic) {
  const b = lapic.slice();
  const v = new DataView(b.buffer);
  const set = (off, mode) => v.setUint32(off, v.getUint32(off, true) & ~1792 & ~65536 | mode, true);
  set(LAPIC.LINT0, DM_EXTINT);
  set(LAPIC.LINT1, DM_NMI);
  return b;
}

// devices/i8042.ts
var STATUS_OBF = 1;
var STATUS_SYS = 4;
var STATUS_CMD = 8;
var STATUS_KEYLOCK = 16;
var STATUS_AUXDATA = 32;
var STATUS_TIMEOUT = 64;
var CTR_KBDINT = 1;
var CTR_KBDDIS = 16;
var CTR_AUXDIS = 32;
var CMD_READ_CTR = 32;
var CMD_WRITE_CTR = 96;
var CMD_AUX_DISABLE = 167;
var CMD_AUX_ENABLE = 168;
var CMD_AUX_TEST = 169;
var CMD_SELF_TEST = 170;
var CMD_KBD_TEST = 171;
var CMD_KBD_DISABLE = 173;
var CMD_KBD_ENABLE = 174;
var CMD_READ_OUTP = 208;
var CMD_WRITE_OUTP = 209;
var CMD_WRITE_KBD_OUT = 210;
var CMD_AUX_LOOP = 211;
var CMD_AUX_SEND = 212;
var CMD_RESET = 254;
var OUTP_RESET_LINE = 1;
var BUFFER = 16;
var AUX = 256;
var AUX_TIMEOUT = 512;
var I8042 = class _I8042 {
  #ctr = 71;
  #outp = OUTP_RESET_LINE | 2;
  #pending = -1;
  #buf = [];
  #lastCommand = false;
  #onReset;
  #onInterrupt;
  /** A controller in the state firmware leaves it in; `opts.onReset` is its reset line. */
  constructor(opts) {
    this.#onReset = opts.onReset;
    this.#onInterrupt = opts.onInterrupt;
  }
  /** Bus read at `offset` from 0x60 (0 = data, 4 = status). */
  read(offset, data) {
    data.fill(0);
    if (offset === 0) data[0] = (this.#buf.shift() ?? 0) & 255;
    else if (offset === 4) {
      const head = this.#buf[0];
      data[0] = STATUS_SYS | STATUS_KEYLOCK | (head !== void 0 ? STATUS_OBF : 0) | (this.#lastCommand ? STATUS_CMD : 0) | (head !== void 0 && head & AUX ? STATUS_AUXDATA : 0) | (head !== void 0 && head & AUX_TIMEOUT ? STATUS_TIMEOUT : 0);
    }
  }
  /** Bus write at `offset` from 0x60. */
  write(offset, data) {
    const v = data[0];
    if (offset === 4) {
      this.#lastCommand = true;
      this.#command(v);
    } else if (offset === 0) {
      this.#lastCommand = false;
      const cmd = this.#pending;
      this.#pending = -1;
      switch (cmd) {
        case CMD_WRITE_CTR:
          this.#ctr = v;
          return;
        case CMD_WRITE_OUTP:
          this.#outp = v;
          if (!(v & OUTP_RESET_LINE)) this.#onReset();
          return;
        case CMD_WRITE_KBD_OUT:
          return this.#keyboardOut([
            v
          ]);
        case CMD_AUX_LOOP:
          return this.#out(255 | AUX);
        // no AUX port: the loop does not work
        case CMD_AUX_SEND:
          return this.#out(254 | AUX | AUX_TIMEOUT);
        // no device answers
        default:
          return this.#keyboard(v);
      }
    }
  }
  /** A byte the guest sends to the keyboard. */
  #keyboard(b) {
    this.#ctr &= ~CTR_KBDDIS;
    if (b === 255) return this.#keyboardOut([
      250,
      170
    ]);
    if (b === 242) return this.#keyboardOut([
      250,
      171,
      131
    ]);
    if (b === 238) return this.#keyboardOut([
      238
    ]);
    this.#keyboardOut([
      250
    ]);
  }
  #keyboardOut(bytes2) {
    for (const b of bytes2) this.#out(b);
    if (this.#ctr & CTR_KBDINT) this.#onInterrupt?.();
  }
  #out(b) {
    if (this.#buf.length < BUFFER) this.#buf.push(b);
  }
  #command(c) {
    switch (c) {
      case CMD_READ_CTR:
        return this.#out(this.#ctr);
      case CMD_WRITE_CTR:
      case CMD_WRITE_OUTP:
      case CMD_WRITE_KBD_OUT:
      case CMD_AUX_LOOP:
      case CMD_AUX_SEND:
        this.#pending = c;
        return;
      case CMD_READ_OUTP:
        return this.#out(this.#outp);
      case CMD_AUX_DISABLE:
        this.#ctr |= CTR_AUXDIS;
        return;
      case CMD_AUX_ENABLE:
        this.#ctr &= ~CTR_AUXDIS;
        return;
      case CMD_AUX_TEST:
        return this.#out(2);
      // clock line stuck high: nothing there
      case CMD_KBD_DISABLE:
        this.#ctr |= CTR_KBDDIS;
        return;
      case CMD_KBD_ENABLE:
        this.#ctr &= ~CTR_KBDDIS;
        return;
      case CMD_SELF_TEST:
        return this.#out(85);
      case CMD_KBD_TEST:
        return this.#out(0);
      case CMD_RESET:
        return this.#onReset();
      default:
        return;
    }
  }
  /** The controller's state, for a snapshot. */
  save() {
    return {
      ctr: this.#ctr,
      outp: this.#outp,
      pendingCommand: this.#pending,
      buffer: [
        ...this.#buf
      ]
    };
  }
  /** Validates a saved state (untrusted), pure; see `bus/persist.ts`. */
  static check(x) {
    const s = x;
    const byte = (v) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 255;
    const entry = (v) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 1023 && (!(v & AUX_TIMEOUT) || (v & AUX) !== 0);
    if (typeof s !== "object" || s === null || !byte(s.ctr) || !byte(s.outp) || !(s.pendingCommand === -1 || byte(s.pendingCommand)) || !Array.isArray(s.buffer) || s.buffer.length > BUFFER || !s.buffer.every(entry)) throw new RangeError("Cannot restore i8042: bad state");
    return {
      ctr: s.ctr,
      outp: s.outp,
      pendingCommand: s.pendingCommand,
      buffer: [
        ...s.buffer
      ]
    };
  }
  /** Loads a saved state; throws a RangeError (and changes nothing) when it is malformed. */
  restore(saved) {
    const s = _I8042.check(saved);
    this.#ctr = s.ctr;
    this.#outp = s.outp;
    this.#pending = s.pendingCommand;
    this.#buf = [
      ...s.buffer
    ];
  }
};

// devices/rtc.ts
var RTC_REG = {
  SECONDS: 0,
  MINUTES: 2,
  HOURS: 4,
  DAY_OF_WEEK: 6,
  DAY_OF_MONTH: 7,
  MONTH: 8,
  YEAR: 9,
  A: 10,
  B: 11,
  C: 12,
  D: 13,
  /** Where PCs (and ACPI's FADT century field) keep the century. */
  CENTURY: 50
};
var A_UIP = 128;
var B_SET = 128;
var B_DM_BINARY = 4;
var B_24H = 2;
var D_VRT = 128;
var UIP_US = 244;
var TIME_REGS = [
  0,
  2,
  4,
  6,
  7,
  8,
  9,
  50
];
var RTC_MAX_OFFSET_MS = 1e13;
var bcd = (v) => (Math.floor(v / 10) << 4 | v % 10) & 255;
var unbcd = (v) => (v >> 4) * 10 + (v & 15);
var Rtc = class _Rtc {
  #index = 0;
  #cmos = new Uint8Array(128);
  #offsetMs = 0;
  /** While register B's SET bit is up: the time the guest is writing, as fields. */
  #setting;
  #now;
  /** An RTC showing the host's time, BCD and 24-hour mode, its RAM zeroed. */
  constructor(opts = {}) {
    this.#now = opts.now ?? (() => performance.timeOrigin + performance.now());
    this.#cmos[RTC_REG.A] = 38;
    this.#cmos[RTC_REG.B] = B_24H;
    this.#cmos[RTC_REG.D] = D_VRT;
  }
  /** Port reads: 0x70 reads back nothing useful (0xff), 0x71 the selected register. */
  read(offset, data) {
    data.fill(255);
    if (offset === 1 && data.byteLength >= 1) data[0] = this.#readReg(this.#index);
  }
  /** Port writes: 0x70 selects a register, 0x71 writes it. */
  write(offset, data) {
    if (data.byteLength < 1) return;
    if (offset === 0) this.#index = data[0] & 127;
    else if (offset === 1) this.#writeReg(this.#index, data[0]);
  }
  #readReg(i) {
    if (TIME_REGS.includes(i)) return (this.#setting ?? this.#timeFields())[TIME_REGS.indexOf(i)];
    switch (i) {
      case RTC_REG.A: {
        const us = (this.#now() + this.#offsetMs) % 1e3 * 1e3;
        const uip = !this.#setting && us >= 1e6 - UIP_US;
        return this.#cmos[RTC_REG.A] & 127 | (uip ? A_UIP : 0);
      }
      case RTC_REG.C:
        return 0;
      // no interrupt ever pending
      case RTC_REG.D:
        return D_VRT;
      default:
        return this.#cmos[i];
    }
  }
  #writeReg(i, v) {
    if (TIME_REGS.includes(i)) {
      const fields = this.#setting ?? this.#timeFields();
      fields[TIME_REGS.indexOf(i)] = v;
      if (!this.#setting) this.#setFrom(fields);
      return;
    }
    switch (i) {
      case RTC_REG.A:
        this.#cmos[i] = v & 127;
        return;
      case RTC_REG.B: {
        const was = this.#cmos[i];
        if (v & B_SET && !(was & B_SET)) this.#setting = this.#timeFields();
        if (!(v & B_SET) && was & B_SET && this.#setting) {
          const fields = this.#setting;
          this.#setting = void 0;
          this.#cmos[i] = v;
          this.#setFrom(fields);
          return;
        }
        this.#cmos[i] = v;
        return;
      }
      case RTC_REG.C:
      case RTC_REG.D:
        return;
      // read-only
      default:
        this.#cmos[i] = v;
    }
  }
  #binary() {
    return (this.#cmos[RTC_REG.B] & B_DM_BINARY) !== 0;
  }
  /** The current time as register values (in TIME_REGS order), in the guest's format. */
  #timeFields() {
    const d = new Date(Math.floor(this.#now() + this.#offsetMs));
    const enc = this.#binary() ? (v) => v : bcd;
    let hour = d.getUTCHours();
    let pm = 0;
    if (!(this.#cmos[RTC_REG.B] & B_24H)) {
      pm = hour >= 12 ? 128 : 0;
      hour = hour % 12 || 12;
    }
    const year = d.getUTCFullYear();
    return new Uint8Array([
      enc(d.getUTCSeconds()),
      enc(d.getUTCMinutes()),
      enc(hour) | pm,
      enc(d.getUTCDay() + 1),
      enc(d.getUTCDate()),
      enc(d.getUTCMonth() + 1),
      enc(year % 100),
      enc(Math.floor(year / 100))
    ]);
  }
  /** The guest set the time to `fields`: keep it as an offset from the host clock. */
  #setFrom(fields) {
    const dec = this.#binary() ? (v) => v : unbcd;
    let hour = dec(fields[2] & 127);
    if (!(this.#cmos[RTC_REG.B] & B_24H)) hour = hour % 12 + (fields[2] & 128 ? 12 : 0);
    const t = Date.UTC(dec(fields[7]) * 100 + dec(fields[6]), dec(fields[5]) - 1, dec(fields[4]), hour, dec(fields[1]), dec(fields[0]));
    if (!Number.isFinite(t)) return;
    const offset = t - Math.floor(this.#now() / 1e3) * 1e3;
    if (Math.abs(offset) > RTC_MAX_OFFSET_MS) return;
    this.#offsetMs = offset;
  }
  /** The registers, the CMOS RAM and the guest's offset from the host clock. */
  save() {
    return {
      index: this.#index,
      cmos: this.#cmos.slice(),
      offsetMs: this.#offsetMs
    };
  }
  /** Validates a saved state (untrusted), pure; see `bus/persist.ts`. */
  static check(x) {
    const s = x;
    if (typeof s !== "object" || s === null || !Number.isInteger(s.index) || s.index < 0 || s.index > 127 || !(s.cmos instanceof Uint8Array) || s.cmos.byteLength !== 128 || typeof s.offsetMs !== "number" || !Number.isFinite(s.offsetMs) || Math.abs(s.offsetMs) > RTC_MAX_OFFSET_MS) throw new RangeError("Cannot restore RTC: bad state");
    return {
      index: s.index,
      cmos: s.cmos.slice(),
      offsetMs: s.offsetMs
    };
  }
  /** Applies a saved state ({@link Rtc.check} first); the clock goes on from the host's. */
  restore(saved) {
    const s = _Rtc.check(saved);
    this.#index = s.index;
    this.#cmos = s.cmos;
    this.#offsetMs = s.offsetMs;
    this.#setting = void 0;
  }
};

// devices/uart.ts
var UART_REG = {
  DATA: 0,
  IER: 1,
  IIR_FCR: 2,
  LCR: 3,
  MCR: 4,
  LSR: 5,
  MSR: 6,
  SCR: 7
};
var IER_RDI = 1;
var IER_THRI = 2;
var IER_RLSI = 4;
var IER_MSI = 8;
var IIR_NONE = 1;
var IIR_MSI = 0;
var IIR_THRI = 2;
var IIR_RDI = 4;
var IIR_RLSI = 6;
var IIR_FIFO = 192;
var LCR_DLAB = 128;
var MCR_DTR = 1;
var MCR_RTS = 2;
var MCR_OUT1 = 4;
var MCR_OUT2 = 8;
var MCR_LOOP = 16;
var LSR_DR = 1;
var LSR_OE = 2;
var LSR_THRE = 32;
var LSR_TEMT = 64;
var MSR_DCTS = 1;
var MSR_DDSR = 2;
var MSR_TERI = 4;
var MSR_DDCD = 8;
var MSR_CTS = 16;
var MSR_DSR = 32;
var MSR_RI = 64;
var MSR_DCD = 128;
var UART_FIFO = 64;
var W = {
  LOCK: 0,
  IER: 1,
  LCR: 2,
  MCR: 3,
  LSR_ERR: 4,
  MSR: 5,
  SCR: 6,
  DLL: 7,
  DLM: 8,
  FCR: 9,
  THR_PENDING: 10,
  RX_HEAD: 11,
  RX_TAIL: 12,
  COUNT: 13
};
var RX_BYTE = W.COUNT * 4;
var STATE_BYTES = RX_BYTE + UART_FIFO;
var Uart = class _Uart {
  /** The shared state: registers, lock and receive FIFO; post it to build other views. */
  state;
  #w;
  #rx;
  #o;
  /** A view of `state` (from {@link Uart.createState}); throws a RangeError on a wrong size. */
  constructor(state, opts) {
    if (state.byteLength !== STATE_BYTES) throw new RangeError("Cannot use UART state: wrong size");
    this.state = state;
    this.#w = new Int32Array(state, 0, W.COUNT);
    this.#rx = new Uint8Array(state, RX_BYTE, UART_FIFO);
    this.#o = opts;
  }
  /** Fresh shared state: the power-on register values (MSR lines up, 115200 baud). */
  static createState() {
    const sab = new SharedArrayBuffer(STATE_BYTES);
    const w = new Int32Array(sab, 0, W.COUNT);
    w[W.MSR] = MSR_DCD | MSR_DSR | MSR_CTS;
    w[W.DLL] = 1;
    w[W.MCR] = MCR_OUT2;
    return sab;
  }
  #lock() {
    while (Atomics.compareExchange(this.#w, W.LOCK, 0, 1) !== 0) {
    }
  }
  #unlock() {
    Atomics.store(this.#w, W.LOCK, 0);
  }
  #rxCount() {
    return this.#w[W.RX_HEAD] - this.#w[W.RX_TAIL] >>> 0;
  }
  /** The interrupt identification, by priority. */
  #iir() {
    const w = this.#w, ier = w[W.IER];
    let id = IIR_NONE;
    if (ier & IER_RLSI && w[W.LSR_ERR] & LSR_OE) id = IIR_RLSI;
    else if (ier & IER_RDI && this.#rxCount() > 0) id = IIR_RDI;
    else if (ier & IER_THRI && w[W.THR_PENDING]) id = IIR_THRI;
    else if (ier & IER_MSI && w[W.MSR] & 15) id = IIR_MSI;
    return id | (w[W.FCR] & 1 ? IIR_FIFO : 0);
  }
  #pending() {
    return (this.#iir() & IIR_NONE) === 0;
  }
  /** Bus read of register `offset`. */
  read(offset, data) {
    data.fill(0);
    this.#lock();
    try {
      data[0] = this.#readReg(offset & 7);
    } finally {
      this.#unlock();
    }
  }
  #readReg(o) {
    const w = this.#w;
    const dlab = (w[W.LCR] & LCR_DLAB) !== 0;
    switch (o) {
      case UART_REG.DATA: {
        if (dlab) return w[W.DLL];
        if (this.#rxCount() === 0) return 0;
        const b = this.#rx[w[W.RX_TAIL] % UART_FIFO];
        w[W.RX_TAIL] = w[W.RX_TAIL] + 1 | 0;
        return b;
      }
      case UART_REG.IER:
        return dlab ? w[W.DLM] : w[W.IER];
      case UART_REG.IIR_FCR: {
        const iir = this.#iir();
        if ((iir & 15) === IIR_THRI) w[W.THR_PENDING] = 0;
        return iir;
      }
      case UART_REG.LCR:
        return w[W.LCR];
      case UART_REG.MCR:
        return w[W.MCR];
      case UART_REG.LSR: {
        const lsr = LSR_THRE | LSR_TEMT | (this.#rxCount() > 0 ? LSR_DR : 0) | w[W.LSR_ERR];
        w[W.LSR_ERR] = 0;
        return lsr;
      }
      case UART_REG.MSR: {
        const msr = w[W.MSR];
        w[W.MSR] = msr & 240;
        return msr;
      }
      default:
        return w[W.SCR];
    }
  }
  /** Bus write of register `offset`. */
  write(offset, data) {
    const v = data[0];
    let out = -1;
    let raise = false;
    this.#lock();
    try {
      const before = this.#pending();
      out = this.#writeReg(offset & 7, v);
      raise = !before && this.#pending();
    } finally {
      this.#unlock();
    }
    if (out >= 0) this.#o.output(out);
    if (raise) this.#o.interrupt.trigger();
  }
  /** Applies a register write; returns a byte to transmit, or -1. */
  #writeReg(o, v) {
    const w = this.#w;
    const dlab = (w[W.LCR] & LCR_DLAB) !== 0;
    switch (o) {
      case UART_REG.DATA:
        if (dlab) {
          w[W.DLL] = v;
          return -1;
        }
        if (w[W.MCR] & MCR_LOOP) {
          this.#push(v);
          w[W.THR_PENDING] = 1;
          return -1;
        }
        w[W.THR_PENDING] = 1;
        return v;
      case UART_REG.IER:
        if (dlab) {
          w[W.DLM] = v;
          return -1;
        }
        if (v & IER_THRI && !(w[W.IER] & IER_THRI)) w[W.THR_PENDING] = 1;
        w[W.IER] = v & 15;
        return -1;
      case UART_REG.IIR_FCR:
        w[W.FCR] = v & 201;
        if (v & 2) w[W.RX_TAIL] = w[W.RX_HEAD];
        return -1;
      case UART_REG.LCR:
        w[W.LCR] = v;
        return -1;
      case UART_REG.MCR:
        this.#setMcr(v & 31);
        return -1;
      case UART_REG.LSR:
      case UART_REG.MSR:
        return -1;
      // read-only
      default:
        w[W.SCR] = v;
        return -1;
    }
  }
  #setMcr(v) {
    const w = this.#w;
    w[W.MCR] = v;
    const old = w[W.MSR];
    let lines;
    if (v & MCR_LOOP) {
      lines = (v & MCR_RTS ? MSR_CTS : 0) | (v & MCR_DTR ? MSR_DSR : 0) | (v & MCR_OUT1 ? MSR_RI : 0) | (v & MCR_OUT2 ? MSR_DCD : 0);
    } else lines = MSR_DCD | MSR_DSR | MSR_CTS;
    const changed = (old ^ lines) & 240;
    let delta = old & 15;
    if (changed & MSR_CTS) delta |= MSR_DCTS;
    if (changed & MSR_DSR) delta |= MSR_DDSR;
    if (changed & MSR_DCD) delta |= MSR_DDCD;
    if (old & MSR_RI && !(lines & MSR_RI)) delta |= MSR_TERI;
    w[W.MSR] = lines | delta;
  }
  #push(b) {
    const w = this.#w;
    if (this.#rxCount() >= UART_FIFO) {
      w[W.LSR_ERR] = w[W.LSR_ERR] | LSR_OE;
      return false;
    }
    this.#rx[w[W.RX_HEAD] % UART_FIFO] = b;
    w[W.RX_HEAD] = w[W.RX_HEAD] + 1 | 0;
    return true;
  }
  /**
   * Puts received bytes in the FIFO; returns how many fit (the caller keeps the rest and
   * offers them again later, so no input is lost while the guest is slow).
   */
  receive(bytes2) {
    let n = 0, raise = false;
    this.#lock();
    try {
      if (this.#w[W.MCR] & MCR_LOOP) return 0;
      const before = this.#pending();
      while (n < bytes2.byteLength && this.#rxCount() < UART_FIFO) this.#push(bytes2[n++]);
      raise = !before && this.#pending();
    } finally {
      this.#unlock();
    }
    if (raise) this.#o.interrupt.trigger();
    return n;
  }
  /** Free space in the receive FIFO. */
  get rxSpace() {
    return UART_FIFO - this.#rxCount();
  }
  /** The state as plain data. */
  save() {
    this.#lock();
    try {
      const w = this.#w;
      const rx = [];
      for (let i = 0; i < this.#rxCount(); i++) rx.push(this.#rx[(w[W.RX_TAIL] + i) % UART_FIFO]);
      return {
        ier: w[W.IER],
        lcr: w[W.LCR],
        mcr: w[W.MCR],
        lsrErrors: w[W.LSR_ERR],
        msr: w[W.MSR],
        scr: w[W.SCR],
        dll: w[W.DLL],
        dlm: w[W.DLM],
        fcr: w[W.FCR],
        thrPending: w[W.THR_PENDING] === 1,
        rx
      };
    } finally {
      this.#unlock();
    }
  }
  /** Validates a saved state (untrusted), pure; see `bus/persist.ts`. */
  static check(x) {
    const byte = (v, n) => {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 255) {
        throw new RangeError(`Cannot restore UART: ${n} is not a byte`);
      }
      return v;
    };
    if (typeof x !== "object" || x === null) throw new RangeError("Cannot restore UART: no state");
    const s = x;
    if (!Array.isArray(s.rx) || s.rx.length > UART_FIFO) {
      throw new RangeError("Cannot restore UART: bad FIFO");
    }
    if (typeof s.thrPending !== "boolean") throw new RangeError("Cannot restore UART: thrPending");
    return {
      ier: byte(s.ier, "ier") & 15,
      lcr: byte(s.lcr, "lcr"),
      mcr: byte(s.mcr, "mcr") & 31,
      lsrErrors: byte(s.lsrErrors, "lsrErrors"),
      msr: byte(s.msr, "msr"),
      scr: byte(s.scr, "scr"),
      dll: byte(s.dll, "dll"),
      dlm: byte(s.dlm, "dlm"),
      fcr: byte(s.fcr, "fcr"),
      thrPending: s.thrPending,
      rx: s.rx.map((b, i) => byte(b, `rx[${i}]`))
    };
  }
  /** Restores saved state (untrusted: {@link Uart.check} first, then all at once). */
  restore(saved) {
    const s = _Uart.check(saved);
    const rx = s.rx;
    const vals = [
      s.ier,
      s.lcr,
      s.mcr,
      s.lsrErrors,
      s.msr,
      s.scr,
      s.dll,
      s.dlm,
      s.fcr
    ];
    this.#lock();
    try {
      const w = this.#w;
      const slots = [
        W.IER,
        W.LCR,
        W.MCR,
        W.LSR_ERR,
        W.MSR,
        W.SCR,
        W.DLL,
        W.DLM,
        W.FCR
      ];
      slots.forEach((slot, i) => w[slot] = vals[i]);
      w[W.THR_PENDING] = s.thrPending ? 1 : 0;
      w[W.RX_TAIL] = 0;
      w[W.RX_HEAD] = rx.length;
      this.#rx.set(rx);
    } finally {
      this.#unlock();
    }
  }
};

// vmm/snapshot_state.ts
init_format();

// snapshot/vcpu_state.ts
init_format();
var u32 = (v) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 4294967295;
var u642 = (v) => typeof v === "bigint" && v >= 0n && v < 1n << 64n;
var bytes = (v, n) => v instanceof Uint8Array && v.byteLength === n;
function fail(id, what) {
  throw new SnapshotError(`Cannot restore vCPU ${String(id)}: ${what}`);
}
function validateVcpuState(s, id) {
  if (typeof s !== "object" || s === null) fail(id, "no state");
  const v = s;
  if (v.id !== id) fail(id, `state is for vCPU ${String(v.id)}`);
  if (!u32(v.mpState) || v.mpState > 8) fail(id, "bad MP state");
  const regs = v.regs;
  if (!regs || !REG_NAMES.every((n) => u642(regs[n]))) fail(id, "bad registers");
  const sregs = v.sregs;
  const segOk = (x) => {
    const g2 = x;
    return !!g2 && u642(g2.base) && u32(g2.limit) && [
      "selector",
      "type",
      "present",
      "dpl",
      "db",
      "s",
      "l",
      "g",
      "avl",
      "unusable"
    ].every((k) => u32(g2[k]));
  };
  const dtOk = (x) => !!x && u642(x.base) && u32(x.limit);
  if (!sregs || ![
    "cs",
    "ds",
    "es",
    "fs",
    "gs",
    "ss",
    "tr",
    "ldt"
  ].every((k) => segOk(sregs[k])) || !dtOk(sregs.gdt) || !dtOk(sregs.idt) || ![
    "cr0",
    "cr2",
    "cr3",
    "cr4",
    "cr8",
    "efer",
    "apicBase"
  ].every((k) => u642(sregs[k])) || !Array.isArray(sregs.interruptBitmap) || sregs.interruptBitmap.length !== 4 || !sregs.interruptBitmap.every(u642)) fail(id, "bad special registers");
  if (!(v.xsave instanceof Uint8Array) || v.xsave.byteLength < XSAVE_SIZE || v.xsave.byteLength > 1 << 20) {
    fail(id, "bad xsave area");
  }
  const xcrs = v.xcrs;
  if (!xcrs || !u32(xcrs.flags) || !Array.isArray(xcrs.xcrs) || xcrs.xcrs.length > 16 || !xcrs.xcrs.every((x) => u32(x?.xcr) && u642(x?.value))) fail(id, "bad xcrs");
  if (!bytes(v.lapic, LAPIC_SIZE)) fail(id, "bad LAPIC state");
  if (!bytes(v.events, VCPU_EVENTS_SIZE)) fail(id, "bad vCPU events");
  if (!Array.isArray(v.msrs) || v.msrs.length > 4096 || !v.msrs.every((m) => u32(m?.index) && u642(m?.data))) {
    fail(id, "bad MSRs");
  }
  const d = v.debugRegs;
  if (!d || !Array.isArray(d.db) || d.db.length !== 4 || !d.db.every(u642) || !u642(d.dr6) || !u642(d.dr7) || !u642(d.flags)) {
    fail(id, "bad debug registers");
  }
  if (!Array.isArray(v.cpuid) || v.cpuid.length > 4096 || !v.cpuid.every((e) => [
    "function",
    "index",
    "flags",
    "eax",
    "ebx",
    "ecx",
    "edx"
  ].every((k) => u32(e?.[k])))) fail(id, "bad CPUID");
  void DEBUGREGS_SIZE;
  return s;
}

// virtio/device.ts
init_timer();

// virtio/constants.ts
var STATUS = {
  ACKNOWLEDGE: 1,
  DRIVER: 2,
  DRIVER_OK: 4,
  FEATURES_OK: 8,
  /** The device MMU failed a translation (admin-virtqueue virtual devices); set together with
   * DEVICE_NEEDS_RESET. */
  DEVICE_MMU_FAIL: 32,
  DEVICE_NEEDS_RESET: 64,
  FAILED: 128
};
var F = {
  NOTIFY_ON_EMPTY: 24n,
  ANY_LAYOUT: 27n,
  INDIRECT_DESC: 28n,
  EVENT_IDX: 29n,
  VERSION_1: 32n,
  ACCESS_PLATFORM: 33n,
  RING_PACKED: 34n,
  IN_ORDER: 35n
};
function bit(b) {
  return 1n << b;
}
var DEVICE_ID = {
  NET: 1,
  BLOCK: 2,
  CONSOLE: 3,
  RNG: 4,
  VSOCK: 19
};
var DESC_F = {
  NEXT: 1,
  WRITE: 2,
  INDIRECT: 4
};
var VRING_AVAIL_F_NO_INTERRUPT = 1;
var VRING_USED_F_NO_NOTIFY = 1;
var ISR = {
  USED_BUFFER: 1,
  CONFIG_CHANGE: 2
};

// virtio/ring.ts
function wrap16(x) {
  return x & 65535;
}
function vringNeedEvent(event, next, old) {
  return wrap16(next - event - 1) < wrap16(next - old);
}

// virtio/queue.ts
var QueueError = class extends Error {
  constructor(message) {
    super(message);
    this.name = "QueueError";
  }
};
var ScratchChain = class {
  head = 0;
  readable = [];
  writable = [];
  readableLen = 0;
  writableLen = 0;
  error = void 0;
  /** Buffer objects handed out by the fills, reused in order. */
  pool = [];
  /** Empties the chain for a fill with head `head`. */
  reset(head) {
    this.head = head;
    emptyArray(this.readable);
    emptyArray(this.writable);
    this.readableLen = 0;
    this.writableLen = 0;
    this.error = void 0;
  }
};
function emptyArray(a) {
  while (a.length > 0) a.pop();
}
function copyChain(c) {
  return {
    head: c.head,
    readable: c.readable.map((b) => ({
      addr: b.addr,
      len: b.len
    })),
    writable: c.writable.map((b) => ({
      addr: b.addr,
      len: b.len
    })),
    readableLen: c.readableLen,
    writableLen: c.writableLen,
    ...c.error !== void 0 ? {
      error: c.error
    } : {}
  };
}
function pooled(pool2, i, addr, len) {
  const b = pool2[i];
  if (b === void 0) {
    const fresh = {
      addr,
      len
    };
    pool2.push(fresh);
    return fresh;
  }
  b.addr = addr;
  b.len = len;
  return b;
}
var MAX_CHAIN_BYTES = 4294967296;
function bufferViews(mem, bufs, skip, len) {
  const out = [];
  const end = skip + len;
  let pos = 0;
  for (const b of bufs) {
    const from = Math.max(skip, pos), to = Math.min(end, pos + b.len);
    if (to > from) out.push(mem.slice(b.addr + (from - pos), to - from));
    pos += b.len;
    if (pos >= end) break;
  }
  return out;
}
function layoutRamMap(layout) {
  return {
    contains: (addr, len) => Number.isSafeInteger(addr) && addr >= 0 && Number.isSafeInteger(len) && len >= 0 && layout.some((r) => addr >= r.gpa && addr < r.gpa + r.size && len <= r.gpa + r.size - addr)
  };
}
var RING_ALIGN = {
  descAddr: 16,
  availAddr: 2,
  usedAddr: 4
};
var UNUSABLE_RING_ADDR = 2 ** 53 - 4096;
function queueSizeProblem(n, maxSize) {
  return isPow2(n) && n <= maxSize ? void 0 : `size ${String(n)} is not a power of two <= ${maxSize}`;
}
function ringAddrProblem(field, addr) {
  if (typeof addr !== "number" || !Number.isSafeInteger(addr) || addr < 0) {
    return `${field} ${String(addr)} is not an address`;
  }
  const a = RING_ALIGN[field];
  return addr % a ? `${field} 0x${addr.toString(16)} is not ${a}-aligned` : void 0;
}
function queuePlacementError(q, maxSize, ram) {
  const n = q.size;
  const bad = queueSizeProblem(n, maxSize) ?? ringAddrProblem("descAddr", q.descAddr) ?? ringAddrProblem("availAddr", q.availAddr) ?? ringAddrProblem("usedAddr", q.usedAddr);
  if (bad) return bad;
  if (!ram.contains(q.descAddr, 16 * n)) return "descriptor table outside guest RAM";
  if (!ram.contains(q.availAddr, 6 + 2 * n)) return "avail ring outside guest RAM";
  if (!ram.contains(q.usedAddr, 6 + 8 * n)) return "used ring outside guest RAM";
  return void 0;
}
function checkQueueState(s, maxSize, ram) {
  const u16 = (v, name2) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 65535) {
      throw new RangeError(`Cannot restore queue: ${name2} ${String(v)} is not a 16-bit index`);
    }
    return v;
  };
  const addr = (v, name2) => {
    const why2 = ringAddrProblem(name2, v);
    if (why2) throw new RangeError(`Cannot restore queue: ${why2}`);
    return v;
  };
  const bool3 = (v, name2) => {
    if (typeof v !== "boolean") {
      throw new RangeError(`Cannot restore queue: ${name2} is not a boolean`);
    }
    return v;
  };
  if (typeof s !== "object" || s === null) throw new RangeError("Cannot restore queue: no state");
  const q = s;
  const sizeWhy = queueSizeProblem(q.size, maxSize);
  if (sizeWhy) throw new RangeError(`Cannot restore queue: ${sizeWhy}`);
  const next = {
    size: q.size,
    ready: bool3(q.ready, "ready"),
    descAddr: addr(q.descAddr, "descAddr"),
    availAddr: addr(q.availAddr, "availAddr"),
    usedAddr: addr(q.usedAddr, "usedAddr"),
    nextAvail: u16(q.nextAvail, "nextAvail"),
    nextUsed: u16(q.nextUsed, "nextUsed"),
    signalledUsed: u16(q.signalledUsed, "signalledUsed"),
    signalledUsedValid: bool3(q.signalledUsedValid, "signalledUsedValid"),
    eventIdx: bool3(q.eventIdx, "eventIdx"),
    indirect: bool3(q.indirect, "indirect")
  };
  const why = next.ready ? queuePlacementError(next, maxSize, ram) : void 0;
  if (why) throw new RangeError(`Cannot restore queue: ${why}`);
  return next;
}
function isPow2(n) {
  return Number.isInteger(n) && n > 0 && (n & n - 1) === 0;
}
var Queue = class {
  /** The largest size the device allows (QueueNumMax). */
  maxSize;
  #size;
  #ready = false;
  #descAddr = 0;
  #availAddr = 0;
  #usedAddr = 0;
  /** Next avail ring entry the device will read (free-running 16-bit). */
  nextAvail = 0;
  /** Next used ring entry the device will write (free-running 16-bit). */
  nextUsed = 0;
  /** Used index at the last interrupt decision (event-index mode). */
  signalledUsed = 0;
  /** Whether `signalledUsed` holds a decision (false after reset: the next one interrupts). */
  signalledUsedValid = false;
  /** VIRTIO_F_EVENT_IDX negotiated. */
  eventIdx = false;
  /** VIRTIO_F_INDIRECT_DESC negotiated. */
  indirect = false;
  /** A queue in reset state; `maxSize` must be a power of two up to 32768. */
  constructor(maxSize) {
    if (!isPow2(maxSize) || maxSize > 32768) {
      throw new RangeError(`Cannot create queue: max size ${maxSize} is not a power of two <= 32768`);
    }
    this.maxSize = maxSize;
    this.#size = maxSize;
  }
  /** Negotiated size: a power of two up to maxSize (QueueNum). */
  get size() {
    return this.#size;
  }
  /** Whether the driver enabled the queue. */
  get ready() {
    return this.#ready;
  }
  /** Guest-physical address of the descriptor table (16-byte aligned). */
  get descAddr() {
    return this.#descAddr;
  }
  /** Guest-physical address of the avail (driver) ring (2-byte aligned). */
  get availAddr() {
    return this.#availAddr;
  }
  /** Guest-physical address of the used (device) ring (4-byte aligned). */
  get usedAddr() {
    return this.#usedAddr;
  }
  /**
   * QueueNum: sets the size unless it is not a power of two up to {@link maxSize}; returns
   * why it was refused (the size is then unchanged), or undefined.
   */
  setSize(n) {
    const why = queueSizeProblem(n, this.maxSize);
    if (!why) this.#size = n;
    return why;
  }
  /**
   * Sets a ring address unless it is misaligned (16, 2, 4 bytes); returns why it was
   * refused (the address is then unchanged), or undefined. An address beyond 2^53 (a
   * guest can write one in two halves) becomes {@link UNUSABLE_RING_ADDR}, which no RAM
   * contains: the queue then fails at activation instead of using a wrong address.
   */
  setAddress(field, addr) {
    if (Number.isInteger(addr) && addr > Number.MAX_SAFE_INTEGER) addr = UNUSABLE_RING_ADDR;
    const why = ringAddrProblem(field, addr);
    if (why) return why;
    if (field === "descAddr") this.#descAddr = addr;
    else if (field === "availAddr") this.#availAddr = addr;
    else this.#usedAddr = addr;
    return void 0;
  }
  /** QueueReady (or a legacy QueuePFN): the driver enables or disables the queue. */
  setReady(ready) {
    this.#ready = ready;
  }
  /** Back to the reset state (size = max, not ready, zero addresses and indices). */
  reset() {
    this.#size = this.maxSize;
    this.#ready = false;
    this.#descAddr = this.#availAddr = this.#usedAddr = 0;
    this.nextAvail = this.nextUsed = this.signalledUsed = 0;
    this.signalledUsedValid = false;
    this.eventIdx = this.indirect = false;
  }
  /**
   * Why the queue cannot be used with `mem`, or undefined when it can: size a power of
   * two up to the max, rings aligned (16, 2, 4) and wholly inside guest RAM.
   */
  invalidReason(mem) {
    return queuePlacementError(this, this.maxSize, mem);
  }
  /** The driver's avail.idx. */
  availIdx(mem) {
    return mem.loadU16Atomic(this.#availAddr + 2);
  }
  /** How many chains are waiting; throws QueueError when the driver claims more than size. */
  pending(mem) {
    const n = wrap16(this.availIdx(mem) - this.nextAvail);
    if (n > this.#size) {
      throw new QueueError(`avail index is ${n} entries ahead of the device, more than the size ${this.#size}`);
    }
    return n;
  }
  /**
   * Takes the next chain from the avail ring, or null when there is none. Throws
   * {@link QueueError} when the ring itself is broken (index jump, head out of range).
   */
  pop(mem) {
    const head = this.#take(mem);
    if (head < 0) return null;
    return this.#walk(mem, {
      head,
      readable: [],
      writable: [],
      readableLen: 0,
      writableLen: 0
    }, void 0);
  }
  /**
   * Like {@link pop}, but fills `into` in place (no allocation once its arrays have grown);
   * false when there is no chain. `into` describes the chain only until its next fill.
   */
  popInto(mem, into) {
    const head = this.#take(mem);
    if (head < 0) return false;
    into.reset(head);
    this.#walk(mem, into, into.pool);
    return true;
  }
  /** The next avail ring entry's head (and moves past it), or -1 when there is none. */
  #take(mem) {
    if (this.pending(mem) === 0) return -1;
    const slot = this.nextAvail & this.#size - 1;
    const head = mem.readU16(this.#availAddr + 4 + 2 * slot);
    if (head >= this.#size) {
      throw new QueueError(`avail ring entry ${slot} names descriptor ${head}, beyond size ${this.#size}`);
    }
    this.nextAvail = wrap16(this.nextAvail + 1);
    return head;
  }
  /** Returns `n` chains to the avail ring (the device took them but will not serve them now). */
  undoPop(n = 1) {
    this.nextAvail = wrap16(this.nextAvail - n);
  }
  /**
   * Follows the chain from `chain.head` into `chain` (empty), its buffer objects taken from
   * `pool` when given (reused) or made fresh.
   */
  #walk(mem, chain, pool2) {
    let table2 = this.#descAddr, tableSize = this.#size, index = chain.head;
    let inIndirect = false, ttl = this.#size, total = 0, used = 0;
    for (; ; ) {
      if (ttl-- <= 0) return fail2(chain, "chain longer than its table (a loop?)");
      if (index >= tableSize) {
        return fail2(chain, `next index ${index} beyond table size ${tableSize}`);
      }
      const d = table2 + 16 * index;
      const addr = mem.readU64Number(d);
      const len = mem.readU32(d + 8);
      const flags = mem.readU16(d + 12);
      const next = mem.readU16(d + 14);
      if (flags & DESC_F.INDIRECT) {
        if (!this.indirect) {
          return fail2(chain, "indirect descriptor without VIRTIO_F_INDIRECT_DESC");
        }
        if (inIndirect) return fail2(chain, "indirect descriptor inside an indirect table");
        if (flags & DESC_F.NEXT) return fail2(chain, "indirect descriptor with NEXT set");
        if (len === 0 || len % 16) {
          return fail2(chain, `indirect table length ${len} is not a multiple of 16`);
        }
        const entries = len / 16;
        if (entries > this.#size) {
          return fail2(chain, `indirect table of ${entries} entries exceeds size ${this.#size}`);
        }
        if (!mem.contains(addr, len)) return fail2(chain, "indirect table outside guest RAM");
        table2 = addr;
        tableSize = entries;
        index = 0;
        ttl = entries;
        inIndirect = true;
        continue;
      }
      if (!mem.contains(addr, len)) {
        return fail2(chain, `buffer 0x${addr.toString(16)}+${len} outside guest RAM`);
      }
      total += len;
      if (total >= MAX_CHAIN_BYTES) return fail2(chain, "chain longer than 4 GiB");
      const b = pool2 ? pooled(pool2, used++, addr, len) : {
        addr,
        len
      };
      if (flags & DESC_F.WRITE) {
        chain.writable.push(b);
        chain.writableLen += len;
      } else {
        if (chain.writable.length) return fail2(chain, "readable buffer after a writable one");
        chain.readable.push(b);
        chain.readableLen += len;
      }
      if (!(flags & DESC_F.NEXT)) return chain;
      index = next;
    }
  }
  /** Puts `head` in the used ring with `len` bytes written, and publishes used.idx. */
  addUsed(mem, head, len) {
    const slot = this.nextUsed & this.#size - 1;
    const e = this.#usedAddr + 4 + 8 * slot;
    mem.writeU32(e, head);
    mem.writeU32(e + 4, len);
    this.nextUsed = wrap16(this.nextUsed + 1);
    mem.storeU16Atomic(this.#usedAddr + 2, this.nextUsed);
  }
  /**
   * Whether the driver wants an interrupt for what was added since the last call: with
   * event index, `vring_need_event(used_event, used idx, used idx at last decision)`;
   * without, unless the driver set VRING_AVAIL_F_NO_INTERRUPT.
   */
  needsInterrupt(mem) {
    if (!this.eventIdx) {
      return (mem.loadU16Atomic(this.#availAddr) & VRING_AVAIL_F_NO_INTERRUPT) === 0;
    }
    const old = this.signalledUsed, valid = this.signalledUsedValid;
    this.signalledUsed = this.nextUsed;
    this.signalledUsedValid = true;
    if (!valid) return true;
    const usedEvent = mem.loadU16Atomic(this.#availAddr + 4 + 2 * this.#size);
    return vringNeedEvent(usedEvent, this.nextUsed, old);
  }
  /**
   * Asks the driver not to notify (VRING_USED_F_NO_NOTIFY; with event index the device
   * simply stops moving avail_event).
   */
  disableNotification(mem) {
    if (this.eventIdx) return;
    mem.storeU16Atomic(this.#usedAddr, VRING_USED_F_NO_NOTIFY);
  }
  /**
   * Asks the driver to notify for the next buffer (clears NO_NOTIFY, or publishes
   * avail_event = next avail), then re-checks: returns true when buffers arrived in the
   * meantime, so the caller must drain again (no notification is lost).
   */
  enableNotification(mem) {
    if (this.eventIdx) mem.storeU16Atomic(this.#usedAddr + 4 + 8 * this.#size, this.nextAvail);
    else mem.storeU16Atomic(this.#usedAddr, 0);
    return this.availIdx(mem) !== this.nextAvail;
  }
  /** The queue as plain data. */
  save() {
    return {
      size: this.#size,
      ready: this.#ready,
      descAddr: this.#descAddr,
      availAddr: this.#availAddr,
      usedAddr: this.#usedAddr,
      nextAvail: this.nextAvail,
      nextUsed: this.nextUsed,
      signalledUsed: this.signalledUsed,
      signalledUsedValid: this.signalledUsedValid,
      eventIdx: this.eventIdx,
      indirect: this.indirect
    };
  }
  /**
   * Rebuilds the queue from saved state, which is untrusted: every field is checked the
   * way the driver's register writes are, and a ready queue must be valid in `mem`.
   */
  restore(s, mem) {
    this.#apply(checkQueueState(s, this.maxSize, mem));
  }
  /** Applies a checked state ({@link checkQueueState}); all fields at once. */
  #apply(s) {
    this.#size = s.size;
    this.#ready = s.ready;
    this.#descAddr = s.descAddr;
    this.#availAddr = s.availAddr;
    this.#usedAddr = s.usedAddr;
    this.nextAvail = s.nextAvail;
    this.nextUsed = s.nextUsed;
    this.signalledUsed = s.signalledUsed;
    this.signalledUsedValid = s.signalledUsedValid;
    this.eventIdx = s.eventIdx;
    this.indirect = s.indirect;
  }
  /** Validates a saved queue for this queue (see {@link checkQueueState}). */
  static check(s, maxSize, ram) {
    return checkQueueState(s, maxSize, ram);
  }
};
function fail2(chain, error) {
  chain.error = error;
  return chain;
}
var ChainCursor = class {
  #bufs;
  #i = 0;
  #off = 0;
  #left;
  constructor(bufs, total) {
    this.#bufs = bufs;
    this.#left = total;
  }
  /** Bytes left. */
  get remaining() {
    return this.#left;
  }
  /** Moves over `n` bytes, calling `fn(guest address, bytes done before, length)` per piece. */
  advance(n, what, fn) {
    if (n > this.#left) {
      throw new RangeError(`Cannot ${what} ${n} bytes: the chain has ${this.#left} left`);
    }
    let done = 0;
    while (done < n) {
      const b = this.#bufs[this.#i];
      const take = Math.min(n - done, b.len - this.#off);
      fn(b.addr + this.#off, done, take);
      done += take;
      this.#off += take;
      if (this.#off === b.len) {
        this.#i++;
        this.#off = 0;
      }
    }
    this.#left -= n;
  }
};
var ChainReader = class extends ChainCursor {
  mem;
  constructor(mem, chain) {
    super(chain.readable, chain.readableLen), this.mem = mem;
  }
  /** Reads exactly `n` bytes; throws RangeError when fewer remain. */
  read(n) {
    const out = new Uint8Array(n);
    this.readInto(out);
    return out;
  }
  /** Fills `dst` (all of it must be available). */
  readInto(dst) {
    this.advance(dst.byteLength, "read", (a, d, n) => this.mem.readInto(a, dst.subarray(d, d + n)));
  }
  /** Skips `n` bytes. */
  skip(n) {
    this.advance(n, "skip", () => {
    });
  }
};
var ChainWriter = class extends ChainCursor {
  mem;
  /** Bytes written so far (the length to report in the used ring). */
  written;
  constructor(mem, chain) {
    super(chain.writable, chain.writableLen), this.mem = mem, this.written = 0;
  }
  /** Writes all of `src`; throws RangeError (writing nothing) when it does not fit. */
  write(src) {
    this.advance(src.byteLength, "write", (a, d, n) => this.mem.write(a, src.subarray(d, d + n)));
    this.written += src.byteLength;
  }
};

// virtio/device.ts
var ACK = STATUS.ACKNOWLEDGE;
var DRV = STATUS.DRIVER;
var DEVICE_BITS = STATUS.DEVICE_NEEDS_RESET | STATUS.DEVICE_MMU_FAIL;
var STATUS_STEPS = {
  modern: /* @__PURE__ */ new Map([
    [
      0,
      ACK
    ],
    [
      ACK,
      DRV
    ],
    [
      ACK | DRV,
      STATUS.FEATURES_OK
    ],
    [
      ACK | DRV | STATUS.FEATURES_OK,
      STATUS.DRIVER_OK
    ]
  ]),
  // The legacy interface has no FEATURES_OK: features are final at DRIVER_OK.
  legacy: /* @__PURE__ */ new Map([
    [
      0,
      ACK
    ],
    [
      ACK,
      DRV
    ],
    [
      ACK | DRV,
      STATUS.DRIVER_OK
    ]
  ])
};
function offeredFeatures(features, legacy) {
  return legacy ? features & 0xffffffffn & ~bit(F.VERSION_1) : features | bit(F.VERSION_1);
}
function checkVirtioState(s, spec, ram) {
  if (typeof s !== "object" || s === null) throw new RangeError("Cannot restore device: no state");
  const v = s;
  if (v.deviceType !== spec.deviceType) {
    throw new RangeError(`Cannot restore device: state is for type ${v.deviceType}, device is ${spec.deviceType}`);
  }
  if (typeof v.driverFeatures !== "string" || !/^[0-9a-f]{1,16}$/.test(v.driverFeatures)) {
    throw new RangeError("Cannot restore device: driverFeatures is not a hex string");
  }
  const features = BigInt("0x" + v.driverFeatures);
  if (features & ~spec.offered) {
    throw new RangeError(`Cannot restore device: features 0x${(features & ~spec.offered).toString(16)} were not offered`);
  }
  if (!Number.isInteger(v.status) || v.status < 0 || v.status > 255) {
    throw new RangeError(`Cannot restore device: status ${v.status} is not a byte`);
  }
  if (!Array.isArray(v.queues) || v.queues.length !== spec.queueMaxSizes.length) {
    throw new RangeError(`Cannot restore device: ${v.queues?.length} queues, device has ${spec.queueMaxSizes.length}`);
  }
  if (!Number.isInteger(v.isr) || v.isr < 0 || v.isr > 3) {
    throw new RangeError("Cannot restore device: bad isr");
  }
  if (!Number.isInteger(v.configGeneration) || v.configGeneration < 0) {
    throw new RangeError("Cannot restore device: bad config generation");
  }
  return {
    deviceType: v.deviceType,
    status: v.status,
    driverFeatures: v.driverFeatures,
    isr: v.isr,
    configGeneration: v.configGeneration,
    queues: v.queues.map((q, i) => checkQueueState(q, spec.queueMaxSizes[i], ram)),
    ...v.backend !== void 0 ? {
      backend: v.backend
    } : {}
  };
}
var VirtioDevice = class {
  /** The device model. */
  backend;
  /** Guest memory, where the queues' buffers are. */
  mem;
  /** The legacy interface (virtio-mmio version 1). */
  legacy;
  /** The queues, sized by the backend's `queueMaxSizes`. */
  queues;
  /** Features offered to the driver. */
  offered;
  #interrupt;
  #log;
  #status = 0;
  #driverFeatures = 0n;
  /** The interrupt status: `#isrWords[#isrAt]`, changed only with Atomics (it may be shared). */
  #isrWords;
  #isrAt;
  #generation = 0;
  #phase = "running";
  /** Set by {@link dispose}: the machine is going away, no more queue or memory work. */
  #disposed = false;
  /** Pending {@link DeviceContext.requeue} timers (cleared by dispose). */
  #requeues = /* @__PURE__ */ new Set();
  #deferredInterrupt = false;
  #deferredConfig = false;
  #drained = [];
  #ctx;
  /** A device in reset state around `backend`, offering its features (plus VERSION_1 if modern). */
  constructor(backend, opts) {
    this.backend = backend;
    this.mem = opts.mem;
    this.legacy = opts.legacy ?? false;
    this.#interrupt = opts.interrupt;
    this.#log = opts.log ?? (() => {
    });
    this.#isrWords = opts.isrWord?.words ?? new Int32Array(new SharedArrayBuffer(4));
    this.#isrAt = opts.isrWord?.index ?? 0;
    Atomics.store(this.#isrWords, this.#isrAt, 0);
    this.queues = backend.queueMaxSizes.map((m) => new Queue(m));
    this.offered = offeredFeatures(backend.features & (opts.featureMask ?? ~0n), this.legacy);
    const features = () => this.#driverFeatures;
    this.#ctx = {
      mem: this.mem,
      queues: this.queues,
      get features() {
        return features();
      },
      canProcess: () => this.#canProcess(),
      signalUsed: (i) => this.#signalUsed(i),
      configChanged: () => this.configChanged(),
      fail: (r) => this.fail(r),
      guard: (what, fn) => this.guard(what, fn),
      requeue: (i) => {
        const t = after(0, () => {
          this.#requeues.delete(t);
          this.notify(i);
        });
        this.#requeues.add(t);
      }
    };
  }
  /** The device status register. */
  get status() {
    return this.#status;
  }
  /** The features the driver acknowledged. */
  get driverFeatures() {
    return this.#driverFeatures;
  }
  /** Interrupt status (bit 0 used buffer, bit 1 config change). */
  get isr() {
    return Atomics.load(this.#isrWords, this.#isrAt);
  }
  /** Config generation: changes whenever the device changed its config space. */
  get configGeneration() {
    return this.#generation;
  }
  /** Whether stop() was called and resume() was not (stopping or stopped). */
  get frozen() {
    return this.#phase !== "running";
  }
  /** Whether stop() has completed (no requests in flight, nothing will change). */
  get stopped() {
    return this.#phase === "stopped";
  }
  /** Whether DRIVER_OK is set and the device is not broken. */
  get active() {
    return (this.#status & STATUS.DRIVER_OK) !== 0 && (this.#status & (STATUS.DEVICE_NEEDS_RESET | STATUS.FAILED)) === 0;
  }
  /** Whether the driver may still write feature bits. */
  get featuresWritable() {
    const s = this.#status;
    if (this.legacy) return (s & STATUS.DRIVER) !== 0 && (s & STATUS.DRIVER_OK) === 0;
    return (s & STATUS.DRIVER) !== 0 && (s & STATUS.FEATURES_OK) === 0;
  }
  /** Whether the driver may set up queues now (after FEATURES_OK, before DRIVER_OK). */
  get queuesWritable() {
    const s = this.#status;
    if (s & (STATUS.DRIVER_OK | STATUS.FAILED)) return false;
    return this.legacy ? (s & STATUS.DRIVER) !== 0 : (s & STATUS.FEATURES_OK) !== 0;
  }
  /** 32 bits of the offered features: word 0 is bits 0-31, word 1 bits 32-63. */
  deviceFeaturesWord(sel) {
    if (sel === 0) return Number(this.offered & 0xffffffffn);
    if (sel === 1 && !this.legacy) return Number(this.offered >> 32n & 0xffffffffn);
    return 0;
  }
  /** The driver writes 32 bits of its accepted features (gated on status). */
  writeDriverFeaturesWord(sel, value) {
    if (!this.featuresWritable) {
      return this.#log(`Ignored driver features write in status 0x${this.#status.toString(16)}`);
    }
    if (sel > 1 || sel === 1 && this.legacy) {
      return this.#log(`Ignored driver features word ${sel}`);
    }
    const shift = BigInt(sel * 32);
    const mask = 0xffffffffn << shift;
    let v = BigInt(value >>> 0) << shift;
    if (this.legacy) {
      const unoffered = v & ~this.offered;
      if (unoffered) {
        this.#log(`Legacy driver accepted unoffered features 0x${unoffered.toString(16)}`);
      }
      v &= this.offered;
    }
    this.#driverFeatures = this.#driverFeatures & ~mask | v;
  }
  /** Why `acked` cannot be accepted at FEATURES_OK, or undefined. */
  #featuresProblem(acked) {
    const unoffered = acked & ~this.offered;
    if (unoffered) {
      return `driver accepted features the device did not offer (0x${unoffered.toString(16)})`;
    }
    if (!this.legacy && !(acked & bit(F.VERSION_1))) {
      return "driver did not accept VIRTIO_F_VERSION_1";
    }
    if (this.backend.acceptFeatures && !this.backend.acceptFeatures(acked)) {
      return `device cannot work with features 0x${acked.toString(16)}`;
    }
    return void 0;
  }
  /** A driver write to the status register, applied per the transition table. */
  writeStatus(value) {
    const v = value & 255;
    if (v === 0) return this.reset();
    const s = this.#status;
    if (s & ~v & ~DEVICE_BITS) {
      return this.#log(`Ignored status write 0x${v.toString(16)}: the driver may not clear bits`);
    }
    let add = v & ~s & ~DEVICE_BITS;
    if (add & STATUS.FAILED) {
      this.#status |= STATUS.FAILED;
      add &= ~STATUS.FAILED;
      if (add === 0) return;
    }
    const next = this.#nextStep(s & ~STATUS.FAILED & ~DEVICE_BITS);
    if (add !== next) {
      return this.#log(`Ignored status write 0x${v.toString(16)} in status 0x${s.toString(16)} (expected +0x${next.toString(16)})`);
    }
    if (s & STATUS.FAILED) return this.#log("Ignored status write after FAILED: reset first");
    switch (add) {
      case STATUS.FEATURES_OK: {
        const why = this.#featuresProblem(this.#driverFeatures);
        if (why) return this.#log(`Refused FEATURES_OK: ${why}`);
        this.#status |= STATUS.FEATURES_OK;
        return;
      }
      case STATUS.DRIVER_OK:
        this.#status |= STATUS.DRIVER_OK;
        this.#activate();
        return;
      default:
        this.#status |= add;
    }
  }
  /** The single status bit the driver may add next ({@link STATUS_STEPS}), or 0. */
  #nextStep(s) {
    return (this.legacy ? STATUS_STEPS.legacy : STATUS_STEPS.modern).get(s) ?? 0;
  }
  #activate() {
    const f = this.#driverFeatures;
    for (const [i, q] of this.queues.entries()) {
      q.eventIdx = (f & bit(F.EVENT_IDX)) !== 0n;
      q.indirect = (f & bit(F.INDIRECT_DESC)) !== 0n;
      q.signalledUsed = q.nextUsed;
      q.signalledUsedValid = true;
      if (!q.ready) continue;
      const why = q.invalidReason(this.mem);
      if (why) return this.fail(`queue ${i} is unusable: ${why}`);
    }
    try {
      this.backend.activate(this.#ctx);
    } catch (e) {
      this.fail(`activation failed: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  /** Device reset (status 0): drops features, queues, interrupt status and device state. */
  reset() {
    this.#status = 0;
    this.#driverFeatures = 0n;
    Atomics.store(this.#isrWords, this.#isrAt, 0);
    this.#deferredInterrupt = false;
    for (const q of this.queues) q.reset();
    this.backend.reset();
    if (this.#phase === "stopping") this.#checkDrained();
  }
  /**
   * DEVICE_NEEDS_RESET with a config interrupt (only once the driver is live); `extra` are
   * further device-owned status bits set with it (DEVICE_MMU_FAIL).
   */
  fail(reason, extra = 0) {
    this.#log(`Device needs reset: ${reason}`);
    if (!(this.#status & STATUS.DRIVER_OK)) return;
    const had = this.#status & STATUS.DEVICE_NEEDS_RESET;
    this.#status |= STATUS.DEVICE_NEEDS_RESET | extra & STATUS.DEVICE_MMU_FAIL;
    if (!had) this.#raise(ISR.CONFIG_CHANGE);
  }
  #canProcess() {
    return this.#phase === "running" && this.active && !this.#disposed;
  }
  /**
   * The machine is closing (its guest memory is about to be unmapped): from now on nothing
   * of this device touches queues or memory: notifications, re-queues and the work of
   * requests still in flight (which comes through {@link guard}) are dropped.
   */
  dispose() {
    if (this.#disposed) return;
    this.#disposed = true;
    this.backend.dispose?.();
    for (const t of this.#requeues) t.cancel();
    this.#requeues.clear();
  }
  /** The driver notified queue `index` (or the VMM re-kicks it). */
  notify(index) {
    const q = this.queues[index];
    if (!q) return this.#log(`Ignored notify of queue ${index}: no such queue`);
    if (!this.#canProcess() || !q.ready) return;
    this.guard(`queue ${index}`, () => this.backend.processQueue(index));
  }
  /** See {@link DeviceContext.guard}: an exception from `fn` marks the device broken. */
  guard(what, fn) {
    if (this.#disposed) return;
    try {
      fn();
    } catch (e) {
      if (e instanceof QueueError) this.fail(`${what}: ${e.message}`);
      else this.fail(`${what}: device error: ${e instanceof Error ? e.message : String(e)}`);
    }
  }
  #signalUsed(index) {
    const q = this.queues[index];
    if (q && q.ready && q.needsInterrupt(this.mem)) this.#raise(ISR.USED_BUFFER);
    if (this.#phase === "stopping") this.#checkDrained();
  }
  /** The device changed its config space: new generation and a config interrupt. */
  configChanged() {
    if (this.#phase !== "running") {
      this.#deferredConfig = true;
      return;
    }
    this.#generation = this.#generation + 1 >>> 0;
    if (this.#status & STATUS.DRIVER_OK) this.#raise(ISR.CONFIG_CHANGE);
  }
  #raise(bits) {
    Atomics.or(this.#isrWords, this.#isrAt, bits);
    if (this.#phase !== "running") {
      this.#deferredInterrupt = true;
      return;
    }
    this.#interrupt.trigger();
  }
  /** The driver acknowledged interrupt bits. */
  ackInterrupt(bits) {
    Atomics.and(this.#isrWords, this.#isrAt, ~bits);
  }
  /** A config space read: the backend fills `data`; outside config space it reads zeros. */
  readConfig(offset, data) {
    data.fill(0);
    if (offset < 0 || offset + data.byteLength > this.backend.configSize) {
      return this.#log(`Config read at ${offset}+${data.byteLength} outside config space`);
    }
    this.backend.readConfig(offset, data);
  }
  /** A config space write, passed to the backend once the driver is in (DRIVER); else logged. */
  writeConfig(offset, data) {
    if (offset < 0 || offset + data.byteLength > this.backend.configSize) {
      return this.#log(`Config write at ${offset}+${data.byteLength} outside config space`);
    }
    if (!(this.#status & STATUS.DRIVER)) return this.#log("Ignored config write before DRIVER");
    this.backend.writeConfig(offset, data);
  }
  /**
   * Stops the device for a snapshot: it takes no new requests, completes those in flight
   * (their used entries are written; their interrupt waits for resume), keeps its config
   * space and raises nothing. Resolves once that is all true.
   */
  stop() {
    if (this.#phase === "stopped") return Promise.resolve();
    this.#phase = "stopping";
    const p = new Promise((r) => this.#drained.push(r));
    this.#checkDrained();
    const more = this.backend.stop?.();
    return more ? Promise.all([
      p,
      more
    ]).then(() => {
    }) : p;
  }
  #checkDrained() {
    if (this.#phase !== "stopping" || (this.backend.inflight?.() ?? 0) > 0) return;
    this.#phase = "stopped";
    for (const r of this.#drained.splice(0)) r();
  }
  /** Call when an in-flight request finished without a used-buffer signal. */
  requestDone() {
    if (this.#phase === "stopping") this.#checkDrained();
  }
  /**
   * Resumes exactly where the device stopped: the backend's own {@link VirtioBackend.resume}
   * runs first, then `replay` (the transport's deferred register writes), then the deferred
   * config change and interrupt are delivered, then
   * every ready queue is re-kicked (a notification may have come while
   * stopped, and after a restore avail_event may be stale).
   */
  resume(replay) {
    if (this.#phase === "running") return;
    this.#phase = "running";
    for (const r of this.#drained.splice(0)) r();
    this.backend.resume?.();
    replay?.();
    if (this.#deferredConfig) {
      this.#deferredConfig = false;
      this.configChanged();
    }
    if (this.#deferredInterrupt) {
      this.#deferredInterrupt = false;
      if (this.isr) this.#interrupt.trigger();
    }
    this.kickAll();
  }
  /** Processes every ready queue as if the driver had notified it. */
  kickAll() {
    for (let i = 0; i < this.queues.length; i++) if (this.queues[i].ready) this.notify(i);
  }
  /** Validates a saved core state (untrusted), pure: {@link checkVirtioState}. */
  static check(s, spec, ram) {
    return checkVirtioState(s, spec, ram);
  }
  /** What saved states of this device are checked against. */
  get stateSpec() {
    return {
      deviceType: this.backend.deviceType,
      offered: this.offered,
      queueMaxSizes: this.queues.map((q) => q.maxSize)
    };
  }
  /** The core state as plain data (the backend's own state included). */
  save() {
    return {
      deviceType: this.backend.deviceType,
      status: this.#status,
      driverFeatures: this.#driverFeatures.toString(16),
      isr: this.isr,
      configGeneration: this.#generation,
      queues: this.queues.map((q) => q.save()),
      ...this.backend.save ? {
        backend: this.backend.save()
      } : {}
    };
  }
  /**
   * Restores saved state (untrusted): device type, features within the offer, status
   * bits, queue count and each queue are validated before anything is applied. The device
   * comes back stopped: nothing is processed until {@link resume}.
   */
  restore(saved) {
    const s = checkVirtioState(saved, this.stateSpec, this.mem);
    const features = BigInt("0x" + s.driverFeatures);
    if (s.backend !== void 0) this.backend.restore?.(s.backend);
    s.queues.forEach((qs, i) => this.queues[i].restore(qs, this.mem));
    this.#status = s.status;
    this.#driverFeatures = features;
    Atomics.store(this.#isrWords, this.#isrAt, s.isr);
    this.#generation = s.configGeneration;
    this.#phase = "stopped";
    if (this.active) {
      try {
        this.backend.activate(this.#ctx);
      } catch (e) {
        this.fail(`activation after restore failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
  }
};

// transports/mmio.ts
var REG = {
  MAGIC: 0,
  VERSION: 4,
  DEVICE_ID: 8,
  VENDOR_ID: 12,
  DEVICE_FEATURES: 16,
  DEVICE_FEATURES_SEL: 20,
  DRIVER_FEATURES: 32,
  DRIVER_FEATURES_SEL: 36,
  GUEST_PAGE_SIZE: 40,
  QUEUE_SEL: 48,
  QUEUE_NUM_MAX: 52,
  QUEUE_NUM: 56,
  QUEUE_ALIGN: 60,
  QUEUE_PFN: 64,
  QUEUE_READY: 68,
  QUEUE_NOTIFY: 80,
  INTERRUPT_STATUS: 96,
  INTERRUPT_ACK: 100,
  STATUS: 112,
  QUEUE_DESC_LOW: 128,
  QUEUE_DESC_HIGH: 132,
  QUEUE_AVAIL_LOW: 144,
  QUEUE_AVAIL_HIGH: 148,
  QUEUE_USED_LOW: 160,
  QUEUE_USED_HIGH: 164,
  SHM_SEL: 172,
  SHM_LEN_LOW: 176,
  SHM_LEN_HIGH: 180,
  SHM_BASE_LOW: 184,
  SHM_BASE_HIGH: 188,
  CONFIG_GENERATION: 252,
  CONFIG: 256
};
var MMIO_MAGIC = 1953655158;
var MMIO_VENDOR = 1330529604;
var MMIO_WINDOW = 4096;
var MAX_DEFERRED_WRITES = 4096;
var MmioTransport = class {
  /** The device core behind the registers. */
  device;
  /** 2 (modern) or 1 (legacy), chosen by the device's interface. */
  version;
  #notifier;
  #log;
  #deviceFeaturesSel = 0;
  #driverFeaturesSel = 0;
  #queueSel = 0;
  #guestPageSize = 4096;
  #queueAlign = /* @__PURE__ */ new Map();
  #queuePfn = /* @__PURE__ */ new Map();
  #bound = /* @__PURE__ */ new Set();
  #deferred = [];
  /** The register window of `device`: version 1 if the device is legacy, else 2. */
  constructor(device2, opts = {}) {
    this.device = device2;
    this.version = device2.legacy ? 1 : 2;
    this.#notifier = opts.notifier;
    this.#log = opts.log ?? (() => {
    });
  }
  /** Bus read. */
  read(offset, data) {
    data.fill(0);
    if (offset >= REG.CONFIG) return this.device.readConfig(offset - REG.CONFIG, data);
    if (data.byteLength !== 4 || offset % 4) {
      return this.#log(`Ignored ${data.byteLength}-byte register read at 0x${offset.toString(16)}`);
    }
    const v = this.#readReg(offset);
    new DataView(data.buffer, data.byteOffset, 4).setUint32(0, v >>> 0, true);
  }
  #readReg(offset) {
    const d = this.device;
    const q = d.queues[this.#queueSel];
    switch (offset) {
      case REG.MAGIC:
        return MMIO_MAGIC;
      case REG.VERSION:
        return this.version;
      case REG.DEVICE_ID:
        return d.backend.deviceType;
      case REG.VENDOR_ID:
        return MMIO_VENDOR;
      case REG.DEVICE_FEATURES:
        return d.deviceFeaturesWord(this.#deviceFeaturesSel);
      case REG.QUEUE_NUM_MAX:
        return q ? q.maxSize : 0;
      case REG.QUEUE_READY:
        return this.version === 2 && q?.ready ? 1 : 0;
      case REG.QUEUE_PFN:
        return this.version === 1 ? this.#queuePfn.get(this.#queueSel) ?? 0 : 0;
      case REG.INTERRUPT_STATUS:
        return d.isr;
      case REG.STATUS:
        return d.status;
      case REG.SHM_LEN_LOW:
      case REG.SHM_LEN_HIGH:
      case REG.SHM_BASE_LOW:
      case REG.SHM_BASE_HIGH:
        return 4294967295;
      // no shared memory regions
      case REG.CONFIG_GENERATION:
        return this.version === 2 ? d.configGeneration : 0;
      default:
        this.#log(`Read of write-only or unknown register 0x${offset.toString(16)}`);
        return 0;
    }
  }
  /** Bus write. While the device is stopped, writes wait and are replayed on resume. */
  write(offset, data) {
    if (this.device.frozen) {
      if (this.#deferred.length < MAX_DEFERRED_WRITES) this.#deferred.push([
        offset,
        data.slice()
      ]);
      else this.#log(`Dropped register write at 0x${offset.toString(16)}: too many while stopped`);
      return;
    }
    this.#write(offset, data);
  }
  #write(offset, data) {
    if (offset >= REG.CONFIG) return this.device.writeConfig(offset - REG.CONFIG, data);
    if (data.byteLength !== 4 || offset % 4) {
      return this.#log(`Ignored ${data.byteLength}-byte register write at 0x${offset.toString(16)}`);
    }
    const v = new DataView(data.buffer, data.byteOffset, 4).getUint32(0, true);
    this.#writeReg(offset, v);
  }
  #writeReg(offset, v) {
    const d = this.device;
    const q = d.queues[this.#queueSel];
    const queueReg = (what) => {
      if (!q) {
        this.#log(`Ignored ${what}: queue ${this.#queueSel} does not exist`);
        return false;
      }
      if (!d.queuesWritable) {
        this.#log(`Ignored ${what} in status 0x${d.status.toString(16)}`);
        return false;
      }
      if (q.ready && what !== "QueueReady") {
        this.#log(`Ignored ${what}: queue ${this.#queueSel} is ready`);
        return false;
      }
      return true;
    };
    switch (offset) {
      case REG.DEVICE_FEATURES_SEL:
        this.#deviceFeaturesSel = v;
        return;
      case REG.DRIVER_FEATURES:
        return d.writeDriverFeaturesWord(this.#driverFeaturesSel, v);
      case REG.DRIVER_FEATURES_SEL:
        this.#driverFeaturesSel = v;
        return;
      case REG.QUEUE_SEL:
        this.#queueSel = v;
        return;
      case REG.QUEUE_NUM:
        if (queueReg("QueueNum")) {
          const why = q.setSize(v);
          if (why) this.#log(`Ignored QueueNum ${v}: ${why}`);
        }
        return;
      case REG.QUEUE_READY:
        if (this.version !== 2) return this.#log("Ignored QueueReady on a legacy device");
        if (v === 0 && q) return q.setReady(false);
        if (queueReg("QueueReady")) q.setReady(v === 1);
        return;
      case REG.QUEUE_DESC_LOW:
      case REG.QUEUE_DESC_HIGH:
      case REG.QUEUE_AVAIL_LOW:
      case REG.QUEUE_AVAIL_HIGH:
      case REG.QUEUE_USED_LOW:
      case REG.QUEUE_USED_HIGH: {
        if (this.version !== 2) return this.#log("Ignored queue address write on a legacy device");
        if (!queueReg("queue address")) return;
        const field = offset < REG.QUEUE_AVAIL_LOW ? "descAddr" : offset < REG.QUEUE_USED_LOW ? "availAddr" : "usedAddr";
        const high = (offset & 4) !== 0;
        const cur = q[field];
        const lo = cur % 4294967296, hi = Math.floor(cur / 4294967296);
        const why = q.setAddress(field, (high ? v : hi) * 4294967296 + (high ? lo : v));
        if (why) this.#log(`Ignored queue address write: ${why}`);
        return;
      }
      case REG.QUEUE_NOTIFY:
        return d.notify(v);
      case REG.INTERRUPT_ACK:
        return d.ackInterrupt(v);
      case REG.STATUS:
        return this.#writeStatus(v);
      case REG.GUEST_PAGE_SIZE:
        if (this.version !== 1) return this.#log("Ignored GuestPageSize on a modern device");
        if (v === 0 || (v & v - 1) !== 0) return this.#log(`Ignored GuestPageSize ${v}`);
        this.#guestPageSize = v;
        return;
      case REG.QUEUE_ALIGN:
        if (this.version !== 1) return this.#log("Ignored QueueAlign on a modern device");
        if (v === 0 || (v & v - 1) !== 0) return this.#log(`Ignored QueueAlign ${v}`);
        if (queueReg("QueueAlign")) this.#queueAlign.set(this.#queueSel, v);
        return;
      case REG.QUEUE_PFN:
        if (this.version !== 1) return this.#log("Ignored QueuePFN on a modern device");
        if (!q) return this.#log(`Ignored QueuePFN: queue ${this.#queueSel} does not exist`);
        if (v === 0) {
          q.setReady(false);
          this.#queuePfn.set(this.#queueSel, 0);
          return;
        }
        if (!queueReg("QueuePFN")) return;
        this.#legacyQueue(v);
        return;
      case REG.SHM_SEL:
        return;
      default:
        this.#log(`Write to read-only or unknown register 0x${offset.toString(16)}`);
    }
  }
  /** Legacy layout: descriptors at PFN * page size, avail after them, used aligned after. */
  #legacyQueue(pfn) {
    const q = this.device.queues[this.#queueSel];
    const align = this.#queueAlign.get(this.#queueSel) ?? 4096;
    const desc = pfn * this.#guestPageSize;
    const avail = desc + 16 * q.size;
    const used = Math.ceil((avail + 6 + 2 * q.size) / align) * align;
    const why = q.setAddress("descAddr", desc) ?? q.setAddress("availAddr", avail) ?? q.setAddress("usedAddr", used);
    if (why) return this.#log(`Ignored QueuePFN ${pfn}: ${why}`);
    q.setReady(true);
    this.#queuePfn.set(this.#queueSel, pfn);
  }
  #writeStatus(v) {
    const d = this.device;
    const wasLive = (d.status & 4) !== 0;
    d.writeStatus(v);
    if (d.status === 0) {
      this.#unbindAll();
      this.#queuePfn.clear();
      this.#queueAlign.clear();
      this.#deviceFeaturesSel = this.#driverFeaturesSel = this.#queueSel = 0;
      return;
    }
    if (!wasLive && d.active) this.#bindAll();
  }
  #bindAll() {
    if (!this.#notifier) return;
    this.device.queues.forEach((q, i) => {
      if (!q.ready || this.#bound.has(i)) return;
      this.#notifier.bind(i, () => this.device.notify(i));
      this.#bound.add(i);
    });
  }
  #unbindAll() {
    for (const i of this.#bound) this.#notifier?.unbind(i);
    this.#bound.clear();
  }
  /** Re-binds notifications after a restore (the device came back live). */
  rebind() {
    this.#unbindAll();
    if (this.device.active) this.#bindAll();
  }
  /** Stops the device (see {@link VirtioDevice.stop}). */
  stop() {
    return this.device.stop();
  }
  /** Resumes the device, then replays the register writes that came while stopped. */
  resume() {
    this.device.resume(() => {
      for (const [o, d] of this.#deferred.splice(0)) this.#write(o, d);
    });
  }
  /** Transport registers as plain data (for snapshots). */
  save() {
    return {
      deviceFeaturesSel: this.#deviceFeaturesSel,
      driverFeaturesSel: this.#driverFeaturesSel,
      queueSel: this.#queueSel,
      guestPageSize: this.#guestPageSize,
      queueAlign: [
        ...this.#queueAlign
      ],
      queuePfn: [
        ...this.#queuePfn
      ],
      device: this.device.save()
    };
  }
  /**
   * Validates a saved transport state (untrusted), pure: its registers, then the device
   * core's part against `spec` and `ram` (see `bus/persist.ts`).
   */
  static check(s, spec, ram) {
    const r = checkMmioRegisters(s, spec.queueMaxSizes.length);
    return {
      deviceFeaturesSel: r.dfs,
      driverFeaturesSel: r.drs,
      queueSel: r.qs,
      guestPageSize: r.gps,
      queueAlign: [
        ...r.qa
      ],
      queuePfn: [
        ...r.qp
      ],
      device: checkVirtioState(s.device, spec, ram)
    };
  }
  /** Restores {@link save} output (untrusted: validated). */
  restore(s) {
    const next = checkMmioRegisters(s, this.device.queues.length);
    this.device.restore(s.device);
    this.#deviceFeaturesSel = next.dfs;
    this.#driverFeaturesSel = next.drs;
    this.#queueSel = next.qs;
    this.#guestPageSize = next.gps;
    this.#queueAlign = next.qa;
    this.#queuePfn = next.qp;
    this.rebind();
  }
};
function checkMmioRegisters(s, queueCount) {
  if (typeof s !== "object" || s === null) {
    throw new RangeError("Cannot restore virtio-mmio transport: no state");
  }
  const m = s;
  const u323 = (v, n) => {
    if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 4294967295) {
      throw new RangeError(`Cannot restore virtio-mmio transport: ${n} is not a u32`);
    }
    return v;
  };
  const pairs = (v, n) => {
    if (!Array.isArray(v) || v.length > queueCount) {
      throw new RangeError(`Cannot restore virtio-mmio transport: bad ${n}`);
    }
    return new Map(v.map((p) => [
      u323(p?.[0], n),
      u323(p?.[1], n)
    ]));
  };
  return {
    dfs: u323(m.deviceFeaturesSel, "deviceFeaturesSel"),
    drs: u323(m.driverFeaturesSel, "driverFeaturesSel"),
    qs: u323(m.queueSel, "queueSel"),
    gps: u323(m.guestPageSize, "guestPageSize"),
    qa: pairs(m.queueAlign, "queueAlign"),
    qp: pairs(m.queuePfn, "queuePfn")
  };
}

// vmm/snapshot_state.ts
init_config();

// virtio/serve.ts
function serveQueue(ctx, index, serve, scratch, endPass) {
  const q = ctx.queues[index];
  let used = false, left = q.size, capped = false;
  for (; ; ) {
    q.disableNotification(ctx.mem);
    while (ctx.canProcess()) {
      if (left === 0) {
        capped = true;
        break;
      }
      const chain = scratch ? q.popInto(ctx.mem, scratch) ? scratch : null : q.pop(ctx.mem);
      if (!chain) break;
      left--;
      const len = serve(chain);
      if (len !== void 0) {
        q.addUsed(ctx.mem, chain.head, len);
        used = true;
      }
    }
    if (endPass?.()) used = true;
    if (capped || !ctx.canProcess() || !q.enableNotification(ctx.mem)) break;
  }
  if (used) ctx.signalUsed(index);
  if (capped) ctx.requeue(index);
}

// devices/block.ts
var BLK_F = {
  SIZE_MAX: 1n,
  SEG_MAX: 2n,
  RO: 5n,
  BLK_SIZE: 6n,
  FLUSH: 9n,
  DISCARD: 13n,
  WRITE_ZEROES: 14n
};
var BLK_T = {
  IN: 0,
  OUT: 1,
  FLUSH: 4,
  GET_ID: 8,
  DISCARD: 11,
  WRITE_ZEROES: 13
};
var BLK_S = {
  OK: 0,
  IOERR: 1,
  UNSUPP: 2
};
var MERGE_MAX_BYTES = 1 << 20;
var MERGE_MAX_SEGMENTS = 256;
var SECTOR = 512;
var HEADER2 = 16;
var ID_BYTES = 20;
var SEGMENT = 16;
var MAX_DISCARD_SECTORS = 4194303;
var MAX_DISCARD_SEGMENTS = 16;
var CONFIG_SIZE = 60;
var DeviceFault = class extends Error {
};
var RequestError = class extends Error {
  status;
  constructor(status, message) {
    super(message), this.status = status;
  }
};
var BlockDevice = class {
  deviceType = DEVICE_ID.BLOCK;
  queueMaxSizes;
  features;
  configSize = CONFIG_SIZE;
  disk;
  /** Capacity in 512-byte sectors. */
  capacity;
  #config = new Uint8Array(CONFIG_SIZE);
  #id;
  #ctx;
  #inflight = 0;
  #epoch = 0;
  /** Each chain taken from the queue is filled into this one (no allocation per request). */
  #scratch = new ScratchChain();
  /**
   * The merge: reads (or writes) for adjacent sectors taken in this pass over the queue, not
   * yet moved. Its requests, its data buffers in order, their total and where it starts on
   * the disk; the objects in the arrays are reused from one merge to the next.
   */
  #merged = [];
  #mergedCount = 0;
  #mergedBufs = [];
  #bufPool = [];
  #mergedLen = 0;
  #mergedOffset = 0;
  #mergedWrite = false;
  /** Used entries were added by a merge since the end of the last pass. */
  #mergedUsed = false;
  #onError;
  /** Completed requests by type, for tests and stats. */
  stats = {
    requests: 0,
    errors: 0,
    bytesRead: 0,
    bytesWritten: 0
  };
  constructor(disk, opts = {}) {
    if (disk.size % SECTOR) {
      throw new RangeError(`Cannot use disk: ${disk.size} bytes is not a multiple of 512`);
    }
    this.disk = disk;
    this.capacity = disk.size / SECTOR;
    const qs = opts.queueSize ?? 256;
    this.queueMaxSizes = [
      qs
    ];
    this.#onError = opts.onError ?? (() => {
    });
    this.#id = new TextEncoder().encode((opts.id ?? "denovm-disk").slice(0, ID_BYTES));
    let f = bit(F.EVENT_IDX) | bit(F.INDIRECT_DESC) | bit(BLK_F.SEG_MAX) | bit(BLK_F.BLK_SIZE) | bit(BLK_F.FLUSH);
    if (disk.readOnly) f |= bit(BLK_F.RO);
    else f |= bit(BLK_F.DISCARD) | bit(BLK_F.WRITE_ZEROES);
    this.features = f;
    const v = new DataView(this.#config.buffer);
    v.setBigUint64(0, BigInt(this.capacity), true);
    v.setUint32(12, qs - 2, true);
    v.setUint32(20, SECTOR, true);
    v.setUint16(34, 1, true);
    v.setUint32(36, MAX_DISCARD_SECTORS, true);
    v.setUint32(40, MAX_DISCARD_SEGMENTS, true);
    v.setUint32(44, 1, true);
    v.setUint32(48, MAX_DISCARD_SECTORS, true);
    v.setUint32(52, MAX_DISCARD_SEGMENTS, true);
  }
  readConfig(offset, data) {
    data.set(this.#config.subarray(offset, offset + data.byteLength));
  }
  writeConfig() {
  }
  activate(ctx) {
    this.#ctx = ctx;
  }
  reset() {
    this.#epoch++;
    this.#inflight = 0;
    this.#ctx = void 0;
    this.#dropMerge();
    this.#mergedUsed = false;
  }
  inflight() {
    return this.#inflight;
  }
  processQueue(index) {
    const ctx = this.#ctx;
    if (!ctx) return;
    try {
      serveQueue(ctx, index, (chain) => this.#start(ctx, index, chain), this.#scratch, () => this.#endPass(ctx, index));
    } finally {
      if ((this.#mergedCount > 0 || this.#mergedUsed) && this.#endPass(ctx, index)) {
        ctx.signalUsed(index);
      }
    }
  }
  /** The end of a pass over the queue: moves the merge; whether used entries were added. */
  #endPass(ctx, index) {
    this.#flushMerge(ctx, index);
    const used = this.#mergedUsed;
    this.#mergedUsed = false;
    return used;
  }
  /**
   * Starts one request. When it is already done (a bad request, or data the disk moved before
   * returning) its status byte is written and the used length returned for the queue loop to
   * publish; otherwise undefined: it joined the merge, which returns it at the end of the
   * pass, or {@link #finish} returns it when its I/O ends.
   */
  #start(ctx, index, chain) {
    let r;
    try {
      r = this.#serve(ctx, index, chain);
    } catch (e) {
      if (e instanceof DeviceFault) throw e;
      return this.#complete(ctx, chain, this.#failure(e), 0);
    }
    if (r === null) return void 0;
    if (typeof r === "number") return this.#complete(ctx, chain, BLK_S.OK, r);
    this.#await(ctx, index, chain.head, chain.error ? void 0 : statusByte(chain), r);
    return void 0;
  }
  /** Returns request `head` (status byte at `at`) when `pending` settles. */
  #await(ctx, index, head, at, pending) {
    const epoch = this.#epoch;
    this.#inflight++;
    pending.then((len) => this.#finish(ctx, index, head, at, epoch, BLK_S.OK, len), (e) => this.#finish(ctx, index, head, at, epoch, this.#failure(e), 0));
  }
  /** Counts and reports a failed request; its status. */
  #failure(e) {
    this.stats.errors++;
    this.#onError(`virtio-blk request failed: ${e instanceof Error ? e.message : String(e)}`);
    return e instanceof RequestError ? e.status : BLK_S.IOERR;
  }
  /** Writes a finished request's status byte; the length to put in the used ring. */
  #complete(ctx, chain, status, dataLen) {
    return this.#completeAt(ctx, chain.error ? void 0 : statusByte(chain), status, dataLen);
  }
  /** Writes `status` at `at` (nowhere when undefined); the length to put in the used ring. */
  #completeAt(ctx, at, status, dataLen) {
    this.stats.requests++;
    if (at === void 0) return 0;
    ctx.mem.writeU8(at, status);
    return dataLen + 1;
  }
  /** Returns a request that finished later to the driver (unless the device was reset since). */
  #finish(ctx, index, head, at, epoch, status, dataLen) {
    if (epoch !== this.#epoch) return;
    this.#inflight--;
    ctx.guard(`virtio-blk queue ${index}`, () => {
      const len = this.#completeAt(ctx, at, status, dataLen);
      ctx.queues[index].addUsed(ctx.mem, head, len);
      ctx.signalUsed(index);
    });
  }
  /**
   * Serves one request: the data bytes written to the guest, at once or as a promise, or null
   * when it joined the merge. Reads and writes finish before returning when the disk can do
   * them at once; a bad request throws. Any other request moves the merge first, so requests
   * start in the order the driver made them available.
   */
  #serve(ctx, index, chain) {
    if (chain.error) throw new RequestError(BLK_S.IOERR, `malformed chain: ${chain.error}`);
    if (chain.writableLen < 1) throw new RequestError(BLK_S.IOERR, "no status byte");
    if (chain.readableLen < HEADER2) throw new RequestError(BLK_S.IOERR, "request header too short");
    const mem = ctx.mem, first = chain.readable[0];
    let type, sector;
    if (first.len >= HEADER2) {
      type = mem.readU32(first.addr);
      sector = mem.readU64Number(first.addr + 8);
    } else {
      const h = new DataView(new ChainReader(mem, chain).read(HEADER2).buffer);
      type = h.getUint32(0, true);
      sector = Number(h.getBigUint64(8, true));
    }
    const inLen = chain.writableLen - 1;
    const outLen = chain.readableLen - HEADER2;
    if (type === BLK_T.IN) {
      const off = this.#range(sector, inLen);
      if (this.#merge(ctx, index, chain, chain.writable, 0, inLen, off, false)) return null;
      return this.#move(mem, chain.writable, 0, inLen, off, false);
    }
    if (type === BLK_T.OUT) {
      if (this.disk.readOnly) throw new RequestError(BLK_S.IOERR, "write to a read-only disk");
      const off = this.#range(sector, outLen);
      if (this.#merge(ctx, index, chain, chain.readable, HEADER2, outLen, off, true)) return null;
      return this.#move(mem, chain.readable, HEADER2, outLen, off, true);
    }
    this.#flushMerge(ctx, index);
    return this.#serveOther(ctx, copyChain(chain), type, inLen, outLen);
  }
  /**
   * Adds a read or write of [skip, skip+len) of `bufs` at disk offset `off` to the merge when
   * the disk can take merged transfers: true when it joined. One that cannot follow the merge
   * (the other direction, not adjacent, past the limits) moves the merge first; one that
   * cannot join any (empty, or larger than a merge) is served on its own (false).
   */
  #merge(ctx, index, chain, bufs, skip, len, off, write) {
    if (this.disk.transferGuestNow === void 0) return false;
    let pieces = 0;
    for (let i = 0, pos = 0; i < bufs.length && pos < skip + len; i++) {
      const b = bufs[i];
      if (pos + b.len > skip) pieces++;
      pos += b.len;
    }
    const fits = len > 0 && len <= MERGE_MAX_BYTES && pieces <= MERGE_MAX_SEGMENTS;
    if (this.#mergedCount > 0 && (!fits || write !== this.#mergedWrite || off !== this.#mergedOffset + this.#mergedLen || this.#mergedLen + len > MERGE_MAX_BYTES || this.#mergedBufs.length + pieces > MERGE_MAX_SEGMENTS)) {
      this.#flushMerge(ctx, index);
    }
    if (!fits) return false;
    if (this.#mergedCount === 0) {
      this.#mergedWrite = write;
      this.#mergedOffset = off;
    }
    const out = this.#mergedBufs, pool2 = this.#bufPool, end = skip + len;
    for (let i = 0, pos = 0; i < bufs.length && pos < end; i++) {
      const b = bufs[i];
      const from = Math.max(skip, pos), to = Math.min(end, pos + b.len);
      pos += b.len;
      if (to <= from) continue;
      const k = out.length;
      const piece = pool2[k] ?? (pool2[k] = {
        addr: 0,
        len: 0
      });
      piece.addr = b.addr + (from - (pos - b.len));
      piece.len = to - from;
      out.push(piece);
    }
    const n = this.#mergedCount++;
    const m = this.#merged[n] ?? (this.#merged[n] = {
      head: 0,
      at: void 0,
      len: 0,
      end: 0
    });
    m.head = chain.head;
    m.at = statusByte(chain);
    m.len = len;
    m.end = out.length;
    this.#mergedLen += len;
    return true;
  }
  /**
   * Moves the merge with one {@link DiskImage.transferGuestNow} call and returns its requests
   * (status OK); a request the call did not move in full is served on its own, as if it had
   * not been merged (a read or write of the same data again is harmless).
   */
  #flushMerge(ctx, index) {
    const count = this.#mergedCount;
    if (count === 0) return;
    try {
      this.#moveMerge(ctx, index, count);
    } catch (e) {
      throw e instanceof DeviceFault ? e : new DeviceFault(e instanceof Error ? e.message : String(e));
    } finally {
      this.#dropMerge();
    }
  }
  #moveMerge(ctx, index, count) {
    const mem = ctx.mem, q = ctx.queues[index], write = this.#mergedWrite;
    const bufs = this.#mergedBufs, offset = this.#mergedOffset;
    let moved = 0;
    try {
      moved = this.disk.transferGuestNow(mem, bufs, this.#mergedLen, offset, write);
    } catch {
      moved = 0;
    }
    let pos = 0, first = 0;
    for (let i = 0; i < count; i++) {
      const m = this.#merged[i];
      if (pos + m.len <= moved) {
        q.addUsed(mem, m.head, this.#completeAt(ctx, m.at, BLK_S.OK, this.#moved(write, m.len)));
        this.#mergedUsed = true;
      } else {
        const own = bufs.slice(first, m.end).map((b) => ({
          addr: b.addr,
          len: b.len
        }));
        let r, status = BLK_S.OK;
        try {
          r = this.#move(mem, own, 0, m.len, offset + pos, write);
        } catch (e) {
          status = this.#failure(e);
          r = 0;
        }
        if (typeof r === "number") {
          q.addUsed(mem, m.head, this.#completeAt(ctx, m.at, status, r));
          this.#mergedUsed = true;
        } else this.#await(ctx, index, m.head, m.at, r);
      }
      pos += m.len;
      first = m.end;
    }
  }
  /** Empties the merge (its objects kept for the next). */
  #dropMerge() {
    this.#mergedCount = 0;
    this.#mergedLen = 0;
    emptyArray(this.#mergedBufs);
  }
  /**
   * Moves [skip, skip+len) of the guest buffers `bufs` from the disk at `off` (or to it with
   * `write`): the data bytes written to the guest, at once or as a promise.
   */
  #move(mem, bufs, skip, len, off, write) {
    const disk = this.disk;
    const pending = disk.transferGuest ? disk.transferGuest(mem, bufs, skip, len, off, write) : this.#transfer(bufferViews(mem, bufs, skip, len), off, write);
    if (pending === void 0) return this.#moved(write, len);
    return pending.then(() => this.#moved(write, len));
  }
  #moved(write, len) {
    if (write) {
      this.stats.bytesWritten += len;
      return 0;
    }
    this.stats.bytesRead += len;
    return len;
  }
  /** FLUSH, GET_ID, DISCARD, WRITE_ZEROES and unknown types. */
  async #serveOther(ctx, chain, type, inLen, outLen) {
    switch (type) {
      case BLK_T.FLUSH:
        await this.disk.flush();
        return 0;
      case BLK_T.GET_ID: {
        const n = Math.min(ID_BYTES, inLen);
        const id = new Uint8Array(ID_BYTES);
        id.set(this.#id);
        let done = 0;
        for (const v of bufferViews(ctx.mem, chain.writable, 0, n)) {
          v.set(id.subarray(done, done + v.byteLength));
          done += v.byteLength;
        }
        return n;
      }
      case BLK_T.DISCARD:
      case BLK_T.WRITE_ZEROES: {
        const discard = type === BLK_T.DISCARD;
        if (this.disk.readOnly) throw new RequestError(BLK_S.IOERR, "discard on a read-only disk");
        if (outLen === 0 || outLen % SEGMENT || outLen / SEGMENT > MAX_DISCARD_SEGMENTS) {
          throw new RequestError(BLK_S.UNSUPP, `bad discard/write-zeroes payload of ${outLen} bytes`);
        }
        const r = new ChainReader(ctx.mem, chain);
        r.skip(HEADER2);
        const segs = [];
        for (let i = 0; i < outLen / SEGMENT; i++) {
          const s = new DataView(r.read(SEGMENT).buffer);
          const start = Number(s.getBigUint64(0, true));
          const count = s.getUint32(8, true), flags = s.getUint32(12, true);
          if (discard && flags !== 0 || (flags & ~1) !== 0) {
            throw new RequestError(BLK_S.UNSUPP, `unsupported segment flags 0x${flags.toString(16)}`);
          }
          if (count > MAX_DISCARD_SECTORS) throw new RequestError(BLK_S.IOERR, "segment too large");
          segs.push({
            off: this.#range(start, count * SECTOR),
            len: count * SECTOR
          });
        }
        for (const s of segs) {
          if (discard) await this.disk.discard(s.off, s.len);
          else await this.disk.writeZeroes(s.off, s.len);
        }
        return 0;
      }
      default:
        throw new RequestError(BLK_S.UNSUPP, `unsupported request type ${type}`);
    }
  }
  /**
   * Reads the disk into (or writes it from) the guest views, in order from `off`, for a disk
   * without {@link DiskImage.transferGuest}: one vectored call where the disk has one and there are
   * several pieces.
   */
  async #transfer(views2, off, write) {
    const vectored = write ? this.disk.writev : this.disk.readv;
    if (vectored && views2.length > 1) {
      await vectored.call(this.disk, views2, off);
      return;
    }
    let pos = off;
    for (const view2 of views2) {
      await (write ? this.disk.write(view2, pos) : this.disk.read(view2, pos));
      pos += view2.byteLength;
    }
  }
  /** The byte offset of `sector`, after checking [sector, +len) is whole sectors on the disk. */
  #range(sector, len) {
    if (len % SECTOR) throw new RequestError(BLK_S.IOERR, `length ${len} is not a multiple of 512`);
    if (!Number.isSafeInteger(sector) || sector > this.capacity || len / SECTOR > this.capacity - sector) {
      throw new RequestError(BLK_S.IOERR, `sectors ${sector}+${len / SECTOR} beyond the disk (${this.capacity})`);
    }
    return sector * SECTOR;
  }
};
function statusByte(chain) {
  for (let i = chain.writable.length - 1; i >= 0; i--) {
    const b = chain.writable[i];
    if (b.len > 0) return b.addr + b.len - 1;
  }
  return void 0;
}

// devices/console.ts
var CONSOLE_F = {
  SIZE: 0n,
  MULTIPORT: 1n,
  EMERG_WRITE: 2n
};
var RX = 0;
var TX = 1;
var CONSOLE_MAX_PENDING = 1 << 20;
var CONSOLE_TX_PIECE = 1 << 16;
var ConsoleDevice = class _ConsoleDevice {
  deviceType = DEVICE_ID.CONSOLE;
  queueMaxSizes;
  features = bit(F.EVENT_IDX) | bit(F.INDIRECT_DESC) | bit(CONSOLE_F.SIZE) | bit(CONSOLE_F.EMERG_WRITE);
  configSize = 12;
  #config = new Uint8Array(12);
  #ctx;
  #pending = [];
  #pendingBytes = 0;
  #output;
  /** A one-port console, `cols`×`rows` (default 80×25); guest output goes to `opts.output`. */
  constructor(opts) {
    this.#output = opts.output;
    const qs = opts.queueSize ?? 256;
    this.queueMaxSizes = [
      qs,
      qs
    ];
    const v = new DataView(this.#config.buffer);
    v.setUint16(0, opts.cols ?? 80, true);
    v.setUint16(2, opts.rows ?? 25, true);
    v.setUint32(4, 1, true);
  }
  /** Bytes of host input waiting for receive buffers. */
  get pendingInput() {
    return this.#pendingBytes;
  }
  /** Reads `virtio_console_config`: cols, rows, max_nr_ports (1), emerg_wr. */
  readConfig(offset, data) {
    data.set(this.#config.subarray(offset, offset + data.byteLength));
  }
  /** A write to `emerg_wr` (offset 8), once negotiated, prints its character; others do nothing. */
  writeConfig(offset, data) {
    if (offset === 8 && this.#ctx && this.#ctx.features & bit(CONSOLE_F.EMERG_WRITE)) {
      this.#output(data.slice(0, 1));
    }
  }
  /** The console size changed: new config and a config interrupt. */
  resize(cols, rows) {
    const v = new DataView(this.#config.buffer);
    v.setUint16(0, cols, true);
    v.setUint16(2, rows, true);
    this.#ctx?.configChanged();
  }
  activate(ctx) {
    this.#ctx = ctx;
    this.#fill();
  }
  reset() {
    this.#ctx = void 0;
  }
  /**
   * Queues host input for the guest; returns how many bytes were accepted (fewer once
   * {@link CONSOLE_MAX_PENDING} bytes wait: stop reading the source until they drain).
   */
  input(bytes2) {
    const n = Math.min(bytes2.byteLength, CONSOLE_MAX_PENDING - this.#pendingBytes);
    if (n > 0) {
      this.#pending.push(bytes2.slice(0, n));
      this.#pendingBytes += n;
      this.#fill();
    }
    return n;
  }
  processQueue(index) {
    if (index === RX) return this.#fill();
    if (index === TX) this.#transmit();
  }
  #transmit() {
    const ctx = this.#ctx;
    if (!ctx) return;
    serveQueue(ctx, TX, (chain) => {
      if (chain.error || chain.readableLen === 0) return 0;
      const r = new ChainReader(ctx.mem, chain);
      while (r.remaining > 0) this.#output(r.read(Math.min(r.remaining, CONSOLE_TX_PIECE)));
      return 0;
    });
  }
  /** Moves pending input into the receive buffers the guest has posted. */
  #fill() {
    this.#ctx?.guard("console receive queue", () => this.#fillRx());
  }
  #fillRx() {
    const ctx = this.#ctx;
    if (!ctx || !ctx.canProcess() || this.#pendingBytes === 0) return;
    const q = ctx.queues[RX];
    if (!q.ready) return;
    let used = false;
    for (; ; ) {
      while (this.#pendingBytes > 0) {
        const chain = q.pop(ctx.mem);
        if (!chain) break;
        const w = new ChainWriter(ctx.mem, chain);
        if (!chain.error) {
          while (w.remaining > 0 && this.#pending.length) {
            const head = this.#pending[0];
            const n = Math.min(head.byteLength, w.remaining);
            w.write(head.subarray(0, n));
            this.#pendingBytes -= n;
            if (n === head.byteLength) this.#pending.shift();
            else this.#pending[0] = head.subarray(n);
          }
        }
        q.addUsed(ctx.mem, chain.head, w.written);
        used = true;
      }
      if (this.#pendingBytes === 0 || !q.enableNotification(ctx.mem)) break;
    }
    if (used) ctx.signalUsed(RX);
  }
  /** The size and the pending input. */
  save() {
    const v = new DataView(this.#config.buffer);
    const pending = new Uint8Array(this.#pendingBytes);
    let o = 0;
    for (const p of this.#pending) {
      pending.set(p, o);
      o += p.byteLength;
    }
    return {
      cols: v.getUint16(0, true),
      rows: v.getUint16(2, true),
      pending
    };
  }
  /** Validates a saved state (untrusted), pure; see `bus/persist.ts`. */
  static check(x) {
    const s = x;
    const u16 = (v) => typeof v === "number" && Number.isInteger(v) && v >= 0 && v <= 65535;
    if (typeof s !== "object" || s === null || !u16(s.cols) || !u16(s.rows) || !(s.pending instanceof Uint8Array) || s.pending.byteLength > CONSOLE_MAX_PENDING) throw new RangeError("Cannot restore virtio-console: bad state");
    return {
      cols: s.cols,
      rows: s.rows,
      pending: s.pending.slice()
    };
  }
  /** Applies a saved state ({@link ConsoleDevice.check} first). */
  restore(saved) {
    const s = _ConsoleDevice.check(saved);
    const v = new DataView(this.#config.buffer);
    v.setUint16(0, s.cols, true);
    v.setUint16(2, s.rows, true);
    this.#pending = s.pending.byteLength ? [
      s.pending
    ] : [];
    this.#pendingBytes = s.pending.byteLength;
  }
};

// boot/aml.ts
var AML = {
  ZERO: 0,
  ONE: 1,
  NAME: 8,
  BYTE: 10,
  WORD: 11,
  DWORD: 12,
  STRING: 13,
  QWORD: 14,
  SCOPE: 16,
  BUFFER: 17,
  PACKAGE: 18,
  METHOD: 20,
  DUAL_NAME: 46,
  MULTI_NAME: 47,
  EXT: 91,
  DEVICE: 130,
  ARG0: 104,
  NOTIFY: 134,
  LEQUAL: 147,
  IF: 160,
  ROOT: 92,
  PARENT: 94,
  RETURN: 164,
  ONES: 255
};
var concat = (parts) => Uint8Array.from(parts.flatMap((p) => [
  ...p
]));
function pkgLength(len) {
  for (let n = 1; n <= 4; n++) {
    const total = len + n;
    if (n === 1 && total < 64) return new Uint8Array([
      total
    ]);
    if (n > 1 && total < 1 << 4 + 8 * (n - 1)) {
      const b = new Uint8Array(n);
      b[0] = n - 1 << 6 | total & 15;
      for (let i = 1; i < n; i++) b[i] = total >> 4 + 8 * (i - 1) & 255;
      return b;
    }
  }
  throw new RangeError(`Cannot encode AML package length ${len}: over 2^28`);
}
function nameSeg(seg) {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(seg)) {
    throw new RangeError(`Cannot encode AML name segment ${JSON.stringify(seg)}`);
  }
  return new TextEncoder().encode(seg.padEnd(4, "_"));
}
function nameString(path) {
  let i = 0;
  const prefix = [];
  if (path.startsWith("\\")) {
    prefix.push(AML.ROOT);
    i = 1;
  } else {
    while (path[i] === "^") {
      prefix.push(AML.PARENT);
      i++;
    }
  }
  const segs = path.slice(i).split(".").filter((s) => s.length > 0).map(nameSeg);
  const head = segs.length === 0 ? [
    AML.ZERO
  ] : segs.length === 1 ? [] : segs.length === 2 ? [
    AML.DUAL_NAME
  ] : [
    AML.MULTI_NAME,
    segs.length
  ];
  return concat([
    new Uint8Array([
      ...prefix,
      ...head
    ]),
    ...segs
  ]);
}
function integer(v) {
  const n = BigInt(v);
  if (n < 0n || n >= 1n << 64n) throw new RangeError(`Cannot encode AML integer ${v}`);
  if (n === 0n) return new Uint8Array([
    AML.ZERO
  ]);
  if (n === 1n) return new Uint8Array([
    AML.ONE
  ]);
  if (n === (1n << 64n) - 1n) return new Uint8Array([
    AML.ONES
  ]);
  const [op, len] = n < 0x100n ? [
    AML.BYTE,
    1
  ] : n < 0x10000n ? [
    AML.WORD,
    2
  ] : n < 0x100000000n ? [
    AML.DWORD,
    4
  ] : [
    AML.QWORD,
    8
  ];
  const b = new Uint8Array(1 + len);
  b[0] = op;
  for (let i = 0; i < len; i++) b[1 + i] = Number(n >> BigInt(8 * i) & 0xffn);
  return b;
}
function string(s) {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 1 || c > 127) throw new RangeError("Cannot encode AML string: not ASCII");
  }
  return concat([
    new Uint8Array([
      AML.STRING
    ]),
    new TextEncoder().encode(s),
    new Uint8Array([
      0
    ])
  ]);
}
function eisaId(id) {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new RangeError(`Cannot encode EISA id ${id}`);
  const c = (i) => id.charCodeAt(i) - 64;
  const hex2 = parseInt(id.slice(3), 16);
  const v = (c(0) << 26 | c(1) << 21 | c(2) << 16 | hex2) >>> 0;
  const swapped = ((v & 255) << 24 | (v & 65280) << 8 | v >>> 8 & 65280 | v >>> 24) >>> 0;
  const b = new Uint8Array(5);
  b[0] = AML.DWORD;
  new DataView(b.buffer).setUint32(1, swapped, true);
  return b;
}
function name(n, value) {
  return concat([
    new Uint8Array([
      AML.NAME
    ]),
    nameString(n),
    value
  ]);
}
function scope(path, terms) {
  const body = concat([
    nameString(path),
    ...terms
  ]);
  return concat([
    new Uint8Array([
      AML.SCOPE
    ]),
    pkgLength(body.byteLength),
    body
  ]);
}
function device(n, terms) {
  const body = concat([
    nameString(n),
    ...terms
  ]);
  return concat([
    new Uint8Array([
      AML.EXT,
      AML.DEVICE
    ]),
    pkgLength(body.byteLength),
    body
  ]);
}
function method(n, args, terms) {
  if (!Number.isInteger(args) || args < 0 || args > 7) {
    throw new RangeError(`Cannot encode AML method with ${args} arguments`);
  }
  const body = concat([
    nameString(n),
    new Uint8Array([
      args
    ]),
    ...terms
  ]);
  return concat([
    new Uint8Array([
      AML.METHOD
    ]),
    pkgLength(body.byteLength),
    body
  ]);
}
function arg(n) {
  if (!Number.isInteger(n) || n < 0 || n > 6) throw new RangeError(`Cannot encode AML Arg${n}`);
  return new Uint8Array([
    AML.ARG0 + n
  ]);
}
function lEqual(a, b) {
  return concat([
    new Uint8Array([
      AML.LEQUAL
    ]),
    a,
    b
  ]);
}
function ifThen(predicate, terms) {
  const body = concat([
    predicate,
    ...terms
  ]);
  return concat([
    new Uint8Array([
      AML.IF
    ]),
    pkgLength(body.byteLength),
    body
  ]);
}
function notify(path, value) {
  return concat([
    new Uint8Array([
      AML.NOTIFY
    ]),
    nameString(path),
    integer(value)
  ]);
}
function pkg(elements) {
  if (elements.length > 255) throw new RangeError("Cannot encode an AML package over 255 elements");
  const body = concat([
    new Uint8Array([
      elements.length
    ]),
    ...elements
  ]);
  return concat([
    new Uint8Array([
      AML.PACKAGE
    ]),
    pkgLength(body.byteLength),
    body
  ]);
}
function buffer(bytes2) {
  const body = concat([
    integer(bytes2.byteLength),
    bytes2
  ]);
  return concat([
    new Uint8Array([
      AML.BUFFER
    ]),
    pkgLength(body.byteLength),
    body
  ]);
}
var resource = {
  /** `IO (Decode16, base, base, 1, len)`. */
  io(base, len) {
    const b = new Uint8Array(8);
    const v = new DataView(b.buffer);
    b[0] = 71;
    b[1] = 1;
    v.setUint16(2, base, true);
    v.setUint16(4, base, true);
    b[6] = 1;
    b[7] = len;
    return b;
  },
  /** `Memory32Fixed (ReadWrite, base, len)`. */
  memory32Fixed(base, len) {
    const b = new Uint8Array(12);
    const v = new DataView(b.buffer);
    b[0] = 134;
    v.setUint16(1, 9, true);
    b[3] = 1;
    v.setUint32(4, base, true);
    v.setUint32(8, len, true);
    return b;
  },
  /** `Interrupt (ResourceConsumer, Edge|Level, ActiveHigh, Exclusive) { gsi }`. */
  interrupt(gsi, level) {
    const b = new Uint8Array(9);
    const v = new DataView(b.buffer);
    b[0] = 137;
    v.setUint16(1, 6, true);
    b[3] = 1 | (level ? 0 : 2);
    b[4] = 1;
    v.setUint32(5, gsi, true);
    return b;
  }
};
function resourceTemplate(descriptors) {
  return buffer(concat([
    ...descriptors,
    new Uint8Array([
      121,
      0
    ])
  ]));
}

// boot/acpi.ts
var ACPI_BASE = 917504;
var SLEEP_CONTROL_PORT = 960;
var SLEEP_STATUS_PORT = 961;
var S5_SLP_TYP = 5;
var SLP_EN = 32;
var SLP_TYP_SHIFT = 2;
var VMGENID_ADDR = 978944;
var VMGENID_SIZE = 16;
var GED_GSI = 23;
var VMGENID_NOTIFY = 128;
var OEM_ID = "DENOVM";
var OEM_TABLE = "DENOVMVM";
function ascii(b, off, s, len) {
  for (let i = 0; i < len; i++) b[off + i] = i < s.length ? s.charCodeAt(i) : 32;
}
function table(sig, revision, body) {
  const b = new Uint8Array(36 + body.byteLength);
  const v = new DataView(b.buffer);
  ascii(b, 0, sig, 4);
  v.setUint32(4, b.byteLength, true);
  b[8] = revision;
  ascii(b, 10, OEM_ID, 6);
  ascii(b, 16, OEM_TABLE, 8);
  v.setUint32(24, 1, true);
  ascii(b, 28, "DNVM", 4);
  v.setUint32(32, 1, true);
  b.set(body, 36);
  b[9] = checksum(b);
  return b;
}
function ioGas(port) {
  const g2 = new Uint8Array(12);
  g2[0] = 1;
  g2[1] = 8;
  g2[3] = 1;
  new DataView(g2.buffer).setBigUint64(4, BigInt(port), true);
  return g2;
}
function fadt(dsdt2) {
  const body = new Uint8Array(276 - 36);
  const v = new DataView(body.buffer);
  const at = (off) => off - 36;
  v.setUint32(at(40), dsdt2, true);
  v.setUint16(at(109), 2 | 4 | 8, true);
  v.setUint32(at(112), 1 << 0 | 1 << 4 | 1 << 5 | 1 << 20, true);
  body[at(131)] = 5;
  v.setBigUint64(at(140), BigInt(dsdt2), true);
  body.set(ioGas(SLEEP_CONTROL_PORT), at(244));
  body.set(ioGas(SLEEP_STATUS_PORT), at(256));
  ascii(body, at(268), "DENOVM", 8);
  return table("FACP", 6, body);
}
function madt(vcpus) {
  const parts = [];
  const head = new Uint8Array(8);
  new DataView(head.buffer).setUint32(0, APIC_ADDR, true);
  new DataView(head.buffer).setUint32(4, 1, true);
  for (let id = 0; id < vcpus; id++) parts.push([
    0,
    8,
    id,
    id,
    1,
    0,
    0,
    0
  ]);
  const io = new Uint8Array(12);
  io.set([
    1,
    12,
    vcpus
  ]);
  new DataView(io.buffer).setUint32(4, IOAPIC_ADDR, true);
  parts.push([
    ...io
  ]);
  const iso = new Uint8Array(10);
  iso.set([
    2,
    10,
    0,
    0
  ]);
  new DataView(iso.buffer).setUint32(4, 2, true);
  parts.push([
    ...iso
  ]);
  parts.push([
    4,
    6,
    255,
    0,
    0,
    1
  ]);
  return table("APIC", 5, new Uint8Array([
    ...head,
    ...parts.flat()
  ]));
}
function dsdt(m) {
  const devices = [
    device("COM1", [
      name("_HID", eisaId("PNP0501")),
      name("_UID", integer(0)),
      name("_CRS", resourceTemplate([
        resource.io(1016, 8),
        resource.interrupt(4, false)
      ]))
    ])
  ];
  if (m.i8042) {
    devices.push(device("PS2K", [
      name("_HID", eisaId("PNP0303")),
      name("_CRS", resourceTemplate([
        resource.io(96, 1),
        resource.io(100, 1),
        resource.interrupt(1, false)
      ]))
    ]));
    devices.push(device("PS2M", [
      name("_HID", eisaId("PNP0F13")),
      name("_CRS", resourceTemplate([
        resource.interrupt(12, false)
      ]))
    ]));
  }
  if (m.rtc) {
    devices.push(device("RTC", [
      name("_HID", eisaId("PNP0B00")),
      name("_CRS", resourceTemplate([
        resource.io(112, 2)
      ]))
    ]));
  }
  m.virtio.forEach((d, i) => {
    devices.push(device(`VR${i.toString(16).toUpperCase().padStart(2, "0")}`, [
      name("_HID", string("LNRO0005")),
      name("_UID", integer(i)),
      name("_CCA", integer(1)),
      name("_CRS", resourceTemplate([
        resource.memory32Fixed(d.base, 4096),
        resource.interrupt(d.gsi, false)
      ]))
    ]));
  });
  if (m.vmgenid) {
    devices.push(device("VGEN", [
      name("_HID", string("DNVM0001")),
      name("_CID", string("VM_GEN_COUNTER")),
      name("_DDN", string("VM_Gen_Counter")),
      // The ID's guest-physical address, low and high 32 bits.
      name("ADDR", pkg([
        integer(VMGENID_ADDR % 2 ** 32),
        integer(Math.floor(VMGENID_ADDR / 2 ** 32))
      ]))
    ]));
    devices.push(device("GED0", [
      name("_HID", string("ACPI0013")),
      name("_UID", integer(0)),
      name("_CRS", resourceTemplate([
        resource.interrupt(GED_GSI, false)
      ])),
      // Linux calls _EVT with the interrupt's GSI.
      method("_EVT", 1, [
        ifThen(lEqual(arg(0), integer(GED_GSI)), [
          notify("\\_SB.VGEN", VMGENID_NOTIFY)
        ])
      ])
    ]));
  }
  const aml = [
    scope("\\_SB", devices),
    name("\\_S5", pkg([
      integer(S5_SLP_TYP),
      integer(0),
      integer(0),
      integer(0)
    ]))
  ];
  const body = new Uint8Array(aml.reduce((n, a) => n + a.byteLength, 0));
  let o = 0;
  for (const a of aml) {
    body.set(a, o);
    o += a.byteLength;
  }
  return table("DSDT", 2, body);
}
function xsdt(tables) {
  const body = new Uint8Array(8 * tables.length);
  tables.forEach((t, i) => new DataView(body.buffer).setBigUint64(8 * i, BigInt(t), true));
  return table("XSDT", 1, body);
}
function rsdp(xsdtAddr) {
  const b = new Uint8Array(36);
  const v = new DataView(b.buffer);
  ascii(b, 0, "RSD PTR ", 8);
  ascii(b, 9, OEM_ID, 6);
  b[15] = 2;
  v.setUint32(20, 36, true);
  v.setBigUint64(24, BigInt(xsdtAddr), true);
  b[8] = checksum(b.subarray(0, 20));
  b[32] = checksum(b);
  return b;
}
function acpiTables(m) {
  const d = dsdt(m), f = fadt(0), a = madt(m.vcpus);
  const align = (x) => Math.ceil(x / 64) * 64;
  const rsdpAt = ACPI_BASE;
  const xsdtAt = align(rsdpAt + 36);
  const fadtAt = align(xsdtAt + 36 + 16);
  const madtAt = align(fadtAt + f.byteLength);
  const dsdtAt = align(madtAt + a.byteLength);
  if (dsdtAt + d.byteLength > VMGENID_ADDR) {
    throw new RangeError(`Cannot place the ACPI tables: the DSDT is ${d.byteLength} bytes`);
  }
  return {
    rsdp: rsdpAt,
    blobs: [
      [
        rsdpAt,
        rsdp(xsdtAt)
      ],
      [
        xsdtAt,
        xsdt([
          fadtAt,
          madtAt
        ])
      ],
      [
        fadtAt,
        fadt(dsdtAt)
      ],
      [
        madtAt,
        a
      ],
      [
        dsdtAt,
        d
      ]
    ]
  };
}

// devices/net.ts
var NET_F = {
  CSUM: 0n,
  GUEST_CSUM: 1n,
  MTU: 3n,
  MAC: 5n,
  GUEST_TSO4: 7n,
  GUEST_TSO6: 8n,
  GUEST_ECN: 9n,
  HOST_TSO4: 11n,
  HOST_TSO6: 12n,
  HOST_ECN: 13n,
  MRG_RXBUF: 15n,
  STATUS: 16n
};
var NET_HDR = 12;
var NET_MAX_FRAME = NET_HDR + 65550;
var RX2 = 0;
var TX2 = 1;
var TUN_CSUM = 1;
var TUN_TSO4 = 2;
var TUN_TSO6 = 4;
var TUN_ECN = 8;
function parseMac(mac) {
  const parts = mac.split(":");
  if (parts.length !== 6 || !parts.every((p) => /^[0-9a-fA-F]{2}$/.test(p))) {
    throw new TypeError(`Cannot use MAC ${JSON.stringify(mac)}: expected six hex bytes like 52:54:00:12:34:56`);
  }
  return new Uint8Array(parts.map((p) => parseInt(p, 16)));
}
var NetDevice = class _NetDevice {
  deviceType = DEVICE_ID.NET;
  queueMaxSizes;
  features;
  configSize = 10;
  stats = {
    rxFrames: 0,
    txFrames: 0,
    rxDropped: 0,
    txDropped: 0
  };
  #config = new Uint8Array(10);
  #backend;
  #ctx;
  #staged = new Uint8Array(NET_MAX_FRAME);
  #stagedLen = 0;
  #txBuf = new Uint8Array(NET_MAX_FRAME);
  constructor(backend, opts) {
    this.#backend = backend;
    const qs = opts.queueSize ?? 256;
    this.queueMaxSizes = [
      qs,
      qs
    ];
    let f = bit(F.EVENT_IDX) | bit(F.INDIRECT_DESC) | bit(NET_F.MAC) | bit(NET_F.STATUS);
    if (opts.offloads ?? true) {
      f |= bit(NET_F.CSUM) | bit(NET_F.GUEST_CSUM) | bit(NET_F.GUEST_TSO4) | bit(NET_F.GUEST_TSO6) | bit(NET_F.GUEST_ECN) | bit(NET_F.HOST_TSO4) | bit(NET_F.HOST_TSO6) | bit(NET_F.HOST_ECN);
    }
    this.features = f;
    this.#config.set(parseMac(opts.mac), 0);
    const v = new DataView(this.#config.buffer);
    v.setUint16(6, 1, true);
    v.setUint16(8, 1, true);
  }
  /** The spec's feature dependencies: a device must refuse a driver that breaks them. */
  acceptFeatures(acked) {
    const has = (b) => (acked & bit(b)) !== 0n;
    if ((has(NET_F.GUEST_TSO4) || has(NET_F.GUEST_TSO6)) && !has(NET_F.GUEST_CSUM)) return false;
    if (has(NET_F.GUEST_ECN) && !(has(NET_F.GUEST_TSO4) || has(NET_F.GUEST_TSO6))) return false;
    if ((has(NET_F.HOST_TSO4) || has(NET_F.HOST_TSO6)) && !has(NET_F.CSUM)) return false;
    if (has(NET_F.HOST_ECN) && !(has(NET_F.HOST_TSO4) || has(NET_F.HOST_TSO6))) return false;
    return true;
  }
  readConfig(offset, data) {
    data.set(this.#config.subarray(offset, offset + data.byteLength));
  }
  writeConfig() {
  }
  activate(ctx) {
    const f = ctx.features;
    let tun = 0;
    if (f & bit(NET_F.GUEST_CSUM)) tun |= TUN_CSUM;
    if (f & bit(NET_F.GUEST_TSO4)) tun |= TUN_TSO4;
    if (f & bit(NET_F.GUEST_TSO6)) tun |= TUN_TSO6;
    if (f & bit(NET_F.GUEST_ECN)) tun |= TUN_ECN;
    this.#backend.setOffload(tun);
    this.#ctx = ctx;
    this.backendReadable();
  }
  reset() {
    this.#ctx = void 0;
  }
  processQueue(index) {
    if (index === RX2) this.backendReadable();
    else if (index === TX2) this.#transmit();
  }
  /** The backend has frames (call from its readiness callback; edge-triggered is fine). */
  backendReadable() {
    this.#ctx?.guard("net receive queue", () => this.#receive());
  }
  #receive() {
    const ctx = this.#ctx;
    if (!ctx || !ctx.canProcess()) return;
    const q = ctx.queues[RX2];
    if (!q.ready) return;
    let used = false;
    for (; ; ) {
      if (this.#stagedLen === 0) {
        this.#stagedLen = this.#backend.read(this.#staged);
        if (this.#stagedLen === 0) break;
      }
      const chain = q.pop(ctx.mem);
      if (!chain) {
        if (q.enableNotification(ctx.mem)) continue;
        break;
      }
      const w = new ChainWriter(ctx.mem, chain);
      if (chain.error || w.remaining < this.#stagedLen) {
        q.addUsed(ctx.mem, chain.head, 0);
        this.stats.rxDropped++;
      } else {
        this.#staged[10] = 1;
        this.#staged[11] = 0;
        w.write(this.#staged.subarray(0, this.#stagedLen));
        q.addUsed(ctx.mem, chain.head, w.written);
        this.stats.rxFrames++;
      }
      this.#stagedLen = 0;
      used = true;
    }
    if (used) ctx.signalUsed(RX2);
  }
  #transmit() {
    const ctx = this.#ctx;
    if (!ctx) return;
    serveQueue(ctx, TX2, (chain) => {
      const len = chain.readableLen;
      if (chain.error || len < NET_HDR || len > NET_MAX_FRAME) {
        this.stats.txDropped++;
      } else {
        const frame2 = this.#txBuf.subarray(0, len);
        new ChainReader(ctx.mem, chain).readInto(frame2);
        if (this.#backend.write(frame2)) this.stats.txFrames++;
        else this.stats.txDropped++;
      }
      return 0;
    });
  }
  /** The MAC and the frame read from the TAP but not yet delivered. */
  save() {
    return {
      mac: this.#config.slice(0, 6),
      staged: this.#staged.slice(0, this.#stagedLen)
    };
  }
  /** Validates a saved state (untrusted), pure; see `bus/persist.ts`. */
  static check(x) {
    const s = x;
    if (typeof s !== "object" || s === null || !(s.mac instanceof Uint8Array) || s.mac.byteLength !== 6) {
      throw new RangeError("Cannot restore virtio-net: bad MAC");
    }
    if (!(s.staged instanceof Uint8Array) || s.staged.byteLength > NET_MAX_FRAME) {
      throw new RangeError("Cannot restore virtio-net: bad staged frame");
    }
    return {
      mac: s.mac.slice(),
      staged: s.staged.slice()
    };
  }
  /** Applies a saved state ({@link NetDevice.check} first; the MAC must be this device's). */
  restore(saved) {
    const s = _NetDevice.check(saved);
    if (!s.mac.every((b, i) => b === this.#config[i])) {
      throw new RangeError("Cannot restore virtio-net: the saved MAC differs from this device's");
    }
    this.#staged.set(s.staged);
    this.#stagedLen = s.staged.byteLength;
  }
};

// devices/rng.ts
var RNG_MAX_PER_REQUEST = 65536;
var RngDevice = class {
  deviceType = DEVICE_ID.RNG;
  queueMaxSizes;
  features = bit(F.EVENT_IDX) | bit(F.INDIRECT_DESC);
  configSize = 0;
  /** Bytes of entropy handed to the guest so far. */
  bytesServed = 0;
  #ctx;
  #chunk = new Uint8Array(RNG_MAX_PER_REQUEST);
  constructor(opts = {}) {
    this.queueMaxSizes = [
      opts.queueSize ?? 256
    ];
  }
  readConfig() {
  }
  writeConfig() {
  }
  activate(ctx) {
    this.#ctx = ctx;
  }
  processQueue(index) {
    const ctx = this.#ctx;
    if (!ctx) return;
    serveQueue(ctx, index, (chain) => {
      if (chain.error) return 0;
      const w = new ChainWriter(ctx.mem, chain);
      const len = Math.min(w.remaining, RNG_MAX_PER_REQUEST);
      w.write(crypto.getRandomValues(this.#chunk.subarray(0, len)));
      this.bytesServed += len;
      return len;
    });
  }
  reset() {
    this.#ctx = void 0;
  }
};

// memory/guest_memory.ts
var GuestMemoryError = class extends RangeError {
  /** The first address of the access. */
  addr;
  /** The access length in bytes. */
  len;
  /** The error for an access of `len` bytes at guest-physical `addr`. */
  constructor(addr, len) {
    super(`Cannot access guest memory: 0x${addr.toString(16)}+${len} is outside guest RAM`);
    this.name = "GuestMemoryError";
    this.addr = addr;
    this.len = len;
  }
};
var GuestMemory = class _GuestMemory {
  #slots;
  #last;
  /** Wraps regions (sorted by address, non-overlapping, non-empty). */
  constructor(regions) {
    if (regions.length === 0) throw new RangeError("Cannot create guest memory: no regions");
    const slots = regions.map((r) => ({
      gpa: r.gpa,
      end: r.gpa + r.bytes.byteLength,
      bytes: r.bytes,
      dv: new DataView(r.bytes.buffer, r.bytes.byteOffset, r.bytes.byteLength),
      u16: void 0,
      dirty: void 0,
      host: void 0
    })).sort((a, b) => a.gpa - b.gpa);
    for (let i = 0; i < slots.length; i++) {
      const s = slots[i];
      if (!Number.isSafeInteger(s.gpa) || s.gpa < 0 || s.end === s.gpa) {
        throw new RangeError(`Cannot create guest memory: bad region at 0x${s.gpa.toString(16)}`);
      }
      const prev = slots[i - 1];
      if (prev && prev.end > s.gpa) {
        throw new RangeError(`Cannot create guest memory: regions at 0x${prev.gpa.toString(16)} and 0x${s.gpa.toString(16)} overlap`);
      }
    }
    this.#slots = slots;
    this.#last = slots[0];
  }
  /** Guest memory backed by fresh zeroed `ArrayBuffer`s (for tests and tools). */
  static allocate(layout) {
    return new _GuestMemory(layout.map((l) => ({
      gpa: l.gpa,
      bytes: new Uint8Array(l.size)
    })));
  }
  /** The regions, in address order. */
  get regions() {
    return this.#slots.map((s) => ({
      gpa: s.gpa,
      bytes: s.bytes
    }));
  }
  /** Total bytes of RAM over all regions. */
  get totalSize() {
    return this.#slots.reduce((n, s) => n + s.bytes.byteLength, 0);
  }
  /** One past the highest guest-physical address backed by RAM. */
  get end() {
    return this.#slots[this.#slots.length - 1].end;
  }
  /** The slot holding [addr, addr+len), or undefined when the range is not in one region. */
  #find(addr, len) {
    const l = this.#last;
    if (addr >= l.gpa && len <= l.end - addr) return l;
    for (const s of this.#slots) {
      if (addr >= s.gpa && addr < s.end && len <= s.end - addr) {
        this.#last = s;
        return s;
      }
    }
    return void 0;
  }
  #slot(addr, len) {
    const s = typeof addr === "number" && addr >= 0 ? this.#find(addr, len) : void 0;
    if (s === void 0) throw new GuestMemoryError(addr, len);
    return s;
  }
  /**
   * Starts (or stops) recording which pages are written through this object (device
   * writes, which KVM's dirty log does not see). Zero-copy slices count as written.
   */
  trackDirty(on) {
    for (const s of this.#slots) {
      s.dirty = on ? new Uint8Array(Math.ceil(s.bytes.byteLength / 4096 / 8)) : void 0;
    }
  }
  /** The dirty-page bitmaps per region (bit i = page i), cleared by the call. */
  takeDirty() {
    return this.#slots.map((s) => {
      const d = s.dirty ?? new Uint8Array(Math.ceil(s.bytes.byteLength / 4096 / 8));
      if (s.dirty) s.dirty = new Uint8Array(d.byteLength);
      return d;
    });
  }
  #mark(s, addr, len) {
    const d = s.dirty;
    if (d === void 0 || len === 0) return;
    const first = addr - s.gpa >>> 12, last = addr - s.gpa + len - 1 >>> 12;
    for (let p = first; p <= last; p++) d[p >>> 3] |= 1 << (p & 7);
  }
  /** Whether the whole range [addr, addr+len) lies in one region. */
  contains(addr, len) {
    return Number.isSafeInteger(addr) && addr >= 0 && Number.isSafeInteger(len) && len >= 0 && this.#find(addr, len) !== void 0;
  }
  /** The byte at `addr`. */
  readU8(addr) {
    const s = this.#slot(addr, 1);
    return s.dv.getUint8(addr - s.gpa);
  }
  /** A little-endian u16. */
  readU16(addr) {
    const s = this.#slot(addr, 2);
    return s.dv.getUint16(addr - s.gpa, true);
  }
  /** A little-endian u32. */
  readU32(addr) {
    const s = this.#slot(addr, 4);
    return s.dv.getUint32(addr - s.gpa, true);
  }
  /** A little-endian u64 as a bigint. */
  readU64(addr) {
    const s = this.#slot(addr, 8);
    return s.dv.getBigUint64(addr - s.gpa, true);
  }
  /**
   * A little-endian u64 as a number; values of 2^53 and above lose low bits but stay at
   * least 2^53, so they still fail any bounds check against guest RAM.
   */
  readU64Number(addr) {
    const s = this.#slot(addr, 8);
    const o = addr - s.gpa;
    return s.dv.getUint32(o + 4, true) * 4294967296 + s.dv.getUint32(o, true);
  }
  /**
   * A u16 read with sequentially consistent ordering (`Atomics.load`): for ring indices
   * that another thread (a vCPU) writes. `addr` must be even.
   */
  loadU16Atomic(addr) {
    const s = this.#slot(addr, 2);
    return Atomics.load(this.#u16(s, addr), addr - s.gpa >>> 1);
  }
  /** A u16 write with sequentially consistent ordering (`Atomics.store`); `addr` even. */
  storeU16Atomic(addr, v) {
    const s = this.#slot(addr, 2);
    if (s.dirty) this.#mark(s, addr, 2);
    Atomics.store(this.#u16(s, addr), addr - s.gpa >>> 1, v);
  }
  #u16(s, addr) {
    if (addr - s.gpa & 1 || s.bytes.byteOffset & 1) {
      throw new RangeError(`Cannot access guest memory atomically: 0x${addr.toString(16)} is odd`);
    }
    return s.u16 ??= new Uint16Array(s.bytes.buffer, s.bytes.byteOffset, s.bytes.byteLength >>> 1);
  }
  /** Writes the byte `v` at `addr`. */
  writeU8(addr, v) {
    const s = this.#slot(addr, 1);
    if (s.dirty) this.#mark(s, addr, 1);
    s.dv.setUint8(addr - s.gpa, v);
  }
  /** Writes `v` as a little-endian u16. */
  writeU16(addr, v) {
    const s = this.#slot(addr, 2);
    if (s.dirty) this.#mark(s, addr, 2);
    s.dv.setUint16(addr - s.gpa, v, true);
  }
  /** Writes `v` as a little-endian u32. */
  writeU32(addr, v) {
    const s = this.#slot(addr, 4);
    if (s.dirty) this.#mark(s, addr, 4);
    s.dv.setUint32(addr - s.gpa, v, true);
  }
  /** Writes `v` as a little-endian u64 (reduced modulo 2^64). */
  writeU64(addr, v) {
    const s = this.#slot(addr, 8);
    if (s.dirty) this.#mark(s, addr, 8);
    s.dv.setBigUint64(addr - s.gpa, BigInt.asUintN(64, BigInt(v)), true);
  }
  /**
   * A zero-copy view of [addr, addr+len). The range must lie in one region; writes to the
   * view are writes to guest memory.
   */
  slice(addr, len) {
    checkLen(len);
    const s = this.#slot(addr, len);
    if (s.dirty) this.#mark(s, addr, len);
    const o = addr - s.gpa;
    return s.bytes.subarray(o, o + len);
  }
  /**
   * The host address of [addr, addr+len) (one region), for a system call that reads or
   * writes it directly, with no view made; the range counts as written, like {@link slice}.
   * Region bytes never move (mmap'd RAM, or an ArrayBuffer's fixed backing store), and stay
   * valid while this object is alive.
   */
  hostAddress(addr, len) {
    checkLen(len);
    const s = this.#slot(addr, len);
    if (s.dirty) this.#mark(s, addr, len);
    s.host ??= Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(s.bytes.buffer))) + s.bytes.byteOffset;
    return s.host + (addr - s.gpa);
  }
  /** Copies [addr, addr+len) out of guest memory (may span adjacent regions). */
  read(addr, len) {
    const out = new Uint8Array(len);
    this.readInto(addr, out);
    return out;
  }
  /** Copies guest memory at `addr` into `dst` (may span adjacent regions). */
  readInto(addr, dst) {
    this.#spans(addr, dst.byteLength, (s, o, d, n) => dst.set(s.bytes.subarray(o, o + n), d));
  }
  /** Copies `src` into guest memory at `addr` (may span adjacent regions). */
  write(addr, src) {
    this.#spans(addr, src.byteLength, (s, o, d, n) => {
      if (s.dirty) this.#mark(s, s.gpa + o, n);
      s.bytes.set(src.subarray(d, d + n), o);
    });
  }
  /** Fills [addr, addr+len) with `value`. */
  fill(addr, len, value = 0) {
    this.#spans(addr, len, (s, o, _d, n) => {
      if (s.dirty) this.#mark(s, s.gpa + o, n);
      s.bytes.fill(value, o, o + n);
    });
  }
  /** Checks the whole range first, then calls `fn` for each region piece. */
  #spans(addr, len, fn) {
    checkLen(len);
    if (!Number.isSafeInteger(addr) || addr < 0) throw new GuestMemoryError(addr, len);
    const one = this.#find(addr, len);
    if (one) return fn(one, addr - one.gpa, 0, len);
    const pieces = [];
    let a = addr, done = 0;
    while (done < len) {
      const s = this.#slots.find((x) => a >= x.gpa && a < x.end);
      if (!s) throw new GuestMemoryError(addr, len);
      const n = Math.min(len - done, s.end - a);
      pieces.push([
        s,
        a - s.gpa,
        done,
        n
      ]);
      a += n;
      done += n;
    }
    for (const p of pieces) fn(...p);
  }
};
function checkLen(len) {
  if (!Number.isSafeInteger(len) || len < 0) {
    throw new RangeError(`Cannot access guest memory: bad length ${len}`);
  }
}

// transports/device_mmu.ts
var MmuFault = class extends GuestMemoryError {
  /** The fault for an access of `len` bytes at I/O virtual address `iova`. */
  constructor(iova, len) {
    super(iova, len);
    this.name = "MmuFault";
    this.message = `Device MMU: no mapping covers 0x${iova.toString(16)}+${len}`;
  }
};
var MAX_MAPPINGS = 64;
var isAddr = (v) => typeof v === "number" && Number.isSafeInteger(v) && v >= 0;
function mappingProblem(existing, m, ram, max = MAX_MAPPINGS) {
  const { iova, gpa, size } = m;
  if (!isAddr(iova) || !isAddr(gpa) || !isAddr(size) || size === 0) {
    return "address or size is not a non-zero 53-bit value";
  }
  if (!Number.isSafeInteger(iova + size)) return "I/O range wraps";
  if (!ram.contains(gpa, size)) {
    return `0x${gpa.toString(16)}+0x${size.toString(16)} is not guest RAM`;
  }
  if (existing.some((e) => iova < e.iova + e.size && e.iova < iova + size)) {
    return `0x${iova.toString(16)}+0x${size.toString(16)} overlaps a mapping`;
  }
  if (existing.length >= max) return `already ${max} mappings`;
  return void 0;
}
function mappingsRamMap(mappings) {
  return {
    contains: (a, len) => isAddr(a) && isAddr(len) && mappings.some((m) => a >= m.iova && a < m.iova + m.size && len <= m.iova + m.size - a)
  };
}
var DeviceMmu = class {
  /** The guest memory the mappings point into. */
  backing;
  #maps = [];
  #last;
  #onFault;
  #max;
  /** An MMU with no mappings over `backing`. */
  constructor(backing, opts = {}) {
    this.backing = backing;
    this.#onFault = opts.onFault ?? (() => {
    });
    this.#max = opts.maxMappings ?? MAX_MAPPINGS;
  }
  /** The mappings, in I/O address order (copies). */
  get mappings() {
    return this.#maps.map((m) => ({
      ...m
    }));
  }
  /**
   * Why `size` bytes at `iova` cannot map to guest RAM at `gpa`, or undefined when they
   * can: addresses and size must be integers below 2^53, the size non-zero, the guest range
   * inside one RAM region, the I/O range clear of every other mapping.
   */
  mapProblem(iova, gpa, size) {
    return mappingProblem(this.#maps, {
      iova,
      gpa,
      size
    }, this.backing, this.#max);
  }
  /** Adds a mapping; returns why not (and changes nothing) when {@link mapProblem} says so. */
  map(iova, gpa, size) {
    const why = this.mapProblem(iova, gpa, size);
    if (why) return why;
    this.#maps.push({
      iova,
      gpa,
      size
    });
    this.#maps.sort((a, b) => a.iova - b.iova);
    return void 0;
  }
  /** Removes the mapping made with exactly this `iova` and `size`; false when there is none. */
  unmap(iova, size) {
    const i = this.#maps.findIndex((m) => m.iova === iova && m.size === size);
    if (i < 0) return false;
    this.#maps.splice(i, 1);
    this.#last = void 0;
    return true;
  }
  /** Removes every mapping. */
  clear() {
    this.#maps = [];
    this.#last = void 0;
  }
  /** The guest-physical address of [iova, iova+len), when one mapping covers it. */
  translate(iova, len) {
    if (!isAddr(iova) || !isAddr(len)) return void 0;
    const l = this.#last;
    if (l && iova >= l.iova && len <= l.iova + l.size - iova) return l.gpa + (iova - l.iova);
    for (const m of this.#maps) {
      if (iova >= m.iova && iova < m.iova + m.size && len <= m.iova + m.size - iova) {
        this.#last = m;
        return m.gpa + (iova - m.iova);
      }
    }
    return void 0;
  }
  #gpa(iova, len) {
    const g2 = this.translate(iova, len);
    if (g2 !== void 0) return g2;
    this.#onFault(iova, len);
    throw new MmuFault(iova, len);
  }
  /** Whether one mapping covers the range; a range none covers is a translation failure. */
  contains(addr, len) {
    if (this.translate(addr, len) !== void 0) return true;
    this.#onFault(addr, len);
    return false;
  }
  /** The byte at I/O address `addr`. */
  readU8(addr) {
    return this.backing.readU8(this.#gpa(addr, 1));
  }
  /** A little-endian u16. */
  readU16(addr) {
    return this.backing.readU16(this.#gpa(addr, 2));
  }
  /** A little-endian u32. */
  readU32(addr) {
    return this.backing.readU32(this.#gpa(addr, 4));
  }
  /** A little-endian u64 as a bigint. */
  readU64(addr) {
    return this.backing.readU64(this.#gpa(addr, 8));
  }
  /** A little-endian u64 as a number. */
  readU64Number(addr) {
    return this.backing.readU64Number(this.#gpa(addr, 8));
  }
  /** A u16 read with sequentially consistent ordering. */
  loadU16Atomic(addr) {
    return this.backing.loadU16Atomic(this.#gpa(addr, 2));
  }
  /** A u16 write with sequentially consistent ordering. */
  storeU16Atomic(addr, v) {
    this.backing.storeU16Atomic(this.#gpa(addr, 2), v);
  }
  /** Writes a byte. */
  writeU8(addr, v) {
    this.backing.writeU8(this.#gpa(addr, 1), v);
  }
  /** Writes a little-endian u16. */
  writeU16(addr, v) {
    this.backing.writeU16(this.#gpa(addr, 2), v);
  }
  /** Writes a little-endian u32. */
  writeU32(addr, v) {
    this.backing.writeU32(this.#gpa(addr, 4), v);
  }
  /** Writes a little-endian u64. */
  writeU64(addr, v) {
    this.backing.writeU64(this.#gpa(addr, 8), v);
  }
  /** A zero-copy view (inside one mapping). */
  slice(addr, len) {
    return this.backing.slice(this.#gpa(addr, len), len);
  }
  /** The host address of a range inside one mapping. */
  hostAddress(addr, len) {
    return this.backing.hostAddress(this.#gpa(addr, len), len);
  }
  /** Copies bytes out. */
  read(addr, len) {
    return this.backing.read(this.#gpa(addr, len), len);
  }
  /** Copies bytes into `dst`. */
  readInto(addr, dst) {
    this.backing.readInto(this.#gpa(addr, dst.byteLength), dst);
  }
  /** Copies `src` in. */
  write(addr, src) {
    this.backing.write(this.#gpa(addr, src.byteLength), src);
  }
  /** Fills a range with `value`. */
  fill(addr, len, value = 0) {
    this.backing.fill(this.#gpa(addr, len), len, value);
  }
};

// transports/admin_vq.ts
var ADMIN_CLASS = {
  CAP: 0,
  VDEV: 2,
  FEAT: 3,
  STATUS: 4,
  GENERATION: 5,
  CONFIG: 6,
  QUEUE: 7,
  NOTIFY: 8,
  MMU: 9
};
var ADMIN_CMD = {
  CAP_GET: 0,
  VDEV_CREATE: 0,
  VDEV_DESTROY: 1,
  VDEV_LIST: 2,
  FEAT_DEVICE_GET: 0,
  FEAT_DRIVER_SET: 1,
  FEAT_DRIVER_GET: 2,
  STATUS_SET: 0,
  STATUS_GET: 1,
  GENERATION_GET: 0,
  CONFIG_READ: 0,
  CONFIG_WRITE: 1,
  QUEUE_GET: 0,
  QUEUE_SET: 1,
  QUEUE_ENABLE: 2,
  QUEUE_RESET: 3,
  NOTIFY_KICK: 0,
  MMU_MAP: 0,
  MMU_UNMAP: 1
};
var ADMIN_ACK = {
  OK: 0,
  ERR: 1
};
var ADMIN_ERR = {
  NONE: 0,
  /** No room for another virtual device, mapping or resource (a disk already in use). */
  NO_RESOURCES: 1,
  /** A creation attribute, queue index, address, size or config range is not acceptable. */
  INVALID_ATTRIBUTE: 2,
  /** The management device cannot create a virtual device of that type. */
  UNSUPPORTED_DEVICE_TYPE: 3,
  /** The command is not allowed in the virtual device's current state. */
  WRONG_STATE: 4,
  /** Unknown class or command. */
  UNKNOWN_COMMAND: 5,
  /** `vdev_id` is 0 where a virtual device is needed, or not 0 where it must be. */
  INVALID_DEVICE_ID: 6,
  /** No virtual device has that `vdev_id`. */
  NO_SUCH_DEVICE: 7,
  /** The command's out-data has the wrong length, or the in-data does not fit. */
  MALFORMED: 8
};
var ADMIN_CAP = {
  /** Virtual devices are created, configured and destroyed through the admin virtqueue. */
  VDEV: 1n << 0n,
  /** Each virtual device has a device MMU (MMU class). */
  MMU: 1n << 1n,
  /** Interrupts and faults of virtual devices arrive on the event queue. */
  EVENTQ: 1n << 2n
};
var ADMIN_EVENT = {
  /** A virtual device interrupts: `data` holds its interrupt status (1 used buffer, 2 config). */
  INTERRUPT: 1,
  /** A device MMU translation failed: `addr` is the I/O address, `data` the length. */
  MMU_FAULT: 2,
  /** The host created a virtual device: `data` is its device type. */
  DEVICE_ADDED: 3,
  /** The host destroyed a virtual device. */
  DEVICE_REMOVED: 4,
  /** Events were dropped because the driver left no buffers for too long. */
  EVENTS_LOST: 5
};
var ADMIN_HEADER = 12;
var ADMIN_REPLY_HEADER = 8;
var ADMIN_EVENT_SIZE = 24;
var MAX_VIRTUAL_DEVICES = 32;
var MAX_EVENTS = 256;
var MAX_OUT_DATA = 4096;
var AdminError = class extends Error {
  code;
  /** A refusal with `code` (an {@link ADMIN_ERR} value). */
  constructor(code, message) {
    super(message), this.code = code;
    this.name = "AdminError";
  }
};
var hex = (b) => [
  ...b
].map((x) => x.toString(16).padStart(2, "0")).join("");
var unhex = (s) => Uint8Array.from(s.match(/../g) ?? [], (h) => parseInt(h, 16));
var u643 = (v) => {
  const b = new Uint8Array(8);
  new DataView(b.buffer).setBigUint64(0, BigInt.asUintN(64, v), true);
  return b;
};
var ok = (data = new Uint8Array(0)) => ({
  error: 0,
  data
});
var NO_DATA = new Uint8Array(0);
var AdminTransport = class _AdminTransport {
  #mem;
  #factory;
  #onEvent;
  #onChange;
  #log;
  #max;
  #exclusive;
  #devices = /* @__PURE__ */ new Map();
  #nextId = 1;
  #events = [];
  #lost = false;
  #frozen = false;
  /** A transport with no virtual devices. */
  constructor(opts) {
    this.#mem = opts.mem;
    this.#factory = opts.factory;
    this.#onEvent = opts.onEvent ?? (() => {
    });
    this.#onChange = opts.onChange ?? (() => {
    });
    this.#log = opts.log ?? (() => {
    });
    this.#max = opts.maxDevices ?? MAX_VIRTUAL_DEVICES;
    this.#exclusive = opts.exclusive ?? (() => void 0);
  }
  /** The virtual devices, in id order. */
  get devices() {
    return [
      ...this.#devices.values()
    ].sort((a, b) => a.id - b.id);
  }
  /** The most virtual devices. */
  get maxDevices() {
    return this.#max;
  }
  /** Whether events wait for delivery. */
  get hasEvents() {
    return this.#events.length > 0 || this.#lost;
  }
  /**
   * Takes the next event to deliver (an interrupt event carries the device's interrupt
   * status now, which delivery acknowledges), or undefined.
   */
  takeEvent() {
    while (this.#events.length) {
      const e = this.#events.shift();
      if (e.type !== ADMIN_EVENT.INTERRUPT) return e;
      const v = this.#devices.get(e.vdevId);
      if (!v || v.device.isr === 0) continue;
      const isr = v.device.isr;
      v.device.ackInterrupt(isr);
      return {
        ...e,
        data: isr
      };
    }
    if (this.#lost) {
      this.#lost = false;
      return {
        vdevId: 0,
        type: ADMIN_EVENT.EVENTS_LOST,
        data: 0,
        addr: 0
      };
    }
    return void 0;
  }
  #post(e) {
    if (e.type === ADMIN_EVENT.INTERRUPT && this.#events.some((x) => x.type === e.type && x.vdevId === e.vdevId)) return;
    if (this.#events.length >= MAX_EVENTS) {
      this.#lost = true;
      this.#log(`Event queue full: dropped event ${e.type} of virtual device ${e.vdevId}`);
    } else this.#events.push(e);
    if (!this.#frozen) this.#onEvent();
  }
  /** Creates a virtual device; throws {@link AdminError}. Host-created ones are announced. */
  create(deviceType, attrs, featureMask = ~0n, origin = "host") {
    if (this.#devices.size >= this.#max) {
      throw new AdminError(ADMIN_ERR.NO_RESOURCES, `already ${this.#max} virtual devices`);
    }
    if (this.#nextId >= MAX_ID) throw new AdminError(ADMIN_ERR.NO_RESOURCES, "no ids left");
    const key = this.#exclusive(deviceType, attrs);
    if (key !== void 0) {
      const holder = [
        ...this.#devices.values()
      ].find((d) => this.#exclusive(d.deviceType, d.attrs) === key);
      if (holder) {
        throw new AdminError(ADMIN_ERR.NO_RESOURCES, `${key} is in use by virtual device ${holder.id}`);
      }
    }
    const backend = this.#factory(deviceType, attrs);
    const v = this.#build(this.#nextId++, deviceType, attrs, featureMask, origin, backend);
    this.#devices.set(v.id, v);
    this.#log(`Created virtual device ${v.id} (type ${deviceType}) for the ${origin}`);
    this.#onChange();
    if (origin === "host") {
      this.#post({
        vdevId: v.id,
        type: ADMIN_EVENT.DEVICE_ADDED,
        data: deviceType,
        addr: 0
      });
    }
    return v;
  }
  #build(id, deviceType, attrs, featureMask, origin, backend) {
    const ref = {};
    const mmu = new DeviceMmu(this.#mem, {
      onFault: (iova, len) => {
        const device3 = ref.device;
        if (!device3 || device3.status & STATUS.DEVICE_MMU_FAIL) return;
        device3.fail(`device MMU: no mapping covers 0x${iova.toString(16)}+${len}`, STATUS.DEVICE_MMU_FAIL);
        if (device3.status & STATUS.DEVICE_MMU_FAIL) {
          this.#post({
            vdevId: id,
            type: ADMIN_EVENT.MMU_FAULT,
            data: Math.min(len, 4294967295),
            addr: Math.min(iova, Number.MAX_SAFE_INTEGER)
          });
        }
      }
    });
    const device2 = ref.device = new VirtioDevice(backend, {
      mem: mmu,
      interrupt: {
        trigger: () => this.#post({
          vdevId: id,
          type: ADMIN_EVENT.INTERRUPT,
          data: 0,
          addr: 0
        })
      },
      log: (m) => this.#log(`virtual device ${id}: ${m}`),
      featureMask
    });
    return {
      id,
      deviceType,
      attrs,
      featureMask,
      origin,
      mmu,
      device: device2,
      destroying: false
    };
  }
  /**
   * Destroys a virtual device: it takes no new request, the requests in flight complete
   * (their used entries are written; no interrupt follows), then it is reset and removed.
   * Host-side destroys are announced on the event queue.
   */
  async destroy(id, by = "host") {
    const v = this.#devices.get(id);
    if (!v) throw new AdminError(ADMIN_ERR.NO_SUCH_DEVICE, `no virtual device ${id}`);
    if (v.destroying) throw new AdminError(ADMIN_ERR.WRONG_STATE, `${id} is being destroyed`);
    v.destroying = true;
    await v.device.stop();
    v.device.reset();
    v.mmu.clear();
    this.#devices.delete(id);
    this.#events = this.#events.filter((e) => e.vdevId !== id || e.type !== ADMIN_EVENT.INTERRUPT);
    this.#log(`Destroyed virtual device ${id} (by the ${by})`);
    this.#onChange();
    if (by === "host") {
      this.#post({
        vdevId: id,
        type: ADMIN_EVENT.DEVICE_REMOVED,
        data: v.deviceType,
        addr: 0
      });
    }
  }
  /**
   * Runs one command. A destroy returns a promise (it waits for requests in flight);
   * everything else answers at once. Never throws for anything the driver sent.
   */
  execute(vdevId, cls, cmd, out, capacity = Infinity) {
    try {
      const r = this.#execute(vdevId, cls, cmd, out, capacity);
      if (r instanceof Promise) {
        return r.then((x) => x, (e) => this.#refusal(e));
      }
      return r;
    } catch (e) {
      return this.#refusal(e);
    }
  }
  #refusal(e) {
    if (e instanceof AdminError) return {
      error: e.code,
      data: NO_DATA,
      why: e.message
    };
    const m = e instanceof Error ? e.message : String(e);
    return {
      error: ADMIN_ERR.WRONG_STATE,
      data: NO_DATA,
      why: `device error: ${m}`
    };
  }
  #execute(vdevId, cls, cmd, out, capacity) {
    if (!(KNOWN[cls]?.includes(cmd) ?? false)) {
      throw new AdminError(ADMIN_ERR.UNKNOWN_COMMAND, `unknown class ${cls} command ${cmd}`);
    }
    const dv = new DataView(out.buffer, out.byteOffset, out.byteLength);
    const len = (n, atLeast = false) => {
      if (atLeast ? out.byteLength < n : out.byteLength !== n) {
        throw new AdminError(ADMIN_ERR.MALFORMED, `class ${cls} command ${cmd}: ${out.byteLength} bytes of out-data, expected ${atLeast ? "at least " : ""}${n}`);
      }
    };
    const management = () => {
      if (vdevId !== 0n) {
        throw new AdminError(ADMIN_ERR.INVALID_DEVICE_ID, "this command is for vdev_id 0");
      }
    };
    const vdev = () => {
      if (vdevId === 0n) {
        throw new AdminError(ADMIN_ERR.INVALID_DEVICE_ID, "vdev_id 0 is the management device");
      }
      const v = vdevId <= BigInt(Number.MAX_SAFE_INTEGER) ? this.#devices.get(Number(vdevId)) : void 0;
      if (!v) throw new AdminError(ADMIN_ERR.NO_SUCH_DEVICE, `no virtual device ${vdevId}`);
      if (v.destroying) throw new AdminError(ADMIN_ERR.WRONG_STATE, "being destroyed");
      return v;
    };
    const unknown = () => new AdminError(ADMIN_ERR.UNKNOWN_COMMAND, `unknown class ${cls} command ${cmd}`);
    switch (cls) {
      case ADMIN_CLASS.CAP: {
        if (cmd !== ADMIN_CMD.CAP_GET) throw unknown();
        management();
        len(0);
        return ok(u643(ADMIN_CAP.VDEV | ADMIN_CAP.MMU | ADMIN_CAP.EVENTQ));
      }
      case ADMIN_CLASS.VDEV:
        switch (cmd) {
          case ADMIN_CMD.VDEV_CREATE: {
            management();
            len(16, true);
            if (capacity < 8) {
              throw new AdminError(ADMIN_ERR.MALFORMED, "no room for the new vdev_id");
            }
            if (out.byteLength > 16 + 256) {
              throw new AdminError(ADMIN_ERR.MALFORMED, "creation attributes beyond 256 bytes");
            }
            if (dv.getUint32(4, true) !== 0) {
              throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, "reserved field is not 0");
            }
            const v = this.create(dv.getUint32(0, true), out.slice(16), dv.getBigUint64(8, true), "driver");
            return ok(u643(BigInt(v.id)));
          }
          case ADMIN_CMD.VDEV_DESTROY: {
            const v = vdev();
            len(0);
            return this.destroy(v.id, "driver").then(() => ok());
          }
          case ADMIN_CMD.VDEV_LIST: {
            management();
            len(0);
            const list = this.devices;
            const b = new Uint8Array(8 + 16 * list.length);
            const w = new DataView(b.buffer);
            w.setUint32(0, list.length, true);
            list.forEach((v, i) => {
              w.setBigUint64(8 + 16 * i, BigInt(v.id), true);
              w.setUint32(16 + 16 * i, v.deviceType, true);
              w.setUint32(20 + 16 * i, v.device.status, true);
            });
            return ok(b);
          }
        }
        throw unknown();
      case ADMIN_CLASS.FEAT: {
        const v = vdev();
        switch (cmd) {
          case ADMIN_CMD.FEAT_DEVICE_GET:
            len(0);
            return ok(u643(v.device.offered));
          case ADMIN_CMD.FEAT_DRIVER_SET: {
            len(8);
            if (!v.device.featuresWritable) {
              throw new AdminError(ADMIN_ERR.WRONG_STATE, `features are not writable in status 0x${v.device.status.toString(16)}`);
            }
            const f = dv.getBigUint64(0, true);
            v.device.writeDriverFeaturesWord(0, Number(f & 0xffffffffn));
            v.device.writeDriverFeaturesWord(1, Number(f >> 32n));
            return ok();
          }
          case ADMIN_CMD.FEAT_DRIVER_GET:
            len(0);
            return ok(u643(v.device.driverFeatures));
        }
        throw unknown();
      }
      case ADMIN_CLASS.STATUS: {
        const v = vdev();
        switch (cmd) {
          case ADMIN_CMD.STATUS_SET: {
            len(1);
            const want = out[0];
            const why = statusStepProblem(v.device.status, want);
            if (why) {
              throw new AdminError(ADMIN_ERR.WRONG_STATE, `status 0x${want.toString(16)} refused in status 0x${v.device.status.toString(16)}: ${why}`);
            }
            v.device.writeStatus(want);
            return ok();
          }
          case ADMIN_CMD.STATUS_GET:
            len(0);
            return ok(Uint8Array.of(v.device.status));
        }
        throw unknown();
      }
      case ADMIN_CLASS.GENERATION: {
        const v = vdev();
        if (cmd !== ADMIN_CMD.GENERATION_GET) throw unknown();
        len(0);
        const b = new Uint8Array(4);
        new DataView(b.buffer).setUint32(0, v.device.configGeneration, true);
        return ok(b);
      }
      case ADMIN_CLASS.CONFIG: {
        const v = vdev();
        const size = v.device.backend.configSize;
        const range = (off, n) => {
          if (n > size || off > size - n) {
            throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, `config range ${off}+${n} outside ${size} bytes`);
          }
        };
        switch (cmd) {
          case ADMIN_CMD.CONFIG_READ: {
            len(8);
            const off = dv.getUint32(0, true), n = dv.getUint32(4, true);
            range(off, n);
            const b = new Uint8Array(n);
            v.device.readConfig(off, b);
            return ok(b);
          }
          case ADMIN_CMD.CONFIG_WRITE: {
            len(8, true);
            const off = dv.getUint32(0, true), n = dv.getUint32(4, true);
            len(8 + Math.min(n, MAX_OUT_DATA));
            range(off, n);
            if (!(v.device.status & STATUS.DRIVER)) {
              throw new AdminError(ADMIN_ERR.WRONG_STATE, "config write before DRIVER");
            }
            v.device.writeConfig(off, out.slice(8));
            return ok();
          }
        }
        throw unknown();
      }
      case ADMIN_CLASS.QUEUE: {
        const v = vdev();
        len(cmd === ADMIN_CMD.QUEUE_SET ? 32 : 2);
        const index = dv.getUint16(0, true);
        const q = v.device.queues[index];
        if (!q) {
          throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, `no queue ${index}`);
        }
        const writable = () => {
          if (!v.device.queuesWritable || q.ready) {
            throw new AdminError(ADMIN_ERR.WRONG_STATE, `queue ${index} cannot be set up in status 0x${v.device.status.toString(16)}${q.ready ? " (it is enabled)" : ""}`);
          }
        };
        switch (cmd) {
          case ADMIN_CMD.QUEUE_GET: {
            const b = new Uint8Array(32), w = new DataView(b.buffer);
            w.setUint16(0, q.maxSize, true);
            w.setUint16(2, q.size, true);
            b[4] = q.ready ? 1 : 0;
            w.setBigUint64(8, BigInt(q.descAddr), true);
            w.setBigUint64(16, BigInt(q.availAddr), true);
            w.setBigUint64(24, BigInt(q.usedAddr), true);
            return ok(b);
          }
          case ADMIN_CMD.QUEUE_SET: {
            writable();
            if (dv.getUint32(4, true) !== 0) {
              throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, "reserved field is not 0");
            }
            const addr = (o) => {
              const a = dv.getBigUint64(o, true);
              return a > BigInt(Number.MAX_SAFE_INTEGER) ? Number.MAX_SAFE_INTEGER : Number(a);
            };
            const size = dv.getUint16(2, true);
            const rings = [
              [
                "descAddr",
                addr(8)
              ],
              [
                "availAddr",
                addr(16)
              ],
              [
                "usedAddr",
                addr(24)
              ]
            ];
            const why = queueSizeProblem(size, q.maxSize) ?? rings.map(([f, a]) => ringAddrProblem(f, a)).find((w) => w);
            if (why) throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, why);
            q.setSize(size);
            for (const [f, a] of rings) q.setAddress(f, a);
            return ok();
          }
          case ADMIN_CMD.QUEUE_ENABLE:
            writable();
            q.setReady(true);
            return ok();
          case ADMIN_CMD.QUEUE_RESET:
            if (v.device.status & STATUS.DRIVER_OK) {
              throw new AdminError(ADMIN_ERR.WRONG_STATE, "queue reset of a live device (reset the device)");
            }
            q.reset();
            return ok();
        }
        throw unknown();
      }
      case ADMIN_CLASS.NOTIFY: {
        const v = vdev();
        if (cmd !== ADMIN_CMD.NOTIFY_KICK) throw unknown();
        len(2);
        const index = dv.getUint16(0, true);
        if (!v.device.queues[index]) {
          throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, `no queue ${index}`);
        }
        v.device.notify(index);
        return ok();
      }
      case ADMIN_CLASS.MMU: {
        const v = vdev();
        const n = (o) => {
          const a = dv.getBigUint64(o, true);
          return a > BigInt(Number.MAX_SAFE_INTEGER) ? -1 : Number(a);
        };
        switch (cmd) {
          case ADMIN_CMD.MMU_MAP: {
            len(24);
            const why = v.mmu.map(n(0), n(8), n(16));
            if (why) {
              throw new AdminError(why.startsWith("already ") ? ADMIN_ERR.NO_RESOURCES : ADMIN_ERR.INVALID_ATTRIBUTE, why);
            }
            return ok();
          }
          case ADMIN_CMD.MMU_UNMAP: {
            len(16);
            if (!v.mmu.unmap(n(0), n(8))) {
              throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, "no such mapping");
            }
            return ok();
          }
        }
        throw unknown();
      }
    }
    throw unknown();
  }
  /**
   * The management device was reset: every virtual device is reset (status 0, queues
   * gone, mappings gone) and undelivered events are dropped. The devices stay: they belong
   * to the management device, not to one session of its driver.
   */
  reset() {
    for (const v of this.#devices.values()) {
      v.device.reset();
      v.mmu.clear();
    }
    this.#events = [];
    this.#lost = false;
  }
  /** Stops every virtual device (see {@link VirtioDevice.stop}); events wait. */
  async stop() {
    this.#frozen = true;
    await Promise.all([
      ...this.#devices.values()
    ].map((v) => v.device.stop()));
  }
  /** The machine is closing: every virtual device stops touching memory (see VirtioDevice). */
  dispose() {
    for (const v of this.#devices.values()) v.device.dispose();
  }
  /** Resumes every virtual device, then delivers what waited. */
  resume() {
    this.#frozen = false;
    for (const v of this.#devices.values()) if (!v.destroying) v.device.resume();
    if (this.hasEvents) this.#onEvent();
  }
  /** The state as plain data. */
  save() {
    return {
      nextId: this.#nextId,
      lost: this.#lost,
      events: this.#events.map((e) => ({
        ...e
      })),
      devices: this.devices.map((v) => ({
        id: v.id,
        deviceType: v.deviceType,
        attrs: hex(v.attrs),
        featureMask: BigInt.asUintN(64, v.featureMask).toString(16),
        origin: v.origin,
        mappings: v.mmu.mappings.map((m) => [
          m.iova,
          m.gpa,
          m.size
        ]),
        device: v.device.save()
      }))
    };
  }
  /**
   * Validates a saved state (untrusted) against guest RAM `ram`, building each virtual
   * device's backend with `factory` (which opens nothing) to check its part. Pure; throws a
   * RangeError naming the field.
   */
  static check(s, ram, factory, exclusive = () => void 0) {
    const bad = (m) => {
      throw new RangeError(`Cannot restore admin virtqueue transport: ${m}`);
    };
    if (typeof s !== "object" || s === null) bad("no state");
    const a = s;
    const id = (v, n) => Number.isSafeInteger(v) && v >= 0 ? v : bad(`${n} is not an id`);
    const nextId = id(a.nextId, "nextId");
    if (nextId > MAX_ID) bad("nextId is too large");
    const held = /* @__PURE__ */ new Map();
    if (typeof a.lost !== "boolean") bad("lost is not a boolean");
    if (!Array.isArray(a.events) || a.events.length > MAX_EVENTS) bad("bad events");
    if (!Array.isArray(a.devices) || a.devices.length > MAX_VIRTUAL_DEVICES) bad("bad devices");
    const seen = /* @__PURE__ */ new Set();
    const devices = a.devices.map((d, i) => {
      const n = `devices[${i}]`;
      if (typeof d !== "object" || d === null) bad(`${n} is not an object`);
      const vid = id(d.id, `${n}.id`);
      if (vid === 0 || vid >= nextId || seen.has(vid)) bad(`${n}.id ${vid} is not unique`);
      seen.add(vid);
      if (!Number.isInteger(d.deviceType) || d.deviceType < 0 || d.deviceType > 4294967295) {
        bad(`${n}.deviceType`);
      }
      if (typeof d.attrs !== "string" || !/^([0-9a-f]{2}){0,256}$/.test(d.attrs)) {
        bad(`${n}.attrs`);
      }
      if (typeof d.featureMask !== "string" || !/^[0-9a-f]{1,16}$/.test(d.featureMask)) {
        bad(`${n}.featureMask`);
      }
      if (d.origin !== "driver" && d.origin !== "host") bad(`${n}.origin`);
      if (!Array.isArray(d.mappings) || d.mappings.length > MAX_MAPPINGS) bad(`${n}.mappings`);
      const maps = [];
      for (const m of d.mappings) {
        if (!Array.isArray(m) || m.length !== 3) bad(`${n}.mappings entry`);
        const why = mappingProblem(maps, {
          iova: m[0],
          gpa: m[1],
          size: m[2]
        }, ram);
        if (why) bad(`${n}.mappings: ${why}`);
        maps.push({
          iova: m[0],
          gpa: m[1],
          size: m[2]
        });
      }
      const attrs = unhex(d.attrs);
      const key = exclusive(d.deviceType, attrs);
      if (key !== void 0) {
        if (held.has(key)) bad(`${n}: ${key} is also held by virtual device ${held.get(key)}`);
        held.set(key, vid);
      }
      let backend;
      try {
        backend = factory(d.deviceType, attrs);
      } catch (e) {
        return bad(`${n}: ${e instanceof Error ? e.message : String(e)}`);
      }
      const mask = BigInt("0x" + d.featureMask);
      const device2 = checkVirtioState(d.device, {
        deviceType: d.deviceType,
        offered: offeredFeatures(backend.features & mask, false),
        queueMaxSizes: backend.queueMaxSizes
      }, mappingsRamMap(maps));
      if (device2.backend !== void 0) backend.restore?.(device2.backend);
      return {
        ...d,
        mappings: maps.map((m) => [
          m.iova,
          m.gpa,
          m.size
        ]),
        device: device2
      };
    });
    const events = a.events.map((e, i) => {
      const n = `events[${i}]`;
      if (typeof e !== "object" || e === null) bad(n);
      const t = e.type;
      if (!Number.isInteger(t) || t < ADMIN_EVENT.INTERRUPT || t > ADMIN_EVENT.DEVICE_REMOVED) {
        bad(`${n}.type`);
      }
      id(e.vdevId, `${n}.vdevId`);
      if (!Number.isInteger(e.data) || e.data < 0 || e.data > 4294967295) bad(`${n}.data`);
      id(e.addr, `${n}.addr`);
      return {
        vdevId: e.vdevId,
        type: t,
        data: e.data,
        addr: e.addr
      };
    });
    return {
      nextId,
      lost: a.lost,
      events,
      devices
    };
  }
  /**
   * Restores {@link save} output (untrusted: checked first, nothing changes when refused).
   * The virtual devices come back stopped, as their management device does; resume()
   * starts them.
   */
  restore(state) {
    const s = _AdminTransport.check(state, this.#mem, this.#factory, this.#exclusive);
    const built = s.devices.map((d) => {
      const v = this.#build(d.id, d.deviceType, unhex(d.attrs), BigInt("0x" + d.featureMask), d.origin, this.#factory(d.deviceType, unhex(d.attrs)));
      for (const [iova, gpa, size] of d.mappings) v.mmu.map(iova, gpa, size);
      return [
        v,
        d.device
      ];
    });
    for (const v of this.#devices.values()) v.device.reset();
    this.#devices = /* @__PURE__ */ new Map();
    for (const [v, st] of built) {
      v.device.restore(st);
      this.#devices.set(v.id, v);
    }
    this.#nextId = s.nextId;
    this.#events = s.events;
    this.#lost = s.lost;
    this.#frozen = true;
    for (const v of this.#devices.values()) {
      if (v.device.isr) this.#post({
        vdevId: v.id,
        type: ADMIN_EVENT.INTERRUPT,
        data: 0,
        addr: 0
      });
    }
  }
};
var DEVICE_BITS2 = STATUS.DEVICE_NEEDS_RESET | STATUS.DEVICE_MMU_FAIL;
var MAX_ID = 2 ** 52;
var KNOWN = {
  [ADMIN_CLASS.CAP]: [
    0
  ],
  [ADMIN_CLASS.VDEV]: [
    0,
    1,
    2
  ],
  [ADMIN_CLASS.FEAT]: [
    0,
    1,
    2
  ],
  [ADMIN_CLASS.STATUS]: [
    0,
    1
  ],
  [ADMIN_CLASS.GENERATION]: [
    0
  ],
  [ADMIN_CLASS.CONFIG]: [
    0,
    1
  ],
  [ADMIN_CLASS.QUEUE]: [
    0,
    1,
    2,
    3
  ],
  [ADMIN_CLASS.NOTIFY]: [
    0
  ],
  [ADMIN_CLASS.MMU]: [
    0,
    1
  ]
};
function statusStepProblem(cur, want) {
  const s = cur & ~DEVICE_BITS2, w = want & ~DEVICE_BITS2 & 255;
  if (w === 0) return void 0;
  if (s & ~w) return "the driver may not clear bits";
  const add = w & ~s & ~STATUS.FAILED;
  if (add === 0) return void 0;
  if (s & STATUS.FAILED) return "the device is FAILED: reset first";
  const next = STATUS_STEPS.modern.get(s) ?? 0;
  return add === next ? void 0 : `the next step is 0x${next.toString(16)}`;
}
var VIRTIO_F_ADMIN_VQ = 41n;
var ADMIN_VQ_FEATURE = bit(VIRTIO_F_ADMIN_VQ);

// devices/management.ts
var MANAGEMENT_DEVICE_TYPE = 173;
var MANAGEMENT_QUEUE = {
  ADMIN: 0,
  EVENT: 1
};
var MANAGEMENT_CONFIG_SIZE = 8;
var ManagementDevice = class {
  deviceType = MANAGEMENT_DEVICE_TYPE;
  queueMaxSizes = [
    64,
    64
  ];
  features = ADMIN_VQ_FEATURE | bit(F.EVENT_IDX) | bit(F.INDIRECT_DESC);
  configSize = MANAGEMENT_CONFIG_SIZE;
  /** The virtual devices and the command set. */
  transport;
  #ctx;
  #pending = false;
  #epoch = 0;
  #log;
  /** A management device with no virtual devices. */
  constructor(opts) {
    this.#log = opts.log ?? (() => {
    });
    this.transport = new AdminTransport({
      ...opts,
      onEvent: () => this.#ctx?.guard("event queue", () => this.#deliverEvents()),
      // num_virtual_devices in config space changed.
      onChange: () => this.#ctx?.configChanged()
    });
  }
  /** The admin virtqueue is the device's only function: FEATURES_OK needs it. */
  acceptFeatures(acked) {
    return (acked & ADMIN_VQ_FEATURE) !== 0n;
  }
  readConfig(offset, data) {
    const c = new Uint8Array(MANAGEMENT_CONFIG_SIZE), v = new DataView(c.buffer);
    v.setUint32(0, this.transport.maxDevices, true);
    v.setUint32(4, this.transport.devices.length, true);
    data.set(c.subarray(offset, offset + data.byteLength));
  }
  writeConfig() {
    this.#log("Ignored write to the management device's read-only config space");
  }
  activate(ctx) {
    this.#ctx = ctx;
    this.#deliverEvents();
  }
  processQueue(index) {
    if (index === MANAGEMENT_QUEUE.ADMIN) this.#serveAdmin();
    else if (index === MANAGEMENT_QUEUE.EVENT) this.#deliverEvents();
  }
  reset() {
    this.#epoch++;
    this.#pending = false;
    this.#ctx = void 0;
    this.transport.reset();
  }
  inflight() {
    return this.#pending ? 1 : 0;
  }
  stop() {
    return this.transport.stop();
  }
  resume() {
    this.transport.resume();
  }
  dispose() {
    this.transport.dispose();
  }
  save() {
    return this.transport.save();
  }
  restore(state) {
    this.transport.restore(state);
  }
  /**
   * Validates a saved state (untrusted) against the RAM layout `ram`, with `factory`
   * building inert virtual devices: pure ({@link AdminTransport.check}).
   */
  static check(state, ram, factory, exclusive) {
    return AdminTransport.check(state, ram, factory, exclusive);
  }
  #serveAdmin() {
    const ctx = this.#ctx;
    if (!ctx) return;
    const q = ctx.queues[MANAGEMENT_QUEUE.ADMIN];
    let used = false;
    for (; ; ) {
      q.disableNotification(ctx.mem);
      while (ctx.canProcess() && !this.#pending) {
        const chain = q.pop(ctx.mem);
        if (!chain) break;
        const r = this.#command(ctx, chain);
        if (typeof r === "number") {
          q.addUsed(ctx.mem, chain.head, r);
          used = true;
          continue;
        }
        this.#pending = true;
        const epoch = this.#epoch;
        void r.then((reply) => {
          if (epoch !== this.#epoch) return;
          ctx.guard("admin queue", () => {
            this.#pending = false;
            q.addUsed(ctx.mem, chain.head, this.#reply(ctx, chain, reply));
            ctx.signalUsed(MANAGEMENT_QUEUE.ADMIN);
            this.#serveAdmin();
          });
        });
      }
      if (!ctx.canProcess() || this.#pending || !q.enableNotification(ctx.mem)) break;
    }
    if (used) ctx.signalUsed(MANAGEMENT_QUEUE.ADMIN);
  }
  /** Runs one command chain: the bytes written, or a promise of the reply. */
  #command(ctx, chain) {
    if (chain.error) {
      this.#log(`Admin command chain refused: ${chain.error}`);
      return 0;
    }
    if (chain.writableLen < ADMIN_REPLY_HEADER) {
      this.#log(`Admin command without room for a reply (${chain.writableLen} bytes)`);
      return 0;
    }
    const bad = (why) => this.#reply(ctx, chain, {
      error: ADMIN_ERR.MALFORMED,
      data: new Uint8Array(0),
      why
    });
    if (chain.readableLen < ADMIN_HEADER) {
      return bad(`command of ${chain.readableLen} bytes, shorter than its header`);
    }
    if (chain.readableLen > ADMIN_HEADER + MAX_OUT_DATA) {
      return bad(`command of ${chain.readableLen} bytes, more than ${MAX_OUT_DATA} of out-data`);
    }
    const bytes2 = new ChainReader(ctx.mem, chain).read(chain.readableLen);
    const h = new DataView(bytes2.buffer);
    const r = this.transport.execute(h.getBigUint64(0, true), h.getUint16(8, true), h.getUint16(10, true), bytes2.subarray(ADMIN_HEADER), chain.writableLen - ADMIN_REPLY_HEADER);
    return r instanceof Promise ? r : this.#reply(ctx, chain, r);
  }
  /** Writes the reply header and in-data; returns the bytes written. */
  #reply(ctx, chain, r) {
    let { error, data } = r;
    let why = r.why;
    if (!error && ADMIN_REPLY_HEADER + data.byteLength > chain.writableLen) {
      error = ADMIN_ERR.MALFORMED;
      why = `reply of ${data.byteLength} bytes does not fit in ${chain.writableLen - ADMIN_REPLY_HEADER}`;
      data = new Uint8Array(0);
    }
    if (error) {
      data = new Uint8Array(0);
      this.#log(`Admin command refused (error ${error}): ${why ?? ""}`);
    }
    const head = new Uint8Array(ADMIN_REPLY_HEADER), v = new DataView(head.buffer);
    head[0] = error ? ADMIN_ACK.ERR : ADMIN_ACK.OK;
    v.setUint16(2, error, true);
    v.setUint32(4, data.byteLength, true);
    const w = new ChainWriter(ctx.mem, chain);
    w.write(head);
    w.write(data);
    return w.written;
  }
  #deliverEvents() {
    const ctx = this.#ctx;
    if (!ctx) return;
    const q = ctx.queues[MANAGEMENT_QUEUE.EVENT];
    if (!q.ready) return;
    let used = false;
    for (; ; ) {
      while (ctx.canProcess() && this.transport.hasEvents) {
        const chain = q.pop(ctx.mem);
        if (!chain) break;
        if (chain.error || chain.writableLen < ADMIN_EVENT_SIZE) {
          this.#log(`Event buffer refused: ${chain.error ?? `${chain.writableLen} bytes`}`);
          q.addUsed(ctx.mem, chain.head, 0);
          used = true;
          continue;
        }
        const e = this.transport.takeEvent();
        if (!e) {
          q.undoPop();
          break;
        }
        const b = new Uint8Array(ADMIN_EVENT_SIZE), v = new DataView(b.buffer);
        v.setBigUint64(0, BigInt(e.vdevId), true);
        v.setUint16(8, e.type, true);
        v.setUint32(12, e.data, true);
        v.setBigUint64(16, BigInt(e.addr), true);
        const w = new ChainWriter(ctx.mem, chain);
        w.write(b);
        q.addUsed(ctx.mem, chain.head, w.written);
        used = true;
      }
      const more = q.enableNotification(ctx.mem);
      if (!more || !ctx.canProcess() || !this.transport.hasEvents) break;
    }
    if (used) ctx.signalUsed(MANAGEMENT_QUEUE.EVENT);
  }
};
function virtualDevices(set) {
  return (type, attrs) => {
    const none = () => {
      if (attrs.byteLength) {
        throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, `device type ${type} takes no creation attributes`);
      }
    };
    switch (type) {
      case DEVICE_ID.RNG:
        none();
        return new RngDevice();
      case DEVICE_ID.CONSOLE:
        none();
        return new ConsoleDevice({
          output: set.consoleOutput ?? (() => {
          })
        });
      case DEVICE_ID.BLOCK: {
        const i = diskIndex(attrs);
        const disk = i === void 0 ? void 0 : set.disks[i];
        if (!disk) {
          throw new AdminError(ADMIN_ERR.INVALID_ATTRIBUTE, `blk needs a le32 disk index below ${set.disks.length}`);
        }
        return new BlockDevice(disk, {
          id: `admin-disk${i}`,
          ...set.log ? {
            onError: set.log
          } : {}
        });
      }
    }
    throw new AdminError(ADMIN_ERR.UNSUPPORTED_DEVICE_TYPE, `no virtual device of type ${type}`);
  };
}
function diskIndex(attrs) {
  return attrs.byteLength === 4 ? new DataView(attrs.buffer, attrs.byteOffset, 4).getUint32(0, true) : void 0;
}
function virtualDeviceResource(type, attrs) {
  return type === DEVICE_ID.BLOCK ? `admin disk ${diskIndex(attrs)}` : void 0;
}

// devices/vsock.ts
init_timer();
var HOST_CID = 2;
var VSOCK_HDR = 44;
var OP = {
  REQUEST: 1,
  RESPONSE: 2,
  RST: 3,
  SHUTDOWN: 4,
  RW: 5,
  CREDIT_UPDATE: 6,
  CREDIT_REQUEST: 7
};
var SHUTDOWN_RCV = 1;
var SHUTDOWN_SEND = 2;
var TYPE_STREAM = 1;
var RX3 = 0;
var TX3 = 1;
var EVENT = 2;
var VSOCK_BUF_ALLOC = 256 * 1024;
var VSOCK_MAX_PAYLOAD = 64 * 1024;
var VSOCK_MAX_PENDING_RESETS = 4096;
var VSOCK_MAX_CONNECTIONS = 1024;
var CTL_REQUEST = 1;
var CTL_RESPONSE = 2;
var CTL_CREDIT = 4;
var CTL_SHUTDOWN = 8;
var VSOCK_CONNECT_TIMEOUT_MS = 1e4;
var EPHEMERAL_BASE = 1073741824;
function encodeHeader(h) {
  const b = new Uint8Array(VSOCK_HDR);
  const v = new DataView(b.buffer);
  v.setBigUint64(0, h.srcCid, true);
  v.setBigUint64(8, h.dstCid, true);
  v.setUint32(16, h.srcPort, true);
  v.setUint32(20, h.dstPort, true);
  v.setUint32(24, h.len, true);
  v.setUint16(28, h.type, true);
  v.setUint16(30, h.op, true);
  v.setUint32(32, h.flags, true);
  v.setUint32(36, h.bufAlloc, true);
  v.setUint32(40, h.fwdCnt, true);
  return b;
}
function decodeHeader(b) {
  const v = new DataView(b.buffer, b.byteOffset, VSOCK_HDR);
  return {
    srcCid: v.getBigUint64(0, true),
    dstCid: v.getBigUint64(8, true),
    srcPort: v.getUint32(16, true),
    dstPort: v.getUint32(20, true),
    len: v.getUint32(24, true),
    type: v.getUint16(28, true),
    op: v.getUint16(30, true),
    flags: v.getUint32(32, true),
    bufAlloc: v.getUint32(36, true),
    fwdCnt: v.getUint32(40, true)
  };
}
function newConn(hostPort, guestPort, host) {
  return {
    hostPort,
    guestPort,
    state: "connecting",
    host,
    peerBufAlloc: 0,
    peerFwdCnt: 0,
    txCnt: 0,
    fwdCnt: 0,
    fwdCntSent: 0,
    inFlight: 0,
    pending: void 0,
    reading: false,
    hostEof: false,
    peerShutdown: 0,
    ctl: 0,
    writeChain: Promise.resolve()
  };
}
var VsockDevice = class _VsockDevice {
  deviceType = DEVICE_ID.VSOCK;
  queueMaxSizes;
  features = bit(F.EVENT_IDX) | bit(F.INDIRECT_DESC);
  configSize = 8;
  cid;
  #host;
  #ctx;
  #conns = /* @__PURE__ */ new Map();
  /** Connections owing the guest a control packet, in the order they asked. */
  #ctlConns = /* @__PURE__ */ new Set();
  /** Resets owed for unknown connections: key → [host port, guest port]. */
  #resets = /* @__PURE__ */ new Map();
  #droppedResets = 0;
  #nextEphemeral = EPHEMERAL_BASE;
  #resetPending = false;
  #log;
  constructor(opts) {
    if (!Number.isInteger(opts.cid) || opts.cid < 3 || opts.cid > 4294967294) {
      throw new RangeError(`Cannot use vsock CID ${opts.cid}: it must be 3 or more`);
    }
    this.cid = BigInt(opts.cid);
    this.#host = opts.host;
    const qs = opts.queueSize ?? 256;
    this.queueMaxSizes = [
      qs,
      qs,
      qs
    ];
    this.#log = opts.log ?? (() => {
    });
  }
  /** Open connections (including host connects the guest has not answered yet). */
  get connections() {
    return this.#conns.size;
  }
  /** Resets for unknown connections dropped because too many waited for receive buffers. */
  get droppedResets() {
    return this.#droppedResets;
  }
  readConfig(offset, data) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, this.cid, true);
    data.set(b.subarray(offset, offset + data.byteLength));
  }
  writeConfig() {
  }
  activate(ctx) {
    this.#ctx = ctx;
  }
  reset() {
    this.#closeAll();
    this.#ctx = void 0;
  }
  processQueue(index) {
    if (index === TX3) this.#transmit();
    else if (index === RX3) this.#flush();
    else if (index === EVENT) this.#sendReset();
  }
  #key(hostPort, guestPort) {
    return `${hostPort}:${guestPort}`;
  }
  #header(c, op, len = 0, flags = 0) {
    return encodeHeader({
      srcCid: BigInt(HOST_CID),
      dstCid: this.cid,
      srcPort: c.hostPort,
      dstPort: c.guestPort,
      len,
      type: TYPE_STREAM,
      op,
      flags,
      bufAlloc: VSOCK_BUF_ALLOC,
      fwdCnt: c.fwdCnt
    });
  }
  #rst(srcPort, dstPort) {
    return encodeHeader({
      srcCid: BigInt(HOST_CID),
      dstCid: this.cid,
      srcPort,
      dstPort,
      len: 0,
      type: TYPE_STREAM,
      op: OP.RST,
      flags: 0,
      bufAlloc: 0,
      fwdCnt: 0
    });
  }
  /** `c` owes the guest a control packet (coalesced: one of each kind at most). */
  #queueCtl(c, flag) {
    c.ctl |= flag;
    this.#ctlConns.add(c);
    this.#flush();
  }
  /** A reset for a connection that does not exist (or no longer does). */
  #queueRst(hostPort, guestPort) {
    const key = this.#key(hostPort, guestPort);
    if (this.#resets.has(key)) return;
    if (this.#resets.size >= VSOCK_MAX_PENDING_RESETS) {
      if (this.#droppedResets++ % 1024 === 0) {
        this.#log(`vsock: ${VSOCK_MAX_PENDING_RESETS} resets wait for receive buffers the guest does not post; dropped ${this.#droppedResets} so far`);
      }
      return;
    }
    this.#resets.set(key, [
      hostPort,
      guestPort
    ]);
    this.#flush();
  }
  /** Guest → host packets. */
  #transmit() {
    const ctx = this.#ctx;
    if (!ctx) return;
    serveQueue(ctx, TX3, (chain) => {
      if (!chain.error && chain.readableLen >= VSOCK_HDR) {
        const r = new ChainReader(ctx.mem, chain);
        const h = decodeHeader(r.read(VSOCK_HDR));
        if (h.op === OP.RW && (h.len > VSOCK_MAX_PAYLOAD || h.len > r.remaining)) {
          this.#malformed(h, r.remaining);
        } else {
          this.#packet(h, h.op === OP.RW && h.len > 0 ? r.read(h.len) : new Uint8Array(0));
        }
      }
      return 0;
    });
    this.#flush();
  }
  /** An RW packet longer than the protocol allows or than its own buffers: reset, said. */
  #malformed(h, carried) {
    this.#log(`vsock: guest port ${h.srcPort} sent a data packet of ${h.len} bytes ` + (h.len > VSOCK_MAX_PAYLOAD ? `(the most is ${VSOCK_MAX_PAYLOAD})` : `but its buffers hold ${carried}`) + "; resetting the connection");
    const c = this.#conns.get(this.#key(h.dstPort, h.srcPort));
    if (c && h.srcCid === this.cid) this.#drop(c, true);
    else this.#queueRst(h.dstPort, h.srcPort);
  }
  #packet(h, payload) {
    if (h.srcCid !== this.cid || h.dstCid !== BigInt(HOST_CID) || h.type !== TYPE_STREAM) {
      if (h.op !== OP.RST) this.#queueRst(h.dstPort, h.srcPort);
      return;
    }
    const key = this.#key(h.dstPort, h.srcPort);
    const c = this.#conns.get(key);
    if (h.op === OP.REQUEST) {
      if (c) return this.#drop(c, true);
      if (this.#conns.size >= VSOCK_MAX_CONNECTIONS) return this.#queueRst(h.dstPort, h.srcPort);
      return this.#guestConnect(h);
    }
    if (!c) {
      if (h.op !== OP.RST) this.#queueRst(h.dstPort, h.srcPort);
      return;
    }
    c.peerBufAlloc = h.bufAlloc;
    c.peerFwdCnt = h.fwdCnt;
    switch (h.op) {
      case OP.RESPONSE:
        if (c.state === "connecting" && c.opened) {
          c.state = "connected";
          c.opened.timer.cancel();
          c.opened.resolve(c.hostPort);
          delete c.opened;
          this.#pump(c);
        }
        return;
      case OP.RW:
        if (c.state !== "connected" || !c.host) return;
        if (c.peerShutdown & SHUTDOWN_SEND) {
          this.#log(`vsock: guest port ${c.guestPort} sent data after SHUTDOWN_SEND; resetting`);
          return this.#drop(c, true);
        }
        if (c.inFlight + payload.byteLength > VSOCK_BUF_ALLOC) {
          this.#log(`vsock: guest port ${c.guestPort} overran its credit; resetting`);
          return this.#drop(c, true);
        }
        c.inFlight += payload.byteLength;
        c.writeChain = c.writeChain.then(async () => {
          try {
            await c.host.write(payload);
          } catch {
            return this.#drop(c, true);
          }
          c.inFlight -= payload.byteLength;
          c.fwdCnt = c.fwdCnt + payload.byteLength >>> 0;
          if (c.fwdCnt - c.fwdCntSent >>> 0 >= VSOCK_BUF_ALLOC / 2) this.#creditUpdate(c);
        });
        return;
      case OP.CREDIT_REQUEST:
        return this.#creditUpdate(c);
      case OP.CREDIT_UPDATE:
        return this.#pump(c);
      case OP.SHUTDOWN: {
        const before = c.peerShutdown;
        c.peerShutdown |= h.flags & (SHUTDOWN_RCV | SHUTDOWN_SEND);
        if (c.peerShutdown === (SHUTDOWN_RCV | SHUTDOWN_SEND)) {
          void c.writeChain.then(() => this.#drop(c, true));
        } else if (c.peerShutdown & SHUTDOWN_SEND && !(before & SHUTDOWN_SEND)) {
          const host = c.host;
          c.writeChain = c.writeChain.then(() => host?.closeWrite?.()).catch(() => {
          });
        }
        if (c.peerShutdown & SHUTDOWN_RCV) c.pending = void 0;
        return;
      }
      case OP.RST:
        return this.#drop(c, false);
    }
  }
  #creditUpdate(c) {
    this.#queueCtl(c, CTL_CREDIT);
  }
  #guestConnect(h) {
    const c = newConn(h.dstPort, h.srcPort, void 0);
    c.peerBufAlloc = h.bufAlloc;
    c.peerFwdCnt = h.fwdCnt;
    const key = this.#key(c.hostPort, c.guestPort);
    this.#conns.set(key, c);
    this.#host.connect(h.dstPort).then((conn) => {
      if (this.#conns.get(key) !== c) return conn?.close();
      if (!conn) return this.#drop(c, true);
      c.host = conn;
      c.state = "connected";
      this.#queueCtl(c, CTL_RESPONSE);
      this.#pump(c);
    }, () => this.#drop(c, true));
  }
  /**
   * Opens a connection from the host to guest port `port`, carried by `host`. Resolves
   * with the host-side port once the guest accepts, or null when it refuses (RST), does
   * not answer within `timeoutMs`, or {@link VSOCK_MAX_CONNECTIONS} are open already.
   */
  connectToGuest(port, host, timeoutMs = VSOCK_CONNECT_TIMEOUT_MS) {
    if (!this.#ctx) return Promise.resolve(null);
    if (this.#conns.size >= VSOCK_MAX_CONNECTIONS) {
      this.#log(`vsock: ${VSOCK_MAX_CONNECTIONS} connections open; host connect refused`);
      return Promise.resolve(null);
    }
    const hostPort = this.#nextEphemeral++;
    if (this.#nextEphemeral > 4294967280) this.#nextEphemeral = EPHEMERAL_BASE;
    const c = newConn(hostPort, port, host);
    this.#conns.set(this.#key(hostPort, port), c);
    return new Promise((resolve) => {
      const timer = after(timeoutMs, () => {
        this.#log(`vsock: guest port ${port} did not answer a host connect in ${timeoutMs} ms`);
        this.#drop(c, true);
      });
      c.opened = {
        resolve,
        timer
      };
      this.#queueCtl(c, CTL_REQUEST);
    });
  }
  /** Credit the guest has left for data from us. */
  #credit(c) {
    return c.peerBufAlloc - (c.txCnt - c.peerFwdCnt >>> 0);
  }
  /** Reads more host data for `c` when it has none waiting and the guest has credit. */
  #pump(c) {
    if (c.state !== "connected" || !c.host) return;
    if (c.peerShutdown & SHUTDOWN_RCV) return;
    if (c.pending) return this.#flush();
    if (c.reading || c.hostEof || this.#credit(c) <= 0 || !this.#ctx?.canProcess()) return;
    c.reading = true;
    const buf = new Uint8Array(Math.min(VSOCK_MAX_PAYLOAD, this.#credit(c)));
    c.host.read(buf).then((n) => {
      c.reading = false;
      if (c.state !== "connected") return;
      if (n === null) {
        c.hostEof = true;
        this.#queueCtl(c, CTL_SHUTDOWN);
        return;
      }
      if (n > 0) c.pending = buf.subarray(0, n);
      this.#pump(c);
    }, () => {
      c.reading = false;
      this.#drop(c, true);
    });
  }
  /** Fills receive buffers: control packets first, then pending data within credit. */
  #flush() {
    this.#ctx?.guard("vsock receive queue", () => this.#fillRx());
  }
  #fillRx() {
    const ctx = this.#ctx;
    if (!ctx || !ctx.canProcess()) return;
    const q = ctx.queues[RX3];
    if (!q.ready) return;
    let used = false;
    let out = false;
    const pop = () => {
      for (; ; ) {
        const chain = q.pop(ctx.mem);
        if (chain) return chain;
        if (!q.enableNotification(ctx.mem)) {
          out = true;
          return null;
        }
      }
    };
    const put = (pkt) => {
      const chain = pop();
      if (!chain) return null;
      const w = new ChainWriter(ctx.mem, chain);
      const ok2 = !chain.error && w.remaining >= pkt.byteLength;
      if (ok2) w.write(pkt);
      q.addUsed(ctx.mem, chain.head, w.written);
      used = true;
      return ok2;
    };
    for (const [key, [hostPort, guestPort]] of this.#resets) {
      if (out) break;
      if (put(this.#rst(hostPort, guestPort))) this.#resets.delete(key);
    }
    const control = (kinds) => {
      for (const c of this.#ctlConns) {
        if (out) return;
        while (!out && c.ctl & kinds) {
          const flag = c.ctl & kinds & -(c.ctl & kinds);
          if (flag === CTL_SHUTDOWN && c.pending) break;
          const op = flag === CTL_REQUEST ? OP.REQUEST : flag === CTL_RESPONSE ? OP.RESPONSE : flag === CTL_CREDIT ? OP.CREDIT_UPDATE : OP.SHUTDOWN;
          const pkt = this.#header(c, op, 0, op === OP.SHUTDOWN ? SHUTDOWN_RCV | SHUTDOWN_SEND : 0);
          const ok2 = put(pkt);
          if (ok2 === null) break;
          if (ok2) {
            c.ctl &= ~flag;
            if (flag === CTL_CREDIT) c.fwdCntSent = c.fwdCnt;
          }
        }
        if (c.ctl === 0) this.#ctlConns.delete(c);
      }
    };
    control(CTL_REQUEST | CTL_RESPONSE | CTL_CREDIT);
    const emptied = [];
    for (const c of this.#conns.values()) {
      while (!out && c.pending && c.state === "connected" && !(c.ctl & CTL_RESPONSE)) {
        if (this.#credit(c) <= 0) break;
        const chain = pop();
        if (!chain) break;
        const w = new ChainWriter(ctx.mem, chain);
        if (!chain.error && w.remaining > VSOCK_HDR) {
          const n = Math.min(c.pending.byteLength, w.remaining - VSOCK_HDR, this.#credit(c));
          c.fwdCntSent = c.fwdCnt;
          w.write(this.#header(c, OP.RW, n));
          w.write(c.pending.subarray(0, n));
          c.txCnt = c.txCnt + n >>> 0;
          c.pending = n === c.pending.byteLength ? void 0 : c.pending.subarray(n);
          if (!c.pending) emptied.push(c);
        }
        q.addUsed(ctx.mem, chain.head, w.written);
        used = true;
      }
    }
    control(CTL_SHUTDOWN);
    if (used) ctx.signalUsed(RX3);
    for (const c of emptied) this.#pump(c);
  }
  #drop(c, sendRst) {
    const key = this.#key(c.hostPort, c.guestPort);
    if (this.#conns.get(key) !== c) return;
    this.#conns.delete(key);
    c.state = "closing";
    c.ctl = 0;
    this.#ctlConns.delete(c);
    c.host?.close();
    c.opened?.timer.cancel();
    c.opened?.resolve(null);
    if (sendRst) this.#queueRst(c.hostPort, c.guestPort);
  }
  #closeAll() {
    for (const c of [
      ...this.#conns.values()
    ]) this.#drop(c, false);
    this.#ctlConns.clear();
    this.#resets.clear();
  }
  /** Sends VIRTIO_VSOCK_EVENT_TRANSPORT_RESET (after a restore, host sockets are gone). */
  #sendReset() {
    this.#ctx?.guard("vsock event queue", () => this.#writeReset());
  }
  #writeReset() {
    const ctx = this.#ctx;
    if (!this.#resetPending || !ctx || !ctx.canProcess()) return;
    const q = ctx.queues[EVENT];
    if (!q.ready) return;
    const chain = q.pop(ctx.mem);
    if (!chain) return;
    const w = new ChainWriter(ctx.mem, chain);
    if (!chain.error && w.remaining >= 4) w.write(new Uint8Array(4));
    q.addUsed(ctx.mem, chain.head, w.written);
    this.#resetPending = false;
    ctx.signalUsed(EVENT);
  }
  /**
   * The CID. Connections are not saved: their host sockets cannot come along, so a restored
   * device sends the guest TRANSPORT_RESET (as Firecracker does).
   */
  save() {
    return {
      cid: this.cid.toString()
    };
  }
  /** Validates a saved state (untrusted), pure; see `bus/persist.ts`. */
  static check(x) {
    const s = x;
    if (typeof s !== "object" || s === null || typeof s.cid !== "string" || !/^\d{1,10}$/.test(s.cid)) {
      throw new RangeError("Cannot restore virtio-vsock: bad CID");
    }
    return {
      cid: s.cid
    };
  }
  /** Applies a saved state ({@link VsockDevice.check} first; the CID must be this device's). */
  restore(saved) {
    const s = _VsockDevice.check(saved);
    if (s.cid !== this.cid.toString()) {
      throw new RangeError(`Cannot restore virtio-vsock: the saved CID differs from ${this.cid}`);
    }
    this.#closeAll();
    this.#resetPending = true;
  }
};

// host/disk_file.ts
var POOLED_IOVECS = 256;
var MAX_POOLED = 64;
var NOWAIT_MAX = 1 << 20;
var RESIDENT_FS = /* @__PURE__ */ new Set([
  OVERLAYFS_SUPER_MAGIC,
  TMPFS_MAGIC
]);
var RESIDENT_PAGES = NOWAIT_MAX / PAGE_SIZE + 1;
var NOWAIT_STRETCH = 4 << 20;
var stretchBytes = 0;
var stretchEndQueued = false;
function advanceIovecs(bufs, i, skip, n) {
  let left = n;
  while (left > 0 && i < bufs.length) {
    const rest = bufs[i].byteLength - skip;
    if (left >= rest) {
      left -= rest;
      i++;
      skip = 0;
    } else {
      skip += left;
      left = 0;
    }
  }
  return [
    i,
    skip
  ];
}
var iovecViews = /* @__PURE__ */ new WeakMap();
function iovecView(iov) {
  let v = iovecViews.get(iov);
  if (v === void 0) {
    v = new DataView(iov.buffer, iov.byteOffset, iov.byteLength);
    iovecViews.set(iov, v);
  }
  return v;
}
function guestIovecs(view2, mem, bufs, skip, len) {
  const end = skip + len;
  let pos = 0, n = 0;
  for (const b of bufs) {
    const from = Math.max(skip, pos), to = Math.min(end, pos + b.len);
    if (to > from) {
      setIovec(view2, n++, mem.hostAddress(b.addr + (from - pos), to - from), to - from);
    }
    pos += b.len;
    if (pos >= end) break;
  }
  return n;
}
function promised(start) {
  try {
    return start() ?? Promise.resolve();
  } catch (e) {
    return Promise.reject(e);
  }
}
var FileDisk = class _FileDisk {
  path;
  readOnly;
  size;
  #fd;
  #closed;
  /** Iovec arrays not in use (one per vectored call in flight; kept for reuse). */
  #iovs;
  /**
   * Read and write system calls made so far: served on the device thread from the page cache
   * (`onThread`: RWF_NOWAIT, or a plain read of pages found cached) or off it (`offThread`,
   * Deno's blocking pool). For tests and stats.
   */
  calls;
  /**
   * How reads ([0]) and writes ([1]) are tried on this thread: with RWF_NOWAIT; for reads
   * the filesystem refused that way, a plain preadv of pages `mincore` found cached
   * ("resident"); or not at all ("off").
   */
  #onThread;
  /** The file mapped read-only, for residency checks only (never read through). */
  #map;
  /** One byte per page of a residency check. */
  #vec;
  constructor(path, fd, size, readOnly) {
    this.path = path;
    this.readOnly = readOnly;
    this.#closed = false;
    this.#iovs = [];
    this.calls = {
      onThread: 0,
      offThread: 0
    };
    this.#onThread = [
      "nowait",
      "nowait"
    ];
    this.#fd = fd;
    this.size = size;
  }
  /**
   * Opens `path` (read-only with `readOnly`); its size must be a multiple of 512. With
   * `onThread: false` every transfer runs off the calling thread (for guest RAM whose pages
   * may fault in from a file, as after a snapshot restore). `nowait: false` never asks for
   * RWF_NOWAIT: reads go by the residency check at once, whatever the filesystem, as on one
   * that refuses it (for tests and benchmarks).
   */
  static open(path, opts = {}) {
    let info;
    try {
      info = Deno.statSync(path);
    } catch (e) {
      throw new Error(`Cannot open disk ${path}: ${e instanceof Error ? e.message : String(e)}`);
    }
    if (!info.isFile) throw new Error(`Cannot open disk ${path}: not a regular file`);
    if (info.size % 512) {
      throw new Error(`Cannot open disk ${path}: ${info.size} bytes is not a multiple of 512`);
    }
    const ro = opts.readOnly ?? false;
    const fd = openFile(path, ro ? O_RDONLY : O_RDWR);
    const disk = new _FileDisk(path, fd, info.size, ro);
    if (opts.onThread === false) disk.#onThread = [
      "off",
      "off"
    ];
    else if (opts.nowait === false) disk.#onThread = [
      disk.#residentReads(true),
      "off"
    ];
    return disk;
  }
  #live() {
    if (this.#closed) throw new Error(`Disk ${this.path} is closed`);
  }
  /** Fills `dst` from `offset`. */
  read(dst, offset) {
    return promised(() => this.transfer([
      dst
    ], offset, false));
  }
  /** Fills `dsts` in order from `offset`: one preadv per call (more only for short reads). */
  readv(dsts, offset) {
    return promised(() => this.transfer(dsts, offset, false));
  }
  /** Writes `srcs` in order from `offset`, like {@link readv}. */
  writev(srcs, offset) {
    return promised(() => this.transfer(srcs, offset, true));
  }
  /**
   * Reads `bufs` in order from `offset` (or writes them there with `write`), on this thread
   * when the page cache can take or give everything at once: then it returns undefined, the
   * transfer done. Otherwise the rest goes off-thread and the promise settles when it is done.
   * Errors (a closed disk, a write to a read-only one, a failed call) throw or reject.
   */
  transfer(bufs, offset, write) {
    if (write && this.readOnly) throw new Error(`Disk ${this.path} is read-only`);
    return this.#vectored(bufs, offset, write);
  }
  /**
   * Like {@link transfer} for [skip, skip+len) of the guest buffers `bufs` (what virtio-blk
   * calls): when the page cache can serve it all at once, one call on this thread (RWF_NOWAIT,
   * or after the residency check) whose iovecs name guest RAM by host address (no views, no
   * promise); the rest goes through views.
   */
  transferGuest(mem, bufs, skip, len, offset, write) {
    if (write && this.readOnly) throw new Error(`Disk ${this.path} is read-only`);
    if (len === 0) return void 0;
    this.#live();
    const now = this.#now(mem, bufs, skip, len, offset, write);
    const moved = Math.max(now, 0);
    if (moved === len) return void 0;
    const rest = bufferViews(mem, bufs, skip + moved, len - moved);
    return this.#vectored(rest, offset + moved, write, now < 0);
  }
  /**
   * What virtio-blk calls for requests it merged: one call on this thread, as in
   * {@link transferGuest}, for the first `len` bytes of `bufs` (at most 256 buffers and
   * 1 MiB); the bytes it moved from the start, 0 when it moved none or could not try (a
   * closed or read-only disk, data not cached). Never waits for the disk; errors are left to
   * the requests' own transfers.
   */
  transferGuestNow(mem, bufs, len, offset, write) {
    if (this.#closed || write && this.readOnly || len === 0) return 0;
    return Math.max(this.#now(mem, bufs, 0, len, offset, write), 0);
  }
  /**
   * One call on this thread for [skip, skip+len) of `bufs` when the page cache may serve it:
   * the bytes moved (0 when none), or -1 when it was not tried (this direction goes
   * off-thread, too many buffers or bytes, or the thread's stretch is used up).
   */
  #now(mem, bufs, skip, len, offset, write) {
    if (this.#onThread[write ? 1 : 0] === "off" || bufs.length > POOLED_IOVECS || len > NOWAIT_MAX || stretchBytes + len > NOWAIT_STRETCH) return -1;
    const iov = this.#iovs.pop() ?? new Uint8Array(POOLED_IOVECS * IOVEC_SIZE);
    let moved;
    try {
      const count = guestIovecs(iovecView(iov), mem, bufs, skip, len);
      moved = this.#cached(iov, count, offset, len, write);
    } finally {
      this.#release(iov, false);
    }
    if (moved > 0) this.calls.onThread++;
    return moved;
  }
  #vectored(bufs, offset, write, onThread = true) {
    let total = 0;
    for (const b of bufs) total += b.byteLength;
    if (total === 0) return void 0;
    this.#live();
    const big = bufs.length > POOLED_IOVECS;
    const iov = big ? new Uint8Array(IOV_MAX * IOVEC_SIZE) : this.#iovs.pop() ?? new Uint8Array(POOLED_IOVECS * IOVEC_SIZE);
    let i = 0, skip = 0, pos = offset, left = total;
    try {
      if (onThread && total <= NOWAIT_MAX && stretchBytes + total <= NOWAIT_STRETCH) {
        while (left > 0) {
          if (bufs[i].byteLength === skip) {
            i++;
            skip = 0;
            continue;
          }
          const n = this.#cached(iov, fillIovecs(iov, bufs, i, skip), pos, left, write);
          if (n <= 0) break;
          this.calls.onThread++;
          pos += n;
          left -= n;
          if (left > 0) [i, skip] = advanceIovecs(bufs, i, skip, n);
        }
      }
    } catch (e) {
      this.#release(iov, big);
      throw e;
    }
    if (left === 0) {
      this.#release(iov, big);
      return void 0;
    }
    return this.#offThread(bufs, iov, big, i, skip, pos, write);
  }
  /** The rest of a transfer, off the device thread, from piece `i` at byte `skip`. */
  async #offThread(bufs, iov, big, i, skip, pos, write) {
    try {
      while (i < bufs.length) {
        if (bufs[i].byteLength === skip) {
          i++;
          skip = 0;
          continue;
        }
        this.#live();
        const count = fillIovecs(iov, bufs, i, skip);
        this.calls.offThread++;
        const n = write ? await pwritevOffThread(this.#fd, iov, count, pos) : await preadvOffThread(this.#fd, iov, count, pos);
        const what = write ? "pwritev" : "preadv";
        if (n < 0) throw new Error(`${what} of ${this.path} at ${pos} failed`);
        if (n === 0) {
          throw new Error(`${what} of ${this.path} at ${pos}: ${write ? "no progress" : "end of file"}`);
        }
        pos += n;
        [i, skip] = advanceIovecs(bufs, i, skip, n);
      }
    } finally {
      this.#release(iov, big);
    }
  }
  #release(iov, big) {
    if (!big && this.#iovs.length < MAX_POOLED) this.#iovs.push(iov);
  }
  /** Writes all of `src` at `offset`. */
  write(src, offset) {
    return promised(() => this.transfer([
      src
    ], offset, true));
  }
  /**
   * One call on this thread for what the page cache holds of the `len` bytes at `pos` (the
   * iovecs may cover less): the bytes it moved, or 0 when the rest must go off-thread
   * (nothing cached, end of file, an error the off-thread call will report). A file, kernel
   * or libc that cannot do RWF_NOWAIT is not asked again in that direction; its reads go by
   * the residency check from then on.
   */
  #cached(iov, count, pos, len, write) {
    const dir = write ? 1 : 0;
    let n = 0;
    if (this.#onThread[dir] === "nowait") {
      n = write ? pwritevNowait(this.#fd, iov, count, pos) : preadvNowait(this.#fd, iov, count, pos);
      if (n === -EOPNOTSUPP || n === -EINVAL || n === -ENOSYS) {
        this.#onThread[dir] = write ? "off" : this.#residentReads();
      }
    }
    if (this.#onThread[dir] === "resident" && pos < this.size && this.#resident(pos, Math.min(len, this.size - pos))) {
      n = preadvSync(this.#fd, iov, count, pos);
    }
    if (n <= 0) return 0;
    stretchBytes += n;
    if (!stretchEndQueued) {
      stretchEndQueued = true;
      queueMicrotask(() => {
        stretchBytes = 0;
        stretchEndQueued = false;
      });
    }
    return n;
  }
  /**
   * Maps the file for residency checks: "resident", or "off" where it cannot be mapped or
   * (unless `anyFs`) its filesystem is not one of {@link RESIDENT_FS}.
   */
  #residentReads(anyFs = false) {
    if (this.#map) return "resident";
    if (this.size === 0) return "off";
    try {
      if (!anyFs && !RESIDENT_FS.has(fsType(this.#fd))) return "off";
      const ptr2 = mmap(this.size, PROT_READ, MAP_SHARED, this.#fd);
      this.#map = {
        ptr: ptr2,
        base: Number(Deno.UnsafePointer.value(ptr2)),
        length: this.size
      };
      this.#vec = new Uint8Array(RESIDENT_PAGES);
      return "resident";
    } catch {
      return "off";
    }
  }
  /** Whether every page of [pos, pos + len) is in the page cache (false past the end). */
  #resident(pos, len) {
    const map = this.#map, vec = this.#vec;
    if (!map || !vec || pos + len > map.length) return false;
    const first = Math.floor(pos / PAGE_SIZE), end = Math.ceil((pos + len) / PAGE_SIZE);
    const pages = end - first;
    if (pages > vec.byteLength) return false;
    if (mincore(map.base + first * PAGE_SIZE, pages * PAGE_SIZE, vec) < 0) return false;
    for (let i = 0; i < pages; i++) if ((vec[i] & 1) === 0) return false;
    return true;
  }
  async flush() {
    this.#live();
    if (await fdatasyncOffThread(this.#fd) < 0) {
      throw new Error(`fdatasync of ${this.path} failed`);
    }
  }
  async discard(offset, len) {
    this.#live();
    const mode = FALLOC_FL_PUNCH_HOLE | FALLOC_FL_KEEP_SIZE;
    await fallocateOffThread(this.#fd, mode, offset, len);
  }
  async writeZeroes(offset, len) {
    this.#live();
    const r = await fallocateOffThread(this.#fd, FALLOC_FL_ZERO_RANGE | FALLOC_FL_KEEP_SIZE, offset, len);
    if (r === 0) return;
    const zeros = new Uint8Array(Math.min(len, 1 << 20));
    for (let done = 0; done < len; done += zeros.byteLength) {
      const part = zeros.subarray(0, Math.min(zeros.byteLength, len - done));
      await this.#vectored([
        part
      ], offset + done, true, false);
    }
  }
  /** Closes the file (after the device stopped: in-flight calls would fail). */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    const map = this.#map;
    this.#map = void 0;
    try {
      if (map) munmap(map.ptr, map.length);
    } finally {
      closeFd(this.#fd);
    }
  }
};

// host/tap.ts
var Tap = class _Tap {
  fd;
  name;
  #closed = false;
  constructor(fd, name2) {
    this.fd = fd;
    this.name = name2;
  }
  /** Opens (creating if needed) the TAP interface `name` in the calling thread's netns. */
  static open(name2) {
    const enc = new TextEncoder().encode(name2);
    if (enc.byteLength === 0 || enc.byteLength > 15) {
      throw new RangeError(`Cannot open TAP ${JSON.stringify(name2)}: a name has 1 to 15 bytes`);
    }
    const fd = openFile("/dev/net/tun", O_RDWR | O_NONBLOCK);
    try {
      tunSetIff(fd, name2, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
      tunSetVnetHdrSize(fd, 12);
      const t = new _Tap(fd, name2);
      t.setOffload(0);
      return t;
    } catch (e) {
      closeFd(fd);
      throw e;
    }
  }
  /** TUNSETOFFLOAD: which offloads the guest accepts in received frames (`TUN_F` bits). */
  setOffload(flags) {
    tunSetOffload(this.fd, flags);
  }
  /** Reads one frame (with its header) into `buf`; 0 when none is waiting. */
  read(buf) {
    const n = readFd(this.fd, buf);
    return n < 0 ? 0 : n;
  }
  /** Writes one frame (with its header); false when the TAP queue is full (dropped). */
  write(frame2) {
    return writeFd(this.fd, frame2) === frame2.byteLength;
  }
  close() {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.fd);
  }
};

// vmm/virtio_mmio.ts
init_timer();
var CLOSE_DRAIN_MS = 2e3;
var IrqfdInterrupt = class {
  vm;
  gsi;
  fd;
  #closed;
  constructor(vm, gsi) {
    this.vm = vm;
    this.gsi = gsi;
    this.fd = eventfd();
    this.#closed = false;
    vm.irqfd(this.fd, gsi);
  }
  trigger() {
    if (!this.#closed) eventfdWrite(this.fd);
  }
  close() {
    if (this.#closed) return;
    this.#closed = true;
    this.vm.irqfd(this.fd, this.gsi, {
      deassign: true
    });
    closeFd(this.fd);
  }
};
var IoeventfdNotifier = class {
  vm;
  poller;
  base;
  #fds;
  #bound;
  constructor(vm, poller, base) {
    this.vm = vm;
    this.poller = poller;
    this.base = base;
    this.#fds = /* @__PURE__ */ new Map();
    this.#bound = /* @__PURE__ */ new Set();
  }
  bind(index, notify2) {
    if (this.#bound.has(index)) return;
    let fd = this.#fds.get(index);
    if (fd === void 0) this.#fds.set(index, fd = eventfd());
    this.vm.ioeventfd({
      addr: this.base + REG.QUEUE_NOTIFY,
      len: 4,
      fd,
      datamatch: index
    });
    this.poller.watch(fd, notify2);
    this.#bound.add(index);
  }
  unbind(index) {
    const fd = this.#fds.get(index);
    if (fd === void 0 || !this.#bound.delete(index)) return;
    this.poller.unwatch(fd);
    this.vm.ioeventfd({
      addr: this.base + REG.QUEUE_NOTIFY,
      len: 4,
      fd,
      datamatch: index,
      deassign: true
    });
  }
  /** Unbinds every queue and closes the eventfds. */
  close() {
    for (const i of [
      ...this.#bound
    ]) this.unbind(i);
    for (const fd of this.#fds.values()) closeFd(fd);
    this.#fds.clear();
  }
};
function attachVirtioMmio(m, backend, o) {
  const irq = new IrqfdInterrupt(m.vm, o.gsi);
  const notifier = new IoeventfdNotifier(m.vm, m.events, o.base);
  const log = o.log ?? (() => {
  });
  const isrWord = m.virtioIsr?.claim(o.base);
  const device2 = new VirtioDevice(backend, {
    mem: m.memory,
    interrupt: irq,
    legacy: o.legacy ?? false,
    log,
    ...isrWord ? {
      isrWord
    } : {}
  });
  const transport = new MmioTransport(device2, {
    notifier,
    log
  });
  try {
    m.mmio.register(o.base, MMIO_WINDOW, transport, `virtio-mmio@0x${o.base.toString(16)}`);
  } catch (e) {
    if (isrWord) m.virtioIsr.release(o.base);
    throw e;
  }
  m.onClose(async () => {
    try {
      await within(device2.stop(), CLOSE_DRAIN_MS);
    } finally {
      device2.dispose();
      notifier.close();
      irq.close();
    }
  });
  return {
    device: device2,
    transport,
    base: o.base,
    gsi: o.gsi
  };
}

// host/vsock_unix.ts
init_timer();
init_unix_socket();
var MAX_CONNECT_LINE = 64;
var CONNECT_LINE_TIMEOUT_MS = 1e4;
function wrap(conn, ahead = new Uint8Array(0), onClose = () => {
}) {
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
      if (!closed) await conn.closeWrite();
    },
    close() {
      if (closed) return;
      closed = true;
      onClose();
      try {
        conn.close();
      } catch {
      }
    }
  };
}
var UnixVsockHost = class {
  path;
  #listener;
  #open;
  #created;
  #maxConnections;
  #lineTimeoutMs;
  #connectPort;
  /**
   * Serves `path`. `opts.maxConnections` (default {@link VSOCK_MAX_CONNECTIONS}) bounds the
   * Unix connections open at once, those still handshaking included;
   * `opts.connectLineTimeoutMs` (default {@link CONNECT_LINE_TIMEOUT_MS}) is how long a host
   * program may take to send its `CONNECT` line. `opts.connectPort` makes a guest's
   * connect to host port P some other way than the Unix socket `<path>_P` (the portable
   * machine reaches this host's `<path>_P` through its bridge); null means refused.
   */
  constructor(path, opts = {}) {
    this.path = path;
    this.#open = /* @__PURE__ */ new Set();
    this.#created = false;
    this.#maxConnections = opts.maxConnections ?? VSOCK_MAX_CONNECTIONS;
    this.#lineTimeoutMs = opts.connectLineTimeoutMs ?? CONNECT_LINE_TIMEOUT_MS;
    this.#connectPort = opts.connectPort ?? ((port) => Deno.connect({
      transport: "unix",
      path: `${this.path}_${port}`
    }));
  }
  /** A guest connect to `port`: `<path>_<port>`, or null when nobody listens there. */
  async connect(port) {
    try {
      const c = await this.#connectPort(port);
      if (!c) return null;
      this.#open.add(c);
      return wrap(c, void 0, () => this.#open.delete(c));
    } catch {
      return null;
    }
  }
  /**
   * Accepts host connections on `path` and forwards each to the guest port it names. Only a
   * stale socket (one nobody listens on) is replaced; anything else at `path` is refused,
   * never deleted.
   */
  async listen(device2) {
    await removeStaleSocket(this.path, "vsock");
    this.#listener = Deno.listen({
      transport: "unix",
      path: this.path
    });
    this.#created = true;
    Deno.chmodSync(this.path, 384);
    void this.#accept(device2, this.#listener);
  }
  async #accept(device2, l) {
    try {
      for await (const conn of l) {
        if (this.#open.size >= this.#maxConnections) this.#drop(conn);
        else void this.#handshake(device2, conn);
      }
    } catch {
    }
  }
  async #handshake(device2, conn) {
    this.#open.add(conn);
    const buf = new Uint8Array(MAX_CONNECT_LINE);
    let n = 0, nl = -1;
    const timer = after(this.#lineTimeoutMs, () => this.#drop(conn));
    try {
      while (nl < 0 && n < buf.byteLength) {
        const r = await conn.read(buf.subarray(n));
        if (r === null) break;
        n += r;
        nl = buf.subarray(0, n).indexOf(10);
      }
    } catch {
    } finally {
      timer.cancel();
    }
    const line = nl >= 0 ? new TextDecoder().decode(buf.subarray(0, nl)) : "";
    const m = /^CONNECT (\d{1,10})$/.exec(line.trim());
    const port = m ? Number(m[1]) : -1;
    if (port < 0 || port > 4294967295) return this.#drop(conn);
    const vc = wrap(conn, buf.slice(nl + 1, n), () => this.#open.delete(conn));
    const local = await device2.connectToGuest(port, vc);
    if (local === null) return this.#drop(conn);
    try {
      await vc.write(new TextEncoder().encode(`OK ${local}
`));
    } catch {
      this.#drop(conn);
    }
  }
  #drop(conn) {
    this.#open.delete(conn);
    try {
      conn.close();
    } catch {
    }
  }
  /** Stops listening, closes every connection and removes the socket file. */
  close() {
    try {
      this.#listener?.close();
    } catch {
    }
    this.#listener = void 0;
    for (const c of this.#open) this.#drop(c);
    if (!this.#created) return;
    this.#created = false;
    try {
      Deno.removeSync(this.path);
    } catch {
    }
  }
  /** Host connections open now (tests: a closed one must not stay here). */
  get openConnections() {
    return this.#open.size;
  }
};

// vmm/devices_setup.ts
var VIRTIO_MMIO_BASE = 3489660928;
var VIRTIO_GSIS = [
  5,
  6,
  7,
  9,
  10,
  11,
  13,
  14,
  15,
  16,
  17,
  18,
  19,
  20,
  21,
  22
];
var legacyVirtioGsis = (n) => Array.from({
  length: n
}, (_, i) => 5 + i);
function defaultMac(i) {
  return `52:54:00:12:34:${(86 + i).toString(16).padStart(2, "0")}`;
}
function planVirtio(cfg) {
  const plan = [];
  cfg.disks.forEach((disk, index) => plan.push({
    name: `disk${index}`,
    kind: "disk",
    index,
    disk
  }));
  cfg.nets.forEach((net, index) => plan.push({
    name: `net${index}`,
    kind: "net",
    index,
    net
  }));
  if (cfg.rng) plan.push({
    name: "rng",
    kind: "rng"
  });
  if (cfg.console === "virtio") plan.push({
    name: "console",
    kind: "console"
  });
  if (cfg.vsock) plan.push({
    name: "vsock",
    kind: "vsock",
    vsock: cfg.vsock
  });
  if (cfg.admin) plan.push({
    name: "admin",
    kind: "admin",
    admin: cfg.admin
  });
  return plan;
}
function shadowBackend(p) {
  switch (p.kind) {
    case "disk":
      return new BlockDevice(shadowDisk(p.disk.readOnly ?? false), {
        id: p.disk.id ?? p.name
      });
    case "net":
      return new NetDevice({
        read: () => 0,
        write: () => false,
        setOffload: () => {
        }
      }, {
        mac: p.net.mac ?? defaultMac(p.index)
      });
    case "rng":
      return new RngDevice();
    case "console":
      return new ConsoleDevice({
        output: () => {
        }
      });
    case "vsock":
      return new VsockDevice({
        cid: p.vsock.cid,
        host: {
          connect: () => Promise.resolve(null)
        }
      });
    case "admin":
      return new ManagementDevice({
        mem: GuestMemory.allocate([
          {
            gpa: 0,
            size: 4096
          }
        ]),
        factory: shadowVirtualDevices(p.admin)
      });
  }
}
function shadowDisk(readOnly) {
  const none = () => Promise.reject(new Error("shadow disk"));
  return {
    size: 0,
    readOnly,
    read: none,
    write: none,
    flush: none,
    discard: none,
    writeZeroes: none
  };
}
function shadowVirtualDevices(admin) {
  return virtualDevices({
    disks: admin.disks.map((d) => shadowDisk(d.readOnly ?? false))
  });
}
async function attachDevices(m, cfg, io = {}) {
  const i8042 = new I8042({
    onReset: () => void m.requestStop({
      kind: "reset"
    }),
    // IRQ 1 is edge-triggered on the ISA side: a pulse.
    onInterrupt: () => {
      m.vm.irqLine(1, 1);
      m.vm.irqLine(1, 0);
    }
  });
  const devices = {
    announce: [],
    virtio: [],
    i8042,
    rtc: new Rtc()
  };
  const mmioBase = io.mmioBase ?? VIRTIO_MMIO_BASE;
  const add = (name2, backend) => {
    const i = devices.virtio.length;
    const base = mmioBase + i * 4096, gsi = (io.gsis ?? VIRTIO_GSIS)[i];
    if (gsi === void 0) throw new RangeError(`No interrupt line for virtio device ${i}`);
    const log = io.log ? (msg2) => io.log(`${name2}: ${msg2}`) : void 0;
    const v = attachVirtioMmio(m, backend, {
      base,
      gsi,
      ...log ? {
        log
      } : {}
    });
    devices.virtio.push({
      ...v,
      name: name2
    });
    devices.announce.push(`virtio_mmio.device=4K@0x${base.toString(16)}:${gsi}`);
  };
  m.pio.register(96, 5, i8042, "i8042");
  m.pio.register(112, 2, devices.rtc, "rtc");
  m.pio.register(SLEEP_CONTROL_PORT, 2, {
    read: (_o, d) => d.fill(0),
    write: (o, d) => {
      const v = d[0] ?? 0;
      if (o === 0 && v & SLP_EN && (v >> SLP_TYP_SHIFT & 7) === S5_SLP_TYP) {
        void m.requestStop({
          kind: "shutdown"
        });
      }
    }
  }, "acpi-sleep");
  for (const p of planVirtio(cfg)) {
    switch (p.kind) {
      case "disk": {
        let disk = io.diskImages?.[p.index];
        if (!disk) {
          const file = FileDisk.open(p.disk.path, {
            readOnly: p.disk.readOnly ?? false,
            onThread: io.diskOnThread ?? true
          });
          m.onClose(() => file.close());
          disk = file;
        }
        add(p.name, new BlockDevice(disk, {
          id: p.disk.id ?? p.name,
          ...io.log ? {
            onError: io.log
          } : {}
        }));
        break;
      }
      case "net": {
        const tap = Tap.open(p.net.tap);
        m.onClose(() => tap.close());
        const net = new NetDevice(tap, {
          mac: p.net.mac ?? defaultMac(p.index)
        });
        add(p.name, net);
        m.events.watch(tap.fd, () => net.backendReadable(), {
          passive: true
        });
        break;
      }
      case "rng":
        add(p.name, new RngDevice());
        break;
      case "console":
        devices.console = new ConsoleDevice({
          output: io.consoleOutput ?? ((b) => Deno.stdout.writeSync(b))
        });
        add(p.name, devices.console);
        break;
      case "vsock": {
        const host = new UnixVsockHost(p.vsock.path, io.vsockConnect ? {
          connectPort: io.vsockConnect
        } : {});
        const vsock = new VsockDevice({
          cid: p.vsock.cid,
          host,
          ...io.log ? {
            log: io.log
          } : {}
        });
        add(p.name, vsock);
        m.onClose(() => host.close());
        await host.listen(vsock);
        break;
      }
      case "admin": {
        const disks = p.admin.disks.map((d) => {
          const file = FileDisk.open(d.path, {
            readOnly: d.readOnly ?? false,
            onThread: io.diskOnThread ?? true
          });
          m.onClose(() => file.close());
          return file;
        });
        const log = io.log ? (msg2) => io.log(`admin: ${msg2}`) : void 0;
        devices.admin = new ManagementDevice({
          mem: m.memory,
          factory: virtualDevices({
            disks,
            consoleOutput: io.consoleOutput ?? ((b) => Deno.stdout.writeSync(b)),
            ...log ? {
              log
            } : {}
          }),
          exclusive: virtualDeviceResource,
          ...log ? {
            log
          } : {}
        });
        add(p.name, devices.admin);
        break;
      }
    }
  }
  return devices;
}

// vmm/snapshot_state.ts
var STATE_FILE = "state.bin";
function checkState(x) {
  const s = x;
  const bad = (what) => {
    throw new SnapshotError(`Cannot restore: ${what}`);
  };
  if (typeof s !== "object" || s === null || s.kind !== "denovm-snapshot") {
    bad("not a denovm snapshot state");
  }
  const m = s.machine;
  if (!m || !Array.isArray(m.ram) || m.ram.length === 0 || m.ram.length > 4) {
    bad("bad machine RAM layout");
  }
  for (const r of m.ram) {
    if (!Number.isSafeInteger(r?.gpa) || !Number.isSafeInteger(r?.size) || r.size <= 0 || r.size % 4096 || r.gpa % 4096) {
      bad("bad machine RAM region");
    }
  }
  if (!Number.isSafeInteger(m.mmioBase) || m.mmioBase % 4096) bad("bad MMIO base");
  if (!Number.isInteger(m.vcpus) || m.vcpus < 1 || m.vcpus > 64) bad("bad vCPU count");
  const legacy = [
    0,
    1,
    2,
    4,
    8,
    12
  ];
  const count = Array.isArray(s.devices?.virtio) ? s.devices.virtio.length : 0;
  if (m.gsis !== void 0) {
    const g2 = m.gsis;
    if (!Array.isArray(g2) || g2.length !== count || !g2.every((x2) => Number.isInteger(x2) && x2 >= 0 && x2 <= 23 && !legacy.includes(x2)) || new Set(g2).size !== g2.length) {
      bad("bad virtio interrupt lines (one distinct GSI 0-23 per device, no legacy device's)");
    }
  }
  const lines = Array.isArray(m.gsis) ? m.gsis : legacyVirtioGsis(count);
  if (m.vmgenid !== void 0) {
    const g2 = m.vmgenid;
    const inRam = (a) => m.ram.some((r) => a >= r.gpa && a + 16 <= r.gpa + r.size);
    if (typeof g2 !== "object" || g2 === null || !Number.isSafeInteger(g2.addr) || g2.addr % 8 || !inRam(g2.addr) || !Number.isInteger(g2.gsi) || g2.gsi < 0 || g2.gsi > 23 || lines.includes(g2.gsi) || legacy.includes(g2.gsi)) {
      bad("bad VM generation ID (address in RAM, a GSI 0-23 of its own)");
    }
  }
  if (!Array.isArray(s.vcpus) || s.vcpus.length !== m.vcpus) {
    bad("vCPU states do not match the vCPU count");
  }
  const v = s.vm;
  const blob = (b, n) => b instanceof Uint8Array && b.byteLength === n;
  if (!v || !Array.isArray(v.pic) || !blob(v.pic[0], 512) || !blob(v.pic[1], 512) || !blob(v.ioapic, 512)) {
    bad("bad irqchip state");
  }
  if (!blob(v.pit, 112)) bad("bad PIT state");
  if (typeof v.clock !== "bigint" || v.clock < 0n) bad("bad clock");
  const d = s.devices;
  if (!d || !Array.isArray(d.virtio) || !d.uart || !d.i8042 || !d.rtc) bad("bad device states");
  const mem = s.memory;
  if (!mem || !Number.isSafeInteger(mem.size) || !Array.isArray(mem.layers) || mem.layers.length < 1 || mem.layers.length > 64) bad("bad memory section");
  for (const [i, l] of mem.layers.entries()) {
    if (typeof l?.file !== "string" || l.file.length === 0 || l.file.includes("\0")) {
      bad("bad memory layer file");
    }
    if (i === 0 && l.ranges !== void 0) bad("the first memory layer must be a full file");
    if (i > 0) {
      if (!Array.isArray(l.ranges) || l.ranges.length > MAX_RANGES) bad("bad diff layer ranges");
      for (const r of l.ranges) {
        const [o, n] = Array.isArray(r) ? r : [
          NaN,
          NaN
        ];
        if (!Number.isSafeInteger(o) || !Number.isSafeInteger(n) || o < 0 || n <= 0 || o % PAGE || n % PAGE || o + n > mem.size) bad("a diff range lies outside the memory");
      }
    }
  }
  return s;
}
var LAYER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;
var msg = (e) => e instanceof Error ? e.message : String(e);
async function validateSnapshot(raw2, dir, overrides = {}) {
  const bad = (what) => {
    throw new SnapshotError(`Cannot restore ${dir}: ${what}`);
  };
  const s = checkState(raw2);
  let cfg;
  try {
    cfg = parseConfig(s.config);
  } catch (e) {
    return bad(`the saved config is invalid (${msg(e)})`);
  }
  if (overrides.disks) {
    if (overrides.disks.length !== cfg.disks.length) {
      bad(`${overrides.disks.length} disk overrides for ${cfg.disks.length} disks`);
    }
    cfg.disks = cfg.disks.map((d, i) => ({
      ...d,
      path: overrides.disks[i]
    }));
  }
  if (overrides.taps) {
    if (overrides.taps.length !== cfg.nets.length) {
      bad(`${overrides.taps.length} TAP overrides for ${cfg.nets.length} nets`);
    }
    cfg.nets = cfg.nets.map((n, i) => ({
      ...n,
      tap: overrides.taps[i]
    }));
  }
  const ram = s.machine.ram;
  if (s.machine.vcpus !== cfg.vcpus) {
    bad(`the machine has ${s.machine.vcpus} vCPUs, its config ${cfg.vcpus}`);
  }
  let total = 0;
  for (const [i, r] of ram.entries()) {
    if (r.gpa < 0) bad(`RAM region ${i} starts below 0`);
    const prev = ram[i - 1];
    if (prev && prev.gpa + prev.size > r.gpa) {
      bad(`RAM regions ${i - 1} and ${i} overlap or are out of order`);
    }
    if (r.gpa < MMIO_GAP_END && r.gpa + r.size > MMIO_GAP_START) {
      bad(`RAM region ${i} lies in the MMIO gap`);
    }
    total += r.size;
  }
  if (total > cfg.memMiB * 1024 * 1024) {
    bad(`the machine has ${total} bytes of RAM, its config ${cfg.memMiB} MiB`);
  }
  if (s.memory.size !== total) bad(`memory section of ${s.memory.size} bytes for ${total} of RAM`);
  const plan = planVirtio(cfg);
  const windows = {
    start: s.machine.mmioBase,
    end: s.machine.mmioBase + plan.length * 4096
  };
  if (windows.end > MMIO_GAP_END) bad("the device windows end above 4 GiB");
  if (ram.some((r) => r.gpa < windows.end && windows.start < r.gpa + r.size)) {
    bad("the device windows overlap RAM");
  }
  const vcpus = s.vcpus.map((v, i) => {
    try {
      return validateVcpuState(v, i);
    } catch (e) {
      return bad(msg(e));
    }
  });
  const check2 = (what, f) => {
    try {
      f();
    } catch (e) {
      bad(`${what}: ${msg(e)}`);
    }
  };
  check2("UART", () => new Uart(Uart.createState(), {
    output: () => {
    },
    interrupt: {
      trigger() {
      }
    }
  }).restore(s.devices.uart));
  check2("i8042", () => new I8042({
    onReset: () => {
    }
  }).restore(s.devices.i8042));
  check2("RTC", () => Rtc.check(s.devices.rtc));
  const names = plan.map((p) => p.name), saved = s.devices.virtio.map((d) => d?.name);
  if (names.join(",") !== saved.join(",")) {
    bad(`devices [${saved}] in the snapshot, [${names}] configured`);
  }
  const map = layoutRamMap(ram);
  for (const [i, p] of plan.entries()) {
    check2(p.name, () => {
      const shadow = shadowBackend(p);
      const st = s.devices.virtio[i].state;
      const checked = MmioTransport.check(st, {
        deviceType: shadow.deviceType,
        offered: offeredFeatures(shadow.features, false),
        queueMaxSizes: shadow.queueMaxSizes
      }, map);
      if (checked.device.backend === void 0) return;
      if (p.kind === "admin") {
        ManagementDevice.check(checked.device.backend, map, shadowVirtualDevices(p.admin), virtualDeviceResource);
      } else shadow.restore?.(checked.device.backend);
    });
  }
  if (!overrides.diskImages) {
    try {
      await checkDiskFiles(cfg.disks, cfg.admin?.disks);
    } catch (e) {
      bad(msg(e));
    }
  }
  let real;
  try {
    real = await Deno.realPath(dir);
  } catch (e) {
    return bad(msg(e));
  }
  const layers = [];
  for (const l of s.memory.layers) {
    if (!LAYER_NAME.test(l.file)) {
      bad(`memory layer ${JSON.stringify(l.file.slice(0, 80))} is not a file name in the snapshot directory`);
    }
    const path = `${real}/${l.file}`;
    let info, where;
    try {
      where = await Deno.realPath(path);
      info = await Deno.stat(where);
    } catch {
      return bad(`memory file ${l.file} is missing`);
    }
    if (!where.startsWith(`${real}/`)) {
      bad(`memory file ${l.file} leads out of the snapshot directory`);
    }
    if (!info.isFile) bad(`memory file ${l.file} is not a regular file`);
    if (info.size !== total) {
      bad(`memory file ${l.file} is ${info.size} bytes, the snapshot needs ${total}`);
    }
    layers.push({
      ...l,
      file: path
    });
  }
  return {
    state: s,
    config: cfg,
    vcpus,
    layers
  };
}

// vmm/vmm.ts
init_config();

// guest/demo_guest.ts
var DEMO_GUEST = new Uint8Array([
  49,
  192,
  142,
  216,
  190,
  39,
  16,
  252,
  172,
  132,
  192,
  116,
  18,
  136,
  195,
  186,
  253,
  3,
  236,
  168,
  32,
  116,
  251,
  186,
  248,
  3,
  136,
  216,
  238,
  235,
  233,
  176,
  0,
  186,
  1,
  5,
  238,
  235,
  254,
  72,
  101,
  108,
  108,
  111,
  32,
  102,
  114,
  111,
  109,
  32,
  97,
  32,
  100,
  101,
  110,
  111,
  118,
  109,
  32,
  103,
  117,
  101,
  115,
  116,
  58,
  32,
  114,
  101,
  97,
  108,
  32,
  109,
  111,
  100,
  101,
  44,
  32,
  56,
  50,
  53,
  48,
  32,
  85,
  65,
  82,
  84,
  44,
  32,
  75,
  86,
  77,
  32,
  101,
  120,
  105,
  116,
  115,
  32,
  115,
  101,
  114,
  118,
  101,
  100,
  32,
  98,
  121,
  32,
  68,
  101,
  110,
  111,
  46,
  13,
  10,
  0
]);

// memory/mmap.ts
var MmapGuestMemory = class _MmapGuestMemory extends GuestMemory {
  /** The mappings, for KVM memory slots and for workers. */
  hostRegions;
  #mapped;
  constructor(regions) {
    super(regions.map((r) => ({
      gpa: r.gpa,
      bytes: hostBytes(r)
    })));
    this.hostRegions = regions;
    this.#mapped = true;
  }
  /** Maps each `{gpa, size}` region (sizes a multiple of 4 KiB). */
  static create(layout, opts = {}) {
    const regions = [];
    let fd = -1;
    try {
      if (opts.file !== void 0) fd = openFile(opts.file, opts.shared ? O_RDWR : O_RDONLY);
      let fileOffset = 0;
      for (const l of layout) {
        if (l.size <= 0 || l.size % 4096 !== 0 || l.gpa % 4096 !== 0) {
          throw new RangeError(`Cannot map guest memory: region 0x${l.gpa.toString(16)}+0x${l.size.toString(16)} is not page aligned`);
        }
        const p = fd < 0 ? mmap(l.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE) : mmap(l.size, PROT_READ | PROT_WRITE, opts.shared ? MAP_SHARED : MAP_PRIVATE, fd, fileOffset);
        fileOffset += l.size;
        regions.push({
          gpa: l.gpa,
          size: l.size,
          hostAddr: Deno.UnsafePointer.value(p)
        });
      }
      return new _MmapGuestMemory(regions);
    } catch (e) {
      for (const r of regions) unmap(r);
      throw e;
    } finally {
      if (fd >= 0) closeFd(fd);
    }
  }
  /** Unmaps all regions; any view of them must no longer be used. */
  close() {
    if (!this.#mapped) return;
    this.#mapped = false;
    for (const r of this.hostRegions) unmap(r);
  }
  /** {@link close}, for `using`. */
  [Symbol.dispose]() {
    this.close();
  }
};
function hostBytes(r) {
  const p = Deno.UnsafePointer.create(r.hostAddr);
  if (p === null) throw new TypeError("Cannot view guest memory: null host address");
  return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, r.size));
}
function unmap(r) {
  const p = Deno.UnsafePointer.create(r.hostAddr);
  if (p !== null) munmap(p, r.size);
}

// bus/bus.ts
var Bus = class {
  /** "pio" or "mmio", for messages. */
  kind;
  #ranges = [];
  #last;
  /** An empty bus; `kind` ("pio" or "mmio") names it in messages. */
  constructor(kind) {
    this.kind = kind;
  }
  /** Adds `device` at [base, base+size); throws when that overlaps a registered range. */
  register(base, size, device2, name2 = "device") {
    if (!Number.isSafeInteger(base) || base < 0 || !Number.isSafeInteger(size) || size <= 0) {
      throw new RangeError(`Cannot register ${name2} on the ${this.kind} bus: bad range`);
    }
    for (const r of this.#ranges) {
      if (base < r.base + r.size && r.base < base + size) {
        throw new RangeError(`Cannot register ${name2} at 0x${base.toString(16)}+0x${size.toString(16)} on the ${this.kind} bus: overlaps ${r.name} at 0x${r.base.toString(16)}+0x${r.size.toString(16)}`);
      }
    }
    this.#ranges.push({
      base,
      size,
      device: device2,
      name: name2
    });
    this.#ranges.sort((a, b) => a.base - b.base);
  }
  /** Removes the device registered at `base`; returns whether there was one. */
  unregister(base) {
    const i = this.#ranges.findIndex((r) => r.base === base);
    if (i < 0) return false;
    this.#ranges.splice(i, 1);
    this.#last = void 0;
    return true;
  }
  /** The registered ranges, in address order. */
  ranges() {
    return this.#ranges.map(({ base, size, name: name2 }) => ({
      base,
      size,
      name: name2
    }));
  }
  #find(addr, len) {
    const l = this.#last;
    if (l && addr >= l.base && addr + len <= l.base + l.size) return l;
    for (const r of this.#ranges) {
      if (addr >= r.base && addr + len <= r.base + r.size) return this.#last = r;
    }
    return void 0;
  }
  /** Routes a read; returns false (and leaves `data` alone) when no device owns it all. */
  read(addr, data) {
    const r = this.#find(addr, data.byteLength);
    if (!r) return false;
    r.device.read(addr - r.base, data);
    return true;
  }
  /** Routes a write; returns false when no device owns the whole access. */
  write(addr, data) {
    const r = this.#find(addr, data.byteLength);
    if (!r) return false;
    r.device.write(addr - r.base, data);
    return true;
  }
};

// vstate/event_poller.ts
init_timer();
var MAX_FD = 4096;
var EventPoller = class {
  #ep = new Epoll();
  #stopFd = eventfd();
  #callbacks = /* @__PURE__ */ new Map();
  #loop;
  #closed = false;
  #onError;
  /** `onError` hears of a callback that threw (the poller goes on). */
  constructor(onError) {
    this.#onError = onError;
    this.#ep.add(this.#stopFd, EPOLLIN, this.#stopFd);
    this.#loop = this.#run();
  }
  /**
   * Calls `fn` on the device thread whenever `fd` becomes readable. An eventfd is cleared
   * by the poller; with `passive` (tap, stdin) the fd is watched edge-triggered and `fn`
   * must read it until EAGAIN.
   */
  watch(fd, fn, opts = {}) {
    if (fd < 0 || fd >= MAX_FD) throw new RangeError(`Cannot watch fd ${fd}: above ${MAX_FD}`);
    if (this.#callbacks.has(fd)) throw new RangeError(`Cannot watch fd ${fd}: already watched`);
    this.#callbacks.set(fd, {
      fn,
      passive: opts.passive ?? false
    });
    this.#ep.add(fd, EPOLLIN | (opts.passive ? EPOLLET : 0), fd);
  }
  /** Stops watching `fd` (the fd stays open; its owner closes it). */
  unwatch(fd) {
    if (!this.#callbacks.delete(fd)) return;
    if (this.#closed) return;
    this.#ep.remove(fd);
  }
  /**
   * Handles what is ready now without waiting. The device thread calls this while it polls
   * its mailboxes (it does not return to the event loop then, so the pending wait's
   * completion would come late). An event both waits see is handled once: an eventfd's
   * callback runs only for the read that cleared it.
   */
  pollNow() {
    if (this.#closed || this.#callbacks.size === 0) return;
    this.#handle(this.#ep.wait(0));
  }
  /** Runs the callbacks of the ready tags; true when the stop fd was among them. */
  #handle(ready) {
    for (const { tag } of ready) {
      if (tag === this.#stopFd) return true;
      const c = this.#callbacks.get(tag);
      if (!c) continue;
      if (!c.passive) {
        try {
          eventfdRead(tag);
        } catch {
          continue;
        }
      }
      try {
        c.fn();
      } catch (e) {
        this.#onError?.(`fd ${tag} handler failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return false;
  }
  async #run() {
    let failures = 0;
    for (; ; ) {
      const ready = await this.#ep.waitAsync(-1);
      if (ready === null) {
        if (++failures > 100) return;
        await sleep(failures > 3 ? 10 : 0);
        continue;
      }
      failures = 0;
      if (this.#handle(ready)) return;
    }
  }
  /** Stops polling and closes the epoll fd. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    eventfdWrite(this.#stopFd);
    await within(this.#loop, 1e3);
    this.#ep.close();
    closeFd(this.#stopFd);
    this.#callbacks.clear();
  }
};

// vstate/exit_dispatcher.ts
init_timer();

// vstate/mailbox.ts
var MB = {
  /** IDLE, REQUEST or RESPONSE. */
  STATE: 0,
  /** One of `ACCESS`. */
  KIND: 1,
  ADDR_LO: 2,
  ADDR_HI: 3,
  LEN: 4,
  /** Byte offset of the 8 data bytes. */
  DATA_BYTE: 32,
  BYTES: 64
};
var MB_STATE = {
  IDLE: 0,
  REQUEST: 1,
  RESPONSE: 2
};
var ACCESS = {
  PIO_OUT: 0,
  PIO_IN: 1,
  MMIO_WRITE: 2,
  MMIO_READ: 3
};
var CTL = {
  /** What the device thread asks: `REQ`. */
  REQUEST: 0,
  /** The worker's kernel thread id, for tgkill. */
  TID: 1,
  /** What the worker is doing: `VSTATE`. */
  STATE: 2,
  /** Count of exits served (diagnostics, benchmarks). */
  EXITS: 3,
  /** Count of exits that crossed to the device thread. */
  CROSSINGS: 4,
  BYTES: 64
};
var REQ = {
  RUN: 0,
  PAUSE: 1,
  STOP: 2
};
var VSTATE = {
  IDLE: 0,
  RUNNING: 1,
  PAUSED: 2,
  EXITED: 3
};
var DOORBELL_BYTES = 16;
var SINGLE_CPU = (globalThis.navigator?.hardwareConcurrency ?? 2) <= 1;
var Mailbox = class _Mailbox {
  sab;
  /** The mailbox words, indexed by {@link MB}. */
  i32;
  /** The access's data: 8 bytes, the first `LEN` of them used. */
  data;
  /** Views of a mailbox in `sab` ({@link MB}.BYTES long), shared with the other thread. */
  constructor(sab) {
    this.sab = sab;
    this.i32 = new Int32Array(sab, 0, MB.BYTES / 4);
    this.data = new Uint8Array(sab, MB.DATA_BYTE, 8);
  }
  /** A new, zeroed (IDLE) mailbox. */
  static create() {
    return new _Mailbox(new SharedArrayBuffer(MB.BYTES));
  }
  /** The access address (ports and MMIO addresses below 2^53). */
  get addr() {
    return (this.i32[MB.ADDR_HI] >>> 0) * 4294967296 + (this.i32[MB.ADDR_LO] >>> 0);
  }
};

// vstate/ticker.ts
var Ticker = class {
  #channel = new MessageChannel();
  #wake;
  constructor() {
    this.#channel.port1.onmessage = () => this.#wake?.();
  }
  /** Resolves after pending macrotasks (timers, I/O completions) had a chance to run. */
  tick() {
    return new Promise((r) => {
      this.#wake = r;
      this.#channel.port2.postMessage(0);
    });
  }
  close() {
    this.#channel.port1.close();
    this.#channel.port2.close();
  }
};

// vstate/exit_dispatcher.ts
var POLL_MS = SINGLE_CPU ? 0 : 0.2;
var YIELD_MS = 2;
var MISS_LINES = 3;
var ExitDispatcher = class {
  /** The doorbell SharedArrayBuffer to hand to every vCPU worker. */
  doorbell = new SharedArrayBuffer(DOORBELL_BYTES);
  #bell = new Int32Array(this.doorbell);
  #mailboxes = [];
  #o;
  #running = false;
  #wakeHandlers = [];
  #loop;
  #keepAlive;
  #wakeStop;
  #ticker;
  #stopped = new Promise((r) => this.#wakeStop = r);
  /** A dispatcher serving on `opts.pio` and `opts.mmio`; it waits for {@link start}. */
  constructor(opts) {
    this.#o = opts;
  }
  /** Adds a function to run on every wake (after the mailboxes are served). */
  addWakeHandler(fn) {
    this.#wakeHandlers.push(fn);
  }
  /** Adds a vCPU mailbox to serve. */
  add(mb) {
    this.#mailboxes.push(mb);
  }
  /** Starts serving. */
  start() {
    if (this.#running) return;
    this.#running = true;
    this.#loop = this.#run();
    this.#keepAlive = every(100, () => this.serveAll());
  }
  /** Stops serving after answering what is pending. */
  async stop() {
    if (!this.#running) return;
    this.#running = false;
    this.#keepAlive?.cancel();
    this.#wakeStop?.();
    Atomics.add(this.#bell, 0, 1);
    Atomics.notify(this.#bell, 0);
    await this.#loop;
    this.#ticker?.close();
    this.#ticker = void 0;
    this.serveAll();
  }
  async #run() {
    let lastServed = -Infinity, lastYield = performance.now();
    while (this.#running) {
      const seen = Atomics.load(this.#bell, 0);
      const now = performance.now();
      if (this.serveAll() > 0) lastServed = now;
      if (now - lastServed < POLL_MS) {
        if (now - lastYield > YIELD_MS) {
          await (this.#ticker ??= new Ticker()).tick();
          lastYield = performance.now();
        }
        continue;
      }
      const w = Atomics.waitAsync(this.#bell, 0, seen);
      if (w.async) await Promise.race([
        w.value,
        this.#stopped
      ]);
      lastYield = performance.now();
    }
  }
  /** Serves every pending mailbox once; returns how many were served. */
  serveAll() {
    let n = 0;
    for (const mb of this.#mailboxes) {
      if (Atomics.load(mb.i32, MB.STATE) === MB_STATE.REQUEST) {
        this.#serve(mb);
        n++;
      }
    }
    this.#o.onWake?.();
    for (const f of this.#wakeHandlers) f();
    return n;
  }
  #serve(mb) {
    const kind = mb.i32[MB.KIND];
    const addr = mb.addr;
    const len = Math.min(Math.max(mb.i32[MB.LEN], 0), 8);
    const data = mb.data.subarray(0, len);
    try {
      switch (kind) {
        case ACCESS.PIO_OUT:
          if (!this.#o.pio.write(addr, data)) this.#miss("port write", addr, len);
          break;
        case ACCESS.PIO_IN:
          if (!this.#o.pio.read(addr, data)) data.fill(255);
          break;
        case ACCESS.MMIO_WRITE:
          if (!this.#o.mmio.write(addr, data)) this.#miss("MMIO write", addr, len);
          break;
        case ACCESS.MMIO_READ:
          if (!this.#o.mmio.read(addr, data)) data.fill(0);
          break;
      }
    } catch (e) {
      if (kind === ACCESS.PIO_IN || kind === ACCESS.MMIO_READ) data.fill(255);
      this.#o.onFault?.(`Device failed on ${kind} at 0x${addr.toString(16)}: ${e instanceof Error ? e.message : String(e)}`);
    }
    Atomics.store(mb.i32, MB.STATE, MB_STATE.RESPONSE);
    Atomics.notify(mb.i32, MB.STATE);
  }
  #misses = /* @__PURE__ */ new Map();
  #miss(what, addr, len) {
    const report = this.#o.onMiss ?? this.#o.onFault;
    if (!report) return;
    const key = `${what}@${addr}`;
    const n = (this.#misses.get(key) ?? 0) + 1;
    if (this.#misses.size < 4096 || this.#misses.has(key)) this.#misses.set(key, n);
    if (n <= MISS_LINES) {
      report(`Unhandled ${what} at 0x${addr.toString(16)} (${len} bytes)`);
    } else if (Number.isInteger(Math.log10(n))) {
      report(`Unhandled ${what} at 0x${addr.toString(16)}: ${n} times so far`);
    }
  }
};

// vstate/virtio_isr.ts
var ISR_WINDOW = 4096;
var ISR_STATUS = 96;
var ISR_ACK = 100;
var VirtioIsrTable = class _VirtioIsrTable {
  base;
  slots;
  sab;
  /** `[claimed, status]` per slot. */
  words;
  /**
   * A view of `sab` (from {@link VirtioIsrTable.create}, possibly on another thread) for
   * `slots` windows from `base`.
   */
  constructor(base, slots, sab) {
    this.base = base;
    this.slots = slots;
    this.sab = sab;
    if (sab.byteLength < slots * 8) {
      throw new RangeError(`Cannot use ISR table: ${sab.byteLength} bytes for ${slots} slots`);
    }
    this.words = new Int32Array(sab, 0, slots * 2);
  }
  /** A table for `slots` windows from `base`, none claimed. */
  static create(base, slots) {
    return new _VirtioIsrTable(base, slots, new SharedArrayBuffer(slots * 8));
  }
  /**
   * Claims the slot of the window at `windowBase`; undefined when it has none or another
   * device holds it (that device's word is left alone).
   */
  claim(windowBase) {
    const slot = this.#slot(windowBase);
    if (slot === void 0 || Atomics.load(this.words, slot * 2) === 1) return void 0;
    Atomics.store(this.words, slot * 2 + 1, 0);
    Atomics.store(this.words, slot * 2, 1);
    return {
      words: this.words,
      index: slot * 2 + 1
    };
  }
  /** Gives the slot of `windowBase` back (its device is gone): its accesses cross again. */
  release(windowBase) {
    const slot = this.#slot(windowBase);
    if (slot === void 0) return;
    Atomics.store(this.words, slot * 2, 0);
    Atomics.store(this.words, slot * 2 + 1, 0);
  }
  #slot(windowBase) {
    const off = windowBase - this.base;
    if (off < 0 || off % ISR_WINDOW || off / ISR_WINDOW >= this.slots) return void 0;
    return off / ISR_WINDOW;
  }
  /**
   * For a vCPU worker: serves the access if it is a 4-byte InterruptStatus read or
   * InterruptACK write of a claimed window (true), else leaves it alone (false).
   */
  serve(addr, data, isWrite) {
    const off = addr - this.base;
    if (off < 0 || off >= this.slots * ISR_WINDOW || data.byteLength !== 4) return false;
    const slot = Math.floor(off / ISR_WINDOW), reg = off % ISR_WINDOW;
    if (Atomics.load(this.words, slot * 2) !== 1) return false;
    const at = slot * 2 + 1;
    if (!isWrite && reg === ISR_STATUS) {
      const v = Atomics.load(this.words, at);
      data[0] = v & 255;
      data[1] = v >>> 8 & 255;
      data[2] = v >>> 16 & 255;
      data[3] = v >>> 24 & 255;
      return true;
    }
    if (isWrite && reg === ISR_ACK) {
      const v = data[0] | data[1] << 8 | data[2] << 16 | data[3] << 24;
      Atomics.and(this.words, at, ~v);
      return true;
    }
    return false;
  }
};

// vstate/vcpu_thread.ts
init_timer();

// vstate/kick_signal.ts
init_timer();
var DRAIN_MS = 50;
var users = 0;
var kept = false;
var lastKick = -Infinity;
var ignoreKick = () => {
};
function holdKickSignal() {
  if (users++ === 0 && !kept) Deno.addSignalListener("SIGUSR2", ignoreKick);
}
function keepKickSignal() {
  if (kept) return;
  if (users === 0) Deno.addSignalListener("SIGUSR2", ignoreKick);
  kept = true;
}
function kickThread(tid) {
  lastKick = performance.now();
  tgkill(getpid(), tid, SIGUSR2);
}
async function releaseKickSignal() {
  if (users <= 0) return;
  for (; ; ) {
    const wait = lastKick + DRAIN_MS - performance.now();
    if (users > 1 || kept || wait <= 0) break;
    await sleep(wait);
  }
  if (--users === 0 && !kept) Deno.removeSignalListener("SIGUSR2", ignoreKick);
}

// vstate/worker_pool.ts
var g = globalThis;
var POOL = Symbol.for("denovm.vcpuWorkerPool");
var pool = g[POOL] ??= [];
var SCRIPT = Symbol.for("denovm.vcpuWorkerScript");
function spawnVcpuWorker() {
  const url = g[SCRIPT] ?? new URL("../vstate/vcpu_worker.ts", import.meta.url);
  const w = new Worker(url, {
    type: "module"
  });
  w.onmessage = () => {
  };
  w.postMessage({
    type: "warm",
    cell: new SharedArrayBuffer(8)
  });
  return w;
}
function takeVcpuWorker() {
  return pool.pop() ?? spawnVcpuWorker();
}
function drainVcpuWorkerPool() {
  for (const w of pool.splice(0)) w.terminate();
}

// vstate/vcpu_thread.ts
init_format();
var VcpuThread = class _VcpuThread {
  /** The vCPU (owned by the device thread: its fd and run mapping are closed by it). */
  vcpu;
  /** The exit mailbox to serve. */
  mailbox = Mailbox.create();
  #control = new SharedArrayBuffer(CTL.BYTES);
  #ctl = new Int32Array(this.#control);
  #worker;
  #tid = 0;
  #seq = 0;
  #calls = /* @__PURE__ */ new Map();
  #stopped = [];
  #closed;
  #running = false;
  #lastStop;
  #onExit;
  #firstRunAt;
  #closing;
  constructor(vcpu) {
    this.vcpu = vcpu;
  }
  /** Starts the worker for `vcpu` and waits until it is ready. */
  static async start(vcpu, opts) {
    const t = new _VcpuThread(vcpu);
    t.#onExit = opts.onExit;
    holdKickSignal();
    const w = opts.worker ?? takeVcpuWorker();
    t.#worker = w;
    const ready = new Promise((resolve, reject) => {
      w.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`vCPU ${vcpu.id} worker failed: ${e.message}`));
      };
      w.onmessage = (ev) => {
        if (ev.data.type === "ready") {
          t.#tid = ev.data.tid;
          w.onmessage = (e2) => t.#onMessage(e2.data);
          resolve();
        } else if (ev.data.type === "init-failed") {
          reject(new SnapshotError(`Cannot restore vCPU ${vcpu.id}: ${ev.data.error}`));
        }
      };
    });
    t.#post({
      type: "init",
      id: vcpu.id,
      fd: vcpu.fd,
      runAddr: vcpu.runAddr,
      runSize: vcpu.runSize,
      mailbox: t.mailbox.sab,
      control: t.#control,
      doorbell: opts.doorbell,
      local: opts.local ?? [],
      ...opts.coalesced ? {
        coalesced: opts.coalesced
      } : {},
      ...opts.vmFd !== void 0 ? {
        vmFd: opts.vmFd
      } : {},
      ...opts.state ? {
        state: opts.state
      } : {}
    });
    try {
      await ready;
    } catch (e) {
      w.terminate();
      await releaseKickSignal();
      throw e;
    }
    return t;
  }
  /** The worker's kernel thread id. */
  get tid() {
    return this.#tid;
  }
  /** Whether the run loop is active. */
  get running() {
    return this.#running;
  }
  /** Why the vCPU last left its run loop. */
  get lastStop() {
    return this.#lastStop;
  }
  /**
   * Makes the worker leave `KVM_RUN` once and go on (it empties the coalesced-write ring on
   * the way). A signal that arrives while the worker is not in `KVM_RUN` is lost, which is
   * fine: it empties the ring at its next exit anyway.
   */
  poke() {
    if (this.#running && this.#tid) kickThread(this.#tid);
  }
  /** Exits taken so far, and how many of them crossed to the device thread. */
  get counters() {
    return {
      exits: Atomics.load(this.#ctl, CTL.EXITS),
      crossings: Atomics.load(this.#ctl, CTL.CROSSINGS)
    };
  }
  #post(m) {
    this.#worker.postMessage(m);
  }
  #onMessage(m) {
    switch (m.type) {
      case "result": {
        const c = this.#calls.get(m.seq);
        this.#calls.delete(m.seq);
        if (!c) return;
        if (m.ok) c.resolve(m.value);
        else c.reject(new Error(m.error));
        break;
      }
      case "stopped": {
        this.#running = false;
        this.#lastStop = m.reason;
        const waiters = this.#stopped;
        this.#stopped = [];
        for (const w of waiters) w(m.reason);
        if (m.reason.kind !== "paused" && m.reason.kind !== "stopped") this.#onExit?.(m.reason);
        break;
      }
      case "closed":
        this.#closed?.();
        break;
      case "first-run":
        this.#firstRunAt = m.at;
        break;
    }
  }
  /** When the vCPU first entered KVM_RUN (ms since the epoch), once the worker said so. */
  get firstRunAt() {
    return this.#firstRunAt;
  }
  /** Runs a state ioctl on the vCPU's thread; only while it is not running. */
  call(op, ...args) {
    if (this.#running) {
      return Promise.reject(new Error(`Cannot call ${op} on vCPU ${this.vcpu.id}: it is running`));
    }
    const seq = ++this.#seq;
    return new Promise((resolve, reject) => {
      this.#calls.set(seq, {
        resolve,
        reject
      });
      this.#post({
        type: "call",
        seq,
        op,
        args
      });
    });
  }
  /** Enters the run loop; resolves at once (use {@link whenStopped} to wait). */
  run() {
    if (this.#running) return;
    Atomics.store(this.#ctl, CTL.REQUEST, REQ.RUN);
    this.#running = true;
    this.#post({
      type: "run"
    });
  }
  /** Resolves with the next stop reason (at once if not running). */
  whenStopped() {
    if (!this.#running) return Promise.resolve(this.#lastStop ?? {
      kind: "stopped"
    });
    return new Promise((r) => this.#stopped.push(r));
  }
  /** Kicks the vCPU out of KVM_RUN with `request` and waits until it has left the loop. */
  async #kick(request2) {
    if (!this.#running) return this.#lastStop ?? {
      kind: "stopped"
    };
    const stopped = this.whenStopped();
    Atomics.store(this.#ctl, CTL.REQUEST, request2);
    this.vcpu.immediateExit = 1;
    let done = false;
    stopped.then(() => done = true);
    for (let i = 0; !done; i++) {
      if (Atomics.load(this.#ctl, CTL.STATE) === VSTATE.RUNNING) {
        try {
          kickThread(this.#tid);
        } catch {
          break;
        }
      }
      await within(stopped, i < 5 ? 1 : 20);
    }
    return await stopped;
  }
  /** Pauses: the vCPU leaves KVM_RUN and parks, its state intact. */
  pause() {
    return this.#kick(REQ.PAUSE);
  }
  /** Resumes after a pause. */
  resume() {
    this.run();
  }
  /** Stops the run loop (if running) and ends the worker thread. Idempotent. */
  close() {
    return this.#closing ??= this.#close();
  }
  async #close() {
    const w = this.#worker;
    if (!w) return;
    await this.#kick(REQ.STOP);
    Atomics.store(this.#ctl, CTL.REQUEST, REQ.STOP);
    const closed = new Promise((r) => this.#closed = r);
    this.#post({
      type: "close"
    });
    await within(closed, 1e3);
    w.terminate();
    this.#worker = void 0;
    for (const c of this.#calls.values()) c.reject(new Error("vCPU closed"));
    this.#calls.clear();
    await releaseKickSignal();
  }
};

// vstate/machine.ts
var TSS_ADDR = 4294692864;
var IDENTITY_MAP_ADDR = 4294688768;
function setupCoalesced(vm, zones) {
  if (zones.length === 0) return void 0;
  const pageOffset = vm.checkExtension(CAP.COALESCED_MMIO);
  if (pageOffset <= 0 || (pageOffset + 1) * 4096 > vm.runSize) return void 0;
  if (vm.checkExtension(CAP.COALESCED_PIO) <= 0) return void 0;
  for (const z of zones) vm.registerCoalesced({
    addr: z.port,
    size: z.size,
    pio: true
  });
  return {
    pageOffset,
    lock: new SharedArrayBuffer(4)
  };
}
function openKvm() {
  try {
    return Kvm.open();
  } catch (e) {
    const probe = probeKvm();
    if (probe.status === "ok") throw e;
    throw new KvmUnavailableError(describeHost("none", probe));
  }
}
var Machine = class _Machine {
  /** The open `/dev/kvm` (system ioctls). */
  kvm;
  /** The KVM VM (VM ioctls: memory slots, irqchip, irqfd, ioeventfd, clock). */
  vm;
  /** Guest RAM, mapped in this process and registered as KVM memory slots. */
  memory;
  /** The port I/O bus: devices the device thread serves on `in`/`out` exits. */
  pio = new Bus("pio");
  /** The MMIO bus: devices the device thread serves on MMIO exits. */
  mmio = new Bus("mmio");
  /** Serves the exits the vCPU workers hand over, on `pio` and `mmio`. */
  dispatcher;
  /** The vCPU threads; index = vCPU id. */
  vcpus = [];
  #exits = [];
  #firstExit;
  #closed = false;
  #events;
  #closeHooks = [];
  #onFault;
  /**
   * The interrupt status words of the virtio-mmio windows, shared with the vCPU workers
   * (when the machine was created with `virtioIsr`): a device claims its window's word.
   */
  virtioIsr;
  constructor(kvm, vm, memory, opts) {
    this.#onFault = opts.onFault;
    this.virtioIsr = opts.virtioIsr ? VirtioIsrTable.create(opts.virtioIsr.base, opts.virtioIsr.slots) : void 0;
    this.kvm = kvm;
    this.vm = vm;
    this.memory = memory;
    this.dispatcher = new ExitDispatcher({
      pio: this.pio,
      mmio: this.mmio,
      ...opts.onFault ? {
        onFault: opts.onFault
      } : {},
      ...opts.onMiss ? {
        onMiss: opts.onMiss
      } : {},
      ...opts.onWake ? {
        onWake: opts.onWake
      } : {}
    });
  }
  /** Creates the VM, its memory and irqchip, and starts one parked worker per vCPU. */
  static async create(opts) {
    const n = opts.vcpus ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 64) {
      throw new RangeError(`Cannot create machine: ${n} vCPUs is not between 1 and 64`);
    }
    if (opts.vcpuStates && opts.vcpuStates.length !== n) {
      throw new RangeError(`Cannot create machine: ${opts.vcpuStates.length} saved vCPU states for ${n} vCPUs`);
    }
    const layout = opts.ram ?? ramLayout(opts.memMiB ?? 128);
    const workers = Array.from({
      length: n
    }, takeVcpuWorker);
    let kvm;
    let vm;
    let memory;
    let coalesced;
    try {
      kvm = openKvm();
      vm = kvm.createVm();
      memory = MmapGuestMemory.create(layout, opts.memoryFile ? {
        file: opts.memoryFile
      } : {});
      memory.hostRegions.forEach((r, slot) => vm.setUserMemoryRegion({
        slot,
        guestPhysAddr: r.gpa,
        size: r.size,
        userspaceAddr: r.hostAddr,
        flags: opts.dirtyLog ? 1 : 0
      }));
      vm.setTssAddr(TSS_ADDR);
      vm.setIdentityMapAddr(IDENTITY_MAP_ADDR);
      vm.createIrqchip();
      vm.createPit2();
      coalesced = setupCoalesced(vm, opts.coalescedPio ?? []);
    } catch (e) {
      for (const w of workers) w.terminate();
      memory?.close();
      vm?.close();
      kvm?.close();
      throw e;
    }
    const m = new _Machine(kvm, vm, memory, opts);
    const starts = [];
    try {
      for (let id = 0; id < n; id++) {
        const local = [
          ...opts.local?.(id) ?? [],
          ...m.virtioIsr ? [
            {
              kind: "virtio_isr",
              base: m.virtioIsr.base,
              slots: m.virtioIsr.slots,
              words: m.virtioIsr.sab
            }
          ] : []
        ];
        const vcpu = vm.createVcpu(id);
        const started = VcpuThread.start(vcpu, {
          local,
          doorbell: m.dispatcher.doorbell,
          onExit: (r) => m.#onExit({
            ...r,
            vcpu: id
          }),
          worker: workers[id],
          ...coalesced ? {
            coalesced
          } : {},
          vmFd: vm.fd,
          ...opts.vcpuStates ? {
            state: opts.vcpuStates[id]
          } : {}
        }).catch((e) => {
          vcpu.close();
          throw e;
        });
        starts.push(started);
      }
    } catch (e) {
      for (const w of workers.slice(starts.length)) w.terminate();
      await m.#adopt(starts);
      await m.close();
      throw e;
    }
    const failed = await m.#adopt(starts);
    if (failed) {
      await m.close();
      throw failed.reason;
    }
    m.dispatcher.start();
    if (coalesced) m.#watchCoalesced(coalesced.pageOffset);
    return m;
  }
  /**
   * Waits for every vCPU thread start in `starts` and takes the ones that started, in
   * order (so closing the machine stops them); returns the first failure, if any.
   */
  async #adopt(starts) {
    const settled = await Promise.allSettled(starts);
    for (const r of settled) {
      if (r.status !== "fulfilled") continue;
      this.vcpus.push(r.value);
      this.dispatcher.add(r.value.mailbox);
    }
    return settled.find((r) => r.status === "rejected");
  }
  /**
   * Writes left in the coalesced ring by a guest that makes no exit for a while (it wrote
   * its last bytes and waits in HLT, which the in-kernel irqchip keeps in the kernel) are
   * served by poking vCPU 0 out of KVM_RUN: looked at on every device-thread wake and on the
   * dispatcher's 100 ms safety tick (no timer of its own: on a one-CPU host every timer
   * turn is the guest's time), poked when the ring was not empty at two looks in a row.
   */
  #watchCoalesced(pageOffset) {
    let seen = false;
    this.dispatcher.addWakeHandler(() => {
      const v = this.vcpus[0];
      if (!v) return;
      const pending = v.vcpu.coalescedPending(pageOffset);
      if (pending && seen) v.poke();
      seen = pending;
    });
  }
  #onExit(r) {
    this.#firstExit ??= r;
    const w = this.#exits;
    this.#exits = [];
    for (const f of w) f(r);
  }
  /** The event poller (ioeventfds, tap, stdin), started on first use. */
  get events() {
    if (!this.#events) {
      const p = new EventPoller(this.#onFault);
      this.dispatcher.addWakeHandler(() => p.pollNow());
      this.#events = p;
    }
    return this.#events;
  }
  /** Runs `fn` when the machine closes (after the vCPUs and the poller have stopped). */
  onClose(fn) {
    this.#closeHooks.push(fn);
  }
  /** Puts vCPU `id` in real mode at `cs:ip` with stack `ss:sp` = 0:`sp`. */
  async setRealMode(id, o) {
    await this.#vcpu(id).call("setRealMode", {
      cs: o.cs ?? 0,
      ip: o.ip,
      sp: o.sp ?? 28672
    });
  }
  #vcpu(id) {
    const t = this.vcpus[id];
    if (!t) throw new RangeError(`Cannot use vCPU ${id}: the machine has ${this.vcpus.length}`);
    return t;
  }
  /** Runs every vCPU. */
  run() {
    for (const t of this.vcpus) t.run();
  }
  /**
   * Stops every vCPU for `reason` (e.g. the guest asked for a reset through the i8042) and
   * resolves {@link whenExit} with it. The machine stays open (paused) until closed.
   */
  async requestStop(reason) {
    if (this.#firstExit) return;
    await this.pause();
    this.#onExit({
      ...reason,
      vcpu: -1
    });
  }
  /** Resolves when any vCPU leaves its loop for a reason other than pause or stop. */
  whenExit() {
    if (this.#firstExit) return Promise.resolve(this.#firstExit);
    return new Promise((r) => this.#exits.push(r));
  }
  /** Kicks every vCPU out of KVM_RUN and parks it. */
  async pause() {
    await Promise.all(this.vcpus.map((t) => t.pause()));
  }
  /** Runs every vCPU again after {@link pause}. */
  resume() {
    this.run();
  }
  /** Stops every vCPU, ends the workers, and releases the VM, memory and fds. */
  async close() {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.vcpus.map((t) => t.close()));
    await this.#events?.close();
    for (const f of this.#closeHooks.splice(0).reverse()) {
      try {
        await f();
      } catch {
      }
    }
    await this.dispatcher.stop();
    for (const t of this.vcpus) t.vcpu.close();
    this.vm.close();
    this.memory.close();
    this.kvm.close();
  }
  /** {@link close}, for `await using`. */
  async [Symbol.asyncDispose]() {
    await this.close();
  }
};

// boot/kernel.ts
var KERNEL_LOAD = 1048576;
var HDRS = 1400005704;
var XLF_KERNEL_64 = 1;
var KernelError = class extends Error {
  constructor(message) {
    super(message);
    this.name = "KernelError";
  }
};
function parseKernel(file, name2 = "kernel") {
  if (file.byteLength >= 4 && file[0] === 127 && file[1] === 69 && file[2] === 76 && file[3] === 70) {
    return parseElf(file, name2);
  }
  return parseBzImage(file, name2);
}
function parseBzImage(file, name2 = "kernel") {
  const bad = (why) => {
    throw new KernelError(`Cannot boot ${name2}: ${why}`);
  };
  if (file.byteLength < 624) bad("too small to be a kernel");
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (v.getUint32(514, true) !== HDRS) {
    bad("not a bzImage or ELF kernel (no HdrS signature at 0x202)");
  }
  if (v.getUint16(510, true) !== 43605) bad("bad boot flag (0xAA55 expected at 0x1fe)");
  const protocol = v.getUint16(518, true);
  if (protocol < 524) {
    bad(`boot protocol ${protocol >> 8}.${protocol & 255} is too old (2.12 or newer needed for 64-bit entry)`);
  }
  const xloadflags = v.getUint16(566, true);
  if (!(xloadflags & XLF_KERNEL_64)) {
    bad("the kernel has no 64-bit entry point (XLF_KERNEL_64 is clear)");
  }
  if (!(file[529] & 1)) bad("the kernel is not loadable high (LOADED_HIGH is clear)");
  let setupSects = file[497];
  if (setupSects === 0) setupSects = 4;
  const setupBytes = (setupSects + 1) * 512;
  if (setupBytes >= file.byteLength) {
    bad(`setup_sects ${setupSects} leaves no protected-mode kernel`);
  }
  const initSize = v.getUint32(608, true);
  const payload = file.subarray(setupBytes);
  if (initSize < payload.byteLength) {
    bad(`init_size ${initSize} is smaller than the kernel (${payload.byteLength})`);
  }
  const headerEnd = 514 + file[513];
  if (headerEnd <= 514 || headerEnd > setupBytes) bad("bad setup header length");
  const initrdAddrMax = v.getUint32(556, true);
  const cmdlineMax = v.getUint32(568, true);
  if (cmdlineMax === 0) bad("cmdline_size is 0");
  return {
    kind: "bzimage",
    segments: [
      {
        gpa: KERNEL_LOAD,
        bytes: payload,
        memSize: payload.byteLength
      }
    ],
    entry64: KERNEL_LOAD + 512,
    setupHeader: file.slice(497, headerEnd),
    protocol,
    initrdAddrMax,
    cmdlineMax,
    initSize
  };
}
var PT_LOAD = 1;
var PT_NOTE = 4;
var EM_X86_64 = 62;
var XEN_ELFNOTE_PHYS32_ENTRY = 18;
function parseElf(file, name2 = "kernel") {
  const bad = (why) => {
    throw new KernelError(`Cannot boot ${name2}: ${why}`);
  };
  if (file.byteLength < 64) bad("truncated ELF header");
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file[4] !== 2) bad("not a 64-bit ELF");
  if (file[5] !== 1) bad("not a little-endian ELF");
  if (v.getUint16(18, true) !== EM_X86_64) bad("not an x86-64 ELF");
  const entry = Number(v.getBigUint64(24, true));
  const phoff = Number(v.getBigUint64(32, true));
  const phentsize = v.getUint16(54, true);
  const phnum = v.getUint16(56, true);
  if (phentsize < 56 || phnum === 0 || phnum > 64 || phoff + phnum * phentsize > file.byteLength) {
    bad("bad program header table");
  }
  const segments = [];
  let pvhEntry;
  let end = 0;
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    const type = v.getUint32(o, true);
    const offset = Number(v.getBigUint64(o + 8, true));
    const paddr = Number(v.getBigUint64(o + 24, true));
    const filesz = Number(v.getBigUint64(o + 32, true));
    const memsz = Number(v.getBigUint64(o + 40, true));
    if (offset + filesz > file.byteLength) bad(`program header ${i} is out of bounds`);
    if (type === PT_LOAD) {
      if (filesz > memsz) bad(`segment ${i} has more file bytes than memory`);
      if (paddr < KERNEL_LOAD || paddr + memsz > 3221225472) {
        bad(`segment ${i} at 0x${paddr.toString(16)} is outside low RAM`);
      }
      segments.push({
        gpa: paddr,
        bytes: file.subarray(offset, offset + filesz),
        memSize: memsz
      });
      end = Math.max(end, paddr + memsz);
    } else if (type === PT_NOTE) {
      pvhEntry ??= findPvhNote(v, offset, filesz);
    }
  }
  if (segments.length === 0) bad("no loadable segment");
  if (!segments.some((s) => entry >= s.gpa && entry < s.gpa + s.memSize)) {
    bad(`the entry 0x${entry.toString(16)} is not in a loaded segment`);
  }
  return {
    kind: "elf",
    segments,
    entry64: entry,
    ...pvhEntry !== void 0 ? {
      pvhEntry
    } : {},
    initrdAddrMax: 2147483647,
    cmdlineMax: 2047,
    initSize: end - KERNEL_LOAD
  };
}
function findPvhNote(v, off, len) {
  let o = off;
  const end = off + len;
  while (o + 12 <= end) {
    const namesz = v.getUint32(o, true), descsz = v.getUint32(o + 4, true), type = v.getUint32(o + 8, true);
    const name2 = o + 12, desc = name2 + (namesz + 3 & ~3), next = desc + (descsz + 3 & ~3);
    if (next > end || next <= o) return void 0;
    const isXen = namesz === 4 && v.getUint32(name2, true) === 7234904;
    if (isXen && type === XEN_ELFNOTE_PHYS32_ENTRY && descsz >= 4) return v.getUint32(desc, true);
    o = next;
  }
  return void 0;
}

// boot/cpu.ts
var HYPERVISOR_BIT = 1 << 31;
var HTT_BIT = 1 << 28;
var TSC_DEADLINE_BIT = 1 << 24;
var KVM_SIGNATURE = [
  1263359563,
  1447775574,
  77
];
function leaf(entries, fn, index = 0) {
  return entries.find((e) => e.function === fn && e.index === index);
}
function offeredXcr0(entries) {
  const l = leaf(entries, 13, 0);
  return l ? BigInt(l.eax >>> 0) | BigInt(l.edx >>> 0) << 32n : 0n;
}
function xsaveSize(entries, xcr0) {
  let size = 576;
  for (let i = 2; i < 63; i++) {
    if (!(xcr0 & 1n << BigInt(i))) continue;
    const sub = leaf(entries, 13, i);
    if (sub) size = Math.max(size, sub.ebx + sub.eax);
  }
  return size;
}
function fixXsaveLeaf(out) {
  const l0 = leaf(out, 13, 0);
  if (!l0) return;
  let mask = offeredXcr0(out);
  for (let i = 2; i < 63; i++) {
    const bit2 = 1n << BigInt(i);
    if (!(mask & bit2)) continue;
    const sub = leaf(out, 13, i);
    if (!sub || sub.eax === 0 || sub.ebx < 576) mask &= ~bit2;
  }
  const avx512 = 0xe0n;
  if ((mask & avx512) !== avx512) mask &= ~avx512;
  l0.eax = Number(mask & 0xffffffffn) >>> 0;
  l0.edx = Number(mask >> 32n) >>> 0;
  l0.ebx = l0.ecx = xsaveSize(out, mask);
}
function bootXcr0(entries) {
  return offeredXcr0(entries) | 1n;
}
function cpuidFor(supported, id, cpus, opts = {}) {
  const out = supported.map((e) => ({
    ...e
  }));
  const shift = Math.max(0, Math.ceil(Math.log2(cpus)));
  const l1 = leaf(out, 1);
  if (l1) {
    l1.ebx = (l1.ebx & 65535 | (cpus & 255) << 16 | (id & 255) << 24) >>> 0;
    l1.ecx = (l1.ecx | HYPERVISOR_BIT | (opts.tscDeadline ? TSC_DEADLINE_BIT : 0)) >>> 0;
    l1.edx = cpus > 1 ? (l1.edx | HTT_BIT) >>> 0 : (l1.edx & ~HTT_BIT) >>> 0;
  }
  for (const fn of [
    11,
    31
  ]) {
    for (const e of out.filter((x) => x.function === fn)) {
      e.edx = id;
      if (e.index === 0) {
        e.eax = 0;
        e.ebx = 1;
        e.ecx = 1 << 8 | 0;
      } else if (e.index === 1) {
        e.eax = shift;
        e.ebx = cpus;
        e.ecx = 2 << 8 | 1;
      } else {
        e.eax = e.ebx = 0;
        e.ecx = e.index;
      }
    }
  }
  for (const e of out.filter((x) => x.function === 4)) {
    e.eax = (e.eax & 67108863 | (cpus - 1 & 63) << 26) >>> 0;
  }
  fixXsaveLeaf(out);
  const amd = leaf(out, 2147483656);
  if (amd) amd.ecx = (amd.ecx & ~255 | cpus - 1 & 255) >>> 0;
  const hv = leaf(out, 1073741824);
  if (hv) {
    hv.ebx = KVM_SIGNATURE[0];
    hv.ecx = KVM_SIGNATURE[1];
    hv.edx = KVM_SIGNATURE[2];
    hv.eax = Math.max(hv.eax, 1073741825);
  } else {
    out.push({
      function: 1073741824,
      index: 0,
      flags: 0,
      eax: 1073741825,
      ebx: KVM_SIGNATURE[0],
      ecx: KVM_SIGNATURE[1],
      edx: KVM_SIGNATURE[2]
    });
  }
  return out;
}
var MSR = {
  TSC: 16,
  SYSENTER_CS: 372,
  SYSENTER_ESP: 373,
  SYSENTER_EIP: 374,
  MISC_ENABLE: 416,
  MTRR_DEF_TYPE: 767,
  STAR: 3221225601,
  LSTAR: 3221225602,
  CSTAR: 3221225603,
  SYSCALL_MASK: 3221225604,
  KERNEL_GS_BASE: 3221225730
};
function bootMsrs() {
  return [
    {
      index: MSR.SYSENTER_CS,
      data: 0n
    },
    {
      index: MSR.SYSENTER_ESP,
      data: 0n
    },
    {
      index: MSR.SYSENTER_EIP,
      data: 0n
    },
    {
      index: MSR.STAR,
      data: 0n
    },
    {
      index: MSR.CSTAR,
      data: 0n
    },
    {
      index: MSR.KERNEL_GS_BASE,
      data: 0n
    },
    {
      index: MSR.SYSCALL_MASK,
      data: 0n
    },
    {
      index: MSR.LSTAR,
      data: 0n
    },
    {
      index: MSR.TSC,
      data: 0n
    },
    {
      index: MSR.MISC_ENABLE,
      data: 1n
    },
    {
      index: MSR.MTRR_DEF_TYPE,
      data: 0x806n
    }
  ];
}
function bootFpu(base) {
  return {
    ...base,
    fcw: 895,
    mxcsr: 8064
  };
}

// vmm/kernel_boot.ts
async function loadKernel(m, k, o) {
  const layout = writeBootImage(m.memory, k, o, m.vcpus.length);
  await setupBootVcpus(m, k, layout);
  return layout;
}
function writeBootImage(mem, k, o, vcpus) {
  const low = mem.regions[0];
  const lowEnd = low.gpa + low.bytes.byteLength;
  const kernelEnd = Math.max(KERNEL_LOAD + k.initSize, ...k.segments.map((s) => s.gpa + s.memSize));
  if (kernelEnd > lowEnd) {
    throw new KernelError(`Cannot boot: the kernel needs RAM up to 0x${kernelEnd.toString(16)}; give the VM more memory`);
  }
  for (const s of k.segments) {
    mem.write(s.gpa, s.bytes);
    if (s.memSize > s.bytes.byteLength) {
      mem.fill(s.gpa + s.bytes.byteLength, s.memSize - s.bytes.byteLength, 0);
    }
  }
  const cmd = new TextEncoder().encode(o.cmdline);
  if (cmd.byteLength > k.cmdlineMax) {
    throw new KernelError(`Cannot boot: the command line is ${cmd.byteLength} bytes, the kernel takes ${k.cmdlineMax}`);
  }
  mem.write(BOOT.CMDLINE, cmd);
  mem.writeU8(BOOT.CMDLINE + cmd.byteLength, 0);
  let initrd;
  if (o.initrd) {
    const addr = placeInitrd(o.initrd.byteLength, {
      ramEnd: lowEnd,
      initrdAddrMax: k.initrdAddrMax,
      kernelEnd
    });
    mem.write(addr, o.initrd);
    initrd = {
      addr,
      size: o.initrd.byteLength
    };
  }
  const e820 = e820Map(mem.regions.map((r) => ({
    gpa: r.gpa,
    size: r.bytes.byteLength
  })));
  const zp = bootParams({
    ...k.setupHeader ? {
      setupHeader: k.setupHeader
    } : {},
    cmdline: {
      addr: BOOT.CMDLINE,
      size: cmd.byteLength
    },
    ...initrd ? {
      initrd
    } : {},
    e820
  });
  if (o.acpi) {
    const t = acpiTables(o.acpi);
    for (const [addr, bytes2] of t.blobs) mem.write(addr, bytes2);
    if (o.acpi.vmgenid) {
      mem.write(VMGENID_ADDR, crypto.getRandomValues(new Uint8Array(VMGENID_SIZE)));
    }
    new DataView(zp.buffer, zp.byteOffset).setBigUint64(ZP.ACPI_RSDP_ADDR, BigInt(t.rsdp), true);
  }
  mem.write(BOOT.ZERO_PAGE, zp);
  writeBootTables(mem);
  mem.write(BOOT.MPTABLE, mpTable(vcpus));
  const pvh = k.kind === "elf" && k.pvhEntry !== void 0;
  if (pvh) {
    mem.write(BOOT.PVH_INFO, pvhStartInfo({
      cmdline: BOOT.CMDLINE,
      ...initrd ? {
        initrd
      } : {},
      e820
    }));
  }
  return {
    entry: pvh ? k.pvhEntry : k.entry64,
    mode: pvh ? "pvh" : "64-bit",
    cmdline: o.cmdline,
    ...initrd ? {
      initrd
    } : {}
  };
}
async function setupBootVcpus(m, k, layout) {
  const pvh = layout.mode === "pvh";
  const supported = m.kvm.supportedCpuid();
  const tscDeadline = m.kvm.checkExtension(CAP.TSC_DEADLINE_TIMER) > 0;
  await Promise.all(m.vcpus.map(async (t, id) => {
    const cpuid = cpuidFor(supported, id, m.vcpus.length, {
      tscDeadline
    });
    const first = [
      t.call("setCpuid2", cpuid)
    ];
    if (cpuid.some((e) => e.function === 13)) {
      first.push(t.call("setXcrs", {
        flags: 0,
        xcrs: [
          {
            xcr: 0,
            value: bootXcr0(cpuid)
          }
        ]
      }).catch(() => {
      }));
    }
    first.push(t.call("setMsrs", bootMsrs()));
    const fpu = t.call("getFpu");
    const lapic = t.call("getLapic");
    const sregs = id === 0 ? t.call("getSregs") : void 0;
    const regs = id === 0 ? t.call("getRegs") : void 0;
    const [f, l, s, r] = await Promise.all([
      fpu,
      lapic,
      sregs,
      regs,
      ...first
    ]);
    const second = [
      t.call("setFpu", bootFpu(f)),
      t.call("setLapic", lapicWithLints(l))
    ];
    if (s && r) {
      if (pvh) {
        second.push(t.call("setSregs", pvhSregs(s)));
        second.push(t.call("setRegs", entryRegs(r, {
          rip: k.pvhEntry,
          rbx: BOOT.PVH_INFO
        })));
      } else {
        second.push(t.call("setSregs", longModeSregs(s)));
        second.push(t.call("setRegs", entryRegs(r, {
          rip: k.entry64,
          rsi: BOOT.ZERO_PAGE
        })));
      }
    }
    await Promise.all(second);
  }));
}

// vmm/serial.ts
init_timer();

// vstate/byte_ring.ts
var HEAD = 0;
var TAIL = 1;
var WANT = 2;
var HEADER_BYTES = 16;
var ByteRing = class _ByteRing {
  sab;
  #idx;
  #data;
  #mask;
  constructor(sab) {
    this.sab = sab;
    const cap = sab.byteLength - HEADER_BYTES;
    if (cap <= 0 || (cap & cap - 1) !== 0) {
      throw new RangeError(`Cannot use byte ring: capacity ${cap} is not a power of two`);
    }
    this.#idx = new Int32Array(sab, 0, 3);
    this.#data = new Uint8Array(sab, HEADER_BYTES, cap);
    this.#mask = cap - 1;
  }
  /** A ring holding up to `capacity` bytes (a power of two). */
  static create(capacity = 65536) {
    const r = new _ByteRing(new SharedArrayBuffer(HEADER_BYTES + capacity));
    Atomics.store(r.#idx, WANT, 1);
    return r;
  }
  /**
   * For the writer, after pushing: whether the reader asked to be woken (it drained the ring
   * and has not been woken since). True at most once per {@link drainArmed}, so a writer
   * producing a byte at a time wakes the reader once per batch, not once per byte.
   */
  takeWakeRequest() {
    return Atomics.exchange(this.#idx, WANT, 0) === 1;
  }
  /** Bytes waiting to be read. */
  get length() {
    return Atomics.load(this.#idx, HEAD) - Atomics.load(this.#idx, TAIL) >>> 0;
  }
  /** Free space in bytes. */
  get free() {
    return this.#data.byteLength - this.length;
  }
  /** Appends as many bytes of `src` as fit; returns how many were written. */
  push(src) {
    const head = Atomics.load(this.#idx, HEAD);
    const n = Math.min(src.byteLength, this.free);
    for (let i = 0; i < n; i++) this.#data[head + i & this.#mask] = src[i];
    Atomics.store(this.#idx, HEAD, head + n | 0);
    return n;
  }
  /** Appends one byte; false when the ring is full. */
  pushByte(b) {
    if (this.free === 0) return false;
    const head = Atomics.load(this.#idx, HEAD);
    this.#data[head & this.#mask] = b;
    Atomics.store(this.#idx, HEAD, head + 1 | 0);
    return true;
  }
  /** Removes and returns everything waiting. */
  drain() {
    const tail = Atomics.load(this.#idx, TAIL);
    const n = this.length;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.#data[tail + i & this.#mask];
    Atomics.store(this.#idx, TAIL, tail + n | 0);
    Atomics.notify(this.#idx, TAIL);
    return out;
  }
  /**
   * For the reader: {@link drain}, then ask to be woken for the next byte, then look once
   * more (a byte pushed between the drain and the request would otherwise wait unseen).
   */
  drainArmed() {
    const first = this.drain();
    Atomics.store(this.#idx, WANT, 1);
    if (this.length === 0) return first;
    const more = this.drain();
    const all = new Uint8Array(first.byteLength + more.byteLength);
    all.set(first);
    all.set(more, first.byteLength);
    return all;
  }
  /** Blocks (worker threads only) until the reader frees space or `ms` passes. */
  waitForSpace(ms) {
    const tail = Atomics.load(this.#idx, TAIL);
    if (this.free > 0) return;
    Atomics.wait(this.#idx, TAIL, tail, ms);
  }
};

// vmm/serial.ts
var OUTPUT_BATCH_MS = 20;
var COM1_PORT = 1016;
var COM1_IRQ = 4;
var SerialPort = class {
  /** The UART's first I/O port (eight ports from here). */
  port;
  /** The UART's interrupt line. */
  irq;
  /** The device thread's view of the UART (input, snapshots). */
  uart;
  #ring = ByteRing.create(1 << 16);
  #irqFd = eventfd();
  #output;
  #pendingInput = new Uint8Array(0);
  #closed = false;
  #batchTimer;
  /** A UART at `port` and `irq` (default COM1) whose transmitted bytes go to `output`. */
  constructor(opts) {
    this.port = opts.port ?? COM1_PORT;
    this.irq = opts.irq ?? COM1_IRQ;
    this.#output = opts.output;
    this.uart = new Uart(Uart.createState(), {
      // The device thread never transmits: guest writes are served by the vCPU workers.
      output: (b) => this.#output(new Uint8Array([
        b
      ])),
      interrupt: {
        trigger: () => eventfdWrite(this.#irqFd)
      }
    });
  }
  /** What the vCPU workers need to serve the UART. */
  get spec() {
    return {
      kind: "uart",
      port: this.port,
      state: this.uart.state,
      ring: this.#ring.sab,
      irqFd: this.#irqFd,
      irq: this.irq
    };
  }
  /** Binds the interrupt to the machine's irqchip and drains output on every wake. */
  attach(m) {
    m.vm.irqfd(this.#irqFd, this.irq);
    m.dispatcher.addWakeHandler(() => {
      this.#drainBatched();
      this.#feed();
    });
    m.onClose(() => this.close(m));
  }
  /** Forwards transmitted bytes to the output (and asks to be woken for the next). */
  drain() {
    const b = this.#ring.drainArmed();
    if (b.byteLength) this.#output(b);
  }
  /**
   * On a wake: what is there goes out at once, then the device thread looks again every
   * {@link OUTPUT_BATCH_MS} while output keeps coming, and asks to be woken by the next byte
   * only once a look finds nothing. A guest writing steadily then costs the device thread one
   * turn per batch (a timer, no wake from the vCPU thread) instead of one per vCPU exit; on a
   * one-CPU host that time is the guest's.
   */
  #drainBatched() {
    if (this.#closed) return;
    const b = this.#ring.drain();
    if (b.byteLength) this.#output(b);
    this.#lookLater();
  }
  #lookLater() {
    if (this.#batchTimer !== void 0) return;
    this.#batchTimer = after(OUTPUT_BATCH_MS, () => {
      this.#batchTimer = void 0;
      if (this.#closed) return;
      const b = this.#ring.drain();
      if (b.byteLength) {
        this.#output(b);
        this.#lookLater();
      } else this.drain();
    });
  }
  /** Bytes of input not yet in the UART's FIFO. */
  get pendingInput() {
    return this.#pendingInput.byteLength;
  }
  /** Queues bytes for the guest; they enter the FIFO as it has room (nothing is dropped). */
  input(bytes2) {
    const all = new Uint8Array(this.#pendingInput.byteLength + bytes2.byteLength);
    all.set(this.#pendingInput);
    all.set(bytes2, this.#pendingInput.byteLength);
    this.#pendingInput = all;
    this.#feed();
  }
  #feed() {
    if (this.#pendingInput.byteLength === 0) return;
    const n = this.uart.receive(this.#pendingInput);
    this.#pendingInput = this.#pendingInput.subarray(n);
  }
  /**
   * Forwards the last output, unbinds the interrupt from `m`'s VM and closes the eventfd.
   * Idempotent.
   */
  close(m) {
    if (this.#closed) return;
    this.#closed = true;
    this.#batchTimer?.cancel();
    this.#batchTimer = void 0;
    this.drain();
    try {
      m?.vm.irqfd(this.#irqFd, this.irq, {
        deassign: true
      });
    } catch {
    }
    closeFd(this.#irqFd);
  }
};

// vmm/console_api.ts
init_timer();
var CONSOLE_KEEP = 1 << 20;
var Console = class {
  input;
  #text;
  /** Offset in #text where the next waitFor() starts looking. */
  #from;
  #decoder;
  #waiters;
  #lineWaiters;
  #lines;
  #partial;
  #closed;
  /** A console whose {@link Console.write} goes to `input` (the guest's console input). */
  constructor(input) {
    this.input = input;
    this.#text = "";
    this.#from = 0;
    this.#decoder = new TextDecoder();
    this.#waiters = [];
    this.#lineWaiters = [];
    this.#lines = [];
    this.#partial = "";
    this.#closed = false;
  }
  /** Called by the VMM with console output. */
  push(bytes2) {
    const t = this.#decoder.decode(bytes2, {
      stream: true
    });
    if (!t) return;
    this.#text += t;
    if (this.#text.length > CONSOLE_KEEP) {
      const drop = this.#text.length - CONSOLE_KEEP;
      this.#text = this.#text.slice(drop);
      this.#from = Math.max(0, this.#from - drop);
    }
    const parts = (this.#partial + t).split("\n");
    this.#partial = parts.pop();
    for (const l of parts) this.#lines.push(l.replace(/\r$/, ""));
    for (const w of this.#waiters.splice(0)) w();
    for (const w of this.#lineWaiters.splice(0)) w();
  }
  /** Everything kept so far. */
  get text() {
    return this.#text;
  }
  /** Writes to the guest's console input. */
  write(data) {
    this.input(typeof data === "string" ? new TextEncoder().encode(data) : data);
  }
  /**
   * Resolves with the first match of `pattern` in the output after the previous match (or
   * from the start); rejects after the timeout, or when the VM stops first.
   *
   * @example
   * ```ts ignore
   * await vm.console.waitFor(/login:|# $/, { timeout: 10_000 });
   * ```
   */
  waitFor(pattern, opts = {}) {
    const re = typeof pattern === "string" ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&")) : pattern;
    const flags = re.flags.replace("g", "").replace("y", "");
    const find = () => {
      const start = this.#from;
      const m = new RegExp(re.source, flags).exec(this.#text.slice(start));
      if (m) {
        m.index += start;
        this.#from = m.index + m[0].length;
      }
      return m;
    };
    const now = find();
    if (now) return Promise.resolve(now);
    if (this.#closed) {
      return Promise.reject(new Error(`The VM stopped before the console showed ${re}`));
    }
    const timeout = opts.timeout ?? 3e4;
    return new Promise((resolve, reject) => {
      let timer = void 0;
      const check2 = () => {
        const m = find();
        if (m) {
          timer?.cancel();
          resolve(m);
        } else if (this.#closed) {
          timer?.cancel();
          reject(new Error(`The VM stopped before the console showed ${re}`));
        } else this.#waiters.push(check2);
      };
      timer = after(timeout, () => {
        this.#waiters = this.#waiters.filter((w) => w !== check2);
        reject(new Error(`Timed out after ${timeout} ms waiting for ${re} on the console`));
      });
      this.#waiters.push(check2);
    });
  }
  /** Each complete line of output from now on (without the newline), until the VM stops. */
  async *lines() {
    let i = this.#lines.length;
    for (; ; ) {
      while (i < this.#lines.length) yield this.#lines[i++];
      if (this.#closed) return;
      await new Promise((r) => this.#lineWaiters.push(r));
      if (this.#lines.length > 1e4) {
        const cut = Math.min(i, this.#lines.length - 1e3);
        if (cut > 0) {
          this.#lines.splice(0, cut);
          i -= cut;
        }
      }
    }
  }
  /** The VM stopped: pending waits fail, line iterators end. */
  close() {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w();
    for (const w of this.#lineWaiters.splice(0)) w();
  }
};

// vmm/log.ts
var LOG_LEVELS = [
  "error",
  "warn",
  "info",
  "debug"
];
function parseLogLevel(s) {
  if (!LOG_LEVELS.includes(s)) {
    throw new TypeError(`--log-level expects one of ${LOG_LEVELS.join(", ")}, got ${JSON.stringify(s)}`);
  }
  return s;
}
function stderrLine(line) {
  const b = new TextEncoder().encode(line + "\n");
  let o = 0;
  while (o < b.byteLength) o += Deno.stderr.writeSync(b.subarray(o));
}
function fieldText(v) {
  const s = String(v);
  return /^[^\s"=]+$/.test(s) ? s : JSON.stringify(s);
}
function createLogger(opts = {}) {
  const level = opts.level ?? "warn";
  const max = LOG_LEVELS.indexOf(level);
  const write = opts.write ?? stderrLine;
  const enabled = (l) => LOG_LEVELS.indexOf(l) <= max;
  const emit = (l, msg2, fields = {}) => {
    const defined = Object.entries(fields).filter((e) => e[1] !== void 0);
    if (opts.json) {
      write(JSON.stringify({
        time: (/* @__PURE__ */ new Date()).toISOString(),
        level: l,
        msg: msg2,
        ...Object.fromEntries(defined)
      }));
    } else {
      const extra = defined.map(([k, v]) => ` ${k}=${fieldText(v)}`).join("");
      write(`denovm: ${l === "notice" ? "" : `${l}: `}${msg2}${extra}`);
    }
  };
  const log = (l, msg2, fields) => {
    if (enabled(l)) emit(l, msg2, fields);
  };
  return {
    level,
    enabled,
    log,
    error: (m, f) => log("error", m, f),
    warn: (m, f) => log("warn", m, f),
    info: (m, f) => log("info", m, f),
    debug: (m, f) => log("debug", m, f),
    notice: (m, f) => emit("notice", m, f)
  };
}
var silentLogger = createLogger({
  level: "error",
  write: () => {
  }
});

// host/exec.ts
init_timer();
var AGENT_PORT = 1024;
var MAX_CMD = 64 * 1024;
var MAX_STDIN = 64 * 1024 * 1024;
var MAX_FRAME = 1 << 20;
var MAX_OUTPUT = 64 * 1024 * 1024;
var ExecError = class extends Error {
  /** Always "ExecError". */
  name = "ExecError";
};
var Reader = class {
  conn;
  #buf;
  #chunk;
  constructor(conn) {
    this.conn = conn;
    this.#buf = new Uint8Array(0);
    this.#chunk = new Uint8Array(65536);
  }
  async #fill(n) {
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
  async take(n) {
    if (!await this.#fill(n)) return null;
    const out = this.#buf.slice(0, n);
    this.#buf = this.#buf.subarray(n);
    return out;
  }
  /** One line without its `\n` (at most `max` bytes), or null at end of stream. */
  async line(max) {
    for (; ; ) {
      const i = this.#buf.indexOf(10);
      if (i >= 0) {
        const s = new TextDecoder().decode(this.#buf.subarray(0, i));
        this.#buf = this.#buf.subarray(i + 1);
        return s;
      }
      if (this.#buf.byteLength >= max) return null;
      if (!await this.#fill(this.#buf.byteLength + 1)) return null;
    }
  }
};
function u322(n) {
  const b = new Uint8Array(4);
  new DataView(b.buffer).setUint32(0, n, true);
  return b;
}
function concat2(parts) {
  const out = new Uint8Array(parts.reduce((n, p) => n + p.byteLength, 0));
  let o = 0;
  for (const p of parts) {
    out.set(p, o);
    o += p.byteLength;
  }
  return out;
}
async function connectAgent(socketPath, waitMs) {
  let conn;
  try {
    conn = await Deno.connect({
      transport: "unix",
      path: socketPath
    });
  } catch (e) {
    throw new ExecError(`Cannot reach the vsock device at ${socketPath}: ${e.message}`);
  }
  const r = new Reader(conn);
  let timedOut = false;
  const timer = after(Math.max(0, waitMs), () => {
    timedOut = true;
    conn.close();
  });
  try {
    await conn.write(new TextEncoder().encode(`CONNECT ${AGENT_PORT}
`));
    const ok2 = await r.line(64);
    if (ok2 !== null && /^OK \d+$/.test(ok2)) return {
      conn,
      r
    };
  } catch {
  } finally {
    timer.cancel();
  }
  if (timedOut) {
    throw new ExecError(`Timed out after ${Math.round(waitMs)} ms: the guest neither accepted nor refused the connection to vsock port ${AGENT_PORT}`);
  }
  conn.close();
  return null;
}
async function exec(socketPath, cmd, opts = {}) {
  const cmdBytes = new TextEncoder().encode(cmd);
  if (cmdBytes.byteLength === 0 || cmdBytes.byteLength > MAX_CMD || cmd.includes("\0")) {
    throw new RangeError(`Cannot exec: the command must be 1 byte to 64 KiB, without NUL`);
  }
  const stdin = typeof opts.stdin === "string" ? new TextEncoder().encode(opts.stdin) : opts.stdin ?? new Uint8Array(0);
  if (stdin.byteLength > MAX_STDIN) throw new RangeError("Cannot exec: stdin over 64 MiB");
  const timeout = opts.timeout ?? 3e4;
  for (const [name2, v] of [
    [
      "timeout",
      timeout
    ],
    [
      "agentWait",
      opts.agentWait ?? 0
    ]
  ]) {
    if (typeof v !== "number" || Number.isNaN(v)) {
      throw new RangeError(`Cannot exec: ${name2} must be a number of ms, not ${v}`);
    }
  }
  const start = performance.now();
  const retryUntil = start + Math.min(timeout, opts.agentWait ?? 3e3);
  let attempt = null;
  for (let delay = 20; attempt === null; delay = Math.min(delay * 2, 250)) {
    attempt = await connectAgent(socketPath, timeout - (performance.now() - start));
    if (attempt === null) {
      if (performance.now() + delay > retryUntil) {
        throw new ExecError(`No guest agent answered on vsock port ${AGENT_PORT} (is the guest running denovm-agent?)`);
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
    const req = concat2([
      new TextEncoder().encode("DNX1"),
      u322(cmdBytes.byteLength),
      cmdBytes,
      u322(stdin.byteLength),
      stdin
    ]);
    for (let o = 0; o < req.byteLength; ) o += await conn.write(req.subarray(o));
    const out = [], err = [];
    let total = 0;
    for (; ; ) {
      const head = await r.take(5);
      if (head === null) throw new ExecError("The guest agent hung up before the exit status");
      const type = head[0];
      const len = new DataView(head.buffer, head.byteOffset).getUint32(1, true);
      if (len > MAX_FRAME) throw new ExecError(`The guest agent sent a ${len}-byte frame`);
      const body = await r.take(len);
      if (body === null) throw new ExecError("The guest agent hung up inside a frame");
      if (type === 1 || type === 2) {
        total += len;
        if (total > MAX_OUTPUT) throw new ExecError("The command's output is over 64 MiB");
        (type === 1 ? out : err).push(body);
      } else if (type === 3 && len === 4) {
        const stdoutBytes = concat2(out);
        return {
          code: new DataView(body.buffer, body.byteOffset).getInt32(0, true),
          stdout: new TextDecoder().decode(stdoutBytes),
          stderr: new TextDecoder().decode(concat2(err)),
          stdoutBytes
        };
      } else if (type === 4) {
        throw new ExecError(`The guest agent refused: ${new TextDecoder().decode(body)}`);
      } else {
        throw new ExecError(`The guest agent sent an unknown frame (type ${type}, ${len} bytes)`);
      }
    }
  } catch (e) {
    if (timedOut) {
      throw new ExecError(`Timed out after ${timeout} ms running ${JSON.stringify(cmd.slice(0, 80))}`);
    }
    if (e instanceof ExecError) throw e;
    throw new ExecError(`Lost the guest agent: ${e.message}`);
  } finally {
    timer.cancel();
    try {
      conn.close();
    } catch {
    }
  }
}

// vmm/vmm.ts
var EXIT_PORT = 1281;
var BOOT_MARKER_PORT = 1285;
var VIRTIO_ISR_SLOTS = 256;
var BOOT_MARKER_MMIO = 3506434048;
function defaultCmdline(console2, acpi = true) {
  const c = console2 === "serial" ? "console=ttyS0 " : console2 === "virtio" ? "console=hvc0 " : "";
  return `${c}reboot=k panic=1 pci=off nomodule i8042.noaux i8042.nomux ${acpi ? "" : "i8042.nopnp "}i8042.dumbkbd`;
}
var ADMIN_TYPE_NAMES = {
  [DEVICE_ID.RNG]: "rng",
  [DEVICE_ID.CONSOLE]: "console",
  [DEVICE_ID.BLOCK]: "blk"
};
var Vmm = class _Vmm {
  /** The validated configuration the VM was built from. */
  config;
  /** The machine below: KVM VM, guest memory, vCPU threads, buses. */
  machine;
  /** The 8250 UART at COM1 (0x3f8, IRQ 4). */
  serial;
  /** The devices built from the config: virtio devices and the i8042. */
  devices;
  #mmioBase;
  #ram;
  #tracking;
  /** The VM generation ID's address and announcing GSI (ACPI kernel boots). */
  #vmgenid;
  #markerCell;
  #logger = silentLogger;
  #vmCreatedAt;
  #loadedAt;
  #restoreAt;
  /** The guest console: waitFor(), write(), lines(). */
  console;
  /** Lifecycle events: "exit" (detail: the stop reason), "reset", "device-error" (detail: message). */
  events = new EventTarget();
  #exitWatched = false;
  /** The kernel boot, when one was loaded. */
  boot;
  /** The memory layers (absolute paths) the guest memory equalled at the last snapshot. */
  #layers;
  #state = "created";
  #pausing = false;
  constructor(config, machine, serial, devices, layout, tracking) {
    this.config = config;
    this.machine = machine;
    this.serial = serial;
    this.devices = devices;
    this.#ram = layout.ram;
    this.#mmioBase = layout.mmioBase;
    this.#tracking = tracking;
  }
  /** Builds the VM (not started). Without a kernel it loads `opts.image` or the demo. */
  static async create(config = {}, opts = {}) {
    const cfg = parseConfig({
      ...defaultConfig(),
      ...config
    });
    if (cfg.kernel !== void 0) {
      cfg.acpi ??= true;
      const kernel = parseKernel(await readInput(cfg.kernel, "kernel"), cfg.kernel);
      const initrd = cfg.initrd !== void 0 ? await readInput(cfg.initrd, "initrd") : void 0;
      const vmm2 = await _Vmm.#build(cfg, opts, void 0);
      try {
        const cmdline = [
          cfg.cmdline ?? defaultCmdline(cfg.console, cfg.acpi),
          ...cfg.acpi ? [] : vmm2.devices.announce
        ].join(" ");
        vmm2.boot = await loadKernel(vmm2.machine, kernel, {
          cmdline,
          ...initrd ? {
            initrd
          } : {},
          ...cfg.acpi ? {
            acpi: {
              vcpus: cfg.vcpus,
              virtio: vmm2.devices.virtio.map((d) => ({
                base: d.base,
                gsi: d.gsi
              })),
              // Described for PNP: without the entry, Linux's direct probe of the controller
              // fails under hardware-reduced ACPI (seen with Debian's 6.1 kernel).
              i8042: true,
              rtc: true,
              vmgenid: true
            }
          } : {}
        });
      } catch (e) {
        await vmm2.stop();
        throw e;
      }
      if (cfg.acpi) vmm2.#vmgenid = {
        addr: VMGENID_ADDR,
        gsi: GED_GSI
      };
      vmm2.#loadedAt = performance.now();
      vmm2.#logger.info("kernel loaded", {
        kernel: cfg.kernel,
        mode: vmm2.boot.mode,
        initrd: cfg.initrd,
        cmdline: vmm2.boot.cmdline
      });
      return vmm2;
    }
    const vmm = await _Vmm.#build(cfg, opts, void 0);
    const image = opts.image ?? {
      bytes: DEMO_GUEST,
      load: 4096
    };
    vmm.machine.memory.write(image.load, image.bytes);
    for (let id = 0; id < vmm.machine.vcpus.length; id++) {
      await vmm.machine.setRealMode(id, {
        ip: image.load,
        sp: (image.sp ?? 28672) - id * 1024
      });
    }
    vmm.#loadedAt = performance.now();
    vmm.#logger.info("real-mode image loaded", {
      image: opts.image ? "given" : "demo",
      bytes: image.bytes.byteLength,
      load: `0x${image.load.toString(16)}`
    });
    return vmm;
  }
  static async #build(cfg, opts, memoryFile, vcpuStates) {
    const logger = opts.logger ?? silentLogger;
    const fault = opts.log ?? ((msg2) => logger.warn(msg2));
    const marker = new Float64Array(new SharedArrayBuffer(8));
    const user = cfg.console === "none" ? void 0 : opts.output;
    let sink;
    let events;
    const vmmEvents = new EventTarget();
    const output = (b) => {
      sink?.push(b);
      user?.(b);
    };
    const serial = new SerialPort({
      output
    });
    const ram = opts.ram ?? ramLayout(cfg.memMiB);
    const mmioBase = opts.mmioBase ?? VIRTIO_MMIO_BASE;
    let m;
    try {
      m = await Machine.create({
        ram,
        vcpus: cfg.vcpus,
        local: () => [
          {
            kind: "exit",
            port: EXIT_PORT
          },
          {
            kind: "marker",
            port: BOOT_MARKER_PORT,
            cell: marker.buffer
          },
          serial.spec
        ],
        ...memoryFile ? {
          memoryFile
        } : {},
        ...vcpuStates ? {
          vcpuStates
        } : {},
        onFault: fault,
        // A guest probing for hardware that is not there is normal: debug, rate-limited.
        onMiss: (msg2) => logger.debug(msg2),
        dirtyLog: opts.trackDirtyPages ?? false,
        // The virtio-mmio windows' interrupt status, answered by the vCPU workers.
        virtioIsr: {
          base: mmioBase,
          slots: VIRTIO_ISR_SLOTS
        },
        // The transmit register (THR, and the divisor's low byte under DLAB): a guest sees
        // nothing of a write there before it next reads the UART, which exits and finds it
        // served. Every other UART register still exits at each access.
        ...opts.coalescedSerial ?? true ? {
          coalescedPio: [
            {
              port: serial.port,
              size: 1
            }
          ]
        } : {}
      });
    } catch (e) {
      serial.close();
      throw e;
    }
    try {
      if (opts.trackDirtyPages) m.memory.trackDirty(true);
      serial.attach(m);
      const devices = await attachDevices(m, cfg, {
        consoleOutput: output,
        mmioBase,
        ...opts.gsis ? {
          gsis: opts.gsis
        } : {},
        ...opts.vsockConnect ? {
          vsockConnect: opts.vsockConnect
        } : {},
        ...opts.diskImages ? {
          diskImages: opts.diskImages
        } : {},
        diskOnThread: memoryFile === void 0,
        log: (msg2) => {
          fault(msg2);
          if (/needs reset/i.test(msg2)) {
            events?.dispatchEvent(new CustomEvent("device-error", {
              detail: msg2
            }));
          }
        }
      });
      m.mmio.register(BOOT_MARKER_MMIO, 4096, {
        read: (_o, d) => d.fill(0),
        write: () => {
          if (marker[0] === 0) marker[0] = performance.timeOrigin + performance.now();
        }
      }, "boot-marker");
      events = vmmEvents;
      sink = new Console((bytes2) => {
        if (cfg.console === "virtio" && devices.console) devices.console.input(bytes2);
        else serial.input(bytes2);
      });
      const vmm = new _Vmm(cfg, m, serial, devices, {
        ram,
        mmioBase
      }, opts.trackDirtyPages ?? false);
      vmm.#markerCell = marker;
      vmm.#logger = logger;
      vmm.#vmCreatedAt = performance.now();
      logger.info("vm created", {
        vcpus: cfg.vcpus,
        mem_mib: cfg.memMiB,
        devices: devices.virtio.map((d) => d.name).join(",") || "none",
        restored_from: memoryFile
      });
      if (logger.enabled("debug")) {
        for (const a of devices.announce) logger.debug("virtio-mmio device", {
          at: a
        });
      }
      vmm.console = sink;
      vmm.events = vmmEvents;
      return vmm;
    } catch (e) {
      await m.close();
      throw e;
    }
  }
  /** Milliseconds from process start to the guest's boot marker, once it was written. */
  get bootMarkerMs() {
    const t = this.#markerCell?.[0] ?? 0;
    return t === 0 ? void 0 : t - performance.timeOrigin;
  }
  /** Boot phase times so far (ms since process start). */
  get timings() {
    const t = {};
    if (this.#vmCreatedAt !== void 0) t.vmCreated = this.#vmCreatedAt;
    if (this.#loadedAt !== void 0) t.kernelLoaded = this.#loadedAt;
    if (this.#restoreAt) {
      t.restoreStarted = this.#restoreAt.started;
      t.stateValidated = this.#restoreAt.validated;
      if (this.#restoreAt.applied !== void 0) t.stateApplied = this.#restoreAt.applied;
    }
    const first = this.machine.vcpus[0]?.firstRunAt;
    if (first !== void 0) t.firstInstruction = first - performance.timeOrigin;
    const marker = this.bootMarkerMs;
    if (marker !== void 0) t.bootMarker = marker;
    return t;
  }
  /** "created", "running", "paused" or "stopped". */
  get state() {
    return this.#state;
  }
  /** Runs every vCPU. */
  start() {
    if (this.#state !== "created") throw new Error(`Cannot start a VM that is ${this.#state}`);
    this.#state = "running";
    this.#watchExit();
    this.machine.run();
    this.#logger.info("started");
  }
  /** Resolves when the guest stops (exit port, reset, shutdown, error, quit). */
  whenExit() {
    return this.machine.whenExit();
  }
  #watchExit() {
    if (this.#exitWatched) return;
    this.#exitWatched = true;
    void this.machine.whenExit().then((r) => {
      this.serial.drain();
      this.console.close();
      this.#logger.info("guest stopped", {
        kind: r.kind,
        code: "code" in r ? r.code : void 0,
        message: "message" in r ? r.message : void 0
      });
      this.events.dispatchEvent(new CustomEvent("exit", {
        detail: r
      }));
      if (r.kind === "reset") this.events.dispatchEvent(new CustomEvent("reset", {
        detail: r
      }));
    });
  }
  /**
   * Pauses: every vCPU leaves KVM_RUN and parks; every device stops (no new requests,
   * in-flight ones completed, config frozen, no interrupts); kvmclock is told, so the
   * guest's watchdogs do not fire on resume.
   */
  async pause() {
    if (this.#state !== "running" || this.#pausing) {
      throw new Error(`Cannot pause a VM that is ${this.#pausing ? "pausing" : this.#state}`);
    }
    this.#pausing = true;
    try {
      await this.machine.pause();
      await Promise.all(this.devices.virtio.map((d) => d.transport.stop()));
      for (const t of this.machine.vcpus) await t.call("kvmclockCtrl");
      this.serial.drain();
    } finally {
      this.#pausing = false;
    }
    this.#state = "paused";
    this.#logger.info("paused");
  }
  /** Resumes devices (re-kicking every activated queue), then the vCPUs. */
  resume() {
    if (this.#state !== "paused") throw new Error(`Cannot resume a VM that is ${this.#state}`);
    for (const d of this.devices.virtio) d.transport.resume();
    this.#state = "running";
    this.machine.resume();
    this.#logger.info("resumed");
  }
  /**
   * Writes a snapshot of the paused VM into `dir`: the memory (a full file, or with `diff`
   * only the pages dirtied since the last snapshot) and then the state file.
   */
  async snapshot(dir, opts = {}) {
    const t0 = performance.now();
    await this.#snapshot(dir, opts);
    this.#logger.info("snapshot written", {
      dir,
      kind: opts.diff ? "diff" : "full",
      ms: Math.round(performance.now() - t0)
    });
  }
  async #snapshot(dir, opts) {
    if (this.#state !== "paused") throw new Error("Cannot snapshot a VM that is not paused");
    if (opts.diff && !this.#tracking) {
      throw new Error("Cannot take a diff snapshot: the VM does not track dirty pages");
    }
    if (opts.diff && !this.#layers) {
      throw new Error("Cannot take a diff snapshot: take a full snapshot first");
    }
    await Deno.mkdir(dir, {
      recursive: true
    });
    const m = this.machine;
    const msrList = m.kvm.msrIndexList();
    const vcpus = [];
    for (const t of m.vcpus) vcpus.push(await t.call("saveState", msrList));
    const clock = m.vm.getClock();
    const size = m.memory.totalSize;
    const state = {
      kind: "denovm-snapshot",
      config: this.config,
      machine: {
        ram: this.#ram,
        mmioBase: this.#mmioBase,
        gsis: this.devices.virtio.map((d) => d.gsi),
        vcpus: m.vcpus.length,
        ...this.#vmgenid ? {
          vmgenid: this.#vmgenid
        } : {}
      },
      vcpus,
      vm: {
        pic: [
          m.vm.getIrqchip(IRQCHIP.PIC_MASTER),
          m.vm.getIrqchip(IRQCHIP.PIC_SLAVE)
        ],
        ioapic: m.vm.getIrqchip(IRQCHIP.IOAPIC),
        pit: m.vm.getPit2(),
        clock: clock.clock,
        clockFlags: clock.flags
      },
      devices: {
        uart: this.serial.uart.save(),
        i8042: this.devices.i8042.save(),
        rtc: this.devices.rtc.save(),
        virtio: this.devices.virtio.map((d) => ({
          name: d.name,
          state: d.transport.save()
        }))
      },
      memory: {
        size,
        layers: []
      }
    };
    const abs = await Deno.realPath(dir);
    const dirty = this.#tracking ? this.#takeDirty() : void 0;
    if (opts.diff) {
      const prev = this.#layers;
      const names = prev.map((_, i) => i === 0 ? MEMORY_FILE : `${DIFF_FILE}.${i}`);
      for (const [i, l] of prev.entries()) await placeLayer(l.file, `${abs}/${names[i]}`);
      const name2 = `${DIFF_FILE}.${prev.length}`;
      const ranges = dirtyRanges(dirty, m.memory.regions.map((r) => r.bytes.byteLength));
      await writeDiff(`${abs}/${name2}`, m.memory.regions.map((r) => r.bytes), ranges, size);
      state.memory.layers = [
        ...prev.map((l, i) => ({
          ...l,
          file: names[i]
        })),
        {
          file: name2,
          ranges
        }
      ];
    } else {
      await writeMemory(`${abs}/${MEMORY_FILE}`, m.memory.regions.map((r) => r.bytes));
      state.memory.layers = [
        {
          file: MEMORY_FILE
        }
      ];
    }
    await writeAtomic(`${dir}/${STATE_FILE}`, await encodeState(state));
    this.#layers = state.memory.layers.map((l) => ({
      ...l,
      file: `${abs}/${l.file}`
    }));
  }
  /** The pages dirtied since the last call: KVM's log (guest writes) or ours (devices). */
  #takeDirty() {
    const m = this.machine;
    const ours = m.memory.takeDirty();
    return m.memory.regions.map((r, slot) => {
      const kvm = m.vm.getDirtyLog(slot, r.bytes.byteLength / PAGE);
      const mine = ours[slot];
      for (let i = 0; i < mine.length; i++) kvm[i] |= mine[i];
      return kvm;
    });
  }
  /** Guest pages dirtied since the last snapshot or restore (for tests and stats). */
  dirtyPageCount() {
    let n = 0;
    for (const b of this.#takeDirty()) for (const x of b) for (let k = x; k; k &= k - 1) n++;
    return n;
  }
  /**
   * Restores a snapshot in this process: memory mapped copy-on-write from the memory file
   * (nothing copied up front), every saved state validated before use, disks and TAPs
   * re-attached by path (or the overrides), then resumed unless `paused`.
   */
  static async restore(dir, opts = {}) {
    const started = performance.now();
    let raw2;
    try {
      raw2 = await readBounded(`${dir}/${STATE_FILE}`, MAX_STATE_BYTES, "snapshot state");
    } catch (e) {
      throw new SnapshotError(`Cannot read snapshot ${dir}: ${e instanceof Error ? e.message : String(e)}`);
    }
    const v = await validateSnapshot(await decodeState(raw2), dir, {
      ...opts.disks ? {
        disks: opts.disks
      } : {},
      ...opts.taps ? {
        taps: opts.taps
      } : {},
      diskImages: opts.diskImages !== void 0
    });
    const { state: s, config: cfg, layers } = v;
    const validated = performance.now();
    const vmm = await _Vmm.#build(cfg, {
      ...opts,
      ram: s.machine.ram,
      mmioBase: s.machine.mmioBase,
      gsis: s.machine.gsis ?? legacyVirtioGsis(s.devices.virtio.length)
    }, layers[0].file, v.vcpus);
    try {
      await applyDiffs(vmm.machine.memory, layers.slice(1));
      if (vmm.#tracking) vmm.#takeDirty();
      vmm.#layers = layers;
      vmm.#restoreAt = {
        started,
        validated
      };
      vmm.#apply(s, v.vcpus.length);
      vmm.#restoreAt.applied = performance.now();
    } catch (e) {
      await vmm.stop();
      throw e instanceof SnapshotError ? e : new SnapshotError(`Cannot restore: ${e instanceof Error ? e.message : String(e)}`);
    }
    vmm.#state = "paused";
    vmm.#watchExit();
    vmm.#logger.info("snapshot restored", {
      dir,
      layers: layers.length
    });
    if (!opts.paused) vmm.resume();
    return vmm;
  }
  /**
   * Applies the VM-wide and device state {@link validateSnapshot} passed (the checks here are
   * the last line); the vCPUs took theirs as their threads started (`vcpuStates`).
   */
  #apply(s, vcpus) {
    const m = this.machine;
    if (vcpus !== m.vcpus.length) {
      throw new SnapshotError("Cannot restore: vCPU count mismatch");
    }
    const names = this.devices.virtio.map((d) => d.name);
    const saved = s.devices.virtio.map((d) => d.name);
    if (names.join(",") !== saved.join(",")) {
      throw new SnapshotError(`Cannot restore: devices [${saved}] in the snapshot, [${names}] configured`);
    }
    m.vm.setIrqchip(IRQCHIP.PIC_MASTER, s.vm.pic[0]);
    m.vm.setIrqchip(IRQCHIP.PIC_SLAVE, s.vm.pic[1]);
    m.vm.setIrqchip(IRQCHIP.IOAPIC, s.vm.ioapic);
    m.vm.setPit2(s.vm.pit);
    m.vm.setClock({
      clock: s.vm.clock,
      flags: 0,
      realtime: 0n,
      hostTsc: 0n
    });
    this.serial.uart.restore(s.devices.uart);
    this.devices.i8042.restore(s.devices.i8042);
    this.devices.rtc.restore(s.devices.rtc);
    for (const [i, d] of this.devices.virtio.entries()) {
      d.transport.restore(s.devices.virtio[i].state);
    }
    const g2 = s.machine.vmgenid;
    if (g2) {
      this.#vmgenid = g2;
      m.memory.write(g2.addr, crypto.getRandomValues(new Uint8Array(VMGENID_SIZE)));
      m.vm.irqLine(g2.gsi, 1);
      m.vm.irqLine(g2.gsi, 0);
    }
  }
  /**
   * The guest's VM generation ID (32 hex digits) where the VM has one (a kernel booted with
   * ACPI): new at every boot and at every restore, unchanged by pause and resume. Undefined
   * once the VM is stopped.
   */
  get generationId() {
    if (!this.#vmgenid || this.#state === "stopped") return void 0;
    const b = this.machine.memory.read(this.#vmgenid.addr, VMGENID_SIZE);
    return [
      ...b
    ].map((x) => x.toString(16).padStart(2, "0")).join("");
  }
  /**
   * The virtual devices on the management device (`config.admin`), created by the guest's
   * driver or by {@link createAdminDevice}; empty without one.
   */
  get adminDevices() {
    return (this.devices.admin?.transport.devices ?? []).map((v) => ({
      id: v.id,
      type: ADMIN_TYPE_NAMES[v.deviceType] ?? v.deviceType,
      deviceType: v.deviceType,
      status: v.device.status,
      origin: v.origin,
      ...v.deviceType === DEVICE_ID.BLOCK && v.attrs.byteLength === 4 ? {
        disk: new DataView(v.attrs.buffer, v.attrs.byteOffset, 4).getUint32(0, true)
      } : {}
    }));
  }
  #admin(what) {
    const a = this.devices.admin;
    if (!a) throw new Error(`Cannot ${what}: the VM has no management device (config.admin)`);
    if (this.#state !== "running" || this.#pausing) {
      throw new Error(`Cannot ${what} in a VM that is ${this.#pausing ? "pausing" : this.#state}`);
    }
    return a.transport;
  }
  /**
   * Creates a virtual device on the management device from the host side (for tests that
   * hot-add devices): the guest's driver learns of it from a DEVICE_ADDED event. `blk`
   * takes `config.admin.disks[disk]`, one device per disk at a time.
   */
  createAdminDevice(spec) {
    const t = this.#admin("create a virtual device");
    if (spec.type === "blk" && !(Number.isInteger(spec.disk) && spec.disk >= 0 && spec.disk <= 4294967295)) {
      throw new RangeError(`Cannot create a virtual blk: disk ${spec.disk} is not an index`);
    }
    const attrs = spec.type === "blk" ? new Uint8Array(4) : new Uint8Array(0);
    if (spec.type === "blk") new DataView(attrs.buffer).setUint32(0, spec.disk, true);
    const type = spec.type === "blk" ? DEVICE_ID.BLOCK : spec.type === "rng" ? DEVICE_ID.RNG : spec.type === "console" ? DEVICE_ID.CONSOLE : -1;
    try {
      const v = t.create(type, attrs);
      return this.adminDevices.find((d) => d.id === v.id);
    } catch (e) {
      throw new Error(`Cannot create a virtual ${spec.type}: ${e.message}`);
    }
  }
  /**
   * Destroys a virtual device from the host side: requests in flight complete first, then
   * it is reset and removed, and the guest's driver gets a DEVICE_REMOVED event.
   */
  async destroyAdminDevice(id) {
    const t = this.#admin("destroy a virtual device");
    try {
      await t.destroy(id);
    } catch (e) {
      throw new Error(`Cannot destroy virtual device ${id}: ${e.message}`);
    }
  }
  /**
   * Runs `cmd` with `/bin/sh -c` in the guest and returns its exit code and output. Needs
   * a vsock device (`config.vsock`) and the guest agent (`guest/agent.c`, started by the
   * initramfs recipe's init); a guest without one fails with an {@link ExecError}.
   *
   * @example
   * ```ts ignore
   * const { code, stdout } = await vm.exec("uname -r");
   * ```
   */
  async exec(cmd, opts = {}) {
    if (this.#state !== "running") throw new Error(`Cannot exec in a VM that is ${this.#state}`);
    const vsock = this.config.vsock;
    if (!vsock) {
      throw new ExecError("Cannot exec: the VM has no vsock device (set config.vsock; the guest runs denovm-agent)");
    }
    return await exec(vsock.path, cmd, opts);
  }
  /** Stops the VM and releases everything. Idempotent. */
  async stop() {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    await this.machine.close();
    this.serial.close();
    this.#logger.debug("vm released");
  }
  /** {@link Vmm.stop}, for `await using`. */
  async [Symbol.asyncDispose]() {
    await this.stop();
  }
  /** The vCPUs (for tests): the machine's KVM handles. */
  get vcpuHandles() {
    return this.machine.vcpus.map((t) => t.vcpu);
  }
};
var MAX_KERNEL_BYTES = 256 << 20;
var MAX_INITRD_BYTES = 1 << 30;
var MAX_STATE_BYTES = 64 << 20;
function readInput(path, what) {
  return readBounded(path, what === "kernel" ? MAX_KERNEL_BYTES : MAX_INITRD_BYTES, what);
}

// frontend/run.ts
init_timer();

// host/terminal.ts
init_timer();
var ESCAPE = 1;
var TERMINAL_BACKLOG = 64 * 1024;
var EscapeFilter = class {
  #armed = false;
  /** The bytes for the guest, and whether the user asked to quit. */
  feed(bytes2) {
    const out = [];
    for (const b of bytes2) {
      if (this.#armed) {
        this.#armed = false;
        if (b === 120 || b === 88) return {
          data: new Uint8Array(out),
          quit: true
        };
        if (b === ESCAPE) out.push(ESCAPE);
        continue;
      }
      if (b === ESCAPE) this.#armed = true;
      else out.push(b);
    }
    return {
      data: new Uint8Array(out),
      quit: false
    };
  }
};
var Terminal = class {
  sink;
  stdin;
  #stopped;
  #raw;
  #done;
  constructor(sink, onQuit, stdin = Deno.stdin) {
    this.sink = sink;
    this.stdin = stdin;
    this.#stopped = false;
    this.#raw = false;
    if (stdin.isTerminal()) {
      stdin.setRaw(true);
      this.#raw = true;
    }
    this.#done = this.#loop(onQuit);
  }
  async #loop(onQuit) {
    const filter = new EscapeFilter();
    const buf = new Uint8Array(4096);
    while (!this.#stopped) {
      while (this.sink.pendingInput > TERMINAL_BACKLOG && !this.#stopped) {
        await sleep(10);
      }
      let n;
      try {
        n = await this.stdin.read(buf);
      } catch {
        return;
      }
      if (n === null || this.#stopped) return;
      const { data, quit } = filter.feed(buf.subarray(0, n));
      if (data.byteLength) this.sink.input(data);
      if (quit) {
        onQuit();
        return;
      }
    }
  }
  /** Restores the terminal; a read in progress ends with the process. */
  close() {
    this.#stopped = true;
    if (this.#raw) {
      this.stdin.setRaw(false);
      this.#raw = false;
    }
  }
  /** Resolves when input ended or the user quit. */
  get done() {
    return this.#done;
  }
};

// frontend/run.ts
function parseTrigger(s) {
  if (s.startsWith("pattern:")) {
    try {
      return {
        pattern: new RegExp(s.slice(8))
      };
    } catch (e) {
      throw new TypeError(`--snapshot-on pattern is not a regular expression: ${e.message}`);
    }
  }
  const signals = [
    "SIGHUP",
    "SIGINT",
    "SIGTERM",
    "SIGQUIT"
  ];
  if (!signals.includes(s)) {
    throw new TypeError(`--snapshot-on expects one of ${signals.join(", ")} or pattern:<regex>, got ${JSON.stringify(s)}`);
  }
  return {
    signal: s
  };
}
function reportTimings(logger, t, exitMs) {
  const f = (v) => v === void 0 ? void 0 : Number(v.toFixed(1));
  logger.notice("timings (ms since process start)", {
    code_loaded: f(t.codeLoaded),
    ...t.restoreStarted !== void 0 ? {
      restore_started: f(t.restoreStarted),
      state_validated: f(t.stateValidated),
      vm_created: f(t.vmCreated),
      state_applied: f(t.stateApplied)
    } : {
      vm_created: f(t.vmCreated),
      kernel_loaded: f(t.kernelLoaded)
    },
    first_instruction: f(t.firstInstruction),
    boot_marker: f(t.bootMarker),
    exit: f(exitMs)
  });
}
function exitCode(r) {
  switch (r.kind) {
    case "exit":
      return r.code;
    case "reset":
    case "shutdown":
    case "quit":
    case "stopped":
      return 0;
    default:
      return 1;
  }
}
function watchTimings(vm, logger, codeLoaded) {
  const all = () => ({
    ...vm.timings,
    ...codeLoaded !== void 0 ? {
      codeLoaded
    } : {}
  });
  let shown2 = false;
  void (async () => {
    const done = () => vm.bootMarkerMs !== void 0 || vm.timings.restoreStarted !== void 0 && vm.timings.firstInstruction !== void 0;
    const t0 = performance.now();
    while (!shown2 && vm.state !== "stopped" && !done()) {
      await sleep(performance.now() - t0 < 1e4 ? 50 : 200);
    }
    if (!shown2 && vm.state !== "stopped") {
      shown2 = true;
      reportTimings(logger, all());
    }
  })();
  return () => {
    if (shown2) return;
    shown2 = true;
    reportTimings(logger, all(), performance.now());
  };
}
async function runVm(o) {
  const out = o.output ?? ((b) => Deno.stdout.writeSync(b));
  const logger = o.logger ?? createLogger();
  let seen = "";
  let fire;
  const pattern = o.snapshot && "pattern" in o.snapshot.on ? o.snapshot.on.pattern : void 0;
  const output = (b) => {
    out(b);
    if (pattern) {
      seen = (seen + new TextDecoder().decode(b)).slice(-4096);
      if (pattern.test(seen)) fire?.();
    }
  };
  const vm = o.restore ? await Vmm.restore(o.restore, {
    output,
    ...o.overrideDisks ? {
      disks: o.config.disks.map((d) => d.path)
    } : {},
    ...o.overrideTaps ? {
      taps: o.config.nets.map((n) => n.tap)
    } : {},
    ...o.log ? {
      log: o.log
    } : {},
    ...o.vsockConnect ? {
      vsockConnect: o.vsockConnect
    } : {},
    logger
  }) : await Vmm.create(o.config, {
    output,
    ...o.image ? {
      image: o.image
    } : {},
    ...o.log ? {
      log: o.log
    } : {},
    ...o.vsockConnect ? {
      vsockConnect: o.vsockConnect
    } : {},
    logger
  });
  const term = (o.stdin ?? true) && vm.config.console === "serial" ? new Terminal(vm.serial, () => void vm.machine.requestStop({
    kind: "quit"
  })) : void 0;
  let removeSignal = () => {
  };
  try {
    const snapshotTaken = new Promise((resolve) => {
      if (!o.snapshot) return;
      const dir = o.snapshot.dir;
      let done = false;
      fire = () => {
        if (done) return;
        done = true;
        (async () => {
          await vm.pause();
          await vm.snapshot(dir);
          logger.notice(`snapshot written to ${dir}`);
          resolve();
        })().catch((e) => {
          logger.error(`snapshot failed: ${e instanceof Error ? e.message : String(e)}`);
          resolve();
        });
      };
      if ("signal" in o.snapshot.on) {
        const sig = o.snapshot.on.signal;
        Deno.addSignalListener(sig, fire);
        removeSignal = () => Deno.removeSignalListener(sig, fire);
      }
    });
    if (vm.state === "created") vm.start();
    const timings = o.timings ? watchTimings(vm, logger, o.codeLoaded) : void 0;
    const r = await Promise.race([
      vm.whenExit(),
      snapshotTaken.then(() => ({
        kind: "stopped",
        vcpu: -1
      }))
    ]);
    timings?.();
    if (r.kind === "error") logger.error(`the guest stopped: ${r.message}`);
    return exitCode(r);
  } finally {
    removeSignal();
    term?.close();
    await vm.stop();
  }
}

// frontend/api.ts
var BadRequest = class extends Error {
};
var MAX_BODY = 1 << 20;
async function readBody(req, max) {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > max) throw new BadRequest("request body over 1 MiB");
  if (!req.body) return "";
  const reader = req.body.getReader();
  const parts = [];
  let n = 0;
  for (; ; ) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > max) {
      await reader.cancel().catch(() => {
      });
      throw new BadRequest("request body over 1 MiB");
    }
    parts.push(value);
  }
  const all = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.byteLength;
  }
  return new TextDecoder().decode(all);
}
function obj2(body, keys, required = []) {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new BadRequest("expected a JSON object");
  }
  for (const k of Object.keys(body)) {
    if (!keys.includes(k)) throw new BadRequest(`unknown field '${k}'`);
  }
  for (const k of required) if (!(k in body)) throw new BadRequest(`missing field '${k}'`);
  return body;
}
function bool2(v, name2) {
  if (typeof v !== "boolean") throw new BadRequest(`'${name2}' must be true or false`);
  return v;
}
function str2(v, name2) {
  if (typeof v !== "string" || v === "") {
    throw new BadRequest(`'${name2}' must be a non-empty string`);
  }
  return v;
}
var ApiServer = class _ApiServer {
  opts;
  /** The Unix socket the API is served on. */
  path;
  #config;
  #vm;
  /** A VM is being created or loaded (the request awaits it): no second one meanwhile. */
  #starting;
  /** The iface_id of each entry of the config's `nets`, in order. */
  #ifaceIds;
  #server;
  #stopped;
  /** Resolves when the VM stopped (or the server was closed). */
  done;
  #resolveDone;
  constructor(path, opts) {
    this.opts = opts;
    this.#config = parseConfig({});
    this.#starting = false;
    this.#ifaceIds = [];
    this.path = path;
    this.done = new Promise((r) => this.#resolveDone = r);
  }
  /** Listens on `path` (replacing a stale socket), owner-only. */
  static async listen(path, opts = {}) {
    const s = new _ApiServer(path, opts);
    await removeStaleSocket(path, "API");
    const dir = await Deno.makeTempDir({
      prefix: "denovm-api-"
    });
    const tmp = `${dir}/api.sock`;
    try {
      await Deno.chmod(dir, 448);
      const ready = Promise.withResolvers();
      s.#server = Deno.serve({
        path: tmp,
        onListen: () => ready.resolve()
      }, (req) => s.#handle(req));
      await ready.promise;
      await Deno.chmod(tmp, 384);
    } catch (e) {
      await s.#server?.shutdown();
      await Deno.remove(dir, {
        recursive: true
      }).catch(() => {
      });
      throw e;
    }
    if (opts.config) s.#config = opts.config;
    if (opts.start) {
      try {
        s.#boot();
        s.#start(await Vmm.create(s.#config, s.#vmmOptions()));
      } catch (e) {
        await s.#vm?.stop();
        await s.#server.shutdown();
        await Deno.remove(dir, {
          recursive: true
        });
        throw e;
      }
    }
    await Deno.rename(tmp, path);
    await Deno.remove(dir);
    return s;
  }
  /** The configuration so far (what InstanceStart would boot). */
  get config() {
    return this.#config;
  }
  /** The VM, once started or loaded. */
  get vm() {
    return this.#vm;
  }
  async #handle(req) {
    const url = new URL(req.url);
    let body = void 0;
    try {
      if (req.method === "PUT" || req.method === "PATCH") {
        const text = await readBody(req, MAX_BODY);
        try {
          body = text ? JSON.parse(text) : {};
        } catch (e) {
          throw new BadRequest(`body is not JSON: ${e.message}`);
        }
      }
      return await this.#route(req.method, url.pathname, body);
    } catch (e) {
      const status = e instanceof BadRequest ? 400 : 500;
      return json(status, {
        fault_message: e instanceof Error ? e.message : String(e)
      });
    }
  }
  #preBoot(what) {
    if (this.#vm || this.#starting) {
      throw new BadRequest(`${what} is only allowed before InstanceStart`);
    }
  }
  /** Runs `create` as the one start in progress; a concurrent start is refused. */
  async #startOnce(create, run2 = true) {
    this.#starting = true;
    try {
      this.#start(await create(), run2);
    } finally {
      this.#starting = false;
    }
  }
  async #route(method2, path, body) {
    const parts = path.split("/").filter(Boolean);
    const only = (...m) => {
      if (!m.includes(method2)) throw new MethodNotAllowed(`${method2} is not allowed on ${path}`);
    };
    try {
      switch (parts[0] ?? "") {
        case "":
          only("GET");
          return json(200, {
            id: "denovm",
            state: !this.#vm ? "Not started" : this.#vm.state === "paused" ? "Paused" : "Running",
            vmm_version: "0.1.0",
            app_name: "denovm"
          });
        case "machine-config":
          if (method2 === "GET") {
            return json(200, {
              vcpu_count: this.#config.vcpus,
              mem_size_mib: this.#config.memMiB,
              acpi: this.#config.acpi ?? true
            });
          }
          only("PUT", "PATCH");
          this.#preBoot("machine-config");
          {
            const b = obj2(body, [
              "vcpu_count",
              "mem_size_mib",
              "smt",
              "track_dirty_pages",
              "acpi"
            ]);
            if (b.smt !== void 0 && bool2(b.smt, "smt")) {
              throw new BadRequest("'smt' true is not supported (vCPUs are single-threaded cores)");
            }
            if (b.track_dirty_pages !== void 0) bool2(b.track_dirty_pages, "track_dirty_pages");
            this.#set({
              ...b.vcpu_count !== void 0 ? {
                vcpus: b.vcpu_count
              } : {},
              ...b.mem_size_mib !== void 0 ? {
                memMiB: b.mem_size_mib
              } : {},
              ...b.acpi !== void 0 ? {
                acpi: bool2(b.acpi, "acpi")
              } : {}
            });
          }
          return noContent();
        case "boot-source": {
          only("PUT");
          this.#preBoot("boot-source");
          const b = obj2(body, [
            "kernel_image_path",
            "initrd_path",
            "boot_args"
          ], [
            "kernel_image_path"
          ]);
          this.#set({
            kernel: str2(b.kernel_image_path, "kernel_image_path"),
            ...b.initrd_path !== void 0 ? {
              initrd: str2(b.initrd_path, "initrd_path")
            } : {},
            ...b.boot_args !== void 0 ? {
              cmdline: b.boot_args
            } : {}
          });
          return noContent();
        }
        case "drives": {
          only("PUT");
          this.#preBoot("drives");
          const id = str2(parts[1], "drive_id");
          const b = obj2(body, [
            "drive_id",
            "path_on_host",
            "is_read_only",
            "is_root_device"
          ], [
            "drive_id",
            "path_on_host"
          ]);
          if (b.drive_id !== id) {
            throw new BadRequest(`drive_id '${String(b.drive_id)}' does not match the path`);
          }
          const disk = {
            path: str2(b.path_on_host, "path_on_host"),
            id,
            ...b.is_read_only !== void 0 ? {
              readOnly: b.is_read_only
            } : {}
          };
          const disks = this.#config.disks.filter((d) => d.id !== id);
          this.#set({
            disks: [
              ...disks,
              disk
            ]
          });
          return noContent();
        }
        case "network-interfaces": {
          only("PUT");
          this.#preBoot("network-interfaces");
          const id = str2(parts[1], "iface_id");
          const b = obj2(body, [
            "iface_id",
            "host_dev_name",
            "guest_mac"
          ], [
            "iface_id",
            "host_dev_name"
          ]);
          if (b.iface_id !== id) {
            throw new BadRequest(`iface_id '${String(b.iface_id)}' does not match the path`);
          }
          const net = {
            tap: str2(b.host_dev_name, "host_dev_name"),
            ...b.guest_mac !== void 0 ? {
              mac: b.guest_mac
            } : {}
          };
          const at = this.#ifaceIds.indexOf(id);
          const nets = [
            ...this.#config.nets
          ];
          if (at >= 0) nets[at] = net;
          else nets.push(net);
          this.#set({
            nets
          });
          if (at < 0) this.#ifaceIds.push(id);
          return noContent();
        }
        case "vsock": {
          only("PUT");
          this.#preBoot("vsock");
          if (this.opts.vsockRefusal) throw new BadRequest(this.opts.vsockRefusal);
          const b = obj2(body, [
            "guest_cid",
            "uds_path",
            "vsock_id"
          ], [
            "guest_cid",
            "uds_path"
          ]);
          this.#set({
            vsock: {
              cid: b.guest_cid,
              path: b.uds_path
            }
          });
          return noContent();
        }
        case "admin-vq": {
          only("PUT");
          this.#preBoot("admin-vq");
          const b = obj2(body, [
            "disks"
          ]);
          if (b.disks !== void 0 && !Array.isArray(b.disks)) {
            throw new BadRequest("'disks' must be an array");
          }
          const disks = (b.disks ?? []).map((d, i) => {
            const x = obj2(d, [
              "path_on_host",
              "is_read_only"
            ], [
              "path_on_host"
            ]);
            return {
              path: str2(x.path_on_host, `disks[${i}].path_on_host`),
              ...x.is_read_only !== void 0 ? {
                readOnly: bool2(x.is_read_only, `disks[${i}].is_read_only`)
              } : {}
            };
          });
          this.#set({
            admin: {
              disks
            }
          });
          return noContent();
        }
        case "admin-devices": {
          const vm = this.#running();
          if (parts.length === 1 && method2 === "GET") return json(200, vm.adminDevices);
          if (parts.length === 1) {
            only("PUT");
            const b = obj2(body, [
              "type",
              "disk"
            ], [
              "type"
            ]);
            if (b.type !== "rng" && b.type !== "console" && b.type !== "blk") {
              throw new BadRequest("'type' must be 'rng', 'console' or 'blk'");
            }
            if (b.type === "blk" !== (b.disk !== void 0)) {
              throw new BadRequest("'disk' (an index into the admin disks) goes with type 'blk'");
            }
            if (b.disk !== void 0 && (typeof b.disk !== "number" || !Number.isInteger(b.disk) || b.disk < 0 || b.disk > 4294967295)) {
              throw new BadRequest("'disk' must be an index");
            }
            try {
              return json(200, vm.createAdminDevice(b.type === "blk" ? {
                type: "blk",
                disk: b.disk
              } : {
                type: b.type
              }));
            } catch (e) {
              throw new BadRequest(e.message);
            }
          }
          only("DELETE");
          const id = Number(parts[1]);
          if (parts.length !== 2 || !Number.isSafeInteger(id) || id <= 0) return notFound(path);
          try {
            await vm.destroyAdminDevice(id);
          } catch (e) {
            throw new BadRequest(e.message);
          }
          return noContent();
        }
        case "entropy":
          only("PUT");
          this.#preBoot("entropy");
          obj2(body, [
            "rate_limiter"
          ]);
          this.#set({
            rng: true
          });
          return noContent();
        case "actions": {
          only("PUT");
          const b = obj2(body, [
            "action_type"
          ], [
            "action_type"
          ]);
          if (b.action_type === "InstanceStart") {
            this.#preBoot("InstanceStart");
            this.#boot();
            await this.#startOnce(() => Vmm.create(this.#config, this.#vmmOptions()));
            return noContent();
          }
          if (b.action_type === "SendCtrlAltDel") {
            const vm = this.#running();
            await vm.machine.requestStop({
              kind: "reset"
            });
            return noContent();
          }
          if (b.action_type === "FlushMetrics") return noContent();
          throw new BadRequest(`unknown action_type '${String(b.action_type)}'`);
        }
        case "vm": {
          only("PATCH");
          const b = obj2(body, [
            "state"
          ], [
            "state"
          ]);
          const vm = this.#running();
          if (b.state === "Paused") await vm.pause();
          else if (b.state === "Resumed") vm.resume();
          else throw new BadRequest(`state must be 'Paused' or 'Resumed'`);
          return noContent();
        }
        case "snapshot": {
          only("PUT");
          if (parts[1] === "create") {
            const b = obj2(body, [
              "snapshot_path",
              "mem_file_path",
              "snapshot_type",
              "version"
            ], [
              "snapshot_path"
            ]);
            const vm = this.#running();
            if (vm.state !== "paused") {
              throw new BadRequest("the VM must be paused to take a snapshot");
            }
            const diff = b.snapshot_type === "Diff";
            if (b.snapshot_type !== void 0 && b.snapshot_type !== "Full" && !diff) {
              throw new BadRequest("snapshot_type must be 'Full' or 'Diff'");
            }
            await vm.snapshot(str2(b.snapshot_path, "snapshot_path"), {
              diff
            });
            return noContent();
          }
          if (parts[1] === "load") {
            this.#preBoot("snapshot/load");
            const b = obj2(body, [
              "snapshot_path",
              "mem_backend",
              "mem_file_path",
              "resume_vm",
              "enable_diff_snapshots"
            ], [
              "snapshot_path"
            ]);
            const snapshotPath = str2(b.snapshot_path, "snapshot_path");
            if (b.resume_vm !== void 0) bool2(b.resume_vm, "resume_vm");
            await this.#startOnce(async () => {
              try {
                return await Vmm.restore(snapshotPath, {
                  paused: b.resume_vm !== true,
                  ...this.opts.output ? {
                    output: this.opts.output
                  } : {},
                  ...this.opts.logger ? {
                    logger: this.opts.logger
                  } : {},
                  ...this.opts.vsockConnect ? {
                    vsockConnect: this.opts.vsockConnect
                  } : {}
                });
              } catch (e) {
                throw new BadRequest(e.message);
              }
            }, false);
            return noContent();
          }
          return notFound(path);
        }
        default:
          return notFound(path);
      }
    } catch (e) {
      if (e instanceof MethodNotAllowed) return json(405, {
        fault_message: e.message
      });
      throw e;
    }
  }
  /** Applies a partial config through the same validation as the config file. */
  #set(patch) {
    try {
      this.#config = parseConfig({
        ...this.#config,
        ...patch
      });
    } catch (e) {
      throw new BadRequest(e.message);
    }
  }
  #vmmOptions() {
    return {
      ...this.opts.output ? {
        output: this.opts.output
      } : {},
      ...this.opts.logger ? {
        logger: this.opts.logger
      } : {},
      ...this.opts.image && !this.#config.kernel ? {
        image: this.opts.image
      } : {},
      ...this.opts.vsockConnect ? {
        vsockConnect: this.opts.vsockConnect
      } : {}
    };
  }
  #boot() {
    if (this.#config.kernel !== void 0 && this.opts.kernelRefusal) {
      throw new BadRequest(this.opts.kernelRefusal);
    }
  }
  #running() {
    if (!this.#vm) throw new BadRequest("the VM is not started");
    return this.#vm;
  }
  #start(vm, run2 = true) {
    this.#vm = vm;
    if (run2) vm.start();
    const timings = this.opts.timings && this.opts.logger ? watchTimings(vm, this.opts.logger, this.opts.codeLoaded) : void 0;
    void vm.whenExit().then(async (r) => {
      timings?.();
      await vm.stop();
      this.#resolveDone(r.kind === "exit" ? r.code : r.kind === "error" ? 1 : 0);
    });
  }
  /** Stops the VM (if any) and the server, and removes the socket. */
  async close() {
    await this.#vm?.stop();
    await this.#server?.shutdown();
    try {
      await Deno.remove(this.path);
    } catch {
    }
    this.#resolveDone(0);
    this.#stopped?.();
  }
};
var MethodNotAllowed = class extends Error {
};
function json(status, body) {
  return new Response(JSON.stringify(body), {
    status,
    headers: {
      "content-type": "application/json"
    }
  });
}
function noContent() {
  return new Response(null, {
    status: 204
  });
}
function notFound(path) {
  return json(404, {
    fault_message: `no resource at ${path}`
  });
}

// frontend/cli_main.ts
init_bridge();
var USAGE = `Usage: deno run -A cli.ts [options]

With no --kernel, boots the embedded demo guest (works on any host with /dev/kvm).

Options:
  --kernel <path>          Linux kernel (bzImage, or ELF vmlinux) to boot
  --initrd <path>          initramfs for the kernel
  --cmdline <string>       kernel command line
  --mem <MiB>              guest RAM (default 128)
  --cpus <n>               vCPUs (default 1)
  --disk <path>[,ro]       a virtio-blk disk (repeatable; ",ro" for read-only)
  --net <tap>[,mac=<mac>]  a virtio-net interface on a TAP device (repeatable)
  --rng                    a virtio-rng device
  --console <where>        serial (default), virtio or none
  --vsock <cid>,<path>     virtio-vsock with guest CID <cid>, host Unix socket <path>
  --admin-vq               a management device with an admin virtqueue: the guest (or
                           the API) creates virtual rng, console and blk devices on it
                           at run time (docs/admin-virtqueue.md)
  --admin-disk <path>[,ro] a disk virtual blk devices may use (repeatable; implies
                           --admin-vq; index 0, 1, ... in order)
  --no-acpi                no ACPI tables: the MP table and virtio_mmio.device= on the
                           command line describe the machine (kernels built without
                           ACPI). By default a kernel gets ACPI tables (--acpi)
  --config <file.json>     read the configuration from a file (no other machine flags)
  --image <file>           boot a flat real-mode image at 0x1000 instead of the demo
  --snapshot <dir>         where --snapshot-on writes a snapshot (then the VMM exits 0)
  --snapshot-on <when>     SIGHUP, SIGINT, SIGTERM, SIGQUIT, or pattern:<regex> matched
                           against the console output
  --restore <dir>          restore a snapshot and run it (--disk/--net replace the saved
                           disk paths and TAP names, in order)
  --api-sock <path>        serve the control API (HTTP over this Unix socket). Alone, the
                           VM waits for configuration and InstanceStart; with machine
                           flags or --config it boots at once and stays controllable
  --log-level <level>      error, warn (default), info or debug
  --log-json               log one JSON object a line (time, level, msg, fields)
  --timings                print boot phase times (code loaded, VM created, kernel
                           loaded, first instruction, boot marker) once the guest's
                           init reports in; with --restore: restore started, state
                           validated, VM created, state applied, first instruction
  --allow-emulated         boot --kernel even where KVM only emulates (test kernels)
  --portable <mode>        auto (default): where this host's KVM cannot run the guest,
                           run inside the portable machine (QEMU/TCG with KVM inside,
                           much slower); on: always; off: never
  --quiet                  do not print the host check line (it is still printed when
                           the host cannot run Linux)
  -h, --help               show this help

Exit codes: the guest's exit code, 1 for a VMM error, 2 for a usage error.
`;
var UsageError = class extends Error {
};
function many(v) {
  if (v === void 0) return [];
  return (Array.isArray(v) ? v : [
    v
  ]).map(String);
}
function num(v, flag) {
  if (v === void 0) return void 0;
  if (!/^\d+$/.test(v)) {
    throw new UsageError(`${flag} expects a whole number, got ${shown(v)}`);
  }
  return Number(v);
}
var VALUE_FLAGS = [
  "kernel",
  "initrd",
  "cmdline",
  "mem",
  "cpus",
  "disk",
  "admin-disk",
  "net",
  "console",
  "vsock",
  "config",
  "image",
  "snapshot",
  "snapshot-on",
  "restore",
  "api-sock",
  "log-level",
  "portable"
];
function shown(v) {
  return JSON.stringify(v.length > 80 ? `${v.slice(0, 80)}\u2026` : v);
}
function checkValues(args) {
  for (let i = 0; i < args.length; i++) {
    const a = args[i];
    const m = /^--([a-z-]+)(=(.*))?$/s.exec(a);
    if (!m || !VALUE_FLAGS.includes(m[1])) continue;
    const v = m[2] !== void 0 ? m[3] : args[i + 1];
    if (v === void 0 || v === "") throw new UsageError(`--${m[1]} expects a value`);
    if (m[2] === void 0) i++;
  }
}
async function configFromArgs(args) {
  checkValues(args);
  const f = parseArgs(args, {
    string: VALUE_FLAGS,
    boolean: [
      "help",
      "quiet",
      "rng",
      "admin-vq",
      "acpi",
      "no-acpi",
      "allow-emulated",
      "log-json",
      "timings"
    ],
    collect: [
      "disk",
      "net",
      "admin-disk"
    ],
    alias: {
      h: "help"
    },
    unknown: (arg2) => {
      const a = arg2.length > 80 ? `${arg2.slice(0, 80)}\u2026` : arg2;
      if (arg2.startsWith("-")) throw new UsageError(`Unknown option: ${a}`);
      throw new UsageError(`Unexpected argument: ${a}`);
    }
  });
  if (f.help) {
    return {
      config: parseConfig({}),
      quiet: true,
      help: true,
      log: {
        level: "warn",
        json: false
      }
    };
  }
  let level = "warn";
  if (f["log-level"] !== void 0) {
    try {
      level = parseLogLevel(f["log-level"]);
    } catch (e) {
      throw new UsageError(e.message);
    }
  }
  const extra = {
    log: {
      level,
      json: f["log-json"]
    }
  };
  if (f.timings) extra.timings = true;
  if (f.portable !== void 0) {
    if (![
      "auto",
      "on",
      "off"
    ].includes(f.portable)) {
      throw new UsageError(`--portable expects auto, on or off, got ${shown(f.portable)}`);
    }
    extra.portable = f.portable;
  }
  if (f.acpi && f["no-acpi"]) throw new UsageError("--acpi and --no-acpi contradict each other");
  if (f["allow-emulated"]) extra.allowEmulated = true;
  if (f.image !== void 0) extra.image = f.image;
  if (f["api-sock"] !== void 0) {
    if (f["api-sock"] === "") throw new UsageError("--api-sock expects a path");
    if (f.restore !== void 0 || f.snapshot !== void 0) {
      throw new UsageError("--api-sock cannot be combined with --restore or --snapshot (use the snapshot/load and snapshot/create requests)");
    }
    extra.apiSock = f["api-sock"];
    extra.configured = f.image !== void 0 || f.config !== void 0 || f.rng || f.acpi || f["no-acpi"] || f["admin-vq"] || many(f["admin-disk"]).length > 0 || many(f.disk).length > 0 || many(f.net).length > 0 || [
      "kernel",
      "initrd",
      "cmdline",
      "mem",
      "cpus",
      "console",
      "vsock"
    ].some((k) => f[k] !== void 0);
  }
  if (f.restore !== void 0) {
    if (f.image !== void 0 || f.kernel !== void 0 || f.config !== void 0) {
      throw new UsageError("--restore cannot be combined with --kernel, --image or --config");
    }
    extra.restore = f.restore;
  }
  if (f.snapshot === void 0 !== (f["snapshot-on"] === void 0)) {
    throw new UsageError("--snapshot and --snapshot-on go together");
  }
  if (f.snapshot !== void 0) {
    try {
      extra.snapshot = {
        dir: f.snapshot,
        on: parseTrigger(f["snapshot-on"])
      };
    } catch (e) {
      throw new UsageError(e.message);
    }
  }
  if (f.config !== void 0) {
    const others = [
      "kernel",
      "initrd",
      "cmdline",
      "mem",
      "cpus",
      "console",
      "vsock"
    ].filter((k) => f[k] !== void 0);
    if (others.length || many(f.disk).length || many(f.net).length || f.rng || f.acpi || f["no-acpi"] || f["admin-vq"] || many(f["admin-disk"]).length) {
      throw new UsageError(`--config cannot be combined with machine flags (${others.join(", ") || "devices"})`);
    }
    const config2 = await loadConfig(f.config);
    await checkDiskFiles(config2.disks, config2.admin?.disks);
    return {
      config: config2,
      quiet: f.quiet,
      help: false,
      ...extra
    };
  }
  const disk = (flag) => (d) => {
    const [path, ...opts] = d.split(",");
    for (const o of opts) {
      if (o !== "ro") throw new UsageError(`--${flag} option ${shown(o)}: only "ro" is known`);
    }
    return {
      path,
      ...opts.includes("ro") ? {
        readOnly: true
      } : {}
    };
  };
  const adminDisks = many(f["admin-disk"]).map(disk("admin-disk"));
  const raw2 = {
    disks: many(f.disk).map(disk("disk")),
    ...f["admin-vq"] || adminDisks.length ? {
      admin: {
        disks: adminDisks
      }
    } : {},
    nets: many(f.net).map((n) => {
      const [tap, ...opts] = n.split(",");
      const net = {
        tap: tap ?? ""
      };
      for (const o of opts) {
        if (!o.startsWith("mac=")) {
          throw new UsageError(`--net option ${shown(o)}: only "mac=" is known`);
        }
        net.mac = o.slice(4);
      }
      return net;
    }),
    rng: f.rng,
    ...f.acpi ? {
      acpi: true
    } : {},
    ...f["no-acpi"] ? {
      acpi: false
    } : {}
  };
  if (f.kernel !== void 0) raw2.kernel = f.kernel;
  if (f.initrd !== void 0) raw2.initrd = f.initrd;
  if (f.cmdline !== void 0) raw2.cmdline = f.cmdline;
  const mem = num(f.mem, "--mem"), cpus = num(f.cpus, "--cpus");
  if (mem !== void 0) raw2.memMiB = mem;
  if (cpus !== void 0) raw2.vcpus = cpus;
  if (f.console !== void 0) raw2.console = f.console;
  if (f.vsock !== void 0) {
    const m = /^(\d+),(.+)$/.exec(f.vsock);
    if (!m) throw new UsageError(`--vsock expects <cid>,<path>, got ${shown(f.vsock)}`);
    raw2.vsock = {
      cid: Number(m[1]),
      path: m[2]
    };
  }
  const config = parseConfig(raw2);
  await checkDiskFiles(config.disks, config.admin?.disks);
  return {
    config,
    quiet: f.quiet,
    help: false,
    ...extra
  };
}
async function main(args) {
  const codeLoaded = performance.now();
  const req = await configFromArgs(args);
  const { config, quiet, help } = req;
  if (help) {
    console.log(USAGE);
    return 0;
  }
  const logger = createLogger({
    level: req.log.level,
    json: req.log.json
  });
  const bridge = InnerBridge.fromEnv();
  if (bridge) {
    await Deno.mkdir(INNER_SOCKETS.api.slice(0, INNER_SOCKETS.api.lastIndexOf("/")), {
      recursive: true
    });
    if (req.apiSock !== void 0) req.apiSock = INNER_SOCKETS.api;
    if (config.vsock) config.vsock = {
      ...config.vsock,
      path: INNER_SOCKETS.vsock
    };
    bridge.listen();
  }
  const vsockConnect = bridge ? (port) => bridge.connectHostPort(port) : void 0;
  const host = await checkHost();
  const mode = Deno.env.get("DENOVM_PORTABLE_INSIDE") === "1" ? "off" : req.portable ?? "auto";
  const needsNative = config.kernel !== void 0 && !req.allowEmulated;
  if (mode === "on" || mode === "auto" && (!host.usable || needsNative && !host.native)) {
    const { runCliPortable: runCliPortable2 } = await init_portable_mode().then(() => portable_mode_exports);
    return await runCliPortable2(args, req, host, logger);
  }
  if (!quiet || !host.native) logger.notice(host.message.replace(/^denovm: /, ""));
  if (!host.usable) {
    logger.error("no guest can run here; --portable auto (the default) runs it in the portable machine");
    return 1;
  }
  const refusal = "not booting the kernel: on this host it would run for minutes and then fail. Pass --allow-emulated to try anyway (small test kernels work)";
  if (config.kernel !== void 0 && !host.native && !req.allowEmulated) {
    logger.error(refusal);
    return 1;
  }
  let image;
  if (req.image !== void 0) {
    try {
      image = {
        bytes: await readBounded(req.image, 589824, "--image"),
        load: 4096
      };
    } catch (e) {
      throw new UsageError(e.message);
    }
    if (image.bytes.byteLength === 0 || image.bytes.byteLength > 589824) {
      throw new UsageError(`--image ${req.image} must be 1 byte to 576 KiB`);
    }
  }
  if (req.apiSock !== void 0) {
    return await serveApi(req.apiSock, {
      config,
      ...image ? {
        image
      } : {},
      ...req.configured ? {
        start: true
      } : {},
      ...!host.native && !req.allowEmulated ? {
        kernelRefusal: refusal
      } : {},
      logger,
      ...req.timings ? {
        timings: true,
        codeLoaded
      } : {},
      ...vsockConnect ? {
        vsockConnect
      } : {},
      ...bridge ? {
        vsockRefusal: "PUT /vsock does not work through the portable machine: give --vsock <cid>,<path> on the command line instead"
      } : {}
    });
  }
  return await runVm({
    config,
    logger,
    ...req.timings ? {
      timings: true,
      codeLoaded
    } : {},
    ...image ? {
      image
    } : {},
    ...req.restore ? {
      restore: req.restore,
      overrideDisks: config.disks.length > 0,
      overrideTaps: config.nets.length > 0
    } : {},
    ...req.snapshot ? {
      snapshot: req.snapshot
    } : {},
    ...vsockConnect ? {
      vsockConnect
    } : {}
  });
}
async function serveApi(path, opts) {
  const out = (b) => {
    let off = 0;
    while (off < b.byteLength) off += Deno.stdout.writeSync(b.subarray(off));
  };
  const server = await ApiServer.listen(path, {
    ...opts,
    output: out
  });
  const stop = () => void server.close();
  Deno.addSignalListener("SIGINT", stop);
  Deno.addSignalListener("SIGTERM", stop);
  try {
    return await server.done;
  } finally {
    Deno.removeSignalListener("SIGINT", stop);
    Deno.removeSignalListener("SIGTERM", stop);
    await server.close();
  }
}
function installLastDefence() {
  const say = (what) => console.error(`denovm: error: internal error, kept running: ${what instanceof Error ? what.stack ?? what.message : String(what)}`);
  globalThis.addEventListener("unhandledrejection", (e) => {
    e.preventDefault();
    say(e.reason);
  });
  globalThis.addEventListener("error", (e) => {
    e.preventDefault();
    say(e.error);
  });
}
async function run(args) {
  installLastDefence();
  keepKickSignal();
  let code;
  try {
    code = await main(args);
  } catch (e) {
    if (e instanceof UsageError || e instanceof ConfigError) {
      console.error(`denovm: ${e.message}

${USAGE}`);
      code = 2;
    } else {
      console.error(`denovm: ${e instanceof Error ? e.message : String(e)}`);
      code = 1;
    }
  }
  drainVcpuWorkerPool();
  return code;
}
export {
  configFromArgs,
  installLastDefence,
  main,
  run
};
