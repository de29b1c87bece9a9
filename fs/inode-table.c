/* inode-table.c: nodeids from a counter, indexed by nodeid and by identity. */
#include "inode-table.h"

#include <string.h>

typedef struct {
    FsNode node;       /* first, so an FsNode * is an FsNodeEntry * */
    guint64 nlookup;   /* the kernel's references; table lock */
    gboolean attached; /* found by identity; table lock */
    gboolean has_stat;
    struct stat last_stat; /* table lock */
} FsNodeEntry;

struct _FsInodeTable {
    GMutex lock;
    guint64 next_nodeid;
    GHashTable *by_nodeid;   /* guint64 * -> FsNodeEntry * (owns a ref) */
    GHashTable *by_identity; /* char * -> FsNodeEntry * (attached only, no ref) */
};

static void
fs_node_clear(FsNode *node)
{
    g_free(node->domain);
    g_free(node->snapshot);
}

FsNode *
fs_node_ref(FsNode *node)
{
    return g_atomic_rc_box_acquire(node);
}

void
fs_node_unref(FsNode *node)
{
    if (node != NULL)
        g_atomic_rc_box_release_full(node, (GDestroyNotify)fs_node_clear);
}

static char *
identity_key(FsNodeKind kind, const char *domain, const char *snapshot)
{
    /* Neither domain nor snapshot names can contain '/'. */
    return g_strdup_printf("%d/%s/%s", (int)kind, domain != NULL ? domain : "",
                           snapshot != NULL ? snapshot : "");
}

static FsNodeEntry *
entry_new(guint64 nodeid, FsNodeKind kind, const char *domain, const char *snapshot)
{
    FsNodeEntry *e = g_atomic_rc_box_new0(FsNodeEntry);

    e->node.nodeid = nodeid;
    e->node.kind = kind;
    e->node.domain = g_strdup(domain);
    e->node.snapshot = g_strdup(snapshot);
    e->node.ino = fs_attr_ino(kind, domain, snapshot);
    return e;
}

FsInodeTable *
fs_inode_table_new(void)
{
    FsInodeTable *table = g_new0(FsInodeTable, 1);
    FsNodeEntry *root;

    g_mutex_init(&table->lock);
    table->by_nodeid = g_hash_table_new_full(g_int64_hash, g_int64_equal, NULL,
                                             (GDestroyNotify)fs_node_unref);
    table->by_identity = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    root = entry_new(1, FS_NODE_ROOT, NULL, NULL);
    root->attached = TRUE;
    root->nlookup = 1;
    g_hash_table_insert(table->by_nodeid, &root->node.nodeid, root);
    g_hash_table_insert(table->by_identity, identity_key(FS_NODE_ROOT, NULL, NULL), root);
    table->next_nodeid = 2;
    return table;
}

void
fs_inode_table_free(FsInodeTable *table)
{
    if (table == NULL)
        return;
    g_hash_table_destroy(table->by_identity);
    g_hash_table_destroy(table->by_nodeid);
    g_mutex_clear(&table->lock);
    g_free(table);
}

FsNode *
fs_inode_table_get(FsInodeTable *table, guint64 nodeid)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);
    FsNodeEntry *e = g_hash_table_lookup(table->by_nodeid, &nodeid);

    return e != NULL ? fs_node_ref(&e->node) : NULL;
}

FsNode *
fs_inode_table_find(FsInodeTable *table, FsNodeKind kind, const char *domain,
                    const char *snapshot)
{
    g_autofree char *key = identity_key(kind, domain, snapshot);
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);
    FsNodeEntry *e = g_hash_table_lookup(table->by_identity, key);

    return e != NULL ? fs_node_ref(&e->node) : NULL;
}

GArray *
fs_inode_table_find_all(FsInodeTable *table, FsNodeKind kind, const char *domain)
{
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(guint64));
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init(&iter, table->by_identity);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        FsNodeEntry *e = value;

        if (e->node.kind == kind && g_strcmp0(e->node.domain, domain) == 0)
            g_array_append_val(ids, e->node.nodeid);
    }
    return ids;
}

FsNode *
fs_inode_table_lookup_ref(FsInodeTable *table, FsNodeKind kind, const char *domain,
                          const char *snapshot, const struct stat *st)
{
    g_autofree char *key = identity_key(kind, domain, snapshot);
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);
    FsNodeEntry *e = g_hash_table_lookup(table->by_identity, key);

    if (e == NULL) {
        e = entry_new(table->next_nodeid++, kind, domain, snapshot);
        e->attached = TRUE;
        g_hash_table_insert(table->by_nodeid, &e->node.nodeid, e);
        g_hash_table_insert(table->by_identity, g_steal_pointer(&key), e);
    }
    e->nlookup++;
    if (st != NULL) {
        e->last_stat = *st;
        e->has_stat = TRUE;
    }
    return fs_node_ref(&e->node);
}

static void
detach_locked(FsInodeTable *table, FsNodeEntry *e)
{
    g_autofree char *key = NULL;

    if (!e->attached)
        return;
    key = identity_key(e->node.kind, e->node.domain, e->node.snapshot);
    g_hash_table_remove(table->by_identity, key);
    e->attached = FALSE;
}

void
fs_inode_table_forget(FsInodeTable *table, guint64 nodeid, guint64 nlookup)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);
    FsNodeEntry *e = g_hash_table_lookup(table->by_nodeid, &nodeid);

    if (e == NULL || nodeid == 1)
        return;
    e->nlookup = nlookup < e->nlookup ? e->nlookup - nlookup : 0;
    if (e->nlookup == 0) {
        detach_locked(table, e);
        g_hash_table_remove(table->by_nodeid, &nodeid);
    }
}

void
fs_inode_table_detach(FsInodeTable *table, FsNodeKind kind, const char *domain,
                      const char *snapshot)
{
    g_autofree char *key = identity_key(kind, domain, snapshot);
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);
    FsNodeEntry *e = g_hash_table_lookup(table->by_identity, key);

    if (e != NULL && e->node.nodeid != 1)
        detach_locked(table, e);
}

static gboolean
detach_if_of_domain(gpointer key, gpointer value, gpointer user_data)
{
    FsNodeEntry *e = value;

    if (e->node.nodeid == 1 || g_strcmp0(e->node.domain, user_data) != 0)
        return FALSE;
    e->attached = FALSE;
    return TRUE;
}

void
fs_inode_table_detach_domain(FsInodeTable *table, const char *domain)
{
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);

    g_hash_table_foreach_remove(table->by_identity, detach_if_of_domain,
                                (gpointer)domain);
}

void
fs_inode_table_set_stat(FsInodeTable *table, FsNode *node, const struct stat *st)
{
    FsNodeEntry *e = (FsNodeEntry *)node;
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);

    e->last_stat = *st;
    e->has_stat = TRUE;
}

gboolean
fs_inode_table_last_stat(FsInodeTable *table, FsNode *node, struct stat *st)
{
    FsNodeEntry *e = (FsNodeEntry *)node;
    g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);

    if (!e->has_stat)
        return FALSE;
    *st = e->last_stat;
    return TRUE;
}
