#!/usr/bin/env bash
# test-libvirt-disks: -o disks with the libvirt backend on a local URI (a
# private libvirtd): SNAP/disks/vda reads what qemu-img convert -U gives
# for internal snapshots of a shut-off and of a running guest and for an
# external chain made with virsh --disk-only; exact size, SEEK_DATA/HOLE;
# ESTALE once the snapshot is deleted (through the mount, or with virsh
# while the file is open); a network disk is left out with a line in
# errors, a block disk is read through its <source dev> (a loop device)
# or, when it cannot be read, left out with a line in errors; rsync and
# restic back it up; no qemu-nbd outlives its use; a
# remote URI with -o disks is refused at mount.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/libvirt.sh"
require_cmd python3 sha256sum rsync restic qemu-io

lv_start tcp
lv_define g1
lv_define g2
IMG1=$LV_DIR/g1.qcow2
IMG2=$LV_DIR/g2.qcow2
VSIZE=$((16 << 20))
M=$((1 << 20))
qemu-io -f qcow2 -c "write -P 0x11 0 1M" -c "write -P 0x12 4M 2M" "$IMG1" >/dev/null
qemu-io -f qcow2 -c "write -P 0x21 0 1M" "$IMG2" >/dev/null

# raw_sum IMAGE [SNAP]: sha256 of qemu-img's raw conversion (at SNAP).
raw_sum() {
    qemu-img convert -U ${2:+-l "snapshot.name=$2"} -O raw "$1" "$WORKDIR/raw" ||
        fail "qemu-img convert of $1 ${2:-}"
    sha256sum <"$WORKDIR/raw" | cut -d' ' -f1
    rm -f "$WORKDIR/raw"
}
disk_sum() {
    local sum
    sum=$(sha256sum <"$1") || fail "reading $1 failed"
    echo "${sum%% *}"
}
# assert_disk FILE IMAGE [SNAP]: FILE has the size and bytes of IMAGE (at SNAP).
assert_disk() {
    assert_eq "size of $1" "$VSIZE" "$(stat -c %s "$1")"
    assert_eq "content of $1" "$(raw_sum "$2" "${3:-}")" "$(disk_sum "$1")"
}
nbd_count() { pgrep -c -P "$DAEMON_PID" qemu-nbd || true; }
read_errno() {
    python3 -c '
import os, sys
fd = int(sys.argv[1])
try:
    os.pread(fd, 4096, 0)
    print("read succeeded")
except OSError as e:
    print(os.strerror(e.errno))' "$1"
}

say "a remote URI with -o disks is refused at mount"
rc=0
out=$("$SNAPTREEFS" -f -o "backend=libvirt,uri=qemu+tcp://127.0.0.1:$LV_TCP_PORT/system,disks" "$MNT" 2>&1) || rc=$?
[ "$rc" -ne 0 ] || fail "a remote URI with -o disks mounted"
assert_contains "refusal" "$out" "needs a local libvirt URI"
mountpoint -q "$MNT" && fail "mounted anyway"

mount_libvirt "$LV_URI" -o disks
D=$MNT/g1

say "internal snapshot of a shut-off domain"
mkdir "$D/off1"
qemu-io -f qcow2 -c "write -P 0x13 0 2M" "$IMG1" >/dev/null
assert_eq "disks/ of off1" "vda" "$(ls "$D/off1/disks")"
assert_disk "$D/off1/disks/vda" "$IMG1" off1

say "SEEK_DATA / SEEK_HOLE follow the image's allocation"
out=$(python3 - "$D/off1/disks/vda" <<'PY'
import errno, os, sys
M = 1 << 20
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
def seek(off, whence):
    try:
        return os.lseek(fd, off, whence)
    except OSError as e:
        return "ENXIO" if e.errno == errno.ENXIO else str(e)
print(seek(0, os.SEEK_DATA), seek(0, os.SEEK_HOLE), seek(2 * M, os.SEEK_DATA),
      seek(4 * M, os.SEEK_HOLE), seek(7 * M, os.SEEK_DATA), seek(size, os.SEEK_DATA))
PY
) || fail "lseek script failed"
assert_eq "lseek on off1" "0 $M $((4 * M)) $((6 * M)) ENXIO ENXIO" "$out"

say "internal snapshot of a running domain, read while it runs"
vsh start g1 >/dev/null
mkdir "$D/current/live1"
assert_eq "live1 state" running "$(xmllint --xpath 'string(/domainsnapshot/state)' "$D/off1/live1/metadata.xml")"
assert_disk "$D/off1/live1/disks/vda" "$IMG1" live1
assert_disk "$D/off1/disks/vda" "$IMG1" off1
vsh destroy g1 >/dev/null

