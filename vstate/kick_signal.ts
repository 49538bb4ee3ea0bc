/**
 * The kick signal (SIGUSR2) that makes a vCPU thread leave `KVM_RUN`: a listener must be
 * installed while any vCPU exists (without one, the default action ends the process; with
 * one, the signal interrupts `KVM_RUN` with EINTR), and a library removes it when the last
 * vCPU goes, so its process (or a `deno test` with the op sanitizer) is left without one.
 *
 * Removing it has one trap: Deno's signal handler only writes the signal to a pipe, and a
 * thread of Deno's reads it there and calls the listeners registered at that moment, or,
 * with none left, applies the default action. A kick sent just before a vCPU closes can
 * still be in that pipe when the last listener goes (seen under load: the process died of
 * SIGUSR2 after the guest's last output, in 2-15% of `--restore` runs). So the last release
 * waits until {@link DRAIN_MS} have passed since the last kick (measured again after each
 * wait, as another vCPU may kick meanwhile), which leaves that thread ample time, though a
 * host stalled for longer could still lose the race; and a program that exits when its VMs
 * stop (the CLI) keeps the listener for its whole life ({@link keepKickSignal}).
 *
 * @module
 */

import { getpid, SIGUSR2, tgkill } from "@denovm/sys";
import { sleep } from "@denovm/sys/timer";

/** How long after the last kick the last release waits before it removes the listener. */
export const DRAIN_MS = 50;

let users = 0;
let kept = false;
/** When the last kick was sent (`performance.now()`), or -Infinity. */
let lastKick = -Infinity;
const ignoreKick = () => {};

/** Installs the listener (first user) or counts one more user. */
export function holdKickSignal(): void {
  if (users++ === 0 && !kept) Deno.addSignalListener("SIGUSR2", ignoreKick);
}

/**
 * Keeps the listener installed for the life of the process (a program that exits after its
 * VMs stop: nothing is left for a sanitizer to see, and no kick can outlive it).
 */
export function keepKickSignal(): void {
  if (kept) return;
  if (users === 0) Deno.addSignalListener("SIGUSR2", ignoreKick);
  kept = true;
}

/**
 * Sends the kick to thread `tid` of this process (throws, like `tgkill`, if it is gone).
 * Only while holding the listener.
 */
export function kickThread(tid: number): void {
  lastKick = performance.now();
  tgkill(getpid(), tid, SIGUSR2);
}

/** One user fewer; the last one removes the listener once the last kick has had time to land. */
export async function releaseKickSignal(): Promise<void> {
  if (users <= 0) return; // more releases than holds: nothing to give back
  for (;;) {
    const wait = lastKick + DRAIN_MS - performance.now();
    if (users > 1 || kept || wait <= 0) break;
    await sleep(wait);
  }
  // A vCPU that started while this waited keeps the listener.
  if (--users === 0 && !kept) Deno.removeSignalListener("SIGUSR2", ignoreKick);
}
