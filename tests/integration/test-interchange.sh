#!/usr/bin/env bash
# test-interchange: snaptreefs-import defines a domain and its snapshot tree
# from XML that Debian's libvirt produced (test:///default driver); the mount
# shows what virsh said; snaptreefs-export writes it back, and its virsh
# script rebuilds the same tree in libvirt. Bad input is refused with
# nothing written.
source "$(dirname "$0")/../lib/common.sh"
require_cmd virsh xmllint
TOOLS=$(dirname "$SNAPTREEFS")/../tools
IMPORT=$TOOLS/snaptreefs-import
EXPORT=$TOOLS/snaptreefs-export
[ -x "$IMPORT" ] && [ -x "$EXPORT" ] || fail "tools not built in $TOOLS"

# virsh_run CMDS: one virsh process (each has a fresh test driver).
virsh_run() {
    virsh -q -c test:///default "$1" 2>"$LOGS/virsh.err" || fail "virsh failed: $(cat "$LOGS/virsh.err")"
    ! grep -q '^error' "$LOGS/virsh.err" || fail "virsh reported: $(cat "$LOGS/virsh.err")"
}
# split_marked DIR: stdin holds "@@NAME@@" markers (virsh's echo prints no
# newline); each section goes to DIR/NAME.
split_marked() {
    awk -v dir="$1" '{
        while (match($0, /@@[^@]*@@/)) {
            if (RSTART > 1 && out != "") printf "%s", substr($0, 1, RSTART - 1) > out
            if (out != "") close(out)
            out = dir "/" substr($0, RSTART + 2, RLENGTH - 4)
            printf "" > out
            $0 = substr($0, RSTART + RLENGTH)
        }
        if (out != "" && $0 != "") print $0 > out
    }'
}

SNAPS=(s1 s2 b1 "b 2")
LV=$WORKDIR/libvirt
mkdir -p "$LV/snaps" "$LV/info"
say "libvirt: test -> s1 (description) -> {s2, b1 -> 'b 2'}, current b1"
cmds="snapshot-create-as test s1 --description 'the first one'; snapshot-create-as test s2"
cmds="$cmds; snapshot-revert test s1; snapshot-create-as test b1; snapshot-create-as test 'b 2'"
cmds="$cmds; snapshot-revert test b1; echo @@test.xml@@; dumpxml test"
# snapshot-parent fails on a root: s1 is asked by snapshot-list --roots.
for s in "${SNAPS[@]}"; do
    cmds="$cmds; echo '@@snaps/$s.xml@@'; snapshot-dumpxml test '$s'"
    [ "$s" = s1 ] || cmds="$cmds; echo '@@info/parent-$s@@'; snapshot-parent test '$s'"
done
cmds="$cmds; echo @@info/roots@@; snapshot-list test --roots --name"
cmds="$cmds; echo @@info/current@@; snapshot-current test --name; echo @@info/tree@@; snapshot-list test --tree; echo @@end@@"
virsh_run "$cmds" | split_marked "$LV"
for s in "${SNAPS[@]}"; do
    xmllint --noout "$LV/snaps/$s.xml" || fail "virsh's XML of $s did not split cleanly"
done
assert_eq "libvirt's current" b1 "$(tr -d '\n' <"$LV/info/current")"
assert_eq "libvirt's roots" s1 "$(tr -d '\n' <"$LV/info/roots")"
: >"$LV/info/parent-s1"

check "import: the domain and its tree are defined, no disk is touched"
assert_ok "$IMPORT" --current b1 "$STATE" "$LV/test.xml" "$LV/snaps"
cmp -s "$LV/test.xml" "$STATE/domains/test.xml" || fail "STATE/domains/test.xml is not virsh's dumpxml"
assert_eq "snapshot files" "b 2.xml b1.xml s1.xml s2.xml" "$(ls "$STATE/snapshots/test" | sort | tr '\n' ' ' | sed 's/ $//')"
[ ! -e /guest/diskimage1 ] || fail "a disk appeared"

