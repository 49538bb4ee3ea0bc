/**
 * The vCPU worker: one per vCPU, running a synchronous `KVM_RUN` loop on its own thread.
 * Exits its local bus can serve stay here; others cross to the device thread through the
 * mailbox. Between runs it serves state calls (regs, sregs, ...) on this thread, so every
 * vCPU ioctl is issued from the vCPU's own thread.
 *
 * @module
 */

import { describeExit, Vcpu, Vm } from "@denovm/deno-kvm-ffi";
import { gettid } from "@denovm/sys";
import { readableMsrs, restoreVcpu, saveVcpu, type VcpuState } from "../snapshot/vcpu_state.ts";
import { Bus } from "../bus/bus.ts";
import { type LocalDeviceSpec, type LocalEffects, registerLocalDevices } from "./local_devices.ts";
import { VirtioIsrTable } from "./virtio_isr.ts";
import { ACCESS, CTL, Mailbox, MB, MB_STATE, REQ, SPIN_ITERATIONS, VSTATE } from "./mailbox.ts";

/** The message that binds a vCPU worker to its vCPU (after at most a `warm` round trip). */
export interface VcpuInit {
  type: "init";
  id: number;
  fd: number;
  runAddr: bigint;
  runSize: number;
  mailbox: SharedArrayBuffer;
  control: SharedArrayBuffer;
  doorbell: SharedArrayBuffer;
  local: LocalDeviceSpec[];
  /** The VM's fd (for `KVM_IRQ_LINE` from local devices), when given. */
  vmFd?: number;
  /** The VM's coalesced-write ring (see `Vm.registerCoalesced`), when it has one. */
  coalesced?: { pageOffset: number; lock: SharedArrayBuffer };
  /** A saved state to set before replying (a restore); a failure replies `init-failed`. */
  state?: VcpuState;
}

/** Why a vCPU left its run loop. */
export type StopReason =
  | { kind: "paused" }
  | { kind: "stopped" }
  | { kind: "exit"; code: number }
  | { kind: "hlt" }
  | { kind: "shutdown" }
  | { kind: "system_event"; type: number }
  | { kind: "reset" }
  | { kind: "quit" }
  | { kind: "error"; message: string };

/** Messages to a worker: `warm` (echoed, as it spawns), `init`, then the rest. */
export type ToWorker =
  | VcpuInit
  | { type: "warm"; cell: SharedArrayBuffer }
  | { type: "run" }
  | { type: "call"; seq: number; op: VcpuOp; args: unknown[] }
  | { type: "close" };

/** Messages from a worker. */
export type FromWorker =
  | { type: "warm" }
  | { type: "ready"; tid: number }
  | { type: "init-failed"; error: string }
  | { type: "stopped"; reason: StopReason }
  /** Sent once, just before the first KVM_RUN: ms since the epoch. */
  | { type: "first-run"; at: number }
  | { type: "result"; seq: number; ok: true; value: unknown }
  | { type: "result"; seq: number; ok: false; error: string }
  | { type: "closed" };

/** The Vcpu methods a worker runs on request (state access while not running). */
export const VCPU_OPS = [
  "getRegs",
  "setRegs",
  "getSregs",
  "setSregs",
  "getFpu",
  "setFpu",
  "getMsrs",
  "setMsrs",
  "setCpuid2",
  "getCpuid2",
  "getLapic",
  "setLapic",
  "getXsave",
  "setXsave",
  "getXcrs",
  "setXcrs",
  "getVcpuEvents",
  "setVcpuEvents",
  "getMpState",
  "setMpState",
  "getDebugRegs",
  "setDebugRegs",
  "kvmclockCtrl",
  "getTscKhz",
  "setRealMode",
  "saveState",
  "restoreState",
] as const;
/**
 * An operation a worker runs on request: a Vcpu method by name, or "setRealMode",
 * "saveState" and "restoreState" (the whole vCPU state, for snapshots).
 */
export type VcpuOp = (typeof VCPU_OPS)[number];

/**
 * The worker's global scope, as much of it as this file uses. Typed here instead of with
 * `/// <reference lib="deno.worker" />`, which a published package may not carry.
 */
declare const self: {
  postMessage(message: FromWorker): void;
  onmessage: ((ev: MessageEvent<ToWorker>) => void) | null;
  close(): void;
};

let vcpu: Vcpu;
let ctl: Int32Array;
let mb: Mailbox;
let doorbell: Int32Array;
const pio = new Bus("pio");
const effects: LocalEffects = { wakeNow: () => ringDoorbell() };
let coalescedPage = 0;
let coalescedLock: Int32Array | undefined;
/** The virtio-mmio interrupt status words this worker answers itself (`virtio_isr.ts`). */
let isr: VirtioIsrTable | undefined;

