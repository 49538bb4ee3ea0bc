/**
 * Decoding of `kvm_run` after `KVM_RUN` returns, into a tagged union. Nothing outside this
 * file reads exit fields of the run page by offset.
 *
 * @module
 */

import { EXIT } from "./consts.ts";
import { RUN } from "./structs.ts";

/** Why `KVM_RUN` returned: the decoded `kvm_run` exit. */
export type VcpuExit =
  /** A port write; `data` holds `size * count` bytes (a view into the run page). */
  | { kind: "io_out"; port: number; size: number; count: number; data: Uint8Array }
  /** A port read; fill `data` (a view into the run page) before the next run. */
  | { kind: "io_in"; port: number; size: number; count: number; data: Uint8Array }
  /** A store to unbacked guest-physical memory; `data` holds `len` bytes. */
  | { kind: "mmio_write"; addr: number; len: number; data: Uint8Array }
  /** A load from unbacked guest-physical memory; fill `data` before the next run. */
  | { kind: "mmio_read"; addr: number; len: number; data: Uint8Array }
  | { kind: "hlt" }
  | { kind: "shutdown" }
  /** Interrupted by a signal or `immediate_exit` (also returned on EINTR). */
  | { kind: "intr" }
  | { kind: "irq_window_open" }
  | { kind: "debug" }
  | { kind: "exception"; exception: number; errorCode: number }
  | { kind: "fail_entry"; reason: bigint; cpu: number }
  | { kind: "internal_error"; suberror: number; data: bigint[] }
  | { kind: "system_event"; type: number; data: bigint[] }
  | { kind: "unknown"; hardwareReason: bigint }
  | { kind: "other"; reason: number };

/** Internal error suberror names (`KVM_INTERNAL_ERROR_*`). */
export const INTERNAL_ERROR_NAMES: Readonly<Record<number, string>> = {
  1: "EMULATION",
  2: "SIMUL_EX",
  3: "DELIVERY_EV",
  4: "UNEXPECTED_EXIT_REASON",
};

// Views of the data area are cached per (run page, offset, length): KVM always uses the same
// offset, and creating a typed array per exit would cost more than the rest of the decode.
const views = new WeakMap<Uint8Array, Map<number, Uint8Array>>();

function dataView(run: Uint8Array, off: number, len: number): Uint8Array {
  let m = views.get(run);
  if (m === undefined) views.set(run, m = new Map());
  const key = off * 16 + len;
  let v = m.get(key);
  if (v === undefined) {
    if (m.size > 64) m.clear();
    m.set(key, v = run.subarray(off, off + len));
  }
  return v;
}

function u64(dv: DataView, o: number): number {
  return dv.getUint32(o + 4, true) * 0x1_0000_0000 + dv.getUint32(o, true);
}

/**
 * Decodes the exit recorded in a `kvm_run` page. Data views it returns are reused by
 * later exits: copy them to keep them.
 *
 * @param run the run page as bytes (a zero-copy view of the mmap)
 * @param dv a DataView over the same bytes
 */
export function decodeExit(run: Uint8Array, dv: DataView): VcpuExit {
  const reason = dv.getUint32(RUN.exitReason, true);
  switch (reason) {
    case EXIT.IO: {
      const size = dv.getUint8(RUN.ioSize);
      const count = dv.getUint32(RUN.ioCount, true);
      const off = u64(dv, RUN.ioDataOffset);
      const len = size * count;
      // KVM places the data inside the run mapping; refuse anything that claims otherwise.
      if (off + len > run.byteLength) {
        return { kind: "other", reason };
      }
      const data = dataView(run, off, len);
      const port = dv.getUint16(RUN.ioPort, true);
      return dv.getUint8(RUN.ioDirection) === 1
        ? { kind: "io_out", port, size, count, data }
        : { kind: "io_in", port, size, count, data };
    }
    case EXIT.MMIO: {
      const addr = u64(dv, RUN.mmioPhysAddr);
      const len = Math.min(dv.getUint32(RUN.mmioLen, true), 8);
      const data = dataView(run, RUN.mmioData, len);
      return dv.getUint8(RUN.mmioIsWrite)
        ? { kind: "mmio_write", addr, len, data }
        : { kind: "mmio_read", addr, len, data };
    }
    case EXIT.HLT:
      return { kind: "hlt" };
    case EXIT.SHUTDOWN:
      return { kind: "shutdown" };
    case EXIT.INTR:
      return { kind: "intr" };
    case EXIT.IRQ_WINDOW_OPEN:
      return { kind: "irq_window_open" };
    case EXIT.DEBUG:
      return { kind: "debug" };
    case EXIT.EXCEPTION:
      return {
        kind: "exception",
        exception: dv.getUint32(RUN.exException, true),
        errorCode: dv.getUint32(RUN.exErrorCode, true),
      };
    case EXIT.FAIL_ENTRY:
      return {
        kind: "fail_entry",
        reason: dv.getBigUint64(RUN.failEntryReason, true),
        cpu: dv.getUint32(RUN.failEntryCpu, true),
      };
    case EXIT.INTERNAL_ERROR: {
      const n = Math.min(dv.getUint32(RUN.internalNdata, true), 16);
      const data = [];
      for (let i = 0; i < n; i++) data.push(dv.getBigUint64(RUN.internalData + i * 8, true));
      return { kind: "internal_error", suberror: dv.getUint32(RUN.internalSuberror, true), data };
    }
    case EXIT.SYSTEM_EVENT: {
      const n = Math.min(dv.getUint32(RUN.systemEventNdata, true), 16);
      const data = [];
      for (let i = 0; i < n; i++) data.push(dv.getBigUint64(RUN.systemEventData + i * 8, true));
      return { kind: "system_event", type: dv.getUint32(RUN.systemEventType, true), data };
    }
    case EXIT.UNKNOWN:
      return { kind: "unknown", hardwareReason: dv.getBigUint64(RUN.exit, true) };
    default:
      return { kind: "other", reason };
  }
}

/** A one-line description of an exit, for logs and errors. */
export function describeExit(e: VcpuExit): string {
  switch (e.kind) {
    case "io_out":
    case "io_in":
      return `${e.kind} port 0x${e.port.toString(16)} size ${e.size} count ${e.count}`;
    case "mmio_write":
    case "mmio_read":
      return `${e.kind} 0x${e.addr.toString(16)} len ${e.len}`;
    case "internal_error":
      return `internal_error ${INTERNAL_ERROR_NAMES[e.suberror] ?? e.suberror} [${
        e.data.map((d) => "0x" + d.toString(16)).join(", ")
      }]`;
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
