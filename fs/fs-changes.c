/* fs-changes.c: which cached names and inodes each kind of engine change makes stale. */
#include "fs-changes.h"

#include <string.h>

#include "fs-reply.h"

/* Invalidates the attached node of an identity at once: the tree changes
 * reach us on the engine's worker before the reply that reports them, and
 * must be visible when that reply arrives (`mkdir current/a; mkdir
 * current/b` resolves `current` right after the first reply). */
static void
inval_node(FsContext *ctx, FsNodeKind kind, const char *domain, const char *snapshot,
           off_t off)
{
    g_autoptr(FsNode) node = fs_inode_table_find(ctx->inodes, kind, domain, snapshot);

    if (node != NULL)
        fs_invalidator_inode_now(ctx->invalidator, node->nodeid, off);
}

/* Queues it instead: for the domain files, whose changes may also come from
 * a refusal on a request handler's thread. They are read with direct_io
 * and no attribute caching, so nothing waits on this. */
static void
inval_node_later(FsContext *ctx, FsNodeKind kind, const char *domain, off_t off)
{
    g_autoptr(FsNode) node = fs_inode_table_find(ctx->inodes, kind, domain, NULL);

    if (node != NULL)
        fs_invalidator_inode(ctx->invalidator, node->nodeid, off);
}

/* The directory holding a snapshot whose parent is @parent (NULL: the
 * domain directory): its listing and attributes at once, its cached @name
 * from the invalidator thread, since that takes the directory's lock,
 * which a mkdir or rmdir in it holds until its reply. */
static void
inval_in_dir(FsContext *ctx, const char *domain, const char *parent, const char *name)
{
    FsNodeKind kind = parent != NULL ? FS_NODE_SNAPSHOT : FS_NODE_DOMAIN;
    g_autoptr(FsNode) dir = fs_inode_table_find(ctx->inodes, kind, domain, parent);

    if (dir == NULL)
        return;
    fs_invalidator_entry(ctx->invalidator, dir->nodeid, name);
    fs_invalidator_inode_now(ctx->invalidator, dir->nodeid, 0);
}

/* The directory that lists @domain and its name there: the root, or in a
 * fleet its host's directory ("HOST/NAME"); NULL when that directory was
 * never looked up (nothing cached). */
static const char *
domain_entry(FsContext *ctx, const char *domain, guint64 *dir)
{
    const char *slash = ctx->hosts != NULL ? strchr(domain, '/') : NULL;
    g_autofree char *host = NULL;
    g_autoptr(FsNode) node = NULL;

    *dir = FUSE_ROOT_ID;
    if (slash == NULL)
        return domain;
    host = g_strndup(domain, slash - domain);
    node = fs_inode_table_find(ctx->inodes, FS_NODE_HOST, host, NULL);
    if (node == NULL)
        return NULL;
    *dir = node->nodeid;
    return slash + 1;
}

/* .by-name: its entry @name, and its listing and link count. */
static void
inval_by_name(FsContext *ctx, const char *domain, const char *name)
{
    g_autoptr(FsNode) dir =
        fs_inode_table_find(ctx->inodes, FS_NODE_BY_NAME, domain, NULL);

    if (dir == NULL)
        return;
    fs_invalidator_entry(ctx->invalidator, dir->nodeid, name);
    fs_invalidator_inode_now(ctx->invalidator, dir->nodeid, 0);
}

/* Moving or removing a snapshot changes the paths of its descendants, and
 * so maybe the target of `current`; the flat view has no paths to change. */
static void
inval_links(FsContext *ctx, const char *domain)
{
    inval_node(ctx, FS_NODE_CURRENT, domain, NULL, 0);
}

/* A node of a snapshot in both views: nested and under .by-name. */
static void
inval_node_both(FsContext *ctx, FsNodeKind kind, const char *domain, const char *snapshot,
                off_t off)
{
    inval_node(ctx, kind, domain, snapshot, off);
    inval_node(ctx, kind | FS_NODE_FLAT, domain, snapshot, off);
}

static void
detach_disk_files(FsContext *ctx, FsNodeKind kind, const char *domain,
                  const char *snapshot)
{
    g_autoptr(GArray) disk_ids = fs_inode_table_find_all(ctx->inodes, kind, domain);

    /* The disk files' identities carry their target after the name. */
    for (guint i = 0; i < disk_ids->len; i++) {
        g_autoptr(FsNode) node =
            fs_inode_table_get(ctx->inodes, g_array_index(disk_ids, guint64, i));
        g_autofree char *snap = NULL;
        g_autofree char *target = NULL;

        if (node != NULL && fs_attr_disk_id_split(node->snapshot, &snap, &target) &&
            strcmp(snap, snapshot) == 0)
            fs_inode_table_detach(ctx->inodes, kind, domain, node->snapshot);
    }
}

static void
detach_snapshot(FsContext *ctx, const char *domain, const char *snapshot)
{
    static const FsNodeKind kinds[] = {
        FS_NODE_SNAPSHOT, FS_NODE_METADATA, FS_NODE_REVERT,
        FS_NODE_DISKS,    FS_NODE_SCREEN,   FS_NODE_FILES,
    };
    static const FsNodeKind views[] = {0, FS_NODE_FLAT};

    for (gsize v = 0; v < G_N_ELEMENTS(views); v++) {
        for (gsize i = 0; i < G_N_ELEMENTS(kinds); i++)
            fs_inode_table_detach(ctx->inodes, kinds[i] | views[v], domain, snapshot);
        if (ctx->disks != NULL)
            detach_disk_files(ctx, FS_NODE_DISK | views[v], domain, snapshot);
    }
}

