# libvirt.sh: mounting the libvirt backend, and a private libvirtd (qemu driver) for the tests.
# shellcheck shell=bash
#
# Sourced after common.sh. lv_start runs libvirtd in a mount namespace of
# its own, with /etc/libvirt, /run, /var/lib, /var/cache and /var/log
# overlaid from the workdir (../shared/reference/libvirt-on-this-machine.md,
# scripts/bench/live); cleanup kills it and every QEMU it started, by pid.

LV_PID=""
LV_DIR=""
LV_URI=""
LV_TCP_PORT=""
LV_DOMS=()

# mount_libvirt URI [-o OPTIONS...]: snaptreefs -f -o backend=libvirt,uri=URI MNT.
mount_libvirt() {
    local uri=$1
    shift
    [ -z "$DAEMON_PID" ] || fail "mount_libvirt: already mounted (pid $DAEMON_PID)"
    printf -- '=== mount libvirt %s %s\n' "$uri" "$*" >>"$DAEMON_LOG"
    G_DEBUG=fatal-warnings "$SNAPTREEFS" -f -o "backend=libvirt,uri=$uri" "$@" "$MNT" \
        >>"$DAEMON_LOG" 2>&1 &
    DAEMON_PID=$!
    wait_mounted 10 "$DAEMON_PID"
}

