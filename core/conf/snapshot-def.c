/* snapshot-def.c: constructors, destructors and enum strings of SnapshotDef. */
#include "snapshot-def.h"

#include <string.h>

void
snapshot_disk_def_free(SnapshotDiskDef *disk)
{
    if (disk == NULL)
        return;
    g_free(disk->name);
    g_free(disk->type);
    g_free(disk->driver_type);
    g_free(disk->source_file);
    g_free(disk);
}

void
snapshot_def_free(SnapshotDef *def)
{
    if (def == NULL)
        return;
    g_free(def->name);
    g_free(def->description);
    g_free(def->parent);
    g_free(def->memory_file);
    g_clear_pointer(&def->disks, g_ptr_array_unref);
    g_free(def->domain_xml);
    g_free(def->inactive_domain_xml);
    g_free(def->cookie_xml);
    g_free(def);
}

SnapshotDef *
snapshot_def_new(void)
{
    SnapshotDef *def = g_new0(SnapshotDef, 1);

    def->state = SNAP_STATE_NONE;
    def->creation_time = -1;
    def->memory = SNAP_MEMORY_DEFAULT;
    def->disks = g_ptr_array_new_with_free_func((GDestroyNotify)snapshot_disk_def_free);
    def->active = -1;
    return def;
}

/* libvirt's virDomainSnapshotState names, NONE being its "nostate". */
static const char *const snap_state_names[] = {
    [SNAP_STATE_NONE] = "nostate",      [SNAP_STATE_RUNNING] = "running",
    [SNAP_STATE_BLOCKED] = "blocked",   [SNAP_STATE_PAUSED] = "paused",
    [SNAP_STATE_SHUTDOWN] = "shutdown", [SNAP_STATE_SHUTOFF] = "shutoff",
    [SNAP_STATE_CRASHED] = "crashed",   [SNAP_STATE_DISK_SNAPSHOT] = "disk-snapshot",
};

const char *
snap_state_to_string(SnapState state)
{
    if ((guint)state < G_N_ELEMENTS(snap_state_names))
        return snap_state_names[state];
    return snap_state_names[SNAP_STATE_NONE];
}

SnapState
snap_state_from_string(const char *s)
{
    if (s == NULL)
        return SNAP_STATE_NONE;
    for (guint i = SNAP_STATE_NONE + 1; i < G_N_ELEMENTS(snap_state_names); i++) {
        if (strcmp(s, snap_state_names[i]) == 0)
            return (SnapState)i;
    }
    return SNAP_STATE_NONE;
}

const char *
snap_memory_mode_to_string(SnapMemoryMode mode)
{
    switch (mode) {
    case SNAP_MEMORY_NO:
        return "no";
    case SNAP_MEMORY_INTERNAL:
        return "internal";
    case SNAP_MEMORY_EXTERNAL:
        return "external";
    case SNAP_MEMORY_DEFAULT:
    default:
        return "default";
    }
}

SnapshotDiskDef *
snapshot_def_find_disk(const SnapshotDef *def, const char *name)
{
    for (guint i = 0; i < def->disks->len; i++) {
        SnapshotDiskDef *disk = g_ptr_array_index(def->disks, i);

        if (g_strcmp0(disk->name, name) == 0)
            return disk;
    }
    return NULL;
}

gboolean
snapshot_def_has_memory(const SnapshotDef *def)
{
    return def->state == SNAP_STATE_RUNNING || def->state == SNAP_STATE_PAUSED ||
           def->state == SNAP_STATE_BLOCKED;
}
