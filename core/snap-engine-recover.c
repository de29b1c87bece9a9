/* snap-engine-recover.c: finishing or rolling back the operation the journal names. */
#include "snap-engine-private.h"

#include <string.h>

#include <glib/gstdio.h>

#include "journal.h"
#include "qemu-img.h"
#include "snap-disks.h"
#include "snapshot-store.h"
#include "snapshot-xml.h"

/* Removes @tag from the image files @paths that still hold it, through
 * the backend: a running QEMU holds its images, and only it can change
 * them then. Files the domain no longer has are left alone. @n: how many
 * held it. FALSE when the backend failed (said in @problems). */
static gboolean
remove_tags(SnapOp *op, GPtrArray *paths, const char *tag, GPtrArray *problems, guint *n)
{
    SnapBackend *backend = op->engine->backend;
    g_autoptr(SnapshotDef) def = snapshot_def_new();
    g_autoptr(GError) local = NULL;
    gboolean live = snap_domain_state(op->engine, op->dom) != SNAP_DOMAIN_SHUTOFF;

    *n = 0;
    def->name = g_strdup(tag);
    def->has_disks = TRUE;
    for (guint i = 0; i < paths->len; i++) {
        const char *file = paths->pdata[i];
        g_autoptr(GPtrArray) snaps = qemu_img_info(file, NULL, NULL, NULL, &local);
        gboolean has = FALSE;

        for (guint j = 0; snaps && j < snaps->len; j++)
            has = has || g_strcmp0(((QemuImgSnapshot *)snaps->pdata[j])->name, tag) == 0;
        if (local != NULL) {
            g_ptr_array_add(problems, g_strdup_printf("%s: %s", file, local->message));
            g_clear_error(&local);
        }
        *n += has;
        /* A running QEMU may still be finishing a job that adds the tag:
         * its snapshot-delete waits for that job, and skips a disk that
         * does not hold the tag. */
        if (has || live) {
            SnapshotDiskDef *disk = g_new0(SnapshotDiskDef, 1);

            disk->name = g_strdup(file);
            disk->snapshot = DISK_SNAPSHOT_INTERNAL;
            g_ptr_array_add(def->disks, disk);
        }
    }
    if (def->disks->len == 0)
        return TRUE;
    if (!backend->ops->delete (backend, op->dom->def, def, NULL, NULL, NULL, &local)) {
        g_ptr_array_add(problems, g_strdup(local->message));
        return FALSE;
    }
    return TRUE;
}

/* The first step of @j whose verb is @verb, or NULL. */
static char **
journal_step(SnapJournal *j, const char *verb)
{
    for (guint i = 0; j->steps && i < j->steps->len; i++) {
        char **step = j->steps->pdata[i];

        if (g_strcmp0(step[0], verb) == 0)
            return step;
    }
    return NULL;
}

/* Removes the files an interrupted operation made, unless something uses
 * them (a running QEMU, a snapshot); returns how many went. */
static guint
remove_made_files(SnapOp *op, GPtrArray *files, GPtrArray *problems)
{
    SnapBackend *backend = op->engine->backend;
    guint n = 0;

    for (guint i = 0; i < files->len; i++) {
        g_autoptr(GError) local = NULL;

        if (!g_file_test(files->pdata[i], G_FILE_TEST_EXISTS))
            continue;
        if (snap_ext_verify_unused(op->dom, files->pdata[i], NULL, &local) &&
            backend->ops->remove_image(backend, op->dom->def, files->pdata[i], &local))
            n++;
        else
            g_ptr_array_add(problems, g_strdup(local->message));
    }
    return n;
}

/* TRUE when every overlay and memory file of external snapshot @def was
 * made: each overlay rests on the disk's image, the memory file is not
 * empty. */
static gboolean
external_files_made(SnapOp *op, const SnapshotDef *def)
{
    SnapBackend *backend = op->engine->backend;

    for (guint i = 0; def->disks && i < def->disks->len; i++) {
        SnapshotDiskDef *sd = def->disks->pdata[i];
        DomainDisk *disk = snap_disk_resolve(op->dom->def, sd->name);
        g_autoptr(GPtrArray) chain = NULL;

        if (sd->snapshot != DISK_SNAPSHOT_EXTERNAL)
            continue;
        if (disk == NULL || sd->source_file == NULL)
            return FALSE;
        /* Switched already: the domain runs on the overlay. */
        if (g_strcmp0(disk->source, sd->source_file) == 0)
            continue;
        chain = backend->ops->image_chain(backend, op->dom->def, sd->source_file, NULL);
        if (chain == NULL || chain->len < 2 ||
            g_strcmp0(((SnapImageLayer *)chain->pdata[1])->file, disk->source) != 0)
            return FALSE;
    }
    if (def->memory == SNAP_MEMORY_EXTERNAL) {
        GStatBuf st;

        if (def->memory_file == NULL || g_stat(def->memory_file, &st) < 0 ||
            st.st_size == 0)
            return FALSE;
    }
    return TRUE;
}

