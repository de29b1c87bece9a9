/* snap-engine.c: the operations' life, the domain workers, the shared helpers. */
#include "snap-engine-private.h"

#include <string.h>

#include "crash-point.h"
#include "journal.h"
#include "qemu-cmdline.h"
#include "snap-disks.h"
#include "snap-names.h"
#include "snapshot-store.h"
#include "snapshot-xml.h"

enum {
    OP_QUEUED,
    OP_CLAIMED,
    OP_CANCELLING,
    OP_CANCELLED,
};

static void
pending_change_clear(gpointer data)
{
    PendingChange *c = data;

    g_free(c->snapshot);
    g_free(c->parent);
    g_free(c->old_parent);
    g_free(c->message);
}

static void
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

static SnapOp *
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

    g_debug("%s: %s: %s", dom->name, operation, message);
    g_rw_lock_writer_lock(&op->engine->lock);
    error_log_add(dom->errors, operation, message);
    dom->mtime = g_get_real_time() / G_USEC_PER_SEC;
    g_rw_lock_writer_unlock(&op->engine->lock);

    c.message = g_strdup_printf("%s: %s", operation, message);
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

        if (node != NULL && node != snap_tree_get_current(dom->tree) &&
            !snap_write_snapshot_file_full(dom, node->name, node->xml, FALSE,
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
static void
op_answer(SnapOp *op, const GError *error)
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
static void
op_finish(SnapOp *op, const GError *error)
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
    op_answer(op, error);
    op_post_reply(op);
    snap_op_free(op);
}

static void
op_refuse(SnapOp *op, SnapErrorCode code, const char *message)
{
    g_autoptr(GError) error = g_error_new_literal(SNAP_ERROR, code, message);

    op_finish(op, error);
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
    return snapshot_xml_parse(node->xml, strlen(node->xml), error);
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
 * rolled back before the domain's next operation (see op_run()). */
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

/* ---- domain actions ------------------------------------------------------ */

static gboolean
op_action(SnapOp *op, GError **error)
{
    SnapBackend *backend = op->engine->backend;

    if (!snap_op_check_cancelled(op, error))
        return FALSE;
    if (op->action == SNAP_ACTION_START)
        return backend->ops->start(backend, op->dom->def, FALSE, error);
    return backend->ops->action(backend, op->dom->def, op->action, error);
}

/* ---- the worker ---------------------------------------------------------- */

/* An operation over a backend that owns the metadata (libvirt). */
static gboolean
remote_run(SnapOp *op, GError **error)
{
    switch (op->kind) {
    case OP_CREATE:
        return snap_remote_create(op, op->in_dir, op->in_current, op->name, error);
    case OP_CREATE_XML:
        return snap_remote_create_xml(op, op->xml, error);
    case OP_DELETE:
        return snap_remote_delete(op, op->name, op->flags, error);
    case OP_REVERT:
        return snap_remote_revert(op, op->name, op->flags, error);
    case OP_ACTION:
        return snap_remote_action(op, op->action, error);
    case OP_UNDEFINE:
        return snap_remote_undefine(op, (SnapUndefineMode)op->flags, error);
    case OP_REFRESH:
        snap_remote_refresh(op, op->flags, NULL);
        return TRUE;
    case OP_RECOVER:
    case OP_RECONCILE:
    case OP_FLUSH:
        return TRUE;
    }
    return TRUE;
}

static void
op_run(SnapOp *op)
{
    g_autoptr(GError) error = NULL;
    gboolean ok = TRUE;

    if (op->dom != NULL && op->dom->removed && op->kind != OP_FLUSH) {
        g_set_error(&error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND, "domain '%s' was undefined",
                    op->dom->name);
        op_finish(op, op->opname != NULL ? error : NULL);
        return;
    }
    if (snap_engine_is_remote(op->engine)) {
        ok = remote_run(op, &error);
        op_finish(op, ok ? NULL : error);
        return;
    }
    if (op->dom != NULL && op->dom->recover_pending && op->kind != OP_FLUSH &&
        op->kind != OP_RECONCILE) {
        op->dom->recover_pending = FALSE;
        if (!snap_op_recover(op, op->opname ? op->opname : "recover"))
            op->dom->recover_pending = TRUE;
    }
    switch (op->kind) {
    case OP_CREATE:
        ok = snap_op_create(op, &error);
        break;
    case OP_CREATE_XML:
        ok = snap_op_create_xml(op, &error);
        break;
    case OP_DELETE:
        ok = snap_op_delete(op, &error);
        break;
    case OP_REVERT:
        ok = snap_op_revert(op, &error);
        break;
    case OP_ACTION:
        ok = op_action(op, &error);
        break;
    case OP_RECOVER:
        if (!snap_op_recover(op, "start"))
            op->dom->recover_pending = TRUE;
        break;
    case OP_RECONCILE:
        snap_engine_reconcile_domain(op);
        break;
    case OP_FLUSH:
        break;
    case OP_UNDEFINE:
        ok = snap_op_undefine(op, &error);
        break;
    case OP_REFRESH:
        break;
    }
    if (!ok && error == NULL)
        g_set_error_literal(&error, SNAP_ERROR, SNAP_ERROR_FAILED, "operation failed");
    /* A failure that kept its intent (the disks changed, or QEMU may still
     * change them) is settled before the domain's next operation, not only
     * at the next start. */
    if (!ok && op->journaled && !op->post_journal_clear)
        op->dom->recover_pending = TRUE;
    op_finish(op, ok ? NULL : error);
}

void
snap_op_worker(gpointer data, gpointer pool_data)
{
    SnapOp *op = data;

    /* No cancel callback runs after this returns. */
    if (op->cancel_id != 0)
        g_cancellable_disconnect(op->cancellable, op->cancel_id);
    op->cancel_id = 0;
    if (!g_atomic_int_compare_and_exchange(&op->claim, OP_QUEUED, OP_CLAIMED)) {
        /* Answered by the canceller already; it may still be at it. */
        while (g_atomic_int_get(&op->claim) != OP_CANCELLED)
            g_usleep(1000);
        snap_op_free(op);
        return;
    }
    /* The daemon is stopping: what has not started never will. */
    if (g_atomic_int_get(&op->engine->stopping)) {
        op_refuse(op, SNAP_ERROR_CANCELLED,
                  "the daemon stopped before the operation started");
        return;
    }
    op_run(op);
}

/* The engine's canceller thread: answers a cancelled queued operation
 * with EINTR, leaving its memory to the domain's worker. */
static void
cancel_worker(gpointer data, gpointer pool_data)
{
    SnapOp *op = data;
    g_autoptr(GError) error =
        g_error_new_literal(SNAP_ERROR, SNAP_ERROR_CANCELLED, "operation cancelled");

    op_answer(op, error);
    g_atomic_int_set(&op->claim, OP_CANCELLED);
}

/* GCancellable::cancelled, on the thread that cancelled (for the daemon:
 * libfuse's interrupt handler, holding the request's lock, so nothing
 * may be answered from here). */
static void
on_op_cancelled(GCancellable *cancellable, gpointer data)
{
    SnapOp *op = data;

    if (g_atomic_int_compare_and_exchange(&op->claim, OP_QUEUED, OP_CANCELLING))
        g_thread_pool_push(op->engine->cancel_pool, op, NULL);
}

static void
op_submit(SnapOp *op)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;

    g_mutex_lock(&engine->start_lock);
    if (!engine->started) {
        g_ptr_array_add(dom->early, op);
        g_mutex_unlock(&engine->start_lock);
        return;
    }
    g_mutex_unlock(&engine->start_lock);
    if (g_atomic_int_get(&engine->stopping)) {
        op_refuse(op, SNAP_ERROR_CANCELLED,
                  "the daemon stopped before the operation started");
        return;
    }
    if (dom->pool == NULL) {
        op_run(op);
        return;
    }
    if (op->cancellable != NULL && engine->cancel_pool != NULL)
        op->cancel_id =
            g_cancellable_connect(op->cancellable, G_CALLBACK(on_op_cancelled), op, NULL);
    g_thread_pool_push(dom->pool, op, NULL);
}

/* Refusals that need no worker: no such domain, read-only. TRUE when @op
 * was finished here. */
static gboolean
op_precheck(SnapOp *op)
{
    if (op->dom == NULL) {
        g_autofree char *msg = g_strdup_printf("domain '%s' not found", op->domain_name);

        op_refuse(op, SNAP_ERROR_NOT_FOUND, msg);
        return TRUE;
    }
    if (op->engine->opts.read_only) {
        op_refuse(op, SNAP_ERROR_READ_ONLY, "mounted read-only");
        return TRUE;
    }
    return FALSE;
}

void
snap_engine_refresh_now(SnapEngine *engine, SnapDomain *dom, guint flags)
{
    SnapOp *op = snap_op_new(engine, OP_REFRESH, dom->name, NULL, NULL, NULL);

    op->flags = flags;
    op_run(op);
}

void
snap_engine_queue_refresh(SnapEngine *engine, SnapDomain *dom, guint flags)
{
    SnapOp *op;

    /* Refreshes with more to read are not coalesced. */
    if (flags == 0 && !g_atomic_int_compare_and_exchange(&dom->refresh_queued, 0, 1))
        return;
    op = snap_op_new(engine, OP_REFRESH, dom->name, NULL, NULL, NULL);
    op->flags = flags;
    if (op->dom == NULL) {
        snap_op_free(op);
        return;
    }
    op_submit(op);
}

/* ---- starting and stopping ---------------------------------------------------- */

void
snap_engine_start(SnapEngine *engine)
{
    g_autoptr(GPtrArray) doms = NULL;
    GHashTableIter iter;
    gpointer value;

    g_mutex_lock(&engine->start_lock);
    if (engine->started) {
        g_mutex_unlock(&engine->start_lock);
        return;
    }
    engine->backend->ops->watch(engine->backend);
    engine->cancel_pool = g_thread_pool_new(cancel_worker, NULL, 1, FALSE, NULL);
    g_hash_table_iter_init(&iter, engine->domains);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        SnapDomain *dom = value;
        g_autoptr(GError) error = NULL;

        dom->pool = g_thread_pool_new(snap_op_worker, NULL, 1, FALSE, &error);
        if (dom->pool == NULL)
            g_debug("%s: no worker, operations run inline: %s", dom->name,
                    error->message);
        /* Recovery first, then the check, then what was submitted early:
         * the queue runs in order. libvirt keeps its own metadata. */
        if (engine->state_dir == NULL)
            continue;
        if (!engine->opts.read_only)
            g_ptr_array_insert(
                dom->early, 0,
                snap_op_new(engine, OP_RECOVER, dom->name, NULL, NULL, NULL));
        if (!engine->opts.no_reconcile)
            g_ptr_array_insert(
                dom->early, engine->opts.read_only ? 0 : 1,
                snap_op_new(engine, OP_RECONCILE, dom->name, NULL, NULL, NULL));
    }
    /* Pushed under the lock, so nothing submitted from now on can
     * overtake what waited for the start. Once pushed, a recovery may
     * undefine its domain: the loops go over a copy of the table. */
    doms = snap_engine_domains(engine, TRUE);
    for (guint d = 0; d < doms->len; d++) {
        SnapDomain *dom = doms->pdata[d];

        if (dom->pool == NULL)
            continue;
        for (guint i = 0; i < dom->early->len; i++)
            g_thread_pool_push(dom->pool, dom->early->pdata[i], NULL);
        g_ptr_array_set_size(dom->early, 0);
    }
    engine->started = TRUE;
    g_mutex_unlock(&engine->start_lock);
    if (snap_engine_is_remote(engine))
        snap_remote_start(engine);

    for (guint d = 0; d < doms->len; d++) {
        SnapDomain *dom = doms->pdata[d];

        for (guint i = 0; i < dom->early->len; i++)
            op_run(dom->early->pdata[i]);
        g_ptr_array_set_size(dom->early, 0);
    }
}

