#!/usr/bin/env bash
# Release check: the deterministic simulation over many seeds (default one million), built with
# optimisations. Prints the summary line; a failing seed replays with
#   BACKSTOP_SIM_SEED=<seed> cargo test --lib sim:: -- --nocapture
# Usage: tests/sim-long.sh [SEEDS]
set -euo pipefail
cd "$(dirname "$0")/.."
BACKSTOP_SIM_SEEDS="${1:-1000000}" cargo test --release --locked --lib sim:: -- --nocapture \
    | grep -E '^simulation:|test result'
