#!/usr/bin/env bash
# test-concurrency: a slow snapshot on one domain never blocks reads
# elsewhere, nor mutations of another domain; job shows it while it runs.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/views.sh"

make_domain d1
make_domain d2

# qemu-img that sleeps 3 s on `snapshot -c` of d1's disk once $SLOW exists.
SLOW=$WORKDIR/slow
REAL_QEMU_IMG=$(command -v qemu-img)
cat >"$WORKDIR/qemu-img" <<SH
#!/usr/bin/env bash
if [ -e "$SLOW" ] && [ "\$1" = snapshot ]; then
    case " \$* " in
        *" -c "*) case "\${*: -1}" in *d1-vda.qcow2) sleep 3 ;; esac ;;
    esac
fi
exec "$REAL_QEMU_IMG" "\$@"
SH
chmod +x "$WORKDIR/qemu-img"
export SNAPTREEFS_QEMU_IMG=$WORKDIR/qemu-img
mount_fs
unset SNAPTREEFS_QEMU_IMG

say "set up: d1 base, d2 base -> c"
mkdir "$MNT/d1/base"
mkdir "$MNT/d2/base"
mkdir "$MNT/d2/current/c"
assert_eq "job before" "" "$(cat "$MNT/d1/job")"

BOUND=$((1000 * TIME_SCALE))
# timed WHAT CMD...: CMD succeeds within BOUND ms.
timed() {
    local what=$1 t0 t1
    shift
    t0=$(now_ms)
    "$@" >/dev/null || fail "$what failed during the slow mkdir"
    t1=$(now_ms)
    say "$what: $((t1 - t0)) ms"
    [ $((t1 - t0)) -le "$BOUND" ] || fail "$what took $((t1 - t0)) ms during a slow mkdir on d1, expected <= $BOUND ms"
}

check "start a slow mkdir on d1 (3 s in qemu-img)"
touch "$SLOW"
t_start=$(now_ms)
mkdir "$MNT/d1/current/slow" 2>"$LOGS/mkdir.err" &
mk_pid=$!
EXTRA_PIDS+=("$mk_pid")

check "d1/job shows the operation while it runs"
deadline=$(( $(now_ms) + 2000 * TIME_SCALE ))
job=""
while [ -z "$job" ]; do
    job=$(cat "$MNT/d1/job")
    [ "$(now_ms)" -lt "$deadline" ] || fail "d1/job stayed empty while the mkdir ran"
    [ -n "$job" ] || sleep 0.05
done
say "d1/job: $job"
assert_contains "d1/job" "$job" slow

check "reads elsewhere answer within ${BOUND} ms"
timed "ls d2" ls -la "$MNT/d2"
timed "ls d2/base" ls -la "$MNT/d2/base"
timed "stat d2/base/c" stat "$MNT/d2/base/c"
timed "cat d2/base/c/metadata.xml" cat "$MNT/d2/base/c/metadata.xml"
timed "readlink d2/current" readlink "$MNT/d2/current"
timed "ls d1" ls -la "$MNT/d1"
timed "cat d1/domain.xml" cat "$MNT/d1/domain.xml"
timed "cat d1/errors" cat "$MNT/d1/errors"
timed "ls d1/.by-name" ls -la "$MNT/d1/.by-name"
timed "ls d1/.by-name/base" ls -la "$MNT/d1/.by-name/base"
timed "cat d1/.by-name/base/metadata.xml" cat "$MNT/d1/.by-name/base/metadata.xml"
timed "ls d2/.by-name/c" ls -la "$MNT/d2/.by-name/c"
timed "ls MNT" ls -la "$MNT"

check "a mutation on d2 is not queued behind d1's"
timed "mkdir d2/current/fast" mkdir "$MNT/d2/current/fast"
assert_eq "d2 tags" "base c fast" "$(disk_tags "$(image d2)")"

kill -0 "$mk_pid" 2>/dev/null || fail "the slow mkdir finished before the reads were done; the test measured nothing"
rc=0
wait "$mk_pid" || rc=$?
t_end=$(now_ms)
EXTRA_PIDS=()
[ "$rc" -eq 0 ] || fail "background mkdir exited $rc: $(cat "$LOGS/mkdir.err")"
say "slow mkdir took $((t_end - t_start)) ms"
[ $((t_end - t_start)) -ge 2500 ] || fail "the slow mkdir took $((t_end - t_start)) ms; the wrapper was not used"
rm -f "$SLOW"

check "after it: job is empty, the snapshot exists"
assert_eq "d1/job after" "" "$(cat "$MNT/d1/job")"
assert_eq "d1 tags" "base slow" "$(disk_tags "$(image d1)")"
[ -d "$MNT/d1/base/slow" ] || fail "d1/base/slow missing"
check_views "$MNT/d1" "d1 after"
check_views "$MNT/d2" "d2 after"

umount_fs
say "PASS"
