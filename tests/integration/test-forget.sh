#!/usr/bin/env bash
# test-forget: DOM/.forget deletes snapshot metadata only (libvirt's
# snapshot-delete --metadata and its children variants); the metadata.xml
# files copied out and written back to create restore the tree byte for
# byte, and revert still works.
source "$(dirname "$0")/../lib/common.sh"
require_cmd xmllint

make_domain d1
mount_fs
D=$MNT/d1
IMG=$(image d1)

# snap NAME DESCRIPTION: create a snapshot through create (DESCRIPTION is XML text).
snap() {
    printf '<domainsnapshot>\n  <name>%s</name>\n  <description>%s</description>\n</domainsnapshot>\n' \
        "$1" "$2" >"$WORKDIR/new.xml"
    assert_ok put_file "$D/create" "$WORKDIR/new.xml"
}
listing() { (cd "$D" && find . -path ./.by-name -prune -o -print | sort); }
store() { (cd "$STATE/snapshots/d1" && for f in *.xml; do [ -e "$f" ] && printf '%s %s\n' "$f" "$(md5sum <"$f" | cut -d' ' -f1)"; done); }

check ".forget is hidden from ls, listed by ls -a, mode 0600, reads as empty"
[ -z "$(ls "$D" | grep -F .forget)" ] || fail "plain ls lists .forget"
ls -a "$D" | grep -qx .forget || fail "ls -a does not list .forget: $(ls -a "$D" | tr '\n' ' ')"
assert_eq ".forget mode" 600 "$(stat -c %a "$D/.forget")"
assert_eq ".forget content" "" "$(cat "$D/.forget")"

