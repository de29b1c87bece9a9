#!/usr/bin/env bash
# fuzz.sh: builds the libFuzzer targets (tests/fuzz) with clang and runs each
# for a bounded time, printing one summary line per target.
#
# Usage: scripts/fuzz.sh [SECONDS_PER_TARGET [TARGET...]]
#   SECONDS_PER_TARGET  default 60
#   TARGET              fuzz-snapshot-xml fuzz-domain-xml fuzz-control-words
#                       fuzz-names (default: all four)
# Environment: FUZZ_BUILD_DIR (default build-fuzz).
# The corpus each run grows and what it finds stay under
# $FUZZ_BUILD_DIR/fuzz-work/TARGET/; the seeds in tests/fuzz/corpus are read only.
# Exits 1 when a target found a crash, leak, UB or round-trip mismatch.
set -uo pipefail

cd "$(dirname "$0")/.." || exit 1

ALL_TARGETS=(fuzz-snapshot-xml fuzz-domain-xml fuzz-control-words fuzz-names)
BUILD_DIR=${FUZZ_BUILD_DIR:-build-fuzz}

seconds=${1:-60}
[ $# -gt 0 ] && shift
if ! [[ $seconds =~ ^[1-9][0-9]*$ ]]; then
    echo "usage: $0 [SECONDS_PER_TARGET [TARGET...]]" >&2
    exit 2
fi
targets=("$@")
[ ${#targets[@]} -eq 0 ] && targets=("${ALL_TARGETS[@]}")
for t in "${targets[@]}"; do
    case " ${ALL_TARGETS[*]} " in
    *" $t "*) ;;
    *)
        echo "unknown target '$t' (known: ${ALL_TARGETS[*]})" >&2
        exit 2
        ;;
    esac
done

log() { printf '==== %s\n' "$*"; }

SUDO=""
[ "$(id -u)" -ne 0 ] && SUDO="sudo"

# TRUE when clang can build and link a libFuzzer target with ASan+UBSan.
# Debian's clang only recommends the runtime (libclang-rt-*-dev), so an
# install without recommends has clang but no libFuzzer.
probe_libfuzzer() {
    local dir rc
    dir=$(mktemp -d) || return 1
    printf '%s\n' '#include <stddef.h>' '#include <stdint.h>' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n);' \
        'int LLVMFuzzerTestOneInput(const uint8_t *d, size_t n) { return 0; }' \
        >"$dir/probe.c"
    clang -fsanitize=fuzzer,address,undefined "$dir/probe.c" -o "$dir/probe" \
        >/dev/null 2>&1 && "$dir/probe" -runs=1 >/dev/null 2>&1
    rc=$?
    rm -rf "$dir"
    return $rc
}

log "installing dependencies"
./scripts/install-deps.sh || { echo "install-deps.sh failed" >&2; exit 1; }
if ! command -v clang >/dev/null 2>&1 || ! probe_libfuzzer; then
    log "installing clang and the libFuzzer runtime (clang libclang-rt-dev)"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -q &&
        $SUDO apt-get install -y -q --no-install-recommends clang libclang-rt-dev ||
        { echo "apt-get install clang libclang-rt-dev failed" >&2; exit 1; }
    probe_libfuzzer || { echo "clang -fsanitize=fuzzer does not work" >&2; exit 1; }
fi

log "building ${targets[*]} in $BUILD_DIR"
options=(-Dfuzzing=true -Db_sanitize=address,undefined -Db_lundef=false)
if [ -f "$BUILD_DIR/meson-private/coredata.dat" ]; then
    meson setup --reconfigure "$BUILD_DIR" "${options[@]}" >/dev/null ||
        { echo "meson setup --reconfigure $BUILD_DIR failed" >&2; exit 1; }
else
    rm -rf "$BUILD_DIR"
    CC=clang meson setup "$BUILD_DIR" "${options[@]}" >/dev/null ||
        { echo "meson setup $BUILD_DIR failed" >&2; exit 1; }
fi
mkdir -p "$BUILD_DIR/fuzz-work"
if ! ninja -C "$BUILD_DIR" "${targets[@]/#/tests/fuzz/}" >"$BUILD_DIR/fuzz-work/build.log" 2>&1; then
    cat "$BUILD_DIR/fuzz-work/build.log"
    echo "building the fuzz targets failed" >&2
    exit 1
fi

# Leaks count as findings; UBSan stops at the first report, with a stack.
export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export G_SLICE=always-malloc

# final_stat NAME LOG: the value of libFuzzer's final "stat::NAME: V" line.
final_stat() { sed -n "s/^stat::$1: *//p" "$2" | tail -n 1; }

log "fuzzing each target for ${seconds}s"
found=0
summary=()
for t in "${targets[@]}"; do
    work=$BUILD_DIR/fuzz-work/$t
    mkdir -p "$work/corpus" "$work/artifacts"
    rm -f "$work/artifacts/"*
    args=(-max_total_time="$seconds" -print_final_stats=1 -timeout=25
          -rss_limit_mb=2048 -artifact_prefix="$work/artifacts/")
    case $t in
    fuzz-snapshot-xml | fuzz-domain-xml) args+=(-dict=tests/fuzz/xml.dict) ;;
    esac
    "$BUILD_DIR/tests/fuzz/$t" "${args[@]}" "$work/corpus" "tests/fuzz/corpus/$t" \
        >"$work/log" 2>&1
    rc=$?

    execs=$(final_stat number_of_executed_units "$work/log")
    rate=$(final_stat average_exec_per_sec "$work/log")
    last=$(grep -E '^#[0-9]+.*cov: ' "$work/log" | tail -n 1)
    cov=$(sed -n 's/.* cov: \([0-9]*\).*/\1/p' <<<"$last")
    ft=$(sed -n 's/.* ft: \([0-9]*\).*/\1/p' <<<"$last")
    corp=$(sed -n 's/.* corp: \([0-9]*\)\/.*/\1/p' <<<"$last")
    crashes=$(find "$work/artifacts" -type f | wc -l)
    line=$(printf '%-20s execs %10s  exec/s %7s  cov %5s  ft %6s  corpus %5s  crashes %s' \
        "$t" "${execs:-?}" "${rate:-?}" "${cov:-?}" "${ft:-?}" "${corp:-?}" "$crashes")
    summary+=("$line")
    echo "$line"
    if [ "$rc" -ne 0 ] || [ "$crashes" -gt 0 ]; then
        found=1
        echo "  exit status $rc; log: $work/log"
        find "$work/artifacts" -type f -printf '  artifact: %p\n'
        grep -m 1 -E '^(==[0-9]+==ERROR|====|.*runtime error:|SUMMARY:)' "$work/log" |
            sed 's/^/  /'
    fi
done

log "summary (${seconds}s per target)"
printf '%s\n' "${summary[@]}"
if [ "$found" -ne 0 ]; then
    echo "FINDINGS: see the artifacts above; reproduce with $BUILD_DIR/tests/fuzz/TARGET ARTIFACT"
    exit 1
fi
echo "no findings"
