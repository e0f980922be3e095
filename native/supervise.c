/*
 * runfleet-supervise: the process driver's task supervisor, a small static program.
 *
 * It does what the generated shell script does (src/runner/task-script.ts), for the same files
 * and with the same output, without a shell of its own and without `setpriv`: a task of one
 * step costs one short-lived exec of this program and the step's own `/bin/sh -c`, where the
 * script cost a shell, then `setpriv`, then the step's shell (bench/README.md has the figures).
 *
 *   runfleet-supervise <session dir>/task.steps <uid|-> <gid|->
 *   runfleet-supervise --version     (prints "runfleet-supervise <VERSION>": the runner checks it)
 *
 * `task.steps` (written by the runner, which owns the session dir) holds, for each step, its
 * header line and its command, each ended by a NUL byte. Its path in our command line is how the
 * driver tells this supervisor from an unrelated process that reused its pid.
 *
 * Files in the session dir, as with the script:
 * - `abandoned`: when it exists at our start, nothing runs and nothing is recorded;
 * - `step`: the 0-based index of the running step, for a task of more than one step;
 * - `exit`: `{"exitCode":N,"failedStep":I|null}` once the task has ended, in one write; with a
 *   uid, `"reaped":true` is added once every process of that user was sent SIGKILL (below).
 *
 * Each step runs as `/bin/sh -c <command>`, stderr into stdout, in our process group, with
 * SIGINT and SIGQUIT ignored (as a shell's background job). With a uid and gid, the step runs as
 * that user: no supplementary groups, no capabilities, and `no_new_privs` (no way back up through
 * a setuid binary); we stay root, so the task can neither signal us nor write our records.
 *
 * On SIGTERM the running step gets SIGTERM too; its status is recorded when it ends and no
 * further step starts (143 when the TERM came between two steps). When the task ends, whatever
 * is left in our process group (something a step left running) is killed with SIGKILL, and us
 * with it: the exit file is written before. With a uid, every process of that user is killed
 * first, wherever it is (a daemon that left our group): a child of ours becomes the user and
 * sends SIGKILL to -1, which reaches exactly the processes that user may signal. `"reaped":true`
 * says it was sent, and the runner then gives the id to its next task without looking through
 * /proc for what the task left (src/runner/task-user.ts); without it, the runner looks.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <fcntl.h>
#include <grp.h>
#include <linux/capability.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/prctl.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <unistd.h>

/* The protocol above; src/runner/native-supervisor.ts uses this program only when they agree. */
#define VERSION 2

static volatile sig_atomic_t stopped = 0;
static volatile pid_t child = 0;
/* The task's user, when its steps run as one. */
static int switch_user = 0;
static uid_t uid = 0;
static gid_t gid = 0;

static void on_term(int sig) {
  (void)sig;
  int saved = errno;
  stopped = 1;
  if (child > 0) kill(child, SIGTERM);
  errno = saved;
}

/* Writes all of `len` bytes to `fd`, across short writes and interrupted ones. */
static void write_all(int fd, const char *buf, size_t len) {
  while (len > 0) {
    ssize_t n = write(fd, buf, len);
    if (n < 0) {
      if (errno == EINTR) continue;
      return;
    }
    buf += n;
    len -= (size_t)n;
  }
}

static char dir[4096];

/* `<dir>/<name>` into `out`; exits when it does not fit. */
static void path_of(char *out, size_t size, const char *name) {
  int n = snprintf(out, size, "%s/%s", dir, name);
  if (n < 0 || (size_t)n >= size) {
    dprintf(2, "runfleet-supervise: path too long: %s/%s\n", dir, name);
    _exit(125);
  }
}

/* Replaces `<dir>/<name>` with `text`, in one write. */
static void write_file(const char *name, const char *text) {
  char path[4200];
  path_of(path, sizeof path, name);
  int fd = open(path, O_WRONLY | O_CREAT | O_TRUNC | O_CLOEXEC, 0644);
  if (fd < 0) return;
  write_all(fd, text, strlen(text));
  close(fd);
}

/* Sends SIGKILL to every process of the task's user (above); 1 once it is sent. Linux sends a
 * signal to -1 in one pass over the process table, and a fork racing with it fails, so nothing
 * of the user runs user code again. Processes whose real or saved id is the user's are reached
 * (a setuid binary of the user's run by another is, by its saved id). */
