# crash.sh: kill the daemon at a crash point during an operation, and restart it.
# shellcheck shell=bash
#
# Sourced by the crash tests after common.sh. The caller defines op_NAME
# (the file operation) and restores STATE before crash_run.

source "$(dirname "${BASH_SOURCE[0]}")/views.sh"

# leader_dead PID: the process is gone or a zombie (its other threads may
# still be exiting).
leader_dead() {
    local stat
    read -r stat 2>/dev/null <"/proc/$1/stat" || return 0
    stat=${stat##*) }
    case "$stat" in Z* | X*) return 0 ;; esac
    return 1
}

# crash_run OP STEP: mounts with SNAPTREEFS_CRASH_AT=STEP, runs op_OP (its
# stderr in $SCRATCH/op.err), waits for the daemon to die there, and
# mounts again on the same STATE. Sets CRASH_RC to the operation's status.
crash_run() {
    local op=$1 step=$2 deadline opid
    CRASH_RC=0
    export SNAPTREEFS_CRASH_AT=$step
    mount_fs
    unset SNAPTREEFS_CRASH_AT
    "op_$op" 2>"$SCRATCH/op.err" &
    opid=$!
    deadline=$(( $(date +%s) + 10 * TIME_SCALE ))
    while ! leader_dead "$DAEMON_PID"; do
        if [ "$(date +%s)" -ge "$deadline" ]; then
            kill -KILL "$opid" 2>/dev/null
            fail "$op: the daemon did not die at $step"
        fi
        sleep 0.02
    done
    # The operation gets ENOTCONN once the daemon is gone. A daemon thread
    # blocked in the kernel on a directory lock that this very operation
    # holds would keep the dead daemon from exiting and the operation
    # waiting; entry invalidations wait for such requests' replies in the
    # daemon instead (fs_invalidator_hold), so that must not happen. Only
    # aborting the connection (umount -f) would free them.
    for _ in $(seq 40); do kill -0 "$opid" 2>/dev/null || break; sleep 0.05; done
    if kill -0 "$opid" 2>/dev/null; then
        # Where each of them waits in the kernel (readable by root).
        for t in /proc/"$DAEMON_PID"/task/* /proc/"$opid" $(pgrep -P "$opid" | sed 's|^|/proc/|'); do
            echo "--- $(cat "$t/comm" 2>/dev/null) ($t)"
            cat "$t/stack" 2>/dev/null
        done >&2
        # It aborts the connection even when it then finds the mount busy.
        umount -f "$MNT" 2>/dev/null || true
        for _ in $(seq 100); do kill -0 "$opid" 2>/dev/null || break; sleep 0.05; done
        fail "$op at $step: the killed daemon hung, and the operation with it, until umount -f"
    fi
    wait "$opid" || CRASH_RC=$?
    wait "$DAEMON_PID" 2>/dev/null || true
    DAEMON_PID=""
    fusermount3 -u -z "$MNT" 2>/dev/null || true
    mount_fs
}

# crash_verify OP STEP: after crash_run, the restarted mount is consistent
# (the caller's check_consistent) and shows OP whole or not at all: what
# state_print prints is REF[OP.after], or, when OP failed, REF[OP.before]
# or one of the extra states the caller named in EXTRA[OP]. Unmounts.
crash_verify() {
    local op=$1 step=$2 rc=$CRASH_RC got ok=0 s
    barrier
    check_consistent "$op at $step"
    got=$(state_print)
    for s in after $([ "$rc" -ne 0 ] && echo before ${EXTRA[$op]:-}); do
        [ "$got" == "${REF[$op.$s]}" ] && ok=1 && break
    done
    [ "$ok" -eq 1 ] || fail "$op at $step (status $rc: $(cat "$SCRATCH/op.err")): half done; got
$got
before:
${REF[$op.before]}
after:
${REF[$op.after]}"
    say "$op at $step: status $rc, recovered to $s"
    umount_fs
}
