#!/usr/bin/env bash
# test-external: external snapshots of a shut-off domain: mkdir makes an
# overlay, revert makes a new overlay on the snapshot's image (the old
# branch stays whole), rmdir merges by commit or, where the image is shared
# by branches, by rebasing each branch; every snapshot keeps its data.
source "$(dirname "$0")/../lib/common.sh"

DISK_SNAPSHOT=external make_domain e1
mount_fs
D=$MNT/e1
BASE=$(image e1)

active() { xmllint --xpath 'string(//disk/source/@file)' "$D/domain.xml"; }
frozen() { xmllint --xpath 'string(/domainsnapshot/domain/devices/disk/source/@file)' "$1/metadata.xml"; }
overlay() { xmllint --xpath 'string(/domainsnapshot/disks/disk/source/@file)' "$1/metadata.xml"; }
revert_to() { put "$1/revert" "" || fail "revert to $1"; }
cur() { (cd "$D/current" && pwd -P) || echo "<no current>"; }
images() { ls "$STATE/images" | sort | tr '\n' ' ' | sed 's/ $//'; }
# snapshot_holds DIR BYTE: the data of snapshot DIR (its frozen image and
# the chain under it) reads as BYTE.
snapshot_holds() { check_pattern "$(frozen "$1")" "$2"; }
check_all_images() {
    local f
    for f in "$STATE"/images/*.qcow2; do qcow2_check "$f"; done
}

write_pattern "$BASE" 0xa1

check "mkdir takes an external snapshot: a new overlay becomes the active layer"
assert_ok mkdir "$D/base"
O1=$(active)
[ "$O1" != "$BASE" ] || fail "the domain still writes to $BASE"
[ -f "$O1" ] || fail "overlay $O1 missing"
assert_eq "overlay in <disks>" "$O1" "$(overlay "$D/base")"
assert_eq "frozen file in <domain>" "$BASE" "$(frozen "$D/base")"
assert_eq "overlay backing" "$BASE" "$(qemu-img info --output=json -U "$O1" | jq -r '."full-backing-filename"')"
assert_contains "metadata.xml" "$(cat "$D/base/metadata.xml")" "<disk name='vda' snapshot='external'>"
assert_contains "STATE/domains/e1.xml" "$(cat "$STATE/domains/e1.xml")" "$O1"
[ -z "$(disk_tags "$BASE")" ] || fail "an internal snapshot was taken too: $(disk_tags "$BASE")"
xmllint --noout --relaxng /usr/share/libvirt/schemas/domainsnapshot.rng "$D/base/metadata.xml" 2>/dev/null ||
    fail "metadata.xml does not validate"

say "build: base(A) -> mid(B) -> c1(C); revert to mid; -> c2(D)"
write_pattern "$(active)" 0xb2
mkdir "$D/current/mid"
write_pattern "$(active)" 0xc3
mkdir "$D/current/c1"
C1_ACTIVE=$(active)
write_pattern "$C1_ACTIVE" 0xee

check "revert to mid puts a new overlay on mid's image and keeps c1's branch whole"
revert_to "$D/base/mid"
N1=$(active)
assert_eq "backing of the new overlay" "$(frozen "$D/base/mid")" \
    "$(qemu-img info --output=json -U "$N1" | jq -r '."full-backing-filename"')"
check_pattern "$N1" 0xb2
assert_eq "current" "$D/base/mid" "$(cur)"
[ ! -e "$C1_ACTIVE" ] || fail "the abandoned active layer $C1_ACTIVE of c1 was kept"
snapshot_holds "$D/base/mid/c1" 0xc3
write_pattern "$N1" 0xd4
mkdir "$D/current/c2"
for s in base:0xa1 base/mid:0xb2 base/mid/c1:0xc3 base/mid/c2:0xd4; do
    snapshot_holds "$D/${s%%:*}" "${s##*:}"
done
check_all_images

check "rmdir of mid, whose image two branches rest on, rebases both and keeps their data"
MID_IMG=$(frozen "$D/base/mid")
assert_ok rmdir "$D/base/mid"
[ ! -e "$MID_IMG" ] || fail "mid's image $MID_IMG is still there"
[ -d "$D/base/c1" ] && [ -d "$D/base/c2" ] || fail "c1 and c2 not re-parented under base"
for s in base:0xa1 base/c1:0xc3 base/c2:0xd4; do
    snapshot_holds "$D/${s%%:*}" "${s##*:}"
done
check_pattern "$(active)" 0xd4
check_all_images

check "revert to c1 and to base give their data"
revert_to "$D/base/c1"
check_pattern "$(active)" 0xc3
revert_to "$D/base"
check_pattern "$(active)" 0xa1
revert_to "$D/base/c2"
check_pattern "$(active)" 0xd4

check "rmdir of the current leaf commits the active layer into its image"
write_pattern "$(active)" 0x5a 2M 1M
C2_IMG=$(frozen "$D/base/c2")
assert_ok rmdir "$D/base/c2"
assert_eq "active layer after the commit" "$C2_IMG" "$(active)"
check_pattern "$(active)" 0xd4
check_pattern "$(active)" 0x5a 2M 1M
assert_eq "current" "$D/base" "$(cur)"
check_all_images

check "rm -r of the whole tree leaves the domain's data and no stray file"
mkdir "$D/current/x" 2>/dev/null || true
rm -r "$D/base" || fail "rm -r base"
[ -z "$(ls "$STATE/snapshots/e1" 2>/dev/null)" ] || fail "snapshot files left: $(ls "$STATE/snapshots/e1")"
check_pattern "$(active)" 0xd4
check_pattern "$(active)" 0x5a 2M 1M
assert_eq "images left" "$(basename "$(active)")" "$(images)"
check_all_images

check "an internal snapshot in a domain with external ones is refused"
mkdir "$D/ext"
assert_errno "Invalid argument" put "$D/create" "<domainsnapshot><name>int</name><disks><disk name='vda' snapshot='internal'/></disks></domainsnapshot>"
assert_contains "errors" "$(cat "$D/errors")" "mixing internal and external"

check "an overlay path outside the disk's directory is refused"
assert_errno "Invalid argument" put "$D/create" "<domainsnapshot><name>evil</name><disks><disk name='vda' snapshot='external'><source file='/tmp/evil.qcow2'/></disk></disks></domainsnapshot>"
[ ! -e /tmp/evil.qcow2 ] || fail "/tmp/evil.qcow2 was created"

umount_fs
check_log
echo "ok"
