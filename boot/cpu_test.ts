/** CPUID leaf 0xD made consistent, and the XCR0 a vCPU boots with. */

import { assertEquals } from "@std/assert";
import type { CpuidEntry } from "@denovm/deno-kvm-ffi";
import { bootXcr0, cpuidFor, offeredXcr0, xsaveSize } from "./cpu.ts";

const e = (fn: number, index: number, eax: number, ebx = 0, ecx = 0, edx = 0): CpuidEntry => ({
  function: fn,
  index,
  flags: 1,
  eax,
  ebx,
  ecx,
  edx,
});

/** KVM_GET_SUPPORTED_CPUID's leaf 0xD as the portable machine's KVM gave it (x87, SSE, AVX, PKRU). */
const nested = [
  e(0, 0, 0xd),
  e(1, 0, 0, 0, 1 << 26 /* XSAVE */),
  e(0xd, 0, 0x207, 0x240, 0xa88),
  e(0xd, 1, 5),
  e(0xd, 2, 0x100, 0x240),
  e(0xd, 9, 8, 0xa80),
];

Deno.test("cpuid 0xD: the sizes are those of the offered features; XCR0 at boot offers them all", () => {
  const out = cpuidFor(nested, 0, 1);
  const l0 = out.find((x) => x.function === 0xd && x.index === 0)!;
  assertEquals(l0.eax, 0x207);
  assertEquals([l0.ebx, l0.ecx], [2696, 2696], "PKRU ends at 0xa80 + 8");
  assertEquals(xsaveSize(out, 0x7n), 832, "x87, SSE and AVX alone");
  assertEquals(bootXcr0(out), 0x207n);
});

Deno.test("cpuid 0xD: a feature without a usable subleaf, or half of AVX-512, is not offered", () => {
  const odd = [
    ...nested.filter((x) => !(x.function === 0xd && x.index === 0)),
    e(0xd, 0, 0x2e7 | 0x10, 0x240, 0x2988), // + AVX-512 (bits 5-7) and MPX's BNDCSR (bit 4)
    e(0xd, 5, 0x40, 0x440), // opmask only: ZMM_Hi256 and Hi16_ZMM have no subleaf
    e(0xd, 4, 0, 0), // a zero-sized subleaf
  ];
  const out = cpuidFor(odd, 0, 1);
  assertEquals(offeredXcr0(out), 0x207n);
  const l0 = out.find((x) => x.function === 0xd && x.index === 0)!;
  assertEquals(l0.ebx, 2696);
});

Deno.test("cpuid 0xD: without the leaf nothing is invented", () => {
  const out = cpuidFor([e(0, 0, 1), e(1, 0, 0)], 0, 1);
  assertEquals(out.some((x) => x.function === 0xd), false);
  assertEquals(offeredXcr0(out), 0n);
});
