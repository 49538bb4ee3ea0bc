/**
 * What a snapshot's state file holds, and its validation: the whole state is checked
 * ({@link validateSnapshot}) before a restore touches any host resource.
 *
 * @module
 */

import { MMIO_GAP_END, MMIO_GAP_START } from "../boot/x86.ts";
import { I8042, type I8042State } from "../devices/i8042.ts";
import { Rtc, type RtcState } from "../devices/rtc.ts";
import { Uart, type UartState } from "../devices/uart.ts";
import { SnapshotError } from "../snapshot/format.ts";
import { MAX_RANGES, type MemoryLayer, PAGE } from "../snapshot/memory_file.ts";
import { validateVcpuState, type VcpuState } from "../snapshot/vcpu_state.ts";
import { type MmioState, MmioTransport } from "../transports/mmio.ts";
import { offeredFeatures } from "../virtio/device.ts";
import { layoutRamMap } from "../virtio/queue.ts";
import { checkDiskFiles, parseConfig, type VmConfig } from "./config.ts";
import {
  legacyVirtioGsis,
  planVirtio,
  shadowBackend,
  shadowVirtualDevices,
} from "./devices_setup.ts";
import { ManagementDevice, virtualDeviceResource } from "../devices/management.ts";

/** The state file's name in a snapshot directory. */
export const STATE_FILE = "state.bin";