lv_cleanup() {
    local d f
    set +e
    # A test that failed while libvirtd was stopped must not leave it so.
    [ -z "$LV_PID" ] || kill -CONT "$LV_PID" 2>/dev/null
    if [ -n "$LV_PID" ] && kill -0 "$LV_PID" 2>/dev/null; then
        for d in "${LV_DOMS[@]}"; do
            timeout 10 virsh -q -c "$LV_URI" destroy "$d" >/dev/null 2>&1
        done
        kill -TERM "$LV_PID" 2>/dev/null
        wait "$LV_PID" 2>/dev/null
    fi
    for f in ${LV_DIR:+"$LV_DIR"/up/run/libvirt/qemu/*.pid}; do
        [ -s "$f" ] && _kill_pid "$(cat "$f")"
    done
    return 0
}

# lv_start [tcp]: a libvirtd with the qemu driver, reached at LV_URI (a
# unix socket in the workdir); with "tcp" it also listens on 127.0.0.1
# (LV_TCP_PORT, auth none: a test-only configuration). LV_NAME names its
# directory in the workdir (default libvirt), so that a test can start a
# second one after saving the LV_* variables of the first.
lv_start() {
    local d ns deadline
    require_cmd libvirtd virsh qemu-system-x86_64 unshare
    [ "$(id -u)" -eq 0 ] || skip "a private libvirtd needs root"
    [ -d /etc/libvirt ] || skip "no /etc/libvirt to mount over"
    LV_DIR=$WORKDIR/${LV_NAME:-libvirt}
    mkdir -p "$LV_DIR/etc" "$LV_DIR/sock"
    for d in run varlib varcache varlog; do mkdir -p "$LV_DIR/up/$d" "$LV_DIR/work/$d"; done
    # A restart keeps the domains defined before.
    [ -e "$LV_DIR/etc/libvirtd.conf" ] || cp -a /etc/libvirt/. "$LV_DIR/etc/"
    cat >"$LV_DIR/etc/qemu.conf" <<'CONF'
user = "root"
group = "root"
dynamic_ownership = 0
security_driver = "none"
cgroup_controllers = [ ]
namespaces = [ ]
stdio_handler = "file"
CONF
    cat >"$LV_DIR/etc/libvirtd.conf" <<CONF
unix_sock_dir = "$LV_DIR/sock"
unix_sock_rw_perms = "0777"
auth_unix_rw = "none"
auth_unix_ro = "none"
log_outputs = "3:file:$LV_DIR/libvirtd.log"
CONF
    local listen=""
    if [ "${1:-}" = tcp ]; then
        # A restart keeps its port, so a mount on it can reconnect.
        [ -n "$LV_TCP_PORT" ] || LV_TCP_PORT=$(( 20000 + RANDOM % 20000 ))
        cat >>"$LV_DIR/etc/libvirtd.conf" <<CONF
listen_tls = 0
listen_tcp = 1
listen_addr = "127.0.0.1"
tcp_port = "$LV_TCP_PORT"
auth_tcp = "none"
CONF
        listen=--listen
    fi
    cp /etc/passwd "$LV_DIR/passwd"
    cp /etc/group "$LV_DIR/group"
    getent passwd libvirt-qemu >/dev/null ||
        echo 'libvirt-qemu:x:64055:64055:Libvirt Qemu:/var/lib/libvirt:/usr/sbin/nologin' >>"$LV_DIR/passwd"
    getent group libvirt-qemu >/dev/null || echo 'libvirt-qemu:x:64055:' >>"$LV_DIR/group"
    getent group kvm >/dev/null || echo 'kvm:x:64056:' >>"$LV_DIR/group"
    ns=$LV_DIR/ns.sh
    {
        echo 'set -e'
        printf 'L=%q\n' "$LV_DIR"
        printf 'LISTEN=%q\n' "$listen"
        cat <<'NS'
# A copy of a snaptreefs mount in this namespace would keep its daemon
# alive after fusermount3 -u (common.sh): drop them here.
awk '$3 == "fuse.snaptreefs" { print $2 }' /proc/self/mounts | while read -r m; do umount -l "$m"; done
mount --bind "$L/etc" /etc/libvirt
mount --bind "$L/passwd" /etc/passwd
mount --bind "$L/group" /etc/group
overlay() { mount -t overlay overlay -o "lowerdir=$2,upperdir=$L/up/$1,workdir=$L/work/$1" "$2"; }
overlay run /run
overlay varlib /var/lib
overlay varcache /var/cache
overlay varlog /var/log
exec libvirtd $LISTEN -f /etc/libvirt/libvirtd.conf
NS
    } >"$ns"
    unshare -m --propagation private bash "$ns" >"$LV_DIR/libvirtd.out" 2>&1 &
    LV_PID=$!
    EXTRA_PIDS+=("$LV_PID")
    LV_URI="qemu+unix:///system?socket=$LV_DIR/sock/libvirt-sock"
    deadline=$(( $(date +%s) + 30 * TIME_SCALE ))
    until virsh -q -c "$LV_URI" version >/dev/null 2>&1; do
        if ! kill -0 "$LV_PID" 2>/dev/null || [ "$(date +%s)" -ge "$deadline" ]; then
            skip "libvirtd did not start: $(tail -q -n 3 "$LV_DIR/libvirtd.out" "$LV_DIR/libvirtd.log" 2>/dev/null | tr '\n' ' ')"
        fi
        sleep 0.1
    done
}

# lv_define NAME: a domain with one internal-snapshot qcow2 disk, 64 MiB, no OS.
lv_define() {
    local type=qemu
    [ -w /dev/kvm ] && type=kvm
    qemu-img create -q -f qcow2 "$LV_DIR/$1.qcow2" 16M
    cat >"$LV_DIR/$1.xml" <<XML
<domain type='$type'>
  <name>$1</name>
  <memory unit='MiB'>64</memory>
  <vcpu>1</vcpu>
  <os><type arch='x86_64' machine='pc'>hvm</type></os>
  <devices>
    <emulator>$(command -v qemu-system-x86_64)</emulator>
    <disk type='file' device='disk' snapshot='internal'>
      <driver name='qemu' type='qcow2'/>
      <source file='$LV_DIR/$1.qcow2'/>
      <target dev='vda' bus='virtio'/>
    </disk>
    <controller type='usb' model='none'/>
    <memballoon model='none'/>
  </devices>
</domain>
XML
    virsh -q -c "$LV_URI" define "$LV_DIR/$1.xml" >/dev/null
    LV_DOMS+=("$1")
}

# vsh CMD...: virsh on the private libvirtd.
vsh() { virsh -q -c "$LV_URI" "$@"; }

# wait_for SECONDS CMD...: until CMD succeeds; fails the test after SECONDS.
wait_for() {
    local limit=$1 start
    shift
    start=$(now_ms)
    until "$@"; do
        [ $(( $(now_ms) - start )) -lt $(( limit * 1000 * TIME_SCALE )) ] ||
            fail "not within ${limit}s: $*"
        sleep 0.05
    done
}

# libvirtd and its QEMUs go before common.sh's cleanup (which keeps the
# test's exit status).
trap 'rc=$?; lv_cleanup; (exit $rc); cleanup' EXIT
