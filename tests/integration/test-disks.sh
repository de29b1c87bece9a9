#!/usr/bin/env bash
# test-disks: with -o disks, SNAP/disks/TARGET reads the disk as it was at
# SNAP (the bytes qemu-img convert gives), shut off and while the domain
# runs and writes; holes show through SEEK_HOLE; rm -r stays silent; a
# deleted snapshot's open file fails; no qemu-nbd outlives its use.
source "$(dirname "$0")/../lib/common.sh"
require_cmd python3 sha256sum rsync restic
require_qemu_system

make_domain d1
IMG=$(image d1)
D=$MNT/d1
VSIZE=$(qemu-img info --output=json "$IMG" | jq -r '."virtual-size"')

# raw_sum SNAP: sha256 of qemu-img's raw conversion of the disk at SNAP.
raw_sum() {
    qemu-img convert -U -f qcow2 -l "snapshot.name=$1" -O raw "$IMG" "$WORKDIR/raw" ||
        fail "qemu-img convert of $1"
    sha256sum <"$WORKDIR/raw" | cut -d' ' -f1
    rm -f "$WORKDIR/raw"
}

# disk_sum PATH: sha256 of a disk file read through the mount.
disk_sum() {
    local sum
    sum=$(sha256sum <"$1") || fail "reading $1 failed"
    echo "${sum%% *}"
}

# assert_disk_is SNAP_DIR SNAP: disks/vda has the bytes and size of the disk at SNAP.
assert_disk_is() {
    local f=$1/disks/vda
    assert_eq "size of $f" "$VSIZE" "$(stat -c %s "$f")"
    assert_eq "content of $f" "$(raw_sum "$2")" "$(disk_sum "$f")"
}

# wait_nbd_count N SECONDS: until N exports run.
wait_nbd_count() {
    local deadline=$(( $(date +%s) + $2 * TIME_SCALE ))
    while [ "$(nbd_count)" != "$1" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "expected $1 qemu-nbd within $2 s, have $(nbd_count)"
        sleep 0.1
    done
}

check "build a tree, a distinct pattern on the disk for each snapshot"
write_pattern "$IMG" 0x11 0 1M
mount_fs
mkdir "$D/s1" || fail "mkdir s1"
write_pattern "$IMG" 0x22 1M 1M
mkdir "$D/s1/s2" || fail "mkdir s2"
write_pattern "$IMG" 0x33 0 512K
mkdir "$D/s1/s2/s3" || fail "mkdir s3"
put "$D/s1/revert" "" || fail "revert s1"
write_pattern "$IMG" 0x44 4M 2M
mkdir "$D/s1/s4" || fail "mkdir s4"

check "without -o disks there is no disks/"
[ ! -e "$D/s1/disks" ] || fail "s1/disks exists without -o disks"
assert_errno "No such file or directory" stat "$D/s1/disks"
case " $(ls -A "$D/s1" | tr '\n' ' ') " in *" disks "*) fail "disks listed without -o disks" ;; esac
umount_fs

mount_fs -o disks
check "with -o disks: disks/vda is a 0444 regular file of the virtual size; disks/ lists it"
assert_eq "ls s1/disks" "vda" "$(ls "$D/s1/disks")"
assert_eq "mode of s1/disks/vda" "regular file 444" "$(stat -c '%F %a' "$D/s1/disks/vda")"
assert_eq "mode of s1/disks" "directory 755" "$(stat -c '%F %a' "$D/s1/disks")"
assert_eq "links of s1 (s2, s4, disks)" 5 "$(stat -c %h "$D/s1")"

check "st_blocks: the whole size until the first open, then the snapshot's data; plain cp copies sparsely"
f=$D/s1/s4/disks/vda
assert_eq "blocks of s4 before any open" "$((VSIZE / 512))" "$(stat -c %b "$f")"
# cp's own open is the first: the fstat it does next must see the holes.
cp "$f" "$WORKDIR/auto" || fail "cp of s4"
used=$(du -k "$WORKDIR/auto" | cut -f1)
[ "$used" -le $((8 * 1024)) ] || fail "plain cp of s4 uses $used KiB: the source did not look sparse"
assert_eq "plain cp of s4" "$(raw_sum s4)" "$(disk_sum "$WORKDIR/auto")"
rm -f "$WORKDIR/auto"
# s4 holds s1's first MiB and the 2 MiB written at 4 MiB.
assert_eq "blocks of s4 after an open" $((3 * 1024 * 2)) "$(stat -c %b "$f")"
assert_eq "size of s4 after an open" "$VSIZE" "$(stat -c %s "$f")"

check "the bytes are qemu-img convert's, for every snapshot of the tree"
for s in s1 s1/s2 s1/s2/s3 s1/s4; do
    assert_disk_is "$D/$s" "$(basename "$s")"
