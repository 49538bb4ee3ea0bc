/**
 * Typed wrappers over the `/dev/kvm` ioctls: {@link Kvm} (system), {@link Vm} and
 * {@link Vcpu}. No VMM logic lives here.
 *
 * @module
 */

import { IOCTL, type IoctlName, IOEVENTFD_FLAG, IRQFD_FLAG } from "./consts.ts";
import { decodeExit, type VcpuExit } from "./exit.ts";
import {
  closeFd,
  FdHandle,
  lastErrno,
  libc,
  MAP_SHARED,
  mmap,
  munmap,
  O_RDWR,
  openFile,
  PROT_READ,
  PROT_WRITE,
  SysError,
} from "@denovm/sys";
import {
  CLOCK_DATA_SIZE,
  type ClockData,
  CPUID2_HEADER_SIZE,
  CPUID_ENTRY_SIZE,
  type CpuidEntry,
  type DebugRegs,
  DEBUGREGS_SIZE,
  decodeClock,
  decodeCpuid,
  decodeDebugRegs,
  decodeFpu,
  decodeMsrs,
  decodeRegs,
  decodeSregs,
  decodeXcrs,
  DIRTY_LOG_SIZE,
  encodeClock,
  encodeCpuid,
  encodeDebugRegs,
  encodeFpu,
  encodeMsrs,
  encodeRegs,
  encodeSregs,
  encodeXcrs,
  type Fpu,
  FPU_SIZE,
  IOEVENTFD_SIZE,
  IRQ_LEVEL_SIZE,
  IRQCHIP_DATA_OFFSET,
  IRQCHIP_SIZE,
  IRQFD_SIZE,
  LAPIC_SIZE,
  MEMORY_REGION_SIZE,
  type MsrEntry,
  PIT_CONFIG_SIZE,
  PIT_STATE2_SIZE,
  type Regs,
  REGS_SIZE,
  RUN,
  type Sregs,
  SREGS_SIZE,
  VCPU_EVENTS_SIZE,
  type Xcrs,
  XCRS_SIZE,
  XSAVE_SIZE,
} from "./structs.ts";

/** A KVM ioctl failed: names the request and the errno (`KVM_CREATE_VCPU failed: EEXIST`). */
export class KvmError extends SysError {
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
  constructor(op: string, errno: number, detail?: string) {
    super(op, errno, detail);
    this.name = "KvmError";
  }
}

const EINTR = 4, E2BIG = 7, EAGAIN = 11;

function ptr(b: Uint8Array | null): Deno.PointerValue {
  return b === null ? null : Deno.UnsafePointer.of(b as Uint8Array<ArrayBuffer>);
}

/**
 * Where ioctls are recorded, when `DENOVM_KVM_TRACE` names a file (and env access is
 * granted): each successful ioctl appends `u32 role (0 /dev/kvm, 1 the VM, 2+id a vCPU),
 * u32 request, u32 kind (0 struct, 1 integer), u32 length, u64 integer argument, the struct's
 * bytes` (little-endian). For benchmarks: `bench/c/kvm_restore.c` replays a restore's
 * recording as the floor of what a restore costs. Read once per thread, at load.
 */
const TRACE: string | undefined = (() => {
  try {
    if (
      Deno.permissions.querySync({ name: "env", variable: "DENOVM_KVM_TRACE" }).state !== "granted"
    ) {
      return undefined;
    }
    return Deno.env.get("DENOVM_KVM_TRACE") || undefined;
  } catch {
    return undefined;
  }
})();
/** Each traced fd's role (see {@link TRACE}). */
const traceRoles = new Map<number, number>();

function traceRole(fd: number, role: number): void {
  if (TRACE) traceRoles.set(fd, role);
}

function record(fd: number, req: number, arg: Uint8Array | null, int: number | bigint): void {
  const body = arg ?? new Uint8Array(0);
  const rec = new Uint8Array(24 + body.byteLength), v = new DataView(rec.buffer);
  v.setUint32(0, traceRoles.get(fd) ?? 0xffff_ffff, true);
  v.setUint32(4, req >>> 0, true);
  v.setUint32(8, arg === null ? 1 : 0, true);
  v.setUint32(12, body.byteLength, true);
  v.setBigUint64(16, BigInt.asUintN(64, BigInt(int)), true);
  rec.set(body, 24);
  Deno.writeFileSync(TRACE!, rec, { append: true });
}

