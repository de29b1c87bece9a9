/* backend-native-live.c: snapshots of running domains, with QEMU's snapshot jobs. */
#include "backend-native-private.h"

#include "qemu-cmdline.h"
#include "qemu-img.h"
#include "snap-disks.h"
#include "snap-error.h"

/* A live snapshot writes the guest's whole memory: long for big guests,
 * but QEMU exiting ends the wait at once (the monitor closes). */
#define SNAPSHOT_JOB_TIMEOUT_MS (60u * 60u * 1000u)
#define COMMAND_TIMEOUT_MS 10000u

void
native_job_progress(guint64 current, guint64 total, gpointer data)
{
    NativeJobProgress *p = data;
    g_autofree char *what = NULL;

    if (p->progress == NULL)
        return;
    what = total > 0 ? g_strdup_printf("%s %u%%", p->verb, (guint)(current * 100 / total))
                     : g_strdup(p->verb);
    p->progress(what, p->progress_data);
}

/* The QEMU node names of @snap's internal disks (qemu-cmdline numbers
 * nodes by the disk's place in the definition). (transfer full) */
static GPtrArray *
disk_nodes(const DomainDef *dom, const SnapshotDef *snap)
{
    g_autoptr(GPtrArray) disks = snap_disks_internal(dom, snap);
    GPtrArray *nodes = g_ptr_array_new_with_free_func(g_free);

    for (guint i = 0; i < disks->len; i++) {
        guint index;

        if (g_ptr_array_find(dom->disks, disks->pdata[i], &index))
            g_ptr_array_add(nodes, qemu_disk_node(index));
    }
    return nodes;
}

/* {"job-id", "tag", "vmstate", "devices"}: the vmstate goes on the first
 * qcow2 disk, as libvirt (and HMP savevm) put it. */
static JsonNode *
job_arguments(const char *job_id, const char *tag, GPtrArray *nodes,
              gboolean with_vmstate)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "job-id");
    json_builder_add_string_value(b, job_id);
    json_builder_set_member_name(b, "tag");
    json_builder_add_string_value(b, tag);
    if (with_vmstate) {
        json_builder_set_member_name(b, "vmstate");
        json_builder_add_string_value(b, nodes->pdata[0]);
    }
    json_builder_set_member_name(b, "devices");
    json_builder_begin_array(b);
    for (guint i = 0; i < nodes->len; i++)
        json_builder_add_string_value(b, nodes->pdata[i]);
    json_builder_end_array(b);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

static gboolean
run_snapshot_job(QemuVm *vm, const char *command, const DomainDef *dom,
                 const SnapshotDef *snap, gboolean with_vmstate,
                 SnapProgressFunc progress, gpointer progress_data,
                 GCancellable *cancellable, GError **error)
{
    g_autoptr(GPtrArray) nodes = disk_nodes(dom, snap);
    g_autofree char *job_id = g_strdup_printf("snaptreefs-%s", command);
    NativeJobProgress p = {command, progress, progress_data};

    if (nodes->len == 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "snapshot '%s' has no internal disk for %s", snap->name, command);
        return FALSE;
    }
    native_job_progress(0, 0, &p);
    return qemu_vm_run_job(
        vm, command, job_arguments(job_id, snap->name, nodes, with_vmstate), job_id,
        SNAPSHOT_JOB_TIMEOUT_MS, native_job_progress, &p, cancellable, error);
}

gboolean
native_live_save(QemuVm *vm, const DomainDef *dom, const SnapshotDef *snap,
                 SnapProgressFunc progress, gpointer progress_data,
                 GCancellable *cancellable, GError **error)
{
    return run_snapshot_job(vm, "snapshot-save", dom, snap, TRUE, progress, progress_data,
                            cancellable, error);
}

gboolean
native_live_check_tag(const DomainDef *dom, const SnapshotDef *snap, GError **error)
{
    g_autoptr(GPtrArray) disks = snap_disks_internal(dom, snap);

    for (guint i = 0; i < disks->len; i++) {
        DomainDisk *disk = disks->pdata[i];

        if (!qemu_img_tag_is_exact(disk->source, snap->name, NULL, error))
            return FALSE;
    }
    return TRUE;
}

gboolean
native_live_load(QemuVm *vm, const DomainDef *dom, const SnapshotDef *snap,
                 SnapProgressFunc progress, gpointer progress_data, GError **error)
{
    /* Started, a load runs to its end: the guest is being replaced. A
     * load keeps the run state it found (a failed one leaves QEMU in
     * restore-vm); the caller sets the state it wants next. */
    return run_snapshot_job(vm, "snapshot-load", dom, snap, TRUE, progress, progress_data,
                            NULL, error);
}

gboolean
native_live_delete(QemuVm *vm, const DomainDef *dom, const SnapshotDef *snap,
                   SnapProgressFunc progress, gpointer progress_data, GError **error)
{
    return run_snapshot_job(vm, "snapshot-delete", dom, snap, FALSE, progress,
                            progress_data, NULL, error);
}

gboolean
native_live_set_running(QemuVm *vm, gboolean running, GError **error)
{
    g_autoptr(JsonNode) ret = NULL;
    SnapDomainState want = running ? SNAP_DOMAIN_RUNNING : SNAP_DOMAIN_PAUSED;

    if (!qemu_vm_refresh_state(vm, error))
        return FALSE;
    if (qemu_vm_get_state(vm) == want)
        return TRUE;
    ret = qemu_vm_execute(vm, running ? "cont" : "stop", NULL, COMMAND_TIMEOUT_MS, error);
    return ret != NULL && qemu_vm_refresh_state(vm, error);
}
