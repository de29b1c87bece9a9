#!/usr/bin/env bash
# test-live: a domain's state file starts, pauses, resumes and stops QEMU;
# live snapshots are taken and deleted while it runs; a daemon restart
# reattaches to the running QEMU and clears stale run files.
source "$(dirname "$0")/../lib/common.sh"
require_qemu_system
require_cmd python3

make_domain d1
mount_fs
D=$MNT/d1
IMG=$(image d1)

# unchanged_run WHAT STATE PID BEFORE: state, QEMU and snapshots as they were.
unchanged_run() {
    assert_running d1 "$2" "$3"
    assert_unchanged "$1" "$4" d1
}

check "a new domain is shut off and has no run files"
assert_eq "state" shutoff "$(state_of d1)"
[ ! -e "$STATE/run/d1.pid" ] || fail "run/d1.pid exists before any start"

check "bad words while shut off: EINVAL, an errors line, nothing starts"
head -c $((1024 * 1024)) /dev/urandom >"$WORKDIR/junk"
for words in star "" bogus "start start" "start force" START; do
    before=$(fingerprint d1)
    n=$(errors_count d1)
    assert_errno "Invalid argument" put "$D/state" "$words"
    assert_eq "state after echo '$words'" shutoff "$(state_of d1)"
    assert_unchanged "echo '$words' > state" "$before" d1
    assert_new_error "echo '$words' > state" d1 "$n" state
done
n=$(errors_count d1)
assert_errno "Invalid argument" put_file "$D/state" "$WORKDIR/junk"
assert_eq "state after 1 MiB of junk" shutoff "$(state_of d1)"
assert_new_error "1 MiB of junk to state" d1 "$n" state
[ -z "$(ls -A "$STATE/run" 2>/dev/null)" ] || fail "run/ is not empty after refused writes: $(ls "$STATE/run")"

check "opening state for writing without a write does nothing"
n=$(errors_count d1)
: >"$D/state" || fail ": > state failed"
assert_eq "state after : > state" shutoff "$(state_of d1)"
assert_eq "errors lines after : > state" "$n" "$(errors_count d1)"

check "shutdown, destroy, pause, resume on a shut-off domain: EBUSY"
for word in shutdown destroy pause resume; do
    n=$(errors_count d1)
    assert_errno "Device or resource busy" put "$D/state" "$word"
    assert_eq "state after $word" shutoff "$(state_of d1)"
    assert_new_error "$word on shutoff" d1 "$n" "state $word"
done

check "start -> running: the pidfile names a live QEMU, the QMP socket exists"
assert_ok put "$D/state" start
assert_running d1 running
pid=$RUN_PID
say "QEMU pid $pid"

check "start and resume on a running domain: EBUSY; bad words: EINVAL; nothing changes"
for word in start resume; do
    before=$(fingerprint d1)
    n=$(errors_count d1)
    assert_errno "Device or resource busy" put "$D/state" "$word"
    unchanged_run "$word on running" running "$pid" "$before"
    assert_new_error "$word on running" d1 "$n" "state $word"
done
for words in star "" stop "destroy now"; do
    before=$(fingerprint d1)
    n=$(errors_count d1)
    assert_errno "Invalid argument" put "$D/state" "$words"
    unchanged_run "echo '$words' on running" running "$pid" "$before"
    assert_new_error "echo '$words' on running" d1 "$n" state
done
before=$(fingerprint d1)
assert_errno "Invalid argument" put_file "$D/state" "$WORKDIR/junk"
unchanged_run "1 MiB of junk on running" running "$pid" "$before"

check "pause -> paused; pause again is no error (libvirt); resume -> running"
assert_ok put "$D/state" pause
assert_running d1 paused "$pid"
assert_ok put "$D/state" pause
assert_running d1 paused "$pid"
assert_ok put "$D/state" resume
assert_running d1 running "$pid"

check "shutdown returns at once; a guest with no OS ignores ACPI and keeps running"
t0=$(now_ms)
assert_ok put "$D/state" shutdown
t1=$(now_ms)
say "shutdown returned in $((t1 - t0)) ms"
[ $((t1 - t0)) -le $((2000 * TIME_SCALE)) ] || fail "shutdown took $((t1 - t0)) ms: it waited for the guest"
sleep 1
assert_running d1 running "$pid"

check "destroy -> shutoff: the QEMU is gone, so are its run files, no errors line"
n=$(errors_count d1)
assert_ok put "$D/state" destroy
assert_shutoff d1 "$pid"
assert_eq "errors lines after an asked-for stop" "$n" "$(errors_count d1)"

check "live mkdir while running: state running, memory internal, VM state on the disk"
assert_ok put "$D/state" start
assert_running d1 running
pid=$RUN_PID
assert_ok mkdir "$D/r1"
meta=$(cat "$D/r1/metadata.xml")
assert_contains "r1 metadata" "$meta" "<state>running</state>"
assert_contains "r1 metadata" "$meta" "<memory snapshot='internal'/>"
size=$(assert_vm_state "$IMG" r1 1)
say "r1: VM state $size bytes"
assert_running d1 running "$pid"

check "live mkdir while paused: state paused, memory internal; the domain stays paused"
assert_ok put "$D/state" pause
assert_ok mkdir "$D/current/p1"
meta=$(cat "$D/r1/p1/metadata.xml")
assert_contains "p1 metadata" "$meta" "<state>paused</state>"
assert_contains "p1 metadata" "$meta" "<memory snapshot='internal'/>"
assert_vm_state "$IMG" p1 1 >/dev/null
assert_running d1 paused "$pid"
assert_ok put "$D/state" resume
assert_eq "current" "$D/r1/p1" "$(cd "$D/current" && pwd -P)"
assert_eq "tags" "p1 r1" "$(disk_tags "$IMG")"

