/* backend-native.c: the native backend: which QEMU runs which domain, its
 * lifecycle, and each snapshot operation sent offline or live. */
#include "backend-native-private.h"

#include <sys/statvfs.h>

#include <glib/gstdio.h>

#include "crash-point.h"
#include "guest-agent.h"
#include "qemu-cmdline.h"
#include "qemu-img.h"
#include "snap-error.h"
#include "snap-external.h"

/* How long `quit` may take before QEMU gets SIGKILL. */
#define DESTROY_TIMEOUT_MS 5000u

/* ---- the running QEMUs ----------------------------------------------------- */

static void
on_vm_state(QemuVm *vm, SnapDomainState state, const char *exit_message,
            gpointer user_data)
{
    NativeBackend *nb = user_data;

    if (nb->event_func != NULL)
        nb->event_func(qemu_vm_get_name(vm), state,
                       exit_message && *exit_message ? exit_message : NULL,
                       nb->event_data);
}

/* The QEMU running @name, or NULL. One that has exited is forgotten here,
 * on a worker, never on the thread that noticed the exit. (transfer none:
 * valid until this domain's worker forgets it) */
static QemuVm *
vm_get(NativeBackend *nb, const char *name)
{
    QemuVm *vm;

    g_mutex_lock(&nb->lock);
    vm = g_hash_table_lookup(nb->vms, name);
    if (vm != NULL && qemu_vm_has_exited(vm)) {
        g_hash_table_remove(nb->vms, name);
        vm = NULL;
    }
    g_mutex_unlock(&nb->lock);
    return vm;
}

static void
vm_put(NativeBackend *nb, const char *name, QemuVm *vm)
{
    g_mutex_lock(&nb->lock);
    g_hash_table_replace(nb->vms, g_strdup(name), vm);
    g_mutex_unlock(&nb->lock);
}

static gboolean
vm_start(NativeBackend *nb, const DomainDef *dom, gboolean paused, GError **error)
{
    QemuVm *vm = qemu_vm_launch(nb->state_dir, dom, paused, on_vm_state, nb, error);

    if (vm == NULL)
        return FALSE;
    vm_put(nb, dom->name, vm);
    if (nb->event_func != NULL)
        nb->event_func(dom->name, qemu_vm_get_state(vm), NULL, nb->event_data);
    return TRUE;
}

static gboolean
vm_destroy(NativeBackend *nb, const char *name, QemuVm *vm, GError **error)
{
    if (!qemu_vm_destroy(vm, DESTROY_TIMEOUT_MS, error))
        return FALSE;
    g_mutex_lock(&nb->lock);
    g_hash_table_remove(nb->vms, name);
    g_mutex_unlock(&nb->lock);
    return TRUE;
}

static void
native_set_event_func(SnapBackend *self, SnapBackendEventFunc func, gpointer user_data)
{
    NativeBackend *nb = (NativeBackend *)self;

    nb->event_func = func;
    nb->event_data = user_data;
}

static SnapDomainState
native_domain_state(SnapBackend *self, const DomainDef *dom)
{
    NativeBackend *nb = (NativeBackend *)self;
    SnapDomainState state = SNAP_DOMAIN_SHUTOFF;
    QemuVm *vm;

    /* Called by readers: look, never forget or wait here. */
    g_mutex_lock(&nb->lock);
    vm = g_hash_table_lookup(nb->vms, dom->name);
    if (vm != NULL && !qemu_vm_has_exited(vm))
        state = qemu_vm_get_state(vm);
    g_mutex_unlock(&nb->lock);
    return state;
}

static gboolean
native_attach(SnapBackend *self, const DomainDef *dom, GError **error)
{
    NativeBackend *nb = (NativeBackend *)self;
    g_autoptr(GError) local = NULL;
    QemuVm *vm = qemu_vm_attach(nb->state_dir, dom->name, on_vm_state, nb, &local);

    if (vm == NULL) {
        if (local == NULL)
            return TRUE;
        g_propagate_error(error, g_steal_pointer(&local));
        return FALSE;
    }
    vm_put(nb, dom->name, vm);
    if (dom->guest_agent) {
        g_mutex_lock(&nb->lock);
        g_ptr_array_add(nb->thaw_at_watch,
                        qemu_run_agent_socket(nb->state_dir, dom->name));
        g_mutex_unlock(&nb->lock);
    }
    return TRUE;
}

