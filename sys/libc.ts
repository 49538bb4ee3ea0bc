/**
 * The libc calls the VMM needs (files, memory maps, eventfd, epoll, signals, disk I/O off
 * the calling thread; `ioctl` for the KVM package and the TUN calls), opened once per
 * thread (each Worker has its own isolate, so each opens its own handle). errno is read on
 * the calling thread right after a failed call, before any other FFI call can overwrite it.
 * The only module besides `@denovm/deno-kvm-ffi` and `memory/` that touches FFI.
 *
 * @module
 */

import { errnoName } from "./errno.ts";

/** The libc functions bound here, as `Deno.dlopen` takes them. */
const symbols = {
  ioctl: { name: "ioctl", parameters: ["i32", "u64", "buffer"], result: "i32" },
  ioctlInt: { name: "ioctl", parameters: ["i32", "u64", "u64"], result: "i32" },
  // KVM_RUN, on the hot path: numbers only (the kernel reads the request as 32 bits).
  ioctlRun: { name: "ioctl", parameters: ["i32", "u32", "pointer"], result: "i32" },
  open: { parameters: ["buffer", "i32", "u32"], result: "i32" },
  close: { parameters: ["i32"], result: "i32" },
  read: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  write: { parameters: ["i32", "buffer", "usize"], result: "isize" },
  pread: { name: "pread64", parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  pwrite: { name: "pwrite64", parameters: ["i32", "buffer", "usize", "i64"], result: "isize" },
  fdatasync: { parameters: ["i32"], result: "i32" },
  mmap: {
    parameters: ["pointer", "usize", "i32", "i32", "i32", "i64"],
    result: "pointer",
  },
  munmap: { parameters: ["pointer", "usize"], result: "i32" },
  madvise: { parameters: ["pointer", "usize", "i32"], result: "i32" },
  eventfd: { parameters: ["u32", "i32"], result: "i32" },
  epoll_create1: { parameters: ["i32"], result: "i32" },
  epoll_ctl: { parameters: ["i32", "i32", "i32", "buffer"], result: "i32" },
  epoll_wait: { parameters: ["i32", "buffer", "i32", "i32"], result: "i32" },
  gettid: { parameters: [], result: "i32" },
  getpid: { parameters: [], result: "i32" },
  tgkill: { parameters: ["i32", "i32", "i32"], result: "i32" },
  errno_location: { name: "__errno_location", parameters: [], result: "pointer" },
  setns: { parameters: ["i32", "i32"], result: "i32" },
  pipe2: { parameters: ["buffer", "i32"], result: "i32" },
  dup2: { parameters: ["i32", "i32"], result: "i32" },
  mount: { parameters: ["buffer", "buffer", "buffer", "u64", "pointer"], result: "i32" },
  umount2: { parameters: ["buffer", "i32"], result: "i32" },
  setpriority: { parameters: ["i32", "u32", "i32"], result: "i32" },
  // Disk I/O off the calling thread (Deno's blocking pool), so the device thread never
  // blocks. These return errno themselves (see the *Async wrappers), because errno is
  // per-thread and the call runs on another thread.
  preadAsync: {
    name: "pread64",
    parameters: ["i32", "pointer", "usize", "i64"],
    result: "isize",
    nonblocking: true,
  },
  pwriteAsync: {
    name: "pwrite64",
    parameters: ["i32", "pointer", "usize", "i64"],
    result: "isize",
    nonblocking: true,
  },
  // Vectored: one call for a request whose data is spread over many guest pages.
  preadvAsync: {
    name: "preadv",
    parameters: ["i32", "pointer", "i32", "i64"],
    result: "isize",
    nonblocking: true,
  },
  pwritevAsync: {
    name: "pwritev",
    parameters: ["i32", "pointer", "i32", "i64"],
    result: "isize",
    nonblocking: true,
  },
  // On this thread with RWF_NOWAIT: served from the page cache without waiting, or EAGAIN.
  // Optional: a libc older than 2.26 has no preadv2 (the calls then report ENOSYS).
  preadv2: {
    name: "preadv2",
    parameters: ["i32", "buffer", "i32", "i64", "i32"],
    result: "isize",
    optional: true,
  },
  pwritev2: {
    name: "pwritev2",
    parameters: ["i32", "buffer", "i32", "i64", "i32"],
    result: "isize",
    optional: true,
  },
  // On this thread without flags: for data a residency check found in the page cache.
  preadvSync: { name: "preadv", parameters: ["i32", "buffer", "i32", "i64"], result: "isize" },
  // Which pages of a mapping are in memory (for a file mapping: in the page cache).
  mincore: { parameters: ["usize", "usize", "buffer"], result: "i32" },
  fstatfs: { parameters: ["i32", "buffer"], result: "i32" },
  fdatasyncAsync: { name: "fdatasync", parameters: ["i32"], result: "i32", nonblocking: true },
  epollWaitAsync: {
    name: "epoll_wait",
    parameters: ["i32", "pointer", "i32", "i32"],
    result: "i32",
    nonblocking: true,
  },
  fallocateAsync: {
    name: "fallocate64",
    parameters: ["i32", "i32", "i64", "i64"],
    result: "i32",
    nonblocking: true,
  },
} as const satisfies Deno.ForeignLibraryInterface;

/** The type of the symbol table given to `Deno.dlopen` (exported as a type only). */
export type { symbols as LIBC_SYMBOLS };
/** The bound libc functions, as {@link libc} returns them. */
export type Libc = Deno.DynamicLibrary<typeof symbols>["symbols"];

// Opened when this module loads, once per thread, and kept for the thread's lifetime.
const lib: Deno.DynamicLibrary<typeof symbols> = Deno.dlopen("libc.so.6", symbols);

/** The libc symbols of this thread. */
export function libc(): Libc {
  return lib.symbols;
}

/** errno of the last failed libc call on this thread. */
export function lastErrno(): number {
  const p = libc().errno_location();
  // __errno_location() points at this thread's int errno: 4 bytes, always mapped.
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32(0);
}

/** An error from a system call, naming the call and the errno (`pread failed: EIO`). */
export class SysError extends Error {
  /** The call that failed, e.g. `KVM_CREATE_VCPU` or `mmap`. */
  readonly op: string;
  /** The numeric errno. */
  readonly errno: number;
  /** The symbolic errno, e.g. `EEXIST`. */
  readonly code: string;

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
  constructor(op: string, errno: number, detail?: string) {
    const code = errnoName(errno);
    super(`${op} failed: ${code}${detail ? ` (${detail})` : ""}`);
    this.name = "SysError";
    this.op = op;
    this.errno = errno;
    this.code = code;
  }
}

/** Throws a {@link SysError} for `op` when `ret` is negative; returns `ret` otherwise. */
export function check(op: string, ret: number): number {
  if (ret < 0) throw new SysError(op, lastErrno());
  return ret;
}

const MAP_FAILED = 0xffff_ffff_ffff_ffffn;

/** Protection and flag bits for {@link mmap}. */
export const PROT_READ = 1, PROT_WRITE = 2;
/**
 * {@link mmap} flags: MAP_SHARED writes reach the file, MAP_PRIVATE keeps them in this
 * process (copy-on-write), MAP_ANONYMOUS maps zeros instead of a file, MAP_NORESERVE
 * reserves no swap space.
 */
export const MAP_SHARED = 0x01, MAP_PRIVATE = 0x02, MAP_ANONYMOUS = 0x20, MAP_NORESERVE = 0x4000;
/** open(2) access modes and flags, for {@link openFile} (which adds O_CLOEXEC itself). */
export const O_RDONLY = 0, O_RDWR = 2, O_CLOEXEC = 0o2000000, O_NONBLOCK = 0o4000;
/** eventfd(2) flags: close on exec; fail with EAGAIN instead of blocking. */
export const EFD_CLOEXEC = 0o2000000, EFD_NONBLOCK = 0o4000;
/** madvise(2) advice: drop the pages; the next access reads zeros (anonymous) or the file. */
export const MADV_DONTNEED = 4;

/** mmap(2); throws SysError on MAP_FAILED. */
export function mmap(
  length: number,
  prot: number,
  flags: number,
  fd = -1,
  offset = 0,
): Deno.PointerObject {
  const p = libc().mmap(null, BigInt(length), prot, flags, fd, BigInt(offset));
  if (p === null || Deno.UnsafePointer.value(p) === MAP_FAILED) {
    throw new SysError("mmap", lastErrno(), `${length} bytes`);
  }
  return p;
}

/** munmap(2). */
export function munmap(p: Deno.PointerObject, length: number): void {
  check("munmap", libc().munmap(p, BigInt(length)));
}

/** open(2) with O_CLOEXEC added. */
export function openFile(path: string, flags: number, mode = 0o600): number {
  const c = new TextEncoder().encode(path + "\0");
  const fd = libc().open(c, flags | O_CLOEXEC, mode);
  if (fd < 0) throw new SysError("open", lastErrno(), path);
  return fd;
}

/** close(2); errors other than EBADF are ignored as close cannot be retried. */
export function closeFd(fd: number): void {
  libc().close(fd);
}

/** Owns one file descriptor: {@link close} closes it once, and `using` closes it too. */
export class FdHandle {
  /** The file descriptor. */
  readonly fd: number;
  #closed = false;

  /** Takes ownership of `fd`. */
  constructor(fd: number) {
    this.fd = fd;
  }

  /** Whether {@link close} ran. */
  get closed(): boolean {
    return this.#closed;
  }

  /** Closes the fd (idempotent). */
  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.fd);
  }

  /** {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** A new eventfd (close-on-exec, and non-blocking unless asked otherwise). */
