/**
 * The ACPI tables: lengths, checksums and the fields Linux reads, and (where `iasl` from
 * Debian's acpica-tools is installed, as CI installs it) each table decoded by iasl.
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import {
  ACPI_BASE,
  acpiTables,
  dsdt,
  fadt,
  GED_GSI,
  madt,
  S5_SLP_TYP,
  VMGENID_ADDR,
} from "./acpi.ts";
import { checksum } from "./x86.ts";

const sum = (b: Uint8Array) => b.reduce((s, x) => (s + x) & 0xff, 0);
const sig = (b: Uint8Array) => new TextDecoder().decode(b.subarray(0, 4));
const machine = {
  vcpus: 2,
  virtio: [{ base: 0xd000_0000, gsi: 5 }, { base: 0xd000_1000, gsi: 6 }],
  i8042: true,
  rtc: true,
  vmgenid: true,
};

Deno.test("acpi: every table has its signature, length and a zero checksum", () => {
  const t = acpiTables(machine);
  assertEquals(t.rsdp, ACPI_BASE);
  const [r, ...rest] = t.blobs.map(([, b]) => b);
  assertEquals(new TextDecoder().decode(r!.subarray(0, 8)), "RSD PTR ");
  assertEquals(sum(r!.subarray(0, 20)), 0, "ACPI 1.0 checksum");
  assertEquals(sum(r!), 0, "extended checksum");
  assertEquals(rest.map(sig), ["XSDT", "FACP", "APIC", "DSDT"]);
  for (const b of rest) {
    assertEquals(new DataView(b.buffer).getUint32(4, true), b.byteLength, sig(b));
    assertEquals(sum(b), 0, `${sig(b)} checksum`);
  }
  // The pointers: RSDP → XSDT → FADT, MADT; FADT → DSDT.
  const at = new Map(t.blobs.map(([a, b]) => [sig(b), a]));
  const dv = (b: Uint8Array) => new DataView(b.buffer, b.byteOffset, b.byteLength);
  assertEquals(Number(dv(r!).getBigUint64(24, true)), at.get("XSDT"));
  const x = rest[0]!;
  assertEquals([Number(dv(x).getBigUint64(36, true)), Number(dv(x).getBigUint64(44, true))], [
    at.get("FACP"),
    at.get("APIC"),
  ]);
  const f = rest[1]!;
  assertEquals(Number(dv(f).getBigUint64(140, true)), at.get("DSDT"));
  assertEquals(dv(f).getUint32(112, true) & (1 << 20), 1 << 20, "HW_REDUCED_ACPI");
  const last = t.blobs.at(-1)!;
  assert(last[0] + last[1].byteLength <= VMGENID_ADDR, "below the generation ID's page");
  assertEquals(checksum(new Uint8Array([1, 2, 3])), 0xfa);
});

Deno.test("acpi: the MADT lists each vCPU, the IOAPIC, the IRQ 0 override and NMI", () => {
  const m = madt(3);
  const entries: number[][] = [];
  for (let o = 44; o < m.byteLength; o += m[o + 1]!) {
    entries.push([...m.subarray(o, o + m[o + 1]!)]);
  }
  assertEquals(entries.filter((e) => e[0] === 0).map((e) => [e[2], e[3], e[4]]), [
    [0, 0, 1],
    [1, 1, 1],
    [2, 2, 1],
  ]);
  assertEquals(entries.filter((e) => e[0] === 1).map((e) => e[2]), [3], "IOAPIC id = vCPU count");
  assertEquals(entries.filter((e) => e[0] === 2).map((e) => [e[3], e[4]]), [[0, 2]]);
  assertEquals(entries.filter((e) => e[0] === 4).length, 1);
});

const iasl = await new Deno.Command("sh", { args: ["-c", "command -v iasl"] }).output()
  .then((o) => o.success, () => false);
if (!iasl) {
  console.error("acpi: iasl not installed (apt-get install acpica-tools): decode test not run");
}

Deno.test({
  name: "acpi: iasl decodes every table without complaint, and sees what we put in",
  ignore: !iasl,
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "denovm-acpi-" });
    try {
      const tables: Record<string, Uint8Array> = {
        dsdt: dsdt(machine),
        facp: fadt(0xe1000),
        apic: madt(2),
      }; // (iasl does not disassemble a lone RSDP; its checksums are checked above)
      const out: Record<string, string> = {};
      for (const [n, b] of Object.entries(tables)) {
        await Deno.writeFile(`${dir}/${n}.dat`, b);
        const r = await new Deno.Command("iasl", { args: ["-d", `${dir}/${n}.dat`], cwd: dir })
          .output();
        const log = new TextDecoder().decode(r.stdout) + new TextDecoder().decode(r.stderr);
        assert(r.success, `${n}: ${log}`);
        assert(!/error|warning/i.test(log.replace(/0 Errors|0 Warnings|Errors:\s*0/gi, "")), log);
        out[n] = await Deno.readTextFile(`${dir}/${n}.dsl`);
      }
      const d = out.dsdt!;
      for (const want of ["Device (COM1)", 'EisaId ("PNP0501")', "Device (PS2K)", "Device (RTC)"]) {
        assertStringIncludes(d, want);
      }
      assertStringIncludes(d, '"LNRO0005"');
      assertStringIncludes(d, "0xD0001000");
      assertStringIncludes(d, "Memory32Fixed (ReadWrite,");
      assertStringIncludes(d, "Name (\\_S5, Package (0x04)");
      // The VM generation ID: its address, and the GED whose _EVT notifies it.
      assertStringIncludes(d, "Device (VGEN)");
      assertStringIncludes(d, 'Name (_CID, "VM_GEN_COUNTER")');
      assert(/Name \(ADDR, Package \(0x02\)\s*\{\s*0x000EF000,\s*Zero/.test(d), d);
      assertStringIncludes(d, 'Name (_HID, "ACPI0013" /* Generic Event Device */)');
      assert(
        new RegExp(
          `Interrupt \\(ResourceConsumer, Edge[^)]*\\)\\s*\\{\\s*0x000000${
            GED_GSI.toString(16).toUpperCase()
          }`,
        ).test(d),
        d,
      );
      assertStringIncludes(d, "Method (_EVT, 1");
      assert(/If \(\(Arg0 == 0x17\)\)\s*\{\s*Notify \(\\_SB\.VGEN, 0x80\)/.test(d), d);
      assertStringIncludes(d, `0x0${S5_SLP_TYP}`);
      assertStringIncludes(out.facp!, "Hardware Reduced (V5) : 1");
      assert(/Sleep Control Register[\s\S]*Address : 00000000000003C0/.test(out.facp!), out.facp);
      assertEquals((out.apic!.match(/Processor Local APIC/g) ?? []).length >= 2, true);
      assertStringIncludes(out.apic!, "I/O APIC");
      assertStringIncludes(out.apic!, "Interrupt Source Override");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
