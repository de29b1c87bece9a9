/* backend-native-live-external.c: external snapshots of a running domain:
 * overlays by blockdev-snapshot-sync, memory by migration to a file,
 * block-commit and block-stream on the images QEMU has open. */
#include "backend-native-private.h"

#include <string.h>

#include "snap-error.h"
#include "snap-external.h"

#define COMMAND_TIMEOUT_MS 10000u
/* Copying a layer may take long; QEMU exiting ends the wait at once. */
#define BLOCK_JOB_TIMEOUT_MS (6u * 60u * 60u * 1000u)
#define MIGRATE_POLL_US (20 * 1000)

static JsonNode *
object_node(JsonObject *obj)
{
    JsonNode *node = json_node_new(JSON_NODE_OBJECT);

    json_node_take_object(node, obj);
    return node;
}

/* The format node QEMU opened @file with, and the root node (the active
 * layer attached to a device) of the chain holding it. FALSE on a QMP
 * failure; @node NULL when QEMU does not have @file open. */
static gboolean
find_node(QemuVm *vm, const char *file, char **node, char **root, GError **error)
{
    g_autoptr(JsonNode) blocks =
        qemu_vm_execute(vm, "query-block", NULL, COMMAND_TIMEOUT_MS, error);
    g_autoptr(JsonNode) named = NULL;
    JsonArray *arr;

    *node = NULL;
    if (root)
        *root = NULL;
    if (blocks == NULL || !JSON_NODE_HOLDS_ARRAY(blocks))
        return blocks != NULL;
    arr = json_node_get_array(blocks);
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *dev = json_array_get_object_element(arr, i);
        JsonObject *ins = dev && json_object_has_member(dev, "inserted")
                              ? json_object_get_object_member(dev, "inserted")
                              : NULL;
        JsonObject *image = ins && json_object_has_member(ins, "image")
                                ? json_object_get_object_member(ins, "image")
                                : NULL;

        for (; image != NULL;
             image = json_object_has_member(image, "backing-image")
                         ? json_object_get_object_member(image, "backing-image")
                         : NULL) {
            if (g_strcmp0(
                    json_object_get_string_member_with_default(image, "filename", NULL),
                    file) != 0)
                continue;
            if (root)
                *root = g_strdup(
                    json_object_get_string_member_with_default(ins, "node-name", NULL));
            /* The active layer's node is the device's own: no second query. */
            if (image == json_object_get_object_member(ins, "image"))
                *node = g_strdup(
                    json_object_get_string_member_with_default(ins, "node-name", NULL));
            break;
        }
        if (image != NULL)
            break;
    }
    if ((root && *root == NULL) || *node != NULL)
        return TRUE;

    /* The chain's own node names (auto-named "#blockN" for backing files
     * QEMU opened from the image headers). */
    named = qemu_vm_execute(vm, "query-named-block-nodes", object_node(json_object_new()),
                            COMMAND_TIMEOUT_MS, error);
    if (named == NULL || !JSON_NODE_HOLDS_ARRAY(named))
        return named != NULL;
    arr = json_node_get_array(named);
    for (guint i = 0; i < json_array_get_length(arr); i++) {
        JsonObject *n = json_array_get_object_element(arr, i);
        const char *drv = json_object_get_string_member_with_default(n, "drv", "");

        if (strcmp(drv, "file") == 0 || strcmp(drv, "commit_top") == 0)
            continue;
        if (g_strcmp0(json_object_get_string_member_with_default(n, "file", NULL),
                      file) == 0) {
            *node = g_strdup(
                json_object_get_string_member_with_default(n, "node-name", NULL));
            break;
        }
    }
    return TRUE;
}

gboolean
native_live_uses_file(QemuVm *vm, const char *file, gboolean *used, GError **error)
{
    g_autofree char *node = NULL;
    g_autofree char *root = NULL;

    if (!find_node(vm, file, &node, &root, error))
        return FALSE;
    *used = root != NULL;
    return TRUE;
}

