# common.sh: mount, cleanup, qcow2 and assertion helpers for the integration tests.
# shellcheck shell=bash
#
# Sourced by tests/integration/test-*.sh (model: libfuse test/cases/lib/common.sh
# and sshfs test/util.py). Sourcing it checks the prerequisites (exit 77 =
# skip), creates a private WORKDIR with state/, mnt/ and logs/, and registers
# the EXIT trap before anything is mounted. Set KEEP_WORKDIR=1 to keep it.

set -euo pipefail
export LC_ALL=C

# Each test runs in a mount namespace of its own (as root, when unshare
# works; SNAPTREEFS_TEST_SHARED_NS=1 opts out). A mount namespace created
# elsewhere on the machine while a test's FUSE mount exists (unshare -m, or
# libvirtd and the QEMUs it starts) copies that mount; with / private, the
# copy outlives fusermount3 -u, and the daemon, whose connection then stays
# open, never exits. Mounted in a namespace of its own, the mount is not
# there to be copied.
if [ -z "${SNAPTREEFS_TEST_NS:-}" ] && [ "${SNAPTREEFS_TEST_SHARED_NS:-0}" != 1 ] &&
    [ "$(id -u)" -eq 0 ] && command -v unshare >/dev/null &&
    unshare -m --propagation private true 2>/dev/null; then
    export SNAPTREEFS_TEST_NS=1
    exec unshare -m --propagation private bash "$0" "$@"
fi

TEST_NAME=$(basename "$0" .sh)

# ---- reporting ---------------------------------------------------------------

say() { printf '%s: %s\n' "$TEST_NAME" "$*"; }
check() { printf '%s: check: %s\n' "$TEST_NAME" "$*"; }

skip() {
    printf '%s: SKIP: %s\n' "$TEST_NAME" "$*"
    exit 77
}

