/* snap-engine-external.c: the engine's plans for external snapshots: which
 * files a create or revert makes, and which steps merge a deleted
 * snapshot's image into its neighbours without losing anyone's data. */
#include "snap-engine-ops.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include <glib/gstdio.h>

#include "snap-disks.h"
#include "snap-external.h"
#include "snapshot-xml.h"

#define MARK_EXTERNAL "snapshot='external'"
#define MARK_INTERNAL "snapshot='internal'"

gboolean
snap_ext_check_mixing(SnapDomain *dom, const SnapshotDef *def, GError **error)
{
    gboolean external = snap_external_is_external(def);
    const char *other = external ? MARK_INTERNAL : MARK_EXTERNAL;
    g_autoptr(GPtrArray) all = snap_tree_postorder(snap_tree_metaroot(dom->tree), FALSE);

    if (external && snap_external_is_internal(def)) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "mixing internal and external targets for a snapshot is not "
                            "supported");
        return FALSE;
    }
    for (guint i = 0; i < all->len; i++) {
        SnapNode *node = all->pdata[i];
        g_autofree char *xml = snap_node_xml(node);

        if (strstr(xml, other) != NULL) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "domain '%s' has %s snapshots (e.g. '%s'); mixing internal and "
                        "external snapshots in one domain is not supported",
                        dom->name, external ? "internal" : "external", node->name);
            return FALSE;
        }
    }
    return TRUE;
}

/* The file a user named for a new snapshot's overlay or memory: it must be
 * absolute, new, and in @dir (the disk's directory), so that no XML can
 * make snaptreefs write elsewhere. Reserved like the names it picks. */
static gboolean
reserve_given(const char *file, const char *dir, GError **error)
{
    g_autofree char *parent = NULL;
    int fd;

    if (!g_path_is_absolute(file)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "'%s' must be an absolute path", file);
        return FALSE;
    }
    parent = g_path_get_dirname(file);
    if (strcmp(parent, dir) != 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "'%s' is not in the disk's directory '%s'", file, dir);
        return FALSE;
    }
    fd = g_open(file, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC, 0600);
    if (fd < 0) {
        int err = errno;

        g_set_error(error, SNAP_ERROR,
                    err == EEXIST ? SNAP_ERROR_INVALID : SNAP_ERROR_FAILED,
                    "cannot create '%s': %s", file, g_strerror(err));
        return FALSE;
    }
    g_close(fd, NULL);
    return TRUE;
}

void
snap_ext_discard(GPtrArray *files)
{
    for (guint i = 0; files && i < files->len; i++)
        g_unlink(files->pdata[i]);
}

gboolean
snap_ext_reserve_create(SnapDomain *dom, SnapshotDef *def, GPtrArray *files,
                        GError **error)
{
    g_autofree char *first_dir = NULL;

    for (guint i = 0; def->disks && i < def->disks->len; i++) {
        SnapshotDiskDef *sd = def->disks->pdata[i];
        DomainDisk *disk;
        g_autofree char *dir = NULL;

        if (sd->snapshot != DISK_SNAPSHOT_EXTERNAL)
            continue;
        disk = snap_disk_resolve(dom->def, sd->name);
        if (disk == NULL || disk->source == NULL) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "domain '%s' has no disk '%s'", dom->name, sd->name);
            goto fail;
        }
        dir = g_path_get_dirname(disk->source);
        if (first_dir == NULL)
            first_dir = g_strdup(dir);
        if (sd->source_file != NULL) {
            if (!reserve_given(sd->source_file, dir, error))
                goto fail;
        } else {
            sd->source_file = snap_external_reserve_file(dir, dom->name, disk->target,
                                                         def->name, "qcow2", error);
            if (sd->source_file == NULL)
                goto fail;
        }
        g_ptr_array_add(files, g_strdup(sd->source_file));
        g_free(sd->driver_type);
        sd->driver_type = g_strdup("qcow2");
    }
    if (def->memory == SNAP_MEMORY_EXTERNAL) {
        if (def->memory_file != NULL) {
            if (!reserve_given(def->memory_file, first_dir, error))
                goto fail;
        } else {
            def->memory_file = snap_external_reserve_file(first_dir, dom->name, "memory",
                                                          def->name, "mem", error);
            if (def->memory_file == NULL)
                goto fail;
        }
        g_ptr_array_add(files, g_strdup(def->memory_file));
    }
    return TRUE;

