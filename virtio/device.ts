/**
 * The transport-independent part of a virtio device: the status handshake as a table of
 * allowed transitions, 64-bit feature negotiation with FEATURES_OK that the device may
 * refuse, the queues, the interrupt status, config generation, DEVICE_NEEDS_RESET, and
 * stop/resume for snapshots (a stopped device reads no new requests, completes those in
 * flight, keeps its config space unchanged and raises no interrupt).
 *
 * A device model is a {@link VirtioBackend}: a small table of operations. It never sees
 * the transport, KVM, or the status register.
 *
 * @module
 */

import { after, type Timer } from "@denovm/sys/timer";
import type { DeviceMemory } from "../memory/guest_memory.ts";
import type { Interrupt } from "../bus/interrupt.ts";
import { bit, F, ISR, STATUS } from "./constants.ts";
import { checkQueueState, Queue, QueueError, type QueueState, type RamMap } from "./queue.ts";

/** What a backend may do once activated. */
export interface DeviceContext {
  /** Guest memory, where the queues' buffers are. */
  readonly mem: DeviceMemory;
  /** The device's queues, in index order. */
  readonly queues: readonly Queue[];
  /** The negotiated features. */
  readonly features: bigint;
  /** Whether new requests may be taken (false while stopping, stopped, or broken). */
  canProcess(): boolean;
  /** Tell the driver about used buffers on queue `index` (event index decides). */
  signalUsed(index: number): void;
  /** The device changed its config space: bump the generation and interrupt. */
  configChanged(): void;
  /** An error the device cannot recover from: DEVICE_NEEDS_RESET and a config interrupt. */
  fail(reason: string): void;
  /**
   * Runs `fn`, which walks the queues for `what` (a host event: input, backend readiness, a
   * timer, a completion). A `QueueError` or any other exception from it becomes
   * DEVICE_NEEDS_RESET with a config interrupt and a log line, never an exception to the
   * caller. Every device entry that touches a queue outside `processQueue` goes through it.
   */
  guard(what: string, fn: () => void): void;
  /**
   * Serves queue `index` again from a later task (a pass over it that stopped at its cap,
   * so a guest that keeps adding cannot hold the device thread); nothing once the queue
   * or the device stopped meanwhile.
   */
  requeue(index: number): void;
}

/** A device model: one small table of operations. */
export interface VirtioBackend {
  /** Virtio device type (e.g. 2 for block). */
  readonly deviceType: number;
  /** QueueNumMax of each queue; the length is the number of queues. */
  readonly queueMaxSizes: readonly number[];
  /** Feature bits the device offers (VERSION_1 is added by a modern transport). */
  readonly features: bigint;
  /** Bytes of device config space. */
  readonly configSize: number;
  /** Whether the device can work with `acked` (a subset of the offer); false refuses FEATURES_OK. */
  acceptFeatures?(acked: bigint): boolean;
  /** Fills `data` from config space at `offset` (the range is inside `configSize`). */
  readConfig(offset: number, data: Uint8Array): void;
  /** The driver writes `data` to config space at `offset` (inside `configSize`). */
  writeConfig(offset: number, data: Uint8Array): void;
  /** DRIVER_OK: start using the queues. Throw to fail activation. */
  activate(ctx: DeviceContext): void;
  /** The driver notified queue `index` (or the VMM re-kicks it). */
  processQueue(index: number): void;
  /** Device reset: drop all driver-facing state. */
  reset(): void;
  /** Requests taken from a queue but not completed yet (async devices). */
  inflight?(): number;
  /**
   * Device-specific state for snapshots (plain data), for backends that keep any; with
   * {@link restore}, the Persist shape of `bus/persist.ts`.
   */
  save?(): unknown;
  /** Restores {@link save} output: untrusted, so checked first; all or nothing. */
  restore?(state: unknown): void;
  /**
   * Stops what the device holds beyond its own queues (a management device's virtual
   * devices) for a snapshot; the core's stop completes when this resolves too.
   */
  stop?(): Promise<void>;
  /** Resumes what {@link stop} stopped, once the core is running again. */
  resume?(): void;
  /** The machine is closing: what the device holds beyond its queues stops touching memory. */
  dispose?(): void;
}

/** Saved state of a virtio device (core part). */
export interface VirtioState {
  /** The device type, checked on restore. */
  deviceType: number;
  /** The device status register (ACKNOWLEDGE, DRIVER, FEATURES_OK, DRIVER_OK, ...). */
  status: number;
  /** The features the driver acknowledged, in hex (a u64). */
  driverFeatures: string;
  /** The interrupt status bits not yet acknowledged (used buffer, config change). */
  isr: number;
  /** The config generation counter. */
  configGeneration: number;
  /** Each queue's state, in index order. */
  queues: QueueState[];
  /** The backend's {@link VirtioBackend.save} output, if it has one. */
  backend?: unknown;
}