# (Their disks/ directories: a whole snapshot directory also holds the
# write-only control file `revert`, which neither can read.)
say "rsync and restic back up a snapshot's disks/"
rsync -r "$D/off1/live1/disks" "$WORKDIR/rsynced" || fail "rsync"
assert_eq "rsync of live1" "$(raw_sum "$IMG1" live1)" "$(disk_sum "$WORKDIR/rsynced/disks/vda")"
rm -rf "$WORKDIR/rsynced"
export RESTIC_REPOSITORY=$WORKDIR/restic RESTIC_PASSWORD=snaptreefs-test RESTIC_CACHE_DIR=$WORKDIR/restic-cache
restic init -q >/dev/null || fail "restic init"
restic backup -q "$D/off1/disks" >/dev/null || fail "restic backup of off1"
restic restore -q latest --target "$WORKDIR/restored" >/dev/null || fail "restic restore"
assert_eq "restic round trip of off1" "$(raw_sum "$IMG1" off1)" "$(disk_sum "$WORKDIR/restored$D/off1/disks/vda")"
rm -rf "$WORKDIR/restic" "$WORKDIR/restic-cache" "$WORKDIR/restored"

say "external chain made with virsh --disk-only: each snapshot reads the image it froze"
vsh snapshot-create-as g2 e1 --disk-only --diskspec vda,snapshot=external >/dev/null
OV1=$(vsh domblklist g2 | awk '$1 == "vda" {print $2}')
[ "$OV1" != "$IMG2" ] || fail "no overlay after e1"
qemu-io -f qcow2 -c "write -P 0x22 1M 1M" "$OV1" >/dev/null
vsh snapshot-create-as g2 e2 --disk-only --diskspec vda,snapshot=external >/dev/null
OV2=$(vsh domblklist g2 | awk '$1 == "vda" {print $2}')
qemu-io -f qcow2 -c "write -P 0x23 2M 1M" "$OV2" >/dev/null
wait_for 2 test -d "$MNT/g2/e1/e2"
assert_disk "$MNT/g2/e1/disks/vda" "$IMG2"
assert_disk "$MNT/g2/e1/e2/disks/vda" "$OV1"
[ "$(disk_sum "$MNT/g2/e1/disks/vda")" != "$(disk_sum "$MNT/g2/e1/e2/disks/vda")" ] ||
    fail "e1 and e2 read the same bytes"

say "a running domain's external snapshot"
vsh start g2 >/dev/null
vsh snapshot-create-as g2 e3 --disk-only --diskspec vda,snapshot=external >/dev/null
wait_for 2 test -d "$MNT/g2/e1/e2/e3"
assert_disk "$MNT/g2/e1/e2/e3/disks/vda" "$OV2"
vsh destroy g2 >/dev/null

say "a snapshot deleted through the mount while its disk is open: ESTALE"
mkdir "$D/current/gone1"
exec 3<"$D/off1/live1/gone1/disks/vda"
assert_eq "gone1 before rmdir" "13131313" "$(python3 -c 'import os; print(os.pread(3, 4, 0).hex())')"
rmdir "$D/off1/live1/gone1"
assert_eq "read after rmdir" "Stale file handle" "$(read_errno 3)"
exec 3<&-

say "a snapshot deleted with virsh while its disk is open: ESTALE, never other bytes"
mkdir "$D/current/gone2"
exec 3<"$D/off1/live1/gone2/disks/vda"
assert_eq "gone2 before virsh" "13131313" "$(python3 -c 'import os; print(os.pread(3, 4, 0).hex())')"
vsh snapshot-delete g1 gone2 >/dev/null
wait_for 2 test ! -e "$D/off1/live1/gone2"
assert_eq "read after virsh delete" "Stale file handle" "$(read_errno 3)"
exec 3<&-

say "rm -r of a snapshot directory with disks/ is silent and deletes it"
mkdir "$D/current/r1"
mkdir "$D/current/r2"
cat "$D/off1/live1/r1/r2/disks/vda" >/dev/null || fail "read r2"
assert_ok rm -r "$D/off1/live1/r1"
assert_eq "virsh after rm -r" "off1 live1" "$(vsh snapshot-list g1 --topological --name | xargs)"

say "a network disk is left out of disks/, and errors says so"
cat >"$LV_DIR/g3.xml" <<XML
<domain type='qemu'>
  <name>g3</name>
  <memory unit='MiB'>64</memory>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <disk type='file' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source file='$LV_DIR/g3.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <disk type='network' device='disk'>
      <driver name='qemu' type='raw'/>
      <source protocol='nbd' name='x'><host name='127.0.0.1' port='10809'/></source>
      <target dev='vdb' bus='virtio'/>
    </disk>
  </devices>
