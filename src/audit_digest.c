/*
 * audit_digest.c — a strict, bounded JSON reader for audit digests.
 *
 * Recursive descent over the bytes, never reading past len, recursing at
 * most BB_DIGEST_MAX_DEPTH levels and allocating nothing: strings are only
 * decoded for the top-level member names and the members that are read,
 * into fixed buffers; anything longer cannot be a valid value and is
 * refused by the field's own check.
 */
#include "audit_digest.h"

#include <string.h>

#define SHORT_STRING 160		/* longest decoded name/value kept (128 hex + slack) */

typedef struct reader
{
	const char *p;
	const char *end;
	int			depth;
} reader;

/* a decoded string; truncated when longer than SHORT_STRING */
typedef struct short_string
{
	char		buf[SHORT_STRING];
	size_t		len;
	int			truncated;
} short_string;

static int	skip_value(reader *r);

static void
skip_space(reader *r)
{
	while (r->p < r->end && (*r->p == ' ' || *r->p == '\t' || *r->p == '\n' || *r->p == '\r'))
		r->p++;
}

static int
hex_value(char c)
{
	if (c >= '0' && c <= '9')
		return c - '0';
	if (c >= 'a' && c <= 'f')
		return c - 'a' + 10;
	if (c >= 'A' && c <= 'F')
		return c - 'A' + 10;
	return -1;
}

static void
keep_char(short_string *s, char c)
{
	if (s == NULL)
		return;
	if (s->len < sizeof(s->buf))
		s->buf[s->len++] = c;
	else
		s->truncated = 1;
}

/*
 * A string at r->p (which is '"').  Decoded into s when s is set; escapes
 * of characters outside ASCII are kept as '?' (no value read here is
 * anything but ASCII).  Returns 0 on a syntax error.
 */
static int
read_string(reader *r, short_string *s)
{
	if (s != NULL)
	{
		s->len = 0;
		s->truncated = 0;
	}
	r->p++;						/* the opening quote */
	while (r->p < r->end)
	{
		unsigned char c = (unsigned char) *r->p++;

		if (c == '"')
			return 1;
		if (c < 0x20)
			return 0;			/* control characters must be escaped */
		if (c != '\\')
		{
			keep_char(s, (char) c);
			continue;
		}
		if (r->p >= r->end)
			return 0;
		c = (unsigned char) *r->p++;
		switch (c)
		{
			case '"':
			case '\\':
			case '/':
				keep_char(s, (char) c);
				break;
			case 'b':
				keep_char(s, '\b');
				break;
			case 'f':
				keep_char(s, '\f');
				break;
			case 'n':
				keep_char(s, '\n');
				break;
			case 'r':
				keep_char(s, '\r');
				break;
			case 't':
				keep_char(s, '\t');
				break;
			case 'u':
				{
					unsigned	code = 0;
					int			i;

					if (r->end - r->p < 4)
						return 0;
					for (i = 0; i < 4; i++)
					{
						int			v = hex_value(r->p[i]);

						if (v < 0)
							return 0;
						code = code * 16 + (unsigned) v;
					}
					r->p += 4;
					keep_char(s, code >= 0x01 && code < 0x80 ? (char) code : '?');
					break;
				}
			default:
				return 0;
		}
	}
	return 0;					/* no closing quote */
}

static int
is_digit(char c)
{
	return c >= '0' && c <= '9';
}

/*
 * A number (RFC 8259 grammar).  When it is a plain non-negative integer
 * that fits in int64, *integer receives it and *is_integer is set.
 */
static int
read_number(reader *r, int64_t *integer, int *is_integer)
{
	int			negative = 0,
				plain = 1,
				overflow = 0;
	int64_t		v = 0;

	if (r->p < r->end && *r->p == '-')
	{
		negative = 1;
		r->p++;
	}
	if (r->p >= r->end || !is_digit(*r->p))
		return 0;
	if (*r->p == '0')
		r->p++;
	else
		while (r->p < r->end && is_digit(*r->p))
		{
			int			d = *r->p++ - '0';

			if (v > (INT64_MAX - d) / 10)
				overflow = 1;
			else
				v = v * 10 + d;
		}
	if (r->p < r->end && *r->p == '.')
	{
		plain = 0;
		r->p++;
		if (r->p >= r->end || !is_digit(*r->p))
			return 0;
		while (r->p < r->end && is_digit(*r->p))
			r->p++;
	}
	if (r->p < r->end && (*r->p == 'e' || *r->p == 'E'))
	{
		plain = 0;
		r->p++;
		if (r->p < r->end && (*r->p == '+' || *r->p == '-'))
			r->p++;
		if (r->p >= r->end || !is_digit(*r->p))
			return 0;
		while (r->p < r->end && is_digit(*r->p))
			r->p++;
	}
	*is_integer = plain && !negative && !overflow;
	*integer = v;
	return 1;
}

