/* fs-ops-dir.c: lookup, attributes, listings and the directory mutations. */
#include "fs-ops.h"

#include <errno.h>
#include <string.h>
#include <sys/statvfs.h>

#include "fs-reply.h"
#include "fs-tree.h"

typedef struct {
    FsNode *dir;
    GPtrArray *entries; /* FsDirEntry *, fixed at opendir */
} FsDirHandle;

static void
fs_dir_handle_free(FsDirHandle *h)
{
    g_clear_pointer(&h->dir, fs_node_unref);
    g_clear_pointer(&h->entries, g_ptr_array_unref);
    g_free(h);
}

/* The node of @ino while its object still exists, else NULL. */
static FsNode *
live_node(FsContext *ctx, fuse_ino_t ino)
{
    g_autoptr(FsNode) node = fs_inode_table_get(ctx->inodes, ino);

    if (node == NULL)
        return NULL;
    if (node->kind != FS_NODE_ROOT) {
        g_autoptr(FsNode) attached =
            fs_inode_table_find(ctx->inodes, node->kind, node->domain, node->snapshot);

        if (attached != node)
            return NULL;
    }
    return g_steal_pointer(&node);
}

static void
fs_op_init(void *userdata, struct fuse_conn_info *conn)
{
    /* Not FUSE_CAP_CACHE_SYMLINKS: link targets change whenever a
     * snapshot moves or `current` does, and the invalidation only follows
     * the reply of the operation that moved them; readlink is answered
     * from memory anyway. */
    static const unsigned wanted[] = {
        FUSE_CAP_READDIRPLUS,
        FUSE_CAP_READDIRPLUS_AUTO,
        FUSE_CAP_ATOMIC_O_TRUNC,
    };

    FsContext *ctx = userdata;

    for (gsize i = 0; i < G_N_ELEMENTS(wanted); i++)
        if (conn->capable & wanted[i])
            conn->want |= wanted[i];
    /* A warm walk (find, ls -R) is then answered by the kernel alone: no
     * opendir/releasedir round trip per directory, and listings cached
     * (the kernel's default without opendir) until we invalidate them.
     * On a tree of 10,000 snapshots these round trips were most of a
     * warm `find`. */
    if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) {
        conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
        ctx->no_opendir = TRUE;
    }
    /* Requests of up to 1 MiB (the kernel's max_pages follows max_write):
     * a read of a disk file is then one round trip per MiB, not eight. */
    conn->max_write = 1024 * 1024;
    if (conn->capable & FUSE_CAP_ASYNC_DIO)
        conn->want |= FUSE_CAP_ASYNC_DIO;
    /* Buffered writes would turn the control files' errors into silence;
     * libfuse may want symlink caching by default. */
    conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_CACHE_SYMLINKS);
}

static void
fs_op_lookup(fuse_req_t req, fuse_ino_t parent_ino, const char *name)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) parent = live_node(ctx, parent_ino);
    g_autofree char *snapshot = NULL;
    g_autofree char *domain = NULL;
    FsNodeKind kind;
    struct stat st;
    int err;

    if (parent == NULL) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    err = fs_tree_lookup(ctx, parent, name, &kind, &snapshot);
    domain = fs_tree_child_domain(parent, name);
    if (err == 0 && !fs_tree_stat(ctx, kind, domain, snapshot, &st))
        err = ENOENT;
    if (err == ENOENT) {
        /* A negative entry the kernel may cache: every name that appears
         * later is invalidated by fs-changes.c. */
        struct fuse_entry_param e;

        memset(&e, 0, sizeof(e));
        /* A missing `current` appears with the first snapshot. */
        if (parent->kind == FS_NODE_DOMAIN && strcmp(name, "current") == 0)
            e.entry_timeout = 0.0;
        else
            e.entry_timeout = ctx->entry_timeout;
        fuse_reply_entry(req, &e);
        return;
    }
    if (err != 0) {
        fuse_reply_err(req, err);
        return;
    }
    fs_reply_entry(req, ctx, kind, domain, snapshot, &st);
}

static void
fs_op_forget(fuse_req_t req, fuse_ino_t ino, uint64_t nlookup)
{
    fs_inode_table_forget(fs_ctx(req)->inodes, ino, nlookup);
    fuse_reply_none(req);
}

static void
fs_op_forget_multi(fuse_req_t req, size_t count, struct fuse_forget_data *forgets)
{
    FsContext *ctx = fs_ctx(req);

    for (size_t i = 0; i < count; i++)
        fs_inode_table_forget(ctx->inodes, forgets[i].ino, forgets[i].nlookup);
    fuse_reply_none(req);
}

