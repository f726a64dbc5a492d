/*
 * root_key.c — the root key: loading it, its fingerprint, and what is
 * derived from it.
 *
 * The root key is 32 bytes, given as 64 hexadecimal characters either in
 * the file brandbos.root_key_file (a regular file that group and others
 * cannot access) or on the standard output of brandbos.root_key_command,
 * which key_command.c runs under the deadline brandbos.root_key_command_timeout
 * (a command that overruns is killed with its process group; in a backend a
 * cancel or termination kills it too).
 *
 * Invariants:
 *   - the key lives only in sodium_malloc memory, read-only once loaded, and
 *     is wiped when it is dropped; no SQL function returns it, and neither
 *     its bytes nor what the command printed ever reach a message or the log;
 *   - a missing or unusable key never stops the server: the reason (without
 *     key material) is kept, and every call that needs the key raises 55000
 *     with that reason and a hint (brandbos_require_root_key);
 *   - preloaded, the postmaster reads the key once and every backend
 *     inherits it; otherwise each backend reads it on first use.  A reload
 *     that touches a key setting makes the next use read it again, and
 *     loading throws away the data keys unwrapped under the old one;
 *   - what is derived from the key (its fingerprint, secrets for a
 *     purpose, the first audit signing seed) is a keyed BLAKE2b of a fixed
 *     label: the labels never change, or stored fingerprints and signatures
 *     would stop matching.
 *
 * brandbos.rewrap_keys() moves the data keys from the previous root key
 * (brandbos.previous_root_key_file) to the loaded one; data_keys.c rewraps
 * the rows, audit_signing_key.c the audit signing seed.
 */
#include "brandbos.h"
#include "key_command.h"
#include "keys_internal.h"
#include "secret_file.h"

#include <ctype.h>
#include <sodium.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <fcntl.h>
#include <unistd.h>

#include "miscadmin.h"
#include "tcop/utility.h"
#include "utils/guc.h"

#define ROOT_KEY_BYTES		32
#define ROOT_KEY_ID_BYTES	8
#define KEY_FILE_MAX_BYTES	256

/* settings */
static char *root_key_file = NULL;
static char *root_key_command = NULL;
static char *previous_root_key_file = NULL;
static int	root_key_command_timeout_ms = 10000;

/* the root key of this process, or NULL with the reason in root_key_problem */
static unsigned char *root_key = NULL;
static char root_key_id[ROOT_KEY_ID_BYTES * 2 + 1];
static bool root_key_tried = false;
static char root_key_problem[512];
static bool root_key_timed_out = false;	/* the problem is the command's deadline */

/* ---------------------------------------------------------------------
 * Loading the root key
 * --------------------------------------------------------------------- */

/* parse 64 hex characters (surrounding white space allowed) into out */
static bool
parse_hex_key(const char *buf, size_t len, unsigned char *out)
{
	size_t		start = 0,
				end = len,
				bin_len = 0;

	while (start < end && isspace((unsigned char) buf[start]))
		start++;
	while (end > start && isspace((unsigned char) buf[end - 1]))
		end--;
	if (end - start != 2 * (size_t) ROOT_KEY_BYTES)
		return false;
	if (sodium_hex2bin(out, ROOT_KEY_BYTES, buf + start, end - start,
					   NULL, &bin_len, NULL) != 0)
		return false;
	return bin_len == ROOT_KEY_BYTES;
}

/* read a key file into out (secret_file.c checks its permissions); on failure describe why */
static bool
read_key_file(const char *path, unsigned char *out, char *problem, size_t problem_len)
{
	unsigned char buf[KEY_FILE_MAX_BYTES];
	size_t		n;
	bool		ok;

	if (!bb_read_secret_file(path, "key file", buf, sizeof(buf), &n, problem, problem_len))
		return false;
	ok = parse_hex_key((const char *) buf, n, out);
	sodium_memzero(buf, sizeof(buf));
	if (!ok)
		snprintf(problem, problem_len,
				 "key file \"%s\" does not hold exactly 64 hexadecimal characters", path);
	return ok;
}

/* polled while the key command runs in a backend: a cancel or terminate kills it */
static bool
key_command_should_stop(void)
{
	return InterruptPending && (QueryCancelPending || ProcDiePending);
}

/*
 * Run the key command (bounded by brandbos.root_key_command_timeout) and
 * parse what it prints.  *interrupted is set when a cancel stopped it.
 */
