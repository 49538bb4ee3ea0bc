/**
 * vm.exec's host side against the real guest agent (`guest/agent.c`, built static and run
 * on the host with `--unix`) behind a stand-in for the vsock device's Unix socket, and
 * against agents that misbehave. The Linux lane runs the same agent inside a guest.
 */

import { assert, assertEquals, assertRejects, assertStringIncludes } from "@std/assert";
import { exec, ExecError } from "../host/exec.ts";
import { buildAgent } from "../guest/build.ts";
import { sleep } from "@denovm/sys/timer";

const hasGcc = (() => {
  try {
    return new Deno.Command("gcc", { args: ["--version"], stdout: "null", stderr: "null" })
      .outputSync().success;
  } catch {
    return false;
  }
})();

/**
 * A stand-in for the vsock device's host socket at `path`: answers `CONNECT 1024` with
 * `OK` and then hands the stream to `serve`; any other port is refused (closed).
 */
function fakeDevice(
  path: string,
  serve: (conn: Deno.UnixConn, ahead: Uint8Array) => Promise<void>,
): { close(): Promise<void> } {
  const listener = Deno.listen({ transport: "unix", path });
  const conns: Promise<void>[] = [];
  const loop = (async () => {
    for await (const c of listener) {
      conns.push((async () => {
        const buf = new Uint8Array(256);
        let got = new Uint8Array(0);
        while (!got.includes(10)) {
          const n = await c.read(buf);
          if (n === null) return c.close();
          got = new Uint8Array([...got, ...buf.subarray(0, n)]);
        }
        const i = got.indexOf(10);
        if (new TextDecoder().decode(got.subarray(0, i)) !== "CONNECT 1024") return c.close();
        await c.write(new TextEncoder().encode("OK 7\n"));
        try {
          await serve(c, got.subarray(i + 1));
        } catch {
          // the client went away
        }
      })());
    }
  })();
  return {
    async close() {
      listener.close();
      await loop.catch(() => {});
      await Promise.allSettled(conns);
    },
  };
}

/** Pipes a connection to the agent listening on `agentPath`, both ways. */
async function toAgent(agentPath: string, c: Deno.UnixConn, ahead: Uint8Array): Promise<void> {
  const a = await Deno.connect({ transport: "unix", path: agentPath });
  if (ahead.byteLength) await a.write(ahead);
  const pump = async (from: Deno.Conn, to: Deno.Conn) => {
    const buf = new Uint8Array(65536);
    try {
      for (;;) {
        const n = await from.read(buf);
        if (n === null) break;
        for (let o = 0; o < n;) o += await to.write(buf.subarray(o, n));
      }
    } catch {
      // closed
    }
    try {
      from.close();
    } catch { /* closed */ }
    try {
      to.close();
    } catch { /* closed */ }
  };
  await Promise.all([pump(c, a), pump(a, c)]);
}

Deno.test({
  name: "exec() runs commands through the real agent: output, stdin, exit codes, signals",
  ignore: !hasGcc,
  async fn() {
    const agentBin = await buildAgent();
    const dir = await Deno.makeTempDir({ prefix: "denovm-exec-" });
    const agentSock = `${dir}/agent.sock`, dev = `${dir}/vsock`;
    const agent = new Deno.Command(agentBin, {
      args: ["--unix", agentSock],
      stdout: "null",
      stderr: "piped",
    }).spawn();
    const device = fakeDevice(dev, (c, ahead) => toAgent(agentSock, c, ahead));
    try {
      for (let i = 0; i < 200; i++) {
        if (await Deno.stat(agentSock).then(() => true, () => false)) break;
        await sleep(10);
      }
      const a = await exec(dev, "echo hello; echo oops >&2; exit 3");
      assertEquals([a.code, a.stdout, a.stderr], [3, "hello\n", "oops\n"]);
      const b = await exec(dev, "tr a-z A-Z", { stdin: "shout\n" });
      assertEquals([b.code, b.stdout], [0, "SHOUT\n"]);
      const big = new Uint8Array(3 << 20).map((_, i) => (i * 7) & 0xff);
      const c = await exec(dev, "cat", { stdin: big });
      assertEquals(c.stdoutBytes.byteLength, big.byteLength);
      assert(c.stdoutBytes.every((v, i) => v === big[i]), "3 MiB of binary stdin came back intact");
      assertEquals((await exec(dev, "kill -9 $$")).code, 137, "128 + SIGKILL");
      assertEquals((await exec(dev, "no-such-command-here")).code, 127);
      const [x, y] = await Promise.all([exec(dev, "sleep 0.2; echo x"), exec(dev, "echo y")]);
      assertEquals([x.stdout, y.stdout], ["x\n", "y\n"], "two requests at once");
      // A timeout closes the connection; the agent then kills the command's process group.
      const pidFile = `${dir}/pid`;
      await assertRejects(
        () => exec(dev, `sleep 30 & echo $! > ${pidFile}; wait`, { timeout: 300 }),
        ExecError,
        "Timed out after 300 ms",
      );
      const pid = Number(await Deno.readTextFile(pidFile));
      let alive = true;
      for (let i = 0; i < 100 && alive; i++) {
        alive = await Deno.stat(`/proc/${pid}`).then(() => true, () => false);
        if (alive) await sleep(20);
      }
      assert(!alive, "the timed-out command was killed");
      await assertRejects(() => exec(dev, ""), RangeError);
    } finally {
      await device.close();
      agent.kill();
      await agent.status;
      await agent.stderr.cancel();
      await Deno.remove(dir, { recursive: true });
    }
  },
});

