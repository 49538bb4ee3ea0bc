/**
 * The device thread's handle on one vCPU worker: start it, run it, pause it (kick out of
 * `KVM_RUN` with `immediate_exit` + `tgkill(SIGUSR2)`), call state ioctls on its thread,
 * and stop it without leaking the thread.
 *
 * @module
 */

import { type Vcpu } from "@denovm/deno-kvm-ffi";
import type { LocalDeviceSpec } from "./local_devices.ts";
import { CTL, Mailbox, REQ, VSTATE } from "./mailbox.ts";
import { within } from "@denovm/sys/timer";
import { holdKickSignal, kickThread, releaseKickSignal } from "./kick_signal.ts";
import { takeVcpuWorker } from "./worker_pool.ts";
import type { VcpuState } from "../snapshot/vcpu_state.ts";
import { SnapshotError } from "../snapshot/format.ts";
import type { FromWorker, StopReason, ToWorker, VcpuOp } from "./vcpu_worker.ts";

/** Options of {@link VcpuThread.start}. */
export interface VcpuThreadOptions {
  /** Devices the worker serves itself. */
  local?: LocalDeviceSpec[];
  /** The device thread's doorbell (shared by all vCPUs of a VM). */
  doorbell: SharedArrayBuffer;
  /** Called when the vCPU leaves its run loop for any reason but pause/stop. */
  onExit?: (reason: StopReason) => void;
  /** A worker from `takeVcpuWorker()`, started early so it loads while KVM is set up. */
  worker?: Worker;
  /** The VM's coalesced-write ring, which the worker empties before it serves any exit. */
  coalesced?: CoalescedRing;
  /** The VM's fd, for local devices that drive interrupt lines themselves. */
  vmFd?: number;
  /** A saved state the vCPU takes before it is ready (a restore). */
  state?: VcpuState;
}

/** Where a VM's coalesced writes are, and the lock that serializes draining them. */
export interface CoalescedRing {
  /** Page offset of the ring in the `kvm_run` mapping. */
  pageOffset: number;
  /** One Int32: 1 while a worker drains the ring. */
  lock: SharedArrayBuffer;
}

/** One vCPU worker, seen from the device thread. */
export class VcpuThread {
  /** The vCPU (owned by the device thread: its fd and run mapping are closed by it). */
  readonly vcpu: Vcpu;
  /** The exit mailbox to serve. */
  readonly mailbox: Mailbox = Mailbox.create();
  readonly #control = new SharedArrayBuffer(CTL.BYTES);
  readonly #ctl = new Int32Array(this.#control);
  #worker: Worker | undefined;
  #tid = 0;
  #seq = 0;
  #calls = new Map<number, { resolve: (v: unknown) => void; reject: (e: Error) => void }>();
  #stopped: ((r: StopReason) => void)[] = [];
  #closed: (() => void) | undefined;
  #running = false;
  #lastStop: StopReason | undefined;
  #onExit: ((reason: StopReason) => void) | undefined;
  #firstRunAt: number | undefined;
  #closing: Promise<void> | undefined;

  private constructor(vcpu: Vcpu) {
    this.vcpu = vcpu;
  }

