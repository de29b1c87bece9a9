/* snap-engine-load.c: a new engine, loaded from STATE or from the backend. */
#include "snap-engine-refresher.h"

#include <fcntl.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <glib/gstdio.h>

#include "backend-libvirt.h"
#include "backend-native.h"
#include "domain-removal.h"
#include "journal.h"
#include "snapshot-xml.h"
#include "snap-index.h"

static gboolean
has_xml_suffix(const char *file)
{
    return file[0] != '.' && g_str_has_suffix(file, ".xml") && strlen(file) > 4;
}

/* One snapshot file, read and parsed, or found unchanged in the index;
 * filled by a loader thread. */
typedef struct {
    char *path;
    char *name;       /* from the file name */
    GStatBuf st;      /* the file when it was read */
    gboolean ok;      /* it loaded: the fields below are set */
    gboolean indexed; /* they came from the index */
    char *parent;
    gint64 creation_time;
    gboolean active;
    char *xml; /* snapshot_xml_format(def, FALSE) */
    char *problem;
    char *unparsable; /* why the file did not parse, or NULL */
} LoadItem;

/* What the loader threads of one domain share. */
typedef struct {
    GPtrArray *items;
    SnapIndex *index;
    int dir_fd; /* the snapshots' directory: stat without a path walk each */
} LoadSlice;

/* Work split over threads: a call on every @step-th item from @first. */
typedef void (*StrideFunc)(gpointer data, guint first, guint step);

typedef struct {
    StrideFunc func;
    gpointer data;
    guint first;
    guint step;
} Stride;

static gpointer
stride_thread(gpointer data)
{
    Stride *stride = data;

    stride->func(stride->data, stride->first, stride->step);
    return NULL;
}

/* Runs @func on @nthreads strides of the work, the first on this thread
 * and the others on threads named @name. They are joined before this
 * returns: the engine still owns no thread when the daemon forks. */
static void
run_strided(const char *name, guint nthreads, StrideFunc func, gpointer data)
{
    g_autofree Stride *strides = g_new0(Stride, nthreads);
    g_autofree GThread **threads = g_new0(GThread *, nthreads);

    for (guint t = 1; t < nthreads; t++) {
        strides[t] = (Stride){func, data, t, nthreads};
        threads[t] = g_thread_new(name, stride_thread, &strides[t]);
    }
    func(data, 0, nthreads);
    for (guint t = 1; t < nthreads; t++)
        g_thread_join(threads[t]);
}

static void
load_item_clear(LoadItem *item)
{
    g_free(item->path);
    g_free(item->name);
    g_free(item->parent);
    g_free(item->xml);
    g_free(item->problem);
    g_free(item->unparsable);
}

static void
load_item_parse(LoadItem *item)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(SnapshotDef) def = NULL;
    gsize len;

    if (!g_file_get_contents(item->path, &text, &len, &error) ||
        (def = snapshot_xml_parse(text, len, &error)) == NULL) {
        item->problem =
            g_strdup_printf("snapshot file '%s' skipped: %s", item->path, error->message);
        item->unparsable = g_strdup(error->message);
        return;
    }
    if (g_strcmp0(def->name, item->name) != 0) {
        item->problem = g_strdup_printf("snapshot file '%s' skipped: it names snapshot "
                                        "'%s'",
                                        item->path, def->name ? def->name : "");
        return;
    }
    item->parent = g_strdup(def->parent);
    item->creation_time = def->creation_time;
    item->active = def->active == 1;
    item->xml = snapshot_xml_format(def, FALSE);
    item->ok = TRUE;
}

static void
load_slice(gpointer data, guint first, guint step)
{
    LoadSlice *slice = data;

    for (guint i = first; i < slice->items->len; i += step) {
        LoadItem *item = slice->items->pdata[i];
        SnapIndexEntry e;

        /* Stat before reading: a file replaced in between is older than
         * its stat says only if it is parsed again next time. */
        if (fstatat(slice->dir_fd, strrchr(item->path, '/') + 1, &item->st, 0) == 0 &&
            snap_index_lookup(slice->index, item->name, &item->st, &e)) {
            item->parent = g_strdup(e.parent);
            item->creation_time = e.creation_time;
            item->active = e.active;
            item->xml = g_strdup(e.xml);
            item->ok = item->indexed = TRUE;
            continue;
        }
        load_item_parse(item);
    }
}

