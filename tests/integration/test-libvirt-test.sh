#!/usr/bin/env bash
# test-libvirt-test: -o backend=libvirt on test:///default (libvirt's in-process
# test driver: domain `test`, running, no snapshots; only snaptreefs's own
# connection sees its changes): browse, mkdir, rmdir, rm -r, revert, state,
# create, .forget, bad input and the names that need escaping.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/libvirt.sh"
require_cmd virsh xmllint

say "usage: the libvirt form needs a URI and takes one operand besides the mountpoint (a source it ignores, as fstab gives one)"
assert_errno "needs -o uri" "$SNAPTREEFS" -f -o backend=libvirt "$MNT"
assert_errno "invalid argument" "$SNAPTREEFS" -f -o backend=libvirt,uri=test:///default none "$MNT" extra
assert_errno "needs a local libvirt URI" "$SNAPTREEFS" -f -o backend=libvirt,uri=qemu+ssh://nohost.invalid/system,disks "$MNT"
assert_errno "unknown backend" "$SNAPTREEFS" -f -o backend=xen "$STATE" "$MNT"
out=$("$SNAPTREEFS" --help 2>&1)
assert_contains "--help" "$out" "-o backend=libvirt,uri=URI"

mount_libvirt test:///default
D=$MNT/test

say "browse: the test driver's domain, running, no snapshots"
assert_eq "domains" "test" "$(ls "$MNT")"
assert_eq "state" "running" "$(cat "$D/state")"
assert_contains "domain.xml" "$(cat "$D/domain.xml")" "<name>test</name>"
[ ! -e "$D/current" ] || fail "current exists without snapshots"

say "mkdir: live snapshots, each child of the current one"
mkdir "$D/s1"
mkdir "$D/current/s2"
mkdir "$D/current/s3"
assert_eq "current" "s1/s2/s3" "$(readlink "$D/current")"
assert_errno "Operation not permitted" mkdir "$D/s1/other"
assert_errno "File exists" mkdir "$D/current/s1"
assert_errno "Invalid argument" mkdir "$D/current/.dot"
x=$D/s1/s2/s3/metadata.xml
assert_eq "s3 name" s3 "$(xmllint --xpath 'string(/domainsnapshot/name)' "$x")"
assert_eq "s3 parent" s2 "$(xmllint --xpath 'string(/domainsnapshot/parent/name)' "$x")"
assert_eq "s3 active" 1 "$(xmllint --xpath 'string(/domainsnapshot/active)' "$x")"
assert_eq "s3 state" running "$(xmllint --xpath 'string(/domainsnapshot/state)' "$x")"
assert_eq "s2 inactive" "" "$(xmllint --xpath 'string(/domainsnapshot/active)' "$D/s1/s2/metadata.xml")"
assert_eq "metadata.xml size" "$(cat "$x" | wc -c)" "$(stat -c %s "$x")"
xmllint --noout --relaxng /usr/share/libvirt/schemas/domainsnapshot.rng "$x" 2>/dev/null ||
    fail "metadata.xml does not validate"
assert_eq "by-name" "s1 s2 s3" "$(ls "$D/.by-name" | xargs)"
assert_eq "links" 3 "$(stat -c %h "$D/s1")"

say "revert: libvirt's flags, state follows"
put "$D/s1/revert" "paused"
assert_eq "state after revert paused" paused "$(cat "$D/state")"
assert_eq "current after revert" s1 "$(readlink "$D/current")"
assert_eq "s1 active" 1 "$(xmllint --xpath 'string(/domainsnapshot/active)' "$D/s1/metadata.xml")"
assert_errno "Invalid argument" put "$D/s1/revert" "running paused"
put "$D/s1/s2/revert" ""
assert_eq "state after plain revert" running "$(cat "$D/state")"

say "state: pause, resume, destroy, start; libvirt's refusals are EBUSY"
put "$D/state" pause
assert_eq "paused" paused "$(cat "$D/state")"
put "$D/state" resume
assert_errno "Device or resource busy" put "$D/state" start
put "$D/state" destroy
assert_eq "shutoff" shutoff "$(cat "$D/state")"
assert_errno "Device or resource busy" put "$D/state" pause
put "$D/state" start
assert_eq "running again" running "$(cat "$D/state")"

say "rmdir: children move up to the parent (virDomainSnapshotDelete(0))"
rmdir "$D/s1/s2"
[ -d "$D/s1/s3" ] || fail "s3 did not move under s1"
assert_eq "s3 parent now" s1 "$(xmllint --xpath 'string(/domainsnapshot/parent/name)' "$D/s1/s3/metadata.xml")"
assert_eq "current after deleting it" s1 "$(readlink "$D/current")"

