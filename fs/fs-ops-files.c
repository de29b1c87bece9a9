/* fs-ops-files.c: SNAP/files/... (-o files): the guest's files, answered from the
 * caches or from each snapshot's queue. */
#include "fs-ops.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "fs-reply.h"
#include "fs-tree.h"
#include "snap-engine-files.h"

/* Tools size their reads by st_blksize; each read that misses the read
 * ahead is an appliance round trip. */
#define GUEST_BLKSIZE (128 * 1024)

struct _FsFiles {
    GMutex lock;
    GCond idle;
    guint pending;    /* jobs queued or running */
    GHashTable *open; /* GuestFile* the kernel holds */
};

typedef enum {
    JOB_LOOKUP,
    JOB_GETATTR,
    JOB_READLINK,
    JOB_READDIR,
    JOB_OPEN,
    JOB_READ,
} JobKind;

typedef struct {
    JobKind kind;
    fuse_req_t req;
    FsContext *ctx;
    FsNode *node; /* the node asked about (lookup: the parent) */
    char *owner;
    char *path; /* in the guest: the node's (lookup: the child's) */
    char *name; /* lookup: the child's name */
    struct fuse_file_info fi;
    GuestFile *file;
    size_t size;
    off_t off;
    gboolean plus;
} Job;

/* The handlers installed before ours, for every other node. */
static struct fuse_lowlevel_ops prev_ops;

static GuestFiles *
guest_files(FsContext *ctx)
{
    return snap_engine_guest_files(ctx->engine);
}

static gboolean
is_guest_kind(FsNodeKind kind)
{
    kind = fs_node_kind_base(kind);
    return kind == FS_NODE_FILES || kind == FS_NODE_GUEST;
}

/* The kind of a guest entry below @node, in @node's view (nested or
 * flat): the two views' directories are distinct inodes in the kernel. */
static FsNodeKind
guest_kind(const FsNode *node)
{
    return fs_node_kind_as(FS_NODE_GUEST, node->kind);
}

/* The node of @ino when it is files/ or below, else NULL. */
static FsNode *
guest_node(FsContext *ctx, fuse_ino_t ino)
{
    g_autoptr(FsNode) node = NULL;

    if (ctx->files == NULL)
        return NULL;
    node = fs_inode_table_get(ctx->inodes, ino);
    if (node == NULL || !is_guest_kind(node->kind))
        return NULL;
    return g_steal_pointer(&node);
}

/* @s up to its first '/', or all of it. (transfer full) */
static char *
first_component(const char *s)
{
    const char *slash = strchr(s, '/');

    return slash ? g_strndup(s, slash - s) : g_strdup(s);
}

/* Splits a files node's identity into its owner and guest path ("" for
 * files/ itself). */
static void
node_split(const FsNode *node, char **owner, char **path)
{
    const char *slash = strchr(node->snapshot, '/');
    g_autofree char *snapshot = first_component(node->snapshot);

    *owner = snap_engine_files_owner(node->domain, snapshot);
    *path = g_strdup(slash ? slash + 1 : "");
}

/* The identity of the entry @path (in the guest) of @node's snapshot. */
static char *
child_id(const FsNode *node, const char *path)
{
    g_autofree char *snapshot = first_component(node->snapshot);

    return g_strconcat(snapshot, "/", path, NULL);
}

static char *
path_join(const char *dir, const char *name)
{
    return *dir ? g_strconcat(dir, "/", name, NULL) : g_strdup(name);
}

/* FALSE when @node's snapshot is gone: its files are stale. */
static gboolean
snapshot_alive(FsContext *ctx, const FsNode *node)
{
    g_autofree char *snapshot = first_component(node->snapshot);

    return snap_engine_snapshot_info(ctx->engine, node->domain, snapshot, FALSE, NULL,
                                     NULL);
}

/* The attributes the kernel gets for guest entry @e at @path: the guest's,
 * with an inode number shared by the hard links of one guest file. */
