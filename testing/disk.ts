/**
 * Test disks' shared part: moving bytes between a disk held in memory and guest buffers, as a
 * disk's `transferGuestNow` does.
 *
 * @module
 */

import type { DeviceMemory } from "../memory/guest_memory.ts";
import type { Buffer } from "../virtio/queue.ts";

/**
 * Copies the first `n` bytes of the guest buffers `bufs` (their concatenation) to `bytes` at
 * `offset` (`write`), or from there into them.
 */
export function moveGuestBytes(
  bytes: Uint8Array,
  mem: DeviceMemory,
  bufs: readonly Buffer[],
  n: number,
  offset: number,
  write: boolean,
): void {
  let pos = offset, left = n;
  for (const b of bufs) {
    if (left === 0) break;
    const k = Math.min(b.len, left);
    if (write) bytes.set(mem.read(b.addr, k), pos);
    else mem.write(b.addr, bytes.subarray(pos, pos + k));
    pos += k;
    left -= k;
  }
}
