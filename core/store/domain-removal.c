/* domain-removal.c: the file work of undefining a domain. */
#include "domain-removal.h"

#include <errno.h>
#include <fcntl.h>
#include <stdint.h>
#include <string.h>
#include <unistd.h>

#include <sys/stat.h>

#include <glib/gstdio.h>

#include "qemu-img.h"
#include "snap-error.h"
#include "snapshot-store.h"
#include "snapshot-xml.h"

static void
add_file(GPtrArray *files, GPtrArray *formats, const char *path, const char *format,
         const char *state_dir)
{
    g_autofree char *abs = NULL;

    if (path == NULL || path[0] == '\0')
        return;
    abs = g_canonicalize_filename(path, state_dir);
    for (guint i = 0; i < files->len; i++)
        if (strcmp(files->pdata[i], abs) == 0)
            return;
    g_ptr_array_add(files, g_steal_pointer(&abs));
    if (formats)
        g_ptr_array_add(formats, g_strdup(format));
}

static void
add_domain_files(GPtrArray *files, GPtrArray *formats, const DomainDef *def,
                 const char *state_dir)
{
    for (guint i = 0; def && i < def->disks->len; i++) {
        DomainDisk *disk = def->disks->pdata[i];

        add_file(files, formats, disk->source, disk_format_to_string(disk->format),
                 state_dir);
    }
}

GPtrArray *
domain_removal_files(const DomainDef *def, GPtrArray *snapshot_xmls,
                     const char *state_dir, GPtrArray **formats)
{
    GPtrArray *files = g_ptr_array_new_with_free_func(g_free);
    GPtrArray *fmts = formats ? g_ptr_array_new_with_free_func(g_free) : NULL;

    add_domain_files(files, fmts, def, state_dir);
    for (guint i = 0; snapshot_xmls && i < snapshot_xmls->len; i++) {
        const char *xml = snapshot_xmls->pdata[i];
        g_autoptr(SnapshotDef) snap = snapshot_xml_parse(xml, strlen(xml), NULL);
        g_autoptr(DomainDef) embedded = NULL;

        if (snap == NULL)
            continue;
        for (guint j = 0; snap->disks && j < snap->disks->len; j++)
            /* An external snapshot's overlay: snaptreefs makes them qcow2. */
            add_file(files, fmts, ((SnapshotDiskDef *)snap->disks->pdata[j])->source_file,
                     "qcow2", state_dir);
        if (snap->domain_xml != NULL)
            embedded = domain_def_parse(snap->domain_xml, strlen(snap->domain_xml),
                                        state_dir, NULL);
        add_domain_files(files, fmts, embedded, state_dir);
    }
    if (formats)
        *formats = fmts;
    return files;
}

/* A file's identity as a set key; NULL when it cannot be stat()ed. */
static char *
identity_key(const char *file)
{
    struct stat st;

    if (stat(file, &st) != 0)
        return NULL;
    return g_strdup_printf("%ju:%ju", (uintmax_t)st.st_dev, (uintmax_t)st.st_ino);
}

GHashTable *
domain_removal_in_use_new(void)
{
    return g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
}

gboolean
domain_removal_add_chain(GHashTable *in_use, const char *file, const char *format,
                         GCancellable *cancellable, GError **error)
{
    g_autoptr(GPtrArray) files = NULL;
    g_autoptr(GPtrArray) formats = NULL;
    char *key = identity_key(file);

    if (key == NULL)
        return TRUE; /* nothing there to keep */
    g_hash_table_add(in_use, key);
    if (!qemu_img_chain(file, format, &files, &formats, cancellable, error))
        return FALSE;
    for (guint i = 0; i < files->len; i++) {
        key = identity_key(files->pdata[i]);
        if (key != NULL)
            g_hash_table_add(in_use, key);
    }
    return TRUE;
}

gboolean
domain_removal_is_in_use(GHashTable *in_use, const char *file)
{
    g_autofree char *key = identity_key(file);

    return key != NULL && g_hash_table_contains(in_use, key);
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
    static const char *const run_suffixes[] = {".pid", ".qmp", ".qga"};

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
