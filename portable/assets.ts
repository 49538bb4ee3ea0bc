/**
 * What the portable machine boots: QEMU from Debian's `qemu-system-x86`, Debian's prebuilt
 * kernel (`linux-image-amd64`'s current version, no kernel build) and a small initramfs of
 * busybox-static, the kernel modules KVM and the 9p shares need, and `init.sh`. Fetched
 * once and cached outside the repo (`$XDG_CACHE_HOME/denovm/portable`, else
 * `~/.cache/denovm/portable`).
 *
 * @module
 */

import { aptUpdate, ensurePackages, MissingToolError, sh } from "./apt.ts";
import { cacheDir, contentHash } from "./cache.ts";
import { type CpioEntry, cpioGzip } from "./cpio.ts";

// From the root down, so the bundle in dist/ names the same directory.
const HERE = new URL("../portable/", import.meta.url).pathname;

/** The modules L1 loads (their dependencies are added): KVM, 9p over virtio-pci, overlayfs,
 * TAP/veth for the network tests, and virtio-net for the socket bridge (`bridge.ts`). */
export const L1_MODULES = [
  "kvm_amd",
  "virtio_pci",
  "9pnet_virtio",
  "9p",
  "overlay",
  "tun",
  "veth",
  "virtio_net",
];
/**
 * The modules a guest booting the same Debian kernel under our VMM needs to find its devices
 * (`guest/build.ts` puts them in the stock-kernel initramfs): virtio-mmio, found through the
 * ACPI DSDT, and the drivers of every virtio device we offer.
 */
export const GUEST_MODULES = [
  "virtio_mmio",
  "virtio_blk",
  "virtio_net",
  "virtio_rng",
  "virtio_console",
  "vmw_vsock_virtio_transport",
];
/** What an unpacked kernel's `ok` file says besides its package: the modules it kept. */
const MODULES_LINE = `modules ${L1_MODULES.join(",")} guest ${GUEST_MODULES.join(",")}`;

/** Paths of the portable machine's parts. */
export interface PortableAssets {
  qemu: string;
  kernel: string;
  initrd: string;
  /** Debian kernel release, e.g. `6.1.0-56-amd64`. */
  release: string;
}

/** The cache directory for the portable machine. */
export function portableCacheDir(): string {
  return cacheDir("portable");
}

async function exists(p: string): Promise<boolean> {
  return await Deno.stat(p).then(() => true, () => false);
}

async function which(cmd: string): Promise<string | undefined> {
  const out = await sh(`command -v ${cmd} || true`);
  return out.trim() || undefined;
}

