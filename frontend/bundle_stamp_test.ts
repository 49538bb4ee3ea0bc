import { assert, assertEquals, assertRejects } from "@std/assert";
import { bundleIsFresh, parseStamp, sourceDigest, STAMP_FILE } from "./bundle_stamp.ts";
import { bundleSources, ENTRIES } from "../tools/bundle.ts";
import { sleep } from "@denovm/sys/timer";

const ROOT = new URL("../", import.meta.url);

/** The memo file name bundleIsFresh uses for the checkout in `dir`. */
function memoName(dir: string): string {
  const files = [...Deno.readDirSync(`${dir}/memo`)].map((e) => e.name);
  assertEquals(files.length, 1);
  return files[0]!;
}

Deno.test("the committed CLI bundle was built from the sources as they are (else: deno task bundle)", async () => {
  assert(
    await bundleIsFresh(ROOT),
    "dist/ does not match the sources: run `deno task bundle` and commit dist/",
  );
  // And it names every file of the two module graphs and the bundle's own, no more.
  const stamp = parseStamp(await Deno.readTextFile(new URL(STAMP_FILE, ROOT)));
  const outputs = ENTRIES.map(([, out]) => out);
  assertEquals(stamp.files, [...await bundleSources(), ...outputs].sort());
});

Deno.test("bundleIsFresh: an edited, missing or added file, a bad stamp or a remote root is stale", async () => {
  const dir = await Deno.makeTempDir();
  const root = new URL(`file://${dir}/`);
  const fresh = (r = root) => bundleIsFresh(r, { verifiedDir: `${dir}/memo` });
  try {
    await Deno.mkdir(`${dir}/dist`);
    await Deno.mkdir(`${dir}/a`);
    await Deno.writeTextFile(`${dir}/a/x.ts`, "export const x = 1;\n");
    await Deno.writeTextFile(`${dir}/y.ts`, "export const y = 2;\n");
    const files = ["a/x.ts", "y.ts"];
    const stamp = (sha256: string, f = files) => JSON.stringify({ files: f, sha256 });
    const good = await sourceDigest(root, files);
    await Deno.writeTextFile(`${dir}/${STAMP_FILE}`, stamp(good));
    assertEquals(await fresh(), true);
    // The same bytes under another name, or split differently between files, differ.
    await Deno.writeTextFile(`${dir}/a/x.ts`, "export const x = 1;\nexport const y = 2;\n");
    await Deno.writeTextFile(`${dir}/y.ts`, "");
    assertEquals(await fresh(), false);
    await Deno.writeTextFile(`${dir}/a/x.ts`, "export const x = 1;\n");
    await Deno.writeTextFile(`${dir}/y.ts`, "export const y = 2;\n");
    assertEquals(await fresh(), true); // the old bytes again
    await Deno.remove(`${dir}/y.ts`);
    assertEquals(await fresh(), false);
    await Deno.writeTextFile(`${dir}/y.ts`, "export const y = 2;\n");
    for (const bad of ["{", "{}", stamp("00"), stamp(good, []), stamp(good, ["../y.ts"])]) {
      await Deno.writeTextFile(`${dir}/${STAMP_FILE}`, bad);
      assertEquals(await fresh(), false, bad);
    }
    // A memo of another digest does not count.
    await Deno.writeTextFile(`${dir}/${STAMP_FILE}`, stamp("ab".repeat(32)));
    assertEquals(await fresh(), false);
    await assertRejects(() => sourceDigest(root, ["/etc/hostname"]), Error, "not a path inside");
    assertEquals(await fresh(new URL("https://example.com/denovm/")), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});

Deno.test("modules in the bundle write import.meta.url paths from the root down", async () => {
  // The bundle runs from dist/: a URL like "./x.ts" would name dist/x.ts there.
  const stamp = parseStamp(await Deno.readTextFile(new URL(STAMP_FILE, ROOT)));
  const bad: string[] = [];
  for (const f of stamp.files.filter((f) => f.endsWith(".ts"))) {
    const text = await Deno.readTextFile(new URL(f, ROOT));
    for (const m of text.matchAll(/new URL\(\s*(["'`])([^"'`]*)\1\s*,\s*import\.meta\.url/g)) {
      if (!(m[2] === ".." || m[2]!.startsWith("../"))) bad.push(`${f}: ${m[2]}`);
    }
  }
  assertEquals(bad, []);
});

Deno.test("bundleIsFresh: an answer is remembered only while every file's stats stay the same", async () => {
  const dir = await Deno.makeTempDir();
  const root = new URL(`file://${dir}/`);
  const memoDir = `${dir}/memo`;
  const fresh = () => bundleIsFresh(root, { verifiedDir: memoDir });
  try {
    await Deno.mkdir(`${dir}/dist`);
    await Deno.writeTextFile(`${dir}/x.ts`, "export const x = 1;\n");
    await Deno.writeTextFile(`${dir}/dist/out.js`, "export const x = 1;\n");
    const files = ["dist/out.js", "x.ts"];
    const sha256 = await sourceDigest(root, files);
    await Deno.writeTextFile(`${dir}/${STAMP_FILE}`, JSON.stringify({ files, sha256 }));
    // Files changed in the last 2 s: their stats are not trusted yet, nothing is kept.
    assertEquals(await fresh(), true);
    assertEquals([...Deno.readDirSync(dir)].some((e) => e.name === "memo"), false);
    const old = new Date(Date.now() - 60_000);
    for (const f of [...files, STAMP_FILE]) Deno.utimeSync(`${dir}/${f}`, old, old);
    await sleep(2100); // the change times age too
    assertEquals(await fresh(), true);
    const memo = `${memoDir}/${memoName(dir)}`;
    assertEquals(JSON.parse(await Deno.readTextFile(memo)).fresh, true);
    // An edit of the same size with its modification time put back: the change time moved.
    await Deno.writeTextFile(`${dir}/dist/out.js`, "export const x = 2;\n");
    Deno.utimeSync(`${dir}/dist/out.js`, old, old);
    assertEquals(await fresh(), false);
    // Once the change is 2 s old, "stale" is remembered too, and the memo is what answers
    // while no stat changes (shown by doctoring its answer).
    await sleep(2100);
    assertEquals(await fresh(), false);
    const m = JSON.parse(await Deno.readTextFile(memo));
    assertEquals(m.fresh, false);
    await Deno.writeTextFile(memo, JSON.stringify({ ...m, fresh: true }));
    assertEquals(await fresh(), true);
    // The bundle file itself gone: stale.
    await Deno.writeTextFile(`${dir}/dist/out.js`, "export const x = 1;\n");
    assertEquals(await fresh(), true);
    await Deno.remove(`${dir}/dist/out.js`);
    assertEquals(await fresh(), false);
  } finally {
    await Deno.remove(dir, { recursive: true });
  }
});