function post(m: FromWorker): void {
  self.postMessage(m);
}

function ringDoorbell(): void {
  Atomics.add(doorbell, 0, 1);
  Atomics.notify(doorbell, 0);
}

/** Hands one access to the device thread and waits for its answer. */
function cross(kind: number, addr: number, data: Uint8Array): void {
  const w = mb.i32;
  w[MB.KIND] = kind;
  w[MB.ADDR_LO] = addr >>> 0;
  w[MB.ADDR_HI] = Math.floor(addr / 0x1_0000_0000);
  w[MB.LEN] = data.byteLength;
  const isWrite = kind === ACCESS.PIO_OUT || kind === ACCESS.MMIO_WRITE;
  if (isWrite) mb.data.set(data);
  Atomics.store(w, MB.STATE, MB_STATE.REQUEST);
  ringDoorbell();
  Atomics.add(ctl, CTL.CROSSINGS, 1);
  let spins = 0;
  while (Atomics.load(w, MB.STATE) !== MB_STATE.RESPONSE) {
    if (++spins < SPIN_ITERATIONS) continue;
    Atomics.wait(w, MB.STATE, MB_STATE.REQUEST, 20);
    // A stop abandons the access (the device thread may be gone).
    if (Atomics.load(ctl, CTL.REQUEST) === REQ.STOP) {
      if (!isWrite) data.fill(0xff);
      Atomics.store(w, MB.STATE, MB_STATE.IDLE);
      return;
    }
  }
  if (!isWrite) data.set(mb.data.subarray(0, data.byteLength));
  Atomics.store(w, MB.STATE, MB_STATE.IDLE);
}

/**
 * Serves the writes KVM batched in the VM's coalesced ring (shared by every vCPU, so under
 * a lock), in the order the guest made them: called after every exit, before the exit
 * itself is served, so that anything the guest does next sees their effect.
 */
function drainCoalesced(): void {
  const lock = coalescedLock!;
  for (let spins = 0; Atomics.compareExchange(lock, 0, 0, 1) !== 0;) {
    if (++spins > SPIN_ITERATIONS) Atomics.wait(lock, 0, 1, 1);
  }
  try {
    vcpu.drainCoalesced(coalescedPage, (addr, data, isPio) => {
      if (!isPio) {
        if (!isr?.serve(addr, data, true)) cross(ACCESS.MMIO_WRITE, addr, data);
      } else if (!pio.write(addr, data)) cross(ACCESS.PIO_OUT, addr, data);
    });
  } finally {
    Atomics.store(lock, 0, 0);
    Atomics.notify(lock, 0, 1);
  }
}

/** Whether KVM needs one more KVM_RUN to complete the instruction behind this exit. */
function needsCompletion(kind: string): boolean {
  return kind === "io_out" || kind === "io_in" || kind === "mmio_write" || kind === "mmio_read";
}

function runLoop(): StopReason {
  vcpu.immediateExit = 0;
  // Whether the last exit was an I/O or MMIO access: KVM completes such an instruction (the
  // value of an `in`, RIP past an `out`) only on the next KVM_RUN, and keeps that pending
  // state where KVM_GET_REGS and the other state ioctls do not see it. A vCPU must not park
  // in the middle of an instruction (its saved state would be wrong; the KVM API asks for
  // this before saving), so it re-enters once with immediate_exit, which completes the
  // access and returns EINTR before any other instruction runs. (An access KVM splits comes
  // back as one more exit first, served like any other.)
  let pending = false;
  for (;;) {
    const req = Atomics.load(ctl, CTL.REQUEST);
    if (req !== REQ.RUN) {
      if (!pending) return req === REQ.PAUSE ? { kind: "paused" } : { kind: "stopped" };
      vcpu.immediateExit = 1;
    }
    const e = vcpu.run();
    pending = needsCompletion(e.kind);
    Atomics.add(ctl, CTL.EXITS, 1);
    if (coalescedLock && vcpu.coalescedPending(coalescedPage)) drainCoalesced();
    switch (e.kind) {
      case "io_out":
        for (let i = 0; i < e.count; i++) {
          const d = e.count === 1 ? e.data : e.data.subarray(i * e.size, (i + 1) * e.size);
          if (!pio.write(e.port, d)) cross(ACCESS.PIO_OUT, e.port, d);
        }
        break;
      case "io_in":
        for (let i = 0; i < e.count; i++) {
          const d = e.count === 1 ? e.data : e.data.subarray(i * e.size, (i + 1) * e.size);
          if (!pio.read(e.port, d)) cross(ACCESS.PIO_IN, e.port, d);
        }
        break;
      case "mmio_write":
        if (!isr?.serve(e.addr, e.data, true)) cross(ACCESS.MMIO_WRITE, e.addr, e.data);
        break;
      case "mmio_read":
        if (!isr?.serve(e.addr, e.data, false)) cross(ACCESS.MMIO_READ, e.addr, e.data);
        break;
      case "intr":
        // A kick: the request word says why; a stale kick just runs again.
        if (Atomics.load(ctl, CTL.REQUEST) === REQ.RUN) vcpu.immediateExit = 0;
        break;
      case "hlt":
        return { kind: "hlt" };
      case "shutdown":
        return { kind: "shutdown" };
      case "system_event":
        return { kind: "system_event", type: e.type };
      default:
        return { kind: "error", message: `vCPU ${vcpu.id}: ${describeExit(e)}` };
    }
    if (effects.wake) {
      effects.wake = false;
      ringDoorbell();
    }
    if (effects.exitCode !== undefined) {
      const code = effects.exitCode;
      delete effects.exitCode;
      return { kind: "exit", code };
    }
  }
}

