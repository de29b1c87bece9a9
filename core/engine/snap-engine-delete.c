/* snap-engine-delete.c: deleting snapshots (data, then metadata); undefining domains. */
#include "snap-engine-ops.h"

#include <string.h>
#include <sys/stat.h>

#include <glib/gstdio.h>

#include "domain-removal.h"
#include "crash-point.h"
#include "journal.h"
#include "snap-external.h"
#include "snapshot-store.h"
#include "snapshot-xml.h"

/* A delete whose commit failed after it may have written into the deleted
 * snapshot's image (never leaves the engine). */
#define MERGE_PARTIAL g_quark_from_static_string("snap-merge-partial")

/* ---- delete --------------------------------------------------------------------- */

/* Every snapshot file and domain.xml that names image @from names @to
 * from now on (a delete merged @from into @to). */
static gboolean
rename_image(SnapOp *op, const char *from, const char *to, GError **error)
{
    SnapDomain *dom = op->dom;
    SnapNode *current = snap_tree_get_current(dom->tree);
    g_autoptr(GPtrArray) all = snap_tree_postorder(snap_tree_metaroot(dom->tree), FALSE);
    g_autoptr(DomainDef) new_def = NULL;

    for (guint i = 0; i < all->len; i++) {
        SnapNode *node = all->pdata[i];
        g_autoptr(SnapshotDef) def = NULL;
        g_autofree char *text = snap_node_xml(node);
        char *xml;

        if (strstr(text, from) == NULL)
            continue;
        def = snapshot_xml_parse(text, strlen(text), error);
        if (def == NULL)
            return FALSE;
        if (!snap_external_rename_file(def, from, to, op->engine->state_dir))
            continue;
        xml = snapshot_xml_format(def, FALSE);
        if (!snap_write_snapshot_file(dom, node->name, xml, node == current, error)) {
            g_free(xml);
            return FALSE;
        }
        g_rw_lock_writer_lock(&op->engine->lock);
        snap_tree_set_xml(node, xml, node->creation_time);
        g_rw_lock_writer_unlock(&op->engine->lock);
        snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, node->name, NULL, NULL);
    }
    new_def = domain_def_parse(dom->def_xml, strlen(dom->def_xml), op->engine->state_dir,
                               error);
    if (new_def == NULL)
        return FALSE;
    if (snap_external_rename_disk(new_def, from, to)) {
        g_autofree char *new_xml = domain_def_format(new_def);

        if (!snap_write_domain_file(dom, new_xml, error))
            return FALSE;
        snap_op_set_domain_def(op, g_steal_pointer(&new_def), g_steal_pointer(&new_xml));
    }
    return TRUE;
}

/* Whether @file was written since @before was taken of it: a commit that
 * failed without writing (it could not open the image) changed nothing. */
static gboolean
image_changed(const char *file, const GStatBuf *before)
{
    GStatBuf now;

    if (g_stat(file, &now) < 0)
        return TRUE;
    return now.st_size != before->st_size ||
           now.st_mtim.tv_sec != before->st_mtim.tv_sec ||
           now.st_mtim.tv_nsec != before->st_mtim.tv_nsec;
}

/* The data of external snapshot @node goes: the steps of its plan (or of
 * the interrupted delete @resume, from its first step not done), each
 * marked done in the journal as it ends. A failure keeps the journal once
 * an image may have changed, so the next start finishes the delete. */
