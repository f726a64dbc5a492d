#!/usr/bin/python3
"""test/scenarios/postgrest_client.py -- PostgREST's per-request SQL, spoken by psycopg 3.

Scenario 33_postgrest_flow runs this against PgBouncer (transaction pooling) in front of a
brandbos cluster with brandbos.trust_request_jwt_claims = on.  PostgREST itself is not in
Debian, so this program plays its part: it verifies each request's HS256 token as PostgREST
does (role from the `role` claim, the anonymous role without a token), then runs the
transaction PostgREST 12/13 runs for that request, statement by statement, as hasql sends
them: the extended query protocol, unnamed statements (db-prepared-statements = false, as
PostgREST must run behind PgBouncer in transaction mode), bound parameters, binary results:

  BEGIN ISOLATION LEVEL READ COMMITTED READ ONLY            (GET; READ WRITE otherwise)
  select set_config('search_path', $1, true), set_config($2, $3, true) ...,   (role settings)
         set_config('role', $n, true), set_config('request.jwt.claims', $n, true),
         set_config('request.method', $n, true), set_config('request.path', $n, true),
         set_config('request.headers', $n, true), set_config('request.cookies', $n, true)
  select "public"."pgrst_observe"()                          (db-pre-request)
  WITH pgrst_source AS ( ... ) SELECT ... FROM ( ... ) _postgrest_t      (the main query)
  COMMIT                                                     (ABORT after an error)

The statement texts are the ones PostgREST's Query/PreQuery.hs, Query/Statements.hs,
Query/QueryBuilder.hs and Query/SqlFragment.hs build for these requests, byte for byte
(their odd spacing included); psycopg numbers the placeholders $1, $2, ... as hasql does.

The pre-request function (created by the scenario) reports, through PostgREST's documented
response.headers mechanism, the backend pid, current_user and brandbos's helpers as the
request saw them; the main query's response_headers column carries them back.

The pre-request function (created by the scenario) also passes the proxy's x-forwarded-for
and user-agent headers to brandbos.set_request, for the audit log.

After every request the same client connection runs a probe transaction without any claims
(another pooled client of the same database), recording what a stranger on that server
connection would see, and writing one audit row (brandbos.log_event) that must carry none of
the request's actor fields.

Workload: phase `one` runs sequentially over three client connections to PgBouncer's
one-connection pool (so every probe runs on the backend the request just used); phase
`pool` runs WORKERS threads, one client connection each, over the two-connection pool.
Requests of one tenant are serialised by a per-tenant lock so that the rows each request
must see are known exactly: under that lock a superuser connection straight to the server
counts the tenant's rows (the truth every GET is compared with), and a model of each
tenant's rows (id -> title, v, created_by) is compared with every returned body.

Output (CSV with a header line, read by the scenario with \\copy):
  OUT/requests.csv   one line per request and per probe
  OUT/audit_expected.csv   one line per row change that must be in brandbos.audit_log
  OUT/model.csv      the final model: the rows each tenant must hold at the end
Exit status 0 when the run completed (the checks are the scenario's), 1 when a worker thread
stopped on an error, 2 on a usage or connection problem; the reason goes to stderr.
"""

import argparse
import base64
import csv
import hashlib
import hmac
import json
import os
import random
import sys
import threading
import time
import uuid

import psycopg
from psycopg.types.json import Json

SCHEMA = "public"
TABLE = "items"
ANON_ROLE = "anon"
# PostgREST's default db-extra-search-path is "public": search_path = iSchema : extra
SEARCH_PATH = '"public", "public"'
# the columns of public.items as PostgREST's schema cache types them (cfIRType)
COLUMN_TYPES = {"tenant_id": "uuid", "title": "text", "v": "integer", "created_by": "uuid"}


# ---- tokens: what Supabase Auth issues and PostgREST verifies ---------------------------------

def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def b64url_decode(text):
    return base64.urlsafe_b64decode(text + "=" * (-len(text) % 4))


def sign(claims, secret):
    header = b64url(b'{"alg":"HS256","typ":"JWT"}')
    payload = b64url(json.dumps(claims, separators=(",", ":")).encode())
    mac = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    return f"{header}.{payload}.{b64url(mac)}"


