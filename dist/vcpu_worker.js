// kvm/consts.ts
var IOCTL = {
  KVM_GET_API_VERSION: 44544,
  KVM_CREATE_VM: 44545,
  KVM_GET_MSR_INDEX_LIST: 3221532162,
  KVM_CHECK_EXTENSION: 44547,
  KVM_GET_VCPU_MMAP_SIZE: 44548,
  KVM_GET_SUPPORTED_CPUID: 3221794309,
  KVM_CREATE_VCPU: 44609,
  KVM_GET_DIRTY_LOG: 1074835010,
  KVM_SET_USER_MEMORY_REGION: 1075883590,
  KVM_SET_TSS_ADDR: 44615,
  KVM_SET_IDENTITY_MAP_ADDR: 1074310728,
  KVM_CREATE_IRQCHIP: 44640,
  KVM_IRQ_LINE: 1074310753,
  KVM_GET_IRQCHIP: 3255348834,
  KVM_SET_IRQCHIP: 2181607011,
  KVM_CREATE_PIT2: 1077980791,
  KVM_GET_PIT2: 2154868383,
  KVM_SET_PIT2: 1081126560,
  KVM_GET_CLOCK: 2150674044,
  KVM_SET_CLOCK: 1076932219,
  KVM_IRQFD: 1075883638,
  KVM_IOEVENTFD: 1077980793,
  KVM_REGISTER_COALESCED_MMIO: 1074835047,
  KVM_UNREGISTER_COALESCED_MMIO: 1074835048,
  KVM_RUN: 44672,
  KVM_GET_REGS: 2156965505,
  KVM_SET_REGS: 1083223682,
  KVM_GET_SREGS: 2167975555,
  KVM_SET_SREGS: 1094233732,
  KVM_GET_FPU: 2174791308,
  KVM_SET_FPU: 1101049485,
  KVM_GET_MSRS: 3221794440,
  KVM_SET_MSRS: 1074310793,
  KVM_SET_CPUID2: 1074310800,
  KVM_GET_CPUID2: 3221794449,
  KVM_GET_LAPIC: 2214637198,
  KVM_SET_LAPIC: 1140895375,
  KVM_GET_XSAVE: 2415963812,
  KVM_SET_XSAVE: 1342221989,
  KVM_GET_XSAVE2: 2415963855,
  KVM_GET_XCRS: 2173218470,
  KVM_SET_XCRS: 1099476647,
  KVM_GET_VCPU_EVENTS: 2151722655,
  KVM_SET_VCPU_EVENTS: 1077980832,
  KVM_GET_MP_STATE: 2147790488,
  KVM_SET_MP_STATE: 1074048665,
  KVM_GET_DEBUGREGS: 2155916961,
  KVM_SET_DEBUGREGS: 1082175138,
  KVM_KVMCLOCK_CTRL: 44717,
  KVM_GET_TSC_KHZ: 44707
};
var EXIT = {
  UNKNOWN: 0,
  EXCEPTION: 1,
  IO: 2,
  HYPERCALL: 3,
  DEBUG: 4,
  HLT: 5,
  MMIO: 6,
  IRQ_WINDOW_OPEN: 7,
  SHUTDOWN: 8,
  FAIL_ENTRY: 9,
  INTR: 10,
  SET_TPR: 11,
  TPR_ACCESS: 12,
  NMI: 16,
  INTERNAL_ERROR: 17,
  SYSTEM_EVENT: 24,
  IOAPIC_EOI: 26,
  X86_RDMSR: 29,
  X86_WRMSR: 30
};
var IOEVENTFD_FLAG = {
  DATAMATCH: 1,
  PIO: 2,
  DEASSIGN: 4
};
var IRQFD_FLAG = {
  DEASSIGN: 1,
  RESAMPLE: 2
};

// kvm/structs.ts
var REG_NAMES = [
  "rax",
  "rbx",
  "rcx",
  "rdx",
  "rsi",
  "rdi",
  "rsp",
  "rbp",
  "r8",
  "r9",
  "r10",
  "r11",
  "r12",
  "r13",
  "r14",
  "r15",
  "rip",
  "rflags"
];
var REGS_SIZE = 144;
function decodeRegs(b) {
  const v = view(b, REGS_SIZE);
  const r = {};
  REG_NAMES.forEach((n, i) => r[n] = v.getBigUint64(i * 8, true));
  return r;
}
function encodeRegs(r) {
  const b = new Uint8Array(REGS_SIZE);
  const v = view(b, REGS_SIZE);
  REG_NAMES.forEach((n, i) => v.setBigUint64(i * 8, BigInt.asUintN(64, r[n]), true));
  return b;
}
var SEGMENT_OFFSETS = {
  base: 0,
  limit: 8,
  selector: 12,
  type: 14,
  present: 15,
  dpl: 16,
  db: 17,
  s: 18,
  l: 19,
  g: 20,
  avl: 21,
  unusable: 22
};
var SEG_BYTES = [
  "type",
  "present",
  "dpl",
  "db",
  "s",
  "l",
  "g",
  "avl",
  "unusable"
];
function decodeSegment(v, o) {
  const s = {
    base: v.getBigUint64(o, true),
    limit: v.getUint32(o + 8, true),
    selector: v.getUint16(o + 12, true)
  };
  for (const k of SEG_BYTES) s[k] = v.getUint8(o + SEGMENT_OFFSETS[k]);
  return s;
}
function encodeSegment(v, o, s) {
  v.setBigUint64(o, BigInt.asUintN(64, s.base), true);
  v.setUint32(o + 8, s.limit >>> 0, true);
  v.setUint16(o + 12, s.selector & 65535, true);
  for (const k of SEG_BYTES) v.setUint8(o + SEGMENT_OFFSETS[k], s[k] & 255);
}
var SREGS_SIZE = 312;
var SEG_NAMES = [
  "cs",
  "ds",
  "es",
  "fs",
  "gs",
  "ss",
  "tr",
  "ldt"
];
var CR_NAMES = [
  "cr0",
  "cr2",
  "cr3",
  "cr4",
  "cr8",
  "efer",
  "apicBase"
];
var SREGS_OFFSETS = {
  cs: 0,
  ds: 24,
  es: 48,
  fs: 72,
  gs: 96,
  ss: 120,
  tr: 144,
  ldt: 168,
  gdt: 192,
  idt: 208,
  cr0: 224,
  cr2: 232,
  cr3: 240,
  cr4: 248,
  cr8: 256,
  efer: 264,
  apicBase: 272,
  interruptBitmap: 280
};
function decodeSregs(b) {
  const v = view(b, SREGS_SIZE);
  const s = {};
  for (const n of SEG_NAMES) s[n] = decodeSegment(v, SREGS_OFFSETS[n]);
  for (const n of [
    "gdt",
    "idt"
  ]) {
    const o = SREGS_OFFSETS[n];
    s[n] = {
      base: v.getBigUint64(o, true),
      limit: v.getUint16(o + 8, true)
    };
  }
  for (const n of CR_NAMES) s[n] = v.getBigUint64(SREGS_OFFSETS[n], true);
  const ib = SREGS_OFFSETS.interruptBitmap;
  s.interruptBitmap = [
    0,
    1,
    2,
    3
  ].map((i) => v.getBigUint64(ib + i * 8, true));
  return s;
}
function encodeSregs(s) {
  const b = new Uint8Array(SREGS_SIZE);
  const v = view(b, SREGS_SIZE);
  for (const n of SEG_NAMES) encodeSegment(v, SREGS_OFFSETS[n], s[n]);
  for (const n of [
    "gdt",
    "idt"
  ]) {
    const o = SREGS_OFFSETS[n];
    v.setBigUint64(o, BigInt.asUintN(64, s[n].base), true);
    v.setUint16(o + 8, s[n].limit & 65535, true);
  }
  for (const n of CR_NAMES) v.setBigUint64(SREGS_OFFSETS[n], BigInt.asUintN(64, s[n]), true);
  s.interruptBitmap.forEach((x, i) => v.setBigUint64(SREGS_OFFSETS.interruptBitmap + i * 8, x, true));
  return b;
}
var FPU_SIZE = 416;
var FPU_OFFSETS = {
  fpr: 0,
  fcw: 128,
  fsw: 130,
  ftwx: 132,
  lastOpcode: 134,
  lastIp: 136,
  lastDp: 144,
  xmm: 152,
  mxcsr: 408
};
function decodeFpu(b) {
  const v = view(b, FPU_SIZE);
  const o = FPU_OFFSETS;
  return {
    fpr: b.slice(o.fpr, o.fpr + 128),
    fcw: v.getUint16(o.fcw, true),
    fsw: v.getUint16(o.fsw, true),
    ftwx: v.getUint8(o.ftwx),
    lastOpcode: v.getUint16(o.lastOpcode, true),
    lastIp: v.getBigUint64(o.lastIp, true),
    lastDp: v.getBigUint64(o.lastDp, true),
    xmm: b.slice(o.xmm, o.xmm + 256),
    mxcsr: v.getUint32(o.mxcsr, true)
  };
}
function encodeFpu(f) {
  const b = new Uint8Array(FPU_SIZE);
  const v = view(b, FPU_SIZE);
  const o = FPU_OFFSETS;
  b.set(f.fpr.subarray(0, 128), o.fpr);
  v.setUint16(o.fcw, f.fcw, true);
  v.setUint16(o.fsw, f.fsw, true);
  v.setUint8(o.ftwx, f.ftwx);
  v.setUint16(o.lastOpcode, f.lastOpcode, true);
  v.setBigUint64(o.lastIp, f.lastIp, true);
  v.setBigUint64(o.lastDp, f.lastDp, true);
  b.set(f.xmm.subarray(0, 256), o.xmm);
  v.setUint32(o.mxcsr, f.mxcsr, true);
  return b;
}
var MSRS_HEADER_SIZE = 8;
var MSR_ENTRY_SIZE = 16;
function encodeMsrs(entries) {
  const b = new Uint8Array(MSRS_HEADER_SIZE + MSR_ENTRY_SIZE * entries.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, entries.length, true);
  entries.forEach((e, i) => {
    const o = MSRS_HEADER_SIZE + i * MSR_ENTRY_SIZE;
    v.setUint32(o, e.index >>> 0, true);
    v.setBigUint64(o + 8, BigInt.asUintN(64, e.data), true);
  });
  return b;
}
function decodeMsrs(b, count) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const out = [];
  for (let i = 0; i < count; i++) {
    const o = MSRS_HEADER_SIZE + i * MSR_ENTRY_SIZE;
    out.push({
      index: v.getUint32(o, true),
      data: v.getBigUint64(o + 8, true)
    });
  }
  return out;
}
var CPUID2_HEADER_SIZE = 8;
var CPUID_ENTRY_SIZE = 40;
var CPUID_ENTRY_OFFSETS = {
  function: 0,
  index: 4,
  flags: 8,
  eax: 12,
  ebx: 16,
  ecx: 20,
  edx: 24
};
var CPUID_FIELDS = Object.keys(CPUID_ENTRY_OFFSETS);
function encodeCpuid(entries) {
  const b = new Uint8Array(CPUID2_HEADER_SIZE + CPUID_ENTRY_SIZE * entries.length);
  const v = new DataView(b.buffer);
  v.setUint32(0, entries.length, true);
  entries.forEach((e, i) => {
    const o = CPUID2_HEADER_SIZE + i * CPUID_ENTRY_SIZE;
    for (const f of CPUID_FIELDS) v.setUint32(o + CPUID_ENTRY_OFFSETS[f], e[f] >>> 0, true);
  });
  return b;
}
function decodeCpuid(b) {
  const v = new DataView(b.buffer, b.byteOffset, b.byteLength);
  const n = v.getUint32(0, true);
  const out = [];
  for (let i = 0; i < n; i++) {
    const o = CPUID2_HEADER_SIZE + i * CPUID_ENTRY_SIZE;
    const e = {};
    for (const f of CPUID_FIELDS) e[f] = v.getUint32(o + CPUID_ENTRY_OFFSETS[f], true);
    out.push(e);
  }
  return out;
}
var LAPIC_SIZE = 1024;
var XSAVE_SIZE = 4096;
var XCRS_SIZE = 392;
var XCRS_MAX = 16;
function decodeXcrs(b) {
  const v = view(b, XCRS_SIZE);
  const n = Math.min(v.getUint32(0, true), XCRS_MAX);
  const xcrs = [];
  for (let i = 0; i < n; i++) {
    xcrs.push({
      xcr: v.getUint32(8 + i * 16, true),
      value: v.getBigUint64(16 + i * 16, true)
    });
  }
  return {
    flags: v.getUint32(4, true),
    xcrs
  };
}
function encodeXcrs(x) {
  if (x.xcrs.length > XCRS_MAX) {
    throw new RangeError(`Cannot encode xcrs: ${x.xcrs.length} entries exceed ${XCRS_MAX}`);
  }
  const b = new Uint8Array(XCRS_SIZE);
  const v = view(b, XCRS_SIZE);
  v.setUint32(0, x.xcrs.length, true);
  v.setUint32(4, x.flags, true);
  x.xcrs.forEach((e, i) => {
    v.setUint32(8 + i * 16, e.xcr, true);
    v.setBigUint64(16 + i * 16, e.value, true);
  });
  return b;
}
var VCPU_EVENTS_SIZE = 64;
var DEBUGREGS_SIZE = 128;
function decodeDebugRegs(b) {
  const v = view(b, DEBUGREGS_SIZE);
  const q = (o) => v.getBigUint64(o, true);
  return {
    db: [
      q(0),
      q(8),
      q(16),
      q(24)
    ],
    dr6: q(32),
    dr7: q(40),
    flags: q(48)
  };
}
function encodeDebugRegs(d) {
  const b = new Uint8Array(DEBUGREGS_SIZE);
  const v = view(b, DEBUGREGS_SIZE);
  d.db.forEach((x, i) => v.setBigUint64(i * 8, x, true));
  v.setBigUint64(32, d.dr6, true);
  v.setBigUint64(40, d.dr7, true);
  v.setBigUint64(48, d.flags, true);
  return b;
}
var IRQCHIP_SIZE = 520;
var IRQCHIP_DATA_OFFSET = 8;
var PIT_STATE2_SIZE = 112;
var PIT_CONFIG_SIZE = 64;
var CLOCK_DATA_SIZE = 48;
function decodeClock(b) {
  const v = view(b, CLOCK_DATA_SIZE);
  return {
    clock: v.getBigUint64(0, true),
    flags: v.getUint32(8, true),
    realtime: v.getBigUint64(16, true),
    hostTsc: v.getBigUint64(24, true)
  };
}
function encodeClock(c) {
  const b = new Uint8Array(CLOCK_DATA_SIZE);
  const v = view(b, CLOCK_DATA_SIZE);
  v.setBigUint64(0, c.clock, true);
  v.setUint32(8, c.flags, true);
  v.setBigUint64(16, c.realtime, true);
  v.setBigUint64(24, c.hostTsc, true);
  return b;
}
var MEMORY_REGION_SIZE = 32;
var IRQFD_SIZE = 32;
var IOEVENTFD_SIZE = 64;
var IRQ_LEVEL_SIZE = 8;
var DIRTY_LOG_SIZE = 16;
var RUN = {
  requestInterruptWindow: 0,
  immediateExit: 1,
  exitReason: 8,
  readyForInterruptInjection: 12,
  ifFlag: 13,
  flags: 14,
  cr8: 16,
  apicBase: 24,
  /** Start of the exit-specific union. */
  exit: 32,
  ioDirection: 32,
  ioSize: 33,
  ioPort: 34,
  ioCount: 36,
  ioDataOffset: 40,
  mmioPhysAddr: 32,
  mmioData: 40,
  mmioLen: 48,
  mmioIsWrite: 52,
  failEntryReason: 32,
  failEntryCpu: 40,
  internalSuberror: 32,
  internalNdata: 36,
  internalData: 40,
  systemEventType: 32,
  systemEventNdata: 36,
  systemEventData: 40,
  exException: 32,
  exErrorCode: 36,
  size: 2352
};
function view(b, size) {
  if (b.byteLength < size) {
    throw new RangeError(`Cannot decode struct: ${b.byteLength} bytes, need ${size}`);
  }
  return new DataView(b.buffer, b.byteOffset, size);
}

