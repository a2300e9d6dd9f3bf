#!/usr/bin/env bash
# Runs every check and test of backstop, installing what the tests need first.
# Usage: tests/run-all.sh        (from anywhere; .ci/run calls exactly this)
set -euo pipefail
cd "$(dirname "$0")/.."

need_apt=()
command -v promtool >/dev/null 2>&1 || need_apt+=(prometheus)
command -v prometheus >/dev/null 2>&1 || need_apt+=(prometheus)
command -v systemd-analyze >/dev/null 2>&1 || need_apt+=(systemd)
command -v prometheus-alertmanager >/dev/null 2>&1 || need_apt+=(prometheus-alertmanager)
# The dashboard's browser test (tests/e2e/dashboard.rs): headless Chromium over WebDriver, and
# tidy to validate the pages' HTML.
command -v chromium >/dev/null 2>&1 || need_apt+=(chromium)
command -v chromedriver >/dev/null 2>&1 || need_apt+=(chromium-driver)
command -v tidy >/dev/null 2>&1 || need_apt+=(tidy)
# The API contract test (tests/e2e/contract.rs): schemathesis in a virtualenv (below).
command -v python3 >/dev/null 2>&1 || need_apt+=(python3)
python3 -c 'import ensurepip, venv' >/dev/null 2>&1 || need_apt+=(python3-venv)
if [ ${#need_apt[@]} -gt 0 ]; then
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    echo "==> installing test dependencies: ${need_apt[*]}"
    $SUDO apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq "${need_apt[@]}" >/dev/null
fi

# schemathesis from PyPI, pinned, in target/venv (made again when the pin changes).
SCHEMATHESIS_VERSION=4.32.5
venv=target/venv
if ! "$venv/bin/schemathesis" --version 2>/dev/null | grep -qx "schemathesis, version $SCHEMATHESIS_VERSION"; then
    echo "==> installing schemathesis $SCHEMATHESIS_VERSION into $venv"
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check "schemathesis==$SCHEMATHESIS_VERSION"
fi
export BACKSTOP_TEST_SCHEMATHESIS="$PWD/$venv/bin/schemathesis"

echo "==> cargo fmt --check"
cargo fmt --all -- --check
echo "==> cargo clippy"
cargo clippy --all-targets --locked -- -D warnings
# The store's PostgreSQL cases: a throwaway server, stopped when this script exits.
. tests/postgres.sh
echo "==> cargo test"
rm -f target/sim-summary.txt
cargo test --locked --all-targets
# The deterministic simulation (src/sim) writes its seed count and any failing seed here.
echo "==> $(cat target/sim-summary.txt)"
echo "==> backstop check-config on the shipped examples"
cargo run --quiet --locked -- check-config --config config/backstop.example.toml
echo "==> Debian package (cargo deb) and its contents"
command -v cargo-deb >/dev/null 2>&1 || cargo install cargo-deb --locked
rm -f target/debian/backstop_*.deb
cargo deb --locked
deb=$(ls target/debian/backstop_*.deb)
contents=$(dpkg-deb -c "$deb")
for path in \
    ./usr/bin/backstop \
    systemd/system/backstop.service \
    ./etc/backstop/backstop.toml \
    ./usr/share/backstop/prometheus/backstop.rules.yml \
    ./usr/share/backstop/prometheus/scrape.yml \
    ./usr/share/backstop/grafana/backstop.json \
    ./usr/share/man/man1/backstop.1.gz \
    ./usr/share/bash-completion/completions/backstop \
    ./usr/share/zsh/vendor-completions/_backstop \
    ./usr/share/fish/vendor_completions.d/backstop.fish; do
    grep -q -- "$path\$" <<<"$contents" || { echo "missing from $deb: $path"; echo "$contents"; exit 1; }
done
dpkg-deb -I "$deb" conffiles | grep -qx /etc/backstop/backstop.toml \
    || { echo "/etc/backstop/backstop.toml is not a conffile"; exit 1; }
# The packaged binary carries the allocator options of .cargo/config.toml (README, Dependencies).
dpkg-deb --fsys-tarfile "$deb" | tar -xOf - ./usr/bin/backstop \
    | grep -ac 'background_thread:true,max_background_threads:1,dirty_decay_ms:1000' >/dev/null \
    || { echo "the packaged binary lacks the allocator options of .cargo/config.toml"; exit 1; }
echo "$deb OK"

echo "all checks passed"
