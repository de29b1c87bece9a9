#!/usr/bin/env bash
# test-external-live: external snapshots of a running domain: overlays by
# blockdev-snapshot-sync with the memory in a file (or disk-only), revert
# that restores the memory, and deletes by block-commit (active layer:
# pivot) and block-stream while the guest runs; every snapshot keeps the
# data the guest had written when it was taken.
source "$(dirname "$0")/../lib/common.sh"
require_qemu_system
require_cmd python3

DISK_SNAPSHOT=external make_domain e2
mount_fs
D=$MNT/e2

active() { xmllint --xpath 'string(//disk/source/@file)' "$D/domain.xml"; }
frozen() { xmllint --xpath 'string(/domainsnapshot/domain/devices/disk/source/@file)' "$1/metadata.xml"; }
memfile() { xmllint --xpath 'string(/domainsnapshot/memory/@file)' "$1/metadata.xml"; }
qemu_active() { qmp e2 '{"execute":"query-block"}' | jq -r '.[0].inserted.file'; }
revert_to() { put "$1/revert" "${2:-}" || fail "revert to $1: $(tail -1 "$D/errors")"; }
cur() { (cd "$D/current" && pwd -P) || echo "<no current>"; }
guest_write() { hmp_io e2 0 "write -P $1 ${2:-0} ${3:-1M}"; }
guest_holds() { hmp_io e2 0 "read -P $1 ${2:-0} ${3:-1M}"; }
snapshot_holds() { check_pattern "$(frozen "$1")" "$2"; }

assert_ok put "$D/state" start
assert_running e2 running
guest_write 0xa1

check "mkdir while running: memory to a file, the guest moves to a new overlay and keeps running"
assert_ok mkdir "$D/s1"
assert_eq "state" running "$(state_of e2)"
assert_eq "QEMU's active layer" "$(active)" "$(qemu_active)"
assert_contains "metadata" "$(cat "$D/s1/metadata.xml")" "<state>running</state>"
assert_contains "metadata" "$(cat "$D/s1/metadata.xml")" "<memory snapshot='external' file="
[ -s "$(memfile "$D/s1")" ] || fail "memory file $(memfile "$D/s1") is empty"
xmllint --noout --relaxng /usr/share/libvirt/schemas/domainsnapshot.rng "$D/s1/metadata.xml" 2>/dev/null ||
    fail "metadata.xml does not validate"
guest_holds 0xa1
guest_write 0xb2

check "a disk-only snapshot (memory snapshot='no') of a running domain"
assert_ok put "$D/create" "<domainsnapshot><name>s2</name><memory snapshot='no'/></domainsnapshot>"
assert_contains "metadata" "$(cat "$D/s1/s2/metadata.xml")" "<state>disk-snapshot</state>"
assert_eq "state" running "$(state_of e2)"
guest_write 0xc3
assert_ok mkdir "$D/current/s3"
guest_write 0xd4

check "revert to s1 restores its memory and disks; s2 and s3 keep their data"
revert_to "$D/s1"
assert_running e2 running
guest_holds 0xa1
assert_eq "current" "$D/s1" "$(cur)"
snapshot_holds "$D/s1/s2" 0xb2
snapshot_holds "$D/s1/s2/s3" 0xc3
guest_write 0xe5
assert_ok mkdir "$D/current/t1"

check "revert to the disk-only s2 stops QEMU (no memory), paused on request"
revert_to "$D/s1/s2" paused
assert_running e2 paused
guest_holds 0xb2
assert_ok put "$D/state" resume

check "rmdir of s2 while running: its image is shared by two branches, each is streamed"
S2_IMG=$(frozen "$D/s1/s2")
assert_ok rmdir "$D/s1/s2"
[ ! -e "$S2_IMG" ] || fail "s2's image $S2_IMG is still there"
assert_eq "QEMU's active layer" "$(active)" "$(qemu_active)"
guest_holds 0xb2
snapshot_holds "$D/s1/s3" 0xc3
snapshot_holds "$D/s1/t1" 0xe5
snapshot_holds "$D/s1" 0xa1

check "rmdir of the current snapshot while running: block-commit of the active layer, pivot"
guest_write 0x5a 2M 1M
assert_ok mkdir "$D/current/u1"
guest_write 0x6b 4M 1M
U1_IMG=$(frozen "$D/current")
ACTIVE_BEFORE=$(active)
assert_ok rmdir "$(cur)"
assert_eq "active layer after the commit" "$U1_IMG" "$(active)"
assert_eq "QEMU's active layer" "$U1_IMG" "$(qemu_active)"
[ ! -e "$ACTIVE_BEFORE" ] || fail "the committed overlay $ACTIVE_BEFORE is still there"
guest_holds 0xb2
guest_holds 0x5a 2M 1M
guest_holds 0x6b 4M 1M
assert_eq "state" running "$(state_of e2)"

check "rm -r of the whole tree while running keeps what the guest sees"
rm -r "$D/s1" || fail "rm -r s1: $(tail -3 "$D/errors")"
[ -z "$(ls "$STATE/snapshots/e2" 2>/dev/null)" ] || fail "snapshot files left: $(ls "$STATE/snapshots/e2")"
guest_holds 0xb2
guest_holds 0x5a 2M 1M
guest_holds 0x6b 4M 1M
assert_eq "QEMU's active layer" "$(active)" "$(qemu_active)"
ls "$STATE/images"/*.mem >/dev/null 2>&1 && fail "memory files left: $(ls "$STATE/images")"

assert_ok put "$D/state" destroy
assert_shutoff e2
for f in "$STATE"/images/*.qcow2; do qcow2_check "$f"; done
check_pattern "$(active)" 0x6b 4M 1M

umount_fs
check_log
echo "ok"