static int
read_literal(reader *r, const char *word)
{
	size_t		n = strlen(word);

	if ((size_t) (r->end - r->p) < n || memcmp(r->p, word, n) != 0)
		return 0;
	r->p += n;
	return 1;
}

/* an array or object from its opening bracket; 1 = ok, 0 = syntax error, -1 = too deep */
static int
skip_container(reader *r, char close, int is_object)
{
	if (++r->depth > BB_DIGEST_MAX_DEPTH)
		return -1;
	r->p++;
	skip_space(r);
	if (r->p < r->end && *r->p == close)
	{
		r->p++;
		r->depth--;
		return 1;
	}
	for (;;)
	{
		int			rc;

		if (is_object)
		{
			skip_space(r);
			if (r->p >= r->end || *r->p != '"' || !read_string(r, NULL))
				return 0;
			skip_space(r);
			if (r->p >= r->end || *r->p != ':')
				return 0;
			r->p++;
		}
		rc = skip_value(r);
		if (rc != 1)
			return rc;
		skip_space(r);
		if (r->p >= r->end)
			return 0;
		if (*r->p == ',')
		{
			r->p++;
			continue;
		}
		if (*r->p != close)
			return 0;
		r->p++;
		r->depth--;
		return 1;
	}
}

/* any value; 1 = ok, 0 = syntax error, -1 = too deep */
static int
skip_value(reader *r)
{
	int64_t		ignored;
	int			is_integer;

	skip_space(r);
	if (r->p >= r->end)
		return 0;
	switch (*r->p)
	{
		case '{':
			return skip_container(r, '}', 1);
		case '[':
			return skip_container(r, ']', 0);
		case '"':
			return read_string(r, NULL);
		case 't':
			return read_literal(r, "true");
		case 'f':
			return read_literal(r, "false");
		case 'n':
			return read_literal(r, "null");
		default:
			return read_number(r, &ignored, &is_integer);
	}
}

/* exactly 2*n hex digits into out */
static int
decode_hex(const short_string *s, unsigned char *out, size_t n)
{
	size_t		i;

	if (s->truncated || s->len != 2 * n)
		return 0;
	for (i = 0; i < n; i++)
	{
		int			hi = hex_value(s->buf[2 * i]),
					lo = hex_value(s->buf[2 * i + 1]);

		if (hi < 0 || lo < 0)
			return 0;
		out[i] = (unsigned char) (hi * 16 + lo);
	}
	return 1;
}

static int
name_is(const short_string *s, const char *name)
{
	return !s->truncated && s->len == strlen(name) && memcmp(s->buf, name, s->len) == 0;
}

enum member
{
	M_FORMAT, M_CHAIN_ID, M_BLOCK_ID, M_BLOCK_HASH, M_SIGNATURE, M_PUBLIC_KEY, M_COUNT
};

static const char *const member_names[M_COUNT] = {
	"format", "chain_id", "block_id", "block_hash", "signature", "public_key"
};

static const bb_digest_status member_error[M_COUNT] = {
	BB_DIGEST_BAD_FORMAT, BB_DIGEST_BAD_CHAIN_ID, BB_DIGEST_BAD_BLOCK_ID,
	BB_DIGEST_BAD_BLOCK_HASH, BB_DIGEST_BAD_SIGNATURE, BB_DIGEST_BAD_PUBLIC_KEY
};

/* the value of a known member; returns its status */
static bb_digest_status
read_member(reader *r, enum member m, bb_digest *out)
{
	short_string value;
	int64_t		integer = 0;
	int			is_integer = 0,
				ok;

	skip_space(r);
	if (r->p >= r->end)
		return BB_DIGEST_NOT_JSON;
	if (m == M_BLOCK_ID)
	{
		if (*r->p == '"' || *r->p == '{' || *r->p == '[' || *r->p == 't' ||
			*r->p == 'f' || *r->p == 'n')
		{
			ok = skip_value(r);
			return ok == 1 ? BB_DIGEST_BAD_BLOCK_ID : ok == 0 ? BB_DIGEST_NOT_JSON : BB_DIGEST_TOO_DEEP;
		}
		if (!read_number(r, &integer, &is_integer))
			return BB_DIGEST_NOT_JSON;
		if (!is_integer || integer < 1)
			return BB_DIGEST_BAD_BLOCK_ID;
		out->block_id = integer;
		return BB_DIGEST_OK;
	}
	if (*r->p != '"')
	{
		ok = skip_value(r);
		return ok == 1 ? member_error[m] : ok == 0 ? BB_DIGEST_NOT_JSON : BB_DIGEST_TOO_DEEP;
	}
	if (!read_string(r, &value))
		return BB_DIGEST_NOT_JSON;
	switch (m)
	{
		case M_FORMAT:
			ok = name_is(&value, BB_DIGEST_FORMAT);
			break;
		case M_CHAIN_ID:
			ok = decode_hex(&value, out->chain_id, sizeof(out->chain_id));
			break;
		case M_BLOCK_HASH:
			ok = decode_hex(&value, out->block_hash, sizeof(out->block_hash));
			break;
		case M_SIGNATURE:
			ok = out->has_signature = decode_hex(&value, out->signature, sizeof(out->signature));
			break;
		case M_PUBLIC_KEY:
			ok = out->has_public_key = decode_hex(&value, out->public_key, sizeof(out->public_key));
			break;
		default:
			ok = 0;
			break;
	}
	return ok ? BB_DIGEST_OK : member_error[m];
}

