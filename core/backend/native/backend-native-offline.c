/* backend-native-offline.c: snapshots of shut-off domains, with qemu-img. */
#include "backend-native-private.h"

#include "crash-point.h"
#include "qemu-img.h"
#include "snap-disks.h"
#include "snap-error.h"

static void
report(SnapProgressFunc progress, gpointer data, const char *verb, const DomainDisk *disk,
       guint i, guint n)
{
    g_autofree char *what = NULL;

    if (progress == NULL)
        return;
    what =
        g_strdup_printf("qemu-img snapshot %s %s (%u/%u)", verb, disk->target, i + 1, n);
    progress(what, data);
}

static gboolean
disk_has_tag(const DomainDisk *disk, const char *tag, gboolean *has, GError **error)
{
    g_autoptr(GPtrArray) snaps = qemu_img_info(
        disk->source, disk_format_to_string(disk->format), NULL, NULL, error);

    if (snaps == NULL)
        return FALSE;
    *has = FALSE;
    for (guint i = 0; i < snaps->len; i++) {
        QemuImgSnapshot *s = snaps->pdata[i];

        if (g_strcmp0(s->name, tag) == 0)
            *has = TRUE;
    }
    return TRUE;
}

static gboolean
prefix_disk(GError **error, const DomainDisk *disk)
{
    g_prefix_error(error, "disk %s (%s): ", disk->target, disk->source);
    return FALSE;
}

/* Once the first disk is touched an operation runs to its end, so the
 * qemu-img calls below get no cancellable. */
gboolean
native_offline_create(const DomainDef *dom, const SnapshotDef *snap,
                      SnapProgressFunc progress, gpointer progress_data,
                      GCancellable *cancellable, GError **error)
{
    g_autoptr(GPtrArray) disks = snap_disks_internal(dom, snap);

    if (!snap_error_check_cancelled(cancellable, error))
        return FALSE;
    for (guint i = 0; i < disks->len; i++) {
        DomainDisk *disk = disks->pdata[i];

        report(progress, progress_data, "-c", disk, i, disks->len);
        if (!qemu_img_snapshot_create(disk->source, snap->name, NULL, error)) {
            /* All or nothing: what disks 0..i-1 got goes again. */
            for (guint j = 0; j < i; j++) {
                DomainDisk *done = disks->pdata[j];
                g_autoptr(GError) undo = NULL;

                if (!qemu_img_snapshot_delete(done->source, snap->name, NULL, &undo))
                    g_debug("rolling back %s on %s: %s", snap->name, done->source,
                            undo->message);
            }
            return prefix_disk(error, disk);
        }
        snap_crash_point("create-disk-done");
    }
    return TRUE;
}

/* The tag that keeps each disk's state before a multi-disk revert, so the
 * revert can be undone when a later disk fails: no snapshot can have this
 * name (a snapshot name is a directory name, which has no '/'). */
#define UNDO_TAG "snaptreefs/before-revert"

/* Drops the undo tag from @disks[0..n-1]; a disk without it is fine. */
static void
drop_undo(GPtrArray *disks, guint n)
{
    for (guint i = 0; i < n; i++) {
        DomainDisk *disk = disks->pdata[i];
        g_autoptr(GError) local = NULL;
        gboolean has = FALSE;

        if (disk_has_tag(disk, UNDO_TAG, &has, &local) && has &&
            !qemu_img_snapshot_delete(disk->source, UNDO_TAG, NULL, &local))
            g_warning("disk %s (%s): %s", disk->target, disk->source, local->message);
        else if (local != NULL)
            g_warning("disk %s (%s): %s", disk->target, disk->source, local->message);
    }
}

/* Disk @failed of @disks could not be reverted: the ones before it go
 * back to their undo tag. FALSE (with what stays reverted in @error)
 * when one of them cannot. */
static gboolean
undo_applied(GPtrArray *disks, guint failed, GError **error)
{
    g_autoptr(GString) stuck = g_string_new(NULL);

    for (guint j = 0; j < failed; j++) {
        DomainDisk *disk = disks->pdata[j];
        g_autoptr(GError) local = NULL;

        if (!qemu_img_snapshot_apply(disk->source, UNDO_TAG, NULL, &local))
            g_string_append_printf(stuck, "%s%s (%s)", stuck->len ? ", " : "",
                                   disk->target, local->message);
    }
    if (stuck->len == 0)
        return TRUE;
    g_prefix_error(error,
                   "the revert stopped half-way and disks %s could not be put "
                   "back (they hold the snapshot now): ",
                   stuck->str);
    return FALSE;
}

