#!/usr/bin/env bash
# Validates docker-compose.yml (or the Compose files named as arguments) against the Compose
# Specification, with no Docker engine and no `docker compose` plugin: the official JSON schema,
# vendored in scripts/compose-spec/ (source, version and licence in its README.md), applied by
# scripts/compose_check.py (PyYAML + jsonschema), plus the cross-reference checks Compose's loader
# makes (undefined services/volumes/networks, depends_on cycles, durations).
#
# Also fails if a broker or database port is published without a comment on that line saying why
# (scripts/compose_check.py, rule 5). `--self-test` checks the checker: bad snippets must fail,
# the real file must pass.
#
# Installs what it needs if missing (PyPI first, as scripts/test.sh does; Debian's packages when
# pip cannot install), so it is safe to run again. Quiet on success; on failure prints one line per
# problem and exits 1.
#
#   bash scripts/check-compose.sh                 # docker-compose.yml
#   bash scripts/check-compose.sh a.yml b.yml
#   bash scripts/check-compose.sh --self-test
set -euo pipefail
cd "$(dirname "$0")/.."

as_root() { if [ "$(id -u)" = 0 ]; then "$@"; else sudo "$@"; fi; }

# Draft 2020-12 (the schema's dialect) needs jsonschema >= 4.0, which is where this class appeared.
has_deps() { "$1" -c 'import yaml; from jsonschema import Draft202012Validator' >/dev/null 2>&1; }

python=""
for candidate in python3 /usr/bin/python3; do
  if command -v "$candidate" >/dev/null 2>&1 && has_deps "$candidate"; then
    python=$candidate
    break
  fi
done

if [ -z "$python" ]; then
  log=$(mktemp)
  trap 'rm -f "$log"' EXIT
  if PIP_ROOT_USER_ACTION=ignore python3 -m pip install --quiet --disable-pip-version-check \
      'jsonschema==4.26.0' 'PyYAML==6.0.3' >"$log" 2>&1 && has_deps python3; then
    python=python3
  elif { as_root env DEBIAN_FRONTEND=noninteractive apt-get update -qq \
         && as_root env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq \
              python3-jsonschema python3-yaml; } >>"$log" 2>&1 \
       && has_deps /usr/bin/python3; then
    python=/usr/bin/python3
  else
    cat "$log" >&2
    echo "check-compose: cannot install PyYAML and jsonschema (>= 4) from PyPI or Debian" >&2
    exit 1
  fi
fi

exec "$python" scripts/compose_check.py "${@:-docker-compose.yml}"
