#!/usr/bin/env bash
# test-lifecycle: daemon mode, SIGTERM, fusermount3 -u, restart, reconcile.
source "$(dirname "$0")/../lib/common.sh"

make_domain d1
D=$MNT/d1

# pid_of_mount: the snaptreefs process serving MNT, found by its exact argv.
pid_of_mount() {
    local p want="$SNAPTREEFS $STATE $MNT "
    for p in /proc/[0-9]*; do
        [ "$(tr '\0' ' ' <"$p/cmdline" 2>/dev/null)" == "$want" ] && { basename "$p"; return 0; }
    done
    return 1
}

check "a STATE_DIR that is missing or not a directory: exit 1, a message saying which, no mount"
: >"$WORKDIR/plain-file"
for bad in "$WORKDIR/missing:does not exist" "$WORKDIR/plain-file:is not a directory"; do
    rc=0
    out=$("$SNAPTREEFS" "${bad%%:*}" "$MNT" 2>&1) || rc=$?
    assert_eq "exit status with STATE_DIR ${bad%%:*}" 1 "$rc"
    assert_contains "message for STATE_DIR ${bad%%:*}" "$out" "${bad#*:}"
    ! mountpoint -q "$MNT" || fail "mounted with STATE_DIR ${bad%%:*}"
done

check "without -f the command returns once the mount is ready"
G_DEBUG=fatal-warnings "$SNAPTREEFS" "$STATE" "$MNT" >"$LOGS/daemon-mode.log" 2>&1 ||
    fail "snaptreefs (daemon mode) exited with $?"
mountpoint -q "$MNT" || fail "not a mountpoint right after snaptreefs returned"
bg_pid=$(pid_of_mount) || fail "no daemonized snaptreefs process found"
EXTRA_PIDS+=("$bg_pid")
say "daemon pid $bg_pid"
ls "$D" >/dev/null || fail "ls on the daemonized mount"
mkdir "$D/s1"
mkdir "$D/current/s2"

check "fusermount3 -u ends the daemonized process"
fusermount3 -u "$MNT" || fail "fusermount3 -u"
deadline=$(( $(date +%s) + 10 * TIME_SCALE ))
while kill -0 "$bg_pid" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "daemon $bg_pid alive 10 s after fusermount3 -u"
    sleep 0.05
done
mountpoint -q "$MNT" && fail "still mounted"
check_log "$LOGS/daemon-mode.log"

check "restart keeps the tree; SIGTERM unmounts and exits 0"
mount_fs
[ -d "$D/s1/s2" ] || fail "s1/s2 missing after restart"
assert_eq "current" "$D/s1/s2" "$(cd "$D/current" && pwd -P)"
kill -TERM "$DAEMON_PID"
wait_daemon_exit
deadline=$(( $(date +%s) + 5 * TIME_SCALE ))
while mountpoint -q "$MNT"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "still mounted after SIGTERM and exit"
    sleep 0.05
done

check "SIGTERM while files are open: exits 0, and closes them itself (nothing leaks under ASan)"
mount_fs
exec 3<"$D/s1/metadata.xml" 4<"$D/state" 5>"$D/create"
kill -TERM "$DAEMON_PID"
wait_daemon_exit
exec 3<&- 4<&- 5>&-
deadline=$(( $(date +%s) + 5 * TIME_SCALE ))
while mountpoint -q "$MNT"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "still mounted after SIGTERM and exit"
    sleep 0.05
done

check "fusermount3 -u: exit 0"
mount_fs
[ -d "$D/s1/s2" ] || fail "s1/s2 missing after second restart"
umount_fs

check "reconcile: a tag deleted behind our back is reported, nothing deleted"
qemu-img snapshot -d s2 "$(image d1)"
assert_eq "tags after qemu-img -d" s1 "$(disk_tags "$(image d1)")"
mount_fs
deadline=$(( $(date +%s) + 10 * TIME_SCALE ))
until grep -q s2 "$D/errors"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "no errors line naming s2 after restart; errors: [$(cat "$D/errors")]"
    sleep 0.1
done
say "errors: $(cat "$D/errors")"
[ -f "$STATE/snapshots/d1/s2.xml" ] || fail "reconcile deleted STATE/snapshots/d1/s2.xml"
[ -f "$STATE/snapshots/d1/s1.xml" ] || fail "reconcile deleted STATE/snapshots/d1/s1.xml"
[ -d "$D/s1/s2" ] || fail "reconcile removed s1/s2 from the tree"
assert_eq "tags after reconcile" s1 "$(disk_tags "$(image d1)")"
umount_fs

# The checks run a few at a time (one per CPU); an operation on a domain
# whose check still waits for its turn runs that check at once.
check "reconcile: many domains, each checked; a mkdir right after the mount works"
for i in 1 2 3 4 5 6 7 8; do
    make_domain "r$i"
    qemu-img snapshot -c "orphan$i" "$(image "r$i")"
done
mount_fs
mkdir "$MNT/r8/first" || fail "mkdir r8/first right after the mount"
for i in 1 2 3 4 5 6 7 8; do
    deadline=$(( $(date +%s) + 30 * TIME_SCALE ))
    until grep -q "holds snapshot 'orphan$i' that has no metadata" "$MNT/r$i/errors"; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "r$i was not checked; errors: [$(cat "$MNT/r$i/errors")]"
        sleep 0.1
    done
done
assert_eq "r8's tags" "first orphan8" "$(disk_tags "$(image r8)")"
umount_fs

say "PASS"
