/* snap-engine-rebuild.c: a snapshot whose metadata file does not parse, kept from its
 * disk tags. */
#include "snap-engine-ops.h"

#include <errno.h>
#include <string.h>
#include <glib/gstdio.h>

#include "snapshot-xml.h"

/* A free name beside @path for the unreadable file: PATH.corrupt, or
 * PATH.corrupt.N when an earlier one is there. (transfer full) */
static char *
corrupt_path(const char *path)
{
    char *aside = g_strconcat(path, ".corrupt", NULL);

    for (guint n = 1; g_file_test(aside, G_FILE_TEST_EXISTS); n++) {
        g_free(aside);
        aside = g_strdup_printf("%s.corrupt.%u", path, n);
    }
    return aside;
}

/* What the qcow2 tag @name on @dom's disks tells: which disks hold it,
 * when it was taken, whether it has the guest's memory. NULL when no disk
 * holds it. (transfer full) */
static SnapshotDef *
def_from_tags(SnapDomain *dom, const char *name)
{
    SnapDiskBackend *backend = dom->engine->disk;
    g_autoptr(SnapshotDef) def = snapshot_def_new();
    gboolean found = FALSE;
    gboolean memory = FALSE;

    def->name = g_strdup(name);
    def->has_disks = TRUE;
    for (guint i = 0; i < dom->def->disks->len; i++) {
        DomainDisk *disk = dom->def->disks->pdata[i];
        g_autoptr(GPtrArray) snaps = NULL;
        SnapshotDiskDef *sd = g_new0(SnapshotDiskDef, 1);

        sd->name = g_strdup(disk->target);
        sd->snapshot = DISK_SNAPSHOT_NO;
        g_ptr_array_add(def->disks, sd);
        if (disk->source == NULL || disk->format != DISK_FORMAT_QCOW2)
            continue;
        snaps = backend->ops->image_tags(backend, disk->source, "qcow2", NULL, NULL);
        for (guint j = 0; snaps && j < snaps->len; j++) {
            SnapImageTag *s = snaps->pdata[j];

            if (g_strcmp0(s->name, name) != 0)
                continue;
            sd->snapshot = DISK_SNAPSHOT_INTERNAL;
            if (!found || s->date_sec < def->creation_time)
                def->creation_time = s->date_sec;
            memory = memory || s->vm_state_size > 0;
            found = TRUE;
        }
    }
    if (!found)
        return NULL;
    /* What the tags cannot tell: the parent (so it becomes a root) and
     * the recorded domain definition. */
    def->state = memory ? SNAP_STATE_RUNNING : SNAP_STATE_SHUTOFF;
    def->memory = memory ? SNAP_MEMORY_INTERNAL : SNAP_MEMORY_NO;
    def->description = g_strdup("rebuilt by snaptreefs from its disk tags: its metadata "
                                "file did not parse");
    return g_steal_pointer(&def);
}

SnapshotDef *
snap_engine_rebuild_snapshot(SnapDomain *dom, const char *name, const char *path,
                             const char *why, GPtrArray *problems)
{
    g_autoptr(SnapshotDef) def = def_from_tags(dom, name);
    g_autofree char *aside = NULL;
    g_autofree char *xml = NULL;
    g_autoptr(GError) error = NULL;

    if (def == NULL) {
        g_ptr_array_add(problems,
                        g_strdup_printf("snapshot file '%s' does not parse (%s) and no "
                                        "disk holds snapshot '%s': the file is left as "
                                        "it is, the snapshot is not listed",
                                        path, why, name));
        return NULL;
    }
    /* The unreadable file is kept, under another name, for whoever wants
     * to recover more from it than the tags tell. */
    aside = corrupt_path(path);
    xml = snapshot_xml_format(def, FALSE);
    if (g_rename(path, aside) < 0) {
        g_ptr_array_add(
            problems, g_strdup_printf("snapshot file '%s' does not parse (%s); cannot "
                                      "move it to '%s': %s; snapshot '%s' is listed from "
                                      "its disk tags until it can",
                                      path, why, aside, g_strerror(errno), name));
        return g_steal_pointer(&def);
    }
    if (!snap_store_write_atomic(path, xml, strlen(xml), &error)) {
        g_ptr_array_add(
            problems, g_strdup_printf("snapshot file '%s' does not parse (%s), moved to "
                                      "'%s'; writing its rebuilt metadata failed: %s",
                                      path, why, aside, error->message));
        return g_steal_pointer(&def);
    }
    g_ptr_array_add(
        problems,
        g_strdup_printf("snapshot file '%s' does not parse (%s): moved to '%s'; snapshot "
                        "'%s' rebuilt from its disk tags (creation time and memory from "
                        "the tags; parent unknown, so it is now a root)",
                        path, why, aside, name));
    return g_steal_pointer(&def);
}
