/** Unix socket paths the VMM binds (the vsock host side, the control API). @module */

/**
 * Makes `path` free for a new Unix socket: nothing there, or a stale socket nobody listens
 * on (removed). A live socket, a regular file, a directory or anything else is refused with
 * an error naming it; the VMM never deletes a path it did not create.
 */
export async function removeStaleSocket(path: string, what: string): Promise<void> {
  let info: Deno.FileInfo;
  try {
    info = await Deno.lstat(path);
  } catch {
    return; // nothing there
  }
  if (!info.isSocket) {
    throw new Error(
      `Cannot create the ${what} socket ${path}: something that is not a socket is there (not removed)`,
    );
  }
  try {
    const c = await Deno.connect({ transport: "unix", path });
    c.close();
  } catch {
    await Deno.remove(path); // stale: nobody listens
    return;
  }
  throw new Error(`Cannot create the ${what} socket ${path}: another process listens on it`);
}