export function eventfd(initval = 0, blocking = false): number {
  return check("eventfd", libc().eventfd(initval, EFD_CLOEXEC | (blocking ? 0 : EFD_NONBLOCK)));
}

const u64buf = new BigUint64Array(1);

/** Adds `value` to an eventfd's counter. */
export function eventfdWrite(fd: number, value = 1n): void {
  u64buf[0] = value;
  // In bounds: u64buf is 8 bytes, the length passed.
  const n = Number(libc().write(fd, u64buf, 8n));
  if (n !== 8) throw new SysError("write(eventfd)", lastErrno());
}

/** Reads and clears an eventfd's counter; 0 when it was zero (non-blocking fd, EAGAIN). */
export function eventfdRead(fd: number): bigint {
  u64buf[0] = 0n;
  // In bounds: u64buf is 8 bytes, the length passed.
  const n = Number(libc().read(fd, u64buf, 8n));
  if (n === 8) return u64buf[0]!;
  const e = lastErrno();
  if (e === 11) return 0n; // EAGAIN: nothing pending
  throw new SysError("read(eventfd)", e);
}

/** Moves the calling thread into the namespace `fd` refers to (`setns(2)`). */
export function setns(fd: number, nstype = 0): void {
  check("setns", libc().setns(fd, nstype));
}

