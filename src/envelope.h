/*
 * envelope.h — the brandbos ciphertext envelope, free of PostgreSQL headers.
 *
 * Binary layout (all integers big-endian), the same for both formats:
 *
 *   offset  size  field
 *   0       2     magic 0xBB 0x78
 *   2       1     format (1 or 2)
 *   3       4     data-key version, 1 .. 2^31-1
 *   7       24    XChaCha20-Poly1305-IETF nonce
 *   31      n+16  ciphertext of n plaintext bytes, then the Poly1305 tag
 *
 * Associated data given to the AEAD:
 *
 *   format 2  header (bytes 0..30) || domain (1 byte) || caller's bytes
 *   format 1  caller's bytes only
 *
 * Format 2 is what bb_env_seal writes; format 1 envelopes (written by
 * brandbos before format 2 existed) are still parsed and opened.  In format
 * 2 every header byte is authenticated, and the domain byte keeps the two
 * users of the codec apart: a protected column's binding (domain 'C', made
 * by associated_data.c) can never equal associated data a caller chose for
 * brandbos.encrypt() (domain 'U'), whatever bytes the caller passes.
 * Format 1 had no domain; its one rule, applied by bb_env_open, is that
 * user-domain associated data starting with the column label ("bbad1",
 * with which every column binding starts) never authenticates.
 *
 * The printable form used in text columns is "bbx1:" followed by the binary
 * envelope in unpadded base64url, for both formats: the prefix names the
 * printable encoding, the format is the third binary byte ("bbx1:u3gB..."
 * is format 1, "bbx1:u3gC..." format 2).  So a text value starts with
 * "bbx1:", and a bytea value with 0xBB 0x78, exactly when it claims to be an
 * envelope, whichever its format.
 */
#ifndef BRANDBOS_ENVELOPE_H
#define BRANDBOS_ENVELOPE_H

#include <stddef.h>
#include <stdint.h>

#define BB_ENV_MAGIC0		0xBB
#define BB_ENV_MAGIC1		0x78
#define BB_ENV_FORMAT_1		1	/* opened, never written */
#define BB_ENV_FORMAT_2		2
#define BB_ENV_FORMAT		BB_ENV_FORMAT_2 /* what bb_env_seal writes */
#define BB_ENV_KEY_VERSION_MAX 0x7FFFFFFFu	/* data key versions are SQL integers */
#define BB_ENV_NONCE_BYTES	24
#define BB_ENV_TAG_BYTES	16
#define BB_ENV_KEY_BYTES	32
#define BB_ENV_HEADER_BYTES	(2 + 1 + 4 + BB_ENV_NONCE_BYTES)
#define BB_ENV_OVERHEAD		(BB_ENV_HEADER_BYTES + BB_ENV_TAG_BYTES)
#define BB_ENV_TEXT_PREFIX	"bbx1:"
#define BB_ENV_TEXT_PREFIX_LEN 5

/* format 2 authenticates header || domain byte || the caller's associated data */
#define BB_ENV_AD_PREFIX_BYTES	(BB_ENV_HEADER_BYTES + 1)

/* every column binding starts with this label (associated_data.c) */
#define BB_ENV_COLUMN_LABEL	"bbad1"
#define BB_ENV_COLUMN_LABEL_LEN 5

/* who chose the associated data: separates user envelopes from column ones */
typedef enum bb_env_domain
{
	BB_ENV_DOMAIN_USER = 'U',	/* brandbos.encrypt()/decrypt(): the caller's bytes */
	BB_ENV_DOMAIN_COLUMN = 'C'	/* a protected column's binding of a row */
} bb_env_domain;

/* outcomes of parsing and opening */
typedef enum bb_env_status
{
	BB_ENV_OK = 0,
	BB_ENV_TOO_SHORT,			/* fewer bytes than header + tag */
	BB_ENV_BAD_MAGIC,			/* does not start with the magic */
	BB_ENV_BAD_FORMAT,			/* unknown format version */
	BB_ENV_BAD_KEY_VERSION,		/* key version 0 or above 2^31-1 */
	BB_ENV_BAD_ENCODING,		/* printable form: prefix or base64url wrong */
	BB_ENV_FORGED				/* tag does not verify: wrong key, data, place or domain */
} bb_env_status;

