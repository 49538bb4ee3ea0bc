/**
 * The device thread's side of the vCPU mailboxes, without KVM: accesses posted in a
 * mailbox (from this thread, and from a Worker standing in for a vCPU thread) are served
 * on the buses and answered; a device that throws or an access that hits nothing is a
 * fault reported, and the access completes.
 */

import { assert, assertEquals } from "@std/assert";
import { Bus } from "../bus/bus.ts";
import { ExitDispatcher } from "./exit_dispatcher.ts";
import { ACCESS, Mailbox, MB, MB_STATE } from "./mailbox.ts";
import { within } from "@denovm/sys/timer";

function post(mb: Mailbox, kind: number, addr: number, data: number[]) {
  mb.i32[MB.KIND] = kind;
  mb.i32[MB.ADDR_LO] = addr % 0x1_0000_0000;
  mb.i32[MB.ADDR_HI] = Math.floor(addr / 0x1_0000_0000);
  mb.i32[MB.LEN] = data.length;
  mb.data.set(data);
  Atomics.store(mb.i32, MB.STATE, MB_STATE.REQUEST);
}

function rig() {
  const pio = new Bus("pio"), mmio = new Bus("mmio");
  const writes: [number, number[]][] = [];
  pio.register(0x3f8, 8, {
    read: (o, d) => d.fill(0x40 + o),
    write: (o, d) => void writes.push([o, [...d]]),
  });
  mmio.register(0xd000_0000, 0x1000, {
    read: (_o, d) => d.set([0xef, 0xbe, 0xad, 0xde].slice(0, d.byteLength)),
    write: () => {
      throw new Error("device bug");
    },
  });
  const faults: string[] = [];
  const d = new ExitDispatcher({ pio, mmio, onFault: (m) => faults.push(m) });
  return { d, writes, faults };
}

Deno.test("dispatcher: port and MMIO accesses are served and answered; faults complete too", () => {
  const { d, writes, faults } = rig();
  const mb = Mailbox.create();
  d.add(mb);
  post(mb, ACCESS.PIO_OUT, 0x3f9, [0x41]);
  assertEquals(d.serveAll(), 1);
  assertEquals(Atomics.load(mb.i32, MB.STATE), MB_STATE.RESPONSE);
  assertEquals(writes, [[1, [0x41]]]);
  post(mb, ACCESS.PIO_IN, 0x3fd, [0]);
  d.serveAll();
  assertEquals(mb.data[0], 0x45);
  post(mb, ACCESS.MMIO_READ, 0xd000_0010, [0, 0, 0, 0]);
  d.serveAll();
  assertEquals([...mb.data.subarray(0, 4)], [0xef, 0xbe, 0xad, 0xde]);
  post(mb, ACCESS.PIO_IN, 0x80, [0, 0]); // nothing there: reads all ones
  d.serveAll();
  assertEquals([...mb.data.subarray(0, 2)], [0xff, 0xff]);
  post(mb, ACCESS.MMIO_WRITE, 0xd000_0000, [1, 2, 3, 4]); // the device throws
  assertEquals(d.serveAll(), 1);
  assertEquals(Atomics.load(mb.i32, MB.STATE), MB_STATE.RESPONSE, "still answered");
  post(mb, ACCESS.PIO_OUT, 0x80, [1]);
  d.serveAll();
  assert(faults.some((f) => f.includes("device bug")), faults.join("\n"));
  assert(faults.some((f) => f.includes("Unhandled port write at 0x80")), faults.join("\n"));
  assertEquals(d.serveAll(), 0, "nothing pending");
});

Deno.test({
  name: "dispatcher: a Worker posting like a vCPU thread is answered while this loop runs",
  sanitizeOps: false,
  async fn() {
    const { d, writes } = rig();
    const mb = Mailbox.create();
    d.add(mb);
    d.start();
    const src = `
      const MB = ${JSON.stringify(MB)}, ST = ${JSON.stringify(MB_STATE)}, A = ${
      JSON.stringify(ACCESS)
    };
      self.onmessage = (e) => {
        const { box, bell } = e.data;
        const i32 = new Int32Array(box, 0, MB.BYTES / 4), data = new Uint8Array(box, MB.DATA_BYTE, 8);
        const b = new Int32Array(bell);
        const got = [];
        for (let k = 0; k < 50; k++) {
          i32[MB.KIND] = k % 2 ? A.PIO_IN : A.PIO_OUT;
          i32[MB.ADDR_LO] = 0x3f8 + (k % 8); i32[MB.ADDR_HI] = 0; i32[MB.LEN] = 1; data[0] = k;
          Atomics.store(i32, MB.STATE, ST.REQUEST);
          Atomics.add(b, 0, 1); Atomics.notify(b, 0);
          while (Atomics.load(i32, MB.STATE) !== ST.RESPONSE) Atomics.wait(i32, MB.STATE, ST.REQUEST, 1000);
          if (k % 2) got.push(data[0]);
          Atomics.store(i32, MB.STATE, ST.IDLE);
        }
        postMessage(got);
      };`;
    const url = URL.createObjectURL(new Blob([src], { type: "application/javascript" }));
    const w = new Worker(url, { type: "module" });
    try {
      const got = new Promise<number[]>((r) => (w.onmessage = (e) => r(e.data)));
      w.postMessage({ box: mb.sab, bell: d.doorbell });
      const answers = await within(got, 30_000);
      assert(answers, "the worker was answered");
      assertEquals(answers, Array.from({ length: 25 }, (_, i) => 0x40 + ((2 * i + 1) % 8)));
      assertEquals(writes.length, 25);
    } finally {
      w.terminate();
      URL.revokeObjectURL(url);
      await d.stop();
    }
  },
});

Deno.test("dispatcher: unhandled accesses are reported apart and thin out per address", () => {
  const misses: string[] = [];
  const d2 = new ExitDispatcher({
    pio: new Bus("pio"),
    mmio: new Bus("mmio"),
    onMiss: (m) => misses.push(m),
  });
  const mb = Mailbox.create();
  d2.add(mb);
  for (let i = 0; i < 1000; i++) {
    post(mb, ACCESS.PIO_OUT, 0x70, [0x0a]);
    d2.serveAll();
  }
  post(mb, ACCESS.PIO_OUT, 0x80, [1]);
  d2.serveAll();
  assertEquals(misses, [
    "Unhandled port write at 0x70 (1 bytes)",
    "Unhandled port write at 0x70 (1 bytes)",
    "Unhandled port write at 0x70 (1 bytes)",
    "Unhandled port write at 0x70: 10 times so far",
    "Unhandled port write at 0x70: 100 times so far",
    "Unhandled port write at 0x70: 1000 times so far",
    "Unhandled port write at 0x80 (1 bytes)",
  ]);
});