/** A pipe (both ends close-on-exec): `[read end, write end]`. */
export function pipe(): [number, number] {
  const fds = new Int32Array(2);
  check("pipe2", libc().pipe2(new Uint8Array(fds.buffer), O_CLOEXEC));
  return [fds[0]!, fds[1]!];
}

/** dup2(2): makes `to` refer to what `from` refers to (closing `to` first). */
export function dup2(from: number, to: number): void {
  check("dup2", libc().dup2(from, to));
}

/** mount(2) flags: a bind mount; with MS_REC, of the whole tree below. */
export const MS_BIND = 0x1000, MS_REC = 0x4000;
/** umount2(2) flag: detach now, finish when the mount is no longer busy. */
export const MNT_DETACH = 2;

const cstr = (s: string) => new TextEncoder().encode(s + "\0");

/** mount(2) of `source` on `target` with `flags` (no file system type or data: binds). */
export function mountBind(source: string, target: string, flags = MS_BIND): void {
  const r = libc().mount(cstr(source), cstr(target), cstr(""), BigInt(flags), null);
  if (r < 0) throw new SysError("mount", lastErrno(), `${source} on ${target}`);
}

/** umount2(2) of `target`. */
export function umount(target: string, flags = 0): void {
  if (libc().umount2(cstr(target), flags) < 0) {
    throw new SysError("umount", lastErrno(), target);
  }
}

