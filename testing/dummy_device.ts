/**
 * A dummy virtio device for testing transports and the virtio core, with failure knobs.
 * Each request's readable bytes are written back reversed into its writable buffers.
 *
 * @module
 */

import { bit, F } from "../virtio/constants.ts";
import type { DeviceContext, VirtioBackend } from "../virtio/device.ts";
import { ChainReader, ChainWriter, type DescriptorChain } from "../virtio/queue.ts";
import { serveQueue } from "../virtio/serve.ts";

/** Device type of the dummy device (not a real virtio device id). */
export const DUMMY_DEVICE_ID = 0x7ffe;
/** A device feature of the dummy: it cannot work with {@link F_DUMMY_NEEDS_B} acked alone. */
export const F_DUMMY_A = 0n;
export const F_DUMMY_NEEDS_B = 1n;
export const F_DUMMY_B = 2n;

/** Knobs of {@link DummyDevice}. */
export interface DummyOptions {
  queues?: number[];
  features?: bigint;
  /** Throw from activate(). */
  failActivation?: boolean;
  /** Hold requests in flight until {@link DummyDevice.completeAll}. */
  async?: boolean;
  /** Throw from processQueue(). */
  throwOnProcess?: boolean;
}

/** The dummy device backend. Config: u32 value (RW) at 0, u32 counter (RO) at 4. */
export class DummyDevice implements VirtioBackend {
  readonly deviceType = DUMMY_DEVICE_ID;
  readonly queueMaxSizes: number[];
  readonly features: bigint;
  readonly configSize = 8;
  ctx: DeviceContext | undefined;
  config = new Uint8Array(8);
  processed = 0;
  malformed: string[] = [];
  activations = 0;
  resets = 0;
  #held: { q: number; chain: DescriptorChain }[] = [];

  constructor(readonly opts: DummyOptions = {}) {
    this.queueMaxSizes = opts.queues ?? [16];
    this.features = opts.features ??
      (bit(F.EVENT_IDX) | bit(F.INDIRECT_DESC) | bit(F_DUMMY_A) | bit(F_DUMMY_NEEDS_B) |
        bit(F_DUMMY_B));
  }

  acceptFeatures(acked: bigint): boolean {
    // A device that assumes B whenever NEEDS_B is acked: refuses that subset without B.
    return !((acked & bit(F_DUMMY_NEEDS_B)) && !(acked & bit(F_DUMMY_B)));
  }

  readConfig(offset: number, data: Uint8Array): void {
    data.set(this.config.subarray(offset, offset + data.byteLength));
  }

  writeConfig(offset: number, data: Uint8Array): void {
    if (offset >= 4) return; // the counter is read-only
    this.config.set(data.subarray(0, 4 - offset), offset);
  }

  /** The device changes its own config (bumps the counter). */
  changeConfig(): void {
    const v = new DataView(this.config.buffer);
    v.setUint32(4, v.getUint32(4, true) + 1, true);
    this.ctx?.configChanged();
  }

  activate(ctx: DeviceContext): void {
    if (this.opts.failActivation) throw new Error("dummy activation failure");
    this.ctx = ctx;
    this.activations++;
  }

  processQueue(index: number): void {
    if (this.opts.throwOnProcess) throw new Error("dummy processing failure");
    const ctx = this.ctx!;
    serveQueue(ctx, index, (chain) => {
      if (chain.error) {
        this.malformed.push(chain.error);
        return 0;
      }
      if (this.opts.async) this.#held.push({ q: index, chain });
      else this.#complete(index, chain);
      return undefined; // #complete returns it
    });
  }

  #complete(index: number, chain: DescriptorChain): void {
    const ctx = this.ctx!;
    const r = new ChainReader(ctx.mem, chain);
    const data = r.read(r.remaining).reverse();
    const w = new ChainWriter(ctx.mem, chain);
    w.write(data.subarray(0, Math.min(data.byteLength, w.remaining)));
    ctx.queues[index]!.addUsed(ctx.mem, chain.head, w.written);
    this.processed++;
    ctx.signalUsed(index);
  }

  /** Completes every held request (async mode). */
  completeAll(): void {
    for (const { q, chain } of this.#held.splice(0)) this.#complete(q, chain);
  }

  inflight(): number {
    return this.#held.length;
  }

  reset(): void {
    this.#held = [];
    this.ctx = undefined;
    this.resets++;
  }

  save(): unknown {
    return { config: [...this.config] };
  }

  restore(state: unknown): void {
    const c = (state as { config?: unknown })?.config;
    if (
      !Array.isArray(c) || c.length !== 8 ||
      !c.every((x) => Number.isInteger(x) && x >= 0 && x < 256)
    ) {
      throw new RangeError("Cannot restore dummy device: bad config");
    }
    this.config = new Uint8Array(c);
  }
}

/** An Interrupt that counts triggers. */
export class CountingInterrupt {
  count = 0;
  trigger(): void {
    this.count++;
  }
}
