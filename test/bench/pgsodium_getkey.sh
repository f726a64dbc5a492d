#!/bin/sh
# pgsodium.getkey_script of the bench cluster (run.sh sets it when pgsodium is preloaded).
# pgsodium runs it once at server start (popen, no arguments) and reads one line of 64 hex
# characters: its root key.  run.sh generates that key for each bench run into
# pgsodium_root.key beside the data directory (mode 0600, owned by the server's OS user);
# the postmaster's working directory is the data directory, so the key is ../pgsodium_root.key
# from there (PGDATA, when the environment has it, names the same directory).
set -eu
key="${PGDATA:-$PWD}/../pgsodium_root.key"
if [ ! -r "$key" ]; then
	echo "pgsodium_getkey.sh: no readable key file $key" >&2
	exit 1
fi
exec head -n 1 "$key"
