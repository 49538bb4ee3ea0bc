// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/**
 * Pause, snapshot and restore on /dev/kvm: a test guest that counts, writes virtio-blk
 * sectors and reads virtio-rng is paused mid-run (with a disk write in flight), snapshotted,
 * restored in a new process, and continues: its counter goes on from the saved value, the
 * disk equals an uninterrupted run's, and no request is lost or done twice. Corrupt,
 * truncated and mismatched snapshots are refused.
 */

import { assert, assertEquals, assertRejects } from "@std/assert";
import type { DiskImage } from "../devices/block.ts";
import type { BlockDevice } from "../devices/block.ts";
import type { RngDevice } from "../devices/rng.ts";
import { SnapshotError } from "../snapshot/format.ts";
import { FileDisk } from "../host/disk_file.ts";
import { Vmm } from "../vmm/vmm.ts";
import { sleep } from "@denovm/sys/timer";
import { buildGuest } from "../testing/guest_build.ts";
import { deadline, guestProgress, LOW_RAM } from "../testing/kvm_guests.ts";

const N = 60;

/** A disk whose writes take `ms`, so one is in flight whenever the guest is paused. */
class SlowDisk implements DiskImage {
  inFlight = 0;
  completedWhilePausing = 0;
  pausing = false;
  constructor(readonly inner: FileDisk, readonly ms: number) {}
  get size() {
    return this.inner.size;
  }
  get readOnly() {
    return this.inner.readOnly;
  }
  read(d: Uint8Array, o: number) {
    return this.inner.read(d, o);
  }
  async write(s: Uint8Array, o: number) {
    this.inFlight++;
    await sleep(this.ms);
    await this.inner.write(s, o);
    this.inFlight--;
    if (this.pausing) this.completedWhilePausing++;
  }
  flush() {
    return this.inner.flush();
  }
  discard(o: number, l: number) {
    return this.inner.discard(o, l);
  }
  writeZeroes(o: number, l: number) {
    return this.inner.writeZeroes(o, l);
  }
}

async function boot(disk: string, diskImages?: DiskImage[], trackDirtyPages = false) {
  const image = { bytes: await buildGuest("snap"), load: 0x1000 };
  const vm = await Vmm.create({ disks: [{ path: disk }], rng: true, console: "none" }, {
    ram: LOW_RAM,
    mmioBase: 0xd0000,
    image,
    trackDirtyPages,
    ...(diskImages ? { diskImages } : {}),
  });
  vm.machine.memory.writeU32(0x6004, N);
  return vm;
}

async function child(dir: string, disk: string) {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", new URL("./snapshot_child.ts", import.meta.url).pathname, dir, disk],
    stdout: "piped",
    stderr: "piped",
  }).output();
  const err = new TextDecoder().decode(out.stderr);
  if (!out.success) throw new Error(`restore process failed: ${err}`);
  return JSON.parse(new TextDecoder().decode(out.stdout));
}

