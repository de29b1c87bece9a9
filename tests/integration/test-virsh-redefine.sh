#!/usr/bin/env bash
# test-virsh-redefine: libvirt accepts our metadata.xml with
# `virsh snapshot-create --redefine` (test:///default driver, in one process).
source "$(dirname "$0")/../lib/common.sh"
require_cmd virsh xmllint

make_domain d1
DISK_SNAPSHOT=external make_domain e1
mount_fs
D=$MNT/d1

say "build: base -> s1 -> s2, base -> b1, current s2"
mkdir "$D/base"
mkdir "$D/current/s1"
put "$D/base/revert" ""
mkdir "$D/current/b1"
put "$D/base/s1/revert" ""
mkdir "$D/current/s2"

say "build, with external snapshots: ebase -> es1, ebase -> eb1, current es1"
E=$MNT/e1
mkdir "$E/ebase"
mkdir "$E/current/es1"
put "$E/ebase/revert" ""
mkdir "$E/current/eb1"
put "$E/ebase/es1/revert" ""

# redefine_cmds DOM: virsh commands that define DOM and redefine every
# metadata.xml of it, parents first.
redefine_cmds() {
    local dom=$1 depth path name flag out
    cp "$MNT/$dom/domain.xml" "$WORKDIR/$dom.domain.xml"
    out="define $WORKDIR/$dom.domain.xml"
    while read -r depth path; do
        name=$(basename "$(dirname "$path")")
        cp "$path" "$WORKDIR/$name.xml"
        # libvirt only honours <active>1</active> together with --current.
        flag=""
        [ "$(xmllint --xpath 'string(/domainsnapshot/active)' "$path")" = 1 ] && flag=--current
        out="$out; snapshot-create $dom --redefine $flag $WORKDIR/$name.xml"
    done < <(find "$MNT/$dom" -path "$MNT/$dom/.by-name" -prune -o -name metadata.xml -printf '%d %p\n' | sort -n)
    printf '%s' "$out"
}
cmds="$(redefine_cmds d1); $(redefine_cmds e1)"
cmds="$cmds; echo @elist=; snapshot-list e1 --name; echo @ecurrent=; snapshot-current e1 --name"
cmds="$cmds; echo @eparent=; snapshot-parent e1 eb1; echo @eend"
# virsh prints the answers of one-word commands without a newline when
# several commands run in one process: mark each answer.
cmds="$cmds; echo @list=; snapshot-list d1 --name; echo @current=; snapshot-current d1 --name"
cmds="$cmds; echo @parent_s2=; snapshot-parent d1 s2; echo @parent_b1=; snapshot-parent d1 b1; echo @end"
umount_fs

check "virsh -c test:///default accepts every metadata.xml with --redefine"
rc=0
out=$(virsh -q -c test:///default "$cmds" 2>"$LOGS/virsh.err") || rc=$?
say "virsh output: $(echo "$out" | tr '\n' ' ')"
[ "$rc" -eq 0 ] || fail "virsh failed ($rc): $(cat "$LOGS/virsh.err")"
if grep -q '^error' "$LOGS/virsh.err"; then
    fail "virsh reported: $(cat "$LOGS/virsh.err")"
fi
flat=$(echo "$out" | tr '\n' ' ')
field() { sed -n "s/.*@$1= *\([^@]*\)@.*/\1/p" <<<"$flat" | tr -s ' ' | sed 's/^ //; s/ $//'; }
listed=$(field list | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')
assert_eq "snapshots known to libvirt" "b1 base s1 s2" "$listed"
assert_eq "libvirt's current snapshot" s2 "$(field current)"
assert_eq "libvirt's parent of s2" s1 "$(field parent_s2)"
assert_eq "libvirt's parent of b1" base "$(field parent_b1)"

elisted=$(field elist | tr ' ' '\n' | sort | tr '\n' ' ' | sed 's/ $//')
assert_eq "external snapshots known to libvirt" "eb1 ebase es1" "$elisted"
assert_eq "libvirt's current external snapshot" es1 "$(field ecurrent)"
assert_eq "libvirt's parent of eb1" ebase "$(field eparent)"

say "PASS"
