#!/usr/bin/env bash
# test/package/version.sh — one version for the extension, the Debian package and PGXN.
#
# brandbos.control's default_version is the version.  debian/changelog (Debian needs its
# own copy) and META.json (PGXN's: "version", provides.brandbos.version and .file) repeat
# it; this script reads them, checks that they agree and brings them in line.
#
#   version.sh control      print default_version
#   version.sh changelog    print the version of debian/changelog's newest entry
#   version.sh check        exit 1, naming each copy that disagrees with the control file
#   version.sh sync         add a debian/changelog entry for default_version (when its newest
#                           entry is another version) and set the versions in META.json
set -euo pipefail
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)

control_version() {
	local v
	v=$(sed -n "s/^default_version[[:space:]]*=[[:space:]]*'\([^']*\)'.*/\1/p" "$ROOT/brandbos.control")
	[[ -n $v ]] || { echo "version.sh: no default_version in brandbos.control" >&2; return 1; }
	echo "$v"
}

# first line: "brandbos (VERSION) distribution; urgency=..."
changelog_version() {
	sed -n '1s/^brandbos (\([^)]*\)).*/\1/p' "$ROOT/debian/changelog"
}

# META.json's three places, one a line: version, provides version, provides file
meta_versions() {
	python3 - "$ROOT/META.json" <<-'PY'
		import json, sys
		meta = json.load(open(sys.argv[1], encoding="utf-8"))
		ext = meta.get("provides", {}).get("brandbos", {})
		print(meta.get("version", ""))
		print(ext.get("version", ""))
		print(ext.get("file", ""))
	PY
}

check() {
	local want got bad=0 meta
	want=$(control_version)
	got=$(changelog_version)
	if [[ $got != "$want" ]]; then
		echo "version.sh: debian/changelog is at '$got', brandbos.control at '$want'" >&2
		bad=1
	fi
	mapfile -t meta < <(meta_versions)
	if [[ ${meta[0]:-} != "$want" || ${meta[1]:-} != "$want" ||
			${meta[2]:-} != "sql/brandbos--$want.sql" ]]; then
		echo "version.sh: META.json has version '${meta[0]:-}', provides.brandbos" \
			"'${meta[1]:-}' in '${meta[2]:-}'; brandbos.control is at '$want'" >&2
		bad=1
	fi
	return "$bad"
}

sync() {
	local want who tmp
	want=$(control_version)
	if [[ $(changelog_version) != "$want" ]]; then
		who=$(sed -n 's/^ -- \(.*>\)  .*/\1/p' "$ROOT/debian/changelog" | head -n 1)
		tmp=$(mktemp)
		{
			printf 'brandbos (%s) unstable; urgency=medium\n\n' "$want"
			printf '  * Release %s (brandbos.control'"'"'s default_version).\n\n' "$want"
			printf ' -- %s  %s\n\n' "$who" "$(date -R)"
			cat "$ROOT/debian/changelog"
		} >"$tmp"
		mv "$tmp" "$ROOT/debian/changelog"
		echo "debian/changelog: new entry $want"
	fi
	# (<<- strips the leading tabs: python's own indentation is in spaces)
	python3 - "$ROOT/META.json" "$want" <<-'PY'
		import json, sys
		path, want = sys.argv[1], sys.argv[2]
		meta = json.load(open(path, encoding="utf-8"))
		meta["version"] = want
		meta["provides"]["brandbos"]["version"] = want
		meta["provides"]["brandbos"]["file"] = "sql/brandbos--%s.sql" % want
		with open(path, "w", encoding="utf-8") as f:
		    f.write(json.dumps(meta, indent=3, ensure_ascii=False) + "\n")
	PY
	echo "META.json: version $want"
}

case ${1:-} in
	control) control_version ;;
	changelog) changelog_version ;;
	check) check ;;
	sync) sync ;;
	*) echo "usage: $0 control|changelog|check|sync" >&2; exit 2 ;;
esac
