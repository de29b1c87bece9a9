#!/usr/bin/env bash
# test-backup: backup tools walk the mount cleanly (DESIGN, attributes):
# rsync -a, tar -c, cp -a and restic backup (and tar --xattrs --acls,
# rsync -aAX) of a domain directory and of a flat directory
# (.by-name/SNAP) exit 0 with nothing on stderr, with and
# without -o disks; what they copy is what the mount shows, and the disk
# files are the snapshots' bytes (qemu-img convert).
source "$(dirname "$0")/../lib/common.sh"
require_cmd rsync tar restic getfattr

make_domain d1 vda vdb
# Small disks: every tool reads every snapshot's disks with -o disks.
for dev in vda vdb; do qemu-img resize -q --shrink "$(image d1 $dev)" 8M; done
mount_fs
D=$MNT/d1
say "build d1: base -> s1 -> s2 with data in both disks"
write_pattern "$(image d1 vda)" 0x11
write_pattern "$(image d1 vdb)" 0x12 2M
mkdir "$D/base"
write_pattern "$(image d1 vda)" 0x21 1M
mkdir "$D/current/s1"
write_pattern "$(image d1 vdb)" 0x22 3M
mkdir "$D/current/s2"
umount_fs

export RESTIC_PASSWORD=snaptreefs-test RESTIC_CACHE_DIR=$WORKDIR/restic-cache

# quiet WHAT CMD...: CMD exits 0 and writes nothing on stderr.
quiet() {
    local what=$1 err=$WORKDIR/stderr rc=0
    shift
    "$@" >/dev/null 2>"$err" || rc=$?
    [ "$rc" -eq 0 ] || fail "$what: exit $rc: $(cat "$err")"
    [ ! -s "$err" ] || fail "$what: wrote on stderr: $(cat "$err")"
}

# same_tree WHAT SRC COPY: COPY holds the files of SRC with their content.
same_tree() {
    local got want
    want=$(cd "$2" && find . -printf '%y %p\n' | sort)
    got=$(cd "$3" && find . -printf '%y %p\n' | sort)
    assert_eq "$1: entries" "$want" "$got"
    while read -r f; do
        cmp -s "$2/$f" "$3/$f" || fail "$1: $f differs from the mount"
    done < <(cd "$2" && find . -type f ! -name state ! -name errors ! -name job)
}

# backups SRC TAG: every tool copies SRC; the copies match the mount.
backups() {
    local src=$1 tag=$2 out=$WORKDIR/out/$2
    rm -rf "$out" && mkdir -p "$out"
    quiet "$tag: rsync -a" rsync -a "$src/" "$out/rsync/"
    same_tree "$tag: rsync -a" "$src" "$out/rsync"
    quiet "$tag: tar -cf" tar -C "$src" -cf "$out/t.tar" .
    mkdir "$out/tar"
    tar -C "$out/tar" -xf "$out/t.tar" || fail "$tag: tar -x"
    same_tree "$tag: tar" "$src" "$out/tar"
    # Tools that also copy extended attributes and ACLs: tar warns on
    # every file whose attributes cannot be listed.
    quiet "$tag: tar --xattrs --acls" tar --xattrs --acls -C "$src" -cf "$out/x.tar" .
    quiet "$tag: rsync -aAX" rsync -aAX "$src/" "$out/rsync-x/"
    quiet "$tag: getfattr -R -d" getfattr -R -d -m - "$src"
    quiet "$tag: cp -a" cp -a "$src" "$out/cp"
    same_tree "$tag: cp -a" "$src" "$out/cp"
    export RESTIC_REPOSITORY=$out/restic
    quiet "$tag: restic init" restic init
    quiet "$tag: restic backup" restic backup -q "$src"
    quiet "$tag: restic restore" restic restore -q latest --target "$out/restored"
    same_tree "$tag: restic" "$src" "$out/restored$src"
    rm -rf "$out"
}

check "without -o disks: domain directory and flat directory"
mount_fs
assert_eq "control files read as empty" "" "$(cat "$D/create" "$D/.forget" "$D/.undefine" "$D/base/revert")"
backups "$D" domain
backups "$D/.by-name/s1" flat
umount_fs

check "with -o disks: the same, and the disk files hold the snapshots' bytes"
mount_fs -o disks
backups "$D" domain-disks
backups "$D/.by-name/s1" flat-disks
rsync -a "$D/" "$WORKDIR/copy/"
for s in base:base s1:base/s1 s2:base/s1/s2; do
    name=${s%%:*} path=${s#*:}
    for dev in vda vdb; do
        qemu-img convert -U -l "snapshot.name=$name" -O raw "$(image d1 $dev)" "$WORKDIR/$name-$dev.raw"
        cmp "$WORKDIR/copy/$path/disks/$dev" "$WORKDIR/$name-$dev.raw" ||
            fail "rsync's $path/disks/$dev differs from qemu-img convert"
    done
done
cp -a "$D/.by-name/s2" "$WORKDIR/flat-s2"
for dev in vda vdb; do
    cmp "$WORKDIR/flat-s2/disks/$dev" "$WORKDIR/s2-$dev.raw" ||
        fail "cp -a's .by-name/s2/disks/$dev differs from qemu-img convert"
done
umount_fs
say "PASS"