static void
fs_op_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = fs_inode_table_get(ctx->inodes, ino);
    g_autoptr(FsNode) live = NULL;
    double entry_timeout, attr_timeout;
    struct stat st;

    if (node == NULL) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    fs_tree_timeouts(ctx, node->kind, &entry_timeout, &attr_timeout);
    live = live_node(ctx, ino);
    if (live != NULL &&
        fs_tree_stat(ctx, node->kind, node->domain, node->snapshot, &st)) {
        fs_inode_table_set_stat(ctx->inodes, node, &st);
        fuse_reply_attr(req, &st, attr_timeout);
        return;
    }
    /* An unlinked node: the kernel may still hold it (an open file, a
     * shell's cwd); answer what it was, with no links left. "current"
     * keeps its node across its absences, so it is not detached. */
    if (live != NULL && node->kind != FS_NODE_CURRENT)
        fs_inode_table_detach(ctx->inodes, node->kind, node->domain, node->snapshot);
    if (!fs_inode_table_last_stat(ctx->inodes, node, &st)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    st.st_nlink = 0;
    fuse_reply_attr(req, &st, 0.0);
}

static void
fs_op_readlink(fuse_req_t req, fuse_ino_t ino)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = live_node(ctx, ino);
    g_autofree char *target = NULL;

    if (node == NULL) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (node->kind != FS_NODE_CURRENT) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    target = fs_tree_link_target(ctx, node->kind, node->domain, node->snapshot);
    if (target == NULL)
        fuse_reply_err(req, ENOENT);
    else
        fuse_reply_readlink(req, target);
}

static void
fs_op_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = NULL;
    FsDirHandle *h;
    GPtrArray *entries;
    int err = 0;

    /* ENOSYS once, and the kernel stops sending opendir (see fs_op_init). */
    if (ctx->no_opendir) {
        fuse_reply_err(req, ENOSYS);
        return;
    }
    node = live_node(ctx, ino);
    if (node == NULL) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    entries = fs_tree_list(ctx, node, &err);
    if (entries == NULL) {
        fuse_reply_err(req, err);
        return;
    }
    h = g_new0(FsDirHandle, 1);
    h->dir = g_steal_pointer(&node);
    h->entries = entries;
    fi->fh = (uint64_t)(uintptr_t)h;
    /* Listings change only through the engine, which invalidates them
     * before its reply (a mkdir or rmdir in a directory also invalidates
     * its listing in the kernel itself). */
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
    if (fuse_reply_open(req, fi) != 0)
        fs_dir_handle_free(h);
}

/* Without opendir every reader of a directory has the same fi->fh, so a
 * listing is told apart by a generation, taken afresh when a reader
 * starts at offset 0 and carried in the high bits of each offset it
 * hands out; the low bits index into it as into an opendir handle's
 * copy. Two readers racing a change each keep their own listing. */
#define LISTING_INDEX_BITS 32
#define LISTING_INDEX_MASK ((G_GUINT64_CONSTANT(1) << LISTING_INDEX_BITS) - 1)
/* A listing stays after its reader reached the end: the kernel caches
 * what it read and another reader continues from the end of that cache,
 * with its offsets. The oldest go beyond this many. */
#define LISTINGS_MAX 64

static guint64
listing_gen_of(off_t off)
{
    return (guint64)off >> LISTING_INDEX_BITS;
}

static guint
listing_index_of(off_t off)
{
    return (guint)((guint64)off & LISTING_INDEX_MASK);
}

/* Under listings_lock: drops the oldest listing when there are too many. */
static void
listings_trim(FsContext *ctx)
{
    GHashTableIter iter;
    gpointer key;
    guint64 oldest = G_MAXUINT64;

    if (g_hash_table_size(ctx->listings) <= LISTINGS_MAX)
        return;
    g_hash_table_iter_init(&iter, ctx->listings);
    while (g_hash_table_iter_next(&iter, &key, NULL))
        oldest = MIN(oldest, *(guint64 *)key);
    g_hash_table_remove(ctx->listings, &oldest);
}

/* The listing a reader at @off continues, or a fresh one (at offset 0,
 * or when the reader's was dropped); its generation in @gen. (transfer
 * full) */
