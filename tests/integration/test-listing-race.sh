#!/usr/bin/env bash
# test-listing-race: readers of the same directory listing it at the same
# time, while snapshots come and go in it, each see every entry that was
# there throughout, and each entry once (listings are kept per reader,
# not per directory).
source "$(dirname "$0")/../lib/common.sh"

require_cmd python3
SMALL_READDIR=$(dirname "$0")/../lib/small-readdir.py

make_domain d1
mount_fs

# Enough entries that a listing of .by-name (the flat view) takes
# several readdir replies.
N=160
say "set up: $N snapshots"
mkdir "$MNT/d1/s001" || fail "mkdir s001"
for i in $(seq -w 2 $N); do
    mkdir "$MNT/d1/current/s$i" || fail "mkdir s$i"
done
ls "$MNT/d1/.by-name" | sort >"$WORKDIR/steady"
assert_eq "snapshots before the race" "$N" "$(wc -l <"$WORKDIR/steady")"

STOP=$WORKDIR/stop
churn() {
    local i
    for i in $(seq 1 40); do
        mkdir "$MNT/d1/current/a$i" || return 1
        rmdir "$MNT/d1/.by-name/a$i" || return 1
    done
}
# The readers stop when the loop ends, whether it failed or not.
(
    rc=0
    churn || rc=$?
    touch "$STOP"
    exit "$rc"
) &
CHURN=$!
EXTRA_PIDS+=("$CHURN")

# reader K: lists the directory again and again while the loop runs,
# checking each listing.
reader() {
    local k=$1 round=0 out
    while [ ! -e "$STOP" ]; do
        round=$((round + 1))
        out=$WORKDIR/list-$k
        if [ $((round % 2)) -eq 0 ]; then
            # ls -f reads with a large buffer and stats nothing: an entry
            # the loop removes between readdir and a stat is no error.
            ls -f "$MNT/d1/.by-name" | grep -vx '\.\.\?' >"$out" || return 1
        else
            python3 "$SMALL_READDIR" "$MNT/d1/.by-name" >"$out" || return 1
        fi
        if [ -n "$(sort "$out" | uniq -d)" ]; then
            echo "reader $k round $round: listed twice: $(sort "$out" | uniq -d | head -3 | tr '\n' ' ')"
            return 1
        fi
        if [ -n "$(sort "$out" | comm -23 "$WORKDIR/steady" -)" ]; then
            echo "reader $k round $round: lost: $(sort "$out" | comm -23 "$WORKDIR/steady" - | head -3 | tr '\n' ' ')"
            return 1
        fi
    done
    echo "reader $k: $round listings, all right"
}
check "two readers (ls -f, and getdents64 with a small buffer) racing a mkdir/rmdir loop: each entry once, none lost"
reader 1 >"$LOGS/reader-1" 2>&1 &
R1=$!
reader 2 >"$LOGS/reader-2" 2>&1 &
R2=$!
rc1=0 rc2=0
wait "$R1" || rc1=$?
wait "$R2" || rc2=$?
wait "$CHURN" || fail "the mkdir/rmdir loop failed"
cat "$LOGS/reader-1" "$LOGS/reader-2"
[ "$rc1" -eq 0 ] && [ "$rc2" -eq 0 ] || fail "a reader saw a wrong listing"
assert_eq "snapshots after the race" "$(cat "$WORKDIR/steady")" \
    "$(ls "$MNT/d1/.by-name" | grep -v '^a' | sort)"
umount_fs
say "PASS"
