#!/usr/bin/env bash
# test-libvirt-qemu: -o backend=libvirt on a real libvirtd (qemu driver, in a
# private mount namespace): live snapshots, revert, delete through the mount,
# checked with virsh; snapshots virsh creates or deletes while mounted show
# up within a second; the same libvirtd over qemu+tcp://127.0.0.1 (a remote
# host's URI); a lost connection keeps the tree and fails mutations with EIO.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/libvirt.sh"
require_cmd virsh xmllint

lv_start tcp
lv_define g1
lv_define g2
vsh start g1 >/dev/null

mount_libvirt "$LV_URI"
D=$MNT/g1

say "browse: both domains, g1 running"
assert_eq "domains" "g1 g2" "$(ls "$MNT" | xargs)"
assert_eq "g1 state" running "$(cat "$D/state")"
assert_eq "g2 state" shutoff "$(cat "$MNT/g2/state")"

say "mkdir on a running domain: a live snapshot with memory, as virsh sees it"
mkdir "$D/live1"
assert_eq "virsh current" live1 "$(vsh snapshot-current --name g1)"
assert_eq "virsh state" running "$(vsh snapshot-info g1 live1 | awk '$1 == "State:" {print $2}')"
assert_eq "metadata state" running "$(xmllint --xpath 'string(/domainsnapshot/state)' "$D/live1/metadata.xml")"
vsh snapshot-dumpxml g1 live1 >"$WORKDIR/live1.xml"
diff <(grep -v '<active>' "$D/live1/metadata.xml") "$WORKDIR/live1.xml" >/dev/null ||
    fail "metadata.xml differs from virsh snapshot-dumpxml"

say "offline: mkdir on g2, a disk snapshot; revert; rmdir"
mkdir "$MNT/g2/off1"
mkdir "$MNT/g2/current/off2"
assert_eq "virsh tree" "off1 off2" "$(vsh snapshot-list g2 --topological --name | xargs)"
assert_eq "virsh parent" off1 "$(vsh snapshot-parent g2 off2)"
put "$MNT/g2/off1/revert" ""
assert_eq "virsh current after revert" off1 "$(vsh snapshot-current --name g2)"
rmdir "$MNT/g2/off1/off2"
assert_eq "virsh after rmdir" off1 "$(vsh snapshot-list g2 --name | xargs)"

say "digit names: libvirt's revert would load qcow2 ID 1 (off1) for '1': refused"
mkdir "$MNT/g2/current/1"
assert_eq "virsh current" 1 "$(vsh snapshot-current --name g2)"
n=$(wc -l <"$MNT/g2/errors")
assert_errno "Invalid argument" put "$MNT/g2/off1/1/revert" ""
[ "$(wc -l <"$MNT/g2/errors")" -gt "$n" ] || fail "no errors line for the refused revert"
assert_contains "errors" "$(tail -n 1 "$MNT/g2/errors")" "qcow2 ID"
assert_eq "virsh current after the refused revert" 1 "$(vsh snapshot-current --name g2)"
rmdir "$MNT/g2/off1/1"
assert_eq "virsh after rmdir 1" off1 "$(vsh snapshot-list g2 --name | xargs)"

say "live revert: pause g1, revert to live1, it runs again"
put "$D/state" pause
assert_eq "paused" paused "$(vsh domstate g1)"
put "$D/live1/revert" ""
assert_eq "running after revert" running "$(vsh domstate g1)"
assert_eq "state file" running "$(cat "$D/state")"

say "virsh changes show up within a second: create, delete, edit, lifecycle"
ls "$D" >/dev/null
vsh snapshot-create-as g1 byvirsh >/dev/null
start=$(now_ms)
wait_for 1 test -d "$D/live1/byvirsh"
say "virsh's snapshot showed after $(( $(now_ms) - start )) ms"
# A lookup finds the new name as soon as the tree has it; the cached
# `current` link goes with the same refresh's events, a moment later.
wait_for 1 bash -c '[ "$(readlink "$1")" = live1/byvirsh ]' _ "$D/current"
vsh snapshot-delete g1 live1 >/dev/null
wait_for 1 test -d "$D/byvirsh"
# As with `current`: the kernel's cached entry of the removed live1 is
# invalidated by the same refresh, a moment after the tree moved byvirsh.
wait_for 1 test ! -e "$D/live1"
# A snapshot redefined in place (virsh snapshot-edit) has no event: the
# refreshes read a few snapshots again in turn (g1 has two here).
cat "$D/byvirsh/metadata.xml" >/dev/null
mtime=$(stat -c %Y "$D")
sleep 1.2
assert_eq "domain mtime with nothing changed" "$mtime" "$(stat -c %Y "$D")"
vsh snapshot-dumpxml g1 byvirsh |
    sed 's|<description>[^<]*</description>||; s|</name>|</name><description>edited by virsh</description>|' \
        >"$WORKDIR/byvirsh.xml"
vsh snapshot-create g1 "$WORKDIR/byvirsh.xml" --redefine >/dev/null
start=$(now_ms)
wait_for 1 grep -q "<description>edited by virsh</description>" "$D/byvirsh/metadata.xml"
say "virsh's in-place edit showed after $(( $(now_ms) - start )) ms"
vsh suspend g1 >/dev/null
wait_for 1 grep -qx paused "$D/state"
vsh resume g1 >/dev/null
wait_for 1 grep -qx running "$D/state"
lv_define g3
wait_for 1 test -d "$MNT/g3"
vsh undefine g3 >/dev/null
wait_for 2 test ! -e "$MNT/g3"

say "rm -r through the mount empties libvirt's tree"
mkdir "$D/current/c1"
mkdir "$D/current/c2"
assert_ok rm -r "$D/byvirsh"
assert_eq "virsh empty" "" "$(vsh snapshot-list g1 --name | xargs)"

say "remote: the same host over qemu+tcp://127.0.0.1"
umount_fs
mount_libvirt "qemu+tcp://127.0.0.1:$LV_TCP_PORT/system"
assert_eq "remote domains" "g1 g2" "$(ls "$MNT" | xargs)"
assert_eq "remote snapshots" "off1" "$(ls "$MNT/g2/.by-name" | xargs)"
mkdir "$MNT/g2/current/remote1"
assert_eq "virsh sees the remote mkdir" "remote1" "$(vsh snapshot-current --name g2)"

say "lost connection: reads answer from the last tree, mutations EIO, reconnect"
vsh destroy g1 >/dev/null
kill -TERM "$LV_PID"
wait "$LV_PID" 2>/dev/null || true
wait_for 10 grep -q "lost" "$MNT/g2/errors"
assert_eq "tree kept" "off1 remote1" "$(ls "$MNT/g2/.by-name" | xargs)"
assert_errno "Input/output error" mkdir "$MNT/g2/current/x"
LV_PID=""
lv_start tcp
wait_for 20 mkdir "$MNT/g2/current/after" 2>/dev/null
assert_eq "virsh after the reconnect" "after" "$(vsh snapshot-current --name g2)"
umount_fs
check_log
# The log says what a user needs: the connection lost, and regained.
grep -q "g2: .*connection to .* lost" "$DAEMON_LOG" || fail "no 'connection lost' line in the log"
grep -q "libvirt: reconnected to " "$DAEMON_LOG" || fail "no 'reconnected' line in the log"
