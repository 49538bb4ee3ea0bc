/**
 * The Linux guest suite: the recipe kernel and initramfs (DENOVM_KERNEL, DENOVM_INITRD)
 * booted under our VMM. Needs KVM with hardware virtualization: it runs inside the nested
 * lane (`deno task test:linux`), or directly on such a host. Skipped (with a reason)
 * where the host only emulates, or when the files are not given.
 */

import { assert, assertEquals, assertStringIncludes } from "@std/assert";
import { checkHost } from "../../vstate/host.ts";
import { Vmm, type Vmm as VmmT } from "../../vmm/vmm.ts";
import type { VmConfig } from "../../vmm/config.ts";
import { sleep } from "@denovm/sys/timer";

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
  name: "linux: the guest's clock is the host's, read from the CMOS RTC by its driver",
  ignore,
  async fn() {
    const before = Math.floor(Date.now() / 1000);
    const { vm, out, r } = await boot(
      "echo rtc-name $(cat /sys/class/rtc/rtc0/name); echo guest-now $(date -u +%s)",
    );
    try {
      assertEquals(r.kind, "reset", out.slice(-3000));
      assertStringIncludes(out, "rtc-name rtc_cmos");
      const now = Number(/guest-now (\d+)/.exec(out)?.[1]);
      const after = Math.ceil(Date.now() / 1000);
      assert(now >= before - 2 && now <= after + 2, `guest ${now}, host ${before}..${after}`);
      assert(!/rtc.*(error|fail|timed out)/i.test(out), out.slice(-3000));
    } finally {
      await done(vm);
    }
  },
});

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
  name: "linux: the default command line, with ACPI and without: the i8042 and the RTC come up",
  ignore,
  async fn() {
    for (const acpi of [true, false]) {
      let out = "";
      const vm = await Vmm.create({ kernel: kernel!, initrd: initrd!, memMiB: 256, acpi }, {
        output: (b) => (out += new TextDecoder().decode(b)),
      });
      try {
        assertEquals(vm.boot!.cmdline.includes("i8042.nopnp"), !acpi, vm.boot!.cmdline);
        vm.start();
        await vm.console.waitFor("denovm-init: up", { timeout: 120_000 });
        // (Under hardware-reduced ACPI, Linux numbers GSI 1 as some higher IRQ.)
        assert(/serio: i8042 KBD port at 0x60,0x64 irq \d+/.test(out), `acpi ${acpi}: ${out}`);
        assertStringIncludes(out, "rtc_cmos", `acpi ${acpi}`);
        assert(!/i8042.*(fail|error)|No controller found/i.test(out), out.slice(-3000));
      } finally {
        await done(vm);
      }
    }
  },
});

/** Each virtio device the guest found: `virtio <device id> <driver>` lines. */
const LIST_VIRTIO = "for d in /sys/bus/virtio/devices/*; do " +
  'echo "virtio $(cat $d/device) $(basename $(readlink $d/driver))"; done';

Deno.test({
  name: "linux: --no-acpi: 2 vCPUs come up from the MP table, the devices from the command line",
  ignore,
  async fn() {
    // Four virtio devices: the fourth's line is 9, not the RTC's 8 (rtc_cmos takes IRQ 8
    // unshared under the MP table and failed to probe when a virtio device held it).
    const dir = await Deno.makeTempDir();
    await Deno.writeFile(`${dir}/a.img`, new Uint8Array(1 << 20));
    await Deno.writeFile(`${dir}/b.img`, new Uint8Array(1 << 20));
    const { vm, out, r } = await boot(
      `echo cpus=$(grep -c ^processor /proc/cpuinfo); ${LIST_VIRTIO}; ls /sys/firmware/acpi 2>&1; ` +
        "echo rtc=$(cat /sys/class/rtc/rtc0/name)",
      {
        vcpus: 2,
        rng: true,
        acpi: false,
        console: "virtio",
        disks: [{ path: `${dir}/a.img` }, { path: `${dir}/b.img` }],
      },
    );
    await Deno.remove(dir, { recursive: true });
    try {
      assertEquals(r.kind, "reset", out.slice(-3000));
      assertStringIncludes(out, "cpus=2");
      assertStringIncludes(vm.boot!.cmdline, "virtio_mmio.device=4K@0xd0000000:5");
      assertStringIncludes(vm.boot!.cmdline, "virtio_mmio.device=4K@0xd0003000:9");
      assertStringIncludes(out, "virtio 0x0004 virtio_rng");
      assertEquals(out.match(/virtio 0x0002 virtio_blk/g)?.length, 2, out.slice(-3000));
      assertStringIncludes(out, "virtio 0x0003 virtio_console");
      assertStringIncludes(out, "rtc=rtc_cmos");
      assertEquals(vm.generationId, undefined);
      assertStringIncludes(
        out,
        "/sys/firmware/acpi: No such file",
        "no ACPI tables for the kernel",
      );
    } finally {
      await done(vm);
    }
  },
});