bb_digest_status
bb_digest_parse(const char *json, size_t len, bb_digest *out)
{
	reader		r = {json, json + len, 1};
	int			seen[M_COUNT] = {0};
	bb_digest_status first_error = BB_DIGEST_OK;
	int			first = 1;
	int			m;

	memset(out, 0, sizeof(*out));
	skip_space(&r);
	if (r.p >= r.end)
		return BB_DIGEST_NOT_JSON;
	if (*r.p != '{')
	{
		/* a valid document that is not an object, or no document at all */
		int			rc = skip_value(&r);

		skip_space(&r);
		if (rc == -1)
			return BB_DIGEST_TOO_DEEP;
		return rc == 1 && r.p == r.end ? BB_DIGEST_NOT_OBJECT : BB_DIGEST_NOT_JSON;
	}
	r.p++;
	for (;;)
	{
		short_string name;
		int			known = -1;

		skip_space(&r);
		if (r.p >= r.end)
			return BB_DIGEST_NOT_JSON;
		if (*r.p == '}' && first)
		{
			r.p++;
			break;
		}
		if (!first)
		{
			if (*r.p == '}')
			{
				r.p++;
				break;
			}
			if (*r.p != ',')
				return BB_DIGEST_NOT_JSON;
			r.p++;
			skip_space(&r);
		}
		first = 0;
		if (r.p >= r.end || *r.p != '"' || !read_string(&r, &name))
			return BB_DIGEST_NOT_JSON;
		skip_space(&r);
		if (r.p >= r.end || *r.p != ':')
			return BB_DIGEST_NOT_JSON;
		r.p++;
		for (m = 0; m < M_COUNT; m++)
			if (name_is(&name, member_names[m]))
				known = m;
		if (known < 0)
		{
			int			rc = skip_value(&r);

			if (rc != 1)
				return rc == 0 ? BB_DIGEST_NOT_JSON : BB_DIGEST_TOO_DEEP;
			continue;
		}
		if (seen[known]++ && first_error == BB_DIGEST_OK)
			first_error = BB_DIGEST_DUPLICATE_MEMBER;
		{
			bb_digest_status st = read_member(&r, (enum member) known, out);

			if (st == BB_DIGEST_NOT_JSON || st == BB_DIGEST_TOO_DEEP)
				return st;		/* syntax errors win over meaning */
			if (st != BB_DIGEST_OK && first_error == BB_DIGEST_OK)
				first_error = st;
		}
	}
	skip_space(&r);
	if (r.p != r.end)
		return BB_DIGEST_NOT_JSON;
	if (first_error != BB_DIGEST_OK)
		return first_error;
	for (m = M_FORMAT; m <= M_BLOCK_HASH; m++)
		if (!seen[m])
			return member_error[m];
	return BB_DIGEST_OK;
}

const char *
bb_digest_status_text(bb_digest_status status)
{
	switch (status)
	{
		case BB_DIGEST_OK:
			return "The digest is well formed.";
		case BB_DIGEST_NOT_JSON:
			return "The digest is not a complete JSON document.";
		case BB_DIGEST_TOO_DEEP:
			return "The digest nests deeper than 32 levels.";
		case BB_DIGEST_NOT_OBJECT:
			return "The digest is not a JSON object.";
		case BB_DIGEST_DUPLICATE_MEMBER:
			return "A member of the digest appears twice.";
		case BB_DIGEST_BAD_FORMAT:
			return "\"format\" is missing or not \"" BB_DIGEST_FORMAT "\".";
		case BB_DIGEST_BAD_CHAIN_ID:
			return "\"chain_id\" must be 64 hexadecimal characters.";
		case BB_DIGEST_BAD_BLOCK_ID:
			return "\"block_id\" must be a positive integer.";
		case BB_DIGEST_BAD_BLOCK_HASH:
			return "\"block_hash\" must be 64 hexadecimal characters.";
		case BB_DIGEST_BAD_SIGNATURE:
			return "\"signature\" must be 128 hexadecimal characters.";
		case BB_DIGEST_BAD_PUBLIC_KEY:
			return "\"public_key\" must be 64 hexadecimal characters.";
	}
	return "The digest is malformed.";
}
