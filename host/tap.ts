/**
 * A TAP network device (`/dev/net/tun` with IFF_TAP | IFF_NO_PI | IFF_VNET_HDR), the
 * backend of virtio-net: frames carry the 12-byte virtio-net header, offloads follow
 * what the guest negotiated (TUNSETOFFLOAD), and the fd is non-blocking.
 *
 * @module
 */

import {
  closeFd,
  IFF_NO_PI,
  IFF_TAP,
  IFF_VNET_HDR,
  O_NONBLOCK,
  O_RDWR,
  openFile,
  readFd,
  TUN_F,
  tunSetIff,
  tunSetOffload,
  tunSetVnetHdrSize,
  writeFd,
} from "@denovm/sys";
import type { NetBackend } from "../devices/net.ts";

export { TUN_F };

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
      tunSetIff(fd, name, IFF_TAP | IFF_NO_PI | IFF_VNET_HDR);
      tunSetVnetHdrSize(fd, 12);
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
    tunSetOffload(this.fd, flags);
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
