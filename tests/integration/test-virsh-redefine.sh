#!/usr/bin/env bash
# test-virsh-redefine: libvirt accepts our metadata.xml with
# `virsh snapshot-create --redefine` (test:///default driver, in one process).
source "$(dirname "$0")/../lib/common.sh"
require_cmd virsh xmllint

make_domain d1
mount_fs
D=$MNT/d1

say "build: base -> s1 -> s2, base -> b1, current s2"
mkdir "$D/base"
mkdir "$D/current/s1"
put "$D/base/revert" ""
mkdir "$D/current/b1"
put "$D/base/s1/revert" ""
mkdir "$D/current/s2"

cp "$D/domain.xml" "$WORKDIR/domain.xml"
cmds="define $WORKDIR/domain.xml"
while read -r depth path; do
    name=$(basename "$(dirname "$path")")
    cp "$path" "$WORKDIR/$name.xml"
    # libvirt only honours <active>1</active> together with --current.
    flag=""
    [ "$(xmllint --xpath 'string(/domainsnapshot/active)' "$path")" = 1 ] && flag=--current
    cmds="$cmds; snapshot-create d1 --redefine $flag $WORKDIR/$name.xml"
done < <(find "$D" -path "$D/.by-name" -prune -o -name metadata.xml -printf '%d %p\n' | sort -n)
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

say "PASS"
