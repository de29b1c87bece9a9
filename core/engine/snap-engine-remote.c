/* snap-engine-remote.c: the operations over a backend that owns the
 * metadata (libvirt): mutations call it, refreshes mirror it. */
#include "snap-engine-ops.h"

#include <string.h>
#include <glib/gstdio.h>

#include "snapshot-xml.h"

/* ---- refresh: the tree becomes what the backend says -------------------- */

/* How many snapshots each refresh reads again in turn. libvirt has no
 * event for a snapshot redefined in place (virsh snapshot-edit,
 * virt-manager's description): with refreshes twice a second, a domain of
 * up to 2 * REFRESH_SWEEP snapshots shows such a change within a second,
 * a larger one within (snapshots / REFRESH_SWEEP) half-seconds, for
 * REFRESH_SWEEP calls per domain and refresh. */
#define REFRESH_SWEEP 2

typedef struct {
    char *name;
    SnapBackendSnapshot snap;
} Fetched;

static void
fetched_free(gpointer data)
{
    Fetched *f = data;

    g_free(f->name);
    snap_backend_snapshot_clear(&f->snap);
    g_free(f);
}

static guint
node_depth(SnapNode *node)
{
    guint depth = 0;

    for (SnapNode *p = snap_node_parent(node); p; p = snap_node_parent(p))
        depth++;
    return depth;
}

static gint
deeper_first(gconstpointer a, gconstpointer b)
{
    guint da = node_depth(*(SnapNode *const *)a);
    guint db = node_depth(*(SnapNode *const *)b);

    return da > db ? -1 : da < db ? 1 : 0;
}

static const char *
parent_name(SnapNode *node)
{
    SnapNode *p = snap_node_parent(node);

    return p ? p->name : NULL;
}

/* Asks the backend for the snapshots in @want (name -> NULL) and drops
 * from @present the ones that went meanwhile. (transfer full: name ->
 * Fetched*) */
static GHashTable *
fetch_snapshots(SnapOp *op, GHashTable *want, GHashTable *present)
{
    SnapDomain *dom = snap_op_domain(op);
    SnapCatalogue *catalogue = dom->engine->catalogue;
    GHashTable *got = g_hash_table_new_full(g_str_hash, g_str_equal, NULL, fetched_free);
    GHashTableIter iter;
    gpointer key;

    g_hash_table_iter_init(&iter, want);
    while (g_hash_table_iter_next(&iter, &key, NULL)) {
        g_autoptr(GError) error = NULL;
        Fetched *f = g_new0(Fetched, 1);

        f->name = g_strdup(key);
        if (!catalogue->ops->snapshot_get(catalogue, dom->name, key, &f->snap, &error)) {
            g_debug("%s: refresh: snapshot %s: %s", dom->name, (char *)key,
                    error->message);
            if (g_error_matches(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND))
                g_hash_table_remove(present, key);
            fetched_free(f);
            continue;
        }
        g_hash_table_insert(got, f->name, f);
    }
    return got;
}

/* Adds the fetched snapshots that are new, parents before children (a
 * parent that is not there makes a root). With the writer lock held. */
static void
add_new(SnapOp *op, GHashTable *fetched, GPtrArray *added)
{
    SnapTree *tree = snap_op_domain(op)->tree;
    gboolean progress = TRUE;

    while (added->len > 0) {
        gboolean force = !progress;

        progress = FALSE;
        for (guint i = 0; i < added->len;) {
            Fetched *f = g_hash_table_lookup(fetched, added->pdata[i]);
            const char *parent = f->snap.parent;
            SnapNode *node = NULL;
            gboolean parent_pending =
                parent != NULL && !snap_tree_lookup(tree, parent) &&
                g_ptr_array_find_with_equal_func(added, parent, g_str_equal, NULL);
            SnapNode *pnode;

            if (parent_pending && !force) {
                i++;
                continue;
            }
            pnode = parent ? snap_tree_lookup(tree, parent) : NULL;
            snap_tree_add(tree, f->name, pnode, f->snap.creation_time,
                          g_steal_pointer(&f->snap.xml), &node, NULL);
            node->screen_size = snap_screen_size(snap_op_domain(op)->engine,
                                                 snap_op_domain(op)->name, f->name);
            snap_op_change(op, SNAP_CHANGE_SNAPSHOT_ADDED, f->name,
                           pnode ? pnode->name : NULL, NULL);
            g_ptr_array_remove_index(added, i);
            progress = TRUE;
            force = FALSE;
        }
    }
}

