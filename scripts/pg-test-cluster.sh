#!/usr/bin/env bash
# Throwaway PostgreSQL cluster for reflow's tests.
#
#   scripts/pg-test-cluster.sh start DIR   create + start a cluster in DIR; prints its URL
#                                          (postgres://reflow@127.0.0.1:PORT/reflow) as the
#                                          only line on stdout, everything else on stderr
#   scripts/pg-test-cluster.sh stop DIR    stop it (pg_ctl stop -m fast); harmless if it is
#                                          not running or DIR holds no cluster
#   scripts/pg-test-cluster.sh resume DIR  start a stopped cluster in DIR again, on its port
#                                          (the outage tests stop and resume their own)
#
# Layout in DIR: data/ (PGDATA), socket/ (unix socket dir), postgres.log, url.
# Tuned for tests only: fsync/synchronous_commit/full_page_writes off, max_connections=300,
# listens on 127.0.0.1 only on a kernel-picked free port, trust auth for 127.0.0.1 only
# (the unix socket, in DIR/socket, uses peer auth).
# Role `reflow` is a superuser (tests CREATE DATABASE); database `reflow` is owned by it.
# When run as root the cluster runs as the `postgres` OS user and DIR is chowned to it.
# Installs PostgreSQL with apt-get when no /usr/lib/postgresql/*/bin/{initdb,pg_ctl} exists.
set -euo pipefail

PROG=${0##*/}

log() { printf '%s: %s\n' "$PROG" "$*" >&2; }
die() { printf '%s: error: %s\n' "$PROG" "$*" >&2; exit 1; }

usage() {
    cat >&2 <<USAGE
usage: $PROG start DIR   create and start a throwaway cluster in DIR, print its URL
       $PROG stop DIR    stop the cluster in DIR (no-op if not running)
       $PROG resume DIR  start the stopped cluster in DIR again on the same port
USAGE
}

# Newest /usr/lib/postgresql/*/bin that has initdb and pg_ctl (empty if none).
find_pg_bin() {
    local d best="" best_ver=-1 ver
    for d in /usr/lib/postgresql/*/bin; do
        [[ -x $d/initdb && -x $d/pg_ctl ]] || continue
        ver=${d#/usr/lib/postgresql/}
        ver=${ver%/bin}
        ver=${ver%%.*}
        [[ $ver =~ ^[0-9]+$ ]] || continue
        if (( ver > best_ver )); then best_ver=$ver; best=$d; fi
    done
    printf '%s' "$best"
}

install_postgres() {
    command -v apt-get >/dev/null 2>&1 ||
        die "PostgreSQL binaries not found under /usr/lib/postgresql/*/bin and apt-get is unavailable; install PostgreSQL server manually"
    local sudo=()
    if (( EUID != 0 )); then
        command -v sudo >/dev/null 2>&1 ||
            die "PostgreSQL binaries not found and not root (and no sudo) to apt-get install postgresql"
        sudo=(sudo)
    fi
    log "PostgreSQL binaries not found; installing with apt-get (postgresql)"
    # Don't let the package create and start the system-wide 'main' cluster: we only
    # need the binaries. The drop-in is read by postgresql-common's createcluster.conf.
    local dropin=/etc/postgresql-common/createcluster.d/99-reflow-test-no-main.conf
    "${sudo[@]}" mkdir -p "${dropin%/*}"
    printf 'create_main_cluster = false\n' | "${sudo[@]}" tee "$dropin" >/dev/null
    local rc=0
    {
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get update -q &&
        "${sudo[@]}" env DEBIAN_FRONTEND=noninteractive apt-get install -y -q --no-install-recommends postgresql
    } >&2 || rc=$?
    "${sudo[@]}" rm -f "$dropin"
    (( rc == 0 )) || die "apt-get install postgresql failed (exit $rc)"
}

# Free TCP port on 127.0.0.1, chosen by the kernel.
pick_port() {
    local port=""
    if command -v python3 >/dev/null 2>&1; then
        port=$(python3 -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1]); s.close()' 2>/dev/null) || port=""
    fi
    if [[ -z $port ]] && command -v perl >/dev/null 2>&1; then
        port=$(perl -MIO::Socket::INET -e 'my $s=IO::Socket::INET->new(LocalAddr=>"127.0.0.1",LocalPort=>0,Listen=>1) or die; print $s->sockport,"\n"' 2>/dev/null) || port=""
    fi
    if [[ -z $port ]]; then
        # Last resort: random high port that nothing answers on.
        local _
        for _ in $(seq 1 50); do
            port=$(( 20000 + RANDOM % 40000 ))
            if ! (exec 3<>"/dev/tcp/127.0.0.1/$port") 2>/dev/null; then break; fi
            port=""
        done
    fi
    [[ $port =~ ^[0-9]+$ ]] || die "could not find a free TCP port on 127.0.0.1"
    printf '%s' "$port"
}

# Run a command as the cluster owner (postgres when we are root, else ourselves).
as_owner() {
    if (( EUID == 0 )); then
        (cd / && runuser -u postgres -- "$@")
    else
        "$@"
    fi
}

