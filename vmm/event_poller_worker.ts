/**
 * The event poller thread: blocks in `epoll_wait` on the VM's eventfds (ioeventfds, and
 * later tap and stdin), clears each ready eventfd, marks its fd in a shared bitmap and
 * rings the device thread's doorbell. Only this thread blocks; the device thread never does.
 *
 * @module
 */

/// <reference lib="deno.worker" />

import { Epoll, eventfdRead } from "../kvm/mod.ts";

/** The poller's start message. */
export interface PollerInit {
  epollFd: number;
  stopFd: number;
  pending: SharedArrayBuffer;
  doorbell: SharedArrayBuffer;
  /** fds that are not eventfds (tap, stdin): marked but not read here. */
  passive: SharedArrayBuffer;
}

self.onmessage = (ev: MessageEvent<PollerInit>) => {
  const m = ev.data;
  const ep = Epoll.fromFd(m.epollFd);
  const pending = new Int32Array(m.pending);
  const passive = new Int32Array(m.passive);
  const bell = new Int32Array(m.doorbell);
  const maxFd = pending.length * 32;
  for (;;) {
    const ready = ep.wait(-1);
    let rang = false;
    for (const { tag } of ready) {
      if (tag === m.stopFd) {
        self.postMessage("stopped");
        self.close();
        return;
      }
      if (tag >= maxFd) continue;
      const word = tag >>> 5, mask = 1 << (tag & 31);
      // Passive fds (edge-triggered) are read by their owner on the device thread.
      if (!(Atomics.load(passive, word) & mask)) {
        try {
          eventfdRead(tag);
        } catch {
          continue; // unwatched meanwhile
        }
      }
      Atomics.or(pending, word, mask);
      rang = true;
    }
    if (rang) {
      Atomics.add(bell, 0, 1);
      Atomics.notify(bell, 0);
    }
  }
};
