/* snap-external.c: which image files an external snapshot froze and created. */
#include "snap-external.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "snap-error.h"

/* File names stay well under NAME_MAX whatever the snapshot's name. */
#define MAX_STEM 160

void
snap_ext_disk_free(SnapExtDisk *disk)
{
    if (disk == NULL)
        return;
    g_free(disk->target);
    g_free(disk->frozen);
    g_free(disk->frozen_format);
    g_free(disk->overlay);
    g_free(disk);
}

static gboolean
has_mode(const SnapshotDef *snap, DiskSnapshotMode mode)
{
    for (guint i = 0; snap->disks && i < snap->disks->len; i++) {
        SnapshotDiskDef *sd = snap->disks->pdata[i];

        if (sd->snapshot == mode)
            return TRUE;
    }
    return FALSE;
}

gboolean
snap_external_is_external(const SnapshotDef *snap)
{
    return has_mode(snap, DISK_SNAPSHOT_EXTERNAL);
}

gboolean
snap_external_is_internal(const SnapshotDef *snap)
{
    return has_mode(snap, DISK_SNAPSHOT_INTERNAL);
}

/* The disk of @dom named @name (target or source path). */
static DomainDisk *
find_disk(const DomainDef *dom, const char *name)
{
    DomainDisk *disk = domain_def_find_disk(dom, name);

    for (guint i = 0; disk == NULL && i < dom->disks->len; i++) {
        DomainDisk *d = dom->disks->pdata[i];

        if (g_strcmp0(d->source, name) == 0)
            disk = d;
    }
    return disk;
}

GPtrArray *
snap_external_disks(const SnapshotDef *snap, const char *base_dir, GError **error)
{
    g_autoptr(GPtrArray) out =
        g_ptr_array_new_with_free_func((GDestroyNotify)snap_ext_disk_free);
    g_autoptr(DomainDef) dom = NULL;

    if (!snap_external_is_external(snap))
        return g_steal_pointer(&out);
    if (snap->domain_xml == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "external snapshot '%s' records no <domain>, so the files it froze "
                    "are unknown",
                    snap->name);
        return NULL;
    }
    dom = domain_def_parse(snap->domain_xml, strlen(snap->domain_xml), base_dir, error);
    if (dom == NULL)
        return NULL;
    for (guint i = 0; i < snap->disks->len; i++) {
        SnapshotDiskDef *sd = snap->disks->pdata[i];
        DomainDisk *disk;
        SnapExtDisk *ext;

        if (sd->snapshot != DISK_SNAPSHOT_EXTERNAL)
            continue;
        disk = find_disk(dom, sd->name);
        if (disk == NULL || disk->source == NULL) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "snapshot '%s': its <domain> has no disk '%s'", snap->name,
                        sd->name);
            return NULL;
        }
        ext = g_new0(SnapExtDisk, 1);
        ext->target = g_strdup(disk->target);
        ext->frozen = g_strdup(disk->source);
        ext->frozen_format = g_strdup(disk_format_to_string(disk->format));
        ext->overlay = g_strdup(sd->source_file);
        g_ptr_array_add(out, ext);
    }
    return g_steal_pointer(&out);
}

/* @s with '/' (impossible in snapshot names, possible in nothing else we
 * are given) and leading dots made harmless, cut to MAX_STEM bytes on a
 * UTF-8 boundary. */
static char *
file_stem(const char *domain, const char *target, const char *snap_name)
{
    g_autofree char *raw = g_strdup_printf("%s-%s.%s", domain, target, snap_name);
    const char *end;

    g_strdelimit(raw, "/", '_');
    if (raw[0] == '.')
        raw[0] = '_';
    if (strlen(raw) <= MAX_STEM)
        return g_steal_pointer(&raw);
    end = g_utf8_find_prev_char(raw, raw + MAX_STEM + 1);
    return g_strndup(raw, end ? (gsize)(end - raw) : MAX_STEM);
}

char *
snap_external_reserve_file(const char *dir, const char *domain, const char *target,
                           const char *snap_name, const char *suffix, GError **error)
{
    g_autofree char *stem = file_stem(domain, target, snap_name);

    for (guint n = 0; n < 1000; n++) {
        g_autofree char *file = n == 0 ? g_strdup_printf("%s.%s", stem, suffix)
                                       : g_strdup_printf("%s-%u.%s", stem, n, suffix);
        g_autofree char *path = g_build_filename(dir, file, NULL);
        int fd = open(path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);

        if (fd >= 0) {
            close(fd);
            return g_steal_pointer(&path);
        }
        if (errno != EEXIST) {
            int err = errno;

            g_set_error(error, SNAP_ERROR,
                        err == ENOSPC ? SNAP_ERROR_NO_SPACE : SNAP_ERROR_FAILED,
                        "cannot create '%s': %s", path, g_strerror(err));
            return NULL;
        }
    }
    g_set_error(error, SNAP_ERROR, SNAP_ERROR_FAILED,
                "no free file name for '%s' in '%s'", stem, dir);
    return NULL;
}

gboolean
snap_external_rename_disk(DomainDef *def, const char *from, const char *to)
{
    gboolean changed = FALSE;

    for (guint i = 0; i < def->disks->len; i++) {
        DomainDisk *disk = def->disks->pdata[i];

        if (g_strcmp0(disk->source, from) == 0) {
            g_free(disk->source);
            disk->source = g_strdup(to);
            changed = TRUE;
        }
    }
    return changed;
}

gboolean
snap_external_rename_file(SnapshotDef *snap, const char *from, const char *to,
                          const char *base_dir)
{
    gboolean changed = FALSE;

    for (guint i = 0; snap->disks && i < snap->disks->len; i++) {
        SnapshotDiskDef *sd = snap->disks->pdata[i];

        if (g_strcmp0(sd->source_file, from) == 0) {
            g_free(sd->source_file);
            sd->source_file = g_strdup(to);
            changed = TRUE;
        }
    }
    if (snap->domain_xml != NULL && strstr(snap->domain_xml, "<disk") != NULL) {
        g_autoptr(DomainDef) dom =
            domain_def_parse(snap->domain_xml, strlen(snap->domain_xml), base_dir, NULL);

        if (dom != NULL && snap_external_rename_disk(dom, from, to)) {
            g_free(snap->domain_xml);
            snap->domain_xml = domain_def_format(dom);
            changed = TRUE;
        }
    }
    return changed;
}
