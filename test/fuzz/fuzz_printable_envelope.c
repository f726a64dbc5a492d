/*
 * fuzz_printable_envelope.c — libFuzzer target for the printable envelope
 * ("bbx1:" + base64url) that text columns hold.  Every input must be
 * refused or decoded without a crash, leak or UB, and whatever decodes must
 * print back to exactly the input (the form is canonical: one text per
 * envelope), then parse and open like any envelope.
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
	size_t		cap = bb_env_binary_cap(size) + 1;
	unsigned char *bin;
	size_t		bin_len = 0;
	bb_envelope env;

	if (!initialised)
	{
		if (sodium_init() < 0)
			abort();
		memset(key, 7, sizeof(key));
		initialised = 1;
	}

	bin = malloc(cap);
	if (bb_env_from_text(bin, cap, &bin_len, (const char *) data, size) == BB_ENV_OK)
	{
		char	   *again;

		if (bin_len > cap - 1 || !bb_env_text_has_prefix((const char *) data, size))
			abort();
		again = malloc(bb_env_text_size(bin_len) + 1);
		bb_env_to_text(again, bin, bin_len);
		if (strlen(again) != size || memcmp(again, data, size) != 0)
			abort();			/* two texts for one envelope */
		free(again);
		if (bb_env_parse(bin, bin_len, &env) == BB_ENV_OK)
		{
			unsigned char *plain = malloc(bb_env_plain_size(&env) + 1);
			unsigned char ad_space[BB_ENV_AD_PREFIX_BYTES];	/* exactly what no caller bytes need */

			(void) bb_env_open(plain, &env, BB_ENV_DOMAIN_COLUMN, NULL, 0, ad_space, key);
			free(plain);
		}
	}
	free(bin);
	return 0;
}