say "build: base -> a -> {b, c}, base -> x, with descriptions and patterns; current a"
write_pattern "$IMG" 0x11
snap base "the base install"
write_pattern "$IMG" 0x22
snap a 'a &amp; &lt;b&gt; "quoted" description' 
write_pattern "$IMG" 0x33
snap b "leaf b"
put "$D/base/a/revert" ""
snap c "leaf c"
put "$D/base/revert" ""
snap x "branch x"
put "$D/base/a/revert" ""
assert_eq "current (not a leaf)" base/a "$(readlink "$D/current")"
want_listing=$(listing)
want_current=$(readlink "$D/current")
want_tags=$(disk_tags "$IMG")
want_store=$(store)
mkdir "$WORKDIR/export" "$WORKDIR/store"
cp "$STATE/snapshots/d1"/*.xml "$WORKDIR/store/"
i=0
while read -r _ path; do
    i=$((i + 1))
    cp "$path" "$WORKDIR/export/$(printf %02d $i)-$(basename "$(dirname "$path")").xml"
done < <(find "$D" -path "$D/.by-name" -prune -o -name metadata.xml -printf '%d %p\n' | sort -n)
assert_eq "metadata.xml files copied out" 5 "$i"

check "unlinking .forget (rm, find -delete) succeeds and changes nothing"
before=$(fingerprint d1)
assert_ok rm -f "$D/.forget"
assert_ok find "$D" -maxdepth 1 -name .forget -delete
assert_unchanged "rm .forget" "$before" d1
[ -e "$D/.forget" ] || fail ".forget gone after rm"

check "bad lines: EINVAL with an errors line; unknown snapshot: ENOENT; nothing changes"
for line in "bogus base" "snapshot" "snapshot " "children" "base" "Snapshot base" "snapshot ../x" "snapshot .hidden"; do
    n=$(errors_count d1)
    assert_errno "Invalid argument" put "$D/.forget" "$line"
    assert_unchanged ".forget '$line'" "$before" d1
    assert_new_error ".forget '$line'" d1 "$n" .forget
done
n=$(errors_count d1)
assert_errno "No such file or directory" put "$D/.forget" "snapshot nosuch"
assert_unchanged ".forget of an unknown snapshot" "$before" d1
assert_new_error ".forget of an unknown snapshot" d1 "$n" "nosuch"

check "children base: the whole tree's metadata goes, the disk keeps every snapshot"
assert_ok put "$D/.forget" "children base"
assert_eq "tags after forgetting all" "$want_tags" "$(disk_tags "$IMG")"
assert_eq "snapshot dirs" "" "$(find "$D" -mindepth 1 -maxdepth 1 -type d ! -name .by-name)"
[ ! -e "$D/current" ] || fail "current still exists"
assert_eq "metadata files left" "" "$(ls "$STATE/snapshots/d1")"
check_pattern "$IMG" 0x22

check "writing the copies back to create, parents first, restores everything byte for byte"
for f in "$WORKDIR/export"/*.xml; do
    assert_ok put_file "$D/create" "$f"
done
assert_eq "listing" "$want_listing" "$(listing)"
assert_eq "current" "$want_current" "$(readlink "$D/current")"
assert_eq "tags" "$want_tags" "$(disk_tags "$IMG")"
for f in "$WORKDIR/export"/*.xml; do
    name=$(xmllint --xpath 'string(/domainsnapshot/name)' "$f")
    cmp -s "$f" "$D/.by-name/$name/metadata.xml" ||
        fail "metadata.xml of $name differs after the round trip: $(diff -u "$f" "$D/.by-name/$name/metadata.xml")"
done
assert_eq "STATE/snapshots/d1 files (name, md5)" "$want_store" "$(store)"
for f in "$WORKDIR/store"/*.xml; do
    cmp -s "$f" "$STATE/snapshots/d1/$(basename "$f")" || fail "STATE file $(basename "$f") differs"
done
assert_eq "description of a" 'a & <b> "quoted" description' \
    "$(xmllint --xpath 'string(/domainsnapshot/description)' "$D/base/a/metadata.xml")"

check "revert works on the restored tree"
assert_ok put "$D/base/revert" ""
check_pattern "$IMG" 0x11
assert_ok put "$D/base/a/revert" ""
check_pattern "$IMG" 0x22
assert_eq "current after reverts" base/a "$(readlink "$D/current")"

check "snapshot a: forgotten alone, its children move up to base, current moves to base"
assert_ok put "$D/.forget" "snapshot a"
assert_eq "tags" "$want_tags" "$(disk_tags "$IMG")"
[ -d "$D/base/b" ] && [ -d "$D/base/c" ] || fail "b and c not re-parented to base: $(listing)"
assert_eq "parent of b" base "$(xmllint --xpath 'string(/domainsnapshot/parent/name)' "$D/base/b/metadata.xml")"
assert_eq "current" base "$(readlink "$D/current")"
[ ! -e "$STATE/snapshots/d1/a.xml" ] || fail "a.xml still in STATE"
say "a redefined from its copy (it names its old parent base and its creationTime)"
cp "$WORKDIR/export/02-a.xml" "$WORKDIR/a.xml"
assert_ok put_file "$D/create" "$WORKDIR/a.xml"
cmp -s "$WORKDIR/a.xml" "$D/base/a/metadata.xml" || fail "a's metadata differs after redefine"

check "children-only base: base stays, its descendants' metadata goes"
assert_ok put "$D/.forget" "children-only base"
assert_eq "tags" "$want_tags" "$(disk_tags "$IMG")"
assert_eq "snapshots left" base "$(ls "$D/.by-name" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "current" base "$(readlink "$D/current")"

check "a name with spaces: the rest of the line is the name"
mkdir "$D/current/my snap  two"
assert_ok put "$D/.forget" "snapshot my snap  two"
[ ! -e "$D/base/my snap  two" ] || fail "'my snap  two' still listed"
disk_tags "$IMG" | grep -q "my snap  two" || fail "the tag 'my snap  two' left the disk"

umount_fs

check "-o ro: EROFS"
mount_fs -o ro
before=$(fingerprint d1)
assert_errno "Read-only file system" put "$D/.forget" "snapshot base"
assert_unchanged ".forget on a ro mount" "$before" d1
umount_fs

if command -v qemu-system-x86_64 >/dev/null; then
    check "a running domain: metadata goes, the live disk keeps its tag"
    mount_fs
    assert_ok put "$D/state" start
    wait_state d1 running
    assert_running d1 running
    mkdir "$D/current/live1"
    tags=$(disk_tags "$IMG")
    cp "$D/base/live1/metadata.xml" "$WORKDIR/live1.xml"
    assert_ok put "$D/.forget" "snapshot live1"
    [ ! -e "$D/base/live1" ] || fail "live1 still listed"
    assert_eq "tags of the running domain's disk" "$tags" "$(disk_tags "$IMG")"
    assert_ok put_file "$D/create" "$WORKDIR/live1.xml"
    cmp -s "$WORKDIR/live1.xml" "$D/base/live1/metadata.xml" || fail "live1 differs after redefine"
    assert_ok put "$D/state" destroy
    wait_state d1 shutoff
    umount_fs
fi
say "PASS"
