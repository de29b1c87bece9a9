/* domain-removal.c: the file work of undefining a domain. */
#include "domain-removal.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include <glib/gstdio.h>

#include "snap-error.h"
#include "snapshot-store.h"
#include "snapshot-xml.h"

static void
add_file(GPtrArray *files, const char *path, const char *state_dir)
{
    g_autofree char *abs = NULL;

    if (path == NULL || path[0] == '\0')
        return;
    abs = g_canonicalize_filename(path, state_dir);
    for (guint i = 0; i < files->len; i++)
        if (strcmp(files->pdata[i], abs) == 0)
            return;
    g_ptr_array_add(files, g_steal_pointer(&abs));
}

static void
add_domain_files(GPtrArray *files, const DomainDef *def, const char *state_dir)
{
    for (guint i = 0; def && i < def->disks->len; i++)
        add_file(files, ((DomainDisk *)def->disks->pdata[i])->source, state_dir);
}

GPtrArray *
domain_removal_files(const DomainDef *def, GPtrArray *snapshot_xmls,
                     const char *state_dir)
{
    GPtrArray *files = g_ptr_array_new_with_free_func(g_free);

    add_domain_files(files, def, state_dir);
    for (guint i = 0; snapshot_xmls && i < snapshot_xmls->len; i++) {
        const char *xml = snapshot_xmls->pdata[i];
        g_autoptr(SnapshotDef) snap = snapshot_xml_parse(xml, strlen(xml), NULL);
        g_autoptr(DomainDef) embedded = NULL;

        if (snap == NULL)
            continue;
        for (guint j = 0; snap->disks && j < snap->disks->len; j++)
            add_file(files, ((SnapshotDiskDef *)snap->disks->pdata[j])->source_file,
                     state_dir);
        if (snap->domain_xml != NULL)
            embedded = domain_def_parse(snap->domain_xml, strlen(snap->domain_xml),
                                        state_dir, NULL);
        add_domain_files(files, embedded, state_dir);
    }
    return files;
}

static gboolean
removal_failed(GError **error, int err, const char *what, const char *path)
{
    g_set_error(error, SNAP_ERROR,
                err == ENOSPC ? SNAP_ERROR_NO_SPACE : SNAP_ERROR_FAILED,
                "cannot %s '%s': %s", what, path, g_strerror(err));
    return FALSE;
}

static gboolean
sync_dir(const char *dir, GError **error)
{
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);

    if (fd < 0 || fsync(fd) < 0) {
        int err = errno;

        if (fd >= 0)
            close(fd);
        return removal_failed(error, err, "sync", dir);
    }
    close(fd);
    return TRUE;
}

/* STATE/snapshots/DOMAIN/: the snapshot files, the spare and any temp
 * file an interrupted write left; a subdirectory someone put there stays,
 * and so does the directory then. */
static gboolean
remove_snapshot_dir(const char *state_dir, const char *domain, GError **error)
{
    g_autofree char *dir = g_build_filename(state_dir, "snapshots", domain, NULL);
    g_autofree char *parent = g_path_get_dirname(dir);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *file;

    if (d == NULL)
        return TRUE;
    while ((file = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = g_build_filename(dir, file, NULL);

        if (g_file_test(path, G_FILE_TEST_IS_DIR))
            continue;
        if (g_unlink(path) < 0 && errno != ENOENT)
            return removal_failed(error, errno, "remove", path);
    }
    if (g_rmdir(dir) < 0 && errno != ENOENT) {
        if (errno != ENOTEMPTY && errno != EEXIST)
            return removal_failed(error, errno, "remove", dir);
        g_debug("%s: '%s' keeps what is not a snapshot file", domain, dir);
    }
    return sync_dir(parent, error);
}

gboolean
domain_removal_run(const char *state_dir, const char *domain, GPtrArray *files,
                   GError **error)
{
    g_autofree char *xml_name = g_strconcat(domain, ".xml", NULL);
    g_autofree char *def_path = g_build_filename(state_dir, "domains", xml_name, NULL);
    static const char *const run_suffixes[] = {".pid", ".qmp"};

    if (!remove_snapshot_dir(state_dir, domain, error))
        return FALSE;
    for (guint i = 0; files && i < files->len; i++) {
        if (!snap_store_remove(files->pdata[i], error))
            return FALSE;
    }
    if (!snap_store_remove(def_path, error))
        return FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(run_suffixes); i++) {
        g_autofree char *file = g_strconcat(domain, run_suffixes[i], NULL);
        g_autofree char *path = g_build_filename(state_dir, "run", file, NULL);

        if (g_unlink(path) < 0 && errno != ENOENT)
            return removal_failed(error, errno, "remove", path);
    }
    {
        /* The start-up index of its snapshot files (snap-index.h). */
        g_autofree char *file = g_strconcat(domain, ".index", NULL);
        g_autofree char *path = g_build_filename(state_dir, "cache", file, NULL);

        if (g_unlink(path) < 0 && errno != ENOENT)
            return removal_failed(error, errno, "remove", path);
    }
    return TRUE;
}
