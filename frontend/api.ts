/**
 * The control API: HTTP/1.1 over a Unix socket (`--api-sock`), with Firecracker's
 * resources so existing orchestration habits carry over. Before `InstanceStart` the
 * machine is configured piece by piece; after it, the VM can be paused, resumed and
 * snapshotted; `snapshot/load` restores one. Every request body is validated: a bad one
 * gets 400 with `{"fault_message": ...}`, never a crash. The socket is owner-only.
 *
 * Resources: GET /, GET|PUT /machine-config, PUT /boot-source, PUT /drives/{id},
 * PUT /network-interfaces/{id}, PUT /vsock, PUT /entropy, PUT /actions
 * (InstanceStart, SendCtrlAltDel), PATCH /vm (Paused, Resumed), PUT /snapshot/create,
 * PUT /snapshot/load; ours: PUT /admin-vq (a management device and its disks), and on a
 * running VM GET|PUT /admin-devices and DELETE /admin-devices/{id} (virtual devices).
 *
 * @module
 */

import { parseConfig, type VmConfig } from "../vmm/config.ts";
import { removeStaleSocket } from "../host/unix_socket.ts";
import { type RealModeImage, Vmm } from "../vmm/vmm.ts";
import type { Logger } from "../vmm/log.ts";
import { watchTimings } from "./run.ts";

class BadRequest extends Error {}

type Json = Record<string, unknown>;

/** The largest request body accepted, in bytes. */
const MAX_BODY = 1 << 20;

/**
 * The request body as text, read with a byte cap: a larger declared Content-Length is
 * refused before reading, and a stream that goes past the cap is cancelled there.
 */
async function readBody(req: Request, max: number): Promise<string> {
  const declared = Number(req.headers.get("content-length") ?? "0");
  if (declared > max) throw new BadRequest("request body over 1 MiB");
  if (!req.body) return "";
  const reader = req.body.getReader();
  const parts: Uint8Array[] = [];
  let n = 0;
  for (;;) {
    const { done, value } = await reader.read();
    if (done) break;
    n += value.byteLength;
    if (n > max) {
      await reader.cancel().catch(() => {});
      throw new BadRequest("request body over 1 MiB");
    }
    parts.push(value);
  }
  const all = new Uint8Array(n);
  let o = 0;
  for (const p of parts) {
    all.set(p, o);
    o += p.byteLength;
  }
  return new TextDecoder().decode(all);
}

function obj(body: unknown, keys: string[], required: string[] = []): Json {
  if (typeof body !== "object" || body === null || Array.isArray(body)) {
    throw new BadRequest("expected a JSON object");
  }
  for (const k of Object.keys(body)) {
    if (!keys.includes(k)) throw new BadRequest(`unknown field '${k}'`);
  }
  for (const k of required) if (!(k in body)) throw new BadRequest(`missing field '${k}'`);
  return body as Json;
}

function bool(v: unknown, name: string): boolean {
  if (typeof v !== "boolean") throw new BadRequest(`'${name}' must be true or false`);
  return v;
}

function str(v: unknown, name: string): string {
  if (typeof v !== "string" || v === "") {
    throw new BadRequest(`'${name}' must be a non-empty string`);
  }
  return v;
}

/** Options of {@link ApiServer}. */
export interface ApiOptions {
  /** Console output of the VM. */
  output?: (bytes: Uint8Array) => void;
  /** Boot this real-mode image instead of the demo when no boot source is set (tests). */
  image?: RealModeImage;
  /** The configuration to start from (CLI flags or a config file). */
  config?: VmConfig;
  /** Start the VM at once (as if `InstanceStart` came first). */
  start?: boolean;
  /** When set, `InstanceStart` with a kernel is refused with this reason (emulating hosts). */
  kernelRefusal?: string;
  /** Lifecycle logs (default: silent). */
  logger?: Logger;
  /** Print the boot timings (see `--timings`). */
  timings?: boolean;
  /** When the VMM's code finished loading (ms since process start), for the timings. */
  codeLoaded?: number;
  /** How guest vsock connects reach host ports (see `VmmOptions.vsockConnect`). */
  vsockConnect?: (port: number) => Promise<Deno.Conn | null>;
  /** When set, `PUT /vsock` is refused with this reason (the portable machine's API). */
  vsockRefusal?: string;
}