// kvm/exit.ts
var INTERNAL_ERROR_NAMES = {
  1: "EMULATION",
  2: "SIMUL_EX",
  3: "DELIVERY_EV",
  4: "UNEXPECTED_EXIT_REASON"
};
var views = /* @__PURE__ */ new WeakMap();
function dataView(run2, off, len) {
  let m = views.get(run2);
  if (m === void 0) views.set(run2, m = /* @__PURE__ */ new Map());
  const key = off * 16 + len;
  let v = m.get(key);
  if (v === void 0) {
    if (m.size > 64) m.clear();
    m.set(key, v = run2.subarray(off, off + len));
  }
  return v;
}
function u64(dv, o) {
  return dv.getUint32(o + 4, true) * 4294967296 + dv.getUint32(o, true);
}
function decodeExit(run2, dv) {
  const reason = dv.getUint32(RUN.exitReason, true);
  switch (reason) {
    case EXIT.IO: {
      const size = dv.getUint8(RUN.ioSize);
      const count = dv.getUint32(RUN.ioCount, true);
      const off = u64(dv, RUN.ioDataOffset);
      const len = size * count;
      if (off + len > run2.byteLength) {
        return {
          kind: "other",
          reason
        };
      }
      const data = dataView(run2, off, len);
      const port = dv.getUint16(RUN.ioPort, true);
      return dv.getUint8(RUN.ioDirection) === 1 ? {
        kind: "io_out",
        port,
        size,
        count,
        data
      } : {
        kind: "io_in",
        port,
        size,
        count,
        data
      };
    }
    case EXIT.MMIO: {
      const addr = u64(dv, RUN.mmioPhysAddr);
      const len = Math.min(dv.getUint32(RUN.mmioLen, true), 8);
      const data = dataView(run2, RUN.mmioData, len);
      return dv.getUint8(RUN.mmioIsWrite) ? {
        kind: "mmio_write",
        addr,
        len,
        data
      } : {
        kind: "mmio_read",
        addr,
        len,
        data
      };
    }
    case EXIT.HLT:
      return {
        kind: "hlt"
      };
    case EXIT.SHUTDOWN:
      return {
        kind: "shutdown"
      };
    case EXIT.INTR:
      return {
        kind: "intr"
      };
    case EXIT.IRQ_WINDOW_OPEN:
      return {
        kind: "irq_window_open"
      };
    case EXIT.DEBUG:
      return {
        kind: "debug"
      };
    case EXIT.EXCEPTION:
      return {
        kind: "exception",
        exception: dv.getUint32(RUN.exException, true),
        errorCode: dv.getUint32(RUN.exErrorCode, true)
      };
    case EXIT.FAIL_ENTRY:
      return {
        kind: "fail_entry",
        reason: dv.getBigUint64(RUN.failEntryReason, true),
        cpu: dv.getUint32(RUN.failEntryCpu, true)
      };
    case EXIT.INTERNAL_ERROR: {
      const n = Math.min(dv.getUint32(RUN.internalNdata, true), 16);
      const data = [];
      for (let i = 0; i < n; i++) data.push(dv.getBigUint64(RUN.internalData + i * 8, true));
      return {
        kind: "internal_error",
        suberror: dv.getUint32(RUN.internalSuberror, true),
        data
      };
    }
    case EXIT.SYSTEM_EVENT: {
      const n = Math.min(dv.getUint32(RUN.systemEventNdata, true), 16);
      const data = [];
      for (let i = 0; i < n; i++) data.push(dv.getBigUint64(RUN.systemEventData + i * 8, true));
      return {
        kind: "system_event",
        type: dv.getUint32(RUN.systemEventType, true),
        data
      };
    }
    case EXIT.UNKNOWN:
      return {
        kind: "unknown",
        hardwareReason: dv.getBigUint64(RUN.exit, true)
      };
    default:
      return {
        kind: "other",
        reason
      };
  }
}
function describeExit(e) {
  switch (e.kind) {
    case "io_out":
    case "io_in":
      return `${e.kind} port 0x${e.port.toString(16)} size ${e.size} count ${e.count}`;
    case "mmio_write":
    case "mmio_read":
      return `${e.kind} 0x${e.addr.toString(16)} len ${e.len}`;
    case "internal_error":
      return `internal_error ${INTERNAL_ERROR_NAMES[e.suberror] ?? e.suberror} [${e.data.map((d) => "0x" + d.toString(16)).join(", ")}]`;
    case "fail_entry":
      return `fail_entry reason 0x${e.reason.toString(16)} cpu ${e.cpu}`;
    case "system_event":
      return `system_event type ${e.type}`;
    case "exception":
      return `exception ${e.exception} error code ${e.errorCode}`;
    case "unknown":
      return `unknown hardware reason 0x${e.hardwareReason.toString(16)}`;
    case "other":
      return `exit reason ${e.reason}`;
    default:
      return e.kind;
  }
}

