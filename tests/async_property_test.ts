/**
 * Property tests of the asynchronous paths (issue 12): for every device, random scripts
 * interleave guest actions (chains with zero-length and boundary descriptors, kicks, ring
 * corruption, resets) with host-side events (console input and resizes, TAP frames
 * becoming readable, vsock connects and host data and EOF, disk completions arriving
 * late, timers, stop/resume). Whatever the order: nothing escapes to the host caller,
 * nothing is left as an unhandled rejection, the status register stays in a state the
 * spec allows (a broken device says DEVICE_NEEDS_RESET), and after a reset the device
 * initialises and works again.
 *
 * PROPERTY_CASES scales it (default 50000 → 5000 scripts per device, 25000 here; a
 * million in all with `deno task test:property`). PROPERTY_SEED picks the seed; a failure
 * names its device, case and seed.
 */

import { assert, assertEquals } from "@std/assert";
import { BlockDevice, type DiskImage, MemoryDisk } from "../devices/block.ts";
import { ConsoleDevice } from "../devices/console.ts";
import { NET_MAX_FRAME, type NetBackend, NetDevice } from "../devices/net.ts";
import { RngDevice } from "../devices/rng.ts";
import {
  encodeHeader,
  HOST_CID,
  OP,
  type VsockConn,
  VsockDevice,
  type VsockHost,
} from "../devices/vsock.ts";
import { GuestMemory } from "../memory/guest_memory.ts";
import type { Segment, VirtqueueDriver } from "../testing/driver.ts";
import { Prng } from "../testing/prng.ts";
import { type Harness, harness } from "../testing/setup.ts";
import { STATUS } from "../virtio/constants.ts";
import type { VirtioBackend } from "../virtio/device.ts";
import { Ticker } from "../vstate/ticker.ts";

const CASES = Math.max(1, Math.floor(Number(Deno.env.get("PROPERTY_CASES") ?? 50_000) / 10));
const SEED = Number(Deno.env.get("PROPERTY_SEED") ?? 20261127);
const MEM = 0x40000;

/** A disk whose I/O completes only when the script says so (late completions). */
class GatedDisk implements DiskImage {
  readonly inner = new MemoryDisk(64 * 1024);
  readonly size = this.inner.size;
  readonly readOnly = false;
  gates: (() => void)[] = [];
  #gate<T>(op: () => Promise<T>): Promise<T> {
    return new Promise<void>((r) => this.gates.push(r)).then(op);
  }
  read(d: Uint8Array, o: number) {
    return this.#gate(() => this.inner.read(d, o));
  }
  write(s: Uint8Array, o: number) {
    return this.#gate(() => this.inner.write(s, o));
  }
  flush() {
    return this.#gate(() => this.inner.flush());
  }
  discard(o: number, l: number) {
    return this.#gate(() => this.inner.discard(o, l));
  }
  writeZeroes(o: number, l: number) {
    return this.#gate(() => this.inner.writeZeroes(o, l));
  }
  /** Completes `n` waiting requests (all when n is undefined), in a random order. */
  release(rng: Prng, n = this.gates.length): void {
    for (let i = 0; i < n && this.gates.length; i++) {
      this.gates.splice(rng.int(this.gates.length), 1)[0]!();
    }
  }
}

/** A TAP whose frames the script makes appear. */
class FrameQueue implements NetBackend {
  frames: Uint8Array[] = [];
  read(buf: Uint8Array): number {
    const f = this.frames.shift();
    if (!f) return 0;
    const n = Math.min(f.byteLength, buf.byteLength);
    buf.set(f.subarray(0, n));
    return n;
  }
  write(): boolean {
    return true;
  }
  setOffload(): void {}
}