static void
entry_stat(const FsNode *node, const char *path, const GuestEntry *e, struct stat *st)
{
    g_autofree char *snapshot = first_component(node->snapshot);
    g_autofree char *fs = first_component(path);
    g_autofree char *key =
        g_strdup_printf("%s\n%s\n%ju:%ju", snapshot, fs, (uintmax_t)e->st.st_dev,
                        (uintmax_t)e->st.st_ino);

    *st = e->st;
    st->st_ino = fs_attr_ino(guest_kind(node), node->domain, key);
    st->st_dev = 0;
    st->st_blksize = GUEST_BLKSIZE;
}

/* Replies @error: what the guest's data or libguestfs refused also goes
 * to the domain's errors. */
static void
reply_error(Job *job, const GError *error, const char *verb)
{
    g_autofree char *what =
        g_strdup_printf("%s %s/files/%s", verb, strchr(job->owner, '/') + 1, job->path);

    if (g_error_matches(error, SNAP_ERROR, SNAP_ERROR_QEMU) ||
        g_error_matches(error, SNAP_ERROR, SNAP_ERROR_FAILED))
        fs_reply_refused(job->req, job->ctx, job->node->domain, what, error);
    else
        fs_reply_gerror(job->req, error, what);
}

static void
reply_entry(Job *job, const GuestEntry *e)
{
    g_autofree char *id = child_id(job->node, job->path);
    struct stat st;

    if (e == NULL) {
        struct fuse_entry_param ep;

        memset(&ep, 0, sizeof(ep));
        ep.entry_timeout = job->ctx->entry_timeout;
        fuse_reply_entry(job->req, &ep);
        return;
    }
    entry_stat(job->node, job->path, e, &st);
    fs_reply_entry(job->req, job->ctx, guest_kind(job->node), job->node->domain, id, &st);
}

static void
reply_attr(Job *job, const GuestEntry *e)
{
    struct stat st;
    double entry_timeout, attr_timeout;

    entry_stat(job->node, job->path, e, &st);
    fs_inode_table_set_stat(job->ctx->inodes, job->node, &st);
    fs_tree_timeouts(job->ctx, guest_kind(job->node), &entry_timeout, &attr_timeout);
    fuse_reply_attr(job->req, &st, attr_timeout);
}

static void
reply_link(Job *job, const GuestEntry *e)
{
    if (e->link == NULL)
        fuse_reply_err(job->req, EINVAL);
    else
        fuse_reply_readlink(job->req, e->link);
}

/* Replies the part of listing @list of directory @job->node from offset
 * @job->off: ".", "..", then the entries. */
static void
reply_listing(Job *job, GPtrArray *list)
{
    FsContext *ctx = job->ctx;
    g_autofree char *buf = g_malloc(job->size);
    g_autoptr(GArray) counted = g_array_new(FALSE, FALSE, sizeof(guint64));
    size_t pos = 0;

    for (guint i = job->off >= 0 ? (guint)job->off : 0; i < list->len + 2; i++) {
        const GuestEntry *e = i >= 2 ? list->pdata[i - 2] : NULL;
        const char *name = i == 0 ? "." : i == 1 ? ".." : e->name;
        g_autofree char *path = e ? path_join(job->path, e->name) : NULL;
        g_autoptr(FsNode) child = NULL;
        struct fuse_entry_param ep;
        size_t need;

        memset(&ep, 0, sizeof(ep));
        if (e != NULL) {
            entry_stat(job->node, path, e, &ep.attr);
        } else {
            ep.attr.st_ino = i == 0 ? job->node->ino : 1;
            ep.attr.st_mode = S_IFDIR;
        }
        if (!job->plus) {
            need = fuse_add_direntry(job->req, buf + pos, job->size - pos, name, &ep.attr,
                                     i + 1);
        } else {
            if (e != NULL) {
                g_autofree char *id = child_id(job->node, path);

                child = fs_inode_table_lookup_ref(ctx->inodes, guest_kind(job->node),
                                                  job->node->domain, id, &ep.attr);
                ep.ino = child->nodeid;
                fs_tree_timeouts(ctx, guest_kind(job->node), &ep.entry_timeout,
                                 &ep.attr_timeout);
            }
            need = fuse_add_direntry_plus(job->req, buf + pos, job->size - pos, name, &ep,
                                          i + 1);
            if (child != NULL) {
                if (need > job->size - pos)
                    fs_inode_table_forget(ctx->inodes, child->nodeid, 1);
                else
                    g_array_append_val(counted, child->nodeid);
            }
        }
        if (need > job->size - pos)
            break;
        pos += need;
    }
    if (fuse_reply_buf(job->req, buf, pos) != 0)
        for (guint j = 0; j < counted->len; j++)
            fs_inode_table_forget(ctx->inodes, g_array_index(counted, guint64, j), 1);
}