void
snap_engine_stop(SnapEngine *engine)
{
    g_autoptr(GPtrArray) doms = NULL;

    if (!g_atomic_int_compare_and_exchange(&engine->stopping, 0, 1))
        return;
    /* No refresh is queued from here on. */
    snap_remote_stop(engine);
    /* A worker still running may undefine its domain meanwhile. */
    doms = snap_engine_domains(engine, TRUE);
    for (guint d = 0; d < doms->len; d++) {
        SnapDomain *dom = doms->pdata[d];

        /* The workers answer what is queued (stopping is set) and finish
         * what runs. */
        if (dom->pool)
            g_thread_pool_free(dom->pool, FALSE, TRUE);
        dom->pool = NULL;
        /* Never started: what was queued is answered, not dropped. */
        for (guint i = 0; i < dom->early->len; i++)
            op_refuse(dom->early->pdata[i], SNAP_ERROR_CANCELLED, "the engine stopped");
        g_ptr_array_set_size(dom->early, 0);
    }
}

void
snap_engine_free(SnapEngine *engine)
{
    if (engine == NULL)
        return;
    snap_engine_stop(engine);
    /* Every op the canceller answered has been freed by its worker. */
    if (engine->cancel_pool)
        g_thread_pool_free(engine->cancel_pool, FALSE, TRUE);
    snap_engine_disks_free(engine);
    /* The backend's watchers report to the domains: they stop first. */
    snap_backend_free(engine->backend);
    snap_remote_free(engine);
    g_hash_table_destroy(engine->domains);
    g_ptr_array_unref(engine->removed);
    g_rw_lock_clear(&engine->lock);
    g_mutex_clear(&engine->start_lock);
    g_free(engine->state_dir);
    g_free(engine);
}

