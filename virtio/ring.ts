/** 16-bit ring index arithmetic, in one place. @module */

/** `x` modulo 2^16: every ring index and every comparison of them goes through this. */
export function wrap16(x: number): number {
  return x & 0xffff;
}

/**
 * Whether moving the index from `old` to `next` crossed `event` (virtio's
 * `vring_need_event`): true when `event` lies in [old, next) modulo 2^16.
 *
 * @example
 * ```ts
 * import { vringNeedEvent } from "./ring.ts";
 * console.assert(vringNeedEvent(5, 6, 5) === true);   // the entry at 5 was just used
 * console.assert(vringNeedEvent(7, 6, 5) === false);  // the driver waits for 7
 * console.assert(vringNeedEvent(0xffff, 1, 0xfffe) === true); // across the wrap
 * ```
 */
export function vringNeedEvent(event: number, next: number, old: number): boolean {
  return wrap16(next - event - 1) < wrap16(next - old);
}
