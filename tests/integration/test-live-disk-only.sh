#!/usr/bin/env bash
# test-live-disk-only: disk-only snapshots of a running domain (-o
# memory=no, and <memory snapshot='no'/> written to create): one QMP
# transaction over every internal disk, no VM state in the images, the
# guest never stopped, the disks' content a consistent earlier state of a
# guest that keeps writing a counter; libvirt's revert rule for disk-only
# snapshots; all or nothing across two disks; the guest agent channel.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/counter.sh"
require_qemu_system
require_cmd python3
require_cmd xmllint

make_domain d1 vda vdb
make_counter_guest d1
D=$MNT/d1
VDA=$(image d1 vda)
VDB=$(image d1 vdb)

# watch_start / watch_stop: a second monitor asks QEMU's status every few
# ms while a snapshot runs and records STOP events; watch_stop sets
# WATCHED to "polls N not-running N stops N" (no subshell: it waits for
# the watcher).
WATCH_FLAG=$WORKDIR/watch.stop
watch_start() {
    rm -f "$WATCH_FLAG" "$WORKDIR/watch.out"
    python3 - "$STATE/run/d1.qmp.test" "$WATCH_FLAG" >"$WORKDIR/watch.out" <<'PY' &
import json, os, socket, sys, time
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())
polls = bad = stops = 0
def call(cmd):
    global stops
    f.write(json.dumps({"execute": cmd}) + "\n"); f.flush()
    while True:
        m = json.loads(f.readline())
        if m.get("event") == "STOP":
            stops += 1
        if "return" in m or "error" in m:
            return m
call("qmp_capabilities")
print("ready", flush=True)
while not os.path.exists(sys.argv[2]):
    st = call("query-status")["return"]["status"]
    polls += 1
    bad += st != "running"
    time.sleep(0.002)
print("polls %d not-running %d stops %d" % (polls, bad, stops), flush=True)
PY
    WATCH_PID=$!
    EXTRA_PIDS+=("$WATCH_PID")
    local deadline=$(( $(date +%s) + 5 * TIME_SCALE ))
    until grep -q ready "$WORKDIR/watch.out" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "the status watcher did not connect"
        sleep 0.02
    done
}
watch_stop() {
    touch "$WATCH_FLAG"
    wait "$WATCH_PID" || fail "the status watcher failed"
    WATCHED=$(tail -n 1 "$WORKDIR/watch.out")
}

# assert_disk_only SNAP: metadata says disk-snapshot without memory, both
# disks hold SNAP with no VM state.
assert_disk_only() {
    local meta
    meta=$(cat "$D/.by-name/$1/metadata.xml")
    assert_contains "$1 metadata" "$meta" "<state>disk-snapshot</state>"
    assert_contains "$1 metadata" "$meta" "<memory snapshot='no'/>"
    assert_eq "$1: VM state on vda" 0 "$(vm_state_size "$VDA" "$1")"
    assert_eq "$1: VM state on vdb" 0 "$(vm_state_size "$VDB" "$1")"
}

check "-o memory takes only 'no'; the libvirt backend refuses -o memory=no, saying why"
assert_errno "only value is 'no'" "$SNAPTREEFS" -f -o memory=yes "$STATE" "$MNT"
assert_errno "libvirt cannot take an internal disk-only snapshot" \
    "$SNAPTREEFS" -f -o backend=libvirt,uri=test:///default,memory=no "$MNT"
mountpoint -q "$MNT" && fail "a refused mount is mounted"

mount_fs -o memory=no,disks
check "the counter guest runs and writes"
assert_ok put "$D/state" start
assert_running d1 running
pid=$RUN_PID
wait_counter d1 20

