/**
 * The lane's CLI step: `cli.ts --kernel ... --vsock <cid>,<path>` run as a user runs it on
 * this host (through the portable machine where this host has no usable KVM), then both
 * vsock directions through the socket on this host: the host execs in the guest (host
 * program → `<path>` → guest agent), and the guest connects to a host service
 * (`<path>_5000`). Prints one line per check and exits non-zero on any failure.
 *
 *   deno run -A tests/nested/cli_vsock.ts <bzImage> <initramfs>
 *
 * @module
 */

import { exec } from "../../host/exec.ts";
import { oursArgv, oursEnv } from "./vmms.ts";

const [kernel, initrd] = Deno.args;
if (!kernel || !initrd) throw new Error("usage: cli_vsock.ts <bzImage> <initramfs>");
const dir = await Deno.makeTempDir({ prefix: "denovm-cli-vsock-" });
const path = `${dir}/v.sock`;
const service = Deno.listen({ transport: "unix", path: `${path}_5000` });
const served = (async () => {
  const c = await service.accept();
  const got: number[] = [];
  const buf = new Uint8Array(4096);
  for (;;) {
    const n = await c.read(buf);
    if (n === null) break;
    got.push(...buf.subarray(0, n));
  }
  const text = new TextDecoder().decode(new Uint8Array(got));
  await c.write(new TextEncoder().encode(`host got: ${text.trim()}\n`));
  c.close();
  return text;
})();
const argv = oursArgv({
  kernel,
  initrd,
  append: "console=ttyS0 reboot=k panic=1 pci=off nomodule quiet",
}, ["--vsock", `3,${path}`]);
const child = new Deno.Command(argv[0]!, {
  args: argv.slice(1),
  env: oursEnv(),
  stdin: "null",
  stdout: "null",
  stderr: "piped",
}).spawn();
const stderr = new Response(child.stderr).text();
let failed = false;
const check = (ok: boolean, what: string, detail = "") => {
  console.error(`cli-vsock: ${ok ? "ok" : "FAILED"}: ${what}${ok ? "" : ` (${detail})`}`);
  if (!ok) failed = true;
};
const t0 = performance.now();
try {
  for (let i = 0; i < 600 && !(await Deno.lstat(path).then(() => true, () => false)); i++) {
    await new Promise((r) => setTimeout(r, 100));
  }
  const long = { timeout: 600_000, agentWait: 600_000 };
  const u = await exec(path, "uname -s", long);
  check(
    u.code === 0 && u.stdout === "Linux\n",
    "the host execs in the guest through <path>",
    u.stderr,
  );
  console.error(`cli-vsock: first exec after ${((performance.now() - t0) / 1000).toFixed(1)} s`);
  const s = await exec(path, "echo from-the-guest | denovm-agent send 5000", long);
  check(
    s.code === 0 && s.stdout === "host got: from-the-guest\n" &&
      (await served) === "from-the-guest\n",
    "the guest connects to the host's <path>_5000",
    `${s.code} ${s.stdout} ${s.stderr}`,
  );
  const r = await exec(path, "echo x | denovm-agent send 5001", long);
  check(r.code === 1, "a host port nobody listens on is refused", `${r.code}`);
} catch (e) {
  check(false, "exec", e instanceof Error ? e.message : String(e));
} finally {
  service.close();
  try {
    child.kill("SIGTERM");
  } catch {
    // exited
  }
  await child.status;
  if (failed) console.error((await stderr).slice(-3000));
  await Deno.remove(dir, { recursive: true });
}
Deno.exit(failed ? 1 : 0);
