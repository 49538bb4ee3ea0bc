/**
 * `deno task bench:portable`: how long `npx -y deno task demo` takes to print the demo
 * guest's greeting through the portable machine (issue 11's speed goals), with everything
 * cached: from a cold start (no resident machine), warm (a spare waits), back to back
 * (three runs in a row: the third waits for a spare to load), and with no resident machine
 * at all (`DENOVM_PORTABLE_IDLE_S=0`: each run boots its own). Uses a resident machine of
 * its own (`DENOVM_PORTABLE_INSTANCE=bench`) and stops it at the end. Every run is forced
 * into the portable machine (`--portable on`), so the figures mean the same on a host with
 * KVM. Prints `name value` lines; times in seconds, from the command's start.
 *
 *   deno task bench:portable [--runs <n>]
 *
 * @module
 */

import { PORTABLE_HOST } from "../portable/machine.ts";

const REPO = new URL("..", import.meta.url).pathname;
const GREETING = "Hello from a denovm guest";
const runsArg = Deno.args.indexOf("--runs");
const RUNS = runsArg >= 0 ? Number(Deno.args[runsArg + 1]) : 3;
const ENV = { DENOVM_PORTABLE_INSTANCE: "bench" };
for (const [k, v] of Object.entries(ENV)) Deno.env.set(k, v);
const { allSlotsReady, stopResident } = await import("../portable/resident.ts");

/** The launcher: `npx -y deno` as a new user types it, else this Deno. */
async function launcher(): Promise<string[]> {
  const ok = await new Deno.Command("npx", { args: ["--version"], stdout: "null", stderr: "null" })
    .output().then((o) => o.success, () => false);
  return ok ? ["npx", "-y", "deno"] : [Deno.execPath()];
}

/** Runs the demo; resolves the seconds to the greeting and to the exit. */
async function demo(cmd: string[], env: Record<string, string> = {}) {
  const t0 = performance.now();
  const child = new Deno.Command(cmd[0]!, {
    args: [...cmd.slice(1), "task", "demo", "--portable", "on"],
    cwd: REPO,
    env: { ...ENV, ...env },
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).spawn();
  let greeting: number | undefined;
  let text = "";
  const dec = new TextDecoder();
  const err = new Response(child.stderr).text();
  for await (const c of child.stdout) {
    text += dec.decode(c, { stream: true });
    if (greeting === undefined && text.includes(GREETING)) {
      greeting = (performance.now() - t0) / 1000;
    }
  }
  const status = await child.status;
  const exit = (performance.now() - t0) / 1000;
  if (status.code !== 0 || greeting === undefined) {
    throw new Error(`the demo failed (exit ${status.code}): ${text}\n${await err}`);
  }
  return { greeting, exit };
}

const median = (xs: number[]) => [...xs].sort((a, b) => a - b)[Math.floor(xs.length / 2)]!;
const f = (x: number) => x.toFixed(2);

if (import.meta.main) {
  console.log(`host: ${PORTABLE_HOST}`);
  const cmd = await launcher();
  console.log(`launcher_is_npx ${cmd[0] === "npx" ? 1 : 0}`);
  const t = performance.now();
  await new Deno.Command(cmd[0]!, { args: [...cmd.slice(1), "--version"], stdout: "null" })
    .output();
  console.log(`launcher_start_s ${f((performance.now() - t) / 1000)}`);
  await stopResident();
  try {
    const cold = await demo(cmd);
    console.log(`portable_cold_to_greeting_s ${f(cold.greeting)}`);
    const warm: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      await allSlotsReady();
      warm.push((await demo(cmd)).greeting);
    }
    console.log(`portable_warm_to_greeting_s ${f(median(warm))}`);
    console.log(`portable_warm_to_greeting_max_s ${f(Math.max(...warm))}`);
    await allSlotsReady();
    const row: number[] = [];
    for (let i = 0; i < 3; i++) row.push((await demo(cmd)).greeting);
    console.log(`portable_back_to_back_2nd_s ${f(row[1]!)}`);
    console.log(`portable_back_to_back_3rd_s ${f(row[2]!)}`);
  } finally {
    await stopResident();
  }
  const once: number[] = [];
  for (let i = 0; i < Math.min(RUNS, 2); i++) {
    once.push((await demo(cmd, { DENOVM_PORTABLE_IDLE_S: "0" })).greeting);
  }
  console.log(`portable_one_shot_to_greeting_s ${f(median(once))}`);
}
