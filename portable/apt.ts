/**
 * Host tools the portable machine and the guest recipes need, from Debian's packages:
 * a shell helper, and an installer that says what it installs (or, where it cannot install,
 * which packages the user should install).
 *
 * @module
 */

/** A host tool is missing and cannot be installed from here. */
export class MissingToolError extends Error {
  override name = "MissingToolError";
}

/** Runs `cmd` with bash; returns its stdout; throws with the end of stderr on failure. */
export async function sh(cmd: string, opts: { cwd?: string } = {}): Promise<string> {
  const out = await new Deno.Command("bash", {
    args: ["-c", cmd],
    ...(opts.cwd ? { cwd: opts.cwd } : {}),
    stdin: "null",
    stdout: "piped",
    stderr: "piped",
  }).output();
  if (!out.success) {
    throw new Error(
      `${cmd} failed (${out.code}):\n${new TextDecoder().decode(out.stderr).slice(-4000)}`,
    );
  }
  return new TextDecoder().decode(out.stdout);
}

/** Whether the Debian package `name` is installed. */
export async function hasPackage(name: string): Promise<boolean> {
  const out = await sh(`dpkg-query -W -f='\${Status}' ${name} 2>/dev/null || true`);
  return out.includes("install ok installed");
}

let updated = false;

/** `apt-get update` once per process (apt-cache and apt-get download need the lists). */
export async function aptUpdate(): Promise<void> {
  if (updated) return;
  await sh("apt-get update -qq");
  updated = true;
}

function aptAvailable(): boolean {
  try {
    return Deno.statSync("/usr/bin/apt-get").isFile;
  } catch {
    return false;
  }
}

/**
 * Installs the Debian packages of `pkgs` that are missing (`--no-install-recommends`),
 * telling the user on stderr. Not root, or no apt-get: throws a {@link MissingToolError}
 * that names the packages to install.
 */
export async function ensurePackages(pkgs: string[], why: string): Promise<void> {
  const missing: string[] = [];
  for (const p of pkgs) if (!await hasPackage(p)) missing.push(p);
  if (missing.length === 0) return;
  if (!aptAvailable() || Deno.uid?.() !== 0) {
    throw new MissingToolError(
      `${why} needs the Debian packages ${missing.join(", ")}; install them (as root: ` +
        `apt-get install --no-install-recommends ${missing.join(" ")}) and run again`,
    );
  }
  console.error(`denovm: installing ${missing.join(" ")} (${why}; once)`);
  await aptUpdate();
  await sh(
    `DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends ${
      missing.join(" ")
    }`,
  );
}