check "the mount shows what virsh said: tree, current, parents, metadata"
mount_fs -d
D=$MNT/test
assert_eq "tree" "./s1 ./s1/b1 ./s1/b1/b 2 ./s1/s2" \
    "$(cd "$D" && find . -mindepth 1 -type d ! -path './.by-name*' | sort | tr '\n' ' ' | sed 's/ $//')"
assert_eq "current" s1/b1 "$(readlink "$D/current")"
for s in "${SNAPS[@]}"; do
    want=$(tr -d '\n' <"$LV/info/parent-$s")
    got=$(xmllint --xpath 'string(/domainsnapshot/parent/name)' "$D/.by-name/$s/metadata.xml")
    assert_eq "parent of $s" "$want" "$got"
    # metadata.xml is virsh's dumpxml, plus <active>1</active> on the current one.
    grep -v '^  <active>1</active>$' "$D/.by-name/$s/metadata.xml" >"$WORKDIR/meta"
    cmp -s "$LV/snaps/$s.xml" "$WORKDIR/meta" ||
        fail "metadata.xml of $s differs from virsh's: $(diff -u "$LV/snaps/$s.xml" "$WORKDIR/meta")"
done
grep -q '<active>1</active>' "$D/s1/b1/metadata.xml" || fail "b1's metadata.xml lacks <active>"
assert_eq "description" "the first one" "$(xmllint --xpath 'string(/domainsnapshot/description)' "$D/s1/metadata.xml")"
grep -q "ignoring <clock>" "$DAEMON_LOG" || fail "no log line for the ignored <clock> element"
grep -q "ignoring device <interface>" "$DAEMON_LOG" || fail "no log line for the ignored <interface>"
umount_fs

check "export, then the virsh script rebuilds the same tree in libvirt"
assert_ok "$EXPORT" "$STATE" test "$WORKDIR/out"
[ -f "$WORKDIR/out/test.xml" ] && [ -f "$WORKDIR/out/snapshot/test/b 2.xml" ] || fail "export layout: $(find "$WORKDIR/out")"
O=$WORKDIR/out
assert_eq "script" "define '$O/test.xml'
snapshot-create 'test' --redefine '$O/snapshot/test/s1.xml'
snapshot-create 'test' --redefine '$O/snapshot/test/s2.xml'
snapshot-create 'test' --redefine --current '$O/snapshot/test/b1.xml'
snapshot-create 'test' --redefine '$O/snapshot/test/b 2.xml'" "$(cat "$O/redefine.virsh")"
cmds="$(tr '\n' ';' <"$WORKDIR/out/redefine.virsh") echo @@tree@@; snapshot-list test --tree; echo @@current@@; snapshot-current test --name"
for s in "${SNAPS[@]:1}"; do
    cmds="$cmds; echo '@@parent-$s@@'; snapshot-parent test '$s'"
done
cmds="$cmds; echo @@roots@@; snapshot-list test --roots --name; echo @@end@@"
mkdir "$WORKDIR/back"
virsh_run "$cmds" | split_marked "$WORKDIR/back"
assert_eq "snapshot-list --tree" "$(cat "$LV/info/tree")" "$(cat "$WORKDIR/back/tree")"
assert_eq "snapshot-current" b1 "$(tr -d '\n' <"$WORKDIR/back/current")"
assert_eq "roots" s1 "$(tr -d '\n' <"$WORKDIR/back/roots")"
for s in "${SNAPS[@]:1}"; do
    assert_eq "snapshot-parent $s" "$(tr -d '\n' <"$LV/info/parent-$s")" "$(tr -d '\n' <"$WORKDIR/back/parent-$s")"
done

check "export of a native domain: relative disk paths become absolute"
make_domain d1
mount_fs
mkdir "$MNT/d1/base"
mkdir "$MNT/d1/current/top"
umount_fs
assert_ok "$EXPORT" "$STATE" d1 "$WORKDIR/out-d1"
assert_eq "exported source" "$STATE/images/d1-vda.qcow2" \
    "$(xmllint --xpath 'string(//disk/source/@file)' "$WORKDIR/out-d1/d1.xml")"
