#!/usr/bin/env bash
# test-undefine: DOM/.undefine removes a domain (libvirt's undefine with
# SNAPSHOTS_METADATA, and with its storage for `full`); rmdir and rm -r
# never remove a domain; an interrupted undefine is finished at start.
source "$(dirname "$0")/../lib/common.sh"

make_domain d1
make_domain d2 vda vdb
make_domain d3
make_domain d4
# d2's vda is an overlay on a base image its definition does not name.
make_image "$STATE/images/base.qcow2"
qemu-img create -q -f qcow2 -b "$STATE/images/base.qcow2" -F qcow2 "$(image d2)" ||
    fail "cannot create the overlay"
# d3 also uses d2's vdb as a second disk.
sed -i "s|</devices>|<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='images/d2-vdb.qcow2'/><target dev='vdc'/></disk></devices>|" \
    "$STATE/domains/d3.xml"
make_image "$STATE/images/unrelated.qcow2"
mount_fs

for d in d1 d2 d4; do
    mkdir "$MNT/$d/s1"
    mkdir "$MNT/$d/current/s2"
done

check ".undefine is hidden, mode 0600, reads as empty"
[ -z "$(ls "$MNT/d1" | grep -F .undefine)" ] || fail "plain ls lists .undefine"
ls -a "$MNT/d1" | grep -qx .undefine || fail "ls -a does not list .undefine"
assert_eq ".undefine mode" 600 "$(stat -c %a "$MNT/d1/.undefine")"
assert_eq ".undefine content" "" "$(cat "$MNT/d1/.undefine")"

check "rmdir DOM fails (EPERM) and changes nothing"
before=$(fingerprint d1)
assert_errno "Operation not permitted" rmdir "$MNT/d1"
assert_unchanged "rmdir d1" "$before" d1
[ -f "$STATE/domains/d1.xml" ] || fail "rmdir removed the definition"

check "unlinking .undefine succeeds and changes nothing"
assert_ok rm -f "$MNT/d1/.undefine"
assert_unchanged "rm .undefine" "$before" d1

check "bad words: EINVAL, an errors line, nothing changes"
for words in "" bogus Full "metadata full" "full metadata" "delete"; do
    n=$(errors_count d1)
    assert_errno "Invalid argument" put "$MNT/d1/.undefine" "$words"
    assert_unchanged ".undefine '$words'" "$before" d1
    assert_new_error ".undefine '$words'" d1 "$n" .undefine
done

check "-o ro: EROFS"
umount_fs
mount_fs -o ro
assert_errno "Read-only file system" put "$MNT/d1/.undefine" metadata
assert_unchanged ".undefine on a ro mount" "$before" d1
umount_fs
mount_fs

if command -v qemu-system-x86_64 >/dev/null; then
    check "a running or paused domain: EBUSY, an errors line, nothing changes"
    assert_ok put "$MNT/d1/state" start
    wait_state d1 running
    assert_running d1 running
    for st in running paused; do
        [ "$st" = paused ] && { assert_ok put "$MNT/d1/state" pause; wait_state d1 paused; }
        before=$(fingerprint d1)
        n=$(errors_count d1)
        assert_errno "Device or resource busy" put "$MNT/d1/.undefine" metadata
        assert_unchanged ".undefine of a $st domain" "$before" d1
        assert_new_error ".undefine of a $st domain" d1 "$n" "not shut off"
        [ -f "$STATE/domains/d1.xml" ] || fail "definition removed while $st"
    done
    assert_ok put "$MNT/d1/state" destroy
    wait_state d1 shutoff
    assert_shutoff d1
fi

check "metadata: the domain and its snapshot metadata go, the disk keeps its snapshots"
tags=$(disk_tags "$(image d1)")
assert_ok put "$MNT/d1/.undefine" metadata
[ ! -e "$MNT/d1" ] || fail "$MNT/d1 still exists"
ls "$MNT" | grep -qx d1 && fail "ls still lists d1"
[ ! -e "$STATE/domains/d1.xml" ] || fail "STATE/domains/d1.xml still there"
[ ! -e "$STATE/snapshots/d1" ] || fail "STATE/snapshots/d1 still there"
[ ! -e "$STATE/journal/d1.json" ] || fail "STATE/journal/d1.json still there"
assert_eq "d1's disk keeps its tags" "$tags" "$(disk_tags "$(image d1)")"

