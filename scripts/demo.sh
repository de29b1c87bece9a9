#!/usr/bin/env bash
# demo.sh: builds snaptreefs, mounts a demo STATE at ./demo/mnt and makes a
# small snapshot tree through the mount with plain mkdir and echo.
set -euo pipefail

cd "$(dirname "$0")/.."
ROOT=$(pwd)
DEMO=$ROOT/demo
STATE=$DEMO/state
MNT=$DEMO/mnt
BIN=$ROOT/build/fs/snaptreefs

step() { printf '\n$ %s\n' "$*"; }
run() { step "$*"; "$@"; }

echo "== installing dependencies"
./scripts/install-deps.sh

echo "== building into build/"
if [ -f build/meson-private/coredata.dat ]; then
    meson setup --reconfigure build >/dev/null || meson setup --wipe build >/dev/null
else
    meson setup build >/dev/null
fi
meson compile -C build fs/snaptreefs >/dev/null || meson compile -C build

if mountpoint -q "$MNT" 2>/dev/null; then
    echo "== unmounting the previous demo"
    fusermount3 -u "$MNT" || fusermount3 -z -u "$MNT"
    for _ in $(seq 1 100); do
        mountpoint -q "$MNT" || break
        sleep 0.1
    done
fi
rm -rf "$DEMO"
mkdir -p "$STATE/domains" "$STATE/images" "$MNT"

echo "== demo STATE: one shut-off domain vm1 with a 64 MiB qcow2 disk"
qemu-img create -q -f qcow2 "$STATE/images/vm1.qcow2" 64M
cat >"$STATE/domains/vm1.xml" <<XML
<domain type='kvm'>
  <name>vm1</name>
  <uuid>$(cat /proc/sys/kernel/random/uuid)</uuid>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os>
    <type arch='x86_64' machine='pc'>hvm</type>
  </os>
  <devices>
    <emulator>/usr/bin/qemu-system-x86_64</emulator>
    <disk type='file' device='disk' snapshot='internal'>
      <driver name='qemu' type='qcow2'/>
      <source file='images/vm1.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
  </devices>
</domain>
XML

echo "== and vm2, whose disk takes external snapshots (qcow2 overlays)"
qemu-img create -q -f qcow2 "$STATE/images/vm2.qcow2" 64M
sed -e 's/vm1/vm2/g' -e "s/snapshot='internal'/snapshot='external'/" \
    -e "s|<uuid>.*</uuid>|<uuid>$(cat /proc/sys/kernel/random/uuid)</uuid>|" \
    "$STATE/domains/vm1.xml" >"$STATE/domains/vm2.xml"

echo "== mounting (daemonized)"
run "$BIN" "$STATE" "$MNT"

IMG=$STATE/images/vm1.qcow2
write() { step "qemu-io -c 'write -P $1 0 1M' vm1.qcow2"; qemu-io -f qcow2 -c "write -P $1 0 1M" "$IMG" >/dev/null; }

echo "== a snapshot tree, made with plain file operations"
write 0x11
run mkdir "$MNT/vm1/base"
write 0x22
run mkdir "$MNT/vm1/current/installed"
write 0x33
run mkdir "$MNT/vm1/current/configured"
step "echo > $MNT/vm1/base/revert"
echo > "$MNT/vm1/base/revert"
write 0x44
run mkdir "$MNT/vm1/current/experiment"
step "echo > $MNT/vm1/base/installed/revert"
echo > "$MNT/vm1/base/installed/revert"

echo "== external snapshots of vm2: each mkdir puts a new overlay on top"
run mkdir "$MNT/vm2/base"
run mkdir "$MNT/vm2/current/updated"
step "grep 'source file' $MNT/vm2/domain.xml"
grep "source file" "$MNT/vm2/domain.xml"

echo
echo "== the mounted tree"
if command -v tree >/dev/null; then
    run tree -a "$MNT"
else
    run find "$MNT"
fi
run ls -l "$MNT/vm1"
run readlink "$MNT/vm1/current"
run cat "$MNT/vm1/current/metadata.xml"
run qemu-img snapshot -l -U "$IMG"

cat <<TXT

Mounted at $MNT. Try:
  mkdir $MNT/vm1/current/NEW              take a snapshot
  echo > $MNT/vm1/base/revert             revert to base
  rmdir $MNT/vm1/base/experiment          delete one snapshot
  rm -r $MNT/vm1/base/installed           delete a subtree
  echo start > $MNT/vm1/state             run the domain (QEMU, no OS)
  mkdir $MNT/vm1/current/live             a live snapshot, with memory
  echo destroy > $MNT/vm1/state           stop it
Unmount with:
  fusermount3 -u $MNT
TXT
