/**
 * The peer comparison, run inside the nested lane: our VMM and QEMU's microvm machine
 * (both on L1's KVM) boot the same kernel and initramfs, each measured from process spawn
 * to the init's "denovm-init: up" line, each reads a 64 MiB virtio-blk disk with dd in the
 * guest, then writes 2 KiB to its serial port (ttyS0, through the tty layer). Best of 3,
 * the two taking turns.
 * Prints:
 *   boot_to_init_ms ours N qemu N
 *   dd_read_mib_s ours N qemu N
 *   serial_bytes_per_s ours N qemu N          (the guest's first 2 KiB to ttyS0)
 *   serial_warm_bytes_per_s ours N qemu N     (the next 2 KiB)
 *   boot_to_init_noquiet_ms ours N qemu N     (the same boot without `quiet`: the kernel's
 *                                              whole log goes through the serial console)
 *   warm_boot_to_init_ms ours N qemu_cold N   (ours in a process that booted once already,
 *                                              from Vmm.create; tests/nested/warm_boot.ts)
 *
 *   deno run -A tests/nested/peer.ts <bzImage> <initramfs>
 *
 * @module
 */

import { oursArgv, qemuArgv, spawn } from "./vmms.ts";

const [kernel, initrd] = Deno.args;
if (!kernel || !initrd) {
  console.error("usage: peer.ts <bzImage> <initramfs>");
  Deno.exit(2);
}
const dir = await Deno.makeTempDir({ prefix: "denovm-peer-" });
const disk = `${dir}/disk.img`;
await Deno.writeFile(disk, new Uint8Array(64 << 20));
// busybox dd reports no rate: time it with /proc/uptime (10 ms resolution, 64 MiB read).
// Then the guest writes SERIAL_BYTES to its 8250 through the tty layer (THR writes, LSR
// reads and THRE interrupts), timed the same way.
const SERIAL_BYTES = 2048;
const run =
  "cat /proc/cmdline; a=$(cut -d' ' -f1 /proc/uptime); dd if=/dev/vda of=/dev/null bs=1M 2>/dev/null; " +
  "b=$(cut -d' ' -f1 /proc/uptime); echo dd-window $a $b; " +
  `a=$(cut -d' ' -f1 /proc/uptime); head -c ${SERIAL_BYTES} /dev/zero | tr '\\0' x > /dev/ttyS0; ` +
  "b=$(cut -d' ' -f1 /proc/uptime); echo; echo serial-window $a $b; " +
  // Once more: the first write also pays for what runs for the first time (in our VMM,
  // the UART's code in the vCPU worker is compiled by V8 then); the second is steady state.
  `a=$(cut -d' ' -f1 /proc/uptime); head -c ${SERIAL_BYTES} /dev/zero | tr '\\0' x > /dev/ttyS0; ` +
  "b=$(cut -d' ' -f1 /proc/uptime); echo; echo serial-again $a $b";
const append = `console=ttyS0 reboot=k panic=1 pci=off quiet denovm.run=${btoa(run)}`;

const spec = { kernel, initrd, append };
const vmms: Record<string, string[]> = {
  ours: oursArgv(spec, ["--disk", `${disk},ro`]),
  // Both machines as they boot by default: described by ACPI tables.
  qemu: qemuArgv(spec, {
    acpi: true,
    extra: [
      "-drive",
      `id=d,file=${disk},format=raw,if=none,readonly=on`,
      "-device",
      "virtio-blk-device,drive=d",
    ],
  }),
};

/** Spawns one boot; returns ms to the init line, the guest's dd rate and serial rate. */
async function once(
  argv: string[],
): Promise<{ initMs: number; mibS: number; serialBs: number; warmBs: number }> {
  const t0 = performance.now();
  const p = spawn(argv);
  let out = "", initMs = NaN;
  const dec = new TextDecoder();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const kill = new Promise<void>((r) => (timer = setTimeout(() => {
    try {
      p.kill("SIGKILL");
    } catch { /* gone */ }
    r();
  }, 120_000)));
  const read = (async () => {
    for await (const c of p.stdout) {
      out += dec.decode(c, { stream: true });
      if (Number.isNaN(initMs) && out.includes("denovm-init: up")) initMs = performance.now() - t0;
    }
  })();
  const err = new Response(p.stderr).text();
  await Promise.race([p.status, kill]);
  clearTimeout(timer);
  await read;
  await err;
  const m = /dd-window ([\d.]+) ([\d.]+)/.exec(out);
  const secs = m ? Math.max(Number(m[2]) - Number(m[1]), 0.01) : NaN;
  const mibS = m ? 64 / secs : NaN;
  if (!m) console.error(`${argv[0]}: no dd result in the guest output:\n${out.slice(-600)}`);
  if (Number.isNaN(initMs)) throw new Error(`${argv[0]}: no init line:\n${out.slice(-2000)}`);
  const w = /serial-window ([\d.]+) ([\d.]+)/.exec(out);
  const serialBs = w ? SERIAL_BYTES / Math.max(Number(w[2]) - Number(w[1]), 0.01) : NaN;
  if (!w) console.error(`${argv[0]}: no serial result in the guest output:\n${out.slice(-600)}`);
  const w2 = /serial-again ([\d.]+) ([\d.]+)/.exec(out);
  const warmBs = w2 ? SERIAL_BYTES / Math.max(Number(w2[2]) - Number(w2[1]), 0.01) : NaN;
  return { initMs, mibS, serialBs, warmBs };
}

