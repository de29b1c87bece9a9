/* qemu-vm.c: a domain's QEMU process, its monitor, and a thread that watches it. */
#include "qemu-vm.h"

#include <errno.h>
#include <fcntl.h>
#include <glib-unix.h>
#include <glib/gstdio.h>
#include <poll.h>
#include <signal.h>
#include <unistd.h>

#include "qemu-cmdline.h"
#include "snap-error.h"
#include "snap-spawn.h"

#define QMP_CONNECT_TIMEOUT_MS 5000
#define QMP_COMMAND_TIMEOUT_MS 10000

struct _QemuVm {
    char *name;
    char *pidfile;
    char *socket;
    int pid;
    GMutex lock; /* the monitor: one command, or the watcher, at a time */
    QmpClient *client;
    gint state;            /* SnapDomainState; atomic */
    gint exited;           /* atomic */
    gboolean exit_asked;   /* destroy, or a power-down request; under lock */
    char *shutdown_reason; /* of QEMU's SHUTDOWN event; under lock */
    QemuVmStateFunc func;
    gpointer user_data;
    GThread *watcher;
    int wake[2]; /* a byte here stops the watcher */
};

/* ---- process ------------------------------------------------------------ */

static int
read_pidfile(const char *path)
{
    g_autofree char *text = NULL;
    char *end = NULL;
    gint64 pid;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        return -1;
    pid = g_ascii_strtoll(g_strstrip(text), &end, 10);
    if (end == text || *end != '\0' || pid <= 1 || pid > G_MAXINT)
        return -1;
    return (int)pid;
}

/* TRUE while @pid is a live process (not a zombie that nobody reaped yet)
 * whose command line names @socket, so a recycled pid is not taken for
 * our QEMU. */
static gboolean
pid_is_our_qemu(int pid, const char *socket)
{
    g_autofree char *stat_path = g_strdup_printf("/proc/%d/stat", pid);
    g_autofree char *cmd_path = g_strdup_printf("/proc/%d/cmdline", pid);
    g_autofree char *stat = NULL;
    g_autofree char *cmdline = NULL;
    gsize len = 0;
    const char *paren;

    if (!g_file_get_contents(stat_path, &stat, NULL, NULL))
        return FALSE;
    paren = strrchr(stat, ')');
    if (paren == NULL || paren[1] == '\0' || paren[2] == 'Z' || paren[2] == 'X')
        return FALSE;
    if (socket == NULL)
        return TRUE;
    if (!g_file_get_contents(cmd_path, &cmdline, &len, NULL))
        return FALSE;
    for (gsize i = 0; i < len; i += strlen(cmdline + i) + 1)
        if (strstr(cmdline + i, socket) != NULL)
            return TRUE;
    return FALSE;
}

/* The pidfile, the monitor's socket and the guest agent's beside it
 * (STATE/run/NAME.qga), which QEMU leaves behind when it exits. */
static void
remove_run_files(const char *pidfile, const char *socket)
{
    g_autofree char *agent = NULL;

    g_unlink(pidfile);
    g_unlink(socket);
    if (g_str_has_suffix(socket, ".qmp")) {
        agent = g_strdup(socket);
        memcpy(agent + strlen(agent) - 4, ".qga", 4);
        g_unlink(agent);
    }
}

/* ---- state and events ------------------------------------------------------ */

static void
set_state_locked(QemuVm *vm, SnapDomainState state, const char *exit_message)
{
    gint old = g_atomic_int_get(&vm->state);

    g_atomic_int_set(&vm->state, state);
    if ((old != (gint)state || exit_message != NULL) && vm->func != NULL)
        vm->func(vm, state, exit_message, vm->user_data);
}

static SnapDomainState
state_from_status(JsonObject *obj)
{
    /* libvirt's mapping: only "running" runs; prelaunch, paused,
     * restore-vm, save-vm, io-error... are all paused. */
    if (json_object_get_boolean_member_with_default(obj, "running", FALSE))
        return SNAP_DOMAIN_RUNNING;
    return SNAP_DOMAIN_PAUSED;
}

static void
on_event(QmpClient *client, const QmpEvent *event, gpointer user_data)
{
    QemuVm *vm = user_data;

    if (g_str_equal(event->name, "STOP"))
        set_state_locked(vm, SNAP_DOMAIN_PAUSED, NULL);
    else if (g_str_equal(event->name, "RESUME"))
        set_state_locked(vm, SNAP_DOMAIN_RUNNING, NULL);
    else if (g_str_equal(event->name, "SHUTDOWN")) {
        g_free(vm->shutdown_reason);
        vm->shutdown_reason = g_strdup(
            json_object_get_string_member_with_default(event->data, "reason", "unknown"));
    }
}

