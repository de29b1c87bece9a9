#!/usr/bin/env bash
# check-format.sh: lists the C files that clang-format (.clang-format) would
# change; exits 1 if there is any. `clang-format -i FILE...` fixes them.
set -uo pipefail
cd "$(dirname "$0")/.." || exit 1
bad=0
for f in core/*/*.[ch] core/*/*/*.[ch] fs/*.[ch] fs/tests/*.c tests/unit/*/*.c tests/unit/*/*/*.c tools/*.[ch] scripts/bench/*.c; do
    [ -e "$f" ] || continue
    if ! clang-format --dry-run --Werror "$f" >/dev/null 2>&1; then
        echo "$f"
        bad=1
    fi
done
exit $bad
