/* snap-confine.c: a snapshot's XML may name the domain's own disk files and their
 * directories only. */
#include "snap-confine.h"

#include <string.h>

#include "snap-error.h"

static gboolean
path_allowed(const DomainDef *dom, const char *file, const char *state_dir)
{
    g_autofree char *path = g_canonicalize_filename(file, state_dir);

    for (guint i = 0; i < dom->disks->len; i++) {
        DomainDisk *disk = dom->disks->pdata[i];
        g_autofree char *own = NULL;
        g_autofree char *dir = NULL;
        gsize len;

        if (disk->source == NULL)
            continue;
        own = g_canonicalize_filename(disk->source, state_dir);
        if (strcmp(own, path) == 0)
            return TRUE;
        dir = g_path_get_dirname(own);
        len = strlen(dir);
        if (strncmp(path, dir, len) == 0 && (path[len] == '/' || strcmp(dir, "/") == 0))
            return TRUE;
    }
    return FALSE;
}

static gboolean
refuse(const char *what, const char *file, GError **error)
{
    g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                "%s names '%s', which is neither a disk of the domain nor in a "
                "directory of one (domains/NAME.xml says where images may be)",
                what, file);
    return FALSE;
}

gboolean
snap_confine_snapshot(const DomainDef *dom, const SnapshotDef *def, const char *state_dir,
                      GError **error)
{
    g_autoptr(DomainDef) embedded = NULL;

    for (guint i = 0; def->disks && i < def->disks->len; i++) {
        SnapshotDiskDef *sd = def->disks->pdata[i];

        if (sd->source_file != NULL && !path_allowed(dom, sd->source_file, state_dir))
            return refuse("<disks>", sd->source_file, error);
    }
    /* An embedded <domain> that does not parse is never used (a revert
     * keeps the domain's own definition then). */
    if (def->domain_xml != NULL)
        embedded =
            domain_def_parse(def->domain_xml, strlen(def->domain_xml), state_dir, NULL);
    for (guint i = 0; embedded && i < embedded->disks->len; i++) {
        DomainDisk *disk = embedded->disks->pdata[i];

        if (disk->source != NULL && !path_allowed(dom, disk->source, state_dir))
            return refuse("the embedded <domain>", disk->source, error);
    }
    return TRUE;
}