done
assert_eq "s3's first bytes" "33333333" "$(head -c 4 "$D/s1/s2/s3/disks/vda" | od -An -tx1 | tr -d ' \n')"
assert_eq "s2 at 512K" "11111111" "$(dd if="$D/s1/s2/disks/vda" bs=512K skip=1 count=1 2>/dev/null | head -c 4 | od -An -tx1 | tr -d ' \n')"

check "cp, dd and a sparse copy"
cp "$D/s1/s4/disks/vda" "$WORKDIR/copy" || fail "cp"
assert_eq "cp of s4" "$(raw_sum s4)" "$(disk_sum "$WORKDIR/copy")"
rm -f "$WORKDIR/copy"
dd if="$D/s1/s2/disks/vda" of="$WORKDIR/copy" bs=1M status=none || fail "dd"
assert_eq "dd of s2" "$(raw_sum s2)" "$(disk_sum "$WORKDIR/copy")"
rm -f "$WORKDIR/copy"
cp --sparse=always "$D/s1/s4/disks/vda" "$WORKDIR/sparse" || fail "cp --sparse=always"
used=$(du -k "$WORKDIR/sparse" | cut -f1)
[ "$used" -le $((8 * 1024)) ] || fail "sparse copy of s4 uses $used KiB, expected at most the 3 MiB written (+ slack)"
assert_eq "sparse copy of s4" "$(raw_sum s4)" "$(disk_sum "$WORKDIR/sparse")"
rm -f "$WORKDIR/sparse"
rsync "$D/s1/disks/vda" "$WORKDIR/rsynced" || fail "rsync"
assert_eq "rsync of s1" "$(raw_sum s1)" "$(disk_sum "$WORKDIR/rsynced")"
rm -f "$WORKDIR/rsynced"

check "restic backs up and restores a snapshot's disks/"
export RESTIC_REPOSITORY=$WORKDIR/restic RESTIC_PASSWORD=snaptreefs-test RESTIC_CACHE_DIR=$WORKDIR/restic-cache
restic init -q >/dev/null || fail "restic init"
restic backup -q "$D/s1/s2/disks" >/dev/null || fail "restic backup of s2's disks/"
restic restore -q latest --target "$WORKDIR/restored" >/dev/null || fail "restic restore"
assert_eq "restic round trip of s2" "$(raw_sum s2)" "$(disk_sum "$WORKDIR/restored$D/s1/s2/disks/vda")"
rm -rf "$WORKDIR/restic" "$WORKDIR/restic-cache" "$WORKDIR/restored"

check "SEEK_DATA / SEEK_HOLE follow the image's allocation"
out=$(python3 - "$D/s1/s4/disks/vda" <<'PY'
import errno, os, sys
M = 1 << 20
fd = os.open(sys.argv[1], os.O_RDONLY)
size = os.fstat(fd).st_size
def seek(off, whence):
    try:
        return os.lseek(fd, off, whence)
    except OSError as e:
        return "ENXIO" if e.errno == errno.ENXIO else str(e)
print(seek(0, os.SEEK_DATA), seek(0, os.SEEK_HOLE), seek(3 * M, os.SEEK_DATA),
      seek(4 * M, os.SEEK_HOLE), seek(7 * M, os.SEEK_DATA), seek(7 * M, os.SEEK_HOLE),
      seek(size, os.SEEK_DATA))
PY
) || fail "lseek script failed"
# s4 (s1 reverted to, then written): 1 MiB of data at 0 (0x11), 2 MiB at
# 4M (0x44), holes elsewhere.
assert_eq "lseek on s4" "0 $((1 << 20)) $((4 << 20)) $((6 << 20)) ENXIO $((7 << 20)) ENXIO" "$out"

check "unlink under disks/ and rmdir disks succeed and change nothing"
before=$(fingerprint d1)
assert_ok rm -f "$D/s1/disks/vda"
assert_ok rmdir "$D/s1/disks"
assert_unchanged "rm disks/vda, rmdir disks" "$before" d1
[ -f "$D/s1/disks/vda" ] || fail "s1/disks/vda is gone after unlink"

check "a file held open across the rmdir of its snapshot fails (ESTALE or EIO), never reads other data"
mkdir "$D/s1/s4/s5" || fail "mkdir s5"
exec 3<"$D/s1/s4/s5/disks/vda"
assert_eq "s5 before rmdir" "11111111" "$(python3 -c 'import os,sys; print(os.pread(3, 4, 0).hex())')"
rmdir "$D/s1/s4/s5" || fail "rmdir s5"
out=$(python3 -c '
import os
try:
    os.pread(3, 4096, 0)
    print("read succeeded")
except OSError as e:
    print(os.strerror(e.errno))' 2>&1)
exec 3<&-
case "$out" in
    "Stale file handle" | "Input/output error") ;;
    *) fail "read of s5's disk after its rmdir: expected ESTALE or EIO, got: $out" ;;
esac
[ ! -e "$D/s1/s4/s5" ] || fail "s5 still exists"
assert_eq "tags after rmdir s5" "s1 s2 s3 s4" "$(disk_tags "$IMG")"