def verify(token, secret):
    """PostgREST's Auth: signature, exp; returns the claims object."""
    header, payload, mac = token.split(".")
    want = hmac.new(secret, f"{header}.{payload}".encode(), hashlib.sha256).digest()
    if not hmac.compare_digest(want, b64url_decode(mac)):
        raise ValueError("bad signature")
    claims = json.loads(b64url_decode(payload))
    if "exp" in claims and claims["exp"] < time.time():
        raise ValueError("expired")
    return claims


def aeson(value):
    """JSON as PostgREST's aeson encodes it: compact, object keys in order."""
    return json.dumps(value, separators=(",", ":"), sort_keys=True, ensure_ascii=False)


# ---- PostgREST's SQL ---------------------------------------------------------------------------

class Snippet:
    """hasql's dynamic Snippet: SQL text with parameters, numbered in order by psycopg."""

    def __init__(self, sql="", params=()):
        self.sql = sql
        self.params = list(params)

    def __add__(self, other):
        if isinstance(other, str):
            other = Snippet(other)
        return Snippet(self.sql + other.sql, self.params + other.params)

    def __radd__(self, other):
        return Snippet(other) + self


def param(value):
    """SQL.encoderAndParam: psycopg sends a str as text with no type (PostgreSQL infers it,
    as it does for hasql's `unknown`), a Json as json."""
    return Snippet("%s", [value])


def intercalate(sep, snippets):
    out = Snippet()
    for i, s in enumerate(snippets):
        out = out + (sep if i else "") + s
    return out


def ident(name):
    return '"' + name.replace('"', '""') + '"'


def qi(schema, name):
    return (ident(schema) + "." if schema else "") + ident(name)


def set_config_const(name, value):
    # setConfigWithConstantName
    return "set_config('" + name + "', " + param(value) + ", true)"


def set_config_dynamic(name, value):
    # setConfigWithDynamicName (role settings)
    return "set_config(" + param(name) + ", " + param(value) + ", true)"


def tx_var_query(role, role_settings, claims, method, path, headers):
    """PreQuery.txVarQuery."""
    parts = [set_config_const("search_path", SEARCH_PATH)]
    parts += [set_config_dynamic(k, v) for k, v in role_settings.get(role, [])]
    parts.append(set_config_const("role", role))
    parts.append(set_config_const("request.jwt.claims", aeson(claims)))
    parts.append(set_config_const("request.method", method))
    parts.append(set_config_const("request.path", path))
    parts.append(set_config_const("request.headers", aeson(headers)))
    parts.append(set_config_const("request.cookies", aeson({})))
    return "select " + intercalate(", ", parts)


def pre_req_query():
    return Snippet("select " + qi("public", "pgrst_observe") + "()")


def filter_eq(table_qi, column, value):
    # pgFmtFilter (OpQuant OpEqual): notOp <> " " <> field <> " = " <> $n
    return " " + table_qi + "." + ident(column) + " = " + param(str(value))


def read_plan(select_cols, from_qi, alias_qi, filters):
    """QueryBuilder.readPlanToQuery for a plan without embeds, order or range."""
    sel = (alias_qi + ".*") if select_cols == ["*"] else ", ".join(alias_qi + "." + ident(c) for c in select_cols)
    q = Snippet("SELECT " + sel + " FROM " + from_qi)
    if from_qi != alias_qi:
        q = q + " AS " + alias_qi
    if filters:
        q = q + " WHERE " + intercalate(" AND ", filters)
    return q + " " + "" + " " + "" + " " + ""


def main_read(select_cols, filters):
    """Statements.mainRead, application/json, no count."""
    t = qi(SCHEMA, TABLE)
    return ("WITH pgrst_source AS ( " + read_plan(select_cols, t, t, filters) + " ) " + "" + " " +
            "SELECT null::bigint AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total, "
            "coalesce(json_agg(_postgrest_t), '[]') AS body, "
            "nullif(current_setting('response.headers', true), '') AS response_headers, "
            "nullif(current_setting('response.status', true), '') AS response_status, "
            "'' AS response_inserted FROM ( SELECT * FROM pgrst_source ) _postgrest_t")


