#!/usr/bin/env bash
# test-libvirt-stopped: a libvirtd that stops answering (SIGSTOP) never
# freezes the mount: the tree and the status files answer from the last
# tree, a mutation fails with EIO once the keepalive declares the daemon
# dead, and after SIGCONT everything works again (issue 12, item 3).
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/libvirt.sh"

lv_start
lv_define g1
mount_libvirt "$LV_URI"
D=$MNT/g1
mkdir "$D/s1"
mkdir "$D/current/s2"
ls -R "$MNT" >"$WORKDIR/tree.before"

# reads_answer WHAT: ls -R, errors and state answer (a hang is a failure,
# not a slow answer: 3 s is far beyond what a read from memory takes).
reads_answer() {
    local start tree
    start=$(now_ms)
    tree=$(timeout $(( 3 * TIME_SCALE )) ls -R "$MNT") || fail "$1: ls -R did not answer"
    assert_eq "$1: tree" "$(cat "$WORKDIR/tree.before")" "$tree"
    timeout $(( 3 * TIME_SCALE )) cat "$D/errors" >/dev/null || fail "$1: errors did not answer"
    assert_eq "$1: state" shutoff "$(timeout $(( 3 * TIME_SCALE )) cat "$D/state")"
    say "$1: ls -R, errors and state answered in $(( $(now_ms) - start )) ms"
}

say "libvirtd stopped: reads answer from the last tree"
kill -STOP "$LV_PID"
reads_answer "stopped"

say "a mkdir fails with EIO once the keepalive gives up (never hangs)"
start=$(now_ms)
rc=0
out=$(timeout $(( 20 * TIME_SCALE )) mkdir "$D/current/x" 2>&1) || rc=$?
[ "$rc" -ne 124 ] || fail "mkdir hung on a stopped libvirtd"
[ "$rc" -ne 0 ] || fail "mkdir succeeded on a stopped libvirtd"
assert_contains "mkdir" "$out" "Input/output error"
say "mkdir failed after $(( $(now_ms) - start )) ms"
wait_for 10 grep -q "lost" "$D/errors"

say "while reconnecting to the stopped daemon: reads still answer"
reads_answer "reconnecting"
assert_errno "Input/output error" timeout $(( 20 * TIME_SCALE )) mkdir "$D/current/y"

say "SIGCONT: the mount reconnects and mutations work again"
kill -CONT "$LV_PID"
wait_for 20 mkdir "$D/current/after" 2>/dev/null
assert_eq "virsh after the reconnect" "after" "$(vsh snapshot-current --name g1)"
assert_eq "virsh tree" "s1 s2 after" "$(vsh snapshot-list g1 --topological --name | xargs)"
rmdir "$D/s1/s2/after"
assert_eq "virsh after rmdir" "s1 s2" "$(vsh snapshot-list g1 --topological --name | xargs)"
umount_fs
check_log