/** The control API server for one VM. */
export class ApiServer {
  /** The Unix socket the API is served on. */
  readonly path: string;
  #config: VmConfig = parseConfig({});
  #vm: Vmm | undefined;
  /** A VM is being created or loaded (the request awaits it): no second one meanwhile. */
  #starting = false;
  /** The iface_id of each entry of the config's `nets`, in order. */
  #ifaceIds: string[] = [];
  #server: Deno.HttpServer | undefined;
  #stopped: (() => void) | undefined;
  /** Resolves when the VM stopped (or the server was closed). */
  readonly done: Promise<number>;
  #resolveDone!: (code: number) => void;

  private constructor(path: string, readonly opts: ApiOptions) {
    this.path = path;
    this.done = new Promise((r) => (this.#resolveDone = r));
  }

  /** Listens on `path` (replacing a stale socket), owner-only. */
  static async listen(path: string, opts: ApiOptions = {}): Promise<ApiServer> {
    const s = new ApiServer(path, opts);
    // Only a stale socket is replaced: a file, a directory or a live socket is refused.
    await removeStaleSocket(path, "API");
    // Bind inside a private directory, then move the socket into place: no moment where
    // anyone else could connect to it.
    const dir = await Deno.makeTempDir({ prefix: "denovm-api-" });
    const tmp = `${dir}/api.sock`;
    try {
      await Deno.chmod(dir, 0o700);
      const ready = Promise.withResolvers<void>();
      s.#server = Deno.serve(
        { path: tmp, onListen: () => ready.resolve() },
        (req) => s.#handle(req),
      );
      await ready.promise;
      await Deno.chmod(tmp, 0o600);
    } catch (e) {
      await s.#server?.shutdown();
      await Deno.remove(dir, { recursive: true }).catch(() => {});
      throw e;
    }
    // Configured to boot at once: start before the socket appears, so the first request
    // already sees a running VM.
    if (opts.config) s.#config = opts.config;
    if (opts.start) {
      try {
        s.#boot();
        s.#start(await Vmm.create(s.#config, s.#vmmOptions()));
      } catch (e) {
        await s.#vm?.stop();
        await s.#server.shutdown();
        await Deno.remove(dir, { recursive: true });
        throw e;
      }
    }
    await Deno.rename(tmp, path);
    await Deno.remove(dir);
    return s;
  }

  /** The configuration so far (what InstanceStart would boot). */
  get config(): VmConfig {
    return this.#config;
  }

  /** The VM, once started or loaded. */
  get vm(): Vmm | undefined {
    return this.#vm;
  }

  async #handle(req: Request): Promise<Response> {
    const url = new URL(req.url);
    let body: unknown = undefined;
    try {
      if (req.method === "PUT" || req.method === "PATCH") {
        const text = await readBody(req, MAX_BODY);
        try {
          body = text ? JSON.parse(text) : {};
        } catch (e) {
          throw new BadRequest(`body is not JSON: ${(e as Error).message}`);
        }
      }
      return await this.#route(req.method, url.pathname, body);
    } catch (e) {
      const status = e instanceof BadRequest ? 400 : 500;
      return json(status, { fault_message: e instanceof Error ? e.message : String(e) });
    }
  }