/** setpriority(2) of one thread (`PRIO_PROCESS` names a thread id on Linux): its nice value. */
export function setThreadNice(tid: number, nice: number): void {
  check("setpriority", libc().setpriority(0, tid, nice));
}

/** read(2) into `buf`; returns the byte count, or -1 for EAGAIN (non-blocking fd). */
export function readFd(fd: number, buf: Uint8Array): number {
  // In bounds: the length passed is buf's own, and the call is synchronous.
  const n = Number(
    libc().read(fd, buf as Uint8Array<ArrayBuffer>, BigInt(buf.byteLength)),
  );
  if (n >= 0) return n;
  const e = lastErrno();
  if (e === 11) return -1;
  throw new SysError("read", e);
}

/** write(2) of all of `buf` in one call; returns the byte count, or -1 for EAGAIN. */
export function writeFd(fd: number, buf: Uint8Array): number {
  // In bounds: the length passed is buf's own, and the call is synchronous.
  const n = Number(
    libc().write(fd, buf as Uint8Array<ArrayBuffer>, BigInt(buf.byteLength)),
  );
  if (n >= 0) return n;
  const e = lastErrno();
  if (e === 11) return -1;
  throw new SysError("write", e);
}

/** pwrite(2) of all of `bytes` at `offset`, retrying short writes; throws on error. */
export function pwriteAll(fd: number, bytes: Uint8Array, offset: number): void {
  let done = 0;
  while (done < bytes.byteLength) {
    const part = bytes.subarray(done) as Uint8Array<ArrayBuffer>;
    // part is a live view; the call is synchronous, so it stays valid for its duration.
    const n = Number(libc().pwrite(fd, part, BigInt(part.byteLength), BigInt(offset + done)));
    if (n <= 0) throw new SysError("pwrite", lastErrno(), `at ${offset + done}`);
    done += n;
  }
}

/** pread(2) into `buf` at `offset` on this thread; the byte count (0 at end of file). */
export function preadSync(fd: number, buf: Uint8Array, offset: number): number {
  // In bounds: the length passed is buf's own, and the call is synchronous.
  const n = Number(
    libc().pread(fd, buf as Uint8Array<ArrayBuffer>, BigInt(buf.byteLength), BigInt(offset)),
  );
  if (n < 0) throw new SysError("pread", lastErrno(), `at ${offset}`);
  return n;
}

/**
 * pread(2) into `buf` at `offset`, run on a thread of Deno's blocking pool so this thread's
 * event loop keeps running; the byte count (0 at end of file), or -1 when it failed (errno
 * belongs to the pool thread and is not visible here). `buf` must stay mapped (guest RAM
 * or a buffer the caller keeps) until the promise settles.
 */
export async function preadOffThread(fd: number, buf: Uint8Array, offset: number): Promise<number> {
  // In bounds: the length passed is buf's own; the caller keeps buf alive until it settles.
  return Number(
    await libc().preadAsync(
      fd,
      Deno.UnsafePointer.of(buf as Uint8Array<ArrayBuffer>),
      BigInt(buf.byteLength),
      BigInt(offset),
    ),
  );
}

