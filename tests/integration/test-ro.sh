#!/usr/bin/env bash
# test-ro: with -o ro every mutation fails with EROFS and browsing works.
source "$(dirname "$0")/../lib/common.sh"

make_domain d1
mount_fs
D=$MNT/d1
mkdir "$D/s1"
mkdir "$D/current/s2"
umount_fs

mount_fs -o ro
before=$(fingerprint d1)

check "browsing works read-only"
assert_eq "find" "./s1 ./s1/metadata.xml ./s1/revert ./s1/s2 ./s1/s2/metadata.xml ./s1/s2/revert" \
    "$(cd "$D" && find . -mindepth 1 -path ./.by-name -prune -o -path './s1*' -print | sort | tr '\n' ' ' | sed 's/ $//')"
assert_contains "metadata.xml" "$(cat "$D/s1/s2/metadata.xml")" "<name>s2</name>"
assert_eq "current" "s1/s2" "$(readlink "$D/current" | sed 's|^\./||')"
assert_eq "state" shutoff "$(cat "$D/state")"
cat "$D/domain.xml" "$D/errors" "$D/job" >/dev/null || fail "cannot read domain files on a ro mount"
ls -lR "$MNT" >/dev/null || fail "ls -lR on a ro mount"

check "every mutation fails with EROFS"
assert_errno "Read-only file system" mkdir "$D/current/new"
assert_errno "Read-only file system" rmdir "$D/s1/s2"
assert_errno "Read-only file system" rm -r "$D/s1"
assert_errno "Read-only file system" put "$D/s1/revert" ""
assert_errno "Read-only file system" put "$D/s1/revert" force
assert_errno "Read-only file system" put "$D/create" "<domainsnapshot><name>x</name></domainsnapshot>"
assert_errno "Read-only file system" put "$D/state" start
assert_errno "Read-only file system" rm "$D/s1/metadata.xml"
assert_unchanged "mutations on a ro mount" "$before" d1

umount_fs
say "PASS"
