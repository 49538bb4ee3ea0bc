import { assertEquals, assertThrows } from "@std/assert";
import {
  closeFd,
  EAGAIN,
  EINVAL,
  ENOSYS,
  EOPNOTSUPP,
  Epoll,
  EPOLLIN,
  eventfd,
  eventfdRead,
  eventfdWrite,
  fillIovecs,
  fsType,
  IOVEC_SIZE,
  MAP_ANONYMOUS,
  MAP_PRIVATE,
  mincore,
  mmap,
  munmap,
  O_RDONLY,
  O_RDWR,
  openFile,
  PAGE_SIZE,
  preadvNowait,
  preadvSync,
  PROT_READ,
  PROT_WRITE,
  pwritevNowait,
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

Deno.test("fillIovecs: each view's own address, across buffers and a mapped region, seen before or not", () => {
  const a = new Uint8Array(4096), b = new Uint8Array(100);
  const len = 1 << 16;
  const p = mmap(len, 3, 0x22); // PROT_READ|WRITE, MAP_PRIVATE|ANONYMOUS
  try {
    const m = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, len));
    const iov = new Uint8Array(8 * IOVEC_SIZE);
    const dv = new DataView(iov.buffer);
    const addr = (v: Uint8Array) => Number(Deno.UnsafePointer.value(Deno.UnsafePointer.of(v)));
    // Twice: the second time every buffer's base address comes from the lookup kept per buffer.
    for (let round = 0; round < 2; round++) {
      const views = [a.subarray(7), b, m.subarray(4096 + round), a.subarray(0, 1), m.subarray(9)];
      assertEquals(fillIovecs(iov, views), 5);
      views.forEach((v, i) => {
        assertEquals(Number(dv.getBigUint64(i * IOVEC_SIZE, true)), addr(v));
        assertEquals(Number(dv.getBigUint64(i * IOVEC_SIZE + 8, true)), v.byteLength);
      });
    }
  } finally {
    munmap(p, len);
  }
});

Deno.test("preadvNowait/pwritevNowait: served from the page cache, or an errno to fall back on", async () => {
  const path = await Deno.makeTempFile();
  try {
    const data = new Uint8Array(16384).map((_, i) => (i * 13) & 0xff);
    await Deno.writeFile(path, data); // just written: in the page cache
    const fd = openFile(path, O_RDWR);
    try {
      const x = new Uint8Array(5000), y = new Uint8Array(3000);
      const iov = new Uint8Array(2 * IOVEC_SIZE);
      const count = fillIovecs(iov, [x, y]);
      const n = preadvNowait(fd, iov, count, 1000);
      if (n < 0) {
        // A filesystem without RWF_NOWAIT reads (e.g. overlayfs on Linux 6.1; EINVAL or ENOSYS
        // from older kernels and libcs): the caller goes off-thread; nothing was read.
        assertEquals([-EOPNOTSUPP, -EINVAL, -ENOSYS].includes(n), true, `errno ${-n}`);
        assertEquals(x.every((v) => v === 0), true);
      } else {
        assertEquals(n, 8000);
        assertEquals(x, data.subarray(1000, 6000));
        assertEquals(y, data.subarray(6000, 9000));
        assertEquals(preadvNowait(fd, iov, count, 16384), 0); // end of file
      }
      x.fill(0xab);
      y.fill(0xcd);
      const w = pwritevNowait(fd, iov, count, 0);
      // Buffered writes without waiting: many filesystems refuse them (ext4: EOPNOTSUPP).
      if (w < 0) {
        // EINVAL where the kernel checks the flag first; ENOSYS without preadv2 in libc.
        assertEquals([-EOPNOTSUPP, -EAGAIN, -EINVAL, -ENOSYS].includes(w), true, `errno ${-w}`);
      } else {
        assertEquals(w, 8000);
        const back = await Deno.readFile(path);
        assertEquals(back.subarray(0, 5000).every((v) => v === 0xab), true);
        assertEquals(back.subarray(5000, 8000).every((v) => v === 0xcd), true);
      }
      assertThrows(() => preadvNowait(fd, iov, 3, 0), RangeError);
      assertThrows(() => pwritevNowait(fd, iov, 0, 0), RangeError);
    } finally {
      closeFd(fd);
    }
  } finally {
    await Deno.remove(path);
  }
});

Deno.test("mincore reports touched pages; preadvSync reads on this thread; fsType", async () => {
  // Anonymous memory: a page is in memory once touched.
  const len = 4 * PAGE_SIZE;
  const p = mmap(len, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS);
  try {
    const base = Number(Deno.UnsafePointer.value(p));
    new Deno.UnsafePointerView(p).getUint8(0); // a read maps the zero page: in memory too
    const view = new Uint8Array(Deno.UnsafePointerView.getArrayBuffer(p, len));
    view[2 * PAGE_SIZE] = 1;
    const vec = new Uint8Array(4);
    assertEquals(mincore(base, len, vec), 0);
    assertEquals([...vec].map((v) => v & 1), [1, 0, 1, 0]);
    assertThrows(() => mincore(base + 1, PAGE_SIZE, vec), RangeError); // not page-aligned
    assertThrows(() => mincore(base, 5 * PAGE_SIZE, vec), RangeError); // vec too small
  } finally {
    munmap(p, len);
  }
  // Page 1 is never mapped (below vm.mmap_min_addr).
  assertEquals(mincore(PAGE_SIZE, PAGE_SIZE, new Uint8Array(1)), -12, "ENOMEM where not mapped");
  const path = await Deno.makeTempFile();
  try {
    const data = new Uint8Array(8192).map((_, i) => (i * 7) & 0xff);
    await Deno.writeFile(path, data);
    const fd = openFile(path, O_RDONLY);
    try {
      assertEquals(fsType(fd) > 0, true);
      const x = new Uint8Array(100), y = new Uint8Array(4000);
      const iov = new Uint8Array(2 * IOVEC_SIZE);
      const count = fillIovecs(iov, [x, y]);
      assertEquals(preadvSync(fd, iov, count, 10), 4100);
      assertEquals(x, data.subarray(10, 110));
      assertEquals(y, data.subarray(110, 4110));
      assertEquals(preadvSync(fd, iov, count, 6000), 2192, "short at the end of the file");
      assertEquals(preadvSync(fd, iov, count, 8192), 0);
      assertThrows(() => preadvSync(fd, iov, 3, 0), RangeError);
    } finally {
      closeFd(fd);
    }
    assertEquals(preadvSync(-1, new Uint8Array(IOVEC_SIZE), 1, 0), -9, "EBADF");
  } finally {
    await Deno.remove(path);
  }
});