// sys/errno.ts
var NAMES = /* @__PURE__ */ new Map([
  [
    1,
    "EPERM"
  ],
  [
    2,
    "ENOENT"
  ],
  [
    3,
    "ESRCH"
  ],
  [
    4,
    "EINTR"
  ],
  [
    5,
    "EIO"
  ],
  [
    6,
    "ENXIO"
  ],
  [
    7,
    "E2BIG"
  ],
  [
    8,
    "ENOEXEC"
  ],
  [
    9,
    "EBADF"
  ],
  [
    10,
    "ECHILD"
  ],
  [
    11,
    "EAGAIN"
  ],
  [
    12,
    "ENOMEM"
  ],
  [
    13,
    "EACCES"
  ],
  [
    14,
    "EFAULT"
  ],
  [
    15,
    "ENOTBLK"
  ],
  [
    16,
    "EBUSY"
  ],
  [
    17,
    "EEXIST"
  ],
  [
    18,
    "EXDEV"
  ],
  [
    19,
    "ENODEV"
  ],
  [
    20,
    "ENOTDIR"
  ],
  [
    21,
    "EISDIR"
  ],
  [
    22,
    "EINVAL"
  ],
  [
    23,
    "ENFILE"
  ],
  [
    24,
    "EMFILE"
  ],
  [
    25,
    "ENOTTY"
  ],
  [
    26,
    "ETXTBSY"
  ],
  [
    27,
    "EFBIG"
  ],
  [
    28,
    "ENOSPC"
  ],
  [
    29,
    "ESPIPE"
  ],
  [
    30,
    "EROFS"
  ],
  [
    31,
    "EMLINK"
  ],
  [
    32,
    "EPIPE"
  ],
  [
    33,
    "EDOM"
  ],
  [
    34,
    "ERANGE"
  ],
  [
    35,
    "EDEADLOCK"
  ],
  [
    36,
    "ENAMETOOLONG"
  ],
  [
    37,
    "ENOLCK"
  ],
  [
    38,
    "ENOSYS"
  ],
  [
    39,
    "ENOTEMPTY"
  ],
  [
    40,
    "ELOOP"
  ],
  [
    42,
    "ENOMSG"
  ],
  [
    43,
    "EIDRM"
  ],
  [
    44,
    "ECHRNG"
  ],
  [
    45,
    "EL2NSYNC"
  ],
  [
    46,
    "EL3HLT"
  ],
  [
    47,
    "EL3RST"
  ],
  [
    48,
    "ELNRNG"
  ],
  [
    49,
    "EUNATCH"
  ],
  [
    50,
    "ENOCSI"
  ],
  [
    51,
    "EL2HLT"
  ],
  [
    52,
    "EBADE"
  ],
  [
    53,
    "EBADR"
  ],
  [
    54,
    "EXFULL"
  ],
  [
    55,
    "ENOANO"
  ],
  [
    56,
    "EBADRQC"
  ],
  [
    57,
    "EBADSLT"
  ],
  [
    59,
    "EBFONT"
  ],
  [
    60,
    "ENOSTR"
  ],
  [
    61,
    "ENODATA"
  ],
  [
    62,
    "ETIME"
  ],
  [
    63,
    "ENOSR"
  ],
  [
    64,
    "ENONET"
  ],
  [
    65,
    "ENOPKG"
  ],
  [
    66,
    "EREMOTE"
  ],
  [
    67,
    "ENOLINK"
  ],
  [
    68,
    "EADV"
  ],
  [
    69,
    "ESRMNT"
  ],
  [
    70,
    "ECOMM"
  ],
  [
    71,
    "EPROTO"
  ],
  [
    72,
    "EMULTIHOP"
  ],
  [
    73,
    "EDOTDOT"
  ],
  [
    74,
    "EBADMSG"
  ],
  [
    75,
    "EOVERFLOW"
  ],
  [
    76,
    "ENOTUNIQ"
  ],
  [
    77,
    "EBADFD"
  ],
  [
    78,
    "EREMCHG"
  ],
  [
    79,
    "ELIBACC"
  ],
  [
    80,
    "ELIBBAD"
  ],
  [
    81,
    "ELIBSCN"
  ],
  [
    82,
    "ELIBMAX"
  ],
  [
    83,
    "ELIBEXEC"
  ],
  [
    84,
    "EILSEQ"
  ],
  [
    85,
    "ERESTART"
  ],
  [
    86,
    "ESTRPIPE"
  ],
  [
    87,
    "EUSERS"
  ],
  [
    88,
    "ENOTSOCK"
  ],
  [
    89,
    "EDESTADDRREQ"
  ],
  [
    90,
    "EMSGSIZE"
  ],
  [
    91,
    "EPROTOTYPE"
  ],
  [
    92,
    "ENOPROTOOPT"
  ],
  [
    93,
    "EPROTONOSUPPORT"
  ],
  [
    94,
    "ESOCKTNOSUPPORT"
  ],
  [
    95,
    "ENOTSUP"
  ],
  [
    96,
    "EPFNOSUPPORT"
  ],
  [
    97,
    "EAFNOSUPPORT"
  ],
  [
    98,
    "EADDRINUSE"
  ],
  [
    99,
    "EADDRNOTAVAIL"
  ],
  [
    100,
    "ENETDOWN"
  ],
  [
    101,
    "ENETUNREACH"
  ],
  [
    102,
    "ENETRESET"
  ],
  [
    103,
    "ECONNABORTED"
  ],
  [
    104,
    "ECONNRESET"
  ],
  [
    105,
    "ENOBUFS"
  ],
  [
    106,
    "EISCONN"
  ],
  [
    107,
    "ENOTCONN"
  ],
  [
    108,
    "ESHUTDOWN"
  ],
  [
    109,
    "ETOOMANYREFS"
  ],
  [
    110,
    "ETIMEDOUT"
  ],
  [
    111,
    "ECONNREFUSED"
  ],
  [
    112,
    "EHOSTDOWN"
  ],
  [
    113,
    "EHOSTUNREACH"
  ],
  [
    114,
    "EALREADY"
  ],
  [
    115,
    "EINPROGRESS"
  ],
  [
    116,
    "ESTALE"
  ],
  [
    117,
    "EUCLEAN"
  ],
  [
    118,
    "ENOTNAM"
  ],
  [
    119,
    "ENAVAIL"
  ],
  [
    120,
    "EISNAM"
  ],
  [
    121,
    "EREMOTEIO"
  ],
  [
    122,
    "EDQUOT"
  ],
  [
    123,
    "ENOMEDIUM"
  ],
  [
    124,
    "EMEDIUMTYPE"
  ],
  [
    125,
    "ECANCELED"
  ],
  [
    126,
    "ENOKEY"
  ],
  [
    127,
    "EKEYEXPIRED"
  ],
  [
    128,
    "EKEYREVOKED"
  ],
  [
    129,
    "EKEYREJECTED"
  ],
  [
    130,
    "EOWNERDEAD"
  ],
  [
    131,
    "ENOTRECOVERABLE"
  ],
  [
    132,
    "ERFKILL"
  ]
]);
function errnoName(errno) {
  return NAMES.get(errno) ?? `errno ${errno}`;
}