dump_log() {
    local f
    for f in "${LOGS:-/nonexistent}"/*.log; do
        [ -s "$f" ] || continue
        printf -- '----- %s -----\n' "$f"
        tail -n 200 "$f"
    done
}

fail() {
    printf '%s: FAIL: %s\n' "$TEST_NAME" "$*" >&2
    dump_log >&2
    exit 1
}

# assert_eq WHAT EXPECTED GOT
assert_eq() {
    [ "$2" == "$3" ] || fail "$1: expected [$2], got [$3]"
}

# assert_contains WHAT HAYSTACK NEEDLE
assert_contains() {
    case "$2" in
        *"$3"*) ;;
        *) fail "$1: expected to contain [$3], got [$2]" ;;
    esac
}

# ---- prerequisites -------------------------------------------------------------

require_fuse() {
    [ -c /dev/fuse ] || skip "no /dev/fuse"
    command -v fusermount3 >/dev/null || skip "no fusermount3"
    if [ "$(id -u)" -ne 0 ] && [ ! -u "$(command -v fusermount3)" ]; then
        skip "fusermount3 is not setuid and we are not root"
    fi
    command -v mountpoint >/dev/null || skip "no mountpoint (util-linux)"
}

require_qemu_img() {
    command -v qemu-img >/dev/null || skip "no qemu-img"
    command -v qemu-io >/dev/null || skip "no qemu-io"
    command -v jq >/dev/null || skip "no jq"
}

require_cmd() {
    local c
    for c in "$@"; do
        command -v "$c" >/dev/null || skip "no $c"
    done
}

require_fuse
require_qemu_img

: "${SNAPTREEFS:?SNAPTREEFS must name the snaptreefs binary (meson test sets it)}"
[ -x "$SNAPTREEFS" ] || fail "SNAPTREEFS=$SNAPTREEFS is not an executable"

# Under ASan and valgrind everything is slower: scale the deadlines.
TIME_SCALE=1
case "${ASAN_OPTIONS:-}${UBSAN_OPTIONS:-}" in
    ?*) TIME_SCALE=3 ;;
esac

# ---- workdir and cleanup -------------------------------------------------------

WORKDIR=$(mktemp -d "${TMPDIR:-/tmp}/snaptreefs-$TEST_NAME.XXXXXX")
STATE=$WORKDIR/state
MNT=$WORKDIR/mnt
LOGS=$WORKDIR/logs
mkdir -p "$STATE/domains" "$STATE/images" "$MNT" "$LOGS"
DAEMON_LOG=$LOGS/snaptreefs.log
DAEMON_PID=""
EXTRA_PIDS=()          # QEMU or helper processes a test started

_kill_pid() {
    local pid=$1 i
    kill -0 "$pid" 2>/dev/null || return 0
    kill -TERM "$pid" 2>/dev/null || true
    for i in $(seq 1 20); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
}

cleanup() {
    local rc=$? pid
    set +e
    # QEMUs first: an operation waiting on one then ends at once, and a
    # test stopped by meson's timeout (SIGTERM, SIGKILL 0.5 s later) still
    # leaves none running (daemonized, they are not in its process group).
    kill_test_qemus
    if mountpoint -q "$MNT" 2>/dev/null; then
        fusermount3 -u "$MNT" 2>/dev/null || fusermount3 -z -u "$MNT" 2>/dev/null
    fi
    [ -n "$DAEMON_PID" ] && _kill_pid "$DAEMON_PID"
    # A daemonized (no -f) instance is found by its mount having gone away
    # or by the pid we recorded for it.
    for pid in "${EXTRA_PIDS[@]}"; do
        _kill_pid "$pid"
    done
    if [ "$rc" -ne 0 ] && [ "$rc" -ne 77 ]; then
        printf '%s: exit %d; workdir %s\n' "$TEST_NAME" "$rc" "$WORKDIR" >&2
    fi
    # Filesystems a test mounted inside its workdir (a small tmpfs).
    awk -v w="$WORKDIR/" 'index($2, w) == 1 { print $2 }' /proc/mounts | sort -r |
        while read -r m; do umount -l "$m" 2>/dev/null; done
    if [ "${KEEP_WORKDIR:-0}" = 1 ]; then
        printf '%s: kept %s\n' "$TEST_NAME" "$WORKDIR" >&2
    else
        rm -rf "$WORKDIR"
    fi
    exit "$rc"
}
# ---- QEMU processes ------------------------------------------------------------------

# A QEMU that snaptreefs started for this test names STATE/run/ in its
# command line (-pidfile, -qmp). QEMU_PIDS collects the pids a test has
# seen, in case a pidfile is gone by the time cleanup runs.
QEMU_PIDS=()

# is_test_qemu PID: PID is a live (not zombie) process started for this
# test. Only builtins: cleanup runs it on every process and may have half
# a second (meson's timeout sends SIGKILL 0.5 s after SIGTERM).
is_test_qemu() {
    local pid=$1 stat args=()
    [ -n "$pid" ] || return 1
    read -r stat 2>/dev/null <"/proc/$pid/stat" || return 1
    stat=${stat##*) }
    case "$stat" in Z* | X*) return 1 ;; esac
    mapfile -d '' args 2>/dev/null <"/proc/$pid/cmdline" || return 1
    case "${args[*]}" in *"$STATE/run/"*) return 0 ;; esac
    return 1
}

# kill_test_qemus: SIGKILL, by pid, every QEMU this test started: those its
# pidfiles name, those it recorded, and any other whose command line names
# this test's STATE/run/ (a pidfile may already be gone). Waits until they are.
kill_test_qemus() {
    local pid f p pids=("${QEMU_PIDS[@]}")
    for f in "$STATE"/run/*.pid; do
        [ -e "$f" ] && read -r pid 2>/dev/null <"$f" && pids+=("$pid")
    done
    for p in /proc/[0-9]*; do
        pid=${p#/proc/}
        is_test_qemu "$pid" && pids+=("$pid")
    done
    for pid in "${pids[@]}"; do
        is_test_qemu "$pid" && kill -KILL "$pid" 2>/dev/null
    done
    for pid in "${pids[@]}"; do
        for _ in {1..100}; do
            is_test_qemu "$pid" || break
            sleep 0.05
        done
    done
    return 0
}

trap cleanup EXIT
# A signal ends the test through cleanup too (bash skips the EXIT trap
# when a signal kills it).
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 143' TERM

# ---- mounting -----------------------------------------------------------------

# wait_mounted DEADLINE_S [PID]: until MNT is a mountpoint; fail when PID dies.
wait_mounted() {
    local deadline=$(( $(date +%s) + $1 * TIME_SCALE )) pid=${2:-}
    while ! mountpoint -q "$MNT"; do
        if [ -n "$pid" ] && ! kill -0 "$pid" 2>/dev/null; then
            local rc=0
            wait "$pid" || rc=$?
            DAEMON_PID=""
            fail "snaptreefs exited with status $rc before the mount was ready"
        fi
        [ "$(date +%s)" -lt "$deadline" ] || fail "mount not ready after $1 s"
        sleep 0.05
    done
}

# mount_fs [snaptreefs options...]: foreground daemon, log in LOGS.
mount_fs() {
    [ -z "$DAEMON_PID" ] || fail "mount_fs: already mounted (pid $DAEMON_PID)"
    printf -- '=== mount %s\n' "$*" >>"$DAEMON_LOG"
    G_DEBUG=fatal-warnings "$SNAPTREEFS" -f "$@" "$STATE" "$MNT" >>"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    wait_mounted 10 "$DAEMON_PID"
}

# LOG_BAD: GLib's CRITICAL/WARNING/ERROR records ("snaptreefs-WARNING **:",
# "** (snaptreefs:12): CRITICAL **:") and sanitizer reports. Messages the
# daemon quotes from qemu-img ("WARNING: Image format was not specified")
# are g_message records and do not match.
LOG_BAD='(CRITICAL|WARNING|ERROR) \*\*|runtime error:|Sanitizer|^==[0-9]+=='

# check_log [FILE]: the daemon log holds no GLib warning or error and no sanitizer report.
check_log() {
    local bad
    bad=$(grep -E "$LOG_BAD" "${1:-$DAEMON_LOG}" || true)
    [ -z "$bad" ] || fail "daemon log has warnings or errors: $bad"
}

# daemon_stacks: the daemon's thread stacks (when gdb is there), to say
# where a daemon that does not exit is stuck.
daemon_stacks() {
    command -v gdb >/dev/null || return 0
    printf '\nthreads of snaptreefs (pid %s):\n' "$DAEMON_PID"
    timeout 60 gdb -p "$DAEMON_PID" -batch -ex "thread apply all bt" 2>&1 | grep -E '^(#|Thread)' | head -n 120
}

# wait_daemon_exit: the daemon must exit 0 within 10 s (its mount is gone).
wait_daemon_exit() {
    local deadline=$(( $(date +%s) + 10 * TIME_SCALE )) rc=0
    while kill -0 "$DAEMON_PID" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] ||
            fail "snaptreefs (pid $DAEMON_PID) still running 10 s after unmount$(daemon_stacks)"
        sleep 0.05
    done
    wait "$DAEMON_PID" || rc=$?
    DAEMON_PID=""
    [ "$rc" -eq 0 ] || fail "snaptreefs exited with status $rc after unmount, expected 0"
    check_log
}

# umount_fs: the normal path: unmount, require exit 0 and a clean log.
umount_fs() {
    fusermount3 -u "$MNT" || fail "fusermount3 -u $MNT failed"
    wait_daemon_exit
}

# pids_matching GLOB: the pids whose command line (arguments joined by
# spaces) matches the shell pattern GLOB, one a line.
pids_matching() {
    local p args
    for p in /proc/[0-9]*; do
        args=$( { tr '\0' ' ' <"$p/cmdline"; } 2>/dev/null) || continue
        # shellcheck disable=SC2254 # GLOB is a pattern on purpose
        case "$args" in $1) echo "${p#/proc/}" ;; esac
    done
}

# nbd_count: qemu-nbd processes serving this test's state directory.
nbd_count() {
    pids_matching "*qemu-nbd*$STATE/run/nbd/*" | wc -l
}

# daemon_pid MOUNTPOINT: the pid of the daemonized snaptreefs serving
# MOUNTPOINT (started without -f, by mount(8) too), found by its command line.
daemon_pid() {
    local p args=() a
    for p in /proc/[0-9]*; do
        mapfile -d '' args 2>/dev/null <"$p/cmdline" || continue
        [ "${#args[@]}" -ge 3 ] || continue
        case "${args[0]}" in *snaptreefs) ;; *) continue ;; esac
        for a in "${args[@]:1}"; do
            [ "$a" = "$1" ] && { echo "${p#/proc/}"; return 0; }
        done
    done
    return 1
}

# umount_daemonized MOUNTPOINT PID: umount(8) ends the daemon. It is not our
# child, so its exit status is not ours to see: it must be gone within 10 s.
umount_daemonized() {
    local pid=$2
    umount "$1" || fail "umount $1"
    for _ in $(seq 1 200); do
        kill -0 "$pid" 2>/dev/null || return 0
        sleep 0.05
    done
    fail "snaptreefs (pid $pid) still runs 10 s after umount $1"
}

# ---- domains and images ------------------------------------------------------------

# make_image FILE [SIZE]: a fresh qcow2.
make_image() {
    qemu-img create -q -f qcow2 "$1" "${2:-64M}" || fail "qemu-img create $1"
}

# make_domain NAME [DEV...]: STATE/domains/NAME.xml with one qcow2 per DEV
# (default vda) at STATE/images/NAME-DEV.qcow2, referenced by a path
# relative to STATE as the contract allows; each disk's snapshot attribute
# is $DISK_SNAPSHOT (default internal).
make_domain() {
    local name=$1 dev
    shift
    [ $# -gt 0 ] || set -- vda
    {
        printf '<domain type="kvm">\n'
        printf '  <name>%s</name>\n' "$name"
        printf '  <uuid>%s</uuid>\n' "$(cat /proc/sys/kernel/random/uuid)"
        printf '  <memory unit="MiB">64</memory>\n'
        printf '  <vcpu>1</vcpu>\n'
        printf '  <os>\n    <type arch="x86_64" machine="pc">hvm</type>\n  </os>\n'
        printf '  <devices>\n'
        printf '    <emulator>/usr/bin/qemu-system-x86_64</emulator>\n'
        for dev in "$@"; do
            make_image "$STATE/images/$name-$dev.qcow2"
            printf '    <disk type="file" device="disk" snapshot="%s">\n' "${DISK_SNAPSHOT:-internal}"
            printf '      <driver name="qemu" type="qcow2"/>\n'
            printf '      <source file="images/%s-%s.qcow2"/>\n' "$name" "$dev"
            printf '      <target dev="%s" bus="virtio"/>\n' "$dev"
            printf '    </disk>\n'
        done
        printf '  </devices>\n</domain>\n'
    } >"$STATE/domains/$name.xml"
}

# image NAME [DEV]: the path of a domain's disk image.
image() { printf '%s/images/%s-%s.qcow2' "$STATE" "$1" "${2:-vda}"; }

# disk_tags FILE: the internal snapshot tags of a qcow2, sorted, space separated.
disk_tags() {
    qemu-img info --output=json -U "$1" | jq -r '[.snapshots[]?.name] | sort | join(" ")'
}

# write_pattern FILE BYTE [OFF [LEN]]: fill a range with BYTE (e.g. 0xaa).
write_pattern() {
    qemu-io -f qcow2 -c "write -P $2 ${3:-0} ${4:-1M}" "$1" >/dev/null ||
        fail "qemu-io write -P $2 on $1"
}

# check_pattern FILE BYTE [OFF [LEN]]: the range reads back as BYTE.
check_pattern() {
    local out
    out=$(qemu-io -r -U -f qcow2 -c "read -P $2 ${3:-0} ${4:-1M}" "$1" 2>&1) ||
        fail "pattern check on $(basename "$1"): expected bytes $2 at ${3:-0}+${4:-1M}, got: $out"
}

# qcow2_check FILE: qemu-img check finds no corruption or leak.
qcow2_check() {
    local out
    out=$(qemu-img check -U "$1" 2>&1) || fail "qemu-img check $1: $out"
}

# qcow2_check_after_kill FILE: after QEMU was killed with SIGKILL, qcow2
# may have leaked clusters (it updates refcounts before the tables that use
# them, so that a crash leaks and never corrupts): exit 3 (leaks only) is
# accepted, corruption (exit 2) or anything else is not.
qcow2_check_after_kill() {
    local out rc=0
    out=$(qemu-img check -U "$1" 2>&1) || rc=$?
    case "$rc" in
        0) ;;
        3) say "qemu-img check $(basename "$1") after SIGKILL: leaks only: $(echo "$out" | grep -c Leaked) clusters" ;;
        *) fail "qemu-img check $1 (exit $rc): $out" ;;
    esac
}

# ---- state snapshots for "nothing changed" checks ---------------------------------

# fingerprint DOMAIN: tags of every disk, the metadata files with their
# content hash, and the current link, as one text.
fingerprint() {
    local dom=$1 img f
    for img in "$STATE/images/$dom"-*.qcow2; do
        [ -e "$img" ] || continue
        printf 'tags %s: %s\n' "$(basename "$img")" "$(disk_tags "$img" 2>&1)"
    done
    if [ -d "$STATE/snapshots/$dom" ]; then
        for f in "$STATE/snapshots/$dom"/*.xml; do
            [ -e "$f" ] || continue
            printf 'meta %s %s\n' "$(basename "$f")" "$(md5sum <"$f" | cut -d' ' -f1)"
        done
    fi
    printf 'current %s\n' "$(readlink "$MNT/$dom/current" 2>/dev/null || echo '<none>')"
}

# assert_unchanged WHAT BEFORE DOMAIN
assert_unchanged() {
    local now
    now=$(fingerprint "$3")
    [ "$2" == "$now" ] || fail "$1: expected no change; before:
$2
after:
$now"
}

# errors_count DOMAIN: lines in the domain's errors file.
errors_count() {
    local n
    n=$(wc -l <"$MNT/$1/errors") || fail "cannot read $MNT/$1/errors"
    echo "$n"
}

# assert_new_error WHAT DOMAIN COUNT_BEFORE [TEXT]: errors grew, last line has TEXT.
assert_new_error() {
    local n last
    n=$(errors_count "$2")
    [ "$n" -gt "$3" ] || fail "$1: expected a new line in $2/errors (had $3), got $n lines"
    last=$(tail -n 1 "$MNT/$2/errors")
    [ -z "${4:-}" ] || assert_contains "$1: last errors line" "$last" "$4"
}

# ---- running commands ----------------------------------------------------------------

# assert_errno TEXT CMD...: CMD fails and its stderr names the error TEXT
# (strerror text, e.g. "Invalid argument", "File exists").
assert_errno() {
    local text=$1 out rc=0
    shift
    out=$("$@" 2>&1 >/dev/null) || rc=$?
    [ "$rc" -ne 0 ] || fail "expected '$*' to fail with '$text', it succeeded"
    assert_contains "stderr of '$*'" "$out" "$text"
}

# assert_ok CMD...: CMD succeeds with no output on stderr.
assert_ok() {
    local out rc=0
    out=$("$@" 2>&1 >/dev/null) || rc=$?
    [ "$rc" -eq 0 ] || fail "expected '$*' to succeed, got status $rc: $out"
    [ -z "$out" ] || fail "expected '$*' to be silent, got: $out"
}

# put FILE TEXT: write TEXT and a newline with one write, as `echo TEXT > FILE`.
put() {
    bash -c 'echo "$2" > "$1"' _ "$1" "$2"
}

# put_file FILE SRC: `cat SRC > FILE`.
put_file() {
    bash -c 'cat "$2" > "$1"' _ "$1" "$2"
}

# now_ms: wall clock in milliseconds.
now_ms() { echo $(( $(date +%s%N) / 1000000 )); }

# ---- running domains -------------------------------------------------------------------

# require_qemu_system: qemu-system-x86_64 exists (KVM is used when /dev/kvm
# works, else TCG; a 64 MiB guest with no OS runs under either).
require_qemu_system() {
    command -v qemu-system-x86_64 >/dev/null || skip "no qemu-system-x86_64"
}

# state_of DOMAIN: what MOUNT/DOMAIN/state reads.
state_of() {
    cat "$MNT/$1/state" || fail "cannot read $1/state"
}

# wait_state DOMAIN WANT [SECONDS]: until state reads WANT.
wait_state() {
    local deadline=$(( $(date +%s) + ${3:-10} * TIME_SCALE )) got
    while :; do
        got=$(state_of "$1")
        [ "$got" == "$2" ] && return 0
        [ "$(date +%s)" -lt "$deadline" ] || fail "$1/state: expected [$2] within ${3:-10} s, got [$got]"
        sleep 0.05
    done
}

# assert_running DOMAIN WANT_STATE [PID]: state reads WANT_STATE (running
# or paused), the pidfile names a live QEMU (PID, when given) and the QMP
# socket exists. Sets RUN_PID to the pid (no subshell, so fail() stops the test).
RUN_PID=""
assert_running() {
    assert_eq "$1/state" "$2" "$(state_of "$1")"
    RUN_PID=$(cat "$STATE/run/$1.pid" 2>/dev/null) || fail "$1 is $2 but has no pidfile"
    QEMU_PIDS+=("$RUN_PID")
    is_test_qemu "$RUN_PID" || fail "$1 is $2 but pid $RUN_PID from its pidfile is not a live QEMU"
    [ -S "$STATE/run/$1.qmp" ] || fail "$1 is $2 but $STATE/run/$1.qmp is not a socket"
    [ -z "${3:-}" ] || assert_eq "$1: QEMU pid" "$3" "$RUN_PID"
}

# assert_shutoff DOMAIN [PID]: state reads shutoff, PID (if given) is gone,
# no run files are left (waiting a little for QEMU to finish exiting).
assert_shutoff() {
    local deadline=$(( $(date +%s) + 5 * TIME_SCALE ))
    assert_eq "$1/state" shutoff "$(state_of "$1")"
    while { [ -n "${2:-}" ] && is_test_qemu "$2"; } ||
        [ -e "$STATE/run/$1.pid" ] || [ -e "$STATE/run/$1.qmp" ]; do
        [ "$(date +%s)" -lt "$deadline" ] ||
            fail "$1 is shutoff but pid ${2:-?} lives or run files remain: $(ls "$STATE/run" 2>&1 | tr '\n' ' ')"
        sleep 0.05
    done
}

# vm_state_size FILE TAG: the VM state size qemu-img reports for TAG (0 for
# a disk-only snapshot); empty when there is no such tag.
vm_state_size() {
    qemu-img info --output=json -U "$1" |
        jq -r --arg t "$2" '.snapshots[]? | select(.name == $t) | ."vm-state-size"'
}

# assert_vm_state FILE TAG MIN_BYTES: TAG is on the disk with a VM state of
# at least MIN_BYTES (a live snapshot's memory). Prints the size.
assert_vm_state() {
    local size
    size=$(vm_state_size "$1" "$2")
    if [ -z "$size" ] || [ "$size" -lt "$3" ]; then
        fail "$2 on $(basename "$1"): VM state [$size] bytes, expected a tag with >= $3"
    fi
    echo "$size"
}

# set_domain_memory DOMAIN MIB: edit <memory> in STATE/domains/DOMAIN.xml.
set_domain_memory() {
    sed -i -E "s|<memory[^>]*>[0-9]+</memory>|<memory unit=\"MiB\">$2</memory>|" \
        "$STATE/domains/$1.xml"
    grep -q "<memory unit=\"MiB\">$2</memory>" "$STATE/domains/$1.xml" ||
        fail "set_domain_memory $1 $2 did not apply"
}

# make_big_ram_guest DOMAIN MIB: DOMAIN's QEMU gets MIB of guest RAM backed
# by a file of 0xff bytes, through an <emulator> wrapper in WORKDIR. RAM
# that is not zero is what QEMU must write out in a live snapshot, which is
# then slow enough to be caught while it runs. (python3 writes the file 3x
# faster than head | tr.)
make_big_ram_guest() {
    require_cmd python3
    local dom=$1 mib=$2 ram=$WORKDIR/$1-ram.img wrapper=$WORKDIR/$1-qemu
    python3 -c '
import sys
mib, path = int(sys.argv[1]), sys.argv[2]
block = b"\xff" * (1 << 20)
with open(path, "wb") as f:
    for _ in range(mib):
        f.write(block)
' "$mib" "$ram" || fail "cannot write $ram"
    cat >"$wrapper" <<SH
#!/bin/sh
exec qemu-system-x86_64 "\$@" -object memory-backend-file,id=ram0,size=${mib}M,mem-path=$ram,share=off -machine memory-backend=ram0
SH
    chmod +x "$wrapper"
    sed -i "s|<emulator>[^<]*</emulator>|<emulator>$wrapper</emulator>|" "$STATE/domains/$dom.xml"
    set_domain_memory "$dom" "$mib"
}

# assert_store_agrees DOMAIN: the snapshots in the tree (.by-name), the
# metadata files in STATE/snapshots/DOMAIN and the tags on the first disk
# name the same snapshots; STATE/journal/DOMAIN.json holds no intent.
assert_store_agrees() {
    local dom=$1 tree meta tags deadline
    tree=$(ls "$MNT/$dom/.by-name" | sort | tr '\n' ' ')
    meta=$(cd "$STATE/snapshots/$dom" 2>/dev/null && ls -- *.xml 2>/dev/null | sed 's/\.xml$//' | sort | tr '\n' ' ' || true)
    tags=$(disk_tags "$(image "$dom")")
    assert_eq "$dom: metadata files vs the tree" "$tree" "$meta"
    assert_eq "$dom: disk tags vs the tree" "${tree% }" "$tags"
    # The intent is cleared (the file emptied) after the reply, before the
    # next operation.
    deadline=$(( $(date +%s) + 3 * TIME_SCALE ))
    while [ -s "$STATE/journal/$dom.json" ]; do
        [ "$(date +%s)" -lt "$deadline" ] ||
            fail "$dom: intent left in STATE/journal: $(cat "$STATE/journal/$dom.json")"
        sleep 0.05
    done
}

# qmp DOMAIN JSON: sends one QMP command to DOMAIN's QEMU (through the test
# monitor, STATE/run/DOMAIN.qmp.test, that SNAPTREEFS_TEST_MONITOR=1 adds)
# and prints the "return" member as JSON.
export SNAPTREEFS_TEST_MONITOR=1
qmp() {
    python3 - "$STATE/run/$1.qmp.test" "$2" <<'PY' || fail "qmp $1 $2"
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())
f.write('{"execute": "qmp_capabilities"}\n'); f.flush()
def reply():
    while True:
        m = json.loads(f.readline())
        if "return" in m or "error" in m:
            return m
reply()
f.write(sys.argv[2] + "\n"); f.flush()
m = reply()
if "error" in m:
    sys.exit("QMP error: " + m["error"]["desc"])
print(json.dumps(m["return"]))
PY
}

# hmp_io DOMAIN DEV CMD: a qemu-io command on DOMAIN's disk DEV (its index
# in the definition, 0 for the first) inside the running QEMU, e.g.
# "write -P 0xaa 0 1M"; fails when qemu-io reports a mismatch or error.
hmp_io() {
    local out
    out=$(qmp "$1" "$(jq -nc --arg c "qemu-io -d /machine/peripheral/dev$2/virtio-backend \"$3\"" \
        '{execute: "human-monitor-command", arguments: {"command-line": $c}}')") || return 1
    case "$out" in
        *"verification failed"* | *"error"* | *"Error"*) fail "qemu-io $3 on $1: $out" ;;
    esac
}