static void
native_watch(SnapBackend *self)
{
    NativeBackend *nb = (NativeBackend *)self;
    GHashTableIter iter;
    gpointer key, value;

    g_mutex_lock(&nb->lock);
    g_hash_table_iter_init(&iter, nb->vms);
    while (g_hash_table_iter_next(&iter, &key, &value)) {
        g_autoptr(GError) error = NULL;

        if (!qemu_vm_watch(value, &error))
            g_debug("%s: %s", (const char *)key, error->message);
    }
    /* A snaptreefs killed between freeze and thaw left its guest frozen. */
    for (guint i = 0; i < nb->thaw_at_watch->len; i++)
        guest_agent_thaw_in_background(nb->thaw_at_watch->pdata[i]);
    g_ptr_array_set_size(nb->thaw_at_watch, 0);
    g_mutex_unlock(&nb->lock);
}

static gboolean
native_start(SnapBackend *self, const DomainDef *dom, gboolean paused, GError **error)
{
    NativeBackend *nb = (NativeBackend *)self;

    if (vm_get(nb, dom->name) != NULL) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_BUSY,
                            "domain is already running");
        return FALSE;
    }
    if (!vm_start(nb, dom, paused, error))
        return FALSE;
    snap_crash_point("start-launched");
    return TRUE;
}

static gboolean
native_action(SnapBackend *self, const DomainDef *dom, SnapDomainAction action,
              GError **error)
{
    NativeBackend *nb = (NativeBackend *)self;
    QemuVm *vm = vm_get(nb, dom->name);

    if (action == SNAP_ACTION_START)
        return native_start(self, dom, FALSE, error);
    if (vm == NULL) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_BUSY, "domain is not running");
        return FALSE;
    }
    switch (action) {
    case SNAP_ACTION_SHUTDOWN:
        return qemu_vm_powerdown(vm, error);
    case SNAP_ACTION_DESTROY:
        return vm_destroy(nb, dom->name, vm, error);
    case SNAP_ACTION_PAUSE:
        /* As libvirt: suspending a paused domain is no error. */
        return native_live_set_running(vm, FALSE, error);
    case SNAP_ACTION_RESUME:
        if (qemu_vm_get_state(vm) == SNAP_DOMAIN_RUNNING) {
            g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_BUSY,
                                "domain is not paused");
            return FALSE;
        }
        return native_live_set_running(vm, TRUE, error);
    case SNAP_ACTION_START:
        break;
    }
    return TRUE;
}

/* ---- snapshots ---------------------------------------------------------------- */

static gboolean
native_create(SnapDiskBackend *self, const DomainDef *dom, const SnapshotDef *snap,
              SnapProgressFunc progress, gpointer progress_data,
              GCancellable *cancellable, GError **error)
{
    NativeBackend *nb = (NativeBackend *)self;
    QemuVm *vm = vm_get(nb, dom->name);

    if (vm != NULL && snap_external_is_external(snap))
        return snap_error_check_cancelled(cancellable, error) &&
               native_live_save_external(vm, dom, snap, progress, progress_data, error);
    if (vm != NULL && snap->state == SNAP_STATE_DISK_SNAPSHOT)
        return snap_error_check_cancelled(cancellable, error) &&
               native_live_save_disk_only(nb, vm, dom, snap, progress, progress_data,
                                          error);
    /* A memory snapshot whose name is already another one's qcow2 ID
     * could never be loaded (native_live_check_tag()): refused now. */
    if (vm != NULL)
        return native_live_check_tag(dom, snap, error) &&
               native_live_save(vm, dom, snap, progress, progress_data, cancellable,
                                error);
    if (snap_external_is_external(snap))
        return snap_error_check_cancelled(cancellable, error) &&
               native_offline_create_overlays(dom, snap, progress, progress_data, error);
    return native_offline_create(dom, snap, progress, progress_data, cancellable, error);
}

/* A picture must never hold a snapshot up for long. */
#define SCREENDUMP_TIMEOUT_MS 3000u