/* An external create that stopped after its files were made is finished
 * (the user asked for it, and a running QEMU may write to the overlays
 * already); one that stopped before is undone. */
static char *
recover_external_create(SnapOp *op, SnapJournal *j, SnapNode *node, GPtrArray *problems,
                        GError **error)
{
    SnapDomain *dom = op->dom;
    char **meta = journal_step(j, "metadata");
    const char *xml = meta != NULL && meta[1] != NULL ? meta[1] : "";
    g_autoptr(SnapshotDef) def = snapshot_xml_parse(xml, strlen(xml), error);
    SnapNode *old = snap_tree_get_current(dom->tree);
    SnapNode *added = NULL;

    if (def == NULL)
        return NULL;
    if (node == NULL && !external_files_made(op, def)) {
        guint n = remove_made_files(op, j->disks, problems);

        return g_strdup_printf("recovered: rolled back the interrupted create of '%s' "
                               "(removed %u of %u files)",
                               j->snapshot, n, j->disks->len);
    }
    if (node == NULL) {
        if (!snap_write_snapshot_file(dom, def->name, xml, TRUE, error))
            return NULL;
        g_rw_lock_writer_lock(&op->engine->lock);
        snap_tree_add(dom->tree, def->name, old, def->creation_time, g_strdup(xml),
                      &added, NULL);
        snap_tree_set_current(dom->tree, added);
        snap_touch(dom);
        g_rw_lock_writer_unlock(&op->engine->lock);
        snap_op_rewrite_inactive(op, old);
        snap_op_change(op, SNAP_CHANGE_SNAPSHOT_ADDED, def->name, old ? old->name : NULL,
                       NULL);
        snap_op_change(op, SNAP_CHANGE_CURRENT, NULL, NULL, NULL);
    }
    if (!snap_op_switch_to_overlays(op, def, error))
        return NULL;
    return g_strdup_printf("recovered: finished the interrupted create of '%s'",
                           j->snapshot);
}

/* An external revert whose domain.xml names the new overlays is finished
 * (current snapshot, overlays left behind); one that stopped before loses
 * the overlays it made, and the domain stays where it was. */
static char *
recover_external_revert(SnapOp *op, SnapJournal *j, SnapNode *node, GPtrArray *problems,
                        GError **error)
{
    SnapDomain *dom = op->dom;
    char **target = journal_step(j, "domain");
    const char *target_xml = target != NULL && target[1] != NULL ? target[1] : "";
    SnapNode *old = snap_tree_get_current(dom->tree);
    g_autoptr(GPtrArray) abandoned = g_ptr_array_new_with_free_func(g_free);

    if (node == NULL || g_strcmp0(target_xml, dom->def_xml) != 0) {
        guint n = remove_made_files(op, j->disks, problems);

        return g_strdup_printf("recovered: rolled back the interrupted revert to '%s' "
                               "(removed %u of %u new overlays)",
                               j->snapshot, n, j->disks->len);
    }
    if (old != node) {
        if (!snap_write_snapshot_file(dom, node->name, node->xml, TRUE, error))
            return NULL;
        snap_op_rewrite_inactive(op, old);
        g_rw_lock_writer_lock(&op->engine->lock);
        snap_tree_set_current(dom->tree, node);
        g_rw_lock_writer_unlock(&op->engine->lock);
        snap_op_change(op, SNAP_CHANGE_CURRENT, NULL, NULL, NULL);
    }
    for (guint i = 0; i < j->steps->len; i++) {
        char **step = j->steps->pdata[i];

        if (g_strcmp0(step[0], "abandon") == 0 &&
            g_file_test(step[1], G_FILE_TEST_EXISTS))
            g_ptr_array_add(abandoned, g_strdup(step[1]));
    }
    snap_op_drop_abandoned(op, abandoned);
    return g_strdup_printf("recovered: finished the interrupted revert to '%s'",
                           j->snapshot);
}

/* Finishes or rolls back the operation the journal names, at start or
 * (@label: the operation waiting for it) before the domain's next
 * operation. FALSE when the intent stays: recovering failed. */
