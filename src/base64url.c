/*
 * base64url.c — table-driven unpadded base64url (see base64url.h).
 *
 * libsodium's codec is constant-time, which costs more than the cipher on
 * short values; what passes through here (ciphertexts, token segments) is
 * not secret, so a lookup table is safe.
 */
#include "base64url.h"

#include <stdint.h>
#include <string.h>

static const char b64url_chars[] =
"ABCDEFGHIJKLMNOPQRSTUVWXYZabcdefghijklmnopqrstuvwxyz0123456789-_";

/* 0..63 for valid characters, 0xFF otherwise */
static const unsigned char b64url_values[256] = {
	['A'] = 1, ['B'] = 2, ['C'] = 3, ['D'] = 4, ['E'] = 5, ['F'] = 6, ['G'] = 7,
	['H'] = 8, ['I'] = 9, ['J'] = 10, ['K'] = 11, ['L'] = 12, ['M'] = 13,
	['N'] = 14, ['O'] = 15, ['P'] = 16, ['Q'] = 17, ['R'] = 18, ['S'] = 19,
	['T'] = 20, ['U'] = 21, ['V'] = 22, ['W'] = 23, ['X'] = 24, ['Y'] = 25,
	['Z'] = 26, ['a'] = 27, ['b'] = 28, ['c'] = 29, ['d'] = 30, ['e'] = 31,
	['f'] = 32, ['g'] = 33, ['h'] = 34, ['i'] = 35, ['j'] = 36, ['k'] = 37,
	['l'] = 38, ['m'] = 39, ['n'] = 40, ['o'] = 41, ['p'] = 42, ['q'] = 43,
	['r'] = 44, ['s'] = 45, ['t'] = 46, ['u'] = 47, ['v'] = 48, ['w'] = 49,
	['x'] = 50, ['y'] = 51, ['z'] = 52, ['0'] = 53, ['1'] = 54, ['2'] = 55,
	['3'] = 56, ['4'] = 57, ['5'] = 58, ['6'] = 59, ['7'] = 60, ['8'] = 61,
	['9'] = 62, ['-'] = 63, ['_'] = 64,
};

/* the table above stores value + 1 so that 0 can mean "not base64url" */
#define B64_VALUE(c) ((int) b64url_values[(unsigned char) (c)] - 1)

size_t
bb_b64url_encoded_len(size_t n)
{
	return (n / 3) * 4 + (n % 3 == 0 ? 0 : n % 3 + 1);
}

void
bb_b64url_encode(char *out, const unsigned char *bin, size_t bin_len)
{
	char	   *o = out;
	size_t		i = 0;

	for (; i + 3 <= bin_len; i += 3)
	{
		uint32_t	v = ((uint32_t) bin[i] << 16) | ((uint32_t) bin[i + 1] << 8) | bin[i + 2];

		o[0] = b64url_chars[(v >> 18) & 63];
		o[1] = b64url_chars[(v >> 12) & 63];
		o[2] = b64url_chars[(v >> 6) & 63];
		o[3] = b64url_chars[v & 63];
		o += 4;
	}
	if (bin_len - i == 1)
	{
		o[0] = b64url_chars[bin[i] >> 2];
		o[1] = b64url_chars[(bin[i] & 3) << 4];
		o += 2;
	}
	else if (bin_len - i == 2)
	{
		uint32_t	v = ((uint32_t) bin[i] << 8) | bin[i + 1];

		o[0] = b64url_chars[v >> 10];
		o[1] = b64url_chars[(v >> 4) & 63];
		o[2] = b64url_chars[(v & 15) << 2];
		o += 3;
	}
	*o = '\0';
}

/*
 * Decoding tables: for each of the four positions in a group of four
 * characters, a character's six bits already shifted into place in a 24-bit
 * word, or B64_BAD for a character outside the alphabet.  A group decodes
 * as the OR of four lookups; the bad marks are ORed into one word and
 * checked once at the end, so the loop has no branch per character.
 */