abs_dir() {
    local d=$1
    [[ $d == /* ]] || d="$PWD/$d"
    printf '%s' "$d"
}

cmd_start() {
    local dir
    dir=$(abs_dir "$1")
    local data="$dir/data" sock="$dir/socket" logf="$dir/postgres.log"

    local bin
    bin=$(find_pg_bin)
    if [[ -z $bin ]]; then
        install_postgres
        bin=$(find_pg_bin)
        [[ -n $bin ]] || die "installed postgresql but still no initdb/pg_ctl under /usr/lib/postgresql/*/bin"
    fi
    log "using PostgreSQL binaries in $bin ($("$bin/pg_ctl" --version))"

    if (( EUID == 0 )); then
        id postgres >/dev/null 2>&1 ||
            die "running as root but there is no 'postgres' OS user to run the server (install the postgresql package)"
        command -v runuser >/dev/null 2>&1 || die "runuser not found (util-linux) - needed to run initdb as postgres"
    fi

    mkdir -p "$dir"
    if [[ -e $data ]] && [[ -n $(ls -A "$data" 2>/dev/null) ]]; then
        die "$data already exists and is not empty; use a fresh DIR (or '$PROG stop $1' and remove it)"
    fi
    # Unix socket paths are limited to ~107 bytes.
    (( ${#sock} + 20 < 107 )) || die "DIR path too long for a unix socket dir: $sock (use a shorter DIR, e.g. from mktemp -d)"
    mkdir -p "$data" "$sock"
    chmod 700 "$dir" "$data"
    if (( EUID == 0 )); then
        chown -R postgres: "$dir"
        as_owner test -x "$dir" ||
            die "the postgres user cannot access $dir (a parent directory is not traversable); use a DIR under /tmp, e.g. \$(mktemp -d)"
    fi

    log "initdb in $data"
    as_owner "$bin/initdb" -D "$data" -U postgres --auth-local=peer --auth-host=trust \
        --encoding=UTF8 --locale=C --no-sync >"$dir/initdb.log" 2>&1 || {
        cat "$dir/initdb.log" >&2
        die "initdb failed (log above)"
    }

    # Only loopback IPv4 over TCP; the unix socket lives in a private dir of DIR.
    as_owner tee "$data/pg_hba.conf" >/dev/null <<HBA
# reflow throwaway test cluster
local   all          all                 peer
host    all          all   127.0.0.1/32  trust
HBA
    as_owner tee -a "$data/postgresql.conf" >/dev/null <<CONF

# --- reflow throwaway test cluster ---
listen_addresses = '127.0.0.1'
unix_socket_directories = '$sock'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 300
include_if_exists = 'port.conf'
CONF

    # The port is free when the kernel hands it out but could be taken before the
    # server binds it, so retry a few times with a fresh port.
    local port="" attempt started=0
    for attempt in 1 2 3 4 5; do
        port=$(pick_port)
        printf 'port = %s\n' "$port" | as_owner tee "$data/port.conf" >/dev/null
        log "starting server on 127.0.0.1:$port (attempt $attempt, log: $logf)"
        if as_owner "$bin/pg_ctl" -D "$data" -l "$logf" -w -t 60 start >&2; then
            started=1
            break
        fi
        log "server failed to start on port $port"
        # Make sure a half-started server is gone before retrying.
        as_owner "$bin/pg_ctl" -D "$data" -m immediate stop >/dev/null 2>&1 || true
    done
    if (( ! started )); then
        [[ -f $logf ]] && tail -n 30 "$logf" >&2
        die "could not start PostgreSQL (server log: $logf)"
    fi

    local psql="$bin/psql"
    [[ -x $psql ]] || psql=$(command -v psql || true)
    [[ -n $psql ]] || { cmd_stop "$dir"; die "psql not found (install postgresql-client)"; }

    log "creating role and database 'reflow'"
    if ! "$psql" -X -q -v ON_ERROR_STOP=1 -h 127.0.0.1 -p "$port" -U postgres -d postgres >&2 <<'SQL'
CREATE ROLE reflow WITH LOGIN SUPERUSER;
CREATE DATABASE reflow OWNER reflow;
SQL
    then
        cmd_stop "$dir"
        die "creating role/database reflow failed"
    fi

    local url="postgres://reflow@127.0.0.1:$port/reflow"
    printf '%s\n' "$url" >"$dir/url"
    log "ready: $url"
    printf '%s\n' "$url"
}

cmd_stop() {
    local dir
    dir=$(abs_dir "$1")
    local data="$dir/data"
    if [[ ! -f $data/PG_VERSION ]]; then
        log "no cluster in $dir; nothing to stop"
        return 0
    fi
    if [[ ! -f $data/postmaster.pid ]]; then
        log "cluster in $dir is not running"
        return 0
    fi
    local bin
    bin=$(find_pg_bin)
    [[ -n $bin ]] || die "cluster in $dir seems to be running but pg_ctl was not found"
    if as_owner "$bin/pg_ctl" -D "$data" status >/dev/null 2>&1; then
        log "stopping cluster in $dir"
        as_owner "$bin/pg_ctl" -D "$data" -m fast -w -t 60 stop >&2 ||
            die "pg_ctl stop failed for $data"
    else
        log "cluster in $dir is not running"
    fi
}

cmd_resume() {
    local dir
    dir=$(abs_dir "$1")
    local data="$dir/data"
    [[ -f $data/PG_VERSION ]] || die "no cluster in $dir to resume"
    local bin
    bin=$(find_pg_bin)
    [[ -n $bin ]] || die "pg_ctl not found"
    as_owner "$bin/pg_ctl" -D "$data" -l "$dir/postgres.log" -w -t 60 start >&2 ||
        die "pg_ctl start failed for $data (log: $dir/postgres.log)"
}

main() {
    if [[ $# -eq 1 && ( $1 == -h || $1 == --help ) ]]; then usage; exit 0; fi
    [[ $# -eq 2 ]] || { usage; exit 2; }
    [[ -n $2 ]] || die "DIR must not be empty"
    case $1 in
        start) cmd_start "$2" ;;
        stop) cmd_stop "$2" ;;
        resume) cmd_resume "$2" ;;
        *) usage; exit 2 ;;
    esac
}

main "$@"
