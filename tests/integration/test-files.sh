#!/usr/bin/env bash
# test-files: with -o files, SNAP/files/ shows each filesystem of the
# snapshot's disks (vda: ext4 on the whole disk, vdb1: ext4 in an MBR
# partition) as it was at SNAP: contents, modes, owners, times, symlinks,
# hard links and device nodes as built; restic and rsync copy it whole;
# external snapshots and a running domain's too; appliances stop when idle
# and at unmount; a deleted snapshot's open file reads ESTALE. Appliances
# are shared between checks (each launch costs ~20-30 s under TCG) and
# their launch times printed.
source "$(dirname "$0")/../lib/common.sh"
require_cmd mkfs.ext4 sfdisk rsync restic sha256sum jq
require_qemu_system
"$SNAPTREEFS" --help 2>&1 | grep -q -- 'built without libguestfs' && skip "snaptreefs built without libguestfs"

D=$MNT/d1

# ---- the guest trees and their images ----------------------------------------

# make_tree DIR VERSION: the tree a filesystem is built from.
make_tree() {
    local t=$1 v=$2
    mkdir -p "$t/etc/deep/er/still" "$t/home/user one" "$t/dev" "$t/bin" "$t/boot"
    # What libguestfs inspection takes for a Linux root (/etc, /bin,
    # /etc/fstab), whose /boot is the other disk's partition: files/os/.
    printf 'ID=snaptreefs-test\nNAME="test %s"\n' "$v" >"$t/etc/os-release"
    printf '/dev/vda / ext4 defaults 0 1\n/dev/vdb1 /boot ext4 defaults 0 2\n' >"$t/etc/fstab"
    printf 'version %s\n' "$v" >"$t/etc/version"
    printf 'nested %s\n' "$v" >"$t/etc/deep/er/still/leaf.txt"
    head -c 5M /dev/urandom >"$t/home/user one/big.bin"
    ln "$t/home/user one/big.bin" "$t/home/hard link"
    ln -s "../etc/version" "$t/home/link to version"
    printf 'utf-8 %s\n' "$v" >"$t/home/Grüße, 世界.txt"
    printf 'secret\n' >"$t/etc/shadowish"
    chmod 0640 "$t/etc/shadowish"
    chown 1234:5678 "$t/etc/shadowish" "$t/home/user one"
    mknod "$t/dev/null-ish" c 1 3
    chmod 0700 "$t/etc/deep"
    touch -h -d "2001-02-03 04:05:06" "$t/etc/version" "$t/home/link to version"
    if [ "$v" = 2 ]; then
        rm "$t/etc/shadowish"
        printf 'only in 2\n' >"$t/etc/new-in-2"
    fi
}

# make_ext4 TREE RAW: an ext4 image of TREE.
make_ext4() {
    rm -f "$2"
    truncate -s 40M "$2"
    mkfs.ext4 -q -F -E root_owner=0:0 -d "$1" "$2" || fail "mkfs.ext4 -d $1"
}

# make_mbr EXT4 RAW: EXT4 as partition 1 of an MBR table.
make_mbr() {
    rm -f "$2"
    truncate -s 48M "$2"
    echo 'start=2048, size=83968, type=83' | sfdisk -q "$2" >/dev/null || fail "sfdisk $2"
    dd if="$1" of="$2" bs=1M seek=1 conv=notrunc status=none || fail "dd into $2"
}

# write_disks VERSION: the domain's disks hold that version's filesystems
# (written into the active layer: the internal snapshots stay). vdc has
# no filesystem; vdd in version 1 an ext4 whose group descriptors are
# garbage, so that it is recognised but does not mount (in version 2 a
# sound one, so that whole copies of s2's files/ work).
write_disks() {
    local v=$1
    make_ext4 "$WORKDIR/tree$v" "$WORKDIR/vda$v.raw"
    make_mbr "$WORKDIR/vda$v.raw" "$WORKDIR/vdb$v.raw"
    qemu-img convert -n -f raw -O qcow2 "$WORKDIR/vda$v.raw" "$(image d1 vda)" || fail "convert vda"
    qemu-img convert -n -f raw -O qcow2 "$WORKDIR/vdb$v.raw" "$(image d1 vdb)" || fail "convert vdb"
    if [ "$v" = 1 ]; then
        cp "$WORKDIR/vda$v.raw" "$WORKDIR/vdd.raw"
        dd if=/dev/urandom of="$WORKDIR/vdd.raw" bs=1024 seek=2 count=8 conv=notrunc status=none
    else
        make_ext4 "$WORKDIR/tree$v/dev" "$WORKDIR/vdd.raw"
    fi
    qemu-img convert -n -f raw -O qcow2 "$WORKDIR/vdd.raw" "$(image d1 vdd)" || fail "convert vdd"
}

# sums DIR: sha256 of every regular file below DIR, by path.
sums() {
    (cd "$1" && find . -path ./lost+found -prune -o -type f -print0 | sort -z |
        xargs -0 -r sha256sum) || fail "reading the files below $1"
}

