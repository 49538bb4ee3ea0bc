/**
 * A small typed AML encoder (ACPI 6.5, chapter 20): enough of the language to describe a
 * microVM's devices in a DSDT. Every builder returns the encoded bytes of one term; nest
 * them as the ASL would be nested.
 *
 * @example
 * ```ts
 * import { device, eisaId, name, scope } from "./aml.ts";
 * // Scope (\_SB) { Device (COM1) { Name (_HID, EisaId ("PNP0501")) } }
 * const bytes = scope("\\_SB", [device("COM1", [name("_HID", eisaId("PNP0501"))])]);
 * console.assert(bytes[0] === 0x10); // ScopeOp
 * ```
 *
 * @module
 */

/** Opcodes and prefixes used here. */
export const AML = {
  ZERO: 0x00,
  ONE: 0x01,
  NAME: 0x08,
  BYTE: 0x0a,
  WORD: 0x0b,
  DWORD: 0x0c,
  STRING: 0x0d,
  QWORD: 0x0e,
  SCOPE: 0x10,
  BUFFER: 0x11,
  PACKAGE: 0x12,
  METHOD: 0x14,
  DUAL_NAME: 0x2e,
  MULTI_NAME: 0x2f,
  EXT: 0x5b,
  DEVICE: 0x82, // after EXT
  ARG0: 0x68,
  NOTIFY: 0x86,
  LEQUAL: 0x93,
  IF: 0xa0,
  ROOT: 0x5c,
  PARENT: 0x5e,
  RETURN: 0xa4,
  ONES: 0xff,
} as const;

/** The parts one after another (AML blobs are small: a few KiB at most). */
const concat = (parts: readonly Uint8Array[]): Uint8Array =>
  Uint8Array.from(parts.flatMap((p) => [...p]));

/**
 * PkgLength for a body of `len` bytes: the encoded length counts itself, in 1 to 4 bytes
 * (one byte up to 63, then 4 bits in the lead byte and 8 in each following byte).
 */
export function pkgLength(len: number): Uint8Array {
  for (let n = 1; n <= 4; n++) {
    const total = len + n;
    if (n === 1 && total < 0x40) return new Uint8Array([total]);
    if (n > 1 && total < 1 << (4 + 8 * (n - 1))) {
      const b = new Uint8Array(n);
      b[0] = ((n - 1) << 6) | (total & 0x0f);
      for (let i = 1; i < n; i++) b[i] = (total >> (4 + 8 * (i - 1))) & 0xff;
      return b;
    }
  }
  throw new RangeError(`Cannot encode AML package length ${len}: over 2^28`);
}

/** A name segment: up to 4 characters of A-Z, 0-9 and _, the first not a digit, `_`-padded. */
function nameSeg(seg: string): Uint8Array {
  if (!/^[A-Z_][A-Z0-9_]{0,3}$/.test(seg)) {
    throw new RangeError(`Cannot encode AML name segment ${JSON.stringify(seg)}`);
  }
  return new TextEncoder().encode(seg.padEnd(4, "_"));
}

/** A NameString: `\` (root) and `^` (parent) prefixes, then dot-separated segments. */
export function nameString(path: string): Uint8Array {
  let i = 0;
  const prefix: number[] = [];
  if (path.startsWith("\\")) {
    prefix.push(AML.ROOT);
    i = 1;
  } else {
    while (path[i] === "^") {
      prefix.push(AML.PARENT);
      i++;
    }
  }
  const segs = path.slice(i).split(".").filter((s) => s.length > 0).map(nameSeg);
  const head = segs.length === 0
    ? [AML.ZERO] // NullName
    : segs.length === 1
    ? []
    : segs.length === 2
    ? [AML.DUAL_NAME]
    : [AML.MULTI_NAME, segs.length];
  return concat([new Uint8Array([...prefix, ...head]), ...segs]);
}

/** An integer constant in the smallest encoding (Zero, One, Ones or a prefixed 1/2/4/8 bytes). */
export function integer(v: number | bigint): Uint8Array {
  const n = BigInt(v);
  if (n < 0n || n >= 1n << 64n) throw new RangeError(`Cannot encode AML integer ${v}`);
  if (n === 0n) return new Uint8Array([AML.ZERO]);
  if (n === 1n) return new Uint8Array([AML.ONE]);
  if (n === (1n << 64n) - 1n) return new Uint8Array([AML.ONES]);
  const [op, len] = n < 0x100n
    ? [AML.BYTE, 1]
    : n < 0x1_0000n
    ? [AML.WORD, 2]
    : n < 0x1_0000_0000n
    ? [AML.DWORD, 4]
    : [AML.QWORD, 8];
  const b = new Uint8Array(1 + len);
  b[0] = op;
  for (let i = 0; i < len; i++) b[1 + i] = Number((n >> BigInt(8 * i)) & 0xffn);
  return b;
}

/** A string constant (ASCII, NUL-terminated). */
export function string(s: string): Uint8Array {
  for (let i = 0; i < s.length; i++) {
    const c = s.charCodeAt(i);
    if (c < 1 || c > 0x7f) throw new RangeError("Cannot encode AML string: not ASCII");
  }
  return concat([new Uint8Array([AML.STRING]), new TextEncoder().encode(s), new Uint8Array([0])]);
}

