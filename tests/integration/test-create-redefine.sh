#!/usr/bin/env bash
# test-create-redefine: XML written to create makes a snapshot; every
# metadata.xml written back, parents first, restores the tree and current.
source "$(dirname "$0")/../lib/common.sh"
require_cmd xmllint

make_domain d1
mount_fs
D=$MNT/d1
IMG=$(image d1)

check "a <domainsnapshot> with name and description written to create"
cat >"$WORKDIR/new.xml" <<'XML'
<domainsnapshot>
  <name>withdesc</name>
  <description>hello from create</description>
</domainsnapshot>
XML
assert_ok put_file "$D/create" "$WORKDIR/new.xml"
[ -d "$D/withdesc" ] || fail "no directory withdesc after create"
assert_eq "description" "hello from create" \
    "$(xmllint --xpath 'string(/domainsnapshot/description)' "$D/withdesc/metadata.xml")"
assert_eq "tags" withdesc "$(disk_tags "$IMG")"
assert_eq "current" "$D/withdesc" "$(cd "$D/current" && pwd -P)"

check "a document over 4 KiB written by a libxml2 tool (xmllint --format: 4095-byte blocks) is taken whole"
{
    printf '<domainsnapshot><name>long</name><description>'
    head -c 9000 /dev/zero | tr '\0' 'x'
    printf '</description></domainsnapshot>\n'
} >"$WORKDIR/long.xml"
assert_ok bash -c 'xmllint --format "$1" > "$2"' _ "$WORKDIR/long.xml" "$D/create"
assert_eq "description of long" 9000 \
    "$(xmllint --xpath 'string(/domainsnapshot/description)' "$D/.by-name/long/metadata.xml" | tr -d '\n' | wc -c)"
assert_ok rmdir "$D/.by-name/long"

check "create with a taken name that is not a redefine: EEXIST"
n=$(errors_count d1)
before=$(fingerprint d1)
assert_errno "File exists" put_file "$D/create" "$WORKDIR/new.xml"
assert_unchanged "create of a taken name" "$before" d1
assert_new_error "create of a taken name" d1 "$n"

check "create with XML libvirt's schema refuses (an unknown element, a bad state): EINVAL"
for bad in "<domainsnapshot><name>u1</name><futureThing/></domainsnapshot>" \
    "<domainsnapshot><name>u2</name><state>sleeping</state></domainsnapshot>" \
    "<domainsnapshot><name>u3</name><disks><disk name='vda' snapshot='sometimes'/></disks></domainsnapshot>"; do
    n=$(errors_count d1)
    before=$(fingerprint d1)
    assert_errno "Invalid argument" put "$D/create" "$bad"
    assert_unchanged "create of $bad" "$before" d1
    assert_new_error "create of $bad" d1 "$n"
done
assert_contains "errors names the unknown element" "$(cat "$D/errors")" "futureThing"
assert_eq "tags after the refused creates" withdesc "$(disk_tags "$IMG")"

check "the metadata.xml snaptreefs writes validates (and so redefines)"
xmllint --noout --relaxng /usr/share/libvirt/schemas/domainsnapshot.rng "$D/withdesc/metadata.xml" 2>/dev/null ||
    fail "withdesc/metadata.xml does not validate"

say "build: withdesc -> a -> {b, c}, current b"
mkdir "$D/current/a"
mkdir "$D/current/b"
put "$D/withdesc/a/revert" ""
mkdir "$D/current/c"
put "$D/withdesc/a/b/revert" ""

listing() { (cd "$D" && find . -path ./.by-name -prune -o -print | sort); }
want_listing=$(listing)
want_current=$(readlink "$D/current")
want_tags=$(disk_tags "$IMG")
mkdir "$WORKDIR/export"
i=0
while read -r depth path; do
    i=$((i + 1))
    cp "$path" "$WORKDIR/export/$(printf %02d $i)-$(basename "$(dirname "$path")").xml"
done < <(find "$D" -path "$D/.by-name" -prune -o -name metadata.xml -printf '%d %p\n' | sort -n)
say "exported $(ls "$WORKDIR/export" | tr '\n' ' ')"
assert_eq "exported files" 4 "$i"

