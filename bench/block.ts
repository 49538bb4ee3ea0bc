/**
 * `deno task bench:block`: virtio-blk throughput for 64 KiB requests from a page-cached
 * image through the device model into guest memory, next to plain `pread` of the same
 * file into the same memory. 32 requests in flight; the kinds take turns in 200 ms slices.
 * The requests of a notification are for adjacent sectors, as a sequential reader's (or the
 * guest's read-ahead) are, so the device merges them (up to 1 MiB a disk call); `_scattered`
 * reads go to sectors far apart, one disk call each. Each request's data is either one
 * contiguous buffer or, as a Linux guest sends it from its page cache, 16 scattered 4 KiB
 * pages (`_paged`). `_resident` reads go through a disk that does not ask for RWF_NOWAIT and
 * checks the pages' residency instead, as on a filesystem that refuses RWF_NOWAIT reads
 * (overlayfs). Prints:
 *   blk_read_mib_s N, blk_write_mib_s N, blk_read_paged_mib_s N, blk_write_paged_mib_s N,
 *   blk_read_resident_mib_s N, blk_read_scattered_mib_s N, pread_mib_s N, blk_read_vs_pread R,
 *   blk_read_paged_vs_pread R, blk_read_resident_vs_pread R, blk_read_scattered_vs_pread R
 */

import { BLK_T, BlockDevice } from "../devices/block.ts";
import { closeFd, O_RDONLY, openFile, preadSync } from "@denovm/sys";
import { MmapGuestMemory } from "../memory/mmap.ts";
import { harness } from "../testing/setup.ts";
import { Ticker } from "../vstate/ticker.ts";
import { FileDisk } from "../host/disk_file.ts";
import { benchWithoutKvm } from "../portable/bench.ts";

benchWithoutKvm();

const IMAGE = 64 << 20, REQ = 64 << 10, INFLIGHT = 32;
/**
 * Each kind runs in slices of SLICE_MS, taking turns for ROUNDS rounds, so a slow moment of
 * the host falls on all of them alike (one 2 s stretch each swung the ratio by a third).
 */
const ROUNDS = 10, SLICE_MS = 200;
/** Where the requests' headers sit in guest RAM, one slot apart. */
const HDR_BASE = 0x100000, HDR_STRIDE = 64;

const ticker = new Ticker();
const tick = () => ticker.tick();