void
snap_engine_report_error(SnapEngine *engine, const char *domain, const char *operation,
                         const GError *error)
{
    SnapOp *op;

    if (snap_engine_find_domain(engine, domain) == NULL) {
        g_debug("%s: %s: %s", domain, operation, error->message);
        return;
    }
    op = snap_op_new(engine, OP_ACTION, domain, NULL, NULL, NULL);
    snap_op_report(op, operation, error->message);
    op_finish(op, NULL);
}

/* ---- mutations ----------------------------------------------------------- */

static void
create_submit(SnapEngine *engine, const char *domain, const char *in_dir,
              gboolean in_current, const char *name, GCancellable *cancellable,
              SnapDoneFunc done, gpointer user_data)
{
    SnapOp *op = snap_op_new(engine, OP_CREATE, domain, cancellable, done, user_data);
    g_autoptr(GError) error = NULL;

    op->name = g_strdup(name);
    op->in_dir = g_strdup(in_dir);
    op->in_current = in_current;
    op->opname = g_strdup_printf("mkdir %s", name);
    if (op_precheck(op))
        return;
    if (!snap_name_validate(name, &error)) {
        op_finish(op, error);
        return;
    }
    op_submit(op);
}

void
snap_engine_create_async(SnapEngine *engine, const char *domain, const char *in_dir,
                         const char *name, GCancellable *cancellable, SnapDoneFunc done,
                         gpointer user_data)
{
    create_submit(engine, domain, in_dir, FALSE, name, cancellable, done, user_data);
}