static bool
read_key_command(const char *command, unsigned char *out, char *problem, size_t problem_len,
				 bool *interrupted)
{
	unsigned char buf[KEY_FILE_MAX_BYTES];
	bb_cmd_result res;
	bool		ok = false;

	*interrupted = false;
	bb_run_command(command, root_key_command_timeout_ms, key_command_should_stop,
				   buf, sizeof(buf), &res);
	switch (res.status)
	{
		case BB_CMD_START_FAILED:
			snprintf(problem, problem_len, "could not run brandbos.root_key_command: %s",
					 strerror(res.error));
			break;
		case BB_CMD_TIMED_OUT:
			root_key_timed_out = true;
			snprintf(problem, problem_len,
					 "brandbos.root_key_command did not finish within %d ms (brandbos.root_key_command_timeout) and was killed",
					 root_key_command_timeout_ms);
			break;
		case BB_CMD_INTERRUPTED:
			*interrupted = true;
			snprintf(problem, problem_len,
					 "brandbos.root_key_command was interrupted by a cancel request and killed");
			break;
		case BB_CMD_FAILED:
			if (res.error != 0)
				snprintf(problem, problem_len,
						 "could not learn how brandbos.root_key_command ended: %s",
						 strerror(res.error));
			else if (WIFSIGNALED(res.wait_status))
				snprintf(problem, problem_len,
						 "brandbos.root_key_command was terminated by signal %d",
						 WTERMSIG(res.wait_status));
			else
				snprintf(problem, problem_len,
						 "brandbos.root_key_command exited with status %d",
						 WIFEXITED(res.wait_status) ? WEXITSTATUS(res.wait_status) : -1);
			break;
		case BB_CMD_OK:
			ok = !res.truncated && parse_hex_key((const char *) buf, res.len, out);
			if (!ok)
				snprintf(problem, problem_len,
						 "brandbos.root_key_command did not print exactly 64 hexadecimal characters");
			break;
	}
	sodium_memzero(buf, sizeof(buf));
	return ok;
}

/* fingerprint of a root key: safe to store and show */
static void
compute_key_id(const unsigned char *key, char *hex_out)
{
	unsigned char id[ROOT_KEY_ID_BYTES];
	static const char label[] = "brandbos root key id";

	crypto_generichash(id, sizeof(id), (const unsigned char *) label,
					   sizeof(label) - 1, key, ROOT_KEY_BYTES);
	sodium_bin2hex(hex_out, ROOT_KEY_ID_BYTES * 2 + 1, id, sizeof(id));
}

static void
drop_root_key(void)
{
	if (root_key != NULL)
	{
		sodium_mprotect_readwrite(root_key);
		sodium_free(root_key);	/* wipes before unmapping */
		root_key = NULL;
	}
	root_key_id[0] = '\0';
}

/* (re)load the root key from the settings; never throws */
static void
load_root_key(void)
{
	unsigned char *key;
	bool		have_file = root_key_file != NULL && root_key_file[0] != '\0';
	bool		have_command = root_key_command != NULL && root_key_command[0] != '\0';
	bool		ok;
	bool		interrupted = false;

	drop_root_key();
	brandbos_forget_data_keys();	/* unwrapped under the old key */
	root_key_tried = true;
	root_key_timed_out = false;
	root_key_problem[0] = '\0';

	if (!have_file && !have_command)
	{
		snprintf(root_key_problem, sizeof(root_key_problem),
				 "neither brandbos.root_key_file nor brandbos.root_key_command is set");
		return;
	}
	if (have_file && have_command)
	{
		snprintf(root_key_problem, sizeof(root_key_problem),
				 "both brandbos.root_key_file and brandbos.root_key_command are set; set only one");
		return;
	}

	key = sodium_malloc(ROOT_KEY_BYTES);
	if (key == NULL)
	{
		snprintf(root_key_problem, sizeof(root_key_problem),
				 "could not allocate protected memory for the root key");
		return;
	}
	if (have_file)
		ok = read_key_file(root_key_file, key, root_key_problem, sizeof(root_key_problem));
	else
		ok = read_key_command(root_key_command, key, root_key_problem, sizeof(root_key_problem),
							  &interrupted);
	if (!ok)
	{
		sodium_free(key);
		if (interrupted)
		{
			/* not a verdict on the key: try again next time, report the cancel now */
			root_key_tried = false;
			CHECK_FOR_INTERRUPTS();
		}
		return;
	}
	compute_key_id(key, root_key_id);
	sodium_mprotect_readonly(key);
	root_key = key;
}

/* any change of a key setting: read again on next use */
static void
assign_key_setting(const char *newval, void *extra)
{
	root_key_tried = false;
}

static void
assign_key_timeout(int newval, void *extra)
{
	root_key_tried = false;
}

/* the hint of "root key is not loaded", and of the log line at start */
static const char *
root_key_hint(void)
{
	if (root_key_timed_out)
		return psprintf("Make brandbos.root_key_command finish within brandbos.root_key_command_timeout (%d ms), or raise that timeout, then reload the configuration.",
						root_key_command_timeout_ms);
	return "Set brandbos.root_key_file to a file of 64 hexadecimal characters readable only by the server's user, or brandbos.root_key_command, then reload the configuration.";
}

bool
brandbos_root_key_available(void)
{
	if (!root_key_tried)
		load_root_key();
	return root_key != NULL;
}

void
brandbos_require_root_key(void)
{
	if (!brandbos_root_key_available())
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("brandbos root key is not loaded"),
				 errdetail("%s.", root_key_problem),
				 errhint("%s", root_key_hint())));
}