/* All or nothing over several disks: each disk's state is kept in an
 * undo tag first, and the disks already reverted go back to it when a
 * later one fails. A crash in between leaves the intent, which recovery
 * finishes by reverting again (the undo tags go then). */
gboolean
native_offline_apply(const DomainDef *dom, const SnapshotDef *snap,
                     SnapProgressFunc progress, gpointer progress_data,
                     GCancellable *cancellable, GError **error)
{
    g_autoptr(GPtrArray) disks = snap_disks_internal(dom, snap);
    gboolean multi = disks->len > 1;

    /* Check every disk before changing any, so a missing tag on the last
     * disk does not leave the first ones reverted. One disk needs no such
     * check (and no second qemu-img run): `snapshot -a` of a missing tag
     * fails before it changes anything. */
    for (guint i = 0; multi && i < disks->len; i++) {
        DomainDisk *disk = disks->pdata[i];
        gboolean has = FALSE;

        if (!disk_has_tag(disk, snap->name, &has, error))
            return prefix_disk(error, disk);
        if (!has) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "disk %s (%s) does not hold snapshot '%s'", disk->target,
                        disk->source, snap->name);
            return FALSE;
        }
    }
    if (!snap_error_check_cancelled(cancellable, error))
        return FALSE;
    /* An undo tag left by a crash is stale: the disk state it kept was
     * reverted over since. */
    if (multi)
        drop_undo(disks, disks->len);
    for (guint i = 0; multi && i < disks->len; i++) {
        DomainDisk *disk = disks->pdata[i];

        if (!qemu_img_snapshot_create(disk->source, UNDO_TAG, NULL, error)) {
            drop_undo(disks, i);
            return prefix_disk(error, disk);
        }
    }
    for (guint i = 0; i < disks->len; i++) {
        DomainDisk *disk = disks->pdata[i];

        report(progress, progress_data, "-a", disk, i, disks->len);
        if (!qemu_img_snapshot_apply(disk->source, snap->name, NULL, error)) {
            prefix_disk(error, disk);
            if (multi && undo_applied(disks, i, error))
                drop_undo(disks, disks->len);
            return FALSE;
        }
        snap_crash_point("revert-disk-done");
    }
    if (multi)
        drop_undo(disks, disks->len);
    return TRUE;
}

gboolean
native_offline_delete(const DomainDef *dom, const SnapshotDef *snap,
                      SnapProgressFunc progress, gpointer progress_data,
                      GCancellable *cancellable, GError **error)
{
    g_autoptr(GPtrArray) disks = snap_disks_internal(dom, snap);

    for (guint i = 0; i < disks->len; i++) {
        DomainDisk *disk = disks->pdata[i];
        g_autoptr(GError) local = NULL;
        gboolean has = TRUE;

        report(progress, progress_data, "-d", disk, i, disks->len);
        if (qemu_img_snapshot_delete(disk->source, snap->name, NULL, &local)) {
            snap_crash_point("delete-disk-done");
            continue;
        }
        /* A disk that lost the tag already (an interrupted delete being
         * finished) is fine; asking only after a failure keeps the common
         * case to one qemu-img run. */
        if (disk_has_tag(disk, snap->name, &has, NULL) && !has)
            continue;
        g_propagate_error(error, g_steal_pointer(&local));
        return prefix_disk(error, disk);
    }
    return TRUE;
}

/* Unreadable disks map to NULL, which g_ptr_array_unref() refuses. */
static void
names_free(gpointer names)
{
    if (names)
        g_ptr_array_unref(names);
}

GHashTable *
native_offline_disk_snapshots(const DomainDef *dom, GPtrArray *problems,
                              GCancellable *cancellable)
{
    GHashTable *table =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, names_free);

    for (guint i = 0; i < dom->disks->len; i++) {
        DomainDisk *disk = dom->disks->pdata[i];
        g_autoptr(GError) local = NULL;
        g_autoptr(GPtrArray) snaps = NULL;
        GPtrArray *names;

        if (disk->source == NULL)
            continue;
        snaps = qemu_img_info(disk->source, disk_format_to_string(disk->format), NULL,
                              cancellable, &local);
        if (snaps == NULL) {
            if (problems)
                g_ptr_array_add(problems,
                                g_strdup_printf("disk %s (%s): %s", disk->target,
                                                disk->source, local->message));
            g_hash_table_insert(table, g_strdup(disk->target), NULL);
            continue;
        }
        names = g_ptr_array_new_with_free_func(g_free);
        for (guint j = 0; j < snaps->len; j++)
            g_ptr_array_add(names, g_strdup(((QemuImgSnapshot *)snaps->pdata[j])->name));
        g_hash_table_insert(table, g_strdup(disk->target), names);
    }
    return table;
}
