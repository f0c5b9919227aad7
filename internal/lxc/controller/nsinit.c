// The container helper. The controller starts the driver executable again,
// in the container's new namespaces, with ContainerArg as its first
// argument. This constructor runs before the Go runtime starts (whose
// start-up costs tens of milliseconds for a binary of this size) and
// carries out a program the controller compiled (program.go): mounts,
// hostname, pivot_root, then the exec of the container's init. All the
// decisions are the controller's; this file only executes.
//
// The program arrives on fd 3 until EOF: records of NUL-terminated
// strings, "op", the number of arguments, the arguments. An error is
// written to fd 4, which is close-on-exec: the controller reads EOF there
// once the init runs.

#define _GNU_SOURCE
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mount.h>
#include <sys/stat.h>
#include <sys/syscall.h>
#include <unistd.h>

#include "nsinit.h"

#define PROGRAM_FD 3
#define ERROR_FD 4
#define MAX_PROGRAM (1 << 20)
#define MAX_ARGS 4096

static void fail(const char *fmt, ...) __attribute__((noreturn, format(printf, 1, 2)));

static void fail(const char *fmt, ...)
{
	char msg[8192];
	va_list ap;
	va_start(ap, fmt);
	int n = vsnprintf(msg, sizeof msg, fmt, ap);
	va_end(ap);
	if (n < 0)
		n = 0;
	if ((size_t)n >= sizeof msg)
		n = sizeof msg - 1;
	for (int off = 0; off < n;) {
		ssize_t w = write(ERROR_FD, msg + off, n - off);
		if (w <= 0)
			break;
		off += w;
	}
	_exit(1);
}

// errtext is strerror as Go spells it: in lower case.
static const char *errtext(int err)
{
	static char buf[256];
	snprintf(buf, sizeof buf, "%s", strerror(err));
	buf[0] = tolower((unsigned char)buf[0]);
	return buf;
}

static char *read_program(size_t *len)
{
	size_t cap = 4096, n = 0;
	char *buf = malloc(cap);
	if (!buf)
		fail("container: out of memory");
	for (;;) {
		if (n == cap) {
			if (cap >= MAX_PROGRAM)
				fail("container: program larger than %d bytes", MAX_PROGRAM);
			cap *= 2;
			buf = realloc(buf, cap);
			if (!buf)
				fail("container: out of memory");
		}
		ssize_t r = read(PROGRAM_FD, buf + n, cap - n);
		if (r < 0 && errno == EINTR)
			continue;
		if (r < 0)
			fail("container: read program: %s", errtext(errno));
		if (r == 0)
			break;
		n += r;
	}
	close(PROGRAM_FD);
	*len = n;
	return buf;
}

// mkdir_p is mkdir -p.
static int mkdir_p(char *path, mode_t mode)
{
	for (char *p = path + 1; *p; p++) {
		if (*p != '/')
			continue;
		*p = 0;
		int r = mkdir(path, mode);
		*p = '/';
		if (r < 0 && errno != EEXIST)
			return -1;
	}
	if (mkdir(path, mode) < 0 && errno != EEXIST)
		return -1;
	return 0;
}

static const char *nonempty(const char *s) { return *s ? s : NULL; }

// find_init resolves the init's path as execvp would, in PATH.
static const char *find_init(const char *name, const char *path)
{
	static char buf[4096];
	if (strchr(name, '/'))
		return name;
	for (const char *dir = path; *dir;) {
		const char *end = strchr(dir, ':');
		size_t dlen = end ? (size_t)(end - dir) : strlen(dir);
		if (dlen > 0 && (size_t)snprintf(buf, sizeof buf, "%.*s/%s", (int)dlen, dir, name) < sizeof buf) {
			struct stat st;
			if (stat(buf, &st) == 0 && S_ISREG(st.st_mode) && access(buf, X_OK) == 0)
				return buf;
		}
		if (!end)
			break;
		dir = end + 1;
	}
	return NULL;
}

