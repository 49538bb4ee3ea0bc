/**
 * Guest RAM backed by `mmap`: anonymous for a fresh VM, or a private (copy-on-write)
 * mapping of a file for restore. The host address of each region can be posted to a
 * Worker, which rebuilds the same zero-copy view with {@link attachGuestMemory}.
 *
 * @module
 */

import {
  closeFd,
  MAP_ANONYMOUS,
  MAP_NORESERVE,
  MAP_PRIVATE,
  MAP_SHARED,
  mmap,
  munmap,
  O_RDONLY,
  O_RDWR,
  openFile,
  PROT_READ,
  PROT_WRITE,
} from "@denovm/sys";
import { GuestMemory } from "./guest_memory.ts";

/** A region as posted between threads: where it is for the guest and for the host. */
export interface HostRegion {
  /** Guest-physical address of the region. */
  gpa: number;
  /** Size in bytes (a multiple of 4 KiB). */
  size: number;
  /** Host virtual address of the mapping. */
  hostAddr: bigint;
}

/** Options of {@link MmapGuestMemory.create}. */
export interface MmapOptions {
  /** Map this file instead of anonymous memory (offsets follow the region order). */
  file?: string;
  /** With `file`: share writes with the file (true) or keep them private (copy-on-write). */
  shared?: boolean;
}

/** Guest memory backed by host mappings; {@link close} unmaps them. */
export class MmapGuestMemory extends GuestMemory {
  /** The mappings, for KVM memory slots and for workers. */
  readonly hostRegions: readonly HostRegion[];
  #mapped: boolean;

  private constructor(regions: HostRegion[]) {
    super(regions.map((r) => ({ gpa: r.gpa, bytes: hostBytes(r) })));
    this.hostRegions = regions;
    this.#mapped = true;
  }

  /** Maps each `{gpa, size}` region (sizes a multiple of 4 KiB). */
  static create(
    layout: readonly { gpa: number; size: number }[],
    opts: MmapOptions = {},
  ): MmapGuestMemory {
    const regions: HostRegion[] = [];
    let fd = -1;
    try {
      if (opts.file !== undefined) fd = openFile(opts.file, opts.shared ? O_RDWR : O_RDONLY);
      let fileOffset = 0;
      for (const l of layout) {
        if (l.size <= 0 || l.size % 4096 !== 0 || l.gpa % 4096 !== 0) {
          throw new RangeError(
            `Cannot map guest memory: region 0x${l.gpa.toString(16)}+0x${
              l.size.toString(16)
            } is not page aligned`,
          );
        }
        const p = fd < 0
          ? mmap(l.size, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS | MAP_NORESERVE)
          : mmap(
            l.size,
            PROT_READ | PROT_WRITE,
            opts.shared ? MAP_SHARED : MAP_PRIVATE,
            fd,
            fileOffset,
          );
        fileOffset += l.size;
        regions.push({ gpa: l.gpa, size: l.size, hostAddr: Deno.UnsafePointer.value(p) });
      }
      return new MmapGuestMemory(regions);
    } catch (e) {
      for (const r of regions) unmap(r);
      throw e;
    } finally {
      if (fd >= 0) closeFd(fd);
    }
  }

  /** Unmaps all regions; any view of them must no longer be used. */
  close(): void {
    if (!this.#mapped) return;
    this.#mapped = false;
    for (const r of this.hostRegions) unmap(r);
  }

  /** {@link close}, for `using`. */
  [Symbol.dispose](): void {
    this.close();
  }
}

/** Builds a view of memory mapped by another thread of this process (no ownership). */
export function attachGuestMemory(regions: readonly HostRegion[]): GuestMemory {
  return new GuestMemory(regions.map((r) => ({ gpa: r.gpa, bytes: hostBytes(r) })));
}

function hostBytes(r: HostRegion): Uint8Array {
  const p = Deno.UnsafePointer.create(r.hostAddr);
  if (p === null) throw new TypeError("Cannot view guest memory: null host address");
  // The mapping is exactly r.size bytes and outlives every view (close() comes last).
  return new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, r.size));
}

function unmap(r: HostRegion): void {
  const p = Deno.UnsafePointer.create(r.hostAddr);
  if (p !== null) munmap(p, r.size);
}
