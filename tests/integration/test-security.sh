#!/usr/bin/env bash
# test-security: the mount is the mounting user's alone unless -o
# allow_other, default_permissions is on and no control file is writable
# by others; names cannot escape STATE or reach a command line as options;
# a snapshot's XML cannot name disk files outside the domain's image
# directories; external entities, external DTDs, XInclude and entity
# blow-ups are refused. (test-errors has the file:// entity of a private
# file and the billion laughs.)
source "$(dirname "$0")/../lib/common.sh"
require_cmd runuser xmllint

make_domain d1
mount_fs
D=$MNT/d1
assert_ok mkdir "$D/base"
# Another user must be able to reach MNT for the kernel to refuse it.
chmod 755 "$WORKDIR"
as_nobody() { runuser -u nobody -- "$@"; }
# put_xml FILE TEXT: TEXT in one write (bash's echo writes line by line).
put_xml() {
    printf '%s\n' "$2" >"$WORKDIR/doc.xml"
    put_file "$1" "$WORKDIR/doc.xml"
}

check "mount options: default_permissions, no allow_other"
opts=$(awk -v m="$MNT" '$2 == m {print $4}' /proc/mounts)
say "mount options: $opts"
assert_contains "mount options" "$opts" "default_permissions"
case ",$opts," in *,allow_other,*) fail "allow_other without -o allow_other" ;; esac

check "another user can neither read nor write the mount"
assert_errno "Permission denied" as_nobody ls "$MNT"
assert_errno "Permission denied" as_nobody cat "$D/base/metadata.xml"
assert_errno "Permission denied" as_nobody bash -c "echo start > '$D/state'"
assert_errno "Permission denied" as_nobody mkdir "$D/base/x"