/* The monitor closed: QEMU is gone (or going). Records it once. */
static void
handle_exit_locked(QemuVm *vm)
{
    g_autofree char *message = NULL;

    if (g_atomic_int_get(&vm->exited))
        return;
    g_atomic_int_set(&vm->exited, TRUE);
    if (vm->exit_asked)
        message = g_strdup("");
    else if (g_strcmp0(vm->shutdown_reason, "guest-shutdown") == 0)
        message = g_strdup("QEMU exited: the guest powered off");
    else if (vm->shutdown_reason != NULL)
        message = g_strdup_printf("QEMU exited (%s) without being asked to",
                                  vm->shutdown_reason);
    else
        message = g_strdup_printf("QEMU (pid %d) exited without being asked to: it "
                                  "crashed or was killed",
                                  vm->pid);
    /* QEMU removes its pidfile on a clean exit, never its socket. */
    if (!pid_is_our_qemu(vm->pid, vm->socket))
        remove_run_files(vm->pidfile, vm->socket);
    set_state_locked(vm, SNAP_DOMAIN_SHUTOFF, message);
}

/* After a failed monitor call: was it QEMU going away? */
static void
check_exit_locked(QemuVm *vm)
{
    if (!qmp_client_is_connected(vm->client))
        handle_exit_locked(vm);
}

static gpointer
watcher_thread(gpointer data)
{
    QemuVm *vm = data;

    for (;;) {
        struct pollfd p[2] = {
            {.fd = qmp_client_get_fd(vm->client), .events = POLLIN},
            {.fd = vm->wake[0], .events = POLLIN},
        };
        g_autoptr(GError) error = NULL;
        gboolean ok;

        if (poll(p, 2, -1) < 0) {
            if (errno == EINTR)
                continue;
            return NULL;
        }
        if (p[1].revents)
            return NULL;
        /* A command in progress reads its own reply (and the events
         * before it); the lock makes this wait for it. */
        g_mutex_lock(&vm->lock);
        ok = qmp_client_poll(vm->client, 0, &error);
        if (!ok)
            handle_exit_locked(vm);
        g_mutex_unlock(&vm->lock);
        if (!ok)
            return NULL;
    }
}

/* ---- lifecycle ------------------------------------------------------------------- */

static QemuVm *
vm_new(const char *state_dir, const char *name, QemuVmStateFunc func, gpointer user_data)
{
    QemuVm *vm = g_new0(QemuVm, 1);

    vm->name = g_strdup(name);
    vm->pidfile = qemu_run_pidfile(state_dir, name);
    vm->socket = qemu_run_socket(state_dir, name);
    vm->pid = -1;
    vm->wake[0] = vm->wake[1] = -1;
    vm->func = func;
    vm->user_data = user_data;
    g_mutex_init(&vm->lock);
    g_atomic_int_set(&vm->state, SNAP_DOMAIN_SHUTOFF);
    return vm;
}

/* Connects to the monitor and learns the run state (no thread). */
static gboolean
vm_connect(QemuVm *vm, GError **error)
{
    vm->client = qmp_client_connect(vm->socket, QMP_CONNECT_TIMEOUT_MS, error);
    if (vm->client == NULL)
        return FALSE;
    qmp_client_set_event_func(vm->client, on_event, vm, NULL);
    return qemu_vm_refresh_state(vm, error);
}

gboolean
qemu_vm_watch(QemuVm *vm, GError **error)
{
    if (vm->watcher != NULL)
        return TRUE;
    if (!g_unix_open_pipe(vm->wake, FD_CLOEXEC, error))
        return FALSE;
    vm->watcher = g_thread_new("qemu-watch", watcher_thread, vm);
    return TRUE;
}

QemuVm *
qemu_vm_launch(const char *state_dir, const DomainDef *def, gboolean paused,
               QemuVmStateFunc func, gpointer user_data, GError **error)
{
    return qemu_vm_launch_incoming(state_dir, def, paused, FALSE, func, user_data, error);
}

