#!/usr/bin/env python3
"""test/package/meta_check.py — META.json against the PGXN Meta Spec 1.0 (`make test-meta`).

Debian has no PGXN meta validator (no PGXN::Meta::Validator package; pgxnclient does not
validate), so this is a small one written from the spec (https://pgxn.org/meta/spec.txt,
version 1.0.x):

  * the required keys (name, abstract, version, maintainer, license, provides, meta-spec),
    the optional ones (description, generated_by, tags, no_index, prereqs, release_status,
    resources) and nothing else but custom "x_" / "X_" keys, at every level that allows them;
  * each value's type and form: terms, SemVer versions, version ranges, license names,
    maintainers, paths, URIs and e-mail addresses, the meta-spec version 1.0.x;
  * and for brandbos: the name is the extension's, the versions are brandbos.control's
    default_version, provides.brandbos.file is sql/brandbos--<version>.sql, exists and is
    in the Makefile's DATA, the docfile exists, and the runtime requires PostgreSQL.

It first checks that it refuses broken copies of META.json (each mutation below must be
reported), so a validator that accepts everything fails.  Output is TAP; the last line is
"N passed, M failed"; the exit status is 1 when anything failed.

  test/package/meta_check.py [META.json]
"""

import copy
import json
import os
import re
import sys
import urllib.parse

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

SEMVER = re.compile(
    r"^(0|[1-9]\d*)\.(0|[1-9]\d*)\.(0|[1-9]\d*)"
    r"(?:-((?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*)(?:\.(?:0|[1-9]\d*|\d*[a-zA-Z-][0-9a-zA-Z-]*))*))?"
    r"(?:\+([0-9a-zA-Z-]+(?:\.[0-9a-zA-Z-]+)*))?$")
RANGE_PART = re.compile(r"^(?:(==|!=|<=|>=|<|>)\s*)?(.+)$")
LICENSES = {
    "agpl_3", "apache_1_1", "apache_2_0", "artistic_1", "artistic_2", "bsd", "freebsd",
    "gfdl_1_2", "gfdl_1_3", "gpl_1", "gpl_2", "gpl_3", "lgpl_2_1", "lgpl_3_0", "mit",
    "mozilla_1_0", "mozilla_1_1", "openssl", "perl_5", "postgresql", "qpl_1_0", "ssleay",
    "sun", "zlib", "open_source", "restricted", "unrestricted", "unknown",
}
SPEC_URLS = {"https://pgxn.org/meta/spec.txt", "http://pgxn.org/meta/spec.txt"}
PHASES = {"configure", "build", "test", "runtime", "develop"}
RELATIONS = {"requires", "recommends", "suggests", "conflicts"}
EMAIL = re.compile(r"^[^@\s]+@[^@\s]+\.[^@\s]+$")


def is_custom(key):
    return isinstance(key, str) and len(key) > 2 and key[:2] in ("x_", "X_")


