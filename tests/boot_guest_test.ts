// test-tier: kvm (needs /dev/kvm; where the host has none, runs in the portable machine)
/**
 * The boot protocol under a real guest on /dev/kvm: a 64-bit test guest packaged as a
 * bzImage (built from tests/guests/boot64*.S at test time) is loaded exactly like a Linux
 * kernel, checks its entry state, e820 map, cmdline and initrd, drives the virtio-rng
 * device named on its cmdline by polling, and resets through the i8042.
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { Vmm } from "../vmm/vmm.ts";
import { buildBoot64, writeBootFiles } from "../testing/boot_files.ts";
import { deadline } from "../testing/kvm_guests.ts";
import type { VmConfig } from "../vmm/config.ts";

/** The boot64 files written into `dir` and a VM built from them (64 MiB, virtio-rng) with
 * `cfg`; its console text collects in `con.text`. */
async function createBoot64(dir: string, cfg: Partial<VmConfig>, con: { text: string }) {
  await writeBootFiles(dir);
  return await Vmm.create({
    kernel: `${dir}/bzImage`,
    initrd: `${dir}/initrd`,
    memMiB: 64,
    rng: true,
    ...cfg,
  }, { output: (b) => (con.text += new TextDecoder().decode(b)) });
}

Deno.test({
  name: "boot64 test guest: loaded like Linux (bzImage, zero page, long mode), passes its checks",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "denovm-boot-" });
    try {
      const con = { text: "" };
      await using vm = await createBoot64(dir, {
        cmdline: "console=ttyS0 boot64-test",
        acpi: false, // the device is announced on the command line, as the guest checks
      }, con);
      assertEquals(vm.boot?.mode, "64-bit");
      assertEquals(vm.generationId, undefined, "no ACPI, no generation ID");
      assertStringIncludes(vm.boot!.cmdline, "virtio_mmio.device=4K@0xd0000000:5");
      vm.start();
      const r = await deadline(vm.whenExit(), 60_000, "boot64 guest");
      vm.serial.drain();
      assertEquals(
        r,
        { kind: "reset", vcpu: -1 },
        `guest output: ${con.text}; stop: ${JSON.stringify(r)}`,
      );
      assertStringIncludes(con.text, "boot64: all checks passed");
      const ms = vm.bootMarkerMs;
      assertEquals(typeof ms === "number" && ms > 0, true, "the boot marker was written");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "boot64 with 2 vCPUs: the BSP boots, the AP waits for INIT/SIPI; the MP table lists both",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "denovm-boot-" });
    try {
      const con = { text: "" };
      await using vm = await createBoot64(
        dir,
        { cmdline: "boot64-test", vcpus: 2, acpi: false },
        con,
      );
      vm.start();
      assertEquals((await deadline(vm.whenExit(), 60_000, "boot64 guest")).kind, "reset", con.text);
      assertEquals(
        await vm.machine.vcpus[1]!.call<number>("getMpState"),
        1,
        "AP: MP_STATE_UNINITIALIZED",
      );
      const mp = vm.machine.memory.read(0x9fc00, 16);
      assertEquals(new TextDecoder().decode(mp.subarray(0, 4)), "_MP_");
      const ct = vm.machine.memory.readU32(0x9fc00 + 4);
      assertEquals(
        vm.machine.memory.readU8(ct + 44 + 20 + 1),
        1,
        "the second processor entry is APIC id 1",
      );
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "ACPI, the default for kernels: RSDP in the zero page, no announcement; a restore renews the generation ID, a resume keeps it",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "denovm-boot-" });
    try {
      const con = { text: "" };
      await using vm = await createBoot64(dir, {
        cmdline: "console=ttyS0 boot64-test boot64-spin",
      }, con);
      assertEquals(vm.config.acpi, true, "recorded as on");
      assert(!vm.boot!.cmdline.includes("virtio_mmio.device="), vm.boot!.cmdline);
      const id0 = vm.generationId!;
      assert(/^[0-9a-f]{32}$/.test(id0) && !/^0+$/.test(id0), id0);
      vm.start();
      // The guest found the RSDP through the zero page and its rng in the first window.
      await deadline(vm.console.waitFor("boot64: all checks passed"), 60_000, "boot64 guest");
      await vm.pause();
      vm.resume();
      await vm.pause();
      assertEquals(vm.generationId, id0, "pause and resume are the same generation");
      await vm.snapshot(`${dir}/snap`);
      await vm.stop();
      assertEquals(vm.generationId, undefined, "a stopped VM's memory is gone: no read");
      const ids = new Set([id0]);
      for (let i = 0; i < 2; i++) {
        await using clone = await Vmm.restore(`${dir}/snap`, { paused: true });
        const id = clone.generationId!;
        assert(/^[0-9a-f]{32}$/.test(id), String(id));
        ids.add(id);
        clone.resume();
        await clone.pause();
        assertEquals(clone.generationId, id, "the clone keeps its ID across pause/resume");
      }
      assertEquals(ids.size, 3, "the original and each clone have IDs of their own");
      assert(!con.text.includes("FAIL"), con.text);
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "cli --kernel boots the boot64 bzImage with --initrd, --cmdline and --rng; exits 0 on reset",
  async fn() {
    const dir = await Deno.makeTempDir({ prefix: "denovm-boot-" });
    try {
      await writeBootFiles(dir);
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../cli.ts", import.meta.url).pathname,
          "--kernel",
          `${dir}/bzImage`,
          "--initrd",
          `${dir}/initrd`,
          "--cmdline",
          "console=ttyS0 boot64-test",
          "--mem",
          "64",
          "--rng",
          "--allow-emulated",
          "--timings",
          "--log-json",
          "--log-level",
          "info",
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      const stdout = new TextDecoder().decode(out.stdout),
        stderr = new TextDecoder().decode(out.stderr);
      assertEquals(out.code, 0, stderr);
      assertStringIncludes(stdout, "boot64: all checks passed");
      // --log-json: every stderr line is a JSON object; --timings: the phases in order.
      const logs = stderr.trim().split("\n").map((l) => JSON.parse(l));
      const loaded = logs.find((l) => l.msg === "kernel loaded");
      assertEquals([loaded?.level, loaded?.mode], ["info", "64-bit"]);
      assertStringIncludes(loaded?.cmdline, "boot64-test");
      const t = logs.find((l) => l.msg.startsWith("timings"));
      assertEquals(t?.level, "notice");
      const phases = [t.vm_created, t.kernel_loaded, t.first_instruction, t.boot_marker];
      assert(phases.every((v) => typeof v === "number"), JSON.stringify(t));
      assert(phases.every((v, i) => i === 0 || v >= phases[i - 1]), JSON.stringify(t));
      assert(logs.some((l) => l.msg === "guest stopped" && l.kind === "reset"));
      const bad = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../cli.ts", import.meta.url).pathname,
          "--kernel",
          `${dir}/initrd`,
          "--allow-emulated",
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(bad.code, 1);
      assertStringIncludes(new TextDecoder().decode(bad.stderr), "not a bzImage or ELF kernel");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name:
    "cli --kernel --portable off on a host without vmx/svm refuses plainly unless --allow-emulated",
  async fn() {
    const { checkHost } = await import("../vstate/host.ts");
    // A host with hardware virtualization boots it. (Without `--portable off`, a host whose
    // KVM only emulates sends the boot to the portable machine: tests/portable_cli_test.ts.)
    if ((await checkHost()).native) return;
    const dir = await Deno.makeTempDir({ prefix: "denovm-boot-" });
    try {
      await Deno.writeFile(`${dir}/bzImage`, await buildBoot64());
      const out = await new Deno.Command(Deno.execPath(), {
        args: [
          "run",
          "-A",
          new URL("../cli.ts", import.meta.url).pathname,
          "--kernel",
          `${dir}/bzImage`,
          "--portable",
          "off",
        ],
        stdin: "null",
        stdout: "piped",
        stderr: "piped",
      }).output();
      assertEquals(out.code, 1);
      const err = new TextDecoder().decode(out.stderr);
      assertStringIncludes(err, "this CPU has no vmx/svm");
      assertStringIncludes(err, "--allow-emulated");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});