/** The name of a module as the kernel knows it (`kvm-amd.ko.xz` -> `kvm_amd`). */
export function moduleName(file: string): string {
  return file.replace(/^.*\//, "").replace(/\.ko(\.(xz|zst|gz))?$/, "").replaceAll("-", "_");
}

/** The `depends=` field of a module's `.modinfo` section (names, possibly none). */
export function moduleDepends(ko: Uint8Array): string[] {
  const key = new TextEncoder().encode("\0depends=");
  outer: for (let i = 0; i + key.length <= ko.length; i++) {
    for (let j = 0; j < key.length; j++) if (ko[i + j] !== key[j]) continue outer;
    let end = i + key.length;
    while (end < ko.length && ko[end] !== 0) end++;
    const v = new TextDecoder().decode(ko.subarray(i + key.length, end));
    return v.split(",").filter((s) => s.length > 0).map((s) => s.replaceAll("-", "_"));
  }
  return [];
}

/**
 * The load order for `wanted` (dependencies first), given each module's dependencies.
 * Throws when a module or a dependency is missing.
 */
export function loadOrder(
  wanted: string[],
  deps: (name: string) => string[] | undefined,
): string[] {
  const order: string[] = [];
  const seen = new Set<string>();
  const visit = (name: string, path: string[]) => {
    if (seen.has(name)) return;
    if (path.includes(name)) {
      throw new Error(`module dependency loop: ${[...path, name].join(" -> ")}`);
    }
    const d = deps(name);
    if (d === undefined) throw new Error(`module ${name} is not in the kernel package`);
    for (const x of d) visit(x, [...path, name]);
    seen.add(name);
    order.push(name);
  };
  for (const w of wanted) visit(w, []);
  return order;
}

async function decompressModule(path: string): Promise<Uint8Array> {
  if (path.endsWith(".ko")) return await Deno.readFile(path);
  const tool = path.endsWith(".xz") ? "xz" : path.endsWith(".zst") ? "zstd" : "gzip";
  const out = await new Deno.Command(tool, { args: ["-dc", path], stdout: "piped" }).output();
  if (!out.success) throw new Error(`cannot decompress ${path} with ${tool}`);
  return out.stdout;
}

/** Reads the modules `wanted` needs (breadth first); returns each one's dependencies. */
async function moduleClosure(
  files: Map<string, string>,
  wanted: string[],
): Promise<Map<string, { deps: string[]; data: Uint8Array }>> {
  const found = new Map<string, { deps: string[]; data: Uint8Array }>();
  const queue = [...wanted];
  while (queue.length) {
    const name = queue.shift()!;
    if (found.has(name)) continue;
    const file = files.get(name);
    if (file === undefined) throw new Error(`module ${name} is not in the kernel package`);
    const data = await decompressModule(file);
    const deps = moduleDepends(data);
    found.set(name, { deps, data });
    queue.push(...deps);
  }
  return found;
}

/**
 * Fetches and unpacks Debian's kernel (`linux-image-amd64`'s current version) into the cache
 * once; returns its directory: `vmlinuz`, `modules/` (L1's) and `guest-modules/` (a guest's),
 * each module directory with an `order` file (dependencies first).
 */
export async function ensureKernel(
  cache: string = portableCacheDir(),
): Promise<{ dir: string; release: string }> {
  await Deno.mkdir(cache, { recursive: true });
  // A kernel already unpacked with today's modules: take it without asking apt (start-up
  // time matters). One unpacked for another module list is fetched again.
  const have: string[] = [];
  for await (const e of Deno.readDir(cache)) {
    if (!e.isDirectory || !e.name.startsWith("kernel-")) continue;
    const ok = await Deno.readTextFile(`${cache}/${e.name}/ok`).catch(() => "");
    if (ok.split("\n").includes(MODULES_LINE)) have.push(e.name);
  }
  const newest = have.sort().at(-1);
  if (newest) return { dir: `${cache}/${newest}`, release: newest.slice("kernel-".length) };
  if (!await which("apt-get") || !await which("dpkg-deb")) {
    throw new MissingToolError(
      "the portable machine needs Debian's kernel package linux-image-amd64, and this host has no apt-get/dpkg-deb to fetch it",
    );
  }
  let deps = await sh("apt-cache depends linux-image-amd64 2>/dev/null || true");
  if (!/Depends: linux-image-/.test(deps)) {
    await aptUpdate();
    deps = await sh("apt-cache depends linux-image-amd64 2>/dev/null || true");
  }
  const pkg = /Depends: (linux-image-[0-9]\S*-amd64)\b/.exec(deps)?.[1];
  if (!pkg) throw new MissingToolError("apt knows no linux-image-amd64 package to fetch");
  const release = pkg.slice("linux-image-".length);
  const dir = `${cache}/kernel-${release}`;
  const work = await Deno.makeTempDir({ dir: cache, prefix: "fetch-" });
  try {
    console.error(`denovm: fetching Debian's ${pkg} for the portable machine (once, ~70 MB)`);
    await sh(`apt-get download -q -o APT::Sandbox::User=root ${pkg} >&2`, { cwd: work });
    const deb = (await sh(`ls ${work}/*.deb`)).trim();
    console.error(`denovm: unpacking ${deb.replace(/^.*\//, "")}`);
    await sh(`dpkg-deb --fsys-tarfile ${deb} | tar -x -C ${work} ./boot ./lib/modules`);
    const modRoot = `${work}/lib/modules/${release}/kernel`;
    const files = new Map<string, string>();
    for (const f of (await sh(`find ${modRoot} -name '*.ko*'`)).split("\n").filter(Boolean)) {
      files.set(moduleName(f), f);
    }
    await Deno.remove(dir, { recursive: true }).catch(() => {});
    // L1's modules in modules/, a guest's in guest-modules/, each with its load order. The
    // portable machine needs only L1's: a package that lacks a guest module (built in, or
    // not built) says so in guest-modules/missing for `guest:stock`, and L1 still boots.
    for (
      const [sub, wanted] of [["modules", L1_MODULES], ["guest-modules", GUEST_MODULES]] as const
    ) {
      await Deno.mkdir(`${dir}/${sub}`, { recursive: true });
      let mods, order;
      try {
        mods = await moduleClosure(files, wanted);
        order = loadOrder(wanted, (n) => mods!.get(n)?.deps);
      } catch (e) {
        if (sub === "modules") throw e;
        await Deno.writeTextFile(`${dir}/${sub}/missing`, (e as Error).message);
        continue;
      }
      for (const n of order) await Deno.writeFile(`${dir}/${sub}/${n}.ko`, mods.get(n)!.data);
      await Deno.writeTextFile(
        `${dir}/${sub}/order`,
        order.map((n) => `${n}.ko`).join("\n") + "\n",
      );
    }
    await Deno.copyFile(`${work}/boot/vmlinuz-${release}`, `${dir}/vmlinuz`);
    await Deno.writeTextFile(`${dir}/ok`, `${pkg}\n${MODULES_LINE}\n`);
    return { dir, release };
  } finally {
    await Deno.remove(work, { recursive: true }).catch(() => {});
  }
}

/**
 * The cpio entries of an unpacked module directory (see {@link ensureKernel}) placed at `dest`
 * in an initramfs: the directory, its `order` file and each module it names.
 */
export async function moduleEntries(src: string, dest: string): Promise<CpioEntry[]> {
  const order = await Deno.readFile(`${src}/order`);
  const entries: CpioEntry[] = [
    { path: dest, mode: 0o755 },
    { path: `${dest}/order`, mode: 0o644, data: order },
  ];
  for (const line of new TextDecoder().decode(order).split("\n").filter(Boolean)) {
    entries.push({
      path: `${dest}/${line}`,
      mode: 0o644,
      data: await Deno.readFile(`${src}/${line}`),
    });
  }
  return entries;
}

/** Builds (or finds) the L1 initramfs: busybox-static, the modules and init.sh. */
async function ensureInitramfs(cache: string, kernelDir: string): Promise<string> {
  const busybox = await Deno.readFile("/bin/busybox");
  const init = await Deno.readFile(`${HERE}init.sh`);
  const order = await Deno.readFile(`${kernelDir}/modules/order`);
  const out = `${cache}/initramfs-${await contentHash([busybox, init, order, kernelDir])}.cpio.gz`;
  if (await exists(out)) return out;
  const entries: CpioEntry[] = [
    { path: "bin", mode: 0o755 },
    { path: "bin/busybox", mode: 0o755, data: busybox },
    { path: "init", mode: 0o755, data: init },
    ...await moduleEntries(`${kernelDir}/modules`, "modules"),
  ];
  await Deno.writeFile(`${out}.tmp`, await cpioGzip(entries));
  await Deno.rename(`${out}.tmp`, out);
  return out;
}

/**
 * Everything the portable machine needs, installed or fetched once: QEMU, busybox-static,
 * Debian's kernel, the initramfs. Throws a {@link MissingToolError} naming what to install
 * where it cannot install (not root, no apt).
 */
export async function ensurePortableAssets(): Promise<PortableAssets> {
  const cache = portableCacheDir();
  await Deno.mkdir(cache, { recursive: true });
  const pkgs: string[] = [];
  if (!await which("qemu-system-x86_64")) pkgs.push("qemu-system-x86");
  if (!await hasStaticBusybox()) pkgs.push("busybox-static");
  if (pkgs.length) await ensurePackages(pkgs, "the portable machine");
  const qemu = await which("qemu-system-x86_64");
  if (!qemu) throw new MissingToolError("qemu-system-x86_64 is still missing after the install");
  const { dir, release } = await ensureKernel(cache);
  const initrd = await ensureInitramfs(cache, dir);
  return { qemu, kernel: `${dir}/vmlinuz`, initrd, release };
}

async function hasStaticBusybox(): Promise<boolean> {
  try {
    const head = await Deno.readFile("/bin/busybox");
    // A static executable has no PT_INTERP program header: look for the interpreter path.
    return !new TextDecoder("latin1").decode(head.subarray(0, 4096)).includes("/lib64/ld-linux");
  } catch {
    return false;
  }
}