const ACK = STATUS.ACKNOWLEDGE, DRV = STATUS.DRIVER;
/** Status bits only the device sets (the driver's writes neither set nor clear them). */
const DEVICE_BITS = STATUS.DEVICE_NEEDS_RESET | STATUS.DEVICE_MMU_FAIL;

/**
 * The driver's side of the status handshake, as a table: from each status (FAILED and
 * DEVICE_NEEDS_RESET aside) the one bit a driver may set next. Anything else is ignored
 * (and logged); 0 resets from anywhere; FAILED may be set at any time; FEATURES_OK may be
 * refused (the bit stays clear for the driver's re-read) and DRIVER_OK activates.
 */
export const STATUS_STEPS: {
  readonly modern: ReadonlyMap<number, number>;
  readonly legacy: ReadonlyMap<number, number>;
} = {
  modern: new Map([
    [0, ACK],
    [ACK, DRV],
    [ACK | DRV, STATUS.FEATURES_OK],
    [ACK | DRV | STATUS.FEATURES_OK, STATUS.DRIVER_OK],
  ]),
  // The legacy interface has no FEATURES_OK: features are final at DRIVER_OK.
  legacy: new Map([[0, ACK], [ACK, DRV], [ACK | DRV, STATUS.DRIVER_OK]]),
};

/** The features a device around a backend with `features` offers. */
export function offeredFeatures(features: bigint, legacy: boolean): bigint {
  return legacy ? features & 0xffff_ffffn & ~bit(F.VERSION_1) : features | bit(F.VERSION_1);
}

/** What a saved device state is checked against. */
export interface VirtioStateSpec {
  /** The virtio device type (DEVICE_ID). */
  deviceType: number;
  /** The offered features ({@link offeredFeatures}). */
  offered: bigint;
  /** Each queue's max size, in index order. */
  queueMaxSizes: readonly number[];
}

/**
 * Validates a saved device core state (untrusted) against a device of `spec`: device type,
 * features within the offer, status bits, ISR, generation and every queue (ready queues
 * inside `ram`). Pure: returns the state with checked queues, or throws a RangeError. The
 * backend's own part is checked by its `restore`.
 */
export function checkVirtioState(s: unknown, spec: VirtioStateSpec, ram: RamMap): VirtioState {
  if (typeof s !== "object" || s === null) throw new RangeError("Cannot restore device: no state");
  const v = s as VirtioState;
  if (v.deviceType !== spec.deviceType) {
    throw new RangeError(
      `Cannot restore device: state is for type ${v.deviceType}, device is ${spec.deviceType}`,
    );
  }
  if (typeof v.driverFeatures !== "string" || !/^[0-9a-f]{1,16}$/.test(v.driverFeatures)) {
    throw new RangeError("Cannot restore device: driverFeatures is not a hex string");
  }
  const features = BigInt("0x" + v.driverFeatures);
  if (features & ~spec.offered) {
    throw new RangeError(
      `Cannot restore device: features 0x${
        (features & ~spec.offered).toString(16)
      } were not offered`,
    );
  }
  if (!Number.isInteger(v.status) || v.status < 0 || v.status > 0xff) {
    throw new RangeError(`Cannot restore device: status ${v.status} is not a byte`);
  }
  if (!Array.isArray(v.queues) || v.queues.length !== spec.queueMaxSizes.length) {
    throw new RangeError(
      `Cannot restore device: ${v.queues?.length} queues, device has ${spec.queueMaxSizes.length}`,
    );
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
    queues: v.queues.map((q, i) => checkQueueState(q, spec.queueMaxSizes[i]!, ram)),
    ...(v.backend !== undefined ? { backend: v.backend } : {}),
  };
}

/** Options of {@link VirtioDevice}. */
export interface VirtioDeviceOptions {
  mem: DeviceMemory;
  interrupt: Interrupt;
  /** The legacy interface (virtio-mmio version 1): no VERSION_1, no FEATURES_OK, 32-bit features. */
  legacy?: boolean;
  /** Where illegal accesses and device errors are reported (default: ignored). */
  log?: (message: string) => void;
  /** Offer only these of the backend's features (a management driver's limit). */
  featureMask?: bigint;
  /**
   * Where the interrupt status lives: `words[index]`, shared with the vCPU workers so they
   * answer the driver's status reads and acknowledgements themselves (a virtio-mmio window's
   * slot in `vstate/virtio_isr.ts`). Default: a word of the device's own.
   */
  isrWord?: { words: Int32Array; index: number };
}

