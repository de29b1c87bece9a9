#!/usr/bin/env bash
# test-flat: the flat view DOM/.by-name/SNAP/ (DESIGN "Any depth"): a
# directory per snapshot with its own files, mkdir and rmdir through it,
# its errors, and the kernel's caches of both views after each change.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/views.sh"

make_domain d1
mount_fs
D=$MNT/d1
F=$D/.by-name
IMG=$(image d1)

say "build: base -> a -> b (current b), through both views"
mkdir "$D/base"
write_pattern "$IMG" 0x11
check "mkdir .by-name/NEW: a child of the current snapshot, in both views at once"
assert_ok mkdir "$F/a"
[ -d "$D/base/a" ] || fail "base/a missing after mkdir .by-name/a"
assert_eq "parent of a" base "$(xmllint --xpath 'string(/domainsnapshot/parent/name)' "$F/a/metadata.xml")"
assert_eq "current after mkdir .by-name/a" base/a "$(readlink "$D/current")"
assert_eq "ls base" "a metadata.xml revert" "$(ls "$D/base" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "nlink base" 3 "$(stat -c %h "$D/base")"
write_pattern "$IMG" 0x22
assert_ok mkdir "$D/current/b"
assert_contains "ls .by-name after a nested mkdir" "$(ls "$F")" b
assert_eq "nlink .by-name" 5 "$(stat -c %h "$F")"
check_views "$D" "after the mkdirs"

check "a flat directory: own files only, mtime creationTime, its own inode, nlink 2"
assert_eq "ls -A .by-name/a" "metadata.xml revert" "$(ls -A "$F/a" | tr '\n' ' ' | sed 's/ $//')"
ct=$(xmllint --xpath 'string(/domainsnapshot/creationTime)' "$F/a/metadata.xml")
assert_eq "mtime of .by-name/a" "$ct" "$(stat -c %Y "$F/a")"
assert_eq "nlink of .by-name/a (it has a child, nested)" 2 "$(stat -c %h "$F/a")"
assert_eq "nlink of base/a" 3 "$(stat -c %h "$D/base/a")"
[ "$(stat -c %i "$F/a")" != "$(stat -c %i "$D/base/a")" ] || fail "flat and nested a share an inode"
assert_errno "No such file or directory" stat "$F/a/b"
assert_errno "No such file or directory" stat "$F/nosuch"
assert_eq "find .by-name -type d -links 2 (every flat directory is a leaf)" "a b base" \
    "$(find "$F" -mindepth 1 -type d -links 2 -printf '%f\n' | sort | tr '\n' ' ' | sed 's/ $//')"

check "errors: EEXIST, EPERM outside current, EINVAL names, EPERM on the view itself; nothing changes"
before=$(fingerprint d1)
n=$(errors_count d1)
assert_errno "File exists" mkdir "$F/base"
assert_errno "File exists" mkdir "$F/b/a"
assert_errno "Operation not permitted" mkdir "$F/a/x"
assert_new_error "mkdir .by-name/a/x" d1 "$n" "current"
assert_errno "Invalid argument" mkdir "$F/.hidden"
assert_errno "Invalid argument" mkdir "$F/revert"
assert_errno "Operation not permitted" rmdir "$F"
assert_errno "Operation not permitted" mv "$F/a" "$F/a2"
assert_errno "Operation not permitted" ln -s x "$F/l"
assert_errno "Is a directory" rm "$F/a"
assert_unchanged "refused operations" "$before" d1
[ -d "$F" ] || fail ".by-name gone"

check "unlinking a flat directory's files succeeds and changes nothing (rm -r walks)"
assert_ok rm -f "$F/a/metadata.xml" "$F/a/revert"
assert_unchanged "unlink in .by-name/a" "$before" d1

check "mkdir .by-name/CUR/NEW (what mkdir current/NEW is once current is flat) works; CUR lists no child"
assert_ok mkdir "$F/b/c"
assert_eq "parent of c" b "$(xmllint --xpath 'string(/domainsnapshot/parent/name)' "$F/c/metadata.xml")"
[ -d "$D/base/a/b/c" ] || fail "base/a/b/c missing"
assert_eq "ls -A .by-name/b" "metadata.xml revert" "$(ls -A "$F/b" | tr '\n' ' ' | sed 's/ $//')"
assert_errno "No such file or directory" stat "$F/b/c"
assert_errno "No such file or directory" ls "$F/b/c"
check_views "$D" "after mkdir .by-name/b/c"