/** pwrite(2) of `buf` at `offset` off this thread, like {@link preadOffThread}. */
export async function pwriteOffThread(
  fd: number,
  buf: Uint8Array,
  offset: number,
): Promise<number> {
  // In bounds: the length passed is buf's own; the caller keeps buf alive until it settles.
  return Number(
    await libc().pwriteAsync(
      fd,
      Deno.UnsafePointer.of(buf as Uint8Array<ArrayBuffer>),
      BigInt(buf.byteLength),
      BigInt(offset),
    ),
  );
}

/** The most iovecs one preadv/pwritev call takes (Linux's UIO_MAXIOV). */
export const IOV_MAX = 1024;
/** Bytes of one `struct iovec`. */
export const IOVEC_SIZE = 16;

/** Host addresses of the ArrayBuffers iovecs have pointed into (guest RAM, pooled buffers). */
const bufferBases = new WeakMap<ArrayBufferLike, number>();

/**
 * The host address where `ab`'s bytes start, looked up once per ArrayBuffer: an
 * ArrayBuffer's backing store never moves (mmap'd guest RAM least of all), and asking FFI
 * for each view's pointer cost more than the preadv of a 4 KiB page.
 */
function bufferBase(ab: ArrayBufferLike): number {
  let base = bufferBases.get(ab);
  if (base === undefined) {
    // Userspace addresses are below 2^47: exact as a number. (0 for an empty buffer.)
    base = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(ab as ArrayBuffer)));
    bufferBases.set(ab, base);
  }
  return base;
}

/**
 * Writes `struct iovec` entries for `bufs[first..]` into `iov`, the first one starting
 * `skip` bytes into `bufs[first]`; returns how many were written (no more than fit in `iov`
 * or {@link IOV_MAX}). Each buffer must stay mapped until the call using `iov` settles.
 */
export function fillIovecs(
  iov: Uint8Array,
  bufs: readonly Uint8Array[],
  first = 0,
  skip = 0,
): number {
  if (
    first < 0 || first > bufs.length || (first < bufs.length && (skip < 0 ||
      skip > bufs[first]!.byteLength)) ||
    (first === bufs.length && skip !== 0)
  ) {
    throw new RangeError(`fillIovecs: skip ${skip} of buffer ${first} is out of range`);
  }
  const dv = new DataView(iov.buffer, iov.byteOffset, iov.byteLength);
  const room = Math.min(IOV_MAX, Math.floor(iov.byteLength / IOVEC_SIZE));
  let n = 0;
  for (let i = first; i < bufs.length && n < room; i++) {
    const b = bufs[i]!, off = i === first ? skip : 0;
    setIovec(dv, n++, bufferBase(b.buffer) + b.byteOffset + off, b.byteLength - off);
  }
  return n;
}

/** Writes `struct iovec` number `index` of the array `view`: `len` bytes at host address `addr`. */
export function setIovec(view: DataView, index: number, addr: number, len: number): void {
  const at = index * IOVEC_SIZE;
  view.setUint32(at, addr >>> 0, true);
  view.setUint32(at + 4, Math.floor(addr / 0x1_0000_0000), true);
  view.setUint32(at + 8, len, true);
  view.setUint32(at + 12, 0, true);
}

/**
 * preadv(2) of `count` iovecs (from {@link fillIovecs}) at `offset`, off this thread like
 * {@link preadOffThread}; the byte count (0 at end of file), or -1 when it failed. `iov` and
 * the buffers it names must stay mapped until the promise settles.
 */
export function preadvOffThread(
  fd: number,
  iov: Uint8Array,
  count: number,
  offset: number,
): Promise<number> {
  return vectoredOffThread("preadv", fd, iov, count, offset);
}

/** pwritev(2) of `count` iovecs at `offset` off this thread, like {@link preadvOffThread}. */
export function pwritevOffThread(
  fd: number,
  iov: Uint8Array,
  count: number,
  offset: number,
): Promise<number> {
  return vectoredOffThread("pwritev", fd, iov, count, offset);
}

