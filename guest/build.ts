/**
 * Builds the guest kernel and initramfs recipes into a cache outside the repo
 * (`$XDG_CACHE_HOME/denovm/guest`, else `~/.cache/denovm/guest`), keyed by the hash of
 * the recipe and the source version. Installs what it needs from Debian when missing
 * (linux-source, its build tools, busybox-static, cpio). Prints the output path.
 *
 *   deno task guest:kernel      -> <cache>/kernel-<hash>/bzImage, and vmlinux beside it
 *   deno task guest:initramfs   -> <cache>/initramfs-<hash>.cpio.gz (with the agent)
 *   deno task guest:agent       -> <cache>/agent-<hash> (static; `vm.exec` talks to it)
 *   deno task guest:stock       -> Debian's vmlinuz and <cache>/initramfs-stock-<hash>.cpio.gz
 *                                  (the initramfs above plus the package's virtio drivers)
 *
 * @module
 */

import { ensurePackages, sh } from "../portable/apt.ts";
import { cacheDir, contentHash } from "../portable/cache.ts";
import { type CpioEntry, cpioGzip } from "../portable/cpio.ts";
import { ensureKernel, moduleEntries } from "../portable/assets.ts";

const HERE = new URL(".", import.meta.url).pathname;

async function exists(p: string): Promise<boolean> {
  return await Deno.stat(p).then(() => true, () => false);
}

