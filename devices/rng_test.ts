import { assert, assertEquals, assertNotEquals } from "@std/assert";
import { harness } from "../testing/setup.ts";
import { RNG_MAX_PER_REQUEST, RngDevice } from "./rng.ts";

function live() {
  const h = harness(new RngDevice(), { memSize: 0x400000 });
  assert(h.driver.init().ok);
  const q = h.driver.setupQueue(0);
  h.driver.driverOk();
  return { ...h, q };
}

Deno.test("virtio-rng fills the writable buffers with random bytes", () => {
  const h = live();
  const a = h.driver.inBuffer(32), b = h.driver.inBuffer(32);
  const id = h.q.add([a, b]);
  h.driver.kick(h.q);
  assertEquals(h.q.getUsed(), { id, len: 64 });
  const bytes = h.mem.read(a.addr, 32);
  assertNotEquals([...bytes], new Array(32).fill(0));
  assertNotEquals([...bytes], [...h.mem.read(b.addr, 32)]);
  assertEquals(h.irq.count, 1);
});

Deno.test("virtio-rng caps a request at 64 KiB and returns read-only chains empty", () => {
  const h = live();
  const big = h.driver.inBuffer(RNG_MAX_PER_REQUEST * 2);
  const id = h.q.add([big]);
  const ro = h.q.add([h.driver.outBuffer(new Uint8Array(8))]);
  h.driver.kick(h.q);
  assertEquals(h.q.drainUsed(), [{ id, len: RNG_MAX_PER_REQUEST }, { id: ro, len: 0 }]);
});

Deno.test("virtio-rng stop/resume: no request is taken while stopped, all are after", async () => {
  const h = live();
  await h.transport.stop();
  h.q.add([h.driver.inBuffer(8)]);
  h.driver.kick(h.q);
  assertEquals(h.q.getUsed(), null);
  assertEquals(h.irq.count, 0);
  h.transport.resume();
  assertEquals(h.q.getUsed()?.len, 8);
  assertEquals(h.irq.count, 1);
});

Deno.test("virtio-rng save/restore round-trip continues on a fresh device", () => {
  const h = live();
  h.q.add([h.driver.inBuffer(4)]);
  h.driver.kick(h.q);
  h.q.drainUsed();
  const s = JSON.parse(JSON.stringify(h.transport.save()));
  const h2 = harness(new RngDevice(), { mem: h.mem });
  h2.transport.restore(s);
  assertEquals(h2.transport.save(), s);
  h2.transport.resume();
  h.q.add([h.driver.inBuffer(4)]);
  h2.device.notify(0);
  assertEquals(h.q.getUsed()?.len, 4);
});