static gboolean
delete_external_data(SnapOp *op, SnapNode *node, const SnapshotDef *def,
                     SnapJournal *resume, GError **error)
{
    SnapDomain *dom = op->dom;
    g_autoptr(GPtrArray) planned = NULL;
    GPtrArray *steps;
    guint first = 0;

    if (resume != NULL && resume->steps != NULL && resume->steps->len > 0) {
        steps = resume->steps;
        first = resume->done;
    } else {
        planned = snap_ext_plan_delete(dom, node, def, error);
        if (planned == NULL)
            return FALSE;
        steps = planned;
    }
    if (!snap_op_journal_intent_files(op, "delete", def->name, NULL, steps, first, error))
        return FALSE;
    snap_crash_point("delete-journaled");
    for (guint i = first; i < steps->len; i++) {
        char **step = steps->pdata[i];
        GStatBuf before;
        gboolean ok;

        if (g_strcmp0(step[0], "commit") == 0 && g_stat(step[2], &before) < 0)
            memset(&before, 0, sizeof(before));
        if (g_strcmp0(step[0], "rename") == 0)
            ok = rename_image(op, step[1], step[2], error);
        else
            ok = snap_ext_run_file_step(dom, node, step, snap_op_progress, op, error);
        if (!ok) {
            /* A commit writes into the deleted snapshot's image; once it
             * may have started, that image no longer holds the snapshot.
             * The merge is left unfinished: what rests on the image still
             * shows its own data, only space is not reclaimed. Every other
             * step leaves each image showing what it showed. */
            snap_op_journal_clear(op);
            if (g_strcmp0(step[0], "commit") == 0 && image_changed(step[2], &before)) {
                g_autofree char *msg =
                    g_strdup_printf("its image '%s' was partly merged with '%s', which "
                                    "still rests on it: "
                                    "%s",
                                    step[2], step[1], (*error)->message);

                g_clear_error(error);
                g_set_error_literal(error, MERGE_PARTIAL, 0, msg);
            }
            return FALSE;
        }
        if (!snap_op_journal_intent_files(op, "delete", def->name, NULL, steps, i + 1,
                                          error))
            return FALSE;
        snap_crash_point("ext-step-done");
    }
    return TRUE;
}

/* Deletes one snapshot: its disk data (unless @metadata_only), then its
 * metadata; its children move to its parent and, when it was current,
 * the parent becomes current. With @write_current FALSE the new current
 * snapshot's file is left for the caller (a subtree delete writes it once
 * at the end). */
static gboolean
delete_one(SnapOp *op, const char *name, gboolean metadata_only, gboolean write_current,
           GError **error)
{
    return snap_op_delete_one_full(op, name, metadata_only, write_current, NULL, error);
}