static void
reply_open(Job *job, GuestFile *file)
{
    FsFiles *files = job->ctx->files;

    /* Every read comes here, so that one after the snapshot's deletion
     * fails (ESTALE) rather than being answered from the page cache. */
    job->fi.direct_io = 1;
    job->fi.keep_cache = 0;
    job->fi.noflush = 1;
    job->fi.fh = (uint64_t)(uintptr_t)file;
    g_mutex_lock(&files->lock);
    g_hash_table_add(files->open, file);
    g_mutex_unlock(&files->lock);
    if (fuse_reply_open(job->req, &job->fi) != 0) {
        g_mutex_lock(&files->lock);
        g_hash_table_remove(files->open, file);
        g_mutex_unlock(&files->lock);
        guest_file_close(file);
    }
}

/* Answers @job, from the appliance when it has to (on the owner's queue). */
static void
job_answer(Job *job)
{
    GuestFiles *gf = guest_files(job->ctx);
    g_autoptr(GError) error = NULL;

    switch (job->kind) {
    case JOB_LOOKUP:
    case JOB_GETATTR:
    case JOB_READLINK: {
        g_autoptr(GuestEntry) e = guest_files_stat(gf, job->owner, job->path, &error);

        if (e == NULL && job->kind == JOB_LOOKUP &&
            g_error_matches(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND))
            reply_entry(job, NULL);
        else if (e == NULL)
            reply_error(job, error, job->kind == JOB_READLINK ? "readlink" : "stat");
        else if (job->kind == JOB_LOOKUP)
            reply_entry(job, e);
        else if (job->kind == JOB_GETATTR)
            reply_attr(job, e);
        else
            reply_link(job, e);
        break;
    }
    case JOB_READDIR: {
        g_autoptr(GPtrArray) list = guest_files_list(gf, job->owner, job->path, &error);

        if (list == NULL)
            reply_error(job, error, "list");
        else
            reply_listing(job, list);
        break;
    }
    case JOB_OPEN: {
        GuestFile *file = guest_files_open(gf, job->owner, job->path, &error);

        if (file == NULL)
            reply_error(job, error, "open");
        else
            reply_open(job, file);
        break;
    }
    case JOB_READ: {
        g_autoptr(GBytes) bytes =
            guest_file_read(job->file, job->size, (guint64)job->off, &error);
        gsize n;
        gconstpointer data;

        if (bytes == NULL) {
            reply_error(job, error, "read");
            break;
        }
        data = g_bytes_get_data(bytes, &n);
        fuse_reply_buf(job->req, data, n);
        break;
    }
    }
}

static void
job_free(Job *job)
{
    g_clear_pointer(&job->node, fs_node_unref);
    g_free(job->owner);
    g_free(job->path);
    g_free(job->name);
    g_free(job);
}

static void
job_worker(gpointer data, gpointer user_data)
{
    Job *job = data;
    FsFiles *files = job->ctx->files;

    job_answer(job);
    job_free(job);
    g_mutex_lock(&files->lock);
    if (--files->pending == 0)
        g_cond_broadcast(&files->idle);
    g_mutex_unlock(&files->lock);
}

