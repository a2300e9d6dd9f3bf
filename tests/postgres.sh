# A throwaway PostgreSQL server for the store's PostgreSQL test cases. Sourced (by
# tests/run-all.sh, or by hand: `. tests/postgres.sh`): installs Debian's postgresql when no
# server binaries are found, starts a cluster in a temporary directory on a free loopback port
# with trust auth, creates role and database `backstop`, exports BACKSTOP_TEST_POSTGRES_URL, and
# stops the cluster and deletes it when the shell exits.
# Without it the PostgreSQL cases print "skipped: BACKSTOP_TEST_POSTGRES_URL not set".

pg_bin_dir() {
    local d
    for d in /usr/lib/postgresql/*/bin /usr/local/bin /usr/bin; do
        if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
            echo "$d"
            return 0
        fi
    done
    return 1
}

backstop_pg_start() {
    local bin
    if ! bin=$(pg_bin_dir); then
        echo "==> installing PostgreSQL (Debian postgresql)"
        local sudo=""
        [ "$(id -u)" -eq 0 ] || sudo="sudo"
        $sudo apt-get update -qq
        DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq postgresql >/dev/null
        bin=$(pg_bin_dir) || { echo "no PostgreSQL server binaries after installing"; return 1; }
    fi
    # PostgreSQL refuses to run as root: the cluster belongs to the postgres user.
    local run=()
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
        run=(runuser -u postgres --)
    fi
    local port=55432
    while (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; do
        port=$((port + 1))
    done
    BACKSTOP_PG_DIR=$(mktemp -d /tmp/backstop-pg.XXXXXX)
    [ "$(id -u)" -eq 0 ] && chown postgres: "$BACKSTOP_PG_DIR"
    "${run[@]}" "$bin/initdb" -D "$BACKSTOP_PG_DIR/data" -U postgres --auth=trust \
        --encoding=UTF8 --no-locale >"$BACKSTOP_PG_DIR/initdb.log" 2>&1 \
        || { cat "$BACKSTOP_PG_DIR/initdb.log"; return 1; }
    "${run[@]}" "$bin/pg_ctl" -D "$BACKSTOP_PG_DIR/data" -l "$BACKSTOP_PG_DIR/server.log" -w \
        -o "-c listen_addresses=127.0.0.1 -c port=$port -c unix_socket_directories=$BACKSTOP_PG_DIR -c max_connections=300 -c fsync=off" \
        start >/dev/null || { cat "$BACKSTOP_PG_DIR/server.log"; return 1; }
    BACKSTOP_PG_BIN=$bin
    BACKSTOP_PG_RUN=("${run[@]}")
    trap backstop_pg_stop EXIT
    local psql="$bin/psql"
    [ -x "$psql" ] || psql=psql
    "$psql" -h 127.0.0.1 -p "$port" -U postgres -d postgres -qAt \
        -c "CREATE ROLE backstop LOGIN" -c "CREATE DATABASE backstop OWNER backstop" >/dev/null
    export BACKSTOP_TEST_POSTGRES_URL="postgres://backstop@127.0.0.1:$port/backstop"
    # Tests that must restart a server start their own cluster with these binaries.
    export BACKSTOP_TEST_PG_BIN="$bin"
    echo "==> PostgreSQL $("$bin/postgres" --version | awk '{print $3}') on 127.0.0.1:$port (BACKSTOP_TEST_POSTGRES_URL)"
}

backstop_pg_stop() {
    [ -n "${BACKSTOP_PG_DIR:-}" ] || return 0
    "${BACKSTOP_PG_RUN[@]}" "$BACKSTOP_PG_BIN/pg_ctl" -D "$BACKSTOP_PG_DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$BACKSTOP_PG_DIR"
    BACKSTOP_PG_DIR=""
}

backstop_pg_start
