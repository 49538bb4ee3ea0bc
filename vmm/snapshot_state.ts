/**
 * What a snapshot's state file holds, and the check of its top-level shape (the parts are
 * validated where they are used).
 *
 * @module
 */

import type { I8042State } from "../devices/i8042.ts";
import type { UartState } from "../devices/uart.ts";
import { SnapshotError } from "../snapshot/format.ts";
import { MAX_RANGES, type MemoryLayer, PAGE } from "../snapshot/memory_file.ts";
import type { VcpuState } from "../snapshot/vcpu_state.ts";
import type { MmioState } from "../transports/mmio.ts";
import type { VmConfig } from "./config.ts";

/** The state file's name in a snapshot directory. */
export const STATE_FILE = "state.bin";

/** What a snapshot's state file holds. */
export interface SnapshotState {
  kind: "denovm-snapshot";
  config: VmConfig;
  machine: { ram: { gpa: number; size: number }[]; mmioBase: number; vcpus: number };
  vcpus: VcpuState[];
  vm: {
    pic: [Uint8Array, Uint8Array];
    ioapic: Uint8Array;
    pit: Uint8Array;
    clock: bigint;
    clockFlags: number;
  };
  devices: { uart: UartState; i8042: I8042State; virtio: { name: string; state: MmioState }[] };
  memory: { size: number; layers: MemoryLayer[] };
}

/** The top-level shape of a snapshot state (the parts are validated where they are used). */
export function checkState(x: unknown): SnapshotState {
  const s = x as SnapshotState;
  const bad = (what: string): never => {
    throw new SnapshotError(`Cannot restore: ${what}`);
  };
  if (typeof s !== "object" || s === null || s.kind !== "denovm-snapshot") {
    bad("not a denovm snapshot state");
  }
  const m = s.machine;
  if (!m || !Array.isArray(m.ram) || m.ram.length === 0 || m.ram.length > 4) {
    bad("bad machine RAM layout");
  }
  for (const r of m.ram) {
    if (
      !Number.isSafeInteger(r?.gpa) || !Number.isSafeInteger(r?.size) || r.size <= 0 ||
      r.size % 4096 || r.gpa % 4096
    ) {
      bad("bad machine RAM region");
    }
  }
  if (!Number.isSafeInteger(m.mmioBase) || m.mmioBase % 4096) bad("bad MMIO base");
  if (!Number.isInteger(m.vcpus) || m.vcpus < 1 || m.vcpus > 64) bad("bad vCPU count");
  if (!Array.isArray(s.vcpus) || s.vcpus.length !== m.vcpus) {
    bad("vCPU states do not match the vCPU count");
  }
  const v = s.vm;
  const blob = (b: unknown, n: number) => b instanceof Uint8Array && b.byteLength === n;
  if (
    !v || !Array.isArray(v.pic) || !blob(v.pic[0], 512) || !blob(v.pic[1], 512) ||
    !blob(v.ioapic, 512)
  ) {
    bad("bad irqchip state");
  }
  if (!blob(v.pit, 112)) bad("bad PIT state");
  if (typeof v.clock !== "bigint" || v.clock < 0n) bad("bad clock");
  const d = s.devices;
  if (!d || !Array.isArray(d.virtio) || !d.uart || !d.i8042) bad("bad device states");
  const mem = s.memory;
  if (
    !mem || !Number.isSafeInteger(mem.size) || !Array.isArray(mem.layers) ||
    mem.layers.length < 1 ||
    mem.layers.length > 64
  ) bad("bad memory section");
  for (const [i, l] of mem.layers.entries()) {
    if (typeof l?.file !== "string" || l.file.length === 0 || l.file.includes("\0")) {
      bad("bad memory layer file");
    }
    if (i === 0 && l.ranges !== undefined) bad("the first memory layer must be a full file");
    if (i > 0) {
      if (!Array.isArray(l.ranges) || l.ranges.length > MAX_RANGES) bad("bad diff layer ranges");
      for (const r of l.ranges!) {
        const [o, n] = Array.isArray(r) ? r : [NaN, NaN];
        if (
          !Number.isSafeInteger(o) || !Number.isSafeInteger(n) || o < 0 || n <= 0 || o % PAGE ||
          n % PAGE ||
          o + n > mem.size
        ) bad("a diff range lies outside the memory");
      }
    }
  }
  return s;
}