let ranBefore = false;

function run(): void {
  Atomics.store(ctl, CTL.STATE, VSTATE.RUNNING);
  if (!ranBefore) {
    ranBefore = true;
    post({ type: "first-run", at: performance.timeOrigin + performance.now() });
  }
  let reason: StopReason;
  try {
    reason = runLoop();
  } catch (e) {
    reason = { kind: "error", message: e instanceof Error ? e.message : String(e) };
  }
  Atomics.store(ctl, CTL.STATE, reason.kind === "paused" ? VSTATE.PAUSED : VSTATE.EXITED);
  Atomics.notify(ctl, CTL.STATE);
  if (effects.wake) ringDoorbell();
  effects.wake = false;
  post({ type: "stopped", reason });
}

/** Real mode at cs:ip with the stack at 0:sp, in one call (no round trips). */
function setRealMode(o: { cs: number; ip: number; sp: number }): void {
  const s = vcpu.getSregs();
  s.cs = { ...s.cs, selector: o.cs, base: BigInt(o.cs * 16) };
  for (const k of ["ds", "es", "ss", "fs", "gs"] as const) {
    s[k] = { ...s[k], selector: 0, base: 0n };
  }
  vcpu.setSregs(s);
  const r = vcpu.getRegs();
  r.rip = BigInt(o.ip);
  r.rsp = BigInt(o.sp);
  r.rflags = 2n;
  vcpu.setRegs(r);
}

let msrList: number[] | undefined;

function call(op: VcpuOp, args: unknown[]): unknown {
  if (!VCPU_OPS.includes(op)) throw new TypeError(`Cannot call ${op} on a vCPU`);
  if (op === "setRealMode") return setRealMode(args[0] as { cs: number; ip: number; sp: number });
  if (op === "saveState") {
    return saveVcpu(vcpu, msrList ??= readableMsrs(vcpu, args[0] as number[]));
  }
  if (op === "restoreState") return restoreVcpu(vcpu, args[0] as VcpuState);
  const fn = vcpu[op] as (...a: unknown[]) => unknown;
  return fn.apply(vcpu, args);
}

self.onmessage = (ev: MessageEvent<ToWorker>) => {
  const m = ev.data;
  switch (m.type) {
    case "init":
      vcpu = new Vcpu(m.fd, m.id, m.runAddr, m.runSize);
      ranBefore = false;
      ctl = new Int32Array(m.control);
      mb = new Mailbox(m.mailbox);
      doorbell = new Int32Array(m.doorbell);
      // Not owned here: the device thread closes the VM.
      registerLocalDevices(
        pio,
        m.local,
        effects,
        m.vmFd !== undefined ? new Vm(m.vmFd, 0) : undefined,
      );
      {
        const t = m.local.find((l) => l.kind === "virtio_isr");
        isr = t ? new VirtioIsrTable(t.base, t.slots, t.words) : undefined;
      }
      if (m.coalesced) {
        coalescedPage = m.coalesced.pageOffset;
        coalescedLock = new Int32Array(m.coalesced.lock);
      }
      if (m.state) {
        try {
          restoreVcpu(vcpu, m.state);
        } catch (e) {
          post({ type: "init-failed", error: e instanceof Error ? e.message : String(e) });
          break;
        }
      }
      Atomics.store(ctl, CTL.TID, gettid());
      post({ type: "ready", tid: gettid() });
      break;
    case "warm":
      post({ type: "warm" });
      break;
    case "run":
      run();
      break;
    case "call":
      try {
        post({ type: "result", seq: m.seq, ok: true, value: call(m.op, m.args) });
      } catch (e) {
        post({
          type: "result",
          seq: m.seq,
          ok: false,
          error: e instanceof Error ? e.message : String(e),
        });
      }
      break;
    case "close":
      post({ type: "closed" });
      self.close();
      break;
  }
};