fail:
    snap_ext_discard(files);
    g_ptr_array_set_size(files, 0);
    return FALSE;
}

DomainDef *
snap_ext_def_after_create(SnapDomain *dom, const SnapshotDef *def, GError **error)
{
    DomainDef *out = domain_def_parse(dom->def_xml, strlen(dom->def_xml),
                                      dom->engine->state_dir, error);

    for (guint i = 0; out && def->disks && i < def->disks->len; i++) {
        SnapshotDiskDef *sd = def->disks->pdata[i];
        DomainDisk *disk;

        if (sd->snapshot != DISK_SNAPSHOT_EXTERNAL)
            continue;
        disk = snap_disk_resolve(out, sd->name);
        if (disk == NULL)
            continue;
        g_free(disk->source);
        disk->source = g_strdup(sd->source_file);
        disk->format = DISK_FORMAT_QCOW2;
    }
    return out;
}

DomainDef *
snap_ext_revert_target(SnapDomain *dom, const SnapshotDef *snap, GPtrArray *files,
                       GError **error)
{
    const char *state_dir = dom->engine->state_dir;
    g_autoptr(GPtrArray) ext = snap_external_disks(snap, state_dir, error);
    g_autoptr(DomainDef) target = NULL;

    if (ext == NULL)
        return NULL;
    target =
        domain_def_parse(snap->domain_xml, strlen(snap->domain_xml), state_dir, error);
    if (target == NULL)
        return NULL;
    if (g_strcmp0(target->name, dom->name) != 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "snapshot '%s' records domain '%s', not '%s'", snap->name,
                    target->name, dom->name);
        return NULL;
    }
    for (guint i = 0; i < ext->len; i++) {
        SnapExtDisk *e = ext->pdata[i];
        DomainDisk *disk = domain_def_find_disk(target, e->target);
        g_autofree char *dir = g_path_get_dirname(e->frozen);
        char *file;

        if (!g_file_test(e->frozen, G_FILE_TEST_EXISTS)) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "disk %s: '%s', the image of snapshot '%s', is missing",
                        e->target, e->frozen, snap->name);
            goto fail;
        }
        file = snap_external_reserve_file(dir, dom->name, e->target, snap->name, "qcow2",
                                          error);
        if (file == NULL)
            goto fail;
        g_ptr_array_add(files, file);
        g_free(disk->source);
        disk->source = g_strdup(file);
        disk->format = DISK_FORMAT_QCOW2;
    }
    return g_steal_pointer(&target);

fail:
    snap_ext_discard(files);
    g_ptr_array_set_size(files, 0);
    return NULL;
}

/* ---- what files are in use --------------------------------------------------- */

/* The parsed snapshots of @dom that took a disk externally, but @skip.
 * (transfer full: SnapshotDef*) */
static GPtrArray *
external_defs(SnapDomain *dom, SnapNode *skip)
{
    GPtrArray *out = g_ptr_array_new_with_free_func((GDestroyNotify)snapshot_def_free);
    g_autoptr(GPtrArray) all = snap_tree_postorder(snap_tree_metaroot(dom->tree), FALSE);

    for (guint i = 0; i < all->len; i++) {
        SnapNode *node = all->pdata[i];
        g_autofree char *xml = node == skip ? NULL : snap_node_xml(node);
        SnapshotDef *def;

        if (xml == NULL || strstr(xml, MARK_EXTERNAL) == NULL)
            continue;
        def = snapshot_xml_parse(xml, strlen(xml), NULL);
        if (def != NULL)
            g_ptr_array_add(out, def);
    }
    return out;
}

/* The files whose data must survive: every frozen file of @defs and the
 * active image of every disk of @def. (transfer full: char*) */
static GPtrArray *
needed_files(SnapDomain *dom, const DomainDef *def, GPtrArray *defs)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);

    for (guint i = 0; i < defs->len; i++) {
        g_autoptr(GPtrArray) ext =
            snap_external_disks(defs->pdata[i], dom->engine->state_dir, NULL);

        for (guint j = 0; ext && j < ext->len; j++)
            g_ptr_array_add(out, g_strdup(((SnapExtDisk *)ext->pdata[j])->frozen));
    }
    for (guint i = 0; i < def->disks->len; i++)
        g_ptr_array_add(out, g_strdup(((DomainDisk *)def->disks->pdata[i])->source));
    return out;
}

