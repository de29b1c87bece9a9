/* qemu-vm.h: one domain's running QEMU: launch, reattach, monitor, exit watch. */
#pragma once

#include <gio/gio.h>
#include <json-glib/json-glib.h>

#include "domain-def.h"
#include "qmp-client.h"
#include "snap-types.h"

G_BEGIN_DECLS

typedef struct _QemuVm QemuVm;

/* Called when the run state changes (from QMP events, or the monitor
 * closing when QEMU exits). @exit_message is NULL while QEMU runs; on
 * exit it is "" when the exit was asked for (destroy, or a shutdown
 * request the guest honoured), else a sentence for the domain's errors.
 * Runs on whichever thread read the event, with the VM's lock held: it
 * must not call back into @vm. */
typedef void (*QemuVmStateFunc)(QemuVm *vm, SnapDomainState state,
                                const char *exit_message, gpointer user_data);

/* Starts QEMU for @def (daemonized; pidfile and QMP socket in STATE/run/),
 * with its CPUs stopped when @paused, connects to its monitor and starts
 * watching it. QEMU's own message on failure (SNAP_ERROR_QEMU).
 * (transfer full) */
QemuVm *qemu_vm_launch(const char *state_dir, const DomainDef *def, gboolean paused,
                       QemuVmStateFunc func, gpointer user_data, GError **error);

/* The same; with @incoming, QEMU waits for its memory from a
 * migrate-incoming command (-incoming defer). */
QemuVm *qemu_vm_launch_incoming(const char *state_dir, const DomainDef *def,
                                gboolean paused, gboolean incoming, QemuVmStateFunc func,
                                gpointer user_data, GError **error);

/* Reattaches to the QEMU of domain @name that an earlier snaptreefs
 * started, when its pidfile names a live process: connects and learns its
 * run state, starting no thread (the daemon may fork after this; call
 * qemu_vm_watch() then). NULL without error when none runs (stale pidfile
 * and socket are then removed); NULL with an error when one runs but its
 * monitor does not answer (it is left running). (transfer full) */
QemuVm *qemu_vm_attach(const char *state_dir, const char *name, QemuVmStateFunc func,
                       gpointer user_data, GError **error);

/* Starts the thread that follows QEMU's events and notices it exiting
 * (qemu_vm_launch() does this itself). */
gboolean qemu_vm_watch(QemuVm *vm, GError **error);

/* Stops watching and disconnects; QEMU keeps running. NULL is allowed. */
void qemu_vm_free(QemuVm *vm);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(QemuVm, qemu_vm_free)

/* The run state as QMP last reported it; SHUTOFF once QEMU exited. */
SnapDomainState qemu_vm_get_state(QemuVm *vm);
gboolean qemu_vm_has_exited(QemuVm *vm);
int qemu_vm_get_pid(QemuVm *vm);
const char *qemu_vm_get_name(QemuVm *vm);

/* qmp_client_execute() and qmp_client_run_job() under the VM's lock. */
JsonNode *qemu_vm_execute(QemuVm *vm, const char *command, JsonNode *arguments,
                          guint timeout_ms, GError **error);
gboolean qemu_vm_run_job(QemuVm *vm, const char *command, JsonNode *arguments,
                         const char *job_id, guint timeout_ms, QmpProgressFunc progress,
                         gpointer progress_data, GCancellable *cancellable,
                         GError **error);

/* Asks QMP for the run state (query-status) and records it. */
gboolean qemu_vm_refresh_state(QemuVm *vm, GError **error);

/* An ACPI power-down request (system_powerdown): returns at once; if the
 * guest then powers off, that exit was asked for. */
gboolean qemu_vm_powerdown(QemuVm *vm, GError **error);

/* Stops QEMU now: `quit`, then SIGKILL by pid when it has not exited
 * within @timeout_ms; waits for the process to be gone and removes its
 * run files. */
gboolean qemu_vm_destroy(QemuVm *vm, guint timeout_ms, GError **error);

G_END_DECLS