static gboolean
run_block_job(QemuVm *vm, const char *command, JsonObject *args, const char *verb,
              SnapProgressFunc progress, gpointer progress_data, GError **error)
{
    g_autofree char *job_id = g_strdup_printf("snaptreefs-%s", command);
    NativeJobProgress p = {verb, progress, progress_data};

    json_object_set_string_member(args, "job-id", job_id);
    json_object_set_boolean_member(args, "auto-dismiss", FALSE);
    /* Tests slow jobs down to act while they run (a crash mid-commit). */
    if (g_getenv("SNAPTREEFS_TEST_JOB_SPEED") != NULL)
        json_object_set_int_member(
            args, "speed",
            g_ascii_strtoll(g_getenv("SNAPTREEFS_TEST_JOB_SPEED"), NULL, 10));
    native_job_progress(0, 0, &p);
    return qemu_vm_run_job(vm, command, object_node(args), job_id, BLOCK_JOB_TIMEOUT_MS,
                           native_job_progress, &p, NULL, error);
}

gboolean
native_live_commit(QemuVm *vm, const char *top, const char *base,
                   SnapProgressFunc progress, gpointer progress_data, GError **error)
{
    g_autofree char *top_node = NULL;
    g_autofree char *root = NULL;
    g_autofree char *base_node = NULL;
    g_autofree char *base_name = g_path_get_basename(base);
    g_autofree char *verb = g_strdup_printf("block-commit into %s", base_name);
    JsonObject *args;

    if (!find_node(vm, top, &top_node, &root, error) ||
        !find_node(vm, base, &base_node, NULL, error))
        return FALSE;
    if (top_node == NULL || root == NULL || base_node == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "QEMU does not have both '%s' and '%s' open", top, base);
        return FALSE;
    }
    args = json_object_new();
    json_object_set_string_member(args, "device", root);
    /* Without top-node this is an active commit, which QEMU completes by
     * making @base the active layer (the job's "ready" -> job-complete). */
    if (g_strcmp0(top_node, root) != 0)
        json_object_set_string_member(args, "top-node", top_node);
    json_object_set_string_member(args, "base-node", base_node);
    return run_block_job(vm, "block-commit", args, verb, progress, progress_data, error);
}

gboolean
native_live_rebase(QemuVm *vm, const char *file, const char *backing,
                   SnapProgressFunc progress, gpointer progress_data, GError **error)
{
    g_autofree char *node = NULL;
    g_autofree char *root = NULL;
    g_autofree char *base_node = NULL;
    g_autofree char *name = g_path_get_basename(file);
    g_autofree char *verb = g_strdup_printf("block-stream %s", name);
    JsonObject *args;

    if (!find_node(vm, file, &node, &root, error))
        return FALSE;
    if (backing != NULL && !find_node(vm, backing, &base_node, NULL, error))
        return FALSE;
    if (node == NULL || (backing != NULL && base_node == NULL)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "QEMU does not have '%s' open with '%s' under it", file,
                    backing ? backing : "its backing files");
        return FALSE;
    }
    args = json_object_new();
    json_object_set_string_member(args, "device", node);
    if (base_node != NULL)
        json_object_set_string_member(args, "base-node", base_node);
    return run_block_job(vm, "block-stream", args, verb, progress, progress_data, error);
}

/* Waits for the migration of @vm (outgoing or incoming) to end. */
static gboolean
wait_migration(QemuVm *vm, GError **error)
{
    for (;;) {
        g_autoptr(JsonNode) info =
            qemu_vm_execute(vm, "query-migrate", NULL, COMMAND_TIMEOUT_MS, error);
        JsonObject *obj;
        const char *status;

        if (info == NULL)
            return FALSE;
        obj = JSON_NODE_HOLDS_OBJECT(info) ? json_node_get_object(info) : NULL;
        status = obj ? json_object_get_string_member_with_default(obj, "status", "") : "";
        if (strcmp(status, "completed") == 0)
            return TRUE;
        if (strcmp(status, "failed") == 0 || strcmp(status, "cancelled") == 0) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "migration %s: %s", status,
                        json_object_get_string_member_with_default(obj, "error-desc",
                                                                   "no reason given"));
            return FALSE;
        }
        g_usleep(MIGRATE_POLL_US);
    }
}

/* "exec:" runs its command with /bin/sh -c: the file name is quoted. */
static char *
exec_uri(const char *command, const char *file)
{
    g_autofree char *quoted = g_shell_quote(file);

    return g_strdup_printf("exec:%s %s", command, quoted);
}

static gboolean
save_memory(QemuVm *vm, const char *file, SnapProgressFunc progress,
            gpointer progress_data, GError **error)
{
    g_autofree char *uri = exec_uri("cat >", file);
    JsonObject *args = json_object_new();
    g_autoptr(JsonNode) ret = NULL;

    if (progress != NULL)
        progress("saving memory", progress_data);
    json_object_set_string_member(args, "uri", uri);
    ret = qemu_vm_execute(vm, "migrate", object_node(args), COMMAND_TIMEOUT_MS, error);
    return ret != NULL && wait_migration(vm, error);
}