/* A snapshot moved to another parent: its nested directory and those of
 * its descendants get new nodes at their next lookup. The kernel keeps
 * one dentry per directory inode; had the lookup under the new parent
 * returned the node it still knows under the old path (whose
 * invalidation is on its way, asynchronously), it would have had to
 * move that dentry and, failing to lock the old parent, answered ESTALE
 * (`mkdir current/NEW` right after `rmdir .by-name/OLDEST`, whose
 * re-parenting the kernel did not see). Their st_ino stays; the flat
 * view does not move. */
static void
detach_moved(FsContext *ctx, const char *domain, const char *snapshot)
{
    g_autoptr(GPtrArray) below =
        snap_engine_list_snapshots(ctx->engine, domain, snapshot, SNAP_LIST_ROOTS);

    fs_inode_table_detach(ctx->inodes, FS_NODE_SNAPSHOT, domain, snapshot);
    fs_inode_table_detach(ctx->inodes, FS_NODE_DISKS, domain, snapshot);
    for (guint i = 0; below != NULL && i < below->len; i++) {
        const SnapEntry *e = g_ptr_array_index(below, i);

        fs_inode_table_detach(ctx->inodes, FS_NODE_SNAPSHOT, domain, e->name);
        fs_inode_table_detach(ctx->inodes, FS_NODE_DISKS, domain, e->name);
    }
}

void
fs_changes_on_change(const SnapChange *change, gpointer user_data)
{
    FsContext *ctx = user_data;
    const char *domain = change->domain;

    switch (change->kind) {
    case SNAP_CHANGE_SNAPSHOT_ADDED:
        /* Drops a cached negative entry for the new name as well. */
        inval_in_dir(ctx, domain, change->parent, change->snapshot);
        inval_by_name(ctx, domain, change->snapshot);
        break;
    case SNAP_CHANGE_SNAPSHOT_REMOVED:
        detach_snapshot(ctx, domain, change->snapshot);
        inval_in_dir(ctx, domain, change->old_parent, change->snapshot);
        inval_by_name(ctx, domain, change->snapshot);
        inval_links(ctx, domain);
        break;
    case SNAP_CHANGE_SNAPSHOT_MOVED:
        detach_moved(ctx, domain, change->snapshot);
        inval_in_dir(ctx, domain, change->old_parent, change->snapshot);
        inval_in_dir(ctx, domain, change->parent, change->snapshot);
        inval_links(ctx, domain);
        break;
    case SNAP_CHANGE_SNAPSHOT_XML:
        inval_node_both(ctx, FS_NODE_METADATA, domain, change->snapshot, 0);
        /* A redefine may change creationTime, the directories' mtime. */
        inval_node_both(ctx, FS_NODE_SNAPSHOT, domain, change->snapshot, -1);
        break;
    case SNAP_CHANGE_CURRENT: {
        g_autoptr(FsNode) dir =
            fs_inode_table_find(ctx->inodes, FS_NODE_DOMAIN, domain, NULL);

        if (dir != NULL)
            fs_invalidator_entry(ctx->invalidator, dir->nodeid, "current");
        /* The metadata.xml of the old and the new current come as
         * SNAP_CHANGE_SNAPSHOT_XML of their own. */
        inval_node(ctx, FS_NODE_CURRENT, domain, NULL, 0);
        break;
    }
    case SNAP_CHANGE_DOMAIN_FILE:
        inval_node_later(ctx, FS_NODE_DOMAIN_XML, domain, 0);
        inval_node_later(ctx, FS_NODE_STATE, domain, 0);
        inval_node_later(ctx, FS_NODE_ERRORS, domain, 0);
        inval_node_later(ctx, FS_NODE_JOB, domain, 0);
        /* The domain directory's mtime moved. */
        inval_node_later(ctx, FS_NODE_DOMAIN, domain, -1);
        return;
    case SNAP_CHANGE_ERROR:
        fs_log_error_line(domain, change->message);
        inval_node_later(ctx, FS_NODE_ERRORS, domain, 0);
        return;
    case SNAP_CHANGE_DOMAIN_REMOVED: {
        guint64 dir;
        const char *name = domain_entry(ctx, domain, &dir);

        /* Gone before the reply: `ls MOUNT` right after the write to
         * .undefine must not show it, nor a cached name find it. */
        fs_inode_table_detach_domain(ctx->inodes, domain);
        if (name == NULL)
            return;
        fs_invalidator_entry_now(ctx->invalidator, dir, name);
        fs_invalidator_inode_now(ctx->invalidator, dir, 0);
        return;
    }
    case SNAP_CHANGE_DOMAIN_ADDED: {
        guint64 dir;
        const char *name = domain_entry(ctx, domain, &dir);

        /* A cached negative entry and the listing go. */
        if (name == NULL)
            return;
        fs_invalidator_entry(ctx->invalidator, dir, name);
        fs_invalidator_inode_now(ctx->invalidator, dir, 0);
        return;
    }
    }
    /* Every change moves the domain's mtime, which the domain directory
     * (and, listing included, already invalidated ones) reports. */
    inval_node(ctx, FS_NODE_DOMAIN, domain, NULL,
               change->kind == SNAP_CHANGE_CURRENT ? 0 : -1);
}
