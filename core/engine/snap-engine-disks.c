/* snap-engine-disks.c: which image holds each disk at a snapshot, and reading it. */
#include "snap-engine-ops.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#include "disk-export.h"
#include "qemu-img.h"
#include "snap-disks.h"
#include "snap-external.h"
#include "snapshot-xml.h"

/* An export nobody reads stops after this: long enough for a backup tool
 * that opens the file again right after a stat or a first read. */
#define EXPORT_IDLE_MS 3000

/* Where the content of one disk at one snapshot is. */
typedef struct {
    char *target;
    char *image; /* the file to read */
    DiskFormat format;
    char *snapshot; /* the internal snapshot in @image; NULL: the file as it is */
} DiskSource;

/* The sources of one snapshot, with what they were computed from. */
typedef struct {
    char *xml;          /* the snapshot's metadata */
    char *def_xml;      /* the domain's definition */
    GPtrArray *sources; /* DiskSource*, immutable once made */
} SourcesEntry;

struct _SnapEngineDisks {
    DiskExports *exports;
    char *tmp_run_dir; /* the sockets' directory when there is no STATE */
    GMutex lock;
    GHashTable *reported;  /* "domain\nnote": disks left out, said once */
    GHashTable *sources;   /* owner ("domain/snapshot") -> SourcesEntry* */
    GHashTable *sizes;     /* image, or "image\nsnapshot" -> guint64* */
    GHashTable *allocated; /* "image\nsnapshot", or a frozen image -> guint64* */
};

struct _SnapDiskReader {
    DiskReader *reader;
};

static void
disk_source_free(DiskSource *src)
{
    g_free(src->target);
    g_free(src->image);
    g_free(src->snapshot);
    g_free(src);
}

static void
sources_entry_free(SourcesEntry *entry)
{
    g_free(entry->xml);
    g_free(entry->def_xml);
    g_ptr_array_unref(entry->sources);
    g_free(entry);
}

/* A target becomes a file name in disks/: one that could not be one is
 * left out. */
static gboolean
target_is_file_name(const char *target)
{
    return target != NULL && *target != '\0' && *target != '.' &&
           strchr(target, '/') == NULL;
}

/* What holds each disk's content at snapshot @def of the domain defined by
 * @dom: one DiskSource per disk that has data there, in the snapshot's
 * order. This is the one place that decides which file, and which
 * internal snapshot in it, serve a snapshot's disk: an internal snapshot
 * lives in the disk's image under the snapshot's name. (An external
 * snapshot's data is the file its embedded <domain> records, which was
 * frozen when it was taken: read as it is, with no snapshot to load.)
 * (transfer full) */