  #preBoot(what: string): void {
    if (this.#vm || this.#starting) {
      throw new BadRequest(`${what} is only allowed before InstanceStart`);
    }
  }

  /** Runs `create` as the one start in progress; a concurrent start is refused. */
  async #startOnce(create: () => Promise<Vmm>, run = true): Promise<void> {
    this.#starting = true;
    try {
      this.#start(await create(), run);
    } finally {
      this.#starting = false;
    }
  }

  async #route(method: string, path: string, body: unknown): Promise<Response> {
    const parts = path.split("/").filter(Boolean);
    const only = (...m: string[]) => {
      if (!m.includes(method)) throw new MethodNotAllowed(`${method} is not allowed on ${path}`);
    };
    try {
      switch (parts[0] ?? "") {
        case "":
          only("GET");
          return json(200, {
            id: "denovm",
            state: !this.#vm ? "Not started" : this.#vm.state === "paused" ? "Paused" : "Running",
            vmm_version: "0.1.0",
            app_name: "denovm",
          });
        case "machine-config":
          if (method === "GET") {
            return json(200, {
              vcpu_count: this.#config.vcpus,
              mem_size_mib: this.#config.memMiB,
              acpi: this.#config.acpi ?? true,
            });
          }
          only("PUT", "PATCH");
          this.#preBoot("machine-config");
          {
            const b = obj(body, [
              "vcpu_count",
              "mem_size_mib",
              "smt",
              "track_dirty_pages",
              "acpi",
            ]);
            if (b.smt !== undefined && bool(b.smt, "smt")) {
              throw new BadRequest("'smt' true is not supported (vCPUs are single-threaded cores)");
            }
            if (b.track_dirty_pages !== undefined) bool(b.track_dirty_pages, "track_dirty_pages");
            this.#set({
              ...(b.vcpu_count !== undefined ? { vcpus: b.vcpu_count } : {}),
              ...(b.mem_size_mib !== undefined ? { memMiB: b.mem_size_mib } : {}),
              ...(b.acpi !== undefined ? { acpi: bool(b.acpi, "acpi") } : {}),
            });
          }
          return noContent();
        case "boot-source": {
          only("PUT");
          this.#preBoot("boot-source");
          const b = obj(body, ["kernel_image_path", "initrd_path", "boot_args"], [
            "kernel_image_path",
          ]);
          this.#set({
            kernel: str(b.kernel_image_path, "kernel_image_path"),
            ...(b.initrd_path !== undefined ? { initrd: str(b.initrd_path, "initrd_path") } : {}),
            ...(b.boot_args !== undefined ? { cmdline: b.boot_args } : {}),
          });
          return noContent();
        }
        case "drives": {
          only("PUT");
          this.#preBoot("drives");
          const id = str(parts[1], "drive_id");
          const b = obj(body, ["drive_id", "path_on_host", "is_read_only", "is_root_device"], [
            "drive_id",
            "path_on_host",
          ]);
          if (b.drive_id !== id) {
            throw new BadRequest(`drive_id '${String(b.drive_id)}' does not match the path`);
          }
          const disk = {
            path: str(b.path_on_host, "path_on_host"),
            id,
            ...(b.is_read_only !== undefined ? { readOnly: b.is_read_only } : {}),
          };
          const disks = this.#config.disks.filter((d) => d.id !== id);
          this.#set({ disks: [...disks, disk] });
          return noContent();
        }
        case "network-interfaces": {
          only("PUT");
          this.#preBoot("network-interfaces");
          const id = str(parts[1], "iface_id");
          const b = obj(body, ["iface_id", "host_dev_name", "guest_mac"], [
            "iface_id",
            "host_dev_name",
          ]);
          if (b.iface_id !== id) {
            throw new BadRequest(`iface_id '${String(b.iface_id)}' does not match the path`);
          }
          const net = {
            tap: str(b.host_dev_name, "host_dev_name"),
            ...(b.guest_mac !== undefined ? { mac: b.guest_mac } : {}),
          };
          // A second PUT of the same iface_id replaces that interface (Firecracker's way).
          const at = this.#ifaceIds.indexOf(id);
          const nets: unknown[] = [...this.#config.nets];
          if (at >= 0) nets[at] = net;
          else nets.push(net);
          this.#set({ nets });
          if (at < 0) this.#ifaceIds.push(id);
          return noContent();
        }
        case "vsock": {
          only("PUT");
          this.#preBoot("vsock");
          if (this.opts.vsockRefusal) throw new BadRequest(this.opts.vsockRefusal);
          const b = obj(body, ["guest_cid", "uds_path", "vsock_id"], ["guest_cid", "uds_path"]);
          this.#set({ vsock: { cid: b.guest_cid, path: b.uds_path } });
          return noContent();
        }
        case "admin-vq": {
          // The management device and its disks (before InstanceStart).
          only("PUT");
          this.#preBoot("admin-vq");
          const b = obj(body, ["disks"]);
          if (b.disks !== undefined && !Array.isArray(b.disks)) {
            throw new BadRequest("'disks' must be an array");
          }
          const disks = ((b.disks ?? []) as unknown[]).map((d, i) => {
            const x = obj(d, ["path_on_host", "is_read_only"], ["path_on_host"]);
            return {
              path: str(x.path_on_host, `disks[${i}].path_on_host`),
              ...(x.is_read_only !== undefined
                ? { readOnly: bool(x.is_read_only, `disks[${i}].is_read_only`) }
                : {}),
            };
          });
          this.#set({ admin: { disks } });
          return noContent();
        }
        case "admin-devices": {
          // Virtual devices on a running VM's management device, from the host side.
          const vm = this.#running();
          if (parts.length === 1 && method === "GET") return json(200, vm.adminDevices);
          if (parts.length === 1) {
            only("PUT");
            const b = obj(body, ["type", "disk"], ["type"]);
            if (b.type !== "rng" && b.type !== "console" && b.type !== "blk") {
              throw new BadRequest("'type' must be 'rng', 'console' or 'blk'");
            }
            if ((b.type === "blk") !== (b.disk !== undefined)) {
              throw new BadRequest("'disk' (an index into the admin disks) goes with type 'blk'");
            }
            if (
              b.disk !== undefined &&
              (typeof b.disk !== "number" || !Number.isInteger(b.disk) || b.disk < 0 ||
                b.disk > 0xffff_ffff)
            ) {
              throw new BadRequest("'disk' must be an index");
            }
            try {
              return json(
                200,
                vm.createAdminDevice(
                  b.type === "blk" ? { type: "blk", disk: b.disk as number } : { type: b.type },
                ),
              );
            } catch (e) {
              throw new BadRequest((e as Error).message);
            }
          }
          only("DELETE");
          const id = Number(parts[1]);
          if (parts.length !== 2 || !Number.isSafeInteger(id) || id <= 0) return notFound(path);
          try {
            await vm.destroyAdminDevice(id);
          } catch (e) {
            throw new BadRequest((e as Error).message);
          }
          return noContent();
        }
        case "entropy":
          only("PUT");
          this.#preBoot("entropy");
          obj(body, ["rate_limiter"]);
          this.#set({ rng: true });
          return noContent();
        case "actions": {
          only("PUT");
          const b = obj(body, ["action_type"], ["action_type"]);
          if (b.action_type === "InstanceStart") {
            this.#preBoot("InstanceStart");
            this.#boot();
            await this.#startOnce(() => Vmm.create(this.#config, this.#vmmOptions()));
            return noContent();
          }
          if (b.action_type === "SendCtrlAltDel") {
            const vm = this.#running();
            await vm.machine.requestStop({ kind: "reset" });
            return noContent();
          }
          if (b.action_type === "FlushMetrics") return noContent();
          throw new BadRequest(`unknown action_type '${String(b.action_type)}'`);
        }
        case "vm": {
          only("PATCH");
          const b = obj(body, ["state"], ["state"]);
          const vm = this.#running();
          if (b.state === "Paused") await vm.pause();
          else if (b.state === "Resumed") vm.resume();
          else throw new BadRequest(`state must be 'Paused' or 'Resumed'`);
          return noContent();
        }
        case "snapshot": {
          only("PUT");
          if (parts[1] === "create") {
            const b = obj(body, ["snapshot_path", "mem_file_path", "snapshot_type", "version"], [
              "snapshot_path",
            ]);
            const vm = this.#running();
            if (vm.state !== "paused") {
              throw new BadRequest("the VM must be paused to take a snapshot");
            }
            const diff = b.snapshot_type === "Diff";
            if (b.snapshot_type !== undefined && b.snapshot_type !== "Full" && !diff) {
              throw new BadRequest("snapshot_type must be 'Full' or 'Diff'");
            }
            await vm.snapshot(str(b.snapshot_path, "snapshot_path"), { diff });
            return noContent();
          }
          if (parts[1] === "load") {
            this.#preBoot("snapshot/load");
            const b = obj(body, [
              "snapshot_path",
              "mem_backend",
              "mem_file_path",
              "resume_vm",
              "enable_diff_snapshots",
            ], ["snapshot_path"]);
            const snapshotPath = str(b.snapshot_path, "snapshot_path");
            if (b.resume_vm !== undefined) bool(b.resume_vm, "resume_vm");
            await this.#startOnce(async () => {
              try {
                return await Vmm.restore(snapshotPath, {
                  paused: b.resume_vm !== true,
                  ...(this.opts.output ? { output: this.opts.output } : {}),
                  ...(this.opts.logger ? { logger: this.opts.logger } : {}),
                  ...(this.opts.vsockConnect ? { vsockConnect: this.opts.vsockConnect } : {}),
                });
              } catch (e) {
                // A missing or damaged snapshot is the caller's input, not a VMM fault.
                throw new BadRequest((e as Error).message);
              }
            }, false);
            return noContent();
          }
          return notFound(path);
        }
        default:
          return notFound(path);
      }
    } catch (e) {
      if (e instanceof MethodNotAllowed) return json(405, { fault_message: e.message });
      throw e;
    }
  }

  /** Applies a partial config through the same validation as the config file. */
  #set(patch: Record<string, unknown>): void {
    try {
      this.#config = parseConfig({ ...this.#config, ...patch });
    } catch (e) {
      throw new BadRequest((e as Error).message);
    }
  }

  #vmmOptions() {
    return {
      ...(this.opts.output ? { output: this.opts.output } : {}),
      ...(this.opts.logger ? { logger: this.opts.logger } : {}),
      ...(this.opts.image && !this.#config.kernel ? { image: this.opts.image } : {}),
      ...(this.opts.vsockConnect ? { vsockConnect: this.opts.vsockConnect } : {}),
    };
  }

  #boot(): void {
    if (this.#config.kernel !== undefined && this.opts.kernelRefusal) {
      throw new BadRequest(this.opts.kernelRefusal);
    }
  }

  #running(): Vmm {
    if (!this.#vm) throw new BadRequest("the VM is not started");
    return this.#vm;
  }

  #start(vm: Vmm, run = true): void {
    this.#vm = vm;
    if (run) vm.start();
    const timings = this.opts.timings && this.opts.logger
      ? watchTimings(vm, this.opts.logger, this.opts.codeLoaded)
      : undefined;
    void vm.whenExit().then(async (r) => {
      timings?.();
      await vm.stop();
      this.#resolveDone(r.kind === "exit" ? r.code : r.kind === "error" ? 1 : 0);
    });
  }

  /** Stops the VM (if any) and the server, and removes the socket. */
  async close(): Promise<void> {
    await this.#vm?.stop();
    await this.#server?.shutdown();
    try {
      await Deno.remove(this.path);
    } catch {
      // gone already
    }
    this.#resolveDone(0);
    this.#stopped?.();
  }
}

class MethodNotAllowed extends Error {}

function json(status: number, body: unknown): Response {
  return new Response(JSON.stringify(body), {
    status,
    headers: { "content-type": "application/json" },
  });
}

function noContent(): Response {
  return new Response(null, { status: 204 });
}

function notFound(path: string): Response {
  return json(404, { fault_message: `no resource at ${path}` });
}