/** Each request number as the bigint the FFI call takes, made once. */
const requests = new Map<IoctlName, bigint>();
function request(name: IoctlName): bigint {
  let r = requests.get(name);
  if (r === undefined) requests.set(name, r = BigInt(IOCTL[name]));
  return r;
}

/** ioctl with a struct argument; throws KvmError naming the request on failure. */
function ioctl(fd: number, name: IoctlName, arg: Uint8Array | null = null): number {
  // The struct goes as a "buffer" parameter: V8's fast call, no pointer object per call.
  const ret = libc().ioctl(fd, request(name), arg as Uint8Array<ArrayBuffer> | null);
  if (TRACE && ret >= 0) record(fd, IOCTL[name], arg ?? new Uint8Array(0), 0);
  if (ret < 0) throw new KvmError(name, lastErrno());
  return ret;
}

/** An ioctl that fills a `size`-byte struct, decoded by `decode`. */
function getStruct<T>(fd: number, name: IoctlName, size: number, decode: (b: Uint8Array) => T): T {
  const b = new Uint8Array(size);
  ioctl(fd, name, b);
  return decode(b);
}

const raw = (b: Uint8Array) => b;

/** A `kvm_cpuid2` ioctl, retried with a larger buffer while KVM answers E2BIG. */
function cpuidIoctl(fd: number, name: "KVM_GET_SUPPORTED_CPUID" | "KVM_GET_CPUID2"): CpuidEntry[] {
  for (let n = 64; n <= 4096; n *= 2) {
    const b = new Uint8Array(CPUID2_HEADER_SIZE + n * CPUID_ENTRY_SIZE);
    new DataView(b.buffer).setUint32(0, n, true);
    const ret = libc().ioctl(fd, request(name), b);
    if (ret >= 0) return decodeCpuid(b);
    const e = lastErrno();
    if (e !== E2BIG) throw new KvmError(name, e);
  }
  throw new KvmError(name, E2BIG);
}

/** ioctl with an integer argument. */
function ioctlInt(fd: number, name: IoctlName, arg: number | bigint = 0): number {
  const ret = libc().ioctlInt(fd, request(name), BigInt(arg));
  if (TRACE && ret >= 0) record(fd, IOCTL[name], null, arg);
  if (ret < 0) throw new KvmError(name, lastErrno());
  return ret;
}

/**
 * The KVM system handle (`/dev/kvm`).
 *
 * @example
 * ```ts ignore
 * import { Kvm } from "./kvm.ts";
 * using kvm = Kvm.open();
 * console.log(kvm.apiVersion()); // 12
 * ```
 */
export class Kvm extends FdHandle {
  private constructor(fd: number) {
    super(fd);
    traceRole(fd, 0);
  }

  /** Opens `/dev/kvm` (or `path`) and checks the API version is 12. */
  static open(path = "/dev/kvm"): Kvm {
    const kvm = new Kvm(openFile(path, O_RDWR));
    const v = kvm.apiVersion();
    if (v !== 12) {
      kvm.close();
      throw new Error(`Cannot use ${path}: KVM API version ${v}, expected 12`);
    }
    return kvm;
  }

  /** `KVM_GET_API_VERSION`. */
  apiVersion(): number {
    return ioctlInt(this.fd, "KVM_GET_API_VERSION");
  }

  /** `KVM_CHECK_EXTENSION`: 0 when unsupported, else a capability-specific value. */
  checkExtension(cap: number): number {
    return ioctlInt(this.fd, "KVM_CHECK_EXTENSION", cap);
  }

  /** `KVM_GET_VCPU_MMAP_SIZE`: bytes to map for each vCPU's `kvm_run`. */
  vcpuMmapSize(): number {
    return ioctlInt(this.fd, "KVM_GET_VCPU_MMAP_SIZE");
  }