/* Parsing dominates a large load, so a domain of many files spreads it
 * over the CPUs. */
static void
load_parse_all(GPtrArray *items, SnapIndex *index, int dir_fd)
{
    LoadSlice slice = {items, index, dir_fd};

    run_strided("snap-load", items->len < 512 ? 1 : MIN(g_get_num_processors(), 8),
                load_slice, &slice);
}

static void
load_item_free(gpointer data)
{
    load_item_clear(data);
    g_free(data);
}

/* Rewrites the domain's index when a file was parsed, or one it knew is
 * gone: the next start then parses nothing. */
static void
index_update(SnapEngine *engine, SnapDomain *dom, GPtrArray *items, SnapIndex *index)
{
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    g_autoptr(GArray) stats = g_array_new(FALSE, FALSE, sizeof(GStatBuf));
    g_autoptr(GArray) entries = g_array_new(FALSE, FALSE, sizeof(SnapIndexEntry));
    g_autoptr(GError) error = NULL;
    gboolean stale = FALSE;

    for (guint i = 0; i < items->len; i++) {
        LoadItem *item = items->pdata[i];
        SnapIndexEntry e = {item->parent, item->creation_time, item->active, item->xml};

        if (!item->ok)
            continue;
        stale |= !item->indexed;
        g_ptr_array_add(names, item->name);
        g_array_append_val(stats, item->st);
        g_array_append_val(entries, e);
    }
    if (!stale && names->len == snap_index_size(index))
        return;
    if (!snap_index_save(engine->state_dir, dom->name, names, stats, entries, &error))
        g_debug("%s: index not written: %s", dom->name, error->message);
}

static void
load_snapshots(SnapEngine *engine, SnapDomain *dom)
{
    g_autofree char *dir =
        g_build_filename(engine->state_dir, "snapshots", dom->name, NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GHashTable) parents =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(load_item_free);
    g_autofree char *current = NULL;
    g_autoptr(GPtrArray) claimants = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) pictures = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(SnapIndex) index = NULL;
    gint64 current_mtime = G_MININT64;
    guint ncurrent = 0;
    int dir_fd;
    const char *file;

    if (d == NULL)
        return;
    while ((file = g_dir_read_name(d)) != NULL) {
        LoadItem *item;

        if (g_str_has_suffix(file, ".png") && file[0] != '.')
            g_ptr_array_add(pictures, g_strndup(file, strlen(file) - 4));
        if (!has_xml_suffix(file))
            continue;
        item = g_new0(LoadItem, 1);
        item->path = g_build_filename(dir, file, NULL);
        item->name = g_strndup(file, strlen(file) - 4);
        g_ptr_array_add(items, item);
    }
    index = snap_index_load(engine->state_dir, dom->name);
    dir_fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    load_parse_all(items, index, dir_fd);
    if (dir_fd >= 0)
        close(dir_fd);
    if (!engine->opts.read_only)
        index_update(engine, dom, items, index);

    for (guint i = 0; i < items->len; i++) {
        LoadItem *item = items->pdata[i];
        gint64 mtime_ns;

        /* Never dropped unseen: rebuilt from the disk tags, or said why not. */
        if (!item->ok && item->unparsable != NULL) {
            g_autoptr(SnapshotDef) def = snap_engine_rebuild_snapshot(
                dom, item->name, item->path, item->unparsable, problems);

            g_clear_pointer(&item->problem, g_free);
            if (def != NULL) {
                item->parent = g_strdup(def->parent);
                item->creation_time = def->creation_time;
                item->active = def->active == 1;
                item->xml = snapshot_xml_format(def, FALSE);
                item->ok = TRUE;
            }
        }
        if (!item->ok) {
            if (item->problem != NULL)
                g_ptr_array_add(problems, g_steal_pointer(&item->problem));
            continue;
        }
        /* The current snapshot's file is written before the old one's
         * <active> goes, so of several claimants the last written is
         * current. */
        mtime_ns = (gint64)item->st.st_mtim.tv_sec * G_GINT64_CONSTANT(1000000000) +
                   item->st.st_mtim.tv_nsec;
        if (item->active) {
            ncurrent++;
            g_ptr_array_add(claimants, g_strdup(item->name));
            if (current == NULL || mtime_ns > current_mtime) {
                g_free(current);
                current = g_strdup(item->name);
                current_mtime = mtime_ns;
            }
        }
        g_hash_table_insert(parents, g_strdup(item->name), g_strdup(item->parent));
        snap_tree_add_unlinked(dom->tree, item->name, item->parent, item->creation_time,
                               g_steal_pointer(&item->xml), NULL);
    }
    g_clear_pointer(&items, g_ptr_array_unref);
    snap_tree_link_all(dom->tree, problems);
    /* screen.png of each snapshot that has one (a picture without its
     * snapshot is the reconcile's to report). */
    for (guint i = 0; i < pictures->len; i++) {
        SnapNode *node = snap_tree_lookup(dom->tree, pictures->pdata[i]);

        if (node != NULL)
            node->screen_size = snap_screen_size(engine, dom->name, node->name);
    }
    if (problems->len > 0) {
        /* A repaired link must show in metadata.xml too, so what `ls`
         * shows and what the XML says agree. The files stay as they are. */
        GHashTableIter iter;
        gpointer key, value;

        g_hash_table_iter_init(&iter, parents);
        while (g_hash_table_iter_next(&iter, &key, &value)) {
            SnapNode *node = snap_tree_lookup(dom->tree, key);
            SnapNode *parent = snap_node_parent(node);
            g_autoptr(SnapshotDef) def = NULL;

            if (g_strcmp0(value, parent ? parent->name : NULL) == 0)
                continue;
            def = snap_node_def(node, NULL);
            if (def == NULL)
                continue;
            g_free(def->parent);
            def->parent = parent ? g_strdup(parent->name) : NULL;
            snap_tree_set_xml(node, snapshot_xml_format(def, FALSE), node->creation_time);
        }
    }
    if (ncurrent > 1)
        g_ptr_array_add(problems, g_strdup_printf("%u snapshots claim to be current; the "
                                                  "last written, '%s', is",
                                                  ncurrent, current));
    snap_tree_set_current(dom->tree, snap_tree_lookup(dom->tree, current));
    if (ncurrent > 1) {
        /* Names are unique: the current one is there once. */
        for (guint i = 0; i < claimants->len; i++) {
            if (g_strcmp0(claimants->pdata[i], current) == 0) {
                g_ptr_array_remove_index_fast(claimants, i);
                break;
            }
        }
        dom->stale_active = g_steal_pointer(&claimants);
    }
    for (guint i = 0; i < problems->len; i++)
        error_log_add(dom->errors, "load", problems->pdata[i]);
}