check "after moving STATE/snapshots aside, reconcile reports tags without metadata"
umount_fs
mv "$STATE/snapshots" "$WORKDIR/snapshots.orig"
mount_fs
deadline=$(( $(date +%s) + 10 * TIME_SCALE ))
until grep -q withdesc "$D/errors"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "no errors line naming the orphan tag withdesc; errors: $(cat "$D/errors")"
    sleep 0.1
done
say "errors after restart: $(cat "$D/errors")"
assert_eq "tags untouched by reconcile" "$want_tags" "$(disk_tags "$IMG")"
assert_eq "no snapshot directory" "create domain.xml errors job state" \
    "$(ls "$D" | sort | tr '\n' ' ' | sed 's/ $//')"

check "writing every metadata.xml back to create, parents first, restores the tree"
for f in "$WORKDIR/export"/*.xml; do
    assert_ok put_file "$D/create" "$f"
done
assert_eq "listing" "$want_listing" "$(listing)"
assert_eq "current" "$want_current" "$(readlink "$D/current")"
assert_eq "tags" "$want_tags" "$(disk_tags "$IMG")"
for f in "$WORKDIR/export"/*.xml; do
    name=$(xmllint --xpath 'string(/domainsnapshot/name)' "$f")
    diff -u "$f" "$D/.by-name/$name/metadata.xml" >"$LOGS/diff" ||
        fail "metadata.xml of $name differs after the round trip: $(cat "$LOGS/diff")"
done
for f in "$WORKDIR/snapshots.orig/d1"/*.xml; do
    [ -f "$STATE/snapshots/d1/$(basename "$f")" ] || fail "STATE/snapshots/d1/$(basename "$f") not restored"
done

check "a redefine of an existing snapshot with <active>1</active> makes it current"
cp "$D/withdesc/a/c/metadata.xml" "$WORKDIR/c.xml"
sed -i -e '/<active>/d' -e 's|</domainsnapshot>|  <active>1</active>\n</domainsnapshot>|' "$WORKDIR/c.xml"
if [ "$(grep -c '<active>' "$WORKDIR/c.xml")" -eq 1 ]; then
    assert_ok put_file "$D/create" "$WORKDIR/c.xml"
    assert_eq "current after redefine with active" "$D/withdesc/a/c" "$(cd "$D/current" && pwd -P)"
    assert_eq "tags unchanged by redefine" "$want_tags" "$(disk_tags "$IMG")"
else
    fail "could not add <active>1</active> to c's metadata"
fi

check "a redefine that gives only name and creationTime keeps the disks and domain the snapshot recorded (as libvirt does)"
ct=$(xmllint --xpath 'string(/domainsnapshot/creationTime)' "$D/withdesc/a/metadata.xml")
cp "$D/withdesc/a/metadata.xml" "$WORKDIR/a-before.xml"
# Without <parent> a redefine makes it a root, as in libvirt.
assert_ok put "$D/create" "<domainsnapshot><name>a</name><creationTime>$ct</creationTime></domainsnapshot>"
[ -d "$D/a" ] || fail "a is not a root after a redefine without <parent>"
for what in "/domainsnapshot/disks/disk/@name" "/domainsnapshot/domain/name" \
    "/domainsnapshot/state" "/domainsnapshot/memory/@snapshot"; do
    assert_eq "$what of a after a partial redefine" \
        "$(xmllint --xpath "string($what)" "$WORKDIR/a-before.xml")" \
        "$(xmllint --xpath "string($what)" "$D/a/metadata.xml")"
done

check "a redefine cannot turn an offline snapshot into a live one (libvirt: EINVAL), nothing changes"
before=$(fingerprint d1)
n=$(errors_count d1)
assert_errno "Invalid argument" put "$D/create" \
    "<domainsnapshot><name>a</name><state>running</state><creationTime>$ct</creationTime></domainsnapshot>"
assert_unchanged "redefine of a as running" "$before" d1
assert_new_error "redefine of a as running" d1 "$n" "online and offline"

check "rmdir after a partial redefine still deletes the snapshot from the disk"
assert_ok rmdir "$D/a"
case " $(disk_tags "$IMG") " in
    *" a "*) fail "tag a left on the disk after rmdir: $(disk_tags "$IMG")" ;;
esac

umount_fs
say "PASS"
