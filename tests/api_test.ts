// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/** The control API over a real Unix socket: configure, start, pause, snapshot, load; bad requests. */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { ApiServer } from "../frontend/api.ts";
import { buildGuest } from "../testing/guest_build.ts";
import { apiCall } from "../testing/api_client.ts";
import { sleep } from "@denovm/sys/timer";

const call = apiCall;

Deno.test({
  name: "api: configure and start the demo; bad requests get 400/404/405 with a reason",
  async fn() {
    const dir = await Deno.makeTempDir();
    const sock = `${dir}/api.sock`;
    const api = await ApiServer.listen(sock);
    try {
      assertEquals((await Deno.stat(sock)).mode! & 0o777, 0o600, "owner-only socket");
      assertEquals((await call(sock, "GET", "/")).json?.state, "Not started");
      assertEquals(
        (await call(sock, "PUT", "/machine-config", { vcpu_count: 1, mem_size_mib: 16 })).status,
        204,
      );
      assertEquals((await call(sock, "GET", "/machine-config")).json, {
        vcpu_count: 1,
        mem_size_mib: 16,
        acpi: true,
      });
      const bad = await call(sock, "PUT", "/machine-config", { vcpu_count: "two" });
      assertEquals(bad.status, 400);
      assertStringIncludes(String(bad.json?.fault_message), "vcpus: expected an integer");
      assertEquals((await call(sock, "PUT", "/machine-config", "{not json")).status, 400);
      assertEquals(
        (await call(sock, "PUT", "/machine-config", { cpus: 1 })).json?.fault_message,
        "unknown field 'cpus'",
      );
      const mismatch = await call(sock, "PUT", "/drives/rootfs", {
        drive_id: "other",
        path_on_host: "/x",
      });
      assertEquals(mismatch.status, 400);
      assertEquals((await call(sock, "GET", "/nothing")).status, 404);
      assertEquals((await call(sock, "POST", "/")).status, 405);
      assertEquals(
        (await call(sock, "PATCH", "/vm", { state: "Paused" })).status,
        400,
        "not started yet",
      );
      assertEquals((await call(sock, "PUT", "/actions", { action_type: "Reboot" })).status, 400);
      // Two InstanceStarts at once: one VM, the other request refused (issue 12.12).
      const starts = await Promise.all([
        call(sock, "PUT", "/actions", { action_type: "InstanceStart" }),
        call(sock, "PUT", "/actions", { action_type: "InstanceStart" }),
      ]);
      assertEquals(starts.map((r) => r.status).sort(), [204, 400], JSON.stringify(starts));
      assertEquals(await api.done, 0, "the demo guest ran and exited 0");
      assertEquals(
        (await call(sock, "PUT", "/boot-source", { kernel_image_path: "/k" })).status,
        400,
        "after start",
      );
    } finally {
      await api.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "api: pause, snapshot, resume; then snapshot/load in a second server",
  async fn() {
    const dir = await Deno.makeTempDir();
    const image = { bytes: await buildGuest("loop"), load: 0x1000 };
    const a = await ApiServer.listen(`${dir}/a.sock`, { image });
    try {
      await call(`${dir}/a.sock`, "PUT", "/machine-config", { mem_size_mib: 16 });
      assertEquals(
        (await call(`${dir}/a.sock`, "PUT", "/actions", { action_type: "InstanceStart" })).status,
        204,
      );
      assertEquals((await call(`${dir}/a.sock`, "PATCH", "/vm", { state: "Paused" })).status, 204);
      assertEquals((await call(`${dir}/a.sock`, "GET", "/")).json?.state, "Paused");
      const snap = await call(`${dir}/a.sock`, "PUT", "/snapshot/create", {
        snapshot_path: `${dir}/snap`,
        snapshot_type: "Full",
      });
      assertEquals(snap.status, 204, String(snap.json?.fault_message));
      assertEquals((await call(`${dir}/a.sock`, "PATCH", "/vm", { state: "Resumed" })).status, 204);
      assertEquals((await call(`${dir}/a.sock`, "GET", "/")).json?.state, "Running");
    } finally {
      await a.close();
    }
    const b = await ApiServer.listen(`${dir}/b.sock`);
    try {
      const bad = await call(`${dir}/b.sock`, "PUT", "/snapshot/load", {
        snapshot_path: `${dir}/nope`,
      });
      assertEquals(bad.status, 400);
      assertStringIncludes(String(bad.json?.fault_message), "Cannot read snapshot");
      const load = await call(`${dir}/b.sock`, "PUT", "/snapshot/load", {
        snapshot_path: `${dir}/snap`,
      });
      assertEquals(load.status, 204, String(load.json?.fault_message));
      assertEquals(
        (await call(`${dir}/b.sock`, "GET", "/")).json?.state,
        "Paused",
        "loaded paused by default",
      );
      assert(b.vm !== undefined);
    } finally {
      await b.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const CLI = new URL("../cli.ts", import.meta.url).pathname;

async function waitForSocket(path: string, p: Deno.ChildProcess): Promise<void> {
  let exited = false;
  void p.status.then(() => (exited = true));
  for (let i = 0; i < 400; i++) {
    try {
      await Deno.stat(path);
      return;
    } catch {
      if (exited) throw new Error("the CLI exited before listening");
      await sleep(25);
    }
  }
  throw new Error(`no socket at ${path} after 10 s`);
}

function spawnCli(args: string[]): Deno.ChildProcess {
  return new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "--quiet", ...args],
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
}

Deno.test({
  name: "cli --api-sock: waits for InstanceStart, prints the demo's console, exits with its code",
  async fn() {
    const dir = await Deno.makeTempDir();
    const sock = `${dir}/api.sock`;
    const p = spawnCli(["--api-sock", sock]);
    try {
      await waitForSocket(sock, p);
      assertEquals((await call(sock, "GET", "/")).json?.state, "Not started");
      assertEquals((await call(sock, "PUT", "/machine-config", { mem_size_mib: 16 })).status, 204);
      assertEquals(
        (await call(sock, "PUT", "/actions", { action_type: "InstanceStart" })).status,
        204,
      );
      const out = await p.output();
      const stdout = new TextDecoder().decode(out.stdout);
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
      assertStringIncludes(stdout, "Hello from a denovm guest");
      let gone = false;
      try {
        await Deno.stat(sock);
      } catch {
        gone = true;
      }
      assert(gone, "the socket is removed on exit");
    } finally {
      try {
        p.kill();
      } catch {
        // exited
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "cli --api-sock with machine flags boots at once; pause + snapshot over the API; SIGTERM exits 0",
  async fn() {
    const dir = await Deno.makeTempDir();
    const sock = `${dir}/api.sock`;
    await Deno.writeFile(`${dir}/loop.bin`, await buildGuest("loop"));
    const p = spawnCli(["--api-sock", sock, "--mem", "16", "--image", `${dir}/loop.bin`]);
    try {
      await waitForSocket(sock, p);
      assertEquals((await call(sock, "GET", "/")).json?.state, "Running");
      assertEquals((await call(sock, "PATCH", "/vm", { state: "Paused" })).status, 204);
      const snap = await call(sock, "PUT", "/snapshot/create", { snapshot_path: `${dir}/snap` });
      assertEquals(snap.status, 204, String(snap.json?.fault_message));
      assert((await Deno.stat(`${dir}/snap/state.bin`)).size > 0, "the snapshot is on disk");
      p.kill("SIGTERM");
      const out = await p.output();
      assertEquals(out.code, 0, new TextDecoder().decode(out.stderr));
    } finally {
      try {
        p.kill();
      } catch {
        // exited
      }
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test("cli --api-sock refuses --restore and --snapshot with exit code 2", async () => {
  const out = await new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "--api-sock", "/tmp/x.sock", "--restore", "/tmp/snap"],
    stdout: "piped",
    stderr: "piped",
  }).output();
  assertEquals(out.code, 2);
  assertStringIncludes(new TextDecoder().decode(out.stderr), "snapshot/load");
});

Deno.test({
  name: "api: virtual devices on a running VM's management device: create, list, destroy",
  async fn() {
    const dir = await Deno.makeTempDir();
    const sock = `${dir}/api.sock`;
    await Deno.writeFile(`${dir}/a.img`, new Uint8Array(1 << 20));
    const api = await ApiServer.listen(sock, {
      image: { bytes: new Uint8Array([0xeb, 0xfe]), load: 0x1000 }, // jmp $
    });
    try {
      assertEquals(
        (await call(sock, "PUT", "/admin-devices", { type: "rng" })).json?.fault_message,
        "the VM is not started",
      );
      assertEquals(
        (await call(sock, "PUT", "/admin-vq", { disks: [{ path_on_host: `${dir}/a.img` }] }))
          .status,
        204,
      );
      assertEquals((await call(sock, "PUT", "/machine-config", { mem_size_mib: 16 })).status, 204);
      assertEquals(
        (await call(sock, "PUT", "/actions", { action_type: "InstanceStart" })).status,
        204,
      );
      const rng = await call(sock, "PUT", "/admin-devices", { type: "rng" });
      assertEquals(rng.status, 200);
      assertEquals(rng.json, { id: 1, type: "rng", deviceType: 4, status: 0, origin: "host" });
      const blk = await call(sock, "PUT", "/admin-devices", { type: "blk", disk: 0 });
      assertEquals(blk.json?.disk, 0);
      for (
        const [body, message] of [
          [{ type: "blk", disk: 0 }, "in use by virtual device 2"],
          [{ type: "blk", disk: 1 }, "blk needs a le32 disk index below 1"],
          [{ type: "blk" }, "'disk'"],
          [{ type: "rng", disk: 0 }, "'disk'"],
          [{ type: "blk", disk: 2 ** 40 }, "'disk' must be an index"],
          [{ type: "gpu" }, "'type' must be"],
        ] as const
      ) {
        const r = await call(sock, "PUT", "/admin-devices", body);
        assertEquals(r.status, 400, JSON.stringify(body));
        assertStringIncludes(String(r.json?.fault_message), message);
      }
      const list = await call(sock, "GET", "/admin-devices");
      assertEquals((list.json as unknown as { id: number }[]).map((d) => d.id), [1, 2]);
      assertEquals((await call(sock, "DELETE", "/admin-devices/2")).status, 204);
      assertEquals((await call(sock, "DELETE", "/admin-devices/2")).status, 400);
      assertEquals((await call(sock, "DELETE", "/admin-devices/x")).status, 404);
      assertEquals((await call(sock, "POST", "/admin-devices")).status, 405);
      const after = await call(sock, "GET", "/admin-devices");
      assertEquals((after.json as unknown as { id: number }[]).map((d) => d.id), [1]);
      // The disk is free again.
      assertEquals(
        (await call(sock, "PUT", "/admin-devices", { type: "blk", disk: 0 })).json?.id,
        3,
      );
    } finally {
      await api.close();
      await Deno.remove(dir, { recursive: true });
    }
  },
});
