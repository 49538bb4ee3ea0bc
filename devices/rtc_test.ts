/** The CMOS RTC: the host's time in the guest's format, UIP like the chip, setting, state. */

import { assertEquals, assertThrows } from "@std/assert";
import { fromJson, toJson } from "../snapshot/format.ts";
import { Rtc, RTC_REG } from "./rtc.ts";

function rig(start: number) {
  let now = start;
  const rtc = new Rtc({ now: () => now });
  const get = (i: number) => {
    rtc.write(0, new Uint8Array([i | 0x80])); // NMI mask bit: ignored
    const b = new Uint8Array(1);
    rtc.read(1, b);
    return b[0]!;
  };
  const set = (i: number, v: number) => {
    rtc.write(0, new Uint8Array([i]));
    rtc.write(1, new Uint8Array([v]));
  };
  return { rtc, get, set, advance: (ms: number) => (now += ms) };
}

const T = Date.UTC(2026, 10, 27, 16, 5, 9, 500); // a Friday

Deno.test("rtc: the host's UTC time in BCD, 24-hour, as firmware leaves it", () => {
  const { get } = rig(T);
  assertEquals(
    [0x00, 0x02, 0x04, 0x06, 0x07, 0x08, 0x09, 0x32].map(get),
    [0x09, 0x05, 0x16, 0x06, 0x27, 0x11, 0x26, 0x20],
  );
  assertEquals(get(RTC_REG.A), 0x26);
  assertEquals(get(RTC_REG.B), 0x02);
  assertEquals(get(RTC_REG.C), 0, "no interrupt pending");
  assertEquals(get(RTC_REG.D), 0x80, "valid RAM and time");
});

Deno.test("rtc: binary and 12-hour modes follow register B", () => {
  const { get, set } = rig(T);
  set(RTC_REG.B, 0x04); // binary, 12-hour
  assertEquals([get(0x00), get(0x02), get(0x04)], [9, 5, 0x80 | 4], "4 pm");
  set(RTC_REG.B, 0x06); // binary, 24-hour
  assertEquals(get(0x04), 16);
});

Deno.test("rtc: update-in-progress only in the last 244 µs of a second", () => {
  const { get, advance } = rig(Date.UTC(2026, 0, 1, 0, 0, 0, 0));
  assertEquals(get(RTC_REG.A) & 0x80, 0);
  advance(999.8);
  assertEquals(get(RTC_REG.A) & 0x80, 0x80);
  advance(0.3);
  assertEquals(get(RTC_REG.A) & 0x80, 0, "the update is done");
});

Deno.test("rtc: the guest sets the time under SET; it then runs on from there", () => {
  const { get, set, advance } = rig(T);
  set(RTC_REG.B, 0x82); // SET, BCD, 24-hour
  set(0x09, 0x30); // 2030
  set(0x08, 0x01);
  set(0x07, 0x02);
  set(0x04, 0x03);
  set(0x02, 0x04);
  set(0x00, 0x05);
  advance(5000);
  assertEquals(get(0x00), 0x05, "frozen while SET is up");
  set(RTC_REG.B, 0x02);
  advance(2000);
  assertEquals([get(0x09), get(0x08), get(0x07), get(0x04), get(0x02), get(0x00)], [
    0x30,
    0x01,
    0x02,
    0x03,
    0x04,
    0x07,
  ]);
  assertEquals(get(RTC_REG.A) & 0x7f, 0x26);
});

Deno.test("rtc: a time the guest spells out of range is refused; the state stays restorable", () => {
  const { rtc, get, set } = rig(T);
  set(RTC_REG.B, 0x82); // SET, BCD
  set(0x32, 0xff); // century "165": year 16 599
  set(0x09, 0x99);
  set(RTC_REG.B, 0x02);
  assertEquals([get(0x32), get(0x09)], [0x20, 0x26], "the clock kept its time");
  const saved = fromJson(toJson(rtc.save())) as ReturnType<Rtc["save"]>;
  assertEquals(Rtc.check(saved).offsetMs, 0);
});

Deno.test("rtc: CMOS RAM keeps its bytes; the state round-trips; a bad one is refused", () => {
  const { rtc, get, set } = rig(T);
  set(0x40, 0xab);
  set(RTC_REG.C, 0xff); // read-only
  assertEquals(get(0x40), 0xab);
  assertEquals(get(RTC_REG.C), 0);
  set(0x00, 0x10); // the guest moved the clock by a second
  const saved = fromJson(toJson(rtc.save())) as ReturnType<Rtc["save"]>;
  const other = new Rtc({ now: () => T });
  other.restore(Rtc.check(saved));
  assertEquals(other.save(), rtc.save());
  const b = new Uint8Array(1);
  other.write(0, new Uint8Array([0x00]));
  other.read(1, b);
  assertEquals(b[0], 0x10, "the offset came along");
  assertThrows(() => other.restore({ ...saved, cmos: new Uint8Array(3) }), RangeError);
  assertThrows(() => Rtc.check({ ...saved, offsetMs: NaN }), RangeError);
  assertEquals(other.save(), rtc.save(), "a refused state changes nothing");
});
