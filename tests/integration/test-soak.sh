#!/usr/bin/env bash
# test-soak: one shell per domain doing mkdir/rmdir/rm -r/revert (and
# state changes on a running domain) at random, all at once, while other
# shells walk the tree with find and cat. Every operation is logged with
# its result; each shell keeps a model of its domain that only successes
# change, and afterwards every domain's tree, current snapshot, run state
# and disk tags must be what the model says. No operation may hang (each
# has a deadline), the daemon must not die, its log must stay clean (the
# ASan build runs this too) and its RSS is printed at start and end.
#
# SOAK_SECONDS (default 40) sets how long the load runs.
source "$(dirname "$0")/../lib/common.sh"
source "$(dirname "$0")/../lib/views.sh"

SECONDS_TO_RUN=${SOAK_SECONDS:-40}
OP_DEADLINE=$((60 * TIME_SCALE))
OFFLINE=(a b c)
LIVE=()
command -v qemu-system-x86_64 >/dev/null && LIVE=(v)

for d in "${OFFLINE[@]}" "${LIVE[@]}"; do make_domain "$d"; done
mount_fs
rss() { awk '/^VmRSS/ {print $2}' "/proc/$DAEMON_PID/status"; }
rss_start=$(rss)
OPLOG=$WORKDIR/ops
mkdir -p "$OPLOG"
STOP=$WORKDIR/stop
# put FILE WORD as a command (timeout runs commands, not functions).
PUT=(bash -c 'echo "$2" > "$1"' _)

# ---- one mutating shell per domain ---------------------------------------------------

# mutator DOMAIN LIVE: random operations until STOP exists; writes the log
# to OPLOG/DOMAIN.log and the model to OPLOG/DOMAIN.model.
mutator() {
    local dom=$1 live=$2 D=$MNT/$1 n=0 cur="" run=shutoff
    local -A parent=() taken=()
    local log=$OPLOG/$dom.log

    path_of() {
        local p="" x=$1
        while [ -n "$x" ]; do p=$x/$p; x=${parent[$x]}; done
        printf '%s/%s' "$D" "${p%/}"
    }
    pick() {
        local names=("${!parent[@]}")
        [ ${#names[@]} -gt 0 ] && echo "${names[RANDOM % ${#names[@]}]}"
    }
    subtree() { # names in X's subtree, X last
        local x=$1 c
        for c in "${!parent[@]}"; do [ "${parent[$c]}" == "$x" ] && subtree "$c"; done
        echo "$x"
    }
    run() { # run WHAT CMD...: logs and returns the status
        local what=$1 rc=0 err
        shift
        err=$(timeout "$OP_DEADLINE" "$@" 2>&1 >/dev/null) || rc=$?
        printf '%s %s rc=%d %s\n' "$(date +%T.%N | cut -c1-12)" "$what" "$rc" "$err" >>"$log"
        [ "$rc" -ne 124 ] || echo "DEADLOCK? $what" >>"$OPLOG/hung"
        return "$rc"
    }

    while [ ! -e "$STOP" ]; do
        local r=$((RANDOM % 20)) x count=${#parent[@]} c
        [ "$count" -gt 10 ] && r=$((r % 8))
        if [ "$r" -lt 3 ] && [ "$count" -gt 0 ]; then
            x=$(pick)
            if run "rmdir $x" rmdir "$(path_of "$x")"; then
                for c in "${!parent[@]}"; do
                    [ "${parent[$c]}" == "$x" ] && parent[$c]=${parent[$x]}
                done
                [ "$cur" == "$x" ] && cur=${parent[$x]}
                unset "parent[$x]"
            fi
        elif [ "$r" -lt 5 ] && [ "$count" -gt 0 ]; then
            x=$(pick)
            local gone
            gone=$(subtree "$x")
            if run "rm -r $x" rm -r "$(path_of "$x")"; then
                case " $(echo $gone) " in *" $cur "*) cur=${parent[$x]} ;; esac
                for c in $gone; do unset "parent[$c]"; done
            fi
        elif [ "$r" -lt 8 ] && [ "$count" -gt 0 ]; then
            x=$(pick)
            if run "revert $x" "${PUT[@]}" "$D/.by-name/$x/revert" ""; then
                cur=$x
                [ "$live" -eq 0 ] || run=${taken[$x]}
            fi
        elif [ "$r" -lt 9 ] && [ "$count" -gt 0 ]; then
            # Refused: an existing name (EEXIST), or a directory that is
            # not the current one (EPERM).
            x=$(pick)
            run "mkdir taken $x" mkdir "$(path_of "$cur")/$x" &&
                echo "UNEXPECTED: mkdir of taken name $x succeeded" >>"$OPLOG/bad"
            [ "$x" != "$cur" ] && run "mkdir elsewhere $x" mkdir "$(path_of "$x")/z$n" &&
                echo "UNEXPECTED: mkdir outside current ($x, current $cur) succeeded" >>"$OPLOG/bad"
        elif [ "$live" -eq 1 ] && [ "$r" -lt 12 ]; then
            local words=(start destroy pause resume) w
            w=${words[RANDOM % 4]}
            if run "state $w" "${PUT[@]}" "$D/state" "$w"; then
                case $w in
                    start | resume) run=running ;;
                    destroy) run=shutoff ;;
                    pause) run=paused ;;
                esac
            fi
        else
            n=$((n + 1))
            x=$dom$n
            if run "mkdir $x in ${cur:-/}" mkdir "$(path_of "$cur")/$x"; then
                parent[$x]=$cur
                taken[$x]=$run
                cur=$x
            fi
        fi
    done
    {
        for x in "${!parent[@]}"; do echo "$x < ${parent[$x]}"; done | sort
        echo "current ${cur:-none}"
        [ "$live" -eq 0 ] || echo "state $run"
    } >"$OPLOG/$dom.model"
}