/* One transaction, so every disk's overlay starts at the same instant. */
static gboolean
snapshot_disks(QemuVm *vm, const DomainDef *dom, const SnapshotDef *snap,
               SnapProgressFunc progress, gpointer progress_data, GError **error)
{
    JsonObject *args = json_object_new();
    JsonArray *actions = json_array_new();
    g_autoptr(JsonNode) ret = NULL;

    json_object_set_array_member(args, "actions", actions);
    for (guint i = 0; snap->disks && i < snap->disks->len; i++) {
        SnapshotDiskDef *sd = snap->disks->pdata[i];
        DomainDisk *disk = domain_def_find_disk(dom, sd->name);
        g_autofree char *node = NULL;
        g_autofree char *root = NULL;
        g_autofree char *new_node = NULL;
        JsonObject *action;
        JsonObject *data;

        if (sd->snapshot != DISK_SNAPSHOT_EXTERNAL)
            continue;
        if (disk == NULL || sd->source_file == NULL) {
            json_object_unref(args);
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "disk '%s': no overlay file to create", sd->name);
            return FALSE;
        }
        if (!find_node(vm, disk->source, &node, &root, error)) {
            json_object_unref(args);
            return FALSE;
        }
        if (root == NULL || g_strcmp0(node, root) != 0) {
            json_object_unref(args);
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "disk %s: QEMU's active layer is not '%s'", disk->target,
                        disk->source);
            return FALSE;
        }
        data = json_object_new();
        json_object_set_string_member(data, "node-name", root);
        json_object_set_string_member(data, "snapshot-file", sd->source_file);
        /* Node names need only be unique within this QEMU. */
        new_node = g_strdup_printf("ov%08x%08x", g_random_int(), g_random_int());
        json_object_set_string_member(data, "snapshot-node-name", new_node);
        json_object_set_string_member(data, "format", "qcow2");
        action = json_object_new();
        json_object_set_string_member(action, "type", "blockdev-snapshot-sync");
        json_object_set_object_member(action, "data", data);
        json_array_add_object_element(actions, action);
    }
    if (progress != NULL)
        progress("blockdev-snapshot-sync", progress_data);
    ret =
        qemu_vm_execute(vm, "transaction", object_node(args), COMMAND_TIMEOUT_MS, error);
    return ret != NULL;
}

gboolean
native_live_save_external(QemuVm *vm, const DomainDef *dom, const SnapshotDef *snap,
                          SnapProgressFunc progress, gpointer progress_data,
                          GError **error)
{
    gboolean with_memory = snap->memory == SNAP_MEMORY_EXTERNAL;
    gboolean was_running;
    g_autoptr(GError) local = NULL;

    if (!qemu_vm_refresh_state(vm, error))
        return FALSE;
    was_running = qemu_vm_get_state(vm) == SNAP_DOMAIN_RUNNING;
    /* Memory and disks must show the same instant: the guest stops while
     * its memory is written and the overlays start. */
    if (with_memory && was_running && !native_live_set_running(vm, FALSE, error))
        return FALSE;
    if ((!with_memory ||
         save_memory(vm, snap->memory_file, progress, progress_data, error)) &&
        snapshot_disks(vm, dom, snap, progress, progress_data, error)) {
        if (with_memory && was_running)
            return native_live_set_running(vm, TRUE, error);
        return TRUE;
    }
    if (with_memory && was_running && !native_live_set_running(vm, TRUE, &local))
        g_debug("%s: resuming after a failed snapshot: %s", dom->name, local->message);
    return FALSE;
}

gboolean
native_live_load_memory(QemuVm *vm, const char *file, SnapProgressFunc progress,
                        gpointer progress_data, GError **error)
{
    g_autofree char *uri = exec_uri("cat", file);
    JsonObject *args = json_object_new();
    g_autoptr(JsonNode) ret = NULL;

    if (progress != NULL)
        progress("loading memory", progress_data);
    json_object_set_string_member(args, "uri", uri);
    ret = qemu_vm_execute(vm, "migrate-incoming", object_node(args), COMMAND_TIMEOUT_MS,
                          error);
    return ret != NULL && wait_migration(vm, error);
}
