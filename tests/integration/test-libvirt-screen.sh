#!/usr/bin/env bash
# test-libvirt-screen: screen.png in the libvirt backend (a private
# libvirtd, qemu driver): virDomainScreenshot at mkdir of a running or
# paused domain with a display, kept in -o cache=DIR under a name of its
# own, shown as SNAP/screen.png (a valid PNG of more than one colour);
# none for a domain without a display, a shut-off one or a snapshot made
# elsewhere; removed when the snapshot is deleted through the mount or
# seen gone after virsh deleted it; kept across a remount.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/libvirt.sh"
source "$(dirname "$0")/../lib/png.sh"
require_cmd virsh xmllint python3

lv_start
lv_define g1
lv_define g2
# g1 gets a display; g2 has none.
vsh dumpxml g1 | sed 's|</devices>|<video><model type="vga"/></video></devices>|' >"$WORKDIR/g1.xml"
vsh define "$WORKDIR/g1.xml" >/dev/null
vsh start g1 >/dev/null
vsh start g2 >/dev/null
CACHE=$WORKDIR/cache
cached() { ls "$CACHE" 2>/dev/null | grep -c '^screen-.*\.png$' || true; }
no_cached() { [ "$(cached)" -eq 0 ]; }

check "-o cache=DIR goes with the libvirt backend only"
assert_errno "goes with -o backend=libvirt" "$SNAPTREEFS" -f -o cache="$CACHE" "$STATE" "$MNT"

mount_libvirt "$LV_URI" -o "cache=$CACHE"
D=$MNT/g1

check "mkdir of a running domain with a display: screen.png from virDomainScreenshot"
sleep 1 # SeaBIOS draws something
assert_ok mkdir "$D/s1"
[ -f "$D/s1/screen.png" ] || fail "s1 has no screen.png: $(ls "$D/s1")"
assert_eq "s1/screen.png mode" 444 "$(stat -c %a "$D/s1/screen.png")"
assert_eq "cached pictures" 1 "$(cached)"
f=$(ls "$CACHE"/screen-*.png)
assert_eq "s1/screen.png size" "$(stat -c %s "$f")" "$(stat -c %s "$D/s1/screen.png")"
cmp -s "$f" "$D/s1/screen.png" || fail "s1/screen.png differs from the cached $f"
ctime=$(xmllint --xpath 'string(/domainsnapshot/creationTime)' "$D/s1/metadata.xml")
assert_eq "s1/screen.png mtime" "$ctime" "$(stat -c %Y "$D/s1/screen.png")"
got=$(png_check "$D/s1/screen.png")
say "s1/screen.png: $got"
case "$got" in *" colours 1") fail "s1/screen.png is one colour" ;; esac

check "paused: a picture too"
vsh suspend g1 >/dev/null
assert_ok mkdir "$D/current/p1"
[ -f "$D/s1/p1/screen.png" ] || fail "p1 has no screen.png"
png_check "$D/s1/p1/screen.png" >/dev/null
vsh resume g1 >/dev/null
assert_eq "cached pictures" 2 "$(cached)"

check "a domain without a display, and a snapshot virsh made: no screen.png, no error"
n=$(errors_count g2)
assert_ok mkdir "$MNT/g2/n1"
[ ! -e "$MNT/g2/n1/screen.png" ] || fail "g2/n1 has a screen.png"
assert_eq "g2 errors" "$n" "$(errors_count g2)"
vsh snapshot-create-as g1 v1 >/dev/null
wait_for 5 test -d "$D/s1/p1/v1"
[ ! -e "$D/s1/p1/v1/screen.png" ] || fail "v1, made by virsh, has a screen.png"
assert_eq "cached pictures" 2 "$(cached)"

check "kept across a remount"
umount_fs
mount_libvirt "$LV_URI" -o "cache=$CACHE"
cmp -s "$f" "$D/s1/screen.png" || fail "s1/screen.png differs after the remount"

check "deleted through the mount, or by virsh (seen gone): the cached picture goes"
assert_ok rmdir "$D/s1/p1/v1"
assert_ok rmdir "$D/s1/p1"
assert_eq "cached pictures after rmdir p1" 1 "$(cached)"
vsh snapshot-delete g1 s1 >/dev/null
wait_for 5 test ! -e "$D/s1"
wait_for 5 no_cached
umount_fs
say "PASS"