  /** Starts the worker for `vcpu` and waits until it is ready. */
  static async start(vcpu: Vcpu, opts: VcpuThreadOptions): Promise<VcpuThread> {
    const t = new VcpuThread(vcpu);
    t.#onExit = opts.onExit;
    holdKickSignal();
    const w = opts.worker ?? takeVcpuWorker();
    t.#worker = w;
    const ready = new Promise<void>((resolve, reject) => {
      w.onerror = (e) => {
        e.preventDefault();
        reject(new Error(`vCPU ${vcpu.id} worker failed: ${e.message}`));
      };
      w.onmessage = (ev: MessageEvent<FromWorker>) => {
        if (ev.data.type === "ready") {
          t.#tid = ev.data.tid;
          w.onmessage = (e2: MessageEvent<FromWorker>) => t.#onMessage(e2.data);
          resolve();
        } else if (ev.data.type === "init-failed") {
          // Only a restore sends a state with the init: KVM refused the saved state.
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
      ...(opts.coalesced ? { coalesced: opts.coalesced } : {}),
      ...(opts.vmFd !== undefined ? { vmFd: opts.vmFd } : {}),
      ...(opts.state ? { state: opts.state } : {}),
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
  get tid(): number {
    return this.#tid;
  }

  /** Whether the run loop is active. */
  get running(): boolean {
    return this.#running;
  }

  /** Why the vCPU last left its run loop. */
  get lastStop(): StopReason | undefined {
    return this.#lastStop;
  }

  /**
   * Makes the worker leave `KVM_RUN` once and go on (it empties the coalesced-write ring on
   * the way). A signal that arrives while the worker is not in `KVM_RUN` is lost, which is
   * fine: it empties the ring at its next exit anyway.
   */
  poke(): void {
    if (this.#running && this.#tid) kickThread(this.#tid);
  }

  /** Exits taken so far, and how many of them crossed to the device thread. */
  get counters(): { exits: number; crossings: number } {
    return {
      exits: Atomics.load(this.#ctl, CTL.EXITS),
      crossings: Atomics.load(this.#ctl, CTL.CROSSINGS),
    };
  }

  #post(m: ToWorker): void {
    this.#worker!.postMessage(m);
  }

  #onMessage(m: FromWorker): void {
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
  get firstRunAt(): number | undefined {
    return this.#firstRunAt;
  }

  /** Runs a state ioctl on the vCPU's thread; only while it is not running. */
  call<T>(op: VcpuOp, ...args: unknown[]): Promise<T> {
    if (this.#running) {
      return Promise.reject(new Error(`Cannot call ${op} on vCPU ${this.vcpu.id}: it is running`));
    }
    const seq = ++this.#seq;
    return new Promise<T>((resolve, reject) => {
      this.#calls.set(seq, { resolve: resolve as (v: unknown) => void, reject });
      this.#post({ type: "call", seq, op, args });
    });
  }

  /** Enters the run loop; resolves at once (use {@link whenStopped} to wait). */
  run(): void {
    if (this.#running) return;
    Atomics.store(this.#ctl, CTL.REQUEST, REQ.RUN);
    this.#running = true;
    this.#post({ type: "run" });
  }

  /** Resolves with the next stop reason (at once if not running). */
  whenStopped(): Promise<StopReason> {
    if (!this.#running) return Promise.resolve(this.#lastStop ?? { kind: "stopped" });
    return new Promise((r) => this.#stopped.push(r));
  }

  /** Kicks the vCPU out of KVM_RUN with `request` and waits until it has left the loop. */
  async #kick(request: number): Promise<StopReason> {
    if (!this.#running) return this.#lastStop ?? { kind: "stopped" };
    const stopped = this.whenStopped();
    Atomics.store(this.#ctl, CTL.REQUEST, request);
    this.vcpu.immediateExit = 1;
    // Repeat the signal until the worker is out: one may land just before KVM_RUN starts,
    // but immediate_exit covers that, so the retry is a guard, not the mechanism.
    let done = false;
    stopped.then(() => (done = true));
    for (let i = 0; !done; i++) {
      if (Atomics.load(this.#ctl, CTL.STATE) === VSTATE.RUNNING) {
        try {
          kickThread(this.#tid);
        } catch {
          break; // the thread is gone
        }
      }
      await within(stopped, i < 5 ? 1 : 20);
    }
    return await stopped;
  }

  /** Pauses: the vCPU leaves KVM_RUN and parks, its state intact. */
  pause(): Promise<StopReason> {
    return this.#kick(REQ.PAUSE);
  }

  /** Resumes after a pause. */
  resume(): void {
    this.run();
  }

  /** Stops the run loop (if running) and ends the worker thread. Idempotent. */
  close(): Promise<void> {
    // Callers that overlap share one close (the kick listener is released once).
    return this.#closing ??= this.#close();
  }

  async #close(): Promise<void> {
    const w = this.#worker;
    if (!w) return;
    await this.#kick(REQ.STOP);
    Atomics.store(this.#ctl, CTL.REQUEST, REQ.STOP);
    const closed = new Promise<void>((r) => (this.#closed = r));
    this.#post({ type: "close" });
    await within(closed, 1000);
    w.terminate();
    this.#worker = undefined;
    for (const c of this.#calls.values()) c.reject(new Error("vCPU closed"));
    this.#calls.clear();
    await releaseKickSignal();
  }
}
