/**
 * `deno task bench:exits`: exits per second through the real vCPU loop and buses.
 *
 * - `pio_exits_per_s`: a test guest writes a port 100000 times; the vCPU worker's local
 *   bus serves each write (no thread crossing).
 * - `mmio_exits_per_s`: a test guest stores to a device 100000 times; each store crosses
 *   to the device thread through the mailbox and reaches a device on the MMIO bus.
 * - `c_pio_exits_per_s` / `c_mmio_exits_per_s`: the same guests under a plain C KVM_RUN
 *   loop (bench/c/kvm_loop.c), when a C compiler is installed, each round right after ours;
 *   and the ratios.
 *
 * Prints one `name value` per line.
 */

import { buildGuest } from "../testing/guest_build.ts";
import { bootGuest } from "../testing/kvm_guests.ts";
import { benchOnKvm } from "../portable/bench.ts";
import { compileC } from "./c/compile.ts";

await benchOnKvm(import.meta.url);

const EXITS = 100_001; // 100000 accesses and the exit-port write

async function deno(guest: string, mmio: boolean): Promise<number> {
  await using m = await bootGuest(guest);
  let stores = 0;
  if (mmio) {
    m.mmio.register(0xd0000, 0x1000, { read: (_o, d) => d.fill(0), write: () => stores++ }, "sink");
  }
  const t0 = performance.now();
  m.run();
  const r = await m.whenExit();
  const s = (performance.now() - t0) / 1000;
  if (r.kind !== "exit" || r.code !== 0) throw new Error(`${guest}: ${JSON.stringify(r)}`);
  if (mmio && stores !== 100_000) throw new Error(`${guest}: ${stores} stores reached the device`);
  return EXITS / s;
}

async function c(guest: string): Promise<number | undefined> {
  const dir = await Deno.makeTempDir({ prefix: "denovm-bench-" });
  try {
    const exe = await compileC("kvm_loop", dir);
    if (!exe) return undefined;
    const bin = `${dir}/${guest}.bin`;
    await Deno.writeFile(bin, await buildGuest(guest));
    const out = await new Deno.Command(exe, { args: [bin] }).output();
    if (!out.success) throw new Error(`kvm_loop ${guest} failed`);
    const [exits, secs] = new TextDecoder().decode(out.stdout).trim().split(" ").map(Number);
    return exits! / secs!;
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

const rounds = Number(Deno.env.get("BENCH_ROUNDS") ?? 3);
/**
 * Best of `rounds` for ours and for the C loop, the two taking turns (ours, C, ours, C...):
 * a slow stretch of the host (the C loop alone has varied by a third between runs) then
 * falls on both, not on whichever ran during it.
 */
const bestPair = async (guest: string, mmio: boolean) => {
  let ours = 0, theirs: number | undefined;
  for (let i = 0; i < rounds; i++) {
    ours = Math.max(ours, await deno(guest, mmio));
    const v = await c(guest);
    if (v !== undefined) theirs = Math.max(theirs ?? 0, v);
  }
  return [ours, theirs] as const;
};

const [pio, cPio] = await bestPair("pio_loop", false);
const [mmio, cMmio] = await bestPair("mmio_loop", true);
console.log(`pio_exits_per_s ${Math.round(pio)}`);
console.log(`mmio_exits_per_s ${Math.round(mmio)}`);
if (cPio !== undefined && cMmio !== undefined) {
  console.log(`c_pio_exits_per_s ${Math.round(cPio)}`);
  console.log(`c_mmio_exits_per_s ${Math.round(cMmio)}`);
  console.log(`pio_vs_c ${(pio / cPio).toFixed(3)}`);
  console.log(`mmio_vs_c ${(mmio / cMmio).toFixed(3)}`);
} else {
  console.error("bench: no C compiler (cc), so no C baseline");
}
