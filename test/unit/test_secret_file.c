/*
 * test_secret_file.c — bb_read_secret_file: the permission rules every
 * secret file follows, lengths, and that no problem text quotes the content.
 */
#include "secret_file.h"
#include "tap.h"

#include <fcntl.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

static char dir[] = "/tmp/bb_secret_file_XXXXXX";

static const char *
write_file(const char *name, const char *content, mode_t mode)
{
	static char path[256];
	int			fd;

	snprintf(path, sizeof(path), "%s/%s", dir, name);
	unlink(path);
	fd = open(path, O_WRONLY | O_CREAT | O_TRUNC, 0600);
	if (fd < 0 || write(fd, content, strlen(content)) != (ssize_t) strlen(content))
		exit(2);
	close(fd);
	chmod(path, mode);
	return path;
}

int
main(void)
{
	unsigned char buf[64];
	char		problem[512];
	size_t		len;
	const char *secret = "the-secret-content-0123456789abcdef";
	const char *path;

	if (mkdtemp(dir) == NULL)
		return 2;

	path = write_file("ok", secret, 0600);
	ok(bb_read_secret_file(path, "test file", buf, sizeof(buf), &len, problem, sizeof(problem)) &&
	   len == strlen(secret) && memcmp(buf, secret, len) == 0, "a 0600 file of the server's user is read whole");
	path = write_file("ro", secret, 0400);
	ok(bb_read_secret_file(path, "test file", buf, sizeof(buf), &len, problem, sizeof(problem)),
	   "a 0400 file is read");

	path = write_file("world", secret, 0604);
	ok(!bb_read_secret_file(path, "test file", buf, sizeof(buf), &len, problem, sizeof(problem)) &&
	   strstr(problem, "mode 0604") != NULL, "a file readable by others is refused, naming its mode");
	ok(strstr(problem, "the-secret") == NULL, "the problem does not quote the content");
	path = write_file("group", secret, 0640);
	ok(!bb_read_secret_file(path, "test file", buf, sizeof(buf), &len, problem, sizeof(problem)) &&
	   strstr(problem, "mode 0640") != NULL, "a file readable by its group is refused");
	path = write_file("gx", secret, 0610);
	ok(!bb_read_secret_file(path, "test file", buf, sizeof(buf), &len, problem, sizeof(problem)),
	   "any group or other bit is refused (group execute)");

	ok(!bb_read_secret_file(dir, "test file", buf, sizeof(buf), &len, problem, sizeof(problem)) &&
	   strstr(problem, "not a regular file") != NULL, "a directory is refused");
	ok(!bb_read_secret_file("/nonexistent/bb-secret", "test file", buf, sizeof(buf), &len, problem, sizeof(problem)) &&
	   strstr(problem, "could not open test file") != NULL, "a missing file is refused, naming the kind of file");

	path = write_file("long", "0123456789012345678901234567890123456789012345678901234567890123X", 0600);
	ok(!bb_read_secret_file(path, "test file", buf, sizeof(buf), &len, problem, sizeof(problem)) &&
	   strstr(problem, "longer than 64 bytes") != NULL, "a file longer than the buffer is refused");
	ok(strstr(problem, "0123456789") == NULL, "without quoting it");
	path = write_file("exact", "0123456789012345678901234567890123456789012345678901234567890123", 0600);
	ok(bb_read_secret_file(path, "test file", buf, sizeof(buf), &len, problem, sizeof(problem)) && len == 64,
	   "a file exactly as long as the buffer is read");
	path = write_file("empty", "", 0600);
	ok(bb_read_secret_file(path, "test file", buf, sizeof(buf), &len, problem, sizeof(problem)) && len == 0,
	   "an empty file reads as 0 bytes (the caller judges the length)");

	{
		char		cmd[300];

		snprintf(cmd, sizeof(cmd), "rm -rf '%s'", dir);
		if (system(cmd) != 0)
			return 2;
	}
	return tap_done();
}