const path = await Deno.makeTempFile({ suffix: ".img" });
using mem = MmapGuestMemory.create([{ gpa: 0, size: 128 << 20 }]);
try {
  const chunk = crypto.getRandomValues(new Uint8Array(65536));
  const f = await Deno.open(path, { write: true });
  for (let i = 0; i < IMAGE; i += chunk.length) await f.write(chunk);
  f.close();
  await Deno.readFile(path); // into the page cache

  const disk = FileDisk.open(path), residentDisk = FileDisk.open(path, { nowait: false });
  /** A device on `d`, its driver's rings in guest RAM within [from, to). */
  const device = (d: FileDisk, from: number, to: number) => {
    // 1024 entries: 32 requests of 18 descriptors (header, 16 pages, status) fit at once.
    const h = harness(new BlockDevice(d, { queueSize: 1024 }), {
      mem,
      allocRange: [from, to],
    });
    if (!h.driver.init().ok) throw new Error("handshake failed");
    const q = h.driver.setupQueue(0, 1024);
    h.driver.driverOk();
    return { h, q };
  };
  // Below the headers (HDR_BASE) and above the status bytes (0x200000 + 32 slots).
  const plain = device(disk, 0x1000, HDR_BASE);
  const resident = device(residentDisk, 0x300000, 0x400000);
  // Fixed buffers per slot, in guest RAM above the rings.
  const slots = Array.from({ length: INFLIGHT }, (_, i) => {
    const hdr = HDR_BASE + i * HDR_STRIDE, status = 0x200000 + i * HDR_STRIDE;
    const data = 0x1000000 + i * REQ;
    return { hdr, status, data };
  });
  const PAGE = 4096, PAGES = REQ / PAGE;
  /** The data descriptors of a request: one buffer, or its pages in a scattered order. */
  const dataSegments = (data: number, write: boolean, paged: boolean) =>
    paged
      ? Array.from({ length: PAGES }, (_, k) => ({
        addr: data + ((k * 7) % PAGES) * PAGE,
        len: PAGE,
        write,
      }))
      : [{ addr: data, len: REQ, write }];
  /** One slice of requests of `type`: the bytes moved and the milliseconds taken. */
  const run = async (type: number, paged: boolean, { h, q } = plain, scattered = false) => {
    let bytes = 0, next = 0, outstanding = 0;
    // Each slot's chain is built once: the driver's own work per request stays small (as a
    // guest's runs on its vCPU, not on the device thread) so the figure is the device's.
    const chains = slots.map((slot) => [
      { addr: slot.hdr, len: 16, write: false },
      ...dataSegments(slot.data, type === BLK_T.IN, paged),
      { addr: slot.status, len: 1, write: true },
    ]);
    const t0 = performance.now();
    const issue = (i: number) => {
      const slot = slots[i]!;
      // Scattered: 37 requests apart (the image holds 1024), so no two of a pass adjoin.
      const sector = ((scattered ? next++ * 37 : next++) * (REQ / 512)) % (IMAGE / 512);
      mem.writeU32(slot.hdr, type);
      mem.writeU32(slot.hdr + 4, 0);
      mem.writeU64(slot.hdr + 8, sector);
      q.add(chains[i]!);
      outstanding++;
    };
    slots.forEach((_, i) => issue(i));
    h.driver.kick(q);
    while (performance.now() - t0 < SLICE_MS) {
      await tick();
      for (let u = q.getUsed(); u; u = q.getUsed()) {
        outstanding--;
        bytes += REQ;
        // The slot from the header address in the chain's first descriptor.
        const i = (mem.readU64Number(q.desc + 16 * u.id) - HDR_BASE) / HDR_STRIDE;
        if (mem.readU8(slots[i]!.status) !== 0) throw new Error("request failed");
        issue(i);
      }
      h.driver.kick(q);
    }
    while (outstanding > 0) {
      await tick();
      while (q.getUsed()) {
        outstanding--;
        bytes += REQ; // the drain's time counts, so do its bytes
      }
    }
    return { bytes, ms: performance.now() - t0 };
  };
  // Plain pread of the same file into the same guest memory, one request at a time.
  const fd = openFile(path, O_RDONLY);
  let preadOff = 0;
  const preadSlice = () => {
    let bytes = 0;
    const t0 = performance.now();
    while (performance.now() - t0 < SLICE_MS) {
      for (let k = 0; k < 64; k++, preadOff = (preadOff + REQ) % IMAGE) {
        const dst = mem.slice(0x1000000 + (preadOff / REQ % INFLIGHT) * REQ, REQ);
        if (preadSync(fd, dst, preadOff) !== REQ) throw new Error("short pread");
        bytes += REQ;
      }
    }
    return { bytes, ms: performance.now() - t0 };
  };
  const kinds = {
    read: () => run(BLK_T.IN, false),
    write: () => run(BLK_T.OUT, false),
    readPaged: () => run(BLK_T.IN, true),
    writePaged: () => run(BLK_T.OUT, true),
    readResident: () => run(BLK_T.IN, false, resident),
    readScattered: () => run(BLK_T.IN, false, plain, true),
    pread: () => Promise.resolve(preadSlice()),
  };
  const sum = new Map<keyof typeof kinds, { bytes: number; ms: number }>();
  for (let r = 0; r < ROUNDS; r++) {
    for (const [k, f] of Object.entries(kinds) as [keyof typeof kinds, typeof kinds.read][]) {
      const got = await f(), acc = sum.get(k) ?? { bytes: 0, ms: 0 };
      sum.set(k, { bytes: acc.bytes + got.bytes, ms: acc.ms + got.ms });
    }
  }
  disk.close();
  residentDisk.close();
  closeFd(fd);
  const rate = (k: keyof typeof kinds) => {
    const t = sum.get(k)!;
    return t.bytes / (1 << 20) / (t.ms / 1000);
  };
  const read = rate("read"), write = rate("write"), pread = rate("pread");
  const readPaged = rate("readPaged"), writePaged = rate("writePaged");
  const readResident = rate("readResident"), readScattered = rate("readScattered");
  console.log(`blk_read_mib_s ${Math.round(read)}`);
  console.log(`blk_write_mib_s ${Math.round(write)}`);
  console.log(`blk_read_paged_mib_s ${Math.round(readPaged)}`);
  console.log(`blk_write_paged_mib_s ${Math.round(writePaged)}`);
  console.log(`blk_read_resident_mib_s ${Math.round(readResident)}`);
  console.log(`blk_read_scattered_mib_s ${Math.round(readScattered)}`);
  console.log(`pread_mib_s ${Math.round(pread)}`);
  console.log(`blk_read_vs_pread ${(read / pread).toFixed(3)}`);
  console.log(`blk_read_paged_vs_pread ${(readPaged / pread).toFixed(3)}`);
  console.log(`blk_read_resident_vs_pread ${(readResident / pread).toFixed(3)}`);
  console.log(`blk_read_scattered_vs_pread ${(readScattered / pread).toFixed(3)}`);
} finally {
  ticker.close();
  await Deno.remove(path);
}