class Checker:
    """Collects the problems of one document; each is 'where: what'."""

    def __init__(self):
        self.problems = []

    def bad(self, where, what):
        self.problems.append("%s: %s" % (where, what))

    # ---- value forms ----
    def string(self, where, v, min_len=1):
        if not isinstance(v, str):
            self.bad(where, "must be a string")
            return False
        if len(v) < min_len:
            self.bad(where, "must have at least %d characters" % min_len)
            return False
        return True

    def term(self, where, v):
        if self.string(where, v, 2) and re.search(r"[/\\\s\x00-\x1f\x7f]", v):
            self.bad(where, "a term has no slash, backslash, space or control character")

    def version(self, where, v):
        if self.string(where, v) and not SEMVER.match(v):
            self.bad(where, "%r is not a semantic version (x.y.z)" % v)

    def version_range(self, where, v):
        if v == 0 and not isinstance(v, bool):
            return
        if not self.string(where, v):
            return
        for part in v.split(","):
            m = RANGE_PART.match(part.strip())
            if not m or not (m.group(2) == "0" or SEMVER.match(m.group(2))):
                self.bad(where, "%r is not a version range" % v)
                return

    def uri(self, where, v):
        if self.string(where, v):
            u = urllib.parse.urlparse(v)
            if not u.scheme or not (u.netloc or u.scheme == "mailto"):
                self.bad(where, "%r is not an absolute URI" % v)

    def email(self, where, v):
        if self.string(where, v) and not EMAIL.match(v):
            self.bad(where, "%r is not an e-mail address" % v)

    def path(self, where, v):
        if self.string(where, v, 2) and (v.startswith("/") or "\\" in v or ".." in v.split("/")):
            self.bad(where, "%r is not a relative path inside the distribution" % v)

    def obj(self, where, v, allowed, required=(), any_of=(), custom=True):
        """v is an object whose keys are in allowed (plus x_ keys when custom)."""
        if not isinstance(v, dict):
            self.bad(where, "must be an object")
            return False
        for k in v:
            if k not in allowed and not (custom and is_custom(k)):
                self.bad(where, "unknown key %r" % k)
        for k in required:
            if k not in v:
                self.bad(where, "missing required key %r" % k)
        if any_of and not any(all(k in v for k in group) for group in any_of):
            self.bad(where, "needs one of %s" % " or ".join("+".join(g) for g in any_of))
        return True

    def unique_list(self, where, v, item):
        if not isinstance(v, list) or not v:
            self.bad(where, "must be a non-empty array")
            return
        if len({json.dumps(x, sort_keys=True) for x in v}) != len(v):
            self.bad(where, "has duplicate items")
        for i, x in enumerate(v):
            item("%s[%d]" % (where, i), x)

    # ---- the keys of the spec ----
    def document(self, meta):
        top = {"name", "abstract", "description", "version", "maintainer", "license",
               "provides", "prereqs", "release_status", "resources", "tags", "no_index",
               "generated_by", "meta-spec"}
        required = ("name", "abstract", "version", "maintainer", "license", "provides",
                    "meta-spec")
        if not self.obj("META.json", meta, top, required):
            return
        if "name" in meta:
            self.term("name", meta["name"])
        if "version" in meta:
            self.version("version", meta["version"])
        for k in ("abstract", "description", "generated_by"):
            if k in meta:
                self.string(k, meta[k])
        if "maintainer" in meta:
            m = meta["maintainer"]
            if isinstance(m, list):
                self.unique_list("maintainer", m, self.string)
            else:
                self.string("maintainer", m)
        if "license" in meta:
            self.license(meta["license"])
        if "provides" in meta:
            self.provides(meta["provides"])
        if "prereqs" in meta:
            self.prereqs(meta["prereqs"])
        if "release_status" in meta and meta["release_status"] not in ("stable", "testing", "unstable"):
            self.bad("release_status", "must be stable, testing or unstable")
        if "resources" in meta:
            self.resources(meta["resources"])
        if "tags" in meta:
            self.unique_list("tags", meta["tags"], self.tag)
        if "no_index" in meta:
            self.no_index(meta["no_index"])
        if "meta-spec" in meta:
            ms = meta["meta-spec"]
            if self.obj("meta-spec", ms, {"version", "url"}, ("version",)):
                v = ms.get("version")
                if not isinstance(v, str) or not re.match(r"^1\.0\.\d+$", v):
                    self.bad("meta-spec.version", "must be 1.0.x, got %r" % (v,))
                if "url" in ms and ms["url"] not in SPEC_URLS:
                    self.bad("meta-spec.url", "must be %s" % " or ".join(sorted(SPEC_URLS)))

    def license(self, v):
        def one(where, x):
            if x not in LICENSES:
                self.bad(where, "%r is not a license name of the spec" % (x,))
        if isinstance(v, str):
            one("license", v)
        elif isinstance(v, list):
            self.unique_list("license", v, one)
        elif isinstance(v, dict):
            if not v:
                self.bad("license", "an object of licenses must not be empty")
            for name, url in v.items():
                self.uri("license.%s" % name, url)
        else:
            self.bad("license", "must be a license name, an array of them or an object")

    def provides(self, v):
        if not isinstance(v, dict) or not v:
            self.bad("provides", "must be a non-empty object")
            return
        for name, ext in v.items():
            where = "provides.%s" % name
            self.term(where, name)
            if self.obj(where, ext, {"file", "version", "abstract", "docfile", "docpath"},
                        ("file", "version")):
                if "file" in ext:
                    self.path(where + ".file", ext["file"])
                if "version" in ext:
                    self.version(where + ".version", ext["version"])
                if "abstract" in ext:
                    self.string(where + ".abstract", ext["abstract"])
                if "docfile" in ext:
                    self.path(where + ".docfile", ext["docfile"])
                if "docpath" in ext:
                    self.string(where + ".docpath", ext["docpath"])

    def prereqs(self, v):
        if not self.obj("prereqs", v, PHASES, any_of=[(p,) for p in sorted(PHASES)]):
            return
        for phase, rels in v.items():
            if is_custom(phase):
                continue
            where = "prereqs.%s" % phase
            if not self.obj(where, rels, RELATIONS, any_of=[(r,) for r in sorted(RELATIONS)]):
                continue
            for rel, deps in rels.items():
                if is_custom(rel):
                    continue
                w = "%s.%s" % (where, rel)
                if not isinstance(deps, dict) or not deps:
                    self.bad(w, "must be a non-empty object")
                    continue
                for dep, rng in deps.items():
                    self.term("%s key %r" % (w, dep), dep)
                    self.version_range("%s.%s" % (w, dep), rng)

    def resources(self, v):
        if not self.obj("resources", v, {"homepage", "bugtracker", "repository"},
                        any_of=[("homepage",), ("bugtracker",), ("repository",)]):
            return
        if "homepage" in v:
            self.uri("resources.homepage", v["homepage"])
        if "bugtracker" in v:
            b = v["bugtracker"]
            if self.obj("resources.bugtracker", b, {"web", "mailto"}, any_of=[("web",), ("mailto",)]):
                if "web" in b:
                    self.uri("resources.bugtracker.web", b["web"])
                if "mailto" in b:
                    self.email("resources.bugtracker.mailto", b["mailto"])
        if "repository" in v:
            r = v["repository"]
            if self.obj("resources.repository", r, {"url", "web", "type"},
                        any_of=[("url", "type"), ("web",)]):
                for k in ("url", "web"):
                    if k in r:
                        self.uri("resources.repository." + k, r[k])
                if "type" in r and (not isinstance(r["type"], str) or not re.match(r"^[a-z]+$", r["type"])):
                    self.bad("resources.repository.type", "must be a lower-case word such as git")

    def tag(self, where, v):
        if self.string(where, v, 2):
            if len(v) > 255:
                self.bad(where, "a tag has at most 255 characters")
            if re.search(r"[/\\\x00-\x1f\x7f]", v):
                self.bad(where, "a tag has no slash, backslash or control character")

    def no_index(self, v):
        if not self.obj("no_index", v, {"file", "directory"}, any_of=[("file",), ("directory",)]):
            return
        for k in ("file", "directory"):
            if k in v:
                if isinstance(v[k], list):
                    self.unique_list("no_index." + k, v[k], self.path)
                else:
                    self.path("no_index." + k, v[k])


