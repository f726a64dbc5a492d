# brandbos — PGXS build plus the developer entry points.
#
#   make / make install   build and install the extension (needs pg_config)
#   make test             install missing build deps, build, install, run every test
#                         (regress, pgTAP, unit, fuzz 60s/target, lint, scenarios, ASan run,
#                         Citus scenarios)
#   make demo             same set-up, then a walkthrough of every pillar
#   make bench            same set-up plus the peers (test/bench/peers.sh), then the
#                         benchmarks of SPEC section 7, side by side with the peers
#   make stress           the fuzzers and scenarios with long settings, for a person
#   make fuzz | lint | test-asan | unit   one part of make test on its own
#   make deb              the Debian package postgresql-15-brandbos (debian/, pg_buildext),
#                         built from a copy of the tree into tmp_check/deb/
#   make test-deb         build it, install it with dpkg in place of `make install`'s files,
#                         smoke-test every pillar, remove it, put those files back (root)
#   make test-meta        META.json against the PGXN Meta Spec 1.0 and brandbos.control
#   make test-pg18        build PostgreSQL 18 from source (cached outside the tree), build
#                         brandbos against it, run regress, pgTAP, unit and scenarios there
#
# On a bare Debian machine pg_config does not exist yet, so PGXS is only
# included when it is found; test/demo/bench install it first and re-enter make.

EXTENSION   = brandbos
MODULE_big  = brandbos
OBJS        = src/brandbos.o \
              src/citus_context.o \
              src/citus_ledger.o \
              src/shard_guard.o \
              src/context_ledger.o \
              src/citus_shards.o \
              src/citus_policies.o \
              src/citus_columns.o \
              src/citus_keys.o \
              src/pg_compat.o \
              src/roles.o \
              src/internal_sql.o \
              src/random_pool.o \
              src/envelope.o \
              src/base64url.o \
              src/jwt.o \
              src/root_key.o \
              src/data_keys.o \
              src/key_admin.o \
              src/key_command.o \
              src/drop_guard.o \
              src/associated_data.o \
              src/cipher_sql.o \
              src/table_shape.o \
              src/protect_trigger.o \
              src/protect_admin.o \
              src/value_scan.o \
              src/reencrypt.o \
              src/protect_guard.o \
              src/ddl_frames.o \
              src/log_scrub.o \
              src/passwords.o \
              src/api_keys.o \
              src/merkle.o \
              src/audit_canonical.o \
              src/audit_digest.o \
              src/audit_leaf.o \
              src/audit_signing_key.o \
              src/audit_writer.o \
              src/audit_row_image.o \
              src/audit_table_cache.o \
              src/audit_digest_sql.o \
              src/audit_sealer.o \
              src/audit_verify.o \
              src/audit_retention.o \
              src/audit_guard.o \
              src/restore_mode.o \
              src/audit_xid_ring.o \
              src/secret_file.o \
              src/token.o \
              src/context.o \
              src/role_lock.o \
              src/policies.o \
              src/isolation_check.o \
              src/isolation_guard.o \
              src/owner_only.o \
              src/deliberation.o \
              src/deliberation_sessions.o \
              src/deliberation_bookkeeping.o \
              src/deliberation_personas.o \
              src/deliberation_gdpr.o
DATA        = sql/brandbos--0.2.0.sql sql/brandbos--0.1.0--0.2.0.sql
REGRESS     = envelope_format
REGRESS_OPTS = --load-extension=brandbos

PG_CONFIG ?= $(firstword $(wildcard /usr/lib/postgresql/15/bin/pg_config) pg_config)
PGXS := $(shell $(PG_CONFIG) --pgxs 2>/dev/null)

SODIUM_CFLAGS := $(shell pkg-config --cflags libsodium 2>/dev/null)
SODIUM_LIBS   := $(shell pkg-config --libs libsodium 2>/dev/null || echo -lsodium)

PG_CPPFLAGS = -I$(srcdir)/src $(SODIUM_CFLAGS)
PG_CFLAGS   = -Wall -Wextra -Wno-unused-parameter -Wno-sign-compare \
              -Wno-missing-field-initializers -Wno-clobbered
ifeq ($(BRANDBOS_WERROR),1)
PG_CFLAGS  += -Werror
endif
SHLIB_LINK  = $(SODIUM_LIBS)
EXTRA_CLEAN = results regression.diffs regression.out tmp_check .pg-build

ifneq ($(PGXS),)
include $(PGXS)
endif

