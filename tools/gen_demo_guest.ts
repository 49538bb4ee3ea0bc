/** Regenerates guest/demo_guest.ts from tests/guests/demo.S (run: deno task gen:demo). @module */

import { buildGuest } from "../testing/guest_build.ts";
const b = await buildGuest("demo");
const hex = Array.from(b, (x) => "0x" + x.toString(16).padStart(2, "0"));
const lines = [];
for (let i = 0; i < hex.length; i += 12) lines.push("  " + hex.slice(i, i + 12).join(", ") + ",");
await Deno.writeTextFile(
  new URL("../guest/demo_guest.ts", import.meta.url),
  `/**
 * The embedded demo guest, assembled from \`tests/guests/demo.S\` (load at 0x1000, enter in
 * real mode at 0000:1000). Embedded so the demo runs on a host without binutils;
 * \`tests/demo_test.ts\` checks these bytes equal a fresh build of the source. Regenerate
 * with \`deno task gen:demo\`.
 *
 * @module
 */

/** The demo guest's machine code. */
export const DEMO_GUEST: Uint8Array = new Uint8Array([
${lines.join("\n")}
]);
`,
);
console.log(b.length, "bytes");
console.log("run deno fmt guest/demo_guest.ts to format");
