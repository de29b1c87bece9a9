#!/usr/bin/env bash
# test-digit-names: a snapshot named with digits ("1", "2", "10") is that
# snapshot, though qcow2 looks a tag up as a snapshot ID first: an offline
# revert loads exactly it; a memory snapshot (QMP snapshot-save/load) whose
# name QEMU would resolve to another snapshot's ID is refused at mkdir and
# at revert (EINVAL, an errors line, nothing changes).
source "$(dirname "$0")/../lib/common.sh"
require_qemu_system

make_domain d1
make_domain d2
mount_fs
D=$MNT/d1
IMG=$(image d1)
cur() { (cd "$D/current" && pwd -P) || echo "<no current>"; }

say "offline: base (ID 1) A, 2 (ID 2) B, 1 (ID 3) C, 10 (ID 4) D, s5..s10 (IDs 5..10)"
write_pattern "$IMG" 0xaa
assert_ok mkdir "$D/base"
write_pattern "$IMG" 0xbb
assert_ok mkdir "$D/current/2"
write_pattern "$IMG" 0xcc
assert_ok mkdir "$D/current/1"
write_pattern "$IMG" 0xdd
assert_ok mkdir "$D/current/10"
for i in 5 6 7 8 9 10; do
    assert_ok mkdir "$D/current/s$i"
done
write_pattern "$IMG" 0xee

check "echo > base/2/1/revert gives 1's bytes (ID 1 is base)"
assert_ok put "$D/base/2/1/revert" ""
check_pattern "$IMG" 0xcc
assert_eq "current" "$D/base/2/1" "$(cur)"

check "echo > 10/revert gives 10's bytes (ID 10 is s10)"
assert_ok put "$D/base/2/1/10/revert" ""
check_pattern "$IMG" 0xdd
assert_eq "current" "$D/base/2/1/10" "$(cur)"

check "echo > 2/revert gives 2's bytes, base/revert base's"
assert_ok put "$D/base/2/revert" ""
check_pattern "$IMG" 0xbb
assert_ok put "$D/base/revert" ""
check_pattern "$IMG" 0xaa
assert_eq "tags" "1 10 2 base s10 s5 s6 s7 s8 s9" "$(disk_tags "$IMG")"
qcow2_check "$IMG"

say "live: 2 (ID 1) A, then x (ID 2) B, running"
D=$MNT/d2
assert_ok put "$D/state" start
assert_running d2 running
hmp_io d2 0 "write -P 0xaa 0 1M"
assert_ok mkdir "$D/2"
hmp_io d2 0 "write -P 0xbb 0 1M"
assert_ok mkdir "$D/current/x"
hmp_io d2 0 "write -P 0xcc 0 1M"
pid=$RUN_PID

check "mkdir current/1 while running: EINVAL (ID 1 is 2; it could never be loaded), nothing changes"
before=$(fingerprint d2)
n=$(errors_count d2)
assert_errno "Invalid argument" mkdir "$D/current/1"
assert_new_error "live mkdir 1" d2 "$n" "qcow2 ID"
assert_unchanged "refused live mkdir" "$before" d2
assert_running d2 running "$pid"

check "echo > 2/revert while running: EINVAL (QEMU would load ID 2, x), nothing changes"
before=$(fingerprint d2)
n=$(errors_count d2)
assert_errno "Invalid argument" put "$D/2/revert" ""
assert_new_error "live revert to 2" d2 "$n" "qcow2 ID"
assert_unchanged "refused live revert" "$before" d2
assert_running d2 running "$pid"
hmp_io d2 0 "read -P 0xcc 0 1M"
assert_eq "current" "$MNT/d2/2/x" "$(cd "$D/current" && pwd -P)"

check "echo > 2/x/revert while running: x's bytes"
assert_ok put "$D/2/x/revert" ""
assert_running d2 running
hmp_io d2 0 "read -P 0xbb 0 1M"

check "mkdir current/10 while running (no ID 10): a snapshot that reverts"
hmp_io d2 0 "write -P 0xdd 0 1M"
assert_ok mkdir "$D/current/10"
hmp_io d2 0 "write -P 0xee 0 1M"
assert_ok put "$D/2/x/10/revert" ""
assert_running d2 running
hmp_io d2 0 "read -P 0xdd 0 1M"

check "shut off: 2 holds memory, so its revert is a snapshot-load too: refused"
assert_ok put "$D/state" destroy
before=$(fingerprint d2)
n=$(errors_count d2)
assert_errno "Invalid argument" put "$D/2/revert" ""
assert_new_error "revert to 2, shut off" d2 "$n" "qcow2 ID"
assert_unchanged "refused revert, shut off" "$before" d2
assert_shutoff d2

check "rmdir 2 deletes 2, not ID 2 (x), running and shut off alike"
assert_ok put "$D/state" start
assert_ok rmdir "$D/2"
assert_eq "tags after a live rmdir of 2" "10 x" "$(disk_tags "$(image d2)")"
assert_ok put "$D/state" destroy
D=$MNT/d1
assert_ok rmdir "$D/base/2/1/10/s5/s6/s7/s8/s9/s10"
assert_ok rmdir "$D/base/2/1/10/s5/s6/s7/s8/s9"
assert_ok rmdir "$D/base/2/1/10/s5/s6/s7/s8"
assert_ok rmdir "$D/base/2/1/10/s5/s6/s7"
assert_ok rmdir "$D/base/2/1/10/s5/s6"
assert_ok rmdir "$D/base/2/1/10/s5"
assert_ok rmdir "$D/base/2/1"
assert_eq "tags after an offline rmdir of 1" "10 2 base" "$(disk_tags "$IMG")"
check_pattern "$IMG" 0xaa

umount_fs
say "PASS"