  /** `KVM_GET_SUPPORTED_CPUID`: the CPUID leaves KVM can present to a guest. */
  supportedCpuid(): CpuidEntry[] {
    return cpuidIoctl(this.fd, "KVM_GET_SUPPORTED_CPUID");
  }

  /** `KVM_GET_MSR_INDEX_LIST`: the MSRs KVM saves and restores for a vCPU. */
  msrIndexList(): number[] {
    const probe = new Uint8Array(4);
    const ret = libc().ioctl(this.fd, request("KVM_GET_MSR_INDEX_LIST"), probe);
    const n = new DataView(probe.buffer).getUint32(0, true);
    if (ret < 0 && lastErrno() !== E2BIG) throw new KvmError("KVM_GET_MSR_INDEX_LIST", lastErrno());
    const b = new Uint8Array(4 + 4 * n);
    new DataView(b.buffer).setUint32(0, n, true);
    ioctl(this.fd, "KVM_GET_MSR_INDEX_LIST", b);
    const v = new DataView(b.buffer);
    const count = v.getUint32(0, true);
    return Array.from({ length: count }, (_, i) => v.getUint32(4 + 4 * i, true));
  }

  /** `KVM_CREATE_VM`. */
  createVm(): Vm {
    return new Vm(ioctlInt(this.fd, "KVM_CREATE_VM", 0), this.vcpuMmapSize());
  }
}

/** One guest memory slot (`struct kvm_userspace_memory_region`). */
export interface MemoryRegion {
  /** `slot`: the slot number; setting a slot again replaces it (size 0 deletes it). */
  slot: number;
  /** `guest_phys_addr`: where the slot starts in guest-physical memory. */
  guestPhysAddr: number;
  /** `memory_size`: bytes in the slot (a multiple of the page size). */
  size: number;
  /** Host virtual address of the backing mapping. */
  userspaceAddr: bigint;
  /** `MEM_FLAG` bits, e.g. `LOG_DIRTY_PAGES`. */
  flags?: number;
}

/** Options of {@link Vm.ioeventfd}. */
export interface IoeventfdOptions {
  /** Guest-physical address (MMIO) or port (PIO). */
  addr: number;
  /** Access width that triggers: 1, 2, 4 or 8 (0 = any, with KVM_CAP_IOEVENTFD_ANY_LENGTH). */
  len: number;
  /** The eventfd to signal. */
  fd: number;
  /** Only trigger when the written value equals this. */
  datamatch?: number;
  /** A port instead of an MMIO address. */
  pio?: boolean;
  /** Remove a previous registration with the same parameters. */
  deassign?: boolean;
}

/** A virtual machine (`KVM_CREATE_VM` fd). */
export class Vm extends FdHandle {
  /** Bytes of each vCPU's `kvm_run` mapping. */
  readonly runSize: number;
  readonly #irqLevel = new Uint8Array(IRQ_LEVEL_SIZE);
  readonly #irqLevelView = new DataView(this.#irqLevel.buffer);

  /** Wraps an existing VM fd (e.g. passed to a worker). Close every vCPU before it. */
  constructor(fd: number, runSize: number) {
    super(fd);
    this.runSize = runSize;
    traceRole(fd, 1);
  }

  /** `KVM_CHECK_EXTENSION` on the VM (answers may differ per VM). */
  checkExtension(cap: number): number {
    return ioctlInt(this.fd, "KVM_CHECK_EXTENSION", cap);
  }

  /** `KVM_SET_USER_MEMORY_REGION`; a size of 0 deletes the slot. */
  setUserMemoryRegion(r: MemoryRegion): void {
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
  setTssAddr(addr: number): void {
    ioctlInt(this.fd, "KVM_SET_TSS_ADDR", addr);
  }

  /** `KVM_SET_IDENTITY_MAP_ADDR`: one page for the EPT identity map (Intel). */
  setIdentityMapAddr(addr: number): void {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(addr), true);
    ioctl(this.fd, "KVM_SET_IDENTITY_MAP_ADDR", b);
  }

  /** `KVM_CREATE_IRQCHIP`: in-kernel PIC pair, IOAPIC and per-vCPU LAPICs. */
  createIrqchip(): void {
    ioctl(this.fd, "KVM_CREATE_IRQCHIP");
  }