/** A host socket end for vsock: the script pushes data or EOF, writes may fail. */
class ScriptConn implements VsockConn {
  incoming: (Uint8Array | null)[] = [];
  #wake: (() => void) | undefined;
  closed = false;
  failWrites = false;
  async read(buf: Uint8Array): Promise<number | null> {
    for (;;) {
      if (this.closed) return null;
      const c = this.incoming.shift();
      if (c === null) return null;
      if (c) {
        const n = Math.min(c.byteLength, buf.byteLength);
        buf.set(c.subarray(0, n));
        if (n < c.byteLength) this.incoming.unshift(c.subarray(n));
        return n;
      }
      await new Promise<void>((r) => (this.#wake = r));
    }
  }
  write(): Promise<void> {
    return this.failWrites ? Promise.reject(new Error("host socket gone")) : Promise.resolve();
  }
  closeWrite(): Promise<void> {
    return Promise.resolve();
  }
  push(data: Uint8Array | null): void {
    this.incoming.push(data);
    this.#wake?.();
  }
  close(): void {
    this.closed = true;
    this.#wake?.();
  }
}

class ScriptHost implements VsockHost {
  conns: ScriptConn[] = [];
  constructor(readonly rng: Prng) {}
  connect(): Promise<VsockConn | null> {
    // Accept, refuse, fail or answer late, at random.
    const roll = this.rng.int(4);
    if (roll === 0) return Promise.resolve(null);
    if (roll === 1) return Promise.reject(new Error("connect failed"));
    const c = new ScriptConn();
    this.conns.push(c);
    return roll === 2 ? Promise.resolve(c) : new Promise((r) => setTimeout(() => r(c), 0));
  }
}

function noise(rng: Prng, len: number): Uint8Array {
  const b = new Uint8Array(len);
  for (let i = 0; i < len; i++) b[i] = rng.chance(0.5) ? rng.int(16) : rng.int(256);
  return b;
}

/** A segment at a boundary: zero-length, at the end of RAM, past it, or huge. */
function boundary(rng: Prng): Segment {
  const write = rng.chance(0.5);
  switch (rng.int(6)) {
    case 0:
      return { addr: rng.int(MEM), len: 0, write };
    case 1:
      return { addr: 0, len: 0, write };
    case 2:
      return { addr: MEM - 1, len: 1, write };
    case 3:
      return { addr: MEM - 16, len: 32, write };
    case 4:
      return { addr: rng.int(MEM), len: 0xffff_ffff, write };
    default:
      return { addr: 2 ** 52, len: 16, write };
  }
}

/** A random chain: an optional header, readable then writable buffers, boundary ones. */
function chain(rng: Prng, h: Harness<VirtioBackend>, head?: Uint8Array): Segment[] {
  const segs: Segment[] = [];
  if (head) segs.push(h.driver.outBuffer(head));
  for (let i = rng.int(3); i > 0; i--) segs.push(h.driver.outBuffer(noise(rng, rng.int(300))));
  for (let i = rng.int(3); i > 0; i--) segs.push(h.driver.inBuffer(rng.int(600)));
  if (rng.chance(0.25)) segs.splice(rng.int(segs.length + 1), 0, boundary(rng));
  if (segs.length === 0) segs.push(rng.chance(0.5) ? h.driver.inBuffer(1) : boundary(rng));
  return segs;
}

/** The guest scribbles over its own rings: descriptors, avail entries and index, used. */
function corrupt(rng: Prng, mem: GuestMemory, q: VirtqueueDriver): void {
  const n = q.size;
  switch (rng.int(5)) {
    case 0: {
      const d = q.desc + 16 * rng.int(n);
      mem.writeU64(d, rng.chance(0.5) ? rng.int(MEM) : rng.u32() * 0x1000);
      mem.writeU32(d + 8, rng.chance(0.5) ? rng.int(64) : rng.u32());
      mem.writeU16(d + 12, rng.int(8));
      mem.writeU16(d + 14, rng.int(0x10000));
      return;
    }
    case 1:
      return mem.writeU16(q.avail + 4 + 2 * rng.int(n), rng.int(0x10000));
    case 2:
      return q.setAvailIdx(q.availIdx + (rng.chance(0.5) ? n + 1 + rng.int(100) : rng.int(n)));
    case 3:
      return mem.writeU16(q.avail + 4 + 2 * n, rng.int(0x10000)); // used_event
    default:
      return mem.writeU16(q.used + 2, rng.int(0x10000)); // the device's own index
  }
}

/** One device under test: how to build it, its header generator and its host events. */
interface Subject {
  name: string;
  queues: number;
  make(rng: Prng): VirtioBackend;
  header?(rng: Prng): Uint8Array | undefined;
  /** A random host-side event; may be asynchronous (`tick` lets the event loop run). */
  hostEvent(rng: Prng, backend: VirtioBackend, tick: () => Promise<void>): void | Promise<void>;
  /** Lets everything pending finish (gates, connections). */
  settle?(rng: Prng): void;
}

const MODERN_STEPS = new Set([0, 1, 3, 11, 15]);

function checkStatus(h: Harness<VirtioBackend>, where: string): void {
  const s = h.device.status;
  assert(MODERN_STEPS.has(s & 0x0f), `${where}: status 0x${s.toString(16)}`);
  assert(!(s & STATUS.FAILED), `${where}: the device set FAILED`);
  assert(!(s & STATUS.DEVICE_NEEDS_RESET) || s & STATUS.DRIVER_OK, `${where}: NEEDS_RESET early`);
  if (s & STATUS.DEVICE_NEEDS_RESET) {
    assert(h.log.some((l) => /needs reset/i.test(l)), `${where}: broken without a word`);
  }
}

async function run(subject: Subject): Promise<void> {
  const rng = new Prng(SEED ^ (subject.name.length * 7919 + subject.name.charCodeAt(0)));
  const ticker = new Ticker();
  const mem = GuestMemory.allocate([{ gpa: 0, size: MEM }]);
  const rejections: unknown[] = [];
  const onRejection = (e: PromiseRejectionEvent) => {
    rejections.push(e.reason);
    e.preventDefault();
  };
  globalThis.addEventListener("unhandledrejection", onRejection);
  let corrupted = 0, broken = 0;
  try {
    for (let c = 0; c < CASES; c++) {
      const where = `${subject.name} case ${c} (PROPERTY_SEED=${SEED})`;
      mem.fill(0, MEM, 0);
      const backend = subject.make(rng);
      const h = harness(backend, { mem, memSize: MEM }) as Harness<VirtioBackend>;
      assert(h.driver.init().ok, where);
      const qs: VirtqueueDriver[] = [];
      for (let i = 0; i < subject.queues; i++) qs.push(h.driver.setupQueue(i, 8));
      h.driver.driverOk();
      for (let step = 4 + rng.int(20); step > 0; step--) {
        const roll = rng.int(100);
        try {
          if (roll < 30) {
            const q = qs[rng.int(qs.length)]!;
            if (q.freeCount >= 6) {
              q.add(chain(rng, h, subject.header?.(rng)), { indirect: rng.chance(0.2) });
            }
            if (rng.chance(0.8)) h.driver.kick(q);
          } else if (roll < 40) {
            corrupt(rng, mem, qs[rng.int(qs.length)]!);
            corrupted++;
            if (rng.chance(0.5)) h.driver.kick(qs[rng.int(qs.length)]!);
          } else if (roll < 70) {
            await subject.hostEvent(rng, backend, () => ticker.tick());
          } else if (roll < 82) {
            await ticker.tick(); // timers and completions run
          } else if (roll < 88) {
            void h.transport.stop(); // completes once in-flight requests finish
          } else if (roll < 94) {
            h.transport.resume();
          } else if (roll < 97) {
            h.driver.kick(qs[rng.int(qs.length)]!);
          } else {
            h.transport.write(0x070, new Uint8Array([0, 0, 0, 0])); // driver reset
          }
        } catch (e) {
          // The test's own bump allocator running out is the only error allowed here.
          if (!(e instanceof RangeError && /allocator|Queue full/.test(e.message))) {
            throw new Error(`${where}: step threw ${e instanceof Error ? e.stack : e}`);
          }
        }
        checkStatus(h, where);
      }
      if (h.device.status & STATUS.DEVICE_NEEDS_RESET) broken++;
      // Everything pending finishes; the device resumes; a reset brings it back.
      subject.settle?.(rng);
      h.transport.resume();
      await ticker.tick();
      subject.settle?.(rng);
      await ticker.tick();
      checkStatus(h, where);
      mem.fill(0, MEM, 0);
      const again = h.driver.init();
      assert(again.ok, `${where}: no re-init after a reset (${again.error})`);
      assertEquals(rejections, [], `${where}: unhandled rejection`);
    }
  } finally {
    globalThis.removeEventListener("unhandledrejection", onRejection);
    ticker.close();
  }
  // The scripts must reach the paths they are for.
  assert(corrupted > CASES / 2, `${subject.name}: only ${corrupted} corruptions`);
  assert(broken > 0, `${subject.name}: no script ever broke the device`);
}

const bytes = (rng: Prng, max: number) => noise(rng, rng.int(max + 1));

Deno.test(`property (async): virtio-blk, ${CASES} scripts with late completions`, async () => {
  let disk: GatedDisk | undefined;
  await run({
    name: "blk",
    queues: 1,
    make: () => new BlockDevice(disk = new GatedDisk()),
    header: (rng) => {
      const b = new Uint8Array(16);
      const v = new DataView(b.buffer);
      v.setUint32(0, rng.pick([0, 1, 4, 8, 11, 13, rng.u32()]), true);
      v.setBigUint64(8, BigInt(rng.chance(0.9) ? rng.int(140) : rng.u32()), true);
      return rng.chance(0.9) ? b : b.subarray(0, rng.int(16));
    },
    hostEvent: (rng) => {
      if (rng.chance(0.2)) disk!.inner.failNext = true;
      disk!.release(rng, 1 + rng.int(3));
    },
    settle: (rng) => disk!.release(rng),
  });
});

Deno.test(`property (async): virtio-net, ${CASES} scripts with frames arriving`, async () => {
  let tap: FrameQueue | undefined;
  await run({
    name: "net",
    queues: 2,
    make: () => new NetDevice(tap = new FrameQueue(), { mac: "52:54:00:00:00:01" }),
    header: (rng) => (rng.chance(0.7) ? noise(rng, 12) : undefined),
    hostEvent: (rng, b) => {
      for (let n = rng.int(4); n > 0; n--) {
        tap!.frames.push(bytes(rng, rng.chance(0.9) ? 1600 : NET_MAX_FRAME));
      }
      (b as NetDevice).backendReadable();
    },
  });
});

Deno.test(`property (async): virtio-console, ${CASES} scripts with host input`, async () => {
  await run({
    name: "console",
    queues: 2,
    make: () => new ConsoleDevice({ output: () => {} }),
    hostEvent: (rng, b) => {
      const c = b as ConsoleDevice;
      if (rng.chance(0.8)) c.input(bytes(rng, rng.chance(0.9) ? 64 : 4096));
      else c.resize(rng.int(0x10000), rng.int(0x10000));
    },
  });
});

Deno.test(`property (async): virtio-rng, ${CASES} scripts`, async () => {
  await run({
    name: "rng",
    queues: 1,
    make: () => new RngDevice(),
    hostEvent: (_rng, _b, tick) => tick(), // rng has no host side: time passes
  });
});

Deno.test(`property (async): virtio-vsock, ${CASES} scripts with connects and host data`, async () => {
  let host: ScriptHost | undefined;
  await run({
    name: "vsock",
    queues: 3,
    make: (rng) => new VsockDevice({ cid: 3, host: host = new ScriptHost(rng) }),
    header: (rng) =>
      encodeHeader({
        srcCid: rng.chance(0.9) ? 3n : BigInt(rng.u32()),
        dstCid: rng.chance(0.9) ? BigInt(HOST_CID) : BigInt(rng.int(5)),
        srcPort: rng.int(4),
        dstPort: rng.chance(0.5) ? rng.int(4) : 0x4000_0000 + rng.int(4),
        len: rng.chance(0.8) ? rng.int(64) : rng.u32(),
        type: rng.chance(0.95) ? 1 : rng.int(4),
        op: rng.chance(0.9) ? rng.pick(Object.values(OP)) : rng.int(16),
        flags: rng.int(4),
        bufAlloc: rng.chance(0.8) ? rng.int(1 << 18) : rng.u32(),
        fwdCnt: rng.u32(),
      }),
    hostEvent: (rng, b, tick) => {
      const v = b as VsockDevice;
      const conns = host!.conns;
      const roll = rng.int(5);
      if (roll === 0) {
        const c = new ScriptConn();
        void v.connectToGuest(rng.int(4), c, rng.chance(0.5) ? 0 : 1000);
      } else if (conns.length && roll === 1) {
        rng.pick(conns).push(bytes(rng, 5000));
      } else if (conns.length && roll === 2) {
        rng.pick(conns).push(null);
      } else if (conns.length && roll === 3) {
        const c = rng.pick(conns);
        if (rng.chance(0.5)) c.failWrites = true;
        else c.close();
      } else {
        return tick();
      }
      return undefined;
    },
    settle: () => {
      for (const c of host!.conns) c.close();
    },
  });
});