/* delete_one(), resuming the interrupted delete @resume when not NULL. */
gboolean
snap_op_delete_one_full(SnapOp *op, const char *name, gboolean metadata_only,
                        gboolean write_current, SnapJournal *resume, GError **error)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;
    SnapNode *node = snap_tree_lookup(dom->tree, name);
    SnapNode *parent = snap_node_parent(node);
    SnapNode *current = snap_tree_get_current(dom->tree);
    gboolean was_current = current == node;
    g_autoptr(SnapshotDef) def = snap_node_def(node, error);
    g_autoptr(GPtrArray) child_xml = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) children = g_ptr_array_new();
    g_autofree char *path = NULL;
    g_autofree char *parent_name = parent ? g_strdup(parent->name) : NULL;
    gboolean live = snap_domain_state(engine, dom) != SNAP_DOMAIN_SHUTOFF;
    g_autoptr(GError) merge_error = NULL;

    if (def == NULL)
        return FALSE;
    /* Open disk files of the snapshot must fail, never read what reuses
     * its clusters: their exports stop before its data goes. */
    if (!metadata_only)
        snap_engine_exports_retire(engine, dom->name, name);
    if (!metadata_only && snap_external_is_external(def)) {
        if (!delete_external_data(op, node, def, resume, &merge_error)) {
            /* A commit that started changed the snapshot's own image: its
             * data is gone, so its metadata must go too, and what rests on
             * that image is intact. Anything else changed nothing. */
            if (!g_error_matches(merge_error, MERGE_PARTIAL, 0)) {
                snap_engine_exports_unretire(engine, dom->name, name);
                g_propagate_error(error, g_steal_pointer(&merge_error));
                return FALSE;
            }
        }
        /* The renames may have rewritten these. */
        parent = snap_node_parent(node);
        current = snap_tree_get_current(dom->tree);
    } else {
        /* A metadata-only delete has no intent: recovery would take it for
         * a delete of the disk data. Interrupted, it leaves the children
         * moved up beside a snapshot that is still there, a valid tree. */
        if (!metadata_only &&
            !snap_op_journal_intent(op, "delete", 0, dom->def, def, error)) {
            snap_engine_exports_unretire(engine, dom->name, name);
            return FALSE;
        }
        snap_crash_point("delete-journaled");
        if (!metadata_only &&
            !engine->disk->ops->delete (engine->disk, dom->def, def, snap_op_progress, op,
                                        NULL, error)) {
            snap_engine_exports_unretire(engine, dom->name, name);
            snap_op_journal_settle(op, live, error);
            return FALSE;
        }
    }
    snap_crash_point("delete-disks-done");
    /* From here a failure keeps the journal: the disks changed, and the
     * next start finishes the delete. */
    for (SnapNode *c = node->first_child; c; c = c->next_sibling) {
        g_autoptr(SnapshotDef) cdef = snap_node_def(c, error);
        char *cxml;

        if (cdef == NULL)
            return FALSE;
        g_free(cdef->parent);
        cdef->parent = g_strdup(parent_name);
        cxml = snapshot_xml_format(cdef, FALSE);
        g_ptr_array_add(child_xml, cxml);
        g_ptr_array_add(children, c);
        if (!snap_write_snapshot_file_full(dom, c->name, cxml, c == current,
                                           SNAP_STORE_SYNC_FILE, error))
            return FALSE;
        snap_crash_point("delete-child-written");
    }
    if (was_current && parent && write_current) {
        g_autofree char *xml = snap_node_xml(parent);

        if (!snap_write_snapshot_file_full(dom, parent->name, xml, TRUE,
                                           SNAP_STORE_SYNC_FILE, error))
            return FALSE;
        snap_crash_point("delete-parent-written");
    }
    /* Every file above is in this one directory: syncing it once, after
     * the removal, makes all the renames and the removal durable. */
    path = snap_store_snapshot_path(engine->state_dir, dom->name, name);
    /* The picture goes with the snapshot; a metadata-only delete keeps it
     * for a redefine to bring back. */
    if (!metadata_only)
        snap_screen_remove(engine, dom->name, name);
    if (!snap_store_remove(path, error))
        return FALSE;
    snap_crash_point("delete-metadata-removed");
    snap_op_journal_clear(op);

    g_rw_lock_writer_lock(&engine->lock);
    for (guint i = 0; i < children->len; i++) {
        SnapNode *c = children->pdata[i];

        snap_tree_set_xml(c, g_steal_pointer(&child_xml->pdata[i]), c->creation_time);
    }
    snap_tree_remove(dom->tree, node);
    snap_touch(dom);
    g_rw_lock_writer_unlock(&engine->lock);
    snap_engine_exports_unretire(engine, dom->name, name);

    for (guint i = 0; i < children->len; i++) {
        SnapNode *c = children->pdata[i];

        snap_op_change(op, SNAP_CHANGE_SNAPSHOT_MOVED, c->name, parent_name, name);
        snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, c->name, NULL, NULL);
    }
    snap_op_change(op, SNAP_CHANGE_SNAPSHOT_REMOVED, name, NULL, parent_name);
    if (was_current && write_current) {
        if (parent_name)
            snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, parent_name, NULL, NULL);
        snap_op_change(op, SNAP_CHANGE_CURRENT, NULL, NULL, NULL);
    }
    if (merge_error != NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "snapshot '%s' is deleted, but %s", name, merge_error->message);
        return FALSE;
    }
    return TRUE;
}

