#!/usr/bin/env bash
# test-browse: the mounted tree's layout and attributes match DESIGN.md.
source "$(dirname "$0")/../lib/common.sh"

make_domain d1
make_domain d2
mount_fs

D=$MNT/d1
say "build d1: base -> s1 -> s2, base -> b1 (current b1)"
mkdir "$D/base"
mkdir "$D/current/s1"
mkdir "$D/current/s2"
put "$D/base/revert" "" || fail "revert to base"
mkdir "$D/current/b1"

check "top level lists the domains"
assert_eq "ls MNT" "d1 d2" "$(ls "$MNT" | tr '\n' ' ' | sed 's/ $//')"

check "domain directory holds the control files, current and the root; .by-name is reachable, not listed"
assert_eq "ls -A d1" ".forget .undefine base create current domain.xml errors job state" \
    "$(ls -A "$D" | sort | tr '\n' ' ' | sed 's/ $//')"
[ -d "$D/.by-name" ] || fail ".by-name cannot be reached by name"
assert_eq "ls -A d2 (no snapshot, no current)" ".forget .undefine create domain.xml errors job state" \
    "$(ls -A "$MNT/d2" | sort | tr '\n' ' ' | sed 's/ $//')"
assert_eq "ls d1 (the hidden control files hidden)" "base create current domain.xml errors job state" \
    "$(ls "$D" | sort | tr '\n' ' ' | sed 's/ $//')"
[ ! -e "$MNT/d2/current" ] && [ ! -L "$MNT/d2/current" ] || fail "d2/current exists without a current snapshot"

check "snapshot directories nest along parents"
got=$(cd "$D" && find . -type d -print | sort | tr '\n' ' ')
assert_eq "directories of d1 (a walk does not enter .by-name)" ". ./base ./base/b1 ./base/s1 ./base/s1/s2 " "$got"
assert_eq "ls -A base/s1" "metadata.xml revert s2" "$(ls -A "$D/base/s1" | sort | tr '\n' ' ' | sed 's/ $//')"

