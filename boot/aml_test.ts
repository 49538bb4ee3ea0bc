/** The AML encoder against the encodings the ACPI specification gives (and iasl emits). */

import { assertEquals, assertThrows } from "@std/assert";
import {
  arg,
  device,
  eisaId,
  ifThen,
  integer,
  lEqual,
  method,
  name,
  nameString,
  notify,
  pkg,
  pkgLength,
  resource,
  resourceTemplate,
  returnOf,
  scope,
  string,
} from "./aml.ts";

const hex = (b: Uint8Array) => [...b].map((x) => x.toString(16).padStart(2, "0")).join(" ");
const seg = (s: string) => [...new TextEncoder().encode(s)];

Deno.test("aml: package lengths in 1 to 4 bytes, counting themselves", () => {
  assertEquals([...pkgLength(10)], [11]);
  assertEquals([...pkgLength(62)], [63]);
  assertEquals([...pkgLength(63)], [0x41, 0x04], "65 in two bytes");
  assertEquals([...pkgLength(0x1000)], [0x83, 0x00, 0x01], "0x1003 in three bytes");
  assertThrows(() => pkgLength(1 << 28), RangeError);
});

Deno.test("aml: names, integers, strings and EISA ids", () => {
  assertEquals([...nameString("\\_SB")], [0x5c, ...seg("_SB_")]);
  assertEquals([...nameString("\\_SB.COM1")], [0x5c, 0x2e, ...seg("_SB_COM1")]);
  assertEquals([...nameString("^^A.B.C")], [0x5e, 0x5e, 0x2f, 3, ...seg("A___B___C___")]);
  assertThrows(() => nameString("lower"), RangeError);
  assertEquals([...integer(0)], [0x00]);
  assertEquals([...integer(1)], [0x01]);
  assertEquals([...integer(0x3f8)], [0x0b, 0xf8, 0x03]);
  assertEquals([...integer(0xd000_0000)], [0x0c, 0, 0, 0, 0xd0]);
  assertEquals([...integer(1n << 40n)], [0x0e, 0, 0, 0, 0, 0, 1, 0, 0]);
  assertEquals([...string("LNRO0005")], [0x0d, ...seg("LNRO0005"), 0]);
  // The specification's example: Name (_HID, EisaId ("PNP0501")).
  assertEquals(hex(name("_HID", eisaId("PNP0501"))), "08 5f 48 49 44 0c 41 d0 05 01");
});

Deno.test("aml: scopes, devices, methods, packages and resource templates nest", () => {
  const d = device("COM1", [name("_UID", integer(0))]);
  assertEquals(hex(d), "5b 82 0b 43 4f 4d 31 08 5f 55 49 44 00");
  const s = scope("\\_SB", [d]);
  assertEquals(s[0], 0x10);
  assertEquals(s[1], s.byteLength - 1, "the package length covers the rest");
  assertEquals(hex(method("_STA", 0, [returnOf(integer(0xf))])), "14 09 5f 53 54 41 00 a4 0a 0f");
  assertEquals(hex(pkg([integer(5), integer(0)])), "12 05 02 0a 05 00");
  const rt = resourceTemplate([resource.io(0x3f8, 8), resource.interrupt(4, false)]);
  assertEquals(
    hex(rt),
    "11 16 0a 13 47 01 f8 03 f8 03 01 08 89 06 00 03 01 04 00 00 00 79 00",
  );
  assertEquals(
    hex(resource.memory32Fixed(0xd000_0000, 0x1000)),
    "86 09 00 01 00 00 00 d0 00 10 00 00",
  );
});

Deno.test("aml: Arg0, LEqual, If and Notify, as the GED's _EVT uses them", () => {
  assertEquals(hex(arg(0)), "68");
  assertEquals(hex(arg(6)), "6e");
  assertThrows(() => arg(7), RangeError);
  assertEquals(hex(lEqual(arg(0), integer(0x17))), "93 68 0a 17");
  assertEquals(hex(notify("\\_SB.VGEN", 0x80)), "86 5c 2e 5f 53 42 5f 56 47 45 4e 0a 80");
  // If (Arg0 == 0x17) { Notify (\_SB.VGEN, 0x80) }: the package length counts the predicate
  // and the body (4 + 13 bytes) and itself.
  assertEquals(
    hex(ifThen(lEqual(arg(0), integer(0x17)), [notify("\\_SB.VGEN", 0x80)])),
    "a0 12 93 68 0a 17 86 5c 2e 5f 53 42 5f 56 47 45 4e 0a 80",
  );
});
