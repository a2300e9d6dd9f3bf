#!/usr/bin/env bash
# Runs every fuzz target (or those named with --only) for N minutes each, JOBS at a time, and
# writes fuzz/RESULTS.md: per target the minutes, executions, exec/s, coverage (libFuzzer's
# `cov:` edges and `ft:` features from its last stats line), corpus size and crashes.
#
#   fuzz/run.sh [--minutes N] [--jobs J] [--only TARGET]... [--keep]
#
# --minutes N   how long each target runs (default 10)
# --jobs J      targets run at once (default 2: this is a 2-core machine)
# --only T      run T only; repeat for several
# --report      only rewrite RESULTS.md from the last run's logs in fuzz/work/
# --keep        afterwards, merge what each run found into fuzz/corpus/T, minimised
#               (`cargo fuzz cmin` on edges only, which keeps it small), to be committed
#
# Stable toolchain: cargo-fuzz asks rustc for -Z flags, which RUSTC_BOOTSTRAP=1 allows, and
# runs without a sanitizer (--sanitizer none): AddressSanitizer needs nightly's -Zbuild-std to
# be meaningful and the crate forbids unsafe code anyway. Each run reads the committed seeds
# (fuzz/corpus/T, fuzz/regressions/T) and writes new inputs to fuzz/work/T (ignored by git), so
# a run never churns the committed corpus unless --keep is given. Crashes land in
# fuzz/artifacts/T/; fix them, add a unit test, and copy the input to fuzz/regressions/T/.
set -euo pipefail

here="$(cd "$(dirname "$0")" && pwd)"
cd "$here"

minutes=10
jobs=2
keep=0
report_only=0
only=()
while [ $# -gt 0 ]; do
    case "$1" in
        --minutes) minutes="$2"; shift 2 ;;
        --jobs) jobs="$2"; shift 2 ;;
        --only) only+=("$2"); shift 2 ;;
        --keep) keep=1; shift ;;
        --report) report_only=1; shift ;;
        -h|--help) sed -n '2,21p' "$0"; exit 0 ;;
        *) echo "unknown argument $1 (see --help)" >&2; exit 2 ;;
    esac
done

for tool in cargo rustc awk; do
    command -v "$tool" >/dev/null || { echo "run.sh needs $tool" >&2; exit 1; }
done
if ! cargo fuzz --version >/dev/null 2>&1; then
    echo "installing cargo-fuzz" >&2
    cargo install cargo-fuzz --locked
fi

export RUSTC_BOOTSTRAP=1
fuzz_flags=(--sanitizer none)

if [ ${#only[@]} -gt 0 ]; then
    targets=("${only[@]}")
else
    mapfile -t targets < <(cargo fuzz list)
fi

if [ "$report_only" = 0 ]; then
# One build first, so the parallel runs below find it done instead of racing for it.
cargo fuzz build "${fuzz_flags[@]}"

run_one() {
    local t="$1"
    local seeds=("corpus/$t")
    [ -d "regressions/$t" ] && seeds+=("regressions/$t")
    mkdir -p "work/$t" "artifacts/$t"
    # -timeout: an input that takes 10 s is a hang worth a report, not a wait.
    cargo fuzz run "${fuzz_flags[@]}" "$t" "work/$t" "${seeds[@]}" -- \
        -max_total_time=$((minutes * 60)) -timeout=10 -print_final_stats=1 \
        >"work/$t.log" 2>&1 || echo "$t: libFuzzer stopped early (see fuzz/work/$t.log)" >&2
}

mkdir -p work
running=0
for t in "${targets[@]}"; do
    [ -f "fuzz_targets/$t.rs" ] || { echo "no target $t" >&2; exit 2; }
    echo "fuzzing $t for $minutes min" >&2
    run_one "$t" &
    running=$((running + 1))
    if [ "$running" -ge "$jobs" ]; then
        wait -n || true
        running=$((running - 1))
    fi
done
wait
fi

{
    echo "# Fuzzing results"
    echo
    echo "\`fuzz/run.sh --minutes $minutes\` on $(date -u +%Y-%m-%dT%H:%MZ), $(nproc) cores, $jobs at a time,"
    echo "$(rustc --version), $(cargo fuzz --version), \`RUSTC_BOOTSTRAP=1\`, \`--sanitizer none\`."
    echo
    echo "| target | minutes | executions | exec/s | cov (edges) | ft (features) | corpus (files) | crashes |"
    echo "|---|---|---|---|---|---|---|---|"
    for t in "${targets[@]}"; do
        log="work/$t.log"
        execs=$(awk '/stat::number_of_executed_units/ {print $NF}' "$log" | tail -1)
        rate=$(awk '/stat::average_exec_per_sec/ {print $NF}' "$log" | tail -1)
        last=$(grep -E '^#[0-9]+.*cov: ' "$log" | tail -1 || true)
        cov=$(sed -nE 's/.* cov: ([0-9]+).*/\1/p' <<<"$last")
        ft=$(sed -nE 's/.* ft: ([0-9]+).*/\1/p' <<<"$last")
        corp=$(sed -nE 's/.* corp: ([0-9]+)\/.*/\1/p' <<<"$last")
        crashes=$(find "artifacts/$t" -type f \( -name 'crash-*' -o -name 'timeout-*' -o -name 'oom-*' -o -name 'leak-*' \) | wc -l)
        echo "| $t | $minutes | ${execs:-?} | ${rate:-?} | ${cov:-?} | ${ft:-?} | ${corp:-?} | $crashes |"
    done
    echo
    echo "Crashes are in fuzz/artifacts/TARGET/ (not committed); each fixed one is kept in"
    echo "fuzz/regressions/TARGET/, which \`cargo test --lib fuzzing\` runs. Notes:"
    echo
    for t in "${targets[@]}"; do
        find "artifacts/$t" -type f | sed "s|^|- $t: |"
    done
} >RESULTS.md.new
mv RESULTS.md.new RESULTS.md
cat RESULTS.md

if [ "$keep" = 1 ]; then
    for t in "${targets[@]}"; do
        cp -n "work/$t"/* "corpus/$t"/ 2>/dev/null || true
        cargo fuzz cmin "${fuzz_flags[@]}" "$t" "corpus/$t" -- -use_counters=0 -use_value_profile=0 >"work/$t.cmin.log" 2>&1
        echo "$t: corpus/$t now $(find "corpus/$t" -type f | wc -l) files, $(du -sh "corpus/$t" | cut -f1)" >&2
    done
fi
