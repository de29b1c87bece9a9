#!/usr/bin/env bash
# test-corrupt-metadata: a snapshot file that does not parse (emptied by a
# power cut, or garbage) is never dropped unseen: the snapshot stays
# listed, rebuilt from its disk tags, the bad file is kept beside it as
# NAME.xml.corrupt, and errors and the log say so.
source "$(dirname "$0")/../lib/common.sh"
require_cmd xmllint

make_domain d1 vda vdb
mount_fs
D=$MNT/d1
SNAPS=$STATE/snapshots/d1
assert_ok mkdir "$D/base"
assert_ok mkdir "$D/base/s1"
assert_ok mkdir "$D/base/s1/s2"
umount_fs

xpath() { xmllint --xpath "string($2)" "$1" 2>/dev/null; }

# restart_check NAME WHAT TAGS: after a restart NAME is listed, its file parses
# and names it, the bad file is kept, errors and the log say so.
restart_check() {
    local name=$1 what=$2 tags=$3 created
    mount_fs
    [ -d "$D/.by-name/$name" ] || fail "$what: $name is not listed after the restart"
    assert_eq "$what: rebuilt file names it" "$name" "$(xpath "$SNAPS/$name.xml" /domainsnapshot/name)"
    created=$(xpath "$D/.by-name/$name/metadata.xml" /domainsnapshot/creationTime)
    assert_eq "$what: creationTime from the tag" \
        "$(qemu-img info --output=json -U "$(image d1)" | jq -r --arg n "$name" '.snapshots[] | select(.name == $n) | ."date-sec"')" \
        "$created"
    [ -e "$SNAPS/$name.xml.corrupt" ] || fail "$what: the bad file was not kept as $name.xml.corrupt"
    assert_contains "$what: errors" "$(cat "$D/errors")" "snapshot file '$SNAPS/$name.xml' does not parse"
    assert_contains "$what: errors" "$(cat "$D/errors")" "rebuilt from its disk tags"
    assert_contains "$what: log" "$(cat "$LOGS/snaptreefs.log")" "$name.xml' does not parse"
    assert_eq "$what: tags of vdb" "$tags" "$(disk_tags "$(image d1 vdb)")"
}

check "s1's file emptied (a rename that outran its data in a power cut): s1 is kept"
cp "$SNAPS/s1.xml" "$WORKDIR/s1.orig"
: >"$SNAPS/s1.xml"
restart_check s1 "empty s1.xml" "base s1 s2"
assert_eq "the empty file is kept as it was" 0 "$(stat -c %s "$SNAPS/s1.xml.corrupt")"
[ -d "$D/s1/s2" ] || fail "s2 is no longer under s1"
assert_eq "s2 still current" s2 "$(basename "$(readlink "$D/current")")"
assert_ok rmdir "$D/s1/s2"
assert_ok mkdir "$D/current/s3"
umount_fs

check "base's file is garbage: base is kept"
printf 'garbage <domainsnapshot' >"$SNAPS/base.xml"
restart_check base "garbage base.xml" "base s1 s3"
assert_eq "the garbage is kept" "garbage <domainsnapshot" "$(cat "$SNAPS/base.xml.corrupt")"
assert_ok rmdir "$D/base"
umount_fs

check "an unparsable file whose snapshot no disk holds stays in place, said in errors"
printf 'junk' >"$SNAPS/gone.xml"
mount_fs
assert_contains "errors" "$(cat "$D/errors")" "no disk holds snapshot 'gone': the file is left as it is"
[ -e "$SNAPS/gone.xml" ] || fail "gone.xml was removed"
umount_fs
say "ok"
