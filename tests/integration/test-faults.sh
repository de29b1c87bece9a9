#!/usr/bin/env bash
# test-faults: faults from below, through the mount: an image on a
# read-only filesystem, an image locked by another QEMU, ENOSPC in
# STATE/journal, STATE/snapshots and the image directory, and a QEMU that
# stops answering its monitor (SIGSTOP). Each gives a clear errno and a
# line in errors, changes nothing (or, for a revert that had changed the
# disks, is finished before the next operation), and once the fault is
# gone the next operation works. (A corrupt or missing image is in
# test-errors, QEMU killed mid-job in test-live-faults.)
source "$(dirname "$0")/../lib/common.sh"

# Every QMP wait is at most this long: a stopped QEMU costs seconds, not
# the job timeout of an hour.
export SNAPTREEFS_QMP_TIMEOUT_MS=$((1500 * TIME_SCALE))

make_domain d1
make_domain d2 vda vdb
mount_fs
assert_ok mkdir "$MNT/d1/base"
assert_ok mkdir "$MNT/d1/current/s1"
assert_ok mkdir "$MNT/d2/base"
umount_fs

# small_fs DIR KIB: a tmpfs of KIB KiB on DIR, keeping what DIR held.
small_fs() {
    local keep=$WORKDIR/keep.$$
    mkdir -p "$keep"
    cp -a "$1/." "$keep/"
    mount -t tmpfs -o "size=${2}k" tmpfs "$1" || fail "mount tmpfs on $1"
    cp -a "$keep/." "$1/"
    rm -rf "$keep"
}
# fill DIR: no byte left on DIR's filesystem.
fill() { dd if=/dev/zero of="$1/.filler" bs=4k status=none 2>/dev/null || true; }
unfill() { rm -f "$1/.filler"; }

# expect_fault WHAT ERRNO_TEXT ERRORS_TEXT DOMAIN CMD...: CMD fails with
# ERRNO_TEXT, a new errors line has ERRORS_TEXT, and DOMAIN is unchanged.
expect_fault() {
    local what=$1 text=$2 line=$3 dom=$4 before n
    shift 4
    before=$(fingerprint "$dom")
    n=$(errors_count "$dom")
    assert_errno "$text" "$@"
    assert_new_error "$what" "$dom" "$n"
    assert_contains "$what: errors" "$(tail -n +"$((n + 1))" "$MNT/$dom/errors")" "$line"
    assert_unchanged "$what" "$before" "$dom"
    say "$what: $(tail -n 1 "$MNT/$dom/errors" | cut -c 22-)"
}

# ---- the image directory read-only ----------------------------------------------------

check "images on a read-only filesystem: EIO with qemu-img's reason, nothing changes"
mount --bind "$STATE/images" "$STATE/images"
mount -o remount,bind,ro "$STATE/images" || fail "remount images read-only"
mount_fs
expect_fault "mkdir, images read-only" "Input/output error" "Read-only file system" d1 \
    mkdir "$MNT/d1/current/ro"
expect_fault "rmdir, images read-only" "Input/output error" "Read-only file system" d1 \
    rmdir "$MNT/d1/base/s1"
expect_fault "revert, images read-only" "Input/output error" "Read-only file system" d1 \
    put "$MNT/d1/base/revert" ""
umount "$STATE/images"
assert_ok mkdir "$MNT/d1/current/ro"
assert_ok rmdir "$MNT/d1/base/s1/ro"
assert_store_agrees d1

check "a two-disk revert whose second disk is read-only: EIO, neither disk reverted"
write_pattern "$(image d2 vda)" 0x5a 0 64k
write_pattern "$(image d2 vdb)" 0x5b 0 64k
mount --bind "$(image d2 vdb)" "$(image d2 vdb)"
mount -o remount,bind,ro "$(image d2 vdb)" || fail "remount d2's vdb read-only"
expect_fault "revert, vdb read-only" "Input/output error" "Read-only file system" d2 \
    put "$MNT/d2/base/revert" ""
umount "$(image d2 vdb)"
check_pattern "$(image d2 vda)" 0x5a 0 64k
check_pattern "$(image d2 vdb)" 0x5b 0 64k
assert_eq "d2 vda tags" base "$(disk_tags "$(image d2 vda)")"
assert_eq "d2 vdb tags" base "$(disk_tags "$(image d2 vdb)")"
assert_ok put "$MNT/d2/base/revert" ""
check_pattern "$(image d2 vda)" 0 0 64k
check_pattern "$(image d2 vdb)" 0 0 64k
assert_store_agrees d2