type Phase = "running" | "stopping" | "stopped";

/**
 * The virtio device core, shared by all transports.
 *
 * @example
 * ```ts
 * import { VirtioDevice } from "./device.ts";
 * import { GuestMemory } from "../memory/guest_memory.ts";
 * const dev = new VirtioDevice({
 *   deviceType: 4, queueMaxSizes: [8], features: 0n, configSize: 0,
 *   readConfig: () => {}, writeConfig: () => {}, activate: () => {},
 *   processQueue: () => {}, reset: () => {},
 * }, { mem: GuestMemory.allocate([{ gpa: 0, size: 4096 }]), interrupt: { trigger() {} } });
 * dev.writeStatus(1);
 * console.assert(dev.status === 1);
 * ```
 */
export class VirtioDevice {
  /** The device model. */
  readonly backend: VirtioBackend;
  /** Guest memory, where the queues' buffers are. */
  readonly mem: DeviceMemory;
  /** The legacy interface (virtio-mmio version 1). */
  readonly legacy: boolean;
  /** The queues, sized by the backend's `queueMaxSizes`. */
  readonly queues: Queue[];
  /** Features offered to the driver. */
  readonly offered: bigint;
  #interrupt: Interrupt;
  #log: (m: string) => void;
  #status = 0;
  #driverFeatures = 0n;
  /** The interrupt status: `#isrWords[#isrAt]`, changed only with Atomics (it may be shared). */
  readonly #isrWords: Int32Array;
  readonly #isrAt: number;
  #generation = 0;
  #phase: Phase = "running";
  /** Set by {@link dispose}: the machine is going away, no more queue or memory work. */
  #disposed = false;
  /** Pending {@link DeviceContext.requeue} timers (cleared by dispose). */
  readonly #requeues = new Set<Timer>();
  #deferredInterrupt = false;
  #deferredConfig = false;
  #drained: (() => void)[] = [];
  #ctx: DeviceContext;

