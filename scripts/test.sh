#!/usr/bin/env bash
# test.sh: the one test command. Installs dependencies, builds with -Werror
# into build/ and runs every suite, then again under ASan+UBSan in
# build-asan/. Ends with "N passed, N failed" and fails on any failure.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

log() { printf '\n==== %s\n' "$*"; }

log "installing dependencies"
./scripts/install-deps.sh || { echo "install-deps.sh failed"; echo "0 passed, 1 failed"; exit 1; }

passed=0
failed=0
skipped=0
why_file=$(mktemp)
trap 'rm -f "$why_file"' EXIT

# setup_build DIR [meson options...]: configure DIR, reusing it when possible.
setup_build() {
    local dir=$1
    shift
    if [ -f "$dir/meson-private/coredata.dat" ]; then
        meson setup --reconfigure "$dir" "$@" ||
            meson setup --wipe "$dir" "$@"
    else
        rm -rf "$dir"
        meson setup "$dir" "$@"
    fi
}

# count DIR: add DIR's meson test results to the totals.
count() {
    local json=$1/meson-logs/testlog.json p f s
    if [ ! -s "$json" ]; then
        echo "no test log in $json"
        failed=$((failed + 1))
        return
    fi
    p=$(jq -s '[.[] | select(.result == "OK" or .result == "EXPECTEDFAIL")] | length' "$json")
    f=$(jq -s '[.[] | select(.result == "FAIL" or .result == "TIMEOUT" or .result == "ERROR" or .result == "UNEXPECTEDPASS")] | length' "$json")
    s=$(jq -s '[.[] | select(.result == "SKIP")] | length' "$json")
    jq -r -s '.[] | "  \(.result)\t\(.name)\t\(.duration | floor)s"' "$json"
    # What each failure said last, for the summary at the very end: a CI
    # log shown only by its tail still says why.
    jq -r -s --arg dir "$1" '.[] | select(.result == "FAIL" or .result == "TIMEOUT" or .result == "ERROR")
        | "  \($dir): \(.name):\n" + ((.stdout // "") | split("\n") | map(select(length > 0))
        | .[-8:] | map("    " + .[0:300]) | join("\n"))' "$json" >>"$why_file"
    passed=$((passed + p))
    failed=$((failed + f))
    skipped=$((skipped + s))
}

# run DIR MULTIPLIER: build DIR and run every suite in it.
run() {
    local dir=$1 mult=$2
    rm -f "$dir/meson-logs/testlog.json"
    if ! meson compile -C "$dir"; then
        echo "build in $dir failed"
        failed=$((failed + 1))
        return
    fi
    meson test -C "$dir" --print-errorlogs --timeout-multiplier "$mult"
    count "$dir"
}

log "build/ (-Werror)"
if setup_build build -Dwerror=true -Db_sanitize=none; then
    log "tests in build/"
    run build 1
else
    echo "meson setup build failed"
    failed=$((failed + 1))
fi

log "build-asan/ (ASan + UBSan)"
if setup_build build-asan -Dwerror=true -Db_sanitize=address,undefined -Db_lundef=false; then
    log "tests in build-asan/"
    export ASAN_OPTIONS=detect_leaks=1:abort_on_error=1
    export UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
    export G_SLICE=always-malloc
    run build-asan 2
else
    echo "meson setup build-asan failed"
    failed=$((failed + 1))
fi

# Each libFuzzer target runs briefly (clang, build-fuzz/): one more result.
log "fuzz targets (libFuzzer): ${FUZZ_SECONDS:-10}s each"
if env -u ASAN_OPTIONS -u UBSAN_OPTIONS FUZZ_BUILD_DIR=build-fuzz \
    ./scripts/fuzz.sh "${FUZZ_SECONDS:-10}"; then
    passed=$((passed + 1))
else
    printf "  FAIL\tfuzz.sh\n"
    failed=$((failed + 1))
fi

[ "$skipped" -eq 0 ] || echo "($skipped skipped)"
if [ -s "$why_file" ]; then
    echo "the last lines of each failed test:"
    cat "$why_file"
fi
echo "$passed passed, $failed failed"
[ "$failed" -eq 0 ] && [ "$passed" -gt 0 ]
