/**
 * The nested verification lane: QEMU in software mode (`-accel tcg -cpu max`) boots an L1
 * Linux whose CPU has SVM and nested paging; KVM inside L1 runs real Linux guests under
 * our VMM. L1 mounts this host's `/` read-only over 9p (made writable in memory with an
 * overlay), runs a command in this checkout, and writes its output and exit status to a
 * results share.
 *
 *   deno run -A tests/nested/lane.ts [--timeout S] -- <command...>
 *
 * Installs what is missing (qemu-system-x86, and through guest/build.ts linux-source and
 * busybox-static), builds and caches the L1 kernel and initramfs outside the repo.
 *
 * @module
 */

import { buildInitramfs, buildKernel } from "../../guest/build.ts";

const HERE = new URL(".", import.meta.url).pathname;

/** Options of {@link runInL1}. */
export interface LaneOptions {
  /** Shell command run inside L1 (in `cwd`). */
  command: string;
  /** Directory inside L1 (the same path as on the host: the host's / is mounted). */
  cwd: string;
  /** Give up after this many seconds (default 1200). */
  timeoutS?: number;
  /** Memory for L1 in MiB (default 6144). */
  memMiB?: number;
  /** Called with each chunk of L1's console. */
  console?: (text: string) => void;
}

/** What came back from L1. */
export interface LaneResult {
  status: number;
  log: string;
  console: string;
  seconds: number;
}

async function ensureQemu(): Promise<void> {
  const ok = await new Deno.Command("bash", { args: ["-c", "command -v qemu-system-x86_64"] })
    .output();
  if (ok.success) return;
  console.error("lane: installing qemu-system-x86");
  const r = await new Deno.Command("bash", {
    args: [
      "-c",
      "apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq qemu-system-x86",
    ],
    stdout: "null",
    stderr: "piped",
  }).output();
  if (!r.success) {
    throw new Error(`Cannot install qemu-system-x86: ${new TextDecoder().decode(r.stderr)}`);
  }
}

/** Boots L1, runs `command` in it, and returns its status and output. */
export async function runInL1(o: LaneOptions): Promise<LaneResult> {
  await ensureQemu();
  const kernel = await buildKernel(`${HERE}l1.fragment`);
  const initrd = await buildInitramfs(`${HERE}l1-init`);
  const results = await Deno.makeTempDir({ prefix: "denovm-lane-" });
  const b64 = btoa(o.command);
  if (o.cwd.includes(" ")) throw new Error("Cannot run the lane in a path with spaces");
  const args = [
    "-accel",
    "tcg,thread=multi",
    "-cpu",
    "max",
    "-smp",
    "2",
    "-m",
    String(o.memMiB ?? 6144),
    "-kernel",
    kernel,
    "-initrd",
    initrd,
    "-append",
    `console=ttyS0 panic=-1 quiet l1.run=${b64} l1.cwd=${o.cwd}`,
    "-virtfs",
    "local,path=/,mount_tag=hostroot,readonly=on,security_model=none,multidevs=remap",
    "-virtfs",
    `local,path=${results},mount_tag=results,security_model=none`,
    "-nographic",
    "-no-reboot",
    "-nic",
    "none",
  ];
  const t0 = performance.now();
  const child = new Deno.Command("qemu-system-x86_64", {
    args,
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  })
    .spawn();
  let consoleText = "";
  const dec = new TextDecoder();
  const pump = (async () => {
    for await (const chunk of child.stdout) {
      const t = dec.decode(chunk, { stream: true });
      consoleText += t;
      o.console?.(t);
    }
  })();
  const errs = new Response(child.stderr).text();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const timedOut = new Promise<"timeout">((
    r,
  ) => (timer = setTimeout(() => r("timeout"), (o.timeoutS ?? 1200) * 1000)));
  const done = await Promise.race([child.status, timedOut]);
  clearTimeout(timer);
  if (done === "timeout") {
    try {
      child.kill("SIGKILL");
    } catch {
      // gone already
    }
    await child.status;
  }
  await pump;
  const stderr = await errs;
  const seconds = (performance.now() - t0) / 1000;
  try {
    const log = await Deno.readTextFile(`${results}/log`).catch(() => "");
    const statusText = await Deno.readTextFile(`${results}/status`).catch(() => "");
    if (done === "timeout") {
      return {
        status: 124,
        log: log + `\nlane: timed out after ${o.timeoutS ?? 1200} s`,
        console: consoleText,
        seconds,
      };
    }
    const status = statusText.trim() === "" ? 125 : Number(statusText.trim());
    return {
      status,
      log: statusText ? log : log + `\nlane: L1 wrote no status; qemu said: ${stderr}`,
      console: consoleText,
      seconds,
    };
  } finally {
    await Deno.remove(results, { recursive: true });
  }
}

if (import.meta.main) {
  const sep = Deno.args.indexOf("--");
  const opts = sep >= 0 ? Deno.args.slice(0, sep) : [];
  const cmd = sep >= 0 ? Deno.args.slice(sep + 1) : Deno.args;
  const ti = opts.indexOf("--timeout");
  const timeoutS = ti >= 0 ? Number(opts[ti + 1]) : 1200;
  const r = await runInL1({
    command: cmd.join(" ") || "uname -a",
    cwd: Deno.cwd(),
    timeoutS,
    console: (t) => Deno.stderr.writeSync(new TextEncoder().encode(t)),
  });
  console.log(r.log);
  console.error(`lane: status ${r.status} after ${r.seconds.toFixed(1)} s`);
  Deno.exit(r.status);
}
