/**
 * The boot64 test guest packaged like a Linux kernel, and an initrd beside it: shared by the
 * boot tests and `bench:boot`.
 *
 * @module
 */

import { buildGuest } from "./guest_build.ts";

/** The boot64 test guest as a bzImage: setup sectors, then the 64-bit part. */
export async function buildBoot64(): Promise<Uint8Array> {
  const setup = await buildGuest("boot64_setup", { base: 0 });
  const kernel = await buildGuest("boot64", { base: 0x100000, arch: "x86_64" });
  const image = new Uint8Array(setup.byteLength + kernel.byteLength);
  image.set(setup);
  image.set(kernel, setup.byteLength);
  return image;
}

/** Writes `bzImage` (boot64) and `initrd` (4 KiB starting "INITRD-OK") into `dir`. */
export async function writeBootFiles(dir: string): Promise<void> {
  await Deno.writeFile(`${dir}/bzImage`, await buildBoot64());
  const initrd = new Uint8Array(4096);
  initrd.set(new TextEncoder().encode("INITRD-OK"));
  await Deno.writeFile(`${dir}/initrd`, initrd);
}