check "mkdir under -o memory=no: disk-only, the guest never stops, no VM state"
watch_start
t0=$(now_ms)
assert_ok mkdir "$D/s1"
t1=$(now_ms)
watch_stop
say "mkdir s1 (disk-only, 2 disks) took $((t1 - t0)) ms; watcher: $WATCHED"
case "$WATCHED" in
    "polls "*" not-running 0 stops 0") ;;
    *) fail "QEMU stopped during the disk-only snapshot: $WATCHED" ;;
esac
assert_disk_only s1
assert_running d1 running "$pid"

check "s1's disks through disks/: a consistent state, earlier than the guest's now"
c_vda=$(counter_of "$D/s1/disks/vda")
c_vdb=$(counter_of "$D/s1/disks/vdb")
say "s1: vda $c_vda, vdb $c_vdb"
# The guest writes vda then vdb: one transaction sees vdb equal or one behind.
[ $((c_vda - c_vdb)) -eq 0 ] || [ $((c_vda - c_vdb)) -eq 1 ] ||
    fail "s1 is not one moment across the disks: vda $c_vda, vdb $c_vdb"
wait_counter d1 "$((c_vda + 5))"
assert_eq "s1's vda read again" "$c_vda" "$(counter_of "$D/s1/disks/vda")"

check "a crash-consistent snapshot says so once in errors (no guest agent channel)"
assert_eq "crash-consistent lines" 1 "$(grep -c 'crash-consistent' "$D/errors")"
assert_contains "errors" "$(cat "$D/errors")" "no guest agent channel"
assert_ok mkdir "$D/current/s2"
assert_disk_only s2
assert_eq "crash-consistent lines after a second one" 1 "$(grep -c 'crash-consistent' "$D/errors")"

check "paused: disk-only too, and the domain stays paused"
assert_ok put "$D/state" pause
assert_ok mkdir "$D/current/p1"
assert_disk_only p1
assert_running d1 paused "$pid"
assert_ok put "$D/state" resume
umount_fs

check "without -o memory=no: mkdir saves memory; create with <memory snapshot='no'/> does not"
mount_fs -o disks
assert_running d1 running "$pid"
assert_ok mkdir "$D/current/m1"
assert_contains "m1 metadata" "$(cat "$D/.by-name/m1/metadata.xml")" "<state>running</state>"
assert_vm_state "$VDA" m1 1 >/dev/null
watch_start
assert_ok put "$D/create" "<domainsnapshot><name>c1</name><description>nightly</description><memory snapshot='no'/></domainsnapshot>"
watch_stop
case "$WATCHED" in
    "polls "*" not-running 0 stops 0") ;;
    *) fail "QEMU stopped during create of a disk-only snapshot: $WATCHED" ;;
esac
assert_disk_only c1
assert_contains "c1 metadata" "$(cat "$D/.by-name/c1/metadata.xml")" "<description>nightly</description>"
assert_eq "current" c1 "$(basename "$(readlink "$D/current")")"
c1=$(counter_of "$D/.by-name/c1/disks/vda")
counter_of "$D/.by-name/c1/disks/vdb" >/dev/null

check "all or nothing: a tag that one disk already holds fails the transaction on both"
qmp d1 '{"execute": "blockdev-snapshot-internal-sync", "arguments": {"device": "disk1", "name": "dup"}}' >/dev/null
before=$(disk_tags "$VDA")
n=$(errors_count d1)
assert_errno "Input/output error" put "$D/create" "<domainsnapshot><name>dup</name><memory snapshot='no'/></domainsnapshot>"
assert_eq "vda tags after the failed transaction" "$before" "$(disk_tags "$VDA")"
assert_new_error "failed transaction" d1 "$n" "dup"
[ ! -e "$D/.by-name/dup" ] || fail "dup appeared in the tree"
[ ! -e "$STATE/snapshots/d1/dup.xml" ] || fail "dup.xml was written"
qmp d1 '{"execute": "blockdev-snapshot-delete-internal-sync", "arguments": {"device": "disk1", "name": "dup"}}' >/dev/null
assert_running d1 running "$pid"

