/**
 * The device thread's side of the event poller: watch an fd with a callback; the poller
 * thread marks it ready and rings the doorbell; {@link EventPoller.dispatch} (called on
 * each doorbell wake) runs the callbacks on the device thread.
 *
 * @module
 */

import { closeFd, Epoll, EPOLLET, EPOLLIN, eventfd, eventfdWrite } from "../kvm/mod.ts";
import type { PollerInit } from "./event_poller_worker.ts";
import { within } from "./timeout.ts";

const MAX_FD = 4096;

/** Watches fds on a poller thread and runs callbacks on the device thread. */
export class EventPoller {
  readonly #ep = new Epoll();
  readonly #stopFd = eventfd();
  readonly #pending = new Int32Array(new SharedArrayBuffer(MAX_FD / 8));
  readonly #passive = new Int32Array(new SharedArrayBuffer(MAX_FD / 8));
  readonly #callbacks = new Map<number, () => void>();
  #worker: Worker | undefined;

  constructor(doorbell: SharedArrayBuffer) {
    this.#ep.add(this.#stopFd, EPOLLIN, this.#stopFd);
    this.#worker = new Worker(new URL("./event_poller_worker.ts", import.meta.url), {
      type: "module",
    });
    const init: PollerInit = {
      epollFd: this.#ep.fd,
      stopFd: this.#stopFd,
      pending: this.#pending.buffer as SharedArrayBuffer,
      doorbell,
      passive: this.#passive.buffer as SharedArrayBuffer,
    };
    this.#worker.postMessage(init);
  }

  /**
   * Calls `fn` on the device thread whenever `fd` becomes readable. An eventfd is cleared
   * by the poller; with `passive` (tap, stdin) the fd is watched edge-triggered and `fn`
   * must read it until EAGAIN.
   */
  watch(fd: number, fn: () => void, opts: { passive?: boolean } = {}): void {
    if (fd < 0 || fd >= MAX_FD) throw new RangeError(`Cannot watch fd ${fd}: above ${MAX_FD}`);
    if (this.#callbacks.has(fd)) throw new RangeError(`Cannot watch fd ${fd}: already watched`);
    const word = fd >>> 5, mask = 1 << (fd & 31);
    if (opts.passive) Atomics.or(this.#passive, word, mask);
    else Atomics.and(this.#passive, word, ~mask);
    this.#callbacks.set(fd, fn);
    this.#ep.add(fd, EPOLLIN | (opts.passive ? EPOLLET : 0), fd);
  }

  /** Stops watching `fd` (the fd stays open; its owner closes it). */
  unwatch(fd: number): void {
    if (!this.#callbacks.delete(fd)) return;
    if (!this.#worker) return; // closed: the epoll fd is gone already
    this.#ep.remove(fd);
    Atomics.and(this.#pending, fd >>> 5, ~(1 << (fd & 31)));
  }

  /** Runs the callbacks of every fd marked ready. Call on each doorbell wake. */
  dispatch(): void {
    for (let w = 0; w < this.#pending.length; w++) {
      if (Atomics.load(this.#pending, w) === 0) continue;
      let bits = Atomics.exchange(this.#pending, w, 0);
      while (bits) {
        const b = 31 - Math.clz32(bits);
        bits &= ~(1 << b);
        this.#callbacks.get(w * 32 + b)?.();
      }
    }
  }

  /** Stops the poller thread and closes the epoll fd. */
  async close(): Promise<void> {
    const w = this.#worker;
    if (!w) return;
    this.#worker = undefined;
    const stopped = new Promise<void>((r) => (w.onmessage = () => r()));
    eventfdWrite(this.#stopFd);
    await within(stopped, 1000);
    w.terminate();
    this.#ep.close();
    closeFd(this.#stopFd);
    this.#callbacks.clear();
  }
}
