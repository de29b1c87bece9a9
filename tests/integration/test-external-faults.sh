#!/usr/bin/env bash
# test-external-faults: external snapshot operations that fail (a full
# image filesystem, an image that cannot be written, QEMU killed in the
# middle of a block-commit) leave every snapshot readable with its data,
# every image sound (qemu-img check) and the metadata agreeing with them.
source "$(dirname "$0")/../lib/common.sh"
require_qemu_system
require_cmd python3
[ "$(id -u)" -eq 0 ] || skip "needs root for a size-limited tmpfs"

# The images live on a 96 MiB tmpfs, so that it can be filled.
mkdir -p "$STATE/images"
mount -t tmpfs -o size=96M tmpfs "$STATE/images" || skip "cannot mount a tmpfs"
DISK_SNAPSHOT=external make_domain f1 vda
qemu-img create -q -f qcow2 "$(image f1)" 32M
mount_fs
D=$MNT/f1

active() { xmllint --xpath 'string(//disk/source/@file)' "$D/domain.xml"; }
frozen() { xmllint --xpath 'string(/domainsnapshot/domain/devices/disk/source/@file)' "$1/metadata.xml"; }
revert_to() { put "$1/revert" "" || fail "revert to $1: $(tail -1 "$D/errors")"; }
snapshot_holds() { check_pattern "$(frozen "$1")" "$2" "${3:-0}" "${4:-1M}"; }
# consistent: every snapshot's image exists and every image checks clean.
consistent() {
    local m f
    for m in $(find "$D" -name metadata.xml); do
        f=$(frozen "$(dirname "$m")")
        [ -f "$f" ] || fail "$(dirname "$m") names a missing image $f"
    done
    [ -f "$(active)" ] || fail "the active image $(active) is missing"
    for f in "$STATE"/images/*.qcow2; do qcow2_check "$f"; done
}
# all_hold: each snapshot reads as the patterns written before it.
all_hold() {
    snapshot_holds "$D/base" 0xa1 0 8M
    snapshot_holds "$D/base/mid" 0xb2 8M 8M
    snapshot_holds "$D/base/mid/c1" 0xc3 16M 8M
    snapshot_holds "$D/base/mid/c2" 0xd4 16M 8M
    snapshot_holds "$D/base/mid/c2" 0xa1 0 8M
}
free_kib() { df --output=avail -k "$STATE/images" | tail -1; }
# fill_to KIB: a filler file leaves about KIB free.
fill_to() {
    local free
    rm -f "$STATE/images/filler"
    free=$(free_kib)
    [ "$free" -gt "$1" ] || return 0
    head -c $(( (free - $1) * 1024 )) /dev/zero >"$STATE/images/filler" 2>/dev/null || true
}

say "build: base(A) -> mid(B) -> {c1(C), c2(D)}, 8 MiB each"
write_pattern "$(image f1)" 0xa1 0 8M
assert_ok mkdir "$D/base"
write_pattern "$(active)" 0xb2 8M 8M
assert_ok mkdir "$D/current/mid"
write_pattern "$(active)" 0xc3 16M 8M
assert_ok mkdir "$D/current/c1"
revert_to "$D/base/mid"
write_pattern "$(active)" 0xd4 16M 8M
assert_ok mkdir "$D/current/c2"
all_hold
consistent

check "ENOSPC while rebasing two branches: mid stays, every snapshot keeps its data"
fill_to 10240
before=$(fingerprint f1)
n=$(errors_count f1)
assert_errno "No space left on device" rmdir "$D/base/mid"
assert_new_error "rmdir mid on a full disk" f1 "$n" "delete mid"
[ -d "$D/base/mid" ] || fail "mid is gone after a failed delete"
assert_unchanged "a failed delete" "$before" f1
all_hold
consistent

check "a commit that cannot fit is refused before it starts: ENOSPC, nothing changes"
rm -f "$STATE/images/filler"
write_pattern "$(active)" 0xe5 24M 8M
fill_to 4096
before=$(fingerprint f1)
ACTIVE=$(active)
assert_errno "No space left on device" rmdir "$D/base/mid/c2"
assert_eq "active layer" "$ACTIVE" "$(active)"
assert_unchanged "a refused commit" "$before" f1
check_pattern "$(active)" 0xe5 24M 8M
all_hold
consistent

check "mkdir on a full image filesystem fails and leaves no file behind"
fill_to 0
head -c 1M /dev/zero >>"$STATE/images/filler" 2>/dev/null || true
files=$(ls "$STATE/images" | sort)
before=$(fingerprint f1)
rc=0
mkdir "$D/current/full" 2>/dev/null || rc=$?
[ "$rc" -ne 0 ] || fail "mkdir on a full filesystem succeeded"
assert_eq "image files" "$files" "$(ls "$STATE/images" | sort)"
assert_unchanged "mkdir on a full disk" "$before" f1
rm -f "$STATE/images/filler"
all_hold
consistent

check "an image that cannot be written makes the commit fail before it changes anything"
C2_IMG=$(frozen "$D/base/mid/c2")
mount --bind "$C2_IMG" "$C2_IMG"
mount -o remount,ro,bind "$C2_IMG"
before=$(fingerprint f1)
n=$(errors_count f1)
rc=0
rmdir "$D/base/mid/c2" 2>/dev/null || rc=$?
umount "$C2_IMG"
[ "$rc" -ne 0 ] || fail "rmdir succeeded with c2's image read-only"
assert_new_error "commit into a read-only image" f1 "$n" "delete c2"
assert_unchanged "a failed commit" "$before" f1
check_pattern "$(active)" 0xe5 24M 8M
all_hold
consistent

check "the same delete works once the fault is gone"
assert_ok rmdir "$D/base/mid/c2"
check_pattern "$(active)" 0xe5 24M 8M
check_pattern "$(active)" 0xd4 16M 8M
snapshot_holds "$D/base/mid/c1" 0xc3 16M 8M
consistent

check "QEMU killed in the middle of an active block-commit"
rm -f "$STATE"/images/filler
umount_fs
SNAPTREEFS_TEST_JOB_SPEED=$((2 * 1024 * 1024)) mount_fs
assert_ok put "$D/state" start
assert_running f1 running
QPID=$RUN_PID
hmp_io f1 0 "write -P 0x77 0 12M"
assert_ok mkdir "$D/current/k1"
hmp_io f1 0 "write -P 0x88 4M 12M"
# A guest's writes survive QEMU's death once flushed, as on real hardware.
hmp_io f1 0 "flush"
K1=$(cd "$D/current" && pwd -P)
K1_IMG=$(frozen "$K1")
ACTIVE=$(active)
rmdir "$K1" 2>"$WORKDIR/rmdir.err" &
RMDIR=$!
# Killed while the job runs; whether QEMU had written into k1's image by
# then decides what must survive, so each outcome is checked for what it
# promises.
for _ in $(seq 1 200); do
    grep -q "block-commit" "$D/job" 2>/dev/null && break
    sleep 0.02
done
assert_contains "job while committing" "$(cat "$D/job")" "block-commit"
say "job: $(cat "$D/job")"
kill -9 "$QPID"
rc=0
wait "$RMDIR" || rc=$?
say "rmdir: status $rc $(cat "$WORKDIR/rmdir.err")"
wait_state f1 shutoff
for f in "$STATE"/images/*.qcow2; do qcow2_check_after_kill "$f"; done
if [ "$rc" -eq 0 ]; then
    say "outcome: the commit finished before QEMU died"
    [ ! -d "$K1" ] || fail "k1 still listed after a successful rmdir"
    assert_eq "active layer" "$K1_IMG" "$(active)"
elif [ -d "$K1" ]; then
    say "outcome: QEMU died before writing into k1's image: k1 kept"
    assert_eq "active layer" "$ACTIVE" "$(active)"
    snapshot_holds "$K1" 0x77 0 12M
else
    say "outcome: k1's image was partly merged: k1 deleted, the active layer still rests on it"
    assert_eq "active layer" "$ACTIVE" "$(active)"
    [ -f "$K1_IMG" ] || fail "k1's image, still under the active layer, was removed"
    assert_contains "errors" "$(tail -1 "$D/errors")" "is deleted, but its image"
fi
check_pattern "$(active)" 0x77 0 4M
check_pattern "$(active)" 0x88 4M 12M
snapshot_holds "$D/base" 0xa1 0 8M
snapshot_holds "$D/base/mid" 0xb2 8M 8M
snapshot_holds "$D/base/mid/c1" 0xc3 16M 8M

check "the domain starts again on its active layer and sees its data"
assert_ok put "$D/state" start
hmp_io f1 0 "read -P 0x88 4M 12M"
assert_ok put "$D/state" destroy

umount_fs
check_log
echo "ok"
