/**
 * The denovm command line. With no `--kernel` it boots the embedded demo guest.
 *
 * @module
 */

// First, so the vCPU thread boots while the rest of the CLI loads.
import "./vmm/prewarm.ts";
import { parseArgs } from "@std/cli/parse-args";
import { checkHost } from "./vmm/host.ts";
import { runDemo } from "./vmm/demo.ts";
import { drainVcpuWorkerPool } from "./vmm/worker_pool.ts";

const USAGE = `Usage: deno run -A cli.ts [options]

With no --kernel, boots the embedded demo guest (works on any host with /dev/kvm).

Options:
  --kernel <path>   Linux kernel (bzImage) to boot
  --quiet           Do not print the host check line
  -h, --help        Show this help
`;

/** Runs the CLI with `args`; resolves with the process exit code. */
export async function main(args: string[]): Promise<number> {
  const flags = parseArgs(args, {
    string: ["kernel"],
    boolean: ["help", "quiet"],
    alias: { h: "help" },
    unknown: (arg: string) => {
      if (arg.startsWith("-")) throw new UsageError(`Unknown option: ${arg}`);
      throw new UsageError(`Unexpected argument: ${arg}`);
    },
  });
  if (flags.help) {
    console.log(USAGE);
    return 0;
  }
  const host = await checkHost();
  if (!flags.quiet || !host.native) console.error(host.message);
  if (flags.kernel !== undefined) {
    if (!host.native) return 1;
    console.error("denovm: booting a Linux kernel is not available in this version yet");
    return 1;
  }
  return await runDemo();
}

class UsageError extends Error {}

if (import.meta.main) {
  let code: number;
  try {
    code = await main(Deno.args);
  } catch (e) {
    if (e instanceof UsageError) {
      console.error(`denovm: ${e.message}\n\n${USAGE}`);
      code = 2;
    } else {
      console.error(`denovm: ${e instanceof Error ? e.message : String(e)}`);
      code = 1;
    }
  }
  drainVcpuWorkerPool();
  Deno.exit(code);
}