// sys/libc.ts
var symbols = {
  ioctl: {
    name: "ioctl",
    parameters: [
      "i32",
      "u64",
      "buffer"
    ],
    result: "i32"
  },
  ioctlInt: {
    name: "ioctl",
    parameters: [
      "i32",
      "u64",
      "u64"
    ],
    result: "i32"
  },
  // KVM_RUN, on the hot path: numbers only (the kernel reads the request as 32 bits).
  ioctlRun: {
    name: "ioctl",
    parameters: [
      "i32",
      "u32",
      "pointer"
    ],
    result: "i32"
  },
  open: {
    parameters: [
      "buffer",
      "i32",
      "u32"
    ],
    result: "i32"
  },
  close: {
    parameters: [
      "i32"
    ],
    result: "i32"
  },
  read: {
    parameters: [
      "i32",
      "buffer",
      "usize"
    ],
    result: "isize"
  },
  write: {
    parameters: [
      "i32",
      "buffer",
      "usize"
    ],
    result: "isize"
  },
  pread: {
    name: "pread64",
    parameters: [
      "i32",
      "buffer",
      "usize",
      "i64"
    ],
    result: "isize"
  },
  pwrite: {
    name: "pwrite64",
    parameters: [
      "i32",
      "buffer",
      "usize",
      "i64"
    ],
    result: "isize"
  },
  fdatasync: {
    parameters: [
      "i32"
    ],
    result: "i32"
  },
  mmap: {
    parameters: [
      "pointer",
      "usize",
      "i32",
      "i32",
      "i32",
      "i64"
    ],
    result: "pointer"
  },
  munmap: {
    parameters: [
      "pointer",
      "usize"
    ],
    result: "i32"
  },
  madvise: {
    parameters: [
      "pointer",
      "usize",
      "i32"
    ],
    result: "i32"
  },
  eventfd: {
    parameters: [
      "u32",
      "i32"
    ],
    result: "i32"
  },
  epoll_create1: {
    parameters: [
      "i32"
    ],
    result: "i32"
  },
  epoll_ctl: {
    parameters: [
      "i32",
      "i32",
      "i32",
      "buffer"
    ],
    result: "i32"
  },
  epoll_wait: {
    parameters: [
      "i32",
      "buffer",
      "i32",
      "i32"
    ],
    result: "i32"
  },
  gettid: {
    parameters: [],
    result: "i32"
  },
  getpid: {
    parameters: [],
    result: "i32"
  },
  tgkill: {
    parameters: [
      "i32",
      "i32",
      "i32"
    ],
    result: "i32"
  },
  errno_location: {
    name: "__errno_location",
    parameters: [],
    result: "pointer"
  },
  setns: {
    parameters: [
      "i32",
      "i32"
    ],
    result: "i32"
  },
  pipe2: {
    parameters: [
      "buffer",
      "i32"
    ],
    result: "i32"
  },
  dup2: {
    parameters: [
      "i32",
      "i32"
    ],
    result: "i32"
  },
  mount: {
    parameters: [
      "buffer",
      "buffer",
      "buffer",
      "u64",
      "pointer"
    ],
    result: "i32"
  },
  umount2: {
    parameters: [
      "buffer",
      "i32"
    ],
    result: "i32"
  },
  setpriority: {
    parameters: [
      "i32",
      "u32",
      "i32"
    ],
    result: "i32"
  },
  // Disk I/O off the calling thread (Deno's blocking pool), so the device thread never
  // blocks. These return errno themselves (see the *Async wrappers), because errno is
  // per-thread and the call runs on another thread.
  preadAsync: {
    name: "pread64",
    parameters: [
      "i32",
      "pointer",
      "usize",
      "i64"
    ],
    result: "isize",
    nonblocking: true
  },
  pwriteAsync: {
    name: "pwrite64",
    parameters: [
      "i32",
      "pointer",
      "usize",
      "i64"
    ],
    result: "isize",
    nonblocking: true
  },
  // Vectored: one call for a request whose data is spread over many guest pages.
  preadvAsync: {
    name: "preadv",
    parameters: [
      "i32",
      "pointer",
      "i32",
      "i64"
    ],
    result: "isize",
    nonblocking: true
  },
  pwritevAsync: {
    name: "pwritev",
    parameters: [
      "i32",
      "pointer",
      "i32",
      "i64"
    ],
    result: "isize",
    nonblocking: true
  },
  // On this thread with RWF_NOWAIT: served from the page cache without waiting, or EAGAIN.
  // Optional: a libc older than 2.26 has no preadv2 (the calls then report ENOSYS).
  preadv2: {
    name: "preadv2",
    parameters: [
      "i32",
      "buffer",
      "i32",
      "i64",
      "i32"
    ],
    result: "isize",
    optional: true
  },
  pwritev2: {
    name: "pwritev2",
    parameters: [
      "i32",
      "buffer",
      "i32",
      "i64",
      "i32"
    ],
    result: "isize",
    optional: true
  },
  // On this thread without flags: for data a residency check found in the page cache.
  preadvSync: {
    name: "preadv",
    parameters: [
      "i32",
      "buffer",
      "i32",
      "i64"
    ],
    result: "isize"
  },
  // Which pages of a mapping are in memory (for a file mapping: in the page cache).
  mincore: {
    parameters: [
      "usize",
      "usize",
      "buffer"
    ],
    result: "i32"
  },
  fstatfs: {
    parameters: [
      "i32",
      "buffer"
    ],
    result: "i32"
  },
  fdatasyncAsync: {
    name: "fdatasync",
    parameters: [
      "i32"
    ],
    result: "i32",
    nonblocking: true
  },
  epollWaitAsync: {
    name: "epoll_wait",
    parameters: [
      "i32",
      "pointer",
      "i32",
      "i32"
    ],
    result: "i32",
    nonblocking: true
  },
  fallocateAsync: {
    name: "fallocate64",
    parameters: [
      "i32",
      "i32",
      "i64",
      "i64"
    ],
    result: "i32",
    nonblocking: true
  }
};
var lib = Deno.dlopen("libc.so.6", symbols);
function libc() {
  return lib.symbols;
}
function lastErrno() {
  const p = libc().errno_location();
  return p === null ? 0 : new Deno.UnsafePointerView(p).getInt32(0);
}
var SysError = class extends Error {
  /** The call that failed, e.g. `KVM_CREATE_VCPU` or `mmap`. */
  op;
  /** The numeric errno. */
  errno;
  /** The symbolic errno, e.g. `EEXIST`. */
  code;
  /**
   * The error for `op` failing with `errno`; `detail` (e.g. a path) goes in the message.
   *
   * @example
   * ```ts
   * import { SysError } from "./libc.ts";
   * const e = new SysError("open", 2, "/nope");
   * console.assert(e.message === "open failed: ENOENT (/nope)");
   * ```
   */
  constructor(op, errno, detail) {
    const code = errnoName(errno);
    super(`${op} failed: ${code}${detail ? ` (${detail})` : ""}`);
    this.name = "SysError";
    this.op = op;
    this.errno = errno;
    this.code = code;
  }
};
function check(op, ret) {
  if (ret < 0) throw new SysError(op, lastErrno());
  return ret;
}
var MAP_FAILED = 0xffffffffffffffffn;
var PROT_READ = 1;
var PROT_WRITE = 2;
var MAP_SHARED = 1;
function mmap(length, prot, flags, fd = -1, offset = 0) {
  const p = libc().mmap(null, BigInt(length), prot, flags, fd, BigInt(offset));
  if (p === null || Deno.UnsafePointer.value(p) === MAP_FAILED) {
    throw new SysError("mmap", lastErrno(), `${length} bytes`);
  }
  return p;
}
function munmap(p, length) {
  check("munmap", libc().munmap(p, BigInt(length)));
}
function closeFd(fd) {
  libc().close(fd);
}
var FdHandle = class {
  /** The file descriptor. */
  fd;
  #closed = false;
  /** Takes ownership of `fd`. */
  constructor(fd) {
    this.fd = fd;
  }
  /** Whether {@link close} ran. */
  get closed() {
    return this.#closed;
  }
  /** Closes the fd (idempotent). */
  close() {
    if (this.#closed) return;
    this.#closed = true;
    closeFd(this.fd);
  }
  /** {@link close}, for `using`. */
  [Symbol.dispose]() {
    this.close();
  }
};
var u64buf = new BigUint64Array(1);
function eventfdWrite(fd, value = 1n) {
  u64buf[0] = value;
  const n = Number(libc().write(fd, u64buf, 8n));
  if (n !== 8) throw new SysError("write(eventfd)", lastErrno());
}
function gettid() {
  return libc().gettid();
}

// kvm/kvm.ts
var KvmError = class extends SysError {
  /**
   * The error for ioctl `op` failing with `errno`.
   *
   * @example
   * ```ts
   * import { KvmError } from "./kvm.ts";
   * const e = new KvmError("KVM_CREATE_VCPU", 17);
   * console.assert(e.message === "KVM_CREATE_VCPU failed: EEXIST");
   * ```
   */
  constructor(op, errno, detail) {
    super(op, errno, detail);
    this.name = "KvmError";
  }
};
var EINTR = 4;
var E2BIG = 7;
var EAGAIN = 11;
function ptr(b) {
  return b === null ? null : Deno.UnsafePointer.of(b);
}
var TRACE = (() => {
  try {
    if (Deno.permissions.querySync({
      name: "env",
      variable: "DENOVM_KVM_TRACE"
    }).state !== "granted") {
      return void 0;
    }
    return Deno.env.get("DENOVM_KVM_TRACE") || void 0;
  } catch {
    return void 0;
  }
})();
var traceRoles = /* @__PURE__ */ new Map();
function traceRole(fd, role) {
  if (TRACE) traceRoles.set(fd, role);
}
function record(fd, req, arg, int) {
  const body = arg ?? new Uint8Array(0);
  const rec = new Uint8Array(24 + body.byteLength), v = new DataView(rec.buffer);
  v.setUint32(0, traceRoles.get(fd) ?? 4294967295, true);
  v.setUint32(4, req >>> 0, true);
  v.setUint32(8, arg === null ? 1 : 0, true);
  v.setUint32(12, body.byteLength, true);
  v.setBigUint64(16, BigInt.asUintN(64, BigInt(int)), true);
  rec.set(body, 24);
  Deno.writeFileSync(TRACE, rec, {
    append: true
  });
}
var requests = /* @__PURE__ */ new Map();
function request(name) {
  let r = requests.get(name);
  if (r === void 0) requests.set(name, r = BigInt(IOCTL[name]));
  return r;
}
function ioctl(fd, name, arg = null) {
  const ret = libc().ioctl(fd, request(name), arg);
  if (TRACE && ret >= 0) record(fd, IOCTL[name], arg ?? new Uint8Array(0), 0);
  if (ret < 0) throw new KvmError(name, lastErrno());
  return ret;
}
function getStruct(fd, name, size, decode) {
  const b = new Uint8Array(size);
  ioctl(fd, name, b);
  return decode(b);
}
var raw = (b) => b;
function cpuidIoctl(fd, name) {
  for (let n = 64; n <= 4096; n *= 2) {
    const b = new Uint8Array(CPUID2_HEADER_SIZE + n * CPUID_ENTRY_SIZE);
    new DataView(b.buffer).setUint32(0, n, true);
    const ret = libc().ioctl(fd, request(name), b);
    if (ret >= 0) return decodeCpuid(b);
    const e = lastErrno();
    if (e !== E2BIG) throw new KvmError(name, e);
  }
  throw new KvmError(name, E2BIG);
}
function ioctlInt(fd, name, arg = 0) {
  const ret = libc().ioctlInt(fd, request(name), BigInt(arg));
  if (TRACE && ret >= 0) record(fd, IOCTL[name], null, arg);
  if (ret < 0) throw new KvmError(name, lastErrno());
  return ret;
}
var Vm = class extends FdHandle {
  /** Bytes of each vCPU's `kvm_run` mapping. */
  runSize;
  #irqLevel = new Uint8Array(IRQ_LEVEL_SIZE);
  #irqLevelView = new DataView(this.#irqLevel.buffer);
  /** Wraps an existing VM fd (e.g. passed to a worker). Close every vCPU before it. */
  constructor(fd, runSize) {
    super(fd);
    this.runSize = runSize;
    traceRole(fd, 1);
  }
  /** `KVM_CHECK_EXTENSION` on the VM (answers may differ per VM). */
  checkExtension(cap) {
    return ioctlInt(this.fd, "KVM_CHECK_EXTENSION", cap);
  }
  /** `KVM_SET_USER_MEMORY_REGION`; a size of 0 deletes the slot. */
  setUserMemoryRegion(r) {
    const b = new Uint8Array(MEMORY_REGION_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, r.slot, true);
    v.setUint32(4, r.flags ?? 0, true);
    v.setBigUint64(8, BigInt(r.guestPhysAddr), true);
    v.setBigUint64(16, BigInt(r.size), true);
    v.setBigUint64(24, r.userspaceAddr, true);
    ioctl(this.fd, "KVM_SET_USER_MEMORY_REGION", b);
  }
  /** `KVM_SET_TSS_ADDR`: three pages below 4 GiB that the guest never uses (Intel). */
  setTssAddr(addr) {
    ioctlInt(this.fd, "KVM_SET_TSS_ADDR", addr);
  }
  /** `KVM_SET_IDENTITY_MAP_ADDR`: one page for the EPT identity map (Intel). */
  setIdentityMapAddr(addr) {
    const b = new Uint8Array(8);
    new DataView(b.buffer).setBigUint64(0, BigInt(addr), true);
    ioctl(this.fd, "KVM_SET_IDENTITY_MAP_ADDR", b);
  }
  /** `KVM_CREATE_IRQCHIP`: in-kernel PIC pair, IOAPIC and per-vCPU LAPICs. */
  createIrqchip() {
    ioctl(this.fd, "KVM_CREATE_IRQCHIP");
  }
  /** `KVM_GET_IRQCHIP`: 512 bytes of state for chip 0 (PIC master), 1 (slave), 2 (IOAPIC). */
  getIrqchip(chipId) {
    const b = new Uint8Array(IRQCHIP_SIZE);
    new DataView(b.buffer).setUint32(0, chipId, true);
    ioctl(this.fd, "KVM_GET_IRQCHIP", b);
    return b.slice(IRQCHIP_DATA_OFFSET);
  }
  /** `KVM_SET_IRQCHIP`. */
  setIrqchip(chipId, state) {
    if (state.byteLength !== IRQCHIP_SIZE - IRQCHIP_DATA_OFFSET) {
      throw new RangeError(`Cannot set irqchip ${chipId}: state is ${state.byteLength} bytes`);
    }
    const b = new Uint8Array(IRQCHIP_SIZE);
    new DataView(b.buffer).setUint32(0, chipId, true);
    b.set(state, IRQCHIP_DATA_OFFSET);
    ioctl(this.fd, "KVM_SET_IRQCHIP", b);
  }
  /** `KVM_CREATE_PIT2` (flags: 1 = KVM_PIT_SPEAKER_DUMMY). */
  createPit2(flags = 0) {
    const b = new Uint8Array(PIT_CONFIG_SIZE);
    new DataView(b.buffer).setUint32(0, flags, true);
    ioctl(this.fd, "KVM_CREATE_PIT2", b);
  }
  /** `KVM_GET_PIT2`: raw `struct kvm_pit_state2`. */
  getPit2() {
    return getStruct(this.fd, "KVM_GET_PIT2", PIT_STATE2_SIZE, raw);
  }
  /** `KVM_SET_PIT2`. */
  setPit2(state) {
    if (state.byteLength !== PIT_STATE2_SIZE) {
      throw new RangeError(`Cannot set PIT state: ${state.byteLength} bytes, need 112`);
    }
    ioctl(this.fd, "KVM_SET_PIT2", state.slice());
  }
  /** `KVM_GET_CLOCK`. */
  getClock() {
    return getStruct(this.fd, "KVM_GET_CLOCK", CLOCK_DATA_SIZE, decodeClock);
  }
  /** `KVM_SET_CLOCK`. */
  setClock(c) {
    ioctl(this.fd, "KVM_SET_CLOCK", encodeClock(c));
  }
  /** `KVM_IRQ_LINE`: drive a GSI of the in-kernel irqchip high (1) or low (0). */
  irqLine(irq, level) {
    const b = this.#irqLevel, v = this.#irqLevelView;
    v.setUint32(0, irq, true);
    v.setUint32(4, level, true);
    ioctl(this.fd, "KVM_IRQ_LINE", b);
  }
  /** `KVM_IRQFD`: writes to `fd` inject GSI `gsi` (edge) without leaving the kernel. */
  irqfd(fd, gsi, opts = {}) {
    const b = new Uint8Array(IRQFD_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, fd, true);
    v.setUint32(4, gsi, true);
    let flags = opts.deassign ? IRQFD_FLAG.DEASSIGN : 0;
    if (opts.resampleFd !== void 0) {
      flags |= IRQFD_FLAG.RESAMPLE;
      v.setUint32(12, opts.resampleFd, true);
    }
    v.setUint32(8, flags, true);
    ioctl(this.fd, "KVM_IRQFD", b);
  }
  /**
   * `KVM_REGISTER_COALESCED_MMIO`: guest writes inside [addr, addr+size) (port I/O with
   * `pio`, which needs KVM_CAP_COALESCED_PIO) no longer exit; KVM appends them to the ring
   * at page `KVM_CHECK_EXTENSION(KVM_CAP_COALESCED_MMIO)` of every `kvm_run` mapping
   * ({@link Vcpu.drainCoalesced}), which userspace must empty before it handles any exit.
   * Reads still exit.
   */
  registerCoalesced(z, unregister = false) {
    const b = new Uint8Array(16);
    const v = new DataView(b.buffer);
    v.setBigUint64(0, BigInt(z.addr), true);
    v.setUint32(8, z.size, true);
    v.setUint32(12, z.pio ? 1 : 0, true);
    ioctl(this.fd, unregister ? "KVM_UNREGISTER_COALESCED_MMIO" : "KVM_REGISTER_COALESCED_MMIO", b);
  }
  /** `KVM_IOEVENTFD`: a guest write to `addr` signals `fd` instead of exiting. */
  ioeventfd(o) {
    const b = new Uint8Array(IOEVENTFD_SIZE);
    const v = new DataView(b.buffer);
    let flags = 0;
    if (o.datamatch !== void 0) {
      flags |= IOEVENTFD_FLAG.DATAMATCH;
      v.setBigUint64(0, BigInt(o.datamatch), true);
    }
    if (o.pio) flags |= IOEVENTFD_FLAG.PIO;
    if (o.deassign) flags |= IOEVENTFD_FLAG.DEASSIGN;
    v.setBigUint64(8, BigInt(o.addr), true);
    v.setUint32(16, o.len, true);
    v.setInt32(20, o.fd, true);
    v.setUint32(24, flags, true);
    ioctl(this.fd, "KVM_IOEVENTFD", b);
  }
  /**
   * `KVM_GET_DIRTY_LOG`: one bit per page of `slot` (which must have been registered with
   * `LOG_DIRTY_PAGES`), cleared by the call.
   */
  getDirtyLog(slot, pages) {
    const bitmap = new Uint8Array(Math.ceil(pages / 64) * 8);
    const b = new Uint8Array(DIRTY_LOG_SIZE);
    const v = new DataView(b.buffer);
    v.setUint32(0, slot, true);
    v.setBigUint64(8, Deno.UnsafePointer.value(ptr(bitmap)), true);
    ioctl(this.fd, "KVM_GET_DIRTY_LOG", b);
    return bitmap;
  }
  /** `KVM_CREATE_VCPU` and the mapping of its `kvm_run` page. */
  createVcpu(id) {
    const fd = ioctlInt(this.fd, "KVM_CREATE_VCPU", id);
    let run2;
    try {
      run2 = mmap(this.runSize, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    } catch (e) {
      closeFd(fd);
      throw e;
    }
    return new Vcpu(fd, id, Deno.UnsafePointer.value(run2), this.runSize, true);
  }
};
var Vcpu = class {
  /** The vCPU file descriptor. */
  fd;
  /** The vCPU id (APIC id). */
  id;
  /** Host address of the `kvm_run` mapping (post it to a worker to rebuild the Vcpu). */
  runAddr;
  /** Bytes in the `kvm_run` mapping. */
  runSize;
  /** The run page as bytes (zero-copy). */
  runPage;
  #dv;
  #owner;
  #closed = false;
  /**
   * Wraps an existing vCPU fd and its `kvm_run` mapping. `owner` decides whether
   * {@link close} unmaps and closes them.
   */
  constructor(fd, id, runAddr, runSize, owner = false) {
    this.fd = fd;
    this.id = id;
    this.runAddr = runAddr;
    this.runSize = runSize;
    this.#owner = owner;
    traceRole(fd, 2 + id);
    const p = Deno.UnsafePointer.create(runAddr);
    if (p === null) throw new TypeError("Cannot wrap vCPU: null kvm_run address");
    const ab = Deno.UnsafePointerView.getArrayBuffer(p, runSize);
    this.runPage = new Uint8Array(ab);
    this.#dv = new DataView(ab);
  }
  /**
   * Empties the coalesced-write ring (`struct kvm_coalesced_mmio_ring` at page `pageOffset`
   * of the `kvm_run` mapping, shared by every vCPU of the VM): `fn` gets each write in the
   * order KVM took them (port or guest-physical address, its bytes, whether it is port I/O).
   * The caller serializes drains across vCPUs. Returns the number of writes.
   */
  drainCoalesced(pageOffset, fn) {
    const base = pageOffset * 4096;
    if (base + 4096 > this.runSize) return 0;
    const max = (4096 - 8) / 24 | 0;
    const dv = this.#dv;
    let first = dv.getUint32(base, true), n = 0;
    while (first !== dv.getUint32(base + 4, true) && first < max && n <= max) {
      const e = base + 8 + 24 * first;
      const len = Math.min(dv.getUint32(e + 8, true), 8);
      const addr = dv.getUint32(e + 4, true) * 4294967296 + dv.getUint32(e, true);
      fn(addr, this.runPage.slice(e + 16, e + 16 + len), dv.getUint32(e + 12, true) !== 0);
      first = (first + 1) % max;
      dv.setUint32(base, first, true);
      n++;
    }
    return n;
  }
  /** Whether the coalesced-write ring at `pageOffset` holds writes. */
  coalescedPending(pageOffset) {
    const base = pageOffset * 4096;
    if (base + 4096 > this.runSize) return false;
    return this.#dv.getUint32(base, true) !== this.#dv.getUint32(base + 4, true);
  }
  /** `kvm_run.immediate_exit`: when 1, the next `KVM_RUN` returns EINTR at once. */
  get immediateExit() {
    return this.runPage[RUN.immediateExit];
  }
  set immediateExit(v) {
    this.runPage[RUN.immediateExit] = v;
  }
  /** `kvm_run.request_interrupt_window`. */
  set requestInterruptWindow(v) {
    this.runPage[RUN.requestInterruptWindow] = v;
  }
  /** `kvm_run.ready_for_interrupt_injection`. */
  get readyForInterruptInjection() {
    return this.runPage[RUN.readyForInterruptInjection] !== 0;
  }
  /** `KVM_RUN` until the next exit; EINTR (signal or immediate_exit) becomes `intr`. */
  run() {
    const ret = libc().ioctlRun(this.fd, IOCTL.KVM_RUN, null);
    if (ret < 0) {
      const e = lastErrno();
      if (e === EINTR || e === EAGAIN) return {
        kind: "intr"
      };
      throw new KvmError("KVM_RUN", e);
    }
    return decodeExit(this.runPage, this.#dv);
  }
  /** `KVM_GET_REGS`. */
  getRegs() {
    return getStruct(this.fd, "KVM_GET_REGS", REGS_SIZE, decodeRegs);
  }
  /** `KVM_SET_REGS`. */
  setRegs(r) {
    ioctl(this.fd, "KVM_SET_REGS", encodeRegs(r));
  }
  /** `KVM_GET_SREGS`. */
  getSregs() {
    return getStruct(this.fd, "KVM_GET_SREGS", SREGS_SIZE, decodeSregs);
  }
  /** `KVM_SET_SREGS`. */
  setSregs(s) {
    ioctl(this.fd, "KVM_SET_SREGS", encodeSregs(s));
  }
  /** `KVM_GET_FPU` (`mxcsr` always reads 0: the kernel does not fill it). */
  getFpu() {
    return getStruct(this.fd, "KVM_GET_FPU", FPU_SIZE, decodeFpu);
  }
  /** `KVM_SET_FPU`. The kernel ignores `mxcsr` here; set it through {@link setXsave}. */
  setFpu(f) {
    ioctl(this.fd, "KVM_SET_FPU", encodeFpu(f));
  }
  /** `KVM_GET_MSRS` for `indices`; throws when KVM could read only some of them. */
  getMsrs(indices) {
    const b = encodeMsrs(indices.map((index) => ({
      index,
      data: 0n
    })));
    const n = ioctl(this.fd, "KVM_GET_MSRS", b);
    if (n !== indices.length) {
      const bad = indices[n] ?? 0;
      throw new KvmError("KVM_GET_MSRS", 22, `read ${n} of ${indices.length}, MSR 0x${bad.toString(16)}`);
    }
    return decodeMsrs(b, n);
  }
  /** `KVM_SET_MSRS`; throws when KVM could write only some of them. */
  setMsrs(entries) {
    const n = ioctl(this.fd, "KVM_SET_MSRS", encodeMsrs(entries));
    if (n !== entries.length) {
      const bad = entries[n]?.index ?? 0;
      throw new KvmError("KVM_SET_MSRS", 22, `wrote ${n} of ${entries.length}, MSR 0x${bad.toString(16)}`);
    }
  }
  /** `KVM_SET_CPUID2`. */
  setCpuid2(entries) {
    ioctl(this.fd, "KVM_SET_CPUID2", encodeCpuid(entries));
  }
  /** `KVM_GET_CPUID2`: the leaves set by `KVM_SET_CPUID2`. */
  getCpuid2() {
    return cpuidIoctl(this.fd, "KVM_GET_CPUID2");
  }
  /** `KVM_GET_LAPIC`: the 1 KiB local APIC register page. */
  getLapic() {
    return getStruct(this.fd, "KVM_GET_LAPIC", LAPIC_SIZE, raw);
  }
  /** `KVM_SET_LAPIC`. */
  setLapic(state) {
    ioctl(this.fd, "KVM_SET_LAPIC", sized(state, LAPIC_SIZE, "lapic"));
  }
  /** `KVM_GET_XSAVE`, or `KVM_GET_XSAVE2` with `size` when KVM_CAP_XSAVE2 asks for more. */
  getXsave(size = XSAVE_SIZE) {
    const b = new Uint8Array(Math.max(size, XSAVE_SIZE));
    ioctl(this.fd, size > XSAVE_SIZE ? "KVM_GET_XSAVE2" : "KVM_GET_XSAVE", b);
    return b;
  }
  /** `KVM_SET_XSAVE` (at least 4096 bytes; larger buffers carry extended state). */
  setXsave(state) {
    if (state.byteLength < XSAVE_SIZE) {
      throw new RangeError(`Cannot set xsave: ${state.byteLength} bytes, need at least 4096`);
    }
    ioctl(this.fd, "KVM_SET_XSAVE", state.slice());
  }
  /** `KVM_GET_XCRS`. */
  getXcrs() {
    return getStruct(this.fd, "KVM_GET_XCRS", XCRS_SIZE, decodeXcrs);
  }
  /** `KVM_SET_XCRS`. */
  setXcrs(x) {
    ioctl(this.fd, "KVM_SET_XCRS", encodeXcrs(x));
  }
  /** `KVM_GET_VCPU_EVENTS`: pending exceptions, interrupts, NMI, SMI (raw 64 bytes). */
  getVcpuEvents() {
    return getStruct(this.fd, "KVM_GET_VCPU_EVENTS", VCPU_EVENTS_SIZE, raw);
  }
  /** `KVM_SET_VCPU_EVENTS`. */
  setVcpuEvents(state) {
    ioctl(this.fd, "KVM_SET_VCPU_EVENTS", sized(state, VCPU_EVENTS_SIZE, "vcpu events"));
  }
  /** `KVM_GET_MP_STATE` (see `MP_STATE`). */
  getMpState() {
    const b = new Uint8Array(4);
    ioctl(this.fd, "KVM_GET_MP_STATE", b);
    return new DataView(b.buffer).getUint32(0, true);
  }
  /** `KVM_SET_MP_STATE`. */
  setMpState(state) {
    const b = new Uint8Array(4);
    new DataView(b.buffer).setUint32(0, state, true);
    ioctl(this.fd, "KVM_SET_MP_STATE", b);
  }
  /** `KVM_GET_DEBUGREGS`. */
  getDebugRegs() {
    return getStruct(this.fd, "KVM_GET_DEBUGREGS", DEBUGREGS_SIZE, decodeDebugRegs);
  }
  /** `KVM_SET_DEBUGREGS`. */
  setDebugRegs(d) {
    ioctl(this.fd, "KVM_SET_DEBUGREGS", encodeDebugRegs(d));
  }
  /**
   * `KVM_KVMCLOCK_CTRL`: tell the guest it was paused, so its soft-lockup watchdog does
   * not fire. Returns false when the guest has no kvmclock page (EINVAL).
   */
  kvmclockCtrl() {
    const ret = libc().ioctlInt(this.fd, BigInt(IOCTL.KVM_KVMCLOCK_CTRL), 0n);
    if (ret >= 0) return true;
    const e = lastErrno();
    if (e === 22) return false;
    throw new KvmError("KVM_KVMCLOCK_CTRL", e);
  }
  /** `KVM_GET_TSC_KHZ`. */
  getTscKhz() {
    return ioctlInt(this.fd, "KVM_GET_TSC_KHZ");
  }
  /** Unmaps `kvm_run` and closes the fd when this object owns them. */
  close() {
    if (this.#closed || !this.#owner) return;
    this.#closed = true;
    const p = Deno.UnsafePointer.create(this.runAddr);
    if (p !== null) munmap(p, this.runSize);
    closeFd(this.fd);
  }
  /** {@link close}, for `using`. */
  [Symbol.dispose]() {
    this.close();
  }
};
function sized(b, size, what) {
  if (b.byteLength !== size) {
    throw new RangeError(`Cannot set ${what}: ${b.byteLength} bytes, need ${size}`);
  }
  return b.slice();
}

// snapshot/format.ts
var SNAPSHOT_MAX_STATE = 64 * 1024 * 1024;
var HEADER = 8 + 4 + 4 + 32;
var fromBase64 = Uint8Array.fromBase64;

// snapshot/vcpu_state.ts
function readableMsrs(vcpu2, candidates) {
  return candidates.filter((i) => {
    try {
      vcpu2.getMsrs([
        i
      ]);
      return true;
    } catch {
      return false;
    }
  });
}
function saveVcpu(vcpu2, msrs) {
  const mpState = vcpu2.getMpState();
  const regs = vcpu2.getRegs();
  const sregs = vcpu2.getSregs();
  const xsave = vcpu2.getXsave();
  const xcrs = vcpu2.getXcrs();
  const lapic = vcpu2.getLapic();
  const msrEntries = vcpu2.getMsrs(msrs);
  const debugRegs = vcpu2.getDebugRegs();
  const cpuid = vcpu2.getCpuid2();
  const events = vcpu2.getVcpuEvents();
  return {
    id: vcpu2.id,
    mpState,
    regs,
    sregs,
    xsave,
    xcrs,
    lapic,
    msrs: msrEntries,
    debugRegs,
    cpuid,
    events
  };
}
function restoreVcpu(vcpu2, s) {
  if (s.cpuid.length) vcpu2.setCpuid2(s.cpuid);
  vcpu2.setMpState(s.mpState);
  vcpu2.setRegs(s.regs);
  vcpu2.setSregs(s.sregs);
  vcpu2.setXsave(s.xsave);
  vcpu2.setXcrs(s.xcrs);
  vcpu2.setDebugRegs(s.debugRegs);
  vcpu2.setLapic(s.lapic);
  if (s.msrs.length) vcpu2.setMsrs(s.msrs);
  vcpu2.setVcpuEvents(s.events);
}

// bus/bus.ts
var Bus = class {
  /** "pio" or "mmio", for messages. */
  kind;
  #ranges = [];
  #last;
  /** An empty bus; `kind` ("pio" or "mmio") names it in messages. */
  constructor(kind) {
    this.kind = kind;
  }
  /** Adds `device` at [base, base+size); throws when that overlaps a registered range. */
  register(base, size, device, name = "device") {
    if (!Number.isSafeInteger(base) || base < 0 || !Number.isSafeInteger(size) || size <= 0) {
      throw new RangeError(`Cannot register ${name} on the ${this.kind} bus: bad range`);
    }
    for (const r of this.#ranges) {
      if (base < r.base + r.size && r.base < base + size) {
        throw new RangeError(`Cannot register ${name} at 0x${base.toString(16)}+0x${size.toString(16)} on the ${this.kind} bus: overlaps ${r.name} at 0x${r.base.toString(16)}+0x${r.size.toString(16)}`);
      }
    }
    this.#ranges.push({
      base,
      size,
      device,
      name
    });
    this.#ranges.sort((a, b) => a.base - b.base);
  }
  /** Removes the device registered at `base`; returns whether there was one. */
  unregister(base) {
    const i = this.#ranges.findIndex((r) => r.base === base);
    if (i < 0) return false;
    this.#ranges.splice(i, 1);
    this.#last = void 0;
    return true;
  }
  /** The registered ranges, in address order. */
  ranges() {
    return this.#ranges.map(({ base, size, name }) => ({
      base,
      size,
      name
    }));
  }
  #find(addr, len) {
    const l = this.#last;
    if (l && addr >= l.base && addr + len <= l.base + l.size) return l;
    for (const r of this.#ranges) {
      if (addr >= r.base && addr + len <= r.base + r.size) return this.#last = r;
    }
    return void 0;
  }
  /** Routes a read; returns false (and leaves `data` alone) when no device owns it all. */
  read(addr, data) {
    const r = this.#find(addr, data.byteLength);
    if (!r) return false;
    r.device.read(addr - r.base, data);
    return true;
  }
  /** Routes a write; returns false when no device owns the whole access. */
  write(addr, data) {
    const r = this.#find(addr, data.byteLength);
    if (!r) return false;
    r.device.write(addr - r.base, data);
    return true;
  }
};