async function vectoredOffThread(
  call: "preadv" | "pwritev",
  fd: number,
  iov: Uint8Array,
  count: number,
  offset: number,
): Promise<number> {
  if (count < 1 || count > IOV_MAX || count * IOVEC_SIZE > iov.byteLength) {
    throw new RangeError(`${call}: ${count} iovecs do not fit the ${iov.byteLength}-byte array`);
  }
  const fn = call === "preadv" ? libc().preadvAsync : libc().pwritevAsync;
  // In bounds: count iovecs fit in iov (checked above); the caller keeps both mapped.
  return Number(
    await fn(fd, Deno.UnsafePointer.of(iov as Uint8Array<ArrayBuffer>), count, BigInt(offset)),
  );
}

/** preadv2(2)/pwritev2(2) flag: fail with EAGAIN rather than wait for the disk or a lock. */
export const RWF_NOWAIT = 0x8;
/** errno values the RWF_NOWAIT calls return (negated). */
export const EAGAIN = 11, EINVAL = 22, ENOSYS = 38, EOPNOTSUPP = 95;

/**
 * preadv2(2) of `count` iovecs (from {@link fillIovecs}) at `offset` with RWF_NOWAIT, on this
 * thread: only what the page cache holds right now, without waiting for the disk or a lock,
 * so it never blocks the caller for longer than the copy. The byte count (short when part of
 * the range is not cached; 0 at end of file), or a negative errno: `-EAGAIN` when nothing
 * could be read without waiting, `-EOPNOTSUPP` (or `-EINVAL`, `-ENOSYS`) where the file,
 * kernel or libc cannot do it. `iov` and its buffers must be mapped.
 */
export function preadvNowait(fd: number, iov: Uint8Array, count: number, offset: number): number {
  return vectoredNowait("preadv2", fd, iov, count, offset);
}

/**
 * pwritev2(2) of `count` iovecs at `offset` with RWF_NOWAIT, on this thread, like
 * {@link preadvNowait} (many kernels and filesystems refuse buffered writes that way:
 * `-EOPNOTSUPP`).
 */
export function pwritevNowait(fd: number, iov: Uint8Array, count: number, offset: number): number {
  return vectoredNowait("pwritev2", fd, iov, count, offset);
}

function vectoredNowait(
  call: "preadv2" | "pwritev2",
  fd: number,
  iov: Uint8Array,
  count: number,
  offset: number,
): number {
  if (count < 1 || count > IOV_MAX || count * IOVEC_SIZE > iov.byteLength) {
    throw new RangeError(`${call}: ${count} iovecs do not fit the ${iov.byteLength}-byte array`);
  }
  const fn = libc()[call];
  if (fn === null) return -ENOSYS;
  // In bounds: count iovecs fit in iov (checked above); the call is synchronous. The array
  // goes as a "buffer" parameter (V8's fast call; asking for its pointer first cost ~0.4 us)
  // and the offset as a bigint (a number there takes the slow path).
  const n = Number(fn(fd, iov as Uint8Array<ArrayBuffer>, count, BigInt(offset), RWF_NOWAIT));
  return n < 0 ? -lastErrno() : n;
}

/**
 * preadv(2) of `count` iovecs at `offset` on this thread, waiting for the disk if it must:
 * for data the caller found in the page cache ({@link mincore}) on a filesystem that refuses
 * RWF_NOWAIT. The byte count (0 at end of file) or a negative errno.
 */
export function preadvSync(fd: number, iov: Uint8Array, count: number, offset: number): number {
  if (count < 1 || count > IOV_MAX || count * IOVEC_SIZE > iov.byteLength) {
    throw new RangeError(`preadv: ${count} iovecs do not fit the ${iov.byteLength}-byte array`);
  }
  // In bounds: count iovecs fit in iov (checked above); the call is synchronous.
  const n = Number(libc().preadvSync(fd, iov as Uint8Array<ArrayBuffer>, count, BigInt(offset)));
  return n < 0 ? -lastErrno() : n;
}

