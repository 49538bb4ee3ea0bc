import { assertEquals, assertThrows } from "@std/assert";
import {
  closeFd,
  Epoll,
  EPOLLIN,
  eventfd,
  eventfdRead,
  eventfdWrite,
  fillIovecs,
  IOVEC_SIZE,
  mmap,
  O_RDONLY,
  openFile,
  SysError,
} from "./libc.ts";
import { errnoName } from "./errno.ts";

Deno.test("eventfd counts writes and reads back 0 when empty", () => {
  const fd = eventfd();
  eventfdWrite(fd, 2n);
  eventfdWrite(fd);
  assertEquals(eventfdRead(fd), 3n);
  assertEquals(eventfdRead(fd), 0n);
  closeFd(fd);
});

Deno.test("Epoll reports the tag of a ready eventfd and nothing after a drain", () => {
  using ep = new Epoll();
  const a = eventfd(), b = eventfd();
  ep.add(a, EPOLLIN, 1);
  ep.add(b, EPOLLIN, 2);
  assertEquals(ep.wait(0), []);
  eventfdWrite(b);
  assertEquals(ep.wait(0).map((e) => e.tag), [2]);
  eventfdRead(b);
  assertEquals(ep.wait(0), []);
  ep.remove(a);
  closeFd(a);
  closeFd(b);
});

Deno.test("libc failures raise SysError naming the call and the errno", () => {
  const e = assertThrows(() => openFile("/nonexistent/denovm", O_RDONLY), SysError);
  assertEquals(e.code, "ENOENT");
  assertEquals(e.message, "open failed: ENOENT (/nonexistent/denovm)");
  assertThrows(() => mmap(0, 3, 0x22), SysError, "mmap failed: EINVAL"); // length 0
  assertEquals(errnoName(17), "EEXIST");
  assertEquals(errnoName(9999), "errno 9999");
});

Deno.test("fillIovecs writes base+skip and length per buffer, and stops when the array is full", () => {
  const ram = new Uint8Array(8192);
  const bufs = [ram.subarray(100, 612), ram.subarray(4096, 8192), ram.subarray(0, 1)];
  const iov = new Uint8Array(2 * IOVEC_SIZE);
  assertEquals(fillIovecs(iov, bufs, 0, 12), 2); // room for two
  const dv = new DataView(iov.buffer);
  const base = Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(ram)));
  assertEquals(Number(dv.getBigUint64(0, true)), base + 112);
  assertEquals(Number(dv.getBigUint64(8, true)), 500);
  assertEquals(Number(dv.getBigUint64(16, true)), base + 4096);
  assertEquals(Number(dv.getBigUint64(24, true)), 4096);
  assertEquals(fillIovecs(iov, bufs, 2), 1);
  assertEquals(Number(dv.getBigUint64(0, true)), base);
  assertEquals(Number(dv.getBigUint64(8, true)), 1);
  // A skip past its buffer would make a huge length: refused.
  assertThrows(() => fillIovecs(iov, bufs, 0, 513), RangeError);
  assertThrows(() => fillIovecs(iov, bufs, 0, -1), RangeError);
  assertThrows(() => fillIovecs(iov, bufs, 4), RangeError);
  assertEquals(fillIovecs(iov, bufs, 3), 0);
});
