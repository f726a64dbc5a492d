/*
 * secret_file.c — one set of permission rules for every file holding a
 * secret (see secret_file.h).
 *
 * The file is opened first and its descriptor checked with fstat, so the
 * rules apply to the file that is read, not to whatever the path names a
 * moment earlier.  One byte more than the caller's capacity is read to tell
 * "too long" from "exactly full".
 */
#include "secret_file.h"

#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#include <sodium.h>

bool
bb_read_secret_file(const char *path, const char *what,
					unsigned char *buf, size_t cap, size_t *len,
					char *problem, size_t problem_len)
{
	struct stat st;
	int			fd;
	size_t		got = 0;
	unsigned char extra;

	*len = 0;
	fd = open(path, O_RDONLY | O_CLOEXEC);
	if (fd < 0)
	{
		snprintf(problem, problem_len, "could not open %s \"%s\": %s",
				 what, path, strerror(errno));
		return false;
	}
	if (fstat(fd, &st) != 0 || !S_ISREG(st.st_mode))
	{
		close(fd);
		snprintf(problem, problem_len, "%s \"%s\" is not a regular file", what, path);
		return false;
	}
	if (st.st_uid != geteuid())
	{
		close(fd);
		snprintf(problem, problem_len,
				 "%s \"%s\" is not owned by the server's operating-system user (owner uid %u)",
				 what, path, (unsigned) st.st_uid);
		return false;
	}
	if ((st.st_mode & (S_IRWXG | S_IRWXO)) != 0)
	{
		close(fd);
		snprintf(problem, problem_len,
				 "%s \"%s\" is accessible by group or others (mode %04o); it must be 0600 or 0400",
				 what, path, (unsigned) (st.st_mode & 07777));
		return false;
	}
	while (got < cap)
	{
		ssize_t		n = read(fd, buf + got, cap - got);

		if (n < 0 && errno == EINTR)
			continue;
		if (n < 0)
		{
			int			saved = errno;

			close(fd);
			sodium_memzero(buf, cap);
			snprintf(problem, problem_len, "could not read %s \"%s\": %s",
					 what, path, strerror(saved));
			return false;
		}
		if (n == 0)
			break;
		got += (size_t) n;
	}
	if (got == cap && read(fd, &extra, 1) > 0)
	{
		close(fd);
		sodium_memzero(buf, cap);
		sodium_memzero(&extra, 1);
		snprintf(problem, problem_len, "%s \"%s\" is longer than %zu bytes", what, path, cap);
		return false;
	}
	close(fd);
	*len = got;
	return true;
}
