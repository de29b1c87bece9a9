#!/usr/bin/env bash
# Installs the Debian 12 packages snaptreefs needs to build, test and demo.
set -euo pipefail

PACKAGES=(
    build-essential meson ninja-build pkg-config
    libfuse3-dev fuse3
    libglib2.0-dev libjson-glib-dev libxml2-dev libxml2-utils
    libnbd-dev          # reads of disks/ go to qemu-nbd through libnbd
    qemu-utils qemu-system-x86
    libvirt0            # domainsnapshot.rng, for schema validation in tests
    libvirt-clients     # virsh -c test:/// for redefine compatibility tests
    libvirt-dev         # the libvirt backend (-o backend=libvirt)
    libgdk-pixbuf-2.0-dev  # libvirt screenshots that come as PPM become PNG
    libvirt-daemon libvirt-daemon-driver-qemu  # its tests run a private libvirtd
    tree procps psmisc util-linux
    jq                  # test helpers parse qemu-img info --output=json
    rsync restic        # test-disks and test-backup back the mount up with them
    attr                # test-backup lists extended attributes with getfattr
    python3             # benchmarks time operations with perf_counter
    clang libclang-rt-dev   # libFuzzer targets (scripts/fuzz.sh; test.sh runs each briefly)
    scdoc               # the man pages (man/*.scd) become troff at build time
    man-db groff-base   # test-man renders them with man --warnings
    debhelper dpkg-dev fakeroot lintian  # test-deb builds and checks the Debian package
    systemd             # test-fstab checks the .mount unit with systemd-analyze verify
    libguestfs-dev      # files/ (-o files): the guest's filesystems through libguestfs
    linux-image-amd64   # the kernel supermin builds libguestfs's appliance from
    guestfish guestfs-tools  # scripts/bench/files compares with guestfish and virt-tar-out
    e2fsprogs fdisk     # test-files builds ext4 images (mkfs.ext4 -d) and MBR tables (sfdisk)
)

missing=()
for p in "${PACKAGES[@]}"; do
    dpkg-query -W -f='${Status}' "$p" 2>/dev/null | grep -q "install ok installed" || missing+=("$p")
done
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -q
$SUDO apt-get install -y -q --no-install-recommends "${missing[@]}"