</domain>
XML
qemu-img create -q -f qcow2 "$LV_DIR/g3.qcow2" 16M
vsh define "$LV_DIR/g3.xml" >/dev/null
LV_DOMS+=(g3)
vsh snapshot-create-as g3 n1 --disk-only --diskspec vda,snapshot=external --diskspec vdb,snapshot=no >/dev/null
wait_for 2 test -d "$MNT/g3/n1"
assert_eq "disks/ of n1" "vda" "$(ls "$MNT/g3/n1/disks")"
assert_contains "g3 errors" "$(cat "$MNT/g3/errors")" "disk vdb: a network disk"
assert_disk "$MNT/g3/n1/disks/vda" "$LV_DIR/g3.qcow2"

say "block disks: <source dev> is served when it can be read, else left out"
LOOP=""
# The loop device goes last (after the daemon and libvirtd): detached
# while qemu-nbd holds it, it goes once they close it.
trap 'rc=$?; lv_cleanup; [ -z "$LOOP" ] || losetup -d "$LOOP" 2>/dev/null; (exit $rc); cleanup' EXIT
for f in g4 g4b; do
    qemu-img create -q -f qcow2 "$LV_DIR/$f.qcow2" 16M
    qemu-io -f qcow2 -c "write -P 0x41 0 1M" "$LV_DIR/$f.qcow2" >/dev/null
    qemu-img snapshot -c r1 "$LV_DIR/$f.qcow2"
    qemu-io -f qcow2 -c "write -P 0x42 0 2M" "$LV_DIR/$f.qcow2" >/dev/null
done
truncate -s %512 "$LV_DIR/g4b.qcow2"
LOOP=$(losetup --find --show "$LV_DIR/g4b.qcow2" 2>/dev/null) || skip "no loop device"
sed -e 's/<name>g3</<name>g4</' -e "s|g3.qcow2|g4.qcow2|" \
    -e '/<disk type=.network./,/<\/disk>/d' "$LV_DIR/g3.xml" >"$LV_DIR/g4.xml"
python3 - "$LV_DIR/g4.xml" "$LOOP" <<'PY'
import sys
path, loop = sys.argv[1], sys.argv[2]
block = """    <disk type='block' device='disk'>
      <driver name='qemu' type='qcow2'/>
      <source dev='%s'/>
      <target dev='%s' bus='virtio'/>
    </disk>
"""
xml = open(path).read().replace("  </devices>", block % (loop, "vdb") +
                                block % ("/dev/snaptreefs-no-such-device", "vdc") + "  </devices>")
open(path, "w").write(xml)
PY
vsh define "$LV_DIR/g4.xml" >/dev/null
LV_DOMS+=(g4)
{
    echo "<domainsnapshot><name>r1</name><state>shutoff</state><creationTime>$(date +%s)</creationTime>"
    echo "<memory snapshot='no'/><disks><disk name='vda' snapshot='internal'/>"
    echo "<disk name='vdb' snapshot='internal'/><disk name='vdc' snapshot='internal'/></disks>"
    vsh dumpxml --inactive g4
    echo "</domainsnapshot>"
} >"$LV_DIR/r1.xml"
vsh snapshot-create g4 --redefine "$LV_DIR/r1.xml" >/dev/null
wait_for 2 test -d "$MNT/g4/r1"
assert_eq "disks/ of r1" "vda vdb" "$(ls "$MNT/g4/r1/disks" | xargs)"
assert_disk "$MNT/g4/r1/disks/vdb" "$LV_DIR/g4b.qcow2" r1
assert_disk "$MNT/g4/r1/disks/vda" "$LV_DIR/g4.qcow2" r1
assert_contains "g4 errors" "$(cat "$MNT/g4/errors")" \
    "disk vdc: block device /dev/snaptreefs-no-such-device cannot be read"

say "exports stop when idle and at unmount"
deadline=$(( $(date +%s) + 13 * TIME_SCALE ))
until [ "$(nbd_count)" -eq 0 ]; do
    [ "$(date +%s)" -lt "$deadline" ] ||
        fail "a qemu-nbd still runs, idle: $(ps -o pid,etimes,stat,args --ppid "$DAEMON_PID")"
    sleep 0.2
done
cat "$D/off1/disks/vda" >/dev/null
[ "$(nbd_count)" -ge 1 ] || fail "no export while reading"
pid=$DAEMON_PID
umount_fs
assert_eq "qemu-nbd after unmount" "" "$(pgrep -P "$pid" qemu-nbd)"
pgrep -f "qemu-nbd.*snaptreefs-nbd-" >/dev/null && fail "a qemu-nbd outlived the mount"
check_log
