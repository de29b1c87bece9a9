# lib.sh: shared helpers of the benchmarks: build, mount, timing, medians.
# shellcheck shell=bash
# Sourced by scripts/bench/browse and scripts/bench/ops; figures only, the
# benchmarks never pass or fail on time.

set -euo pipefail
export LC_ALL=C

ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/../.." && pwd)
BUILD=${BENCH_BUILD:-$ROOT/build}
SNAPTREEFS=${SNAPTREEFS:-$BUILD/fs/snaptreefs}
BENCH_DAEMON_PID=""
BENCH_MOUNTS=()
BENCH_DIRS=()

bench_build() {
    if [ ! -x "$SNAPTREEFS" ]; then
        if [ -f "$BUILD/meson-private/coredata.dat" ]; then
            meson compile -C "$BUILD" >/dev/null
        else
            meson setup "$BUILD" -Dbuildtype=release -Dwerror=false >/dev/null
            meson compile -C "$BUILD" >/dev/null
        fi
    fi
    [ -x "$SNAPTREEFS" ] || { echo "no snaptreefs at $SNAPTREEFS" >&2; exit 1; }
}

bench_cleanup() {
    local m d
    set +e
    for m in "${BENCH_MOUNTS[@]}"; do
        if mountpoint -q "$m"; then
            fusermount3 -u "$m" 2>/dev/null || umount "$m" 2>/dev/null || fusermount3 -z -u "$m" 2>/dev/null
        fi
    done
    if [ -n "$BENCH_DAEMON_PID" ] && kill -0 "$BENCH_DAEMON_PID" 2>/dev/null; then
        kill "$BENCH_DAEMON_PID"
    fi
    for d in "${BENCH_DIRS[@]}"; do
        rm -rf "$d"
    done
}
trap bench_cleanup EXIT

# bench_mount STATE MNT [options]: foreground daemon in the background.
bench_mount() {
    local state=$1 mnt=$2 deadline
    shift 2
    "$SNAPTREEFS" -f "$@" "$state" "$mnt" >>"${BENCH_LOG:-/dev/null}" 2>&1 &
    BENCH_DAEMON_PID=$!
    BENCH_MOUNTS+=("$mnt")
    deadline=$(( $(date +%s) + 60 ))
    until mountpoint -q "$mnt"; do
        kill -0 "$BENCH_DAEMON_PID" 2>/dev/null || { echo "snaptreefs exited before mounting" >&2; exit 1; }
        [ "$(date +%s)" -lt "$deadline" ] || { echo "mount not ready in 60 s" >&2; exit 1; }
        sleep 0.01
    done
}

bench_umount() {
    local mnt=$1
    fusermount3 -u "$mnt"
    while kill -0 "$BENCH_DAEMON_PID" 2>/dev/null; do sleep 0.01; done
    wait "$BENCH_DAEMON_PID" 2>/dev/null || true
    BENCH_DAEMON_PID=""
}

now_ns() { date +%s%N; }

# time_ms CMD...: runs CMD with its output discarded, prints milliseconds.
time_ms() {
    local t0 t1
    t0=$(now_ns)
    "$@" >/dev/null 2>&1
    t1=$(now_ns)
    awk -v d=$((t1 - t0)) 'BEGIN { printf "%.2f", d / 1e6 }'
}

# median NUMBERS...
median() {
    printf '%s\n' "$@" | sort -g | awk '{ a[NR] = $1 } END {
        if (NR % 2) printf "%.2f", a[(NR + 1) / 2];
        else printf "%.2f", (a[NR / 2] + a[NR / 2 + 1]) / 2 }'
}

# ratio A B: A / B with two decimals.
ratio() { awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.2f", a / b; else printf "n/a" }'; }

# rss_kb PID: resident set size in KiB.
rss_kb() { awk '/^VmRSS:/ { print $2 }' "/proc/$1/status"; }

# overhead_pct A B: how much A exceeds B, in percent with one decimal.
overhead_pct() {
    awk -v a="$1" -v b="$2" 'BEGIN { if (b > 0) printf "%.1f", (a - b) / b * 100; else printf "n/a" }'
}

# bench_kill_pid PID: SIGTERM, up to 5 s to go, then SIGKILL. For processes
# that are not our children (daemonized QEMU), so it polls instead of wait.
bench_kill_pid() {
    local pid=$1 _
    [ -n "$pid" ] && kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    kill -KILL "$pid" 2>/dev/null || true
}