static gboolean
str_in(GPtrArray *list, const char *s)
{
    for (guint i = 0; list && i < list->len; i++) {
        if (g_strcmp0(list->pdata[i], s) == 0)
            return TRUE;
    }
    return FALSE;
}

/* What an image file's header said about its backing file, valid while
 * the file is the same and unchanged: frozen images never change, so a
 * chain costs one qemu-img run only when its top was written. */
typedef struct {
    dev_t dev;
    ino_t ino;
    off_t size;
    struct timespec mtime;
    char *backing; /* NULL: none */
} CachedLink;

static void
cached_link_free(gpointer data)
{
    CachedLink *link = data;

    g_free(link->backing);
    g_free(link);
}

static gboolean
link_matches(const CachedLink *link, const GStatBuf *st)
{
    return link->dev == st->st_dev && link->ino == st->st_ino &&
           link->size == st->st_size && link->mtime.tv_sec == st->st_mtim.tv_sec &&
           link->mtime.tv_nsec == st->st_mtim.tv_nsec;
}

/* Records that @file, as it is now on disk, rests on @backing (NULL: on
 * nothing). */
static void
remember_link(SnapDomain *dom, const char *file, const char *backing)
{
    CachedLink *link;
    GStatBuf st;

    if (g_stat(file, &st) < 0)
        return;
    if (dom->chains == NULL)
        dom->chains =
            g_hash_table_new_full(g_str_hash, g_str_equal, g_free, cached_link_free);
    link = g_new0(CachedLink, 1);
    link->dev = st.st_dev;
    link->ino = st.st_ino;
    link->size = st.st_size;
    link->mtime = st.st_mtim;
    link->backing = g_strdup(backing);
    g_hash_table_replace(dom->chains, g_strdup(file), link);
}

/* Records every link of @chain (SnapImageLayer*) in the domain's cache. */
static void
remember_chain(SnapDomain *dom, GPtrArray *chain)
{
    for (guint i = 0; i < chain->len; i++)
        remember_link(dom, ((SnapImageLayer *)chain->pdata[i])->file,
                      i + 1 < chain->len ? ((SnapImageLayer *)chain->pdata[i + 1])->file
                                         : NULL);
}

void
snap_ext_remember_overlay(SnapDomain *dom, const char *overlay, const char *backing)
{
    remember_link(dom, overlay, backing);
}

/* The backing file of @file (in @backing, NULL for none). */
static gboolean
backing_of(SnapDomain *dom, const char *file, char **backing, GError **error)
{
    SnapDiskBackend *backend = dom->engine->disk;
    CachedLink *link = dom->chains ? g_hash_table_lookup(dom->chains, file) : NULL;
    g_autoptr(GPtrArray) chain = NULL;
    GStatBuf st;

    if (g_stat(file, &st) < 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU, "image '%s' is missing: %s", file,
                    g_strerror(errno));
        return FALSE;
    }
    if (link == NULL || !link_matches(link, &st)) {
        chain = backend->ops->image_chain(backend, dom->def, file, error);
        if (chain == NULL)
            return FALSE;
        remember_chain(dom, chain);
        *backing =
            chain->len > 1 ? g_strdup(((SnapImageLayer *)chain->pdata[1])->file) : NULL;
        return TRUE;
    }
    *backing = g_strdup(link->backing);
    return TRUE;
}

/* The backing chain of @file as file names, [0] being @file. */
static GPtrArray *
chain_files(SnapDomain *dom, const char *file, GError **error)
{
    g_autoptr(GPtrArray) out = g_ptr_array_new_with_free_func(g_free);
    char *next = g_strdup(file);

    while (next != NULL) {
        char *backing = NULL;

        g_ptr_array_add(out, next);
        if (out->len > 1000 || !backing_of(dom, next, &backing, error)) {
            if (out->len > 1000)
                g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                            "the backing chain of '%s' does not end", file);
            return NULL;
        }
        next = backing;
    }
    return g_steal_pointer(&out);
}

