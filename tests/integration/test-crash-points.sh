#!/usr/bin/env bash
# test-crash-points: SIGKILL at every step boundary of every multi-step
# operation (SNAPTREEFS_CRASH_AT), restart on the same STATE, and check that
# the metadata and every disk agree, the tree is valid, the operation
# happened entirely or not at all as a user sees it, and every pattern
# written into the disks is still in the snapshots that held it.
#
# The operations and their steps are the table OPS below: one line per
# operation, "NAME: STEP[:N] ..." (":N" dies the Nth time STEP is reached).
# An operation is three functions: setup_NAME (optional, mounted without a
# crash point), op_NAME (the file operation; its status is what the user
# saw) and, when a crash may leave a state other than before or after,
# states_NAME naming the extra reference operations (see rm-r). Every step
# the core knows (build/tests/integration/crash-points) must be in the table.
# External snapshots add their lines here the same way (their own steps in
# core/util/crash-point.c, e.g. overlay-created, commit-done), with disks whose
# snapshot='external' in a second template domain.
# To repeat one case: ONLY_OP=rm-r ONLY_STEP="delete-journaled:2 ..." (the
# steps to run, repeats allowed) meson test test-crash-points.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/crash.sh"
require_cmd xmllint
[ -x "${CRASH_POINTS:-}" ] || fail "CRASH_POINTS must name the crash-points helper (meson test sets it)"

OPS=(
    "mkdir: create-journaled create-disk-done:1 create-disk-done:2 create-disks-done create-metadata-written reply-sent journal-clear"
    "create-xml: create-journaled create-disk-done:1 create-metadata-written reply-sent"
    "redefine: redefine-metadata-written reply-sent"
    "rmdir-mid: delete-journaled delete-disk-done:1 delete-disk-done:2 delete-disks-done delete-child-written delete-metadata-removed reply-sent journal-clear"
    "rmdir-current: delete-journaled delete-disk-done:1 delete-disks-done delete-parent-written delete-metadata-removed reply-sent"
    "rm-r: delete-metadata-removed:1 reply-sent:1 delete-journaled:2 delete-disk-done:3 delete-disks-done:2 delete-parent-written:2 delete-metadata-removed:2 journal-clear:2"
    "revert: revert-journaled revert-disk-done:1 revert-disk-done:2 revert-disks-done revert-disks-journaled revert-domain-written revert-metadata-written reply-sent journal-clear"
    "start: start-launched"
)
LIVE_OPS=(
    "live-mkdir: create-journaled create-disks-done create-metadata-written reply-sent"
    "live-revert: revert-journaled revert-loaded revert-disks-done revert-disks-journaled revert-metadata-written"
    "live-revert-offline: revert-vm-stopped revert-disk-done:2 revert-domain-written"
    "live-revert-start: revert-vm-started revert-loaded"
    "revert-running: revert-disks-done revert-disks-journaled revert-metadata-written"
    "live-disk-only: create-frozen create-disks-done create-metadata-written"
    "live-rmdir: delete-journaled delete-disks-done delete-child-written delete-metadata-removed journal-clear"
)
if command -v qemu-system-x86_64 >/dev/null; then
    OPS+=("${LIVE_OPS[@]}")
else
    say "no qemu-system-x86_64: the live operations are not tested"
fi

check "the table names every crash point the core has"
covered=" $(printf '%s\n' "${OPS[@]}" "${LIVE_OPS[@]}" | sed 's/^[^:]*://' | tr ' ' '\n' | sed 's/:.*//' | sort -u | tr '\n' ' ')"
# (ext-*: the external snapshots' own, in test-crash-points-external.)
for p in $("$CRASH_POINTS" | grep -v '^ext-'); do
    case "$covered" in *" $p "*) ;; *) fail "crash point $p is in no operation of OPS" ;; esac
done

# CRASH_OPS="op1 op2" runs only those (while working on one).
if [ -n "${CRASH_OPS:-}" ]; then
    chosen=()
    for line in "${OPS[@]}"; do
    [ -n "${ONLY_OP:-}" ] && [ "${line%%:*}" != "$ONLY_OP" ] && continue
        case " $CRASH_OPS " in *" ${line%%:*} "*) chosen+=("$line") ;; esac
    done
    OPS=("${chosen[@]}")
fi

D=$MNT/d1
TEMPLATE=$WORKDIR/template
SCRATCH=$WORKDIR/scratch
mkdir -p "$SCRATCH"

# What each snapshot holds: the byte of vda's first 64 KiB (vdb's is
# 0x10 more). "new", l1 and l2 are taken when the active layer holds 0x15.
declare -A HOLDS=([base]=0x11 [s1]=0x12 [s2]=0x13 [b1]=0x14 [new]=0x15 [l1]=0x15 [l2]=0x15 [o1]=0x15)

