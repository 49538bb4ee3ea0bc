/**
 * A network namespace of the test's own, with a TAP device opened inside it, and a
 * host-side peer (a raw AF_PACKET socket in a Python helper) that sends and receives
 * Ethernet frames on that TAP. No IP traffic: frames use the local experimental EtherType
 * 0x88b5 and never leave the namespace.
 *
 * @module
 */

import { closeFd, O_RDONLY, openFile, setns } from "@denovm/sys";
import { Tap } from "../host/tap.ts";

const CLONE_NEWNET = 0x4000_0000;
/** The EtherType of test frames. */
export const TEST_ETHERTYPE = 0x88b5;

async function run(args: string[]): Promise<string> {
  const out = await new Deno.Command(args[0]!, {
    args: args.slice(1),
    stdout: "piped",
    stderr: "piped",
  })
    .output();
  if (!out.success) {
    throw new Error(`${args.join(" ")} failed: ${new TextDecoder().decode(out.stderr)}`);
  }
  return new TextDecoder().decode(out.stdout);
}

/** A namespace with a TAP in it. */
export class TestNetns {
  private constructor(readonly name: string, readonly tap: Tap) {}

  /** Creates the namespace and opens TAP `tapName` inside it (the fd stays usable here). */
  static async create(tapName = "dvm0"): Promise<TestNetns> {
    const name = `denovm-${Deno.pid}-${Math.floor(Math.random() * 1e6)}`;
    await run(["ip", "netns", "add", name]);
    let tap: Tap | undefined;
    try {
      const self = openFile("/proc/thread-self/ns/net", O_RDONLY);
      const ns = openFile(`/var/run/netns/${name}`, O_RDONLY);
      try {
        setns(ns, CLONE_NEWNET); // this thread only, just for the TUNSETIFF
        try {
          tap = Tap.open(tapName);
        } finally {
          setns(self, CLONE_NEWNET);
        }
      } finally {
        closeFd(ns);
        closeFd(self);
      }
      await run(["ip", "netns", "exec", name, "ip", "link", "set", tapName, "up"]);
      return new TestNetns(name, tap);
    } catch (e) {
      tap?.close();
      await run(["ip", "netns", "del", name]).catch(() => {});
      throw e;
    }
  }

  /**
   * Runs the host-side peer: it sends `send` frames (payloads) to the TAP, then collects
   * frames of {@link TEST_ETHERTYPE} for up to `listenMs` (or until `expect` arrived), and
   * resolves with their payloads.
   */
  async peer(
    send: string[],
    opts: { expect: number; listenMs?: number; count?: number } = { expect: 0 },
  ) {
    const script = `
import socket, sys, time, json
s = socket.socket(socket.AF_PACKET, socket.SOCK_RAW, socket.htons(${TEST_ETHERTYPE}))
s.bind((${JSON.stringify(this.tap.name)}, ${TEST_ETHERTYPE}))
s.settimeout(0.05)
src = bytes([2, 0, 0, 0, 0, 0x0a])
payloads = json.loads(sys.argv[1])
repeat = int(sys.argv[4])
t0 = time.time()
for _ in range(repeat):
    for p in payloads:
        s.send(b"\\xff" * 6 + src + bytes([${TEST_ETHERTYPE >> 8}, ${
      TEST_ETHERTYPE & 0xff
    }]) + p.encode())
sent_s = time.time() - t0
got = []
deadline = time.time() + int(sys.argv[2]) / 1000.0
while time.time() < deadline and len(got) < int(sys.argv[3]):
    try:
        f = s.recv(65536)
    except socket.timeout:
        continue
    if f[6:12] == src:
        continue
    got.append(f[14:].decode(errors="replace"))
print(json.dumps({"got": got, "sent_s": sent_s}))
`;
    const out = await run([
      "ip",
      "netns",
      "exec",
      this.name,
      "python3",
      "-c",
      script,
      JSON.stringify(send),
      String(opts.listenMs ?? 5000),
      String(opts.expect),
      String(opts.count ?? 1),
    ]);
    return JSON.parse(out) as { got: string[]; sent_s: number };
  }

  /** Closes the TAP and deletes the namespace. */
  async close(): Promise<void> {
    this.tap.close();
    await run(["ip", "netns", "del", this.name]).catch(() => {});
  }
}