def json_body(columns, body, include_select):
    """SqlFragment.fromJsonBodyF for a JSON object body, no defaults, no LIMIT 1."""
    named = ", ".join(qi("pgrst_body", c) for c in columns)
    parsed = ", ".join(ident(c) for c in columns)
    typed = ", ".join(ident(c) + " " + COLUMN_TYPES[c] for c in columns)
    select = ("SELECT " + named + " ") if include_select else ""
    return (select + "FROM (SELECT " + param(Json(body, dumps=lambda raw: raw)) + " AS json_data) pgrst_payload, " +
            "LATERAL (SELECT " + parsed + " FROM json_to_record(pgrst_payload.json_data) AS _(" + typed + ") )" +
            " pgrst_body ")


def main_write(mutate, representation):
    """Statements.mainWrite (no upsert, no Location)."""
    if representation:
        body = "coalesce(json_agg(_postgrest_t), '[]')"
        select = read_plan(["*"], ident("pgrst_source"), ident(TABLE), [])
    else:
        body = "''::text"
        select = Snippet("SELECT * FROM pgrst_source")
    return ("WITH pgrst_source AS (" + mutate + ") " +
            "SELECT '' AS total_result_set, pg_catalog.count(_postgrest_t) AS page_total, "
            "array[]::text[] AS header, " + body + " AS body, "
            "nullif(current_setting('response.headers', true), '') AS response_headers, "
            "nullif(current_setting('response.status', true), '') AS response_status, "
            "'' AS response_inserted FROM (" + select + ") _postgrest_t")


def returning(representation):
    return ("RETURNING " + qi(SCHEMA, TABLE) + ".*") if representation else "RETURNING 1"


def insert_query(body_obj, raw, representation):
    cols = sorted(body_obj)          # iColumns: a Set, so in order
    mutate = ("INSERT INTO " + qi(SCHEMA, TABLE) + "(" + ", ".join(ident(c) for c in cols) + ") " +
              json_body(cols, raw, True) + " " + returning(representation))
    return main_write(mutate, representation)


def update_query(body_obj, raw, row_id, representation):
    cols = sorted(body_obj)
    t = qi(SCHEMA, TABLE)
    mutate = ("UPDATE " + t + " SET " + ", ".join(ident(c) + " = " + qi("pgrst_body", c) for c in cols) + " " +
              json_body(cols, raw, False) + " WHERE " + filter_eq(t, "id", row_id) + " " + returning(representation))
    return main_write(mutate, representation)


def delete_query(row_id):
    t = qi(SCHEMA, TABLE)
    mutate = "DELETE FROM " + t + " " + " WHERE " + filter_eq(t, "id", row_id) + " " + returning(False)
    return main_write(mutate, False)


# ---- one HTTP request, as PostgREST runs it ---------------------------------------------------

class Response:
    def __init__(self):
        self.sqlstate = None
        self.page_total = None
        self.body = None
        self.headers = {}


def run(cur, snippet):
    cur.execute(snippet.sql, snippet.params, binary=True)


def postgrest_request(conn, ctx, actor, method, path, token, query, prefer=None, body=None):
    """Runs one request's transaction; returns a Response."""
    claims = verify(token, ctx.secret) if token else {}
    role = claims.get("role", ANON_ROLE)
    claims = dict(claims, role=role)
    # as a reverse proxy in front of PostgREST passes them on
    headers = {"accept": "*/*", "host": "localhost:3000", "user-agent": actor.user_agent,
               "x-forwarded-for": actor.ip}
    if token:
        headers["authorization"] = "Bearer " + token
    if body is not None:
        headers["content-type"] = "application/json"
    if prefer:
        headers["prefer"] = prefer
    read_only = method in ("GET", "HEAD")
    resp = Response()
    with conn.cursor() as cur:
        run(cur, Snippet("BEGIN ISOLATION LEVEL READ COMMITTED " + ("READ ONLY" if read_only else "READ WRITE")))
        try:
            run(cur, tx_var_query(role, ctx.role_settings, claims, method, path.split("?")[0], headers))
            run(cur, pre_req_query())
            run(cur, query)
            row = cur.fetchone()
            resp.page_total = int(row[1])
            body_col = 3 if len(row) == 7 else 2
            body = row[body_col]            # json (psycopg loads it) or ''::text
            resp.body = json.loads(body) if isinstance(body, str) and body else body or None
            hdrs = row[body_col + 1]
            for h in json.loads(hdrs) if hdrs else []:
                resp.headers.update(h)
            run(cur, Snippet("COMMIT"))
        except psycopg.Error as e:
            resp.sqlstate = e.sqlstate or "?????"
            run(cur, Snippet("ABORT"))
    return resp


