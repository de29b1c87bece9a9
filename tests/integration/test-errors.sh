#!/usr/bin/env bash
# test-errors: bad control words and bad XML give EINVAL, QEMU failures EIO,
# each with a line in errors, and nothing changes.
source "$(dirname "$0")/../lib/common.sh"

make_domain d1
make_domain d3 vda vdb
mount_fs
D=$MNT/d1
mkdir "$D/s1"

check "bad words to state: EINVAL, an errors line, nothing changes"
dd if=/dev/urandom of="$WORKDIR/junk" bs=1M count=1 status=none
before=$(fingerprint d1)
for words in star "" "start now" "shutoff"; do
    n=$(errors_count d1)
    assert_errno "Invalid argument" put "$D/state" "$words"
    assert_new_error "echo '$words' > state" d1 "$n"
    assert_unchanged "echo '$words' > state" "$before" d1
    assert_eq "state" shutoff "$(cat "$D/state")"
done
n=$(errors_count d1)
assert_errno "Invalid argument" dd if="$WORKDIR/junk" of="$D/state" bs=1M count=1 status=none
assert_new_error "1 MiB of junk > state" d1 "$n"
assert_unchanged "1 MiB of junk > state" "$before" d1
assert_eq "state" shutoff "$(cat "$D/state")"

check "XML that does not parse or is not a <domainsnapshot>: EINVAL, an errors line"
bad_xml=(
    '<domainsnapshot><name>x1</name>'
    'not xml at all'
    '<domain><name>x2</name></domain>'
    '<domainsnapshot><name>bad/name</name></domainsnapshot>'
    '<domainsnapshot><name>.hidden</name></domainsnapshot>'
)
for xml in "${bad_xml[@]}"; do
    before=$(fingerprint d1)
    n=$(errors_count d1)
    assert_errno "Invalid argument" put "$D/create" "$xml"
    assert_new_error "create <<< $xml" d1 "$n"
    assert_unchanged "create <<< $xml" "$before" d1
done
n=$(errors_count d1)
assert_errno "Invalid argument" dd if="$WORKDIR/junk" of="$D/create" bs=1M count=1 status=none
assert_new_error "1 MiB of junk > create" d1 "$n"
assert_unchanged "1 MiB of junk > create" "$before" d1

check "XML with an external entity is refused and nothing is read from it"
echo "TOPSECRET-$$" >"$WORKDIR/secret"
cat >"$WORKDIR/xxe.xml" <<XML
<?xml version="1.0"?>
<!DOCTYPE domainsnapshot [ <!ENTITY xxe SYSTEM "file://$WORKDIR/secret"> ]>
<domainsnapshot><name>xxe</name><description>&xxe;</description></domainsnapshot>
XML
before=$(fingerprint d1)
n=$(errors_count d1)
assert_errno "Invalid argument" put_file "$D/create" "$WORKDIR/xxe.xml"
assert_new_error "external entity" d1 "$n"
assert_unchanged "external entity" "$before" d1
[ ! -e "$D/.by-name/xxe" ] || fail "snapshot xxe was created"
if grep -rq "TOPSECRET-$$" "$STATE" "$D/errors"; then
    fail "the external entity's content leaked into STATE or errors"
fi

check "an entity expansion bomb is refused quickly"
{
    echo '<?xml version="1.0"?>'
    echo '<!DOCTYPE domainsnapshot ['
    echo ' <!ENTITY a0 "lol">'
    for i in $(seq 1 12); do
        printf ' <!ENTITY a%d "&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;&a%d;">\n' \
            "$i" $((i-1)) $((i-1)) $((i-1)) $((i-1)) $((i-1)) $((i-1)) $((i-1)) $((i-1)) $((i-1)) $((i-1))
    done
    echo ']>'
    echo '<domainsnapshot><name>bomb</name><description>&a12;</description></domainsnapshot>'
} >"$WORKDIR/bomb.xml"
n=$(errors_count d1)
t0=$(now_ms)
assert_errno "Invalid argument" put_file "$D/create" "$WORKDIR/bomb.xml"
t1=$(now_ms)
say "entity bomb refused in $((t1 - t0)) ms"
[ $((t1 - t0)) -lt $((5000 * TIME_SCALE)) ] || fail "entity bomb took $((t1 - t0)) ms, expected < 5 s"
assert_new_error "entity bomb" d1 "$n"
assert_unchanged "entity bomb" "$before" d1
assert_eq "daemon still answers" "s1" "$(ls "$D/.by-name")"

check "QEMU failing: EIO, qemu-img's message in errors, all or nothing across disks"
assert_ok mkdir "$MNT/d3/ok"
assert_eq "d3 vda tags" ok "$(disk_tags "$(image d3 vda)")"
assert_eq "d3 vdb tags" ok "$(disk_tags "$(image d3 vdb)")"
# The second disk becomes garbage: qemu-img snapshot -c fails on it after
# the first disk got its tag, which must be rolled back.
head -c 1M /dev/urandom >"$(image d3 vdb)"
# What qemu-img itself says, with the format given and probed.
msg_fmt=$(qemu-img snapshot --image-opts -c probe "driver=qcow2,file.filename=$(image d3 vdb)" 2>&1 || true)
msg_probe=$(qemu-img snapshot -c probe "$(image d3 vdb)" 2>&1 || true)
say "qemu-img says: $msg_fmt | $msg_probe"
before=$(fingerprint d3)
n=$(errors_count d3)
assert_errno "Input/output error" mkdir "$MNT/d3/current/bad"
assert_new_error "mkdir on a garbage disk" d3 "$n"
last=$(tail -n 1 "$MNT/d3/errors")
# qemu-img's own words, without its path prefix, must be in the line.
case "$last" in
    *"${msg_fmt##*: }"* | *"${msg_probe##*: }"*) ;;
    *) fail "errors line should carry qemu-img's message [${msg_fmt##*: }] or [${msg_probe##*: }], got [$last]" ;;
esac
assert_eq "d3 vda tags (no leftover)" ok "$(disk_tags "$(image d3 vda)")"
[ ! -e "$MNT/d3/ok/bad" ] || fail "d3/ok/bad exists after EIO"
[ ! -e "$STATE/snapshots/d3/bad.xml" ] || fail "STATE/snapshots/d3/bad.xml exists after EIO"
assert_unchanged "mkdir on a garbage disk" "$before" d3
qcow2_check "$(image d3 vda)"

check "QEMU failing on revert: EIO and an errors line"
n=$(errors_count d3)
assert_errno "Input/output error" put "$MNT/d3/ok/revert" ""
assert_new_error "revert on a garbage disk" d3 "$n"

check "a missing image: EIO"
make_domain d4
mount_point_d4=$MNT/d4
umount_fs
rm -f "$(image d4)"
mount_fs
n=$(errors_count d4)
assert_errno "Input/output error" mkdir "$mount_point_d4/s"
assert_new_error "mkdir with a missing image" d4 "$n"
[ ! -e "$STATE/snapshots/d4/s.xml" ] || fail "STATE/snapshots/d4/s.xml exists after EIO"

umount_fs
say "PASS"
