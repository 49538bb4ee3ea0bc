/** Shared helpers for the KVM integration tests. @module */

import { Machine, type MachineOptions } from "../vstate/machine.ts";
import { buildGuest, GUEST_LOAD } from "./guest_build.ts";
import type { LocalDeviceSpec } from "../vstate/local_devices.ts";

/** Ports shared by the test guests (see tests/guests/common.inc). */
export const EXIT_PORT = 0x501, COUNTER_PORT = 0x510, TEST_PORT = 0x520;

/** RAM for real-mode guests: 640 KiB at 0, leaving 0xa0000-0xfffff for test MMIO. */
export const LOW_RAM = [{ gpa: 0, size: 0xa0000 }];

/** The standard local devices: exit port and counter (its words in `counter`). */
export function standardLocal(counter: SharedArrayBuffer): LocalDeviceSpec[] {
  return [{ kind: "exit", port: EXIT_PORT }, { kind: "counter", port: COUNTER_PORT, counter }];
}

/** A machine with `guest` loaded at 0x1000 and every vCPU set to enter it in real mode. */
export async function bootGuest(
  guest: string,
  opts: Partial<MachineOptions> & { counters?: SharedArrayBuffer[] } = {},
): Promise<Machine> {
  const code = await buildGuest(guest);
  const n = opts.vcpus ?? 1;
  const counters = opts.counters ?? Array.from({ length: n }, () => new SharedArrayBuffer(8));
  const m = await Machine.create({
    ram: LOW_RAM,
    local: (id) => standardLocal(counters[id]!),
    ...opts,
  });
  m.memory.write(GUEST_LOAD, code);
  for (let id = 0; id < n; id++) {
    await m.setRealMode(id, { ip: GUEST_LOAD, sp: 0x7000 - id * 0x400 });
  }
  return m;
}

/** Where a real-mode test guest notes the wait it is in (`PROGRESS` in common.inc). */
export const PROGRESS_ADDR = 0x600;

/** "waiting at check N" for a test guest that notes its waits, else "". */
export function guestProgress(m: { memory: { readU16(gpa: number): number } }): string {
  const code = m.memory.readU16(PROGRESS_ADDR);
  return code ? ` (the guest was waiting at check ${code})` : "";
}

/**
 * Rejects after `ms` unless `p` settles first (keeps a hung guest from hanging CI).
 * `what` names the wait in the error; a function is asked only when it times out.
 */
export async function deadline<T>(
  p: Promise<T>,
  ms: number,
  what: string | (() => string),
): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => {
        timer = setTimeout(() =>
          rej(
            new Error(`Timed out after ${ms} ms: ${typeof what === "string" ? what : what()}`),
          ), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
