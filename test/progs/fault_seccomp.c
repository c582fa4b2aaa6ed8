/* fault_seccomp: runs a program (the controller) with memfd_create made to
 * fail on demand, without touching the program: a seccomp filter sends every
 * memfd_create to this supervisor (SECCOMP_RET_USER_NOTIF), which reads the
 * name the program passed and, while FLAG_FILE exists and the name starts
 * with PREFIX, answers the call with EMFILE; every other call goes on as
 * usual (SECCOMP_USER_NOTIF_FLAG_CONTINUE).
 *
 *   fault_seccomp FLAG_FILE PREFIX PROG ARGS...
 *
 * Prints "failed <name>\n" to stderr for each call it made fail. Exits with
 * the program's status (128 + signal when it was killed). Linux >= 5.5. */
#include "common.h"

#include <fcntl.h>
#include <linux/audit.h>
#include <linux/filter.h>
#include <linux/seccomp.h>
#include <poll.h>
#include <stddef.h>
#include <sys/ioctl.h>
#include <sys/prctl.h>
#include <sys/syscall.h>
#include <sys/wait.h>

static int send_fd(int sock, int fd) {
  char b = 0;
  struct iovec v = {&b, 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  c->cmsg_level = SOL_SOCKET;
  c->cmsg_type = SCM_RIGHTS;
  c->cmsg_len = CMSG_LEN(sizeof(int));
  memcpy(CMSG_DATA(c), &fd, sizeof fd);
  return sendmsg(sock, &m, 0) == 1 ? 0 : -1;
}

static int recv_fd(int sock) {
  char b;
  struct iovec v = {&b, 1};
  union {
    char buf[CMSG_SPACE(sizeof(int))];
    struct cmsghdr align;
  } u;
  struct msghdr m = {.msg_iov = &v, .msg_iovlen = 1, .msg_control = u.buf, .msg_controllen = sizeof u.buf};
  if (recvmsg(sock, &m, 0) != 1) return -1;
  struct cmsghdr *c = CMSG_FIRSTHDR(&m);
  if (!c || c->cmsg_type != SCM_RIGHTS) return -1;
  int fd;
  memcpy(&fd, CMSG_DATA(c), sizeof fd);
  return fd;
}

int main(int argc, char **argv) {
  prog_name = "fault_seccomp";
  if (argc < 4) die("usage: fault_seccomp FLAG_FILE PREFIX PROG ARGS...");
  const char *flag = argv[1], *prefix = argv[2];
  int sp[2];
  if (socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, sp) < 0) die("socketpair: %s", strerror(errno));
  pid_t child = fork();
  if (child < 0) die("fork: %s", strerror(errno));
  if (child == 0) {
    struct sock_filter f[] = {
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, arch)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, AUDIT_ARCH_X86_64, 1, 0),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
        BPF_STMT(BPF_LD | BPF_W | BPF_ABS, offsetof(struct seccomp_data, nr)),
        BPF_JUMP(BPF_JMP | BPF_JEQ | BPF_K, __NR_memfd_create, 0, 1),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_USER_NOTIF),
        BPF_STMT(BPF_RET | BPF_K, SECCOMP_RET_ALLOW),
    };
    struct sock_fprog prog = {.len = sizeof f / sizeof f[0], .filter = f};
    if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) < 0) die("PR_SET_NO_NEW_PRIVS: %s", strerror(errno));
    int lfd = (int)syscall(SYS_seccomp, SECCOMP_SET_MODE_FILTER, SECCOMP_FILTER_FLAG_NEW_LISTENER, &prog);
    if (lfd < 0) die("seccomp: %s", strerror(errno));
    if (send_fd(sp[1], lfd) < 0) die("send listener: %s", strerror(errno));
    close(lfd);
    execvp(argv[3], argv + 3);
    die("exec %s: %s", argv[3], strerror(errno));
  }
  close(sp[1]);
  int lfd = recv_fd(sp[0]);
  if (lfd < 0) die("no listener from the child");
  /* The filter's listener outlives the exec; serve until the child is gone. */
  for (;;) {
    int st;
    pid_t w = waitpid(child, &st, WNOHANG);
    if (w == child) return WIFEXITED(st) ? WEXITSTATUS(st) : 128 + WTERMSIG(st);
    struct pollfd p = {.fd = lfd, .events = POLLIN};
    int r = poll(&p, 1, 100);
    if (r <= 0) continue;
    if (p.revents & (POLLHUP | POLLERR)) continue; /* no task left: waitpid will say */
    struct seccomp_notif req;
    struct seccomp_notif_resp resp;
    memset(&req, 0, sizeof req);
    if (ioctl(lfd, SECCOMP_IOCTL_NOTIF_RECV, &req) < 0) continue;
    memset(&resp, 0, sizeof resp);
    resp.id = req.id;
    resp.flags = SECCOMP_USER_NOTIF_FLAG_CONTINUE;
    char name[128] = "";
    char path[64];
    snprintf(path, sizeof path, "/proc/%d/mem", (int)req.pid);
    int mem = open(path, O_RDONLY | O_CLOEXEC);
    if (mem >= 0) {
      ssize_t n = pread(mem, name, sizeof name - 1, (off_t)req.data.args[0]);
      name[n > 0 ? n : 0] = 0;
      close(mem);
    }
    if (access(flag, F_OK) == 0 && !strncmp(name, prefix, strlen(prefix))) {
      resp.flags = 0;
      resp.error = -EMFILE;
      fprintf(stderr, "fault_seccomp: failed %s\n", name);
    }
    (void)!ioctl(lfd, SECCOMP_IOCTL_NOTIF_SEND, &resp);
  }
}
