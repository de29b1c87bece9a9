/* snap-engine-op.c: an operation's life (made, answered, its deferred file
 * work, freed), its change events, reports and progress, and the file and
 * journal helpers every operation shares. Below the operations: calls
 * none of them, nor the dispatcher. */
#include "snap-engine-private.h"

#include "crash-point.h"
#include "journal.h"
#include "qemu-cmdline.h"
#include "snap-disks.h"
#include "snapshot-store.h"
#include "snapshot-xml.h"

static void
pending_change_clear(gpointer data)
{
    PendingChange *c = data;

    g_free(c->snapshot);
    g_free(c->parent);
    g_free(c->old_parent);
    g_free(c->message);
}

void
snap_op_free(SnapOp *op)
{
    g_free(op->post_inactive);
    g_free(op->domain_name);
    g_free(op->name);
    g_free(op->in_dir);
    g_free(op->xml);
    g_clear_object(&op->cancellable);
    g_free(op->opname);
    g_array_unref(op->changes);
    g_free(op);
}

SnapOp *
snap_op_new(SnapEngine *engine, OpKind kind, const char *domain,
            GCancellable *cancellable, SnapDoneFunc done, gpointer user_data)
{
    SnapOp *op = g_new0(SnapOp, 1);

    op->kind = kind;
    op->engine = engine;
    op->domain_name = g_strdup(domain);
    op->dom = snap_engine_find_domain(engine, domain);
    op->cancellable = cancellable ? g_object_ref(cancellable) : NULL;
    op->done = done;
    op->user_data = user_data;
    op->changes = g_array_new(FALSE, TRUE, sizeof(PendingChange));
    g_array_set_clear_func(op->changes, pending_change_clear);
    return op;
}

SnapDomain *
snap_op_domain(SnapOp *op)
{
    return op->dom;
}

void
snap_op_change(SnapOp *op, SnapChangeKind kind, const char *snapshot, const char *parent,
               const char *old_parent)
{
    PendingChange c = {
        .kind = kind,
        .snapshot = g_strdup(snapshot),
        .parent = g_strdup(parent),
        .old_parent = g_strdup(old_parent),
    };

    g_array_append_val(op->changes, c);
}

void
snap_engine_emit_change(SnapEngine *engine, const char *domain, const PendingChange *c)
{
    SnapChangeFunc func;
    gpointer data;
    SnapChange change = {
        .kind = c->kind,
        .domain = domain,
        .snapshot = c->snapshot,
        .parent = c->parent,
        .old_parent = c->old_parent,
        .message = c->message,
    };

    g_rw_lock_reader_lock(&engine->lock);
    func = engine->change_func;
    data = engine->change_data;
    g_rw_lock_reader_unlock(&engine->lock);
    if (func)
        func(&change, data);
}

void
snap_op_report(SnapOp *op, const char *operation, const char *message)
{
    SnapDomain *dom = op->dom;
    PendingChange c = {.kind = SNAP_CHANGE_ERROR};
    /* The log line is the errors line: one line, whatever the name. */
    g_autofree char *op_text = error_log_printable(operation);

    g_debug("%s: %s: %s", dom->name, op_text, message);
    g_rw_lock_writer_lock(&op->engine->lock);
    error_log_add(dom->errors, operation, message);
    dom->mtime = g_get_real_time() / G_USEC_PER_SEC;
    g_rw_lock_writer_unlock(&op->engine->lock);

    c.message = g_strdup_printf("%s: %s", op_text, message);
    g_array_append_val(op->changes, c);
    op->domain_file_changed = TRUE;
}

/* Shows what a long step does in the `job` file; the event goes out at
 * once so a reader polling `job` sees the progress. */
void
snap_op_progress(const char *what, gpointer data)
{
    SnapOp *op = data;
    SnapDomain *dom = op->dom;
    g_autofree char *job = g_strdup_printf("%s: %s\n", op->opname, what);
    PendingChange c = {.kind = SNAP_CHANGE_DOMAIN_FILE};

    g_rw_lock_writer_lock(&op->engine->lock);
    g_free(dom->job);
    dom->job = g_steal_pointer(&job);
    g_rw_lock_writer_unlock(&op->engine->lock);
    op->job_set = TRUE;
    snap_engine_emit_change(op->engine, dom->name, &c);
}

