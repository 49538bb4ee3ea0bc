/**
 * The Persist shape (`bus/persist.ts`), one round trip per stateful component: drive it
 * into a state worth keeping, `save()`, encode and decode as a snapshot does, `check()`,
 * `restore()` into a fresh component, `save()` again: equal. And a refused state changes
 * nothing.
 */

import { assert, assertEquals, assertThrows } from "@std/assert";
import { BlockDevice, MemoryDisk } from "../devices/block.ts";
import { ConsoleDevice, type ConsoleState } from "../devices/console.ts";
import { I8042 } from "../devices/i8042.ts";
import { NetDevice, type NetState } from "../devices/net.ts";
import { RngDevice } from "../devices/rng.ts";
import { Uart } from "../devices/uart.ts";
import { VsockDevice, type VsockState } from "../devices/vsock.ts";
import { GuestMemory } from "../memory/guest_memory.ts";
import { fromJson, toJson } from "../snapshot/format.ts";
import { validateVcpuState } from "../snapshot/vcpu_state.ts";
import { harness } from "../testing/setup.ts";
import { vcpuState } from "../testing/snapshot_fixture.ts";
import { MmioTransport } from "../transports/mmio.ts";
import { VirtioDevice } from "../virtio/device.ts";
import type { VirtioBackend } from "../virtio/device.ts";
import { layoutRamMap, Queue } from "../virtio/queue.ts";

/** Through the snapshot encoding, as `state.bin` holds it. */
const wire = <T>(x: T): T => fromJson(toJson(x)) as T;

const MEM = 0x40000;

Deno.test("persist: Queue round-trips; a bad state leaves the queue as it was", () => {
  const mem = GuestMemory.allocate([{ gpa: 0, size: MEM }]);
  const q = new Queue(64);
  q.setSize(16);
  q.setAddress("descAddr", 0x1000);
  q.setAddress("availAddr", 0x2000);
  q.setAddress("usedAddr", 0x3000);
  q.setReady(true);
  q.nextAvail = 7;
  q.nextUsed = 5;
  q.eventIdx = true;
  const saved = wire(q.save());
  const checked = Queue.check(saved, 64, mem);
  const fresh = new Queue(64);
  fresh.restore(checked, mem);
  assertEquals(fresh.save(), q.save());
  const before = fresh.save();
  assertThrows(() => fresh.restore({ ...saved, usedAddr: MEM }, mem), RangeError, "outside");
  assertEquals(fresh.save(), before);
  // Checked against a layout alone (no memory yet): the same verdicts.
  assertEquals(Queue.check(saved, 64, layoutRamMap([{ gpa: 0, size: MEM }])), checked);
});

/** A live device of each kind, with work done, through the transport. */
function live(make: () => VirtioBackend) {
  const h = harness(make(), { memSize: MEM });
  assert(h.driver.init().ok);
  const qs = h.backend.queueMaxSizes.map((_, i) => h.driver.setupQueue(i, 8));
  h.driver.driverOk();
  return { h, qs };
}

const backends: [string, () => VirtioBackend, (b: VirtioBackend) => void][] = [
  ["virtio-blk", () => new BlockDevice(new MemoryDisk(64 * 512)), () => {}],
  ["virtio-rng", () => new RngDevice(), () => {}],
  [
    "virtio-console",
    () => new ConsoleDevice({ output: () => {}, cols: 100, rows: 30 }),
    (b) => void (b as ConsoleDevice).input(new TextEncoder().encode("typed ahead")),
  ],
  [
    "virtio-net",
    () =>
      new NetDevice({
        read: (buf) => (buf.set([1, 2, 3, 4]), 4),
        write: () => true,
        setOffload: () => {},
      }, { mac: "52:54:00:aa:bb:cc" }),
    () => {},
  ],
  [
    "virtio-vsock",
    () => new VsockDevice({ cid: 7, host: { connect: () => Promise.resolve(null) } }),
    () => {},
  ],
];

for (const [name, make, drive] of backends) {
  Deno.test(`persist: ${name} through MmioTransport and VirtioDevice round-trips`, async () => {
    const { h, qs } = live(make);
    drive(h.backend);
    h.driver.kick(qs[0]!);
    await h.transport.stop();
    const saved = wire(h.transport.save());
    const spec = h.device.stateSpec;
    const ram = layoutRamMap([{ gpa: 0, size: MEM }]);
    const checked = MmioTransport.check(saved, spec, ram);
    assertEquals(VirtioDevice.check(saved.device, spec, ram), checked.device);
    const fresh = harness(make(), { mem: h.mem });
    fresh.transport.restore(checked);
    assertEquals(wire(fresh.transport.save()), saved);
    // A refused state changes nothing.
    const other = harness(make(), { mem: h.mem });
    const before = other.transport.save();
    assertThrows(() =>
      other.transport.restore({
        ...saved,
        device: { ...saved.device, queues: saved.device.queues.slice(1) },
      })
    );
    assertEquals(other.transport.save(), before);
  });
}

