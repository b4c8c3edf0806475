#!/usr/bin/env bash
# Run checkov over infra/ (Bicep) from its own virtual environment.
#
# checkov pins pycep-parser 0.5.1, while the project's tests parse Bicep with
# pycep-parser 0.7.1, so checkov lives in .venv-checkov (created on first use,
# PyPI only). Extra arguments go to checkov, e.g. `scripts/checkov.sh -o json`.
#
# Beware: checkov counts a .bicep file it cannot parse as a "parsing error" and
# still exits 0 if nothing else failed. tests/infra/test_infra.py runs this script
# with -o json and fails on any parsing error.
set -euo pipefail

CHECKOV_VERSION="3.3.30"
repo_root="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
venv="${CHECKOV_VENV:-$repo_root/.venv-checkov}"
python="${PYTHON:-python3}"

installed_version() {
  "$venv/bin/python" -c 'import importlib.metadata as m; print(m.version("checkov"))' 2>/dev/null || true
}

if [[ ! -x "$venv/bin/checkov" || "$(installed_version)" != "$CHECKOV_VERSION" ]]; then
  # Progress goes to stderr so that stdout stays checkov's report (JSON with -o json).
  echo "checkov.sh: creating $venv with checkov==$CHECKOV_VERSION" >&2
  rm -rf "$venv"
  "$python" -m venv "$venv" >&2
  "$venv/bin/python" -m pip install --quiet --disable-pip-version-check "checkov==$CHECKOV_VERSION" >&2
fi

cd "$repo_root"
# BC_SKIP_MAPPING / --skip-download: no calls to the Prisma Cloud platform (CI has PyPI only).
export BC_SKIP_MAPPING=TRUE
exec "$venv/bin/checkov" -d infra --framework bicep --compact --skip-download "$@"
