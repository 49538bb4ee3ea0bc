import { assertEquals, assertThrows } from "@std/assert";
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
  assertThrows(() => k2.restore({ ...s, buffer: [0x400] }), RangeError);
  assertThrows(
    () => k2.restore({ ...s, buffer: [0x2ff] }),
    RangeError,
    "bad state",
    "timeout without AUX",
  );
});

/** Linux's i8042 driver steps, as port accesses. */
function linuxSide(k: I8042) {
  const rd = (o: number) => {
    const d = new Uint8Array(1);
    k.read(o, d);
    return d[0]!;
  };
  const cmd = (c: number, param?: number) => {
    k.write(4, new Uint8Array([c]));
    if (param !== undefined) k.write(0, new Uint8Array([param]));
  };
  return { rd, cmd };
}

Deno.test("i8042: Linux's AUX probe ends at once with no AUX port (loop 0xFF, test 0x02)", () => {
  const k = new I8042({ onReset: () => {} });
  const { rd, cmd } = linuxSide(k);
  assertEquals(rd(4) & 0x10, 0x10, "keylock bit set: not inhibited");
  cmd(0xd3, 0x5a); // AUX loopback
  const st = rd(4);
  assertEquals(st & 0x21, 0x21, "a byte on the AUX side");
  assertEquals(rd(0), 0xff, "the loop does not echo: no AUX port");
  cmd(0xa9); // AUX interface test
  assertEquals(rd(0), 0x02, "clock line stuck: the driver gives up on AUX");
  assertEquals(rd(4) & 1, 0, "nothing left over");
  cmd(0xd4, 0xf2); // a byte for a mouse that is not there
  assertEquals(rd(4) & 0x61, 0x61, "AUX byte with the timeout bit");
  assertEquals(rd(0), 0xfe);
});

Deno.test("i8042: the command byte follows AUX/keyboard disable and enable", () => {
  const k = new I8042({ onReset: () => {} });
  const { rd, cmd } = linuxSide(k);
  const ctr = () => (cmd(0x20), rd(0));
  cmd(0xa7);
  assertEquals(ctr() & 0x20, 0x20, "AUX disabled");
  cmd(0xa8);
  assertEquals(ctr() & 0x20, 0);
  cmd(0xad);
  assertEquals(ctr() & 0x10, 0x10, "keyboard disabled");
  cmd(0xae);
  assertEquals(ctr() & 0x10, 0);
});

Deno.test("i8042: the keyboard acknowledges, identifies as MF2 and raises IRQ 1", () => {
  let irqs = 0;
  const k = new I8042({ onReset: () => {}, onInterrupt: () => irqs++ });
  const { rd } = linuxSide(k);
  const send = (b: number) => k.write(0, new Uint8Array([b]));
  const drain = () => {
    const out = [];
    while (rd(4) & 1) out.push(rd(0));
    return out;
  };
  send(0xf2);
  assertEquals(drain(), [0xfa, 0xab, 0x83]);
  send(0xff);
  assertEquals(drain(), [0xfa, 0xaa]);
  send(0xed); // set LEDs
  send(0x00);
  assertEquals(drain(), [0xfa, 0xfa]);
  assertEquals(irqs, 4);
  // With keyboard interrupts off in the command byte, no IRQ.
  k.write(4, new Uint8Array([0x60]));
  k.write(0, new Uint8Array([0x46]));
  send(0xf4);
  assertEquals([drain(), irqs], [[0xfa], 4]);
  // A full buffer drops bytes instead of growing.
  for (let i = 0; i < 40; i++) send(0xf4);
  assertEquals(drain().length, 16);
});