PROBE = """SELECT pg_backend_pid(), current_user::text,
       brandbos.current_user_id(), brandbos.current_tenant_id(), brandbos.current_app_role(),
       brandbos.claims()::text, current_setting('request.jwt.claims', true),
       current_setting('request.method', true), current_setting('role'),
       (extract(epoch FROM now()) * 1000000)::bigint, brandbos.log_event('s33_probe', 'probe', %s)"""


def probe(conn, seq):
    """A transaction without claims on the same client connection: nothing of the last
    request may be seen, not even as authenticated, and the audit row it writes (action
    s33_probe, resource_id its seq) must carry no user, tenant, ip or user agent."""
    with conn.cursor() as cur:
        cur.execute("BEGIN")
        cur.execute(PROBE, [str(seq)])
        r = list(cur.fetchone())
        cur.execute("SET LOCAL ROLE authenticated")
        cur.execute("SELECT count(*) FROM public.items")
        r.append(cur.fetchone()[0])
        cur.execute("COMMIT")
    return r


# ---- the workload ------------------------------------------------------------------------------

class Actor:
    def __init__(self, name, tenant, claims_fn, ip):
        self.name = name
        self.tenant = tenant          # tenant uuid or None
        self.claims_fn = claims_fn    # () -> claims dict, or None (no token)
        self.sub = None
        self.ip = ip                  # the client address a proxy reports (x-forwarded-for)
        self.user_agent = "brandbos-s33/" + name


class Context:
    pass


FIELDS = ["seq", "phase", "worker", "kind", "actor", "sub", "tenant", "role", "method", "path",
          "intent", "want", "outcome", "page_total", "n_rows", "foreign_rows", "truth_n",
          "model_ok", "hdr_pid", "hdr_role", "hdr_user", "hdr_tenant", "hdr_app_role", "xact_us",
          "p_current_user", "p_user", "p_tenant", "p_app_role", "p_claims", "p_jwt_claims",
          "p_method", "p_role_setting", "p_visible"]


NULL = "<null>"      # COPY ... (FORMAT csv, NULL '<null>'): an empty field is ''
TYPED_FIELDS = {"seq", "worker", "page_total", "n_rows", "foreign_rows", "truth_n", "model_ok",
                "hdr_pid", "xact_us", "p_visible"}


class Recorder:
    def __init__(self, outdir):
        self.lock = threading.Lock()
        self.seq = 0
        self.f = open(os.path.join(outdir, "requests.csv"), "w", newline="")
        self.w = csv.DictWriter(self.f, FIELDS, restval=NULL)
        self.w.writeheader()
        self.af = open(os.path.join(outdir, "audit_expected.csv"), "w", newline="")
        self.aw = csv.writer(self.af)
        self.aw.writerow(["seq", "action", "resource_id", "user_id", "tenant_id", "db_user", "ip", "user_agent"])

    def next_seq(self):
        with self.lock:
            self.seq += 1
            return self.seq

    def row(self, d):
        d = {k: (NULL if v is None or (v == "" and k in TYPED_FIELDS) else v) for k, v in d.items()}
        with self.lock:
            self.w.writerow(d)

    def audit(self, seq, action, rid, user, tenant, db_user, actor):
        with self.lock:
            self.aw.writerow([seq, action, rid, user or "", tenant or "", db_user, actor.ip, actor.user_agent])

    def close(self):
        self.f.close()
        self.af.close()


# the requests each kind of actor makes
USER_KINDS = ["get_all", "post", "get_one", "patch", "get_cols", "cross_get", "cross_patch",
              "cross_delete", "cross_post", "move_tenant", "delete"]