Deno.test({
  name: "snapshot: a paused guest restored in a new process continues exactly where it was",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "denovm-snap-" });
    try {
      const size = 128 * 512;
      await Deno.writeFile(`${dir}/a.img`, new Uint8Array(size));
      await Deno.writeFile(`${dir}/b.img`, new Uint8Array(size));

      // The uninterrupted run.
      {
        await using a = await boot(`${dir}/a.img`);
        a.start();
        assertEquals(
          await deadline(a.whenExit(), 60_000, () => `reference run${guestProgress(a.machine)}`),
          {
            kind: "exit",
            code: 0,
            vcpu: 0,
          },
        );
        assertEquals(a.machine.memory.readU32(0x6000), N);
      }

      // The interrupted run: pause a third of the way in, with a disk write in flight.
      const file = FileDisk.open(`${dir}/b.img`);
      const slow = new SlowDisk(file, 25);
      let parentRequests: number, savedCounter: number, parentRng: number;
      {
        await using b = await boot(`${dir}/b.img`, [slow]);
        b.start();
        await deadline(
          (async () => {
            while (b.machine.memory.readU32(0x6000) < N / 3) {
              await sleep(5);
            }
          })(),
          60_000,
          "a third of the run",
        );
        while (slow.inFlight === 0) await sleep(1);
        slow.pausing = true;
        await b.pause();
        assertEquals(slow.inFlight, 0, "pause drained the in-flight write");
        assertEquals(slow.completedWhilePausing, 1, "the write in flight at pause completed once");
        savedCounter = b.machine.memory.readU32(0x6000);
        await b.snapshot(`${dir}/snap`);
        parentRequests = (b.devices.virtio[0]!.device.backend as BlockDevice).stats.requests;
        parentRng = (b.devices.virtio[1]!.device.backend as RngDevice).bytesServed;
      }
      file.close();

      const r = await child(`${dir}/snap`, `${dir}/b.img`);
      assertEquals(r.exit, { kind: "exit", code: 0, vcpu: 0 }, "the restored guest finished");
      assertEquals(r.counter, N, `the counter went on from ${savedCounter} to ${N}`);
      assertEquals(parentRequests + r.blkRequests, N, "every disk write done exactly once");
      assertEquals(parentRng + r.rngBytes, 16 * N, "every rng read done exactly once");
      assertEquals(
        await Deno.readFile(`${dir}/b.img`),
        await Deno.readFile(`${dir}/a.img`),
        "disk equals the uninterrupted run's",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "restore refuses corrupt, truncated and mismatched snapshots with a clear error",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "denovm-snap-" });
    try {
      await Deno.writeFile(`${dir}/d.img`, new Uint8Array(128 * 512));
      {
        await using vm = await boot(`${dir}/d.img`);
        vm.start();
        while (vm.machine.memory.readU32(0x6000) < 3) await sleep(5);
        await vm.pause();
        await vm.snapshot(`${dir}/s`);
      }
      const state = await Deno.readFile(`${dir}/s/state.bin`);
      const variant = async (name: string, bytes: Uint8Array, mem?: Uint8Array) => {
        const d = `${dir}/${name}`;
        await Deno.mkdir(d);
        await Deno.writeFile(`${d}/state.bin`, bytes);
        if (mem) await Deno.writeFile(`${d}/memory.bin`, mem);
        else await Deno.copyFile(`${dir}/s/memory.bin`, `${d}/memory.bin`);
        return d;
      };
      const flipped = state.slice();
      flipped[state.length - 10]! ^= 0x40;
      const badMagic = state.slice();
      badMagic[0] = 0x58;
      const badVersion = state.slice();
      badVersion[8] = 99;
      const cases: [string, string][] = [
        [await variant("flip", flipped), "checksum mismatch"],
        [await variant("trunc", state.subarray(0, state.length - 100)), "truncated"],
        [await variant("tiny", state.subarray(0, 10)), "truncated"],
        [await variant("magic", badMagic), "wrong magic"],
        [await variant("version", badVersion), "format version 99"],
        [
          await variant("shortmem", state, new Uint8Array(4096)),
          "is 4096 bytes, the snapshot needs",
        ],
        [`${dir}/missing`, "Cannot read snapshot"],
      ];
      for (const [d, msg] of cases) {
        const e = await assertRejects(
          () => Vmm.restore(d, { disks: [`${dir}/d.img`], output: () => {} }),
          SnapshotError,
        );
        assert(e.message.includes(msg), `${d}: ${e.message}`);
      }
      // A well-formed snapshot whose device state does not fit this device: refused too.
      const { decodeState, encodeState } = await import("../snapshot/format.ts");
      const s = (await decodeState(state)) as {
        devices: { virtio: { state: { device: { deviceType: number } } }[] };
      };
      s.devices.virtio[0]!.state.device.deviceType = 1;
      const typed = await variant("type2", await encodeState(s));
      const e2 = await assertRejects(
        () => Vmm.restore(typed, { disks: [`${dir}/d.img`], output: () => {} }),
        SnapshotError,
      );
      assert(e2.message.includes("type"), e2.message);
      // A well-formed vCPU state that KVM refuses (paging without protected mode): refused
      // as the vCPU's thread takes it, the half-built machine closed again.
      const v = (await decodeState(state)) as { vcpus: { sregs: { cr0: bigint } }[] };
      v.vcpus[0]!.sregs.cr0 = 0x8000_0000n;
      const sregs = await variant("sregs", await encodeState(v));
      const e4 = await assertRejects(
        () => Vmm.restore(sregs, { disks: [`${dir}/d.img`], output: () => {} }),
        SnapshotError,
      );
      assert(/^Cannot restore vCPU 0: .*SREGS/.test(e4.message), e4.message);
      const e3 = await assertRejects(
        () => Vmm.restore(`${dir}/s`, { disks: [], output: () => {} }),
        SnapshotError,
      );
      assert(e3.message.includes("0 disk overrides for 1 disks"));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "diff snapshot: only dirtied pages are written, and it restores on top of the full one",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "denovm-snap-" });
    try {
      const size = 128 * 512;
      await Deno.writeFile(`${dir}/a.img`, new Uint8Array(size));
      await Deno.writeFile(`${dir}/b.img`, new Uint8Array(size));
      {
        await using a = await boot(`${dir}/a.img`);
        a.start();
        assertEquals(
          (await deadline(a.whenExit(), 60_000, () => `reference run${guestProgress(a.machine)}`))
            .kind,
          "exit",
        );
      }
      const disk = FileDisk.open(`${dir}/b.img`);
      let pages: number;
      {
        await using b = await boot(`${dir}/b.img`, [disk], true);
        b.start();
        const until = async (n: number) => {
          while (b.machine.memory.readU32(0x6000) < n) await sleep(2);
        };
        await deadline(until(5), 60_000, "5 iterations");
        await b.pause();
        await b.snapshot(`${dir}/full`);
        b.resume();
        await deadline(until(20), 60_000, "20 iterations");
        await b.pause();
        await b.snapshot(`${dir}/diff`, { diff: true });
        const { decodeState } = await import("../snapshot/format.ts");
        const s = (await decodeState(await Deno.readFile(`${dir}/diff/state.bin`))) as {
          memory: { layers: { file: string; ranges?: [number, number][] }[] };
        };
        const layers = s.memory.layers;
        assertEquals(layers.length, 2);
        pages = layers[1]!.ranges!.reduce((n, [, len]) => n + len / 4096, 0);
        const total = LOW_RAM[0]!.size / 4096;
        assert(pages > 0 && pages < total / 4, `${pages} of ${total} pages in the diff`);
      }
      disk.close();
      // The diff directory holds every layer it needs: the full snapshot can go.
      assertEquals(
        [...Deno.readDirSync(`${dir}/diff`)].map((e) => e.name).sort(),
        ["memory.bin", "memory.diff.1", "state.bin"],
      );
      await Deno.remove(`${dir}/full`, { recursive: true });
      const r = await child(`${dir}/diff`, `${dir}/b.img`);
      assertEquals(r.exit, { kind: "exit", code: 0, vcpu: 0 });
      assertEquals(r.counter, N);
      assertEquals(await Deno.readFile(`${dir}/b.img`), await Deno.readFile(`${dir}/a.img`));
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("closing a VM lets a disk write in flight finish before guest memory goes away", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovm-close-" });
  try {
    await Deno.writeFile(`${dir}/c.img`, new Uint8Array(128 * 512));
    const file = FileDisk.open(`${dir}/c.img`);
    // Writes take 300 ms: one is in flight when the VM is closed.
    const slow = new SlowDisk(file, 300);
    const vm = await boot(`${dir}/c.img`, [slow]);
    vm.start();
    await deadline(
      (async () => {
        while (slow.inFlight === 0) await sleep(1);
      })(),
      60_000,
      () => `a disk write in flight${guestProgress(vm.machine)}`,
    );
    const requests = (vm.devices.virtio[0]!.device.backend as BlockDevice).stats.requests;
    await vm.stop();
    assertEquals(slow.inFlight, 0, "the write finished before stop() returned");
    assertEquals(
      (vm.devices.virtio[0]!.device.backend as BlockDevice).stats.requests,
      requests + 1,
      "and was completed while the memory was still mapped",
    );
    file.close();
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test({
  name: "restore: a saved state KVM refuses on one of two vCPUs closes all the restore opened",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "denovm-snap-" });
    try {
      const image = { bytes: new Uint8Array([0xeb, 0xfe]), load: 0x1000 }; // jmp $
      {
        await using vm = await Vmm.create({ memMiB: 16, vcpus: 2, console: "none" }, { image });
        vm.start();
        await vm.pause();
        await vm.snapshot(`${dir}/s`);
      }
      const { decodeState, encodeState } = await import("../snapshot/format.ts");
      const s = (await decodeState(await Deno.readFile(`${dir}/s/state.bin`))) as {
        vcpus: { sregs: { cr0: bigint } }[];
      };
      s.vcpus[1]!.sregs.cr0 = 0x8000_0000n; // paging without protected mode
      await Deno.writeFile(`${dir}/s/state.bin`, await encodeState(s));
      const fds = () => [...Deno.readDirSync("/proc/self/fd")].length;
      const before = fds();
      const e = await assertRejects(
        () => Vmm.restore(`${dir}/s`, { output: () => {} }),
        SnapshotError,
      );
      assert(/^Cannot restore vCPU 1: .*SREGS/.test(e.message), e.message);
      // vCPU 0 started and took its state: it, vCPU 1, the VM, KVM and the memory file are
      // all closed again. A terminated worker's thread closes its own event loop's fds as it
      // ends, after the rejection: wait for that (alone, this test saw 4 more fds 3 times
      // in 4 right after the rejection).
      for (let i = 0; i < 200 && fds() !== before; i++) await sleep(10);
      assertEquals(fds(), before);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
