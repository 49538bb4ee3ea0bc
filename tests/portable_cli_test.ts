/**
 * The CLI's portable mode end to end: `cli.ts --portable on` runs the demo guest inside the
 * portable machine (QEMU/TCG with KVM inside) on any host, with or without /dev/kvm; the
 * guest's console and exit code come back, and one line says why and how to get native
 * speed. Needs qemu-system-x86 and Debian's kernel (installed and fetched once). These
 * runs each boot a machine of their own (`DENOVM_PORTABLE_IDLE_S=0`); the resident machine
 * that later runs reuse is tested in `portable_resident_test.ts`.
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { buildGuest } from "../testing/guest_build.ts";
import { apiCall } from "../testing/api_client.ts";
import { sleep } from "@denovm/sys/timer";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
/** No resident machine: each run boots its own (and a SIGTERM stops that QEMU too). */
const ONE_SHOT = { DENOVM_PORTABLE_IDLE_S: "0" };

Deno.test("cli --portable on: the demo guest's greeting and exit code come back from the portable machine", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    env: ONE_SHOT,
    args: ["run", "-A", CLI, "--portable", "on"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  const stdout = new TextDecoder().decode(out.stdout);
  const stderr = new TextDecoder().decode(out.stderr);
  assertEquals(out.code, 0, stderr);
  assertStringIncludes(stdout, "Hello from a denovm guest");
  // (On a fresh machine the first run also says what it installs and fetches, once.)
  const notice = stderr.split("\n").filter((l) => l.includes("running in the portable machine"));
  assertEquals(notice.length, 1, `one line says it runs portable:\n${stderr}`);
  assertStringIncludes(notice[0]!, "--portable on was given");
  assertStringIncludes(notice[0]!, "For native speed");
  assert(!stderr.includes("hardware virtualization (svm)"), "the inner host line is not shown");
});

Deno.test("cli --portable: a bad mode is a usage error (exit 2)", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    env: ONE_SHOT,
    args: ["run", "-A", CLI, "--portable", "sometimes"],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 2);
  assertStringIncludes(new TextDecoder().decode(out.stderr), "--portable expects auto, on or off");
});

Deno.test({
  name: "cli --portable on from a terminal: typed input reaches the guest and Ctrl-A x ends it",
  sanitizeResources: false, // script(1)'s pipes close after its process ends
  async fn() {
    // script(1) gives the CLI a pseudo-terminal, as a user's terminal would: the portable
    // machine then carries keystrokes to the guest's serial console both ways.
    const dir = await Deno.makeTempDir();
    try {
      await Deno.writeFile(`${dir}/uart.bin`, await buildGuest("uart"));
      const cmd = `${Deno.execPath()} run -A ${CLI} --image ${dir}/uart.bin --portable on`;
      const run = async (keys: string) => {
        const child = new Deno.Command("script", {
          env: ONE_SHOT,
          args: ["-qec", cmd, "/dev/null"],
          stdin: "piped",
          stdout: "piped",
          stderr: "piped",
        }).spawn();
        const w = child.stdin.getWriter();
        let out = "";
        const dec = new TextDecoder();
        const reader = (async () => {
          for await (const c of child.stdout) {
            out += dec.decode(c, { stream: true });
            if (out.includes("ready") && keys) {
              const k = keys;
              keys = "";
              await w.write(new TextEncoder().encode(k));
            }
          }
        })();
        const timer = setTimeout(() => child.kill("SIGKILL"), 120_000);
        const status = await child.status;
        clearTimeout(timer);
        await reader;
        await w.close().catch(() => {});
        await child.stderr.cancel();
        return { code: status.code, out };
      };
      // "hi" then a newline: the guest echoes it upper-cased, says bye and resets (exit 0).
      const typed = await run("hi\n");
      assertEquals(typed.code, 0, typed.out);
      assertStringIncludes(typed.out, "HI");
      assertStringIncludes(typed.out, "bye");
      // Ctrl-A x ends a guest that would otherwise wait for ever; also exit 0.
      const quit = await run("\x01x");
      assertEquals(quit.code, 0, quit.out);
      assert(!quit.out.includes("bye"), "the guest did not get there itself");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "cli --portable on --api-sock: the API socket is on this host and drives the VMM inside",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn() {
    // Issue 11: the inner VMM's API socket exists inside the portable machine; the socket
    // bridge puts the user's on this host (owner-only) and joins the two.
    const dir = await Deno.makeTempDir({ prefix: "denovm-papi-" });
    const sock = `${dir}/api.sock`;
    const child = new Deno.Command(Deno.execPath(), {
      env: ONE_SHOT,
      args: ["run", "-A", CLI, "--portable", "on", "--api-sock", sock],
      stdin: "null",
      stdout: "piped",
      stderr: "piped",
    }).spawn();
    const out = child.output();
    try {
      for (let i = 0; i < 600 && !(await Deno.lstat(sock).then(() => true, () => false)); i++) {
        await sleep(100);
      }
      assertEquals((await Deno.stat(sock)).mode! & 0o777, 0o600, "owner-only, on this host");
      // The first request waits for the machine to boot, then reaches the VMM inside.
      const info = await apiCall(sock, "GET", "/");
      assertEquals(info.json?.state, "Not started");
      const vsock = await apiCall(sock, "PUT", "/vsock", { guest_cid: 3, uds_path: "/tmp/v" });
      assertEquals(vsock.status, 400);
      assertStringIncludes(String(vsock.json?.fault_message), "--vsock");
      const start = await apiCall(sock, "PUT", "/actions", { action_type: "InstanceStart" });
      assertEquals(start.status, 204);
      const r = await out;
      const stdout = new TextDecoder().decode(r.stdout);
      assertEquals(r.code, 0, new TextDecoder().decode(r.stderr));
      assertStringIncludes(stdout, "Hello from a denovm guest");
      assertEquals(await Deno.lstat(sock).then(() => true, () => false), false, "removed at exit");
    } finally {
      try {
        child.kill();
      } catch { /* exited */ }
      await out.catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("cli --portable on: a SIGTERM to the CLI stops its portable machine too (no QEMU left)", async () => {
  const dir = await Deno.makeTempDir();
  try {
    // A guest that loops until stopped.
    await Deno.writeFile(`${dir}/loop.bin`, await buildGuest("loop"));
    const child = new Deno.Command(Deno.execPath(), {
      env: ONE_SHOT,
      args: ["run", "-A", CLI, "--image", `${dir}/loop.bin`, "--portable", "on"],
      stdin: "null",
      stdout: "null",
      stderr: "piped",
    }).spawn();
    // Wait until the portable machine runs (its control directory exists, QEMU started).
    const mine = async () => {
      const out = await new Deno.Command("pgrep", { args: ["-f", "-P", String(child.pid)] })
        .output();
      return new TextDecoder().decode(out.stdout).trim().split("\n").filter(Boolean);
    };
    let qemu: string[] = [];
    for (let i = 0; i < 600 && qemu.length === 0; i++) {
      await sleep(100);
      qemu = await mine();
    }
    assert(qemu.length > 0, "the CLI started QEMU");
    await sleep(2000); // well into its boot
    child.kill("SIGTERM");
    const status = await child.status;
    // Checked before reading stderr: an orphaned QEMU would hold that pipe open forever.
    const alive = qemu.filter((pid) => {
      try {
        Deno.kill(Number(pid), "SIGKILL");
        return true;
      } catch {
        return false;
      }
    });
    const stderr = await new Response(child.stderr).text();
    assertEquals(alive, [], `QEMU outlived the CLI:\n${stderr}`);
    assertEquals(status.code, 143, stderr);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
