/* snap-index.c: the per-domain cache of parsed snapshot files, as a GVariant. */
#include "snap-index.h"

#include <errno.h>
#include <gio/gio.h>
#include <string.h>

/* Bumped whenever an entry's meaning changes (the XML formatter's output
 * included): an index of another version is ignored and rebuilt. */
#define INDEX_VERSION 2
/* (version, [(name, ino, mtime_ns, size, parent or "", creationTime,
 * active, xml)]); the XML as a bytestring, which GVariant reads without
 * validating it as UTF-8 again (a sixth of a start's CPU; it was valid
 * when it was parsed). */
#define INDEX_TYPE "(ua(stxxsxbay))"

typedef struct {
    guint64 ino;
    gint64 mtime_ns;
    gint64 size;
    SnapIndexEntry entry;
} IndexItem;

struct _SnapIndex {
    GVariant *root;      /* owns every string the items point into */
    GHashTable *by_name; /* const char * -> IndexItem * */
};

static char *
index_path(const char *state_dir, const char *domain)
{
    g_autofree char *file = g_strconcat(domain, ".index", NULL);

    return g_build_filename(state_dir, "cache", file, NULL);
}

static gint64
stat_mtime_ns(const GStatBuf *st)
{
    return (gint64)st->st_mtim.tv_sec * G_GINT64_CONSTANT(1000000000) +
           st->st_mtim.tv_nsec;
}

SnapIndex *
snap_index_load(const char *state_dir, const char *domain)
{
    SnapIndex *index = g_new0(SnapIndex, 1);
    g_autofree char *path = index_path(state_dir, domain);
    g_autoptr(GError) error = NULL;
    g_autoptr(GVariant) items = NULL;
    g_autoptr(GBytes) bytes = NULL;
    char *data = NULL;
    gsize len = 0;
    guint32 version = 0;
    gsize n;

    index->by_name = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, g_free);
    if (!g_file_get_contents(path, &data, &len, &error)) {
        g_debug("%s: no index: %s", domain, error->message);
        return index;
    }
    bytes = g_bytes_new_take(data, len);
    /* Untrusted: whatever the file holds, GVariant reads it safely. */
    index->root = g_variant_ref_sink(
        g_variant_new_from_bytes(G_VARIANT_TYPE(INDEX_TYPE), bytes, FALSE));
    g_variant_get_child(index->root, 0, "u", &version);
    if (version != INDEX_VERSION) {
        g_debug("%s: index of version %u ignored", domain, version);
        return index;
    }
    items = g_variant_get_child_value(index->root, 1);
    n = g_variant_n_children(items);
    for (gsize i = 0; i < n; i++) {
        IndexItem *item = g_new0(IndexItem, 1);
        const char *name = NULL;
        const char *parent = NULL;

        g_variant_get_child(
            items, i, "(&stxx&sxb^&ay)", &name, &item->ino, &item->mtime_ns, &item->size,
            &parent, &item->entry.creation_time, &item->entry.active, &item->entry.xml);
        item->entry.parent = parent[0] != '\0' ? parent : NULL;
        /* A damaged file reads as empty strings: such an entry never
         * counts. */
        if (name[0] == '\0' || item->entry.xml[0] == '\0') {
            g_free(item);
            continue;
        }
        g_hash_table_replace(index->by_name, (gpointer)name, item);
    }
    return index;
}

void
snap_index_free(SnapIndex *index)
{
    if (index == NULL)
        return;
    g_hash_table_destroy(index->by_name);
    g_clear_pointer(&index->root, g_variant_unref);
    g_free(index);
}

gboolean
snap_index_lookup(SnapIndex *index, const char *name, const GStatBuf *st,
                  SnapIndexEntry *out)
{
    const IndexItem *item = g_hash_table_lookup(index->by_name, name);

    if (item == NULL || item->ino != (guint64)st->st_ino ||
        item->mtime_ns != stat_mtime_ns(st) || item->size != (gint64)st->st_size)
        return FALSE;
    *out = item->entry;
    return TRUE;
}

guint
snap_index_size(SnapIndex *index)
{
    return g_hash_table_size(index->by_name);
}

gboolean
snap_index_save(const char *state_dir, const char *domain, GPtrArray *names,
                GArray *stats, GArray *entries, GError **error)
{
    g_autofree char *path = index_path(state_dir, domain);
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *tmp = g_strconcat(path, ".tmp", NULL);
    g_autoptr(GVariant) root = NULL;
    GVariantBuilder builder;

    g_variant_builder_init(&builder, G_VARIANT_TYPE("a(stxxsxbay)"));
    for (guint i = 0; i < names->len; i++) {
        const GStatBuf *st = &g_array_index(stats, GStatBuf, i);
        const SnapIndexEntry *e = &g_array_index(entries, SnapIndexEntry, i);

        g_variant_builder_add(&builder, "(stxxsxb^ay)", (const char *)names->pdata[i],
                              (guint64)st->st_ino, stat_mtime_ns(st), (gint64)st->st_size,
                              e->parent != NULL ? e->parent : "", e->creation_time,
                              e->active, e->xml);
    }
    root = g_variant_ref_sink(g_variant_new("(u@a(stxxsxbay))", (guint32)INDEX_VERSION,
                                            g_variant_builder_end(&builder)));
    if (g_mkdir_with_parents(dir, 0700) != 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "%s: %s", dir,
                    g_strerror(errno));
        return FALSE;
    }
    /* A cache: atomic (rename) but not durable; a file a crash left
     * empty or torn loads as no entries and is rebuilt. */
    if (!g_file_set_contents_full(tmp, g_variant_get_data(root), g_variant_get_size(root),
                                  G_FILE_SET_CONTENTS_NONE, 0600, error))
        return FALSE;
    if (g_rename(tmp, path) != 0) {
        g_set_error(error, G_IO_ERROR, g_io_error_from_errno(errno), "%s: %s", path,
                    g_strerror(errno));
        g_unlink(tmp);
        return FALSE;
    }
    return TRUE;
}
