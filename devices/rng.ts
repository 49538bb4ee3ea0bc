/**
 * virtio-rng (device type 4): one request queue whose writable buffers are filled from
 * the host's CSPRNG (`crypto.getRandomValues`).
 *
 * @module
 */

import { bit, DEVICE_ID, F } from "../virtio/constants.ts";
import type { DeviceContext, VirtioBackend } from "../virtio/device.ts";
import { ChainWriter } from "../virtio/queue.ts";
import { serveQueue } from "../virtio/serve.ts";

/** The most entropy handed out per request (a guest may post huge buffers). */
export const RNG_MAX_PER_REQUEST = 65536;

/**
 * The virtio-rng device model.
 *
 * @example
 * ```ts
 * import { RngDevice } from "./rng.ts";
 * const rng = new RngDevice();
 * console.assert(rng.deviceType === 4);
 * ```
 */
export class RngDevice implements VirtioBackend {
  readonly deviceType = DEVICE_ID.RNG;
  readonly queueMaxSizes: number[];
  readonly features = bit(F.EVENT_IDX) | bit(F.INDIRECT_DESC);
  readonly configSize = 0;
  /** Bytes of entropy handed to the guest so far. */
  bytesServed = 0;
  #ctx: DeviceContext | undefined;
  #chunk = new Uint8Array(RNG_MAX_PER_REQUEST);

  constructor(opts: { queueSize?: number } = {}) {
    this.queueMaxSizes = [opts.queueSize ?? 256];
  }

  readConfig(): void {}
  writeConfig(): void {}

  activate(ctx: DeviceContext): void {
    this.#ctx = ctx;
  }

  processQueue(index: number): void {
    const ctx = this.#ctx;
    if (!ctx) return;
    serveQueue(ctx, index, (chain) => {
      if (chain.error) return 0;
      const w = new ChainWriter(ctx.mem, chain);
      const len = Math.min(w.remaining, RNG_MAX_PER_REQUEST);
      // getRandomValues fills at most 65536 bytes per call: exactly our cap.
      w.write(crypto.getRandomValues(this.#chunk.subarray(0, len)));
      this.bytesServed += len;
      return len;
    });
  }

  reset(): void {
    this.#ctx = undefined;
  }
}
