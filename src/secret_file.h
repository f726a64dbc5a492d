/*
 * secret_file.h — reading a secret from a file the server's user alone may
 * read, free of PostgreSQL headers.  The root key file, the previous root key
 * file and the JWT secret file follow the same rules, checked here once:
 * a regular file, owned by the server's operating-system user, with no
 * group or other permission bits (0600 or 0400).
 */
#ifndef BRANDBOS_SECRET_FILE_H
#define BRANDBOS_SECRET_FILE_H

#include <stdbool.h>
#include <stddef.h>

/*
 * Read at most cap bytes of the file at path into buf and set *len.  On
 * failure return false and describe why in problem (what names the kind of
 * file, e.g. "key file"); the description names the path and the file's
 * mode or owner, never a byte of its content.  A file longer than cap is a
 * failure.  buf is wiped on failure; on success the caller wipes it.
 */
extern bool bb_read_secret_file(const char *path, const char *what,
								unsigned char *buf, size_t cap, size_t *len,
								char *problem, size_t problem_len);

#endif							/* BRANDBOS_SECRET_FILE_H */
