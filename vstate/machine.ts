/**
 * A machine: KVM VM, guest RAM, in-kernel irqchip and PIT, buses, the exit dispatcher and
 * one worker per vCPU. The VMM and the tests build on it; it knows nothing of Linux.
 *
 * @module
 */

import { CAP, Kvm, type Vm } from "@denovm/deno-kvm-ffi";
import { MmapGuestMemory } from "../memory/mmap.ts";
import { Bus } from "../bus/bus.ts";
import { EventPoller } from "./event_poller.ts";
import { ExitDispatcher } from "./exit_dispatcher.ts";
import type { LocalDeviceSpec } from "./local_devices.ts";
import { VirtioIsrTable } from "./virtio_isr.ts";
import { type CoalescedRing, VcpuThread } from "./vcpu_thread.ts";
import { describeHost, KvmUnavailableError, probeKvm } from "./host.ts";
import { takeVcpuWorker } from "./worker_pool.ts";
import { ramLayout } from "../boot/x86.ts";
import type { StopReason } from "./vcpu_worker.ts";
import type { VcpuState } from "../snapshot/vcpu_state.ts";

/** Addresses KVM needs for its TSS (3 pages) and EPT identity map (1 page) on Intel. */
export const TSS_ADDR = 0xfffb_d000;
export const IDENTITY_MAP_ADDR = 0xfffb_c000;

/** Options of {@link Machine.create}. */
export interface MachineOptions {
  /** Guest RAM in MiB (laid out by {@link ramLayout}). */
  memMiB?: number;
  /** An explicit RAM layout instead of `memMiB` (page-aligned regions). */
  ram?: { gpa: number; size: number }[];
  /** Number of vCPUs (1 to 64). */
  vcpus?: number;
  /** Worker-local devices for vCPU `id`. */
  local?: (id: number) => LocalDeviceSpec[];
  /** Called on device faults (and unhandled accesses without `onMiss`; default: ignored). */
  onFault?: (message: string) => void;
  /** Called on accesses that hit no device, rate-limited (see `ExitDispatcher`). */
  onMiss?: (message: string) => void;
  /** Called on each doorbell wake (e.g. to drain serial output). */
  onWake?: () => void;
  /** Track dirty pages in every RAM slot (for diff snapshots). */
  dirtyLog?: boolean;
  /** Map guest RAM copy-on-write from this file (a snapshot's memory) instead of zeros. */
  memoryFile?: string;
  /**
   * Port ranges whose guest writes KVM batches instead of exiting at each (where KVM has
   * KVM_CAP_COALESCED_PIO): the vCPU workers serve them, in order, at the next exit, and the
   * device thread makes a vCPU exit when some wait longer than a few milliseconds. For
   * registers whose writes have no effect the guest can see before its next access of the
   * device (a UART's transmit register).
   */
  coalescedPio?: { port: number; size: number }[];
  /**
   * The virtio-mmio windows (`slots` of 4 KiB from `base`) whose interrupt status the vCPU
   * workers answer themselves ({@link Machine.virtioIsr}, `virtio_isr.ts`).
   */
  virtioIsr?: { base: number; slots: number };
  /**
   * A restore: vCPU `i` takes `vcpuStates[i]` on its own thread as it starts (before the VM's
   * irqchip and clock state are set, Firecracker's order too). Validated by the caller.
   */
  vcpuStates?: VcpuState[];
}

/**
 * Registers `zones` as coalesced port writes where KVM can (KVM_CAP_COALESCED_PIO, and the
 * ring inside the `kvm_run` mapping); otherwise undefined, and the writes exit as before.
 */
function setupCoalesced(
  vm: Vm,
  zones: { port: number; size: number }[],
): CoalescedRing | undefined {
  if (zones.length === 0) return undefined;
  const pageOffset = vm.checkExtension(CAP.COALESCED_MMIO);
  if (pageOffset <= 0 || (pageOffset + 1) * 4096 > vm.runSize) return undefined;
  if (vm.checkExtension(CAP.COALESCED_PIO) <= 0) return undefined;
  for (const z of zones) vm.registerCoalesced({ addr: z.port, size: z.size, pio: true });
  return { pageOffset, lock: new SharedArrayBuffer(4) };
}

/** Opens /dev/kvm; where it cannot be used, a {@link KvmUnavailableError} that says why. */
function openKvm(): Kvm {
  try {
    return Kvm.open();
  } catch (e) {
    const probe = probeKvm();
    if (probe.status === "ok") throw e;
    throw new KvmUnavailableError(describeHost("none", probe));
  }
}