Deno.test({
  name:
    "linux: ACPI (the default): 2 vCPUs from the MADT, the devices from the DSDT, poweroff through S5",
  ignore,
  async fn() {
    const { vm, out, r } = await boot(
      `echo cpus=$(grep -c ^processor /proc/cpuinfo); ${LIST_VIRTIO}; ` +
        "echo vmgenid=$(ls /sys/bus/acpi/drivers/vmgenid | grep -c :); poweroff -f",
      { vcpus: 2, rng: true },
    );
    try {
      assertEquals(r, { kind: "shutdown", vcpu: -1 }, out.slice(-3000));
      assertStringIncludes(out, "cpus=2");
      assert(!vm.boot!.cmdline.includes("virtio_mmio.device="), vm.boot!.cmdline);
      assertStringIncludes(out, "virtio 0x0004 virtio_rng");
      assertStringIncludes(out, "vmgenid=1", "the generation ID driver bound to our device");
    } finally {
      await done(vm);
    }
  },
});

Deno.test({
  name:
    "linux: two clones restored from one snapshot get new generation IDs, reseed, and read different random bytes",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      // Blocked on a console read when snapshotted; after the restore, waits until the kernel
      // says it reseeded for a VM fork (our GED -> Notify -> vmgenid), then reads.
      const run = "echo ready; read go; " +
        "for i in $(seq 100); do dmesg | grep -q 'virtual machine fork' && break; sleep 0.1; done; " +
        "echo reseeded=$(dmesg | grep -c 'virtual machine fork'); " +
        "echo random=$(head -c 16 /dev/urandom | od -An -tx1 | tr -d ' \\n'); echo clone-done";
      let out = "";
      const vm = await Vmm.create({
        kernel: kernel!,
        initrd: initrd!,
        memMiB: 256,
        cmdline: `console=ttyS0 reboot=k panic=1 pci=off nomodule quiet denovm.run=${btoa(run)}`,
      }, { output: (b) => (out += new TextDecoder().decode(b)) });
      const ids = [vm.generationId];
      try {
        vm.start();
        await vm.console.waitFor("ready", { timeout: 120_000 });
        await vm.pause();
        await vm.snapshot(`${dir}/snap`);
      } finally {
        await done(vm);
      }
      const seen: string[] = [];
      for (let i = 0; i < 2; i++) {
        let text = "";
        const clone = await Vmm.restore(`${dir}/snap`, {
          output: (b) => (text += new TextDecoder().decode(b)),
        });
        try {
          ids.push(clone.generationId);
          clone.console.write("\n");
          const r = await Promise.race([
            clone.whenExit(),
            new Promise<"late">((res) => setTimeout(() => res("late"), 60_000)),
          ]);
          clone.serial.drain();
          assertEquals(r !== "late" && r.kind, "reset", text.slice(-2000));
          assertStringIncludes(text, "reseeded=1", "the kernel reseeded once for the fork");
          const m = /random=([0-9a-f]{32})/.exec(text);
          if (!m) throw new Error(`no random bytes read: ${text.slice(-2000)}`);
          seen.push(m[1]!);
        } finally {
          await done(clone);
        }
      }
      assertEquals(new Set(ids).size, 3, `generation IDs: ${ids}`);
      assert(seen[0] !== seen[1], `both clones read ${seen[0]}`);
    } finally {
      await Deno.remove(dir, { recursive: true });
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

Deno.test({
  name: "linux: mounts an ext2 virtio-blk disk and reads a file from it",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      await Deno.mkdir(`${dir}/root`);
      await Deno.writeTextFile(`${dir}/root/hello.txt`, "a file on a virtio-blk disk\n");
      const mk = await new Deno.Command("mke2fs", {
        args: ["-q", "-t", "ext2", "-d", `${dir}/root`, `${dir}/fs.img`, "4M"],
        stdout: "null",
        stderr: "piped",
      }).output();
      assert(mk.success, new TextDecoder().decode(mk.stderr));
      const run = "mkdir -p /mnt && mount -t ext2 -o ro /dev/vda /mnt && cat /mnt/hello.txt";
      const { vm, out, r } = await boot(run, {
        disks: [{ path: `${dir}/fs.img`, readOnly: true }],
      });
      try {
        assertEquals(r.kind, "reset", out.slice(-3000));
        assertStringIncludes(out, "a file on a virtio-blk disk");
      } finally {
        await done(vm);
      }
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "linux: virtio-net over a TAP: the guest pings the host side",
  ignore,
  async fn() {
    const { closeFd, O_RDONLY, openFile, setns } = await import("@denovm/sys");
    const sh = async (...args: string[]) => {
      const o = await new Deno.Command(args[0]!, { args: args.slice(1), stderr: "piped" }).output();
      assert(o.success, `${args.join(" ")}: ${new TextDecoder().decode(o.stderr)}`);
    };
    const ns = `denovm-lin-${Deno.pid}`;
    await sh("ip", "netns", "add", ns);
    let out = "";
    let vm: VmmT | undefined;
    try {
      const run = "ip link set eth0 up && ip addr add 10.231.0.2/24 dev eth0 && " +
        "for i in 1 2 3 4 5 6 7 8 9 10; do ping -c 1 -W 1 10.231.0.1 >/dev/null && break; done; " +
        "ping -c 3 -W 2 10.231.0.1";
      const cmdline = `console=ttyS0 reboot=k panic=1 pci=off nomodule quiet denovm.run=${
        btoa(run)
      }`;
      // The VMM creates its TAP in the namespace: this thread enters it for that moment.
      const self = openFile("/proc/thread-self/ns/net", O_RDONLY);
      const nsfd = openFile(`/var/run/netns/${ns}`, O_RDONLY);
      try {
        setns(nsfd, 0x4000_0000);
        try {
          vm = await Vmm.create({
            kernel: kernel!,
            initrd: initrd!,
            memMiB: 256,
            cmdline,
            nets: [{ tap: "dvmlin0" }],
          }, {
            output: (b) => (out += new TextDecoder().decode(b)),
          });
        } finally {
          setns(self, 0x4000_0000);
        }
      } finally {
        closeFd(nsfd);
        closeFd(self);
      }
      await sh("ip", "netns", "exec", ns, "ip", "link", "set", "dvmlin0", "up");
      await sh("ip", "netns", "exec", ns, "ip", "addr", "add", "10.231.0.1/24", "dev", "dvmlin0");
      vm.start();
      const r = await vm.whenExit();
      vm.serial.drain();
      assertEquals(r.kind, "reset", out.slice(-3000));
      assertStringIncludes(out, "3 packets received");
    } finally {
      if (vm) await done(vm);
      await sh("ip", "netns", "del", ns);
    }
  },
});

Deno.test({
  name: "linux: a running guest is paused, snapshotted, restored in a new process and goes on",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    try {
      const run =
        "i=0; while [ $i -lt 300 ]; do i=$((i+1)); echo tick $i; sleep 0.02; done; echo loop-done";
      let out = "";
      const cmdline = `console=ttyS0 reboot=k panic=1 pci=off nomodule quiet denovm.run=${
        btoa(run)
      }`;
      const vm = await Vmm.create({ kernel: kernel!, initrd: initrd!, memMiB: 256, cmdline }, {
        output: (b) => (out += new TextDecoder().decode(b)),
      });
      let saved: number;
      try {
        vm.start();
        for (let t = 0; t < 1200 && !/tick 40\b/.test(out); t++) {
          await sleep(100);
        }
        assertStringIncludes(out, "tick 40");
        await vm.pause();
        saved = Math.max(...[...out.matchAll(/tick (\d+)/g)].map((m) => Number(m[1])));
        await vm.snapshot(`${dir}/snap`);
      } finally {
        await done(vm);
      }
      const child = await new Deno.Command(Deno.execPath(), {
        args: ["run", "-A", new URL("./restore_child.ts", import.meta.url).pathname, `${dir}/snap`],
        stdout: "piped",
        stderr: "piped",
      }).output();
      const after = new TextDecoder().decode(child.stdout);
      assert(child.success, new TextDecoder().decode(child.stderr) + after.slice(-2000));
      const ticks = [...after.matchAll(/tick (\d+)/g)].map((m) => Number(m[1]));
      assert(ticks.length > 0, after.slice(-2000));
      assert(
        ticks[0]! > saved && ticks[0]! <= saved + 2,
        `resumed at tick ${ticks[0]} after ${saved}`,
      );
      assertStringIncludes(after, "tick 300");
      assertStringIncludes(after, "loop-done");
    } finally {
      await Deno.remove(dir, { recursive: true });
    }
  },
});

const vmlinux = Deno.env.get("DENOVM_VMLINUX");

Deno.test({
  name: "linux: the ELF vmlinux boots too (through PVH when it carries the note)",
  ignore: ignore || !vmlinux,
  async fn() {
    const { parseKernel } = await import("../../boot/kernel.ts");
    const k = parseKernel(await Deno.readFile(vmlinux!), vmlinux);
    let out = "";
    const cmdline = `console=ttyS0 reboot=k panic=1 pci=off nomodule quiet denovm.run=${
      btoa("echo elf-boot-ok")
    }`;
    const vm = await Vmm.create({ kernel: vmlinux!, initrd: initrd!, memMiB: 256, cmdline }, {
      output: (b) => (out += new TextDecoder().decode(b)),
    });
    try {
      assertEquals(vm.boot?.mode, k.pvhEntry !== undefined ? "pvh" : "64-bit");
      vm.start();
      const r = await vm.whenExit();
      vm.serial.drain();
      assertEquals(r.kind, "reset", out.slice(-3000));
      assertStringIncludes(out, "elf-boot-ok");
      console.error(`linux vmlinux boot mode: ${vm.boot?.mode}`);
    } finally {
      await done(vm);
    }
  },
});

/** Boots to the init's interactive shell (no denovm.run) and waits for the init line. */
async function bootShell(cfg: Partial<VmConfig>) {
  const cmdline = "console=ttyS0 reboot=k panic=1 pci=off nomodule quiet";
  const vm = await Vmm.create(
    { kernel: kernel!, initrd: initrd!, memMiB: 256, cmdline, ...cfg },
    { output: () => {} },
  );
  vm.start();
  await vm.console.waitFor("denovm-init: up", { timeout: 120_000 });
  return vm;
}

Deno.test({
  name:
    "linux: vm.exec runs commands through the guest agent over vsock; serial input reaches the shell",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    const vm = await bootShell({ vsock: { cid: 3, path: `${dir}/v.sock` } });
    try {
      const t0 = performance.now();
      const u = await vm.exec("uname -s; echo to-stderr >&2");
      console.error(`linux first vm.exec ${(performance.now() - t0).toFixed(0)} ms`);
      assertEquals([u.code, u.stdout, u.stderr], [0, "Linux\n", "to-stderr\n"]);
      const input = "x".repeat(200_000);
      const wc = await vm.exec("wc -c", { stdin: input });
      assertEquals(wc.stdout.trim(), "200000", "200 kB of stdin crossed vsock");
      assertEquals((await vm.exec("exit 7")).code, 7);
      const cpus = await vm.exec("grep -c ^processor /proc/cpuinfo");
      assertEquals(cpus.stdout.trim(), "1");
      // The serial console takes input: the init's shell runs what the host types.
      vm.console.write("echo sum=$((6*7))\n");
      await vm.console.waitFor("sum=42", { timeout: 30_000 });
    } finally {
      await done(vm);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "linux: the guest connects to a host Unix socket over vsock (half-close, reply)",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    const path = `${dir}/v.sock`;
    const listener = Deno.listen({ transport: "unix", path: `${path}_5000` });
    const served = (async () => {
      const c = await listener.accept();
      const got: number[] = [];
      const buf = new Uint8Array(4096);
      for (;;) {
        const n = await c.read(buf); // until the guest's SHUTDOWN_SEND (end of stream)
        if (n === null) break;
        got.push(...buf.subarray(0, n));
      }
      const text = new TextDecoder().decode(new Uint8Array(got));
      await c.write(new TextEncoder().encode(`host got ${text.length} bytes: ${text.trim()}\n`));
      c.close();
      return text;
    })();
    const vm = await bootShell({ vsock: { cid: 3, path } });
    try {
      const r = await vm.exec("echo from-the-guest | denovm-agent send 5000");
      assertEquals(r.code, 0, r.stderr);
      assertEquals(await served, "from-the-guest\n");
      assertEquals(r.stdout, "host got 15 bytes: from-the-guest\n");
      const refused = await vm.exec("echo x | denovm-agent send 5001");
      assertEquals(refused.code, 1, "nobody listens on host port 5001");
      assertStringIncludes(refused.stderr, "connect to host port 5001");
    } finally {
      listener.close();
      await done(vm);
      await Deno.remove(dir, { recursive: true });
    }
  },
});

Deno.test({
  name: "linux: virtio-console input reaches a guest reader of /dev/hvc0",
  ignore,
  async fn() {
    const dir = await Deno.makeTempDir();
    const vm = await bootShell({ console: "virtio", vsock: { cid: 3, path: `${dir}/v.sock` } });
    try {
      // The reader must have hvc0 open before input arrives (a closed tty drops it), so the
      // host repeats the line until the reader returns.
      const reading = vm.exec("head -n 1 /dev/hvc0", { timeout: 60_000 });
      let got = false;
      void reading.finally(() => (got = true));
      for (let i = 0; i < 100 && !got; i++) {
        vm.console.write("line-from-host\n");
        await sleep(300);
      }
      const r = await reading;
      assertEquals([r.code, r.stdout.trim()], [0, "line-from-host"]);
    } finally {
      await done(vm);
      await Deno.remove(dir, { recursive: true });
    }
  },
});
