import { assertEquals, assertThrows } from "@std/assert";
import {
  closeFd,
  Epoll,
  EPOLLIN,
  eventfd,
  eventfdRead,
  eventfdWrite,
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