static int kill_user(void) {
  pid_t pid = fork();
  if (pid < 0) return 0;
  if (pid == 0) {
    signal(SIGTERM, SIG_DFL);
    if (setgroups(0, NULL) != 0 || setresgid(gid, gid, gid) != 0 || setresuid(uid, uid, uid) != 0) _exit(2);
    /* We are left out of -1 ourselves; ESRCH: there was no other process at all. */
    _exit(kill(-1, SIGKILL) == 0 || errno == ESRCH ? 0 : 2);
  }
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  return WIFEXITED(status) && WEXITSTATUS(status) == 0;
}

/* Records the outcome, then ends the task's process group, us included. */
static void finish(int code, int failed_step) {
  const char *reaped = switch_user && kill_user() ? ",\"reaped\":true" : "";
  char text[128];
  if (failed_step < 0)
    snprintf(text, sizeof text, "{\"exitCode\":%d,\"failedStep\":null%s}\n", code, reaped);
  else
    snprintf(text, sizeof text, "{\"exitCode\":%d,\"failedStep\":%d%s}\n", code, failed_step, reaped);
  write_file("exit", text);
  signal(SIGTERM, SIG_DFL);
  kill(0, SIGKILL);
  _exit(code);
}

/* In the step's child: becomes `uid`/`gid` for good, as `setpriv --reuid --regid --clear-groups
 * --inh-caps=-all --no-new-privs` does. */
static int drop_privileges(uid_t to_uid, gid_t to_gid) {
  if (setgroups(0, NULL) != 0) return -1;
  if (setresgid(to_gid, to_gid, to_gid) != 0) return -1;
  if (setresuid(to_uid, to_uid, to_uid) != 0) return -1;
  struct __user_cap_header_struct header = {_LINUX_CAPABILITY_VERSION_3, 0};
  struct __user_cap_data_struct data[2];
  memset(data, 0, sizeof data);
  if (syscall(SYS_capset, &header, data) != 0) return -1;
  if (prctl(PR_SET_NO_NEW_PRIVS, 1, 0, 0, 0) != 0) return -1;
  return 0;
}

/* Runs one step to its end; its status as a shell gives it (128 + the signal that killed it). */
static int run_step(const char *command) {
  /* TERM waits while the child is made: the child must not run our handler, and we must know
   * its pid before a TERM is passed on. */
  sigset_t term, old;
  sigemptyset(&term);
  sigaddset(&term, SIGTERM);
  sigprocmask(SIG_BLOCK, &term, &old);
  pid_t pid = fork();
  if (pid < 0) {
    sigprocmask(SIG_SETMASK, &old, NULL);
    dprintf(1, "runfleet-supervise: cannot start the step: %s\n", strerror(errno));
    return 126;
  }
  if (pid == 0) {
    signal(SIGTERM, SIG_DFL);
    signal(SIGINT, SIG_IGN);
    signal(SIGQUIT, SIG_IGN);
    sigset_t none;
    sigemptyset(&none);
    sigprocmask(SIG_SETMASK, &none, NULL);
    if (dup2(1, 2) < 0) _exit(126);
    if (switch_user && drop_privileges(uid, gid) != 0) {
      dprintf(2, "runfleet-supervise: cannot run the step as uid %u: %s\n", (unsigned)uid, strerror(errno));
      _exit(126);
    }
    execl("/bin/sh", "sh", "-c", command, (char *)NULL);
    dprintf(2, "runfleet-supervise: cannot run /bin/sh: %s\n", strerror(errno));
    _exit(127);
  }
  child = pid;
  sigprocmask(SIG_SETMASK, &old, NULL);
  /* A TERM that came before the step started stops it too. */
  if (stopped) kill(pid, SIGTERM);
  /* Waits for its end without reaping it (WNOWAIT: its pid cannot be reused meanwhile, so a TERM
   * passed on reaches no other process), then reaps it with TERM held back. */
  siginfo_t info;
  for (;;) {
    memset(&info, 0, sizeof info);
    if (waitid(P_PID, (id_t)pid, &info, WEXITED | WNOWAIT) == 0) break;
    if (errno != EINTR) break;
  }
  sigprocmask(SIG_BLOCK, &term, &old);
  child = 0;
  int status = 0;
  while (waitpid(pid, &status, 0) < 0 && errno == EINTR) {
  }
  sigprocmask(SIG_SETMASK, &old, NULL);
  if (WIFEXITED(status)) return WEXITSTATUS(status);
  if (WIFSIGNALED(status)) return 128 + WTERMSIG(status);
  return 1;
}

