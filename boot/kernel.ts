/**
 * Kernel images: bzImage (the x86 boot protocol's setup header, validated) entered at its
 * 64-bit entry point, and ELF `vmlinux` entered at its ELF entry, or through PVH when the
 * Xen PHYS32_ENTRY note is present. Everything read from the file is checked: a file that
 * is not a kernel gets a clear error, never a wild load.
 *
 * @module
 */

/** A kernel, parsed and ready to load. */
export interface KernelImage {
  kind: "bzimage" | "elf";
  /** Pieces to copy into guest memory. */
  segments: { gpa: number; bytes: Uint8Array; memSize: number }[];
  /** 64-bit entry point (bzImage: load address + 0x200; ELF: e_entry). */
  entry64: number;
  /** PVH 32-bit entry, when the ELF has the note. */
  pvhEntry?: number;
  /** The bzImage setup header bytes (0x1f1 up to its end), to copy into boot_params. */
  setupHeader?: Uint8Array;
  /** Boot protocol version (bzImage). */
  protocol?: number;
  /** The highest address the initrd may end at. */
  initrdAddrMax: number;
  /** The longest command line the kernel takes (without the NUL). */
  cmdlineMax: number;
  /** Bytes the kernel needs from its load address while decompressing and booting. */
  initSize: number;
}

/** Where a bzImage's protected-mode part is loaded. */
export const KERNEL_LOAD = 0x100000;
const HDRS = 0x53726448; // "HdrS"
const XLF_KERNEL_64 = 1;

/** A file that cannot be booted, and why. */
export class KernelError extends Error {
  constructor(message: string) {
    super(message);
    this.name = "KernelError";
  }
}

/** Parses a bzImage or an ELF vmlinux. */
export function parseKernel(file: Uint8Array, name = "kernel"): KernelImage {
  if (
    file.byteLength >= 4 && file[0] === 0x7f && file[1] === 0x45 && file[2] === 0x4c &&
    file[3] === 0x46
  ) {
    return parseElf(file, name);
  }
  return parseBzImage(file, name);
}

/** Parses and validates a bzImage's setup header. */
export function parseBzImage(file: Uint8Array, name = "kernel"): KernelImage {
  const bad = (why: string): never => {
    throw new KernelError(`Cannot boot ${name}: ${why}`);
  };
  if (file.byteLength < 0x270) bad("too small to be a kernel");
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (v.getUint32(0x202, true) !== HDRS) {
    bad("not a bzImage or ELF kernel (no HdrS signature at 0x202)");
  }
  if (v.getUint16(0x1fe, true) !== 0xaa55) bad("bad boot flag (0xAA55 expected at 0x1fe)");
  const protocol = v.getUint16(0x206, true);
  if (protocol < 0x020c) {
    bad(
      `boot protocol ${protocol >> 8}.${
        protocol & 0xff
      } is too old (2.12 or newer needed for 64-bit entry)`,
    );
  }
  const xloadflags = v.getUint16(0x236, true);
  if (!(xloadflags & XLF_KERNEL_64)) {
    bad("the kernel has no 64-bit entry point (XLF_KERNEL_64 is clear)");
  }
  if (!(file[0x211]! & 1)) bad("the kernel is not loadable high (LOADED_HIGH is clear)");
  let setupSects = file[0x1f1]!;
  if (setupSects === 0) setupSects = 4;
  const setupBytes = (setupSects + 1) * 512;
  if (setupBytes >= file.byteLength) {
    bad(`setup_sects ${setupSects} leaves no protected-mode kernel`);
  }
  const initSize = v.getUint32(0x260, true);
  const payload = file.subarray(setupBytes);
  if (initSize < payload.byteLength) {
    bad(`init_size ${initSize} is smaller than the kernel (${payload.byteLength})`);
  }
  const headerEnd = 0x202 + file[0x201]!; // the jump at 0x200 skips to the header's end
  if (headerEnd <= 0x202 || headerEnd > setupBytes) bad("bad setup header length");
  const initrdAddrMax = v.getUint32(0x22c, true);
  const cmdlineMax = v.getUint32(0x238, true);
  if (cmdlineMax === 0) bad("cmdline_size is 0");
  return {
    kind: "bzimage",
    segments: [{ gpa: KERNEL_LOAD, bytes: payload, memSize: payload.byteLength }],
    entry64: KERNEL_LOAD + 0x200,
    setupHeader: file.slice(0x1f1, headerEnd),
    protocol,
    initrdAddrMax,
    cmdlineMax,
    initSize,
  };
}