/* the loaded root key, without trying to load it */
const unsigned char *
brandbos_root_key(void)
{
	return root_key;
}

const char *
brandbos_root_key_id(void)
{
	return root_key_id;
}

/* ---------------------------------------------------------------------
 * Derived from the root key
 * --------------------------------------------------------------------- */

/* a 32-byte secret for a purpose, derived from the root key (raises 55000 without one) */
void
brandbos_derive_secret(const char *label, unsigned char *out)
{
	brandbos_require_root_key();
	crypto_generichash(out, 32, (const unsigned char *) label, strlen(label),
					   root_key, ROOT_KEY_BYTES);
}

/* ---------------------------------------------------------------------
 * SQL functions
 * --------------------------------------------------------------------- */

PG_FUNCTION_INFO_V1(brandbos_root_key_loaded);
/* SQL: brandbos.root_key_loaded() returns boolean */
Datum
brandbos_root_key_loaded(PG_FUNCTION_ARGS)
{
	PG_RETURN_BOOL(brandbos_root_key_available());
}

PG_FUNCTION_INFO_V1(brandbos_rewrap_keys);
/* SQL: brandbos.rewrap_keys() returns int */
Datum
brandbos_rewrap_keys(PG_FUNCTION_ARGS)
{
	unsigned char *previous;
	char		problem[512];
	char		previous_id[ROOT_KEY_ID_BYTES * 2 + 1];
	int32		rewrapped = 0;

	brandbos_require_role(BRANDBOS_ROLE_KEYMASTER, "rewrap brandbos data keys");
	/* a standby gets the rewrapped keys by replication: 25006 before the settings' 55000 */
	PreventCommandDuringRecovery("brandbos.rewrap_keys()");
	brandbos_require_root_key();
	if (previous_root_key_file == NULL || previous_root_key_file[0] == '\0')
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("brandbos.previous_root_key_file is not set"),
				 errhint("Put the new root key in brandbos.root_key_file, the old one in brandbos.previous_root_key_file, and reload.")));

	previous = sodium_malloc(ROOT_KEY_BYTES);
	if (previous == NULL)
		ereport(ERROR,
				(errcode(ERRCODE_OUT_OF_MEMORY),
				 errmsg("could not allocate protected memory for the previous root key")));
	if (!read_key_file(previous_root_key_file, previous, problem, sizeof(problem)))
	{
		sodium_free(previous);
		ereport(ERROR,
				(errcode(ERRCODE_OBJECT_NOT_IN_PREREQUISITE_STATE),
				 errmsg("previous root key could not be loaded"),
				 errdetail("%s.", problem)));
	}
	compute_key_id(previous, previous_id);

	PG_TRY();
	{
		rewrapped = brandbos_rewrap_data_keys(previous, previous_id);
		(void) brandbos_rewrap_audit_signing_key(previous, previous_id);
	}
	PG_FINALLY();
	{
		sodium_free(previous);
	}
	PG_END_TRY();
	PG_RETURN_INT32(rewrapped);
}

/* ---------------------------------------------------------------------
 * Settings and callbacks
 * --------------------------------------------------------------------- */

/* the key settings, the data-key cache's callbacks, and the preloaded key */
void
brandbos_keys_init(void)
{
	DefineCustomStringVariable("brandbos.root_key_file",
							   "File holding the 32-byte root key as 64 hexadecimal characters.",
							   "The file must be readable only by the server's operating-system user.",
							   &root_key_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, assign_key_setting, NULL);
	DefineCustomStringVariable("brandbos.root_key_command",
							   "Shell command that prints the root key as 64 hexadecimal characters.",
							   "Use it to fetch the key from a key management service.",
							   &root_key_command, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, assign_key_setting, NULL);
	DefineCustomIntVariable("brandbos.root_key_command_timeout",
							"How long brandbos waits for brandbos.root_key_command.",
							"After this the command and its process group are killed and the server goes on without a root key.",
							&root_key_command_timeout_ms,
							10000, 1, 3600000,
							PGC_SIGHUP, GUC_UNIT_MS,
							NULL, assign_key_timeout, NULL);
	DefineCustomStringVariable("brandbos.previous_root_key_file",
							   "File holding the previous root key, used by brandbos.rewrap_keys().",
							   NULL,
							   &previous_root_key_file, "",
							   PGC_SIGHUP, GUC_SUPERUSER_ONLY,
							   NULL, NULL, NULL);

	brandbos_data_keys_init();

	/* preloaded: read the key once in the postmaster, children inherit it */
	if (process_shared_preload_libraries_in_progress)
	{
		load_root_key();
		if (root_key == NULL)
			ereport(WARNING,
					(errmsg("brandbos root key is not loaded: %s", root_key_problem),
					 errdetail("Functions that need a key will fail until it is configured."),
					 errhint("%s", root_key_hint())));
		else
			ereport(LOG,
					(errmsg("brandbos root key %s loaded", root_key_id)));
	}
}