static void run(char **a, int n, const char *op)
{
#define NEED(k)                                                                   \
	do {                                                                          \
		if (n != (k))                                                             \
			fail("container: op %s takes %d arguments, got %d", op, (k) - 1, n - 1); \
	} while (0)
	// a[0] is the context of an error: what the op is for.
	const char *ctx = a[0];
	if (!strcmp(op, "mount")) {
		NEED(6);
		unsigned long flags = strtoul(a[4], NULL, 10);
		if (mount(nonempty(a[1]), a[2], nonempty(a[3]), flags, nonempty(a[5])) < 0)
			fail("%s: %s", ctx, errtext(errno));
	} else if (!strcmp(op, "mkdir")) {
		NEED(3);
		if (mkdir_p(a[1], strtoul(a[2], NULL, 8)) < 0)
			fail("%s: %s", ctx, errtext(errno));
	} else if (!strcmp(op, "touch")) {
		NEED(3);
		int fd = open(a[1], O_WRONLY | O_CREAT | O_CLOEXEC | O_NOCTTY, strtoul(a[2], NULL, 8));
		if (fd < 0)
			fail("%s: %s", ctx, errtext(errno));
		close(fd);
	} else if (!strcmp(op, "symlink")) {
		NEED(3);
		if (symlink(a[1], a[2]) < 0)
			fail("%s: %s", ctx, errtext(errno));
	} else if (!strcmp(op, "hostname")) {
		NEED(2);
		if (sethostname(a[1], strlen(a[1])) < 0)
			fail("%s: %s", ctx, errtext(errno));
	} else if (!strcmp(op, "chdir")) {
		NEED(2);
		if (chdir(a[1]) < 0)
			fail("%s: %s", ctx, errtext(errno));
	} else if (!strcmp(op, "pivot")) {
		// Into the current directory; the old root is detached.
		NEED(1);
		if (syscall(SYS_pivot_root, ".", ".") < 0)
			fail("%s: pivot_root: %s", ctx, errtext(errno));
		if (umount2(".", MNT_DETACH) < 0)
			fail("%s: detach the host root: %s", ctx, errtext(errno));
		if (chdir("/") < 0)
			fail("%s: %s", ctx, errtext(errno));
	} else {
		fail("container: unknown op %s", op);
	}
#undef NEED
}

// exec_init is the last op: "exec", not-found message, not-executable
// message, PATH, argc, argv..., environment...
static void exec_init(char **a, int n)
{
	if (n < 5)
		fail("container: op exec takes at least 5 arguments, got %d", n);
	const char *notfound = a[0], *notexec = a[1], *path = a[2];
	int argc = atoi(a[3]);
	if (argc < 1 || 4 + argc > n)
		fail("container: op exec: bad argument count %d", argc);
	char **argv = calloc(argc + 1, sizeof *argv);
	char **envp = calloc(n - 4 - argc + 1, sizeof *envp);
	if (!argv || !envp)
		fail("container: out of memory");
	memcpy(argv, a + 4, argc * sizeof *argv);
	memcpy(envp, a + 4 + argc, (n - 4 - argc) * sizeof *envp);
	const char *file = find_init(argv[0], path);
	struct stat st;
	if (!file || stat(file, &st) < 0)
		fail("%s", notfound);
	if (!S_ISREG(st.st_mode) || !(st.st_mode & 0111))
		fail("%s", notexec);
	execve(file, argv, envp);
	fail("exec init \"%s\": %s", argv[0], errtext(errno));
}

static void container_main(void)
{
	// EOF for the controller once the init is exec'd.
	if (fcntl(ERROR_FD, F_SETFD, FD_CLOEXEC) < 0)
		_exit(127);
	size_t len;
	char *prog = read_program(&len);
	if (len == 0)
		fail("container: no program received");
	if (prog[len - 1] != 0)
		fail("container: truncated program");
	static char *args[MAX_ARGS];
	for (char *p = prog, *end = prog + len; p < end;) {
		char *op = p;
		p += strlen(p) + 1;
		if (p >= end)
			fail("container: op %s without an argument count", op);
		long n = strtol(p, NULL, 10);
		p += strlen(p) + 1;
		if (n < 1 || n > MAX_ARGS)
			fail("container: op %s: bad argument count %ld", op, n);
		for (long i = 0; i < n; i++) {
			if (p >= end)
				fail("container: op %s: truncated", op);
			args[i] = p;
			p += strlen(p) + 1;
		}
		if (!strcmp(op, "exec"))
			exec_init(args, n);
		run(args, n, op);
	}
	fail("container: the program ends without exec");
}

__attribute__((constructor)) static void virtd_lxc_nsinit(int argc, char **argv, char **envp)
{
	(void)envp;
	if (argc >= 2 && !strcmp(argv[1], VIRTD_LXC_CONTAINER_ARG))
		container_main();
}