static GPtrArray *
listing_for(FsContext *ctx, FsNode *dir, off_t off, guint64 *gen, int *err)
{
    GPtrArray *entries = NULL;

    *gen = listing_gen_of(off);
    if (off > 0) {
        g_mutex_lock(&ctx->listings_lock);
        entries = g_hash_table_lookup(ctx->listings, gen);
        if (entries != NULL)
            g_ptr_array_ref(entries);
        g_mutex_unlock(&ctx->listings_lock);
    }
    if (entries == NULL) {
        entries = fs_tree_list(ctx, dir, err);
        if (entries == NULL)
            return NULL;
        g_mutex_lock(&ctx->listings_lock);
        /* Wraps after 2^31 listings, long after the old ones went. */
        ctx->listing_gen = (ctx->listing_gen % G_MAXINT32) + 1;
        *gen = ctx->listing_gen;
        g_hash_table_replace(ctx->listings, g_memdup2(gen, sizeof(*gen)),
                             g_ptr_array_ref(entries));
        listings_trim(ctx);
        g_mutex_unlock(&ctx->listings_lock);
    }
    return entries;
}

static void
do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
           struct fuse_file_info *fi, gboolean plus)
{
    FsContext *ctx = fs_ctx(req);
    FsDirHandle *h = (FsDirHandle *)(uintptr_t)fi->fh;
    FsDirHandle own = {NULL, NULL};
    g_autoptr(FsNode) dir_ref = NULL;
    g_autoptr(GPtrArray) entries_ref = NULL;
    g_autofree char *buf = NULL;
    g_autoptr(GArray) counted = g_array_new(FALSE, FALSE, sizeof(guint64));
    size_t pos = 0;
    guint64 gen = 0; /* 0: an opendir handle's own copy */
    guint i;

    if (h == NULL) {
        int err = 0;

        dir_ref = live_node(ctx, ino);
        if (dir_ref == NULL) {
            fuse_reply_err(req, ENOENT);
            return;
        }
        entries_ref = listing_for(ctx, dir_ref, off, &gen, &err);
        if (entries_ref == NULL) {
            fuse_reply_err(req, err);
            return;
        }
        own = (FsDirHandle){dir_ref, entries_ref};
        h = &own;
    }
    buf = g_malloc(size);
    for (i = (off >= 0 ? listing_index_of(off) : 0); i < h->entries->len; i++) {
        const FsDirEntry *e = g_ptr_array_index(h->entries, i);
        off_t next = (off_t)((gen << LISTING_INDEX_BITS) | (i + 1));
        size_t need;

        if (!plus) {
            need = fuse_add_direntry(req, buf + pos, size - pos, e->name, &e->st, next);
        } else {
            struct fuse_entry_param ep;
            g_autoptr(FsNode) child = NULL;
            g_autofree char *snapshot = NULL;
            FsNodeKind kind;

            memset(&ep, 0, sizeof(ep));
            ep.attr = e->st;
            /* The name is from the listing; its attributes and whether it
             * is still here are checked now, so the kernel never gets a
             * dentry for something already gone (ino 0: no dentry). */
            if (i >= 2 && fs_tree_lookup(ctx, h->dir, e->name, &kind, &snapshot) == 0 &&
                kind == e->kind &&
                fs_tree_stat(ctx, e->kind, e->domain, e->snapshot, &ep.attr)) {
                child = fs_inode_table_lookup_ref(ctx->inodes, e->kind, e->domain,
                                                  e->snapshot, &ep.attr);
                ep.ino = child->nodeid;
                fs_tree_timeouts(ctx, e->kind, &ep.entry_timeout, &ep.attr_timeout);
            }
            need = fuse_add_direntry_plus(req, buf + pos, size - pos, e->name, &ep, next);
            if (child != NULL) {
                if (need > size - pos)
                    fs_inode_table_forget(ctx->inodes, child->nodeid, 1);
                else
                    g_array_append_val(counted, child->nodeid);
            }
        }
        if (need > size - pos)
            break;
        pos += need;
    }
    if (fuse_reply_buf(req, buf, pos) != 0) {
        for (guint j = 0; j < counted->len; j++)
            fs_inode_table_forget(ctx->inodes, g_array_index(counted, guint64, j), 1);
    }
}

static void
fs_op_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
              struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, FALSE);
}

static void
fs_op_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                  struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, TRUE);
}

static void
fs_op_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    fs_dir_handle_free((FsDirHandle *)(uintptr_t)fi->fh);
    fuse_reply_err(req, 0);
}

