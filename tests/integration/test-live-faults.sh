#!/usr/bin/env bash
# test-live-faults: QEMU killed with SIGKILL in the middle of a live
# snapshot, and while idle: the domain reads shutoff, errors says why, and
# the tree, the metadata files and the disk agree (no half-made snapshot).
source "$(dirname "$0")/../lib/common.sh"
require_qemu_system

# 1 GiB of RAM that is not zero: snapshot-save writes all of it (512 MiB
# took 0.9 s here, too little to be sure of catching it).
RAM_MIB=1024

make_domain d1
make_big_ram_guest d1 "$RAM_MIB"
mount_fs
D=$MNT/d1
IMG=$(image d1)

say "set up: base (shut off), then start"
assert_ok mkdir "$D/base"
assert_ok put "$D/state" start
assert_running d1 running

check "a live snapshot of this guest takes long enough to be interrupted"
t0=$(now_ms)
assert_ok mkdir "$D/current/probe"
t1=$(now_ms)
size=$(assert_vm_state "$IMG" probe $((RAM_MIB * 1024 * 1024)))
say "snapshot-save of a ${RAM_MIB} MiB guest: $((t1 - t0)) ms, VM state $size bytes"
[ $((t1 - t0)) -ge 500 ] || fail "the live snapshot took $((t1 - t0)) ms; too fast to kill it midway"
assert_ok rmdir "$D/base/probe"
assert_eq "tags after rmdir probe" base "$(disk_tags "$IMG")"
assert_running d1 running
pid=$RUN_PID

check "SIGKILL to QEMU while mkdir current/big runs snapshot-save"
n=$(errors_count d1)
mkdir "$D/current/big" 2>"$LOGS/mkdir.err" &
mk_pid=$!
EXTRA_PIDS+=("$mk_pid")
deadline=$(( $(now_ms) + 5000 * TIME_SCALE ))
job=""
until [[ "$job" == *snapshot-save* ]]; do
    kill -0 "$mk_pid" 2>/dev/null || fail "mkdir ended before job showed snapshot-save (job: [$job])"
    [ "$(now_ms)" -lt "$deadline" ] || fail "job did not show snapshot-save: [$job]"
    sleep 0.02
    job=$(cat "$D/job")
done
say "job: $job"
sleep 0.2
kill -0 "$mk_pid" 2>/dev/null || fail "mkdir finished before QEMU could be killed; the test measured nothing"
t_kill=$(now_ms)
kill -KILL "$pid"
rc=0
wait "$mk_pid" || rc=$?
EXTRA_PIDS=()
say "mkdir returned $(( $(now_ms) - t_kill )) ms after the kill, status $rc: $(cat "$LOGS/mkdir.err")"
[ "$rc" -ne 0 ] || fail "mkdir current/big succeeded although QEMU was killed during it"
assert_contains "mkdir stderr" "$(cat "$LOGS/mkdir.err")" "Input/output error"

check "after the kill: shutoff, errors says why, job is empty"
wait_state d1 shutoff
assert_shutoff d1 "$pid"
assert_new_error "killed mid-snapshot" d1 "$n"
errs=$(tail -n +"$((n + 1))" "$D/errors")
say "errors: $errs"
assert_contains "errors" "$errs" "mkdir big"
assert_contains "errors" "$errs" "qemu: QEMU (pid $pid) exited without being asked to"
assert_eq "job" "" "$(cat "$D/job")"

check "no trace of big: not in the tree, not on the disk, not in the store"
[ ! -e "$D/base/big" ] || fail "base/big exists"
if [ -e "$D/.by-name/big" ] || [ -L "$D/.by-name/big" ]; then
    fail ".by-name/big exists"
fi
[ ! -e "$STATE/snapshots/d1/big.xml" ] || fail "STATE/snapshots/d1/big.xml exists"
assert_eq "tags" base "$(disk_tags "$IMG")"
assert_eq "current" "$D/base" "$(cd "$D/current" && pwd -P)"
assert_store_agrees d1
qcow2_check_after_kill "$IMG"

check "a restart finds the same tree and nothing to recover"
umount_fs
mount_fs
assert_eq "state after restart" shutoff "$(state_of d1)"
assert_eq "tags after restart" base "$(disk_tags "$IMG")"
[ ! -e "$D/base/big" ] || fail "base/big appeared after restart"
assert_store_agrees d1

check "the domain starts again and a live snapshot completes"
assert_ok put "$D/state" start
assert_running d1 running
pid=$RUN_PID
# The start ran after the start-up recovery and check in d1's queue.
assert_eq "errors after restart, recovery and check" "" "$(cat "$D/errors")"
assert_ok mkdir "$D/current/big"
assert_contains "big metadata" "$(cat "$D/base/big/metadata.xml")" "<state>running</state>"
assert_store_agrees d1

check "SIGKILL to an idle QEMU: shutoff, an errors line, run files gone"
n=$(errors_count d1)
kill -KILL "$pid"
wait_state d1 shutoff
assert_shutoff d1 "$pid"
assert_new_error "killed while idle" d1 "$n" "qemu: QEMU (pid $pid) exited without being asked to"
assert_store_agrees d1

check "and it starts again"
assert_ok put "$D/state" start
assert_running d1 running
[ "$RUN_PID" != "$pid" ] || fail "same pid $pid after a restart"
pid=$RUN_PID

check "SIGTERM to snaptreefs during a live snapshot: it exits 0, QEMU keeps running"
mkdir "$D/current/late" 2>"$LOGS/mkdir-late.err" &
mk_pid=$!
EXTRA_PIDS+=("$mk_pid")
deadline=$(( $(now_ms) + 5000 * TIME_SCALE ))
until [[ "$(cat "$D/job")" == *snapshot-save* ]]; do
    kill -0 "$mk_pid" 2>/dev/null || fail "mkdir late ended before job showed snapshot-save"
    [ "$(now_ms)" -lt "$deadline" ] || fail "job did not show snapshot-save for late"
    sleep 0.02
done
sleep 0.2
kill -0 "$mk_pid" 2>/dev/null || fail "mkdir late finished before SIGTERM; the test measured nothing"
kill -TERM "$DAEMON_PID"
rc=0
wait "$mk_pid" || rc=$?
EXTRA_PIDS=()
say "mkdir late: status $rc $(cat "$LOGS/mkdir-late.err")"
deadline=$(( $(date +%s) + 10 * TIME_SCALE ))
while kill -0 "$DAEMON_PID" 2>/dev/null; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "snaptreefs still running 10 s after SIGTERM$(daemon_stacks)"
    sleep 0.05
done
rc=0
wait "$DAEMON_PID" || rc=$?
DAEMON_PID=""
[ "$rc" -eq 0 ] || fail "snaptreefs exited with status $rc after SIGTERM during a live snapshot, expected 0"
check_log
is_test_qemu "$pid" || fail "QEMU $pid died with snaptreefs"

check "after a restart: reattached, and late is either whole or absent"
mount_fs
# Reattached before the mount was ready: the first read says running.
assert_running d1 running "$pid"
# An operation queued behind the start-up recovery and check.
assert_ok put "$D/state" pause
assert_ok put "$D/state" resume
if [ -e "$D/.by-name/late" ]; then
    say "late completed before the exit"
    assert_vm_state "$IMG" late $((RAM_MIB * 1024 * 1024)) >/dev/null
else
    say "late was abandoned"
fi
assert_store_agrees d1

assert_ok put "$D/state" destroy
assert_shutoff d1 "$pid"
qcow2_check_after_kill "$IMG"
umount_fs
say "PASS"
