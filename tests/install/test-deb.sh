#!/usr/bin/env bash
# test-deb.sh SOURCE_DIR BUILD_DIR: debian/ builds with dpkg-buildpackage in
# a copy of the tree (unit tests skipped: nocheck; the test command runs
# every suite anyway), lintian finds no error or warning, the .deb holds
# the files `meson install` installs (plus its copyright and changelog) and
# depends on what the programs need at run time.
set -euo pipefail
export LC_ALL=C
src=$1 build=$2
say() { printf 'test-deb: %s\n' "$*"; }
fail() { printf 'test-deb: FAIL: %s\n' "$*" >&2; exit 1; }
for c in dpkg-buildpackage dpkg-deb dh lintian meson; do
    command -v "$c" >/dev/null || { say "SKIP: no $c (scripts/install-deps.sh installs it)"; exit 77; }
done

work=$(mktemp -d "${TMPDIR:-/tmp}/snaptreefs-test-deb.XXXXXX")
trap 'rm -rf "$work"' EXIT
mkdir "$work/snaptreefs"
if git -C "$src" rev-parse --git-dir >/dev/null 2>&1; then
    # What a checkout has, tracked or new, without build directories.
    (cd "$src" && git ls-files -co --exclude-standard -z | tar --null -cf - -T -) |
        tar -xf - -C "$work/snaptreefs"
else
    (cd "$src" && tar --exclude='./build*' -cf - .) | tar -xf - -C "$work/snaptreefs"
fi

(cd "$work/snaptreefs" && DEB_BUILD_OPTIONS=nocheck dpkg-buildpackage -us -uc -b) \
    >"$work/build.log" 2>&1 || { tail -n 60 "$work/build.log" >&2; fail "dpkg-buildpackage failed"; }
deb=$(echo "$work"/snaptreefs_*.deb)
changes=$(echo "$work"/snaptreefs_*.changes)
[ -f "$deb" ] && [ -f "$changes" ] || fail "no .deb or .changes in $work: $(ls "$work")"
say "built $(basename "$deb")"

# Files, relative to the prefix: usr/bin/X -> bin/X, man pages uncompressed.
listing=$(dpkg -c "$deb")
deb_files=$(awk '$1 !~ /^d/ { print $6 }' <<<"$listing" | sed 's|^\./usr/||; s|\.gz$||' |
    grep -vxE 'share/doc/snaptreefs/(changelog|copyright)' | sort)
dest=$work/dest
meson install -C "$build" --no-rebuild --quiet --destdir "$dest" >"$work/install.log" 2>&1 ||
    fail "meson install: $(cat "$work/install.log")"
prefix=$(meson introspect "$build" --buildoptions | python3 -c \
    'import json,sys; print([o["value"] for o in json.load(sys.stdin) if o["name"] == "prefix"][0])')
meson_files=$(cd "$dest$prefix" && find . -type f | sed 's|^\./||' | sort)
[ "$deb_files" == "$meson_files" ] ||
    fail "the .deb and meson install differ: deb:
$deb_files
meson install ($prefix):
$meson_files"
say "the .deb installs what meson install does: $(echo "$deb_files" | tr '\n' ' ')"
for f in changelog.gz copyright; do
    grep -q "usr/share/doc/snaptreefs/$f\$" <<<"$listing" || fail "no usr/share/doc/snaptreefs/$f"
done

depends=$(dpkg-deb -f "$deb" Depends)
say "Depends: $depends"
for p in fuse3 qemu-utils qemu-system-x86 libfuse3-3 libglib2.0-0 libjson-glib-1.0-0 \
    libxml2 libnbd0 libvirt0 libc6; do
    grep -qE "(^|, |\| )$p( |,|$)" <<<"$depends" || fail "Depends lacks $p: $depends"
done

lintian --fail-on error,warning "$changes" >"$work/lintian.log" 2>&1 || {
    cat "$work/lintian.log" >&2
    fail "lintian failed"
}
if grep -E '^[EW]: ' "$work/lintian.log"; then fail "lintian reports errors or warnings"; fi
say "lintian: no error, no warning"
say "PASS"
