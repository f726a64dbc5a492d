/*
 * tap.h — a minimal Test Anything Protocol emitter for the unit tests.
 */
#ifndef BRANDBOS_TAP_H
#define BRANDBOS_TAP_H

#include <stdio.h>

static int	tap_count = 0;
static int	tap_failed = 0;

#define ok(cond, ...) \
	do { \
		int tap_ok_ = (cond) ? 1 : 0; \
		tap_count++; \
		if (!tap_ok_) tap_failed++; \
		printf("%sok %d - ", tap_ok_ ? "" : "not ", tap_count); \
		printf(__VA_ARGS__); \
		printf("\n"); \
		if (!tap_ok_) printf("#   failed at %s:%d\n", __FILE__, __LINE__); \
	} while (0)

static inline int
tap_done(void)
{
	printf("1..%d\n", tap_count);
	return tap_failed == 0 ? 0 : 1;
}

#endif
