#!/usr/bin/env bash
# test-invalidator: a mkdir that waits long in one domain, holding its
# directory's lock, delays neither another domain's invalidations nor its
# replies; domain.xml read right after a change shows the new definition.
source "$(dirname "$0")/../lib/common.sh"

make_domain d1
DISK_SNAPSHOT=external make_domain d2

# qemu-img that sleeps 3 s on `snapshot -a` and `-c` of d1's disk once
# $SLOW exists.
SLOW=$WORKDIR/slow
REAL_QEMU_IMG=$(command -v qemu-img)
cat >"$WORKDIR/qemu-img" <<SH
#!/usr/bin/env bash
if [ -e "$SLOW" ] && [ "\$1" = snapshot ]; then
    case " \$* " in
        *" -a "*|*" -c "*) case "\${*: -1}" in *d1-vda.qcow2) sleep 3 ;; esac ;;
    esac
fi
exec "$REAL_QEMU_IMG" "\$@"
SH
chmod +x "$WORKDIR/qemu-img"
export SNAPTREEFS_QEMU_IMG=$WORKDIR/qemu-img
mount_fs
unset SNAPTREEFS_QEMU_IMG

source_of() { xmllint --xpath 'string(//disk/source/@file)' "$1"; }

say "set up: d1 base -> c1 -> k, current c1; d2 without snapshots"
mkdir "$MNT/d1/base" && mkdir "$MNT/d1/current/c1" && mkdir "$MNT/d1/current/k" ||
    fail "set-up mkdirs"
put "$MNT/d1/base/c1/revert" "" || fail "revert to c1"
# The kernel reads (and may keep) d2's definition now.
assert_eq "d2's disk before" "$(image d2)" "$(source_of "$MNT/d2/domain.xml")"
touch "$SLOW"

check "while d1's mkdir waits holding c1, d2's changes are seen and answered at once"
# A: a slow revert on d1's worker; B: a .forget of k (an entry of c1),
# queued behind it; C: a mkdir in c1 (it holds c1), queued behind both.
put "$MNT/d1/current/revert" "" &
A=$!
sleep 0.3
put "$MNT/d1/.forget" "snapshot k" &
B=$!
sleep 0.3
mkdir "$MNT/d1/current/x" &
C=$!
wait "$A" || fail "the slow revert failed"
# B's invalidation of c1/k now waits for C, which runs for 3 s.
sleep 0.5
kill -0 "$C" 2>/dev/null || fail "d1's mkdir ended too early for this test"
assert_ok mkdir "$MNT/d2/s1"
overlay=$(source_of "$STATE/domains/d2.xml")
[ "$overlay" != "$(image d2)" ] || fail "d2's external snapshot did not move its disk"
assert_eq "d2's domain.xml right after its mkdir" "$overlay" "$(source_of "$MNT/d2/domain.xml")"
put "$MNT/d2/.forget" "snapshot s1" || fail ".forget on d2"
kill -0 "$C" 2>/dev/null ||
    fail "d2's .forget was answered only after d1's mkdir (its reply waited for d1's directory)"
[ ! -e "$MNT/d2/s1" ] || fail "d2/s1 still visible after its .forget"
wait "$B" || fail "d1's .forget failed"
wait "$C" || fail "d1's mkdir failed"

check "d1's own .forget reply came after its invalidation: k is gone from c1"
[ ! -e "$MNT/d1/base/c1/k" ] || fail "d1/base/c1/k still visible after its .forget"
assert_eq "c1's children" "x" "$(ls "$MNT/d1/base/c1" | grep -vxE 'metadata.xml|revert|disks' | tr '\n' ' ' | sed 's/ $//')"
umount_fs
say "PASS"