gboolean
snap_op_delete(SnapOp *op, GError **error)
{
    SnapDomain *dom = op->dom;
    SnapNode *node = snap_tree_lookup(dom->tree, op->name);
    gboolean metadata_only = (op->flags & SNAP_DELETE_METADATA_ONLY) != 0;
    g_autoptr(GPtrArray) order = NULL;
    g_autoptr(GPtrArray) names = NULL;
    g_autofree char *old_name = NULL;
    SnapNode *old_current;
    SnapNode *new_current;

    if (node == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND, "snapshot '%s' not found",
                    op->name);
        return FALSE;
    }
    if (!snap_op_check_cancelled(op, error))
        return FALSE;
    if (!(op->flags & (SNAP_DELETE_CHILDREN | SNAP_DELETE_CHILDREN_ONLY))) {
        if (!delete_one(op, op->name, metadata_only, TRUE, error))
            return FALSE;
        /* The disks keep what .forget drops: the name stays taken there. */
        if (metadata_only)
            snap_domain_orphan_add(dom, op->name);
        return TRUE;
    }

    /* Post-order: every snapshot deleted is a leaf by then, so nothing is
     * re-parented, and `current` climbs to the first survivor. */
    order = snap_tree_postorder(node, (op->flags & SNAP_DELETE_CHILDREN) != 0);
    names = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < order->len; i++)
        g_ptr_array_add(names, g_strdup(((SnapNode *)order->pdata[i])->name));
    old_current = snap_tree_get_current(dom->tree);
    old_name = old_current ? g_strdup(old_current->name) : NULL;
    for (guint i = 0; i < names->len; i++) {
        if (!delete_one(op, names->pdata[i], metadata_only, FALSE, error))
            return FALSE;
        if (metadata_only)
            snap_domain_orphan_add(dom, names->pdata[i]);
    }
    new_current = snap_tree_get_current(dom->tree);
    if (g_strcmp0(old_name, new_current ? new_current->name : NULL) != 0) {
        g_autofree char *xml = new_current ? snap_node_xml(new_current) : NULL;

        if (new_current &&
            !snap_write_snapshot_file(dom, new_current->name, xml, TRUE, error))
            return FALSE;
        if (new_current)
            snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, new_current->name, NULL, NULL);
        snap_op_change(op, SNAP_CHANGE_CURRENT, NULL, NULL, NULL);
    }
    return TRUE;
}

/* ---- undefine ------------------------------------------------------------------ */

const char *
snap_undefine_word(SnapUndefineMode mode)
{
    return mode == SNAP_UNDEFINE_FULL ? "full" : "metadata";
}

/* The domain leaves the table (readers no longer find it) and its worker
 * answers NOT_FOUND from now on; its memory stays until the engine goes. */
static void
unlink_domain(SnapOp *op)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;

    g_rw_lock_writer_lock(&engine->lock);
    g_hash_table_steal(engine->domains, dom->name);
    dom->removed = TRUE;
    g_ptr_array_add(engine->removed, dom);
    g_rw_lock_writer_unlock(&engine->lock);
    snap_op_change(op, SNAP_CHANGE_DOMAIN_REMOVED, NULL, NULL, NULL);
}

void
snap_op_unlink_domain(SnapOp *op)
{
    unlink_domain(op);
}

/* Every file another domain still opens, now or from one of its
 * snapshots: the files its definition and its snapshots name, read
 * under the lock, then their backing chains (qemu-img, outside it). */