/** A running (or paused) set of vCPUs over one VM. */
export class Machine {
  /** The open `/dev/kvm` (system ioctls). */
  readonly kvm: Kvm;
  /** The KVM VM (VM ioctls: memory slots, irqchip, irqfd, ioeventfd, clock). */
  readonly vm: Vm;
  /** Guest RAM, mapped in this process and registered as KVM memory slots. */
  readonly memory: MmapGuestMemory;
  /** The port I/O bus: devices the device thread serves on `in`/`out` exits. */
  readonly pio: Bus = new Bus("pio");
  /** The MMIO bus: devices the device thread serves on MMIO exits. */
  readonly mmio: Bus = new Bus("mmio");
  /** Serves the exits the vCPU workers hand over, on `pio` and `mmio`. */
  readonly dispatcher: ExitDispatcher;
  /** The vCPU threads; index = vCPU id. */
  readonly vcpus: VcpuThread[] = [];
  #exits: ((r: StopReason & { vcpu: number }) => void)[] = [];
  #firstExit: (StopReason & { vcpu: number }) | undefined;
  #closed = false;
  #events: EventPoller | undefined;
  #closeHooks: (() => void | Promise<void>)[] = [];
  readonly #onFault: ((message: string) => void) | undefined;
  /**
   * The interrupt status words of the virtio-mmio windows, shared with the vCPU workers
   * (when the machine was created with `virtioIsr`): a device claims its window's word.
   */
  readonly virtioIsr: VirtioIsrTable | undefined;

  private constructor(kvm: Kvm, vm: Vm, memory: MmapGuestMemory, opts: MachineOptions) {
    this.#onFault = opts.onFault;
    this.virtioIsr = opts.virtioIsr
      ? VirtioIsrTable.create(opts.virtioIsr.base, opts.virtioIsr.slots)
      : undefined;
    this.kvm = kvm;
    this.vm = vm;
    this.memory = memory;
    this.dispatcher = new ExitDispatcher({
      pio: this.pio,
      mmio: this.mmio,
      ...(opts.onFault ? { onFault: opts.onFault } : {}),
      ...(opts.onMiss ? { onMiss: opts.onMiss } : {}),
      ...(opts.onWake ? { onWake: opts.onWake } : {}),
    });
  }

  /** Creates the VM, its memory and irqchip, and starts one parked worker per vCPU. */
  static async create(opts: MachineOptions): Promise<Machine> {
    const n = opts.vcpus ?? 1;
    if (!Number.isInteger(n) || n < 1 || n > 64) {
      throw new RangeError(`Cannot create machine: ${n} vCPUs is not between 1 and 64`);
    }
    if (opts.vcpuStates && opts.vcpuStates.length !== n) {
      throw new RangeError(
        `Cannot create machine: ${opts.vcpuStates.length} saved vCPU states for ${n} vCPUs`,
      );
    }
    const layout = opts.ram ?? ramLayout(opts.memMiB ?? 128);
    // Workers take longest to start: spawn them first so they load while KVM is set up.
    const workers = Array.from({ length: n }, takeVcpuWorker);
    let kvm: Kvm | undefined;
    let vm: Vm | undefined;
    let memory: MmapGuestMemory | undefined;
    let coalesced: CoalescedRing | undefined;
    try {
      kvm = openKvm();
      vm = kvm.createVm();
      // Memory slots first, then TSS, irqchip and PIT (Firecracker's order too): on this
      // host the whole setup took ~8 ms with the slots added after the irqchip, ~1 ms before.
      memory = MmapGuestMemory.create(layout, opts.memoryFile ? { file: opts.memoryFile } : {});
      memory.hostRegions.forEach((r, slot) =>
        vm!.setUserMemoryRegion({
          slot,
          guestPhysAddr: r.gpa,
          size: r.size,
          userspaceAddr: r.hostAddr,
          flags: opts.dirtyLog ? 1 : 0,
        })
      );
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
    const m = new Machine(kvm, vm, memory, opts);
    // Every worker gets its init at once and they set up side by side (each one's first
    // message costs a round trip through its event loop).
    const starts: Promise<VcpuThread>[] = [];
    try {
      for (let id = 0; id < n; id++) {
        // Before the vCPU exists, so a throwing `local` leaves no vCPU fd behind.
        const local = [
          ...(opts.local?.(id) ?? []),
          ...(m.virtioIsr
            ? [{
              kind: "virtio_isr" as const,
              base: m.virtioIsr.base,
              slots: m.virtioIsr.slots,
              words: m.virtioIsr.sab,
            }]
            : []),
        ];
        const vcpu = vm.createVcpu(id);
        const started = VcpuThread.start(vcpu, {
          local,
          doorbell: m.dispatcher.doorbell,
          onExit: (r) => m.#onExit({ ...r, vcpu: id }),
          worker: workers[id]!,
          ...(coalesced ? { coalesced } : {}),
          vmFd: vm.fd,
          ...(opts.vcpuStates ? { state: opts.vcpuStates[id] } : {}),
        }).catch((e) => {
          vcpu.close();
          throw e;
        });
        starts.push(started);
      }
    } catch (e) {
      // `local` or createVcpu threw: the threads already starting stop with the machine.
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
  async #adopt(starts: Promise<VcpuThread>[]): Promise<PromiseRejectedResult | undefined> {
    const settled = await Promise.allSettled(starts);
    for (const r of settled) {
      if (r.status !== "fulfilled") continue;
      this.vcpus.push(r.value);
      this.dispatcher.add(r.value.mailbox);
    }
    return settled.find((r): r is PromiseRejectedResult => r.status === "rejected");
  }

  /**
   * Writes left in the coalesced ring by a guest that makes no exit for a while (it wrote
   * its last bytes and waits in HLT, which the in-kernel irqchip keeps in the kernel) are
   * served by poking vCPU 0 out of KVM_RUN: looked at on every device-thread wake and on the
   * dispatcher's 100 ms safety tick (no timer of its own: on a one-CPU host every timer
   * turn is the guest's time), poked when the ring was not empty at two looks in a row.
   */
  #watchCoalesced(pageOffset: number): void {
    let seen = false;
    this.dispatcher.addWakeHandler(() => {
      const v = this.vcpus[0];
      if (!v) return;
      const pending = v.vcpu.coalescedPending(pageOffset);
      if (pending && seen) v.poke();
      seen = pending;
    });
  }

  #onExit(r: StopReason & { vcpu: number }): void {
    this.#firstExit ??= r;
    const w = this.#exits;
    this.#exits = [];
    for (const f of w) f(r);
  }