// devices/uart.ts
var UART_REG = {
  DATA: 0,
  IER: 1,
  IIR_FCR: 2,
  LCR: 3,
  MCR: 4,
  LSR: 5,
  MSR: 6,
  SCR: 7
};
var IER_RDI = 1;
var IER_THRI = 2;
var IER_RLSI = 4;
var IER_MSI = 8;
var IIR_NONE = 1;
var IIR_MSI = 0;
var IIR_THRI = 2;
var IIR_RDI = 4;
var IIR_RLSI = 6;
var IIR_FIFO = 192;
var LCR_DLAB = 128;
var MCR_DTR = 1;
var MCR_RTS = 2;
var MCR_OUT1 = 4;
var MCR_OUT2 = 8;
var MCR_LOOP = 16;
var LSR_DR = 1;
var LSR_OE = 2;
var LSR_THRE = 32;
var LSR_TEMT = 64;
var MSR_DCTS = 1;
var MSR_DDSR = 2;
var MSR_TERI = 4;
var MSR_DDCD = 8;
var MSR_CTS = 16;
var MSR_DSR = 32;
var MSR_RI = 64;
var MSR_DCD = 128;
var UART_FIFO = 64;
var W = {
  LOCK: 0,
  IER: 1,
  LCR: 2,
  MCR: 3,
  LSR_ERR: 4,
  MSR: 5,
  SCR: 6,
  DLL: 7,
  DLM: 8,
  FCR: 9,
  THR_PENDING: 10,
  RX_HEAD: 11,
  RX_TAIL: 12,
  COUNT: 13
};
var RX_BYTE = W.COUNT * 4;
var STATE_BYTES = RX_BYTE + UART_FIFO;
var Uart = class _Uart {
  /** The shared state: registers, lock and receive FIFO; post it to build other views. */
  state;
  #w;
  #rx;
  #o;
  /** A view of `state` (from {@link Uart.createState}); throws a RangeError on a wrong size. */
  constructor(state, opts) {
    if (state.byteLength !== STATE_BYTES) throw new RangeError("Cannot use UART state: wrong size");
    this.state = state;
    this.#w = new Int32Array(state, 0, W.COUNT);
    this.#rx = new Uint8Array(state, RX_BYTE, UART_FIFO);
    this.#o = opts;
  }
  /** Fresh shared state: the power-on register values (MSR lines up, 115200 baud). */
  static createState() {
    const sab = new SharedArrayBuffer(STATE_BYTES);
    const w = new Int32Array(sab, 0, W.COUNT);
    w[W.MSR] = MSR_DCD | MSR_DSR | MSR_CTS;
    w[W.DLL] = 1;
    w[W.MCR] = MCR_OUT2;
    return sab;
  }
  #lock() {
    while (Atomics.compareExchange(this.#w, W.LOCK, 0, 1) !== 0) {
    }
  }
  #unlock() {
    Atomics.store(this.#w, W.LOCK, 0);
  }
  #rxCount() {
    return this.#w[W.RX_HEAD] - this.#w[W.RX_TAIL] >>> 0;
  }
  /** The interrupt identification, by priority. */
  #iir() {
    const w = this.#w, ier = w[W.IER];
    let id = IIR_NONE;
    if (ier & IER_RLSI && w[W.LSR_ERR] & LSR_OE) id = IIR_RLSI;
    else if (ier & IER_RDI && this.#rxCount() > 0) id = IIR_RDI;
    else if (ier & IER_THRI && w[W.THR_PENDING]) id = IIR_THRI;
    else if (ier & IER_MSI && w[W.MSR] & 15) id = IIR_MSI;
    return id | (w[W.FCR] & 1 ? IIR_FIFO : 0);
  }
  #pending() {
    return (this.#iir() & IIR_NONE) === 0;
  }
  /** Bus read of register `offset`. */
  read(offset, data) {
    data.fill(0);
    this.#lock();
    try {
      data[0] = this.#readReg(offset & 7);
    } finally {
      this.#unlock();
    }
  }
  #readReg(o) {
    const w = this.#w;
    const dlab = (w[W.LCR] & LCR_DLAB) !== 0;
    switch (o) {
      case UART_REG.DATA: {
        if (dlab) return w[W.DLL];
        if (this.#rxCount() === 0) return 0;
        const b = this.#rx[w[W.RX_TAIL] % UART_FIFO];
        w[W.RX_TAIL] = w[W.RX_TAIL] + 1 | 0;
        return b;
      }
      case UART_REG.IER:
        return dlab ? w[W.DLM] : w[W.IER];
      case UART_REG.IIR_FCR: {
        const iir = this.#iir();
        if ((iir & 15) === IIR_THRI) w[W.THR_PENDING] = 0;
        return iir;
      }
      case UART_REG.LCR:
        return w[W.LCR];
      case UART_REG.MCR:
        return w[W.MCR];
      case UART_REG.LSR: {
        const lsr = LSR_THRE | LSR_TEMT | (this.#rxCount() > 0 ? LSR_DR : 0) | w[W.LSR_ERR];
        w[W.LSR_ERR] = 0;
        return lsr;
      }
      case UART_REG.MSR: {
        const msr = w[W.MSR];
        w[W.MSR] = msr & 240;
        return msr;
      }
      default:
        return w[W.SCR];
    }
  }
  /** Bus write of register `offset`. */
  write(offset, data) {
    const v = data[0];
    let out = -1;
    let raise = false;
    this.#lock();
    try {
      const before = this.#pending();
      out = this.#writeReg(offset & 7, v);
      raise = !before && this.#pending();
    } finally {
      this.#unlock();
    }
    if (out >= 0) this.#o.output(out);
    if (raise) this.#o.interrupt.trigger();
  }
  /** Applies a register write; returns a byte to transmit, or -1. */
  #writeReg(o, v) {
    const w = this.#w;
    const dlab = (w[W.LCR] & LCR_DLAB) !== 0;
    switch (o) {
      case UART_REG.DATA:
        if (dlab) {
          w[W.DLL] = v;
          return -1;
        }
        if (w[W.MCR] & MCR_LOOP) {
          this.#push(v);
          w[W.THR_PENDING] = 1;
          return -1;
        }
        w[W.THR_PENDING] = 1;
        return v;
      case UART_REG.IER:
        if (dlab) {
          w[W.DLM] = v;
          return -1;
        }
        if (v & IER_THRI && !(w[W.IER] & IER_THRI)) w[W.THR_PENDING] = 1;
        w[W.IER] = v & 15;
        return -1;
      case UART_REG.IIR_FCR:
        w[W.FCR] = v & 201;
        if (v & 2) w[W.RX_TAIL] = w[W.RX_HEAD];
        return -1;
      case UART_REG.LCR:
        w[W.LCR] = v;
        return -1;
      case UART_REG.MCR:
        this.#setMcr(v & 31);
        return -1;
      case UART_REG.LSR:
      case UART_REG.MSR:
        return -1;
      // read-only
      default:
        w[W.SCR] = v;
        return -1;
    }
  }
  #setMcr(v) {
    const w = this.#w;
    w[W.MCR] = v;
    const old = w[W.MSR];
    let lines;
    if (v & MCR_LOOP) {
      lines = (v & MCR_RTS ? MSR_CTS : 0) | (v & MCR_DTR ? MSR_DSR : 0) | (v & MCR_OUT1 ? MSR_RI : 0) | (v & MCR_OUT2 ? MSR_DCD : 0);
    } else lines = MSR_DCD | MSR_DSR | MSR_CTS;
    const changed = (old ^ lines) & 240;
    let delta = old & 15;
    if (changed & MSR_CTS) delta |= MSR_DCTS;
    if (changed & MSR_DSR) delta |= MSR_DDSR;
    if (changed & MSR_DCD) delta |= MSR_DDCD;
    if (old & MSR_RI && !(lines & MSR_RI)) delta |= MSR_TERI;
    w[W.MSR] = lines | delta;
  }
  #push(b) {
    const w = this.#w;
    if (this.#rxCount() >= UART_FIFO) {
      w[W.LSR_ERR] = w[W.LSR_ERR] | LSR_OE;
      return false;
    }
    this.#rx[w[W.RX_HEAD] % UART_FIFO] = b;
    w[W.RX_HEAD] = w[W.RX_HEAD] + 1 | 0;
    return true;
  }
  /**
   * Puts received bytes in the FIFO; returns how many fit (the caller keeps the rest and
   * offers them again later, so no input is lost while the guest is slow).
   */
  receive(bytes) {
    let n = 0, raise = false;
    this.#lock();
    try {
      if (this.#w[W.MCR] & MCR_LOOP) return 0;
      const before = this.#pending();
      while (n < bytes.byteLength && this.#rxCount() < UART_FIFO) this.#push(bytes[n++]);
      raise = !before && this.#pending();
    } finally {
      this.#unlock();
    }
    if (raise) this.#o.interrupt.trigger();
    return n;
  }
  /** Free space in the receive FIFO. */
  get rxSpace() {
    return UART_FIFO - this.#rxCount();
  }
  /** The state as plain data. */
  save() {
    this.#lock();
    try {
      const w = this.#w;
      const rx = [];
      for (let i = 0; i < this.#rxCount(); i++) rx.push(this.#rx[(w[W.RX_TAIL] + i) % UART_FIFO]);
      return {
        ier: w[W.IER],
        lcr: w[W.LCR],
        mcr: w[W.MCR],
        lsrErrors: w[W.LSR_ERR],
        msr: w[W.MSR],
        scr: w[W.SCR],
        dll: w[W.DLL],
        dlm: w[W.DLM],
        fcr: w[W.FCR],
        thrPending: w[W.THR_PENDING] === 1,
        rx
      };
    } finally {
      this.#unlock();
    }
  }
  /** Validates a saved state (untrusted), pure; see `bus/persist.ts`. */
  static check(x) {
    const byte = (v, n) => {
      if (typeof v !== "number" || !Number.isInteger(v) || v < 0 || v > 255) {
        throw new RangeError(`Cannot restore UART: ${n} is not a byte`);
      }
      return v;
    };
    if (typeof x !== "object" || x === null) throw new RangeError("Cannot restore UART: no state");
    const s = x;
    if (!Array.isArray(s.rx) || s.rx.length > UART_FIFO) {
      throw new RangeError("Cannot restore UART: bad FIFO");
    }
    if (typeof s.thrPending !== "boolean") throw new RangeError("Cannot restore UART: thrPending");
    return {
      ier: byte(s.ier, "ier") & 15,
      lcr: byte(s.lcr, "lcr"),
      mcr: byte(s.mcr, "mcr") & 31,
      lsrErrors: byte(s.lsrErrors, "lsrErrors"),
      msr: byte(s.msr, "msr"),
      scr: byte(s.scr, "scr"),
      dll: byte(s.dll, "dll"),
      dlm: byte(s.dlm, "dlm"),
      fcr: byte(s.fcr, "fcr"),
      thrPending: s.thrPending,
      rx: s.rx.map((b, i) => byte(b, `rx[${i}]`))
    };
  }
  /** Restores saved state (untrusted: {@link Uart.check} first, then all at once). */
  restore(saved) {
    const s = _Uart.check(saved);
    const rx = s.rx;
    const vals = [
      s.ier,
      s.lcr,
      s.mcr,
      s.lsrErrors,
      s.msr,
      s.scr,
      s.dll,
      s.dlm,
      s.fcr
    ];
    this.#lock();
    try {
      const w = this.#w;
      const slots = [
        W.IER,
        W.LCR,
        W.MCR,
        W.LSR_ERR,
        W.MSR,
        W.SCR,
        W.DLL,
        W.DLM,
        W.FCR
      ];
      slots.forEach((slot, i) => w[slot] = vals[i]);
      w[W.THR_PENDING] = s.thrPending ? 1 : 0;
      w[W.RX_TAIL] = 0;
      w[W.RX_HEAD] = rx.length;
      this.#rx.set(rx);
    } finally {
      this.#unlock();
    }
  }
};

// vstate/byte_ring.ts
var HEAD = 0;
var TAIL = 1;
var WANT = 2;
var HEADER_BYTES = 16;
var ByteRing = class _ByteRing {
  sab;
  #idx;
  #data;
  #mask;
  constructor(sab) {
    this.sab = sab;
    const cap = sab.byteLength - HEADER_BYTES;
    if (cap <= 0 || (cap & cap - 1) !== 0) {
      throw new RangeError(`Cannot use byte ring: capacity ${cap} is not a power of two`);
    }
    this.#idx = new Int32Array(sab, 0, 3);
    this.#data = new Uint8Array(sab, HEADER_BYTES, cap);
    this.#mask = cap - 1;
  }
  /** A ring holding up to `capacity` bytes (a power of two). */
  static create(capacity = 65536) {
    const r = new _ByteRing(new SharedArrayBuffer(HEADER_BYTES + capacity));
    Atomics.store(r.#idx, WANT, 1);
    return r;
  }
  /**
   * For the writer, after pushing: whether the reader asked to be woken (it drained the ring
   * and has not been woken since). True at most once per {@link drainArmed}, so a writer
   * producing a byte at a time wakes the reader once per batch, not once per byte.
   */
  takeWakeRequest() {
    return Atomics.exchange(this.#idx, WANT, 0) === 1;
  }
  /** Bytes waiting to be read. */
  get length() {
    return Atomics.load(this.#idx, HEAD) - Atomics.load(this.#idx, TAIL) >>> 0;
  }
  /** Free space in bytes. */
  get free() {
    return this.#data.byteLength - this.length;
  }
  /** Appends as many bytes of `src` as fit; returns how many were written. */
  push(src) {
    const head = Atomics.load(this.#idx, HEAD);
    const n = Math.min(src.byteLength, this.free);
    for (let i = 0; i < n; i++) this.#data[head + i & this.#mask] = src[i];
    Atomics.store(this.#idx, HEAD, head + n | 0);
    return n;
  }
  /** Appends one byte; false when the ring is full. */
  pushByte(b) {
    if (this.free === 0) return false;
    const head = Atomics.load(this.#idx, HEAD);
    this.#data[head & this.#mask] = b;
    Atomics.store(this.#idx, HEAD, head + 1 | 0);
    return true;
  }
  /** Removes and returns everything waiting. */
  drain() {
    const tail = Atomics.load(this.#idx, TAIL);
    const n = this.length;
    const out = new Uint8Array(n);
    for (let i = 0; i < n; i++) out[i] = this.#data[tail + i & this.#mask];
    Atomics.store(this.#idx, TAIL, tail + n | 0);
    Atomics.notify(this.#idx, TAIL);
    return out;
  }
  /**
   * For the reader: {@link drain}, then ask to be woken for the next byte, then look once
   * more (a byte pushed between the drain and the request would otherwise wait unseen).
   */
  drainArmed() {
    const first = this.drain();
    Atomics.store(this.#idx, WANT, 1);
    if (this.length === 0) return first;
    const more = this.drain();
    const all = new Uint8Array(first.byteLength + more.byteLength);
    all.set(first);
    all.set(more, first.byteLength);
    return all;
  }
  /** Blocks (worker threads only) until the reader frees space or `ms` passes. */
  waitForSpace(ms) {
    const tail = Atomics.load(this.#idx, TAIL);
    if (this.free > 0) return;
    Atomics.wait(this.#idx, TAIL, tail, ms);
  }
};

// vstate/local_devices.ts
function registerLocalDevices(bus, specs, effects2, vm) {
  for (const spec of specs) {
    switch (spec.kind) {
      case "exit":
        bus.register(spec.port, 1, exitDevice(effects2), "exit");
        break;
      case "counter":
        bus.register(spec.port, 4, counterDevice(new Int32Array(spec.counter)), "counter");
        break;
      case "uart":
        bus.register(spec.port, 8, uart(spec, effects2, vm), "uart");
        break;
      case "marker":
        bus.register(spec.port, 1, marker(new Float64Array(spec.cell)), "marker");
        break;
      case "virtio_isr":
        break;
    }
  }
}
function exitDevice(effects2) {
  return {
    read: (_o, d) => d.fill(0),
    write: (_o, d) => {
      effects2.exitCode = d[0];
    }
  };
}
function counterDevice(words) {
  return {
    read: (_o, d) => {
      const v = Atomics.load(words, 0);
      for (let i = 0; i < d.length; i++) d[i] = v >>> 8 * i & 255;
    },
    write: (_o, d) => {
      let v = 0;
      for (let i = d.length - 1; i >= 0; i--) v = v << 8 | d[i];
      Atomics.add(words, 0, 1);
      Atomics.store(words, 1, v);
    }
  };
}
function marker(cell) {
  return {
    read: (_o, d) => d.fill(0),
    write: () => {
      if (cell[0] === 0) cell[0] = performance.timeOrigin + performance.now();
    }
  };
}
function uart(spec, effects2, vm) {
  const ring = new ByteRing(spec.ring);
  const irq = spec.irq;
  const trigger = vm && irq !== void 0 ? () => {
    vm.irqLine(irq, 1);
    vm.irqLine(irq, 0);
  } : () => eventfdWrite(spec.irqFd);
  return new Uart(spec.state, {
    output: (b) => {
      for (let tries = 0; !ring.pushByte(b) && tries < 100; tries++) {
        effects2.wakeNow?.();
        ring.waitForSpace(10);
      }
      if (ring.takeWakeRequest()) effects2.wake = true;
    },
    interrupt: {
      trigger
    }
  });
}

// vstate/virtio_isr.ts
var ISR_WINDOW = 4096;
var ISR_STATUS = 96;
var ISR_ACK = 100;
var VirtioIsrTable = class _VirtioIsrTable {
  base;
  slots;
  sab;
  /** `[claimed, status]` per slot. */
  words;
  /**
   * A view of `sab` (from {@link VirtioIsrTable.create}, possibly on another thread) for
   * `slots` windows from `base`.
   */
  constructor(base, slots, sab) {
    this.base = base;
    this.slots = slots;
    this.sab = sab;
    if (sab.byteLength < slots * 8) {
      throw new RangeError(`Cannot use ISR table: ${sab.byteLength} bytes for ${slots} slots`);
    }
    this.words = new Int32Array(sab, 0, slots * 2);
  }
  /** A table for `slots` windows from `base`, none claimed. */
  static create(base, slots) {
    return new _VirtioIsrTable(base, slots, new SharedArrayBuffer(slots * 8));
  }
  /**
   * Claims the slot of the window at `windowBase`; undefined when it has none or another
   * device holds it (that device's word is left alone).
   */
  claim(windowBase) {
    const slot = this.#slot(windowBase);
    if (slot === void 0 || Atomics.load(this.words, slot * 2) === 1) return void 0;
    Atomics.store(this.words, slot * 2 + 1, 0);
    Atomics.store(this.words, slot * 2, 1);
    return {
      words: this.words,
      index: slot * 2 + 1
    };
  }
  /** Gives the slot of `windowBase` back (its device is gone): its accesses cross again. */
  release(windowBase) {
    const slot = this.#slot(windowBase);
    if (slot === void 0) return;
    Atomics.store(this.words, slot * 2, 0);
    Atomics.store(this.words, slot * 2 + 1, 0);
  }
  #slot(windowBase) {
    const off = windowBase - this.base;
    if (off < 0 || off % ISR_WINDOW || off / ISR_WINDOW >= this.slots) return void 0;
    return off / ISR_WINDOW;
  }
  /**
   * For a vCPU worker: serves the access if it is a 4-byte InterruptStatus read or
   * InterruptACK write of a claimed window (true), else leaves it alone (false).
   */
  serve(addr, data, isWrite) {
    const off = addr - this.base;
    if (off < 0 || off >= this.slots * ISR_WINDOW || data.byteLength !== 4) return false;
    const slot = Math.floor(off / ISR_WINDOW), reg = off % ISR_WINDOW;
    if (Atomics.load(this.words, slot * 2) !== 1) return false;
    const at = slot * 2 + 1;
    if (!isWrite && reg === ISR_STATUS) {
      const v = Atomics.load(this.words, at);
      data[0] = v & 255;
      data[1] = v >>> 8 & 255;
      data[2] = v >>> 16 & 255;
      data[3] = v >>> 24 & 255;
      return true;
    }
    if (isWrite && reg === ISR_ACK) {
      const v = data[0] | data[1] << 8 | data[2] << 16 | data[3] << 24;
      Atomics.and(this.words, at, ~v);
      return true;
    }
    return false;
  }
};

// vstate/mailbox.ts
var MB = {
  /** IDLE, REQUEST or RESPONSE. */
  STATE: 0,
  /** One of `ACCESS`. */
  KIND: 1,
  ADDR_LO: 2,
  ADDR_HI: 3,
  LEN: 4,
  /** Byte offset of the 8 data bytes. */
  DATA_BYTE: 32,
  BYTES: 64
};
var MB_STATE = {
  IDLE: 0,
  REQUEST: 1,
  RESPONSE: 2
};
var ACCESS = {
  PIO_OUT: 0,
  PIO_IN: 1,
  MMIO_WRITE: 2,
  MMIO_READ: 3
};
var CTL = {
  /** What the device thread asks: `REQ`. */
  REQUEST: 0,
  /** The worker's kernel thread id, for tgkill. */
  TID: 1,
  /** What the worker is doing: `VSTATE`. */
  STATE: 2,
  /** Count of exits served (diagnostics, benchmarks). */
  EXITS: 3,
  /** Count of exits that crossed to the device thread. */
  CROSSINGS: 4,
  BYTES: 64
};
var REQ = {
  RUN: 0,
  PAUSE: 1,
  STOP: 2
};
var VSTATE = {
  IDLE: 0,
  RUNNING: 1,
  PAUSED: 2,
  EXITED: 3
};
var SINGLE_CPU = (globalThis.navigator?.hardwareConcurrency ?? 2) <= 1;
var SPIN_ITERATIONS = SINGLE_CPU ? 0 : 2e3;
var Mailbox = class _Mailbox {
  sab;
  /** The mailbox words, indexed by {@link MB}. */
  i32;
  /** The access's data: 8 bytes, the first `LEN` of them used. */
  data;
  /** Views of a mailbox in `sab` ({@link MB}.BYTES long), shared with the other thread. */
  constructor(sab) {
    this.sab = sab;
    this.i32 = new Int32Array(sab, 0, MB.BYTES / 4);
    this.data = new Uint8Array(sab, MB.DATA_BYTE, 8);
  }
  /** A new, zeroed (IDLE) mailbox. */
  static create() {
    return new _Mailbox(new SharedArrayBuffer(MB.BYTES));
  }
  /** The access address (ports and MMIO addresses below 2^53). */
  get addr() {
    return (this.i32[MB.ADDR_HI] >>> 0) * 4294967296 + (this.i32[MB.ADDR_LO] >>> 0);
  }
};

// vstate/vcpu_worker.ts
var VCPU_OPS = [
  "getRegs",
  "setRegs",
  "getSregs",
  "setSregs",
  "getFpu",
  "setFpu",
  "getMsrs",
  "setMsrs",
  "setCpuid2",
  "getCpuid2",
  "getLapic",
  "setLapic",
  "getXsave",
  "setXsave",
  "getXcrs",
  "setXcrs",
  "getVcpuEvents",
  "setVcpuEvents",
  "getMpState",
  "setMpState",
  "getDebugRegs",
  "setDebugRegs",
  "kvmclockCtrl",
  "getTscKhz",
  "setRealMode",
  "saveState",
  "restoreState"
];
var vcpu;
var ctl;
var mb;
var doorbell;
var pio = new Bus("pio");
var effects = {
  wakeNow: () => ringDoorbell()
};
var coalescedPage = 0;
var coalescedLock;
var isr;
function post(m) {
  self.postMessage(m);
}
function ringDoorbell() {
  Atomics.add(doorbell, 0, 1);
  Atomics.notify(doorbell, 0);
}
function cross(kind, addr, data) {
  const w = mb.i32;
  w[MB.KIND] = kind;
  w[MB.ADDR_LO] = addr >>> 0;
  w[MB.ADDR_HI] = Math.floor(addr / 4294967296);
  w[MB.LEN] = data.byteLength;
  const isWrite = kind === ACCESS.PIO_OUT || kind === ACCESS.MMIO_WRITE;
  if (isWrite) mb.data.set(data);
  Atomics.store(w, MB.STATE, MB_STATE.REQUEST);
  ringDoorbell();
  Atomics.add(ctl, CTL.CROSSINGS, 1);
  let spins = 0;
  while (Atomics.load(w, MB.STATE) !== MB_STATE.RESPONSE) {
    if (++spins < SPIN_ITERATIONS) continue;
    Atomics.wait(w, MB.STATE, MB_STATE.REQUEST, 20);
    if (Atomics.load(ctl, CTL.REQUEST) === REQ.STOP) {
      if (!isWrite) data.fill(255);
      Atomics.store(w, MB.STATE, MB_STATE.IDLE);
      return;
    }
  }
  if (!isWrite) data.set(mb.data.subarray(0, data.byteLength));
  Atomics.store(w, MB.STATE, MB_STATE.IDLE);
}
function drainCoalesced() {
  const lock = coalescedLock;
  for (let spins = 0; Atomics.compareExchange(lock, 0, 0, 1) !== 0; ) {
    if (++spins > SPIN_ITERATIONS) Atomics.wait(lock, 0, 1, 1);
  }
  try {
    vcpu.drainCoalesced(coalescedPage, (addr, data, isPio) => {
      if (!isPio) {
        if (!isr?.serve(addr, data, true)) cross(ACCESS.MMIO_WRITE, addr, data);
      } else if (!pio.write(addr, data)) cross(ACCESS.PIO_OUT, addr, data);
    });
  } finally {
    Atomics.store(lock, 0, 0);
    Atomics.notify(lock, 0, 1);
  }
}
function needsCompletion(kind) {
  return kind === "io_out" || kind === "io_in" || kind === "mmio_write" || kind === "mmio_read";
}
function runLoop() {
  vcpu.immediateExit = 0;
  let pending = false;
  for (; ; ) {
    const req = Atomics.load(ctl, CTL.REQUEST);
    if (req !== REQ.RUN) {
      if (!pending) return req === REQ.PAUSE ? {
        kind: "paused"
      } : {
        kind: "stopped"
      };
      vcpu.immediateExit = 1;
    }
    const e = vcpu.run();
    pending = needsCompletion(e.kind);
    Atomics.add(ctl, CTL.EXITS, 1);
    if (coalescedLock && vcpu.coalescedPending(coalescedPage)) drainCoalesced();
    switch (e.kind) {
      case "io_out":
        for (let i = 0; i < e.count; i++) {
          const d = e.count === 1 ? e.data : e.data.subarray(i * e.size, (i + 1) * e.size);
          if (!pio.write(e.port, d)) cross(ACCESS.PIO_OUT, e.port, d);
        }
        break;
      case "io_in":
        for (let i = 0; i < e.count; i++) {
          const d = e.count === 1 ? e.data : e.data.subarray(i * e.size, (i + 1) * e.size);
          if (!pio.read(e.port, d)) cross(ACCESS.PIO_IN, e.port, d);
        }
        break;
      case "mmio_write":
        if (!isr?.serve(e.addr, e.data, true)) cross(ACCESS.MMIO_WRITE, e.addr, e.data);
        break;
      case "mmio_read":
        if (!isr?.serve(e.addr, e.data, false)) cross(ACCESS.MMIO_READ, e.addr, e.data);
        break;
      case "intr":
        if (Atomics.load(ctl, CTL.REQUEST) === REQ.RUN) vcpu.immediateExit = 0;
        break;
      case "hlt":
        return {
          kind: "hlt"
        };
      case "shutdown":
        return {
          kind: "shutdown"
        };
      case "system_event":
        return {
          kind: "system_event",
          type: e.type
        };
      default:
        return {
          kind: "error",
          message: `vCPU ${vcpu.id}: ${describeExit(e)}`
        };
    }
    if (effects.wake) {
      effects.wake = false;
      ringDoorbell();
    }
    if (effects.exitCode !== void 0) {
      const code = effects.exitCode;
      delete effects.exitCode;
      return {
        kind: "exit",
        code
      };
    }
  }
}
var ranBefore = false;
function run() {
  Atomics.store(ctl, CTL.STATE, VSTATE.RUNNING);
  if (!ranBefore) {
    ranBefore = true;
    post({
      type: "first-run",
      at: performance.timeOrigin + performance.now()
    });
  }
  let reason;
  try {
    reason = runLoop();
  } catch (e) {
    reason = {
      kind: "error",
      message: e instanceof Error ? e.message : String(e)
    };
  }
  Atomics.store(ctl, CTL.STATE, reason.kind === "paused" ? VSTATE.PAUSED : VSTATE.EXITED);
  Atomics.notify(ctl, CTL.STATE);
  if (effects.wake) ringDoorbell();
  effects.wake = false;
  post({
    type: "stopped",
    reason
  });
}
function setRealMode(o) {
  const s = vcpu.getSregs();
  s.cs = {
    ...s.cs,
    selector: o.cs,
    base: BigInt(o.cs * 16)
  };
  for (const k of [
    "ds",
    "es",
    "ss",
    "fs",
    "gs"
  ]) {
    s[k] = {
      ...s[k],
      selector: 0,
      base: 0n
    };
  }
  vcpu.setSregs(s);
  const r = vcpu.getRegs();
  r.rip = BigInt(o.ip);
  r.rsp = BigInt(o.sp);
  r.rflags = 2n;
  vcpu.setRegs(r);
}
var msrList;
function call(op, args) {
  if (!VCPU_OPS.includes(op)) throw new TypeError(`Cannot call ${op} on a vCPU`);
  if (op === "setRealMode") return setRealMode(args[0]);
  if (op === "saveState") {
    return saveVcpu(vcpu, msrList ??= readableMsrs(vcpu, args[0]));
  }
  if (op === "restoreState") return restoreVcpu(vcpu, args[0]);
  const fn = vcpu[op];
  return fn.apply(vcpu, args);
}
self.onmessage = (ev) => {
  const m = ev.data;
  switch (m.type) {
    case "init":
      vcpu = new Vcpu(m.fd, m.id, m.runAddr, m.runSize);
      ranBefore = false;
      ctl = new Int32Array(m.control);
      mb = new Mailbox(m.mailbox);
      doorbell = new Int32Array(m.doorbell);
      registerLocalDevices(pio, m.local, effects, m.vmFd !== void 0 ? new Vm(m.vmFd, 0) : void 0);
      {
        const t = m.local.find((l) => l.kind === "virtio_isr");
        isr = t ? new VirtioIsrTable(t.base, t.slots, t.words) : void 0;
      }
      if (m.coalesced) {
        coalescedPage = m.coalesced.pageOffset;
        coalescedLock = new Int32Array(m.coalesced.lock);
      }
      if (m.state) {
        try {
          restoreVcpu(vcpu, m.state);
        } catch (e) {
          post({
            type: "init-failed",
            error: e instanceof Error ? e.message : String(e)
          });
          break;
        }
      }
      Atomics.store(ctl, CTL.TID, gettid());
      post({
        type: "ready",
        tid: gettid()
      });
      break;
    case "warm":
      post({
        type: "warm"
      });
      break;
    case "run":
      run();
      break;
    case "call":
      try {
        post({
          type: "result",
          seq: m.seq,
          ok: true,
          value: call(m.op, m.args)
        });
      } catch (e) {
        post({
          type: "result",
          seq: m.seq,
          ok: false,
          error: e instanceof Error ? e.message : String(e)
        });
      }
      break;
    case "close":
      post({
        type: "closed"
      });
      self.close();
      break;
  }
};
export {
  VCPU_OPS
};