check "rmdir of a disk-only snapshot while running; rm -r of a chain holding them"
assert_ok rmdir "$D/s1/s2"
assert_eq "vda tags" "c1 m1 p1 s1" "$(disk_tags "$VDA")"
assert_eq "vdb tags" "c1 m1 p1 s1" "$(disk_tags "$VDB")"
assert_eq "p1's parent after rmdir s2" s1 \
    "$(xmllint --xpath 'string(/domainsnapshot/parent/name)' "$D/.by-name/p1/metadata.xml")"
assert_running d1 running "$pid"

check "revert to a disk-only snapshot of a running domain: it ends shut off, the disks at the snapshot"
assert_ok put "$D/.by-name/c1/revert" ""
assert_shutoff d1 "$pid"
assert_eq "vda at c1 after revert" "$c1" "$(counter_live d1)"
assert_eq "current" c1 "$(basename "$(readlink "$D/current")")"

check "revert with paused: QEMU starts, CPUs stopped, on the reverted disks"
c_s1=$(counter_of "$D/.by-name/s1/disks/vda")
assert_ok put "$D/.by-name/s1/revert" paused
assert_running d1 paused
pid=$RUN_PID
assert_eq "vda of the paused QEMU" "$c_s1" "$(counter_live d1)"
check "revert with running from a paused domain: a new QEMU runs the reverted disks"
assert_ok put "$D/.by-name/c1/revert" running
assert_running d1 running
[ "$RUN_PID" != "$pid" ] || fail "revert to a disk-only snapshot kept QEMU $pid"
pid=$RUN_PID
# The guest boots again and counts from 1: it runs on c1's disks.
wait_counter d1 3
assert_eq "tags survive the reverts" "c1 m1 p1 s1" "$(disk_tags "$VDA")"

check "rm -r of s1 (its descendants disk-only and live ones) while running"
assert_ok rm -r "$D/s1"
assert_eq "vda tags after rm -r" "" "$(disk_tags "$VDA")"
assert_eq "vdb tags after rm -r" "" "$(disk_tags "$VDB")"
assert_running d1 running "$pid"
assert_ok put "$D/state" destroy
assert_shutoff d1 "$pid"
qcow2_check_after_kill "$VDA"
qcow2_check_after_kill "$VDB"
umount_fs

check "a guest agent channel: QEMU gets it as STATE/run/NAME.qga; no agent answers within 1 s: crash-consistent, said once"
make_domain d2
sed -i 's|</devices>|<channel type="unix"><target type="virtio" name="org.qemu.guest_agent.0"/></channel></devices>|' "$STATE/domains/d2.xml"
mount_fs -o memory=no
assert_contains "d2 domain.xml" "$(cat "$MNT/d2/domain.xml")" "org.qemu.guest_agent.0"
assert_ok put "$MNT/d2/state" start
assert_running d2 running
pid2=$RUN_PID
[ -S "$STATE/run/d2.qga" ] || fail "no guest agent socket STATE/run/d2.qga"
t0=$(now_ms)
assert_ok mkdir "$MNT/d2/a1"
t1=$(now_ms)
say "mkdir a1 with a silent agent took $((t1 - t0)) ms"
[ $((t1 - t0)) -ge 900 ] || fail "mkdir a1 did not wait for the agent's ping ($((t1 - t0)) ms)"
assert_contains "d2 errors" "$(cat "$MNT/d2/errors")" "no guest agent answered within 1000 ms"
assert_ok mkdir "$MNT/d2/current/a2"
assert_eq "crash-consistent lines" 1 "$(grep -c 'crash-consistent' "$MNT/d2/errors")"
assert_eq "VM state of a1" 0 "$(vm_state_size "$(image d2)" a1)"
assert_ok put "$MNT/d2/state" destroy
assert_shutoff d2 "$pid2"
[ ! -e "$STATE/run/d2.qga" ] || fail "STATE/run/d2.qga left after destroy"
umount_fs
say "PASS"