/* A job about @node (transfer: the ref), with its owner and path. */
static Job *
job_new(JobKind kind, fuse_req_t req, FsContext *ctx, FsNode *node)
{
    Job *job = g_new0(Job, 1);

    job->kind = kind;
    job->req = req;
    job->ctx = ctx;
    job->node = node;
    node_split(node, &job->owner, &job->path);
    return job;
}

/* Answers @job now when the caches can (no appliance call: the request
 * loop never waits for one), else on its owner's queue. */
static void
job_dispatch(Job *job)
{
    FsContext *ctx = job->ctx;
    GuestFiles *gf = guest_files(ctx);
    g_autoptr(GuestEntry) e = NULL;
    gboolean cached = FALSE;

    switch (job->kind) {
    case JOB_LOOKUP:
    case JOB_GETATTR:
    case JOB_READLINK:
        cached = guest_files_cached_stat(gf, job->owner, job->path, &e);
        if (cached && e == NULL && job->kind == JOB_LOOKUP)
            reply_entry(job, NULL);
        else if (cached && e == NULL)
            fuse_reply_err(job->req, ENOENT);
        else if (cached && job->kind == JOB_LOOKUP)
            reply_entry(job, e);
        else if (cached && job->kind == JOB_GETATTR)
            reply_attr(job, e);
        else if (cached)
            reply_link(job, e);
        break;
    case JOB_READDIR: {
        g_autoptr(GPtrArray) list = guest_files_cached_list(gf, job->owner, job->path);

        cached = list != NULL;
        if (cached)
            reply_listing(job, list);
        break;
    }
    case JOB_OPEN:
        cached = guest_files_cached_stat(gf, job->owner, job->path, &e);
        if (cached) {
            g_autoptr(GError) error = NULL;
            GuestFile *file = guest_files_open(gf, job->owner, job->path, &error);

            if (file == NULL)
                reply_error(job, error, "open");
            else
                reply_open(job, file);
        }
        break;
    case JOB_READ:
        break;
    }
    if (cached) {
        job_free(job);
        return;
    }
    g_mutex_lock(&ctx->files->lock);
    ctx->files->pending++;
    g_mutex_unlock(&ctx->files->lock);
    guest_files_submit(gf, job->owner, (GFunc)job_worker, job);
}

/* The files node of @ino, or NULL after replying ESTALE when its snapshot
 * is gone; @ino's node is not a files node: NULL, @other set. */
static FsNode *
live_guest_node(fuse_req_t req, fuse_ino_t ino, gboolean *other)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = guest_node(ctx, ino);

    *other = node == NULL;
    if (node == NULL)
        return NULL;
    if (!snapshot_alive(ctx, node)) {
        fuse_reply_err(req, ESTALE);
        return NULL;
    }
    return g_steal_pointer(&node);
}

static void
fs_op_files_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    gboolean other;
    FsNode *node = live_guest_node(req, parent, &other);
    Job *job;

    if (other) {
        prev_ops.lookup(req, parent, name);
        return;
    }
    if (node == NULL)
        return;
    job = job_new(JOB_LOOKUP, req, fs_ctx(req), node);
    job->name = g_strdup(name);
    {
        char *path = path_join(job->path, name);

        g_free(job->path);
        job->path = path;
    }
    job_dispatch(job);
}

static void
fs_op_files_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = guest_node(ctx, ino);
    struct stat st;

    /* files/ itself is the tree's own (fs-tree.c). */
    if (node == NULL || fs_node_kind_base(node->kind) == FS_NODE_FILES) {
        prev_ops.getattr(req, ino, fi);
        return;
    }
    if (!snapshot_alive(ctx, node)) {
        /* What it was, with no links left, as for any deleted node. */
        if (!fs_inode_table_last_stat(ctx->inodes, node, &st)) {
            fuse_reply_err(req, ESTALE);
            return;
        }
        st.st_nlink = 0;
        fuse_reply_attr(req, &st, 0.0);
        return;
    }
    job_dispatch(job_new(JOB_GETATTR, req, ctx, g_steal_pointer(&node)));
}