ANON_KINDS = ["get_all", "anon_get_one", "anon_post", "anon_patch", "anon_delete"]
SERVICE_KINDS = ["get_all", "svc_patch"]


def kinds_of(actor):
    if actor.name == "service":
        return SERVICE_KINDS
    return USER_KINDS if actor.tenant else ANON_KINDS


class Flow:
    def __init__(self, ctx, rec, truth, model, locks, tenants):
        self.ctx = ctx
        self.rec = rec
        self.truth = truth          # superuser connection straight to the server (under truth_lock)
        self.truth_lock = threading.Lock()
        self.model = model          # tenant -> {id: (title, v, created_by, created by this run)}
        self.locks = locks          # tenant -> Lock
        self.tenants = tenants      # [A, B]

    def truth_count(self, tenant):
        with self.truth_lock:
            if tenant is None:
                return self.truth.execute("SELECT count(*) FROM public.items").fetchone()[0]
            return self.truth.execute("SELECT count(*) FROM public.items WHERE tenant_id = %s",
                                      [tenant]).fetchone()[0]

    def other(self, tenant):
        return self.tenants[1] if tenant == self.tenants[0] else self.tenants[0]

    def some_id(self, rng, tenant):
        with self.locks[tenant]:
            ids = sorted(self.model[tenant])
        return rng.choice(ids) if ids else None

    def request(self, conn, phase, worker, actor, rng, kind=None):
        """Runs one request of actor (kind, or one picked at random), checks it against the
        model and records it."""
        ctx = self.ctx
        token = sign(actor.claims_fn(), ctx.secret) if actor.claims_fn else None
        claims = verify(token, ctx.secret) if token else {}
        role = claims.get("role", ANON_ROLE)
        t = actor.tenant
        d = {"phase": phase, "worker": worker, "kind": "request", "actor": actor.name,
             "sub": claims.get("sub", ""), "tenant": t or "", "role": role}
        held = []
        if role == "service_role":
            held = [self.locks[x] for x in self.tenants]
        elif t:
            held = [self.locks[t]]
        # choose the request (targets of other tenants are read under their lock, then released)
        if kind is None:
            kind = rng.choice(kinds_of(actor))
        target = None
        if kind.startswith("cross"):
            target = self.some_id(rng, self.other(t))
        elif kind in ("anon_get_one", "anon_patch", "anon_delete"):
            target = self.some_id(rng, rng.choice(self.tenants))
        for lk in held:
            lk.acquire()
        try:
            d["seq"] = self.rec.next_seq()
            self._run(conn, d, kind, actor, token, claims, target, rng)
        finally:
            for lk in reversed(held):
                lk.release()
        self.rec.row(d)
        return d["seq"]

    def _run(self, conn, d, kind, actor, token, claims, target, rng):
        t = actor.tenant
        sub = claims.get("sub")
        role = d["role"]
        model = self.model.get(t, {}) if t else {}
        d["want"] = "ok"
        d["intent"] = "own" if t else ("all" if role == "service_role" else "anon")
        expect_rows = None          # the exact set of (id, title, v, created_by) the body must hold
        n_affected = None           # PATCH/DELETE: the rows that must be affected
        if kind in ("get_all",):
            d["method"], d["path"] = "GET", "/items?select=*"
            q = main_read(["*"], [])
            if role == "service_role":
                expect_rows = {(i, *r[:3]) for tt in self.tenants for i, r in self.model[tt].items()}
            elif t:
                expect_rows = {(i, *r[:3]) for i, r in model.items()}
            else:
                expect_rows = set()
        elif kind == "get_one":
            rid = rng.choice(sorted(model)) if model else 0
            d["method"], d["path"] = "GET", f"/items?id=eq.{rid}"
            q = main_read(["*"], [filter_eq(qi(SCHEMA, TABLE), "id", rid)])
            expect_rows = {(rid, *model[rid][:3])} if rid in model else set()
        elif kind == "get_cols":
            d["method"], d["path"] = "GET", "/items?select=id,tenant_id"
            q = main_read(["id", "tenant_id"], [])
            expect_rows = None
        elif kind in ("cross_get", "anon_get_one"):
            d["intent"] = "cross" if t else "anon"
            rid = target or 0
            d["method"], d["path"] = "GET", f"/items?id=eq.{rid}"
            q = main_read(["*"], [filter_eq(qi(SCHEMA, TABLE), "id", rid)])
            expect_rows = set()
        elif kind in ("post", "anon_post", "cross_post"):
            title = f"{d['actor']}-{d['seq']}"
            obj = {"title": title, "v": d["seq"]}
            if kind == "cross_post":
                d["intent"] = "cross"
                obj["tenant_id"] = self.other(t)
            raw = json.dumps(obj)
            d["method"], d["path"] = "POST", "/items"
            q = insert_query(obj, raw, True)
            if kind != "post":
                d["want"] = "42501"
        elif kind in ("patch", "cross_patch", "anon_patch", "svc_patch", "move_tenant"):
            if kind == "patch" or kind == "move_tenant":
                rid = rng.choice(sorted(model)) if model else 0
            elif kind == "svc_patch":        # both tenants' locks are held: the row stays
                ids = sorted(self.model[rng.choice(self.tenants)])
                rid = rng.choice(ids) if ids else 0
                d["intent"] = "all"
            else:
                rid = target or 0
                d["intent"] = "cross" if kind == "cross_patch" else "anon"
            obj = {"title": f"{d['actor']}-upd-{d['seq']}"}
            if kind == "move_tenant":
                obj = {"tenant_id": self.other(t)}
                d["intent"] = "move"
                d["want"] = "42501" if rid in model else "ok"
            raw = json.dumps(obj)
            d["method"], d["path"] = "PATCH", f"/items?id=eq.{rid}"
            rep = kind == "patch"
            q = update_query(obj, raw, rid, rep)
            if kind in ("patch", "svc_patch"):
                n_affected = 1 if rid else 0
            elif kind != "move_tenant":
                n_affected = 0
        elif kind in ("delete", "cross_delete", "anon_delete"):
            if kind == "delete":
                ids = sorted(i for i, r in model.items() if r[3])   # only rows this run created
                rid = rng.choice(ids) if ids else 0
            else:
                rid = target or 0
                d["intent"] = "cross" if t else "anon"
            d["method"], d["path"] = "DELETE", f"/items?id=eq.{rid}"
            q = delete_query(rid)
            n_affected = (1 if rid else 0) if kind == "delete" else 0
        prefer = "return=representation" if d["method"] in ("POST",) or kind == "patch" else None
        if kind in ("get_all", "get_cols") and (t or role == "service_role"):
            # what the superuser counts right now (no write of this tenant can run meanwhile)
            d["truth_n"] = self.truth_count(None if role == "service_role" else t)
        resp = postgrest_request(conn, self.ctx, actor, d["method"], d["path"], token, q, prefer,
                                 None if d["method"] in ("GET", "DELETE") else "body")
        d["outcome"] = resp.sqlstate or "ok"
        d["page_total"] = resp.page_total if resp.page_total is not None else ""
        h = resp.headers
        d["hdr_pid"], d["hdr_role"] = h.get("X-Backend-Pid", ""), h.get("X-Db-Role", "")
        d["hdr_user"], d["hdr_tenant"] = h.get("X-User", ""), h.get("X-Tenant", "")
        d["hdr_app_role"], d["xact_us"] = h.get("X-App-Role", ""), h.get("X-Xact-Start", "")
        rows = resp.body if isinstance(resp.body, list) else []
        d["n_rows"] = len(rows)
        d["foreign_rows"] = sum(1 for r in rows if t and r.get("tenant_id") != t)
        if resp.sqlstate:
            d["model_ok"] = "t"
            return
        # what the body says, against the model; then the model follows the write
        got = {(r["id"], r.get("title"), r.get("v"), r.get("created_by")) for r in rows} if rows and "title" in rows[0] else None
        ok = True
        if d["method"] == "GET":
            if expect_rows is not None:
                ok = got == expect_rows if rows else not expect_rows
            elif t:
                ok = sorted(r["id"] for r in rows) == sorted(model)
        elif d["method"] == "POST":
            ok = resp.page_total == 1 and len(rows) == 1 and rows[0]["tenant_id"] == t and rows[0]["created_by"] == sub
            if ok:
                r = rows[0]
                model[r["id"]] = (r["title"], r["v"], r["created_by"], True)
                self.rec.audit(d["seq"], "insert", r["id"], sub, t, role, actor)
        elif d["method"] == "PATCH":
            ok = resp.page_total == n_affected if n_affected is not None else resp.page_total == 0
            if kind == "patch" and ok and n_affected:
                r = rows[0]
                ok = r["tenant_id"] == t and r["title"] == json.loads(raw)["title"]
                old = model[rid]
                model[rid] = (r["title"], old[1], old[2], old[3])
            if kind == "svc_patch" and ok and n_affected:
                for tt in self.tenants:
                    if rid in self.model[tt]:
                        old = self.model[tt][rid]
                        self.model[tt][rid] = (json.loads(raw)["title"], old[1], old[2], old[3])
                        self.rec.audit(d["seq"], "update", rid, None, None, role, actor)
            elif ok and n_affected:
                self.rec.audit(d["seq"], "update", rid, sub, t, role, actor)
        elif d["method"] == "DELETE":
            ok = resp.page_total == n_affected
            if ok and n_affected:
                del model[rid]
                self.rec.audit(d["seq"], "delete", rid, sub, t, role, actor)
        d["model_ok"] = "t" if ok else "f"

    def probe(self, conn, phase, worker):
        seq = self.rec.next_seq()
        p = probe(conn, seq)
        d = {"seq": seq, "phase": phase, "worker": worker, "kind": "probe", "hdr_pid": p[0],
             "p_current_user": p[1], "p_user": p[2] or "", "p_tenant": p[3] or "",
             "p_app_role": p[4] or "", "p_claims": p[5] or "",
             "p_jwt_claims": "NULL" if p[6] is None else p[6],
             "p_method": "NULL" if p[7] is None else p[7], "p_role_setting": p[8],
             "xact_us": p[9], "p_visible": p[11]}
        self.rec.row(d)