const PT_LOAD = 1, PT_NOTE = 4, EM_X86_64 = 62, XEN_ELFNOTE_PHYS32_ENTRY = 18;

/** Parses an ELF64 x86-64 vmlinux (program headers, entry, and the PVH note). */
export function parseElf(file: Uint8Array, name = "kernel"): KernelImage {
  const bad = (why: string): never => {
    throw new KernelError(`Cannot boot ${name}: ${why}`);
  };
  if (file.byteLength < 64) bad("truncated ELF header");
  const v = new DataView(file.buffer, file.byteOffset, file.byteLength);
  if (file[4] !== 2) bad("not a 64-bit ELF");
  if (file[5] !== 1) bad("not a little-endian ELF");
  if (v.getUint16(18, true) !== EM_X86_64) bad("not an x86-64 ELF");
  const entry = Number(v.getBigUint64(24, true));
  const phoff = Number(v.getBigUint64(32, true));
  const phentsize = v.getUint16(54, true);
  const phnum = v.getUint16(56, true);
  if (phentsize < 56 || phnum === 0 || phnum > 64 || phoff + phnum * phentsize > file.byteLength) {
    bad("bad program header table");
  }
  const segments: KernelImage["segments"] = [];
  let pvhEntry: number | undefined;
  let end = 0;
  for (let i = 0; i < phnum; i++) {
    const o = phoff + i * phentsize;
    const type = v.getUint32(o, true);
    const offset = Number(v.getBigUint64(o + 8, true));
    const paddr = Number(v.getBigUint64(o + 24, true));
    const filesz = Number(v.getBigUint64(o + 32, true));
    const memsz = Number(v.getBigUint64(o + 40, true));
    if (offset + filesz > file.byteLength) bad(`program header ${i} is out of bounds`);
    if (type === PT_LOAD) {
      if (filesz > memsz) bad(`segment ${i} has more file bytes than memory`);
      if (paddr < KERNEL_LOAD || paddr + memsz > 0xc000_0000) {
        bad(`segment ${i} at 0x${paddr.toString(16)} is outside low RAM`);
      }
      segments.push({ gpa: paddr, bytes: file.subarray(offset, offset + filesz), memSize: memsz });
      end = Math.max(end, paddr + memsz);
    } else if (type === PT_NOTE) {
      pvhEntry ??= findPvhNote(v, offset, filesz);
    }
  }
  if (segments.length === 0) bad("no loadable segment");
  if (!segments.some((s) => entry >= s.gpa && entry < s.gpa + s.memSize)) {
    bad(`the entry 0x${entry.toString(16)} is not in a loaded segment`);
  }
  return {
    kind: "elf",
    segments,
    entry64: entry,
    ...(pvhEntry !== undefined ? { pvhEntry } : {}),
    initrdAddrMax: 0x7fff_ffff,
    cmdlineMax: 2047,
    initSize: end - KERNEL_LOAD,
  };
}

/** Walks ELF notes for Xen's PHYS32_ENTRY (the PVH entry point). */
function findPvhNote(v: DataView, off: number, len: number): number | undefined {
  let o = off;
  const end = off + len;
  while (o + 12 <= end) {
    const namesz = v.getUint32(o, true),
      descsz = v.getUint32(o + 4, true),
      type = v.getUint32(o + 8, true);
    const name = o + 12, desc = name + ((namesz + 3) & ~3), next = desc + ((descsz + 3) & ~3);
    if (next > end || next <= o) return undefined;
    const isXen = namesz === 4 && v.getUint32(name, true) === 0x006e6558; // "Xen\0"
    if (isXen && type === XEN_ELFNOTE_PHYS32_ENTRY && descsz >= 4) return v.getUint32(desc, true);
    o = next;
  }
  return undefined;
}