/* The domain of @path, with its snapshots, or NULL when its file does
 * not load. Touches nothing shared: domains load in parallel. */
static SnapDomain *
load_domain(SnapEngine *engine, const char *path, const char *name)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DomainDef) def = NULL;
    g_autoptr(GPtrArray) ignored = g_ptr_array_new_with_free_func(g_free);
    SnapDomain *dom;
    GStatBuf st;
    gsize len;

    if (!g_file_get_contents(path, &text, &len, &error) ||
        (def = domain_def_parse_noting(text, len, engine->state_dir, ignored, &error)) ==
            NULL) {
        /* No domain, so no `errors` file: the log is where this shows. */
        g_message("domain file '%s' skipped: %s", path, error->message);
        return NULL;
    }
    if (g_strcmp0(def->name, name) != 0) {
        g_message("domain file '%s' skipped: it defines domain '%s'", path, def->name);
        return NULL;
    }
    if (ignored->len > 0) {
        /* One line per file: what of a `virsh dumpxml` the subset leaves out. */
        g_ptr_array_add(ignored, NULL);
        g_autofree char *list = g_strjoinv(", ", (char **)ignored->pdata);

        g_message("domain %s: ignored what snaptreefs does not use: %s", name, list);
    }
    dom = g_new0(SnapDomain, 1);
    dom->engine = engine;
    dom->name = g_strdup(name);
    dom->def_xml = domain_def_format(def);
    dom->def = g_steal_pointer(&def);
    dom->tree = snap_tree_new();
    dom->errors = error_log_new(ERROR_LOG_LINES);
    dom->job = g_strdup("");
    dom->early = g_ptr_array_new();
    dom->mtime = g_stat(path, &st) == 0 ? st.st_mtime : snap_now_seconds();
    load_snapshots(engine, dom);
    return dom;
}