/* a parsed envelope: pointers into the caller's buffer */
typedef struct bb_envelope
{
	int			format;			/* BB_ENV_FORMAT_1 or BB_ENV_FORMAT_2 */
	uint32_t	key_version;
	const unsigned char *header;	/* BB_ENV_HEADER_BYTES bytes */
	const unsigned char *nonce;
	const unsigned char *sealed;	/* ciphertext followed by tag */
	size_t		sealed_len;
} bb_envelope;

/* human-readable description of a status (no data in it) */
extern const char *bb_env_status_text(bb_env_status status);

/* size of the binary envelope for a plaintext of n bytes */
static inline size_t
bb_env_sealed_size(size_t plain_len)
{
	return BB_ENV_OVERHEAD + plain_len;
}

/* bytes of work space bb_env_seal and bb_env_open need for ad_len bytes of associated data */
static inline size_t
bb_env_ad_space_size(size_t ad_len)
{
	return BB_ENV_AD_PREFIX_BYTES + ad_len;
}

/* plaintext size of a well-formed envelope */
static inline size_t
bb_env_plain_size(const bb_envelope *env)
{
	return env->sealed_len - BB_ENV_TAG_BYTES;
}

/*
 * Seal plain[0..plain_len) into out as a format-2 envelope; out must hold
 * bb_env_sealed_size() bytes.  nonce is random (BB_ENV_NONCE_BYTES) and
 * key_version in 1 .. BB_ENV_KEY_VERSION_MAX.  ad_space is work space of
 * bb_env_ad_space_size(ad_len) bytes, overwritten.
 */
extern void bb_env_seal(unsigned char *out,
						const unsigned char *plain, size_t plain_len,
						bb_env_domain domain,
						const unsigned char *ad, size_t ad_len,
						unsigned char *ad_space,
						uint32_t key_version,
						const unsigned char *nonce,
						const unsigned char *key);

/* Check the framing of a binary envelope (format 1 or 2) and point env into it. */
extern bb_env_status bb_env_parse(const unsigned char *in, size_t len,
								  bb_envelope *env);

/*
 * Authenticate and decrypt; plain_out must hold bb_env_plain_size() bytes
 * (it may be NULL when that is 0).  On BB_ENV_FORGED nothing is returned.
 * The domain must be the one the envelope was sealed in (format 2), or
 * obey format 1's label rule (see the top of this file).  ad_space is work
 * space of bb_env_ad_space_size(ad_len) bytes, overwritten.
 */
extern bb_env_status bb_env_open(unsigned char *plain_out,
								 const bb_envelope *env,
								 bb_env_domain domain,
								 const unsigned char *ad, size_t ad_len,
								 unsigned char *ad_space,
								 const unsigned char *key);

/* length of the printable form of a binary envelope of n bytes */
extern size_t bb_env_text_size(size_t binary_len);

/*
 * Write the printable form of bin into out, followed by a NUL: out must hold
 * bb_env_text_size(bin_len) + 1 bytes.
 */
extern void bb_env_to_text(char *out, const unsigned char *bin, size_t bin_len);

/* does this text start with the printable prefix? */
extern int	bb_env_text_has_prefix(const char *text, size_t len);

/*
 * Decode the printable form into bin (capacity bin_cap, at least
 * bb_env_binary_cap(len)); stores the binary length in *bin_len.
 */
extern bb_env_status bb_env_from_text(unsigned char *bin, size_t bin_cap,
									  size_t *bin_len,
									  const char *text, size_t len);

/* an upper bound of the binary size of a printable form of len chars */
static inline size_t
bb_env_binary_cap(size_t text_len)
{
	return (text_len / 4) * 3 + 3;
}

#endif							/* BRANDBOS_ENVELOPE_H */