/* The deferred file work of @op, on its worker, before the domain's next
 * operation starts. */
static void
op_post_reply(SnapOp *op)
{
    SnapDomain *dom = op->dom;
    g_autoptr(GError) error = NULL;

    if (dom == NULL || op->engine->state_dir == NULL)
        return;
    if (op->post_inactive != NULL || op->post_journal_clear)
        snap_crash_point("reply-sent");
    if (op->post_inactive != NULL) {
        SnapNode *node = snap_tree_lookup(dom->tree, op->post_inactive);
        g_autofree char *xml = node ? snap_node_xml(node) : NULL;

        if (node != NULL && node != snap_tree_get_current(dom->tree) &&
            !snap_write_snapshot_file_full(dom, node->name, xml, FALSE,
                                           SNAP_STORE_SYNC_FILE, &error)) {
            g_debug("%s: %s", dom->name, error->message);
            g_clear_error(&error);
        }
    }
    if (op->post_journal_clear)
        snap_crash_point("journal-clear");
    if (op->post_journal_clear &&
        !snap_journal_remove(op->engine->state_dir, dom->name, &error))
        g_debug("%s: %s", dom->name, error->message);
    /* Only this worker writes the domain's snapshot files: they may share
     * a spare. */
    if (op->kind != OP_FLUSH) {
        g_autofree char *dir =
            g_build_filename(op->engine->state_dir, "snapshots", dom->name, NULL);

        if (g_file_test(dir, G_FILE_TEST_IS_DIR))
            snap_store_prepare_spare(dir);
    }
}

/* Answers @op: logs a failure, clears the job, emits the changes with no
 * lock held, then calls the completion callback, so that a listener can
 * make caches forget the old tree before the caller hears of the new. */
void
snap_op_answer(SnapOp *op, const GError *error)
{
    SnapDomain *dom = op->dom;

    if (error != NULL && dom != NULL && op->opname != NULL)
        snap_op_report(op, op->opname, error->message);
    if (dom != NULL && op->job_set) {
        g_rw_lock_writer_lock(&op->engine->lock);
        g_free(dom->job);
        dom->job = g_strdup("");
        g_rw_lock_writer_unlock(&op->engine->lock);
        op->domain_file_changed = TRUE;
    }
    if (op->domain_file_changed)
        snap_op_change(op, SNAP_CHANGE_DOMAIN_FILE, NULL, NULL, NULL);
    for (guint i = 0; i < op->changes->len; i++)
        snap_engine_emit_change(op->engine, op->domain_name,
                                &g_array_index(op->changes, PendingChange, i));
    if (op->done)
        op->done(error, op->user_data);
}

/* Ends @op on its domain's worker: answers it, does its deferred file
 * work, frees it. */
void
snap_op_finish(SnapOp *op, const GError *error)
{
    g_autoptr(GError) local = NULL;

    /* A failed operation's intent goes before the caller hears of the
     * failure: one that outlived a power cut would be finished at start. */
    if (error != NULL && op->post_journal_clear && op->dom != NULL &&
        op->engine->state_dir != NULL) {
        op->post_journal_clear = FALSE;
        if (!snap_journal_remove(op->engine->state_dir, op->dom->name, &local))
            g_warning("%s: %s", op->dom->name, local->message);
    }
    snap_op_answer(op, error);
    op_post_reply(op);
    snap_op_free(op);
}

void
snap_op_refuse(SnapOp *op, SnapErrorCode code, const char *message)
{
    g_autoptr(GError) error = g_error_new_literal(SNAP_ERROR, code, message);

    snap_op_finish(op, error);
}

/* ---- helpers --------------------------------------------------------------- */