/** `EisaId ("PNP0501")`: the compressed 32-bit form, as a DWord. */
export function eisaId(id: string): Uint8Array {
  if (!/^[A-Z]{3}[0-9A-F]{4}$/.test(id)) throw new RangeError(`Cannot encode EISA id ${id}`);
  const c = (i: number) => id.charCodeAt(i) - 0x40;
  const hex = parseInt(id.slice(3), 16);
  const v = ((c(0) << 26) | (c(1) << 21) | (c(2) << 16) | hex) >>> 0;
  // Stored big-endian in the DWord's bytes.
  const swapped = ((v & 0xff) << 24 | (v & 0xff00) << 8 | (v >>> 8) & 0xff00 | v >>> 24) >>> 0;
  const b = new Uint8Array(5);
  b[0] = AML.DWORD;
  new DataView(b.buffer).setUint32(1, swapped, true);
  return b;
}

/** `Name (name, value)`. */
export function name(n: string, value: Uint8Array): Uint8Array {
  return concat([new Uint8Array([AML.NAME]), nameString(n), value]);
}

/** `Scope (path) { terms }`. */
export function scope(path: string, terms: readonly Uint8Array[]): Uint8Array {
  const body = concat([nameString(path), ...terms]);
  return concat([new Uint8Array([AML.SCOPE]), pkgLength(body.byteLength), body]);
}

/** `Device (name) { terms }`. */
export function device(n: string, terms: readonly Uint8Array[]): Uint8Array {
  const body = concat([nameString(n), ...terms]);
  return concat([new Uint8Array([AML.EXT, AML.DEVICE]), pkgLength(body.byteLength), body]);
}

/** `Method (name, args, NotSerialized) { terms }`. */
export function method(n: string, args: number, terms: readonly Uint8Array[]): Uint8Array {
  if (!Number.isInteger(args) || args < 0 || args > 7) {
    throw new RangeError(`Cannot encode AML method with ${args} arguments`);
  }
  const body = concat([nameString(n), new Uint8Array([args]), ...terms]);
  return concat([new Uint8Array([AML.METHOD]), pkgLength(body.byteLength), body]);
}

/** `Return (value)`. */
export function returnOf(value: Uint8Array): Uint8Array {
  return concat([new Uint8Array([AML.RETURN]), value]);
}

/** `ArgN` inside a method (`n` from 0 to 6). */
export function arg(n: number): Uint8Array {
  if (!Number.isInteger(n) || n < 0 || n > 6) throw new RangeError(`Cannot encode AML Arg${n}`);
  return new Uint8Array([AML.ARG0 + n]);
}

/** `LEqual (a, b)`. */
export function lEqual(a: Uint8Array, b: Uint8Array): Uint8Array {
  return concat([new Uint8Array([AML.LEQUAL]), a, b]);
}

/** `If (predicate) { terms }`. */
export function ifThen(predicate: Uint8Array, terms: readonly Uint8Array[]): Uint8Array {
  const body = concat([predicate, ...terms]);
  return concat([new Uint8Array([AML.IF]), pkgLength(body.byteLength), body]);
}

/** `Notify (object, value)`: e.g. 0x80 for a device-specific event. */
export function notify(path: string, value: number): Uint8Array {
  return concat([new Uint8Array([AML.NOTIFY]), nameString(path), integer(value)]);
}

/** `Package () { elements }` (at most 255 elements). */
export function pkg(elements: readonly Uint8Array[]): Uint8Array {
  if (elements.length > 255) throw new RangeError("Cannot encode an AML package over 255 elements");
  const body = concat([new Uint8Array([elements.length]), ...elements]);
  return concat([new Uint8Array([AML.PACKAGE]), pkgLength(body.byteLength), body]);
}

/** `Buffer () { bytes }`. */
export function buffer(bytes: Uint8Array): Uint8Array {
  const body = concat([integer(bytes.byteLength), bytes]);
  return concat([new Uint8Array([AML.BUFFER]), pkgLength(body.byteLength), body]);
}

/** Resource descriptors for `ResourceTemplate ()` (ACPI 6.5, section 6.4). */
export const resource = {
  /** `IO (Decode16, base, base, 1, len)`. */
  io(base: number, len: number): Uint8Array {
    const b = new Uint8Array(8);
    const v = new DataView(b.buffer);
    b[0] = 0x47;
    b[1] = 1; // 16-bit decode
    v.setUint16(2, base, true);
    v.setUint16(4, base, true);
    b[6] = 1; // alignment
    b[7] = len;
    return b;
  },
  /** `Memory32Fixed (ReadWrite, base, len)`. */
  memory32Fixed(base: number, len: number): Uint8Array {
    const b = new Uint8Array(12);
    const v = new DataView(b.buffer);
    b[0] = 0x86;
    v.setUint16(1, 9, true);
    b[3] = 1; // read-write
    v.setUint32(4, base, true);
    v.setUint32(8, len, true);
    return b;
  },
  /** `Interrupt (ResourceConsumer, Edge|Level, ActiveHigh, Exclusive) { gsi }`. */
  interrupt(gsi: number, level: boolean): Uint8Array {
    const b = new Uint8Array(9);
    const v = new DataView(b.buffer);
    b[0] = 0x89;
    v.setUint16(1, 6, true);
    b[3] = 0x01 | (level ? 0 : 0x02); // consumer; edge-triggered when not level
    b[4] = 1; // one interrupt
    v.setUint32(5, gsi, true);
    return b;
  },
};

/** `ResourceTemplate () { descriptors }`: a buffer ending in an End Tag (checksum 0). */
export function resourceTemplate(descriptors: readonly Uint8Array[]): Uint8Array {
  return buffer(concat([...descriptors, new Uint8Array([0x79, 0])]));
}
