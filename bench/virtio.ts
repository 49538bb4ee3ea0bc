/**
 * `deno task bench:virtio`: the virtqueue hot path and the notify-to-interrupt latency.
 *
 * - `virtqueue_chains_per_s`: device-side pop + add_used (+ the event-index interrupt
 *   decision) of 1-descriptor chains on a 256-entry queue, host only.
 * - `notify_to_irq_us`: a real-mode test guest sends a request (notification through the
 *   ioeventfd) and halts until the completion interrupt (irqfd) runs its handler, N times;
 *   the time of N = 1 is subtracted from N = 1 + LOOPS to drop the setup.
 *
 * Prints one `name value` per line.
 */

import { GuestMemory } from "../memory/guest_memory.ts";
import { DummyDevice } from "../testing/dummy_device.ts";
import { bootGuest } from "../testing/kvm_guests.ts";
import { DESC_F } from "../virtio/constants.ts";
import { Queue } from "../virtio/queue.ts";
import { attachVirtioMmio } from "../vmm/virtio_mmio.ts";
import { benchOnKvm } from "../portable/bench.ts";

await benchOnKvm(import.meta.url);

function chainsPerSecond(): number {
  const size = 256;
  const mem = GuestMemory.allocate([{ gpa: 0, size: 0x100000 }]);
  const q = new Queue(size);
  q.setAddress("descAddr", 0x10000);
  q.setAddress("availAddr", 0x20000);
  q.setAddress("usedAddr", 0x30000);
  q.setReady(true);
  q.eventIdx = true;
  for (let i = 0; i < size; i++) {
    mem.writeU64(q.descAddr + 16 * i, 0x40000 + 64 * i);
    mem.writeU32(q.descAddr + 16 * i + 8, 64);
    mem.writeU16(q.descAddr + 16 * i + 12, DESC_F.WRITE);
    mem.writeU16(q.availAddr + 4 + 2 * i, i);
  }
  let avail = 0, done = 0, interrupts = 0;
  const round = () => {
    avail = (avail + size) & 0xffff; // the driver publishes a full ring
    mem.storeU16Atomic(q.availAddr + 2, avail);
    mem.storeU16Atomic(q.availAddr + 4 + 2 * size, (avail - 1) & 0xffff); // used_event
    for (let c = q.pop(mem); c; c = q.pop(mem)) {
      q.addUsed(mem, c.head, 64);
      if (q.needsInterrupt(mem)) interrupts++;
      done++;
    }
  };
  for (let i = 0; i < 2000; i++) round(); // warm up the JIT
  done = 0;
  const t0 = performance.now();
  while (performance.now() - t0 < 1000) for (let i = 0; i < 100; i++) round();
  const s = (performance.now() - t0) / 1000;
  if (interrupts === 0) throw new Error("no interrupt decision was true");
  return done / s;
}

async function guestLoop(n: number): Promise<number> {
  await using m = await bootGuest("virtio");
  const backend = new DummyDevice({ queues: [8] });
  attachVirtioMmio(m, backend, { base: 0xd0000, gsi: 5 });
  m.memory.writeU32(0x5010, n);
  const t0 = performance.now();
  m.run();
  const r = await m.whenExit();
  const ms = performance.now() - t0;
  if (r.kind !== "exit" || r.code !== 0) throw new Error(`virtio guest: ${JSON.stringify(r)}`);
  if (backend.processed !== n) {
    throw new Error(`virtio guest: ${backend.processed} of ${n} requests`);
  }
  return ms;
}

console.log(`virtqueue_chains_per_s ${Math.round(chainsPerSecond())}`);
const LOOPS = Number(Deno.env.get("BENCH_LOOPS") ?? 2000);
let best = Infinity;
for (let i = 0; i < 3; i++) {
  const base = await guestLoop(1);
  const full = await guestLoop(1 + LOOPS);
  best = Math.min(best, ((full - base) * 1000) / LOOPS);
}
console.log(`notify_to_irq_us ${best.toFixed(1)}`);
