/**
 * `deno task bench:boot`: process start to the guest's boot marker, in a fresh process
 * each round (best of 5).
 * - With DENOVM_KERNEL (and DENOVM_INITRD) set, boots that kernel (the recipe kernel and
 *   initramfs write the marker from init) and prints `boot_to_init_ms N`. This needs a
 *   host that runs guests natively, or the nested lane.
 * - Without, boots the boot64 test guest (bzImage, the same loader path) and prints
 *   `boot64_to_marker_ms N`, which runs on any KVM host, this one included.
 * Then the warm start (issue 16): the last process boots the same machine three more times,
 * as a rig that keeps a VMM process running does (a vCPU thread started ahead with
 * `prewarmVcpuWorkers`), and prints `warm_create_to_marker_ms` (or `warm_create_to_init_ms`)
 * and `warm_create_to_first_instruction_ms`: from the `Vmm.create` call, best of 3.
 */

import { writeBootFiles } from "../testing/boot_files.ts";
import { benchOnKvm } from "../portable/bench.ts";

await benchOnKvm(import.meta.url);

const kernel = Deno.env.get("DENOVM_KERNEL");
const dir = await Deno.makeTempDir({ prefix: "denovm-bench-boot-" });
try {
  let args: string[];
  let name: string;
  if (kernel) {
    const initrd = Deno.env.get("DENOVM_INITRD");
    args = [
      "--kernel",
      kernel,
      ...(initrd ? ["--initrd", initrd] : []),
      "--mem",
      "128",
      "--cmdline",
      "console=ttyS0 reboot=k panic=1 pci=off quiet denovm.run=cG93ZXJvZmYgLWYK",
    ];
    name = "boot_to_init_ms";
  } else {
    await writeBootFiles(dir);
    args = [
      "--kernel",
      `${dir}/bzImage`,
      "--initrd",
      `${dir}/initrd`,
      "--cmdline",
      "boot64-test",
      "--mem",
      "128",
      "--rng",
    ];
    name = "boot64_to_marker_ms";
  }
  const child = new URL("./boot_child.ts", import.meta.url).pathname;
  let best = Infinity, warmBest = Infinity, firstBest = Infinity;
  for (let i = 0; i < 5; i++) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", child, ...args],
      // The last process also boots three more times, warm.
      env: { DENOVM_BENCH_WARM: i === 4 ? "3" : "0" },
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const text = new TextDecoder().decode(out.stdout);
    if (!out.success) {
      throw new Error(`boot child failed: ${new TextDecoder().decode(out.stderr).slice(-2000)}`);
    }
    const m = /^marker_ms (\d+(\.\d+)?)/m.exec(text);
    if (!m) throw new Error(`no boot marker: ${new TextDecoder().decode(out.stderr)}`);
    best = Math.min(best, Number(m[1]));
    for (const w of text.matchAll(/^warm_marker_ms ([\d.]+)/gm)) {
      warmBest = Math.min(warmBest, Number(w[1]));
    }
    for (const w of text.matchAll(/^warm_first_instruction_ms ([\d.]+)/gm)) {
      firstBest = Math.min(firstBest, Number(w[1]));
    }
  }
  if (!Number.isFinite(warmBest) || !Number.isFinite(firstBest)) {
    throw new Error("the warm boots printed no times");
  }
  console.log(`${name} ${best.toFixed(1)}`);
  // Warm start: a process that already booted a VM (modules loaded, V8 has compiled the
  // paths) and keeps a vCPU thread ready, from the Vmm.create call; best of 3.
  const warmName = kernel ? "warm_create_to_init_ms" : "warm_create_to_marker_ms";
  console.log(`${warmName} ${warmBest.toFixed(1)}`);
  console.log(`warm_create_to_first_instruction_ms ${firstBest.toFixed(1)}`);
} finally {
  await Deno.remove(dir, { recursive: true });
}
