/** Shared helpers for the KVM integration tests. @module */

import { Machine, type MachineOptions } from "../vmm/machine.ts";
import { buildGuest, GUEST_LOAD } from "./guests/build.ts";
import type { LocalDeviceSpec } from "../vmm/local_devices.ts";

/** Ports shared by the test guests (see tests/guests/common.inc). */
export const EXIT_PORT = 0x501, COUNTER_PORT = 0x510, TEST_PORT = 0x520;

/** RAM for real-mode guests: 640 KiB at 0, leaving 0xa0000-0xfffff for test MMIO. */
export const LOW_RAM = [{ gpa: 0, size: 0xa0000 }];

/**
 * Fails (not skips) when /dev/kvm is missing: these tests are the point of the tier. Set
 * DENOVM_SKIP_KVM=1 to skip them on purpose on a host without KVM.
 */
export const skipKvm = Deno.env.get("DENOVM_SKIP_KVM") === "1";

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

/** Rejects after `ms` unless `p` settles first (keeps a hung guest from hanging CI). */
export async function deadline<T>(p: Promise<T>, ms: number, what: string): Promise<T> {
  let timer: ReturnType<typeof setTimeout> | undefined;
  try {
    return await Promise.race([
      p,
      new Promise<never>((_, rej) => {
        timer = setTimeout(() => rej(new Error(`Timed out after ${ms} ms: ${what}`)), ms);
      }),
    ]);
  } finally {
    clearTimeout(timer);
  }
}