check "revert through .by-name"
write_pattern "$IMG" 0x33
assert_ok put "$F/a/revert" ""
check_pattern "$IMG" 0x11
assert_eq "current after revert" base/a "$(readlink "$D/current")"
assert_eq "active in flat a" 1 "$(xmllint --xpath 'string(/domainsnapshot/active)' "$F/a/metadata.xml")"
[ "$(xmllint --xpath 'string(/domainsnapshot/active)' "$F/c/metadata.xml")" != 1 ] ||
    fail ".by-name/c/metadata.xml still says active (stale page cache)"

check "rmdir .by-name/SNAP: children re-parented; the flat view of the others is unchanged, the nested moves"
ino_b=$(stat -c %i "$F/b")
ls -R "$D" >/dev/null # the kernel caches both views now
assert_ok rmdir "$F/a"
assert_eq "tags" "b base c" "$(disk_tags "$IMG")"
[ ! -e "$F/a" ] || fail ".by-name/a still there"
[ ! -e "$D/base/a" ] || fail "base/a still there"
[ -d "$D/base/b/c" ] || fail "b not re-parented to base"
assert_eq "parent of b" base "$(xmllint --xpath 'string(/domainsnapshot/parent/name)' "$F/b/metadata.xml")"
assert_eq "inode of .by-name/b kept" "$ino_b" "$(stat -c %i "$F/b")"
assert_eq "current after rmdir of current" base "$(readlink "$D/current")"
assert_eq "nlink .by-name" 5 "$(stat -c %h "$F")"
check_views "$D" "after rmdir .by-name/a"

check "rmdir of a nested directory leaves .by-name at once"
mkdir "$D/current/d"
ls "$F" >/dev/null
stat "$F/d" >/dev/null
rmdir "$D/base/d"
[ ! -e "$F/d" ] || fail ".by-name/d still there after rmdir base/d"
if ls "$F" | grep -qx d; then fail ".by-name still lists d"; fi

check "rm -r .by-name/SNAP is rmdir: a flat directory has no descendants, the children move up"
assert_ok rm -r "$F/b"
assert_eq "tags after rm -r .by-name/b" "base c" "$(disk_tags "$IMG")"
[ -d "$D/base/c" ] || fail "c not re-parented to base"
check_views "$D" "after rm -r .by-name/b"

check "retention through the flat view: mkdir current/NEW right after rmdir .by-name/OLDEST moved the chain"
# Each rmdir re-parents the chain under the domain directory while the
# kernel still holds its nested dentries under the removed snapshot.
kept=()
for i in $(seq 1 60); do
    mkdir "$D/current/r$i" || fail "round $i: mkdir current/r$i"
    cat "$D/current/metadata.xml" >/dev/null || fail "round $i: cat current/metadata.xml"
    kept+=("r$i")
    if [ ${#kept[@]} -gt 4 ]; then
        rmdir "$F/${kept[0]}" || fail "round $i: rmdir .by-name/${kept[0]}"
        kept=("${kept[@]:1}")
    fi
done
check_views "$D" "after the retention rounds"

umount_fs

check "-o disks: disks/ in the flat directory too, same bytes as the nested one"
mount_fs -o disks
assert_eq "ls .by-name/base" "disks metadata.xml revert" "$(ls "$F/base" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "nlink .by-name/base" 3 "$(stat -c %h "$F/base")"
cmp "$F/base/disks/vda" "$D/base/disks/vda" || fail "flat and nested disks/vda differ"
qemu-img convert -U -l snapshot.name=base -O raw "$IMG" "$WORKDIR/base.raw"
cmp "$F/base/disks/vda" "$WORKDIR/base.raw" || fail ".by-name/base/disks/vda differs from qemu-img convert"
assert_ok rmdir "$F/base/disks"
assert_errno "Operation not permitted" mkdir "$F/base/disks/x"
check_views "$D" "with -o disks"
umount_fs

check "-o ro: every mutation through the flat view is EROFS"
mount_fs -o ro
before=$(fingerprint d1)
assert_errno "Read-only file system" mkdir "$F/x"
assert_errno "Read-only file system" mkdir "$F/base/x"
assert_errno "Read-only file system" rmdir "$F/base"
assert_errno "Read-only file system" put "$F/base/revert" ""
assert_eq "reading a control file on a ro mount" "" "$(cat "$F/base/revert")"
assert_unchanged "ro" "$before" d1
umount_fs
say "PASS"