/** Serves one canned reply after reading the request's header. */
function canned(reply: Uint8Array) {
  return async (c: Deno.UnixConn) => {
    await c.read(new Uint8Array(4096));
    if (reply.byteLength) await c.write(reply);
    c.close();
  };
}

Deno.test("exec() turns a misbehaving agent into an ExecError, never a hang", async () => {
  const dir = await Deno.makeTempDir({ prefix: "denovm-exec-" });
  const cases: [string, Uint8Array, string][] = [
    ["hangup", new Uint8Array(0), "hung up before the exit status"],
    ["bigframe", new Uint8Array([1, 0xff, 0xff, 0xff, 0x7f]), "frame"],
    ["unknown", new Uint8Array([9, 0, 0, 0, 0]), "unknown frame (type 9"],
    ["short", new Uint8Array([1, 10, 0, 0, 0, 65]), "hung up inside a frame"],
    ["badexit", new Uint8Array([3, 2, 0, 0, 0, 0, 0]), "unknown frame (type 3"],
    ["refusal", new Uint8Array([4, 3, 0, 0, 0, 98, 97, 100]), "refused: bad"],
  ];
  try {
    for (const [name, reply, message] of cases) {
      const dev = fakeDevice(`${dir}/${name}`, canned(reply));
      try {
        await assertRejects(() => exec(`${dir}/${name}`, "true"), ExecError, message);
      } finally {
        await dev.close();
      }
    }
    // A device whose guest never accepts: refused every time, so exec gives up quickly.
    const refusing = Deno.listen({ transport: "unix", path: `${dir}/refuse` });
    const loop = (async () => {
      for await (const c of refusing) c.close();
    })();
    const e = await assertRejects(
      () => exec(`${dir}/refuse`, "true", { agentWait: 100 }),
      ExecError,
    );
    assertStringIncludes(e.message, "No guest agent answered on vsock port 1024");
    refusing.close();
    await loop.catch(() => {});
    // No device at all.
    await assertRejects(() => exec(`${dir}/none`, "true"), ExecError, "Cannot reach");
    // Times that are not numbers are refused before any connection is tried (the missing
    // socket would say "Cannot reach"); a NaN timeout once failed only after connecting.
    await assertRejects(() => exec(`${dir}/none`, "true", { timeout: NaN }), RangeError, "timeout");
    await assertRejects(
      () => exec(`${dir}/none`, "true", { agentWait: "1" as unknown as number }),
      RangeError,
      "agentWait",
    );
    // A silent agent: the timeout ends it.
    const silent = fakeDevice(`${dir}/silent`, async (c) => {
      await c.read(new Uint8Array(4096));
      await sleep(500);
    });
    await assertRejects(
      () => exec(`${dir}/silent`, "true", { timeout: 100 }),
      ExecError,
      "Timed out",
    );
    await silent.close();
    // Issue 12.5: a guest that ignores the connect (the device never answers CONNECT): the
    // timeout covers the connect too, instead of waiting for ever.
    const ignoring = Deno.listen({ transport: "unix", path: `${dir}/ignore` });
    const held: Deno.Conn[] = [];
    const accept = (async () => {
      for await (const c of ignoring) held.push(c); // read nothing, answer nothing
    })();
    const t0 = performance.now();
    await assertRejects(
      () => exec(`${dir}/ignore`, "true", { timeout: 200 }),
      ExecError,
      "neither accepted nor refused",
    );
    assert(performance.now() - t0 < 5000, "gave up at the timeout");
    ignoring.close();
    for (const c of held) c.close();
    await accept.catch(() => {});
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