check "rm -r of a snapshot directory with disks/ is silent and deletes it"
mkdir "$D/s1/s4/s6" || fail "mkdir s6"
mkdir "$D/s1/s4/s6/s7" || fail "mkdir s7"
cat "$D/s1/s4/s6/disks/vda" >/dev/null || fail "read s6"
assert_ok rm -r "$D/s1/s4/s6"
assert_eq "tags after rm -r s6" "s1 s2 s3 s4" "$(disk_tags "$IMG")"
assert_store_agrees d1

check "exports stop when idle"
wait_nbd_count 0 $((3 + 10))

check "the domain runs and writes: snapshots still read as qemu-img converts them"
TEST_QMP=$WORKDIR/test.qmp
cat >"$WORKDIR/qemu" <<SH
#!/bin/sh
exec qemu-system-x86_64 "\$@" -qmp unix:$TEST_QMP,server=on,wait=off
SH
chmod +x "$WORKDIR/qemu"
sed -i "s|<emulator>[^<]*</emulator>|<emulator>$WORKDIR/qemu</emulator>|" "$STATE/domains/d1.xml"
umount_fs
mount_fs -o disks
cat >"$WORKDIR/hmp.py" <<'PY'
# hmp.py SOCKET CMD...: runs HMP commands through QMP; prints their output.
import json, socket, sys
s = socket.socket(socket.AF_UNIX)
s.connect(sys.argv[1])
f = s.makefile("rw")
json.loads(f.readline())
def execute(cmd, **args):
    f.write(json.dumps({"execute": cmd, "arguments": args}) + "\n")
    f.flush()
    while True:
        r = json.loads(f.readline())
        if "return" in r or "error" in r:
            return r
execute("qmp_capabilities")
for line in sys.argv[2:]:
    r = execute("human-monitor-command", **{"command-line": line})
    if "error" in r:
        sys.exit(str(r["error"]))
    sys.stdout.write(r["return"])
PY
# guest_write BYTE OFF LEN: the running guest's disk gets BYTE over the range.
guest_write() {
    local out
    out=$(python3 "$WORKDIR/hmp.py" "$TEST_QMP" "qemu-io -d /machine/peripheral/dev0/virtio-backend \"write -P $1 $2 $3\"") ||
        fail "qemu-io in QEMU: $out"
    # It prints nothing to the monitor when it worked.
    case "$out" in *rror*) fail "qemu-io write $1 $2 $3 in QEMU: $out" ;; esac
}
assert_ok put "$D/state" start
assert_running d1 running
deadline=$(( $(date +%s) + 10 ))
until [ -S "$TEST_QMP" ]; do
    [ "$(date +%s)" -lt "$deadline" ] || fail "no test QMP socket"
    sleep 0.05
done
guest_write 0x66 0 1M
mkdir "$D/current/live1" || fail "mkdir live1 while running"
guest_write 0x77 0 2M
# Reads of every snapshot while the guest keeps overwriting the same
# clusters.
python3 - "$WORKDIR/hmp.py" "$TEST_QMP" <<'PY' >"$WORKDIR/writer.log" 2>&1 &
import subprocess, sys, time
end = time.time() + 600
i = 0
while time.time() < end:
    i += 1
    cmd = 'qemu-io -d /machine/peripheral/dev0/virtio-backend "write -P 0x%02x %d 1M"' % (0x80 + i % 64, (i % 6) << 20)
    if subprocess.run([sys.executable, sys.argv[1], sys.argv[2], cmd],
                      capture_output=True).returncode != 0:
        break
    print(i, flush=True)
PY
writer=$!
EXTRA_PIDS+=("$writer")
for s in s1/s4/live1 s1 s1/s2 s1/s2/s3 s1/s4; do
    assert_disk_is "$D/$s" "$(basename "$s")"
done
assert_eq "live1's first bytes while the guest writes" "66666666" \
    "$(head -c 4 "$D/s1/s4/live1/disks/vda" | od -An -tx1 | tr -d ' \n')"
kill "$writer" 2>/dev/null
wait "$writer" 2>/dev/null || true
writes=$(grep -c '^[0-9]' "$WORKDIR/writer.log" || true)
[ "$writes" -ge 5 ] || fail "the guest wrote only $writes times during the reads: $(tail -n 3 "$WORKDIR/writer.log")"
say "the guest wrote $writes MiB while the snapshots were read"
assert_running d1 running

check "an export open at unmount is stopped with it"
cat "$D/s1/s4/live1/disks/vda" >/dev/null || fail "read live1"
[ "$(nbd_count)" -ge 1 ] || fail "no export after a read"
assert_ok put "$D/state" destroy
umount_fs
assert_eq "qemu-nbd after unmount" 0 "$(nbd_count)"
[ -z "$(ls -A "$STATE/run/nbd" 2>/dev/null)" ] || fail "files left in run/nbd: $(ls "$STATE/run/nbd")"
