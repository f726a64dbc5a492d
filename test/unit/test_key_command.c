/*
 * test_key_command.c — bb_run_command: output, exit status, the deadline,
 * killing the whole process group, reaping, cancel, signal hygiene.
 */
#include "key_command.h"
#include "tap.h"

#include <dirent.h>
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

static char marker[64];			/* "600.<our pid>": names only our sleeps */

static double
now_s(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return ts.tv_sec + ts.tv_nsec / 1e9;
}

/* processes alive (not zombies) whose command line is "sleep <marker>" */
static int
sleeps_alive(void)
{
	DIR		   *d = opendir("/proc");
	struct dirent *e;
	int			n = 0;

	if (d == NULL)
		return -1;
	while ((e = readdir(d)) != NULL)
	{
		char		path[300],
					buf[256],
					stat[512];
		FILE	   *f;
		size_t		len;
		char	   *state;

		if (e->d_name[0] < '0' || e->d_name[0] > '9')
			continue;
		snprintf(path, sizeof(path), "/proc/%s/cmdline", e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		len = fread(buf, 1, sizeof(buf) - 1, f);
		fclose(f);
		buf[len] = '\0';
		if (strcmp(buf, "sleep") != 0 || len < 7 || strcmp(buf + 6, marker) != 0)
			continue;
		snprintf(path, sizeof(path), "/proc/%s/stat", e->d_name);
		if ((f = fopen(path, "r")) == NULL)
			continue;
		len = fread(stat, 1, sizeof(stat) - 1, f);
		fclose(f);
		stat[len] = '\0';
		state = strrchr(stat, ')');
		if (state != NULL && state[1] == ' ' && state[2] != 'Z')
			n++;
	}
	closedir(d);
	return n;
}

/* wait up to 2 s for killed sleeps to be gone (SIGKILL is delivered asynchronously) */
static int
sleeps_alive_after_grace(void)
{
	int			i,
				n = 0;

	for (i = 0; i < 200; i++)
	{
		n = sleeps_alive();
		if (n == 0)
			break;
		usleep(10000);
	}
	return n;
}

static int	stop_calls = 0;

static bool
stop_after_a_while(void)
{
	return ++stop_calls > 10;
}

static void
run(const char *cmd, int timeout_ms, bool (*stop) (void), unsigned char *buf, size_t cap,
	bb_cmd_result *res, double *elapsed)
{
	double		t0 = now_s();

	bb_run_command(cmd, timeout_ms, stop, buf, cap, res);
	*elapsed = now_s() - t0;
}

int
main(void)
{
	unsigned char buf[128];
	bb_cmd_result res;
	double		el;
	char		cmd[256];
	sigset_t	block,
				old;

	snprintf(marker, sizeof(marker), "600.%d", (int) getpid());

	run("printf abc", 5000, NULL, buf, sizeof(buf), &res, &el);
	ok(res.status == BB_CMD_OK && res.len == 3 && memcmp(buf, "abc", 3) == 0 && !res.truncated,
	   "a command's stdout is captured");

	run("sleep 0.3; printf delayed", 5000, NULL, buf, sizeof(buf), &res, &el);
	ok(res.status == BB_CMD_OK && res.len == 7 && memcmp(buf, "delayed", 7) == 0,
	   "output after a short delay, within the timeout, is captured");

	run("echo to-stderr >&2; exit 3", 5000, NULL, buf, sizeof(buf), &res, &el);
	ok(res.status == BB_CMD_FAILED && WIFEXITED(res.wait_status) && WEXITSTATUS(res.wait_status) == 3
	   && res.len == 0, "a non-zero exit is reported with its status; stderr is not captured");

	run("kill -9 $$", 5000, NULL, buf, sizeof(buf), &res, &el);
	ok(res.status == BB_CMD_FAILED && WIFSIGNALED(res.wait_status) && WTERMSIG(res.wait_status) == 9,
	   "death by a signal is reported");

	run("cat", 2000, NULL, buf, sizeof(buf), &res, &el);
	ok(res.status == BB_CMD_OK && res.len == 0 && el < 1.5, "stdin is /dev/null");

	snprintf(cmd, sizeof(cmd), "sleep %s; echo never", marker);
	run(cmd, 300, NULL, buf, sizeof(buf), &res, &el);
	ok(res.status == BB_CMD_TIMED_OUT, "a hanging command times out");
	ok(el >= 0.25 && el < 2.0, "it returns at the deadline (%.2f s for 300 ms)", el);
	ok(sleeps_alive_after_grace() == 0, "the shell's child (sleep) was killed with the process group");

	snprintf(cmd, sizeof(cmd), "exec >&-; sleep %s", marker);
	run(cmd, 300, NULL, buf, sizeof(buf), &res, &el);
	ok(res.status == BB_CMD_TIMED_OUT && el < 2.0,
	   "a command that closes stdout but keeps running times out too");
	ok(sleeps_alive_after_grace() == 0, "and is killed");

	snprintf(cmd, sizeof(cmd), "sleep %s & printf key", marker);
	run(cmd, 5000, NULL, buf, sizeof(buf), &res, &el);
	ok(res.status == BB_CMD_OK && res.len == 3 && memcmp(buf, "key", 3) == 0 && el < 2.0,
	   "a command that exits while a background child holds stdout open succeeds at once (%.2f s)", el);
	ok(sleeps_alive_after_grace() == 0, "the background child it left is killed");

	run("head -c 100000 /dev/zero", 5000, NULL, buf, 16, &res, &el);
	ok(res.status == BB_CMD_OK && res.len == 16 && res.truncated,
	   "output longer than the buffer is read to the end and flagged truncated");

	run("yes", 300, NULL, buf, sizeof(buf), &res, &el);
	ok(res.status == BB_CMD_TIMED_OUT && res.truncated && el < 2.0,
	   "an endless writer is stopped at the deadline (%.2f s)", el);

	snprintf(cmd, sizeof(cmd), "sleep %s", marker);
	stop_calls = 0;
	run(cmd, 60000, stop_after_a_while, buf, sizeof(buf), &res, &el);
	ok(res.status == BB_CMD_INTERRUPTED && el < 2.0, "should_stop interrupts the wait (%.2f s)", el);
	ok(sleeps_alive_after_grace() == 0, "and the command is killed");

	/* the parent's blocked and ignored signals do not reach the command */
	sigemptyset(&block);
	sigaddset(&block, SIGTERM);
	sigprocmask(SIG_BLOCK, &block, &old);
	signal(SIGPIPE, SIG_IGN);
	run("kill -TERM $$; sleep 3", 2000, NULL, buf, sizeof(buf), &res, &el);
	ok(res.status == BB_CMD_FAILED && WIFSIGNALED(res.wait_status) && WTERMSIG(res.wait_status) == SIGTERM,
	   "a signal blocked in the caller is not blocked in the command");
	run("kill -PIPE $$; sleep 3", 2000, NULL, buf, sizeof(buf), &res, &el);
	ok(res.status == BB_CMD_FAILED && WIFSIGNALED(res.wait_status) && WTERMSIG(res.wait_status) == SIGPIPE,
	   "SIGPIPE ignored by the caller (as the postmaster does) is default again in the command");
	sigprocmask(SIG_SETMASK, &old, NULL);
	signal(SIGPIPE, SIG_DFL);

	errno = 0;
	ok(waitpid(-1, NULL, WNOHANG) < 0 && errno == ECHILD, "no child (and so no zombie) is left");

	return tap_done();
}
