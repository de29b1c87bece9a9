#!/usr/bin/env bash
# test-fstab.sh: what `meson install` installs, mounted the way a system
# administrator mounts it: fstab lines of type fuse.snaptreefs through
# mount(8) and mount.fuse3 (which finds the installed snaptreefs on mount's
# PATH),
# for a state directory and for libvirt (a source it ignores); umount ends
# each daemon. The .mount unit of the man page passes systemd-analyze verify.
. "$(dirname "$0")/../lib/common.sh"

require_cmd meson mount umount find
[ "${SNAPTREEFS_TEST_NS:-}" = 1 ] || skip "needs a private mount namespace (root and unshare -m)"
[ -x /sbin/mount.fuse3 ] || [ -x /usr/sbin/mount.fuse3 ] || skip "no mount.fuse3 (fuse3)"
: "${SNAPTREEFS_BUILD_ROOT:?meson test sets SNAPTREEFS_BUILD_ROOT}"
SRC=$(cd "$(dirname "$0")/../.." && pwd)

check "meson install: the three programs and their man pages"
DEST=$WORKDIR/dest
meson install -C "$SNAPTREEFS_BUILD_ROOT" --no-rebuild --quiet --destdir "$DEST" >"$LOGS/install.log" 2>&1 ||
    fail "meson install: $(cat "$LOGS/install.log")"
