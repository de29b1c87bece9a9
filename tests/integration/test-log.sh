#!/usr/bin/env bash
# test-log.sh: a daemonized snaptreefs logs to the journal when its socket
# exists, otherwise to syslog (/dev/log), with its name, pid and each line's
# priority: mount ready with counts, reconcile findings, failed operations
# with qemu-img's message, unmount. Datagram sockets served by
# tests/lib/log-receiver.py stand in for both, bound over the real paths in
# this test's private mount namespace.
. "$(dirname "$0")/../lib/common.sh"

require_cmd python3 jq
[ "${SNAPTREEFS_TEST_NS:-}" = 1 ] || skip "needs a private mount namespace (root and unshare -m)"
RECEIVER=$(dirname "$0")/../lib/log-receiver.py

# /run of our own: no journal socket until this test binds one. /dev/log is
# bound over; when the machine has none, an empty placeholder is the mount
# point, removed at exit (a file only: nothing can connect to it).
mount -t tmpfs -o mode=0755 tmpfs /run || fail "mount tmpfs on /run"
DEVLOG_MADE=""
devlog=$(readlink -m /dev/log)
if [ ! -e "$devlog" ]; then
    mkdir -p "$(dirname "$devlog")"
    : >"$devlog"
    [ "$devlog" = /dev/log ] && DEVLOG_MADE=1
fi
trap 'rc=$?; set +e; [ -z "$DEVLOG_MADE" ] || { umount -l /dev/log 2>/dev/null; rm -f /dev/log; }; (exit $rc); cleanup' EXIT

# start_receiver KIND SOCKET OUT
start_receiver() {
    python3 "$RECEIVER" "$1" "$2" "$3" &
    EXTRA_PIDS+=($!)
    for _ in $(seq 1 100); do
        [ -S "$2" ] && return 0
        sleep 0.05
    done
    fail "log receiver did not bind $2"
}

# wait_for_line FILE TEXT: a record holding TEXT arrives within 10 s.
wait_for_line() {
    for _ in $(seq 1 200); do
        grep -qF -- "$2" "$1" 2>/dev/null && return 0
        sleep 0.05
    done
    fail "no log record with [$2] in $1: $(cat "$1" 2>/dev/null)"
}

# A snapshot with metadata, a tag on the disk with none (a reconcile
# finding), and a domain whose image is gone (qemu-img fails).
make_domain vm1
make_domain vm2
mount_fs
assert_ok mkdir "$MNT/vm1/s1"
umount_fs
qemu-img snapshot -c orphan "$(image vm1)"
rm -f "$(image vm2)"

check "no journal socket: syslog at /dev/log, with name, pid and priority"
SYSLOG=$LOGS/syslog.json
start_receiver syslog "$WORKDIR/syslog.sock" "$SYSLOG"
mount --bind "$WORKDIR/syslog.sock" "$devlog" || fail "bind mount over $devlog"
"$SNAPTREEFS" "$STATE" "$MNT" 2>"$LOGS/stderr.log" || fail "snaptreefs failed: $(cat "$LOGS/stderr.log")"
mountpoint -q "$MNT" || fail "not mounted after snaptreefs returned"
pid=$(daemon_pid "$MNT") || fail "no daemon for $MNT"
# LOG_DAEMON (3) * 8 + LOG_NOTICE (5) = 29
wait_for_line "$SYSLOG" "snaptreefs[$pid]: mounted $STATE on $MNT: 2 domains, 1 snapshots"
jq -r .raw "$SYSLOG" | grep -q "^<29>.*snaptreefs\[$pid\]: mounted" || fail "priority: $(cat "$SYSLOG")"
wait_for_line "$SYSLOG" "holds snapshot 'orphan' that has no metadata"
assert_errno "Input/output error" mkdir "$MNT/vm2/s1"
msg=$(qemu-img info "$(image vm2)" 2>&1 || true)
say "qemu-img says: $msg"
wait_for_line "$SYSLOG" "Could not open '$(image vm2)'"
assert_errno "Device or resource busy" put "$MNT/vm1/state" resume
wait_for_line "$SYSLOG" "vm1: "
umount_daemonized "$MNT" "$pid"
wait_for_line "$SYSLOG" "snaptreefs[$pid]: unmounting $MNT"
# The session loop ended as an unmount ends it, not with an error.
if grep -q "session loop ended" "$SYSLOG"; then fail "unclean end: $(cat "$SYSLOG")"; fi
[ ! -s "$LOGS/stderr.log" ] || fail "daemonized snaptreefs wrote to stderr: $(cat "$LOGS/stderr.log")"
jq -r .raw "$SYSLOG" | grep -q '^<31>' && fail "debug lines without -d: $(cat "$SYSLOG")"
if grep -qE "$LOG_BAD" "$SYSLOG"; then fail "warnings in the log: $(cat "$SYSLOG")"; fi

