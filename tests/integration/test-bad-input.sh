#!/usr/bin/env bash
# test-bad-input: what is written to create that is broken or contradicts the
# tree or the disks is refused (EINVAL, EEXIST for a taken name) with a line
# in errors, and changes nothing: STATE and every disk's snapshot table are
# compared before and after.
source "$(dirname "$0")/../lib/common.sh"

make_domain d1 vda vdb
mount_fs
D=$MNT/d1
mkdir "$D/base"
mkdir "$D/current/mid"
mkdir "$D/current/top"
cp "$D/base/metadata.xml" "$WORKDIR/base.xml"
cp "$D/base/mid/metadata.xml" "$WORKDIR/mid.xml"

# everything: STATE's metadata files, the journal, and qemu-img snapshot -l of each disk.
everything() {
    (cd "$STATE" && find domains snapshots journal -type f -print0 2>/dev/null | sort -z | xargs -0 md5sum)
    for img in "$STATE/images"/*.qcow2; do
        qemu-img snapshot -l -U "$img" | sed 's/ [0-9:.]* *[0-9:.]* *$//'
    done
    readlink "$D/current"
}
# The old current snapshot's file loses <active> durably after mkdir's
# reply, on the domain's worker: wait until STATE stops changing.
prev=""
for _ in $(seq 50); do
    now=$(everything)
    [ "$now" = "$prev" ] && break
    prev=$now
    sleep 0.1
done
# refuse ERRNO_TEXT WHAT ERRORS_TEXT FILE: writing FILE to create fails so,
# leaves a line with ERRORS_TEXT, and changes nothing.
refuse() {
    local before n
    before=$(everything)
    n=$(errors_count d1)
    assert_errno "$1" put_file "$D/create" "$4"
    assert_eq "$2: nothing changed" "$before" "$(everything)"
    assert_new_error "$2" d1 "$n" "$3"
    say "$2: $(tail -n 1 "$D/errors")"
}
# edit SRC SED_SCRIPT: a copy of SRC edited, in WORKDIR/edited.xml.
edit() { sed "$2" "$1" >"$WORKDIR/edited.xml"; echo "$WORKDIR/edited.xml"; }

check "truncated XML"
head -c 120 "$WORKDIR/mid.xml" >"$WORKDIR/trunc.xml"
printf '\n</domainsnapshot>\n' >>"$WORKDIR/trunc.xml"
refuse "Invalid argument" "truncated XML" "does not parse" "$WORKDIR/trunc.xml"
printf '<domainsnapshot><name>x</name>' >"$WORKDIR/trunc2.xml"
refuse "Invalid argument" "XML cut before its end tag" "parse" "$WORKDIR/trunc2.xml"

check "a parent that does not exist"
refuse "Invalid argument" "missing parent" "parent nosuch not found" \
    "$(edit "$WORKDIR/mid.xml" 's|<name>base</name>|<name>nosuch</name>|')"

check "a cycle: base redefined as a child of its own descendant"
refuse "Invalid argument" "cycle" "own ancestor" \
    "$(edit "$WORKDIR/base.xml" 's|<creationTime>|<parent>\n    <name>top</name>\n  </parent>\n  <creationTime>|')"

check "a name that clashes (a new snapshot, no creationTime)"
printf '<domainsnapshot>\n  <name>mid</name>\n</domainsnapshot>\n' >"$WORKDIR/clash.xml"
refuse "File exists" "name clash" "already exists" "$WORKDIR/clash.xml"

check "an invalid name"
printf '<domainsnapshot>\n  <name>.hidden</name>\n</domainsnapshot>\n' >"$WORKDIR/badname.xml"
refuse "Invalid argument" "invalid name" "invalid snapshot name" "$WORKDIR/badname.xml"

check "a redefine the disks contradict"
refuse "Invalid argument" "no such tag on the disks" "does not exist on the disks" \
    "$(edit "$WORKDIR/mid.xml" 's|<name>mid</name>|<name>ghost</name>|')"
refuse "Invalid argument" "a disk the domain lacks" "names disk 'vdz'" \
    "$(edit "$WORKDIR/mid.xml" "s|<disk name='vdb'|<disk name='vdz'|")"
refuse "Invalid argument" "an offline snapshot redefined as live" "online and offline" \
    "$(edit "$WORKDIR/mid.xml" "s|<state>shutoff</state>|<state>running</state>|; s|<memory snapshot='no'/>|<memory snapshot='internal'/>|")"
# The metadata of top forgotten (its tag stays), a redefine of it as live
# claims memory no disk holds; then top comes back as it was.
cp "$D/base/mid/top/metadata.xml" "$WORKDIR/top.xml"
assert_ok put "$D/.forget" "snapshot top"
refuse "Invalid argument" "memory the images do not hold" "no disk holds a VM state" \
    "$(edit "$WORKDIR/top.xml" "s|<state>shutoff</state>|<state>running</state>|; s|<memory snapshot='no'/>|<memory snapshot='internal'/>|")"
assert_ok put_file "$D/create" "$WORKDIR/top.xml"
assert_eq "current after top came back" base/mid/top "$(readlink "$D/current")"
qemu-img snapshot -d mid "$(image d1 vdb)" || fail "cannot drop mid from vdb"
refuse "Invalid argument" "a tag missing on one disk" "disk vdb" "$WORKDIR/mid.xml"
qemu-img snapshot -c mid "$(image d1 vdb)" || fail "cannot put mid back on vdb"

check "after all that, a correct redefine still works"
assert_ok put_file "$D/create" "$WORKDIR/mid.xml"
umount_fs
say "PASS"
