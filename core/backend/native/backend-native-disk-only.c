/* backend-native-disk-only.c: internal disk-only snapshots of a running
 * domain: every internal disk in one QMP transaction, the guest's
 * filesystems frozen around it when its agent answers. */
#include "backend-native-private.h"

#include "crash-point.h"
#include "guest-agent.h"
#include "qemu-cmdline.h"
#include "snap-disks.h"
#include "snap-error.h"

/* A transaction of internal snapshots only touches qcow2 headers: it
 * returns in milliseconds, QEMU exiting ends it at once. */
#define TRANSACTION_TIMEOUT_MS 60000u

/* {"actions": [{"type": "blockdev-snapshot-internal-sync", "data":
 * {"device": NODE, "name": TAG}}, ...]}: all disks or none, as QEMU
 * rolls a failed transaction back. */
static JsonNode *
transaction_arguments(const DomainDef *dom, const SnapshotDef *snap)
{
    g_autoptr(GPtrArray) disks = snap_disks_internal(dom, snap);
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "actions");
    json_builder_begin_array(b);
    for (guint i = 0; i < disks->len; i++) {
        g_autofree char *node = NULL;
        guint index;

        if (!g_ptr_array_find(dom->disks, disks->pdata[i], &index))
            continue;
        node = qemu_disk_node(index);
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "type");
        json_builder_add_string_value(b, "blockdev-snapshot-internal-sync");
        json_builder_set_member_name(b, "data");
        json_builder_begin_object(b);
        json_builder_set_member_name(b, "device");
        json_builder_add_string_value(b, node);
        json_builder_set_member_name(b, "name");
        json_builder_add_string_value(b, snap->name);
        json_builder_end_object(b);
        json_builder_end_object(b);
    }
    json_builder_end_array(b);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

typedef struct {
    QemuVm *vm;
    const DomainDef *dom;
    const SnapshotDef *snap;
} Transaction;

static gboolean
run_transaction(gpointer data, GError **error)
{
    Transaction *t = data;
    g_autoptr(JsonNode) ret = NULL;

    snap_crash_point("create-frozen");
    ret = qemu_vm_execute(t->vm, "transaction", transaction_arguments(t->dom, t->snap),
                          TRANSACTION_TIMEOUT_MS, error);
    return ret != NULL;
}

/* One line in errors per domain that cannot be frozen (not per snapshot:
 * a nightly backup of a guest without an agent would fill the file). */
static void
note_not_frozen(NativeBackend *nb, QemuVm *vm, const char *domain, const char *why)
{
    gboolean first;

    g_mutex_lock(&nb->lock);
    first = g_hash_table_add(nb->unfrozen_noted, g_strdup(domain));
    g_mutex_unlock(&nb->lock);
    if (first && nb->event_func != NULL) {
        g_autofree char *line = g_strdup_printf(
            "disk-only snapshots are crash-consistent: %s (said once)", why);

        nb->event_func(domain, qemu_vm_get_state(vm), line, nb->event_data);
    }
}

gboolean
native_live_save_disk_only(NativeBackend *nb, QemuVm *vm, const DomainDef *dom,
                           const SnapshotDef *snap, SnapProgressFunc progress,
                           gpointer progress_data, GError **error)
{
    g_autofree char *agent =
        dom->guest_agent ? qemu_run_agent_socket(nb->state_dir, dom->name) : NULL;
    g_auto(GuestAgentFreeze) freeze = {0};
    g_autoptr(GPtrArray) disks = snap_disks_internal(dom, snap);
    Transaction t = {vm, dom, snap};
    gboolean ok;

    if (disks->len == 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "snapshot '%s' has no internal disk", snap->name);
        return FALSE;
    }
    if (progress != NULL)
        progress("disk-only snapshot", progress_data);
    ok = guest_agent_run_frozen(agent, &guest_agent_default_bounds, run_transaction, &t,
                                &freeze, error);
    if (!freeze.frozen && freeze.not_frozen != NULL)
        note_not_frozen(nb, vm, dom->name, freeze.not_frozen);
    for (guint i = 0; i < freeze.problems->len; i++)
        if (nb->event_func != NULL)
            nb->event_func(dom->name, qemu_vm_get_state(vm), freeze.problems->pdata[i],
                           nb->event_data);
    return ok;
}