gint64
snap_now_seconds(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

/* metadata.xml of a current snapshot: libvirt's <active>1</active> goes
 * last, so it is the plain text with one line inserted. */
char *
snap_xml_with_active(const char *xml)
{
    const char *end = g_strrstr(xml, "</domainsnapshot>");

    if (end == NULL)
        return g_strconcat(xml, SNAP_ACTIVE_LINE, NULL);
    return g_strdup_printf("%.*s" SNAP_ACTIVE_LINE "%s", (int)(end - xml), xml, end);
}

gboolean
snap_op_check_cancelled(SnapOp *op, GError **error)
{
    return snap_error_check_cancelled(op->cancellable, error);
}

SnapDomainState
snap_domain_state(SnapEngine *engine, SnapDomain *dom)
{
    return engine->backend->ops->domain_state(engine->backend, dom->def);
}

SnapshotDef *
snap_node_def(SnapNode *node, GError **error)
{
    g_autofree char *xml = snap_node_xml(node);

    return snapshot_xml_parse(xml, strlen(xml), error);
}

gboolean
snap_write_snapshot_file_full(SnapDomain *dom, const char *name, const char *xml,
                              gboolean current, SnapStoreSync sync, GError **error)
{
    g_autofree char *path =
        snap_store_snapshot_path(dom->engine->state_dir, dom->name, name);
    g_autofree char *active = current ? snap_xml_with_active(xml) : NULL;
    const char *text = current ? active : xml;

    if (!snap_store_ensure_domain_dir(dom->engine->state_dir, dom->name, error))
        return FALSE;
    return snap_store_write_atomic_full(path, text, strlen(text), sync, error);
}

/* Writes @node's file durably, with <active> when @current. */
gboolean
snap_write_snapshot_file(SnapDomain *dom, const char *name, const char *xml,
                         gboolean current, GError **error)
{
    return snap_write_snapshot_file_full(dom, name, xml, current, SNAP_STORE_SYNC_ALL,
                                         error);
}

/* The old current snapshot loses its <active>, after the new current's
 * file was written durably. Losing this write (a failure, a power cut)
 * only leaves two files claiming current, which loading settles: the
 * most recently written one wins. So it needs no directory sync; its
 * data is synced before the rename, though: a rename that reaches the
 * disk before the data (XFS, ext4 without auto_da_alloc) leaves an empty
 * file. */
void
snap_op_rewrite_inactive(SnapOp *op, SnapNode *node)
{
    if (node != NULL) {
        g_free(op->post_inactive);
        op->post_inactive = g_strdup(node->name);
    }
}

static GPtrArray *
disk_paths(GPtrArray *disks)
{
    GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);

    for (guint i = 0; i < disks->len; i++)
        g_ptr_array_add(paths, g_strdup(((DomainDisk *)disks->pdata[i])->source));
    return paths;
}

gboolean
snap_op_journal_intent(SnapOp *op, const char *what, guint flags, const DomainDef *ddef,
                       const SnapshotDef *def, GError **error)
{
    g_autoptr(GPtrArray) disks = snap_disks_internal(ddef, def);
    g_autoptr(GPtrArray) paths = disk_paths(disks);

    /* A new intent replaces the one an earlier step of @op cleared. */
    op->post_journal_clear = FALSE;
    op->journaled = snap_journal_write(op->engine->state_dir, op->dom->name, what,
                                       def->name, flags, paths, error);
    return op->journaled;
}

/* The identity of the QEMU that runs @dom now: "PID:STARTTIME" from its
 * pidfile and /proc (a pid alone may be reused), "" when none runs. Tells
 * recovery whether the QEMU it finds is the one an intent saw. */
char *
snap_domain_run_identity(SnapEngine *engine, SnapDomain *dom)
{
    g_autofree char *pidfile = qemu_run_pidfile(engine->state_dir, dom->name);
    g_autofree char *pidtext = NULL;
    g_autofree char *stat_path = NULL;
    g_autofree char *stat = NULL;
    g_auto(GStrv) fields = NULL;
    const char *rest;
    gint64 pid;

    if (!g_file_get_contents(pidfile, &pidtext, NULL, NULL))
        return g_strdup("");
    pid = g_ascii_strtoll(g_strstrip(pidtext), NULL, 10);
    stat_path = g_strdup_printf("/proc/%" G_GINT64_FORMAT "/stat", pid);
    if (pid <= 0 || !g_file_get_contents(stat_path, &stat, NULL, NULL))
        return g_strdup("");
    /* After "PID (COMM) ": state is field 3, starttime field 22. */
    rest = strrchr(stat, ')');
    fields = g_strsplit(rest != NULL ? rest + 2 : "", " ", 21);
    if (g_strv_length(fields) < 21)
        return g_strdup("");
    return g_strdup_printf("%" G_GINT64_FORMAT ":%s", pid, fields[19]);
}

