/**
 * `deno task bench:snapshot`: snapshot and restore times, for a 128 MiB and a 1 GiB guest
 * (the demo guest's machine, paused), printing:
 *   snapshot_create_ms_<size> N   full snapshot (memory file + state) into a temp dir
 *   restore_to_running_ms_<size> N   Vmm.restore() until the vCPUs run (same process, vCPU
 *                                    thread started ahead as at process start)
 *   diff_snapshot_ms_<size> N   diff snapshot after touching 1% of the memory
 */

import { Vmm } from "../vmm/vmm.ts";
import { prewarmVcpuWorkers } from "../vmm/worker_pool.ts";

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
    // A restoring process starts its vCPU thread at process start (cli.ts does): do the same.
    prewarmVcpuWorkers(1);
    await new Promise((r) => setTimeout(r, 100));
    t = performance.now();
    const restored = await Vmm.restore(`${dir}/full`, { output: () => {} });
    const restore = performance.now() - t;
    await restored.stop();
    console.log(`snapshot_create_ms_${mib}mib ${create.toFixed(1)}`);
    console.log(`restore_to_running_ms_${mib}mib ${restore.toFixed(1)}`);
    console.log(`diff_snapshot_ms_${mib}mib ${diff.toFixed(1)}`);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
}