check "current is a relative symlink that resolves to the current snapshot"
link=$(readlink "$D/current")
case "$link" in /*) fail "current is absolute: $link" ;; esac
assert_eq "current resolves" "$D/base/b1" "$(cd "$D/current" && pwd -P)"
assert_contains "current/metadata.xml" "$(cat "$D/current/metadata.xml")" "<name>b1</name>"

check ".by-name holds a directory per snapshot with its own files and no child snapshots"
assert_eq "ls .by-name" "b1 base s1 s2" "$(ls "$D/.by-name" | sort | tr '\n' ' ' | sed 's/ $//')"
assert_eq "nlink .by-name (2 + a directory per snapshot)" 6 "$(stat -c %h "$D/.by-name")"
for s in base:base s1:base/s1 s2:base/s1/s2 b1:base/b1; do
    name=${s%%:*} path=${s#*:}
    f=$D/.by-name/$name
    [ -d "$f" ] && [ ! -L "$f" ] || fail ".by-name/$name is not a directory"
    assert_eq "ls -A .by-name/$name" "metadata.xml revert" "$(ls -A "$f" | sort | tr '\n' ' ' | sed 's/ $//')"
    assert_eq ".by-name/$name/metadata.xml" "$(cat "$D/$path/metadata.xml")" "$(cat "$f/metadata.xml")"
    assert_eq "mtime of .by-name/$name" "$(stat -c %Y "$D/$path")" "$(stat -c %Y "$f")"
    assert_eq "nlink of .by-name/$name" 2 "$(stat -c %h "$f")"
    [ "$(stat -c %i "$f")" != "$(stat -c %i "$D/$path")" ] ||
        fail ".by-name/$name shares its inode with the nested directory"
done
check "domain.xml shows disk paths resolved against STATE, state reads shutoff"
assert_contains "domain.xml" "$(cat "$D/domain.xml")" "$STATE/images/d1-vda.qcow2"
assert_contains "domain.xml" "$(cat "$D/domain.xml")" "<name>d1</name>"
assert_eq "state" "shutoff" "$(cat "$D/state")"
assert_eq "job when idle" "" "$(cat "$D/job")"

check "modes: dirs 0755, metadata.xml 0444, revert/create/.forget/.undefine 0600, state 0644, read-only files"
for d in "$D" "$D/base" "$D/base/s1" "$D/base/s1/s2" "$D/base/b1"; do
    assert_eq "mode of $d" 755 "$(stat -c %a "$d")"
    assert_eq "type of $d" directory "$(stat -c %F "$d")"
done
assert_eq "mode of metadata.xml" 444 "$(stat -c %a "$D/base/s1/metadata.xml")"
assert_eq "mode of revert" 600 "$(stat -c %a "$D/base/s1/revert")"
assert_eq "mode of flat revert" 600 "$(stat -c %a "$D/.by-name/s1/revert")"
assert_eq "mode of create" 600 "$(stat -c %a "$D/create")"
assert_eq "mode of .forget" 600 "$(stat -c %a "$D/.forget")"
assert_eq "mode of .undefine" 600 "$(stat -c %a "$D/.undefine")"
for f in base/s1/revert create .forget .undefine .by-name/s1/revert; do
    assert_eq "$f reads as empty" "0" "$(wc -c <"$D/$f")"
done
assert_eq "mode of state" 644 "$(stat -c %a "$D/state")"
for f in domain.xml errors job; do
    m=$(stat -c %a "$D/$f")
    [ $(( 8#$m & 8#222 )) -eq 0 ] || fail "$f is writable: mode $m, expected read-only"
    [ $(( 8#$m & 8#444 )) -ne 0 ] || fail "$f is not readable: mode $m"
done
assert_eq "type of current" "symbolic link" "$(stat -c %F "$D/current")"

check "everything is owned by the mounting user"
bad=$(find "$MNT" \( ! -uid "$(id -u)" -o ! -gid "$(id -g)" \) -printf '%p %U:%G\n')
assert_eq "entries not owned by $(id -u):$(id -g)" "" "$bad"

check "a snapshot directory's mtime is its creationTime"
for p in base base/s1 base/s1/s2 base/b1; do
    ct=$(xmllint --xpath 'string(/domainsnapshot/creationTime)' "$D/$p/metadata.xml")
    [ -n "$ct" ] || fail "$p/metadata.xml has no creationTime"
    assert_eq "mtime of $p" "$ct" "$(stat -c %Y "$D/$p")"
done

check "st_nlink is 2 + child snapshots; find -links 2 lists the leaves"
assert_eq "nlink base" 4 "$(stat -c %h "$D/base")"
assert_eq "nlink s1" 3 "$(stat -c %h "$D/base/s1")"
assert_eq "nlink s2" 2 "$(stat -c %h "$D/base/s1/s2")"
assert_eq "nlink b1" 2 "$(stat -c %h "$D/base/b1")"
got=$(cd "$D" && find . -path ./.by-name -prune -o -type d -links 2 -print | sort | tr '\n' ' ')
assert_eq "find -type d -links 2" "./base/b1 ./base/s1/s2 " "$got"
# find's leaf optimisation must not hide anything: -noleaf gives the same walk.
assert_eq "find vs find -noleaf" "$(find "$D" | sort)" "$(find "$D" -noleaf | sort)"

check "metadata.xml's size is exactly what a read returns"
for p in base base/s1 base/s1/s2 base/b1; do
    assert_eq "size of $p/metadata.xml" "$(cat "$D/$p/metadata.xml" | wc -c)" "$(stat -c %s "$D/$p/metadata.xml")"
done
assert_eq "size of domain.xml" "$(cat "$D/domain.xml" | wc -c)" "$(stat -c %s "$D/domain.xml")"

check "ls is never stale after a change through the mount"
mkdir "$D/current/fresh"
assert_contains "ls base/b1 after mkdir" "$(ls "$D/base/b1")" fresh
assert_eq "current after mkdir" "$D/base/b1/fresh" "$(cd "$D/current" && pwd -P)"
assert_eq "nlink b1 after mkdir" 3 "$(stat -c %h "$D/base/b1")"
assert_contains "ls .by-name after mkdir" "$(ls "$D/.by-name")" fresh
rmdir "$D/base/b1/fresh"
if ls "$D/base/b1" | grep -qx fresh; then fail "fresh still listed after rmdir"; fi
assert_eq "nlink b1 after rmdir" 2 "$(stat -c %h "$D/base/b1")"
assert_eq "current after rmdir of current" "$D/base/b1" "$(cd "$D/current" && pwd -P)"
put "$D/base/s1/revert" ""
assert_eq "current after revert" "$D/base/s1" "$(cd "$D/current" && pwd -P)"
assert_eq "active after revert" 1 "$(xmllint --xpath 'string(/domainsnapshot/active)' "$D/base/s1/metadata.xml")"
a=$(xmllint --xpath 'string(/domainsnapshot/active)' "$D/base/b1/metadata.xml")
[ "$a" != 1 ] || fail "b1 still <active>1</active> after reverting to s1"
mkdir "$MNT/d2/r"
assert_contains "ls -A d2 after first mkdir" "$(ls -A "$MNT/d2")" current
assert_eq "d2 current" "$MNT/d2/r" "$(cd "$MNT/d2/current" && pwd -P)"

check "inode numbers are stable across unmount and remount"
before=$(find "$MNT" -printf '%i %p\n' | sort -k2)
umount_fs
mount_fs
after=$(find "$MNT" -printf '%i %p\n' | sort -k2)
assert_eq "inodes after remount" "$before" "$after"
dups=$(printf '%s\n' "$after" | awk '{print $1}' | sort | uniq -d | tr '\n' ' ')
assert_eq "duplicate inode numbers" "" "$dups"

check "a domain file that does not load is left out, and elements a domain file has beyond the subset are ignored, each with a log line (no -d needed)"
umount_fs
printf 'not xml\n' >"$STATE/domains/broken.xml"
make_domain other
sed -i 's|<name>other</name>|<name>renamed</name>|' "$STATE/domains/other.xml"
# A domain as `virsh dumpxml` prints it: what the subset does not know
# is ignored, with a log line.
make_domain dumped
sed -i -e 's|<vcpu>|<clock offset="utc"/>\n  <vcpu>|' \
    -e 's|</devices>|  <interface type="network"><source network="default"/></interface>\n  </devices>|' \
    "$STATE/domains/dumped.xml"
logn=$(wc -l <"$DAEMON_LOG")
mount_fs
assert_eq "ls MNT with two bad domain files" "d1 d2 dumped" "$(ls "$MNT" | tr '\n' ' ' | sed 's/ $//')"
log=$(tail -n +"$((logn + 1))" "$DAEMON_LOG")
assert_contains "log names the file that does not parse" "$log" "domains/broken.xml"
assert_contains "log names the file whose <name> differs" "$log" "domains/other.xml"
assert_contains "log line for the ignored elements" "$log" \
    "domain dumped: ignored what snaptreefs does not use: <clock>, device <interface>"

check "find -type d -links 2 lists exactly the leaves of the whole mount, a domain with no snapshot too"
[ ! -e "$MNT/dumped/current" ] || fail "dumped has a snapshot"
leaves=$(find "$MNT" -type d | sort | while IFS= read -r d; do
    [ -n "$(find "$d" -mindepth 1 -maxdepth 1 -type d)" ] || echo "$d"
done)
assert_eq "find -type d -links 2" "$leaves" "$(find "$MNT" -type d -links 2 | sort)"

umount_fs
say "PASS"