gboolean
snap_op_recover(SnapOp *op, const char *label)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;
    g_autoptr(GError) error = NULL;
    g_autoptr(SnapJournal) j = snap_journal_read(engine->state_dir, dom->name, &error);
    g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *done = NULL;
    SnapNode *node;

    /* What the interrupted operation's deferred work would have done:
     * the old current snapshot's file loses its <active>. */
    for (guint i = 0; dom->stale_active && i < dom->stale_active->len; i++) {
        SnapNode *stale = snap_tree_lookup(dom->tree, dom->stale_active->pdata[i]);
        g_autoptr(GError) local = NULL;

        if (stale != NULL && stale != snap_tree_get_current(dom->tree) &&
            !snap_write_snapshot_file(dom, stale->name, stale->xml, FALSE, &local))
            snap_op_report(op, label, local->message);
    }
    g_clear_pointer(&dom->stale_active, g_ptr_array_unref);
    if (j == NULL) {
        /* An intent that does not parse was cut short while being
         * written: nothing of it reached a disk. */
        if (error) {
            g_autofree char *msg = g_strdup_printf(
                "%s; it was being written when snaptreefs stopped, before any "
                "disk was touched, and is cleared",
                error->message);

            snap_op_report(op, label, msg);
            snap_op_journal_clear(op);
        }
        return TRUE;
    }
    if (g_str_equal(j->op, "undefine")) {
        /* The domain goes: nothing is left to report into. */
        if (snap_op_undefine_steps(op, j->disks, &error))
            g_debug("%s: recovered: finished the interrupted undefine (%s)", dom->name,
                    j->snapshot);
        else
            snap_op_report(op, label, error->message);
        return TRUE;
    }
    node = snap_tree_lookup(dom->tree, j->snapshot);
    if (journal_step(j, "metadata") != NULL && g_str_equal(j->op, "create")) {
        done = recover_external_create(op, j, node, problems, &error);
    } else if (journal_step(j, "domain") != NULL && g_str_equal(j->op, "revert")) {
        done = recover_external_revert(op, j, node, problems, &error);
    } else if (g_str_equal(j->op, "create")) {
        g_autofree char *path =
            snap_store_snapshot_path(engine->state_dir, dom->name, j->snapshot);

        if (g_file_test(path, G_FILE_TEST_EXISTS)) {
            done = g_strdup_printf(
                "recovered: the interrupted create of '%s' had completed", j->snapshot);
        } else {
            guint n = 0;

            snap_screen_remove(engine, dom->name, j->snapshot);
            if (remove_tags(op, j->disks, j->snapshot, problems, &n))
                done = g_strdup_printf(
                    "recovered: rolled back the interrupted create of '%s' "
                    "(removed from %u of %u disks)",
                    j->snapshot, n, j->disks->len);
        }
    } else if (g_str_equal(j->op, "delete")) {
        if (node != NULL) {
            if (snap_op_delete_one_full(op, j->snapshot, FALSE, TRUE, j, &error))
                done = g_strdup_printf(
                    "recovered: finished the interrupted delete of '%s'", j->snapshot);
        } else {
            guint n = 0;

            if (remove_tags(op, j->disks, j->snapshot, problems, &n))
                done = g_strdup_printf("recovered: finished the interrupted delete of "
                                       "'%s' (removed from %u disks)",
                                       j->snapshot, n);
        }
    } else if (g_str_equal(j->op, "revert")) {
        if (node == NULL)
            done = g_strdup_printf("recovered: the interrupted revert to '%s' cannot be "
                                   "re-applied: no such snapshot",
                                   j->snapshot);
        else if (snap_op_do_revert(op, node, j->flags, &error))
            done = g_strdup_printf("recovered: re-applied the interrupted revert to '%s'",
                                   j->snapshot);
    } else {
        done = g_strdup_printf("recovered: ignored a journal entry for unknown operation "
                               "'%s'",
                               j->op);
    }
    for (guint i = 0; i < problems->len; i++)
        snap_op_report(op, label, problems->pdata[i]);
    if (done == NULL) {
        g_autofree char *msg =
            g_strdup_printf("recovering the interrupted %s of '%s' "
                            "failed: %s",
                            j->op, j->snapshot, error ? error->message : "unknown error");

        snap_op_report(op, label, msg);
        return FALSE;
    }
    snap_op_report(op, label, done);
    snap_op_journal_clear(op);
    return TRUE;
}