pattern() { write_pattern "$(image d1 "$1")" "$2" 0 64k; }
both() { pattern vda "$1"; pattern vdb "$(printf '0x%x' $(($1 + 0x10)))"; }

# disk_byte DEV [SNAP]: the one byte value of the first 64 KiB of the disk
# (at SNAP, or its active layer), "mixed" when they differ.
disk_byte() {
    local raw=$SCRATCH/disk.raw opts=() bytes
    [ -z "${2:-}" ] || opts=(-l "snapshot.name=$2")
    qemu-img convert -U -f qcow2 -O raw "${opts[@]}" "$(image d1 "$1")" "$raw" ||
        fail "qemu-img convert of $1${2:+ at $2}"
    bytes=$(head -c 65536 "$raw" | od -An -v -tx1 | tr -s ' \n' '\n' | sed '/^$/d' | sort -u)
    rm -f "$raw"
    [ "$(wc -l <<<"$bytes")" -eq 1 ] && echo "0x$bytes" || echo mixed
}

xpath() { xmllint --xpath "string($2)" "$1" 2>/dev/null; }

# barrier: an operation queued behind the start-up recovery and check
# (resume on a domain that is not paused is refused and changes nothing).
barrier() {
    put "$D/state" resume 2>/dev/null && fail "resume succeeded: d1 was paused"
    local deadline=$(( $(date +%s) + 5 * TIME_SCALE ))
    while [ -s "$STATE/journal/d1.json" ]; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "intent left after recovery: $(cat "$STATE/journal/d1.json")"
        sleep 0.05
    done
}

# state_print: what a user sees of d1 (names, parents, descriptions,
# current, run state, definition, active layer content).
state_print() {
    local n
    for n in $(ls "$D/.by-name" | sort); do
        printf '%s < %s [%s]\n' "$n" "$(xpath "$D/.by-name/$n/metadata.xml" /domainsnapshot/parent/name)" \
            "$(xpath "$D/.by-name/$n/metadata.xml" /domainsnapshot/description)"
    done
    printf 'current %s\n' "$(basename "$(readlink "$D/current" 2>/dev/null || echo none)")"
    printf 'state %s\n' "$(state_of d1)"
    printf 'memory %s\n' "$(xpath "$D/domain.xml" /domain/memory)"
    printf 'active %s %s\n' "$(disk_byte vda)" "$(disk_byte vdb)"
}

# check_consistent: metadata, disks and tree agree; patterns are intact.
check_consistent() {
    local what=$1 names meta n p dir active=0 cur want
    # Both views hold the same snapshots, each in its parent's directory.
    check_views "$D" "$what"
    names=$(ls "$D/.by-name" | sort | tr '\n' ' ')
    meta=$(cd "$STATE/snapshots/d1" && ls -- *.xml 2>/dev/null | sed 's/\.xml$//' | sort | tr '\n' ' ' || true)
    assert_eq "$what: metadata files vs tree" "$names" "$meta"
    assert_eq "$what: vda tags vs tree" "${names% }" "$(disk_tags "$(image d1 vda)")"
    assert_eq "$what: vdb tags vs tree" "${names% }" "$(disk_tags "$(image d1 vdb)")"
    cur=$(basename "$(readlink "$D/current" 2>/dev/null || echo none)")
    for n in $names; do
        p=$(xpath "$D/.by-name/$n/metadata.xml" /domainsnapshot/parent/name)
        [ -z "$p" ] || [ -e "$D/.by-name/$p" ] || fail "$what: $n's parent $p does not exist"
        if grep -q '<active>1</active>' "$D/.by-name/$n/metadata.xml"; then
            active=$((active + 1))
            assert_eq "$what: current vs <active>" "$n" "$cur"
        fi
        want=${HOLDS[$n]:-}
        [ -n "$want" ] || fail "$what: unexpected snapshot $n"
        assert_eq "$what: vda at $n" "$want" "$(disk_byte vda "$n")"
        assert_eq "$what: vdb at $n" "$(printf '0x%x' $((want + 0x10)))" "$(disk_byte vdb "$n")"
    done
    if [ -n "$names" ]; then
        assert_eq "$what: snapshots with <active>1" 1 "$active"
        [ -d "$D/current" ] || fail "$what: current does not lead to a directory"
    else
        assert_eq "$what: current without snapshots" none "$cur"
    fi
    # Several files may claim <active> after a crash (loading says which
    # wins); recovery leaves one.
    assert_eq "$what: files with <active>1" "$([ -n "$names" ] && echo 1 || echo 0)" \
        "$(cat "$STATE/snapshots/d1"/*.xml 2>/dev/null | grep -c '<active>1</active>')"
    if grep -E 'reconcile:|failed' "$D/errors" >"$SCRATCH/bad"; then
        fail "$what: errors after recovery: $(cat "$SCRATCH/bad")"
    fi
    if [ "$(state_of d1)" == shutoff ]; then
        for dev in vda vdb; do qcow2_check "$(image d1 $dev)"; done
    fi
}