static GPtrArray *
disk_sources_at(const DomainDef *dom, const SnapshotDef *def, GPtrArray *skipped)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)disk_source_free);
    g_autoptr(GPtrArray) internal = snap_disks_internal(dom, def);

    for (guint i = 0; i < internal->len; i++) {
        const DomainDisk *disk = internal->pdata[i];
        DiskSource *src;
        gboolean seen = FALSE;

        for (guint j = 0; j < out->len; j++)
            seen =
                seen || strcmp(((DiskSource *)out->pdata[j])->target, disk->target) == 0;
        if (seen || !target_is_file_name(disk->target))
            continue;
        /* A block device (libvirt's <source dev>) is served only when
         * qemu-nbd, running as this daemon, can open it. */
        if (skipped != NULL && g_str_has_prefix(disk->source, "/dev/") &&
            g_access(disk->source, R_OK) != 0) {
            int saved = errno;

            g_ptr_array_add(
                skipped, g_strdup_printf("disk %s: block device %s cannot be read: %s",
                                         disk->target, disk->source, g_strerror(saved)));
            continue;
        }
        src = g_new0(DiskSource, 1);
        src->target = g_strdup(disk->target);
        src->image = g_strdup(disk->source);
        src->format = disk->format;
        src->snapshot = g_strdup(def->name);
        g_ptr_array_add(out, src);
    }
    /* An external snapshot's data is the file it froze, read as it is. */
    if (snap_external_is_external(def)) {
        g_autoptr(GPtrArray) ext = snap_external_disks(def, NULL, NULL);

        for (guint i = 0; ext && i < ext->len; i++) {
            SnapExtDisk *e = ext->pdata[i];
            DiskSource *src;

            if (!target_is_file_name(e->target))
                continue;
            /* A frozen block device (libvirt: <source dev>) is not a file
             * the snapshot owns: its content has moved on since. */
            if (e->frozen == NULL || g_str_has_prefix(e->frozen, "/dev/")) {
                if (skipped != NULL)
                    g_ptr_array_add(skipped,
                                    g_strdup_printf("disk %s: the external snapshot "
                                                    "froze no image file",
                                                    e->target));
                continue;
            }
            src = g_new0(DiskSource, 1);
            src->target = g_strdup(e->target);
            src->image = g_strdup(e->frozen);
            src->format = g_strcmp0(e->frozen_format, "raw") == 0 ? DISK_FORMAT_RAW
                                                                  : DISK_FORMAT_QCOW2;
            g_ptr_array_add(out, src);
        }
    }
    return out;
}

static SnapEngineDisks *
engine_disks(SnapEngine *engine)
{
    if (g_once_init_enter(&engine->disks)) {
        SnapEngineDisks *disks = g_new0(SnapEngineDisks, 1);
        g_autofree char *run_dir = NULL;

        /* Without STATE (libvirt), a private directory of our own. */
        if (engine->state_dir != NULL) {
            run_dir = g_build_filename(engine->state_dir, "run", "nbd", NULL);
        } else {
            g_autoptr(GError) error = NULL;

            disks->tmp_run_dir = g_dir_make_tmp("snaptreefs-nbd-XXXXXX", &error);
            if (disks->tmp_run_dir == NULL)
                g_debug("disks: %s", error->message);
            run_dir = g_build_filename(
                disks->tmp_run_dir ? disks->tmp_run_dir : g_get_tmp_dir(), "nbd", NULL);
        }
        disks->exports = disk_exports_new(run_dir, EXPORT_IDLE_MS);
        disks->reported = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_mutex_init(&disks->lock);
        disks->sources = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                               (GDestroyNotify)sources_entry_free);
        disks->sizes = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        disks->allocated = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
        g_once_init_leave(&engine->disks, disks);
    }
    return engine->disks;
}

static char *
owner_key(const char *domain, const char *snapshot)
{
    /* Neither name can contain '/'. */
    return g_strconcat(domain, "/", snapshot, NULL);
}

static char *
size_key(const DiskSource *src)
{
    return src->snapshot ? g_strconcat(src->image, "\n", src->snapshot, NULL)
                         : g_strdup(src->image);
}

/* The disks left out of disks/ go to the domain's errors, each once. */
static void
report_left_out(SnapEngine *engine, const char *domain, GPtrArray *notes)
{
    SnapEngineDisks *disks = engine->disks;

    for (guint i = 0; i < notes->len; i++) {
        g_autofree char *key = g_strconcat(domain, "\n", notes->pdata[i], NULL);
        g_autofree char *line = NULL;
        gboolean fresh;
        SnapDomain *dom;

        g_mutex_lock(&disks->lock);
        fresh = g_hash_table_add(disks->reported, g_steal_pointer(&key));
        g_mutex_unlock(&disks->lock);
        if (!fresh)
            continue;
        line = g_strdup_printf("%s: not in disks/", (char *)notes->pdata[i]);
        g_rw_lock_writer_lock(&engine->lock);
        dom = g_hash_table_lookup(engine->domains, domain);
        if (dom != NULL)
            error_log_add(dom->errors, "disks", line);
        g_rw_lock_writer_unlock(&engine->lock);
    }
}

