/**
 * The event poller: watch an fd with a callback that runs on the device thread when the
 * fd becomes readable (ioeventfds, TAP, stdin).
 *
 * `epoll_wait` runs as a non-blocking FFI call, on a thread of Deno's blocking pool: no
 * worker isolate, so starting a VM with virtio devices costs no second `new Worker`
 * (~20 ms of the main thread here) and no isolate's memory. When the wait returns, the
 * device thread clears each ready eventfd and runs the callbacks, then waits again.
 *
 * @module
 */

import { closeFd, Epoll, EPOLLET, EPOLLIN, eventfd, eventfdRead, eventfdWrite } from "@denovm/sys";
import { sleep, within } from "@denovm/sys/timer";

const MAX_FD = 4096;

/** Watches fds from a blocking-pool thread and runs callbacks on the device thread. */
export class EventPoller {
  readonly #ep = new Epoll();
  readonly #stopFd = eventfd();
  readonly #callbacks = new Map<number, { fn: () => void; passive: boolean }>();
  #loop: Promise<void> | undefined;
  #closed = false;
  readonly #onError: ((message: string) => void) | undefined;

  /** `onError` hears of a callback that threw (the poller goes on). */
  constructor(onError?: (message: string) => void) {
    this.#onError = onError;
    this.#ep.add(this.#stopFd, EPOLLIN, this.#stopFd);
    this.#loop = this.#run();
  }

  /**
   * Calls `fn` on the device thread whenever `fd` becomes readable. An eventfd is cleared
   * by the poller; with `passive` (tap, stdin) the fd is watched edge-triggered and `fn`
   * must read it until EAGAIN.
   */
  watch(fd: number, fn: () => void, opts: { passive?: boolean } = {}): void {
    if (fd < 0 || fd >= MAX_FD) throw new RangeError(`Cannot watch fd ${fd}: above ${MAX_FD}`);
    if (this.#callbacks.has(fd)) throw new RangeError(`Cannot watch fd ${fd}: already watched`);
    this.#callbacks.set(fd, { fn, passive: opts.passive ?? false });
    this.#ep.add(fd, EPOLLIN | (opts.passive ? EPOLLET : 0), fd);
  }

  /** Stops watching `fd` (the fd stays open; its owner closes it). */
  unwatch(fd: number): void {
    if (!this.#callbacks.delete(fd)) return;
    if (this.#closed) return; // the epoll fd is gone already
    this.#ep.remove(fd);
  }

  /**
   * Handles what is ready now without waiting. The device thread calls this while it polls
   * its mailboxes (it does not return to the event loop then, so the pending wait's
   * completion would come late). An event both waits see is handled once: an eventfd's
   * callback runs only for the read that cleared it.
   */
  pollNow(): void {
    if (this.#closed || this.#callbacks.size === 0) return;
    this.#handle(this.#ep.wait(0));
  }

  /** Runs the callbacks of the ready tags; true when the stop fd was among them. */
  #handle(ready: { tag: number }[]): boolean {
    for (const { tag } of ready) {
      if (tag === this.#stopFd) return true;
      const c = this.#callbacks.get(tag);
      if (!c) continue; // unwatched meanwhile
      if (!c.passive) {
        try {
          eventfdRead(tag);
        } catch {
          continue; // already cleared (by the other wait)
        }
      }
      try {
        c.fn();
      } catch (e) {
        this.#onError?.(`fd ${tag} handler failed: ${e instanceof Error ? e.message : String(e)}`);
      }
    }
    return false;
  }

  async #run(): Promise<void> {
    let failures = 0;
    for (;;) {
      const ready = await this.#ep.waitAsync(-1);
      if (ready === null) {
        // EINTR, or worse: never spin on a broken epoll fd.
        if (++failures > 100) return;
        await sleep(failures > 3 ? 10 : 0);
        continue;
      }
      failures = 0;
      if (this.#handle(ready)) return;
    }
  }

  /** Stops polling and closes the epoll fd. */
  async close(): Promise<void> {
    if (this.#closed) return;
    this.#closed = true;
    eventfdWrite(this.#stopFd);
    await within(this.#loop!, 1000);
    this.#ep.close();
    closeFd(this.#stopFd);
    this.#callbacks.clear();
  }
}