gboolean
snap_ext_verify_unused(SnapDomain *dom, const char *file, SnapNode *skip, GError **error)
{
    g_autoptr(GPtrArray) defs = external_defs(dom, skip);
    g_autoptr(GPtrArray) needed = needed_files(dom, dom->def, defs);

    for (guint i = 0; i < needed->len; i++) {
        const char *root = needed->pdata[i];
        g_autoptr(GPtrArray) chain = NULL;
        g_autoptr(GError) local = NULL;

        if (g_strcmp0(root, file) == 0) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_BUSY,
                        "refusing to remove '%s': a snapshot or the domain still uses it",
                        file);
            return FALSE;
        }
        /* A needed file that is gone holds nothing to protect here. */
        if (!g_file_test(root, G_FILE_TEST_EXISTS))
            continue;
        chain = chain_files(dom, root, &local);
        if (chain == NULL) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "refusing to remove '%s': cannot check that '%s' does not need "
                        "it: %s",
                        file, root, local->message);
            return FALSE;
        }
        if (str_in(chain, file)) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_BUSY,
                        "refusing to remove '%s': '%s' still rests on it", file, root);
            return FALSE;
        }
    }
    return TRUE;
}

GPtrArray *
snap_ext_abandoned(SnapDomain *dom, const DomainDef *old_def, const DomainDef *new_def)
{
    GPtrArray *out = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) defs = external_defs(dom, NULL);
    g_autoptr(GPtrArray) needed = needed_files(dom, new_def, defs);

    for (guint i = 0; i < old_def->disks->len; i++) {
        const char *file = ((DomainDisk *)old_def->disks->pdata[i])->source;
        g_autoptr(GPtrArray) chain = NULL;

        if (str_in(needed, file) || str_in(out, file))
            continue;
        /* Only an overlay made on a snapshot's image is ours to drop: a
         * file the user brought is never removed. */
        chain = chain_files(dom, file, NULL);
        if (chain == NULL || chain->len < 2 || !str_in(needed, chain->pdata[1]))
            continue;
        g_ptr_array_add(out, g_strdup(file));
    }
    return out;
}

/* ---- delete ------------------------------------------------------------------ */

static void
add_step(GPtrArray *steps, const char *verb, const char *a, const char *b, const char *c,
         const char *d)
{
    g_ptr_array_add(steps, g_strdupv((char *[]){(char *)verb, (char *)a, (char *)b,
                                                (char *)c, (char *)d, NULL}));
}

/* The steps for one disk of a deleted snapshot whose image is @e->frozen. */
static gboolean
plan_disk(SnapDomain *dom, SnapExtDisk *e, GPtrArray *defs, GPtrArray *steps,
          GError **error)
{
    g_autoptr(GPtrArray) needed = needed_files(dom, dom->def, defs);
    g_autoptr(GPtrArray) children = g_ptr_array_new_with_free_func(g_free);
    /* The chain of each needed file that exists, walked once. */
    g_autoptr(GPtrArray) chains =
        g_ptr_array_new_with_free_func((GDestroyNotify)g_ptr_array_unref);
    g_autoptr(GPtrArray) layers = NULL;
    SnapDiskBackend *backend = dom->engine->disk;

    /* Another snapshot froze the same file (redefined metadata): its data
     * stays as it is. */
    if (str_in(needed, e->frozen))
        return TRUE;
    if (!g_file_test(e->frozen, G_FILE_TEST_EXISTS))
        return TRUE;
    for (guint i = 0; i < needed->len; i++) {
        GPtrArray *chain;

        if (!g_file_test(needed->pdata[i], G_FILE_TEST_EXISTS))
            continue;
        chain = chain_files(dom, needed->pdata[i], error);
        if (chain == NULL)
            return FALSE;
        g_ptr_array_add(chains, chain);
        /* The images resting right on the deleted one. */
        for (guint j = 1; j < chain->len; j++) {
            if (g_strcmp0(chain->pdata[j], e->frozen) == 0 &&
                !str_in(children, chain->pdata[j - 1]))
                g_ptr_array_add(children, g_strdup(chain->pdata[j - 1]));
        }
    }

    if (children->len == 0) {
        add_step(steps, "remove", e->frozen, NULL, NULL, NULL);
    } else if (children->len == 1) {
        /* libvirt's way: the layer above merges down into the deleted
         * snapshot's image, which takes its place. */
        const char *c = children->pdata[0];
        g_autoptr(GPtrArray) relinks =
            g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);

        /* What rests on the top image must then rest on the merged one. */
        for (guint i = 0; i < chains->len; i++) {
            GPtrArray *chain = chains->pdata[i];

            if (g_strcmp0(chain->pdata[0], c) == 0)
                continue;
            for (guint j = 1; j < chain->len; j++) {
                if (g_strcmp0(chain->pdata[j], c) == 0)
                    add_step(relinks, "relink", chain->pdata[j - 1], e->frozen,
                             e->frozen_format, NULL);
            }
        }
        add_step(steps, "commit", c, e->frozen, NULL, NULL);
        for (guint i = 0; i < relinks->len; i++)
            g_ptr_array_add(steps, g_strdupv(relinks->pdata[i]));
        add_step(steps, "rename", c, e->frozen, NULL, NULL);
        add_step(steps, "remove", c, NULL, NULL, NULL);
    } else {
        /* Several images rest on it: a commit would change what the others
         * show, so each gets the data it needs copied in, and rests on the
         * image under the deleted one. */
        const char *below = NULL;
        const char *below_format = "";

        layers = backend->ops->image_chain(backend, dom->def, e->frozen, error);
        if (layers == NULL)
            return FALSE;
        if (layers->len > 1) {
            below = ((SnapImageLayer *)layers->pdata[1])->file;
            below_format = ((SnapImageLayer *)layers->pdata[1])->format;
        }
        for (guint i = 0; i < children->len; i++)
            add_step(steps, "rebase", children->pdata[i], below ? below : "",
                     below_format, NULL);
        add_step(steps, "remove", e->frozen, NULL, NULL, NULL);
    }
    return TRUE;
}

