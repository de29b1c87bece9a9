/* invalidator.c: GAsyncQueue + thread issuing fuse_lowlevel_notify_inval_*. */
#include "invalidator.h"

#include <errno.h>
#include <string.h>

typedef enum {
    INVAL_ENTRY,
    INVAL_INODE,
    INVAL_STOP,
    INVAL_CALL,
} InvalKind;

typedef struct {
    InvalKind kind;
    fuse_ino_t ino;
    off_t off;
    char *name;
    GFunc func; /* INVAL_CALL */
    gpointer data;
} InvalItem;

struct _FsInvalidator {
    GAsyncQueue *queue; /* InvalItem * */
    GThread *thread;
    struct fuse_session *se;
};

static void
inval_item_free(InvalItem *item)
{
    g_free(item->name);
    g_free(item);
}

FsInvalidator *
fs_invalidator_new(void)
{
    FsInvalidator *inval = g_new0(FsInvalidator, 1);

    inval->queue = g_async_queue_new_full((GDestroyNotify)inval_item_free);
    return inval;
}

static gpointer
invalidator_thread(gpointer data)
{
    FsInvalidator *inval = data;

    for (;;) {
        InvalItem *item = g_async_queue_pop(inval->queue);
        int r = 0;

        if (item->kind == INVAL_STOP) {
            inval_item_free(item);
            return NULL;
        }
        if (item->kind == INVAL_CALL) {
            item->func(item->data, NULL);
            inval_item_free(item);
            continue;
        }
        if (item->kind == INVAL_ENTRY)
            r = fuse_lowlevel_notify_inval_entry(inval->se, item->ino, item->name,
                                                 strlen(item->name));
        else
            r = fuse_lowlevel_notify_inval_inode(inval->se, item->ino, item->off, 0);
        /* -ENOENT: the kernel had nothing cached, which is what we want. */
        if (r != 0 && r != -ENOENT)
            g_debug("invalidate %s %" G_GUINT64_FORMAT "%s%s: %s",
                    item->kind == INVAL_ENTRY ? "entry" : "inode", (guint64)item->ino,
                    item->name != NULL ? " " : "", item->name != NULL ? item->name : "",
                    g_strerror(-r));
        inval_item_free(item);
    }
}

void
fs_invalidator_start(FsInvalidator *inval, struct fuse_session *se)
{
    g_return_if_fail(inval->thread == NULL);
    inval->se = se;
    inval->thread = g_thread_new("invalidator", invalidator_thread, inval);
}

void
fs_invalidator_free(FsInvalidator *inval)
{
    if (inval == NULL)
        return;
    if (inval->thread != NULL) {
        InvalItem *stop = g_new0(InvalItem, 1);

        stop->kind = INVAL_STOP;
        g_async_queue_push(inval->queue, stop);
        g_thread_join(inval->thread);
    }
    g_async_queue_unref(inval->queue);
    g_free(inval);
}

void
fs_invalidator_entry(FsInvalidator *inval, fuse_ino_t parent, const char *name)
{
    InvalItem *item = g_new0(InvalItem, 1);

    item->kind = INVAL_ENTRY;
    item->ino = parent;
    item->name = g_strdup(name);
    g_async_queue_push(inval->queue, item);
}

void
fs_invalidator_inode_now(FsInvalidator *inval, fuse_ino_t ino, off_t off)
{
    int r;

    if (inval->se == NULL) {
        fs_invalidator_inode(inval, ino, off);
        return;
    }
    r = fuse_lowlevel_notify_inval_inode(inval->se, ino, off, 0);
    if (r != 0 && r != -ENOENT)
        g_debug("invalidate inode %" G_GUINT64_FORMAT ": %s", (guint64)ino,
                g_strerror(-r));
}

void
fs_invalidator_after(FsInvalidator *inval, GFunc func, gpointer data)
{
    InvalItem *item;

    if (inval->thread == NULL) {
        func(data, NULL);
        return;
    }
    item = g_new0(InvalItem, 1);
    item->kind = INVAL_CALL;
    item->func = func;
    item->data = data;
    g_async_queue_push(inval->queue, item);
}

void
fs_invalidator_entry_now(FsInvalidator *inval, fuse_ino_t parent, const char *name)
{
    int r;

    if (inval->se == NULL) {
        fs_invalidator_entry(inval, parent, name);
        return;
    }
    r = fuse_lowlevel_notify_inval_entry(inval->se, parent, name, strlen(name));
    if (r != 0 && r != -ENOENT)
        g_debug("invalidate entry %" G_GUINT64_FORMAT " %s: %s", (guint64)parent, name,
                g_strerror(-r));
}

void
fs_invalidator_inode(FsInvalidator *inval, fuse_ino_t ino, off_t off)
{
    InvalItem *item = g_new0(InvalItem, 1);

    item->kind = INVAL_INODE;
    item->ino = ino;
    item->off = off;
    g_async_queue_push(inval->queue, item);
}