/** What a snapshot's state file holds. */
export interface SnapshotState {
  kind: "denovm-snapshot";
  config: VmConfig;
  machine: {
    ram: { gpa: number; size: number }[];
    mmioBase: number;
    /** Each virtio device's GSI in window order (absent in older snapshots: 5 up). */
    gsis?: number[];
    vcpus: number;
    /**
     * Where the guest's VM generation ID is and the interrupt that announces a new one
     * (ACPI boots): a restore writes a new ID and raises it.
     */
    vmgenid?: { addr: number; gsi: number };
  };
  vcpus: VcpuState[];
  vm: {
    pic: [Uint8Array, Uint8Array];
    ioapic: Uint8Array;
    pit: Uint8Array;
    clock: bigint;
    clockFlags: number;
  };
  devices: {
    uart: UartState;
    i8042: I8042State;
    rtc: RtcState;
    virtio: { name: string; state: MmioState }[];
  };
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
  // The legacy devices' lines (PIT, i8042, cascade, COM1, RTC, i8042 AUX) are no device's.
  const legacy = [0, 1, 2, 4, 8, 12];
  const count = Array.isArray(s.devices?.virtio) ? s.devices.virtio.length : 0;
  if (m.gsis !== undefined) {
    const g = m.gsis;
    if (
      !Array.isArray(g) || g.length !== count ||
      !g.every((x) => Number.isInteger(x) && x >= 0 && x <= 23 && !legacy.includes(x)) ||
      new Set(g).size !== g.length
    ) {
      bad("bad virtio interrupt lines (one distinct GSI 0-23 per device, no legacy device's)");
    }
  }
  // Version 2 snapshots name no lines: their devices have 5 up.
  const lines: number[] = Array.isArray(m.gsis) ? m.gsis : legacyVirtioGsis(count);
  if (m.vmgenid !== undefined) {
    const g = m.vmgenid;
    const inRam = (a: number) => m.ram.some((r) => a >= r.gpa && a + 16 <= r.gpa + r.size);
    if (
      typeof g !== "object" || g === null || !Number.isSafeInteger(g.addr) || g.addr % 8 ||
      !inRam(g.addr) || !Number.isInteger(g.gsi) || g.gsi < 0 || g.gsi > 23 ||
      lines.includes(g.gsi) || legacy.includes(g.gsi)
    ) {
      bad("bad VM generation ID (address in RAM, a GSI 0-23 of its own)");
    }
  }
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
  if (!d || !Array.isArray(d.virtio) || !d.uart || !d.i8042 || !d.rtc) bad("bad device states");
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

/** A snapshot checked whole, before any host resource is touched. */
export interface ValidatedSnapshot {
  state: SnapshotState;
  /** The saved config, with the caller's disk and TAP overrides applied. */
  config: VmConfig;
  vcpus: VcpuState[];
  /** The memory layers, as absolute paths inside the snapshot directory. */
  layers: MemoryLayer[];
}

/** Caller overrides of a restore (trusted: they come from the caller, not the file). */
export interface SnapshotOverrides {
  /** Disk paths instead of the saved ones (same order and count). */
  disks?: string[];
  /** TAP names instead of the saved ones (same order and count). */
  taps?: string[];
  /** Disk images given in memory: the saved disk paths are then not opened. */
  diskImages?: boolean;
}

/** A memory layer's file: a plain name inside the snapshot directory. */
const LAYER_NAME = /^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$/;

const msg = (e: unknown) => (e instanceof Error ? e.message : String(e));

/**
 * Checks a decoded snapshot state whole: its shape, the saved config (a bad one is a
 * {@link SnapshotError}, not a usage error), the RAM layout (aligned, sorted, disjoint, out
 * of the MMIO gap, no more than the config's memory, device windows clear of RAM), every
 * vCPU, the UART, the i8042, the RTC and each virtio device (transport registers, core state and
 * the device model's own part, on inert copies of the models), the disk files, and the
 * memory layers (plain names that resolve inside `dir`, regular files of the right size).
 * Nothing is opened for writing, bound or mapped: every refusal is a SnapshotError.
 */
export async function validateSnapshot(
  raw: unknown,
  dir: string,
  overrides: SnapshotOverrides = {},
): Promise<ValidatedSnapshot> {
  const bad = (what: string): never => {
    throw new SnapshotError(`Cannot restore ${dir}: ${what}`);
  };
  const s = checkState(raw);
  let cfg: VmConfig;
  try {
    cfg = parseConfig(s.config);
  } catch (e) {
    return bad(`the saved config is invalid (${msg(e)})`);
  }
  if (overrides.disks) {
    if (overrides.disks.length !== cfg.disks.length) {
      bad(`${overrides.disks.length} disk overrides for ${cfg.disks.length} disks`);
    }
    cfg.disks = cfg.disks.map((d, i) => ({ ...d, path: overrides.disks![i]! }));
  }
  if (overrides.taps) {
    if (overrides.taps.length !== cfg.nets.length) {
      bad(`${overrides.taps.length} TAP overrides for ${cfg.nets.length} nets`);
    }
    cfg.nets = cfg.nets.map((n, i) => ({ ...n, tap: overrides.taps![i]! }));
  }

  // The machine section must describe a machine this config can have.
  const ram = s.machine.ram;
  if (s.machine.vcpus !== cfg.vcpus) {
    bad(`the machine has ${s.machine.vcpus} vCPUs, its config ${cfg.vcpus}`);
  }
  let total = 0;
  for (const [i, r] of ram.entries()) {
    if (r.gpa < 0) bad(`RAM region ${i} starts below 0`);
    const prev = ram[i - 1];
    if (prev && prev.gpa + prev.size > r.gpa) {
      bad(`RAM regions ${i - 1} and ${i} overlap or are out of order`);
    }
    if (r.gpa < MMIO_GAP_END && r.gpa + r.size > MMIO_GAP_START) {
      bad(`RAM region ${i} lies in the MMIO gap`);
    }
    total += r.size;
  }
  if (total > cfg.memMiB * 1024 * 1024) {
    bad(`the machine has ${total} bytes of RAM, its config ${cfg.memMiB} MiB`);
  }
  if (s.memory.size !== total) bad(`memory section of ${s.memory.size} bytes for ${total} of RAM`);
  const plan = planVirtio(cfg);
  const windows = { start: s.machine.mmioBase, end: s.machine.mmioBase + plan.length * 0x1000 };
  if (windows.end > MMIO_GAP_END) bad("the device windows end above 4 GiB");
  if (ram.some((r) => r.gpa < windows.end && windows.start < r.gpa + r.size)) {
    bad("the device windows overlap RAM");
  }

  const vcpus = s.vcpus.map((v, i) => {
    try {
      return validateVcpuState(v, i);
    } catch (e) {
      return bad(msg(e));
    }
  });
  const check = (what: string, f: () => void) => {
    try {
      f();
    } catch (e) {
      bad(`${what}: ${msg(e)}`);
    }
  };
  check(
    "UART",
    () =>
      new Uart(Uart.createState(), { output: () => {}, interrupt: { trigger() {} } }).restore(
        s.devices.uart,
      ),
  );
  check("i8042", () => new I8042({ onReset: () => {} }).restore(s.devices.i8042));
  check("RTC", () => Rtc.check(s.devices.rtc));
  const names = plan.map((p) => p.name), saved = s.devices.virtio.map((d) => d?.name);
  if (names.join(",") !== saved.join(",")) {
    bad(`devices [${saved}] in the snapshot, [${names}] configured`);
  }
  const map = layoutRamMap(ram);
  for (const [i, p] of plan.entries()) {
    check(p.name, () => {
      const shadow = shadowBackend(p);
      const st = s.devices.virtio[i]!.state;
      const checked = MmioTransport.check(st, {
        deviceType: shadow.deviceType,
        offered: offeredFeatures(shadow.features, false),
        queueMaxSizes: shadow.queueMaxSizes,
      }, map);
      if (checked.device.backend === undefined) return;
      if (p.kind === "admin") {
        ManagementDevice.check(
          checked.device.backend,
          map,
          shadowVirtualDevices(p.admin),
          virtualDeviceResource,
        );
      } else shadow.restore?.(checked.device.backend);
    });
  }

  if (!overrides.diskImages) {
    try {
      await checkDiskFiles(cfg.disks, cfg.admin?.disks);
    } catch (e) {
      bad(msg(e));
    }
  }

  let real: string;
  try {
    real = await Deno.realPath(dir);
  } catch (e) {
    return bad(msg(e));
  }
  const layers: MemoryLayer[] = [];
  for (const l of s.memory.layers) {
    if (!LAYER_NAME.test(l.file)) {
      bad(
        `memory layer ${
          JSON.stringify(l.file.slice(0, 80))
        } is not a file name in the snapshot directory`,
      );
    }
    const path = `${real}/${l.file}`;
    let info: Deno.FileInfo, where: string;
    try {
      where = await Deno.realPath(path);
      info = await Deno.stat(where);
    } catch {
      return bad(`memory file ${l.file} is missing`);
    }
    if (!where.startsWith(`${real}/`)) {
      bad(`memory file ${l.file} leads out of the snapshot directory`);
    }
    if (!info.isFile) bad(`memory file ${l.file} is not a regular file`);
    if (info.size !== total) {
      bad(`memory file ${l.file} is ${info.size} bytes, the snapshot needs ${total}`);
    }
    layers.push({ ...l, file: path });
  }
  return { state: s, config: cfg, vcpus, layers };
}