# ---- what brandbos's own files say ---------------------------------------------------------

def control_version():
    with open(os.path.join(ROOT, "brandbos.control"), encoding="utf-8") as f:
        m = re.search(r"^default_version\s*=\s*'([^']*)'", f.read(), re.M)
    return m.group(1) if m else None


def makefile_var(name):
    with open(os.path.join(ROOT, "Makefile"), encoding="utf-8") as f:
        text = f.read().replace("\\\n", " ")
    m = re.search(r"^%s\s*[:?]?=\s*(.*)$" % re.escape(name), text, re.M)
    return m.group(1).split() if m else []


def project(meta):
    """brandbos's own rules on top of the spec; a list of problems."""
    c = Checker()
    want = control_version()
    ext = (meta.get("provides") or {}).get("brandbos")
    if meta.get("name") != "brandbos" or makefile_var("EXTENSION") != ["brandbos"]:
        c.bad("name", "must be brandbos, the Makefile's EXTENSION")
    if meta.get("version") != want:
        c.bad("version", "%r, but brandbos.control's default_version is %r" % (meta.get("version"), want))
    if not isinstance(ext, dict):
        c.bad("provides", "must provide the extension brandbos")
        return c.problems
    if ext.get("version") != want:
        c.bad("provides.brandbos.version", "%r, but default_version is %r" % (ext.get("version"), want))
    script = "sql/brandbos--%s.sql" % want
    if ext.get("file") != script:
        c.bad("provides.brandbos.file", "%r, but the install script of %s is %s" % (ext.get("file"), want, script))
    elif not os.path.isfile(os.path.join(ROOT, script)):
        c.bad("provides.brandbos.file", "%s does not exist" % script)
    elif script not in makefile_var("DATA"):
        c.bad("provides.brandbos.file", "%s is not in the Makefile's DATA" % script)
    doc = ext.get("docfile")
    if doc is not None and not os.path.isfile(os.path.join(ROOT, str(doc))):
        c.bad("provides.brandbos.docfile", "%s does not exist" % doc)
    pg = (((meta.get("prereqs") or {}).get("runtime") or {}).get("requires") or {}).get("PostgreSQL")
    if pg != "15.0.0":
        c.bad("prereqs.runtime.requires.PostgreSQL", "must be 15.0.0 (the oldest major tested), got %r" % (pg,))
    return c.problems