void
snap_engine_create_in_current_async(SnapEngine *engine, const char *domain,
                                    const char *name, GCancellable *cancellable,
                                    SnapDoneFunc done, gpointer user_data)
{
    create_submit(engine, domain, NULL, TRUE, name, cancellable, done, user_data);
}

void
snap_engine_create_xml_async(SnapEngine *engine, const char *domain, const char *xml,
                             gsize len, GCancellable *cancellable, SnapDoneFunc done,
                             gpointer user_data)
{
    SnapOp *op = snap_op_new(engine, OP_CREATE_XML, domain, cancellable, done, user_data);

    op->xml = g_strndup(xml, len);
    op->len = len;
    op->opname = g_strdup("create");
    if (op_precheck(op))
        return;
    op_submit(op);
}

void
snap_engine_delete_async(SnapEngine *engine, const char *domain, const char *snapshot,
                         SnapDeleteFlags flags, GCancellable *cancellable,
                         SnapDoneFunc done, gpointer user_data)
{
    SnapOp *op = snap_op_new(engine, OP_DELETE, domain, cancellable, done, user_data);
    GString *opname = g_string_new("delete ");

    if (flags & SNAP_DELETE_CHILDREN)
        g_string_append(opname, "--children ");
    if (flags & SNAP_DELETE_CHILDREN_ONLY)
        g_string_append(opname, "--children-only ");
    if (flags & SNAP_DELETE_METADATA_ONLY)
        g_string_append(opname, "--metadata ");
    g_string_append(opname, snapshot);
    op->name = g_strdup(snapshot);
    op->flags = flags;
    op->opname = g_string_free(opname, FALSE);
    if (op_precheck(op))
        return;
    op_submit(op);
}

