/**
 * A VMM instance: machine, serial console, devices, and the lifecycle around them —
 * start, pause (vCPUs parked, devices drained and stopped, kvmclock told), resume (devices
 * restarted and every activated queue re-kicked, then vCPUs), snapshot into a directory,
 * and restore from one in a fresh process.
 *
 * @module
 */

import type { DiskImage } from "../devices/block.ts";
import { IRQCHIP, type Vcpu } from "@denovm/deno-kvm-ffi";
import { decodeState, encodeState, SnapshotError, writeAtomic } from "../snapshot/format.ts";
import type { VcpuState } from "../snapshot/vcpu_state.ts";
import {
  applyDiffs,
  DIFF_FILE,
  dirtyRanges,
  MEMORY_FILE,
  type MemoryLayer,
  PAGE,
  placeLayer,
  writeDiff,
  writeMemory,
} from "../snapshot/memory_file.ts";
import { type SnapshotState, STATE_FILE, validateSnapshot } from "./snapshot_state.ts";
import { defaultConfig, parseConfig, type VmConfig } from "./config.ts";
import { DEMO_GUEST } from "../guest/demo_guest.ts";
import {
  attachDevices,
  type Devices,
  legacyVirtioGsis,
  VIRTIO_MMIO_BASE,
} from "./devices_setup.ts";
import { Machine } from "../vstate/machine.ts";
import { ramLayout } from "../boot/x86.ts";
import { GED_GSI, VMGENID_ADDR, VMGENID_SIZE } from "../boot/acpi.ts";
import { parseKernel } from "../boot/kernel.ts";
import { type BootLayout, loadKernel } from "./kernel_boot.ts";
import { SerialPort } from "./serial.ts";
import { DEVICE_ID } from "../virtio/constants.ts";
import { Console } from "./console_api.ts";
import { type Logger, silentLogger } from "./log.ts";
import { readBounded } from "../host/files.ts";
import { exec, ExecError, type ExecOptions, type ExecResult } from "../host/exec.ts";
import type { StopReason } from "../vstate/vcpu_worker.ts";

/** The exit port: a guest write of V stops the VM with `{kind: "exit", code: V}`. */
export const EXIT_PORT = 0x501;
/**
 * The boot-time marker port: the guest's init writes any byte here once userspace runs
 * (`printf x | dd of=/dev/port bs=1 seek=1285 count=1`), and the VMM records the time.
 */
export const BOOT_MARKER_PORT = 0x505;
/** Virtio-mmio windows whose interrupt status the vCPU workers answer (more cross as before). */
const VIRTIO_ISR_SLOTS = 256;

/** The boot-time marker in MMIO, for guests without port access (`devmem 0xd0fff000 8 1`). */
export const BOOT_MARKER_MMIO = 0xd0ff_f000;

/**
 * The default kernel command line. Without ACPI the devices' `virtio_mmio.device=` entries
 * follow it, and the i8042 is probed directly (`i8042.nopnp`: no PNP description exists);
 * with ACPI the DSDT names both, and a direct probe would fail under hardware-reduced ACPI.
 */
export function defaultCmdline(console: VmConfig["console"], acpi = true): string {
  const c = console === "serial" ? "console=ttyS0 " : console === "virtio" ? "console=hvc0 " : "";
  return `${c}reboot=k panic=1 pci=off nomodule i8042.noaux i8042.nomux ${
    acpi ? "" : "i8042.nopnp "
  }i8042.dumbkbd`;
}

/** A real-mode image to run instead of a kernel (the demo, test guests). */
export interface RealModeImage {
  /** The image, copied into guest memory at `load`. */
  bytes: Uint8Array;
  /** Load and entry address (0000:addr). */
  load: number;
  /** vCPU 0's initial stack pointer (default 0x7000); vCPU n starts 0x400 × n lower. */
  sp?: number;
}