def problems_of(meta):
    c = Checker()
    c.document(meta)
    if isinstance(meta, dict):
        c.problems += project(meta)
    return c.problems


# ---- broken copies that must be refused ------------------------------------------------------

def mutations(meta):
    def without(key):
        def f(m):
            del m[key]
        return f

    def setter(path, value):
        def f(m):
            d = m
            for k in path[:-1]:
                d = d[k]
            d[path[-1]] = value
        return f

    out = [("without %s" % k, without(k))
           for k in ("name", "abstract", "version", "maintainer", "license", "provides", "meta-spec")]
    out += [
        ("an unknown top-level key", setter(["homepage"], "https://example.org/")),
        ("a version that is not SemVer", setter(["version"], "0.1")),
        ("a version other than brandbos.control's", setter(["version"], "9.9.9")),
        ("a license name not in the spec", setter(["license"], "gpl")),
        ("an empty maintainer list", setter(["maintainer"], [])),
        ("a name with a slash", setter(["name"], "brand/bos")),
        ("provides without its file", lambda m: m["provides"]["brandbos"].pop("file")),
        ("provides naming a script of another version", setter(["provides", "brandbos", "file"], "sql/brandbos--0.0.1.sql")),
        ("an absolute provides path", setter(["provides", "brandbos", "file"], "/etc/passwd")),
        ("an unknown key in provides.brandbos", setter(["provides", "brandbos", "homepage"], "x")),
        ("meta-spec version 2.0.0", setter(["meta-spec", "version"], "2.0.0")),
        ("a meta-spec url elsewhere", setter(["meta-spec", "url"], "https://example.org/spec.txt")),
        ("a prereq phase not in the spec", setter(["prereqs", "install"], {"requires": {"PostgreSQL": "15.0.0"}})),
        ("a prereq relationship not in the spec", setter(["prereqs", "runtime"], {"needs": {"PostgreSQL": "15.0.0"}})),
        ("a bad version range", setter(["prereqs", "runtime", "requires", "PostgreSQL"], "fifteen")),
        ("runtime requiring PostgreSQL 14", setter(["prereqs", "runtime", "requires", "PostgreSQL"], "14.0.0")),
        ("release_status final", setter(["release_status"], "final")),
        ("empty resources", setter(["resources"], {})),
        ("a bugtracker mailto that is no address", setter(["resources", "bugtracker"], {"mailto": "nobody"})),
        ("a repository without url+type or web", setter(["resources", "repository"], {"type": "git"})),
        ("duplicate tags", setter(["tags"], ["audit", "audit"])),
        ("no_index with an unknown key", setter(["no_index"], {"dirs": ["test"]})),
    ]
    return out


def main():
    path = sys.argv[1] if len(sys.argv) > 1 else os.path.join(ROOT, "META.json")
    n = failed = 0

    def report(ok, desc, diag=()):
        nonlocal n, failed
        n += 1
        if not ok:
            failed += 1
        print("%s %d - %s" % ("ok" if ok else "not ok", n, desc))
        for line in diag:
            print("# " + line)

    try:
        with open(path, encoding="utf-8") as f:
            meta = json.load(f)
        report(True, "%s is valid JSON (UTF-8)" % os.path.relpath(path, ROOT))
    except (OSError, ValueError) as e:
        report(False, "%s is valid JSON (UTF-8)" % path, [str(e)])
        meta = None

    if meta is not None:
        for desc, mutate in mutations(meta):
            broken = copy.deepcopy(meta)
            try:
                mutate(broken)
            except (KeyError, TypeError) as e:
                report(False, "the validator refuses META.json with %s" % desc, ["mutation failed: %r" % e])
                continue
            found = problems_of(broken)
            report(bool(found), "the validator refuses META.json with %s" % desc,
                   found[:1] if found else ["accepted"])
        found = problems_of(meta)
        report(not found, "META.json follows PGXN Meta Spec 1.0 and agrees with brandbos.control (%s)"
               % control_version(), found)

    print("1..%d" % n)
    print("%d passed, %d failed" % (n - failed, failed))
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
