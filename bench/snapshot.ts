/**
 * `deno task bench:snapshot`: snapshot and restore times, for a 128 MiB and a 1 GiB guest
 * (the demo guest's machine, paused), printing:
 *   snapshot_create_ms_<size> N   full snapshot (memory file + state) into a temp dir
 *   restore_to_running_ms_<size> N   Vmm.restore() until the vCPUs run, in a fresh process
 *                                    (process start not counted; best of 3)
 *   diff_snapshot_ms_<size> N   diff snapshot after touching 1% of the memory
 *   restore_c_floor_ms_<size> N   the same KVM steps replayed by bench/c/kvm_restore.c (the
 *                                 restore's ioctls, recorded with DENOVM_KVM_TRACE), best of 3
 *   restore_vs_c_floor_<size> N   the ratio (goal: <= 2)
 *   restore_phase_<name>_ms_<size> N   the best restore's time by phase: validate (read and
 *                                 check the snapshot), build (VM, memory, vCPUs with their
 *                                 saved state, devices), apply (the VM's and the devices'
 *                                 saved state), resume
 * The floor needs a C compiler (cc); without one its lines are left out.
 */

import { Vmm } from "../vmm/vmm.ts";
import { benchOnKvm } from "../portable/bench.ts";
import { MEMORY_FILE } from "../snapshot/memory_file.ts";
import { compileC } from "./c/compile.ts";

await benchOnKvm(import.meta.url);

const LOOP = new Uint8Array([0xeb, 0xfe]); // jmp $: a guest that just runs

for (const mib of [128, 1024]) {
  const dir = await Deno.makeTempDir({ prefix: "denovm-bench-" });
  try {
    const vm = await Vmm.create({ memMiB: mib, console: "none" }, {
      image: { bytes: LOOP, load: 0x1000 },
      trackDirtyPages: true,
    });
    // Give the memory content (so the file is not all holes).
    const chunk = crypto.getRandomValues(new Uint8Array(65536));
    for (let a = 0x100000; a < Math.min(mib, 64) << 20; a += chunk.byteLength) {
      vm.machine.memory.write(a, chunk);
    }
    vm.start();
    await vm.pause();
    let t = performance.now();
    await vm.snapshot(`${dir}/full`);
    const create = performance.now() - t;
    vm.resume();
    await vm.pause();
    const pages = (mib << 20) / 4096;
    for (let p = 0; p < pages; p += 100) vm.machine.memory.writeU32(p * 4096, p); // 1% of the pages
    t = performance.now();
    await vm.snapshot(`${dir}/diff`, { diff: true });
    const diff = performance.now() - t;
    await vm.stop();
    // Restore in a fresh process, as `cli.ts --restore` does: best of 3.
    let restore = Infinity, phases: number[] = [];
    for (let i = 0; i < 3; i++) {
      const r = await restoreInChild(`${dir}/full`);
      if (r.ms < restore) [restore, phases] = [r.ms, r.phases];
    }
    console.log(`snapshot_create_ms_${mib}mib ${create.toFixed(1)}`);
    console.log(`restore_to_running_ms_${mib}mib ${restore.toFixed(1)}`);
    console.log(`diff_snapshot_ms_${mib}mib ${diff.toFixed(1)}`);
    ["validate", "build", "apply", "resume"].forEach((name, k) =>
      console.log(`restore_phase_${name}_ms_${mib}mib ${phases[k]?.toFixed(1) ?? "NaN"}`)
    );
    const floor = await cFloor(`${dir}/full`);
    if (floor !== undefined) {
      console.log(`restore_c_floor_ms_${mib}mib ${floor.toFixed(1)}`);
      console.log(`restore_vs_c_floor_${mib}mib ${(restore / floor).toFixed(2)}`);
    }
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/**
 * The floor: records one restore's KVM ioctls, compiles bench/c/kvm_restore.c and replays
 * them on the snapshot's memory file, best of 3; undefined without a C compiler.
 */
async function cFloor(snap: string): Promise<number | undefined> {
  const tmp = await Deno.makeTempDir({ prefix: "denovm-floor-" });
  try {
    const exe = await compileC("kvm_restore", tmp);
    if (!exe) return undefined;
    await restoreInChild(snap, { DENOVM_KVM_TRACE: `${tmp}/trace` });
    let best = Infinity;
    for (let i = 0; i < 3; i++) {
      const out = await new Deno.Command(exe, {
        args: [`${tmp}/trace`, `${snap}/${MEMORY_FILE}`],
        stderr: "piped",
      }).output();
      const m = /c_restore_ms ([\d.]+)/.exec(new TextDecoder().decode(out.stdout));
      if (!out.success || !m) {
        throw new Error(`kvm_restore failed: ${new TextDecoder().decode(out.stderr)}`);
      }
      best = Math.min(best, Number(m[1]));
      if (i === 0) {
        console.error(/c_restore_ioctls .*/.exec(new TextDecoder().decode(out.stdout))?.[0]);
      }
    }
    return best;
  } finally {
    await Deno.remove(tmp, { recursive: true });
  }
}

/** Runs bench/restore_child.ts on `dir`; returns its restore time and phases in ms. */
async function restoreInChild(
  dir: string,
  env: Record<string, string> = {},
): Promise<{ ms: number; phases: number[] }> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./restore_child.ts", import.meta.url).pathname, dir],
    stdout: "piped",
    stderr: "inherit",
    env,
  }).output();
  const text = new TextDecoder().decode(out.stdout);
  const m = /restore_ms ([\d.]+)/.exec(text);
  if (!out.success || !m) throw new Error(`restore child failed (exit ${out.code})`);
  const p = /restore_phases (.*)/.exec(text)?.[1]?.split(" ").map(Number) ?? [];
  return { ms: Number(m[1]), phases: p };
}