void
snap_engine_revert_async(SnapEngine *engine, const char *domain, const char *snapshot,
                         SnapRevertFlags flags, GCancellable *cancellable,
                         SnapDoneFunc done, gpointer user_data)
{
    SnapOp *op = snap_op_new(engine, OP_REVERT, domain, cancellable, done, user_data);

    op->name = g_strdup(snapshot);
    op->flags = flags;
    op->opname = g_strdup_printf("revert %s", snapshot);
    if (op_precheck(op))
        return;
    op_submit(op);
}

static const char *
action_word(SnapDomainAction action)
{
    switch (action) {
    case SNAP_ACTION_START:
        return "start";
    case SNAP_ACTION_SHUTDOWN:
        return "shutdown";
    case SNAP_ACTION_DESTROY:
        return "destroy";
    case SNAP_ACTION_PAUSE:
        return "pause";
    case SNAP_ACTION_RESUME:
        return "resume";
    }
    return "?";
}

void
snap_engine_domain_action_async(SnapEngine *engine, const char *domain,
                                SnapDomainAction action, GCancellable *cancellable,
                                SnapDoneFunc done, gpointer user_data)
{
    SnapOp *op = snap_op_new(engine, OP_ACTION, domain, cancellable, done, user_data);

    op->action = action;
    op->opname = g_strdup_printf("state %s", action_word(action));
    if (op_precheck(op))
        return;
    op_submit(op);
}

void
snap_engine_undefine_async(SnapEngine *engine, const char *domain, SnapUndefineMode mode,
                           GCancellable *cancellable, SnapDoneFunc done,
                           gpointer user_data)
{
    SnapOp *op = snap_op_new(engine, OP_UNDEFINE, domain, cancellable, done, user_data);

    op->flags = mode;
    op->opname = g_strdup_printf("undefine %s", snap_undefine_word(mode));
    if (op_precheck(op))
        return;
    op_submit(op);
}

typedef struct {
    GMutex lock;
    GCond cond;
    gboolean done;
} FlushWait;

static void
flush_done(const GError *error, gpointer user_data)
{
    FlushWait *w = user_data;

    g_mutex_lock(&w->lock);
    w->done = TRUE;
    g_cond_signal(&w->cond);
    g_mutex_unlock(&w->lock);
}

void
snap_engine_flush(SnapEngine *engine, const char *domain)
{
    FlushWait w = {.done = FALSE};
    SnapOp *op;

    if (snap_engine_find_domain(engine, domain) == NULL)
        return;
    g_mutex_init(&w.lock);
    g_cond_init(&w.cond);
    op = snap_op_new(engine, OP_FLUSH, domain, NULL, flush_done, &w);
    op_submit(op);
    g_mutex_lock(&w.lock);
    while (!w.done)
        g_cond_wait(&w.cond, &w.lock);
    g_mutex_unlock(&w.lock);
    g_mutex_clear(&w.lock);
    g_cond_clear(&w.cond);
}
