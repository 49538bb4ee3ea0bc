/**
 * The TUN/TAP ioctls a virtio-net backend needs (`<linux/if_tun.h>`): attach an fd from
 * `/dev/net/tun` to a TAP interface, set the virtio-net header size, and the offloads.
 *
 * @module
 */

import { lastErrno, libc, SysError } from "./libc.ts";

const TUNSETIFF = 0x400454ca, TUNSETOFFLOAD = 0x400454d0, TUNSETVNETHDRSZ = 0x400454d8;
/** `ifr_flags` bits for {@link tunSetIff}. */
export const IFF_TAP = 0x0002, IFF_NO_PI = 0x1000, IFF_VNET_HDR = 0x4000;
/** TUNSETOFFLOAD flags. */
export const TUN_F = { CSUM: 0x01, TSO4: 0x02, TSO6: 0x04, TSO_ECN: 0x08 } as const;

/** TUNSETIFF: attaches `fd` to the interface `name` (created if needed) with `flags`. */
export function tunSetIff(fd: number, name: string, flags: number): void {
  const enc = new TextEncoder().encode(name);
  if (enc.byteLength === 0 || enc.byteLength > 15) {
    throw new RangeError(`Cannot open TAP ${JSON.stringify(name)}: a name has 1 to 15 bytes`);
  }
  const ifr = new Uint8Array(40); // struct ifreq: 16-byte name, then ifr_flags
  ifr.set(enc);
  new DataView(ifr.buffer).setUint16(16, flags, true);
  // In bounds: ifr is a whole struct ifreq (40 bytes), which the kernel reads and writes.
  if (libc().ioctl(fd, BigInt(TUNSETIFF), ifr) < 0) {
    throw new SysError("TUNSETIFF", lastErrno(), name);
  }
}

/** TUNSETVNETHDRSZ: the size of the virtio-net header on each frame. */
export function tunSetVnetHdrSize(fd: number, size: number): void {
  const sz = new Int32Array([size]);
  // In bounds: the kernel reads one int.
  if (libc().ioctl(fd, BigInt(TUNSETVNETHDRSZ), sz) < 0) {
    throw new SysError("TUNSETVNETHDRSZ", lastErrno());
  }
}

/** TUNSETOFFLOAD: which offloads received frames may carry ({@link TUN_F} bits). */
export function tunSetOffload(fd: number, flags: number): void {
  if (libc().ioctlInt(fd, BigInt(TUNSETOFFLOAD), BigInt(flags)) < 0) {
    throw new SysError("TUNSETOFFLOAD", lastErrno());
  }
}
