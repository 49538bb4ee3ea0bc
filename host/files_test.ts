/** Untrusted files are type-checked and size-capped before they are read (issue 12.9). */

import { assertEquals, assertRejects } from "@std/assert";
import { FileBoundsError, readBounded } from "./files.ts";

Deno.test("readBounded: a regular file under the cap is read whole", async () => {
  const f = await Deno.makeTempFile();
  try {
    await Deno.writeFile(f, new Uint8Array([1, 2, 3]));
    assertEquals([...await readBounded(f, 3, "test file")], [1, 2, 3]);
    await assertRejects(
      () => readBounded(f, 2, "test file"),
      FileBoundsError,
      "3 bytes, more than",
    );
  } finally {
    await Deno.remove(f);
  }
});

Deno.test("readBounded: a FIFO, a directory and /dev/zero are refused without reading", async () => {
  const dir = await Deno.makeTempDir();
  try {
    await new Deno.Command("mkfifo", { args: [`${dir}/fifo`] }).output();
    // Nobody ever writes the FIFO: reading it would hang; the check refuses it at once.
    await assertRejects(
      () => readBounded(`${dir}/fifo`, 1 << 20, "kernel"),
      FileBoundsError,
      "not a regular file",
    );
    await assertRejects(
      () => readBounded(dir, 1 << 20, "initrd"),
      FileBoundsError,
      "not a regular",
    );
    await assertRejects(
      () => readBounded("/dev/zero", 1 << 30, "snapshot state"),
      FileBoundsError,
      "Cannot read the snapshot state /dev/zero: not a regular file",
    );
    await assertRejects(() => readBounded(`${dir}/none`, 1, "kernel"), FileBoundsError, "none");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
