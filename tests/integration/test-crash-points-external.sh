#!/usr/bin/env bash
# test-crash-points-external: SIGKILL at every step boundary of external
# snapshot operations (SNAPTREEFS_CRASH_AT; a delete's plan steps are
# ext-step-done:N), restart on the same STATE, and check: every snapshot's
# image exists and holds its pattern, the active layer holds what it held,
# no image file is left that nothing uses, the tree is valid, and the
# operation happened entirely or not at all as a user sees it.
#
# The table OPS is read as in test-crash-points: "NAME: STEP[:N] ...",
# with op_NAME doing the file operation.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/crash.sh"
require_cmd xmllint
[ -x "${CRASH_POINTS:-}" ] || fail "CRASH_POINTS must name the crash-points helper (meson test sets it)"

# Template: x1's vda is external; base(0x11) -> s1(0x12) -> s2(0x13) and
# base -> b1(0x14), current s2, its active layer 0x15. base's image backs
# two branches (s1's and b1's), s1's one (s2's), s2's the active layer.
OPS=(
    "mkdir: create-journaled create-disks-done create-metadata-written reply-sent journal-clear"
    "revert: revert-journaled revert-disks-done revert-domain-written revert-metadata-written reply-sent"
    "rmdir-s1: delete-journaled ext-step-done:1 ext-step-done:2 ext-step-done:3 ext-step-done:4 delete-child-written delete-metadata-removed reply-sent"
    "rmdir-base: delete-journaled ext-step-done:1 ext-step-done:2 ext-step-done:3 delete-child-written delete-metadata-removed"
    "rmdir-current: delete-journaled ext-step-done:1 ext-step-done:2 ext-step-done:3 delete-parent-written delete-metadata-removed reply-sent"
)

check "the table names every ext- crash point the core has"
covered=" $(printf '%s\n' "${OPS[@]}" | sed 's/^[^:]*://' | tr ' ' '\n' | sed 's/:.*//' | sort -u | tr '\n' ' ')"
for p in $("$CRASH_POINTS" | grep '^ext-'); do
    case "$covered" in *" $p "*) ;; *) fail "crash point $p is in no operation of OPS" ;; esac
done

D=$MNT/x1
TEMPLATE=$WORKDIR/template
SCRATCH=$WORKDIR/scratch
mkdir -p "$SCRATCH"
declare -A HOLDS=([base]=0x11 [s1]=0x12 [s2]=0x13 [b1]=0x14 [new]=0x15)

xpath() { xmllint --xpath "string($2)" "$1" 2>/dev/null; }
frozen() { xpath "$1/metadata.xml" /domainsnapshot/domain/devices/disk/source/@file; }
active() { xpath "$D/domain.xml" /domain/devices/disk/source/@file; }

# image_byte FILE: the one byte value of the first 64 KiB FILE shows.
image_byte() {
    local raw=$SCRATCH/disk.raw bytes
    qemu-img convert -U -O raw "$1" "$raw" || fail "qemu-img convert of $1"
    bytes=$(head -c 65536 "$raw" | od -An -v -tx1 | tr -s ' \n' '\n' | sed '/^$/d' | sort -u)
    rm -f "$raw"
    [ "$(wc -l <<<"$bytes")" -eq 1 ] && echo "0x$bytes" || echo mixed
}

