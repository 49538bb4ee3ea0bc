/**
 * The kick signal (SIGUSR2) that makes a vCPU thread leave `KVM_RUN`: a listener must be
 * installed while any vCPU exists (without one, the default action ends the process; with
 * one, the signal interrupts `KVM_RUN` with EINTR), and it is removed when the last vCPU
 * goes, so the process (or a `deno test` with the op sanitizer) is left without one.
 *
 * Removing it has one trap: Deno queues each delivered signal for its listeners, and a
 * signal still queued when the last listener goes gets the default action. A kick sent
 * just before a vCPU closes can be in that queue (seen under load: the process died of
 * SIGUSR2 after the guest's last output). Every kick has reached a handler by the time its
 * vCPU's thread has answered its close (the thread ran after it); so the last release, when
 * kicks were sent, lets the event loop run a few turns, which hands the queue to the
 * listener, before it removes it.
 *
 * @module
 */

import { getpid, SIGUSR2, tgkill } from "@denovm/sys";

let users = 0;
/** Whether a kick was sent since the listener was installed. */
let kicked = false;
const ignoreKick = () => {};

/** How long the last release lets queued kicks reach the listener. */
const DRAIN_MS = 10;

/** Installs the listener (first user) or counts one more user. */
export function holdKickSignal(): void {
  if (users++ === 0) {
    Deno.addSignalListener("SIGUSR2", ignoreKick);
    kicked = false;
  }
}

/**
 * Sends the kick to thread `tid` of this process (throws, like `tgkill`, if it is gone).
 * Only while holding the listener.
 */
export function kickThread(tid: number): void {
  kicked = true;
  tgkill(getpid(), tid, SIGUSR2);
}

/** One user fewer; the last one removes the listener once queued kicks have reached it. */
export async function releaseKickSignal(): Promise<void> {
  if (users === 1 && kicked) await new Promise((r) => setTimeout(r, DRAIN_MS));
  // A vCPU that started while this waited keeps the listener.
  if (--users === 0) Deno.removeSignalListener("SIGUSR2", ignoreKick);
}