check "modes: nothing is writable by group or others"
while read -r mode path; do
    [ $((8#$mode & 8#022)) -eq 0 ] || fail "$path has mode $mode"
done < <(find "$MNT" ! -type l -printf '%m %p\n')
assert_eq "create" 600 "$(stat -c %a "$D/create")"
assert_eq "revert" 600 "$(stat -c %a "$D/base/revert")"
assert_eq "state" 644 "$(stat -c %a "$D/state")"
assert_eq "metadata.xml" 444 "$(stat -c %a "$D/base/metadata.xml")"
assert_eq "owner" root "$(stat -c %U "$D/base/metadata.xml")"

check "-o allow_other: others read, but write nothing"
umount_fs
mount_fs -o allow_other
before=$(fingerprint d1)
assert_eq "nobody lists" "base" "$(as_nobody ls "$D/.by-name")"
as_nobody cat "$D/base/metadata.xml" >/dev/null || fail "nobody cannot read metadata.xml with allow_other"
assert_errno "Permission denied" as_nobody bash -c "echo start > '$D/state'"
assert_errno "Permission denied" as_nobody bash -c "echo > '$D/base/revert'"
assert_errno "Permission denied" as_nobody bash -c "echo '<domainsnapshot/>' > '$D/create'"
assert_errno "Permission denied" as_nobody mkdir "$D/base/x"
assert_errno "Permission denied" as_nobody rmdir "$D/base"
assert_unchanged "writes by another user" "$before" d1
umount_fs
mount_fs

check "names that look like paths or options stay names"
for name in '../evil' '..' '.' 'a/b' '/etc/evil' '.hidden'; do
    n=$(errors_count d1)
    assert_errno "Invalid argument" put "$D/create" "<domainsnapshot><name>$name</name></domainsnapshot>"
    assert_new_error "create $name" d1 "$n"
done
assert_errno "Invalid argument" mkdir "$D/base/.x"
for f in "$STATE/evil.xml" "$STATE/snapshots/evil.xml" /etc/evil "$WORKDIR/evil.xml"; do
    [ ! -e "$f" ] || fail "$f was created"
done
# Handed to qemu-img as the argument of -c/-a/-d, never as an option, and
# never through a shell.
for name in '-l' '--help' '$(touch pwned)' '`touch pwned`' '; touch pwned'; do
    assert_ok mkdir "$D/current/$name"
done
assert_eq "tags" '$(touch pwned) --help -l ; touch pwned `touch pwned` base' \
    "$(qemu-img info --output=json -U "$(image d1)" | jq -r '[.snapshots[].name] | sort | join(" ")')"
assert_ok put "$D/.by-name/-l/revert" ""
assert_ok rm -r -- "$D/base/-l"
assert_eq "tags after rm -r" base "$(disk_tags "$(image d1)")"
[ -z "$(find / -xdev -name pwned 2>/dev/null | head -n 1)" ] || fail "a name ran as a command"
assert_store_agrees d1

check "disk files outside the domain's image directories are refused in create"
outside=$WORKDIR/outside.qcow2
make_image "$outside"
xml=$(cat "$D/base/metadata.xml")
own=$(image d1)
before=$(fingerprint d1)
bad=(
    "${xml//$own//etc/passwd}"
    "${xml//$own/$outside}"
    "${xml//$own/$STATE/images/../../outside.qcow2}"
    "<domainsnapshot><name>ext</name><disks><disk name='vda' snapshot='external'><source file='$outside'/></disk></disks></domainsnapshot>"
)
[ "${bad[0]}" != "$xml" ] || fail "metadata.xml does not name $own"
for x in "${bad[@]}"; do
    n=$(errors_count d1)
    assert_errno "Invalid argument" put_xml "$D/create" "$x"
    assert_new_error "create naming an outside file" d1 "$n" "neither a disk of the domain"
done
assert_unchanged "outside files" "$before" d1
assert_eq "outside image untouched" "" "$(disk_tags "$outside")"
# The domain's own file, and another file in its directory, are fine.
assert_ok put_xml "$D/create" "$xml"
make_image "$STATE/images/other.qcow2"
assert_ok put_xml "$D/create" "${xml//$own/$STATE/images/other.qcow2}"

check "external entities, external DTDs, XInclude and entity blow-ups: EINVAL, nothing read"
xxe_cases=(
    '<!DOCTYPE domainsnapshot [ <!ENTITY x SYSTEM "file:///etc/passwd"> ]><domainsnapshot><name>x1</name><description>&x;</description></domainsnapshot>'
    '<!DOCTYPE domainsnapshot [ <!ENTITY % p SYSTEM "file:///etc/passwd"> %p; ]><domainsnapshot><name>x2</name></domainsnapshot>'
    '<!DOCTYPE domainsnapshot SYSTEM "file:///etc/passwd"><domainsnapshot><name>x3</name></domainsnapshot>'
    "<!DOCTYPE domainsnapshot [ <!ENTITY big \"$(head -c 100000 /dev/zero | tr '\0' a)\"> ]><domainsnapshot><name>x5</name><description>$(for _ in $(seq 200); do printf '&big;'; done)</description></domainsnapshot>"
)
before=$(fingerprint d1)
for x in "${xxe_cases[@]}"; do
    n=$(errors_count d1)
    t0=$(now_ms)
    rc=0
    printf '%s' "$x" >"$WORKDIR/attack.xml"
    out=$(bash -c 'cat "$2" > "$1"' _ "$D/create" "$WORKDIR/attack.xml" 2>&1) || rc=$?
    [ "$rc" -ne 0 ] || fail "accepted: ${x:0:80}"
    assert_contains "refusal of ${x:0:60}" "$out" "Invalid argument"
    assert_new_error "${x:0:60}" d1 "$n"
    [ $(( $(now_ms) - t0 )) -lt $((5000 * TIME_SCALE)) ] || fail "took $(( $(now_ms) - t0 )) ms: ${x:0:60}"
done
assert_unchanged "XML attacks" "$before" d1
# XInclude is not processed: the element inside <description> is ignored.
put_xml "$D/create" '<domainsnapshot xmlns:xi="http://www.w3.org/2001/XInclude"><name>x4</name><description><xi:include href="/etc/passwd" parse="text"/></description></domainsnapshot>' ||
    say "XInclude document refused"
if [ -e "$D/.by-name/x4" ]; then
    assert_eq "x4 description" "" "$(xmllint --xpath 'string(/domainsnapshot/description)' "$D/.by-name/x4/metadata.xml")"
    assert_ok rmdir "$(cd -P "$D/.by-name/x4" && pwd)"
fi
if grep -rqs 'root:x:0:0' "$STATE" "$D/errors" "$D/.by-name"/*/metadata.xml; then
    fail "/etc/passwd leaked into STATE, errors or a snapshot"
fi
umount_fs
say "PASS"
