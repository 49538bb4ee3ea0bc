/**
 * The scripting view of a VM's console: wait for output matching a pattern, write input,
 * iterate over lines. Output is kept (the last {@link CONSOLE_KEEP} characters) so a
 * waitFor() that starts after the text arrived still sees it.
 *
 * @module
 */

import { after, type Timer } from "@denovm/sys/timer";

/** Characters of console output kept for waitFor(). */
export const CONSOLE_KEEP = 1 << 20;

/** Options of {@link Console.waitFor}. */
export interface WaitOptions {
  /** Reject after this many ms (default 30000; `Infinity`: wait as long as the VM runs). */
  timeout?: number;
}

/** A VM's console as a script sees it. */
export class Console {
  #text = "";
  /** Offset in #text where the next waitFor() starts looking. */
  #from = 0;
  #decoder = new TextDecoder();
  #waiters: (() => void)[] = [];
  #lineWaiters: (() => void)[] = [];
  #lines: string[] = [];
  #partial = "";
  #closed = false;

  /** A console whose {@link Console.write} goes to `input` (the guest's console input). */
  constructor(readonly input: (bytes: Uint8Array) => void) {}

  /** Called by the VMM with console output. */
  push(bytes: Uint8Array): void {
    const t = this.#decoder.decode(bytes, { stream: true });
    if (!t) return;
    this.#text += t;
    if (this.#text.length > CONSOLE_KEEP) {
      const drop = this.#text.length - CONSOLE_KEEP;
      this.#text = this.#text.slice(drop);
      this.#from = Math.max(0, this.#from - drop);
    }
    const parts = (this.#partial + t).split("\n");
    this.#partial = parts.pop()!;
    for (const l of parts) this.#lines.push(l.replace(/\r$/, ""));
    for (const w of this.#waiters.splice(0)) w();
    for (const w of this.#lineWaiters.splice(0)) w();
  }

  /** Everything kept so far. */
  get text(): string {
    return this.#text;
  }

  /** Writes to the guest's console input. */
  write(data: string | Uint8Array): void {
    this.input(typeof data === "string" ? new TextEncoder().encode(data) : data);
  }

  /**
   * Resolves with the first match of `pattern` in the output after the previous match (or
   * from the start); rejects after the timeout, or when the VM stops first.
   *
   * @example
   * ```ts ignore
   * await vm.console.waitFor(/login:|# $/, { timeout: 10_000 });
   * ```
   */
  waitFor(pattern: RegExp | string, opts: WaitOptions = {}): Promise<RegExpExecArray> {
    const re = typeof pattern === "string"
      ? new RegExp(pattern.replace(/[.*+?^${}()|[\]\\]/g, "\\$&"))
      : pattern;
    const flags = re.flags.replace("g", "").replace("y", "");
    const find = (): RegExpExecArray | null => {
      const start = this.#from;
      const m = new RegExp(re.source, flags).exec(this.#text.slice(start));
      if (m) {
        m.index += start; // an offset in Console.text
        this.#from = m.index + m[0].length;
      }
      return m;
    };
    const now = find();
    if (now) return Promise.resolve(now);
    if (this.#closed) {
      return Promise.reject(new Error(`The VM stopped before the console showed ${re}`));
    }
    const timeout = opts.timeout ?? 30_000;
    return new Promise((resolve, reject) => {
      let timer: Timer | undefined = undefined;
      const check = () => {
        const m = find();
        if (m) {
          timer?.cancel();
          resolve(m);
        } else if (this.#closed) {
          timer?.cancel();
          reject(new Error(`The VM stopped before the console showed ${re}`));
        } else this.#waiters.push(check);
      };
      timer = after(timeout, () => {
        this.#waiters = this.#waiters.filter((w) => w !== check);
        reject(new Error(`Timed out after ${timeout} ms waiting for ${re} on the console`));
      });
      this.#waiters.push(check);
    });
  }

  /** Each complete line of output from now on (without the newline), until the VM stops. */
  async *lines(): AsyncGenerator<string> {
    let i = this.#lines.length;
    for (;;) {
      while (i < this.#lines.length) yield this.#lines[i++]!;
      if (this.#closed) return;
      await new Promise<void>((r) => this.#lineWaiters.push(r));
      if (this.#lines.length > 10_000) {
        // Keep memory bounded: forget lines every reader has passed (readers only move on).
        const cut = Math.min(i, this.#lines.length - 1000);
        if (cut > 0) {
          this.#lines.splice(0, cut);
          i -= cut;
        }
      }
    }
  }

  /** The VM stopped: pending waits fail, line iterators end. */
  close(): void {
    this.#closed = true;
    for (const w of this.#waiters.splice(0)) w();
    for (const w of this.#lineWaiters.splice(0)) w();
  }
}
