/**
 * The Linux guest suite: the recipe kernel and initramfs (DENOVM_KERNEL, DENOVM_INITRD)
 * booted under our VMM. Needs KVM with hardware virtualization: it runs inside the nested
 * lane (`deno task test:linux`), or directly on such a host. Skipped (with a reason)
 * where the host only emulates, or when the files are not given.
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { checkHost } from "../../vmm/host.ts";
import { Vmm, type Vmm as VmmT } from "../../vmm/vmm.ts";
import type { VmConfig } from "../../vmm/config.ts";

const kernel = Deno.env.get("DENOVM_KERNEL");
const initrd = Deno.env.get("DENOVM_INITRD");
const host = await checkHost();
const ignore = !kernel || !initrd || !host.native;
if (ignore) {
  console.error(
    `linux suite skipped: ${
      !kernel || !initrd ? "DENOVM_KERNEL/DENOVM_INITRD not set" : host.message
    }`,
  );
}

/** Boots with `run` as the init's command; resolves with the console text and the VM. */
async function boot(run: string, cfg: Partial<VmConfig> = {}, timeoutMs = 120_000) {
  let out = "";
  const cmdline = `console=ttyS0 reboot=k panic=1 pci=off nomodule quiet denovm.run=${btoa(run)}`;
  const vm = await Vmm.create({ kernel: kernel!, initrd: initrd!, memMiB: 256, cmdline, ...cfg }, {
    output: (b) => (out += new TextDecoder().decode(b)),
  });
  vm.start();
  let timer: ReturnType<typeof setTimeout> | undefined;
  const r = await Promise.race([
    vm.whenExit(),
    new Promise<{ kind: "timeout" }>((
      res,
    ) => (timer = setTimeout(() => res({ kind: "timeout" }), timeoutMs))),
  ]);
  clearTimeout(timer);
  vm.serial.drain();
  return { vm, out, r };
}

async function done(vm: VmmT) {
  await vm.stop();
}

Deno.test({
  name: "linux: boots to the init marker (1 vCPU) and powers off through the i8042",
  ignore,
  async fn() {
    const { vm, out, r } = await boot("echo hello-from-linux; uname -r");
    try {
      assertEquals(r.kind, "reset", out.slice(-3000));
      assertStringIncludes(out, "denovm-init: up");
      assertStringIncludes(out, "hello-from-linux");
      assert(vm.bootMarkerMs !== undefined, "the init wrote the boot marker");
      console.error(`linux boot_to_init_ms ${vm.bootMarkerMs!.toFixed(0)}`);
    } finally {
      await done(vm);
    }
  },
});

Deno.test({
  name: "linux: 2 vCPUs come up from the MP table",
  ignore,
  async fn() {
    const { vm, out, r } = await boot("echo cpus=$(grep -c ^processor /proc/cpuinfo)", {
      vcpus: 2,
    });
    try {
      assertEquals(r.kind, "reset", out.slice(-3000));
      assertStringIncludes(out, "cpus=2");
    } finally {
      await done(vm);
    }
  },
});

Deno.test({
  name: "linux: virtio-blk read and write with the guest's own driver",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const img = new Uint8Array(1 << 20);
      img.set(new TextEncoder().encode("host-data-0123"), 0);
      await Deno.writeFile(`${dir}/d.img`, img);
      const run =
        "echo read=$(head -c 14 /dev/vda); printf guest-wrote | dd of=/dev/vda bs=512 seek=1 conv=notrunc,fsync 2>/dev/null; echo written";
      const { vm, out, r } = await boot(run, { disks: [{ path: `${dir}/d.img` }] });
      try {
        assertEquals(r.kind, "reset", out.slice(-3000));
        assertStringIncludes(out, "read=host-data-0123");
        assertStringIncludes(out, "written");
      } finally {
        await done(vm);
      }
      const after = await Deno.readFile(`${dir}/d.img`);
      assertEquals(new TextDecoder().decode(after.subarray(512, 523)), "guest-wrote");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "linux: /dev/hwrng reads from virtio-rng",
  ignore,
  async fn() {
    const { vm, out, r } = await boot(
      "echo rng=$(head -c 16 /dev/hwrng | od -An -tx1 | tr -d ' \\n')",
      { rng: true },
    );
    try {
      assertEquals(r.kind, "reset", out.slice(-3000));
      assert(/rng=[0-9a-f]{32}/.test(out), out.slice(-2000));
    } finally {
      await done(vm);
    }
  },
});

Deno.test({
  name: "linux: virtio-console carries guest output to the host",
  ignore,
  async fn() {
    const { vm, out, r } = await boot("echo via-hvc0 > /dev/hvc0; echo serial-done", {
      console: "virtio",
    });
    try {
      assertEquals(r.kind, "reset", out.slice(-3000));
      assertStringIncludes(out, "via-hvc0"); // both consoles reach the output
      assertStringIncludes(out, "serial-done");
    } finally {
      await done(vm);
    }
  },
});