static void
fs_op_files_readlink(fuse_req_t req, fuse_ino_t ino)
{
    gboolean other;
    FsNode *node = live_guest_node(req, ino, &other);

    if (other) {
        prev_ops.readlink(req, ino);
        return;
    }
    if (node != NULL)
        job_dispatch(job_new(JOB_READLINK, req, fs_ctx(req), node));
}

static void
fs_op_files_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = guest_node(ctx, ino);

    if (node == NULL || ctx->no_opendir) {
        prev_ops.opendir(req, ino, fi);
        return;
    }
    /* Listings are the cache's, fixed once read: no handle needed. */
    fi->fh = 0;
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
}

static void
fs_op_files_releasedir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    g_autoptr(FsNode) node = guest_node(fs_ctx(req), ino);

    if (node == NULL) {
        prev_ops.releasedir(req, ino, fi);
        return;
    }
    fuse_reply_err(req, 0);
}

static void
do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
           struct fuse_file_info *fi, gboolean plus)
{
    gboolean other;
    FsNode *node = live_guest_node(req, ino, &other);
    Job *job;

    if (other) {
        if (plus)
            prev_ops.readdirplus(req, ino, size, off, fi);
        else
            prev_ops.readdir(req, ino, size, off, fi);
        return;
    }
    if (node == NULL)
        return;
    job = job_new(JOB_READDIR, req, fs_ctx(req), node);
    job->size = size;
    job->off = off;
    job->plus = plus;
    job_dispatch(job);
}

static void
fs_op_files_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                    struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, FALSE);
}

static void
fs_op_files_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                        struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, fi, TRUE);
}

static void
fs_op_files_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    gboolean other;
    FsNode *node = live_guest_node(req, ino, &other);
    Job *job;

    if (other) {
        prev_ops.open(req, ino, fi);
        return;
    }
    if (node == NULL)
        return;
    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
        fuse_reply_err(req, EROFS);
        fs_node_unref(node);
        return;
    }
    job = job_new(JOB_OPEN, req, fs_ctx(req), node);
    job->fi = *fi;
    job_dispatch(job);
}

static void
fs_op_files_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                 struct fuse_file_info *fi)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = guest_node(ctx, ino);
    Job *job;

    if (node == NULL) {
        prev_ops.read(req, ino, size, off, fi);
        return;
    }
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    job = job_new(JOB_READ, req, ctx, g_steal_pointer(&node));
    job->file = (GuestFile *)(uintptr_t)fi->fh;
    job->size = size;
    job->off = off;
    job_dispatch(job);
}

static void
fs_op_files_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = guest_node(ctx, ino);
    GuestFile *file;

    if (node == NULL) {
        prev_ops.release(req, ino, fi);
        return;
    }
    /* No read is in flight: each holds a reference to the open file. */
    file = (GuestFile *)(uintptr_t)fi->fh;
    g_mutex_lock(&ctx->files->lock);
    g_hash_table_remove(ctx->files->open, file);
    g_mutex_unlock(&ctx->files->lock);
    guest_file_close(file);
    fuse_reply_err(req, 0);
}

/* GNU rm -r and find -delete remove what is inside a directory first and
 * give up on its ancestors when that fails: removing the guest's files
 * "succeeds" and changes nothing, as for disks/. */
static void
fs_op_files_unlink(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = guest_node(ctx, parent);

    if (node == NULL)
        prev_ops.unlink(req, parent, name);
    else
        fuse_reply_err(req, ctx->read_only ? EROFS : 0);
}

static void
fs_op_files_rmdir(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = guest_node(ctx, parent);

    if (node == NULL)
        prev_ops.rmdir(req, parent, name);
    else
        fuse_reply_err(req, ctx->read_only ? EROFS : 0);
}

/* files/ is a read-only filesystem: whatever would change it, however
 * asked, is EROFS (as a write-open of a guest file is). */
static gboolean
refuse_in_files(fuse_req_t req, fuse_ino_t ino)
{
    g_autoptr(FsNode) node = guest_node(fs_ctx(req), ino);

    if (node == NULL)
        return FALSE;
    fuse_reply_err(req, EROFS);
    return TRUE;
}

