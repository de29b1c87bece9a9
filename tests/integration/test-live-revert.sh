#!/usr/bin/env bash
# test-live-revert: libvirt's revert matrix: from a running, paused or
# shut-off domain to a snapshot taken running, paused or shut off, the
# domain ends in the snapshot's state (or the one `running`/`paused` asks
# for), with the snapshot's disk content; `force` is needed to replace a
# running QEMU whose definition differs from the snapshot's.
source "$(dirname "$0")/../lib/common.sh"
require_qemu_system

make_domain d1
mount_fs
D=$MNT/d1
IMG=$(image d1)
cur() { (cd "$D/current" && pwd -P) || echo "<no current>"; }

# to_state WANT: bring d1 from whatever it is to WANT.
to_state() {
    local now
    now=$(state_of d1)
    [ "$now" == "$1" ] && return 0
    case "$1" in
        shutoff) assert_ok put "$D/state" destroy ;;
        running)
            if [ "$now" == paused ]; then
                assert_ok put "$D/state" resume
            else
                assert_ok put "$D/state" start
            fi
            ;;
        paused)
            [ "$now" == running ] || assert_ok put "$D/state" start
            assert_ok put "$D/state" pause
            ;;
    esac
    assert_eq "d1 brought to $1" "$1" "$(state_of d1)"
}

# domain_state_is WANT: state reads WANT; running and paused have a live
# QEMU, shutoff has none and no run files.
domain_state_is() {
    if [ "$1" == shutoff ]; then
        assert_shutoff d1
    else
        assert_running d1 "$1"
    fi
}

say "set up: pattern A, off (shut off); B, run (running); C, pau (paused)"
write_pattern "$IMG" 0xaa
assert_ok mkdir "$D/off"
write_pattern "$IMG" 0xbb
to_state running
assert_ok mkdir "$D/current/run"
to_state shutoff
write_pattern "$IMG" 0xcc
to_state paused
assert_ok mkdir "$D/current/pau"
to_state shutoff
assert_eq "tags" "off pau run" "$(disk_tags "$IMG")"
assert_contains "off metadata" "$(cat "$D/off/metadata.xml")" "<state>shutoff</state>"
assert_contains "run metadata" "$(cat "$D/off/run/metadata.xml")" "<state>running</state>"
assert_contains "pau metadata" "$(cat "$D/off/run/pau/metadata.xml")" "<state>paused</state>"

declare -A PATH_OF=([off]="$D/off" [run]="$D/off/run" [pau]="$D/off/run/pau")
declare -A STATE_OF=([off]=shutoff [run]=running [pau]=paused)
declare -A PATTERN_OF=([off]=0xaa [run]=0xbb [pau]=0xcc)

# revert_case FROM SNAP WORDS WANT: junk on the disk, d1 brought to FROM,
# `echo WORDS > SNAP/revert`; then d1 is WANT, SNAP is current, and once
# shut off the disk holds SNAP's pattern.
revert_case() {
    local from=$1 snap=$2 words=$3 want=$4 t0 t1 old_pid
    to_state shutoff
    write_pattern "$IMG" 0xee
    to_state "$from"
    old_pid=""
    [ "$from" == shutoff ] || { assert_running d1 "$from"; old_pid=$RUN_PID; }
    check "revert: domain $from, snapshot $snap (${STATE_OF[$snap]}), words '$words' -> $want"
    t0=$(now_ms)
    assert_ok put "${PATH_OF[$snap]}/revert" "$words"
    t1=$(now_ms)
    say "revert took $((t1 - t0)) ms"
    if [ "$want" == shutoff ]; then
        assert_shutoff d1 "$old_pid"
    elif [ -n "$old_pid" ] && [ "${STATE_OF[$snap]}" != shutoff ]; then
        # Same definition: the snapshot is loaded into the QEMU that runs.
        assert_running d1 "$want" "$old_pid"
    else
        domain_state_is "$want"
        [ "$RUN_PID" != "$old_pid" ] || fail "reverting to the disk-only $snap kept QEMU $old_pid running"
    fi
    assert_eq "current after reverting to $snap" "${PATH_OF[$snap]}" "$(cur)"
    assert_contains "$snap metadata" "$(cat "${PATH_OF[$snap]}/metadata.xml")" "<active>1</active>"
    to_state shutoff
    check_pattern "$IMG" "${PATTERN_OF[$snap]}"
}

for from in running paused shutoff; do
    for snap in off run pau; do
        revert_case "$from" "$snap" "" "${STATE_OF[$snap]}"
    done
done

check "running and paused override the snapshot's state"
revert_case shutoff off running running
revert_case shutoff off paused paused
revert_case running off paused paused
revert_case paused off running running
revert_case shutoff run paused paused
revert_case running run paused paused
revert_case shutoff pau running running
revert_case paused pau running running
revert_case running pau "running force" running

check "running paused: EINVAL, an errors line, nothing changes"
for from in running shutoff; do
    to_state "$from"
    pid=$(cat "$STATE/run/d1.pid" 2>/dev/null || true)
    before=$(fingerprint d1)
    n=$(errors_count d1)
    assert_errno "Invalid argument" put "$D/off/run/revert" "running paused"
    assert_unchanged "running paused with d1 $from" "$before" d1
    assert_new_error "running paused" d1 "$n" "mutually exclusive"
    domain_state_is "$from"
    [ "$from" == shutoff ] || assert_eq "pid" "$pid" "$RUN_PID"
done

check "force: a running domain whose definition changed since the snapshot"
to_state running
assert_ok mkdir "$D/current/L"
L=$(cur)
assert_contains "L metadata" "$(cat "$L/metadata.xml")" "<memory unit='KiB'>65536</memory>"
assert_ok mkdir "$D/current/after"
to_state shutoff
umount_fs
set_domain_memory d1 96
mount_fs
assert_contains "domain.xml after the edit" "$(cat "$D/domain.xml")" "<memory unit='KiB'>98304</memory>"
to_state running
assert_running d1 running
pid=$RUN_PID
before=$(fingerprint d1)
n=$(errors_count d1)
assert_errno "Device or resource busy" put "$L/revert" ""
assert_new_error "revert without force" d1 "$n" "requires force"
assert_unchanged "refused revert" "$before" d1
assert_running d1 running "$pid"
assert_eq "current after the refused revert" "$L/after" "$(cur)"
assert_contains "domain.xml after the refused revert" "$(cat "$D/domain.xml")" "<memory unit='KiB'>98304</memory>"

check "echo force > L/revert: QEMU restarted with L's definition, running"
assert_ok put "$L/revert" force
assert_running d1 running
[ "$RUN_PID" != "$pid" ] || fail "QEMU pid $pid unchanged: it was not restarted"
is_test_qemu "$pid" && fail "the old QEMU $pid still runs"
assert_eq "current after force" "$L" "$(cur)"
assert_contains "domain.xml after force" "$(cat "$D/domain.xml")" "<memory unit='KiB'>65536</memory>"
grep -q '<memory unit=.KiB.>65536</memory>' "$STATE/domains/d1.xml" ||
    fail "STATE/domains/d1.xml not rewritten with L's memory: $(cat "$STATE/domains/d1.xml")"
tr '\0' ' ' <"/proc/$RUN_PID/cmdline" | grep -q -- " -m 64M " ||
    fail "the new QEMU does not run with 64 MiB: $(tr '\0' ' ' <"/proc/$RUN_PID/cmdline")"

to_state shutoff
qcow2_check "$IMG"
umount_fs
say "PASS"