check "full: definition, metadata and the images it names go; others stay"
assert_ok put "$MNT/d2/.undefine" full
[ ! -e "$MNT/d2" ] || fail "$MNT/d2 still exists"
[ ! -e "$(image d2)" ] || fail "d2's vda image still there"
[ -e "$(image d2 vdb)" ] || fail "d2's vdb, which d3 names too, was deleted"
[ -e "$STATE/images/base.qcow2" ] || fail "the backing file d2 does not name was deleted"
[ -e "$STATE/images/unrelated.qcow2" ] || fail "an unrelated image was deleted"
[ -e "$(image d3)" ] || fail "d3's image was deleted"
[ ! -e "$STATE/domains/d2.xml" ] || fail "STATE/domains/d2.xml still there"
[ ! -e "$STATE/snapshots/d2" ] || fail "STATE/snapshots/d2 still there"
assert_eq "domains left" "d3 d4" "$(ls "$MNT" | tr '\n' ' ' | sed 's/ $//')"

check "rm -r DOM: the snapshots inside go (the user asked), the domain stays"
rc=0
rm -r "$MNT/d4" 2>"$LOGS/rm.err" || rc=$?
[ "$rc" -ne 0 ] || fail "rm -r d4 succeeded"
say "rm -r d4 said: $(head -n 3 "$LOGS/rm.err" | tr '\n' ' ')"
[ -d "$MNT/d4" ] || fail "rm -r removed the domain directory"
[ -f "$STATE/domains/d4.xml" ] || fail "rm -r removed d4's definition"
assert_eq "d4's snapshots after rm -r" "" "$(ls "$MNT/d4/.by-name")"
assert_eq "d4's tags after rm -r" "" "$(disk_tags "$(image d4)")"
[ -e "$(image d4)" ] || fail "rm -r removed d4's image"

umount_fs

check "after a restart the removed domains stay removed"
mount_fs
assert_eq "domains" "d3 d4" "$(ls "$MNT" | tr '\n' ' ' | sed 's/ $//')"
umount_fs

check "an undefine interrupted before its definition went is finished at start"
make_domain d5
mkdir -p "$STATE/snapshots/d5" "$STATE/journal"
img5=$(image d5)
printf '{"op":"undefine","domain":"d5","snapshot":"full","disks":["%s"]}' "$img5" \
    >"$STATE/journal/d5.json"
mount_fs
deadline=$(( $(date +%s) + 10 * TIME_SCALE ))
while [ -e "$STATE/domains/d5.xml" ] || [ -e "$MNT/d5" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "the interrupted undefine of d5 was not finished"
    sleep 0.1
done
[ ! -e "$img5" ] || fail "d5's image, named in the intent, is still there"
[ ! -e "$STATE/journal/d5.json" ] || fail "d5's intent is still there"
umount_fs

check "an intent left after the definition went is cleared at start, touching no image"
make_image "$STATE/images/d6-vda.qcow2"
printf '{"op":"undefine","domain":"d6","snapshot":"full","disks":["%s"]}' "$STATE/images/d6-vda.qcow2" \
    >"$STATE/journal/d6.json"
mount_fs
[ ! -e "$STATE/journal/d6.json" ] || fail "the orphan intent of d6 is still there"
[ -e "$STATE/images/d6-vda.qcow2" ] || fail "the orphan intent deleted an image"
umount_fs

check "full keeps a file another domain opens as its backing or by another spelling"
make_domain e1 vda vdb
make_domain e2
make_domain e3
# e2 is a linked clone: its own disk is an overlay on e1's vda.
qemu-img create -q -f qcow2 -b "$(image e1)" -F qcow2 "$(image e2)" ||
    fail "cannot create the linked clone"
# e3 names e1's vdb through a symlink and through "..".
mkdir -p "$STATE/images/sub"
ln -s "$(image e1 vdb)" "$STATE/images/sub/e1-vdb-link.qcow2"
sed -i "s|</devices>|<disk type='file' device='disk'><driver name='qemu' type='qcow2'/><source file='images/sub/e1-vdb-link.qcow2'/><target dev='vdc'/></disk></devices>|" \
    "$STATE/domains/e3.xml"
mount_fs
assert_ok put "$MNT/e1/.undefine" full
[ ! -e "$MNT/e1" ] || fail "$MNT/e1 still exists"
[ -e "$(image e1)" ] || fail "e1's vda, the backing file of linked clone e2, was deleted"
[ -e "$(image e1 vdb)" ] || fail "e1's vdb, which e3 names through a symlink, was deleted"
assert_ok qemu-img check -q "$(image e2)"
umount_fs
say "PASS"
