# chain.sh: long linear chains of internal snapshots, made fast.
# shellcheck shell=bash
#
# Sourced after common.sh. A chain of N snapshots made through the mount
# runs qemu-img N times on an image whose snapshot table grows each time
# (scripts/bench/chain measures that); the tests that need a deep chain
# only to look at it make the same state directly: the tags in one QEMU
# process over QMP, the metadata as the state directory's format has it
# (STATE/snapshots/DOM/SNAP.xml, <active>1 on the current one). The
# mount's start-up reconcile then checks that the two agree.

# chain_name I: the I-th name of a nightly chain, 25 bytes.
chain_name() { printf 'n%04d-2026-06-02T03:00:00' "$1"; }

# chain_tags IMG N: internal snapshots chain_name 1..N on IMG, in order,
# from one QEMU over QMP (blockdev-snapshot-internal-sync), without
# flushing the image for each (the test's image, not the user's).
chain_tags() {
    local img=$1 n=$2 sock=$WORKDIR/chain.qmp pid
    qemu-system-x86_64 -machine none -nodefaults -display none \
        -qmp "unix:$sock,server=on,wait=off" \
        -blockdev "driver=qcow2,node-name=d0,file.driver=file,file.filename=$img,file.cache.no-flush=on" \
        >>"$LOGS/chain-qemu.log" 2>&1 &
    pid=$!
    EXTRA_PIDS+=("$pid")
    python3 - "$sock" "$n" <<'PY' || fail "chain_tags: QMP failed"
import json, socket, sys, time
s = socket.socket(socket.AF_UNIX)
for _ in range(200):
    try:
        s.connect(sys.argv[1])
        break
    except OSError:
        time.sleep(0.05)
f = s.makefile("rw")
def cmd(command, **args):
    f.write(json.dumps({"execute": command, "arguments": args}) + "\n")
    f.flush()
    while True:
        m = json.loads(f.readline())
        if "error" in m:
            sys.exit(command + ": " + m["error"]["desc"])
        if "return" in m:
            return m["return"]
json.loads(f.readline())
cmd("qmp_capabilities")
for i in range(1, int(sys.argv[2]) + 1):
    cmd("blockdev-snapshot-internal-sync", device="d0",
        name="n%04d-2026-06-02T03:00:00" % i)
cmd("quit")
PY
    wait "$pid" || true
}

# chain_metadata DOM N TEMPLATE: STATE/snapshots/DOM/ gets the metadata of
# chain_name 1..N, each the child of the one before, the last current,
# one day apart; TEMPLATE is a metadata.xml of DOM (a root, shut off) whose
# name and creationTime are replaced.
chain_metadata() {
    local dom=$1 n=$2 template=$3 dir=$STATE/snapshots/$1
    mkdir -p "$dir"
    awk -v n="$n" -v dir="$dir" '
        { lines[NR] = $0 }
        END {
            for (i = 1; i <= n; i++) {
                name = sprintf("n%04d-2026-06-02T03:00:00", i)
                out = dir "/" name ".xml"
                for (l = 1; l <= NR; l++) {
                    line = lines[l]
                    if (line ~ /^  <name>/) {
                        print "  <name>" name "</name>" > out
                        if (i > 1)
                            printf "  <parent>\n    <name>n%04d-2026-06-02T03:00:00</name>\n  </parent>\n", i - 1 > out
                        continue
                    }
                    if (line ~ /^  <creationTime>/) {
                        print "  <creationTime>" (1780000000 + i * 86400) "</creationTime>" > out
                        continue
                    }
                    if (line ~ /^  <active>/)
                        continue
                    if (line ~ /^<\/domainsnapshot>/ && i == n)
                        print "  <active>1</active>" > out
                    print line > out
                }
                close(out)
            }
        }' "$template"
}
