#!/usr/bin/env bash
# test-any-depth: nightly chains (DESIGN "Any depth"). 400 snapshots made
# with `mkdir current/NAME`, a retention of 30 kept with `rmdir
# .by-name/OLDEST`; then a chain of 1,000, far past PATH_MAX, where
# current, revert, mkdir, the flat view, find and rm -r all still work.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/views.sh"
source "$(dirname "$0")/../lib/chain.sh"
require_cmd python3 qemu-system-x86_64
N_RETAINED=${N_RETAINED:-400}
N_DEEP=${N_DEEP:-1000}

make_domain r1
mount_fs
D=$MNT/r1
say "$N_RETAINED nightly snapshots, keeping the last 30"
kept=()
for i in $(seq 1 "$N_RETAINED"); do
    name=$(chain_name "$i")
    if [ "$i" -eq 1 ]; then
        mkdir "$D/$name" || fail "mkdir $name"
    else
        mkdir "$D/current/$name" || fail "night $i: mkdir current/$name"
    fi
    kept+=("$name")
    if [ ${#kept[@]} -gt 30 ]; then
        rmdir "$D/.by-name/${kept[0]}" || fail "night $i: rmdir .by-name/${kept[0]}"
        kept=("${kept[@]:1}")
    fi
done

check "exactly the last 30, in qemu-img's list and in both views, each the child of the one before"
want=$(printf '%s\n' "${kept[@]}" | sort | tr '\n' ' ' | sed 's/ $//')
assert_eq "tags" "$want" "$(disk_tags "$(image r1)")"
assert_eq "ls .by-name" "$want" "$(ls "$D/.by-name" | tr '\n' ' ' | sed 's/ $//')"
assert_eq "nested directories" "$want" "$(nested_dirs "$D" | sed 's|.*/||' | sort | tr '\n' ' ' | sed 's/ $//')"
prev=""
for name in "${kept[@]}"; do
    assert_eq "parent of $name" "$prev" \
        "$(xmllint --xpath 'string(/domainsnapshot/parent/name)' "$D/.by-name/$name/metadata.xml")"
    prev=$name
done
assert_eq "current" "${kept[29]}" "$(basename "$(readlink "$D/current")")"
check_views "$D" "after the retention"
umount_fs

say "a chain of $N_DEEP: tags over QMP, metadata in the state directory's format"
make_domain c1
IMG=$(image c1)
write_pattern "$IMG" 0x5a
mount_fs
mkdir "$MNT/c1/seed"
cp "$MNT/c1/seed/metadata.xml" "$WORKDIR/template.xml"
rmdir "$MNT/c1/seed"
umount_fs
chain_tags "$IMG" "$N_DEEP"
chain_metadata c1 "$N_DEEP" "$WORKDIR/template.xml"
first=$(chain_name 1)
last=$(chain_name "$N_DEEP")

mount_fs
D=$MNT/c1
check "readlink current: .by-name/LAST (the nested path is over 1024 bytes)"
assert_eq "readlink current" ".by-name/$last" "$(readlink "$D/current")"
assert_contains "cat current/metadata.xml" "$(cat "$D/current/metadata.xml")" "<name>$last</name>"
assert_contains "the deepest, flat" "$(cat "$D/.by-name/$last/metadata.xml")" "<active>1</active>"
assert_contains "the shallowest, flat" "$(cat "$D/.by-name/$first/metadata.xml")" "<name>$first</name>"
assert_eq "the shallowest's children, nested" "metadata.xml $(chain_name 2) revert" \
    "$(ls "$D/$first" | sort | tr '\n' ' ' | sed 's/ $//')"

check "echo > current/revert restores the disk (qemu-io)"
write_pattern "$IMG" 0xa5
assert_ok put "$D/current/revert" ""
check_pattern "$IMG" 0x5a

check "mkdir current/NEW at depth $N_DEEP"
assert_ok mkdir "$D/current/tonight"
assert_eq "parent of tonight" "$last" \
    "$(xmllint --xpath 'string(/domainsnapshot/parent/name)' "$D/.by-name/tonight/metadata.xml")"
assert_eq "readlink current" ".by-name/tonight" "$(readlink "$D/current")"
assert_contains "tags" "$(disk_tags "$IMG")" tonight
assert_eq "the start-up reconcile found the images and the metadata agree" "" "$(cat "$D/errors")"

check "find lists each snapshot once, from the top of the mount"
found=$(cd "$MNT" && find . -name metadata.xml | sed 's|/metadata.xml$||; s|^\./\([^/]*\)/.*/|\1/|; s|^\./||' | sort)
assert_eq "metadata.xml found in the mount" \
    "$(( $(ls "$MNT/r1/.by-name" | wc -l) + $(ls "$D/.by-name" | wc -l) ))" "$(printf '%s\n' "$found" | wc -l)"
assert_eq "duplicates" "" "$(printf '%s\n' "$found" | uniq -d)"
assert_eq "c1's snapshots found" "$(ls "$D/.by-name" | sort)" \
    "$(cd "$D" && find . -name metadata.xml | sed 's|/metadata.xml$||; s|.*/||' | sort)"

check "rm -r of the chain's root deletes all of it"
assert_ok rm -r "$D/$first"
assert_eq "tags after rm -r" "" "$(disk_tags "$IMG")"
assert_eq "ls .by-name after rm -r" "" "$(ls "$D/.by-name")"
[ ! -e "$D/current" ] || fail "current still there"
umount_fs
say "PASS"