check "rmdir and rm -r of live snapshots on a running domain"
assert_ok mkdir "$D/current/r2"
assert_ok mkdir "$D/current/r3"
assert_eq "tags before" "p1 r1 r2 r3" "$(disk_tags "$IMG")"
assert_ok rmdir "$D/r1/p1/r2/r3"
assert_eq "tags after rmdir r3" "p1 r1 r2" "$(disk_tags "$IMG")"
assert_eq "current after rmdir r3" "$D/r1/p1/r2" "$(cd "$D/current" && pwd -P)"
[ ! -e "$STATE/snapshots/d1/r3.xml" ] || fail "r3.xml left in STATE/snapshots"
assert_ok rm -r "$D/r1/p1"
assert_eq "tags after rm -r p1" "r1" "$(disk_tags "$IMG")"
[ ! -e "$D/r1/p1" ] || fail "r1/p1 still in the tree"
if [ -e "$STATE/snapshots/d1/p1.xml" ] || [ -e "$STATE/snapshots/d1/r2.xml" ]; then
    fail "p1.xml or r2.xml left in STATE/snapshots: $(ls "$STATE/snapshots/d1")"
fi
assert_eq "current after rm -r" "$D/r1" "$(cd "$D/current" && pwd -P)"
assert_running d1 running "$pid"

check "daemon restart: the domain keeps running, state reads running, same pid"
umount_fs
is_test_qemu "$pid" || fail "QEMU $pid died with the daemon"
mount_fs
# The reattach happens before the mount is ready: the very first read
# says running.
assert_running d1 running "$pid"
check "the reattached monitor works: pause, resume, a live snapshot"
assert_ok put "$D/state" pause
assert_running d1 paused "$pid"
assert_ok put "$D/state" resume
assert_ok mkdir "$D/current/after"
assert_contains "after metadata" "$(cat "$D/r1/after/metadata.xml")" "<state>running</state>"
assert_eq "tags" "after r1" "$(disk_tags "$IMG")"
assert_running d1 running "$pid"

check "destroy after the restart: QEMU quits cleanly and leaves a clean image"
assert_ok put "$D/state" destroy
assert_shutoff d1 "$pid"
qcow2_check "$IMG"

check "QEMU killed while the daemon is down: its pidfile and socket are stale"
assert_ok put "$D/state" start
assert_running d1 running
pid=$RUN_PID
umount_fs
kill -KILL "$pid"
deadline=$(( $(date +%s) + 5 ))
while is_test_qemu "$pid"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "QEMU $pid survived SIGKILL"
    sleep 0.05
done
if [ ! -e "$STATE/run/d1.pid" ] || [ ! -S "$STATE/run/d1.qmp" ]; then
    fail "expected QEMU's run files left behind"
fi
mount_fs
deadline=$(( $(date +%s) + 5 * TIME_SCALE ))
while [ -e "$STATE/run/d1.pid" ] || [ -e "$STATE/run/d1.qmp" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "stale run files not removed: $(ls "$STATE/run")"
    sleep 0.05
done
assert_eq "state with a dead pid" shutoff "$(state_of d1)"
umount_fs

check "a pidfile naming a live process that is not QEMU: stale, and that process is left alone"
assert_ok mkdir -p "$STATE/run"
sleep 300 &
not_qemu=$!
EXTRA_PIDS+=("$not_qemu")
echo "$not_qemu" >"$STATE/run/d1.pid"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$STATE/run/d1.qmp" ||
    fail "cannot create a socket file"
mount_fs
deadline=$(( $(date +%s) + 5 * TIME_SCALE ))
while [ -e "$STATE/run/d1.pid" ] || [ -e "$STATE/run/d1.qmp" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "stale run files not removed: $(ls "$STATE/run")"
    sleep 0.05
done
assert_eq "state with a non-QEMU pid" shutoff "$(state_of d1)"
kill -0 "$not_qemu" 2>/dev/null || fail "snaptreefs killed pid $not_qemu, which is not its QEMU"

check "a finished process's pid in the pidfile: stale too"
umount_fs
sleep 0.01 &
gone_pid=$!
wait "$gone_pid"
echo "$gone_pid" >"$STATE/run/d1.pid"
python3 -c 'import socket, sys; socket.socket(socket.AF_UNIX).bind(sys.argv[1])' "$STATE/run/d1.qmp" ||
    fail "cannot create a socket file"
mount_fs
deadline=$(( $(date +%s) + 5 * TIME_SCALE ))
while [ -e "$STATE/run/d1.pid" ] || [ -e "$STATE/run/d1.qmp" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "stale run files not removed: $(ls "$STATE/run")"
    sleep 0.05
done
assert_eq "state with a finished pid" shutoff "$(state_of d1)"

check "start again after the stale files: a new QEMU; destroy"
assert_ok put "$D/state" start
assert_running d1 running
pid2=$RUN_PID
[ "$pid2" != "$pid" ] || fail "the new QEMU has the old pid $pid"
assert_ok put "$D/state" destroy
assert_shutoff d1 "$pid2"

qcow2_check_after_kill "$IMG"
umount_fs
say "PASS"
