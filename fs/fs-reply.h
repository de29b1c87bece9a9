/* fs-reply.h: replies that carry state: GError -> errno, entries, slow requests. */
#pragma once

#include <glib.h>
#include <gio/gio.h>

#include "fs-context.h"

G_BEGIN_DECLS

/* Replies @error's errno (snap_error_to_errno(), the one mapping) to
 * @req. The engine has recorded the failure already (see
 * fs_log_error_line()); "@what: message" goes to the debug log only. */
int fs_reply_gerror(fuse_req_t req, const GError *error, const char *what);

/* Logs an `errors` line of @domain (SNAP_CHANGE_ERROR): the one place a
 * failure is logged. */
void fs_log_error_line(const char *domain, const char *line);

/* For input the daemon refused itself before any engine call: records it
 * in @domain's errors file (as the engine does for its own failures),
 * then replies as fs_reply_gerror(). */
int fs_reply_refused(fuse_req_t req, FsContext *ctx, const char *domain,
                     const char *operation, const GError *error);

/* Replies an entry for the object (@kind, @domain, @snapshot) with
 * attributes @st, counting one kernel lookup of its node (undone when the
 * reply fails). */
int fs_reply_entry(fuse_req_t req, FsContext *ctx, FsNodeKind kind, const char *domain,
                   const char *snapshot, const struct stat *st);

/* The same with an entry timeout of 0: the kernel asks again before it
 * uses the name, for an entry that no listing of its directory shows. */
int fs_reply_entry_uncached(fuse_req_t req, FsContext *ctx, FsNodeKind kind,
                            const char *domain, const char *snapshot,
                            const struct stat *st);

/* A request answered later, from an engine completion callback. Created
 * in the handler: it copies what it needs and hooks FUSE interrupts to
 * its GCancellable. */
typedef struct {
    fuse_req_t req;
    FsContext *ctx;
    GCancellable *cancellable;
    char *domain;
    char *name;      /* the object's name (mkdir, rmdir) */
    char *what;      /* "mkdir d1/s1", for the log */
    size_t size;     /* write: the byte count to acknowledge */
    gpointer handle; /* write/flush: the open file's handle (not owned) */
    /* Directories whose locks the kernel holds for it, and the entry in
     * each it makes or removes (or NULL). */
    fuse_ino_t held[2];
    char *held_name[2];
    guint nheld;
    gboolean failed; /* it was answered with an error */
    /* mkdir: the kind of the new directory in the reply (nested, or flat
     * when made in the flat view); with forget_entry the kernel's entry
     * that the reply made is invalidated after it, as after a failure (a
     * flat directory lists no child snapshots). */
    FsNodeKind entry_kind;
    gboolean forget_entry;
} FsRequest;

FsRequest *fs_request_new(fuse_req_t req, const char *domain, const char *name,
                          const char *what);

/* Records that the kernel holds @dir's lock while it waits for this
 * request's reply, and that the request makes or removes the entry
 * @name (NULL: none) in it; see fs_invalidator_hold(). Released when @r
 * is freed, which is after the reply; @name is then invalidated after all
 * if r->failed or r->forget_entry was set. At most two. */
void fs_request_hold_dir(FsRequest *r, fuse_ino_t dir, const char *name);

/* Unhooks the interrupt callback; call right before replying to r->req, so
 * no interrupt can touch the request or its cancellable afterwards. */
fuse_req_t fs_request_finish(FsRequest *r);

void fs_request_free(FsRequest *r);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FsRequest, fs_request_free)

G_END_DECLS
