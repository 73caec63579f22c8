// smke's program starter: a small resident process that starts programs with
// posix_spawn (vfork: nothing of the parent's memory is copied) on behalf of a
// pooled worker, and reports how they end. Node's child_process forks, which
// copies the page tables of a large process and blocks its event loop until
// the child has exec'd: on a VM that costs several milliseconds per program,
// more than a trivial stage itself. ninja starts its commands the same way as
// this file does.
//
// Protocol (the client is src/runtime/program-starter.ts):
//   requests on stdin, NUL-terminated fields:
//     start a program: id (decimal), cwd, log path (stdout and stderr are
//       appended there; stdin is /dev/null), argc, argv..., envc, env...
//     signal one:      "K", id, signal number (ignored once the program has
//       been reaped, so a pid the system gave to another process since is
//       never signalled)
//   replies on stdout, one line each:
//     "R 2"                    ready, speaking this protocol (2): the first
//                              line, written once at start (so that one start
//                              both checks that this binary runs here and
//                              gives the worker its starter; a starter built
//                              from an older source says "R" and is not used,
//                              since its replies would not be understood)
//     "E <id> <errno>"         could not start (posix_spawn's error)
//     "X <id> <code> <signal>" ended (code -1 when killed by <signal>)
//   A started program gets no reply until it ends: the worker needs nothing
//   from a start (it signals by id), and a reply would wake it for nothing.
// The server exits when stdin closes; programs still running are left to
// finish (as orphans, like the children of a worker that exits). The server
// stays in its parent's process group, so killing the worker's group kills it
// and every program it started.
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/wait.h>
#include <unistd.h>

static char *buf;
static size_t len, cap;

static void reply(const char *line, size_t n) {
  while (n > 0) {
    ssize_t w = write(1, line, n);
    if (w < 0) {
      if (errno == EINTR) continue;
      _exit(3); // the client is gone
    }
    line += w;
    n -= (size_t)w;
  }
}

// The next NUL-terminated field at *pos, or NULL when the buffer ends first.
static char *field(size_t *pos) {
  char *start = buf + *pos;
  char *end = memchr(start, '\0', len - *pos);
  if (!end) return NULL;
  *pos = (size_t)(end - buf) + 1;
  return start;
}

// A name without '/' is looked up in the PATH of the program's own
// environment (as Node's libuv does; posix_spawnp would use this process's),
// /bin:/usr/bin when it has none. As in execvp: a directory where the name
// exists but cannot be run is skipped, and its EACCES reported if nothing else
// is found.
static int spawn_found(pid_t *pid, char **argv, char **envp, const posix_spawn_file_actions_t *fa, const posix_spawnattr_t *attr) {
  const char *name = argv[0];
  if (strchr(name, '/')) return posix_spawn(pid, name, fa, attr, argv, envp);
  const char *path = "/bin:/usr/bin";
  for (char **e = envp; *e; e++)
    if (strncmp(*e, "PATH=", 5) == 0) path = *e + 5;
  int err = ENOENT;
  size_t nlen = strlen(name);
  for (const char *dir = path;; dir++) {
    const char *end = strchrnul(dir, ':');
    size_t dlen = (size_t)(end - dir);
    char *full = malloc(dlen + nlen + 3);
    // An empty entry is the working directory, as in execvp.
    if (dlen)
      sprintf(full, "%.*s/%s", (int)dlen, dir, name);
    else
      sprintf(full, "./%s", name);
    // Relative entries are relative to the program's working directory, which
    // only the child has: they are tried; absolute ones are looked at first.
    if (full[0] != '/' || access(full, F_OK) == 0) {
      int e = posix_spawn(pid, full, fa, attr, argv, envp);
      free(full);
      if (e == 0) return 0;
      if (e != EACCES && e != ENOENT && e != ENOTDIR) return e;
      if (e == EACCES) err = EACCES;
    } else
      free(full);
    if (!*end) return err;
    dir = end;
  }
}

// The programs started and not yet reaped: request id and pid.
static struct running {
  long id;
  pid_t pid;
} *running;
static size_t nrunning, caprunning;