# meta DIR: what the guest's metadata must keep, one line per entry:
# type, mode, owner, mtime, link target, device numbers; sizes and link
# counts of files.
meta() {
    (cd "$1" && find . -mindepth 1 -path ./lost+found -prune -o -print0 | sort -z |
        xargs -0 stat -c '%n|%F|%a|%u|%g|%Y|%N|%t:%T') || fail "walking $1"
    (cd "$1" && find . -type f -print0 | sort -z | xargs -0 stat -c '%n|%s|%h') ||
        fail "walking $1"
}

# assert_tree MOUNTED VERSION: MOUNTED shows tree VERSION exactly.
assert_tree() {
    assert_eq "contents of $1" "$(sums "$WORKDIR/tree$2")" "$(sums "$1")"
    assert_eq "metadata of $1" "$(meta "$WORKDIR/tree$2")" "$(meta "$1")"
}

# appliances: the appliance QEMUs the daemon runs (its pid is on their
# kernel command line).
appliances() {
    pids_matching "*qemu-system*snaptreefs.appliance=$1.*" | wc -l
}

# wait_appliances PID N SECONDS: until the daemon PID runs N appliances.
wait_appliances() {
    local deadline=$(( $(date +%s) + $3 * TIME_SCALE ))
    while [ "$(appliances "$1")" != "$2" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "expected $2 appliances within $3 s, have $(appliances "$1")"
        sleep 0.2
    done
}

launch_times() {
    grep -o 'files: .*appliance started in .*' "$DAEMON_LOG" | sed 's/^/    /' || true
}

make_tree "$WORKDIR/tree1" 1
make_tree "$WORKDIR/tree2" 2
make_domain d1 vda vdb vdc vdd

check "without -o files there is no files/"
write_disks 1
mount_fs
mkdir "$D/s1" || fail "mkdir s1"
assert_errno "No such file or directory" stat "$D/s1/files"
umount_fs
write_disks 2

# The first launch tries KVM where it exists; a KVM that cannot boot the
# appliance (kvm-pvm here) must fall back to TCG by itself.
check "with -o files: files/ lists the filesystems (first access boots an appliance)"
mount_fs -o files
mkdir "$D/s1/s2" || fail "mkdir s2"
assert_eq "mode of s1/files" "directory 755" "$(stat -c '%F %a' "$D/s1/files")"
assert_eq "links of s1 (s2, files)" 4 "$(stat -c %h "$D/s1")"
start=$(now_ms)
assert_eq "ls s1/files (no vdc: no filesystem)" "os vda vdb1 vdd" "$(ls "$D/s1/files" | tr '\n' ' ' | sed 's/ $//')"
say "first listing of s1/files took $(( $(now_ms) - start )) ms"
# Where KVM exists and TCG is not forced, the appliance ran under KVM or
# the fallback said why not.
case "${LIBGUESTFS_BACKEND_SETTINGS:-}" in
    *force_tcg*) ;;
    *)
        if [ -w /dev/kvm ] && ! grep -q 'appliance started in .*(kvm' "$DAEMON_LOG"; then
            grep 'falling back to TCG' "$DAEMON_LOG" ||
                fail "an appliance ran under TCG with /dev/kvm present and no fallback logged"
        fi
        ;;
esac

check "files/vda and files/vdb1 of s1 and s2 each show their own version, metadata as built"
# Both snapshots' appliances at once (files_max=2): two walks in parallel.
sums "$D/s1/s2/files/vda" >"$WORKDIR/s2sums" &
bg=$!
assert_tree "$D/s1/files/vda" 1
wait "$bg" || fail "walking s2 in parallel"
assert_eq "s2/files/vda read beside s1's" "$(sums "$WORKDIR/tree2")" "$(cat "$WORKDIR/s2sums")"
assert_tree "$D/s1/files/vdb1" 1
assert_tree "$D/s1/s2/files/vda" 2
assert_tree "$D/s1/s2/files/vdb1" 2
assert_eq "readlink" "../etc/version" "$(readlink "$D/s1/files/vda/home/link to version")"
assert_eq "same inode for hard links" "$(stat -c %i "$D/s1/files/vda/home/hard link")" \
    "$(stat -c %i "$D/s1/files/vda/home/user one/big.bin")"
assert_errno "No such file or directory" stat "$D/s1/files/vda/etc/new-in-2"
assert_errno "No such file or directory" stat "$D/s1/files/nosuch"
check "files/ is read-only: every change to it, however asked, is EROFS"
V=$D/s1/files/vda
assert_errno "Read-only file system" sh -c "echo x >>'$V/etc/version'"
assert_errno "Read-only file system" touch "$V/etc/version"
assert_errno "Read-only file system" chmod 600 "$V/etc/version"
assert_errno "Read-only file system" truncate -s 0 "$V/etc/version"
assert_errno "Read-only file system" touch "$V/etc/new-file"
assert_errno "Read-only file system" mkdir "$V/etc/new-dir"
assert_errno "Read-only file system" mkdir "$D/s1/files/new-fs"
assert_errno "Read-only file system" mkfifo "$V/etc/new-fifo"
assert_errno "Read-only file system" ln -s version "$V/etc/new-link"
assert_errno "Read-only file system" ln "$V/etc/version" "$V/etc/new-hard-link"
assert_errno "Read-only file system" mv "$V/etc/version" "$V/etc/moved"
assert_errno "Read-only file system" mv "$V/etc/version" "$D/s1/moved"
assert_eq "etc/version after the refused changes" "version 1" "$(cat "$V/etc/version")"
say "launch times:"
launch_times