/* The sources of @snapshot, from the cache while the snapshot's metadata
 * and the domain's definition are what they were computed from; NULL
 * when there is no such snapshot. (transfer full: a ref) */
static GPtrArray *
sources_of(SnapEngine *engine, const char *domain, const char *snapshot)
{
    SnapEngineDisks *disks = engine_disks(engine);
    SnapDomain *dom;
    g_autofree char *key = NULL;
    GPtrArray *sources = NULL;
    g_autoptr(GPtrArray) notes = g_ptr_array_new_with_free_func(g_free);
    SnapNode *node;

    key = owner_key(domain, snapshot);
    g_rw_lock_reader_lock(&engine->lock);
    dom = g_hash_table_lookup(engine->domains, domain);
    if (dom == NULL) {
        g_rw_lock_reader_unlock(&engine->lock);
        return NULL;
    }
    node = snap_tree_lookup(dom->tree, snapshot);
    if (node != NULL) {
        SourcesEntry *entry;

        g_mutex_lock(&disks->lock);
        entry = g_hash_table_lookup(disks->sources, key);
        if (entry != NULL && snap_node_xml_equal(node, entry->xml) &&
            g_strcmp0(entry->def_xml, dom->def_xml) == 0)
            sources = g_ptr_array_ref(entry->sources);
        g_mutex_unlock(&disks->lock);
    }
    if (node != NULL && sources == NULL) {
        g_autoptr(GError) error = NULL;
        g_autofree char *node_xml = snap_node_xml(node);
        g_autoptr(SnapshotDef) def =
            snapshot_xml_parse(node_xml, strlen(node_xml), &error);
        SourcesEntry *entry = g_new0(SourcesEntry, 1);
        g_autoptr(DomainDef) foreign = NULL;

        if (def == NULL)
            g_debug("%s: snapshot %s: %s", domain, snapshot, error->message);
        /* A libvirt domain: its disks from libvirt's own definition. An
         * internal snapshot lives in the image the snapshot's <domain>
         * names (later external snapshots moved the domain on). */
        if (def != NULL && snap_engine_is_remote(engine) &&
            !engine->catalogue->ops->domain_is_local(engine->catalogue, domain)) {
            /* A fleet's remote host: its images are not here. */
            g_clear_pointer(&def, snapshot_def_free);
        } else if (def != NULL && snap_engine_is_remote(engine)) {
            const char *xml = def->domain_xml ? def->domain_xml : dom->def_xml;

            foreign = domain_def_parse_foreign(xml, strlen(xml), notes, &error);
            if (foreign == NULL && xml != dom->def_xml)
                foreign = domain_def_parse_foreign(dom->def_xml, strlen(dom->def_xml),
                                                   notes, NULL);
            if (foreign == NULL)
                g_debug("%s: definition: %s", domain, error ? error->message : "");
        }
        if (def == NULL || (snap_engine_is_remote(engine) && foreign == NULL))
            sources = g_ptr_array_new_with_free_func((GDestroyNotify)disk_source_free);
        else
            sources = disk_sources_at(foreign ? foreign : dom->def, def,
                                      foreign ? notes : NULL);
        entry->xml = g_steal_pointer(&node_xml);
        entry->def_xml = g_strdup(dom->def_xml);
        entry->sources = g_ptr_array_ref(sources);
        g_mutex_lock(&disks->lock);
        g_hash_table_replace(disks->sources, g_steal_pointer(&key), entry);
        g_mutex_unlock(&disks->lock);
    }
    g_rw_lock_reader_unlock(&engine->lock);
    report_left_out(engine, domain, notes);
    return sources;
}

static const DiskSource *
find_source(GPtrArray *sources, const char *target)
{
    for (guint i = 0; sources && i < sources->len; i++) {
        const DiskSource *src = sources->pdata[i];

        if (strcmp(src->target, target) == 0)
            return src;
    }
    return NULL;
}