# every object is rebuilt when a header changes (struct layouts are shared)
$(OBJS): $(wildcard $(srcdir)/src/*.h)

# ... and when PG_CONFIG names another PostgreSQL: objects compiled against one major's
# headers must not be linked for another (.pg-build names the one they were built for)
ifneq ($(PGXS),)
PG_BUILD_ID := $(PG_CONFIG) $(shell $(PG_CONFIG) --version)
ifneq ($(PG_BUILD_ID),$(shell cat $(CURDIR)/.pg-build 2>/dev/null))
$(shell echo '$(PG_BUILD_ID)' >$(CURDIR)/.pg-build)
endif
$(OBJS): $(CURDIR)/.pg-build
endif

# An out-of-tree (VPATH) build, as pg_buildext does for the Debian package, compiles into
# src/ of the build directory: make it exist there.
ifneq ($(VPATH),)
$(shell mkdir -p src)
endif

.PHONY: deps test demo bench unit fuzz lint test-asan test-pg18 stress deb test-deb test-meta test-citus bench-citus

deps:
	@./test/deps.sh

test: deps
	@$(MAKE) --no-print-directory all install BRANDBOS_WERROR=1 >/dev/null
	@./test/run.sh

demo: deps
	@$(MAKE) --no-print-directory all install >/dev/null
	@./test/demo/demo.sh

unit:
	@$(MAKE) --no-print-directory -C test/unit check

# static analysis: cppcheck and clang-tidy (.clang-tidy) over src/; fails on any finding
lint: deps
	@./test/lint.sh

# libFuzzer + ASan + UBSan targets of every parser of untrusted bytes; FUZZ_SECONDS each
fuzz: deps
	@./test/fuzz/run.sh $(or $(FUZZ_SECONDS),120)

# the extension built with ASan + UBSan in a private copy of PostgreSQL; pg_regress + pgTAP
test-asan: deps
	@./test/asan/run.sh

# the suite on PostgreSQL 18.6 built by test/pg18/run.sh (BB_PG18_PREFIX, BB_VENDOR, BB_ONLY)
test-pg18: deps
	@./test/pg18/run.sh

# long settings: fuzzers FUZZ_SECONDS (600) each, CRASH_ROUNDS (10) crash rounds, a
# SOAK_SECONDS (600) soak, POOLER_SECONDS (120) through PgBouncer, plus every other scenario
stress: deps
	@$(MAKE) --no-print-directory all install >/dev/null
	@BB_ONLY=fuzz,scenarios BB_FUZZ_SECONDS=$(or $(FUZZ_SECONDS),600) \
		BB_CRASH_ROUNDS=$(or $(CRASH_ROUNDS),10) BB_SOAK_SECONDS=$(or $(SOAK_SECONDS),600) \
		BB_POOLER_SECONDS=$(or $(POOLER_SECONDS),120) BB_SCENARIO_TIMEOUT=3600 ./test/run.sh

# Citus 13.2.2 built from ../shared/vendor (test/citus/build.sh) and the scenarios of
# test/citus/ on a coordinator and two workers (BB_CITUS_ONLY=02,03 for a subset)
test-citus: deps
	@$(MAKE) --no-print-directory all install >/dev/null
	@./test/citus/run.sh

bench-citus: deps
	@$(MAKE) --no-print-directory all install >/dev/null
	@./test/citus/bench.sh

# the peers (test/bench/peers.sh: pgsodium, Vault, supa_audit from ../shared/vendor, pgaudit
# from Debian) are built and installed into the same PostgreSQL first; the ones that cannot
# be are reported missing in the results
bench: deps
	@$(MAKE) --no-print-directory all install >/dev/null
	@mkdir -p tmp_check
	@PG_CONFIG=$(PG_CONFIG) ./test/bench/peers.sh | tee tmp_check/bench-peers.txt
	@PGBIN=$$($(PG_CONFIG) --bindir) BENCH_PEERS=tmp_check/bench-peers.txt ./test/bench/run.sh

# the Debian package (debian/, test/package/); test/deps.sh deb installs only what
# building and testing the package needs
deb:
	@./test/deps.sh deb
	@./test/package/build_deb.sh

# build the package, dpkg -i it in place of make install's files, smoke-test each pillar
# on a preloaded cluster, dpkg --purge it and put the saved files back (needs root)
test-deb:
	@./test/deps.sh deb
	@./test/package/deb_test.sh

# META.json against the PGXN Meta Spec 1.0 and brandbos.control (no root, no server)
test-meta:
	@./test/package/meta_check.py
