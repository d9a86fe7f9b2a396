#!/usr/bin/env bash
# Throwaway PostgreSQL server for tests, CI and demos.
#
#   scripts/postgres.sh start DIR [PORT]   start a server (data in DIR/data, socket in DIR, 127.0.0.1:PORT);
#                                          prints the libpq URL as the last stdout line and writes it to DIR/url.
#                                          PORT defaults to a free port. On an already running DIR it only
#                                          prints the URL.
#   scripts/postgres.sh stop DIR           stop the server (fast mode) and wait for it to exit.
#   scripts/postgres.sh url DIR            print the URL of the server in DIR.
#
# Creates role "flowmeter" (password "flowmeter", scram-sha-256 over TCP) and database "flowmeter".
# As root, initdb/pg_ctl run as the "postgres" user (the server refuses to run as root) and DIR is
# chowned to it. Installs nothing.
set -euo pipefail

readonly ROLE=flowmeter
readonly PASSWORD=flowmeter
readonly DATABASE=flowmeter

die() {
    echo "postgres.sh: $*" >&2
    exit 1
}

usage() {
    echo "usage: $0 start DIR [PORT] | stop DIR | url DIR" >&2
    exit 2
}

find_bindir() {
    local best
    # The numerically newest /usr/lib/postgresql/<version>/bin with the server tools, else the PATH.
    best="$(
        for dir in /usr/lib/postgresql/*/bin; do
            [[ -x "$dir/pg_ctl" && -x "$dir/initdb" ]] && echo "$dir"
        done | sort -V | tail -n 1
    )"
    if [[ -z "$best" ]] && command -v pg_ctl >/dev/null 2>&1 && command -v initdb >/dev/null 2>&1; then
        best="$(dirname "$(command -v pg_ctl)")"
    fi
    [[ -n "$best" ]] || die "PostgreSQL server binaries (initdb, pg_ctl) not found under /usr/lib/postgresql; install them with: apt-get install postgresql"
    echo "$best"
}

# Runs a command as the server's user: "postgres" when we are root, ourselves otherwise.
as_server_user() {
    if [[ "$(id -u)" -eq 0 ]]; then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

free_port() {
    if command -v python3 >/dev/null 2>&1 \
        && python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])' 2>/dev/null; then
        return 0
    fi
    # No usable python3: probe random high ports until one refuses connections.
    local port attempt
    for attempt in $(seq 1 50); do
        port=$((20000 + RANDOM % 40000))
        if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then
            echo "$port"
            return 0
        fi
    done
    die "could not find a free port; pass one: $0 start DIR PORT"
}

postmaster_alive() {
    local dir="$1" bindir="$2"
    [[ -f "$dir/data/postmaster.pid" ]] || return 1
    as_server_user "$bindir/pg_ctl" -D "$dir/data" status >/dev/null 2>&1
}

# Running and accepting connections (a SIGKILLed postmaster can linger as a zombie for a while).
is_running() {
    local dir="$1" bindir="$2"
    postmaster_alive "$dir" "$bindir" || return 1
    [[ -f "$dir/port" ]] || return 1
    "$bindir/pg_isready" -q -h "$dir" -p "$(cat "$dir/port")" -t 2 >/dev/null 2>&1
}

cmd_start() {
    local dir="$1" port="${2:-}"
    local bindir
    bindir="$(find_bindir)"
    mkdir -p "$dir"
    dir="$(cd "$dir" && pwd)"

    if is_running "$dir" "$bindir"; then
        [[ -f "$dir/url" ]] || die "a server is running in $dir but $dir/url is missing"
        tail -n 1 "$dir/url"
        return 0
    fi

    # A postmaster that is dying (or a zombie) still holds the data directory: wait for it to go.
    local waited=0
    while postmaster_alive "$dir" "$bindir"; do
        ((waited < 100)) || die "a postmaster holds $dir/data but does not accept connections; stop it first"
        sleep 0.1
        waited=$((waited + 1))
    done

    if [[ "$(id -u)" -eq 0 ]]; then
        id postgres >/dev/null 2>&1 || die "running as root needs a 'postgres' user (apt-get install postgresql creates it)"
        chown postgres: "$dir"
        # The server user must be able to reach DIR.
        local parent
        parent="$(dirname "$dir")"
        runuser -u postgres -- test -x "$parent" || die "user postgres cannot enter $parent"
    fi

    if [[ -z "$port" ]]; then
        if [[ -f "$dir/port" ]]; then
            port="$(cat "$dir/port")"
        else
            port="$(free_port)"
        fi
    fi
    [[ "$port" =~ ^[0-9]+$ ]] || die "invalid port: $port"

    if [[ ! -f "$dir/data/PG_VERSION" ]]; then
        rm -rf "$dir/data"
        local pwfile="$dir/pwfile"
        printf '%s\n' "$PASSWORD" >"$pwfile"
        [[ "$(id -u)" -eq 0 ]] && chown postgres: "$pwfile"
        chmod 600 "$pwfile"
        # The bootstrap superuser is the role itself; local socket connections trust, TCP needs the password.
        as_server_user "$bindir/initdb" -D "$dir/data" -U "$ROLE" --pwfile="$pwfile" \
            --auth-local=trust --auth-host=scram-sha-256 -E UTF8 --locale=C.UTF-8 >"$dir/initdb.log" 2>&1 \
            || { rm -f "$pwfile"; die "initdb failed, see $dir/initdb.log"; }
        rm -f "$pwfile"
    fi

    echo "$port" >"$dir/port"
    [[ "$(id -u)" -eq 0 ]] && chown postgres: "$dir/port"
    as_server_user "$bindir/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w -t 30 \
        -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=off" start >/dev/null \
        || die "pg_ctl start failed, see $dir/server.log"

    if ! as_server_user "$bindir/psql" -h "$dir" -p "$port" -U "$ROLE" -d postgres -Atqc \
        "SELECT 1 FROM pg_database WHERE datname = '$DATABASE'" | grep -q 1; then
        as_server_user "$bindir/psql" -h "$dir" -p "$port" -U "$ROLE" -d postgres -qc \
            "CREATE DATABASE $DATABASE OWNER $ROLE" >/dev/null || die "could not create database $DATABASE"
    fi

    local url="postgresql://$ROLE:$PASSWORD@127.0.0.1:$port/$DATABASE"
    echo "$url" >"$dir/url"
    echo "$url"
}

cmd_stop() {
    local dir="$1"
    local bindir
    bindir="$(find_bindir)"
    [[ -d "$dir/data" ]] || { echo "postgres.sh: no server in $dir" >&2; return 0; }
    # pg_ctl runs from / (as_server_user): a relative DIR must be made absolute, as cmd_start does.
    dir="$(cd "$dir" && pwd)"
    if is_running "$dir" "$bindir"; then
        as_server_user "$bindir/pg_ctl" -D "$dir/data" -m fast -w -t 30 stop >/dev/null
    fi
    echo "stopped"
}

[[ $# -ge 2 ]] || usage
case "$1" in
start) [[ $# -le 3 ]] || usage; cmd_start "$2" "${3:-}" ;;
stop) [[ $# -eq 2 ]] || usage; cmd_stop "$2" ;;
url) [[ $# -eq 2 ]] || usage; [[ -f "$2/url" ]] || die "no url in $2"; tail -n 1 "$2/url" ;;
*) usage ;;
esac