/* The source of disk @target at @snapshot, or NOT_FOUND. (transfer full:
 * the array holding it, in @out_sources) */
static const DiskSource *
lookup_source(SnapEngine *engine, const char *domain, const char *snapshot,
              const char *target, GPtrArray **out_sources, GError **error)
{
    g_autoptr(GPtrArray) sources = sources_of(engine, domain, snapshot);
    const DiskSource *src = find_source(sources, target);

    if (sources == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND, "snapshot '%s' not found",
                    snapshot);
        return NULL;
    }
    if (src == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND,
                    "snapshot '%s' has no data of disk '%s'", snapshot, target);
        return NULL;
    }
    *out_sources = g_steal_pointer(&sources);
    return src;
}

GPtrArray *
snap_engine_snapshot_disks(SnapEngine *engine, const char *domain, const char *snapshot)
{
    g_autoptr(GPtrArray) sources = sources_of(engine, domain, snapshot);
    GPtrArray *targets;

    if (sources == NULL)
        return NULL;
    targets = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < sources->len; i++)
        g_ptr_array_add(targets, g_strdup(((DiskSource *)sources->pdata[i])->target));
    return targets;
}

/* A number @table keeps for @key (sizes, allocated). */
static gboolean
cached_number(SnapEngineDisks *disks, GHashTable *table, const char *key, guint64 *value)
{
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&disks->lock);
    guint64 *known = g_hash_table_lookup(table, key);

    if (known != NULL)
        *value = *known;
    return known != NULL;
}

static void
remember_number(SnapEngineDisks *disks, GHashTable *table, const char *key, guint64 value)
{
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&disks->lock);

    g_hash_table_replace(table, g_strdup(key), g_memdup2(&value, sizeof(value)));
}

static gboolean
cached_size(SnapEngineDisks *disks, const char *key, guint64 *size)
{
    return cached_number(disks, disks->sizes, key, size);
}

static void
remember_size(SnapEngineDisks *disks, const char *key, guint64 size)
{
    remember_number(disks, disks->sizes, key, size);
}

gboolean
snap_engine_snapshot_disk_size(SnapEngine *engine, const char *domain,
                               const char *snapshot, const char *target, guint64 *size,
                               guint64 *allocated, GError **error)
{
    SnapEngineDisks *disks = engine_disks(engine);
    g_autoptr(GPtrArray) sources = NULL;
    const DiskSource *src =
        lookup_source(engine, domain, snapshot, target, &sources, error);
    g_autofree char *key = NULL;
    g_autoptr(GPtrArray) snaps = NULL;
    guint64 virtual_size = 0;

    if (src == NULL)
        return FALSE;
    key = size_key(src);
    /* The exact size, once an export has told it; else the image's,
     * which is the snapshot's unless the image grew after it. */
    if (!cached_size(disks, key, size) && !cached_size(disks, src->image, size)) {
        snaps = qemu_img_info(src->image, disk_format_to_string(src->format),
                              &virtual_size, NULL, error);
        if (snaps == NULL)
            return FALSE;
        remember_size(disks, src->image, virtual_size);
        *size = virtual_size;
    }
    /* Until an export has walked it, all of it counts as data. */
    if (allocated != NULL && !cached_number(disks, disks->allocated, key, allocated))
        *allocated = *size;
    return TRUE;
}

