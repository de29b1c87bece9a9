/* backend-native-external.c: image files of external snapshots: overlays,
 * chains, commit and rebase, with qemu-img while no QEMU holds them. */
#include "backend-native-private.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "qemu-img.h"
#include "snap-error.h"
#include "snap-external.h"

/* The layers of one qemu-img --backing-chain run, from index @from on. */
static GPtrArray *
chain_layers(GPtrArray *files, GPtrArray *formats, guint from)
{
    GPtrArray *chain =
        g_ptr_array_new_with_free_func((GDestroyNotify)snap_image_layer_free);

    for (guint i = from; i < files->len; i++) {
        SnapImageLayer *layer = g_new0(SnapImageLayer, 1);

        layer->file = g_strdup(files->pdata[i]);
        layer->format = g_strdup(formats->pdata[i]);
        g_ptr_array_add(chain, layer);
    }
    return chain;
}

GPtrArray *
native_image_chain(const DomainDef *dom, const char *file, GError **error)
{
    g_autoptr(GPtrArray) files = NULL;
    g_autoptr(GPtrArray) formats = NULL;

    /* qemu-img must never probe a format: a guest can write a qcow2
     * header, naming any backing file, into a raw disk. A disk's own
     * file has the format its definition gives; a file under it has
     * the one its overlay records, so it is looked up in the disks'
     * chains. */
    for (guint i = 0; i < dom->disks->len; i++) {
        DomainDisk *disk = dom->disks->pdata[i];

        if (g_strcmp0(disk->source, file) == 0) {
            if (!qemu_img_chain(file, disk_format_to_string(disk->format), &files,
                                &formats, NULL, error))
                return NULL;
            return chain_layers(files, formats, 0);
        }
    }
    for (guint i = 0; i < dom->disks->len; i++) {
        DomainDisk *disk = dom->disks->pdata[i];
        guint at;

        if (disk->source == NULL ||
            !qemu_img_chain(disk->source, disk_format_to_string(disk->format), &files,
                            &formats, NULL, NULL))
            continue;
        if (g_ptr_array_find_with_equal_func(files, file, g_str_equal, &at))
            return chain_layers(files, formats, at);
        g_clear_pointer(&files, g_ptr_array_unref);
        g_clear_pointer(&formats, g_ptr_array_unref);
    }
    /* Off every disk's chain: an overlay of another branch, and
     * snaptreefs makes overlays in qcow2 only. */
    if (!qemu_img_chain(file, "qcow2", &files, &formats, NULL, error))
        return NULL;
    return chain_layers(files, formats, 0);
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
            g_autofree char *what =
                g_strdup_printf("qemu-img create overlay %s", e->target);

            progress(what, progress_data);
        }
        if (!qemu_img_create_overlay(disk->source, e->frozen, e->frozen_format, error)) {
            g_prefix_error(error, "disk %s: ", e->target);
            return FALSE;
        }
    }
    return TRUE;
}

typedef struct {
    const char *verb;
    SnapProgressFunc progress;
    gpointer progress_data;
} ImgProgress;

static void
on_img_progress(int percent, gpointer data)
{
    ImgProgress *p = data;
    g_autofree char *what = g_strdup_printf("%s %d%%", p->verb, percent);

    p->progress(what, p->progress_data);
}

gboolean
native_offline_commit(const char *top, const char *base, SnapProgressFunc progress,
                      gpointer progress_data, GError **error)
{
    g_autofree char *base_name = g_path_get_basename(base);
    g_autofree char *verb = g_strdup_printf("qemu-img commit into %s", base_name);
    ImgProgress p = {verb, progress, progress_data};

    if (progress == NULL)
        return qemu_img_commit(top, base, NULL, NULL, NULL, error);
    progress(verb, progress_data);
    return qemu_img_commit(top, base, on_img_progress, &p, NULL, error);
}

gboolean
native_offline_rebase(const char *file, const char *backing, const char *backing_format,
                      gboolean unsafe, SnapProgressFunc progress, gpointer progress_data,
                      GError **error)
{
    g_autofree char *name = g_path_get_basename(file);
    g_autofree char *verb = g_strdup_printf("qemu-img rebase %s", name);
    ImgProgress p = {verb, progress, progress_data};

    if (progress == NULL || unsafe)
        return qemu_img_rebase(file, backing, backing_format, unsafe, NULL, NULL, NULL,
                               error);
    progress(verb, progress_data);
    return qemu_img_rebase(file, backing, backing_format, unsafe, on_img_progress, &p,
                           NULL, error);
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