  /** `KVM_GET_IRQCHIP`: 512 bytes of state for chip 0 (PIC master), 1 (slave), 2 (IOAPIC). */
  getIrqchip(chipId: number): Uint8Array {
    const b = new Uint8Array(IRQCHIP_SIZE);
    new DataView(b.buffer).setUint32(0, chipId, true);
    ioctl(this.fd, "KVM_GET_IRQCHIP", b);
    return b.slice(IRQCHIP_DATA_OFFSET);
  }

  /** `KVM_SET_IRQCHIP`. */
  setIrqchip(chipId: number, state: Uint8Array): void {
    if (state.byteLength !== IRQCHIP_SIZE - IRQCHIP_DATA_OFFSET) {
      throw new RangeError(`Cannot set irqchip ${chipId}: state is ${state.byteLength} bytes`);
    }
    const b = new Uint8Array(IRQCHIP_SIZE);
    new DataView(b.buffer).setUint32(0, chipId, true);
    b.set(state, IRQCHIP_DATA_OFFSET);
    ioctl(this.fd, "KVM_SET_IRQCHIP", b);
  }

  /** `KVM_CREATE_PIT2` (flags: 1 = KVM_PIT_SPEAKER_DUMMY). */
  createPit2(flags = 0): void {
    const b = new Uint8Array(PIT_CONFIG_SIZE);
    new DataView(b.buffer).setUint32(0, flags, true);
    ioctl(this.fd, "KVM_CREATE_PIT2", b);
  }

  /** `KVM_GET_PIT2`: raw `struct kvm_pit_state2`. */
  getPit2(): Uint8Array {
    return getStruct(this.fd, "KVM_GET_PIT2", PIT_STATE2_SIZE, raw);
  }

  /** `KVM_SET_PIT2`. */
  setPit2(state: Uint8Array): void {
    if (state.byteLength !== PIT_STATE2_SIZE) {
      throw new RangeError(`Cannot set PIT state: ${state.byteLength} bytes, need 112`);
    }
    ioctl(this.fd, "KVM_SET_PIT2", state.slice());
  }

  /** `KVM_GET_CLOCK`. */
  getClock(): ClockData {
    return getStruct(this.fd, "KVM_GET_CLOCK", CLOCK_DATA_SIZE, decodeClock);
  }

  /** `KVM_SET_CLOCK`. */
  setClock(c: ClockData): void {
    ioctl(this.fd, "KVM_SET_CLOCK", encodeClock(c));
  }

  /** `KVM_IRQ_LINE`: drive a GSI of the in-kernel irqchip high (1) or low (0). */
  irqLine(irq: number, level: number): void {
    // One struct per VM, reused: the call is synchronous (a UART pulses its line twice per
    // interrupt, on a vCPU thread).
    const b = this.#irqLevel, v = this.#irqLevelView;
    v.setUint32(0, irq, true);
    v.setUint32(4, level, true);
    ioctl(this.fd, "KVM_IRQ_LINE", b);
  }

