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
    GMutex lock;
    GCond released;
    GHashTable *held; /* lock: "DIR" -> number of holds */
    GHashTable *own;  /* lock: "DIR/NAME" -> number of holds naming it */
    gint quiet;       /* atomic; set: notifications are dropped */
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
    g_mutex_init(&inval->lock);
    g_cond_init(&inval->released);
    inval->held = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    inval->own = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    return inval;
}

static char *
dir_key(fuse_ino_t dir)
{
    return g_strdup_printf("%" G_GUINT64_FORMAT, (guint64)dir);
}

static char *
entry_key(fuse_ino_t dir, const char *name)
{
    return g_strdup_printf("%" G_GUINT64_FORMAT "/%s", (guint64)dir, name);
}

/* Adds @delta to @key's count in @table (a key counted 0 is removed);
 * TRUE when it reached 0. Under inval->lock. */
static gboolean
count_add(GHashTable *table, char *key, int delta)
{
    int count = GPOINTER_TO_INT(g_hash_table_lookup(table, key)) + delta;

    if (count <= 0) {
        g_hash_table_remove(table, key);
        g_free(key);
        return TRUE;
    }
    g_hash_table_insert(table, key, GINT_TO_POINTER(count));
    return FALSE;
}

/* Waits until no request holding @dir's lock is left unanswered. */
static void
wait_unheld(FsInvalidator *inval, fuse_ino_t dir)
{
    g_autofree char *key = dir_key(dir);

    g_mutex_lock(&inval->lock);
    while (g_hash_table_contains(inval->held, key))
        g_cond_wait(&inval->released, &inval->lock);
    g_mutex_unlock(&inval->lock);
}

void
fs_invalidator_hold(FsInvalidator *inval, fuse_ino_t dir, const char *name)
{
    g_mutex_lock(&inval->lock);
    count_add(inval->held, dir_key(dir), 1);
    if (name != NULL)
        count_add(inval->own, entry_key(dir, name), 1);
    g_mutex_unlock(&inval->lock);
}

void
fs_invalidator_release(FsInvalidator *inval, fuse_ino_t dir, const char *name)
{
    g_mutex_lock(&inval->lock);
    if (name != NULL)
        count_add(inval->own, entry_key(dir, name), -1);
    if (count_add(inval->held, dir_key(dir), -1))
        g_cond_broadcast(&inval->released);
    g_mutex_unlock(&inval->lock);
}

/* TRUE when @name in @dir is the very entry an unanswered request makes
 * or removes: the kernel changes that one itself with the reply. */
static gboolean
is_own_entry(FsInvalidator *inval, fuse_ino_t dir, const char *name)
{
    g_autofree char *key = entry_key(dir, name);
    gboolean own;

    g_mutex_lock(&inval->lock);
    own = g_hash_table_contains(inval->own, key);
    g_mutex_unlock(&inval->lock);
    return own;
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
        if (g_atomic_int_get(&inval->quiet)) {
            inval_item_free(item);
            continue;
        }
        if (item->kind == INVAL_ENTRY) {
            wait_unheld(inval, item->ino);
            r = fuse_lowlevel_notify_inval_entry(inval->se, item->ino, item->name,
                                                 strlen(item->name));
        } else {
            r = fuse_lowlevel_notify_inval_inode(inval->se, item->ino, item->off, 0);
        }
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
fs_invalidator_quiesce(FsInvalidator *inval)
{
    g_atomic_int_set(&inval->quiet, 1);
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
    g_hash_table_destroy(inval->held);
    g_hash_table_destroy(inval->own);
    g_mutex_clear(&inval->lock);
    g_cond_clear(&inval->released);
    g_free(inval);
}

void
fs_invalidator_entry(FsInvalidator *inval, fuse_ino_t parent, const char *name)
{
    InvalItem *item;

    if (is_own_entry(inval, parent, name))
        return;
    item = g_new0(InvalItem, 1);

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
    if (g_atomic_int_get(&inval->quiet))
        return;
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
    if (g_atomic_int_get(&inval->quiet))
        return;
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