/* Stops (@retire) or allows again the disk exports of @names (char*), when
 * disks/ is in use: a snapshot's open disk files fail from before its data
 * goes (through the mount) or as soon as a refresh sees it gone (virsh). */
static void
retire_all(SnapEngine *engine, const char *domain, GPtrArray *names, gboolean retire)
{
    if (engine->disks == NULL)
        return;
    for (guint i = 0; i < names->len; i++) {
        if (retire)
            snap_engine_exports_retire(engine, domain, names->pdata[i]);
        else
            snap_engine_exports_unretire(engine, domain, names->pdata[i]);
    }
}

gboolean
snap_remote_refresh(SnapOp *op, guint flags, const char *hint)
{
    SnapDomain *dom = snap_op_domain(op);
    SnapEngine *engine = dom->engine;
    SnapBackend *backend = engine->backend;
    SnapDomainState before = backend->ops->domain_state(backend, dom->def);
    g_auto(SnapBackendView) view = {0};
    g_autoptr(GError) error = NULL;
    g_autoptr(GHashTable) present = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) want = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) fetched = NULL;
    /* Copies: a removed parent's name is freed with its node. */
    g_autoptr(GHashTable) old_parents =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GPtrArray) removed = g_ptr_array_new();
    g_autoptr(GPtrArray) removed_names = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) added = g_ptr_array_new();
    g_autoptr(GPtrArray) all = NULL;
    g_autofree char *old_current = NULL;
    SnapNode *cur;
    gboolean changed = FALSE;

    g_atomic_int_set(&dom->refresh_queued, 0);
    if (!engine->catalogue->ops->domain_view(engine->catalogue, dom->name,
                                             (flags & SNAP_REFRESH_DEF) != 0, &view,
                                             &error)) {
        g_debug("%s: refresh: %s", dom->name, error->message);
        if (g_error_matches(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND))
            snap_op_unlink_domain(op);
        return FALSE;
    }
    for (guint i = 0; i < view.names->len; i++)
        g_hash_table_add(present, view.names->pdata[i]);

    /* What to read: the new ones, the children of the ones that went
     * (libvirt re-parented them), the hinted one, or everything. */
    all = snap_tree_list(dom->tree, NULL, SNAP_LIST_TOPOLOGICAL);
    for (guint i = 0; i < all->len; i++) {
        SnapNode *node = all->pdata[i];

        if (g_hash_table_contains(present, node->name))
            continue;
        g_ptr_array_add(removed, node);
        g_ptr_array_add(removed_names, g_strdup(node->name));
        for (SnapNode *c = node->first_child; c; c = c->next_sibling)
            if (g_hash_table_contains(present, c->name))
                g_hash_table_add(want, c->name);
    }
    for (guint i = 0; i < view.names->len; i++) {
        const char *name = view.names->pdata[i];

        if ((flags & SNAP_REFRESH_ALL) || !snap_tree_lookup(dom->tree, name) ||
            g_strcmp0(name, hint) == 0)
            g_hash_table_add(want, (gpointer)name);
    }
    if (!(flags & SNAP_REFRESH_ALL) && view.names->len > 0) {
        guint n = view.names->len;

        for (guint k = 0; k < MIN(REFRESH_SWEEP, n); k++)
            g_hash_table_add(want, view.names->pdata[(dom->sweep_next + k) % n]);
        dom->sweep_next = (dom->sweep_next % n + REFRESH_SWEEP) % n;
    }
    retire_all(engine, dom->name, removed_names, TRUE);
    fetched = fetch_snapshots(op, want, present);
    for (guint i = 0; i < view.names->len; i++) {
        const char *name = view.names->pdata[i];

        if (!snap_tree_lookup(dom->tree, name) && g_hash_table_contains(fetched, name))
            g_ptr_array_add(added, (gpointer)name);
    }

    g_rw_lock_writer_lock(&engine->lock);
    cur = snap_tree_get_current(dom->tree);
    old_current = cur ? g_strdup(cur->name) : NULL;
    for (guint i = 0; i < all->len; i++) {
        SnapNode *node = all->pdata[i];

        g_hash_table_insert(old_parents, g_strdup(node->name),
                            g_strdup(parent_name(node)));
    }
    /* Deepest first, so each goes from the directory it was shown in. */
    g_ptr_array_sort(removed, deeper_first);
    for (guint i = 0; i < removed->len; i++) {
        SnapNode *node = removed->pdata[i];

        snap_op_change(op, SNAP_CHANGE_SNAPSHOT_REMOVED, node->name, NULL,
                       g_hash_table_lookup(old_parents, node->name));
        g_hash_table_remove(old_parents, node->name);
        snap_tree_remove(dom->tree, node);
        changed = TRUE;
    }
    if (added->len > 0)
        changed = TRUE;
    add_new(op, fetched, added);
    /* The ones read again: moved, or with new XML. */
    for (guint i = 0; i < view.names->len; i++) {
        const char *name = view.names->pdata[i];
        Fetched *f = g_hash_table_lookup(fetched, name);
        SnapNode *node = snap_tree_lookup(dom->tree, name);
        const char *was;
        SnapNode *pnode;

        if (f == NULL || f->snap.xml == NULL || node == NULL)
            continue;
        was = g_hash_table_lookup(old_parents, name);
        pnode = f->snap.parent ? snap_tree_lookup(dom->tree, f->snap.parent) : NULL;
        if (snap_node_parent(node) != pnode)
            snap_tree_reparent(dom->tree, node, pnode, NULL);
        if (g_strcmp0(was, parent_name(node)) != 0) {
            snap_op_change(op, SNAP_CHANGE_SNAPSHOT_MOVED, name, parent_name(node), was);
            changed = TRUE;
        }
        if (!snap_node_xml_equal(node, f->snap.xml)) {
            snap_tree_set_xml(node, g_steal_pointer(&f->snap.xml), f->snap.creation_time);
            snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, name, NULL, NULL);
            changed = TRUE;
        }
    }
    if (g_strcmp0(old_current, view.current) != 0) {
        snap_tree_set_current(dom->tree, snap_tree_lookup(dom->tree, view.current));
        snap_op_change(op, SNAP_CHANGE_CURRENT, NULL, NULL, NULL);
        /* metadata.xml of both: <active>1</active> moved. */
        if (old_current && snap_tree_lookup(dom->tree, old_current))
            snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, old_current, NULL, NULL);
        if (view.current)
            snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, view.current, NULL, NULL);
        changed = TRUE;
    }
    if (view.def_xml != NULL && g_strcmp0(view.def_xml, dom->def_xml) != 0) {
        g_free(dom->def_xml);
        dom->def_xml = g_steal_pointer(&view.def_xml);
        snap_op_change(op, SNAP_CHANGE_DOMAIN_FILE, NULL, NULL, NULL);
        changed = TRUE;
    }
    if (changed)
        dom->mtime = g_get_real_time() / G_USEC_PER_SEC;
    g_rw_lock_writer_unlock(&engine->lock);
    retire_all(engine, dom->name, removed_names, FALSE);
    if (view.state != before)
        snap_op_change(op, SNAP_CHANGE_DOMAIN_FILE, NULL, NULL, NULL);
    /* A snapshot deleted here or seen gone loses its cached picture. */
    for (guint i = 0; i < removed_names->len; i++)
        snap_screen_remove(engine, dom->name, removed_names->pdata[i]);
    return TRUE;
}