/* The domain files of STATE/domains/, and what loading each gave. */
typedef struct {
    SnapEngine *engine;
    GPtrArray *paths;
    GPtrArray *names;
    SnapDomain **loaded;
} DomainSlice;

static void
load_domain_slice(gpointer data, guint first, guint step)
{
    DomainSlice *slice = data;

    for (guint i = first; i < slice->paths->len; i += step)
        slice->loaded[i] =
            load_domain(slice->engine, slice->paths->pdata[i], slice->names->pdata[i]);
}

/* Loads every domain of @dir, one thread per CPU: a start with thousands
 * of domains is parsing and stat(2) on each core. */
static void
load_domains(SnapEngine *engine, const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_autoptr(GPtrArray) paths = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    g_autofree SnapDomain **loaded = NULL;
    DomainSlice slice;
    const char *file;

    while (d && (file = g_dir_read_name(d)) != NULL) {
        if (!has_xml_suffix(file))
            continue;
        g_ptr_array_add(paths, g_build_filename(dir, file, NULL));
        g_ptr_array_add(names, g_strndup(file, strlen(file) - 4));
    }
    loaded = g_new0(SnapDomain *, paths->len);
    slice = (DomainSlice){engine, paths, names, loaded};
    run_strided("snap-load-domain",
                CLAMP(paths->len / 4, 1, MIN(g_get_num_processors(), 8)),
                load_domain_slice, &slice);
    for (guint i = 0; i < paths->len; i++)
        if (loaded[i] != NULL)
            g_hash_table_insert(engine->domains, loaded[i]->name, loaded[i]);
}

/* A domain's run state changed by itself (QEMU's events, or QEMU exiting):
 * the state file changes, and an exit nobody asked for is an error line. */
static void
on_backend_event(const char *domain, SnapDomainState state, const char *message,
                 gpointer user_data)
{
    SnapEngine *engine = user_data;
    SnapDomain *dom = snap_engine_find_domain(engine, domain);
    PendingChange file = {.kind = SNAP_CHANGE_DOMAIN_FILE};
    /* The libvirt backend reports on its connection. */
    const char *label = snap_engine_is_remote(engine) ? "libvirt" : "qemu";

    if (dom == NULL)
        return;
    g_rw_lock_writer_lock(&engine->lock);
    if (message != NULL)
        error_log_add(dom->errors, label, message);
    snap_touch(dom);
    g_rw_lock_writer_unlock(&engine->lock);
    if (message != NULL) {
        g_autofree char *line = g_strdup_printf("%s: %s", label, message);
        PendingChange err = {.kind = SNAP_CHANGE_ERROR, .message = line};

        g_debug("%s: %s", domain, line);
        snap_engine_emit_change(engine, domain, &err);
    }
    snap_engine_emit_change(engine, domain, &file);
}

/* Takes over the QEMUs an earlier run left running, before the mount is
 * ready (and before the daemon forks: no thread starts here), so that the
 * first read of `state` already says running. */
static void
attach_all(SnapEngine *engine)
{
    SnapBackend *backend = engine->backend;
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init(&iter, engine->domains);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        SnapDomain *dom = value;
        g_autoptr(GError) error = NULL;

        if (!backend->ops->attach(backend, dom->def, &error))
            error_log_add(dom->errors, "start", error->message);
    }
}

/* An undefine that a crash interrupted after the definition went (its
 * commit point) leaves an intent no loaded domain will read: finish it
 * here, so that no later domain of that name inherits it. Its image files
 * went before the definition did and are not touched again. */
