/*
 * fuzz_envelope.c — libFuzzer target for the envelope codec: binary framing,
 * the printable form, and authenticated opening with a fixed key.  Every
 * input must be refused or opened without a crash, leak or UB.
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
	unsigned char *bin;
	unsigned char *plain;
	size_t		bin_len = 0;

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

	/* printable envelope */
	bin = malloc(bb_env_binary_cap(size) + 1);
	if (bb_env_from_text(bin, bb_env_binary_cap(size) + 1, &bin_len, (const char *) data, size) == BB_ENV_OK &&
		bb_env_parse(bin, bin_len, &env) == BB_ENV_OK)
	{
		plain = malloc(bb_env_plain_size(&env) + 1);
		(void) bb_env_open(plain, &env, NULL, 0, key);
		free(plain);
	}
	free(bin);
	return 0;
}