  /** `KVM_IRQFD`: writes to `fd` inject GSI `gsi` (edge) without leaving the kernel. */
  irqfd(fd: number, gsi: number, opts: { deassign?: boolean; resampleFd?: number } = {}): void {
    const b = new Uint8Array(IRQFD_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, fd, true);
    v.setUint32(4, gsi, true);
    let flags = opts.deassign ? IRQFD_FLAG.DEASSIGN : 0;
    if (opts.resampleFd !== undefined) {
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
  registerCoalesced(z: { addr: number; size: number; pio?: boolean }, unregister = false): void {
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, BigInt(z.addr), true);
    v.setUint32(8, z.size, true);
    v.setUint32(12, z.pio ? 1 : 0, true);
    ioctl(this.fd, unregister ? "KVM_UNREGISTER_COALESCED_MMIO" : "KVM_REGISTER_COALESCED_MMIO", b);
  }

  /** `KVM_IOEVENTFD`: a guest write to `addr` signals `fd` instead of exiting. */
  ioeventfd(o: IoeventfdOptions): void {
    const b = new Uint8Array(IOEVENTFD_SIZE);
    const v = new DataView(b.buffer);
    let flags = 0;
    if (o.datamatch !== undefined) {
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
  getDirtyLog(slot: number, pages: number): Uint8Array {
    const bitmap = new Uint8Array(Math.ceil(pages / 64) * 8);
    const b = new Uint8Array(DIRTY_LOG_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, slot, true);
    v.setBigUint64(8, Deno.UnsafePointer.value(ptr(bitmap)), true);
    ioctl(this.fd, "KVM_GET_DIRTY_LOG", b);
    return bitmap;
  }

  /** `KVM_CREATE_VCPU` and the mapping of its `kvm_run` page. */
  createVcpu(id: number): Vcpu {
    const fd = ioctlInt(this.fd, "KVM_CREATE_VCPU", id);
    let run: Deno.PointerObject;
    try {
      run = mmap(this.runSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    } catch (e) {
      closeFd(fd);
      throw e;
    }
    return new Vcpu(fd, id, Deno.UnsafePointer.value(run), this.runSize, true);
  }
}

/** A virtual CPU. Its ioctls are best issued from one thread (its vCPU worker). */
export class Vcpu {
  /** The vCPU file descriptor. */
  readonly fd: number;
  /** The vCPU id (APIC id). */
  readonly id: number;
  /** Host address of the `kvm_run` mapping (post it to a worker to rebuild the Vcpu). */
  readonly runAddr: bigint;
  /** Bytes in the `kvm_run` mapping. */
  readonly runSize: number;
  /** The run page as bytes (zero-copy). */
  readonly runPage: Uint8Array;
  readonly #dv: DataView;
  readonly #owner: boolean;
  #closed = false;

  /**
   * Wraps an existing vCPU fd and its `kvm_run` mapping. `owner` decides whether
   * {@link close} unmaps and closes them.
   */
  constructor(fd: number, id: number, runAddr: bigint, runSize: number, owner = false) {
    this.fd = fd;
    this.id = id;
    this.runAddr = runAddr;
    this.runSize = runSize;
    this.#owner = owner;
    traceRole(fd, 2 + id);
    const p = Deno.UnsafePointer.create(runAddr);
    if (p === null) throw new TypeError("Cannot wrap vCPU: null kvm_run address");
    // The mapping is runSize bytes (KVM_GET_VCPU_MMAP_SIZE) and lives until close().
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
  drainCoalesced(
    pageOffset: number,
    fn: (addr: number, data: Uint8Array, pio: boolean) => void,
  ): number {
    const base = pageOffset * 4096;
    if (base + 4096 > this.runSize) return 0;
    const max = (4096 - 8) / 24 | 0;
    const dv = this.#dv;
    let first = dv.getUint32(base, true), n = 0;
    // `last` is the kernel's; it wrote each entry before moving it (x86 keeps stores in order).
    while (first !== dv.getUint32(base + 4, true) && first < max && n <= max) {
      const e = base + 8 + 24 * first;
      const len = Math.min(dv.getUint32(e + 8, true), 8);
      const addr = dv.getUint32(e + 4, true) * 0x1_0000_0000 + dv.getUint32(e, true);
      fn(addr, this.runPage.slice(e + 16, e + 16 + len), dv.getUint32(e + 12, true) !== 0);
      first = (first + 1) % max;
      dv.setUint32(base, first, true);
      n++;
    }
    return n;
  }

  /** Whether the coalesced-write ring at `pageOffset` holds writes. */
  coalescedPending(pageOffset: number): boolean {
    const base = pageOffset * 4096;
    if (base + 4096 > this.runSize) return false;
    return this.#dv.getUint32(base, true) !== this.#dv.getUint32(base + 4, true);
  }

  /** `kvm_run.immediate_exit`: when 1, the next `KVM_RUN` returns EINTR at once. */
  get immediateExit(): number {
    return this.runPage[RUN.immediateExit]!;
  }

  set immediateExit(v: number) {
    this.runPage[RUN.immediateExit] = v;
  }

  /** `kvm_run.request_interrupt_window`. */
  set requestInterruptWindow(v: number) {
    this.runPage[RUN.requestInterruptWindow] = v;
  }

  /** `kvm_run.ready_for_interrupt_injection`. */
  get readyForInterruptInjection(): boolean {
    return this.runPage[RUN.readyForInterruptInjection] !== 0;
  }

  /** `KVM_RUN` until the next exit; EINTR (signal or immediate_exit) becomes `intr`. */
  run(): VcpuExit {
    const ret = libc().ioctlRun(this.fd, IOCTL.KVM_RUN, null);
    if (ret < 0) {
      const e = lastErrno();
      if (e === EINTR || e === EAGAIN) return { kind: "intr" };
      throw new KvmError("KVM_RUN", e);
    }
    return decodeExit(this.runPage, this.#dv);
  }

  /** `KVM_GET_REGS`. */
  getRegs(): Regs {
    return getStruct(this.fd, "KVM_GET_REGS", REGS_SIZE, decodeRegs);
  }

  /** `KVM_SET_REGS`. */
  setRegs(r: Regs): void {
    ioctl(this.fd, "KVM_SET_REGS", encodeRegs(r));
  }

  /** `KVM_GET_SREGS`. */
  getSregs(): Sregs {
    return getStruct(this.fd, "KVM_GET_SREGS", SREGS_SIZE, decodeSregs);
  }

  /** `KVM_SET_SREGS`. */
  setSregs(s: Sregs): void {
    ioctl(this.fd, "KVM_SET_SREGS", encodeSregs(s));
  }

  /** `KVM_GET_FPU` (`mxcsr` always reads 0: the kernel does not fill it). */
  getFpu(): Fpu {
    return getStruct(this.fd, "KVM_GET_FPU", FPU_SIZE, decodeFpu);
  }

  /** `KVM_SET_FPU`. The kernel ignores `mxcsr` here; set it through {@link setXsave}. */
  setFpu(f: Fpu): void {
    ioctl(this.fd, "KVM_SET_FPU", encodeFpu(f));
  }

  /** `KVM_GET_MSRS` for `indices`; throws when KVM could read only some of them. */
  getMsrs(indices: readonly number[]): MsrEntry[] {
    const b = encodeMsrs(indices.map((index) => ({ index, data: 0n })));
    const n = ioctl(this.fd, "KVM_GET_MSRS", b);
    if (n !== indices.length) {
      const bad = indices[n] ?? 0;
      throw new KvmError(
        "KVM_GET_MSRS",
        22,
        `read ${n} of ${indices.length}, MSR 0x${bad.toString(16)}`,
      );
    }
    return decodeMsrs(b, n);
  }

  /** `KVM_SET_MSRS`; throws when KVM could write only some of them. */
  setMsrs(entries: readonly MsrEntry[]): void {
    const n = ioctl(this.fd, "KVM_SET_MSRS", encodeMsrs(entries));
    if (n !== entries.length) {
      const bad = entries[n]?.index ?? 0;
      throw new KvmError(
        "KVM_SET_MSRS",
        22,
        `wrote ${n} of ${entries.length}, MSR 0x${bad.toString(16)}`,
      );
    }
  }

  /** `KVM_SET_CPUID2`. */
  setCpuid2(entries: readonly CpuidEntry[]): void {
    ioctl(this.fd, "KVM_SET_CPUID2", encodeCpuid(entries));
  }

  /** `KVM_GET_CPUID2`: the leaves set by `KVM_SET_CPUID2`. */
  getCpuid2(): CpuidEntry[] {
    return cpuidIoctl(this.fd, "KVM_GET_CPUID2");
  }

  /** `KVM_GET_LAPIC`: the 1 KiB local APIC register page. */
  getLapic(): Uint8Array {
    return getStruct(this.fd, "KVM_GET_LAPIC", LAPIC_SIZE, raw);
  }

  /** `KVM_SET_LAPIC`. */
  setLapic(state: Uint8Array): void {
    ioctl(this.fd, "KVM_SET_LAPIC", sized(state, LAPIC_SIZE, "lapic"));
  }

  /** `KVM_GET_XSAVE`, or `KVM_GET_XSAVE2` with `size` when KVM_CAP_XSAVE2 asks for more. */
  getXsave(size = XSAVE_SIZE): Uint8Array {
    const b = new Uint8Array(Math.max(size, XSAVE_SIZE));
    ioctl(this.fd, size > XSAVE_SIZE ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE", b);
    return b;
  }

  /** `KVM_SET_XSAVE` (at least 4096 bytes; larger buffers carry extended state). */
  setXsave(state: Uint8Array): void {
    if (state.byteLength < XSAVE_SIZE) {
      throw new RangeError(`Cannot set xsave: ${state.byteLength} bytes, need at least 4096`);
    }
    ioctl(this.fd, "KVM_SET_XSAVE", state.slice());
  }

  /** `KVM_GET_XCRS`. */
  getXcrs(): Xcrs {
    return getStruct(this.fd, "KVM_GET_XCRS", XCRS_SIZE, decodeXcrs);
  }

  /** `KVM_SET_XCRS`. */
  setXcrs(x: Xcrs): void {
    ioctl(this.fd, "KVM_SET_XCRS", encodeXcrs(x));
  }

  /** `KVM_GET_VCPU_EVENTS`: pending exceptions, interrupts, NMI, SMI (raw 64 bytes). */
  getVcpuEvents(): Uint8Array {
    return getStruct(this.fd, "KVM_GET_VCPU_EVENTS", VCPU_EVENTS_SIZE, raw);
  }

  /** `KVM_SET_VCPU_EVENTS`. */
  setVcpuEvents(state: Uint8Array): void {
    ioctl(this.fd, "KVM_SET_VCPU_EVENTS", sized(state, VCPU_EVENTS_SIZE, "vcpu events"));
  }

  /** `KVM_GET_MP_STATE` (see `MP_STATE`). */
  getMpState(): number {
    const b = new Uint8Array(4);
    ioctl(this.fd, "KVM_GET_MP_STATE", b);
    return new DataView(b.buffer).getUint32(0, true);
  }

  /** `KVM_SET_MP_STATE`. */
  setMpState(state: number): void {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, state, true);
    ioctl(this.fd, "KVM_SET_MP_STATE", b);
  }

  /** `KVM_GET_DEBUGREGS`. */
  getDebugRegs(): DebugRegs {
    return getStruct(this.fd, "KVM_GET_DEBUGREGS", DEBUGREGS_SIZE, decodeDebugRegs);
  }

  /** `KVM_SET_DEBUGREGS`. */
  setDebugRegs(d: DebugRegs): void {
    ioctl(this.fd, "KVM_SET_DEBUGREGS", encodeDebugRegs(d));
  }

  /**
   * `KVM_KVMCLOCK_CTRL`: tell the guest it was paused, so its soft-lockup watchdog does
   * not fire. Returns false when the guest has no kvmclock page (EINVAL).
   */
  kvmclockCtrl(): boolean {
    const ret = libc().ioctlInt(this.fd, BigInt(IOCTL.KVM_KVMCLOCK_CTRL), 0n);
    if (ret >= 0) return true;
    const e = lastErrno();
    if (e === 22) return false;
    throw new KvmError("KVM_KVMCLOCK_CTRL", e);
  }

  /** `KVM_GET_TSC_KHZ`. */
  getTscKhz(): number {
    return ioctlInt(this.fd, "KVM_GET_TSC_KHZ");
  }

  /** Unmaps `kvm_run` and closes the fd when this object owns them. */
  close(): void {
    if (this.#closed || !this.#owner) return;
    this.#closed = true;
    const p = Deno.UnsafePointer.create(this.runAddr);
    if (p !== null) munmap(p, this.runSize);
    closeFd(this.fd);
  }

  /** {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

function sized(b: Uint8Array, size: number, what: string): Uint8Array {
  if (b.byteLength !== size) {
    throw new RangeError(`Cannot set ${what}: ${b.byteLength} bytes, need ${size}`);
  }
  return b.slice();
}

/** Whether the host CPU advertises hardware virtualization (`vmx` or `svm` in cpuinfo). */
export async function hostVirtualization(): Promise<"vmx" | "svm" | "none"> {
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