GPtrArray *
snap_ext_plan_delete(SnapDomain *dom, SnapNode *node, const SnapshotDef *snap,
                     GError **error)
{
    g_autoptr(GPtrArray) steps =
        g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    g_autoptr(GPtrArray) ext = snap_external_disks(snap, dom->engine->state_dir, error);
    g_autoptr(GPtrArray) defs = NULL;

    if (ext == NULL)
        return NULL;
    defs = external_defs(dom, node);
    for (guint i = 0; i < ext->len; i++) {
        if (!plan_disk(dom, ext->pdata[i], defs, steps, error))
            return NULL;
    }
    if (snap->memory == SNAP_MEMORY_EXTERNAL && snap->memory_file != NULL) {
        gboolean shared = FALSE;

        for (guint i = 0; i < defs->len; i++) {
            SnapshotDef *other = defs->pdata[i];

            shared = shared || g_strcmp0(other->memory_file, snap->memory_file) == 0;
        }
        if (!shared)
            add_step(steps, "remove-memory", snap->memory_file, NULL, NULL, NULL);
    }
    return g_steal_pointer(&steps);
}

gboolean
snap_ext_run_file_step(SnapDomain *dom, SnapNode *node, char **step,
                       SnapProgressFunc progress, gpointer progress_data, GError **error)
{
    SnapDiskBackend *backend = dom->engine->disk;
    const char *verb = step[0];

    if (g_strcmp0(verb, "commit") == 0) {
        /* Done already (a resumed delete): nothing rests on the top. */
        if (!g_file_test(step[1], G_FILE_TEST_EXISTS))
            return TRUE;
        return backend->ops->commit(backend, dom->def, step[1], step[2], progress,
                                    progress_data, error);
    }
    if (g_strcmp0(verb, "relink") == 0 || g_strcmp0(verb, "rebase") == 0) {
        gboolean unsafe = g_strcmp0(verb, "relink") == 0;
        const char *backing = step[2] && *step[2] ? step[2] : NULL;
        g_autoptr(GPtrArray) chain = chain_files(dom, step[1], error);

        if (chain == NULL)
            return FALSE;
        /* QEMU relinks what it has open itself during a commit. */
        if ((backing == NULL && chain->len == 1) ||
            (chain->len > 1 && g_strcmp0(chain->pdata[1], backing) == 0))
            return TRUE;
        return backend->ops->rebase(backend, dom->def, step[1], backing, step[3], unsafe,
                                    progress, progress_data, error);
    }
    if (g_strcmp0(verb, "remove") == 0) {
        if (!g_file_test(step[1], G_FILE_TEST_EXISTS))
            return TRUE;
        if (!snap_ext_verify_unused(dom, step[1], node, error))
            return FALSE;
        return backend->ops->remove_image(backend, dom->def, step[1], error);
    }
    if (g_strcmp0(verb, "remove-memory") == 0)
        return backend->ops->remove_image(backend, dom->def, step[1], error);
    /* "rename" is the caller's: it changes metadata. */
    return TRUE;
}
