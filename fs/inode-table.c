/* inode-table.c: nodeids from a counter, indexed by nodeid and by identity. */
#include "inode-table.h"

#include <string.h>

/* What getattr answers for a node whose object is gone: the fields of a
 * struct stat that fs_attr_fill() sets, in a third of its size (there is
 * a node per snapshot directory and per file the kernel looked up). */
typedef struct {
    gint64 size;
    gint64 blocks;
    gint64 mtime; /* also atime and ctime */
    guint32 mode;
    guint32 nlink;
    guint32 uid;
    guint32 gid;
    guint32 blksize;
} FsLastStat;

typedef struct {
    FsNode node;       /* first, so an FsNode * is an FsNodeEntry * */
    guint64 nlookup;   /* the kernel's references; table lock */
    gboolean attached; /* found by identity; table lock */
    gboolean has_stat;
    FsLastStat last_stat; /* table lock */
} FsNodeEntry;

struct _FsInodeTable {
    GMutex lock;
    guint64 next_nodeid;
    GHashTable *by_nodeid; /* guint64 * -> FsNodeEntry * (owns a ref) */
    /* FsNode * (its identity) -> FsNodeEntry *, attached only, no ref;
     * the entry is its own key, so no key string is kept per node. */
    GHashTable *by_identity;
};

static void
fs_node_clear(FsNode *node)
{
    g_clear_pointer(&node->domain, g_ref_string_release);
    g_clear_pointer(&node->snapshot, g_ref_string_release);
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

static guint
identity_hash(gconstpointer key)
{
    const FsNode *n = key;

    return (g_str_hash(n->domain != NULL ? n->domain : "") * 31 +
            g_str_hash(n->snapshot != NULL ? n->snapshot : "")) *
               31 +
           (guint)n->kind;
}

static gboolean
identity_equal(gconstpointer a, gconstpointer b)
{
    const FsNode *x = a;
    const FsNode *y = b;

    return x->kind == y->kind && g_strcmp0(x->domain, y->domain) == 0 &&
           g_strcmp0(x->snapshot, y->snapshot) == 0;
}

/* A key for by_identity lookups, pointing at the caller's strings. */
static FsNode
identity_of(FsNodeKind kind, const char *domain, const char *snapshot)
{
    FsNode key = {0};

    key.kind = kind;
    key.domain = (char *)domain;
    key.snapshot = (char *)snapshot;
    return key;
}

static void
last_stat_set(FsNodeEntry *e, const struct stat *st)
{
    e->last_stat = (FsLastStat){
        .size = st->st_size,
        .blocks = st->st_blocks,
        .mtime = st->st_mtim.tv_sec,
        .mode = st->st_mode,
        .nlink = st->st_nlink,
        .uid = st->st_uid,
        .gid = st->st_gid,
        .blksize = st->st_blksize,
    };
    e->has_stat = TRUE;
}

static FsNodeEntry *
entry_new(guint64 nodeid, FsNodeKind kind, const char *domain, const char *snapshot)
{
    FsNodeEntry *e = g_atomic_rc_box_new0(FsNodeEntry);

    e->node.nodeid = nodeid;
    e->node.kind = kind;
    /* Interned: a snapshot has up to five nodes (its directories and
     * files in both views), a domain thousands. */
    e->node.domain = domain != NULL ? g_ref_string_new_intern(domain) : NULL;
    e->node.snapshot = snapshot != NULL ? g_ref_string_new_intern(snapshot) : NULL;
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
    table->by_identity = g_hash_table_new(identity_hash, identity_equal);
    root = entry_new(1, FS_NODE_ROOT, NULL, NULL);
    root->attached = TRUE;
    root->nlookup = 1;
    g_hash_table_insert(table->by_nodeid, &root->node.nodeid, root);
    g_hash_table_add(table->by_identity, root);
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
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);
    FsNodeEntry *e = g_hash_table_lookup(table->by_nodeid, &nodeid);

    return e != NULL ? fs_node_ref(&e->node) : NULL;
}

FsNode *
fs_inode_table_find(FsInodeTable *table, FsNodeKind kind, const char *domain,
                    const char *snapshot)
{
    FsNode key = identity_of(kind, domain, snapshot);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);
    FsNodeEntry *e = g_hash_table_lookup(table->by_identity, &key);

    return e != NULL ? fs_node_ref(&e->node) : NULL;
}

GArray *
fs_inode_table_find_all(FsInodeTable *table, FsNodeKind kind, const char *domain)
{
    GArray *ids = g_array_new(FALSE, FALSE, sizeof(guint64));
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);
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
    FsNode key = identity_of(kind, domain, snapshot);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);
    FsNodeEntry *e = g_hash_table_lookup(table->by_identity, &key);

    if (e == NULL) {
        e = entry_new(table->next_nodeid++, kind, domain, snapshot);
        e->attached = TRUE;
        g_hash_table_insert(table->by_nodeid, &e->node.nodeid, e);
        g_hash_table_add(table->by_identity, e);
    }
    e->nlookup++;
    if (st != NULL)
        last_stat_set(e, st);
    return fs_node_ref(&e->node);
}

static void
detach_locked(FsInodeTable *table, FsNodeEntry *e)
{
    if (!e->attached)
        return;
    g_hash_table_remove(table->by_identity, e);
    e->attached = FALSE;
}

void
fs_inode_table_forget(FsInodeTable *table, guint64 nodeid, guint64 nlookup)
{
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);
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
    FsNode key = identity_of(kind, domain, snapshot);
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);
    FsNodeEntry *e = g_hash_table_lookup(table->by_identity, &key);

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
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);

    g_hash_table_foreach_remove(table->by_identity, detach_if_of_domain,
                                (gpointer)domain);
}

void
fs_inode_table_set_stat(FsInodeTable *table, FsNode *node, const struct stat *st)
{
    FsNodeEntry *e = (FsNodeEntry *)node;
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);

    last_stat_set(e, st);
}

gboolean
fs_inode_table_last_stat(FsInodeTable *table, FsNode *node, struct stat *st)
{
    FsNodeEntry *e = (FsNodeEntry *)node;
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&table->lock);

    if (!e->has_stat)
        return FALSE;
    memset(st, 0, sizeof(*st));
    st->st_ino = e->node.ino;
    st->st_mode = e->last_stat.mode;
    st->st_nlink = e->last_stat.nlink;
    st->st_uid = e->last_stat.uid;
    st->st_gid = e->last_stat.gid;
    st->st_size = e->last_stat.size;
    st->st_blocks = e->last_stat.blocks;
    st->st_blksize = e->last_stat.blksize;
    st->st_atim.tv_sec = e->last_stat.mtime;
    st->st_mtim.tv_sec = e->last_stat.mtime;
    st->st_ctim.tv_sec = e->last_stat.mtime;
    return TRUE;
}
