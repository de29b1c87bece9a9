#!/usr/bin/env bash
# test-screen: screen.png, the guest's display when a snapshot of a
# running or paused domain was taken (QMP screendump, PNG): a valid PNG
# whose pixels are not one colour (SeaBIOS prints text), 0444, its exact
# size, mtime = creationTime; none for offline snapshots or a domain
# without a display; a failing screendump leaves the snapshot and an
# errors line; deleted with the snapshot, kept by .forget so that create
# brings it back, kept across restarts; reconcile reports one that belongs
# to no snapshot and deletes nothing.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/counter.sh"
source "$(dirname "$0")/../lib/png.sh"
require_qemu_system
require_cmd python3
require_cmd xmllint

make_domain d1
make_counter_guest d1
sed -i 's|</devices>|<video><model type="vga"/></video></devices>|' "$STATE/domains/d1.xml"
make_domain d2
D=$MNT/d1
PNGS=$STATE/snapshots/d1

# assert_screen SNAP: SNAP (nested path under D) has a screen.png that is
# the file kept in STATE, 0444, its size, mtime = creationTime, a PNG of
# more than one colour.
assert_screen() {
    local f=$D/$1/screen.png name kept got ctime
    name=$(basename "$1")
    kept=$PNGS/$name.png
    [ -f "$f" ] || fail "$1 has no screen.png: $(ls "$D/$1")"
    [ -f "$kept" ] || fail "$1: no $kept in STATE"
    assert_eq "$1/screen.png mode" 444 "$(stat -c %a "$f")"
    assert_eq "$1/screen.png size" "$(stat -c %s "$kept")" "$(stat -c %s "$f")"
    ctime=$(xmllint --xpath 'string(/domainsnapshot/creationTime)' "$D/$1/metadata.xml")
    assert_eq "$1/screen.png mtime" "$ctime" "$(stat -c %Y "$f")"
    cmp -s "$f" "$kept" || fail "$1/screen.png differs from $kept"
    got=$(png_check "$f")
    say "$1/screen.png: $(stat -c %s "$f") bytes, $got"
    case "$got" in
        *" colours 1") fail "$1/screen.png is one colour: $got" ;;
    esac
}

assert_no_screen() {
    [ ! -e "$D/$1/screen.png" ] || fail "$1 has a screen.png"
    ls "$D/$1" | grep -q screen.png && fail "ls $1 lists screen.png"
    [ ! -e "$PNGS/$(basename "$1").png" ] || fail "$1 has a picture in STATE"
}

mount_fs
check "an offline snapshot has no screen.png"
assert_ok mkdir "$D/off"
assert_no_screen off

check "a live snapshot of a running guest with a display: screen.png, a PNG of SeaBIOS's text"
assert_ok put "$D/state" start
assert_running d1 running
pid=$RUN_PID
wait_counter d1 5
n=$(errors_count d1)
assert_ok mkdir "$D/off/r1"
assert_screen off/r1
assert_eq "errors lines after r1" "$n" "$(errors_count d1)"
ls "$D/off/r1" | grep -qx screen.png || fail "ls off/r1 does not list screen.png: $(ls "$D/off/r1")"
unlinked=$(rm -f "$D/off/r1/screen.png" 2>&1) || fail "rm of screen.png failed: $unlinked"
[ -f "$D/off/r1/screen.png" ] || fail "rm screen.png removed it"

check "a paused domain's snapshot has one too; so has a disk-only one"
assert_ok put "$D/state" pause
assert_ok mkdir "$D/off/r1/p1"
assert_screen off/r1/p1
assert_ok put "$D/state" resume
assert_ok put "$D/create" "<domainsnapshot><name>k1</name><memory snapshot='no'/></domainsnapshot>"
assert_screen off/r1/p1/k1

check "a screendump that fails: the snapshot is taken, errors says why, no screen.png"
mkdir "$PNGS/.f1.png.tmp"
n=$(errors_count d1)
assert_ok mkdir "$D/current/f1"
assert_new_error "failed screendump" d1 "$n" "no screen.png for 'f1'"
assert_no_screen off/r1/p1/k1/f1
rmdir "$PNGS/.f1.png.tmp"
assert_running d1 running "$pid"

check "rmdir removes the picture from STATE"
assert_ok rmdir "$D/off/r1/p1/k1/f1"
assert_ok rmdir "$D/off/r1/p1/k1"
[ ! -e "$PNGS/k1.png" ] || fail "k1.png left in STATE after rmdir"

check ".forget keeps the picture; writing the metadata back to create brings it back"
cp "$D/off/r1/metadata.xml" "$WORKDIR/r1.xml"
cp "$D/off/r1/screen.png" "$WORKDIR/r1.png"
assert_ok put "$D/.forget" "snapshot r1"
[ ! -e "$D/off/r1" ] || fail "r1 still in the tree after .forget"
[ -f "$PNGS/r1.png" ] || fail ".forget removed r1.png"
assert_ok put_file "$D/create" "$WORKDIR/r1.xml"
[ -d "$D/off/r1" ] || fail "r1 not back after create"
assert_screen off/r1
cmp -s "$D/off/r1/screen.png" "$WORKDIR/r1.png" || fail "r1's screen.png changed across .forget and create"

check "a domain without a display device: no screen.png, no errors line"
assert_ok put "$MNT/d2/state" start
n=$(errors_count d2)
assert_ok mkdir "$MNT/d2/n1"
[ ! -e "$MNT/d2/n1/screen.png" ] || fail "d2/n1 has a screen.png"
[ ! -e "$STATE/snapshots/d2/n1.png" ] || fail "d2 has n1.png in STATE"
assert_eq "d2 errors lines" "$n" "$(errors_count d2)"
assert_ok put "$MNT/d2/state" destroy

check "across a restart: kept; a picture of no snapshot is reported by reconcile and kept"
cp "$PNGS/r1.png" "$PNGS/ghost.png"
umount_fs
mount_fs
assert_screen off/r1
# .forget moved p1 up to off; the redefine of r1 did not move it back.
assert_screen off/p1
deadline=$(( $(date +%s) + 10 * TIME_SCALE ))
until grep -q "ghost.png is the screen.png of no snapshot" "$D/errors"; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "reconcile did not report ghost.png: $(cat "$D/errors")"
    sleep 0.1
done
[ -f "$PNGS/ghost.png" ] || fail "reconcile deleted ghost.png"
rm -f "$PNGS/ghost.png"

check "rm -r removes every picture of the subtree"
assert_ok rm -r "$D/off"
for s in r1 p1; do
    [ ! -e "$PNGS/$s.png" ] || fail "$s.png left after rm -r"
done
assert_ok mkdir "$D/last"
assert_screen last
assert_ok put "$D/state" destroy
assert_shutoff d1 "$pid"

check "undefine full removes the pictures"
assert_ok put "$D/.undefine" full
[ ! -e "$PNGS/last.png" ] || fail "last.png left after undefine full"
umount_fs
say "PASS"