/* A decimal id, or -1. */
static long parse_id(const char *text) {
  char *end = NULL;
  errno = 0;
  long v = strtol(text, &end, 10);
  if (errno != 0 || end == text || *end != '\0' || v < 0 || v > 0x7fffffffL) return -1;
  return v;
}

int main(int argc, char **argv) {
  if (argc == 2 && strcmp(argv[1], "--version") == 0) {
    dprintf(1, "runfleet-supervise %d\n", VERSION);
    return 0;
  }
  if (argc != 4) {
    dprintf(2, "usage: runfleet-supervise <session dir>/task.steps <uid|-> <gid|->\n");
    return 125;
  }
  const char *steps_file = argv[1];
  const char *slash = strrchr(steps_file, '/');
  size_t dir_len = slash ? (size_t)(slash - steps_file) : 1;
  if (dir_len == 0) dir_len = 1; /* "/task.steps": the root */
  if (dir_len >= sizeof dir) {
    dprintf(2, "runfleet-supervise: path too long: %s\n", steps_file);
    return 125;
  }
  memcpy(dir, slash ? steps_file : ".", dir_len);
  dir[dir_len] = '\0';

  /* Given up before it could start: nothing runs, nothing is recorded. */
  char abandoned[4200];
  path_of(abandoned, sizeof abandoned, "abandoned");
  if (access(abandoned, F_OK) == 0) return 0;

  switch_user = strcmp(argv[2], "-") != 0;
  if (switch_user) {
    long u = parse_id(argv[2]);
    long g = parse_id(argv[3]);
    if (u < 0 || g < 0) {
      dprintf(2, "runfleet-supervise: bad uid or gid: %s %s\n", argv[2], argv[3]);
      return 125;
    }
    uid = (uid_t)u;
    gid = (gid_t)g;
  }

  struct sigaction sa;
  memset(&sa, 0, sizeof sa);
  sa.sa_handler = on_term;
  sigemptyset(&sa.sa_mask);
  sa.sa_flags = 0; /* no SA_RESTART: a TERM interrupts waitpid, which is then called again */
  sigaction(SIGTERM, &sa, NULL);

  /* The steps: header, command, header, command..., each ended by a NUL byte. */
  int fd = open(steps_file, O_RDONLY | O_CLOEXEC);
  struct stat st;
  if (fd < 0 || fstat(fd, &st) != 0) {
    dprintf(1, "runfleet-supervise: cannot read %s: %s\n", steps_file, strerror(errno));
    finish(125, 0);
  }
  size_t size = (size_t)st.st_size;
  char *buf = malloc(size + 1);
  if (!buf) finish(125, 0);
  size_t have = 0;
  while (have < size) {
    ssize_t n = read(fd, buf + have, size - have);
    if (n < 0 && errno == EINTR) continue;
    if (n <= 0) break;
    have += (size_t)n;
  }
  close(fd);
  buf[have] = '\0';
  size_t fields = 0;
  for (size_t i = 0; i < have; i++)
    if (buf[i] == '\0') fields++;
  if (have != size || fields % 2 != 0 || (have > 0 && buf[have - 1] != '\0')) {
    dprintf(1, "runfleet-supervise: %s is not a steps file\n", steps_file);
    finish(125, 0);
  }
  int total = (int)(fields / 2);

  const char *at = buf;
  for (int i = 0; i < total; i++) {
    const char *header = at;
    at += strlen(at) + 1;
    const char *command = at;
    at += strlen(at) + 1;
    /* A TERM between two steps: the next one does not start. */
    if (stopped) finish(143, i);
    write_all(1, header, strlen(header));
    write_all(1, "\n", 1);
    if (total > 1) {
      char index[24];
      snprintf(index, sizeof index, "%d\n", i);
      write_file("step", index);
    }
    int rc = run_step(command);
    char done[80];
    snprintf(done, sizeof done, "==> step %d exited with code %d\n", i + 1, rc);
    write_all(1, done, strlen(done));
    if (rc != 0 || stopped) finish(rc, i);
  }
  finish(0, -1);
  return 0;
}
