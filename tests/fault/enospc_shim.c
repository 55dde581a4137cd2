/*
 * LD_PRELOAD shim for tests/fault/enospc_test.ts: a disk that is full
 * under one directory, on demand.
 *
 *   ENOSPC_DIR   directory (or a symlink to one, resolved on every call); files in it and
 *                the directory itself are "on the full disk"
 *   ENOSPC_FLAG  file; while it exists, writes there fail with ENOSPC
 *   ENOSPC_LOG   optional file; one line "pid op path" is appended per injected failure
 *
 * The flag file's content selects the failing operations: empty means all of
 * them, otherwise a list of names among open write pwrite writev fsync
 * fdatasync (for example "write" or "fsync,fdatasync"). It is read on every
 * call, so a test can switch modes while the processes run.
 *
 * Interposed: write, pwrite(64), writev, pwritev(64), fsync, fdatasync,
 * open(64)/openat(64)/creat(64) with O_CREAT. Descriptors are resolved to
 * paths with readlink(/proc/self/fd/N) on every call, nothing is cached
 * (fd numbers are reused). The flag is checked first, so with the flag
 * absent a call costs one extra access(2).
 *
 * Deno refuses to spawn a child with LD_PRELOAD in its environment unless
 * the parent has unrestricted --allow-run (Postwarden's master has
 * --allow-run=<deno>). So the shim takes LD_PRELOAD out of the process's
 * own environment at load (Deno never sees it) and puts it back into the
 * environment of every program the process executes (execve, execv,
 * execvp, execvpe, posix_spawn, posix_spawnp), so the whole process tree
 * keeps the shim.
 *
 * Build: gcc -shared -fPIC -O2 -o shim.so enospc_shim.c -ldl
 */
#define _GNU_SOURCE
#include <dlfcn.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <spawn.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/syscall.h>
#include <sys/types.h>
#include <sys/uio.h>
#include <unistd.h>

extern char **environ;

#define PRELOAD_MAX 4096
static char preload_entry[PRELOAD_MAX + 16]; /* "LD_PRELOAD=..." or "" */

static ssize_t (*real_write)(int, const void *, size_t);
static ssize_t (*real_pwrite)(int, const void *, size_t, off_t);
static ssize_t (*real_pwrite64)(int, const void *, size_t, off_t);
static ssize_t (*real_writev)(int, const struct iovec *, int);
static ssize_t (*real_pwritev)(int, const struct iovec *, int, off_t);
static ssize_t (*real_pwritev64)(int, const struct iovec *, int, off_t);
static int (*real_fsync)(int);
static int (*real_fdatasync)(int);
static int (*real_open)(const char *, int, ...);
static int (*real_open64)(const char *, int, ...);
static int (*real_openat)(int, const char *, int, ...);
static int (*real_openat64)(int, const char *, int, ...);
static int (*real_creat)(const char *, mode_t);
static int (*real_creat64)(const char *, mode_t);
static int (*real_execve)(const char *, char *const[], char *const[]);
static int (*real_execvpe)(const char *, char *const[], char *const[]);
static int (*real_posix_spawn)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                               const posix_spawnattr_t *, char *const[], char *const[]);
static int (*real_posix_spawnp)(pid_t *, const char *, const posix_spawn_file_actions_t *,
                                const posix_spawnattr_t *, char *const[], char *const[]);