gboolean
snap_op_journal_revert_intent(SnapOp *op, guint flags, const DomainDef *ddef,
                              const SnapshotDef *def, GError **error)
{
    g_autoptr(GPtrArray) disks = snap_disks_internal(ddef, def);
    g_autoptr(GPtrArray) paths = disk_paths(disks);
    g_autoptr(GPtrArray) steps =
        g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    g_autofree char *run = snap_domain_run_identity(op->engine, op->dom);

    g_ptr_array_add(steps, g_strdupv((char *[]){"run", run, NULL}));
    op->post_journal_clear = FALSE;
    op->journaled =
        snap_journal_write_steps(op->engine->state_dir, op->dom->name, "revert",
                                 def->name, flags, paths, steps, 0, error);
    return op->journaled;
}

gboolean
snap_op_journal_step(SnapOp *op, const char *verb, GError **error)
{
    g_autofree char *run = snap_domain_run_identity(op->engine, op->dom);

    return snap_journal_add_step(op->engine->state_dir, op->dom->name,
                                 (const char *const[]){verb, run, NULL}, error);
}

/* The operation is over, whatever its outcome: its intent goes once the
 * reply is out (see op_post_reply()). */
void
snap_op_journal_clear(SnapOp *op)
{
    op->post_journal_clear = TRUE;
}

/* After the backend failed: the operation changed nothing, unless it was
 * live and its QEMU still runs: a QEMU that did not answer in time can
 * resume and finish the job. Its intent then stays, to be finished or
 * rolled back before the domain's next operation (see snap_op_run()). */
void
snap_op_journal_settle(SnapOp *op, gboolean live, GError **error)
{
    if (!live || error == NULL || !g_error_matches(*error, SNAP_ERROR, SNAP_ERROR_QEMU) ||
        snap_domain_state(op->engine, op->dom) == SNAP_DOMAIN_SHUTOFF)
        snap_op_journal_clear(op);
}

void
snap_touch(SnapDomain *dom)
{
    dom->mtime = snap_now_seconds();
}

/* Writes STATE/domains/NAME.xml durably. */
gboolean
snap_write_domain_file(SnapDomain *dom, const char *xml, GError **error)
{
    g_autofree char *file = g_strconcat(dom->name, ".xml", NULL);
    g_autofree char *path =
        g_build_filename(dom->engine->state_dir, "domains", file, NULL);

    return snap_store_write_atomic(path, xml, strlen(xml), error);
}

/* Makes @def (already written to domain.xml) the domain's definition. */
void
snap_op_set_domain_def(SnapOp *op, DomainDef *def, char *def_xml)
{
    SnapDomain *dom = op->dom;

    g_rw_lock_writer_lock(&op->engine->lock);
    domain_def_free(dom->def);
    dom->def = def;
    g_free(dom->def_xml);
    dom->def_xml = def_xml;
    g_rw_lock_writer_unlock(&op->engine->lock);
    op->domain_file_changed = TRUE;
}

/* The intent of an operation on external snapshot files: the files it
 * creates or frees in "disks", its plan (or the metadata to write) in
 * "steps". */
gboolean
snap_op_journal_intent_files(SnapOp *op, const char *what, const char *snapshot,
                             GPtrArray *files, GPtrArray *steps, guint done,
                             GError **error)
{
    /* A new intent replaces the one an earlier step of @op cleared. */
    op->post_journal_clear = FALSE;
    op->journaled = snap_journal_write_steps(op->engine->state_dir, op->dom->name, what,
                                             snapshot, 0, files, steps, done, error);
    return op->journaled;
}
