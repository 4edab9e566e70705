#!/usr/bin/env bash
# The test command: installs the test dependencies (Debian packages) if missing, then runs every
# test of the workspace: unit, property, end-to-end and interop tests.
set -euo pipefail
cd "$(dirname "$0")/.."
bash scripts/install-deps.sh
cargo test --workspace --locked "$@"
