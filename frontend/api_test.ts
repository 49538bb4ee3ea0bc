/** The control API's socket handling, without a VM (no KVM needed). */

import { assertEquals, assertRejects } from "@std/assert";
import { ApiServer } from "./api.ts";

const apiTemps = async () => {
  const out: string[] = [];
  for await (const e of Deno.readDir("/tmp")) {
    if (e.name.startsWith("denovm-api-")) out.push(e.name);
  }
  return out.sort();
};

Deno.test("api socket: a regular file at the path is refused and kept; nothing left in /tmp", async () => {
  // Issue 12.10: --api-sock pointing at a regular file deleted that file.
  const dir = await Deno.makeTempDir();
  const before = await apiTemps();
  try {
    const path = `${dir}/api.sock`;
    await Deno.writeTextFile(path, "precious");
    await assertRejects(() => ApiServer.listen(path), Error, "not a socket is there (not removed)");
    assertEquals(await Deno.readTextFile(path), "precious");
    await Deno.mkdir(`${dir}/d`);
    await assertRejects(() => ApiServer.listen(`${dir}/d`), Error, "not a socket");
    assertEquals((await Deno.stat(`${dir}/d`)).isDirectory, true);
    // A live socket is refused too; a stale one is replaced and served.
    const live = Deno.listen({ transport: "unix", path: `${dir}/live.sock` });
    await assertRejects(
      () => ApiServer.listen(`${dir}/live.sock`),
      Error,
      "another process listens",
    );
    live.close();
    const s = await ApiServer.listen(`${dir}/live.sock`);
    assertEquals((await Deno.lstat(`${dir}/live.sock`)).isSocket, true, "ours now");
    await s.close();
    assertEquals(await apiTemps(), before, "no private bind directory left behind");
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
