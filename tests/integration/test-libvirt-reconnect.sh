#!/usr/bin/env bash
# test-libvirt-reconnect: what changed while the mount was disconnected from
# libvirtd (no events reached it) shows once it reconnects: the mount reads
# every definition and every snapshot's XML again. The changes are made in
# libvirt's own files while libvirtd is stopped, and it is started again.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/libvirt.sh"

lv_start
lv_define g1
vsh snapshot-create-as g1 v1 >/dev/null
mount_libvirt "$LV_URI"
D=$MNT/g1
assert_eq "description before" "" "$(xmllint --xpath 'string(/domainsnapshot/description)' "$D/v1/metadata.xml")"
assert_contains "memory before" "$(cat "$D/domain.xml")" "<memory unit='KiB'>65536</memory>"

say "libvirtd stops: the mount notices"
kill -TERM "$LV_PID"
wait "$LV_PID" 2>/dev/null || true
wait_for 10 grep -q "lost" "$D/errors"

say "meanwhile, libvirt's files change: a snapshot's description, the domain's memory"
snap_file=$LV_DIR/up/varlib/libvirt/qemu/snapshot/g1/v1.xml
dom_file=$LV_DIR/etc/qemu/g1.xml
[ -f "$snap_file" ] || fail "no $snap_file"
[ -f "$dom_file" ] || fail "no $dom_file"
sed -i 's|<name>v1</name>|<name>v1</name>\n  <description>changed while disconnected</description>|' "$snap_file"
sed -i "s|<memory unit='KiB'>65536</memory>|<memory unit='KiB'>98304</memory>|" "$dom_file"

say "libvirtd is back: after the reconnect both show within a second"
lv_start
assert_eq "libvirt has the description" "changed while disconnected" \
    "$(vsh snapshot-dumpxml g1 v1 | xmllint --xpath 'string(/domainsnapshot/description)' -)"
wait_for 40 grep -q "libvirt: reconnected to " "$DAEMON_LOG"
wait_for 1 grep -q "<description>changed while disconnected</description>" "$D/v1/metadata.xml"
wait_for 1 grep -q "<memory unit='KiB'>98304</memory>" "$D/domain.xml"
say "PASS"
