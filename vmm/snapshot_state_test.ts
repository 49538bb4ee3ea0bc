/**
 * Snapshot validation on the host (no KVM): a synthetic but complete state passes, and
 * every defect is refused with a SnapshotError that names it, before anything is opened,
 * bound or mapped.
 */

import { assert, assertEquals, assertRejects } from "@std/assert";
import { I8042 } from "../devices/i8042.ts";
import { Rtc } from "../devices/rtc.ts";
import { Uart } from "../devices/uart.ts";
import { GuestMemory } from "../memory/guest_memory.ts";
import { SnapshotError } from "../snapshot/format.ts";
import { harness } from "../testing/setup.ts";
import { vcpuState } from "../testing/snapshot_fixture.ts";
import { parseConfig } from "./config.ts";
import { planVirtio, shadowBackend } from "./devices_setup.ts";
import { type SnapshotState, validateSnapshot } from "./snapshot_state.ts";

const RAM = 2 << 20;

/** A snapshot directory with a live-looking state: every device negotiated, queues ready. */
async function fixture() {
  const dir = await Deno.makeTempDir({ prefix: "denovm-validate-" });
  await Deno.writeFile(`${dir}/disk.img`, new Uint8Array(64 * 512));
  await Deno.mkdir(`${dir}/snap`);
  await Deno.truncate(`${dir}/snap/memory.bin`, RAM).catch(async () => {
    await Deno.writeFile(`${dir}/snap/memory.bin`, new Uint8Array(0));
    await Deno.truncate(`${dir}/snap/memory.bin`, RAM);
  });
  const config = parseConfig({
    memMiB: 16,
    disks: [{ path: `${dir}/disk.img` }],
    rng: true,
    console: "virtio",
    vsock: { cid: 3, path: `${dir}/v.sock` },
  });
  const mem = GuestMemory.allocate([{ gpa: 0, size: RAM }]);
  const virtio = planVirtio(config).map((p) => {
    const h = harness(shadowBackend(p), { mem, memSize: RAM });
    assert(h.driver.init().ok);
    for (let i = 0; i < h.backend.queueMaxSizes.length; i++) h.driver.setupQueue(i, 8);
    h.driver.driverOk();
    return { name: p.name, state: h.transport.save() };
  });
  const state: SnapshotState = {
    kind: "denovm-snapshot",
    config,
    machine: { ram: [{ gpa: 0, size: RAM }], mmioBase: 0xd000_0000, vcpus: 1 },
    vcpus: [vcpuState(0) as unknown as SnapshotState["vcpus"][number]],
    vm: {
      pic: [new Uint8Array(512), new Uint8Array(512)],
      ioapic: new Uint8Array(512),
      pit: new Uint8Array(112),
      clock: 1n,
      clockFlags: 0,
    },
    devices: {
      uart: new Uart(Uart.createState(), { output: () => {}, interrupt: { trigger() {} } }).save(),
      i8042: new I8042({ onReset: () => {} }).save(),
      rtc: new Rtc().save(),
      virtio,
    },
    memory: { size: RAM, layers: [{ file: "memory.bin" }] },
  };
  return { dir, snap: `${dir}/snap`, state };
}

/** A deep copy, so each case mutates its own state. */
const copy = (s: SnapshotState): SnapshotState => {
  const clone = structuredClone(s);
  return clone;
};

