#!/usr/bin/env bash
# test-mkdir: mkdir takes a snapshot only in the current snapshot's directory;
# bad and taken names are refused and change nothing.
source "$(dirname "$0")/../lib/common.sh"
require_cmd xmllint

RNG=/usr/share/libvirt/schemas/domainsnapshot.rng
[ -r "$RNG" ] || skip "no $RNG (libvirt0)"

make_domain d1 vda vdb
make_domain d2
mount_fs
D=$MNT/d1

# agree: the disks, STATE/snapshots and the mount name the same snapshots.
agree() {
    local want=$1 img meta names
    for img in "$(image d1 vda)" "$(image d1 vdb)"; do
        assert_eq "qemu-img tags of $(basename "$img")" "$want" "$(disk_tags "$img")"
    done
    meta=$(ls "$STATE/snapshots/d1" 2>/dev/null | sed 's/\.xml$//' | sort | tr '\n' ' ' | sed 's/ $//')
    assert_eq "STATE/snapshots/d1" "$want" "$meta"
    names=$(ls "$D/.by-name" | sort | tr '\n' ' ' | sed 's/ $//')
    assert_eq ".by-name" "$want" "$names"
}

# metadata_ok: every metadata.xml validates; only the current one is active.
metadata_ok() {
    local cur f name active
    cur=$(xmllint --xpath 'string(/domainsnapshot/name)' "$D/current/metadata.xml")
    while IFS= read -r f; do
        xmllint --noout --relaxng "$RNG" "$f" 2>"$LOGS/xmllint.err" ||
            fail "$f does not validate against domainsnapshot.rng: $(cat "$LOGS/xmllint.err")"
        name=$(xmllint --xpath 'string(/domainsnapshot/name)' "$f")
        assert_eq "<name> of $f" "$(basename "$(dirname "$f")")" "$name"
        active=$(xmllint --xpath 'string(/domainsnapshot/active)' "$f")
        if [ "$name" = "$cur" ]; then
            assert_eq "<active> of the current snapshot $name" 1 "$active"
        else
            [ "$active" != 1 ] || fail "$name is not current but has <active>1</active>"
        fi
        assert_eq "<state> of $name" shutoff "$(xmllint --xpath 'string(/domainsnapshot/state)' "$f")"
        [ -n "$(xmllint --xpath 'string(/domainsnapshot/creationTime)' "$f")" ] ||
            fail "$name has no <creationTime>"
        local pdir parent
        pdir=$(basename "$(dirname "$(dirname "$f")")")
        parent=$(xmllint --xpath 'string(/domainsnapshot/parent/name)' "$f")
        if [ "$pdir" = d1 ]; then
            assert_eq "<parent> of root $name" "" "$parent"
        else
            assert_eq "<parent> of $name" "$pdir" "$parent"
        fi
    done < <(find "$D" -path "$D/.by-name" -prune -o -name metadata.xml -print)
}

check "mkdir in the domain directory when there is no current snapshot"
[ ! -e "$D/current" ] || fail "current exists before any snapshot"
assert_ok mkdir "$D/s1"
agree "s1"
assert_eq "current" "$D/s1" "$(cd "$D/current" && pwd -P)"
[ -f "$STATE/snapshots/d1/s1.xml" ] || fail "no STATE/snapshots/d1/s1.xml"
metadata_ok

check "mkdir current/NEW works and nests under the current snapshot"
assert_ok mkdir "$D/current/s2"
agree "s1 s2"
[ -d "$D/s1/s2" ] || fail "s2 is not under s1"
assert_ok mkdir "$D/s1/s2/s3"
agree "s1 s2 s3"
metadata_ok

check "mkdir outside the current snapshot's directory: EPERM, nothing changes"
for dir in "$D" "$D/s1" "$D/s1/s2"; do
    before=$(fingerprint d1)
    n=$(errors_count d1)
    assert_errno "Operation not permitted" mkdir "$dir/nope"
    assert_unchanged "mkdir $dir/nope" "$before" d1
    assert_new_error "mkdir $dir/nope" d1 "$n" nope
    [ ! -e "$dir/nope" ] || fail "$dir/nope exists after EPERM"
done
agree "s1 s2 s3"

check "bad names: EINVAL, a line in errors, nothing changes"
long201=$(printf 'a%.0s' $(seq 1 201))
bad_in_domain=(".hidden" "..." "$long201" $'tab\there' $'bell\x07' $'nl\nx' $'\xff\xfe'
               metadata.xml revert disks current)
before=$(fingerprint d2)
for name in "${bad_in_domain[@]}"; do
    n=$(errors_count d2)
    assert_errno "Invalid argument" mkdir "$MNT/d2/$name"
    assert_new_error "mkdir d2/$(printf %q "$name")" d2 "$n"
    assert_unchanged "mkdir d2/$(printf %q "$name")" "$before" d2
