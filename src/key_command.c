/*
 * key_command.c — run a shell command with a deadline and capture its stdout.
 *
 * root_key.c runs brandbos.root_key_command through this, in the postmaster
 * (with preload, before the server accepts connections) or in a backend.
 * popen() cannot be given a time limit and its child cannot be killed as a
 * whole, so a hanging key command used to hang the server's start.
 *
 * Invariants:
 *  - the command runs as "/bin/sh -c command" in a new process group whose
 *    id is the child's pid (set in the child and in the parent, so there is
 *    no window in which a kill of the group misses it);
 *  - the child gets the default disposition of every signal the server
 *    handles or ignores, an empty signal mask, stdin from /dev/null, stdout
 *    into a close-on-exec pipe that only we read, and the server's stderr;
 *  - the wait is bounded: at the deadline (or when should_stop says so) the
 *    whole process group gets SIGKILL; it gets SIGKILL at the end in every
 *    case, so nothing the command left behind keeps running;
 *  - the child is always reaped (waitpid, retried on EINTR): no zombie;
 *  - the output is never logged here; bytes beyond the caller's buffer are
 *    read (so the writer is not blocked) into a scratch buffer that is wiped.
 *
 * Pure POSIX C: no PostgreSQL headers, so test/unit runs it on its own.
 */
#include "key_command.h"

#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/types.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

/* how often the exit of the command and should_stop are looked at */
#define POLL_SLICE_MS		20
/* most bytes read in one go before the deadline is looked at again */
#define DRAIN_CHUNK_BYTES	65536

/* memset through a volatile pointer: the wipe of a dead buffer is not optimised away */
static void *(*const volatile wipe) (void *, int, size_t) = memset;

