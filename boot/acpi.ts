/**
 * Hardware-reduced ACPI tables for a microVM (ACPI 6.5): RSDP, XSDT, FADT (the
 * HW_REDUCED_ACPI flag, a sleep control and status register for S5), MADT (a local APIC
 * per vCPU, the IOAPIC, the ISA IRQ 0 → GSI 2 override, LINT1 as NMI) and a DSDT in AML
 * (`aml.ts`) naming every device: COM1, the i8042, the CMOS RTC and each virtio-mmio device
 * (`LNRO0005`, its window and its interrupt), with the `\_S5` sleep type. A stock kernel
 * finds its CPUs and devices from these instead of the MP table and `virtio_mmio.device=`.
 *
 * The VM generation ID (Microsoft's "Virtual Machine Generation ID" device, which Linux's
 * `vmgenid` driver binds by `_CID "VM_GEN_COUNTER"`): 16 bytes of guest memory named by the
 * device's `ADDR` package. A restore writes a new ID there and raises the interrupt of a
 * Generic Event Device (`ACPI0013`), whose `_EVT` notifies the ID device (0x80); the guest
 * kernel then reads the new ID and reseeds its random number generator, so clones restored
 * from one snapshot do not share their random numbers.
 *
 * @module
 */

import {
  arg,
  device,
  eisaId,
  ifThen,
  integer,
  lEqual,
  method,
  name,
  notify,
  pkg,
  resource,
  resourceTemplate,
  scope,
  string,
} from "./aml.ts";
import { APIC_ADDR, checksum, IOAPIC_ADDR } from "./x86.ts";

/** Where the tables go: the BIOS area Linux scans for the RSDP (reserved in the e820 map). */
export const ACPI_BASE = 0xe0000;
/** The I/O ports of the sleep control and sleep status registers (FADT, hardware-reduced). */
export const SLEEP_CONTROL_PORT = 0x3c0, SLEEP_STATUS_PORT = 0x3c1;
/** The `\_S5` sleep type the guest writes to the sleep control register to power off. */
export const S5_SLP_TYP = 5;
/** SLP_EN in the sleep control register, and where SLP_TYP sits. */
export const SLP_EN = 0x20, SLP_TYP_SHIFT = 2;
/** The 16-byte VM generation ID: a page of its own in the reserved BIOS area, above the tables. */
export const VMGENID_ADDR = 0xef000, VMGENID_SIZE = 16;
/**
 * The Generic Event Device's interrupt (edge, active high): the IOAPIC's last pin, above the
 * virtio devices' lines (GSI 5 to 22).
 */
export const GED_GSI = 23;
/** The notification value that tells the generation ID device to read its new ID. */
const VMGENID_NOTIFY = 0x80;
const OEM_ID = "DENOVM";
const OEM_TABLE = "DENOVMVM";

/** What the tables describe. */
export interface AcpiMachine {
  vcpus: number;
  /** Each virtio-mmio device's 4 KiB window and interrupt line (GSI). */
  virtio: { base: number; gsi: number }[];
  /** The i8042 is there (ports 0x60/0x64, IRQ 1). */
  i8042?: boolean;
  /** The CMOS RTC is there (ports 0x70/0x71). */
  rtc?: boolean;
  /** A VM generation ID at {@link VMGENID_ADDR}, notified through the GED at {@link GED_GSI}. */
  vmgenid?: boolean;
}

/** The tables as placed in guest memory. */
export interface AcpiTables {
  /** `[guest-physical address, bytes]` of each table, the RSDP first. */
  blobs: [number, Uint8Array][];
  /** Where the RSDP is (for `boot_params.acpi_rsdp_addr`). */
  rsdp: number;
}

function ascii(b: Uint8Array, off: number, s: string, len: number): void {
  for (let i = 0; i < len; i++) b[off + i] = i < s.length ? s.charCodeAt(i) : 0x20;
}

/** A table: the 36-byte header (signature, length, revision, checksum, OEM ids) and `body`. */
function table(sig: string, revision: number, body: Uint8Array): Uint8Array {
  const b = new Uint8Array(36 + body.byteLength);
  const v = new DataView(b.buffer);
  ascii(b, 0, sig, 4);
  v.setUint32(4, b.byteLength, true);
  b[8] = revision;
  ascii(b, 10, OEM_ID, 6);
  ascii(b, 16, OEM_TABLE, 8);
  v.setUint32(24, 1, true); // OEM revision
  ascii(b, 28, "DNVM", 4); // creator id
  v.setUint32(32, 1, true); // creator revision
  b.set(body, 36);
  b[9] = checksum(b);
  return b;
}