check "a two-disk revert whose second disk's snapshot -a fails: vda is put back, EIO"
# vdb's snapshot table names an L1 table at an invalid offset: listing and
# taking snapshots work, applying 'base' fails (after vda was reverted).
l1_shift() {
    python3 - "$1" "$2" <<'PY' || fail "cannot edit the snapshot table of $1"
import struct, sys
with open(sys.argv[1], "r+b") as f:
    f.seek(64)
    table = struct.unpack(">Q", f.read(8))[0]
    f.seek(table)
    l1 = struct.unpack(">Q", f.read(8))[0]
    f.seek(table)
    f.write(struct.pack(">Q", l1 + int(sys.argv[2])))
PY
}
write_pattern "$(image d2 vda)" 0x6a 0 64k
write_pattern "$(image d2 vdb)" 0x6b 0 64k
l1_shift "$(image d2 vdb)" 512
expect_fault "revert, vdb's snapshot broken" "Input/output error" "Snapshot L1 table offset invalid" d2 \
    put "$MNT/d2/base/revert" ""
l1_shift "$(image d2 vdb)" -512
check_pattern "$(image d2 vda)" 0x6a 0 64k
check_pattern "$(image d2 vdb)" 0x6b 0 64k
qcow2_check "$(image d2 vda)"
qcow2_check "$(image d2 vdb)"
assert_store_agrees d2

# ---- an image locked by another QEMU --------------------------------------------------

check "an image another QEMU holds: EIO with QEMU's lock message, nothing changes"
if command -v qemu-system-x86_64 >/dev/null; then
    qemu-system-x86_64 -machine pc -S -display none -nodefaults -daemonize \
        -pidfile "$WORKDIR/lock.pid" \
        -drive "file=$(image d1),format=qcow2,if=virtio" >/dev/null 2>&1 ||
        fail "cannot start a QEMU holding $(image d1)"
    lock_pid=$(cat "$WORKDIR/lock.pid")
    EXTRA_PIDS+=("$lock_pid")
    expect_fault "mkdir, image locked" "Input/output error" "lock" d1 \
        mkdir "$MNT/d1/current/locked"
    expect_fault "rmdir, image locked" "Input/output error" "lock" d1 \
        rmdir "$MNT/d1/base/s1"
    expect_fault "revert, image locked" "Input/output error" "lock" d1 \
        put "$MNT/d1/base/revert" ""
    kill -KILL "$lock_pid"
    while kill -0 "$lock_pid" 2>/dev/null; do sleep 0.05; done
    assert_ok mkdir "$MNT/d1/current/unlocked"
    assert_ok rmdir "$MNT/d1/base/s1/unlocked"
    assert_store_agrees d1
else
    say "no qemu-system-x86_64: the lock case is not tested"
fi
umount_fs

# ---- ENOSPC in the state directory ------------------------------------------------------

check "ENOSPC in STATE/journal: ENOSPC before any disk is touched"
small_fs "$STATE/journal" 64
mount_fs
fill "$STATE/journal"
expect_fault "mkdir, journal full" "No space left on device" "No space left" d1 \
    mkdir "$MNT/d1/current/j"
expect_fault "rmdir, journal full" "No space left on device" "No space left" d1 \
    rmdir "$MNT/d1/base/s1"
unfill "$STATE/journal"
assert_ok mkdir "$MNT/d1/current/j"
assert_ok rmdir "$MNT/d1/base/s1/j"
assert_store_agrees d1

check "ENOSPC in STATE/snapshots: mkdir takes its disk snapshots back"
umount_fs
small_fs "$STATE/snapshots" 256
mount_fs
fill "$STATE/snapshots"
expect_fault "mkdir, snapshots full" "No space left on device" "No space left" d2 \
    mkdir "$MNT/d2/current/m"
expect_fault "create, snapshots full" "No space left on device" "No space left" d2 \
    put "$MNT/d2/create" "<domainsnapshot><name>m</name></domainsnapshot>"

check "ENOSPC in STATE/snapshots during a revert: ENOSPC; the revert is finished before the next operation"
# The disks are reverted before the metadata is written, and the journal
# says so: the next operation writes the metadata and leaves the disks.
unfill "$STATE/snapshots"
write_pattern "$(image d2 vda)" 0x77
assert_ok mkdir "$MNT/d2/current/r"
fill "$STATE/snapshots"
n=$(errors_count d2)
assert_errno "No space left on device" put "$MNT/d2/base/revert" ""
assert_new_error "revert, snapshots full" d2 "$n" "No space left"
unfill "$STATE/snapshots"
# Any queued operation settles it first (resume on a shut-off domain is
# refused and changes nothing).
assert_errno "Device or resource busy" put "$MNT/d2/state" resume
assert_contains "errors" "$(cat "$MNT/d2/errors")" "recovered: finished the interrupted revert to 'base' (its disks were done"
assert_eq "current after the settled revert" "$MNT/d2/base" "$(cd "$MNT/d2/current" && pwd -P)"
check_pattern "$(image d2 vda)" 0x00
assert_ok mkdir "$MNT/d2/current/after"
assert_store_agrees d2
umount_fs
umount "$STATE/snapshots" "$STATE/journal"

