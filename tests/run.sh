#!/usr/bin/env bash
# The test command, kept in one place: CI (.ci/run) and the README run this script. Extra arguments go to pytest,
# e.g. `tests/run.sh tests/unit -x`. Run from anywhere; it works from the repository root.
set -euo pipefail
cd "$(dirname "$0")/.."
if [ "$#" -eq 0 ]; then
    set -- tests
fi
exec python -m pytest -q "$@"