done
# Reserved names that are not entries of a snapshot directory reach mkdir there.
before=$(fingerprint d1)
for name in domain.xml state current create errors job disks; do
    n=$(errors_count d1)
    assert_errno "Invalid argument" mkdir "$D/current/$name"
    assert_new_error "mkdir current/$name" d1 "$n"
    assert_unchanged "mkdir current/$name" "$before" d1
done

check "each refused name adds exactly one printable, UTF-8 line to errors and the log"
n=$(errors_count d2)
logn=$(wc -l <"$DAEMON_LOG")
hostile=($'nl\nx' $'cr\rx' $'esc\x1b[31mred' $'\xff\xfe' $'del\x7f')
for name in "${hostile[@]}"; do
    assert_errno "Invalid argument" mkdir "$MNT/d2/$name"
done
assert_eq "errors lines added by ${#hostile[@]} refused names" \
    $((n + ${#hostile[@]})) "$(errors_count d2)"
if grep -q $'[\x01-\x09\x0b-\x1f\x7f]' "$MNT/d2/errors"; then
    fail "errors holds raw control characters: $(cat -A "$MNT/d2/errors")"
fi
iconv -f UTF-8 -t UTF-8 "$MNT/d2/errors" >/dev/null 2>&1 ||
    fail "errors is not valid UTF-8: $(cat -A "$MNT/d2/errors")"
assert_eq "log lines added by ${#hostile[@]} refused names" \
    $((logn + ${#hostile[@]})) "$(wc -l <"$DAEMON_LOG")"

check "a 200-byte UTF-8 name is valid"
long200=$(printf '\xc3\xa9%.0s' $(seq 1 100))
assert_eq "byte length" 200 "$(printf '%s' "$long200" | wc -c)"
assert_ok mkdir "$MNT/d2/$long200"
assert_eq "d2 tags" "$long200" "$(disk_tags "$(image d2)")"
assert_ok rmdir "$MNT/d2/$long200"
assert_eq "d2 tags after rmdir" "" "$(disk_tags "$(image d2)")"

check "an existing name anywhere in the domain's tree: EEXIST, nothing changes"
for name in s1 s2 s3; do
    before=$(fingerprint d1)
    n=$(errors_count d1)
    assert_errno "File exists" mkdir "$D/current/$name"
    assert_unchanged "mkdir current/$name" "$before" d1
    assert_new_error "mkdir current/$name" d1 "$n" "$name"
done
agree "s1 s2 s3"

check "the same name in another domain is fine"
assert_ok mkdir "$MNT/d2/s1"
assert_eq "d2 tags" "s1" "$(disk_tags "$(image d2)")"
agree "s1 s2 s3"
metadata_ok

check "mkdir current/NEW right after the previous mkdir: current is never stale (30 in a row)"
for i in $(seq 1 30); do
    out=$(mkdir "$MNT/d2/current/chain$i" 2>&1) ||
        fail "mkdir d2/current/chain$i right after chain$((i - 1)): expected success, got: $out (current -> $(readlink "$MNT/d2/current"))"
done
assert_eq "depth of d2's chain" "chain30" "$(basename "$(readlink "$MNT/d2/current")")"

check "a name a disk holds without metadata (kept by .forget, or found at start): EEXIST, never a second tag"
# qcow2 takes a second tag of a name it holds and finds the older one
# first: the new snapshot would revert to the old data, and its rmdir
# would delete the older tag, which the user kept.
cp "$MNT/d2/current/metadata.xml" "$WORKDIR/chain30.xml"
assert_ok put "$MNT/d2/.forget" "snapshot chain30"
before=$(fingerprint d2)
n=$(errors_count d2)
assert_errno "File exists" mkdir "$MNT/d2/current/chain30"
assert_errno "File exists" put "$MNT/d2/create" "<domainsnapshot><name>chain30</name></domainsnapshot>"
assert_unchanged "mkdir and create of the forgotten chain30" "$before" d2
assert_new_error "mkdir of the forgotten chain30" d2 "$n" chain30
assert_ok put_file "$MNT/d2/create" "$WORKDIR/chain30.xml"
assert_eq "d2 current after chain30's redefine" chain30 "$(basename "$(readlink "$MNT/d2/current")")"
umount_fs
qemu-img snapshot -c ghost "$(image d1 vdb)" || fail "cannot add a tag to vdb"
mount_fs
before=$(fingerprint d1)
assert_errno "File exists" mkdir "$D/current/ghost"
assert_unchanged "mkdir of a name a disk held at start" "$before" d1
assert_contains "errors names ghost" "$(tail -n 1 "$D/errors")" "'ghost' with no metadata"
qemu-img snapshot -d ghost "$(image d1 vdb)" || fail "cannot drop the tag ghost"

check "images are consistent"
for img in "$STATE"/images/*.qcow2; do qcow2_check "$img"; done

umount_fs
say "PASS"
