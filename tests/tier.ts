/**
 * `deno task test`: the fast tier. Unit tests run here; the KVM integration tests (test
 * files whose first line is `// test-tier: kvm`) run on this host's `/dev/kvm` when it can
 * be used, and otherwise all together inside one portable machine (QEMU/TCG with KVM
 * inside). None is skipped for want of KVM. Prints both parts' output and one summary line
 * that counts both, in Deno's own format (`ok | N passed | N failed | N ignored`).
 *
 *   deno task test [--portable] [file or directory...]
 *
 * `--portable` (or DENOVM_PORTABLE=on) runs the KVM tests in the portable machine even
 * where this host has KVM. The Linux guest suite (tests/linux/) is not part of this tier:
 * `deno task test:linux` runs it.
 *
 * @module
 */

import { checkHost } from "../vstate/host.ts";
import { PORTABLE_HOST, runPortable } from "../portable/machine.ts";

const REPO = new URL("../", import.meta.url).pathname.replace(/\/$/, "");
const KVM_MARK = /^\/\/ test-tier: kvm\b/;

/** One `deno test` run's counts. */
export interface Counts {
  passed: number;
  failed: number;
  ignored: number;
}

/** The counts of Deno's closing line (`ok | 3 passed | 0 failed | 1 ignored (2s)`). */
export function parseSummary(text: string): Counts | undefined {
  // deno-lint-ignore no-control-regex
  const plain = text.replace(/\x1b\[[0-9;]*m/g, "");
  let last: Counts | undefined;
  const re =
    /^(?:ok|FAILED) \| (\d+) passed(?: \(\d+ steps?\))? \| (\d+) failed(?: \(\d+ steps?\))?(?: \| (\d+) ignored)?/gm;
  for (const m of plain.matchAll(re)) {
    last = { passed: Number(m[1]), failed: Number(m[2]), ignored: Number(m[3] ?? 0) };
  }
  return last;
}

async function testFiles(roots: string[]): Promise<string[]> {
  const out: string[] = [];
  const walk = async (dir: string) => {
    for await (const e of Deno.readDir(dir)) {
      const p = `${dir}/${e.name}`;
      if (e.isDirectory) {
        if ([".git", "node_modules"].includes(e.name) || p === `${REPO}/tests/linux`) continue;
        await walk(p);
      } else if (/(^|[._])test\.(ts|js)$/.test(e.name) || e.name.endsWith("_test.ts")) {
        out.push(p);
      }
    }
  };
  for (const r of roots) {
    const info = await Deno.stat(r);
    if (info.isDirectory) await walk(r.replace(/\/$/, ""));
    else out.push(await Deno.realPath(r));
  }
  return out.sort();
}

async function isKvmTest(path: string): Promise<boolean> {
  const f = await Deno.open(path);
  try {
    const buf = new Uint8Array(200);
    const n = await f.read(buf) ?? 0;
    return KVM_MARK.test(new TextDecoder().decode(buf.subarray(0, n)));
  } finally {
    f.close();
  }
}

function rel(p: string): string {
  return p.startsWith(REPO + "/") ? p.slice(REPO.length + 1) : p;
}

async function denoTest(files: string[]): Promise<{ code: number; counts?: Counts }> {
  const child = new Deno.Command(Deno.execPath(), {
    args: ["test", "-A", ...files.map(rel)],
    cwd: REPO,
    stdout: "piped",
    stderr: "inherit",
  }).spawn();
  let text = "";
  const dec = new TextDecoder();
  for await (const c of child.stdout) {
    Deno.stdout.writeSync(c);
    text += dec.decode(c, { stream: true });
  }
  const { code } = await child.status;
  const counts = parseSummary(text);
  return counts ? { code, counts } : { code };
}

function line(c: Counts, seconds: number): string {
  const ok = c.failed === 0 ? "ok" : "FAILED";
  return `${ok} | ${c.passed} passed | ${c.failed} failed | ${c.ignored} ignored (${
    Math.round(seconds)
  }s)`;
}

if (import.meta.main) {
  const t0 = performance.now();
  const args = Deno.args.filter((a) => a !== "--portable");
  const forcePortable = Deno.args.includes("--portable") ||
    Deno.env.get("DENOVM_PORTABLE") === "on";
  const files = await testFiles(args.length ? args : [REPO]);
  const kvm: string[] = [], unit: string[] = [];
  for (const f of files) (await isKvmTest(f) ? kvm : unit).push(f);

  const host = await checkHost();
  const inPortable = forcePortable || !host.usable;
  const where = inPortable ? PORTABLE_HOST : `this host's /dev/kvm (${host.virtualization})`;
  console.log(
    `tier: ${unit.length} unit test files here, ${kvm.length} KVM test files on ${where}`,
  );
  if (!host.usable) console.log(`tier: ${host.message.replace(/^denovm: /, "")}`);

  const total: Counts = { passed: 0, failed: 0, ignored: 0 };
  const add = (c: Counts | undefined, what: string, code: number) => {
    if (c) {
      total.passed += c.passed;
      total.failed += c.failed;
      total.ignored += c.ignored;
    }
    if (code !== 0 && (!c || c.failed === 0)) {
      // A run that failed without a failed test (a load error, a crash) still fails.
      console.log(`tier: the ${what} run exited ${code} with no test counted as failed`);
      total.failed += 1;
    }
  };

  if (unit.length) {
    console.log(`\ntier: unit tests (here)`);
    const r = await denoTest(unit);
    add(r.counts, "unit", r.code);
  }
  if (kvm.length) {
    console.log(`\ntier: KVM tests (${where})`);
    if (!inPortable) {
      const r = await denoTest(kvm);
      add(r.counts, "KVM", r.code);
    } else {
      // Type-check here, at native speed; inside, V8 runs under TCG and checking is slow.
      const check = await new Deno.Command(Deno.execPath(), {
        args: ["check", ...kvm.map(rel)],
        cwd: REPO,
      }).output();
      if (!check.success) {
        Deno.stderr.writeSync(check.stderr);
        add(undefined, "KVM type check", check.code);
      } else {
        let text = "";
        const dec = new TextDecoder();
        const r = await runPortable({
          command: `${Deno.execPath()} test -A --no-check ${kvm.map(rel).join(" ")}`,
          cwd: REPO,
          env: { NO_COLOR: "1" },
          memMiB: 6144,
          timeoutS: Number(Deno.env.get("DENOVM_TIER_TIMEOUT") ?? 1800),
          onStdout: (c) => {
            Deno.stdout.writeSync(c);
            text += dec.decode(c, { stream: true });
          },
          onStderr: (c) => Deno.stderr.writeSync(c),
        });
        if (r.status !== 0) console.log(r.log.trimEnd());
        console.log(`tier: the portable machine ran the KVM tests in ${r.seconds.toFixed(1)} s`);
        add(parseSummary(text), "KVM (portable)", r.status);
      }
    }
  }
  console.log(`\ntier: unit tests here, KVM tests on ${where}`);
  console.log(line(total, (performance.now() - t0) / 1000));
  Deno.exit(total.failed === 0 ? 0 : 1);
}