# walker: find and cat over the whole mount until STOP exists; counts
# walks and keeps every error other than a name that vanished meanwhile.
walker() {
    local i=0 out
    while [ ! -e "$STOP" ]; do
        out=$(timeout "$OP_DEADLINE" find "$MNT" -name metadata.xml -exec cat {} + 2>&1 >/dev/null) ||
            [ $? -ne 124 ] || echo "DEADLOCK? find (walker $1)" >>"$OPLOG/hung"
        grep -v 'No such file or directory' <<<"$out" | sed '/^$/d' >>"$OPLOG/walk-errors" || true
        cat "$MNT"/*/errors "$MNT"/*/job "$MNT"/*/state >/dev/null 2>>"$OPLOG/walk-errors" || true
        i=$((i + 1))
    done
    echo "$i" >"$OPLOG/walks.$1"
}

say "load for ${SECONDS_TO_RUN}s: mutators on ${OFFLINE[*]} ${LIVE[*]}, 2 walkers; daemon RSS ${rss_start} KiB"
pids=()
for d in "${OFFLINE[@]}"; do mutator "$d" 0 & pids+=($!); done
for d in "${LIVE[@]}"; do mutator "$d" 1 & pids+=($!); done
walker 1 & pids+=($!)
walker 2 & pids+=($!)
EXTRA_PIDS+=("${pids[@]}")
sleep "$SECONDS_TO_RUN"
touch "$STOP"
deadline=$(( $(date +%s) + 2 * OP_DEADLINE ))
for p in "${pids[@]}"; do
    while kill -0 "$p" 2>/dev/null; do
        [ "$(date +%s)" -lt "$deadline" ] || fail "shell $p still running after the stop$(daemon_stacks)"
        sleep 0.1
    done
    wait "$p" || fail "shell $p failed"
done
EXTRA_PIDS=()
kill -0 "$DAEMON_PID" 2>/dev/null || fail "the daemon died under load"
rss_end=$(rss)

check "no operation hung, nothing unexpected succeeded, walkers saw no errors"
[ ! -s "$OPLOG/hung" ] || fail "$(cat "$OPLOG/hung")"
[ ! -s "$OPLOG/bad" ] || fail "$(cat "$OPLOG/bad")"
[ ! -s "$OPLOG/walk-errors" ] || fail "walkers: $(sort "$OPLOG/walk-errors" | uniq -c | head)"

check "every domain is what its successes made it"
for d in "${OFFLINE[@]}" "${LIVE[@]}"; do
    got=$(
        for x in $(ls "$MNT/$d/.by-name"); do
            p=$(xmllint --xpath 'string(/domainsnapshot/parent/name)' "$MNT/$d/.by-name/$x/metadata.xml")
            echo "$x < $p"
        done | sort
        echo "current $(basename "$(readlink "$MNT/$d/current" 2>/dev/null || echo none)")"
        [ "$d" != v ] || echo "state $(state_of "$d")"
    )
    if [ "$got" != "$(cat "$OPLOG/$d.model")" ]; then
        tail -n 20 "$OPLOG/$d.log" >&2
        fail "$d: tree differs from the model; model:
$(cat "$OPLOG/$d.model")
mount:
$got"
    fi
    # A running domain's tags are read through qemu-img -U all the same.
    assert_store_agrees "$d"
    check_views "$MNT/$d" "$d after the soak"
done

ops=$(cat "$OPLOG"/*.log | wc -l)
failed=$(cat "$OPLOG"/*.log | grep -vc ' rc=0 ' || true)
walks=$(cat "$OPLOG"/walks.* | awk '{s += $1} END {print s}')
say "operations: $ops, failed: $failed (refusals included), walks: $walks"
say "daemon RSS: start ${rss_start} KiB, end ${rss_end} KiB"
for d in "${OFFLINE[@]}" "${LIVE[@]}"; do
    say "$d: $(grep -c ' rc=0 ' "$OPLOG/$d.log") ok, $(grep -vc ' rc=0 ' "$OPLOG/$d.log") failed; unexpected failures:"
    { grep -v ' rc=0 ' "$OPLOG/$d.log" | grep -v 'mkdir taken\|mkdir elsewhere' | head -n 5 | sed 's/^/    /'; } || true
done
[ "$ops" -gt 20 ] || fail "only $ops operations in ${SECONDS_TO_RUN}s"
if [ "$TIME_SCALE" -eq 1 ] && [ "$rss_end" -gt $((rss_start + 65536)) ]; then
    fail "RSS grew from $rss_start to $rss_end KiB"
fi

[ ${#LIVE[@]} -eq 0 ] || put "$MNT/v/state" destroy 2>/dev/null || true
umount_fs
say "PASS"