  /** The event poller (ioeventfds, tap, stdin), started on first use. */
  get events(): EventPoller {
    if (!this.#events) {
      const p = new EventPoller(this.#onFault);
      this.dispatcher.addWakeHandler(() => p.pollNow());
      this.#events = p;
    }
    return this.#events;
  }

  /** Runs `fn` when the machine closes (after the vCPUs and the poller have stopped). */
  onClose(fn: () => void | Promise<void>): void {
    this.#closeHooks.push(fn);
  }

  /** Puts vCPU `id` in real mode at `cs:ip` with stack `ss:sp` = 0:`sp`. */
  async setRealMode(id: number, o: { cs?: number; ip: number; sp?: number }): Promise<void> {
    await this.#vcpu(id).call("setRealMode", { cs: o.cs ?? 0, ip: o.ip, sp: o.sp ?? 0x7000 });
  }

  #vcpu(id: number): VcpuThread {
    const t = this.vcpus[id];
    if (!t) throw new RangeError(`Cannot use vCPU ${id}: the machine has ${this.vcpus.length}`);
    return t;
  }

  /** Runs every vCPU. */
  run(): void {
    for (const t of this.vcpus) t.run();
  }

  /**
   * Stops every vCPU for `reason` (e.g. the guest asked for a reset through the i8042) and
   * resolves {@link whenExit} with it. The machine stays open (paused) until closed.
   */
  async requestStop(reason: StopReason): Promise<void> {
    if (this.#firstExit) return;
    // Park every vCPU first, so whoever waits on whenExit() finds them all stopped.
    await this.pause();
    this.#onExit({ ...reason, vcpu: -1 });
  }

  /** Resolves when any vCPU leaves its loop for a reason other than pause or stop. */
  whenExit(): Promise<StopReason & { vcpu: number }> {
    if (this.#firstExit) return Promise.resolve(this.#firstExit);
    return new Promise((r) => this.#exits.push(r));
  }

  /** Kicks every vCPU out of KVM_RUN and parks it. */
  async pause(): Promise<void> {
    await Promise.all(this.vcpus.map((t) => t.pause()));
  }

  /** Runs every vCPU again after {@link pause}. */
  resume(): void {
    this.run();
  }

  /** Stops every vCPU, ends the workers, and releases the VM, memory and fds. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    await Promise.all(this.vcpus.map((t) => t.close()));
    await this.#events?.close();
    for (const f of this.#closeHooks.splice(0).reverse()) {
      try {
        await f();
      } catch {
        // keep releasing the rest
      }
    }
    await this.dispatcher.stop();
    for (const t of this.vcpus) t.vcpu.close();
    this.vm.close();
    this.memory.close();
    this.kvm.close();
  }

  /** {@link close}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.close();
  }
}
