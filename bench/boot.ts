/**
 * `deno task bench:boot`: process start to the guest's boot marker, in a fresh process
 * each round (best of 5).
 * - With DENOVM_KERNEL (and DENOVM_INITRD) set, boots that kernel (the recipe kernel and
 *   initramfs write the marker from init) and prints `boot_to_init_ms N`. This needs a
 *   host that runs guests natively, or the nested lane.
 * - Without, boots the boot64 test guest (bzImage, the same loader path) and prints
 *   `boot64_to_marker_ms N`, which runs on any KVM host, this one included.
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
  let best = Infinity;
  for (let i = 0; i < 5; i++) {
    const out = await new Deno.Command(Deno.execPath(), {
      args: ["run", "-A", child, ...args],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).output();
    const m = /marker_ms (\d+(\.\d+)?)/.exec(new TextDecoder().decode(out.stdout));
    if (!m) throw new Error(`no boot marker: ${new TextDecoder().decode(out.stderr)}`);
    best = Math.min(best, Number(m[1]));
  }
  console.log(`${name} ${best.toFixed(1)}`);
} finally {
  await Deno.remove(dir, { recursive: true });
}