SnapDiskReader *
snap_engine_disk_open(SnapEngine *engine, const char *domain, const char *snapshot,
                      const char *target, GError **error)
{
    SnapEngineDisks *disks = engine_disks(engine);
    g_autoptr(GPtrArray) sources = NULL;
    const DiskSource *src =
        lookup_source(engine, domain, snapshot, target, &sources, error);
    g_autofree char *owner = NULL;
    g_autofree char *key = NULL;
    DiskExportSource export_source;
    SnapDiskReader *reader;
    guint64 allocated;
    DiskReader *r;

    if (src == NULL)
        return NULL;
    owner = owner_key(domain, snapshot);
    export_source.image = src->image;
    export_source.format = disk_format_to_string(src->format);
    export_source.snapshot = src->snapshot;
    r = disk_exports_open(disks->exports, owner, &export_source, error);
    if (r == NULL)
        return NULL;
    key = size_key(src);
    remember_size(disks, key, disk_reader_size(r));
    /* What the disk file's st_blocks reports: sparse-aware copies (cp,
     * tar) only look for holes in a file whose blocks are fewer than its
     * size says. The snapshot's allocation does not change while it
     * exists, so one walk per export is enough. */
    if (!cached_number(disks, disks->allocated, key, &allocated)) {
        g_autoptr(GError) local = NULL;

        if (disk_reader_allocated(r, &allocated, &local))
            remember_number(disks, disks->allocated, key, allocated);
        else
            g_debug("%s/%s/disks/%s: allocation: %s", domain, snapshot, target,
                    local->message);
    }
    reader = g_new0(SnapDiskReader, 1);
    reader->reader = r;
    return reader;
}

const char *
snap_disk_reader_socket(SnapDiskReader *reader)
{
    return disk_reader_socket(reader->reader);
}

guint64
snap_disk_reader_size(SnapDiskReader *reader)
{
    return disk_reader_size(reader->reader);
}

GBytes *
snap_disk_reader_read(SnapDiskReader *reader, gsize count, guint64 offset, GError **error)
{
    return disk_reader_read(reader->reader, count, offset, error);
}

gboolean
snap_disk_reader_seek(SnapDiskReader *reader, guint64 offset, gboolean data, guint64 *out,
                      gboolean *found, GError **error)
{
    return disk_reader_seek(reader->reader, offset, data, out, found, error);
}

void
snap_disk_reader_close(SnapDiskReader *reader)
{
    if (reader == NULL)
        return;
    disk_reader_close(reader->reader);
    g_free(reader);
}

void
snap_engine_disks_retire(SnapEngine *engine, const char *domain, const char *snapshot)
{
    SnapEngineDisks *disks = engine_disks(engine);
    g_autofree char *owner = owner_key(domain, snapshot);
    g_autoptr(GPtrArray) sources = sources_of(engine, domain, snapshot);

    disk_exports_retire(disks->exports, owner);
    /* A later snapshot of the same name has sizes of its own. */
    g_mutex_lock(&disks->lock);
    for (guint i = 0; sources && i < sources->len; i++) {
        g_autofree char *key = size_key(sources->pdata[i]);

        g_hash_table_remove(disks->sizes, key);
        g_hash_table_remove(disks->allocated, key);
    }
    g_hash_table_remove(disks->sources, owner);
    g_mutex_unlock(&disks->lock);
}

void
snap_engine_disks_unretire(SnapEngine *engine, const char *domain, const char *snapshot)
{
    g_autofree char *owner = owner_key(domain, snapshot);

    disk_exports_unretire(engine_disks(engine)->exports, owner);
}

void
snap_engine_disks_free(SnapEngine *engine)
{
    SnapEngineDisks *disks = engine->disks;

    if (disks == NULL)
        return;
    disk_exports_free(disks->exports);
    if (disks->tmp_run_dir != NULL) {
        g_autofree char *nbd = g_build_filename(disks->tmp_run_dir, "nbd", NULL);

        g_rmdir(nbd);
        g_rmdir(disks->tmp_run_dir);
        g_free(disks->tmp_run_dir);
    }
    g_hash_table_destroy(disks->reported);
    g_hash_table_destroy(disks->sources);
    g_hash_table_destroy(disks->sizes);
    g_hash_table_destroy(disks->allocated);
    g_mutex_clear(&disks->lock);
    g_free(disks);
    engine->disks = NULL;
}
