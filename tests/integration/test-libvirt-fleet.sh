#!/usr/bin/env bash
# test-libvirt-fleet: one mount over several libvirt hosts (-o uri=
# several times, or -o uris=FILE): MOUNT/HOST/DOMAIN/...; the same
# libvirtd as localhost (unix socket) and as 127.0.0.1 (qemu+tcp) shows the
# same domains, and a mkdir in one shows in the other within a second;
# rm -r of a host's domain directory, and of a snapshot subtree in it,
# behave as on a single-host mount;
# a second libvirtd, SIGSTOPped, never slows the first host (listings and
# mkdir), keeps its tree readable and fails its mutations with EIO and an
# errors line, and works again after SIGCONT; two URIs naming one host are
# refused; -o disks serves disks/ on the local host only; a mount of a
# stopped host alone fails in bounded time, while a fleet with a stopped
# host mounts, shows that host empty, and shows its domains once it answers.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/libvirt.sh"
require_cmd python3

lv_start tcp
lv_define g1
lv_define g2
TCP="qemu+tcp://127.0.0.1:$LV_TCP_PORT/system"

say "two URIs naming the same host are refused at mount"
rc=0
out=$("$SNAPTREEFS" -f -o "backend=libvirt,uri=$LV_URI,uri=qemu:///system" "$MNT" 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "a fleet with two URIs of host localhost mounted"
assert_contains "refusal" "$out" "both name host 'localhost'"
mountpoint -q "$MNT" && fail "mounted anyway"
# Host names are case-insensitive (RFC 4343): H1 and h1 are one host. The
# timeout ends a mount that was wrongly made (the hosts do not resolve,
# which no longer stops a fleet's mount).
rc=0
out=$(timeout 20 "$SNAPTREEFS" -f -o "backend=libvirt,uri=qemu+ssh://Fleet-Host.invalid/system,uri=qemu+tcp://fleet-host.INVALID/system" "$MNT" 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "a fleet with two spellings of one host mounted"
assert_contains "refusal, other case" "$out" "both name host"
mountpoint -q "$MNT" && fail "mounted anyway"

# rm_domain DIR: GNU rm -r of a domain directory: its status, its messages
# (DIR shown as DOM), and the snapshots libvirt has left.
three_snapshots() { for n in a b c; do vsh snapshot-create-as g2 "$n" >/dev/null; done; }
rm_domain() {
    local rc=0 out
    out=$(rm -r "$1" 2>&1) || rc=$?
    printf 'rc=%s\n%s\nleft=%s\n' "$rc" "${out//$1/DOM}" "$(vsh snapshot-list g2 --name | xargs)"
}
say "rm -r of a domain directory on a single-host mount, for comparison"
three_snapshots
mount_libvirt "$LV_URI"
single_rm=$(rm_domain "$MNT/g2")
umount_fs
three_snapshots

say "a fleet from uri= and -o uris=FILE: one directory per host, the same domains"
cat >"$WORKDIR/uris" <<URIS
# the private libvirtd again, through its TCP listener

$TCP
URIS
mount_libvirt "$LV_URI" -o "uris=$WORKDIR/uris" -o disks
assert_eq "hosts" "127.0.0.1 localhost" "$(ls "$MNT" | xargs)"
assert_eq "localhost domains" "g1 g2" "$(ls "$MNT/localhost" | xargs)"
assert_eq "127.0.0.1 domains" "g1 g2" "$(ls "$MNT/127.0.0.1" | xargs)"
assert_eq "root nlink" 4 "$(stat -c %h "$MNT")"
assert_eq "host nlink" 4 "$(stat -c %h "$MNT/localhost")"

say "a mkdir on one host shows on the other within a second"
mkdir "$MNT/localhost/g1/s1"
start=$(now_ms)
wait_for 1 test -d "$MNT/127.0.0.1/g1/s1"
say "shown on 127.0.0.1 after $(( $(now_ms) - start )) ms"
mkdir "$MNT/127.0.0.1/g1/current/s2"
wait_for 1 test -d "$MNT/localhost/g1/s1/s2"
assert_eq "virsh tree" "s1 s2" "$(vsh snapshot-list g1 --topological --name | xargs)"

say "-o disks: the local host's snapshots have disks/, the remote one's not"
assert_eq "localhost disks/" "vda" "$(ls "$MNT/localhost/g1/s1/disks" | xargs)"
assert_eq "127.0.0.1 disks/" "" "$(ls "$MNT/127.0.0.1/g1/s1/disks" | xargs)"

say "rm -r of a host's domain directory does what it does on a single-host mount"
assert_eq "rm -r HOST/g2 vs rm -r g2" "$single_rm" "$(rm_domain "$MNT/localhost/g2")"
wait_for 1 test ! -e "$MNT/127.0.0.1/g2/a"

say "rm -r of a host's domain subtree deletes every snapshot, silently"
mkdir "$MNT/localhost/g2/a"
mkdir "$MNT/localhost/g2/current/b"
mkdir "$MNT/localhost/g2/current/c"
wait_for 1 test -d "$MNT/127.0.0.1/g2/a/b/c"
assert_ok rm -r "$MNT/127.0.0.1/g2/a"
assert_eq "virsh after rm -r" "" "$(vsh snapshot-list g2 --name | xargs)"
wait_for 1 test ! -e "$MNT/localhost/g2/a"
umount_fs

say "a second libvirtd as the TCP host; it is stopped"
A_PID=$LV_PID A_DIR=$LV_DIR A_URI=$LV_URI A_PORT=$LV_TCP_PORT A_DOMS=("${LV_DOMS[@]}")
LV_NAME=libvirt2 LV_TCP_PORT="" LV_DOMS=()
lv_start tcp
lv_define h1
B_PID=$LV_PID B_PORT=$LV_TCP_PORT
LV_PID=$A_PID LV_DIR=$A_DIR LV_URI=$A_URI LV_TCP_PORT=$A_PORT LV_DOMS=("${A_DOMS[@]}")
# lv_cleanup stops the first; the second goes by its pid (EXTRA_PIDS), and
# must not stay stopped.
trap 'rc=$?; kill -CONT "$B_PID" 2>/dev/null; lv_cleanup; (exit $rc); cleanup' EXIT
B_URI="qemu+tcp://127.0.0.1:$B_PORT/system"
mount_libvirt "$LV_URI" -o "uri=$B_URI"
B=$MNT/127.0.0.1
mkdir "$B/h1/k1"
ls -R "$B" >"$WORKDIR/b.before"
kill -STOP "$B_PID"

# timed WHAT CMD...: runs CMD, says how long it took; fails on a hang.
timed() {
    local what=$1 start
    shift
    start=$(now_ms)
    timeout $(( 10 * TIME_SCALE )) "$@" >/dev/null || fail "$what failed or hung"
    say "$what: $(( $(now_ms) - start )) ms"
    ELAPSED=$(( $(now_ms) - start ))
}
for round in 1 2; do
    timed "round $round: ls -R of the running host" ls -R "$MNT/localhost"
    [ "$ELAPSED" -lt $(( 500 * TIME_SCALE )) ] || say "(slow: $ELAPSED ms)"
    timed "round $round: mkdir on the running host" mkdir "$MNT/localhost/g1/current/r$round"
    timed "round $round: ls -R of the stopped host" ls -R "$B"
    assert_eq "stopped host's tree" "$(cat "$WORKDIR/b.before")" "$(ls -R "$B")"
    if [ "$round" = 1 ]; then
        rc=0
        out=$(timeout $(( 20 * TIME_SCALE )) mkdir "$B/h1/current/x" 2>&1) || rc=$?
        [ "$rc" -ne 124 ] || fail "mkdir on the stopped host hung"
        assert_contains "mkdir on the stopped host" "$out" "Input/output error"
        wait_for 10 grep -q "lost" "$B/h1/errors"
    fi
done
assert_errno "Input/output error" mkdir "$B/h1/current/y"
# A mount of the stopped host alone fails in bounded time, saying why.
mkdir -p "$WORKDIR/mnt2"
rc=0
out=$(timeout $(( 30 * TIME_SCALE )) "$SNAPTREEFS" -f -o "backend=libvirt,uri=$B_URI" "$WORKDIR/mnt2" 2>&1) || rc=$?
[ "$rc" -ne 124 ] || { fusermount3 -u "$WORKDIR/mnt2"; fail "a mount of the stopped host hung"; }
[ "$rc" -ne 0 ] || fail "a mount of the stopped host succeeded"
assert_contains "mount of the stopped host" "$out" "did not answer"
assert_eq "running host after" "s1 s2 r1 r2" "$(vsh snapshot-list g1 --topological --name | xargs)"

say "SIGCONT: the stopped host works again"
kill -CONT "$B_PID"
wait_for 20 mkdir "$B/h1/current/after" 2>/dev/null
assert_eq "virsh on the second host" "k1 after" \
    "$(virsh -q -c "$B_URI" snapshot-list h1 --topological --name | xargs)"
umount_fs

say "a fleet whose second host is stopped at mount: mounts, that host is empty until it answers"
kill -STOP "$B_PID"
start=$(now_ms)
mount_libvirt "$LV_URI" -o "uri=$B_URI"
say "mounted after $(( $(now_ms) - start )) ms"
assert_eq "hosts" "127.0.0.1 localhost" "$(ls "$MNT" | xargs)"
assert_eq "stopped host's domains" "" "$(ls "$B" | xargs)"
assert_eq "running host's domains" "g1 g2" "$(ls "$MNT/localhost" | xargs)"
timed "mkdir on the running host" mkdir "$MNT/localhost/g1/current/r3"
[ ! -e "$B/h1" ] || fail "$B/h1 exists while its host has not answered"
grep -q "host 127.0.0.1 ($B_URI) cannot be reached" "$DAEMON_LOG" ||
    fail "the daemon log does not say that 127.0.0.1 cannot be reached: $(tail -n 5 "$DAEMON_LOG")"
grep -qF "mounted $LV_URI, $B_URI on $MNT: " "$DAEMON_LOG" ||
    fail "the mounted line does not name both URIs: $(grep mounted "$DAEMON_LOG" | tail -n 1)"
kill -CONT "$B_PID"
start=$(now_ms)
wait_for 20 test -d "$B/h1/k1/after"
say "127.0.0.1's domains shown $(( $(now_ms) - start )) ms after SIGCONT"
assert_ok mkdir "$B/h1/current/after2"
assert_eq "virsh on the second host" "k1 after after2" \
    "$(virsh -q -c "$B_URI" snapshot-list h1 --topological --name | xargs)"
umount_fs
check_log