/** A Generic Address Structure for one byte-wide I/O port. */
function ioGas(port: number): Uint8Array {
  const g = new Uint8Array(12);
  g[0] = 1; // system I/O
  g[1] = 8; // bit width
  g[3] = 1; // byte access
  new DataView(g.buffer).setBigUint64(4, BigInt(port), true);
  return g;
}

/** The FADT (revision 6.5): hardware-reduced, the DSDT, the sleep registers, no VGA. */
export function fadt(dsdt: number): Uint8Array {
  const body = new Uint8Array(276 - 36);
  const v = new DataView(body.buffer);
  const at = (off: number) => off - 36;
  v.setUint32(at(40), dsdt, true);
  // IAPC_BOOT_ARCH: an 8042 (bit 1), no VGA (bit 2), no MSI (bit 3): no PCI here.
  v.setUint16(at(109), 0x0002 | 0x0004 | 0x0008, true);
  // Flags: WBINVD (0), power and sleep buttons are not fixed features (4, 5),
  // HW_REDUCED_ACPI (20).
  v.setUint32(at(112), (1 << 0) | (1 << 4) | (1 << 5) | (1 << 20), true);
  body[at(131)] = 5; // FADT minor version: ACPI 6.5
  v.setBigUint64(at(140), BigInt(dsdt), true); // X_DSDT
  body.set(ioGas(SLEEP_CONTROL_PORT), at(244));
  body.set(ioGas(SLEEP_STATUS_PORT), at(256));
  ascii(body, at(268), "DENOVM", 8); // hypervisor vendor identity
  return table("FACP", 6, body);
}

/** The MADT: a local APIC per vCPU, the IOAPIC (id = vCPU count), IRQ 0 → GSI 2, NMI. */
export function madt(vcpus: number): Uint8Array {
  const parts: number[][] = [];
  const head = new Uint8Array(8);
  new DataView(head.buffer).setUint32(0, APIC_ADDR, true);
  new DataView(head.buffer).setUint32(4, 1, true); // PCAT_COMPAT: the 8259 pair is there
  for (let id = 0; id < vcpus; id++) parts.push([0, 8, id, id, 1, 0, 0, 0]); // enabled
  const io = new Uint8Array(12);
  io.set([1, 12, vcpus]); // IOAPIC: id, address, GSI base 0
  new DataView(io.buffer).setUint32(4, IOAPIC_ADDR, true);
  parts.push([...io]);
  // ISA IRQ 0 (the PIT) is wired to IOAPIC pin 2; edge, active high (bus conformity).
  const iso = new Uint8Array(10);
  iso.set([2, 10, 0, 0]);
  new DataView(iso.buffer).setUint32(4, 2, true);
  parts.push([...iso]);
  parts.push([4, 6, 0xff, 0, 0, 1]); // local APIC NMI: every processor, LINT1
  return table("APIC", 5, new Uint8Array([...head, ...parts.flat()]));
}

