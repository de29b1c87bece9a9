/* fs-reply.c: the place where GErrors become errnos, and where lookups are counted. */
#include "fs-reply.h"

#include <string.h>

#include "fs-interrupt.h"
#include "fs-tree.h"

/* Every failure the engine reports also becomes a line in the domain's
 * `errors` and a SNAP_CHANGE_ERROR; that event is where it is logged, once. */
void
fs_log_error_line(const char *domain, const char *line)
{
    g_message("%s: %s", domain, line);
}

int
fs_reply_gerror(fuse_req_t req, const GError *error, const char *what)
{
    g_debug("%s: %s", what, error->message);
    return fuse_reply_err(req, snap_error_to_errno(error));
}

int
fs_reply_refused(fuse_req_t req, FsContext *ctx, const char *domain,
                 const char *operation, const GError *error)
{
    g_autofree char *what = g_strdup_printf("%s: %s", domain, operation);

    snap_engine_report_error(ctx->engine, domain, operation, error);
    return fs_reply_gerror(req, error, what);
}

static int
reply_entry(fuse_req_t req, FsContext *ctx, FsNodeKind kind, const char *domain,
            const char *snapshot, const struct stat *st, gboolean cached)
{
    struct fuse_entry_param e;
    g_autoptr(FsNode) node = NULL;
    int r;

    memset(&e, 0, sizeof(e));
    node = fs_inode_table_lookup_ref(ctx->inodes, kind, domain, snapshot, st);
    e.ino = node->nodeid;
    e.attr = *st;
    fs_tree_timeouts(ctx, kind, &e.entry_timeout, &e.attr_timeout);
    if (!cached)
        e.entry_timeout = 0.0;
    r = fuse_reply_entry(req, &e);
    if (r != 0)
        fs_inode_table_forget(ctx->inodes, node->nodeid, 1);
    return r;
}

int
fs_reply_entry(fuse_req_t req, FsContext *ctx, FsNodeKind kind, const char *domain,
               const char *snapshot, const struct stat *st)
{
    return reply_entry(req, ctx, kind, domain, snapshot, st, TRUE);
}

int
fs_reply_entry_uncached(fuse_req_t req, FsContext *ctx, FsNodeKind kind,
                        const char *domain, const char *snapshot, const struct stat *st)
{
    return reply_entry(req, ctx, kind, domain, snapshot, st, FALSE);
}

static void
on_interrupt(fuse_req_t req, void *data)
{
    const struct fuse_ctx *caller = fuse_req_ctx(req);

    /* Only a caller that a signal is about to kill (Ctrl-C) means to
     * cancel: the kernel interrupts for any signal, also one a handler
     * takes and after which the call goes on (fs-interrupt.h). What has
     * started still finishes (the engine checks before touching a disk). */
    if (!fs_interrupt_is_fatal(caller->pid)) {
        g_debug("interrupt of a request by %d ignored: no fatal signal pending",
                (int)caller->pid);
        return;
    }
    /* libfuse calls this under the request's lock, which
     * fs_request_finish() takes too, so the cancellable is alive. */
    g_cancellable_cancel(data);
}

FsRequest *
fs_request_new(fuse_req_t req, const char *domain, const char *name, const char *what)
{
    FsRequest *r = g_new0(FsRequest, 1);

    r->req = req;
    r->ctx = fs_ctx(req);
    r->cancellable = g_cancellable_new();
    r->domain = g_strdup(domain);
    r->name = g_strdup(name);
    r->what = g_strdup(what);
    r->entry_kind = FS_NODE_SNAPSHOT;
    fuse_req_interrupt_func(req, on_interrupt, r->cancellable);
    return r;
}

void
fs_request_hold_dir(FsRequest *r, fuse_ino_t dir, const char *name)
{
    g_return_if_fail(r->nheld < G_N_ELEMENTS(r->held));
    fs_invalidator_hold(r->ctx->invalidator, dir, name, r->domain);
    r->held[r->nheld] = dir;
    r->held_name[r->nheld] = g_strdup(name);
    r->nheld++;
}

fuse_req_t
fs_request_finish(FsRequest *r)
{
    fuse_req_interrupt_func(r->req, NULL, NULL);
    return r->req;
}

void
fs_request_free(FsRequest *r)
{
    if (r == NULL)
        return;
    for (guint i = 0; i < r->nheld; i++) {
        fs_invalidator_release(r->ctx->invalidator, r->held[i], r->held_name[i]);
        /* A failure may still have changed the tree (a delete that lost
         * the data it merged goes on to drop the snapshot). */
        if ((r->failed || r->forget_entry) && r->held_name[i] != NULL)
            fs_invalidator_entry(r->ctx->invalidator, r->held[i], r->held_name[i]);
        g_free(r->held_name[i]);
    }
    g_clear_object(&r->cancellable);
    g_free(r->domain);
    g_free(r->name);
    g_free(r->what);
    g_free(r);
}