check "journal socket present: the journal, with identifier and priority; syslog gets nothing"
JOURNAL=$LOGS/journal.json
mkdir -p /run/systemd/journal
: >/run/systemd/journal/socket
start_receiver journal "$WORKDIR/journal.sock" "$JOURNAL"
mount --bind "$WORKDIR/journal.sock" /run/systemd/journal/socket || fail "bind mount over the journal socket"
syslog_lines=$(wc -l <"$SYSLOG")
"$SNAPTREEFS" "$STATE" "$MNT" || fail "snaptreefs failed"
pid=$(daemon_pid "$MNT") || fail "no daemon for $MNT"
wait_for_line "$JOURNAL" "mounted $STATE on $MNT: 2 domains, 1 snapshots"
got=$(jq -r 'select(.MESSAGE | startswith("mounted")) | "\(.SYSLOG_IDENTIFIER) \(.PRIORITY) \(.GLIB_DOMAIN)"' "$JOURNAL")
assert_eq "journal record fields" "snaptreefs 5 snaptreefs" "$got"
wait_for_line "$JOURNAL" "holds snapshot 'orphan' that has no metadata"
assert_errno "Input/output error" mkdir "$MNT/vm2/s2"
wait_for_line "$JOURNAL" "Could not open '$(image vm2)'"
umount_daemonized "$MNT" "$pid"
wait_for_line "$JOURNAL" "unmounting $MNT"
assert_eq "syslog lines while the journal is there" "$syslog_lines" "$(wc -l <"$SYSLOG")"
jq -r .PRIORITY "$JOURNAL" | grep -qx 7 && fail "debug records without -d: $(cat "$JOURNAL")"

check "a line logged while loading (a fleet host that cannot be reached) reaches the journal too"
# Port 1 on the loopback refuses at once; test:///default needs no daemon.
BAD_HOST=qemu+tcp://127.0.0.1:1/system
"$SNAPTREEFS" -o "backend=libvirt,uri=test:///default,uri=$BAD_HOST" none "$MNT" \
    2>"$LOGS/fleet-stderr.log" || fail "snaptreefs failed: $(cat "$LOGS/fleet-stderr.log")"
pid=$(daemon_pid "$MNT") || fail "no daemon for $MNT"
wait_for_line "$JOURNAL" "mounted test:///default, $BAD_HOST on $MNT"
umount_daemonized "$MNT" "$pid"
wait_for_line "$JOURNAL" "unmounting $MNT"
got=$(jq -r 'select(.MESSAGE | contains("cannot be reached")) | "\(.SYSLOG_IDENTIFIER) \(.PRIORITY) \(.MESSAGE)"' "$JOURNAL")
assert_eq "the unreachable host's line in the journal" \
    "snaptreefs 5 libvirt: host 127.0.0.1 ($BAD_HOST) cannot be reached: unable to connect to server at '127.0.0.1:1': Connection refused; it has no domains until it answers" \
    "$got"

check "debug lines when asked for (G_MESSAGES_DEBUG; -d implies -f, libfuse's rule)"
G_MESSAGES_DEBUG=all "$SNAPTREEFS" "$STATE" "$MNT" || fail "snaptreefs failed"
pid=$(daemon_pid "$MNT") || fail "no daemon for $MNT"
ls -R "$MNT" >/dev/null
umount_daemonized "$MNT" "$pid"
jq -r .PRIORITY "$JOURNAL" | grep -qx 7 || fail "no debug record with G_MESSAGES_DEBUG=all"

say "PASS"
