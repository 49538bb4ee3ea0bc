/** A minimal HTTP/1.1 client over a Unix socket, for the control API tests. @module */

/** One HTTP/1.1 request over the Unix socket at `sock`. */
export async function apiCall(sock: string, method: string, path: string, body?: unknown | string) {
  const conn = await Deno.connect({ transport: "unix", path: sock });
  try {
    const payload = body === undefined
      ? ""
      : typeof body === "string"
      ? body
      : JSON.stringify(body);
    const req =
      `${method} ${path} HTTP/1.1\r\nHost: localhost\r\nContent-Type: application/json\r\n` +
      `Content-Length: ${
        new TextEncoder().encode(payload).byteLength
      }\r\nConnection: close\r\n\r\n${payload}`;
    await conn.write(new TextEncoder().encode(req));
    const chunks: Uint8Array[] = [];
    const buf = new Uint8Array(65536);
    for (;;) {
      const n = await conn.read(buf);
      if (n === null) break;
      chunks.push(buf.slice(0, n));
    }
    const text = new TextDecoder().decode(new Uint8Array(chunks.flatMap((c) => [...c])));
    const status = Number(/^HTTP\/1\.1 (\d+)/.exec(text)?.[1]);
    const raw = text.slice(text.indexOf("\r\n\r\n") + 4);
    let json: Record<string, unknown> | undefined;
    try {
      json = raw ? JSON.parse(raw) : undefined;
    } catch {
      json = undefined;
    }
    return { status, json };
  } finally {
    conn.close();
  }
}
