/* backend-native-external.c: image files of external snapshots: overlays,
 * chains, commit and rebase, with qemu-img while no QEMU holds them. */
#include "backend-native-private.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "qemu-img.h"
#include "snap-error.h"
#include "snap-external.h"

void
snap_image_layer_free(SnapImageLayer *layer)
{
    if (layer == NULL)
        return;
    g_free(layer->file);
    g_free(layer->format);
    g_free(layer);
}

GPtrArray *
native_image_chain(const char *file, GError **error)
{
    g_autoptr(GPtrArray) chain =
        g_ptr_array_new_with_free_func((GDestroyNotify)snap_image_layer_free);
    g_autoptr(GPtrArray) files = NULL;
    g_autoptr(GPtrArray) formats = NULL;

    if (!qemu_img_chain(file, &files, &formats, NULL, error))
        return NULL;
    for (guint i = 0; i < files->len; i++) {
        SnapImageLayer *layer = g_new0(SnapImageLayer, 1);

        layer->file = g_strdup(files->pdata[i]);
        layer->format = g_strdup(formats->pdata[i]);
        g_ptr_array_add(chain, layer);
    }
    return g_steal_pointer(&chain);
}

gboolean
native_offline_create_overlays(const DomainDef *dom, const SnapshotDef *snap,
                               SnapProgressFunc progress, gpointer progress_data,
                               GError **error)
{
    for (guint i = 0; snap->disks && i < snap->disks->len; i++) {
        SnapshotDiskDef *sd = snap->disks->pdata[i];
        DomainDisk *disk;

        if (sd->snapshot != DISK_SNAPSHOT_EXTERNAL)
            continue;
        disk = domain_def_find_disk(dom, sd->name);
        if (disk == NULL || sd->source_file == NULL) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "disk '%s': no overlay file to create", sd->name);
            return FALSE;
        }
        if (progress != NULL) {
            g_autofree char *what =
                g_strdup_printf("qemu-img create overlay %s", disk->target);

            progress(what, progress_data);
        }
        if (!qemu_img_create_overlay(sd->source_file, disk->source,
                                     disk_format_to_string(disk->format), error)) {
            g_prefix_error(error, "disk %s: ", disk->target);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean
native_offline_revert_overlays(const DomainDef *target, const SnapshotDef *snap,
                               const char *state_dir, SnapProgressFunc progress,
                               gpointer progress_data, GError **error)
{
    g_autoptr(GPtrArray) ext = snap_external_disks(snap, state_dir, error);

    if (ext == NULL)
        return FALSE;
    for (guint i = 0; i < ext->len; i++) {
        SnapExtDisk *e = ext->pdata[i];
        DomainDisk *disk = domain_def_find_disk(target, e->target);

        if (disk == NULL || g_strcmp0(disk->source, e->frozen) == 0) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "disk '%s': no new overlay to create on '%s'", e->target,
                        e->frozen);
            return FALSE;
        }
        if (progress != NULL) {
            g_autofree char *what = g_strdup_printf("qemu-img create overlay %s", e->target);

            progress(what, progress_data);
        }
        if (!qemu_img_create_overlay(disk->source, e->frozen, e->frozen_format, error)) {
            g_prefix_error(error, "disk %s: ", e->target);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean
native_offline_commit(const char *top, const char *base, SnapProgressFunc progress,
                      gpointer progress_data, GError **error)
{
    if (progress != NULL) {
        g_autofree char *base_name = g_path_get_basename(base);
        g_autofree char *what = g_strdup_printf("qemu-img commit into %s", base_name);

        progress(what, progress_data);
    }
    return qemu_img_commit(top, base, NULL, error);
}

gboolean
native_offline_rebase(const char *file, const char *backing, const char *backing_format,
                      gboolean unsafe, SnapProgressFunc progress, gpointer progress_data,
                      GError **error)
{
    if (progress != NULL && !unsafe) {
        g_autofree char *name = g_path_get_basename(file);
        g_autofree char *what = g_strdup_printf("qemu-img rebase %s", name);

        progress(what, progress_data);
    }
    return qemu_img_rebase(file, backing, backing_format, unsafe, NULL, error);
}

gboolean
native_remove_file(const char *file, GError **error)
{
    if (g_unlink(file) < 0 && errno != ENOENT) {
        int err = errno;

        g_set_error(error, SNAP_ERROR, SNAP_ERROR_FAILED, "cannot remove '%s': %s", file,
                    g_strerror(err));
        return FALSE;
    }
    return TRUE;
}