/** Bytes of a page (x86-64), the unit of {@link mincore}. */
export const PAGE_SIZE = 4096;

/**
 * mincore(2): for each page of [addr, addr + length) (`addr` page-aligned, a host address
 * this process has mapped), sets bit 0 of the matching byte of `vec` when the page is in
 * memory; for a shared file mapping, when the file's page is in the page cache, whether or
 * not this process touched it (Linux reports that only to the file's owner or a process
 * that may write it; to others, only pages mapped here). 0, or a negative errno (`-ENOMEM`
 * for a range not mapped). `vec` must hold a byte per page.
 */
export function mincore(addr: number, length: number, vec: Uint8Array): number {
  const pages = Math.ceil(length / PAGE_SIZE);
  if (addr % PAGE_SIZE !== 0 || length < 0 || pages > vec.byteLength) {
    throw new RangeError(`mincore: ${length} bytes at ${addr} do not fit ${vec.byteLength} pages`);
  }
  // In bounds: vec holds a byte for each page of the range (checked above).
  const r = libc().mincore(BigInt(addr), BigInt(length), vec as Uint8Array<ArrayBuffer>);
  return r < 0 ? -lastErrno() : 0;
}

/** `f_type` values of {@link fsType}: overlayfs, tmpfs. */
export const OVERLAYFS_SUPER_MAGIC = 0x794c7630, TMPFS_MAGIC = 0x01021994;

/** The type (`f_type`, a magic number) of the filesystem `fd` lives on (fstatfs(2)). */
export function fsType(fd: number): number {
  // struct statfs is 120 bytes on x86-64; f_type (a long) comes first.
  const buf = new BigInt64Array(15);
  if (libc().fstatfs(fd, new Uint8Array(buf.buffer)) < 0) {
    throw new SysError("fstatfs", lastErrno());
  }
  return Number(buf[0]!);
}

/** fdatasync(2) off this thread; 0, or -1 when it failed. */
export async function fdatasyncOffThread(fd: number): Promise<number> {
  return await libc().fdatasyncAsync(fd);
}

/** fallocate(2) with `mode` over [offset, offset + len) off this thread; 0, or -1. */
export async function fallocateOffThread(
  fd: number,
  mode: number,
  offset: number,
  len: number,
): Promise<number> {
  return await libc().fallocateAsync(fd, mode, BigInt(offset), BigInt(len));
}

/** fallocate(2) modes. */
export const FALLOC_FL_KEEP_SIZE = 1, FALLOC_FL_PUNCH_HOLE = 2, FALLOC_FL_ZERO_RANGE = 0x10;

/** fdatasync(2). */
export function fdatasync(fd: number): void {
  check("fdatasync", libc().fdatasync(fd));
}

/** The calling thread's kernel thread id. */
export function gettid(): number {
  return libc().gettid();
}

/** This process's id. */
export function getpid(): number {
  return libc().getpid();
}

/** Sends `signal` to thread `tid` of process `pid`. */
export function tgkill(pid: number, tid: number, signal: number): void {
  check("tgkill", libc().tgkill(pid, tid, signal));
}

/** SIGUSR2 on x86-64 Linux; the signal used to kick a vCPU out of KVM_RUN. */
export const SIGUSR2 = 12;

/** `epoll_event.events` bits. */
export const EPOLLIN = 0x001, EPOLLOUT = 0x004, EPOLLERR = 0x008, EPOLLHUP = 0x010;
/** `epoll_event.events` bit: edge-triggered (report a change once, not a level). */
export const EPOLLET = 0x8000_0000;
const EPOLL_CLOEXEC = 0o2000000, EPOLL_CTL_ADD = 1, EPOLL_CTL_DEL = 2;
/** `struct epoll_event` is packed on x86-64: u32 events, u64 data. */
const EPOLL_EVENT_SIZE = 12;