/** Options beyond the config: for test guests and embedding. */
export interface VmmOptions {
  /** Serial console output (default: stdout, unless the console is "none"). */
  output?: (bytes: Uint8Array) => void;
  /** An explicit RAM layout (real-mode test guests need RAM below the device windows). */
  ram?: { gpa: number; size: number }[];
  /** Where the virtio-mmio windows start. */
  mmioBase?: number;
  /** Each virtio device's interrupt line (GSI), in window order (default: `VIRTIO_GSIS`). */
  gsis?: readonly number[];
  /** Disk images to use instead of opening the config's paths (same order). */
  diskImages?: DiskImage[];
  /** A real-mode image to boot (default, without a kernel: the embedded demo guest). */
  image?: RealModeImage;
  /** Device faults and guest misbehaviour (default: `logger.warn`). */
  log?: (message: string) => void;
  /** Lifecycle and device logs (default: silent). See `createLogger` in `vmm/log.ts`. */
  logger?: Logger;
  /** Track dirtied pages (KVM dirty log and device writes), for diff snapshots. */
  trackDirtyPages?: boolean;
  /**
   * How a guest's vsock connect to host port P is made: a connection, or null to refuse
   * (default: the Unix socket `<vsock path>_P`, Firecracker's convention).
   */
  vsockConnect?: (port: number) => Promise<Deno.Conn | null>;
  /**
   * Batch the guest's writes to the UART's transmit register in KVM (coalesced port I/O)
   * instead of exiting at each byte (default true; where KVM cannot, they exit as before).
   * Off only to measure the difference (`bench/`).
   */
  coalescedSerial?: boolean;
}

/**
 * Boot phase times, in ms since the process started (`performance.timeOrigin`). A phase
 * not reached (yet) is absent.
 */
export interface BootTimings {
  /** KVM VM, guest RAM, vCPU threads and devices exist. */
  vmCreated?: number;
  /** The kernel (or real-mode image) is in guest memory and the vCPUs are set up. */
  kernelLoaded?: number;
  /** vCPU 0 entered KVM_RUN for the first time. */
  firstInstruction?: number;
  /** The guest wrote the boot marker (its init reached userspace). */
  bootMarker?: number;
  /** A restore: `Vmm.restore` was called. */
  restoreStarted?: number;
  /** A restore: the state file is read and its checksum and every saved state checked. */
  stateValidated?: number;
  /** A restore: the saved state is in KVM and the devices (then the vCPUs resume). */
  stateApplied?: number;
}

/** Overrides for {@link Vmm.restore}. */
export interface RestoreOptions extends Omit<VmmOptions, "ram" | "mmioBase" | "gsis" | "image"> {
  /** Disk image paths to attach instead of the saved ones (same order). */
  disks?: string[];
  /** TAP names to attach instead of the saved ones (same order). */
  taps?: string[];
  /** Stay paused after restore (default: resume). */
  paused?: boolean;
}

/** Options of {@link Vmm.snapshot}. */
export interface SnapshotOptions {
  /**
   * Write only the pages dirtied since the last snapshot (or restore), on top of it. Needs
   * `trackDirtyPages`; the earlier snapshot's files must stay where they are.
   */
  diff?: boolean;
}

/** A virtual device on the management device, as {@link Vmm.adminDevices} lists it. */
export interface AdminDeviceInfo {
  /** Its vdev_id. */
  id: number;
  /** "rng", "console", "blk", or the virtio device type. */
  type: string | number;
  /** The virtio device type. */
  deviceType: number;
  /** Its device status (15 once its driver is live). */
  status: number;
  /** Who created it. */
  origin: "driver" | "host";
  /** For blk: the index into `config.admin.disks`. */
  disk?: number;
}

/** What {@link Vmm.createAdminDevice} creates. */
export type AdminDeviceSpec = { type: "rng" } | { type: "console" } | {
  type: "blk";
  /** Index into `config.admin.disks`. */
  disk: number;
};

const ADMIN_TYPE_NAMES: Record<number, string> = {
  [DEVICE_ID.RNG]: "rng",
  [DEVICE_ID.CONSOLE]: "console",
  [DEVICE_ID.BLOCK]: "blk",
};