QemuVm *
qemu_vm_launch_incoming(const char *state_dir, const DomainDef *def, gboolean paused,
                        gboolean incoming, QemuVmStateFunc func, gpointer user_data,
                        GError **error)
{
    g_autoptr(QemuVm) vm = vm_new(state_dir, def->name, func, user_data);
    g_autofree char *run_dir = g_build_filename(state_dir, "run", NULL);
    g_autofree char *err_text = NULL;
    QemuLaunch launch = {.paused = paused, .kvm = FALSE, .incoming = incoming};
    g_auto(GStrv) argv = NULL;
    int status = 0;

    launch.kvm = g_strcmp0(def->type, "kvm") == 0 && qemu_kvm_usable();
    if (g_mkdir_with_parents(run_dir, 0700) < 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_FAILED, "cannot create '%s': %s",
                    run_dir, g_strerror(errno));
        return NULL;
    }
    argv = qemu_cmdline_build(def, state_dir, &launch, error);
    if (argv == NULL)
        return NULL;
    remove_run_files(vm->pidfile, vm->socket);
    /* With -daemonize, QEMU exits once the machine is set up (or has
     * failed to be), so its status and stderr say how the start went. */
    if (!snap_spawn_sync((const char *const *)argv, NULL, &err_text, &status, NULL,
                         error)) {
        g_prefix_error(error, "cannot run %s: ", argv[0]);
        return NULL;
    }
    if (!g_spawn_check_wait_status(status, NULL)) {
        g_strstrip(err_text);
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "%s",
                    *err_text ? err_text : "QEMU failed to start");
        return NULL;
    }
    vm->pid = read_pidfile(vm->pidfile);
    if (vm->pid < 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "QEMU wrote no pid to '%s'",
                    vm->pidfile);
        return NULL;
    }
    if (!vm_connect(vm, error) || !qemu_vm_watch(vm, error)) {
        /* Ours, just started, and unreachable: do not leave it behind. */
        kill(vm->pid, SIGKILL);
        remove_run_files(vm->pidfile, vm->socket);
        return NULL;
    }
    return g_steal_pointer(&vm);
}

QemuVm *
qemu_vm_attach(const char *state_dir, const char *name, QemuVmStateFunc func,
               gpointer user_data, GError **error)
{
    g_autoptr(QemuVm) vm = vm_new(state_dir, name, func, user_data);

    vm->pid = read_pidfile(vm->pidfile);
    if (vm->pid < 0 || !pid_is_our_qemu(vm->pid, vm->socket)) {
        /* Nothing runs: whatever is left in run/ is stale. */
        remove_run_files(vm->pidfile, vm->socket);
        return NULL;
    }
    if (!vm_connect(vm, error)) {
        g_prefix_error(error, "QEMU (pid %d) runs but its monitor '%s' does not answer: ",
                       vm->pid, vm->socket);
        return NULL;
    }
    return g_steal_pointer(&vm);
}

void
qemu_vm_free(QemuVm *vm)
{
    if (vm == NULL)
        return;
    if (vm->watcher != NULL) {
        char byte = 0;

        while (write(vm->wake[1], &byte, 1) < 0 && errno == EINTR)
            ;
        g_thread_join(vm->watcher);
    }
    for (int i = 0; i < 2; i++)
        if (vm->wake[i] >= 0)
            close(vm->wake[i]);
    g_clear_pointer(&vm->client, qmp_client_free);
    g_mutex_clear(&vm->lock);
    g_free(vm->shutdown_reason);
    g_free(vm->name);
    g_free(vm->pidfile);
    g_free(vm->socket);
    g_free(vm);
}

SnapDomainState
qemu_vm_get_state(QemuVm *vm)
{
    return g_atomic_int_get(&vm->state);
}

gboolean
qemu_vm_has_exited(QemuVm *vm)
{
    return g_atomic_int_get(&vm->exited);
}

int
qemu_vm_get_pid(QemuVm *vm)
{
    return vm->pid;
}

const char *
qemu_vm_get_name(QemuVm *vm)
{
    return vm->name;
}

JsonNode *
qemu_vm_execute(QemuVm *vm, const char *command, JsonNode *arguments, guint timeout_ms,
                GError **error)
{
    JsonNode *ret;

    g_mutex_lock(&vm->lock);
    ret = qmp_client_execute(vm->client, command, arguments, timeout_ms, error);
    if (ret == NULL)
        check_exit_locked(vm);
    g_mutex_unlock(&vm->lock);
    return ret;
}

