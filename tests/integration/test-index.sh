#!/usr/bin/env bash
# test-index: the start-up index (STATE/cache/DOM.index) is only a cache:
# a snapshot file changed, added or removed behind the daemon's back, or an
# index that is damaged, shows exactly what the files say at the next mount.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/views.sh"

make_domain d1
mount_fs
D=$MNT/d1
mkdir "$D/base"
mkdir "$D/current/s1"
mkdir "$D/current/s2"
umount_fs
mount_fs # parses the files written by the first mount, writes the index
[ -s "$STATE/cache/d1.index" ] || fail "no index written at start"
before=$(cd "$D" && find . -name metadata.xml -exec cat {} + | md5sum)
umount_fs

check "a remount from the index shows the same tree"
mount_fs
assert_eq "metadata through the index" "$before" "$(cd "$D" && find . -name metadata.xml -exec cat {} + | md5sum)"
check_views "$D" "from the index"
umount_fs

check "a file edited behind the daemon's back is read again"
f=$STATE/snapshots/d1/s1.xml
sed -i 's|</name>|</name>\n  <description>edited by hand</description>|' "$f"
grep -q "edited by hand" "$f" || fail "the edit did not happen"
mount_fs
assert_contains "s1 after the edit" "$(cat "$D/.by-name/s1/metadata.xml")" "edited by hand"
umount_fs

check "a file removed or added behind the daemon's back"
mv "$STATE/snapshots/d1/s2.xml" "$WORKDIR/s2.xml"
mount_fs
[ ! -e "$D/.by-name/s2" ] || fail "s2 shown without its file"
umount_fs
mv "$WORKDIR/s2.xml" "$STATE/snapshots/d1/s2.xml"
mount_fs
[ -d "$D/base/s1/s2" ] || fail "s2 not shown once its file is back"
umount_fs

check "a damaged or foreign index changes nothing"
for damage in truncate garbage; do
    case $damage in
        truncate) head -c 100 "$STATE/cache/d1.index" >"$WORKDIR/i" ;;
        garbage) head -c 4096 /dev/urandom >"$WORKDIR/i" ;;
    esac
    cp "$WORKDIR/i" "$STATE/cache/d1.index"
    mount_fs
    assert_eq "snapshots with a $damage index" "base s1 s2" "$(ls "$D/.by-name" | tr '\n' ' ' | sed 's/ $//')"
    assert_contains "s1 with a $damage index" "$(cat "$D/.by-name/s1/metadata.xml")" "edited by hand"
    check_views "$D" "with a $damage index"
    umount_fs
done

check ".undefine removes the domain's index with the rest"
mount_fs
[ -e "$STATE/cache/d1.index" ] || fail "no index before .undefine"
put "$D/.undefine" metadata || fail ".undefine metadata"
[ ! -e "$STATE/cache/d1.index" ] || fail "the index of an undefined domain is left"
umount_fs

# Domains load on one thread per CPU. GLib 2.74 failed a number parse in a
# thread racing another's first one (errno clobbered), which dropped one
# domain in about three starts of a thousand here.
check "every domain of many loads, start after start"
rm -rf "$STATE/domains" "$STATE/snapshots" "$STATE/cache"
mkdir -p "$STATE/domains"
for i in $(seq -w 1 400); do
    # No disk: the domains only have to load (the reconcile reports none).
    printf '<domain type="kvm">\n  <name>m%s</name>\n  <memory unit="KiB">1048576</memory>\n  <vcpu>1</vcpu>\n  <os>\n    <type arch="x86_64" machine="pc">hvm</type>\n  </os>\n</domain>\n' \
        "$i" >"$STATE/domains/m$i.xml"
done
for round in $(seq 1 40); do
    mount_fs
    assert_eq "domains shown, start $round" 400 "$(ls "$MNT" | wc -l)"
    umount_fs
done
say "PASS"