static gboolean
native_screenshot(SnapBackend *self, const DomainDef *dom, const char *file,
                  GError **error)
{
    NativeBackend *nb = (NativeBackend *)self;
    QemuVm *vm = vm_get(nb, dom->name);
    g_autoptr(JsonBuilder) b = NULL;
    g_autoptr(JsonNode) ret = NULL;

    if (vm == NULL || dom->video == NULL || g_strcmp0(dom->video, "none") == 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_UNSUPPORTED,
                    "domain '%s' has no display to take a picture of", dom->name);
        return FALSE;
    }
    b = json_builder_new();
    json_builder_begin_object(b);
    json_builder_set_member_name(b, "filename");
    json_builder_add_string_value(b, file);
    json_builder_set_member_name(b, "format");
    json_builder_add_string_value(b, "png");
    json_builder_end_object(b);
    ret = qemu_vm_execute(vm, "screendump", json_builder_get_root(b),
                          SCREENDUMP_TIMEOUT_MS, error);
    return ret != NULL;
}

static gboolean
native_delete(SnapDiskBackend *self, const DomainDef *dom, const SnapshotDef *snap,
              SnapProgressFunc progress, gpointer progress_data,
              GCancellable *cancellable, GError **error)
{
    NativeBackend *nb = (NativeBackend *)self;
    QemuVm *vm = vm_get(nb, dom->name);

    /* A running QEMU holds the images' write lock: qemu-img cannot. */
    if (vm != NULL)
        return native_live_delete(vm, dom, snap, progress, progress_data, error);
    return native_offline_delete(dom, snap, progress, progress_data, cancellable, error);
}

/* A QEMU for @target that takes its memory from @file, left paused or
 * running. */
static gboolean
native_live_restore(NativeBackend *nb, const DomainDef *target, const char *file,
                    gboolean paused, SnapProgressFunc progress, gpointer progress_data,
                    GError **error)
{
    g_autoptr(GError) local = NULL;
    QemuVm *vm = qemu_vm_launch_incoming(nb->state_dir, target, TRUE, TRUE, on_vm_state,
                                         nb, error);

    if (vm == NULL)
        return FALSE;
    vm_put(nb, target->name, vm);
    if (!native_live_load_memory(vm, file, progress, progress_data, error)) {
        if (!vm_destroy(nb, target->name, vm, &local))
            g_debug("%s: %s", target->name, local->message);
        return FALSE;
    }
    if (!native_live_set_running(vm, !paused, error))
        return FALSE;
    if (nb->event_func != NULL)
        nb->event_func(target->name, qemu_vm_get_state(vm), NULL, nb->event_data);
    return TRUE;
}

/* Reverting to an external snapshot leaves the files of every snapshot as
 * they are: new overlays on the files it froze become the active layers,
 * so the branch that was current stays whole. */
static gboolean
native_revert_external(NativeBackend *nb, QemuVm *vm, const DomainDef *dom,
                       const DomainDef *target, const SnapshotDef *snap,
                       SnapRevertFlags flags, SnapProgressFunc progress,
                       gpointer progress_data, GCancellable *cancellable, GError **error)
{
    gboolean want_active;
    gboolean paused;

    if (!snap_error_check_cancelled(cancellable, error))
        return FALSE;
    if (vm != NULL && !vm_destroy(nb, dom->name, vm, error))
        return FALSE;
    if (!native_offline_revert_overlays(target, snap, nb->state_dir, progress,
                                        progress_data, error))
        return FALSE;
    if (snap->memory == SNAP_MEMORY_EXTERNAL && snap->memory_file != NULL) {
        want_active = TRUE;
        paused = (flags & SNAP_REVERT_PAUSED) ||
                 (!(flags & SNAP_REVERT_RUNNING) && snap->state != SNAP_STATE_RUNNING);
        return native_live_restore(nb, target, snap->memory_file, paused, progress,
                                   progress_data, error);
    }
    want_active = (flags & (SNAP_REVERT_RUNNING | SNAP_REVERT_PAUSED)) != 0;
    if (want_active)
        return vm_start(nb, target, (flags & SNAP_REVERT_PAUSED) != 0, error);
    return TRUE;
}

/* libvirt's revert (qemuSnapshotRevert): every pair of the domain's state
 * now and the snapshot's state ends in the snapshot's state, unless the
 * flags ask for running or paused. */
