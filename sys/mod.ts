/**
 * `@denovm/sys`: the system calls denovm makes through Deno FFI (libc), with errors that
 * keep the errno name: files and positional I/O (also off the calling thread), memory maps,
 * eventfd, epoll, signals, namespaces and the TUN ioctls; and timers that leave Deno's Node
 * timers unloaded (`timer.ts`, also as `@denovm/sys/timer`, which opens no libc: layers with
 * no FFI of their own take them from there). The KVM package builds on it.
 *
 * ```ts ignore
 * import { eventfd, eventfdRead, eventfdWrite } from "@denovm/sys";
 * const fd = eventfd();
 * eventfdWrite(fd);
 * console.log(eventfdRead(fd)); // 1n
 * ```
 *
 * @module
 */

export * from "./libc.ts";
export * from "./tun.ts";
export { errnoName } from "./errno.ts";
export { after, every, sleep, type Timer, within } from "./timer.ts";