static void
on_mkdir_done(const GError *error, gpointer user_data)
{
    g_autoptr(FsRequest) r = user_data;
    fuse_req_t req = fs_request_finish(r);
    struct stat st;

    if (error != NULL) {
        r->failed = TRUE;
        fs_reply_gerror(req, error, r->what);
        return;
    }
    if (!fs_tree_stat(r->ctx, r->entry_kind, r->domain, r->name, &st)) {
        /* Created, then gone before we could describe it. */
        r->failed = TRUE;
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (r->forget_entry)
        fs_reply_entry_uncached(req, r->ctx, r->entry_kind, r->domain, r->name, &st);
    else
        fs_reply_entry(req, r->ctx, r->entry_kind, r->domain, r->name, &st);
}

static void
fs_op_mkdir(fuse_req_t req, fuse_ino_t parent_ino, const char *name, mode_t mode)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) parent = live_node(ctx, parent_ino);
    g_autofree char *what = NULL;
    FsNodeKind base;
    FsRequest *r;

    if (parent == NULL) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    base = fs_node_kind_base(parent->kind);
    if (base != FS_NODE_DOMAIN && base != FS_NODE_SNAPSHOT && base != FS_NODE_BY_NAME) {
        fuse_reply_err(req, ctx->read_only ? EROFS : EPERM);
        return;
    }
    what = g_strdup_printf(
        "mkdir %s/%s%s%s%s", parent->domain,
        fs_node_kind_is_flat(parent->kind) || base == FS_NODE_BY_NAME ? ".by-name/" : "",
        parent->snapshot != NULL ? parent->snapshot : "",
        parent->snapshot != NULL ? "/" : "", name);
    r = fs_request_new(req, parent->domain, name, what);
    fs_request_hold_dir(r, parent_ino, name);
    if (base == FS_NODE_BY_NAME) {
        /* .by-name/NEW: a child of whatever is current, listed here. */
        r->entry_kind = FS_NODE_SNAPSHOT | FS_NODE_FLAT;
        snap_engine_create_in_current_async(ctx->engine, parent->domain, name,
                                            r->cancellable, on_mkdir_done, r);
        return;
    }
    if (fs_node_kind_is_flat(parent->kind)) {
        /* .by-name/CUR/NEW, which is where `mkdir current/NEW` goes once
         * the chain is deep: the new snapshot's flat directory, but the
         * kernel must not keep that name, which no listing of CUR shows. */
        r->entry_kind = FS_NODE_SNAPSHOT | FS_NODE_FLAT;
        r->forget_entry = TRUE;
    }
    snap_engine_create_async(ctx->engine, parent->domain, parent->snapshot, name,
                             r->cancellable, on_mkdir_done, r);
}

static void
on_rmdir_done(const GError *error, gpointer user_data)
{
    g_autoptr(FsRequest) r = user_data;
    fuse_req_t req = fs_request_finish(r);

    r->failed = error != NULL;
    if (error != NULL)
        fs_reply_gerror(req, error, r->what);
    else
        fuse_reply_err(req, 0);
}

/* What rmdir and unlink share: the entry @name of @parent_ino must exist
 * and the mount be writable. FALSE when it replied an error already;
 * else @parent (transfer full) and @kind of the entry. */
static gboolean
removable_entry(fuse_req_t req, fuse_ino_t parent_ino, const char *name, FsNode **parent,
                FsNodeKind *kind)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) dir = live_node(ctx, parent_ino);
    g_autofree char *snapshot = NULL;
    int err = dir == NULL ? ENOENT : fs_tree_lookup(ctx, dir, name, kind, &snapshot);

    if (err == 0 && ctx->read_only)
        err = EROFS;
    if (err != 0) {
        fuse_reply_err(req, err);
        return FALSE;
    }
    *parent = g_steal_pointer(&dir);
    return TRUE;
}

static void
fs_op_rmdir(fuse_req_t req, fuse_ino_t parent_ino, const char *name)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) parent = NULL;
    g_autoptr(FsNode) victim = NULL;
    g_autofree char *what = NULL;
    FsNodeKind kind;
    FsRequest *r;

    if (!removable_entry(req, parent_ino, name, &parent, &kind))
        return;
    /* Like its files (see fs_op_unlink), for GNU rm -r. */
    if (fs_node_kind_base(kind) == FS_NODE_DISKS ||
        fs_node_kind_base(kind) == FS_NODE_FILES) {
        fuse_reply_err(req, 0);
        return;
    }
    if (fs_node_kind_base(kind) != FS_NODE_SNAPSHOT) {
        /* Domains and .by-name are not snapshots; files are not dirs. */
        fuse_reply_err(req, S_ISDIR(fs_attr_kind_mode(kind)) ? EPERM : ENOTDIR);
        return;
    }
    what = g_strdup_printf("rmdir %s/%s", parent->domain, name);
    r = fs_request_new(req, parent->domain, name, what);
    /* The kernel locks the directory removed as well as its parent; in
     * .by-name that is the flat directory. */
    victim = fs_inode_table_find(ctx->inodes, kind, parent->domain, name);
    fs_request_hold_dir(r, parent_ino, name);
    if (victim != NULL)
        fs_request_hold_dir(r, victim->nodeid, NULL);
    snap_engine_delete_async(ctx->engine, parent->domain, name, 0, r->cancellable,
                             on_rmdir_done, r);
}

