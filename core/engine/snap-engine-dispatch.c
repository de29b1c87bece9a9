/* snap-engine-dispatch.c: the domain workers: an operation queued, claimed
 * (or cancelled while queued), and run by calling the operation of its
 * kind; refreshes queued for a metadata-owning backend. Above the
 * operations, below the engine's public calls. */
#include "snap-engine-dispatch.h"

enum {
    OP_QUEUED,
    OP_CLAIMED,
    OP_CANCELLING,
    OP_CANCELLED,
};

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

void
snap_op_run(SnapOp *op)
{
    g_autoptr(GError) error = NULL;
    gboolean ok = TRUE;

    if (op->dom != NULL && op->dom->removed && op->kind != OP_FLUSH) {
        g_set_error(&error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND, "domain '%s' was undefined",
                    op->dom->name);
        snap_op_finish(op, op->opname != NULL ? error : NULL);
        return;
    }
    if (snap_engine_is_remote(op->engine)) {
        ok = remote_run(op, &error);
        snap_op_finish(op, ok ? NULL : error);
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
    snap_op_finish(op, ok ? NULL : error);
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
        snap_op_refuse(op, SNAP_ERROR_CANCELLED,
                       "the daemon stopped before the operation started");
        return;
    }
    snap_op_run(op);
}

/* The engine's canceller thread: answers a cancelled queued operation
 * with EINTR, leaving its memory to the domain's worker. */
void
snap_op_cancel_worker(gpointer data, gpointer pool_data)
{
    SnapOp *op = data;
    g_autoptr(GError) error =
        g_error_new_literal(SNAP_ERROR, SNAP_ERROR_CANCELLED, "operation cancelled");

    snap_op_answer(op, error);
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

void
snap_op_submit(SnapOp *op)
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
        snap_op_refuse(op, SNAP_ERROR_CANCELLED,
                       "the daemon stopped before the operation started");
        return;
    }
    if (dom->pool == NULL) {
        snap_op_run(op);
        return;
    }
    if (op->cancellable != NULL && engine->cancel_pool != NULL)
        op->cancel_id =
            g_cancellable_connect(op->cancellable, G_CALLBACK(on_op_cancelled), op, NULL);
    g_thread_pool_push(dom->pool, op, NULL);
    snap_engine_check_wake(engine);
}

/* Refusals that need no worker: no such domain, read-only. TRUE when @op
 * was finished here. */
gboolean
snap_op_precheck(SnapOp *op)
{
    if (op->dom == NULL) {
        g_autofree char *msg = g_strdup_printf("domain '%s' not found", op->domain_name);

        snap_op_refuse(op, SNAP_ERROR_NOT_FOUND, msg);
        return TRUE;
    }
    if (op->engine->opts.read_only) {
        snap_op_refuse(op, SNAP_ERROR_READ_ONLY, "mounted read-only");
        return TRUE;
    }
    return FALSE;
}

void
snap_engine_refresh_now(SnapEngine *engine, SnapDomain *dom, guint flags)
{
    SnapOp *op = snap_op_new(engine, OP_REFRESH, dom->name, NULL, NULL, NULL);

    op->flags = flags;
    snap_op_run(op);
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
    snap_op_submit(op);
}

SnapDomain *
snap_engine_add_domain(SnapEngine *engine, const char *name)
{
    SnapDomain *dom;
    gboolean added = FALSE;
    PendingChange c = {.kind = SNAP_CHANGE_DOMAIN_ADDED};

    g_mutex_lock(&engine->start_lock);
    g_rw_lock_writer_lock(&engine->lock);
    dom = g_hash_table_lookup(engine->domains, name);
    if (dom == NULL) {
        dom = g_new0(SnapDomain, 1);
        dom->engine = engine;
        dom->name = g_strdup(name);
        dom->def = g_new0(DomainDef, 1);
        dom->def->name = g_strdup(name);
        dom->def->disks =
            g_ptr_array_new_with_free_func((GDestroyNotify)domain_disk_free);
        dom->def_xml = g_strdup("");
        dom->tree = snap_tree_new();
        dom->errors = error_log_new(ERROR_LOG_LINES);
        dom->job = g_strdup("");
        dom->early = g_ptr_array_new();
        dom->mtime = snap_now_seconds();
        if (engine->started)
            dom->pool = g_thread_pool_new(snap_op_worker, NULL, 1, FALSE, NULL);
        g_hash_table_insert(engine->domains, dom->name, dom);
        added = TRUE;
    }
    g_rw_lock_writer_unlock(&engine->lock);
    g_mutex_unlock(&engine->start_lock);
    if (added)
        snap_engine_emit_change(engine, name, &c);
    return dom;
}
