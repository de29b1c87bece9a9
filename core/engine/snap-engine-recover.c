/* snap-engine-recover.c: finishing or rolling back the operation the journal names. */
#include "snap-engine-ops.h"

#include <string.h>

#include <glib/gstdio.h>

#include "journal.h"
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
    SnapDiskBackend *backend = op->engine->disk;
    g_autoptr(SnapshotDef) def = snapshot_def_new();
    g_autoptr(GError) local = NULL;
    gboolean live = snap_domain_state(op->engine, op->dom) != SNAP_DOMAIN_SHUTOFF;

    *n = 0;
    def->name = g_strdup(tag);
    def->has_disks = TRUE;
    for (guint i = 0; i < paths->len; i++) {
        const char *file = paths->pdata[i];
        g_autoptr(GPtrArray) snaps =
            backend->ops->image_tags(backend, file, "qcow2", NULL, &local);
        gboolean has = FALSE;

        for (guint j = 0; snaps && j < snaps->len; j++)
            has = has || g_strcmp0(((SnapImageTag *)snaps->pdata[j])->name, tag) == 0;
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
    SnapDiskBackend *backend = op->engine->disk;
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
    SnapDiskBackend *backend = op->engine->disk;

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

/* What recovery sees of one intent. */
typedef struct {
    SnapOp *op;
    SnapJournal *j;
    SnapNode *node;       /* the snapshot the intent names, if in the tree */
    GPtrArray *problems;  /* of char*: reported, not fatal */
    SnapshotDef *ext_def; /* an external create's metadata (step "metadata") */
    const char *ext_xml;  /* the same, as journaled */
} Recovery;

/* ---- conditions (RECOVERY_POLICY's "when") ---- */

static gboolean
ext_create_files_missing(Recovery *r)
{
    return r->node == NULL && !external_files_made(r->op, r->ext_def);
}

static gboolean
ext_revert_not_switched(Recovery *r)
{
    char **target = journal_step(r->j, "domain");
    const char *xml = target != NULL && target[1] != NULL ? target[1] : "";

    return r->node == NULL || g_strcmp0(xml, r->op->dom->def_xml) != 0;
}

static gboolean
metadata_file_exists(Recovery *r)
{
    g_autofree char *path = snap_store_snapshot_path(r->op->engine->state_dir,
                                                     r->op->dom->name, r->j->snapshot);

    return g_file_test(path, G_FILE_TEST_EXISTS);
}

static gboolean
snapshot_in_tree(Recovery *r)
{
    return r->node != NULL;
}

static gboolean
snapshot_gone(Recovery *r)
{
    return r->node == NULL;
}

static gboolean
guest_runs(Recovery *r)
{
    return snap_domain_state(r->op->engine, r->op->dom) == SNAP_DOMAIN_RUNNING;
}

/* ---- actions (RECOVERY_POLICY's "do"): a report line, or NULL and @error ---- */

static char *
remove_ext_files(Recovery *r, GError **error)
{
    guint n = remove_made_files(r->op, r->j->disks, r->problems);

    (void)error;
    return g_strdup_printf("recovered: rolled back the interrupted %s of '%s' (removed "
                           "%u of %u files it made)",
                           r->j->op, r->j->snapshot, n, r->j->disks->len);
}

/* An external create whose files were made: the user asked for it, and a
 * running QEMU may write to the overlays already. */
static char *
finish_ext_create(Recovery *r, GError **error)
{
    SnapOp *op = r->op;
    SnapDomain *dom = op->dom;
    SnapshotDef *def = r->ext_def;
    const char *xml = r->ext_xml;
    SnapNode *old = snap_tree_get_current(dom->tree);
    SnapNode *added = NULL;

    if (r->node == NULL) {
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
                           r->j->snapshot);
}

/* An external revert whose domain.xml names the new overlays: the
 * current snapshot, and the overlays left behind go. */
static char *
finish_ext_revert(Recovery *r, GError **error)
{
    SnapOp *op = r->op;
    SnapDomain *dom = op->dom;
    SnapNode *node = r->node;
    SnapNode *old = snap_tree_get_current(dom->tree);
    g_autoptr(GPtrArray) abandoned = g_ptr_array_new_with_free_func(g_free);

    if (old != node) {
        g_autofree char *xml = snap_node_xml(node);

        if (!snap_write_snapshot_file(dom, node->name, xml, TRUE, error))
            return NULL;
        snap_op_rewrite_inactive(op, old);
        g_rw_lock_writer_lock(&op->engine->lock);
        snap_tree_set_current(dom->tree, node);
        g_rw_lock_writer_unlock(&op->engine->lock);
        snap_op_change(op, SNAP_CHANGE_CURRENT, NULL, NULL, NULL);
    }
    for (guint i = 0; i < r->j->steps->len; i++) {
        char **step = r->j->steps->pdata[i];

        if (g_strcmp0(step[0], "abandon") == 0 &&
            g_file_test(step[1], G_FILE_TEST_EXISTS))
            g_ptr_array_add(abandoned, g_strdup(step[1]));
    }
    snap_op_drop_abandoned(op, abandoned);
    return g_strdup_printf("recovered: finished the interrupted revert to '%s'",
                           r->j->snapshot);
}

static char *
create_was_done(Recovery *r, GError **error)
{
    (void)error;
    return g_strdup_printf("recovered: the interrupted create of '%s' had completed",
                           r->j->snapshot);
}

static char *
remove_create_tags(Recovery *r, GError **error)
{
    guint n = 0;

    (void)error;
    snap_screen_remove(r->op->engine, r->op->dom->name, r->j->snapshot);
    if (!remove_tags(r->op, r->j->disks, r->j->snapshot, r->problems, &n))
        return NULL;
    return g_strdup_printf("recovered: rolled back the interrupted create of '%s' "
                           "(removed from %u of %u disks)",
                           r->j->snapshot, n, r->j->disks->len);
}

static char *
finish_delete(Recovery *r, GError **error)
{
    if (!snap_op_delete_one_full(r->op, r->j->snapshot, FALSE, TRUE, r->j, error))
        return NULL;
    return g_strdup_printf("recovered: finished the interrupted delete of '%s'",
                           r->j->snapshot);
}

static char *
finish_delete_tags(Recovery *r, GError **error)
{
    guint n = 0;

    (void)error;
    if (!remove_tags(r->op, r->j->disks, r->j->snapshot, r->problems, &n))
        return NULL;
    return g_strdup_printf("recovered: finished the interrupted delete of '%s' (removed "
                           "from %u disks)",
                           r->j->snapshot, n);
}

static char *
revert_target_gone(Recovery *r, GError **error)
{
    (void)error;
    return g_strdup_printf("recovered: the interrupted revert to '%s' cannot be "
                           "finished: no such snapshot",
                           r->j->snapshot);
}

static char *
finish_revert_metadata(Recovery *r, GError **error)
{
    char **disks_done = journal_step(r->j, "disks-done");
    const char *run = disks_done != NULL ? disks_done[1] : NULL;

    if (!snap_op_finish_revert(r->op, r->node, r->j->flags, run, error))
        return NULL;
    return g_strdup_printf(
        "recovered: finished the interrupted revert to '%s' (its disks "
        "were done: wrote the metadata, left the disks as they are)",
        r->j->snapshot);
}

static char *
drop_revert(Recovery *r, GError **error)
{
    SnapNode *old = snap_tree_get_current(r->op->dom->tree);

    (void)error;
    return g_strdup_printf("recovered: the interrupted revert to '%s' never reached the "
                           "disks (the guest still runs), so it was not re-applied; the "
                           "current snapshot stays '%s'",
                           r->j->snapshot, old != NULL ? old->name : "(none)");
}

static char *
reapply_revert(Recovery *r, GError **error)
{
    if (!snap_op_do_revert(r->op, r->node, r->j->flags, error))
        return NULL;
    return g_strdup_printf("recovered: re-applied the interrupted revert to '%s' (no "
                           "guest had run on its disks since)",
                           r->j->snapshot);
}

/* RECOVERY_POLICY: what recovery does with a leftover intent, the one
 * place this is decided. Rows are tried in order; the first whose
 * operation matches, whose step the journal holds (NULL: any) and whose
 * condition holds (NULL: always) decides. "forward" finishes what the
 * user asked for, "back" undoes what was started. An undefine is always
 * finished (snap_op_recover(), before this table: the domain goes).
 *
 * Why a revert is never re-applied once a guest may have run on its
 * disks: the backend reverts with the CPUs stopped (or the domain shut
 * off), and the engine journals "disks-done" before it starts or resumes
 * the guest; so without "disks-done" a running guest was never reverted,
 * and with it only the metadata (and the run state, while the QEMU is the
 * one the step saw) is left to do. */
static const struct {
    const char *op;
    const char *step; /* a journaled step, or NULL */
    gboolean (*when)(Recovery *r);
    const char *direction; /* "forward" or "back", for readers */
    char *(*run)(Recovery *r, GError **error);
} recovery_policy[] = {
    {"create", "metadata", ext_create_files_missing, "back", remove_ext_files},
    {"create", "metadata", NULL, "forward", finish_ext_create},
    {"create", NULL, metadata_file_exists, "forward", create_was_done},
    {"create", NULL, NULL, "back", remove_create_tags},
    {"delete", NULL, snapshot_in_tree, "forward", finish_delete},
    {"delete", NULL, NULL, "forward", finish_delete_tags},
    {"revert", "domain", ext_revert_not_switched, "back", remove_ext_files},
    {"revert", "domain", NULL, "forward", finish_ext_revert},
    {"revert", NULL, snapshot_gone, "back", revert_target_gone},
    {"revert", "disks-done", NULL, "forward", finish_revert_metadata},
    {"revert", NULL, guest_runs, "back", drop_revert},
    {"revert", NULL, NULL, "forward", reapply_revert},
};

/* The first row of RECOVERY_POLICY that applies to @r, run; NULL and
 * @error when it failed, a report line for an unknown operation. */
static char *
recover_by_policy(Recovery *r, GError **error)
{
    for (guint i = 0; i < G_N_ELEMENTS(recovery_policy); i++) {
        if (!g_str_equal(recovery_policy[i].op, r->j->op) ||
            (recovery_policy[i].step != NULL &&
             journal_step(r->j, recovery_policy[i].step) == NULL) ||
            (recovery_policy[i].when != NULL && !recovery_policy[i].when(r)))
            continue;
        g_debug("%s: recovering %s of '%s': %s", r->op->dom->name, r->j->op,
                r->j->snapshot, recovery_policy[i].direction);
        return recovery_policy[i].run(r, error);
    }
    return g_strdup_printf(
        "recovered: ignored a journal entry for unknown operation '%s'", r->j->op);
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
    g_autoptr(SnapshotDef) ext_def = NULL;
    Recovery r = {0};

    /* What the interrupted operation's deferred work would have done:
     * the old current snapshot's file loses its <active>. */
    for (guint i = 0; dom->stale_active && i < dom->stale_active->len; i++) {
        SnapNode *stale = snap_tree_lookup(dom->tree, dom->stale_active->pdata[i]);
        g_autoptr(GError) local = NULL;
        g_autofree char *xml = stale ? snap_node_xml(stale) : NULL;

        if (stale != NULL && stale != snap_tree_get_current(dom->tree) &&
            !snap_write_snapshot_file(dom, stale->name, xml, FALSE, &local))
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
    r.op = op;
    r.j = j;
    r.node = snap_tree_lookup(dom->tree, j->snapshot);
    r.problems = problems;
    if (g_str_equal(j->op, "create") && journal_step(j, "metadata") != NULL) {
        char **meta = journal_step(j, "metadata");

        r.ext_xml = meta != NULL && meta[1] != NULL ? meta[1] : "";
        r.ext_def = ext_def = snapshot_xml_parse(r.ext_xml, strlen(r.ext_xml), &error);
    }
    if (error == NULL)
        done = recover_by_policy(&r, &error);
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
