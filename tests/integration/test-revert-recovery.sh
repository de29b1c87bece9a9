#!/usr/bin/env bash
# test-revert-recovery: a revert that failed after its disks changed is
# finished (metadata only) before the next operation, never re-applied
# over a guest that has run since; the guest, its QEMU and its data stay.
source "$(dirname "$0")/../lib/common.sh"
require_qemu_system
[ -n "${SNAPTREEFS_TEST_NS:-}" ] || skip "needs a private mount namespace (root and unshare)"

make_domain d1
mount_fs
D=$MNT/d1
IMG=$(image d1)

say "set up: base and s1 (shut off), s1 current"
write_pattern "$IMG" 0x11 0 64k
assert_ok mkdir "$D/base"
write_pattern "$IMG" 0x12 0 64k
assert_ok mkdir "$D/base/s1"

check "revert to base, running, with the snapshot directory read-only: EIO, guest runs on base"
mount --bind "$STATE/snapshots/d1" "$STATE/snapshots/d1"
mount -o remount,bind,ro "$STATE/snapshots/d1" || fail "remount snapshots/d1 read-only"
n=$(errors_count d1)
assert_errno "Input/output error" put "$D/base/revert" running
assert_new_error "revert, metadata read-only" d1 "$n" "Read-only file system"
assert_running d1 running
pid=$RUN_PID
hmp_io d1 0 "read -P 0x11 0 64k"

check "the guest writes; pause (the next operation) keeps its QEMU and its data"
hmp_io d1 0 "write -P 0x77 0 64k"
hmp_io d1 0 "flush"
n=$(errors_count d1)
put "$D/state" pause || true
assert_running d1 paused "$pid"
hmp_io d1 0 "read -P 0x77 0 64k"
assert_new_error "recovery while read-only" d1 "$n"
assert_contains "errors: the revert could not be finished" \
    "$(tail -n +"$((n + 1))" "$D/errors")" "recovering the interrupted revert of 'base' failed"

check "once the metadata can be written, the next operation finishes the revert's metadata only"
umount "$STATE/snapshots/d1"
n=$(errors_count d1)
assert_ok put "$D/state" resume
assert_running d1 running "$pid"
hmp_io d1 0 "read -P 0x77 0 64k"
assert_contains "errors: finished" "$(tail -n +"$((n + 1))" "$D/errors")" \
    "finished the interrupted revert to 'base' (its disks were done"
assert_eq "current after recovery" "$D/base" "$(cd "$D/current" && pwd -P)"
assert_ok put "$D/state" destroy
assert_shutoff d1 "$pid"
check_pattern "$IMG" 0x77 0 64k
assert_store_agrees d1

umount_fs
say "ok"