# ---- the operations ----------------------------------------------------------------

op_mkdir() { mkdir "$D/current/new"; }
op_create-xml() { put "$D/create" '<domainsnapshot><name>new</name><description>by create</description></domainsnapshot>'; }
op_redefine() {
    sed -e 's|<name>b1</name>|<name>b1</name>\n  <description>redefined</description>|' \
        -e 's|</domainsnapshot>|  <active>1</active>\n</domainsnapshot>|' \
        "$D/base/b1/metadata.xml" >"$SCRATCH/b1.xml"
    put_file "$D/create" "$SCRATCH/b1.xml"
}
op_rmdir-mid() { rmdir "$D/base/s1"; }
op_rmdir-current() { rmdir "$D/base/s1/s2"; }
op_rm-r() { rm -r "$D/base/s1"; }
states_rm-r() { echo rmdir-current; }
op_revert() { put "$D/base/revert" ""; }
op_start() { put "$D/state" start; }

setup_live-mkdir() { put "$D/state" start && mkdir "$D/current/l1"; }
op_live-mkdir() { mkdir "$D/current/l2"; }
setup_live-disk-only() { setup_live-mkdir; }
op_live-disk-only() { put "$D/create" "<domainsnapshot><name>l2</name><memory snapshot='no'/></domainsnapshot>"; }
setup_live-revert() { setup_live-mkdir && mkdir "$D/current/l2"; }
op_live-revert() { put "$D/.by-name/l1/revert" ""; }
setup_live-revert-offline() { put "$D/state" start; }
op_live-revert-offline() { put "$D/base/revert" ""; }
setup_live-revert-start() { setup_live-mkdir && put "$D/state" destroy && mkdir "$D/current/o1"; }
op_live-revert-start() { put "$D/.by-name/l1/revert" ""; }
setup_live-rmdir() { setup_live-revert; }
op_live-rmdir() { rmdir "$D/base/s1/s2/l1"; }
op_revert-running() { put "$D/base/revert" running; }

# ---- running them ---------------------------------------------------------------------

restore() {
    kill_test_qemus
    rm -rf "$STATE"
    cp -a "$TEMPLATE" "$STATE"
}

# prepare OP: STATE as OP starts from, mounted (without a crash point).
prepare() {
    restore
    mount_fs
    if declare -F "setup_$1" >/dev/null; then
        "setup_$1" || fail "setup of $1 failed"
    fi
}

# reference KEY OP: REF[KEY] is the state a user sees after OP ran
# without a crash.
reference() {
    prepare "$2"
    "op_$2" || fail "$2 failed without a crash point"
    barrier
    REF[$1]=$(state_print)
    umount_fs
}


# crash_case OP STEP: die at STEP during OP, restart, check.
crash_case() {
    local op=$1 step=$2
    prepare "$op"
    umount_fs
    crash_run "$op" "$step"
    crash_verify "$op" "$step"
}

say "template: d1 with vda and vdb; base{s1{s2}, b1}, current s2, patterns 0x11..0x15"
make_domain d1 vda vdb
for dev in vda vdb; do qemu-img create -q -f qcow2 "$(image d1 $dev)" 4M; done
mount_fs
both 0x11
mkdir "$D/base"
both 0x12
mkdir "$D/base/s1"
both 0x13
mkdir "$D/base/s1/s2"
put "$D/base/revert" ""
both 0x14
mkdir "$D/base/b1"
put "$D/base/s1/s2/revert" ""
both 0x15
umount_fs
# Every snapshot's <domain> differs from the definition from now on, so a
# revert writes domains/d1.xml too.
set_domain_memory d1 96
rm -f "$LOGS"/*.log
cp -a "$STATE" "$TEMPLATE"

declare -A REF EXTRA
tested=0
t0=$(date +%s)
for line in "${OPS[@]}"; do
    [ -n "${ONLY_OP:-}" ] && [ "${line%%:*}" != "$ONLY_OP" ] && continue
    op=${line%%:*}
    prepare "$op"
    barrier
    REF[$op.before]=$(state_print)
    umount_fs
    reference "$op.after" "$op"
    if declare -F "states_$op" >/dev/null; then
        for extra in $("states_$op"); do
            reference "$op.$extra" "$extra"
            EXTRA[$op]+=" $extra"
        done
    fi
    for step in ${ONLY_STEP:-${line#*:}}; do
        crash_case "$op" "$step"
        tested=$((tested + 1))
    done
done
kill_test_qemus
say "crash points tested: $tested (operations: ${#OPS[@]}) in $(( $(date +%s) - t0 )) s"
say "PASS"
