/**
 * The resident portable machine end to end (issue 11's warm start): `cli.ts --portable on`
 * starts it on the first run and later runs go to a spare that waits inside with the VMM
 * loaded. Checked here on a machine of the test's own (`DENOVM_PORTABLE_INSTANCE`), which
 * the test stops: the greeting and exit codes come back; stdin reaches the guest; a file
 * the host changed in place is read afresh; a snapshot lands in a host directory and
 * restores; SIGTERM ends the job (also with unread input backed up), not the machine; two runs at once both run; a change to
 * the checkout's code is noticed; an idle machine powers itself off. Needs qemu-system-x86
 * and Debian's kernel (installed and fetched once), as the other portable tests.
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { buildGuest } from "../testing/guest_build.ts";
import { sleep } from "@denovm/sys/timer";

const CLI = new URL("../cli.ts", import.meta.url).pathname;
const INSTANCE = `test-${Deno.pid}`;
const IDLE_S = 45;
const ENV = { DENOVM_PORTABLE_INSTANCE: INSTANCE, DENOVM_PORTABLE_IDLE_S: String(IDLE_S) };

/** A flat real-mode image that exits with `code` (mov dx,0x501; mov al,code; out dx,al; hlt). */
function exitImage(code: number): Uint8Array {
  return new Uint8Array([0xba, 0x01, 0x05, 0xb0, code, 0xee, 0xf4]);
}

interface Run {
  code: number;
  stdout: string;
  stderr: string;
}

/**
 * Runs `cli.ts --portable on ...args`; with `input`, types it once the guest says `after`
 * (a guest that sets up its UART drops what came before, as a real 8250 would), or at once
 * when `after` is empty.
 */
async function cli(args: string[], input?: string, after = "ready"): Promise<Run> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["run", "-A", CLI, "--portable", "on", ...args],
    env: ENV,
    stdin: input === undefined ? "null" : "piped",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let w = input === undefined ? undefined : child.stdin.getWriter();
  let stdout = "";
  const dec = new TextDecoder();
  const stderr = new Response(child.stderr).text();
  const timer = setTimeout(() => child.kill("SIGKILL"), 300_000);
  if (w && after === "") {
    await w.write(new TextEncoder().encode(input));
    await w.close();
    w = undefined;
  }
  for await (const c of child.stdout) {
    stdout += dec.decode(c, { stream: true });
    if (w && stdout.includes(after)) {
      await w.write(new TextEncoder().encode(input));
      await w.close();
      w = undefined;
    }
  }
  const { code } = await child.status;
  clearTimeout(timer);
  return { code, stdout, stderr: await stderr };
}

const resident = () => import("../portable/resident.ts");

async function machinePid(): Promise<number | undefined> {
  return (await (await resident()).residentStatus()).pid;
}

