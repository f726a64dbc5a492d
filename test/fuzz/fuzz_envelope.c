/*
 * fuzz_envelope.c — libFuzzer target for the binary envelope: framing and
 * authenticated opening with a fixed key.  Every input must be refused or
 * opened without a crash, leak or UB.  (The printable form has its own
 * target, fuzz_printable_envelope.c.)
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>
#include <sodium.h>

#include "envelope.h"

int			LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
	static unsigned char key[BB_ENV_KEY_BYTES];
	static int	initialised = 0;
	bb_envelope env;
	unsigned char *plain;

	if (!initialised)
	{
		if (sodium_init() < 0)
			abort();
		memset(key, 7, sizeof(key));
		initialised = 1;
	}

	/* raw envelope */
	if (bb_env_parse(data, size, &env) == BB_ENV_OK)
	{
		plain = malloc(bb_env_plain_size(&env) + 1);
		(void) bb_env_open(plain, &env, (const unsigned char *) "ad", 2, key);
		free(plain);
	}

	return 0;
}
