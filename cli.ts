/**
 * The denovm command line. With no `--kernel` it boots the embedded demo guest.
 *
 * This file is only the entry point: it starts the first vCPU thread, then loads the rest
 * of the VMM with a dynamic import. A static import would make the thread wait for the
 * whole module graph (ES modules load completely before any of them runs); this way the
 * thread's isolate boots while the VMM's modules load, which is most of the start-up time
 * where V8 runs slowly (the nested lane).
 *
 * @module
 */

import type { CliRequest } from "./frontend/cli_main.ts";

export type { CliRequest };
// The types a CliRequest names (type-only, so nothing more loads with this module).
export type { SnapshotTrigger } from "./frontend/run.ts";
export type { DiskConfig, NetConfig, VmConfig, VsockConfig } from "./vmm/config.ts";
export type { LOG_LEVELS, LogLevel } from "./vmm/log.ts";

/** Parses command-line arguments into a validated request (throws on usage errors). */
export async function configFromArgs(args: string[]): Promise<CliRequest> {
  return (await import("./frontend/cli_main.ts")).configFromArgs(args);
}

/** Runs the CLI with `args`; resolves with the process exit code (errors throw). */
export async function main(args: string[]): Promise<number> {
  return (await import("./frontend/cli_main.ts")).main(args);
}

if (import.meta.main) {
  // Only when run as the program (importing this module has no side effects). The VMM comes
  // from its bundle when that was built from these very sources (frontend/bundle_stamp.ts).
  // DENOVM_BUNDLE=0 asks for the modules themselves, DENOVM_BUNDLE=1 for the bundle or an error.
  const { bundleIsFresh } = await import("./frontend/bundle_stamp.ts");
  const want = Deno.env.get("DENOVM_BUNDLE");
  const bundled = want !== "0" && await bundleIsFresh(new URL("./", import.meta.url));
  if (want === "1" && !bundled) {
    console.error(
      "denovm: DENOVM_BUNDLE=1 but dist/ was not built from these sources (deno task bundle)",
    );
    Deno.exit(1);
  }
  const pool = await import("./vstate/worker_pool.ts");
  if (bundled) pool.setVcpuWorkerScript(new URL("./dist/vcpu_worker.js", import.meta.url));
  pool.prewarmVcpuWorkers(1);
  // The bundle's URL is computed so that type checking and publishing leave the generated
  // file alone: it has the same exports as frontend/cli_main.ts.
  const bundle = new URL("./dist/cli_main.js", import.meta.url).href;
  let cli: typeof import("./frontend/cli_main.ts") | undefined;
  if (bundled) {
    try {
      cli = await import(bundle);
    } catch (e) {
      if (want === "1") throw e;
      // Unloadable after all: the modules, with a worker of their own.
      pool.drainVcpuWorkerPool();
      pool.setVcpuWorkerScript(undefined);
      pool.prewarmVcpuWorkers(1);
    }
  }
  cli ??= await import("./frontend/cli_main.ts");
  Deno.exit(await cli.run(Deno.args));
}
