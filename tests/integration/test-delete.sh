#!/usr/bin/env bash
# test-delete: rmdir re-parents children, rm -r and find -delete delete
# subtrees, unlinking the virtual files changes nothing.
source "$(dirname "$0")/../lib/common.sh"

make_domain d1
mount_fs
D=$MNT/d1
IMG=$(image d1)

tags() { disk_tags "$IMG"; }
cur() { (cd "$D/current" && pwd -P) || echo "<no current>"; }
revert_to() { put "$1/revert" "" || fail "revert to $1"; }

say "build: base(A) -> mid(B) -> {c1(C), c2(D)}"
write_pattern "$IMG" 0xa1
mkdir "$D/base"
write_pattern "$IMG" 0xb2
mkdir "$D/current/mid"
write_pattern "$IMG" 0xc3
mkdir "$D/current/c1"
revert_to "$D/base/mid"
write_pattern "$IMG" 0xd4
mkdir "$D/current/c2"
assert_eq "tags" "base c1 c2 mid" "$(tags)"

check "unlink of metadata.xml or revert succeeds and changes nothing"
before=$(fingerprint d1)
assert_ok rm "$D/base/mid/metadata.xml"
assert_ok rm -f "$D/base/mid/revert"
assert_unchanged "unlink of virtual files" "$before" d1
[ -f "$D/base/mid/metadata.xml" ] || fail "metadata.xml gone from the listing after unlink"
[ -f "$D/base/mid/revert" ] || fail "revert gone from the listing after unlink"
assert_contains "metadata.xml after unlink" "$(cat "$D/base/mid/metadata.xml")" "<name>mid</name>"

check "rmdir of a middle snapshot re-parents its children to the grandparent"
assert_ok rmdir "$D/base/mid"
assert_eq "tags" "base c1 c2" "$(tags)"
[ ! -e "$D/base/mid" ] || fail "base/mid still there"
[ ! -e "$STATE/snapshots/d1/mid.xml" ] || fail "STATE/snapshots/d1/mid.xml still there"
assert_eq "ls base" "c1 c2 metadata.xml revert" "$(ls "$D/base" | sort | tr '\n' ' ' | sed 's/ $//')"
for c in c1 c2; do
    assert_eq "<parent> of $c" base "$(xmllint --xpath 'string(/domainsnapshot/parent/name)' "$D/base/$c/metadata.xml")"
done
assert_eq "current unchanged (c2)" "$D/base/c2" "$(cur)"
assert_eq "nlink base" 4 "$(stat -c %h "$D/base")"

check "the children's data survived: revert to c1 gives C, to c2 gives D, to base gives A"
revert_to "$D/base/c1"; check_pattern "$IMG" 0xc3
revert_to "$D/base/c2"; check_pattern "$IMG" 0xd4
revert_to "$D/base";    check_pattern "$IMG" 0xa1
revert_to "$D/base/c2"

check "rmdir of the current snapshot makes its parent current"
assert_ok rmdir "$D/base/c2"
assert_eq "current" "$D/base" "$(cur)"
assert_eq "tags" "base c1" "$(tags)"
assert_eq "<active> of base" 1 "$(xmllint --xpath 'string(/domainsnapshot/active)' "$D/base/metadata.xml")"

say "build: base -> x -> x1 -> x2, x -> y"
mkdir "$D/current/x"
mkdir "$D/current/x1"
mkdir "$D/current/x2"
revert_to "$D/base/x"
mkdir "$D/current/y"
assert_eq "tags" "base c1 x x1 x2 y" "$(tags)"

check "rm -r of a subtree succeeds silently and deletes every descendant"
assert_ok rm -r "$D/base/x"
assert_eq "tags" "base c1" "$(tags)"
[ ! -e "$D/base/x" ] || fail "base/x still there after rm -r"
assert_eq "snapshot files" "base.xml c1.xml" "$(ls "$STATE/snapshots/d1" | sort | tr '\n' ' ' | sed 's/ $//')"
assert_eq "current after deleting the current subtree" "$D/base" "$(cur)"

say "build: c1 -> {k1, k2 -> k2a}"
revert_to "$D/base/c1"
mkdir "$D/current/k1"
revert_to "$D/base/c1"
mkdir "$D/current/k2"
mkdir "$D/current/k2a"
assert_eq "tags" "base c1 k1 k2 k2a" "$(tags)"

check "rm -r DIR/*/ deletes the children only"
assert_ok rm -r "$D/base/c1/"*/
assert_eq "tags" "base c1" "$(tags)"
assert_eq "ls c1" "metadata.xml revert" "$(ls "$D/base/c1" | sort | tr '\n' ' ' | sed 's/ $//')"
assert_eq "nlink c1" 2 "$(stat -c %h "$D/base/c1")"
revert_to "$D/base/c1"; check_pattern "$IMG" 0xc3

say "build: base -> f1 -> f2"
revert_to "$D/base"
mkdir "$D/current/f1"
mkdir "$D/current/f2"
assert_eq "tags" "base c1 f1 f2" "$(tags)"

check "find DIR -delete works and exits 0"
assert_ok find "$D/base/f1" -delete
assert_eq "tags" "base c1" "$(tags)"
[ ! -e "$D/base/f1" ] || fail "base/f1 still there after find -delete"

check "rmdir of a root with a child makes the child a root"
assert_ok rmdir "$D/base"
assert_eq "tags" "c1" "$(tags)"
[ -d "$D/c1" ] || fail "c1 is not a root directory after its parent went"
assert_eq "<parent> of c1" "" "$(xmllint --xpath 'string(/domainsnapshot/parent/name)' "$D/c1/metadata.xml")"
revert_to "$D/c1"; check_pattern "$IMG" 0xc3

check "rm -r of the last root leaves no snapshot and no current"
assert_ok rm -r "$D/c1"
assert_eq "tags" "" "$(tags)"
[ ! -e "$D/current" ] && [ ! -L "$D/current" ] || fail "current still exists with no snapshot"
qcow2_check "$IMG"

umount_fs
say "PASS"
