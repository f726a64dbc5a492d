/*
 * key_command.h — run a shell command with a deadline and capture its stdout.
 *
 * Pure POSIX C (no PostgreSQL headers), so the unit tests run it on its own.
 * Used by root_key.c for brandbos.root_key_command.
 */
#ifndef BRANDBOS_KEY_COMMAND_H
#define BRANDBOS_KEY_COMMAND_H

#include <stdbool.h>
#include <stddef.h>

typedef enum bb_cmd_status
{
	BB_CMD_OK,					/* exited with status 0 */
	BB_CMD_START_FAILED,		/* pipe() or fork() failed; see error */
	BB_CMD_FAILED,				/* exited non-zero or died of a signal; see wait_status */
	BB_CMD_TIMED_OUT,			/* still running at the deadline: killed */
	BB_CMD_INTERRUPTED			/* should_stop() said so: killed */
} bb_cmd_status;

typedef struct bb_cmd_result
{
	bb_cmd_status status;
	int			wait_status;	/* from waitpid(), for BB_CMD_OK / BB_CMD_FAILED */
	int			error;			/* errno: BB_CMD_START_FAILED, or BB_CMD_FAILED when waitpid failed */
	size_t		len;			/* bytes of stdout kept in the buffer */
	bool		truncated;		/* it printed more than the buffer holds */
} bb_cmd_result;

/*
 * Run "/bin/sh -c command" in a process group of its own, stdin from
 * /dev/null, stdout into buf (at most cap bytes are kept; the rest is read
 * and discarded), stderr inherited.  Returns when the command has exited, or
 * timeout_ms after the start, or when should_stop (may be NULL, polled every
 * few milliseconds) returns true; in the last two cases the whole process
 * group is killed with SIGKILL.  In every case the process group is sent
 * SIGKILL at the end (so nothing the command left in the background lives
 * on) and the child is reaped before returning: no zombie is left behind.
 * Signals interrupting the waits (EINTR) are retried.  The bytes of stdout
 * that were discarded are wiped; buf is the caller's to wipe.
 */
extern void bb_run_command(const char *command, int timeout_ms,
						   bool (*should_stop) (void),
						   unsigned char *buf, size_t cap,
						   bb_cmd_result *result);

#endif							/* BRANDBOS_KEY_COMMAND_H */