Deno.test({
  name:
    "resident portable machine: warm runs, stdin, exit codes, fresh files, snapshots, signals, two at once, code changes, idle power-off",
  sanitizeResources: false,
  sanitizeOps: false,
  async fn(t) {
    // The module reads the instance from the environment: set it before it is used.
    for (const [k, v] of Object.entries(ENV)) Deno.env.set(k, v);
    const r = await resident();
    const dir = await Deno.makeTempDir({ prefix: "denovm-resident-" });
    const ok: boolean[] = [];
    try {
      await Deno.writeFile(`${dir}/uart.bin`, await buildGuest("uart"));
      await Deno.writeFile(`${dir}/loop.bin`, await buildGuest("loop"));

      let pid: number | undefined;
      ok.push(
        await t.step("the first run starts the machine and runs the demo", async () => {
          const run = await cli([]);
          assertEquals(run.code, 0, run.stderr);
          assertStringIncludes(run.stdout, "Hello from a denovm guest");
          assertStringIncludes(run.stderr, "starting the portable machine");
          pid = await machinePid();
          assert(pid !== undefined, "the machine stays up after the run");
        }),
      );

      ok.push(
        await t.step("a later run goes to a waiting spare: stdin reaches the guest", async () => {
          await r.allSlotsReady();
          const run = await cli(["--image", `${dir}/uart.bin`], "hi\n");
          assertEquals(run.code, 0, run.stderr);
          assertStringIncludes(run.stdout, "HI");
          assertStringIncludes(run.stdout, "bye");
          assert(!run.stderr.includes("starting the portable machine"), run.stderr);
          assert(!run.stderr.includes("waiting for the portable machine"), run.stderr);
          assertEquals(await machinePid(), pid, "the same machine");
        }),
      );

      ok.push(
        await t.step(
          "the guest's exit code comes back; a file changed in place is read afresh",
          async () => {
            const image = `${dir}/exit.bin`;
            await Deno.writeFile(image, exitImage(7));
            assertEquals((await cli(["--image", image])).code, 7);
            // Same size, same inode: only the content differs (a cache would keep the old one).
            const f = await Deno.open(image, { write: true });
            await f.write(exitImage(9));
            f.close();
            assertEquals((await cli(["--image", image])).code, 9);
          },
        ),
      );

      ok.push(
        await t.step("a snapshot lands in a host directory and restores from it", async () => {
          const snap = `${dir}/snap`;
          const taken = await cli([
            "--image",
            `${dir}/uart.bin`,
            "--snapshot",
            snap,
            "--snapshot-on",
            "pattern:ready",
          ]);
          assertEquals(taken.code, 0, `${taken.stderr}\n${taken.stdout}`);
          assertStringIncludes(taken.stderr, `snapshot written to ${snap}`);
          assert((await Deno.stat(`${snap}/state.bin`)).size > 0, "state.bin on this host");
          assert((await Deno.stat(`${snap}/memory.bin`)).size > 0, "memory.bin on this host");
          // It resumes past its "ready" and past setting up its UART: type at once.
          const restored = await cli(["--restore", snap], "hi\n", "");
          assertEquals(restored.code, 0, `${restored.stderr}\n${restored.stdout}`);
          assertStringIncludes(restored.stdout, "HI");
          assertStringIncludes(restored.stdout, "bye");
        }),
      );

      ok.push(
        await t.step(
          "SIGTERM ends the job with 143, even with stdin the guest never reads; the machine stays",
          async () => {
            await r.allSlotsReady();
            const child = new Deno.Command(Deno.execPath(), {
              args: ["run", "-A", CLI, "--portable", "on", "--image", `${dir}/loop.bin`],
              env: ENV,
              stdin: "piped",
              stdout: "null",
              stderr: "piped",
            }).spawn();
            // 4 MiB of input the looping guest never reads: it backs up, and the signal must
            // still get through (stdin travels within the spare's credit).
            const w = child.stdin.getWriter();
            const feeding = w.write(new Uint8Array(4 << 20).fill(0x61)).catch(() => {});
            // A spare waits: the job runs within a second or two (the loop guest never ends).
            await sleep(6000);
            child.kill("SIGTERM");
            const status = await child.status;
            await w.abort().catch(() => {});
            await feeding;
            const stderr = await new Response(child.stderr).text();
            assertEquals(status.code, 143, stderr);
            assertEquals(await machinePid(), pid, "the machine is still up");
            const next = await cli([]);
            assertEquals(next.code, 0, next.stderr);
            assertStringIncludes(next.stdout, "Hello from a denovm guest");
          },
        ),
      );

      ok.push(
        await t.step("two runs at once both run", async () => {
          await r.allSlotsReady();
          const [a, b] = await Promise.all([cli([]), cli([])]);
          for (const run of [a, b]) {
            assertEquals(run.code, 0, run.stderr);
            assertStringIncludes(run.stdout, "Hello from a denovm guest");
          }
        }),
      );

      ok.push(
        await t.step(
          "a change to the checkout's code: the next run waits for a spare with it",
          async () => {
            const file = new URL("../portable/job_frames.ts", import.meta.url).pathname;
            const st = await Deno.stat(file);
            try {
              await Deno.utime(file, st.atime ?? new Date(), new Date(Date.now() + 5000));
              const run = await cli([]);
              assertEquals(run.code, 0, run.stderr);
              assertStringIncludes(run.stdout, "Hello from a denovm guest");
              assertStringIncludes(
                run.stderr,
                "waiting for the portable machine to load the VMM again",
              );
            } finally {
              await Deno.utime(file, st.atime ?? new Date(), st.mtime ?? new Date());
            }
          },
        ),
      );

      ok.push(
        await t.step(`idle for ${IDLE_S} s, the machine powers itself off`, async () => {
          const deadline = Date.now() + (IDLE_S + 90) * 1000;
          while (Date.now() < deadline && await machinePid() !== undefined) {
            await sleep(1000);
          }
          assertEquals(await machinePid(), undefined, "still running after the idle time");
          assertStringIncludes(
            await Deno.readTextFile(`${await r.residentDir()}/ctl/state`),
            "off",
          );
        }),
      );
    } finally {
      if (ok.includes(false)) {
        // What the machine said, for the failure report.
        const rd = await r.residentDir();
        const read = (f: string) => Deno.readTextFile(`${rd}/ctl/${f}`).catch(() => "(none)");
        console.error(`--- state\n${await read("state")}\n--- log\n${await read("log")}`);
        console.error(`--- spare.log\n${(await read("spare.log")).slice(-4000)}`);
      }
      await r.stopResident();
      await Deno.remove(await r.residentDir(), { recursive: true }).catch(() => {});
      await Deno.remove(dir, { recursive: true });
    }
  },
});
