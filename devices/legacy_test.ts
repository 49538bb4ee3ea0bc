import { assert, assertEquals, assertThrows } from "@std/assert";
import { CountingInterrupt } from "../testing/dummy_device.ts";
import { I8042 } from "./i8042.ts";
import { Uart, UART_FIFO, UART_IER, UART_MCR, UART_REG } from "./uart.ts";

function uart() {
  const out: number[] = [];
  const irq = new CountingInterrupt();
  const u = new Uart(Uart.createState(), { output: (b) => out.push(b), interrupt: irq });
  const rd = (o: number) => {
    const d = new Uint8Array(1);
    u.read(o, d);
    return d[0]!;
  };
  const wr = (o: number, v: number) => u.write(o, new Uint8Array([v]));
  return { u, out, irq, rd, wr };
}

Deno.test("8250: THR writes go to the output; LSR always shows the transmitter empty", () => {
  const { out, rd, wr } = uart();
  for (const c of "hi") wr(UART_REG.DATA, c.charCodeAt(0));
  assertEquals(String.fromCharCode(...out), "hi");
  assertEquals(rd(UART_REG.LSR) & 0x60, 0x60);
});

Deno.test("8250: DLAB switches offsets 0/1 to the divisor latch", () => {
  const { out, rd, wr } = uart();
  wr(UART_REG.LCR, 0x80);
  wr(UART_REG.DATA, 0x0c);
  wr(UART_REG.IER, 0x00);
  assertEquals([rd(UART_REG.DATA), rd(UART_REG.IER)], [0x0c, 0]);
  assertEquals(out, [], "a divisor write is not transmitted");
  wr(UART_REG.LCR, 0x03);
  assertEquals(rd(UART_REG.LCR), 0x03);
});

Deno.test("8250: received bytes raise RDI and fill a bounded FIFO that refuses the excess", () => {
  const { u, irq, rd, wr } = uart();
  wr(UART_REG.IER, UART_IER.RDI | UART_IER.RLSI);
  assertEquals(u.receive(new TextEncoder().encode("ab")), 2);
  assertEquals(irq.count, 1);
  assertEquals(rd(UART_REG.IIR_FCR) & 0x0f, 0x04, "IIR: received data");
  assertEquals(rd(UART_REG.LSR) & 1, 1);
  assertEquals([rd(UART_REG.DATA), rd(UART_REG.DATA)], [0x61, 0x62]);
  assertEquals(rd(UART_REG.IIR_FCR) & 0x0f, 0x01, "no interrupt pending");
  assertEquals(u.receive(new Uint8Array(UART_FIFO + 10)), UART_FIFO, "the FIFO is bounded");
  assertEquals(u.rxSpace, 0);
});

Deno.test("8250: enabling THRE interrupts with the transmitter empty raises one; IIR read acks it", () => {
  const { irq, rd, wr } = uart();
  wr(UART_REG.IER, UART_IER.THRI);
  assertEquals(irq.count, 1);
  assertEquals(rd(UART_REG.IIR_FCR) & 0x0f, 0x02);
  assertEquals(rd(UART_REG.IIR_FCR) & 0x0f, 0x01, "acknowledged by the read");
  wr(UART_REG.DATA, 0x41);
  assertEquals(irq.count, 2, "each transmitted byte empties THR again");
});

Deno.test("8250: FIFO detection, scratch register and loopback (Linux autoconfig)", () => {
  const { out, rd, wr } = uart();
  wr(UART_REG.IIR_FCR, 0xe7);
  assertEquals(rd(UART_REG.IIR_FCR) & 0xc0, 0xc0, "16550A FIFO bits");
  wr(UART_REG.SCR, 0xa5);
  assertEquals(rd(UART_REG.SCR), 0xa5);
  wr(UART_REG.MCR, UART_MCR.LOOP | UART_MCR.OUT2 | UART_MCR.RTS);
  assertEquals(rd(UART_REG.MSR) & 0xf0, 0x90, "loopback: RTS->CTS, OUT2->DCD");
  wr(UART_REG.DATA, 0x55);
  assertEquals(out, [], "loopback does not transmit");
  assertEquals(rd(UART_REG.DATA), 0x55, "... it receives");
  wr(UART_REG.MCR, UART_MCR.OUT2);
  assertEquals(rd(UART_REG.MSR) & 0xf0, 0xb0, "lines up again");
});

Deno.test("8250: save/restore round-trip and refusal of bad state", () => {
  const a = uart();
  a.wr(UART_REG.LCR, 0x03);
  a.wr(UART_REG.IER, UART_IER.RDI);
  a.u.receive(new Uint8Array([1, 2, 3]));
  const s = a.u.save();
  const b = uart();
  b.u.restore(JSON.parse(JSON.stringify(s)));
  assertEquals(b.u.save(), s);
  assertEquals(b.rd(UART_REG.DATA), 1);
  assertThrows(() => b.u.restore({ ...s, lcr: 300 }), RangeError, "lcr");
  assertThrows(() => b.u.restore({ ...s, rx: new Array(65).fill(0) }), RangeError, "FIFO");
});

Deno.test("8250: two views of one shared state see each other (vCPU thread and device thread)", () => {
  const state = Uart.createState();
  const out: number[] = [];
  const irq = new CountingInterrupt();
  const vcpuSide = new Uart(state, { output: (b) => out.push(b), interrupt: irq });
  const deviceSide = new Uart(state, { output: () => {}, interrupt: irq });
  vcpuSide.write(UART_REG.IER, new Uint8Array([UART_IER.RDI]));
  deviceSide.receive(new Uint8Array([0x7a]));
  const d = new Uint8Array(1);
  vcpuSide.read(UART_REG.DATA, d);
  assertEquals(d[0], 0x7a);
});

Deno.test("i8042: 0xFE to port 0x64 resets; so does pulling the reset line via the output port", () => {
  let resets = 0;
  const k = new I8042({ onReset: () => resets++ });
  const rd = (o: number) => {
    const d = new Uint8Array(1);
    k.read(o, d);
    return d[0]!;
  };
  assertEquals(rd(4) & 0x04, 0x04, "system flag");
  k.write(4, new Uint8Array([0xaa]));
  assertEquals([rd(4) & 1, rd(0)], [1, 0x55], "self test");
  k.write(4, new Uint8Array([0x20]));
  const ctr = rd(0);
  k.write(4, new Uint8Array([0x60]));
  k.write(0, new Uint8Array([ctr & ~1]));
  k.write(4, new Uint8Array([0x20]));
  assertEquals(rd(0), ctr & ~1, "command byte written and read back");
  k.write(4, new Uint8Array([0xfe]));
  assertEquals(resets, 1);
  k.write(4, new Uint8Array([0xd1]));
  k.write(0, new Uint8Array([0x02]));
  assertEquals(resets, 2);
  const s = k.save();
  const k2 = new I8042({ onReset: () => {} });
  k2.restore(JSON.parse(JSON.stringify(s)));
  assertEquals(k2.save(), s);
  assertThrows(() => k2.restore({ ...s, buffer: [999] }), RangeError);
  assert(true);
});