/* ---- mutations: the backend does them, a refresh shows them ---------- */

gboolean
snap_remote_create(SnapOp *op, const char *in_dir, gboolean in_current, const char *name,
                   GError **error)
{
    SnapDomain *dom = snap_op_domain(op);
    SnapCatalogue *catalogue = dom->engine->catalogue;
    SnapNode *current = snap_tree_get_current(dom->tree);
    g_autofree char *screen = NULL;

    if (snap_tree_lookup(dom->tree, name)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_EXISTS, "snapshot '%s' already exists",
                    name);
        return FALSE;
    }
    if (!in_current && g_strcmp0(in_dir, current ? current->name : NULL) != 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_NOT_CURRENT,
                    "a new snapshot's parent is the current snapshot (%s); create it in "
                    "that directory",
                    current ? current->name : "none: the domain directory");
        return FALSE;
    }
    screen = snap_op_screen_take(op, name);
    if (!catalogue->ops->snapshot_take(catalogue, dom->name, name, NULL, NULL, error)) {
        if (screen != NULL)
            g_unlink(screen);
        return FALSE;
    }
    if (screen != NULL)
        snap_op_screen_keep(op, screen, name);
    snap_remote_refresh(op, 0, NULL);
    return TRUE;
}

gboolean
snap_remote_create_xml(SnapOp *op, const char *xml, GError **error)
{
    SnapDomain *dom = snap_op_domain(op);
    SnapCatalogue *catalogue = dom->engine->catalogue;
    g_autofree char *name = NULL;

    /* As `virsh snapshot-create --validate`: one check for every backend. */
    if (!snapshot_xml_check_schema(xml, strlen(xml), error))
        return FALSE;
    if (!catalogue->ops->snapshot_take(catalogue, dom->name, NULL, xml, &name, error))
        return FALSE;
    snap_remote_refresh(op, 0, name);
    return TRUE;
}

