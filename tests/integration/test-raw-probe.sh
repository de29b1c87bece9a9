#!/usr/bin/env bash
# test-raw-probe: a raw disk whose guest wrote a qcow2 header (naming
# another file as its backing) is still read as raw: qemu-img is always
# told the format, so the header steers neither sizes nor backing chains.
source "$(dirname "$0")/../lib/common.sh"

# The guest's bytes: a qcow2 header whose backing file is another image,
# written at the start of a 4 MiB raw disk.
make_image "$STATE/images/secret.qcow2" 1M
qemu-img create -q -f qcow2 -b "$STATE/images/secret.qcow2" -F qcow2 "$WORKDIR/planted.qcow2" ||
    fail "qemu-img create planted"
RAW=$STATE/images/r1-vda.raw
cp "$WORKDIR/planted.qcow2" "$RAW"
truncate -s 4M "$RAW"
cat >"$STATE/domains/r1.xml" <<XML
<domain type="kvm">
  <name>r1</name>
  <memory unit="MiB">64</memory>
  <vcpu>1</vcpu>
  <os><type arch="x86_64" machine="pc">hvm</type></os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type="file" device="disk" snapshot="external">
      <driver name="qemu" type="raw"/>
      <source file="images/r1-vda.raw"/>
      <target dev="vda" bus="virtio"/>
    </disk>
  </devices>
</domain>
XML
secret_before=$(sha256sum <"$STATE/images/secret.qcow2")
mount_fs -o disks
D=$MNT/r1

check "mkdir base: an external snapshot over the raw disk"
assert_ok mkdir "$D/base"
O1=$(xmllint --xpath 'string(//disk/source/@file)' "$D/domain.xml")
assert_eq "overlay backing format" raw "$(qemu-img info --output=json -U "$O1" | jq -r '."backing-filename-format"')"

check "base/disks/vda is the raw disk: 4 MiB, its own bytes, not the header's image"
assert_eq "size of base/disks/vda" 4194304 "$(stat -c %s "$D/base/disks/vda")"
assert_eq "content of base/disks/vda" "$(sha256sum <"$RAW")" "$(sha256sum <"$D/base/disks/vda")"

check "rmdir base: the chain planner sees the raw disk alone; secret untouched"
assert_ok rmdir "$D/base"
[ -f "$RAW" ] || fail "the raw disk is gone"
assert_eq "secret image" "$secret_before" "$(sha256sum <"$STATE/images/secret.qcow2")"
assert_eq "planted header kept" "$(head -c 4 "$WORKDIR/planted.qcow2" | od -An -tx1)" "$(head -c 4 "$RAW" | od -An -tx1)"
check_log
umount_fs
say "PASS"