barrier() {
    put "$D/state" resume 2>/dev/null && fail "resume succeeded: x1 was paused"
    local deadline=$(( $(date +%s) + 5 * TIME_SCALE ))
    while [ -s "$STATE/journal/x1.json" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "intent left after recovery: $(cat "$STATE/journal/x1.json")"
        sleep 0.05
    done
}

state_print() {
    local n
    for n in $(ls "$D/.by-name" | sort); do
        printf '%s < %s\n' "$n" "$(xpath "$D/.by-name/$n/metadata.xml" /domainsnapshot/parent/name)"
    done
    printf 'current %s\n' "$(basename "$(readlink "$D/current" 2>/dev/null || echo none)")"
    printf 'active %s\n' "$(image_byte "$(active)")"
}

check_consistent() {
    local what=$1 names n f used=() cur
    check_views "$D" "$what"
    names=$(ls "$D/.by-name" | sort | tr '\n' ' ')
    assert_eq "$what: metadata files vs tree" "$names" \
        "$(cd "$STATE/snapshots/x1" && ls -- *.xml 2>/dev/null | sed 's/\.xml$//' | sort | tr '\n' ' ' || true)"
    cur=$(basename "$(readlink "$D/current" 2>/dev/null || echo none)")
    [ -n "$names" ] && [ ! -d "$D/current" ] && fail "$what: current does not lead to a directory"
    assert_eq "$what: files with <active>1" "$([ -n "$names" ] && echo 1 || echo 0)" \
        "$(cat "$STATE/snapshots/x1"/*.xml 2>/dev/null | grep -c '<active>1</active>')"
    for n in $names; do
        f=$(frozen "$D/.by-name/$n")
        [ -f "$f" ] || fail "$what: the image of $n, $f, is missing"
        assert_eq "$what: data of $n" "${HOLDS[$n]}" "$(image_byte "$f")"
        used+=("$f")
    done
    [ -f "$(active)" ] || fail "$what: the active layer $(active) is missing"
    used+=("$(active)")
    # Every image file is some snapshot's image, the active layer, or in
    # the backing chain of one: nothing is left behind.
    local chain_files=" "
    for f in "${used[@]}"; do
        chain_files+="$(qemu-img info -U --backing-chain --output=json "$f" | jq -r '.[].filename' | tr '\n' ' ')"
    done
    for f in "$STATE"/images/*; do
        case "$chain_files" in *" $f "*) ;; *) fail "$what: $(basename "$f") is left, used by nothing" ;; esac
        qcow2_check "$f"
    done
    if grep -E 'reconcile:|failed' "$D/errors" >"$SCRATCH/bad"; then
        fail "$what: errors after recovery: $(cat "$SCRATCH/bad")"
    fi
}

op_mkdir() { mkdir "$D/current/new"; }
op_revert() { put "$D/base/b1/revert" ""; }
op_rmdir-s1() { rmdir "$D/base/s1"; }
op_rmdir-base() { rmdir "$D/base"; }
op_rmdir-current() { rmdir "$D/base/s1/s2"; }

restore() {
    rm -rf "$STATE"
    cp -a "$TEMPLATE" "$STATE"
}
prepare() {
    restore
    mount_fs
}
reference() {
    prepare
    "op_$2" || fail "$2 failed without a crash point"
    barrier
    REF[$1]=$(state_print)
    umount_fs
}

crash_case() {
    local op=$1 step=$2
    restore
    crash_run "$op" "$step"
    crash_verify "$op" "$step"
}

say "template: x1, external; base{s1{s2}, b1}, current s2, patterns 0x11..0x15"
DISK_SNAPSHOT=external make_domain x1
qemu-img create -q -f qcow2 "$(image x1)" 4M
mount_fs
write_pattern "$(active)" 0x11 0 64k
mkdir "$D/base"
write_pattern "$(active)" 0x12 0 64k
mkdir "$D/base/s1"
write_pattern "$(active)" 0x13 0 64k
mkdir "$D/base/s1/s2"
put "$D/base/revert" ""
write_pattern "$(active)" 0x14 0 64k
mkdir "$D/base/b1"
put "$D/base/s1/s2/revert" ""
write_pattern "$(active)" 0x15 0 64k
check_consistent "template"
umount_fs
rm -f "$LOGS"/*.log
cp -a "$STATE" "$TEMPLATE"

declare -A REF EXTRA=()
tested=0
t0=$(date +%s)
for line in "${OPS[@]}"; do
    op=${line%%:*}
    prepare
    barrier
    REF[$op.before]=$(state_print)
    umount_fs
    reference "$op.after" "$op"
    for step in ${line#*:}; do
        crash_case "$op" "$step"
        tested=$((tested + 1))
    done
done
say "crash points tested: $tested (operations: ${#OPS[@]}) in $(( $(date +%s) - t0 )) s"
say "PASS"