#define RESOLVE(name) \
  if (!real_##name) real_##name = dlsym(RTLD_NEXT, #name)

static void resolve_all(void) {
  RESOLVE(write);
  RESOLVE(pwrite);
  RESOLVE(pwrite64);
  RESOLVE(writev);
  RESOLVE(pwritev);
  RESOLVE(pwritev64);
  RESOLVE(fsync);
  RESOLVE(fdatasync);
  RESOLVE(open);
  RESOLVE(open64);
  RESOLVE(openat);
  RESOLVE(openat64);
  RESOLVE(creat);
  RESOLVE(creat64);
  RESOLVE(execve);
  RESOLVE(execvpe);
  RESOLVE(posix_spawn);
  RESOLVE(posix_spawnp);
}

__attribute__((constructor)) static void shim_init(void) {
  resolve_all();
  const char *p = getenv("LD_PRELOAD");
  if (p && strlen(p) < PRELOAD_MAX) {
    snprintf(preload_entry, sizeof preload_entry, "LD_PRELOAD=%s", p);
    unsetenv("LD_PRELOAD");
  }
}

/* ---- fault injection ---------------------------------------------------- */

/* True if the flag file exists and selects `op`. Uses raw syscalls only. */
static int flag_selects(const char *op) {
  const char *flag = getenv("ENOSPC_FLAG");
  if (!flag || !getenv("ENOSPC_DIR")) return 0;
  int fd = (int)syscall(SYS_openat, AT_FDCWD, flag, O_RDONLY | O_CLOEXEC);
  if (fd < 0) return 0;
  char buf[256];
  ssize_t n = syscall(SYS_read, fd, buf, sizeof buf - 1);
  syscall(SYS_close, fd);
  if (n < 0) n = 0;
  buf[n] = 0;
  /* Empty (or whitespace only): every operation. */
  int any = 0;
  for (ssize_t i = 0; i < n; i++) {
    if (buf[i] != ' ' && buf[i] != '\n' && buf[i] != '\t' && buf[i] != ',') any = 1;
  }
  if (!any) return 1;
  size_t len = strlen(op);
  for (char *s = buf; (s = strstr(s, op)) != NULL; s += len) {
    int start = s == buf || strchr(" ,\n\t", s[-1]) != NULL;
    int end = s[len] == 0 || strchr(" ,\n\t", s[len]) != NULL;
    if (start && end) return 1;
  }
  return 0;
}

/*
 * True if the absolute path is ENOSPC_DIR or inside it. ENOSPC_DIR is
 * resolved with realpath(3) on every call, so it may be a symlink made
 * after the processes started (a test learns its instance's folder late);
 * while it does not resolve, nothing fails.
 */
static int under_dir(const char *path) {
  const char *env = getenv("ENOSPC_DIR");
  if (!env || !*env || !path) return 0;
  char dir[PATH_MAX];
  if (!realpath(env, dir)) return 0;
  size_t n = strlen(dir);
  while (n > 1 && dir[n - 1] == '/') n--;
  if (strncmp(path, dir, n) != 0) return 0;
  return path[n] == 0 || path[n] == '/';
}

static void note(const char *op, const char *path) {
  const char *log = getenv("ENOSPC_LOG");
  if (!log) return;
  char line[PATH_MAX + 64];
  int len = snprintf(line, sizeof line, "%d %s %s\n", (int)getpid(), op, path);
  if (len <= 0) return;
  if (len >= (int)sizeof line) len = sizeof line - 1;
  int fd = (int)syscall(SYS_openat, AT_FDCWD, log, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC,
                        0644);
  if (fd < 0) return;
  syscall(SYS_write, fd, line, (size_t)len);
  syscall(SYS_close, fd);
}

/* Resolves a descriptor to its path; "" if that fails. */
static void fd_path(int fd, char *out, size_t size) {
  char link[64];
  snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
  ssize_t n = syscall(SYS_readlinkat, AT_FDCWD, link, out, size - 1);
  if (n < 0) n = 0;
  out[n] = 0;
}

/* Should this descriptor operation fail? Records it if so. */
static int fail_fd(const char *op, int fd) {
  if (!flag_selects(op)) return 0;
  char path[PATH_MAX];
  fd_path(fd, path, sizeof path);
  if (!under_dir(path)) return 0;
  note(op, path);
  return 1;
}

/* Absolute form of a path given to open/openat. */
static void abs_path(int dirfd, const char *path, char *out, size_t size) {
  if (path[0] == '/') {
    snprintf(out, size, "%s", path);
    return;
  }
  char base[PATH_MAX];
  if (dirfd == AT_FDCWD) {
    if (!getcwd(base, sizeof base)) base[0] = 0;
  } else {
    fd_path(dirfd, base, sizeof base);
  }
  snprintf(out, size, "%s/%s", base, path);
}

static int fail_open(int dirfd, const char *path, int flags) {
  if (!(flags & O_CREAT) || !path) return 0;
  if (!flag_selects("open")) return 0;
  char full[PATH_MAX];
  abs_path(dirfd, path, full, sizeof full);
  if (!under_dir(full)) return 0;
  note("open", full);
  return 1;
}

#define ENOSPC_RETURN \
  do {                \
    errno = ENOSPC;   \
    return -1;        \
  } while (0)

ssize_t write(int fd, const void *buf, size_t n) {
  RESOLVE(write);
  if (fail_fd("write", fd)) ENOSPC_RETURN;
  return real_write(fd, buf, n);
}

ssize_t pwrite(int fd, const void *buf, size_t n, off_t off) {
  RESOLVE(pwrite);
  if (fail_fd("pwrite", fd)) ENOSPC_RETURN;
  return real_pwrite(fd, buf, n, off);
}

ssize_t pwrite64(int fd, const void *buf, size_t n, off_t off) {
  RESOLVE(pwrite64);
  if (fail_fd("pwrite", fd)) ENOSPC_RETURN;
  return real_pwrite64(fd, buf, n, off);
}

ssize_t writev(int fd, const struct iovec *iov, int cnt) {
  RESOLVE(writev);
  if (fail_fd("writev", fd)) ENOSPC_RETURN;
  return real_writev(fd, iov, cnt);
}

ssize_t pwritev(int fd, const struct iovec *iov, int cnt, off_t off) {
  RESOLVE(pwritev);
  if (fail_fd("writev", fd)) ENOSPC_RETURN;
  return real_pwritev(fd, iov, cnt, off);
}

ssize_t pwritev64(int fd, const struct iovec *iov, int cnt, off_t off) {
  RESOLVE(pwritev64);
  if (fail_fd("writev", fd)) ENOSPC_RETURN;
  return real_pwritev64(fd, iov, cnt, off);
}

int fsync(int fd) {
  RESOLVE(fsync);
  if (fail_fd("fsync", fd)) ENOSPC_RETURN;
  return real_fsync(fd);
}

int fdatasync(int fd) {
  RESOLVE(fdatasync);
  if (fail_fd("fdatasync", fd)) ENOSPC_RETURN;
  return real_fdatasync(fd);
}

static mode_t mode_arg(int flags, va_list ap) {
  return (flags & O_CREAT) || (flags & O_TMPFILE) == O_TMPFILE ? va_arg(ap, mode_t) : 0;
}

int open(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  RESOLVE(open);
  if (fail_open(AT_FDCWD, path, flags)) ENOSPC_RETURN;
  return real_open(path, flags, mode);
}

int open64(const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  RESOLVE(open64);
  if (fail_open(AT_FDCWD, path, flags)) ENOSPC_RETURN;
  return real_open64(path, flags, mode);
}

int openat(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  RESOLVE(openat);
  if (fail_open(dirfd, path, flags)) ENOSPC_RETURN;
  return real_openat(dirfd, path, flags, mode);
}

int openat64(int dirfd, const char *path, int flags, ...) {
  va_list ap;
  va_start(ap, flags);
  mode_t mode = mode_arg(flags, ap);
  va_end(ap);
  RESOLVE(openat64);
  if (fail_open(dirfd, path, flags)) ENOSPC_RETURN;
  return real_openat64(dirfd, path, flags, mode);
}

int creat(const char *path, mode_t mode) {
  RESOLVE(creat);
  if (fail_open(AT_FDCWD, path, O_CREAT)) ENOSPC_RETURN;
  return real_creat(path, mode);
}

int creat64(const char *path, mode_t mode) {
  RESOLVE(creat64);
  if (fail_open(AT_FDCWD, path, O_CREAT)) ENOSPC_RETURN;
  return real_creat64(path, mode);
}

/* ---- keeping the shim in child processes -------------------------------- */

/*
 * Calls `k` with envp plus our LD_PRELOAD entry (unless envp has one).
 * The new array lives on the stack: this may run in a forked child of a
 * multithreaded process, where malloc is not safe.
 */
#define WITH_PRELOAD(envp, newenv, call)                                   \
  do {                                                                     \
    char *const *src_ = (envp) ? (envp) : (char *const *)environ;          \
    size_t n_ = 0;                                                         \
    int has_ = 0;                                                          \
    for (; src_ && src_[n_]; n_++) {                                       \
      if (strncmp(src_[n_], "LD_PRELOAD=", 11) == 0) has_ = 1;             \
    }                                                                      \
    if (!preload_entry[0] || has_) {                                       \
      char *const *newenv = src_;                                          \
      call;                                                                \
    }                                                                      \
    char *arr_[n_ + 2];                                                    \
    for (size_t i_ = 0; i_ < n_; i_++) arr_[i_] = src_[i_];                \
    arr_[n_] = preload_entry;                                              \
    arr_[n_ + 1] = NULL;                                                   \
    char *const *newenv = arr_;                                            \
    call;                                                                  \
  } while (0)

int execve(const char *path, char *const argv[], char *const envp[]) {
  RESOLVE(execve);
  WITH_PRELOAD(envp, e, return real_execve(path, argv, e));
}

int execv(const char *path, char *const argv[]) {
  RESOLVE(execve);
  WITH_PRELOAD(environ, e, return real_execve(path, argv, e));
}

int execvpe(const char *file, char *const argv[], char *const envp[]) {
  RESOLVE(execvpe);
  WITH_PRELOAD(envp, e, return real_execvpe(file, argv, e));
}

int execvp(const char *file, char *const argv[]) {
  RESOLVE(execvpe);
  WITH_PRELOAD(environ, e, return real_execvpe(file, argv, e));
}

int posix_spawn(pid_t *pid, const char *path, const posix_spawn_file_actions_t *fa,
                const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  RESOLVE(posix_spawn);
  WITH_PRELOAD(envp, e, return real_posix_spawn(pid, path, fa, attr, argv, e));
}

int posix_spawnp(pid_t *pid, const char *file, const posix_spawn_file_actions_t *fa,
                 const posix_spawnattr_t *attr, char *const argv[], char *const envp[]) {
  RESOLVE(posix_spawnp);
  WITH_PRELOAD(envp, e, return real_posix_spawnp(pid, file, fa, attr, argv, e));
}