/**
 * An epoll instance: register fds with a 32-bit tag, then wait (blocking this thread, so
 * call {@link wait} with a timeout of -1 only from a worker).
 *
 * @example
 * ```ts
 * import { Epoll, eventfd, eventfdWrite, closeFd, EPOLLIN } from "./libc.ts";
 * using ep = new Epoll();
 * const fd = eventfd();
 * ep.add(fd, EPOLLIN, 7);
 * eventfdWrite(fd);
 * console.assert(ep.wait(0)[0]?.tag === 7);
 * closeFd(fd);
 * ```
 */
export class Epoll extends FdHandle {
  readonly #ev = new Uint8Array(EPOLL_EVENT_SIZE);
  readonly #out: Uint8Array;
  readonly #asyncOut: Uint8Array;
  #waiting = false;

  /**
   * A new epoll instance (or one wrapping `fd`) that reports up to `maxEvents` events a
   * wait.
   */
  constructor(readonly maxEvents = 64, fd?: number) {
    super(fd ?? check("epoll_create1", libc().epoll_create1(EPOLL_CLOEXEC)));
    this.#out = new Uint8Array(EPOLL_EVENT_SIZE * maxEvents);
    this.#asyncOut = new Uint8Array(EPOLL_EVENT_SIZE * maxEvents);
  }

  /** Wraps an epoll fd created elsewhere (e.g. on another thread); close() closes it. */
  static fromFd(fd: number, maxEvents = 64): Epoll {
    return new Epoll(maxEvents, fd);
  }

  /** Watches `fd` for `events`, reporting it with `tag`. */
  add(fd: number, events: number, tag: number): void {
    const v = new DataView(this.#ev.buffer);
    v.setUint32(0, events, true);
    v.setBigUint64(4, BigInt(tag >>> 0), true);
    // In bounds: #ev is one 12-byte epoll_event, which the kernel only reads.
    check(
      "epoll_ctl",
      libc().epoll_ctl(this.fd, EPOLL_CTL_ADD, fd, this.#ev),
    );
  }

  /** Stops watching `fd`. */
  remove(fd: number): void {
    // In bounds: #ev is one epoll_event (ignored by EPOLL_CTL_DEL, but must be valid).
    check(
      "epoll_ctl",
      libc().epoll_ctl(this.fd, EPOLL_CTL_DEL, fd, this.#ev),
    );
  }

  /** Waits up to `timeoutMs` (-1: forever) and returns the ready tags; EINTR gives []. */
  wait(timeoutMs: number): { tag: number; events: number }[] {
    // In bounds: #out holds maxEvents epoll_event records, the count passed.
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
  async waitAsync(timeoutMs: number): Promise<{ tag: number; events: number }[] | null> {
    if (this.#waiting) throw new Error("Cannot wait: a waitAsync() is already pending");
    this.#waiting = true;
    try {
      // In bounds: #asyncOut holds maxEvents epoll_event records and lives with this object.
      const n = await libc().epollWaitAsync(
        this.fd,
        Deno.UnsafePointer.of(this.#asyncOut),
        this.maxEvents,
        timeoutMs,
      );
      return n < 0 ? null : decodeEvents(this.#asyncOut, n);
    } finally {
      this.#waiting = false;
    }
  }
}

function decodeEvents(buf: Uint8Array, n: number): { tag: number; events: number }[] {
  const v = new DataView(buf.buffer);
  const out = [];
  for (let i = 0; i < n; i++) {
    const o = i * EPOLL_EVENT_SIZE;
    out.push({
      events: v.getUint32(o, true),
      tag: Number(v.getBigUint64(o + 4, true) & 0xffff_ffffn),
    });
  }
  return out;
}
