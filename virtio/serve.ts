/**
 * The device-side queue loop every device shares: take each available chain while the
 * device may process, with notifications suppressed meanwhile, then re-enable them and
 * re-check so a buffer that raced in is not missed; one used-buffer signal at the end. One
 * pass takes at most a queue's worth of chains: a guest that keeps adding as fast as they are
 * used (it can watch the used ring without waiting for interrupts) is served again from a
 * later task, so other devices and the VMM's own work still get the thread.
 *
 * @module
 */

import type { DeviceContext } from "./device.ts";
import type { DescriptorChain, ScratchChain } from "./queue.ts";

/**
 * Serves queue `index`. `serve` handles one chain and returns the number of bytes it
 * wrote to the chain (the chain is then returned to the driver), or `undefined` when it
 * keeps the chain and returns it itself later (asynchronous devices). With `scratch`, every
 * chain is filled into it (no allocation per chain): `serve` must then keep a copy
 * (`copyChain`) of any chain it returns later, and use nothing of it after returning.
 * `endPass` runs when a pass has taken what it may, before notifications are re-enabled:
 * the device finishes what it gathered and says whether it added used entries itself.
 */
export function serveQueue(
  ctx: DeviceContext,
  index: number,
  serve: (chain: DescriptorChain) => number | undefined,
  scratch?: ScratchChain,
  endPass?: () => boolean,
): void {
  const q = ctx.queues[index]!;
  let used = false, left = q.size, capped = false;
  for (;;) {
    q.disableNotification(ctx.mem);
    while (ctx.canProcess()) {
      if (left === 0) {
        capped = true;
        break;
      }
      const chain = scratch ? (q.popInto(ctx.mem, scratch) ? scratch : null) : q.pop(ctx.mem);
      if (!chain) break;
      left--;
      const len = serve(chain);
      if (len !== undefined) {
        q.addUsed(ctx.mem, chain.head, len);
        used = true;
      }
    }
    // What the device gathered during the pass (merged requests) is done before the ring is
    // checked again.
    if (endPass?.()) used = true;
    // Capped: notifications stay off, the next pass comes from requeue.
    if (capped || !ctx.canProcess() || !q.enableNotification(ctx.mem)) break;
  }
  if (used) ctx.signalUsed(index);
  if (capped) ctx.requeue(index);
}
