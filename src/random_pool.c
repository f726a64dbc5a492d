/*
 * random_pool.c — random bytes for nonces, drawn from a per-backend pool.
 *
 * Invariant: no two calls, in one backend or in two, ever return the same
 * bytes: each byte is handed out once and wiped, and a forked child (whose
 * pid differs from the pool's) refills before its first draw.
 */
#include "brandbos.h"

#include <sodium.h>

#include "miscadmin.h"

/*
 * Nonces need not be secret, only unique; drawing them from a pool filled
 * by one getrandom() call per 4 kB keeps a system call off every row.  The
 * pool is refilled after fork so two backends never share bytes.
 */
#define RANDOM_POOL_BYTES 4096

static unsigned char random_pool[RANDOM_POOL_BYTES];
static size_t random_pool_used = RANDOM_POOL_BYTES;
static int	random_pool_pid = 0;

void
brandbos_random_bytes(unsigned char *out, size_t len)
{
	if (len > RANDOM_POOL_BYTES / 4)
	{
		randombytes_buf(out, len);
		return;
	}
	if (random_pool_pid != MyProcPid || random_pool_used + len > RANDOM_POOL_BYTES)
	{
		randombytes_buf(random_pool, RANDOM_POOL_BYTES);
		random_pool_used = 0;
		random_pool_pid = MyProcPid;
	}
	memcpy(out, random_pool + random_pool_used, len);
	sodium_memzero(random_pool + random_pool_used, len);
	random_pool_used += len;
}
