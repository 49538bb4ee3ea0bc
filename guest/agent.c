/*
 * denovm-agent: the guest side of vm.exec, built static into the initramfs recipe.
 *
 *   denovm-agent                 listen on vsock port 1024 and serve exec requests
 *   denovm-agent --unix <path>   the same on a Unix socket (host-side tests)
 *   denovm-agent send <port>     connect to the host (CID 2) on <port>, copy stdin to it,
 *                                then copy what comes back to stdout (a vsock "cat")
 *
 * Exec protocol, one request per connection (all integers little-endian):
 *   request:  "DNX1" | u32 cmd_len | cmd bytes | u32 stdin_len | stdin bytes
 *   response: frames of u8 type | u32 len | payload
 *             type 1 = stdout bytes, 2 = stderr bytes, 3 = exit (payload: i32 status,
 *             the exit code or 128 + signal number), 4 = error (payload: a message)
 * The command runs as `/bin/sh -c cmd` in its own process group with stdin from a memfd;
 * if the host hangs up first, the group is killed.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <unistd.h>
#include <linux/vm_sockets.h>

#define AGENT_PORT 1024
#define MAX_CMD (64 * 1024)
#define MAX_STDIN (64 * 1024 * 1024)

static int read_full(int fd, void *buf, size_t n) {
  char *p = buf;
  while (n > 0) {
    ssize_t r = read(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int write_full(int fd, const void *buf, size_t n) {
  const char *p = buf;
  while (n > 0) {
    ssize_t r = write(fd, p, n);
    if (r < 0 && errno == EINTR) continue;
    if (r <= 0) return -1;
    p += r;
    n -= (size_t)r;
  }
  return 0;
}

static int frame(int fd, uint8_t type, const void *data, uint32_t len) {
  uint8_t head[5] = {type, len & 0xff, (len >> 8) & 0xff, (len >> 16) & 0xff, len >> 24};
  if (write_full(fd, head, 5) < 0) return -1;
  return write_full(fd, data, len);
}

static int error_frame(int fd, const char *msg) {
  return frame(fd, 4, msg, (uint32_t)strlen(msg));
}

static int read_u32(int fd, uint32_t *v) {
  uint8_t b[4];
  if (read_full(fd, b, 4) < 0) return -1;
  *v = (uint32_t)b[0] | (uint32_t)b[1] << 8 | (uint32_t)b[2] << 16 | (uint32_t)b[3] << 24;
  return 0;
}

/* Serves one exec request on conn; runs in its own process. */
static void serve(int conn) {
  char magic[4];
  uint32_t cmd_len, in_len;
  if (read_full(conn, magic, 4) < 0 || memcmp(magic, "DNX1", 4) != 0) {
    error_frame(conn, "bad request: expected DNX1");
    return;
  }
  if (read_u32(conn, &cmd_len) < 0 || cmd_len == 0 || cmd_len > MAX_CMD) {
    error_frame(conn, "bad request: command length");
    return;
  }
  char *cmd = calloc(1, cmd_len + 1);
  if (!cmd || read_full(conn, cmd, cmd_len) < 0) return;
  if (memchr(cmd, 0, cmd_len)) {
    error_frame(conn, "bad request: NUL in the command");
    return;
  }
  if (read_u32(conn, &in_len) < 0 || in_len > MAX_STDIN) {
    error_frame(conn, "bad request: stdin length");
    return;
  }
  int in = memfd_create("denovm-stdin", 0);
  if (in < 0) {
    error_frame(conn, "memfd_create failed");
    return;
  }
  char buf[65536];
  for (uint32_t left = in_len; left > 0;) {
    uint32_t n = left < sizeof buf ? left : sizeof buf;
    if (read_full(conn, buf, n) < 0) return;
    if (write_full(in, buf, n) < 0) {
      error_frame(conn, "cannot buffer stdin");
      return;
    }
    left -= n;
  }
  lseek(in, 0, SEEK_SET);
  int out[2], err[2];
  if (pipe2(out, O_CLOEXEC) < 0 || pipe2(err, O_CLOEXEC) < 0) {
    error_frame(conn, "pipe failed");
    return;
  }
  pid_t pid = fork();
  if (pid < 0) {
    error_frame(conn, "fork failed");
    return;
  }
  if (pid == 0) {
    setpgid(0, 0);
    dup2(in, 0);
    dup2(out[1], 1);
    dup2(err[1], 2);
    signal(SIGPIPE, SIG_DFL);
    execl("/bin/sh", "sh", "-c", cmd, (char *)NULL);
    _exit(127);
  }
  setpgid(pid, pid);
  close(in);
  close(out[1]);
  close(err[1]);
  struct pollfd fds[3] = {
      {.fd = out[0], .events = POLLIN},
      {.fd = err[0], .events = POLLIN},
      {.fd = conn, .events = POLLRDHUP},
  };
  int open_pipes = 2;
  while (open_pipes > 0) {
    if (poll(fds, 3, -1) < 0) {
      if (errno == EINTR) continue;
      break;
    }
    if (fds[2].revents & (POLLRDHUP | POLLHUP | POLLERR)) {
      kill(-pid, SIGKILL); /* the host gave up: do not leave the command running */
      waitpid(pid, NULL, 0);
      return;
    }
    for (int i = 0; i < 2; i++) {
      if (!(fds[i].revents & (POLLIN | POLLHUP))) continue;
      ssize_t n = read(fds[i].fd, buf, sizeof buf);
      if (n > 0) {
        if (frame(conn, (uint8_t)(i + 1), buf, (uint32_t)n) < 0) {
          kill(-pid, SIGKILL);
          waitpid(pid, NULL, 0);
          return;
        }
      } else if (n == 0 || (errno != EINTR && errno != EAGAIN)) {
        close(fds[i].fd);
        fds[i].fd = -1;
        open_pipes--;
      }
    }
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  int32_t code = WIFEXITED(status) ? WEXITSTATUS(status) : 128 + WTERMSIG(status);
  uint8_t le[4] = {code & 0xff, (code >> 8) & 0xff, (code >> 16) & 0xff, (code >> 24) & 0xff};
  frame(conn, 3, le, 4);
}

static int listen_on(const char *unix_path) {
  int s;
  if (unix_path) {
    struct sockaddr_un a = {.sun_family = AF_UNIX};
    if (strlen(unix_path) >= sizeof a.sun_path) return -1;
    strcpy(a.sun_path, unix_path);
    unlink(unix_path);
    s = socket(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) return -1;
  } else {
    struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_port = AGENT_PORT,
                            .svm_cid = VMADDR_CID_ANY};
    s = socket(AF_VSOCK, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (s < 0 || bind(s, (struct sockaddr *)&a, sizeof a) < 0) return -1;
  }
  if (listen(s, 16) < 0) return -1;
  return s;
}

static int send_mode(const char *port_str) {
  char *end;
  long port = strtol(port_str, &end, 10);
  if (*end || port <= 0 || port > 0xffffffffL) {
    fprintf(stderr, "denovm-agent: bad port %s\n", port_str);
    return 2;
  }
  int s = socket(AF_VSOCK, SOCK_STREAM, 0);
  struct sockaddr_vm a = {.svm_family = AF_VSOCK, .svm_port = (unsigned)port,
                          .svm_cid = VMADDR_CID_HOST};
  if (s < 0 || connect(s, (struct sockaddr *)&a, sizeof a) < 0) {
    fprintf(stderr, "denovm-agent: connect to host port %ld: %s\n", port, strerror(errno));
    return 1;
  }
  char buf[65536];
  ssize_t n;
  while ((n = read(0, buf, sizeof buf)) > 0) {
    if (write_full(s, buf, (size_t)n) < 0) return 1;
  }
  shutdown(s, SHUT_WR);
  while ((n = read(s, buf, sizeof buf)) > 0) {
    if (write_full(1, buf, (size_t)n) < 0) return 1;
  }
  return 0;
}

int main(int argc, char **argv) {
  if (argc == 3 && strcmp(argv[1], "send") == 0) return send_mode(argv[2]);
  const char *unix_path = NULL;
  if (argc == 3 && strcmp(argv[1], "--unix") == 0) unix_path = argv[2];
  else if (argc != 1) {
    fprintf(stderr, "usage: denovm-agent [--unix <path>] | send <port>\n");
    return 2;
  }
  int s = listen_on(unix_path);
  if (s < 0) {
    fprintf(stderr, "denovm-agent: cannot listen: %s\n", strerror(errno));
    return 1;
  }
  signal(SIGCHLD, SIG_IGN); /* handlers are reaped automatically */
  signal(SIGPIPE, SIG_IGN);
  for (;;) {
    int c = accept4(s, NULL, NULL, SOCK_CLOEXEC);
    if (c < 0) {
      if (errno == EINTR || errno == ECONNABORTED) continue;
      sleep(1);
      continue;
    }
    pid_t pid = fork();
    if (pid == 0) {
      close(s);
      signal(SIGCHLD, SIG_DFL);
      serve(c);
      _exit(0);
    }
    close(c);
  }
}