/**
 * A microVM.
 *
 * @example
 * ```ts ignore
 * import { Vmm } from "./vmm.ts";
 * await using vm = await Vmm.create({ memMiB: 64 });
 * vm.start();
 * console.log(await vm.whenExit());
 * ```
 */
export class Vmm {
  /** The validated configuration the VM was built from. */
  readonly config: VmConfig;
  /** The machine below: KVM VM, guest memory, vCPU threads, buses. */
  readonly machine: Machine;
  /** The 8250 UART at COM1 (0x3f8, IRQ 4). */
  readonly serial: SerialPort;
  /** The devices built from the config: virtio devices and the i8042. */
  readonly devices: Devices;
  readonly #mmioBase: number;
  readonly #ram: { gpa: number; size: number }[];
  readonly #tracking: boolean;
  /** The VM generation ID's address and announcing GSI (ACPI kernel boots). */
  #vmgenid: { addr: number; gsi: number } | undefined;
  #markerCell: Float64Array | undefined;
  #logger: Logger = silentLogger;
  #vmCreatedAt: number | undefined;
  #loadedAt: number | undefined;
  #restoreAt: { started: number; validated: number; applied?: number } | undefined;
  /** The guest console: waitFor(), write(), lines(). */
  console!: Console;
  /** Lifecycle events: "exit" (detail: the stop reason), "reset", "device-error" (detail: message). */
  events: EventTarget = new EventTarget();
  #exitWatched = false;
  /** The kernel boot, when one was loaded. */
  boot: BootLayout | undefined;
  /** The memory layers (absolute paths) the guest memory equalled at the last snapshot. */
  #layers: MemoryLayer[] | undefined;
  #state: "created" | "running" | "paused" | "stopped" = "created";
  #pausing = false;

  private constructor(
    config: VmConfig,
    machine: Machine,
    serial: SerialPort,
    devices: Devices,
    layout: { ram: { gpa: number; size: number }[]; mmioBase: number },
    tracking: boolean,
  ) {
    this.config = config;
    this.machine = machine;
    this.serial = serial;
    this.devices = devices;
    this.#ram = layout.ram;
    this.#mmioBase = layout.mmioBase;
    this.#tracking = tracking;
  }