static void
fs_op_files_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
                    struct fuse_file_info *fi)
{
    if (!refuse_in_files(req, ino))
        prev_ops.setattr(req, ino, attr, to_set, fi);
}

static void
fs_op_files_mkdir(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode)
{
    if (!refuse_in_files(req, parent))
        prev_ops.mkdir(req, parent, name, mode);
}

static void
fs_op_files_mknod(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                  dev_t rdev)
{
    if (!refuse_in_files(req, parent))
        prev_ops.mknod(req, parent, name, mode, rdev);
}

static void
fs_op_files_create(fuse_req_t req, fuse_ino_t parent, const char *name, mode_t mode,
                   struct fuse_file_info *fi)
{
    if (!refuse_in_files(req, parent))
        prev_ops.create(req, parent, name, mode, fi);
}

static void
fs_op_files_symlink(fuse_req_t req, const char *link, fuse_ino_t parent, const char *name)
{
    if (!refuse_in_files(req, parent))
        prev_ops.symlink(req, link, parent, name);
}

static void
fs_op_files_link(fuse_req_t req, fuse_ino_t ino, fuse_ino_t newparent,
                 const char *newname)
{
    if (!refuse_in_files(req, ino) && !refuse_in_files(req, newparent))
        prev_ops.link(req, ino, newparent, newname);
}

static void
fs_op_files_rename(fuse_req_t req, fuse_ino_t parent, const char *name,
                   fuse_ino_t newparent, const char *newname, unsigned int flags)
{
    if (!refuse_in_files(req, parent) && !refuse_in_files(req, newparent))
        prev_ops.rename(req, parent, name, newparent, newname, flags);
}

void
fs_ops_files_init(struct fuse_lowlevel_ops *ops)
{
    prev_ops = *ops;
    ops->lookup = fs_op_files_lookup;
    ops->getattr = fs_op_files_getattr;
    ops->readlink = fs_op_files_readlink;
    ops->opendir = fs_op_files_opendir;
    ops->releasedir = fs_op_files_releasedir;
    ops->readdir = fs_op_files_readdir;
    ops->readdirplus = fs_op_files_readdirplus;
    ops->open = fs_op_files_open;
    ops->read = fs_op_files_read;
    ops->release = fs_op_files_release;
    ops->unlink = fs_op_files_unlink;
    ops->rmdir = fs_op_files_rmdir;
    ops->setattr = fs_op_files_setattr;
    ops->mkdir = fs_op_files_mkdir;
    ops->mknod = fs_op_files_mknod;
    ops->create = fs_op_files_create;
    ops->symlink = fs_op_files_symlink;
    ops->link = fs_op_files_link;
    ops->rename = fs_op_files_rename;
}

/* The daemon logs what the appliances do: launch times, stops, the KVM
 * fallback. */
static void
log_files_line(const char *line, gpointer data)
{
    g_message("%s", line);
}

FsFiles *
fs_files_new(SnapEngine *engine, guint max, GError **error)
{
    SnapFilesOptions opts = {max, log_files_line, NULL};
    FsFiles *files;

    if (!snap_engine_files_enable(engine, &opts, error))
        return NULL;
    files = g_new0(FsFiles, 1);
    g_mutex_init(&files->lock);
    g_cond_init(&files->idle);
    files->open = g_hash_table_new(NULL, NULL);
    return files;
}

void
fs_files_free(FsFiles *files)
{
    GHashTableIter iter;
    gpointer file;

    if (files == NULL)
        return;
    g_mutex_lock(&files->lock);
    while (files->pending > 0)
        g_cond_wait(&files->idle, &files->lock);
    g_mutex_unlock(&files->lock);
    g_hash_table_iter_init(&iter, files->open);
    while (g_hash_table_iter_next(&iter, &file, NULL))
        guest_file_close(file);
    g_hash_table_destroy(files->open);
    g_cond_clear(&files->idle);
    g_mutex_clear(&files->lock);
    g_free(files);
}
