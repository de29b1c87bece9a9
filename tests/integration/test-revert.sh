#!/usr/bin/env bash
# test-revert: writing to revert returns the disks to the snapshot; words are
# checked; opening without a write does nothing.
source "$(dirname "$0")/../lib/common.sh"

make_domain d1
mount_fs
D=$MNT/d1
IMG=$(image d1)
cur() { (cd "$D/current" && pwd -P) || echo "<no current>"; }

say "pattern A, mkdir s1, pattern B, mkdir s2, pattern C (not in a snapshot)"
write_pattern "$IMG" 0xaa
mkdir "$D/s1"
write_pattern "$IMG" 0xbb
mkdir "$D/current/s2"
write_pattern "$IMG" 0xcc

check "echo > s1/revert: pattern A readable, current -> s1"
assert_ok put "$D/s1/revert" ""
check_pattern "$IMG" 0xaa
assert_eq "current" "$D/s1" "$(cur)"
assert_eq "tags" "s1 s2" "$(disk_tags "$IMG")"

check "echo force > s2/revert works: pattern B, current -> s2"
assert_ok put "$D/s1/s2/revert" force
check_pattern "$IMG" 0xbb
assert_eq "current" "$D/s1/s2" "$(cur)"

check "echo > revert reverts again to the same snapshot (discarding later writes)"
write_pattern "$IMG" 0xdd
assert_ok put "$D/current/revert" ""
check_pattern "$IMG" 0xbb

check "bad words: EINVAL, an errors line, nothing changes"
write_pattern "$IMG" 0xee
for words in "running paused" "bogus" "force bogus" "paused running force"; do
    before=$(fingerprint d1)
    n=$(errors_count d1)
    assert_errno "Invalid argument" put "$D/s1/revert" "$words"
    assert_unchanged "echo $words > s1/revert" "$before" d1
    assert_new_error "echo $words > s1/revert" d1 "$n"
    check_pattern "$IMG" 0xee
done
assert_contains "errors names the bad word" "$(cat "$D/errors")" bogus

check "opening and closing revert without a write does nothing"
before=$(fingerprint d1)
n=$(errors_count d1)
: > "$D/s1/revert" || fail ": > s1/revert failed"
(exec 3>"$D/s1/revert"; exec 3>&-) || fail "exec 3>s1/revert failed"
(exec 3>>"$D/s1/revert"; exec 3>&-) || fail "exec 3>>s1/revert failed"
assert_unchanged "open/close of revert" "$before" d1
check_pattern "$IMG" 0xee
assert_eq "errors lines" "$n" "$(errors_count d1)"
assert_eq "current" "$D/s1/s2" "$(cur)"

qcow2_check "$IMG"
umount_fs
say "PASS"
