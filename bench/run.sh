#!/usr/bin/env bash
# backstop's benchmarks, in one command. Writes bench/results/*.json and bench/RESULTS.md.
# See bench/README.md for what each benchmark measures.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
ROOT="$(dirname "$HERE")"
OUT="$HERE/results"
BINARY="$ROOT/target/release/backstop"
QUICK=()
ONLY=()
EXTRA=()
BUILD=1
WAIT_IDLE=300
CMDLINE="bench/run.sh${*:+ $*}"

usage() {
    cat <<'EOF'
usage: bench/run.sh [--quick] [--only 1|2|3|4|5]... [--rounds N] [--seed S] [--deployments N]
                    [--no-build] [--binary PATH] [--wait-idle SECONDS] [--keep]

  --quick         about 3 minutes: 4 rounds per side, fewer/shorter scale steps, no
                  documented-defaults comparison, 2,000 generated deployments (the full run
                  takes about 25 minutes)
  --only N        run benchmark N only (1 time to rollback, 2 scale, 3 footprint, 4 detection
                  quality, 5 failover); repeatable. Results of the others are kept from earlier runs and
                  reported with their date.
  --rounds N      bad deployments per side in benchmarks 1 and 5 (default 20, quick 4
                  and 6)
  --seed S        benchmarks 4 and 5: the generator's / the kills' seed (default 1)
  --deployments N benchmark 4: deployments to generate (default 10,000, quick 2,000)
  --no-build      do not run `cargo build --release` first
  --binary PATH   the backstop binary (default target/release/backstop)
  --wait-idle S   wait up to S seconds for other cargo/rustc builds to finish (default 300)
  --keep          keep the temporary directory (configs, state, logs)
EOF
}

while [ $# -gt 0 ]; do
    case "$1" in
        --quick) QUICK=(--quick) ;;
        --only) ONLY+=(--only "$2"); shift ;;
        --rounds) EXTRA+=(--rounds "$2"); shift ;;
        --seed) EXTRA+=(--seed "$2"); shift ;;
        --deployments) EXTRA+=(--deployments "$2"); shift ;;
        --no-build) BUILD=0 ;;
        --binary) BINARY="$2"; shift ;;
        --wait-idle) WAIT_IDLE="$2"; shift ;;
        --keep) EXTRA+=(--keep) ;;
        -h|--help) usage; exit 0 ;;
        *) echo "unknown option: $1" >&2; usage >&2; exit 2 ;;
    esac
    shift
done

say() { printf '[%s] %s\n' "$(date +%H:%M:%S)" "$*"; }

# Benchmark 4 (detection quality) runs no daemon: it is a cargo bench of the library, and its
# figures do not depend on the machine's load. Alone, it needs none of steps 1-3. Benchmark 5
# (failover) is a cargo bench too: it builds and starts its own daemons and PostgreSQL, and
# needs none of the comparison's programs nor $BINARY (cargo builds the daemon it starts), but
# its timings want a quiet machine (step 3).
DAEMONS=0
QUIET=0
if [ ${#ONLY[@]} -eq 0 ]; then
    DAEMONS=1
else
    for x in "${ONLY[@]}"; do
        case "$x" in --only|4) ;; 5) QUIET=1 ;; *) DAEMONS=1 ;; esac
    done
fi

# 1. The programs of the comparison, from Debian. (On a machine where systemd runs, installing
#    them also starts their system services; the benchmark uses its own instances on random
#    loopback ports, and its load monitor reports any other CPU use.)
need=()
[ "$DAEMONS" = 1 ] || BUILD=0
[ "$DAEMONS" = 0 ] || [ -x /usr/bin/prometheus ] || need+=(prometheus)
[ "$DAEMONS" = 0 ] || [ -x /usr/bin/prometheus-alertmanager ] || need+=(prometheus-alertmanager)
[ "$DAEMONS" = 0 ] || [ -x /usr/bin/prometheus-blackbox-exporter ] || need+=(prometheus-blackbox-exporter)
[ "$DAEMONS" = 0 ] || [ -x /usr/sbin/nginx ] || need+=(nginx-light)
# benchmark 2's loaded steps keep one core busy with stress-ng
[ "$DAEMONS" = 0 ] || command -v stress-ng >/dev/null || need+=(stress-ng)
if [ ${#need[@]} -gt 0 ]; then
    say "installing ${need[*]}"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO=sudo
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need[@]}" >/dev/null
fi
command -v perf >/dev/null || say "perf not installed: profiles of missed targets will be missing (apt-get install linux-perf)"

# 2. backstop, release build.
if [ "$BUILD" = 1 ]; then
    say "cargo build --release"
    if ! (cd "$ROOT" && cargo build --release); then
        if [ -x "$BINARY" ]; then
            say "build failed; benchmarking the existing $BINARY"
        else
            say "build failed and there is no binary"; exit 1
        fi
    fi
fi
if [ "$DAEMONS" = 1 ] && ! "$BINARY" simulate --help >/dev/null 2>&1; then
    say "$BINARY has no 'simulate' subcommand (rebuild it)"; exit 1
fi

# 3. A quiet machine: wait for other builds to finish (they distort CPU and latency figures).
waited=0
[ "$DAEMONS" = 1 ] || [ "$QUIET" = 1 ] || WAIT_IDLE=0
while [ "$WAIT_IDLE" -gt 0 ] && { pgrep -x rustc >/dev/null || pgrep -x cargo >/dev/null; }; do
    if [ "$waited" -ge "$WAIT_IDLE" ]; then
        say "other builds still running after ${WAIT_IDLE}s; going on (RESULTS.md will say so)"
        break
    fi
    [ "$waited" -eq 0 ] && say "waiting for other cargo/rustc builds to finish (up to ${WAIT_IDLE}s)"
    sleep 5
    waited=$((waited + 5))
done

# 4. Run. A full run of everything starts from an empty results directory.
mkdir -p "$OUT"
if [ ${#ONLY[@]} -eq 0 ]; then
    find "$OUT" -mindepth 1 -delete
fi
python3 "$HERE/lib/main.py" --binary "$BINARY" --outdir "$OUT" --command "$CMDLINE" \
    ${QUICK[@]+"${QUICK[@]}"} ${ONLY[@]+"${ONLY[@]}"} ${EXTRA[@]+"${EXTRA[@]}"} &
DRIVER=$!
# The driver stops every process it started (by pid) when it ends or gets SIGTERM.
trap 'kill -TERM "$DRIVER" 2>/dev/null || true; wait "$DRIVER" || true; exit 130' INT TERM
status=0
wait "$DRIVER" || status=$?
trap - INT TERM

# 5. Report.
python3 "$HERE/lib/report.py" --outdir "$OUT" --out "$HERE/RESULTS.md" --binary "$BINARY" \
    --command "$CMDLINE"
say "wrote bench/RESULTS.md"
exit "$status"