static gboolean
native_revert(SnapDiskBackend *self, const DomainDef *dom, const DomainDef *target,
              gboolean restart, const SnapshotDef *snap, SnapRevertFlags flags,
              SnapProgressFunc progress, gpointer progress_data,
              GCancellable *cancellable, GError **error)
{
    NativeBackend *nb = (NativeBackend *)self;
    QemuVm *vm = vm_get(nb, dom->name);
    g_autoptr(GError) local = NULL;
    gboolean started = FALSE;
    gboolean want_running;
    gboolean want_active;

    if (snap_external_is_external(snap))
        return native_revert_external(nb, vm, dom, target, snap, flags, progress,
                                      progress_data, cancellable, error);
    if (snapshot_def_has_memory(snap)) {
        want_running =
            (flags & SNAP_REVERT_RUNNING) ||
            (!(flags & SNAP_REVERT_PAUSED) && snap->state == SNAP_STATE_RUNNING);
        if (!snap_error_check_cancelled(cancellable, error))
            return FALSE;
        if (!native_live_check_tag(target, snap, error))
            return FALSE;
        /* A QEMU that cannot run the snapshot's definition makes way for
         * one that can; an inactive domain gets one, CPUs stopped. */
        if (vm != NULL && restart) {
            if (!vm_destroy(nb, dom->name, vm, error))
                return FALSE;
            snap_crash_point("revert-vm-stopped");
            vm = NULL;
        }
        if (vm == NULL) {
            if (!vm_start(nb, target, TRUE, error))
                return FALSE;
            snap_crash_point("revert-vm-started");
            vm = vm_get(nb, dom->name);
            started = TRUE;
        } else if (!native_live_set_running(vm, FALSE, error)) {
            /* CPUs stopped before the load: a guest found running after a
             * crash was not reverted (the engine's recovery relies on it). */
            return FALSE;
        }
        if (!native_live_load(vm, target, snap, progress, progress_data, error)) {
            /* A QEMU started for this load has nothing else to run. */
            if (started && !vm_destroy(nb, dom->name, vm, &local))
                g_debug("%s: %s", dom->name, local->message);
            return FALSE;
        }
        snap_crash_point("revert-loaded");
        return native_live_set_running(vm, want_running, error);
    }

    /* A snapshot of the disks only: applied with no QEMU holding them. */
    want_active = (flags & (SNAP_REVERT_RUNNING | SNAP_REVERT_PAUSED)) != 0;
    if (vm != NULL) {
        if (!vm_destroy(nb, dom->name, vm, error))
            return FALSE;
        snap_crash_point("revert-vm-stopped");
    }
    if (!native_offline_apply(target, snap, progress, progress_data, cancellable, error))
        return FALSE;
    if (want_active)
        return vm_start(nb, target, (flags & SNAP_REVERT_PAUSED) != 0, error);
    return TRUE;
}

static GHashTable *
native_disk_snapshots(SnapDiskBackend *self, const DomainDef *dom, GPtrArray *problems,
                      GCancellable *cancellable)
{
    return native_offline_disk_snapshots(dom, problems, cancellable);
}

static GPtrArray *
native_image_chain_op(SnapDiskBackend *self, const DomainDef *dom, const char *file,
                      GError **error)
{
    return native_image_chain(dom, file, error);
}

/* A commit copies what @top holds into @base: refused before it starts
 * when @base's filesystem lacks the room, so that a full disk stops it
 * before it changes anything. */
static gboolean
check_commit_space(const char *top, const char *base, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(base);
    struct statvfs fs;
    GStatBuf st;

    if (g_stat(top, &st) < 0 || statvfs(dir, &fs) < 0)
        return TRUE;
    if ((guint64)st.st_blocks * 512 > (guint64)fs.f_bavail * fs.f_frsize) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_NO_SPACE,
                    "not enough space in '%s' to merge '%s' (%" G_GUINT64_FORMAT
                    " bytes) into '%s'",
                    dir, top, (guint64)st.st_blocks * 512, base);
        return FALSE;
    }
    return TRUE;
}

