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
    char *domain; /* INVAL_CALL: waits for this domain's parked entries */
} InvalItem;

struct _FsInvalidator {
    GAsyncQueue *queue; /* InvalItem * */
    GThread *thread;
    struct fuse_session *se;
    GMutex lock;
    GHashTable *held; /* lock: "DIR" -> number of holds */
    /* lock: "DIR" -> GQueue of InvalItem*: entry invalidations in a held
     * directory, sent when its last hold goes, so they delay nothing else. */
    GHashTable *parked;
    GHashTable *held_domain; /* lock: "DIR" -> the domain of the holds on it */
    GHashTable *own;         /* lock: "DIR/NAME" -> number of holds naming it */
    gint quiet;              /* atomic; set: notifications are dropped */
};

static void
inval_item_free(InvalItem *item)
{
    g_free(item->name);
    g_free(item->domain);
    g_free(item);
}

static void
parked_free(gpointer queue)
{
    g_queue_free_full(queue, (GDestroyNotify)inval_item_free);
}

FsInvalidator *
fs_invalidator_new(void)
{
    FsInvalidator *inval = g_new0(FsInvalidator, 1);

    inval->queue = g_async_queue_new_full((GDestroyNotify)inval_item_free);
    g_mutex_init(&inval->lock);
    inval->held = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    inval->own = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    inval->parked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, parked_free);
    inval->held_domain = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
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

/* Parks entry invalidation @item while a request holding its directory's
 * lock is unanswered: the kernel would make it wait for that reply, and
 * every notification behind it too. TRUE when parked (taken). */
static gboolean
park_if_held(FsInvalidator *inval, InvalItem *item)
{
    char *key = dir_key(item->ino);
    gboolean held;

    g_mutex_lock(&inval->lock);
    held = g_hash_table_contains(inval->held, key);
    if (held) {
        GQueue *queue = g_hash_table_lookup(inval->parked, key);

        if (queue == NULL) {
            queue = g_queue_new();
            g_hash_table_insert(inval->parked, g_strdup(key), queue);
        }
        g_queue_push_tail(queue, item);
    }
    g_mutex_unlock(&inval->lock);
    g_free(key);
    return held;
}

/* Parks call @item behind the parked entries of its domain, if any: its
 * reply must follow the invalidations its operation queued, and only
 * its own domain's held directories can hold those. TRUE when parked. */
static gboolean
park_call_if_waiting(FsInvalidator *inval, InvalItem *item)
{
    GHashTableIter iter;
    gpointer key, value;
    gboolean parked = FALSE;

    if (item->domain == NULL)
        return FALSE;
    g_mutex_lock(&inval->lock);
    g_hash_table_iter_init(&iter, inval->parked);
    while (!parked && g_hash_table_iter_next(&iter, &key, &value)) {
        if (g_strcmp0(g_hash_table_lookup(inval->held_domain, key), item->domain) == 0) {
            g_queue_push_tail(value, item);
            parked = TRUE;
        }
    }
    g_mutex_unlock(&inval->lock);
    return parked;
}

void
fs_invalidator_hold(FsInvalidator *inval, fuse_ino_t dir, const char *name,
                    const char *domain)
{
    g_mutex_lock(&inval->lock);
    count_add(inval->held, dir_key(dir), 1);
    g_hash_table_replace(inval->held_domain, dir_key(dir), g_strdup(domain));
    if (name != NULL)
        count_add(inval->own, entry_key(dir, name), 1);
    g_mutex_unlock(&inval->lock);
}

void
fs_invalidator_release(FsInvalidator *inval, fuse_ino_t dir, const char *name)
{
    GQueue *parked = NULL;
    gpointer parked_key = NULL;
    g_autofree char *key = dir_key(dir);

    g_mutex_lock(&inval->lock);
    if (name != NULL)
        count_add(inval->own, entry_key(dir, name), -1);
    if (count_add(inval->held, dir_key(dir), -1)) {
        g_hash_table_remove(inval->held_domain, key);
        if (g_hash_table_steal_extended(inval->parked, key, &parked_key,
                                        (gpointer *)&parked))
            g_free(parked_key);
    }
    g_mutex_unlock(&inval->lock);
    /* Next in line, in the order they came. */
    while (parked != NULL && !g_queue_is_empty(parked))
        g_async_queue_push_front(inval->queue, g_queue_pop_tail(parked));
    if (parked != NULL)
        g_queue_free(parked);
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
            if (park_call_if_waiting(inval, item))
                continue;
            item->func(item->data, NULL);
            inval_item_free(item);
            continue;
        }
        if (g_atomic_int_get(&inval->quiet)) {
            inval_item_free(item);
            continue;
        }
        if (item->kind == INVAL_ENTRY) {
            if (park_if_held(inval, item))
                continue;
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
    g_hash_table_destroy(inval->parked);
    g_hash_table_destroy(inval->held_domain);
    g_mutex_clear(&inval->lock);
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
fs_invalidator_after(FsInvalidator *inval, const char *domain, GFunc func, gpointer data)
{
    InvalItem *item;

    if (inval->thread == NULL) {
        func(data, NULL);
        return;
    }
    item = g_new0(InvalItem, 1);
    item->kind = INVAL_CALL;
    item->domain = g_strdup(domain);
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