check "files/os/ is the inspected OS with its mount points assembled"
assert_eq "os/etc/version of s1" "version 1" "$(cat "$D/s1/files/os/etc/version")"
assert_eq "os/boot (vdb1) of s2" "version 2" "$(cat "$D/s1/s2/files/os/boot/etc/version")"

check "a filesystem that does not mount: EIO and a line in errors, never a hang"
assert_errno "Input/output error" ls "$D/s1/files/vdd"
assert_contains "errors after listing vdd" "$(cat "$D/errors")" "files/vdd"

check "a second walk is answered from the caches"
start=$(now_ms)
sums "$D/s1/files/vda" >/dev/null
say "second walk of s1/files/vda (contents re-read) took $(( $(now_ms) - start )) ms"

check "rsync -aH and restic backup of files/ exit 0 with identical content"
# -H: hard links share an inode number in files/, as in the guest.
rsync -aH "$D/s1/s2/files/" "$WORKDIR/rsynced/" || fail "rsync -aH of s2/files"
assert_tree "$WORKDIR/rsynced/vda" 2
assert_tree "$WORKDIR/rsynced/vdb1" 2
export RESTIC_REPOSITORY=$WORKDIR/restic RESTIC_PASSWORD=snaptreefs-test RESTIC_CACHE_DIR=$WORKDIR/restic-cache
restic init -q >/dev/null || fail "restic init"
restic backup -q "$D/s1/s2/files" >/dev/null || fail "restic backup of s2/files"
restic restore -q latest --target "$WORKDIR/restored" >/dev/null || fail "restic restore"
assert_tree "$WORKDIR/restored$D/s1/s2/files/vda" 2
assert_tree "$WORKDIR/restored$D/s1/s2/files/vdb1" 2
rm -rf "$WORKDIR/restic" "$WORKDIR/restic-cache" "$WORKDIR/restored" "$WORKDIR/rsynced"

check "a deleted snapshot's open file reads ESTALE, never other data"
exec 4<"$D/s1/files/vda/etc/version" || fail "open s1/files/vda/etc/version"
assert_eq "read before rmdir" "version 1" "$(head -n 1 <&4)"
exec 4<"$D/s1/files/vda/etc/version"
rmdir "$D/s1" || fail "rmdir s1"
assert_errno "Stale file handle" sh -c 'cat <&4'
exec 4<&-
D2=$D/s2

check "an appliance killed from outside is restarted on the next access"
exec 3<"$D2/files/vda/home/user one/big.bin" || fail "open big.bin of s2"
head -c 1 "$D2/files/vda/home/user one/big.bin" >/dev/null || fail "first read of s2's big.bin"
assert_eq "appliances (s1's stopped with it)" 1 "$(appliances "$DAEMON_PID")"
for p in $(pids_matching "*qemu-system*snaptreefs.appliance=$DAEMON_PID.*"); do
    kill -KILL "$p"
done
assert_eq "s2's big.bin read on a new appliance" \
    "$(sha256sum <"$WORKDIR/tree2/home/user one/big.bin")" "$(sha256sum <&3)"
exec 3<&-

check "an idle appliance stops by itself (after as long as its launch took); the caches need none"
wait_appliances "$DAEMON_PID" 0 300
ls -lR "$D2/files" >/dev/null || fail "ls -lR of s2/files"
assert_eq "appliances after a cached walk" 0 "$(appliances "$DAEMON_PID")"

if [ "$TIME_SCALE" = 1 ]; then
    # Each of these boots one more appliance: under ASan (where the
    # daemon, not QEMU, is what is checked) they are left to the plain run.
    check "a running domain's snapshot shows the disks as they were"
    put "$D/state" start || fail "start d1"
    wait_state d1 running
    mkdir "$D2/r1" || fail "mkdir r1 of the running domain"
    assert_tree "$D2/r1/files/vda" 2
    put "$D/state" destroy || fail "destroy d1"
    wait_state d1 shutoff

    check "an external snapshot's files/ shows the disk it froze"
    DISK_SNAPSHOT=external make_domain d2 vda
    qemu-img convert -n -f raw -O qcow2 "$WORKDIR/vda1.raw" "$(image d2 vda)" || fail "convert d2"
    umount_fs
    mount_fs -o files
    mkdir "$MNT/d2/e1" || fail "mkdir e1 (external)"
    assert_tree "$MNT/d2/e1/files/vda" 1
fi

check "the unmount stops every appliance and export"
pid=$DAEMON_PID
umount_fs
assert_eq "appliances after unmount" 0 "$(appliances "$pid")"
assert_eq "qemu-nbd after unmount" 0 "$(nbd_count)"
say "launch times:"
launch_times