Deno.test("persist: the backends' own states check and round-trip", () => {
  const c = new ConsoleDevice({ output: () => {} });
  c.input(new Uint8Array([1, 2, 3]));
  c.resize(132, 43);
  const cs = wire(c.save());
  const c2 = new ConsoleDevice({ output: () => {} });
  c2.restore(ConsoleDevice.check(cs));
  assertEquals(c2.save(), c.save());
  assertThrows(() => ConsoleDevice.check({ ...cs, cols: -1 } as ConsoleState), RangeError);

  const backend = { read: () => 0, write: () => true, setOffload: () => {} };
  const n = new NetDevice(backend, { mac: "52:54:00:00:00:01" });
  const ns = wire(n.save());
  const n2 = new NetDevice(backend, { mac: "52:54:00:00:00:01" });
  n2.restore(NetDevice.check(ns));
  assertEquals(n2.save(), n.save());
  assertThrows(() => NetDevice.check({ ...ns, mac: new Uint8Array(5) } as NetState), RangeError);
  assertThrows(
    () => new NetDevice(backend, { mac: "52:54:00:00:00:02" }).restore(ns),
    RangeError,
    "MAC",
  );

  const host = { connect: () => Promise.resolve(null) };
  const v = new VsockDevice({ cid: 9, host });
  const vs = wire(v.save());
  new VsockDevice({ cid: 9, host }).restore(VsockDevice.check(vs));
  assertThrows(() => VsockDevice.check({ cid: 9 } as unknown as VsockState), RangeError);
  assertThrows(() => new VsockDevice({ cid: 10, host }).restore(vs), RangeError, "CID");
});

Deno.test("persist: Uart and I8042 round-trip; bad states change nothing", () => {
  const out: number[] = [];
  const u = new Uart(Uart.createState(), {
    output: (b) => out.push(b),
    interrupt: { trigger() {} },
  });
  u.write(3, new Uint8Array([0x83])); // LCR: DLAB
  u.write(0, new Uint8Array([0x01])); // DLL
  u.write(3, new Uint8Array([0x03])); // 8N1
  u.write(1, new Uint8Array([0x05])); // IER
  u.write(7, new Uint8Array([0x5a])); // SCR
  u.receive(new Uint8Array([0x41, 0x42]));
  const us = wire(u.save());
  const u2 = new Uart(Uart.createState(), { output: () => {}, interrupt: { trigger() {} } });
  u2.restore(Uart.check(us));
  assertEquals(u2.save(), u.save());
  const before = u2.save();
  assertThrows(() => u2.restore({ ...us, scr: 999 }), RangeError, "scr");
  assertEquals(u2.save(), before);

  const k = new I8042({ onReset: () => {} });
  k.write(4, new Uint8Array([0x20])); // read the command byte: one byte queued
  const ks = wire(k.save());
  const k2 = new I8042({ onReset: () => {} });
  k2.restore(I8042.check(ks));
  assertEquals(k2.save(), k.save());
  assertThrows(() => k2.restore({ ...ks, buffer: [0x1000] }), RangeError);
  assertEquals(k2.save(), k.save());
});

Deno.test("persist: a vCPU state survives the snapshot encoding and its check", () => {
  const s = vcpuState(1);
  const back = validateVcpuState(wire(s), 1);
  assertEquals(back, s as unknown as typeof back);
  assertThrows(() => validateVcpuState(wire(s), 0), Error, "state is for vCPU 1");
});

Deno.test("persist: the management device round-trips with its virtual devices; a bad state changes nothing", async () => {
  const { AdminDriver, VirtualDriver } = await import("../testing/admin_driver.ts");
  const { ManagementDevice, virtualDevices } = await import("../devices/management.ts");
  const factory = virtualDevices({ disks: [new MemoryDisk(64 * 1024)] });
  const a = AdminDriver.open({ memSize: MEM, factory });
  const v = new VirtualDriver(a, a.create(4));
  v.map(0, 0, MEM);
  assert(v.init());
  const q = v.setupQueue(0, 8);
  v.driverOk();
  q.add([a.h.driver.inBuffer(8)]);
  v.kick(q);
  a.create(2, Uint8Array.of(0, 0, 0, 0), 0xffff_ffffn);
  await a.h.transport.stop();
  const saved = wire(a.h.transport.save());
  const ram = layoutRamMap([{ gpa: 0, size: MEM }]);
  const backend = saved.device.backend;
  assertEquals(ManagementDevice.check(backend, ram, factory), backend);
  const h2 = harness(new ManagementDevice({ mem: a.mem, factory }), { mem: a.mem });
  h2.transport.restore(MmioTransport.check(saved, h2.device.stateSpec, a.mem));
  assertEquals(h2.transport.save(), saved);
  // Refused: a mapping outside RAM; the restored device keeps what it had.
  const before = h2.transport.save();
  const bad = structuredClone(saved);
  (bad.device.backend as { devices: { mappings: number[][] }[] }).devices[0]!.mappings[0] = [
    0,
    MEM,
    4096,
  ];
  assertThrows(() => h2.transport.restore(bad), RangeError, "not guest RAM");
  assertEquals(h2.transport.save(), before);
});
