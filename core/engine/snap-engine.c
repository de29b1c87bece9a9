/* snap-engine.c: the engine's public calls: start, stop, free, and each
 * mutation made into an operation and submitted to its domain's worker. */
#include "snap-engine-dispatch.h"
#include "snap-engine-refresher.h"

#include "snap-names.h"

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
    engine->cancel_pool = g_thread_pool_new(snap_op_cancel_worker, NULL, 1, FALSE, NULL);
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
            snap_op_run(dom->early->pdata[i]);
        g_ptr_array_set_size(dom->early, 0);
    }
}

void
snap_engine_stop(SnapEngine *engine)
{
    g_autoptr(GPtrArray) doms = NULL;

    if (!g_atomic_int_compare_and_exchange(&engine->stopping, 0, 1))
        return;
    snap_engine_check_wake(engine);
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
            snap_op_refuse(dom->early->pdata[i], SNAP_ERROR_CANCELLED,
                           "the engine stopped");
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
    snap_engine_exports_free(engine);
    /* The backend's watchers report to the domains: they stop first. */
    snap_backend_free(engine->backend);
    snap_remote_free(engine);
    g_hash_table_destroy(engine->domains);
    g_ptr_array_unref(engine->removed);
    g_rw_lock_clear(&engine->lock);
    g_mutex_clear(&engine->start_lock);
    g_mutex_clear(&engine->check_lock);
    g_cond_clear(&engine->check_cond);
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
    snap_op_finish(op, NULL);
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
    if (snap_op_precheck(op))
        return;
    if (!snap_name_validate(name, &error)) {
        snap_op_finish(op, error);
        return;
    }
    snap_op_submit(op);
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
    if (snap_op_precheck(op))
        return;
    snap_op_submit(op);
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
    if (snap_op_precheck(op))
        return;
    snap_op_submit(op);
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
    if (snap_op_precheck(op))
        return;
    snap_op_submit(op);
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
    if (snap_op_precheck(op))
        return;
    snap_op_submit(op);
}

void
snap_engine_undefine_async(SnapEngine *engine, const char *domain, SnapUndefineMode mode,
                           GCancellable *cancellable, SnapDoneFunc done,
                           gpointer user_data)
{
    SnapOp *op = snap_op_new(engine, OP_UNDEFINE, domain, cancellable, done, user_data);

    op->flags = mode;
    op->opname = g_strdup_printf("undefine %s", snap_undefine_word(mode));
    if (snap_op_precheck(op))
        return;
    snap_op_submit(op);
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
    snap_op_submit(op);
    g_mutex_lock(&w.lock);
    while (!w.done)
        g_cond_wait(&w.cond, &w.lock);
    g_mutex_unlock(&w.lock);
    g_mutex_clear(&w.lock);
    g_cond_clear(&w.cond);
}