say "rm -r: the subtree goes, silently"
mkdir "$D/current/k1"
put "$D/s1/k1/revert" ""
mkdir "$D/current/k2"
assert_ok rm -r "$D/s1/k1"
[ ! -e "$D/s1/k1" ] || fail "k1 still there"
assert_eq "left" "s1 s3" "$(ls "$D/.by-name" | xargs)"
assert_ok rm -r "$D/s1"/*/
assert_eq "children only" "s1" "$(ls "$D/.by-name" | xargs)"

say "create: a new snapshot with a description, then a redefine"
put "$D/create" "<domainsnapshot><name>c1</name><description>first</description></domainsnapshot>"
assert_eq "c1 description" first "$(xmllint --xpath 'string(/domainsnapshot/description)' "$D/current/metadata.xml")"
assert_errno "File exists" put "$D/create" "<domainsnapshot><name>c1</name></domainsnapshot>"
sed 's#<description>first</description>#<description>second</description>#' "$D/s1/c1/metadata.xml" >"$WORKDIR/c1.xml"
put_file "$D/create" "$WORKDIR/c1.xml"
assert_eq "c1 redefined" second "$(xmllint --xpath 'string(/domainsnapshot/description)' "$D/s1/c1/metadata.xml")"
assert_errno "Invalid argument" put "$D/create" "<domainsnapshot><name>x"
assert_contains "errors" "$(cat "$D/errors")" "create:"

say "create: XML with a DOCTYPE (entities) is refused before libvirt sees it"
before=$(ls -R "$D/.by-name" | sha256sum)
n=$(wc -l <"$D/errors")
printf '<!DOCTYPE d [<!ENTITY e "ent">]>\n<domainsnapshot><name>&e;</name></domainsnapshot>' >"$WORKDIR/dtd.xml"
assert_errno "Invalid argument" put_file "$D/create" "$WORKDIR/dtd.xml"
[ "$(wc -l <"$D/errors")" -gt "$n" ] || fail "no errors line for the DOCTYPE"
assert_contains "errors" "$(tail -n 1 "$D/errors")" "DOCTYPE"
assert_eq "no snapshot made" "$before" "$(ls -R "$D/.by-name" | sha256sum)"

say "names libvirt allows and the mount escapes: '/', '%', a leading '.', reserved"
for n in "a/b" "50%" ".hid" "revert" "metadata.xml"; do
    printf '<domainsnapshot><name>%s</name></domainsnapshot>' "$n" >"$WORKDIR/n.xml"
    put_file "$D/create" "$WORKDIR/n.xml"
done
assert_eq "escaped names" "%2Ehid %6Detadata.xml %72evert 50%25 a%2Fb c1 s1" \
    "$(ls "$D/.by-name" | LC_ALL=C sort | xargs)"
assert_eq "real name inside" "a/b" "$(xmllint --xpath 'string(/domainsnapshot/name)' "$D/.by-name/a%2Fb/metadata.xml")"
assert_eq "chain" "s1/c1/a%2Fb/50%25/%2Ehid/%72evert/%6Detadata.xml" "$(readlink "$D/current")"
mkdir "$D/current/%2Fetc"
assert_eq "mkdir with an escape" "/etc" "$(xmllint --xpath 'string(/domainsnapshot/name)' "$D/current/metadata.xml")"
assert_errno "Invalid argument" mkdir "$D/current/bad%zz"
assert_errno "Invalid argument" mkdir "$D/current/%41"
assert_contains "errors" "$(cat "$D/errors")" "starts no %XX escape"
put "$D/.by-name/a%2Fb/revert" ""
assert_eq "revert through an escaped name" "s1/c1/a%2Fb" "$(readlink "$D/current")"
rmdir "$D/current/50%25"
assert_eq "rmdir escaped" "%2Ehid" "$(ls "$D/current" | grep -v -e metadata.xml -e revert | xargs)"

say ".forget: METADATA_ONLY; the test driver refuses it with libvirt's message"
assert_errno "Invalid argument" put "$D/.forget" "snapshot c1"
assert_contains "errors" "$(cat "$D/errors")" "unsupported flags"
[ -d "$D/s1/c1" ] || fail "c1 went"

say "find -delete removes everything, silently"
assert_ok find "$D/s1" -delete
assert_eq "no snapshots" "" "$(ls "$D/.by-name" | xargs)"
[ ! -e "$D/current" ] || fail "current left"

umount_fs

say "-o ro: every mutation is EROFS"
mount_libvirt test:///default -o ro
assert_errno "Read-only file system" mkdir "$MNT/test/s1"
umount_fs
check_log