gboolean
snap_remote_delete(SnapOp *op, const char *name, SnapDeleteFlags flags, GError **error)
{
    SnapDomain *dom = snap_op_domain(op);
    SnapCatalogue *catalogue = dom->engine->catalogue;

    SnapEngine *engine = dom->engine;
    g_autoptr(GPtrArray) going = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) sub = NULL;
    SnapNode *node;
    gboolean ok;

    g_rw_lock_reader_lock(&engine->lock);
    node = snap_tree_lookup(dom->tree, name);
    if (node != NULL && (flags & SNAP_DELETE_METADATA_ONLY) == 0) {
        sub = snap_tree_postorder(node, (flags & SNAP_DELETE_CHILDREN_ONLY) == 0);
        for (guint i = 0; i < sub->len; i++) {
            SnapNode *n = sub->pdata[i];

            if (n == node || (flags & (SNAP_DELETE_CHILDREN | SNAP_DELETE_CHILDREN_ONLY)))
                g_ptr_array_add(going, g_strdup(n->name));
        }
    }
    g_rw_lock_reader_unlock(&engine->lock);
    if (node == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND, "snapshot '%s' not found",
                    name);
        return FALSE;
    }
    /* Open disk files of what goes fail, never read what reuses its
     * clusters: their exports stop before libvirt deletes. */
    retire_all(engine, dom->name, going, TRUE);
    ok = catalogue->ops->snapshot_remove(catalogue, dom->name, name, flags, error);
    if (ok)
        snap_remote_refresh(op, 0, NULL);
    retire_all(engine, dom->name, going, FALSE);
    return ok;
}

gboolean
snap_remote_revert(SnapOp *op, const char *name, SnapRevertFlags flags, GError **error)
{
    SnapDomain *dom = snap_op_domain(op);
    SnapCatalogue *catalogue = dom->engine->catalogue;

    if (!catalogue->ops->snapshot_revert(catalogue, dom->name, name, flags, error))
        return FALSE;
    snap_remote_refresh(op, SNAP_REFRESH_DEF, NULL);
    return TRUE;
}

gboolean
snap_remote_action(SnapOp *op, SnapDomainAction action, GError **error)
{
    SnapDomain *dom = snap_op_domain(op);
    SnapBackend *backend = dom->engine->backend;

    if (!backend->ops->action(backend, dom->def, action, error))
        return FALSE;
    snap_remote_refresh(op, SNAP_REFRESH_DEF, NULL);
    return TRUE;
}

gboolean
snap_remote_undefine(SnapOp *op, SnapUndefineMode mode, GError **error)
{
    SnapDomain *dom = snap_op_domain(op);
    SnapCatalogue *catalogue = dom->engine->catalogue;

    if (!catalogue->ops->undefine(catalogue, dom->name, mode, error))
        return FALSE;
    snap_op_unlink_domain(op);
    return TRUE;
}