static void
finish_orphan_undefines(SnapEngine *engine)
{
    g_autofree char *dir = g_build_filename(engine->state_dir, "journal", NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *file;

    while (d && (file = g_dir_read_name(d)) != NULL) {
        g_autofree char *name = NULL;
        g_autoptr(SnapJournal) j = NULL;
        g_autoptr(GError) error = NULL;

        if (file[0] == '.' || !g_str_has_suffix(file, ".json"))
            continue;
        name = g_strndup(file, strlen(file) - 5);
        if (g_hash_table_contains(engine->domains, name))
            continue;
        j = snap_journal_read(engine->state_dir, name, NULL);
        if (j == NULL || !g_str_equal(j->op, "undefine"))
            continue;
        if (!domain_removal_run(engine->state_dir, name, NULL, &error) ||
            !snap_journal_unlink(engine->state_dir, name, &error))
            g_debug("%s: finishing the interrupted undefine: %s", name, error->message);
        else
            g_debug("%s: recovered: finished the interrupted undefine (%s)", name,
                    j->snapshot);
    }
}

static SnapEngine *
engine_alloc(const SnapEngineOptions *opts)
{
    SnapEngine *engine = g_new0(SnapEngine, 1);

    /* GLib (2.74) makes the C locale of g_ascii_strtoull() on first use,
     * and a thread that waits for another's making of it returns with
     * errno clobbered, which g_ascii_string_to_unsigned() takes for a
     * failure: with domains loading in parallel, one domain in a
     * thousand failed to load ("invalid memory size '1048576'"). Made
     * here, before any thread. */
    (void)g_ascii_strtoull("0", NULL, 10);

    if (opts)
        engine->opts = *opts;
    engine->opts.libvirt_uri = NULL;
    g_rw_lock_init(&engine->lock);
    g_mutex_init(&engine->start_lock);
    g_mutex_init(&engine->check_lock);
    g_cond_init(&engine->check_cond);
    engine->check_slots = MAX(2, (gint)g_get_num_processors());
    engine->domains = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                            (GDestroyNotify)snap_domain_free);
    engine->removed = g_ptr_array_new_with_free_func((GDestroyNotify)snap_domain_free);
    return engine;
}

static SnapEngine *
engine_new_libvirt(const SnapEngineOptions *opts, GError **error)
{
    SnapCatalogue *catalogue;
    SnapEngine *engine;

    /* A fleet shows disks/ for its local hosts only. */
    if (opts->libvirt_uris == NULL && opts->disks &&
        !snap_backend_libvirt_uri_is_local(opts->libvirt_uri)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "-o disks needs a local libvirt URI (such as qemu:///system): the "
                    "disk images of %s are on another host, where qemu-nbd cannot "
                    "open them",
                    opts->libvirt_uri);
        return NULL;
    }
    catalogue = opts->libvirt_uris != NULL
                    ? snap_backend_libvirt_fleet_new(opts->libvirt_uris, error)
                    : snap_backend_libvirt_new(opts->libvirt_uri, error);
    if (catalogue == NULL)
        return NULL;
    if (opts->cache_dir != NULL)
        snap_backend_libvirt_set_cache_dir(catalogue, opts->cache_dir);
    engine = engine_alloc(opts);
    engine->catalogue = catalogue;
    engine->backend = &catalogue->parent;
    engine->backend->ops->set_event_func(engine->backend, on_backend_event, engine);
    if (!snap_remote_load(engine, error)) {
        snap_engine_free(engine);
        return NULL;
    }
    return engine;
}

SnapEngine *
snap_engine_new(const char *state_dir, const SnapEngineOptions *opts, GError **error)
{
    g_autofree char *abs = NULL;
    g_autofree char *domains = NULL;
    SnapEngine *engine;

    if (opts != NULL && (opts->libvirt_uri != NULL || opts->libvirt_uris != NULL))
        return engine_new_libvirt(opts, error);
    abs = g_canonicalize_filename(state_dir, NULL);
    domains = g_build_filename(abs, "domains", NULL);
    if (!g_file_test(abs, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND, "state directory '%s' %s",
                    state_dir,
                    g_file_test(abs, G_FILE_TEST_EXISTS) ? "is not a directory"
                                                         : "does not exist");
        return NULL;
    }
    engine = engine_alloc(opts);
    engine->state_dir = g_steal_pointer(&abs);
    engine->disk = snap_backend_native_new(engine->state_dir);
    engine->backend = &engine->disk->parent;
    engine->backend->ops->set_event_func(engine->backend, on_backend_event, engine);

    load_domains(engine, domains);
    if (!engine->opts.read_only)
        finish_orphan_undefines(engine);
    attach_all(engine);
#ifdef __GLIBC__
    /* The parse buffers freed above, many in the loader threads' arenas,
     * go back to the system instead of staying in the daemon's RSS. */
    malloc_trim(0);
#endif
    return engine;
}

void
snap_engine_set_change_func(SnapEngine *engine, SnapChangeFunc func, gpointer user_data)
{
    g_rw_lock_writer_lock(&engine->lock);
    engine->change_func = func;
    engine->change_data = user_data;
    g_rw_lock_writer_unlock(&engine->lock);
}
