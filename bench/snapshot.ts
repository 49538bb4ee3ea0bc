/**
 * `deno task bench:snapshot`: snapshot and restore times, for a 128 MiB and a 1 GiB guest
 * (the demo guest's machine, paused), printing:
 *   snapshot_create_ms_<size> N   full snapshot (memory file + state) into a temp dir
 *   restore_to_running_ms_<size> N   Vmm.restore() until the vCPUs run, in a fresh process
 *                                    (process start not counted; best of 3)
 *   diff_snapshot_ms_<size> N   diff snapshot after touching 1% of the memory
 */

import { Vmm } from "../vmm/vmm.ts";
import { benchOnKvm } from "../portable/bench.ts";

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
    let restore = Infinity;
    for (let i = 0; i < 3; i++) restore = Math.min(restore, await restoreInChild(`${dir}/full`));
    console.log(`snapshot_create_ms_${mib}mib ${create.toFixed(1)}`);
    console.log(`restore_to_running_ms_${mib}mib ${restore.toFixed(1)}`);
    console.log(`diff_snapshot_ms_${mib}mib ${diff.toFixed(1)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}

/** Runs bench/restore_child.ts on `dir`; returns its restore time in ms. */
async function restoreInChild(dir: string): Promise<number> {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./restore_child.ts", import.meta.url).pathname, dir],
    stdout: "piped",
    stderr: "inherit",
  }).output();
  const m = /restore_ms ([\d.]+)/.exec(new TextDecoder().decode(out.stdout));
  if (!out.success || !m) throw new Error(`restore child failed (exit ${out.code})`);
  return Number(m[1]);
}