got=$(cd "$DEST" && find . -type f | sed -E 's|^\./.*/(bin/)|\1|; s|^\./.*/(man/man1/)|\1|' | sort | tr '\n' ' ')
assert_eq "installed files" "bin/snaptreefs bin/snaptreefs-export bin/snaptreefs-import man/man1/snaptreefs-export.1 man/man1/snaptreefs-import.1 man/man1/snaptreefs.1 " "$got"
BIN=$(dirname "$(find "$DEST" -path '*/bin/snaptreefs' -type f)")
MANDIR=$(dirname "$(dirname "$(find "$DEST" -name snaptreefs.1)")")
export PATH="$BIN:$PATH"
# mount(8) runs its helpers with its own PATH (the standard directories),
# so the installed programs are laid over their real install directory
# (/usr/local/bin for meson's default prefix), in this test's mount
# namespace only: an overlay keeps what is there, a bind hides it.
TARGET=${BIN#"$DEST"}
mount -t overlay overlay -o "lowerdir=$BIN:$TARGET" "$TARGET" 2>/dev/null ||
    mount --bind "$BIN" "$TARGET" || fail "cannot lay $BIN over $TARGET"
assert_eq "snaptreefs as /bin/sh finds it" "$TARGET/snaptreefs" "$(env -i PATH=/usr/local/sbin:/usr/local/bin:/usr/sbin:/usr/bin:/sbin:/bin sh -c 'command -v snaptreefs')"

make_domain vm1
MNT2=$WORKDIR/mnt2
MNT3=$WORKDIR/mnt3
mkdir -p "$MNT2" "$MNT3"
FSTAB=$WORKDIR/fstab
cat >"$FSTAB" <<EOT
# the forms snaptreefs(1) shows
$STATE  $MNT  fuse.snaptreefs  defaults  0 0
none  $MNT2  fuse.snaptreefs  backend=libvirt,uri=test:///default  0 0
$STATE  $MNT3  fuse.snaptreefs  ro,disks,noauto  0 0
EOT

check "mount -T FSTAB -a mounts both lines with the installed snaptreefs"
mount -T "$FSTAB" -a 2>"$LOGS/mount.log" || fail "mount -a: $(cat "$LOGS/mount.log")"
mountpoint -q "$MNT" || fail "$MNT not mounted"
mountpoint -q "$MNT2" || fail "$MNT2 not mounted"
assert_eq "fstype" "fuse.snaptreefs fuse.snaptreefs" \
    "$(findmnt -n -o FSTYPE "$MNT") $(findmnt -n -o FSTYPE "$MNT2")"
pid=$(daemon_pid "$MNT") || fail "no daemon for $MNT"
pid2=$(daemon_pid "$MNT2") || fail "no daemon for $MNT2"
assert_eq "daemon binary" "$TARGET/snaptreefs" "$(readlink "/proc/$pid/exe")"
assert_eq "native mount" "vm1" "$(ls "$MNT")"
assert_eq "libvirt mount (source ignored)" "test" "$(ls "$MNT2")"
assert_ok mkdir "$MNT/vm1/s1"
assert_eq "snapshot taken" "s1" "$(disk_tags "$(image vm1)")"

check "umount ends each daemon"
umount_daemonized "$MNT" "$pid"
umount_daemonized "$MNT2" "$pid2"

check "the libvirt line with the man page's options for boot (nofail, x-systemd.requires=...)"
grep -q '^none  /mnt/vms  fuse.snaptreefs  nofail,x-systemd.requires=libvirtd.service,backend=libvirt,uri=qemu:///system  0 0$' \
    "$SRC/man/snaptreefs.1.scd" || fail "the man page lacks the boot line for libvirt"
printf 'none  %s  fuse.snaptreefs  nofail,x-systemd.requires=libvirtd.service,backend=libvirt,uri=test:///default  0 0\n' \
    "$MNT2" >"$WORKDIR/fstab-boot"
mount -T "$WORKDIR/fstab-boot" -a 2>"$LOGS/mount.log" || fail "mount -a (boot line): $(cat "$LOGS/mount.log")"
assert_eq "libvirt mount, boot options" "test" "$(ls "$MNT2")"
umount_daemonized "$MNT2" "$(daemon_pid "$MNT2")"

check "mount MOUNTPOINT finds its line"
mount -T "$FSTAB" "$MNT" 2>"$LOGS/mount.log" || fail "mount $MNT: $(cat "$LOGS/mount.log")"
assert_eq "after mount by mountpoint" "s1" "$(ls "$MNT/vm1/.by-name")"
umount_daemonized "$MNT" "$(daemon_pid "$MNT")"

check "snaptreefs options in fstab: ro, disks (noauto: not by mount -a)"
mountpoint -q "$MNT3" && fail "mount -a mounted the noauto line"
mount -T "$FSTAB" "$MNT3" 2>"$LOGS/mount.log" || fail "mount $MNT3: $(cat "$LOGS/mount.log")"
assert_eq "disks/ with -o disks" "vda" "$(ls "$MNT3/vm1/s1/disks")"
assert_errno "Read-only file system" mkdir "$MNT3/vm1/s1/s2"
umount_daemonized "$MNT3" "$(daemon_pid "$MNT3")"

check "the man page's .mount unit passes systemd-analyze verify"
UNITS=$WORKDIR/units
mkdir -p "$UNITS"
# The unit between the fences in the man page source, named after its Where=.
awk '/^```/ { if (u) exit; n = 1; next } n && /^\[Unit\]/ { u = 1 } u { print }' \
    "$SRC/man/snaptreefs.1.scd" >"$UNITS/unit"
grep -q '^Type=fuse.snaptreefs$' "$UNITS/unit" || fail "no .mount unit in man/snaptreefs.1.scd"
awk '/^```/ { if (u) exit; n = 1; next } n && /^\[Unit\]/ { u = 1 } u { print }' \
    "$SRC/README.md" >"$UNITS/readme-unit"
cmp -s "$UNITS/unit" "$UNITS/readme-unit" ||
    fail "the README's .mount unit differs from the man page's: $(diff "$UNITS/unit" "$UNITS/readme-unit")"
name=$(systemd-escape --path --suffix=mount "$(sed -n 's/^Where=//p' "$UNITS/unit")" 2>/dev/null ||
    echo mnt-snaps.mount)
mv "$UNITS/unit" "$UNITS/$name"
# A unit that must pass says whether systemd-analyze can run here at all.
printf '[Mount]\nWhat=tmpfs\nWhere=/mnt/probe\nType=tmpfs\n' >"$UNITS/mnt-probe.mount"
if ! command -v systemd-analyze >/dev/null ||
    ! probe=$(systemd-analyze verify --man=no "$UNITS/mnt-probe.mount" 2>&1); then
    say "SKIP of this one check: systemd-analyze cannot run here: ${probe:-not installed}"
else
    out=$(MANPATH=$MANDIR systemd-analyze verify "$UNITS/$name" 2>&1) ||
        fail "systemd-analyze verify $name: $out"
    [ -z "$out" ] || fail "systemd-analyze verify $name warns: $out"
    say "systemd-analyze verify $name: clean (man:snaptreefs(1) found in the installed pages)"
fi

say "PASS"