def connect(dsn):
    # PostgREST behind PgBouncer in transaction mode: db-prepared-statements = false
    conn = psycopg.connect(dsn, autocommit=True, prepare_threshold=None)
    # what hasql runs on every new connection (Hasql.IO), with the simple query protocol
    conn.execute("SET client_encoding = 'UTF8'")
    conn.execute("SET client_min_messages TO WARNING")
    return conn


def role_settings(conn):
    """PostgREST's queryRoleSettings (Config/Database.hs), without the isolation level."""
    rows = conn.execute("""
        with role_setting as (
          select r.rolname, unnest(r.rolconfig) as setting
          from pg_auth_members m join pg_roles r on r.oid = m.roleid
          where member = quote_ident(current_user)::regrole::oid),
        kv_settings as (
          select rolname, substr(setting, 1, strpos(setting, '=') - 1) as key,
                 substr(setting, strpos(setting, '=') + 1) as value
          from role_setting)
        select kv.rolname, kv.key, kv.value from kv_settings kv
        join pg_settings ps on ps.name = kv.key
         and (ps.context = 'user' or has_parameter_privilege(quote_ident(current_user)::regrole::oid, ps.name, 'set'))
        where kv.key <> 'default_transaction_isolation'
        order by 1, 2""").fetchall()
    out = {}
    for r, k, v in rows:
        out.setdefault(r, []).append((k, v))
    return out


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--pool-dsn", required=True, help="PgBouncer, the two-connection pool, as authenticator")
    ap.add_argument("--one-dsn", required=True, help="PgBouncer, the one-connection pool, as authenticator")
    ap.add_argument("--truth-dsn", required=True, help="the server itself, as a superuser")
    ap.add_argument("--tenants", required=True, help="tenant A uuid,tenant B uuid")
    ap.add_argument("--users", required=True, help="a1,a2,b1,b2 user uuids")
    ap.add_argument("--out", required=True)
    ap.add_argument("--workers", type=int, default=4)
    ap.add_argument("--requests", type=int, default=100, help="requests per worker in phase pool")
    ap.add_argument("--seed", type=int, default=33)
    a = ap.parse_args()
    secret = os.environ.get("PGRST_JWT_SECRET", "").encode()
    if len(secret) < 32:
        print("postgrest_client.py: PGRST_JWT_SECRET (at least 32 bytes) is not set", file=sys.stderr)
        return 2

    tenants = a.tenants.split(",")
    users = a.users.split(",")
    now = int(time.time())

    def user_claims(sub, tenant, email):
        # a Supabase access token, plus the tenant claim a custom access token hook adds
        return lambda: {"aal": "aal1", "amr": [{"method": "password", "timestamp": now}],
                        "app_metadata": {"provider": "email", "providers": ["email"]},
                        "aud": "authenticated", "email": email, "exp": now + 3600, "iat": now,
                        "is_anonymous": False, "iss": "http://127.0.0.1:54321/auth/v1", "phone": "",
                        "role": "authenticated", "session_id": str(uuid.uuid4()), "sub": sub,
                        "tenant_id": tenant, "user_metadata": {}}

    actors = []
    for i, (name, t) in enumerate([("a1", 0), ("a2", 0), ("b1", 1), ("b2", 1)]):
        act = Actor(name, tenants[t], user_claims(users[i], tenants[t], f"{name}@tenant{t}.test"),
                    f"203.0.113.{11 + i}")
        act.sub = users[i]
        actors.append(act)
    # the anon key and the service role key of a Supabase project, and no token at all
    actors.append(Actor("anonkey", None, lambda: {"iss": "supabase-demo", "role": "anon", "exp": now + 3600},
                        "198.51.100.31"))
    actors.append(Actor("notoken", None, None, "198.51.100.32"))
    actors.append(Actor("service", None, lambda: {"iss": "supabase-demo", "role": "service_role", "exp": now + 3600},
                        "192.0.2.41"))

    ctx = Context()
    ctx.secret = secret
    try:
        truth = psycopg.connect(a.truth_dsn, autocommit=True)
        first = connect(a.one_dsn)
    except psycopg.Error as e:
        print(f"postgrest_client.py: cannot connect: {e}", file=sys.stderr)
        return 2
    ctx.role_settings = role_settings(first)

    model = {t: {} for t in tenants}
    for rid, tid, title, v, cb in truth.execute(
            "SELECT id, tenant_id::text, title, v, created_by::text FROM public.items ORDER BY id"):
        model[tid][rid] = (title, v, cb, False)
    locks = {t: threading.Lock() for t in tenants}
    os.makedirs(a.out, exist_ok=True)
    rec = Recorder(a.out)
    flow = Flow(ctx, rec, truth, model, locks, tenants)

    # phase one: three client connections, one server connection, strictly one after another;
    # every kind of request of every actor, the actors taking turns
    conns = [first, connect(a.one_dsn), connect(a.one_dsn)]
    rng = random.Random(a.seed)
    queues = [[(act, k) for k in kinds_of(act)] for act in actors]
    order = []
    while any(queues):
        for q in queues:
            if q:
                order.append(q.pop(0))
    for i, (act, kind) in enumerate(order):
        flow.request(conns[i % 3], "one", 0, act, rng, kind)
        flow.probe(conns[(i + 1) % 3], "one", 0)
    for c in conns:
        c.close()

    # phase pool: WORKERS threads over the two-connection pool
    errors = []

    def worker(w):
        try:
            wr = random.Random(a.seed * 100 + w)
            conn = connect(a.pool_dsn)
            for _ in range(a.requests):
                flow.request(conn, "pool", w, wr.choice(actors), wr)
                flow.probe(conn, "pool", w)
            conn.close()
        except Exception as e:          # reported; the scenario fails on the exit status
            errors.append(f"worker {w}: {type(e).__name__}: {e}")

    threads = [threading.Thread(target=worker, args=(w,)) for w in range(1, a.workers + 1)]
    for th in threads:
        th.start()
    for th in threads:
        th.join()
    rec.close()
    with open(os.path.join(a.out, "model.csv"), "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(["tenant_id", "id", "title", "v", "created_by"])
        for t in tenants:
            for rid, r in sorted(model[t].items()):
                w.writerow([t, rid, r[0], r[1], r[2] or NULL])
    truth.close()
    for e in errors:
        print(f"postgrest_client.py: {e}", file=sys.stderr)
    return 1 if errors else 0


if __name__ == "__main__":
    sys.exit(main())
