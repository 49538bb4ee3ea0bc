/**
 * `deno task portable -- <command...>`: runs any command inside the portable machine
 * (QEMU/TCG with KVM inside), in this directory, with this host's files visible (read-only,
 * writes land in memory) and `--rw <dir>` directories writable on the host. Its output and
 * exit status come back. For example, a test suite that imports `mod.ts`:
 *
 *   deno task portable -- deno test -A my_vm_test.ts
 *   deno task portable --rw ./out -- deno run -A make_snapshots.ts ./out
 *
 * And the resident portable machine that `cli.ts` keeps warm between runs
 * (`resident.ts`): `deno task portable --status` says whether it runs, `--stop` stops it.
 *
 * @module
 */

import { runPortable } from "./machine.ts";
import { residentStatus, stopResident } from "./resident.ts";
import { MissingToolError } from "./apt.ts";

function quote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`;
}

if (import.meta.main) {
  const args = [...Deno.args];
  if (args[0] === "--stop" && args.length === 1) {
    const stopped = await stopResident();
    console.log(
      stopped ? "portable: resident machine stopped" : "portable: no resident machine runs",
    );
    Deno.exit(0);
  }
  if (args[0] === "--status" && args.length === 1) {
    const s = await residentStatus();
    console.log(
      s.running
        ? `portable: resident machine runs (pid ${s.pid}, up ${s.uptimeS} s; spares: ${
          s.slots.join(", ")
        }; ${s.dir})`
        : "portable: no resident machine runs",
    );
    Deno.exit(0);
  }
  const sep = args.indexOf("--");
  const opts = sep >= 0 ? args.slice(0, sep) : [];
  const cmd = sep >= 0 ? args.slice(sep + 1) : args;
  const writable: string[] = [];
  let timeoutS: number | undefined;
  let memMiB: number | undefined;
  for (let i = 0; i < opts.length; i++) {
    const o = opts[i]!;
    const v = opts[i + 1];
    if (o === "--rw" && v) writable.push(v), i++;
    else if (o === "--timeout" && v && /^\d+$/.test(v)) timeoutS = Number(v), i++;
    else if (o === "--mem" && v && /^\d+$/.test(v)) memMiB = Number(v), i++;
    else {
      console.error(
        `portable: unknown option ${JSON.stringify(o)}\n` +
          "usage: deno task portable [--rw <dir>]... [--timeout <s>] [--mem <MiB>] -- <command...>\n" +
          "       deno task portable --status | --stop",
      );
      Deno.exit(2);
    }
  }
  if (cmd.length === 0) {
    console.error("usage: deno task portable [--rw <dir>]... -- <command...>");
    Deno.exit(2);
  }
  // deno itself: the binary running this script (it is visible inside at the same path).
  if (cmd[0] === "deno") cmd[0] = Deno.execPath();
  try {
    const r = await runPortable({
      command: cmd.map(quote).join(" "),
      stdio: "inherit",
      writable,
      ...(timeoutS !== undefined ? { timeoutS } : {}),
      ...(memMiB !== undefined ? { memMiB } : {}),
    });
    if (r.status >= 124) console.error(r.log.trimEnd());
    Deno.exit(r.status);
  } catch (e) {
    if (e instanceof MissingToolError) {
      console.error(`portable: ${e.message}`);
      Deno.exit(1);
    }
    throw e;
  }
}