  /** Builds the VM (not started). Without a kernel it loads `opts.image` or the demo. */
  static async create(config: Partial<VmConfig> = {}, opts: VmmOptions = {}): Promise<Vmm> {
    const cfg = parseConfig({ ...defaultConfig(), ...config });
    if (cfg.kernel !== undefined) {
      cfg.acpi ??= true; // the default for kernels, recorded so a snapshot says what it had
      // Read and check the files before any KVM resource exists.
      const kernel = parseKernel(await readInput(cfg.kernel, "kernel"), cfg.kernel);
      const initrd = cfg.initrd !== undefined ? await readInput(cfg.initrd, "initrd") : undefined;
      const vmm = await Vmm.#build(cfg, opts, undefined);
      try {
        // With ACPI the DSDT names the virtio devices; the command line would name them twice.
        const cmdline = [
          cfg.cmdline ?? defaultCmdline(cfg.console, cfg.acpi),
          ...(cfg.acpi ? [] : vmm.devices.announce),
        ].join(" ");
        vmm.boot = await loadKernel(vmm.machine, kernel, {
          cmdline,
          ...(initrd ? { initrd } : {}),
          ...(cfg.acpi
            ? {
              acpi: {
                vcpus: cfg.vcpus,
                virtio: vmm.devices.virtio.map((d) => ({ base: d.base, gsi: d.gsi })),
                // Described for PNP: without the entry, Linux's direct probe of the controller
                // fails under hardware-reduced ACPI (seen with Debian's 6.1 kernel).
                i8042: true,
                rtc: true,
                vmgenid: true,
              },
            }
            : {}),
        });
      } catch (e) {
        await vmm.stop();
        throw e;
      }
      if (cfg.acpi) vmm.#vmgenid = { addr: VMGENID_ADDR, gsi: GED_GSI };
      vmm.#loadedAt = performance.now();
      vmm.#logger.info("kernel loaded", {
        kernel: cfg.kernel,
        mode: vmm.boot.mode,
        initrd: cfg.initrd,
        cmdline: vmm.boot.cmdline,
      });
      return vmm;
    }
    const vmm = await Vmm.#build(cfg, opts, undefined);
    const image = opts.image ?? { bytes: DEMO_GUEST, load: 0x1000 };
    vmm.machine.memory.write(image.load, image.bytes);
    for (let id = 0; id < vmm.machine.vcpus.length; id++) {
      await vmm.machine.setRealMode(id, { ip: image.load, sp: (image.sp ?? 0x7000) - id * 0x400 });
    }
    vmm.#loadedAt = performance.now();
    vmm.#logger.info("real-mode image loaded", {
      image: opts.image ? "given" : "demo",
      bytes: image.bytes.byteLength,
      load: `0x${image.load.toString(16)}`,
    });
    return vmm;
  }

  static async #build(
    cfg: VmConfig,
    opts: VmmOptions,
    memoryFile: string | undefined,
    vcpuStates?: VcpuState[],
  ): Promise<Vmm> {
    const logger = opts.logger ?? silentLogger;
    const fault = opts.log ?? ((msg: string) => logger.warn(msg));
    const marker = new Float64Array(new SharedArrayBuffer(8));
    // The library echoes nothing by default: scripts read vm.console; the CLI passes stdout.
    const user = cfg.console === "none" ? undefined : opts.output;
    let sink: Console | undefined;
    let events: EventTarget | undefined;
    const vmmEvents = new EventTarget();
    const output = (b: Uint8Array) => {
      sink?.push(b);
      user?.(b);
    };
    const serial = new SerialPort({ output });
    const ram = opts.ram ?? ramLayout(cfg.memMiB);
    const mmioBase = opts.mmioBase ?? VIRTIO_MMIO_BASE;
    let m: Machine;
    try {
      m = await Machine.create({
        ram,
        vcpus: cfg.vcpus,
        local: () => [
          { kind: "exit", port: EXIT_PORT },
          { kind: "marker", port: BOOT_MARKER_PORT, cell: marker.buffer as SharedArrayBuffer },
          serial.spec,
        ],
        ...(memoryFile ? { memoryFile } : {}),
        ...(vcpuStates ? { vcpuStates } : {}),
        onFault: fault,
        // A guest probing for hardware that is not there is normal: debug, rate-limited.
        onMiss: (msg: string) => logger.debug(msg),
        dirtyLog: opts.trackDirtyPages ?? false,
        // The virtio-mmio windows' interrupt status, answered by the vCPU workers.
        virtioIsr: { base: mmioBase, slots: VIRTIO_ISR_SLOTS },
        // The transmit register (THR, and the divisor's low byte under DLAB): a guest sees
        // nothing of a write there before it next reads the UART, which exits and finds it
        // served. Every other UART register still exits at each access.
        ...(opts.coalescedSerial ?? true ? { coalescedPio: [{ port: serial.port, size: 1 }] } : {}),
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
        ...(opts.gsis ? { gsis: opts.gsis } : {}),
        ...(opts.vsockConnect ? { vsockConnect: opts.vsockConnect } : {}),
        ...(opts.diskImages ? { diskImages: opts.diskImages } : {}),
        diskOnThread: memoryFile === undefined,
        log: (msg: string) => {
          fault(msg);
          if (/needs reset/i.test(msg)) {
            events?.dispatchEvent(new CustomEvent("device-error", { detail: msg }));
          }
        },
      });
      m.mmio.register(BOOT_MARKER_MMIO, 0x1000, {
        read: (_o, d) => d.fill(0),
        write: () => {
          if (marker[0] === 0) marker[0] = performance.timeOrigin + performance.now();
        },
      }, "boot-marker");
      events = vmmEvents;
      sink = new Console((bytes) => {
        if (cfg.console === "virtio" && devices.console) devices.console.input(bytes);
        else serial.input(bytes);
      });
      const vmm = new Vmm(
        cfg,
        m,
        serial,
        devices,
        { ram, mmioBase },
        opts.trackDirtyPages ?? false,
      );
      vmm.#markerCell = marker;
      vmm.#logger = logger;
      vmm.#vmCreatedAt = performance.now();
      logger.info("vm created", {
        vcpus: cfg.vcpus,
        mem_mib: cfg.memMiB,
        devices: devices.virtio.map((d) => d.name).join(",") || "none",
        restored_from: memoryFile,
      });
      if (logger.enabled("debug")) {
        for (const a of devices.announce) logger.debug("virtio-mmio device", { at: a });
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
  get bootMarkerMs(): number | undefined {
    const t = this.#markerCell?.[0] ?? 0;
    return t === 0 ? undefined : t - performance.timeOrigin;
  }

  /** Boot phase times so far (ms since process start). */
  get timings(): BootTimings {
    const t: BootTimings = {};
    if (this.#vmCreatedAt !== undefined) t.vmCreated = this.#vmCreatedAt;
    if (this.#loadedAt !== undefined) t.kernelLoaded = this.#loadedAt;
    if (this.#restoreAt) {
      t.restoreStarted = this.#restoreAt.started;
      t.stateValidated = this.#restoreAt.validated;
      if (this.#restoreAt.applied !== undefined) t.stateApplied = this.#restoreAt.applied;
    }
    const first = this.machine.vcpus[0]?.firstRunAt;
    if (first !== undefined) t.firstInstruction = first - performance.timeOrigin;
    const marker = this.bootMarkerMs;
    if (marker !== undefined) t.bootMarker = marker;
    return t;
  }

  /** "created", "running", "paused" or "stopped". */
  get state(): string {
    return this.#state;
  }

  /** Runs every vCPU. */
  start(): void {
    if (this.#state !== "created") throw new Error(`Cannot start a VM that is ${this.#state}`);
    this.#state = "running";
    this.#watchExit();
    this.machine.run();
    this.#logger.info("started");
  }

  /** Resolves when the guest stops (exit port, reset, shutdown, error, quit). */
  whenExit(): Promise<StopReason & { vcpu: number }> {
    return this.machine.whenExit();
  }

  #watchExit(): void {
    if (this.#exitWatched) return;
    this.#exitWatched = true;
    void this.machine.whenExit().then((r) => {
      this.serial.drain();
      this.console.close();
      this.#logger.info("guest stopped", {
        kind: r.kind,
        code: "code" in r ? r.code : undefined,
        message: "message" in r ? r.message : undefined,
      });
      this.events.dispatchEvent(new CustomEvent("exit", { detail: r }));
      if (r.kind === "reset") this.events.dispatchEvent(new CustomEvent("reset", { detail: r }));
    });
  }

  /**
   * Pauses: every vCPU leaves KVM_RUN and parks; every device stops (no new requests,
   * in-flight ones completed, config frozen, no interrupts); kvmclock is told, so the
   * guest's watchdogs do not fire on resume.
   */
  async pause(): Promise<void> {
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
  resume(): void {
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
  async snapshot(dir: string, opts: SnapshotOptions = {}): Promise<void> {
    const t0 = performance.now();
    await this.#snapshot(dir, opts);
    this.#logger.info("snapshot written", {
      dir,
      kind: opts.diff ? "diff" : "full",
      ms: Math.round(performance.now() - t0),
    });
  }

  async #snapshot(dir: string, opts: SnapshotOptions): Promise<void> {
    if (this.#state !== "paused") throw new Error("Cannot snapshot a VM that is not paused");
    if (opts.diff && !this.#tracking) {
      throw new Error("Cannot take a diff snapshot: the VM does not track dirty pages");
    }
    if (opts.diff && !this.#layers) {
      throw new Error("Cannot take a diff snapshot: take a full snapshot first");
    }
    await Deno.mkdir(dir, { recursive: true });
    const m = this.machine;
    const msrList = m.kvm.msrIndexList();
    const vcpus: VcpuState[] = [];
    for (const t of m.vcpus) vcpus.push(await t.call<VcpuState>("saveState", msrList));
    const clock = m.vm.getClock();
    const size = m.memory.totalSize;
    const state: SnapshotState = {
      kind: "denovm-snapshot",
      config: this.config,
      machine: {
        ram: this.#ram,
        mmioBase: this.#mmioBase,
        gsis: this.devices.virtio.map((d) => d.gsi),
        vcpus: m.vcpus.length,
        ...(this.#vmgenid ? { vmgenid: this.#vmgenid } : {}),
      },
      vcpus,
      vm: {
        pic: [m.vm.getIrqchip(IRQCHIP.PIC_MASTER), m.vm.getIrqchip(IRQCHIP.PIC_SLAVE)],
        ioapic: m.vm.getIrqchip(IRQCHIP.IOAPIC),
        pit: m.vm.getPit2(),
        clock: clock.clock,
        clockFlags: clock.flags,
      },
      devices: {
        uart: this.serial.uart.save(),
        i8042: this.devices.i8042.save(),
        rtc: this.devices.rtc.save(),
        virtio: this.devices.virtio.map((d) => ({ name: d.name, state: d.transport.save() })),
      },
      memory: { size, layers: [] },
    };
    const abs = await Deno.realPath(dir);
    const dirty = this.#tracking ? this.#takeDirty() : undefined;
    if (opts.diff) {
      // The earlier layers come along (hard links where possible): the directory holds
      // everything a restore needs, and a restore reads nothing outside it.
      const prev = this.#layers!;
      const names = prev.map((_, i) => (i === 0 ? MEMORY_FILE : `${DIFF_FILE}.${i}`));
      for (const [i, l] of prev.entries()) await placeLayer(l.file, `${abs}/${names[i]}`);
      const name = `${DIFF_FILE}.${prev.length}`;
      const ranges = dirtyRanges(dirty!, m.memory.regions.map((r) => r.bytes.byteLength));
      await writeDiff(`${abs}/${name}`, m.memory.regions.map((r) => r.bytes), ranges, size);
      state.memory.layers = [
        ...prev.map((l, i) => ({ ...l, file: names[i]! })),
        { file: name, ranges },
      ];
    } else {
      await writeMemory(`${abs}/${MEMORY_FILE}`, m.memory.regions.map((r) => r.bytes));
      state.memory.layers = [{ file: MEMORY_FILE }];
    }
    await writeAtomic(`${dir}/${STATE_FILE}`, await encodeState(state));
    // Later diffs build on this snapshot's layers.
    this.#layers = state.memory.layers.map((l) => ({ ...l, file: `${abs}/${l.file}` }));
  }

  /** The pages dirtied since the last call: KVM's log (guest writes) or ours (devices). */
  #takeDirty(): Uint8Array[] {
    const m = this.machine;
    const ours = m.memory.takeDirty();
    return m.memory.regions.map((r, slot) => {
      const kvm = m.vm.getDirtyLog(slot, r.bytes.byteLength / PAGE);
      const mine = ours[slot]!;
      for (let i = 0; i < mine.length; i++) kvm[i]! |= mine[i]!;
      return kvm;
    });
  }

  /** Guest pages dirtied since the last snapshot or restore (for tests and stats). */
  dirtyPageCount(): number {
    let n = 0;
    for (const b of this.#takeDirty()) for (const x of b) for (let k = x; k; k &= k - 1) n++;
    return n;
  }

  /**
   * Restores a snapshot in this process: memory mapped copy-on-write from the memory file
   * (nothing copied up front), every saved state validated before use, disks and TAPs
   * re-attached by path (or the overrides), then resumed unless `paused`.
   */
  static async restore(dir: string, opts: RestoreOptions = {}): Promise<Vmm> {
    const started = performance.now();
    let raw: Uint8Array;
    try {
      raw = await readBounded(`${dir}/${STATE_FILE}`, MAX_STATE_BYTES, "snapshot state");
    } catch (e) {
      throw new SnapshotError(
        `Cannot read snapshot ${dir}: ${e instanceof Error ? e.message : String(e)}`,
      );
    }
    // Everything is checked before KVM, a disk, a TAP or the vsock path is touched.
    const v = await validateSnapshot(await decodeState(raw), dir, {
      ...(opts.disks ? { disks: opts.disks } : {}),
      ...(opts.taps ? { taps: opts.taps } : {}),
      diskImages: opts.diskImages !== undefined,
    });
    const { state: s, config: cfg, layers } = v;
    const validated = performance.now();
    const vmm = await Vmm.#build(
      cfg,
      {
        ...opts,
        ram: s.machine.ram,
        mmioBase: s.machine.mmioBase,
        gsis: s.machine.gsis ?? legacyVirtioGsis(s.devices.virtio.length),
      },
      layers[0]!.file,
      v.vcpus,
    );
    try {
      await applyDiffs(vmm.machine.memory, layers.slice(1));
      if (vmm.#tracking) vmm.#takeDirty(); // start clean: memory equals the layers now
      vmm.#layers = layers;
      vmm.#restoreAt = { started, validated };
      vmm.#apply(s, v.vcpus.length);
      vmm.#restoreAt.applied = performance.now();
    } catch (e) {
      await vmm.stop();
      throw e instanceof SnapshotError
        ? e
        : new SnapshotError(`Cannot restore: ${e instanceof Error ? e.message : String(e)}`);
    }
    vmm.#state = "paused";
    vmm.#watchExit();
    vmm.#logger.info("snapshot restored", { dir, layers: layers.length });
    if (!opts.paused) vmm.resume();
    return vmm;
  }

  /**
   * Applies the VM-wide and device state {@link validateSnapshot} passed (the checks here are
   * the last line); the vCPUs took theirs as their threads started (`vcpuStates`).
   */
  #apply(s: SnapshotState, vcpus: number): void {
    const m = this.machine;
    if (vcpus !== m.vcpus.length) {
      throw new SnapshotError("Cannot restore: vCPU count mismatch");
    }
    const names = this.devices.virtio.map((d) => d.name);
    const saved = s.devices.virtio.map((d) => d.name);
    if (names.join(",") !== saved.join(",")) {
      throw new SnapshotError(
        `Cannot restore: devices [${saved}] in the snapshot, [${names}] configured`,
      );
    }
    // After the vCPUs (their LAPICs included), as Firecracker orders it.
    m.vm.setIrqchip(IRQCHIP.PIC_MASTER, s.vm.pic[0]);
    m.vm.setIrqchip(IRQCHIP.PIC_SLAVE, s.vm.pic[1]);
    m.vm.setIrqchip(IRQCHIP.IOAPIC, s.vm.ioapic);
    m.vm.setPit2(s.vm.pit);
    m.vm.setClock({ clock: s.vm.clock, flags: 0, realtime: 0n, hostTsc: 0n });
    this.serial.uart.restore(s.devices.uart);
    this.devices.i8042.restore(s.devices.i8042);
    this.devices.rtc.restore(s.devices.rtc);
    for (const [i, d] of this.devices.virtio.entries()) {
      d.transport.restore(s.devices.virtio[i]!.state);
    }
    // A restore is a new generation of the VM (a resume is not): a new ID, and the edge
    // that makes the guest's GED notify its generation ID driver, which reseeds its RNG.
    const g = s.machine.vmgenid;
    if (g) {
      this.#vmgenid = g;
      m.memory.write(g.addr, crypto.getRandomValues(new Uint8Array(VMGENID_SIZE)));
      m.vm.irqLine(g.gsi, 1);
      m.vm.irqLine(g.gsi, 0);
    }
  }

  /**
   * The guest's VM generation ID (32 hex digits) where the VM has one (a kernel booted with
   * ACPI): new at every boot and at every restore, unchanged by pause and resume. Undefined
   * once the VM is stopped.
   */
  get generationId(): string | undefined {
    // After stop() the guest memory is unmapped: reading it would fault the process.
    if (!this.#vmgenid || this.#state === "stopped") return undefined;
    const b = this.machine.memory.read(this.#vmgenid.addr, VMGENID_SIZE);
    return [...b].map((x) => x.toString(16).padStart(2, "0")).join("");
  }

  /**
   * The virtual devices on the management device (`config.admin`), created by the guest's
   * driver or by {@link createAdminDevice}; empty without one.
   */
  get adminDevices(): AdminDeviceInfo[] {
    return (this.devices.admin?.transport.devices ?? []).map((v) => ({
      id: v.id,
      type: ADMIN_TYPE_NAMES[v.deviceType] ?? v.deviceType,
      deviceType: v.deviceType,
      status: v.device.status,
      origin: v.origin,
      ...(v.deviceType === DEVICE_ID.BLOCK && v.attrs.byteLength === 4
        ? { disk: new DataView(v.attrs.buffer, v.attrs.byteOffset, 4).getUint32(0, true) }
        : {}),
    }));
  }

  #admin(what: string) {
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
  createAdminDevice(spec: AdminDeviceSpec): AdminDeviceInfo {
    const t = this.#admin("create a virtual device");
    if (
      spec.type === "blk" &&
      !(Number.isInteger(spec.disk) && spec.disk >= 0 && spec.disk <= 0xffff_ffff)
    ) {
      throw new RangeError(`Cannot create a virtual blk: disk ${spec.disk} is not an index`);
    }
    const attrs = spec.type === "blk" ? new Uint8Array(4) : new Uint8Array(0);
    if (spec.type === "blk") new DataView(attrs.buffer).setUint32(0, spec.disk, true);
    const type = spec.type === "blk"
      ? DEVICE_ID.BLOCK
      : spec.type === "rng"
      ? DEVICE_ID.RNG
      : spec.type === "console"
      ? DEVICE_ID.CONSOLE
      : -1;
    try {
      const v = t.create(type, attrs);
      return this.adminDevices.find((d) => d.id === v.id)!;
    } catch (e) {
      throw new Error(`Cannot create a virtual ${spec.type}: ${(e as Error).message}`);
    }
  }

  /**
   * Destroys a virtual device from the host side: requests in flight complete first, then
   * it is reset and removed, and the guest's driver gets a DEVICE_REMOVED event.
   */
  async destroyAdminDevice(id: number): Promise<void> {
    const t = this.#admin("destroy a virtual device");
    try {
      await t.destroy(id);
    } catch (e) {
      throw new Error(`Cannot destroy virtual device ${id}: ${(e as Error).message}`);
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
  async exec(cmd: string, opts: ExecOptions = {}): Promise<ExecResult> {
    if (this.#state !== "running") throw new Error(`Cannot exec in a VM that is ${this.#state}`);
    const vsock = this.config.vsock;
    if (!vsock) {
      throw new ExecError(
        "Cannot exec: the VM has no vsock device (set config.vsock; the guest runs denovm-agent)",
      );
    }
    return await exec(vsock.path, cmd, opts);
  }

  /** Stops the VM and releases everything. Idempotent. */
  async stop(): Promise<void> {
    if (this.#state === "stopped") return;
    this.#state = "stopped";
    await this.machine.close();
    this.serial.close();
    this.#logger.debug("vm released");
  }

  /** {@link Vmm.stop}, for `await using`. */
  async [Symbol.asyncDispose](): Promise<void> {
    await this.stop();
  }

  /** The vCPUs (for tests): the machine's KVM handles. */
  get vcpuHandles(): Vcpu[] {
    return this.machine.vcpus.map((t) => t.vcpu);
  }
}

/** Caps on the files a boot reads (each far above any real one). */
const MAX_KERNEL_BYTES = 256 << 20, MAX_INITRD_BYTES = 1 << 30, MAX_STATE_BYTES = 64 << 20;

/** A kernel or initrd: a regular file under its cap (the error names the file and why). */
function readInput(path: string, what: "kernel" | "initrd"): Promise<Uint8Array> {
  return readBounded(path, what === "kernel" ? MAX_KERNEL_BYTES : MAX_INITRD_BYTES, what);
}
