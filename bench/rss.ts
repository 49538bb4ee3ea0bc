/**
 * `deno task bench:rss`: the VMM's resident memory beyond guest RAM, for a running VM (256
 * MiB guest with virtio-rng and a 64 MiB virtio-blk disk, a guest that loops), read from
 * `/proc/self/smaps` one second after start and again after a pause/resume cycle:
 *   vmm_rss_mib N            resident memory of the process outside the guest RAM mappings
 *   vmm_rss_binary_mib N, vmm_rss_files_mib N, vmm_rss_anon_mib N   the same, by kind
 *   guest_rss_mib N          resident guest RAM (what the guest touched), for reference
 * Goal (issue 16): vmm_rss_mib <= 40.
 */

import { sleep } from "@denovm/sys/timer";
import { Vmm } from "../vmm/vmm.ts";
import { benchOnKvm } from "../portable/bench.ts";

await benchOnKvm(import.meta.url);

const LOOP = new Uint8Array([0xeb, 0xfe]); // jmp $

/** Resident KiB inside and outside the given host address ranges, and outside by kind. */
function rss(guest: { start: bigint; end: bigint }[]) {
  const kib = { vmm: 0, guest: 0, binary: 0, otherFiles: 0, anon: 0 };
  let kind: "guest" | "binary" | "otherFiles" | "anon" = "anon";
  const exe = Deno.realPathSync(Deno.execPath());
  for (const line of Deno.readTextFileSync("/proc/self/smaps").split("\n")) {
    const m = /^([0-9a-f]+)-([0-9a-f]+) \S+ \S+ \S+ \S+\s*(.*)$/.exec(line);
    if (m) {
      const a = BigInt("0x" + m[1]), b = BigInt("0x" + m[2]), path = m[3] ?? "";
      kind = guest.some((g) => a < g.end && g.start < b)
        ? "guest"
        : path === exe
        ? "binary"
        : path.startsWith("/")
        ? "otherFiles"
        : "anon";
      continue;
    }
    const r = /^Rss:\s+(\d+) kB/.exec(line);
    if (!r) continue;
    const n = Number(r[1]);
    kib[kind] += n;
    if (kind !== "guest") kib.vmm += n;
  }
  return kib;
}

const dir = await Deno.makeTempDir({ prefix: "denovm-rss-" });
try {
  await Deno.writeFile(`${dir}/disk.img`, new Uint8Array(64 << 20));
  const vm = await Vmm.create({
    memMiB: 256,
    rng: true,
    disks: [{ path: `${dir}/disk.img` }],
    console: "none",
  }, { image: { bytes: LOOP, load: 0x1000 } });
  vm.start();
  await sleep(1000);
  await vm.pause();
  vm.resume();
  await sleep(500);
  const ranges = vm.machine.memory.hostRegions.map((r) => ({
    start: r.hostAddr,
    end: r.hostAddr + BigInt(r.size),
  }));
  const kib = rss(ranges);
  await vm.stop();
  const mib = (k: number) => (k / 1024).toFixed(1);
  console.log(`vmm_rss_mib ${mib(kib.vmm)}`);
  // Of which: the deno executable's pages, other files, anonymous (heaps, stacks, buffers).
  console.log(`vmm_rss_binary_mib ${mib(kib.binary)}`);
  console.log(`vmm_rss_files_mib ${mib(kib.otherFiles)}`);
  console.log(`vmm_rss_anon_mib ${mib(kib.anon)}`);
  console.log(`guest_rss_mib ${mib(kib.guest)}`);
} finally {
  await Deno.remove(dir, { recursive: true });
}