/** Builds (or finds in the cache) a kernel from a config fragment; returns the bzImage path. */
export async function buildKernel(fragmentPath = `${HERE}kernel.fragment`): Promise<string> {
  await ensurePackages([
    "linux-source",
    "build-essential",
    "bc",
    "flex",
    "bison",
    "libelf-dev",
    "xz-utils",
  ], "the guest recipes");
  const tarball = (await sh("ls /usr/src/linux-source-*.tar.xz | sort -V | tail -1")).trim();
  if (!tarball) {
    throw new Error("linux-source is installed but no /usr/src/linux-source-*.tar.xz was found");
  }
  const fragment = await Deno.readFile(fragmentPath);
  const out = `${cacheDir("guest")}/kernel-${await contentHash([tarball, fragment])}`;
  if (await exists(`${out}/bzImage`)) return `${out}/bzImage`;
  const work = await Deno.makeTempDir({ prefix: "denovm-kernel-" });
  try {
    console.error(`guest: building the kernel from ${tarball} (a few minutes)`);
    await sh(`tar -xf ${tarball} -C ${work}`);
    const src = (await sh(`ls -d ${work}/linux-source-*`)).trim();
    await sh("make -s tinyconfig", { cwd: src });
    await sh(`./scripts/kconfig/merge_config.sh -m .config ${fragmentPath} >/dev/null`, {
      cwd: src,
    });
    await sh("make -s olddefconfig", { cwd: src });
    // olddefconfig drops an option whose dependencies are unmet without a word: say which.
    // (An option this source no longer has, such as RANDOM_TRUST_CPU after 6.1, is no loss.)
    const config = await Deno.readTextFile(`${src}/.config`).then((t) => t.split("\n"));
    const lost: string[] = [];
    for (const l of new TextDecoder().decode(fragment).split("\n")) {
      const sym = /^CONFIG_(\w+)=/.exec(l)?.[1];
      if (!sym || config.includes(l)) continue;
      const known = await sh(
        `grep -rlqs --include='Kconfig*' -E '^(menu)?config ${sym}$' . && echo y || true`,
        { cwd: src },
      );
      if (known.trim() === "y") lost.push(l);
    }
    if (lost.length) throw new Error(`the kernel config lost ${lost.join(", ")}`);
    await sh(`make -s -j${navigator.hardwareConcurrency} bzImage`, { cwd: src });
    await Deno.mkdir(out, { recursive: true });
    await Deno.copyFile(`${src}/arch/x86/boot/bzImage`, `${out}/bzImage.tmp`);
    await Deno.copyFile(`${src}/.config`, `${out}/config`);
    await Deno.copyFile(`${src}/vmlinux`, `${out}/vmlinux`);
    await Deno.rename(`${out}/bzImage.tmp`, `${out}/bzImage`);
    return `${out}/bzImage`;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

/** Builds (or finds in the cache) the static guest agent (`agent.c`); returns its path. */
export async function buildAgent(): Promise<string> {
  await ensurePackages(["gcc", "libc6-dev"], "the guest recipes");
  const src = await Deno.readFile(`${HERE}agent.c`);
  const flags = "-static -Os -s -Wall -Werror";
  const out = `${cacheDir("guest")}/agent-${await contentHash([src, flags])}`;
  if (await exists(out)) return out;
  await Deno.mkdir(cacheDir("guest"), { recursive: true });
  await sh(`gcc ${flags} -o ${out}.tmp ${HERE}agent.c && mv ${out}.tmp ${out}`);
  return out;
}

/**
 * Builds (or finds in the cache) a busybox initramfs around `initPath`, with the guest
 * agent at /bin/denovm-agent; returns its path.
 */
export async function buildInitramfs(initPath = `${HERE}init`): Promise<string> {
  await ensurePackages(["busybox-static", "cpio"], "the guest recipes");
  const busybox = await Deno.readFile("/bin/busybox");
  const init = await Deno.readFile(initPath);
  const agent = await buildAgent();
  const out = `${cacheDir("guest")}/initramfs-${await contentHash([
    busybox,
    init,
    await Deno.readFile(agent),
  ])}.cpio.gz`;
  if (await exists(out)) return out;
  const work = await Deno.makeTempDir({ prefix: "denovm-initramfs-" });
  try {
    await Deno.mkdir(`${work}/bin`, { recursive: true });
    await Deno.copyFile("/bin/busybox", `${work}/bin/busybox`);
    await Deno.copyFile(agent, `${work}/bin/denovm-agent`);
    await Deno.chmod(`${work}/bin/denovm-agent`, 0o755);
    await Deno.copyFile(initPath, `${work}/init`);
    await Deno.chmod(`${work}/init`, 0o755);
    await Deno.chmod(`${work}/bin/busybox`, 0o755);
    await Deno.mkdir(cacheDir("guest"), { recursive: true });
    await sh(`find . | cpio -o -H newc --quiet | gzip -9 > ${out}.tmp && mv ${out}.tmp ${out}`, {
      cwd: work,
    });
    return out;
  } finally {
    await Deno.remove(work, { recursive: true });
  }
}

/** Where the stock-kernel initramfs keeps its modules; `guest/init` loads them in order. */
const STOCK_MODULE_DIR = "lib/modules/denovm";

/**
 * A distribution kernel and its initramfs: Debian's `linux-image-amd64` (fetched and unpacked
 * once, shared with the portable machine's cache) and the recipe initramfs with the kernel
 * package's virtio drivers appended (virtio-mmio and every device we offer, dependencies
 * first), which `guest/init` loads before anything else. A second gzip'd cpio after the
 * first is one initramfs to Linux.
 */
export async function buildStockGuest(): Promise<{ kernel: string; initrd: string }> {
  const { dir } = await ensureKernel();
  const base = await buildInitramfs();
  const missing = await Deno.readTextFile(`${dir}/guest-modules/missing`).catch(() => undefined);
  if (missing !== undefined) {
    throw new Error(`Cannot build the stock-kernel initramfs: ${missing}`);
  }
  const first = await Deno.readFile(base);
  const entries: CpioEntry[] = [
    { path: "lib", mode: 0o755 },
    { path: "lib/modules", mode: 0o755 },
    ...await moduleEntries(`${dir}/guest-modules`, STOCK_MODULE_DIR),
  ];
  const out = `${cacheDir("guest")}/initramfs-stock-${await contentHash([
    first,
    ...entries.flatMap((e) => [new TextEncoder().encode(e.path), e.data ?? new Uint8Array()]),
  ])}.cpio.gz`;
  if (!await exists(out)) {
    const extra = await cpioGzip(entries);
    const both = new Uint8Array(first.byteLength + extra.byteLength);
    both.set(first);
    both.set(extra, first.byteLength);
    await Deno.writeFile(`${out}.tmp`, both);
    await Deno.rename(`${out}.tmp`, out);
  }
  return { kernel: `${dir}/vmlinuz`, initrd: out };
}

if (import.meta.main) {
  const what = Deno.args[0];
  if (what === "kernel") console.log(await buildKernel());
  else if (what === "initramfs") console.log(await buildInitramfs());
  else if (what === "agent") console.log(await buildAgent());
  else if (what === "stock") {
    const s = await buildStockGuest();
    console.log(`${s.kernel} ${s.initrd}`);
  } else {
    console.error("usage: deno run -A guest/build.ts kernel|initramfs|agent|stock");
    Deno.exit(2);
  }
}
