/**
 * The terminal side of an interactive console: stdin in raw mode feeds the guest, with an
 * escape to quit (Ctrl-A then x, as in QEMU; Ctrl-A Ctrl-A sends one Ctrl-A). Input is
 * read only while the guest keeps up (at most {@link TERMINAL_BACKLOG} bytes wait), so
 * piping a large file into stdin loses nothing and uses bounded memory.
 *
 * @module
 */

import { sleep } from "@denovm/sys/timer";

/** The escape key: Ctrl-A. */
export const ESCAPE = 0x01;
/** Bytes of input that may wait for the guest before stdin is no longer read. */
export const TERMINAL_BACKLOG = 64 * 1024;

/**
 * Splits typed bytes into what goes to the guest and the quit request.
 *
 * @example
 * ```ts
 * import { EscapeFilter } from "./terminal.ts";
 * const f = new EscapeFilter();
 * console.assert(f.feed(new Uint8Array([0x61, 0x01, 0x78])).quit === true);
 * ```
 */
export class EscapeFilter {
  #armed = false;

  /** The bytes for the guest, and whether the user asked to quit. */
  feed(bytes: Uint8Array): { data: Uint8Array; quit: boolean } {
    const out: number[] = [];
    for (const b of bytes) {
      if (this.#armed) {
        this.#armed = false;
        if (b === 0x78 || b === 0x58) return { data: new Uint8Array(out), quit: true }; // x
        if (b === ESCAPE) out.push(ESCAPE);
        // Any other key after the escape is dropped (as QEMU does for unknown commands).
        continue;
      }
      if (b === ESCAPE) this.#armed = true;
      else out.push(b);
    }
    return { data: new Uint8Array(out), quit: false };
  }
}

/** Where terminal input goes. */
export interface TerminalSink {
  input(bytes: Uint8Array): void;
  /** Bytes still waiting for the guest. */
  readonly pendingInput: number;
}

/** Reads stdin (raw mode on a terminal) into `sink` until quit or end of input. */
export class Terminal {
  #stopped = false;
  #raw = false;
  #done: Promise<void>;

  constructor(
    readonly sink: TerminalSink,
    onQuit: () => void,
    readonly stdin: typeof Deno.stdin = Deno.stdin,
  ) {
    if (stdin.isTerminal()) {
      stdin.setRaw(true);
      this.#raw = true;
    }
    this.#done = this.#loop(onQuit);
  }

  async #loop(onQuit: () => void): Promise<void> {
    const filter = new EscapeFilter();
    const buf = new Uint8Array(4096);
    while (!this.#stopped) {
      while (this.sink.pendingInput > TERMINAL_BACKLOG && !this.#stopped) {
        await sleep(10);
      }
      let n: number | null;
      try {
        n = await this.stdin.read(buf);
      } catch {
        return;
      }
      if (n === null || this.#stopped) return;
      const { data, quit } = filter.feed(buf.subarray(0, n));
      if (data.byteLength) this.sink.input(data);
      if (quit) {
        onQuit();
        return;
      }
    }
  }

  /** Restores the terminal; a read in progress ends with the process. */
  close(): void {
    this.#stopped = true;
    if (this.#raw) {
      this.stdin.setRaw(false);
      this.#raw = false;
    }
  }

  /** Resolves when input ended or the user quit. */
  get done(): Promise<void> {
    return this.#done;
  }
}