# ---- ENOSPC in the image directory ------------------------------------------------------

check "ENOSPC where a disk lives: EIO with qemu-img's message, the other disk rolled back"
mkdir -p "$WORKDIR/small"
mount -t tmpfs -o size=1024k tmpfs "$WORKDIR/small"
mv "$(image d2 vdb)" "$WORKDIR/small/d2-vdb.qcow2"
sed -i "s|images/d2-vdb.qcow2|$WORKDIR/small/d2-vdb.qcow2|" "$STATE/domains/d2.xml"
mount_fs
fill "$WORKDIR/small"
before_vda=$(disk_tags "$(image d2 vda)")
expect_fault "mkdir, image directory full" "No space left on device" "No space left" d2 \
    mkdir "$MNT/d2/current/full"
assert_eq "vda tags (rolled back)" "$before_vda" "$(disk_tags "$(image d2 vda)")"
assert_eq "vdb tags" "$before_vda" "$(disk_tags "$WORKDIR/small/d2-vdb.qcow2")"
qcow2_check_after_kill "$WORKDIR/small/d2-vdb.qcow2"
unfill "$WORKDIR/small"
assert_ok mkdir "$MNT/d2/current/full"
assert_eq "vdb tags after" "$(disk_tags "$(image d2 vda)")" "$(disk_tags "$WORKDIR/small/d2-vdb.qcow2")"
umount_fs

# ---- a QEMU that stops answering --------------------------------------------------------

if ! command -v qemu-system-x86_64 >/dev/null; then
    say "no qemu-system-x86_64: the stopped-QEMU case is not tested"
    say "PASS"
    exit 0
fi
check "SIGSTOP to QEMU: state and mkdir fail with EIO within the QMP timeout, other domains answer"
make_domain d3
mount_fs
D=$MNT/d3
assert_ok mkdir "$D/base"
assert_ok put "$D/state" start
assert_running d3 running
pid=$RUN_PID
kill -STOP "$pid"
n=$(errors_count d3)
t0=$(now_ms)
assert_errno "Input/output error" put "$D/state" pause
t1=$(now_ms)
say "pause on a stopped QEMU: EIO after $((t1 - t0)) ms"
[ $((t1 - t0)) -lt $((10000 * TIME_SCALE)) ] || fail "pause took $((t1 - t0)) ms"
assert_new_error "pause, QEMU stopped" d3 "$n" "did not answer"
mkdir "$D/current/x" 2>"$LOGS/mkdir-x.err" &
mk=$!
EXTRA_PIDS+=("$mk")
sleep 0.2
t0=$(now_ms)
ls "$MNT/d1/base" >/dev/null || fail "d1 does not answer while d3's QEMU is stopped"
cat "$MNT/d3/errors" >/dev/null || fail "d3/errors does not answer"
t1=$(now_ms)
[ $((t1 - t0)) -lt 1000 ] || fail "reads took $((t1 - t0)) ms while d3's QEMU was stopped"
rc=0
wait "$mk" || rc=$?
EXTRA_PIDS=()
[ "$rc" -ne 0 ] || fail "mkdir x succeeded on a stopped QEMU"
assert_contains "mkdir x" "$(cat "$LOGS/mkdir-x.err")" "Input/output error"
assert_contains "errors" "$(tail -n 1 "$D/errors")" "mkdir x"

check "SIGCONT: what QEMU does late is settled, the next operation works"
kill -CONT "$pid"
# QEMU now runs what it was sent: the stop (so the domain pauses: a
# command it received cannot be taken back) and maybe the snapshot of x,
# which the next operation rolls back first.
sleep 1
assert_ok mkdir "$D/current/y"
[ ! -e "$D/.by-name/x" ] || fail "x exists"
assert_contains "errors" "$(cat "$D/errors")" "recovered: rolled back the interrupted create of 'x'"
assert_store_agrees d3
st=$(state_of d3)
say "state after SIGCONT: $st"
[ "$st" == running ] || assert_ok put "$D/state" resume
assert_running d3 running "$pid"

check "destroy of a stopped QEMU: quit times out, SIGKILL, shutoff"
kill -STOP "$pid"
assert_ok put "$D/state" destroy
assert_shutoff d3 "$pid"
assert_ok rmdir "$D/base/y"
assert_store_agrees d3
umount_fs
say "PASS"