static void
fs_op_unlink(fuse_req_t req, fuse_ino_t parent_ino, const char *name)
{
    g_autoptr(FsNode) parent = NULL;
    FsNodeKind kind;

    if (!removable_entry(req, parent_ino, name, &parent, &kind))
        return;
    if (S_ISDIR(fs_attr_kind_mode(kind))) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    /* GNU rm -r and find -delete remove a directory's files before the
     * directory and give up on every ancestor when one unlink fails, so a
     * snapshot's own files "go" without anything changing; so do the
     * hidden control files, which removing must never trigger. */
    kind = fs_node_kind_base(kind);
    if (kind == FS_NODE_METADATA || kind == FS_NODE_REVERT || kind == FS_NODE_DISK ||
        kind == FS_NODE_SCREEN || kind == FS_NODE_FORGET || kind == FS_NODE_UNDEFINE)
        fuse_reply_err(req, 0);
    else
        fuse_reply_err(req, EPERM);
}

static void
fs_op_refuse_name(fuse_req_t req)
{
    fuse_reply_err(req, fs_ctx(req)->read_only ? EROFS : EPERM);
}

static void
fs_op_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode, dev_t rdev)
{
    fs_op_refuse_name(req);
}

static void
fs_op_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    fs_op_refuse_name(req);
}

static void
fs_op_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent, const char *newname)
{
    fs_op_refuse_name(req);
}

static void
fs_op_rename(fuse_req_t req, fuse_ino_t parent, const char *name, fuse_ino_t newparent,
             const char *newname, unsigned int flags)
{
    fs_op_refuse_name(req);
}

static void
fs_op_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
             struct fuse_file_info *fi)
{
    fs_op_refuse_name(req);
}

static void
fs_op_statfs(fuse_req_t req, fuse_ino_t ino)
{
    struct statvfs st;

    memset(&st, 0, sizeof(st));
    st.f_bsize = 4096;
    st.f_frsize = 4096;
    st.f_namemax = 255;
    fuse_reply_statfs(req, &st);
}

/* No node has extended attributes. An empty list (not ENOTSUP, which
 * is what the kernel makes of no handler) is what tar --xattrs needs to
 * copy the mount without a warning per file. There is no getxattr: the
 * kernel then answers EOPNOTSUPP itself from the first call on, which
 * tar --acls, rsync -A and cp -a take as "no ACL" in silence, while an
 * ENODATA handler would cost `ls -l` two requests per file (its ACL and
 * SELinux label checks). */
static void
fs_op_listxattr(fuse_req_t req, fuse_ino_t ino, size_t size)
{
    if (size == 0)
        fuse_reply_xattr(req, 0);
    else
        fuse_reply_buf(req, NULL, 0);
}

void
fs_ops_dir_init(struct fuse_lowlevel_ops *ops)
{
    ops->init = fs_op_init;
    ops->lookup = fs_op_lookup;
    ops->forget = fs_op_forget;
    ops->forget_multi = fs_op_forget_multi;
    ops->getattr = fs_op_getattr;
    ops->readlink = fs_op_readlink;
    ops->opendir = fs_op_opendir;
    ops->readdir = fs_op_readdir;
    ops->readdirplus = fs_op_readdirplus;
    ops->releasedir = fs_op_releasedir;
    ops->mkdir = fs_op_mkdir;
    ops->rmdir = fs_op_rmdir;
    ops->unlink = fs_op_unlink;
    ops->mknod = fs_op_mknod;
    ops->symlink = fs_op_symlink;
    ops->link = fs_op_link;
    ops->rename = fs_op_rename;
    ops->create = fs_op_create;
    ops->statfs = fs_op_statfs;
    ops->listxattr = fs_op_listxattr;
}

void
fs_ops_init(struct fuse_lowlevel_ops *ops)
{
    memset(ops, 0, sizeof(*ops));
    fs_ops_dir_init(ops);
    fs_ops_file_init(ops);
    fs_ops_disks_init(ops);
#ifdef HAVE_GUESTFS
    fs_ops_files_init(ops);
#endif
}
