#!/usr/bin/env bash
# test-interrupt: a signal the caller handles (SIGALRM, SIGCHLD, ...) does
# not fail its queued operation with EINTR; a signal that kills it (Ctrl-C
# or SIGTERM on a plain mkdir) cancels what has not started: it leaves
# nothing.
source "$(dirname "$0")/../lib/common.sh"
require_cmd python3

make_domain d1

# qemu-img that sleeps 1 s on `snapshot -a` (a revert) and `-c` of d1's
# disk once $SLOW exists, so other operations wait in d1's queue meanwhile
# (a revert to the current snapshot leaves `current` where it was).
SLOW=$WORKDIR/slow
REAL_QEMU_IMG=$(command -v qemu-img)
cat >"$WORKDIR/qemu-img" <<SH
#!/usr/bin/env bash
echo "\$*" >>"$WORKDIR/qemu-img.log"
if [ -e "$SLOW" ] && [ "\$1" = snapshot ]; then
    case " \$* " in
        *" -a "*|*" -c "*) case "\${*: -1}" in *d1-vda.qcow2) sleep 1 ;; esac ;;
    esac
fi
exec "$REAL_QEMU_IMG" "\$@"
SH
chmod +x "$WORKDIR/qemu-img"
export SNAPTREEFS_QEMU_IMG=$WORKDIR/qemu-img
mount_fs
unset SNAPTREEFS_QEMU_IMG
mkdir "$MNT/d1/base" || fail "mkdir base"
touch "$SLOW"

check "mkdirs queued while SIGALRM (caught, SA_RESTART) fires every 20 ms: no EINTR"
put "$MNT/d1/base/revert" "" &
BG=$!
sleep 0.2
python3 - "$MNT/d1" >"$LOGS/alarm.out" 2>&1 <<'PY' || { cat "$LOGS/alarm.out"; cat "$WORKDIR/qemu-img.log"; fail "a mkdir failed while alarms fired"; }
import ctypes, os, signal, sys, time
libc = ctypes.CDLL(None, use_errno=True)
signal.signal(signal.SIGALRM, lambda signum, frame: None)
signal.siginterrupt(signal.SIGALRM, False)  # SA_RESTART
signal.setitimer(signal.ITIMER_REAL, 0.02, 0.02)
t0 = time.monotonic()
bad = 0
for name in ("a1", "a2"):
    # libc's mkdir, not os.mkdir: one system call, its errno as it came.
    if libc.mkdir(f"{sys.argv[1]}/current/{name}".encode(), 0o755) != 0:
        print(f"mkdir {name}: {os.strerror(ctypes.get_errno())}")
        bad = 1
waited = time.monotonic() - t0
signal.setitimer(signal.ITIMER_REAL, 0)
# Python runs its handler once per call, so count by time: one alarm per
# 20 ms while the first mkdir waited behind the 1 s revert.
print(f"waited {waited:.2f} s: about {int(waited / 0.02)} alarms")
sys.exit(bad or waited < 0.4)
PY
cat "$LOGS/alarm.out"
wait "$BG" || fail "the slow revert failed"
for s in a1 a2; do
    ls "$MNT/d1/.by-name" | grep -qx "$s" || fail "snapshot $s missing"
done

# (A background job of a script ignores SIGINT, so SIGTERM plays Ctrl-C:
# a signal the caller does not handle and that kills it.)
check "a fatal signal (as Ctrl-C) to a queued mkdir cancels it: nothing made"
put "$MNT/d1/current/revert" "" &
BG=$!
sleep 0.2
mkdir "$MNT/d1/current/never" &
VICTIM=$!
sleep 0.2
kill -TERM "$VICTIM"
rc=0
wait "$VICTIM" || rc=$?
[ "$rc" -ne 0 ] || fail "the interrupted mkdir succeeded"
wait "$BG" || fail "the slow revert before it failed"
if ls "$MNT/d1/.by-name" | grep -qx never; then fail "the cancelled mkdir made a snapshot"; fi
assert_eq "disk tags" "a1 a2 base" "$(disk_tags "$(image d1)")"

check "SIGTERM to the daemon: the running mkdir finishes, the queued rmdir fails and changes nothing"
# (No control file is open then: its release would never be read.)
mkdir "$MNT/d1/current/m" 2>"$LOGS/m.err" &
BG=$!
sleep 0.3
rmdir "$MNT/d1/base/a1" 2>"$LOGS/q.err" &
Q=$!
sleep 0.3
kill -TERM "$DAEMON_PID"
rc=0
wait "$BG" || rc=$?
[ "$rc" -eq 0 ] || fail "the running mkdir failed: $(cat "$LOGS/m.err")"
rc=0
wait "$Q" || rc=$?
[ "$rc" -ne 0 ] || fail "the queued rmdir succeeded though the daemon stopped first"
say "the queued rmdir said: $(cat "$LOGS/q.err")"
wait_daemon_exit
assert_eq "disk tags after the stop" "a1 a2 base m" "$(disk_tags "$(image d1)")"
mount_fs
assert_eq "snapshots after a restart" "a1 a2 base m" "$(ls "$MNT/d1/.by-name" | tr '\n' ' ' | sed 's/ $//')"
[ -d "$MNT/d1/base/a1/a2/m" ] || fail "the tree after a restart is not base/a1/a2/m"
umount_fs
say "PASS"