static gboolean
native_commit(SnapDiskBackend *self, const DomainDef *dom, const char *top,
              const char *base, SnapProgressFunc progress, gpointer progress_data,
              GError **error)
{
    NativeBackend *nb = (NativeBackend *)self;
    QemuVm *vm = vm_get(nb, dom->name);
    gboolean used = FALSE;

    if (!check_commit_space(top, base, error))
        return FALSE;
    if (vm != NULL && !native_live_uses_file(vm, top, &used, error))
        return FALSE;
    if (used)
        return native_live_commit(vm, top, base, progress, progress_data, error);
    return native_offline_commit(top, base, progress, progress_data, error);
}

static gboolean
native_rebase(SnapDiskBackend *self, const DomainDef *dom, const char *file,
              const char *backing, const char *backing_format, gboolean unsafe,
              SnapProgressFunc progress, gpointer progress_data, GError **error)
{
    NativeBackend *nb = (NativeBackend *)self;
    QemuVm *vm = vm_get(nb, dom->name);
    gboolean used = FALSE;

    if (vm != NULL && !native_live_uses_file(vm, file, &used, error))
        return FALSE;
    if (used)
        return native_live_rebase(vm, file, backing, progress, progress_data, error);
    return native_offline_rebase(file, backing, backing_format, unsafe, progress,
                                 progress_data, error);
}

static gboolean
native_remove_image(SnapDiskBackend *self, const DomainDef *dom, const char *file,
                    GError **error)
{
    NativeBackend *nb = (NativeBackend *)self;
    QemuVm *vm = vm_get(nb, dom->name);
    gboolean used = FALSE;

    if (vm != NULL && !native_live_uses_file(vm, file, &used, error))
        return FALSE;
    if (used) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_BUSY,
                    "refusing to remove '%s': the domain's QEMU has it open", file);
        return FALSE;
    }
    return native_remove_file(file, error);
}

static void
native_free(SnapBackend *self)
{
    NativeBackend *nb = (NativeBackend *)self;

    /* The QEMUs keep running: the next snaptreefs reattaches to them. */
    g_hash_table_destroy(nb->vms);
    g_hash_table_destroy(nb->unfrozen_noted);
    g_ptr_array_unref(nb->thaw_at_watch);
    g_mutex_clear(&nb->lock);
    g_free(nb->state_dir);
    g_free(nb);
}

/* The tags of @file, as the disk interface gives them. */
static GPtrArray *
native_image_tags(SnapDiskBackend *self, const char *file, const char *format,
                  GCancellable *cancellable, GError **error)
{
    g_autoptr(GPtrArray) snaps = qemu_img_info(file, format, NULL, cancellable, error);
    GPtrArray *tags;

    if (snaps == NULL)
        return NULL;
    tags = g_ptr_array_new_full(snaps->len, (GDestroyNotify)snap_image_tag_free);
    for (guint i = 0; i < snaps->len; i++) {
        QemuImgSnapshot *s = snaps->pdata[i];
        SnapImageTag *tag = g_new0(SnapImageTag, 1);

        tag->name = g_strdup(s->name);
        tag->date_sec = s->date_sec;
        tag->vm_state_size = s->vm_state_size;
        g_ptr_array_add(tags, tag);
    }
    return tags;
}

static const SnapBackendOps native_ops = {
    .name = "native",
    .set_event_func = native_set_event_func,
    .domain_state = native_domain_state,
    .attach = native_attach,
    .watch = native_watch,
    .start = native_start,
    .action = native_action,
    .screenshot = native_screenshot,
    .free = native_free,
};

static const SnapDiskBackendOps native_disk_ops = {
    .create = native_create,
    .revert = native_revert,
    .delete = native_delete,
    .disk_snapshots = native_disk_snapshots,
    .image_chain = native_image_chain_op,
    .commit = native_commit,
    .rebase = native_rebase,
    .remove_image = native_remove_image,
    .image_tags = native_image_tags,
};

SnapDiskBackend *
snap_backend_native_new(const char *state_dir)
{
    NativeBackend *nb = g_new0(NativeBackend, 1);

    nb->parent.parent.ops = &native_ops;
    nb->parent.ops = &native_disk_ops;
    nb->state_dir = g_strdup(state_dir);
    g_mutex_init(&nb->lock);
    nb->vms = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                    (GDestroyNotify)qemu_vm_free);
    nb->unfrozen_noted = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    nb->thaw_at_watch = g_ptr_array_new_with_free_func(g_free);
    return &nb->parent;
}