Deno.test("snapshot validation: a complete state passes, with layers resolved in the directory", async () => {
  const f = await fixture();
  try {
    const v = await validateSnapshot(f.state, f.snap);
    assertEquals(v.layers.map((l) => l.file), [`${await Deno.realPath(f.snap)}/memory.bin`]);
    assertEquals(v.vcpus.length, 1);
    assertEquals(v.config.disks[0]!.path, `${f.dir}/disk.img`);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("snapshot validation: every defect is a SnapshotError, and nothing is bound or opened", async () => {
  // Issue 12 item 11: a bad config became a usage error; negative, overlapping or gap RAM
  // and machine sections that disagree with the config passed; vCPU and device state was
  // checked only after KVM setup, disks opened read-write and the vsock path bound; and a
  // memory layer could be any host file.
  const f = await fixture();
  const cases: [string, (s: SnapshotState) => void | Promise<void>, string][] = [
    [
      "config",
      (s) => ((s.config as unknown as Record<string, unknown>).memMiB = "lots"),
      "saved config is invalid",
    ],
    ["negative RAM", (s) => (s.machine.ram = [{ gpa: -4096, size: RAM }]), "below 0"],
    ["overlap", (s) => {
      s.machine.ram = [{ gpa: 0, size: RAM / 2 }, { gpa: 4096, size: RAM / 2 }];
    }, "overlap or are out of order"],
    ["gap", (s) => (s.machine.ram = [{ gpa: 0xbff0_0000, size: RAM }]), "MMIO gap"],
    ["vcpus", (s) => (s.config.vcpus = 2), "its config 2"],
    ["more RAM than config", (s) => {
      s.machine.ram = [{ gpa: 0, size: RAM * 16 }];
      s.memory.size = RAM * 16;
    }, "its config 16 MiB"],
    ["memory size", (s) => (s.memory.size = RAM - 4096), "memory section"],
    ["windows", (s) => (s.machine.mmioBase = 0x10_0000), "device windows overlap RAM"],
    [
      "generation ID outside RAM",
      (s) => (s.machine.vmgenid = { addr: RAM - 8, gsi: 23 }),
      "VM generation ID",
    ],
    ["generation ID GSI", (s) => (s.machine.vmgenid = { addr: 0xef000, gsi: 24 }), "GSI 0-23"],
    ["GSI count", (s) => (s.machine.gsis = [5]), "one distinct GSI 0-23 per device"],
    ["GSI twice", (s) => (s.machine.gsis = [5, 6, 7, 5]), "one distinct GSI 0-23 per device"],
    ["GSI of COM1", (s) => (s.machine.gsis = [5, 6, 4, 9]), "no legacy device's"],
    ["GSIs not a list", (s) => ((s.machine as Record<string, unknown>).gsis = "5,6"), "GSI"],
    ["generation ID on a device's GSI", (s) => {
      s.machine.gsis = [5, 6, 7, 9];
      s.machine.vmgenid = { addr: 0xef000, gsi: 6 };
    }, "VM generation ID"],
    ["generation ID on a version 2 device line", (s) => {
      s.machine.vmgenid = { addr: 0xef000, gsi: 8 }; // no gsis: the devices have 5 to 8
    }, "VM generation ID"],
    ["generation ID not an object", (s) => {
      (s.machine as Record<string, unknown>).vmgenid = 23;
    }, "VM generation ID"],
    [
      "vcpu",
      (s) => ((s.vcpus[0] as unknown as Record<string, unknown>).lapic = new Uint8Array(3)),
      "LAPIC",
    ],
    ["uart", (s) => ((s.devices.uart as unknown as Record<string, unknown>).lcr = 300), "UART"],
    ["i8042", (s) => ((s.devices.i8042 as unknown as Record<string, unknown>).ctr = -1), "i8042"],
    ["rtc", (s) => ((s.devices.rtc as unknown as Record<string, unknown>).index = 300), "RTC"],
    ["names", (s) => s.devices.virtio.reverse(), "in the snapshot"],
    [
      "transport",
      (s) => (s.devices.virtio[0]!.state.queueSel = -1),
      "disk0: Cannot restore virtio-mmio",
    ],
    [
      "features",
      (s) => (s.devices.virtio[1]!.state.device.driverFeatures = "ffffffffffff"),
      "rng: Cannot restore device: features",
    ],
    [
      "queue outside RAM",
      (s) => (s.devices.virtio[2]!.state.device.queues[0]!.descAddr = RAM),
      "descriptor table outside guest RAM",
    ],
    ["backend", (s) => {
      (s.devices.virtio[2]!.state.device as { backend?: unknown }).backend = {
        cols: 1,
        rows: 1,
        pending: [999],
      };
    }, "virtio-console: bad state"],
    ["vsock cid", (s) => {
      (s.devices.virtio[3]!.state.device as { backend?: unknown }).backend = { cid: "9" };
    }, "CID"],
    [
      "layer ..",
      (s) => (s.memory.layers = [{ file: "../disk.img" }]),
      "not a file name in the snapshot directory",
    ],
    ["layer absolute", (s) => (s.memory.layers = [{ file: "/etc/passwd" }]), "not a file name"],
    ["layer symlink out", async (s) => {
      await Deno.symlink(`${f.dir}/disk.img`, `${f.snap}/escape.bin`);
      s.memory.layers = [{ file: "escape.bin" }];
    }, "leads out of the snapshot directory"],
    ["layer directory", async (s) => {
      await Deno.mkdir(`${f.snap}/adir`);
      s.memory.layers = [{ file: "adir" }];
    }, "not a regular file"],
    ["layer size", async (s) => {
      await Deno.writeFile(`${f.snap}/small.bin`, new Uint8Array(4096));
      s.memory.layers = [{ file: "small.bin" }];
    }, "is 4096 bytes, the snapshot needs"],
    ["layer missing", (s) => (s.memory.layers = [{ file: "nothere.bin" }]), "missing"],
    ["disk", (s) => (s.config.disks[0]!.path = `${f.dir}/gone.img`), "cannot open"],
  ];
  try {
    for (const [name, mutate, want] of cases) {
      const s = copy(f.state);
      await mutate(s);
      const e = await assertRejects(() => validateSnapshot(s, f.snap), SnapshotError);
      assert(e.message.includes(want), `${name}: ${e.message}`);
    }
    assertEquals(
      await Deno.lstat(`${f.dir}/v.sock`).then(() => true, () => false),
      false,
      "the vsock path was never bound",
    );
    assertEquals((await Deno.stat(`${f.dir}/disk.img`)).size, 64 * 512);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("snapshot validation: interrupt lines and a generation ID as this VMM saves them pass", async () => {
  const f = await fixture();
  try {
    const s = copy(f.state);
    s.machine.gsis = [5, 6, 7, 9];
    s.machine.vmgenid = { addr: 0xef000, gsi: 23 };
    const v = await validateSnapshot(s, f.snap);
    assertEquals(v.state.machine.gsis, [5, 6, 7, 9]);
    assertEquals(v.state.machine.vmgenid, { addr: 0xef000, gsi: 23 });
    // A version 2 snapshot: no lines named, no generation ID.
    await validateSnapshot(copy(f.state), f.snap);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});

Deno.test("Vmm.restore refuses a bad snapshot before it needs KVM; a bad config is no usage error", async () => {
  // Issue 12 item 11: a bad config in state.bin came out as a ConfigError, which the CLI
  // turns into a usage error (exit 2 and the usage text). And the checks now come first:
  // this runs the same on a host with no /dev/kvm at all.
  const f = await fixture();
  try {
    const { encodeState } = await import("../snapshot/format.ts");
    const { Vmm } = await import("./vmm.ts");
    const { ConfigError } = await import("./config.ts");
    const s = copy(f.state);
    (s.config as unknown as Record<string, unknown>).vcpus = "many";
    await Deno.writeFile(`${f.snap}/state.bin`, await encodeState(s));
    const e = await assertRejects(() => Vmm.restore(f.snap), SnapshotError);
    assert(!(e instanceof ConfigError));
    assert(e.message.includes("saved config is invalid"), e.message);
    const t = copy(f.state);
    t.memory.layers = [{ file: "../disk.img" }];
    await Deno.writeFile(`${f.snap}/state.bin`, await encodeState(t));
    await assertRejects(() => Vmm.restore(f.snap), SnapshotError, "not a file name");
    assertEquals(await Deno.lstat(`${f.dir}/v.sock`).then(() => true, () => false), false);
  } finally {
    await Deno.remove(f.dir, { recursive: true });
  }
});
