/**
 * A TAP network device (`/dev/net/tun` with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), the
 * backend of virtio-net: frames carry the 12-byte virtio-net header, offloads follow
 * what the guest negotiated (TUNSETOFFLOAD), and the fd is non-blocking.
 *
 * @module
 */

import {
  closeFd,
  KvmError,
  lastErrno,
  libc,
  O_NONBLOCK,
  O_RDWR,
  openFile,
  readFd,
  writeFd,
} from "@denovm/deno-kvm-ffi";
import type { NetBackend } from "../devices/net.ts";

const TUNSETIFF = 0x400454ca, TUNSETOFFLOAD = 0x400454d0, TUNSETVNETHDRSZ = 0x400454d8;
const IFF_TAP = 0x0002, IFF_NO_PI = 0x1000, IFF_VNET_HDR = 0x4000;
/** TUNSETOFFLOAD flags. */
export const TUN_F = { CSUM: 0x01, TSO4: 0x02, TSO6: 0x04, TSO_ECN: 0x08 } as const;

/** An open TAP device. */
export class Tap implements NetBackend {
  readonly fd: number;
  readonly name: string;
  #closed = false;

  private constructor(fd: number, name: string) {
    this.fd = fd;
    this.name = name;
  }

  /** Opens (creating if needed) the TAP interface `name` in the calling thread's netns. */
  static open(name: string): Tap {
    const enc = new TextEncoder().encode(name);
    if (enc.byteLength === 0 || enc.byteLength > 15) {
      throw new RangeError(`Cannot open TAP ${JSON.stringify(name)}: a name has 1 to 15 bytes`);
    }
    const fd = openFile("/dev/net/tun", O_RDWR | O_NONBLOCK);
    try {
      const ifr = new Uint8Array(40); // struct ifreq
      ifr.set(enc);
      new DataView(ifr.buffer).setUint16(16, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR, true);
      if (libc().ioctl(fd, BigInt(TUNSETIFF), Deno.UnsafePointer.of(ifr)) < 0) {
        throw new KvmError("TUNSETIFF", lastErrno(), name);
      }
      const sz = new Int32Array([12]);
      if (libc().ioctl(fd, BigInt(TUNSETVNETHDRSZ), Deno.UnsafePointer.of(sz)) < 0) {
        throw new KvmError("TUNSETVNETHDRSZ", lastErrno(), name);
      }
      const t = new Tap(fd, name);
      t.setOffload(0);
      return t;
    } catch (e) {
      closeFd(fd);
      throw e;
    }
  }

  /** TUNSETOFFLOAD: which offloads the guest accepts in received frames (`TUN_F` bits). */
  setOffload(flags: number): void {
    if (libc().ioctlInt(this.fd, BigInt(TUNSETOFFLOAD), BigInt(flags)) < 0) {
      throw new KvmError("TUNSETOFFLOAD", lastErrno(), this.name);
    }
  }

  /** Reads one frame (with its header) into `buf`; 0 when none is waiting. */
  read(buf: Uint8Array): number {
    const n = readFd(this.fd, buf);
    return n < 0 ? 0 : n;
  }

  /** Writes one frame (with its header); false when the TAP queue is full (dropped). */
  write(frame: Uint8Array): boolean {
    return writeFd(this.fd, frame) === frame.byteLength;
  }

  close(): void {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.fd);
  }
}