/** The DSDT: the devices of `m` under `\_SB`, and `\_S5`. */
export function dsdt(m: AcpiMachine): Uint8Array {
  const devices: Uint8Array[] = [
    device("COM1", [
      name("_HID", eisaId("PNP0501")),
      name("_UID", integer(0)),
      name("_CRS", resourceTemplate([resource.io(0x3f8, 8), resource.interrupt(4, false)])),
    ]),
  ];
  if (m.i8042) {
    devices.push(device("PS2K", [
      name("_HID", eisaId("PNP0303")),
      name(
        "_CRS",
        resourceTemplate([
          resource.io(0x60, 1),
          resource.io(0x64, 1),
          resource.interrupt(1, false),
        ]),
      ),
    ]));
    // The AUX (mouse) port's node: Linux's PNP probe otherwise warns that the AUX port is
    // disabled. Our controller answers the AUX tests as a controller without a mouse.
    devices.push(device("PS2M", [
      name("_HID", eisaId("PNP0F13")),
      name("_CRS", resourceTemplate([resource.interrupt(12, false)])),
    ]));
  }
  if (m.rtc) {
    devices.push(device("RTC", [
      name("_HID", eisaId("PNP0B00")),
      name("_CRS", resourceTemplate([resource.io(0x70, 2)])),
    ]));
  }
  m.virtio.forEach((d, i) => {
    devices.push(device(`VR${i.toString(16).toUpperCase().padStart(2, "0")}`, [
      name("_HID", string("LNRO0005")),
      name("_UID", integer(i)),
      name("_CCA", integer(1)), // cache-coherent DMA
      name(
        "_CRS",
        resourceTemplate([
          resource.memory32Fixed(d.base, 0x1000),
          resource.interrupt(d.gsi, false),
        ]),
      ),
    ]));
  });
  if (m.vmgenid) {
    devices.push(device("VGEN", [
      name("_HID", string("DNVM0001")),
      name("_CID", string("VM_GEN_COUNTER")),
      name("_DDN", string("VM_Gen_Counter")),
      // The ID's guest-physical address, low and high 32 bits.
      name(
        "ADDR",
        pkg([integer(VMGENID_ADDR % 2 ** 32), integer(Math.floor(VMGENID_ADDR / 2 ** 32))]),
      ),
    ]));
    devices.push(device("GED0", [
      name("_HID", string("ACPI0013")),
      name("_UID", integer(0)),
      name("_CRS", resourceTemplate([resource.interrupt(GED_GSI, false)])),
      // Linux calls _EVT with the interrupt's GSI.
      method("_EVT", 1, [
        ifThen(lEqual(arg(0), integer(GED_GSI)), [notify("\\_SB.VGEN", VMGENID_NOTIFY)]),
      ]),
    ]));
  }
  const aml = [
    scope("\\_SB", devices),
    name("\\_S5", pkg([integer(S5_SLP_TYP), integer(0), integer(0), integer(0)])),
  ];
  const body = new Uint8Array(aml.reduce((n, a) => n + a.byteLength, 0));
  let o = 0;
  for (const a of aml) {
    body.set(a, o);
    o += a.byteLength;
  }
  return table("DSDT", 2, body);
}

/** The XSDT: 64-bit pointers to `tables`. */
export function xsdt(tables: readonly number[]): Uint8Array {
  const body = new Uint8Array(8 * tables.length);
  tables.forEach((t, i) => new DataView(body.buffer).setBigUint64(8 * i, BigInt(t), true));
  return table("XSDT", 1, body);
}

/** The RSDP (revision 2): both checksums, the XSDT's address (no RSDT). */
export function rsdp(xsdtAddr: number): Uint8Array {
  const b = new Uint8Array(36);
  const v = new DataView(b.buffer);
  ascii(b, 0, "RSD PTR ", 8);
  ascii(b, 9, OEM_ID, 6);
  b[15] = 2;
  v.setUint32(20, 36, true);
  v.setBigUint64(24, BigInt(xsdtAddr), true);
  b[8] = checksum(b.subarray(0, 20));
  b[32] = checksum(b);
  return b;
}

/** Every table for `m`, laid out from {@link ACPI_BASE} (all of it fits below 1 MiB). */
export function acpiTables(m: AcpiMachine): AcpiTables {
  const d = dsdt(m), f = fadt(0), a = madt(m.vcpus);
  const align = (x: number) => Math.ceil(x / 64) * 64;
  const rsdpAt = ACPI_BASE;
  const xsdtAt = align(rsdpAt + 36);
  const fadtAt = align(xsdtAt + 36 + 16);
  const madtAt = align(fadtAt + f.byteLength);
  const dsdtAt = align(madtAt + a.byteLength);
  if (dsdtAt + d.byteLength > VMGENID_ADDR) {
    throw new RangeError(`Cannot place the ACPI tables: the DSDT is ${d.byteLength} bytes`);
  }
  return {
    rsdp: rsdpAt,
    blobs: [
      [rsdpAt, rsdp(xsdtAt)],
      [xsdtAt, xsdt([fadtAt, madtAt])],
      [fadtAt, fadt(dsdtAt)],
      [madtAt, a],
      [dsdtAt, d],
    ],
  };
}