static GHashTable *
files_in_use(SnapOp *op, GError **error)
{
    SnapEngine *engine = op->engine;
    g_autoptr(GHashTable) in_use = domain_removal_in_use_new();
    g_autoptr(GPtrArray) named = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) named_formats = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter iter;
    gpointer value;

    g_rw_lock_reader_lock(&engine->lock);
    g_hash_table_iter_init(&iter, engine->domains);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        SnapDomain *od = value;
        g_autoptr(GPtrArray) nodes = NULL;
        g_autoptr(GPtrArray) xmls = g_ptr_array_new_with_free_func(g_free);
        g_autoptr(GPtrArray) files = NULL;
        g_autoptr(GPtrArray) formats = NULL;

        if (od == op->dom)
            continue;
        nodes = snap_tree_list(od->tree, NULL, SNAP_LIST_ALL);
        for (guint i = 0; i < nodes->len; i++)
            g_ptr_array_add(xmls, snap_node_xml(nodes->pdata[i]));
        files = domain_removal_files(od->def, xmls, engine->state_dir, &formats);
        for (guint i = 0; i < files->len; i++) {
            g_ptr_array_add(named, g_steal_pointer(&files->pdata[i]));
            g_ptr_array_add(named_formats, g_steal_pointer(&formats->pdata[i]));
        }
    }
    g_rw_lock_reader_unlock(&engine->lock);
    for (guint i = 0; i < named->len; i++) {
        g_autoptr(GError) local = NULL;

        if (!domain_removal_add_chain(in_use, named->pdata[i], named_formats->pdata[i],
                                      op->cancellable, &local)) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "cannot tell whether another domain uses its files: %s; "
                        "nothing removed",
                        local->message);
            return NULL;
        }
    }
    return g_steal_pointer(&in_use);
}

/* The files of a full removal that no other domain or snapshot opens,
 * by any name or as a backing file. */
static GPtrArray *
undefine_files(SnapOp *op, GError **error)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;
    g_autoptr(GPtrArray) nodes = snap_tree_list(dom->tree, NULL, SNAP_LIST_ALL);
    g_autoptr(GPtrArray) xmls = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) named = NULL;
    g_autoptr(GHashTable) in_use = files_in_use(op, error);
    GPtrArray *files;

    if (in_use == NULL)
        return NULL;
    files = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < nodes->len; i++)
        g_ptr_array_add(xmls, snap_node_xml(nodes->pdata[i]));
    named = domain_removal_files(dom->def, xmls, engine->state_dir, NULL);
    for (guint i = 0; i < named->len; i++) {
        const char *file = named->pdata[i];

        if (domain_removal_is_in_use(in_use, file))
            g_debug("%s: undefine full keeps '%s': another domain uses it", dom->name,
                    file);
        else
            g_ptr_array_add(files, g_strdup(file));
    }
    return files;
}

/* The journaled steps of an undefine, also what recovery repeats:
 * snapshot metadata, @files, the definition (from here the domain no
 * longer loads), run files, and last the intent itself. */
gboolean
snap_op_undefine_steps(SnapOp *op, GPtrArray *files, GError **error)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;
    g_autoptr(GPtrArray) all = snap_tree_postorder(snap_tree_metaroot(dom->tree), FALSE);

    /* Open disk files of its snapshots fail from here: their images go. */
    for (guint i = 0; i < all->len; i++)
        snap_engine_exports_retire(engine, dom->name, ((SnapNode *)all->pdata[i])->name);
    if (!domain_removal_run(engine->state_dir, dom->name, files, error))
        return FALSE;
    if (!snap_journal_unlink(engine->state_dir, dom->name, error))
        return FALSE;
    unlink_domain(op);
    return TRUE;
}

gboolean
snap_op_undefine(SnapOp *op, GError **error)
{
    SnapDomain *dom = op->dom;
    SnapUndefineMode mode = (SnapUndefineMode)op->flags;
    g_autoptr(GPtrArray) files = NULL;

    if (snap_domain_state(op->engine, dom) != SNAP_DOMAIN_SHUTOFF) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_BUSY,
                    "domain %s is not shut off; stop it (write destroy or shutdown to "
                    "state) before undefining it",
                    dom->name);
        return FALSE;
    }
    if (!snap_op_check_cancelled(op, error))
        return FALSE;
    files = mode == SNAP_UNDEFINE_FULL ? undefine_files(op, error)
                                       : g_ptr_array_new_with_free_func(g_free);
    if (files == NULL)
        return FALSE;
    if (!snap_journal_write(op->engine->state_dir, dom->name, "undefine",
                            snap_undefine_word(mode), 0, files, error))
        return FALSE;
    /* From here a failure keeps the intent: the next start finishes it. */
    return snap_op_undefine_steps(op, files, error);
}