const best: Record<string, { initMs: number; mibS: number; serialBs: number; warmBs: number }> = {};
// The two take turns (ours, QEMU, ours, ...): a slow stretch of the host falls on both.
for (let i = 0; i < 3; i++) {
  for (const [name, argv] of Object.entries(vmms)) {
    const r = await once(argv);
    const b = best[name];
    best[name] = {
      initMs: Math.min(b?.initMs ?? Infinity, r.initMs),
      mibS: Math.max(b?.mibS ?? 0, Number.isNaN(r.mibS) ? 0 : r.mibS),
      serialBs: Math.max(b?.serialBs ?? 0, Number.isNaN(r.serialBs) ? 0 : r.serialBs),
      warmBs: Math.max(b?.warmBs ?? 0, Number.isNaN(r.warmBs) ? 0 : r.warmBs),
    };
  }
}
console.log(
  `boot_to_init_ms ours ${best.ours!.initMs.toFixed(0)} qemu ${best.qemu!.initMs.toFixed(0)}`,
);
console.log(`dd_read_mib_s ours ${best.ours!.mibS.toFixed(1)} qemu ${best.qemu!.mibS.toFixed(1)}`);
console.log(
  `serial_bytes_per_s ours ${best.ours!.serialBs.toFixed(0)} qemu ${
    best.qemu!.serialBs.toFixed(0)
  }`,
);
console.log(
  `serial_warm_bytes_per_s ours ${best.ours!.warmBs.toFixed(0)} qemu ${
    best.qemu!.warmBs.toFixed(0)
  }`,
);
// Boot to init without `quiet` (the goal is for both): best of 3 each.
async function bootOnly(argv: string[]): Promise<number> {
  const t0 = performance.now();
  const p = spawn(argv);
  let out = "", at = NaN;
  const dec = new TextDecoder();
  const timer = setTimeout(() => {
    try {
      p.kill("SIGKILL");
    } catch { /* gone */ }
  }, 120_000);
  const err = new Response(p.stderr).text();
  for await (const c of p.stdout) {
    out = (out + dec.decode(c, { stream: true })).slice(-4096);
    if (Number.isNaN(at) && out.includes("denovm-init: up")) at = performance.now() - t0;
  }
  clearTimeout(timer);
  await p.status;
  await err;
  if (Number.isNaN(at)) throw new Error(`${argv[0]}: no init line without quiet:\n${out}`);
  return at;
}
const loud = {
  kernel,
  initrd,
  append: `console=ttyS0 reboot=k panic=1 pci=off denovm.run=${btoa("true")}`,
};
const loudVmms: Record<string, string[]> = {
  ours: oursArgv(loud),
  qemu: qemuArgv(loud, { acpi: true }),
};
const loudBest: Record<string, number> = {};
for (let i = 0; i < 3; i++) {
  for (const [name, argv] of Object.entries(loudVmms)) {
    loudBest[name] = Math.min(loudBest[name] ?? Infinity, await bootOnly(argv));
  }
}
console.log(
  `boot_to_init_noquiet_ms ours ${loudBest.ours!.toFixed(0)} qemu ${loudBest.qemu!.toFixed(0)}`,
);
// Our warm start (a process that already booted once; QEMU has none to compare with).
const warm = await new Deno.Command(Deno.execPath(), {
  args: [
    "run",
    "-A",
    new URL("./warm_boot.ts", import.meta.url).pathname,
    kernel,
    initrd,
    `console=ttyS0 reboot=k panic=1 pci=off quiet denovm.run=${btoa("true")}`,
  ],
  // V8's defaults: see portable/v8_flags.ts.
  stdin: "null",
  stdout: "piped",
  stderr: "piped",
}).output();
const w = /^warm_boot_to_init_ms (\d+)/m.exec(new TextDecoder().decode(warm.stdout));
if (w) console.log(`warm_boot_to_init_ms ours ${w[1]} qemu_cold ${best.qemu!.initMs.toFixed(0)}`);
else console.error(`warm boot failed:\n${new TextDecoder().decode(warm.stderr).slice(-2000)}`);
await Deno.remove(dir, { recursive: true });