  /** A device in reset state around `backend`, offering its features (plus VERSION_1 if modern). */
  constructor(backend: VirtioBackend, opts: VirtioDeviceOptions) {
    this.backend = backend;
    this.mem = opts.mem;
    this.legacy = opts.legacy ?? false;
    this.#interrupt = opts.interrupt;
    this.#log = opts.log ?? (() => {});
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
      },
    };
  }

  /** The device status register. */
  get status(): number {
    return this.#status;
  }

  /** The features the driver acknowledged. */
  get driverFeatures(): bigint {
    return this.#driverFeatures;
  }

  /** Interrupt status (bit 0 used buffer, bit 1 config change). */
  get isr(): number {
    return Atomics.load(this.#isrWords, this.#isrAt);
  }

  /** Config generation: changes whenever the device changed its config space. */
  get configGeneration(): number {
    return this.#generation;
  }

  /** Whether stop() was called and resume() was not (stopping or stopped). */
  get frozen(): boolean {
    return this.#phase !== "running";
  }

  /** Whether stop() has completed (no requests in flight, nothing will change). */
  get stopped(): boolean {
    return this.#phase === "stopped";
  }

  /** Whether DRIVER_OK is set and the device is not broken. */
  get active(): boolean {
    return (this.#status & STATUS.DRIVER_OK) !== 0 &&
      (this.#status & (STATUS.DEVICE_NEEDS_RESET | STATUS.FAILED)) === 0;
  }

  /** Whether the driver may still write feature bits. */
  get featuresWritable(): boolean {
    const s = this.#status;
    if (this.legacy) return (s & STATUS.DRIVER) !== 0 && (s & STATUS.DRIVER_OK) === 0;
    return (s & STATUS.DRIVER) !== 0 && (s & STATUS.FEATURES_OK) === 0;
  }

  /** Whether the driver may set up queues now (after FEATURES_OK, before DRIVER_OK). */
  get queuesWritable(): boolean {
    const s = this.#status;
    if (s & (STATUS.DRIVER_OK | STATUS.FAILED)) return false;
    return this.legacy ? (s & STATUS.DRIVER) !== 0 : (s & STATUS.FEATURES_OK) !== 0;
  }

  /** 32 bits of the offered features: word 0 is bits 0-31, word 1 bits 32-63. */
  deviceFeaturesWord(sel: number): number {
    if (sel === 0) return Number(this.offered & 0xffff_ffffn);
    if (sel === 1 && !this.legacy) return Number((this.offered >> 32n) & 0xffff_ffffn);
    return 0;
  }

  /** The driver writes 32 bits of its accepted features (gated on status). */
  writeDriverFeaturesWord(sel: number, value: number): void {
    if (!this.featuresWritable) {
      return this.#log(`Ignored driver features write in status 0x${this.#status.toString(16)}`);
    }
    if (sel > 1 || (sel === 1 && this.legacy)) {
      return this.#log(`Ignored driver features word ${sel}`);
    }
    const shift = BigInt(sel * 32);
    const mask = 0xffff_ffffn << shift;
    let v = BigInt(value >>> 0) << shift;
    if (this.legacy) {
      // No FEATURES_OK to refuse with: keep only what was offered.
      const unoffered = v & ~this.offered;
      if (unoffered) {
        this.#log(`Legacy driver accepted unoffered features 0x${unoffered.toString(16)}`);
      }
      v &= this.offered;
    }
    this.#driverFeatures = (this.#driverFeatures & ~mask) | v;
  }

  /** Why `acked` cannot be accepted at FEATURES_OK, or undefined. */
  #featuresProblem(acked: bigint): string | undefined {
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
    return undefined;
  }

  /** A driver write to the status register, applied per the transition table. */
  writeStatus(value: number): void {
    const v = value & 0xff;
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
      return this.#log(
        `Ignored status write 0x${v.toString(16)} in status 0x${s.toString(16)} (expected +0x${
          next.toString(16)
        })`,
      );
    }
    if (s & STATUS.FAILED) return this.#log("Ignored status write after FAILED: reset first");
    switch (add) {
      case STATUS.FEATURES_OK: {
        const why = this.#featuresProblem(this.#driverFeatures);
        if (why) return this.#log(`Refused FEATURES_OK: ${why}`); // the driver's re-read sees it clear
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
  #nextStep(s: number): number {
    return (this.legacy ? STATUS_STEPS.legacy : STATUS_STEPS.modern).get(s) ?? 0;
  }

  #activate(): void {
    const f = this.#driverFeatures;
    for (const [i, q] of this.queues.entries()) {
      q.eventIdx = (f & bit(F.EVENT_IDX)) !== 0n;
      q.indirect = (f & bit(F.INDIRECT_DESC)) !== 0n;
      // The driver has seen no used buffer yet: compare the first decision with index 0.
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
  reset(): void {
    this.#status = 0;
    this.#driverFeatures = 0n;
    Atomics.store(this.#isrWords, this.#isrAt, 0);
    this.#deferredInterrupt = false;
    for (const q of this.queues) q.reset();
    this.backend.reset();
    // A reset drops what was in flight: a stop that waited for it is complete now.
    if (this.#phase === "stopping") this.#checkDrained();
  }

  /**
   * DEVICE_NEEDS_RESET with a config interrupt (only once the driver is live); `extra` are
   * further device-owned status bits set with it (DEVICE_MMU_FAIL).
   */
  fail(reason: string, extra = 0): void {
    this.#log(`Device needs reset: ${reason}`);
    if (!(this.#status & STATUS.DRIVER_OK)) return;
    const had = this.#status & STATUS.DEVICE_NEEDS_RESET;
    this.#status |= STATUS.DEVICE_NEEDS_RESET | (extra & STATUS.DEVICE_MMU_FAIL);
    if (!had) this.#raise(ISR.CONFIG_CHANGE);
  }

  #canProcess(): boolean {
    return this.#phase === "running" && this.active && !this.#disposed;
  }

  /**
   * The machine is closing (its guest memory is about to be unmapped): from now on nothing
   * of this device touches queues or memory: notifications, re-queues and the work of
   * requests still in flight (which comes through {@link guard}) are dropped.
   */
  dispose(): void {
    if (this.#disposed) return;
    this.#disposed = true;
    this.backend.dispose?.();
    for (const t of this.#requeues) t.cancel();
    this.#requeues.clear();
  }

  /** The driver notified queue `index` (or the VMM re-kicks it). */
  notify(index: number): void {
    const q = this.queues[index];
    if (!q) return this.#log(`Ignored notify of queue ${index}: no such queue`);
    if (!this.#canProcess() || !q.ready) return;
    this.guard(`queue ${index}`, () => this.backend.processQueue(index));
  }

  /** See {@link DeviceContext.guard}: an exception from `fn` marks the device broken. */
  guard(what: string, fn: () => void): void {
    if (this.#disposed) return;
    try {
      fn();
    } catch (e) {
      if (e instanceof QueueError) this.fail(`${what}: ${e.message}`);
      else this.fail(`${what}: device error: ${e instanceof Error ? e.message : String(e)}`);
    }
  }

  #signalUsed(index: number): void {
    const q = this.queues[index];
    if (q && q.ready && q.needsInterrupt(this.mem)) this.#raise(ISR.USED_BUFFER);
    if (this.#phase === "stopping") this.#checkDrained();
  }

  /** The device changed its config space: new generation and a config interrupt. */
  configChanged(): void {
    if (this.#phase !== "running") {
      this.#deferredConfig = true; // config space stays frozen while stopped
      return;
    }
    this.#generation = (this.#generation + 1) >>> 0;
    if (this.#status & STATUS.DRIVER_OK) this.#raise(ISR.CONFIG_CHANGE);
  }

  #raise(bits: number): void {
    Atomics.or(this.#isrWords, this.#isrAt, bits);
    if (this.#phase !== "running") {
      this.#deferredInterrupt = true;
      return;
    }
    this.#interrupt.trigger();
  }

  /** The driver acknowledged interrupt bits. */
  ackInterrupt(bits: number): void {
    Atomics.and(this.#isrWords, this.#isrAt, ~bits);
  }

  /** A config space read: the backend fills `data`; outside config space it reads zeros. */
  readConfig(offset: number, data: Uint8Array): void {
    data.fill(0);
    if (offset < 0 || offset + data.byteLength > this.backend.configSize) {
      return this.#log(`Config read at ${offset}+${data.byteLength} outside config space`);
    }
    this.backend.readConfig(offset, data);
  }

  /** A config space write, passed to the backend once the driver is in (DRIVER); else logged. */
  writeConfig(offset: number, data: Uint8Array): void {
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
  stop(): Promise<void> {
    if (this.#phase === "stopped") return Promise.resolve();
    this.#phase = "stopping";
    const p = new Promise<void>((r) => this.#drained.push(r));
    this.#checkDrained();
    const more = this.backend.stop?.();
    return more ? Promise.all([p, more]).then(() => {}) : p;
  }

  #checkDrained(): void {
    if (this.#phase !== "stopping" || (this.backend.inflight?.() ?? 0) > 0) return;
    this.#phase = "stopped";
    for (const r of this.#drained.splice(0)) r();
  }

  /** Call when an in-flight request finished without a used-buffer signal. */
  requestDone(): void {
    if (this.#phase === "stopping") this.#checkDrained();
  }

  /**
   * Resumes exactly where the device stopped: the backend's own {@link VirtioBackend.resume}
   * runs first, then `replay` (the transport's deferred register writes), then the deferred
   * config change and interrupt are delivered, then
   * every ready queue is re-kicked (a notification may have come while
   * stopped, and after a restore avail_event may be stale).
   */
  resume(replay?: () => void): void {
    if (this.#phase === "running") return;
    this.#phase = "running";
    for (const r of this.#drained.splice(0)) r();
    // What the backend holds beyond its queues (a management device's virtual devices)
    // runs again first: the driver writes that waited may address it.
    this.backend.resume?.();
    // Driver writes that waited happened before anything the device deferred.
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
  kickAll(): void {
    for (let i = 0; i < this.queues.length; i++) if (this.queues[i]!.ready) this.notify(i);
  }

  /** Validates a saved core state (untrusted), pure: {@link checkVirtioState}. */
  static check(s: unknown, spec: VirtioStateSpec, ram: RamMap): VirtioState {
    return checkVirtioState(s, spec, ram);
  }

  /** What saved states of this device are checked against. */
  get stateSpec(): VirtioStateSpec {
    return {
      deviceType: this.backend.deviceType,
      offered: this.offered,
      queueMaxSizes: this.queues.map((q) => q.maxSize),
    };
  }

  /** The core state as plain data (the backend's own state included). */
  save(): VirtioState {
    return {
      deviceType: this.backend.deviceType,
      status: this.#status,
      driverFeatures: this.#driverFeatures.toString(16),
      isr: this.isr,
      configGeneration: this.#generation,
      queues: this.queues.map((q) => q.save()),
      ...(this.backend.save ? { backend: this.backend.save() } : {}),
    };
  }

  /**
   * Restores saved state (untrusted): device type, features within the offer, status
   * bits, queue count and each queue are validated before anything is applied. The device
   * comes back stopped: nothing is processed until {@link resume}.
   */
  restore(saved: VirtioState): void {
    const s = checkVirtioState(saved, this.stateSpec, this.mem);
    const features = BigInt("0x" + s.driverFeatures);
    // The backend checks its part before changing anything; the queues were checked above.
    if (s.backend !== undefined) this.backend.restore?.(s.backend);
    s.queues.forEach((qs, i) => this.queues[i]!.restore(qs, this.mem));
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
}
