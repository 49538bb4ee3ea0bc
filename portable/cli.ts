/**
 * `deno task portable -- <command...>`: runs any command inside the portable machine
 * (QEMU/TCG with KVM inside), in this directory, with this host's files visible (read-only,
 * writes land in memory) and `--rw <dir>` directories writable on the host. Its output and
 * exit status come back. For example, a test suite that imports `mod.ts`:
 *
 *   deno task portable -- deno test -A my_vm_test.ts
 *   deno task portable --rw ./out -- deno run -A make_snapshots.ts ./out
 *
 * @module
 */

import { runPortable } from "./machine.ts";
import { MissingToolError } from "./apt.ts";

function quote(a: string): string {
  return /^[\w@%+=:,./-]+$/.test(a) ? a : `'${a.replaceAll("'", `'\\''`)}'`;
}

if (import.meta.main) {
  const args = [...Deno.args];
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
          "usage: deno task portable [--rw <dir>]... [--timeout <s>] [--mem <MiB>] -- <command...>",
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