static long long
now_ms(void)
{
	struct timespec ts;

	clock_gettime(CLOCK_MONOTONIC, &ts);
	return (long long) ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

/* in the child, between fork and exec: async-signal-safe calls only */
static void
child_exec(const char *command, int read_fd, int write_fd)
{
	static const int signals[] = {
		SIGHUP, SIGINT, SIGQUIT, SIGTERM, SIGPIPE, SIGALRM, SIGUSR1, SIGUSR2,
		SIGCHLD, SIGTTIN, SIGTTOU, SIGXFSZ
	};
	struct sigaction dfl;
	sigset_t	none;
	size_t		i;
	int			devnull;

	(void) setpgid(0, 0);
	memset(&dfl, 0, sizeof(dfl));
	dfl.sa_handler = SIG_DFL;
	sigemptyset(&dfl.sa_mask);
	for (i = 0; i < sizeof(signals) / sizeof(signals[0]); i++)
		(void) sigaction(signals[i], &dfl, NULL);
	sigemptyset(&none);
	(void) sigprocmask(SIG_SETMASK, &none, NULL);

	if (read_fd != STDOUT_FILENO)
		(void) close(read_fd);
	if (write_fd != STDOUT_FILENO)
	{
		if (dup2(write_fd, STDOUT_FILENO) < 0)
			_exit(127);
		(void) close(write_fd);
	}
	else
		(void) fcntl(STDOUT_FILENO, F_SETFD, 0);	/* keep it across exec */
	devnull = open("/dev/null", O_RDONLY);
	if (devnull > STDIN_FILENO)
	{
		(void) dup2(devnull, STDIN_FILENO);
		(void) close(devnull);
	}
	execl("/bin/sh", "sh", "-c", command, (char *) NULL);
	_exit(127);
}

/*
 * Read what the pipe has now (at most DRAIN_CHUNK_BYTES) into buf, then
 * into sink once buf is full.  Returns true at end of file.
 */
static bool
drain(int fd, unsigned char *buf, size_t cap, unsigned char *sink, size_t sink_len,
	  bb_cmd_result *result)
{
	size_t		budget = DRAIN_CHUNK_BYTES;

	while (budget > 0)
	{
		ssize_t		n;

		if (result->len < cap)
			n = read(fd, buf + result->len, cap - result->len);
		else
			n = read(fd, sink, sink_len);
		if (n > 0)
		{
			if (result->len < cap)
				result->len += (size_t) n;
			else
				result->truncated = true;
			budget -= (size_t) n < budget ? (size_t) n : budget;
			continue;
		}
		if (n == 0)
			return true;
		if (errno == EINTR)
			continue;
		break;					/* EAGAIN: nothing more for now */
	}
	return false;
}

void
bb_run_command(const char *command, int timeout_ms, bool (*should_stop) (void),
			   unsigned char *buf, size_t cap, bb_cmd_result *result)
{
	unsigned char sink[256];
	int			fds[2];
	pid_t		pid;
	long long	deadline;
	bool		eof = false;
	bool		exited = false;
	bool		reaped = true;
	int			status = 0;

	memset(result, 0, sizeof(*result));
	if (pipe(fds) != 0)
	{
		result->status = BB_CMD_START_FAILED;
		result->error = errno;
		return;
	}
	(void) fcntl(fds[0], F_SETFD, FD_CLOEXEC);
	(void) fcntl(fds[1], F_SETFD, FD_CLOEXEC);

	fflush(NULL);				/* or the child would write our buffers twice */
	pid = fork();
	if (pid < 0)
	{
		result->status = BB_CMD_START_FAILED;
		result->error = errno;
		close(fds[0]);
		close(fds[1]);
		return;
	}
	if (pid == 0)
		child_exec(command, fds[0], fds[1]);

	/* parent */
	(void) setpgid(pid, pid);	/* EACCES once it has exec'd: it did it itself */
	close(fds[1]);
	(void) fcntl(fds[0], F_SETFL, O_NONBLOCK);
	deadline = now_ms() + (timeout_ms > 0 ? timeout_ms : 0);
	result->status = BB_CMD_OK;

	for (;;)
	{
		siginfo_t	info;
		struct pollfd pfd;
		long long	left;

		if (!eof)
			eof = drain(fds[0], buf, cap, sink, sizeof(sink), result);

		/* has it exited?  WNOWAIT: reaped only below, after the group is killed */
		memset(&info, 0, sizeof(info));
		if (waitid(P_PID, (id_t) pid, &info, WEXITED | WNOHANG | WNOWAIT) == 0 &&
			info.si_pid == pid)
			exited = true;
		if (exited)
		{
			/* what it wrote just before exiting (a leftover may hold the pipe open) */
			if (!eof)
				(void) drain(fds[0], buf, cap, sink, sizeof(sink), result);
			break;
		}

		left = deadline - now_ms();
		if (left <= 0)
		{
			result->status = BB_CMD_TIMED_OUT;
			break;
		}
		if (should_stop != NULL && should_stop())
		{
			result->status = BB_CMD_INTERRUPTED;
			break;
		}
		pfd.fd = fds[0];
		pfd.events = POLLIN;
		pfd.revents = 0;
		/* an error or EINTR just means another round: the deadline bounds them */
		(void) poll(&pfd, eof ? 0 : 1, (int) (left < POLL_SLICE_MS ? left : POLL_SLICE_MS));
	}

	/* the command's whole process group: what hangs, and whatever it left behind */
	(void) kill(-pid, SIGKILL);
	for (;;)
	{
		if (waitpid(pid, &status, 0) == pid)
			break;
		if (errno != EINTR)
		{
			/* cannot learn how it ended (SIGCHLD ignored?): not a success */
			reaped = false;
			result->error = errno;
			break;
		}
	}
	close(fds[0]);
	wipe(sink, 0, sizeof(sink));

	if (result->status == BB_CMD_OK)
	{
		result->wait_status = status;
		if (!reaped || !WIFEXITED(status) || WEXITSTATUS(status) != 0)
			result->status = BB_CMD_FAILED;
	}
}