#define B64_BAD 0x01000000u
#define B64_DIGIT(c) \
	((c) >= 'A' && (c) <= 'Z' ? (c) - 'A' : \
	 (c) >= 'a' && (c) <= 'z' ? (c) - 'a' + 26 : \
	 (c) >= '0' && (c) <= '9' ? (c) - '0' + 52 : \
	 (c) == '-' ? 62 : (c) == '_' ? 63 : -1)
#define B64_ENTRY(c, shift) \
	(B64_DIGIT(c) < 0 ? B64_BAD : (uint32_t) B64_DIGIT(c) << (shift))
#define B64_ROW(r, shift) \
	B64_ENTRY((r) * 16 + 0, shift), B64_ENTRY((r) * 16 + 1, shift), \
	B64_ENTRY((r) * 16 + 2, shift), B64_ENTRY((r) * 16 + 3, shift), \
	B64_ENTRY((r) * 16 + 4, shift), B64_ENTRY((r) * 16 + 5, shift), \
	B64_ENTRY((r) * 16 + 6, shift), B64_ENTRY((r) * 16 + 7, shift), \
	B64_ENTRY((r) * 16 + 8, shift), B64_ENTRY((r) * 16 + 9, shift), \
	B64_ENTRY((r) * 16 + 10, shift), B64_ENTRY((r) * 16 + 11, shift), \
	B64_ENTRY((r) * 16 + 12, shift), B64_ENTRY((r) * 16 + 13, shift), \
	B64_ENTRY((r) * 16 + 14, shift), B64_ENTRY((r) * 16 + 15, shift)
#define B64_TABLE(shift) { \
	B64_ROW(0, shift), B64_ROW(1, shift), B64_ROW(2, shift), B64_ROW(3, shift), \
	B64_ROW(4, shift), B64_ROW(5, shift), B64_ROW(6, shift), B64_ROW(7, shift), \
	B64_ROW(8, shift), B64_ROW(9, shift), B64_ROW(10, shift), B64_ROW(11, shift), \
	B64_ROW(12, shift), B64_ROW(13, shift), B64_ROW(14, shift), B64_ROW(15, shift) }

static const uint32_t b64url_dec0[256] = B64_TABLE(18);
static const uint32_t b64url_dec1[256] = B64_TABLE(12);
static const uint32_t b64url_dec2[256] = B64_TABLE(6);
static const uint32_t b64url_dec3[256] = B64_TABLE(0);

int
bb_b64url_decode(unsigned char *bin, size_t bin_cap, size_t *bin_len,
				 const char *in, size_t n)
{
	const unsigned char *u = (const unsigned char *) in;
	size_t		full = n / 4,
				rest = n % 4,
				out_len,
				i;
	unsigned char *o = bin;
	uint32_t	bad = 0;

	if (rest == 1)
		return -1;
	out_len = full * 3 + (rest == 0 ? 0 : rest - 1);
	if (out_len > bin_cap)
		return -1;

	for (i = 0; i < full; i++, u += 4)
	{
		uint32_t	v = b64url_dec0[u[0]] | b64url_dec1[u[1]] |
			b64url_dec2[u[2]] | b64url_dec3[u[3]];

		bad |= v;
		o[0] = (unsigned char) (v >> 16);
		o[1] = (unsigned char) (v >> 8);
		o[2] = (unsigned char) v;
		o += 3;
	}
	if (bad & B64_BAD)
		return -1;
	if (rest >= 2)
	{
		int			a = B64_VALUE(u[0]),
					b = B64_VALUE(u[1]),
					c = rest == 3 ? B64_VALUE(u[2]) : 0;

		if ((a | b | c) < 0)
			return -1;
		o[0] = (unsigned char) ((a << 2) | (b >> 4));
		if (rest == 2)
		{
			if ((b & 15) != 0)
				return -1;		/* non-canonical trailing bits */
		}
		else
		{
			o[1] = (unsigned char) ((b << 4) | (c >> 2));
			if ((c & 3) != 0)
				return -1;
		}
	}
	*bin_len = out_len;
	return 0;
}
