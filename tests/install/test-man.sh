#!/usr/bin/env bash
# test-man.sh MAN_DIR SNAPTREEFS IMPORT EXPORT SOURCE_DIR: the man pages
# render with no groff warning, every option each program's --help prints is
# in its page, and snaptreefs.1 names every control word, reserved name and
# errno the code has (read from the source, so that a new one needs its line).
set -euo pipefail
export LC_ALL=C MANWIDTH=200
man_dir=$1
fail() { printf 'test-man: FAIL: %s\n' "$*" >&2; exit 1; }
command -v man >/dev/null || { echo "test-man: SKIP: no man (man-db)"; exit 77; }

# options HELP_TEXT: the option names it lists, one a line ("-o ro", "-f", "--help").
options() {
    grep -oE -- '(^|[[:space:]])(-o [a-z_]+|--[a-z-]+|-[a-zA-Z])' | sed -E 's/^[[:space:]]+//' | sort -u
}

# check_page PAGE PROGRAM MIN: PAGE renders cleanly and names every option of
# PROGRAM --help, which lists at least MIN.
check_page() {
    local page=$man_dir/$1 prog=$2 min=$3 warnings text opt n=0
    [ -s "$page" ] || fail "$page missing"
    warnings=$(man --warnings -l "$page" 2>&1 >/dev/null)
    [ -z "$warnings" ] || fail "$1: man --warnings: $warnings"
    text=$(man -l "$page" | col -b)
    while read -r opt; do
        [ -n "$opt" ] || continue
        n=$((n + 1))
        # The option as a word of its own: "-o ro" not matched by "-o root".
        grep -qE -- "(^|[^a-zA-Z_-])${opt}([^a-zA-Z_-]|$)" <<<"$text" ||
            fail "$1: option '$opt' of '$prog --help' is not in the page"
    done < <("$prog" --help 2>&1 | options)
    [ "$n" -ge "$min" ] || fail "$prog --help lists only $n options: the parser is wrong"
    printf 'test-man: %s: renders without warnings, names all %d options of --help\n' "$1" "$n"
}

check_page snaptreefs.1 "$2" 20
check_page snaptreefs-import.1 "$3" 1
check_page snaptreefs-export.1 "$4" 0

text=$(man -l "$man_dir/snaptreefs.1" | col -b)
for ref in 'virsh(1)' 'qemu-img(1)' 'fusermount3(1)' 'mount.fuse3(8)' 'fuse.snaptreefs' \
    'backend=libvirt,uri=qemu:///system' 'Type=fuse.snaptreefs' '/run/systemd/journal/socket' \
    EINVAL EEXIST EPERM ENOENT EBUSY EIO ENOSPC EOPNOTSUPP EROFS ESTALE .by-name; do
    case "$text" in *"$ref"*) ;; *) fail "snaptreefs.1 does not mention $ref" ;; esac
done
# word_in_page WHAT WORD...: each WORD is a word of snaptreefs.1.
word_in_page() {
    local what=$1 w
    shift
    for w in "$@"; do
        grep -qE -- "(^|[^a-zA-Z_.-])${w//./\\.}([^a-zA-Z_-]|$)" <<<"$text" ||
            fail "snaptreefs.1 does not name the $what '$w'"
    done
    printf 'test-man: snaptreefs.1 names every %s: %s\n' "$what" "$*"
}
src=$5
mapfile -t words < <({
    grep -ohE '\{"[a-z-]+", *SNAP_[A-Z_]+' "$src"/core/conf/control-words.c "$src"/core/conf/backup-words.c |
        sed -E 's/\{"([a-z-]+)".*/\1/'
    grep -ohE 'word_is\(word, "[a-z-]+"\)|strcmp\(line, "[a-z-]+"\)' \
        "$src"/core/conf/control-words.c "$src"/core/conf/backup-words.c | sed -E 's/.*"([a-z-]+)".*/\1/'
} | sort -u)
[ "${#words[@]}" -ge 10 ] || fail "found only ${#words[@]} control words in the source"
word_in_page "control word" "${words[@]}"
mapfile -t reserved < <(sed -n '/snap_reserved_names\[\] = {/,/};/p' "$src"/core/conf/snap-names.c |
    grep -oE '"[^"]+"' | tr -d '"')
[ "${#reserved[@]}" -ge 5 ] || fail "found only ${#reserved[@]} reserved names in the source"
word_in_page "reserved name" "${reserved[@]}"
# The errnos a program can see: the engine's table, and the FUSE layer's own
# replies (ENOSYS only tells the kernel an operation is not implemented).
mapfile -t errnos < <({
    grep -ohE '\[SNAP_ERROR_[A-Z_]+\] = E[A-Z]+' "$src"/core/util/snap-error.c | grep -oE 'E[A-Z]+$'
    grep -ohE 'fuse_reply_err\(req, [^;]*' "$src"/fs/*.c | grep -oE '\bE[A-Z]{2,}\b'
} | grep -vx ENOSYS | sort -u)
[ "${#errnos[@]}" -ge 10 ] || fail "found only ${#errnos[@]} errnos in the source"
word_in_page errno "${errnos[@]}"
# An option the page calls "Native backend only" is one the libvirt backend
# refuses before it looks at the mountpoint (test:///default is a local URI,
# so -o disks, which works on local URIs, must not be called native only).
native_only=$(awk '/^OPTIONS$/ { on = 1; next } /^[A-Z][A-Z ]+$/ { on = 0 }
    on && /^       -/ { head = $0; next }
    on && /Native backend only/ { print head }' <<<"$text" |
    grep -oE -- '-o [a-z_]+(=[a-zA-Z_]+)?' | sed 's/^-o //' | sort -u)
[ -n "$native_only" ] || fail "snaptreefs.1 names no native-only option: the parser is wrong"
for opt in $native_only; do
    out=$("$2" -f -o "backend=libvirt,uri=test:///default,$opt" /nonexistent/snaptreefs-mnt 2>&1) &&
        fail "-o $opt with the libvirt backend: no failure"
    grep -qi 'native backend only' <<<"$out" ||
        fail "snaptreefs.1 says -o $opt is for the native backend only, but the libvirt backend takes it: $out"
done
printf 'test-man: the libvirt backend refuses every option the page calls native only: %s\n' \
    "$(echo $native_only)"
echo "test-man: PASS"