assert_errno "not empty" "$EXPORT" "$STATE" d1 "$WORKDIR/out-d1"

check "refused with nothing written: a clash, bad names, truncated XML, a missing parent, a cycle, two current"
state_sum() { (cd "$STATE" && find . -path ./images -prune -o -type f -print0 | sort -z | xargs -0 md5sum); }
before=$(state_sum)
# refuse WHAT TEXT ARGS...: the import fails, says TEXT, writes nothing.
refuse() {
    local what=$1 text=$2 out rc=0
    shift 2
    out=$("$IMPORT" "$@" 2>&1) || rc=$?
    [ "$rc" -eq 1 ] || fail "$what: exit $rc, expected 1: $out"
    assert_contains "$what: message" "$out" "$text"
    assert_eq "$what: STATE unchanged" "$before" "$(state_sum)"
    say "$what: $out"
}
refuse "a domain that exists" "already exists" "$STATE" "$LV/test.xml" "$LV/snaps"
sed 's|<name>test</name>|<name>.hidden</name>|' "$LV/test.xml" >"$WORKDIR/badname.xml"
refuse "an invalid domain name" "invalid domain name" "$STATE" "$WORKDIR/badname.xml"
sed 's|<name>test</name>|<name>new</name>|' "$LV/test.xml" >"$WORKDIR/new.xml"
head -c 150 "$LV/snaps/s2.xml" >"$WORKDIR/trunc.xml"
refuse "truncated XML" "does not parse" "$STATE" "$WORKDIR/new.xml" "$LV/snaps/s1.xml" "$WORKDIR/trunc.xml"
head -c 40 "$LV/test.xml" >"$WORKDIR/trunc-dom.xml"
refuse "a truncated domain" "does not parse" "$STATE" "$WORKDIR/trunc-dom.xml"
refuse "a missing parent" "parent 's1' of snapshot 's2' is not among" "$STATE" "$WORKDIR/new.xml" "$LV/snaps/s2.xml"
sed 's|<creationTime>|<parent>\n    <name>b 2</name>\n  </parent>\n  <creationTime>|' "$LV/snaps/s1.xml" >"$WORKDIR/s1-cycle.xml"
refuse "a cycle" "cycle of parents" "$STATE" "$WORKDIR/new.xml" "$WORKDIR/s1-cycle.xml" \
    "$LV/snaps/s2.xml" "$LV/snaps/b1.xml" "$LV/snaps/b 2.xml"
sed 's|<name>s2</name>|<name>.s2</name>|' "$LV/snaps/s2.xml" >"$WORKDIR/s2-bad.xml"
refuse "an invalid snapshot name" "invalid snapshot name" "$STATE" "$WORKDIR/new.xml" "$LV/snaps/s1.xml" "$WORKDIR/s2-bad.xml"
refuse "a snapshot twice" "defined twice" "$STATE" "$WORKDIR/new.xml" "$LV/snaps/s1.xml" "$LV/snaps/s1.xml"
for s in s1 s2; do
    sed 's|</domainsnapshot>|  <active>1</active>\n</domainsnapshot>|' "$LV/snaps/$s.xml" >"$WORKDIR/active-$s.xml"
done
refuse "two current" "both say <active>1</active>" "$STATE" "$WORKDIR/new.xml" "$WORKDIR/active-s1.xml" "$WORKDIR/active-s2.xml"
refuse "--current of an unknown snapshot" "no such snapshot" --current nosuch "$STATE" "$WORKDIR/new.xml" "$LV/snaps/s1.xml"

check "libvirt's on-disk form: <active>1</active> marks the current one"
assert_ok "$IMPORT" "$STATE" "$WORKDIR/new.xml" "$WORKDIR/active-s1.xml" "$LV/snaps/s2.xml"
mount_fs -o ro
assert_eq "current of new" s1 "$(readlink "$MNT/new/current")"
umount_fs
say "PASS"
