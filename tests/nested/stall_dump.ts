/**
 * What a stalled boot was doing, from a snapshot taken when it stalled (the lane's boots run
 * ours with `--snapshot-on SIGQUIT`): each vCPU's run state, RIP, interrupt flag and the
 * interrupts its local APIC holds (in service, requested), the IOAPIC's pins that are set up
 * or pending, and the UART's interrupt state. A boot that stops printing is either a guest
 * that waits for an interrupt that never came (HLT, IF set, nothing pending) or one that
 * spins (a RIP to look up in the kernel's System.map).
 *
 * @module
 */

import { decodeState } from "../../snapshot/format.ts";
import { checkState, STATE_FILE } from "../../vmm/snapshot_state.ts";

/** KVM's multiprocessing states, by number. */
const MP_STATES = ["runnable", "uninitialized", "init-received", "halted", "sipi-received"];

/** Bits of a local APIC register bank (8 words of 32 bits, 16 bytes apart) that are set. */
export function lapicVectors(lapic: Uint8Array, offset: number): number[] {
  const v = new DataView(lapic.buffer, lapic.byteOffset, lapic.byteLength);
  const out: number[] = [];
  for (let w = 0; w < 8; w++) {
    const at = offset + 16 * w;
    if (at + 4 > lapic.byteLength) break;
    const bits = v.getUint32(at, true);
    for (let b = 0; b < 32; b++) if (bits & (1 << b)) out.push(32 * w + b);
  }
  return out;
}

/** One IOAPIC pin of `struct kvm_ioapic_state`, decoded. */
export interface IoapicPin {
  pin: number;
  vector: number;
  masked: boolean;
  level: boolean;
  remoteIrr: boolean;
  /** The pin's bit in the IOAPIC's IRR (an edge latched, or a level line asserted). */
  irr: boolean;
  dest: number;
}

/**
 * The pins of `struct kvm_ioapic_state` (base_address u64, ioregsel u32, id u32, irr u32,
 * pad u32, then 24 redirection entries of u64) that are unmasked or pending.
 */
export function ioapicPins(ioapic: Uint8Array): IoapicPin[] {
  const v = new DataView(ioapic.buffer, ioapic.byteOffset, ioapic.byteLength);
  if (ioapic.byteLength < 24 + 24 * 8) return [];
  const irr = v.getUint32(16, true);
  const out: IoapicPin[] = [];
  for (let pin = 0; pin < 24; pin++) {
    const lo = v.getUint32(24 + 8 * pin, true), hi = v.getUint32(24 + 8 * pin + 4, true);
    const p = {
      pin,
      vector: lo & 0xff,
      masked: (lo & (1 << 16)) !== 0,
      level: (lo & (1 << 15)) !== 0,
      remoteIrr: (lo & (1 << 14)) !== 0,
      irr: (irr & (1 << pin)) !== 0,
      dest: hi >>> 24,
    };
    if (!p.masked || p.irr) out.push(p);
  }
  return out;
}

/** Lines describing the snapshot in `dir` (or why it cannot be read). */
export async function describeStall(dir: string): Promise<string[]> {
  let s;
  try {
    s = checkState(await decodeState(await Deno.readFile(`${dir}/${STATE_FILE}`)));
  } catch (e) {
    return [`no snapshot to describe: ${e instanceof Error ? e.message : String(e)}`];
  }
  const lines: string[] = [];
  for (const c of s.vcpus) {
    const flags = Number(c.regs.rflags);
    lines.push(
      `vcpu ${c.id}: ${MP_STATES[c.mpState] ?? `mp_state ${c.mpState}`} rip 0x${
        c.regs.rip.toString(16)
      } IF=${(flags >> 9) & 1} in-service [${lapicVectors(c.lapic, 0x100)}] requested [${
        lapicVectors(c.lapic, 0x200)
      }]`,
    );
  }
  for (const p of ioapicPins(s.vm.ioapic)) {
    lines.push(
      `ioapic pin ${p.pin}: vector ${p.vector} ${p.level ? "level" : "edge"}${
        p.masked ? " masked" : ""
      }${p.remoteIrr ? " remote-irr" : ""}${p.irr ? " irr" : ""} dest ${p.dest}`,
    );
  }
  const u = s.devices.uart;
  lines.push(
    `uart: ier 0x${u.ier.toString(16)} mcr 0x${u.mcr.toString(16)} lcr 0x${
      u.lcr.toString(16)
    } thr-pending ${u.thrPending} rx ${u.rx.length}`,
  );
  return lines;
}