gboolean
qemu_vm_run_job(QemuVm *vm, const char *command, JsonNode *arguments, const char *job_id,
                guint timeout_ms, QmpProgressFunc progress, gpointer progress_data,
                GCancellable *cancellable, GError **error)
{
    gboolean ok;

    g_mutex_lock(&vm->lock);
    ok = qmp_client_run_job(vm->client, command, arguments, job_id, timeout_ms, progress,
                            progress_data, cancellable, error);
    if (!ok)
        check_exit_locked(vm);
    g_mutex_unlock(&vm->lock);
    return ok;
}

gboolean
qemu_vm_refresh_state(QemuVm *vm, GError **error)
{
    g_autoptr(JsonNode) ret = NULL;
    gboolean ok = FALSE;

    g_mutex_lock(&vm->lock);
    ret = qmp_client_execute(vm->client, "query-status", NULL, QMP_COMMAND_TIMEOUT_MS,
                             error);
    if (ret != NULL && JSON_NODE_HOLDS_OBJECT(ret)) {
        set_state_locked(vm, state_from_status(json_node_get_object(ret)), NULL);
        ok = TRUE;
    } else if (ret != NULL) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                            "query-status returned no object");
    } else {
        check_exit_locked(vm);
    }
    g_mutex_unlock(&vm->lock);
    return ok;
}

gboolean
qemu_vm_powerdown(QemuVm *vm, GError **error)
{
    g_autoptr(JsonNode) ret = NULL;

    g_mutex_lock(&vm->lock);
    vm->exit_asked = TRUE;
    ret = qmp_client_execute(vm->client, "system_powerdown", NULL, QMP_COMMAND_TIMEOUT_MS,
                             error);
    if (ret == NULL) {
        vm->exit_asked = FALSE;
        check_exit_locked(vm);
    }
    g_mutex_unlock(&vm->lock);
    return ret != NULL;
}

/* TRUE while a thread of @pid other than its leader remains: a killed
 * QEMU's leader is a zombie before its other threads have exited, and
 * its images stay open (and locked) until the last one has. */
static gboolean
threads_remain(int pid)
{
    g_autofree char *stat_path = g_strdup_printf("/proc/%d/stat", pid);
    g_autofree char *path = g_strdup_printf("/proc/%d/task", pid);
    g_autofree char *stat = NULL;
    g_autoptr(GDir) dir = NULL;
    const char *paren;
    guint n = 0;

    if (!g_file_get_contents(stat_path, &stat, NULL, NULL))
        return FALSE;
    paren = strrchr(stat, ')');
    if (paren == NULL || paren[1] == '\0' || paren[2] != 'Z')
        return FALSE;
    dir = g_dir_open(path, 0, NULL);
    while (dir != NULL && g_dir_read_name(dir) != NULL)
        n++;
    return n > 1;
}

/* Waits up to @timeout_ms for QEMU's process to be gone. */
static gboolean
wait_gone(QemuVm *vm, guint timeout_ms)
{
    gint64 deadline = g_get_monotonic_time() + (gint64)timeout_ms * 1000;

    while (pid_is_our_qemu(vm->pid, NULL) || threads_remain(vm->pid)) {
        if (g_get_monotonic_time() > deadline)
            return FALSE;
        g_usleep(2000);
    }
    return TRUE;
}

gboolean
qemu_vm_destroy(QemuVm *vm, guint timeout_ms, GError **error)
{
    g_autoptr(JsonNode) ret = NULL;
    g_autoptr(GError) local = NULL;

    g_mutex_lock(&vm->lock);
    vm->exit_asked = TRUE;
    if (!g_atomic_int_get(&vm->exited))
        ret = qmp_client_execute(vm->client, "quit", NULL, timeout_ms, &local);
    g_mutex_unlock(&vm->lock);
    if (local != NULL)
        g_debug("%s: quit: %s", vm->name, local->message);

    if (!wait_gone(vm, timeout_ms)) {
        g_debug("%s: QEMU %d did not quit in %u ms: SIGKILL", vm->name, vm->pid,
                timeout_ms);
        if (kill(vm->pid, SIGKILL) < 0 && errno != ESRCH) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "cannot kill QEMU (pid %d): %s", vm->pid, g_strerror(errno));
            return FALSE;
        }
        if (!wait_gone(vm, 5000)) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "QEMU (pid %d) is still there after SIGKILL", vm->pid);
            return FALSE;
        }
    }
    g_mutex_lock(&vm->lock);
    handle_exit_locked(vm);
    g_mutex_unlock(&vm->lock);
    remove_run_files(vm->pidfile, vm->socket);
    return TRUE;
}
