/** Timer helpers that never leave a pending timer behind. @module */

import { after, type Timer } from "@denovm/sys/timer";

/** Resolves with `p`'s value, or with `undefined` after `ms`; cancels its timer either way. */
export async function within<T>(p: Promise<T>, ms: number): Promise<T | undefined> {
  let timer: Timer | undefined;
  const t = new Promise<undefined>((r) => (timer = after(ms, () => r(undefined))));
  try {
    return await Promise.race([p, t]);
  } finally {
    timer?.cancel();
  }
}
