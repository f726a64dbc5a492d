/*
 * fuzz_jwt.c — libFuzzer target for JWT framing and HS256 verification.
 */
#include <stdint.h>
#include <stdlib.h>
#include <sodium.h>

#include "jwt.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static const unsigned char secret[] = "fuzz-secret";
	static int	initialised = 0;
	unsigned char *buf;
	bb_jwt		jwt;

	if (!initialised)
	{
		if (sodium_init() < 0)
			abort();
		initialised = 1;
	}
	buf = malloc(size + 1);
	if (bb_jwt_parse((const char *) data, size, buf, &jwt) == BB_JWT_OK)
		(void) bb_jwt_verify_hs256((const char *) data, &jwt, secret, sizeof(secret) - 1);
	free(buf);
	return 0;
}