// Handles the request at the head of the buffer if it is complete; returns the
// bytes it used, or 0 when more input is needed.
static size_t handle_one(void) {
  size_t pos = 0;
  char *id = field(&pos);
  if (id && strcmp(id, "K") == 0) {
    char *which = field(&pos), *sig = which ? field(&pos) : NULL;
    if (!sig) return 0;
    long wanted = strtol(which, NULL, 10);
    for (size_t i = 0; i < nrunning; i++)
      if (running[i].id == wanted) kill(running[i].pid, (int)strtol(sig, NULL, 10));
    return pos;
  }
  char *cwd = id ? field(&pos) : NULL, *log = cwd ? field(&pos) : NULL;
  char *argc_s = log ? field(&pos) : NULL;
  if (!argc_s) return 0;
  long argc = strtol(argc_s, NULL, 10);
  if (argc < 1 || argc > 1 << 20) _exit(4); // a malformed request: the client is broken
  char **argv = calloc((size_t)argc + 1, sizeof *argv);
  for (long i = 0; i < argc; i++)
    if (!(argv[i] = field(&pos))) return free(argv), (size_t)0;
  char *envc_s = field(&pos);
  if (!envc_s) return free(argv), (size_t)0;
  long envc = strtol(envc_s, NULL, 10);
  if (envc < 0 || envc > 1 << 20) _exit(4);
  char **envp = calloc((size_t)envc + 1, sizeof *envp);
  for (long i = 0; i < envc; i++)
    if (!(envp[i] = field(&pos))) return free(argv), free(envp), (size_t)0;

  posix_spawn_file_actions_t fa;
  posix_spawnattr_t attr;
  posix_spawn_file_actions_init(&fa);
  posix_spawn_file_actions_addchdir_np(&fa, cwd);
  posix_spawn_file_actions_addopen(&fa, 0, "/dev/null", O_RDONLY, 0);
  posix_spawn_file_actions_addopen(&fa, 1, log, O_WRONLY | O_APPEND | O_CREAT, 0600);
  posix_spawn_file_actions_adddup2(&fa, 1, 2);
  posix_spawnattr_init(&attr);
  // Programs start as Node starts them: every signal at its default action
  // (this process inherited the worker's ignored SIGPIPE) and none blocked
  // (SIGCHLD is blocked here for the signalfd).
  sigset_t all, none;
  sigfillset(&all);
  sigemptyset(&none);
  posix_spawnattr_setsigdefault(&attr, &all);
  posix_spawnattr_setsigmask(&attr, &none);
  posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);
  pid_t pid;
  int err = spawn_found(&pid, argv, envp, &fa, &attr);
  posix_spawn_file_actions_destroy(&fa);
  posix_spawnattr_destroy(&attr);
  if (err) {
    char line[96];
    int n = snprintf(line, sizeof line, "E %s %d\n", id, err);
    reply(line, (size_t)n);
  } else {
    if (nrunning == caprunning) running = realloc(running, (caprunning = caprunning ? 2 * caprunning : 16) * sizeof *running);
    running[nrunning++] = (struct running){strtol(id, NULL, 10), pid};
  }
  free(argv);
  free(envp);
  return pos;
}

static void report_ended(void) {
  int status;
  pid_t pid;
  while ((pid = waitpid(-1, &status, WNOHANG)) > 0) {
    size_t i = 0;
    while (i < nrunning && running[i].pid != pid) i++;
    if (i == nrunning) continue; // not a program of ours (none should be)
    long id = running[i].id;
    running[i] = running[--nrunning];
    char line[96];
    int n = WIFSIGNALED(status) ? snprintf(line, sizeof line, "X %ld -1 %d\n", id, WTERMSIG(status))
                                : snprintf(line, sizeof line, "X %ld %d 0\n", id, WEXITSTATUS(status));
    reply(line, (size_t)n);
  }
}

int main(void) {
  sigset_t chld;
  sigemptyset(&chld);
  sigaddset(&chld, SIGCHLD);
  sigprocmask(SIG_BLOCK, &chld, NULL);
  int sfd = signalfd(-1, &chld, SFD_CLOEXEC | SFD_NONBLOCK);
  if (sfd < 0) return 2;
  // Our own pipes must not leak into the programs (they get /dev/null and the log).
  fcntl(0, F_SETFD, FD_CLOEXEC);
  fcntl(1, F_SETFD, FD_CLOEXEC);
  cap = 1 << 16;
  buf = malloc(cap);
  reply("R 2\n", 4);
  int open_in = 1;
  for (;;) {
    struct pollfd fds[2] = {{sfd, POLLIN, 0}, {0, POLLIN, 0}};
    if (poll(fds, open_in ? 2 : 1, -1) < 0) {
      if (errno == EINTR) continue;
      return 2;
    }
    if (fds[0].revents & POLLIN) {
      struct signalfd_siginfo si;
      while (read(sfd, &si, sizeof si) == sizeof si) {
      }
      report_ended();
    }
    if (open_in && (fds[1].revents & (POLLIN | POLLHUP | POLLERR))) {
      if (cap - len < 4096) buf = realloc(buf, cap *= 2);
      ssize_t r = read(0, buf + len, cap - len);
      if (r <= 0) {
        if (r < 0 && errno == EINTR) continue;
        return 0; // the worker closed our stdin: it is done (or gone)
      }
      len += (size_t)r;
      size_t used;
      while (len > 0 && (used = handle_one()) > 0) {
        memmove(buf, buf + used, len - used);
        len -= used;
      }
    }
  }
}
