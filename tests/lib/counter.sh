# counter.sh: a guest that writes a counter to its disks, for live tests.
# shellcheck shell=bash
#
# Sourced after common.sh. counter-guest.S is a boot sector that forever
# increments a 32-bit counter and writes 1024 copies of it (4 KiB, one
# BIOS request per disk) at LBA 1 of the first two disks: a disk state
# caught between two requests has 1024 equal copies.

COUNTER_SRC=$(dirname "${BASH_SOURCE[0]}")/counter-guest.S

# make_counter_guest DOMAIN: DOMAIN's first disk boots the counter (the
# domain made by make_domain); it runs when the domain starts.
make_counter_guest() {
    require_cmd as
    require_cmd ld
    local obj=$WORKDIR/counter.o bin=$WORKDIR/counter.bin
    if [ ! -e "$bin" ]; then
        as --32 -o "$obj" "$COUNTER_SRC" || fail "as $COUNTER_SRC"
        ld -m elf_i386 -Ttext=0x7c00 --oformat binary -o "$bin" "$obj" || fail "ld counter"
        [ "$(stat -c %s "$bin")" -eq 512 ] || fail "the counter boot sector is not 512 bytes"
    fi
    qemu-io -f qcow2 -c "write -s $bin 0 512" "$(image "$1")" >/dev/null ||
        fail "cannot write the boot sector to $(image "$1")"
}

# counter_of FILE: the counter a raw disk image (or disks/TARGET) holds;
# fails unless its 1024 copies agree (a torn write) or when it is 0.
counter_of() {
    python3 - "$1" <<'PY' || fail "counter_of $1"
import struct, sys
with open(sys.argv[1], "rb") as f:
    f.seek(512)
    data = f.read(4096)
vals = set(struct.unpack("<1024I", data))
if len(vals) != 1:
    sys.exit("inconsistent counter in %s: %d distinct values, e.g. %s" % (sys.argv[1], len(vals), sorted(vals)[:4]))
(v,) = vals
if v == 0:
    sys.exit("no counter in %s (the guest never wrote)" % sys.argv[1])
print(v)
PY
}

# counter_live DOMAIN [DEV]: the counter on a running domain's disk now
# (read through QEMU's lock, -U).
counter_live() {
    local raw=$WORKDIR/counter-live.raw
    rm -f "$raw"
    qemu-img dd -U -f qcow2 -O raw bs=512 count=9 if="$(image "$1" "${2:-vda}")" of="$raw" ||
        fail "qemu-img dd of $(image "$1" "${2:-vda}")"
    counter_of "$raw"
}

# wait_counter DOMAIN MIN: until the guest's counter passes MIN (it booted).
wait_counter() {
    local deadline=$(( $(date +%s) + 20 * TIME_SCALE )) c=0 raw=$WORKDIR/counter-wait.raw
    while :; do
        rm -f "$raw"
        c=0
        if qemu-img dd -U -f qcow2 -O raw bs=512 count=9 if="$(image "$1")" of="$raw" 2>/dev/null; then
            c=$(od -An -tu4 -j512 -N4 "$raw" | tr -d ' ')
        fi
        [ "${c:-0}" -gt "$2" ] && return 0
        [ "$(date +%s)" -lt "$deadline" ] || fail "$1: the counter guest did not pass $2 (at $c)"
        sleep 0.1
    done
}
