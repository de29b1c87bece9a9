/* fs-ops-disks.c: open/read/lseek/release of SNAP/disks/TARGET, answered from worker
 * threads. */
#include "fs-ops.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>

#include "fs-reply.h"
#include "fs-tree.h"

/* Requests that wait on qemu-nbd run here, so that the request loop keeps
 * answering everything else meanwhile; the kernel sends the reads of a
 * file in parallel, and each worker reads on an NBD connection of its
 * own. */
#define DISK_WORKERS 8

struct _FsDisks {
    GMutex lock;
    GThreadPool *pool; /* made with the first open, after the fork */
    GHashTable *open;  /* FsDiskFile* the kernel holds */
};

typedef struct {
    SnapDiskReader *reader;
} FsDiskFile;

typedef enum {
    DISK_JOB_OPEN,
    DISK_JOB_READ,
    DISK_JOB_SEEK,
} DiskJobKind;

typedef struct {
    DiskJobKind kind;
    fuse_req_t req;
    FsContext *ctx;
    FsNode *node;
    FsDiskFile *file;
    struct fuse_file_info fi; /* open: a copy, the request's is gone */
    size_t size;
    off_t off;
    int whence;
} DiskJob;

/* The handlers fs-ops-file.c installed, for every other file. */
static struct fuse_lowlevel_ops file_ops;

static void
disk_file_close(FsDiskFile *file)
{
    snap_disk_reader_close(file->reader);
    g_free(file);
}

static void
disk_job_free(DiskJob *job)
{
    g_clear_pointer(&job->node, fs_node_unref);
    g_free(job);
}

/* "read SNAP/TARGET", for the debug log. */
static char *
disk_what(const FsNode *node, const char *verb)
{
    return g_strdup_printf("%s %s", verb, node->snapshot);
}

static void
do_open(DiskJob *job)
{
    FsContext *ctx = job->ctx;
    g_autofree char *snapshot = NULL;
    g_autofree char *target = NULL;
    g_autofree char *what = NULL;
    g_autoptr(GError) error = NULL;
    SnapDiskReader *reader = NULL;
    FsDiskFile *file;
    struct stat st;
    struct stat now;

    if (!fs_attr_disk_id_split(job->node->snapshot, &snapshot, &target)) {
        fuse_reply_err(job->req, ENOENT);
        return;
    }
    reader =
        snap_engine_disk_open(ctx->engine, job->node->domain, snapshot, target, &error);
    if (reader == NULL) {
        what = g_strdup_printf("open %s/disks/%s", snapshot, target);
        /* QEMU's own complaint is worth a line in errors; a snapshot
         * that went away is not. */
        if (g_error_matches(error, SNAP_ERROR, SNAP_ERROR_QEMU) ||
            g_error_matches(error, SNAP_ERROR, SNAP_ERROR_FAILED))
            fs_reply_refused(job->req, ctx, job->node->domain, what, error);
        else
            fs_reply_gerror(job->req, error, what);
        return;
    }
    /* The size the kernel was told came from the image, and all of it
     * counted as data; the export knows the snapshot's own size, which
     * differs when the image grew after it, and its allocation. The
     * attributes go before the reply, so that the fstat(2) after open(2)
     * of cp or tar sees a sparse file as sparse and seeks for its data. */
    if (fs_inode_table_last_stat(ctx->inodes, job->node, &st) &&
        fs_tree_stat(ctx, job->node->kind, job->node->domain, job->node->snapshot,
                     &now) &&
        (st.st_size != now.st_size || st.st_blocks != now.st_blocks))
        fs_invalidator_inode_now(ctx->invalidator, job->node->nodeid, -1);

    file = g_new0(FsDiskFile, 1);
    file->reader = reader;
    /* Every read comes here, so that one after the snapshot's deletion
     * fails rather than being answered from the page cache. */
    job->fi.direct_io = 1;
    job->fi.keep_cache = 0;
    job->fi.noflush = 1;
    job->fi.fh = (uint64_t)(uintptr_t)file;
    g_mutex_lock(&ctx->disks->lock);
    g_hash_table_add(ctx->disks->open, file);
    g_mutex_unlock(&ctx->disks->lock);
    if (fuse_reply_open(job->req, &job->fi) != 0) {
        g_mutex_lock(&ctx->disks->lock);
        g_hash_table_remove(ctx->disks->open, file);
        g_mutex_unlock(&ctx->disks->lock);
        disk_file_close(file);
    }
}

static void
do_read(DiskJob *job)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) bytes = NULL;
    gsize n;
    gconstpointer data;

    bytes =
        snap_disk_reader_read(job->file->reader, job->size, (guint64)job->off, &error);
    if (bytes == NULL) {
        g_autofree char *what = disk_what(job->node, "read");

        fs_reply_gerror(job->req, error, what);
        return;
    }
    data = g_bytes_get_data(bytes, &n);
    fuse_reply_buf(job->req, data, n);
}

static void
do_seek(DiskJob *job)
{
    g_autoptr(GError) error = NULL;
    guint64 out = 0;
    gboolean found = FALSE;

    if (!snap_disk_reader_seek(job->file->reader, (guint64)job->off,
                               job->whence == SEEK_DATA, &out, &found, &error)) {
        g_autofree char *what = disk_what(job->node, "lseek");

        fs_reply_gerror(job->req, error, what);
        return;
    }
    if (!found)
        fuse_reply_err(job->req, ENXIO);
    else
        fuse_reply_lseek(job->req, (off_t)out);
}

static void
disk_worker(gpointer data, gpointer user_data)
{
    DiskJob *job = data;

    switch (job->kind) {
    case DISK_JOB_OPEN:
        do_open(job);
        break;
    case DISK_JOB_READ:
        do_read(job);
        break;
    case DISK_JOB_SEEK:
        do_seek(job);
        break;
    }
    disk_job_free(job);
}

/* Hands @job to a worker. */
static void
submit(FsContext *ctx, DiskJob *job)
{
    FsDisks *disks = ctx->disks;

    job->ctx = ctx;
    g_mutex_lock(&disks->lock);
    if (disks->pool == NULL)
        disks->pool = g_thread_pool_new(disk_worker, NULL, DISK_WORKERS, FALSE, NULL);
    g_mutex_unlock(&disks->lock);
    g_thread_pool_push(disks->pool, job, NULL);
}

/* The disk file node of @ino, or NULL when @ino is some other node. */
static FsNode *
disk_node(FsContext *ctx, fuse_ino_t ino)
{
    g_autoptr(FsNode) node = NULL;

    if (ctx->disks == NULL)
        return NULL;
    node = fs_inode_table_get(ctx->inodes, ino);
    if (node == NULL || fs_node_kind_base(node->kind) != FS_NODE_DISK)
        return NULL;
    return g_steal_pointer(&node);
}

static void
fs_op_disk_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = disk_node(ctx, ino);
    g_autoptr(FsNode) live = NULL;
    DiskJob *job;

    if (node == NULL) {
        file_ops.open(req, ino, fi);
        return;
    }
    live = fs_inode_table_find(ctx->inodes, node->kind, node->domain, node->snapshot);
    if (live != node) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
        fuse_reply_err(req, ctx->read_only ? EROFS : EACCES);
        return;
    }
    job = g_new0(DiskJob, 1);
    job->kind = DISK_JOB_OPEN;
    job->req = req;
    job->node = g_steal_pointer(&node);
    job->fi = *fi;
    submit(ctx, job);
}

static void
fs_op_disk_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                struct fuse_file_info *fi)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = disk_node(ctx, ino);
    DiskJob *job;

    if (node == NULL) {
        file_ops.read(req, ino, size, off, fi);
        return;
    }
    if (off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    job = g_new0(DiskJob, 1);
    job->kind = DISK_JOB_READ;
    job->req = req;
    job->node = g_steal_pointer(&node);
    job->file = (FsDiskFile *)(uintptr_t)fi->fh;
    job->size = size;
    job->off = off;
    submit(ctx, job);
}

static void
fs_op_disk_lseek(fuse_req_t req, fuse_ino_t ino, off_t off, int whence,
                 struct fuse_file_info *fi)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = disk_node(ctx, ino);
    DiskJob *job;

    /* The kernel seeks by itself for SEEK_SET, SEEK_CUR and SEEK_END;
     * only SEEK_DATA and SEEK_HOLE come here. The other files are all
     * data (ENOSYS lets the kernel say so). */
    if (node == NULL) {
        fuse_reply_err(req, ENOSYS);
        return;
    }
    if ((whence != SEEK_DATA && whence != SEEK_HOLE) || off < 0) {
        fuse_reply_err(req, EINVAL);
        return;
    }
    job = g_new0(DiskJob, 1);
    job->kind = DISK_JOB_SEEK;
    job->req = req;
    job->node = g_steal_pointer(&node);
    job->file = (FsDiskFile *)(uintptr_t)fi->fh;
    job->off = off;
    job->whence = whence;
    submit(ctx, job);
}

static void
fs_op_disk_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = disk_node(ctx, ino);
    FsDiskFile *file;

    if (node == NULL) {
        file_ops.release(req, ino, fi);
        return;
    }
    /* No read of this file is in flight: the kernel releases a file after
     * its last reference, which every read holds. Closing only marks the
     * export idle; it stops later, from its own thread. */
    file = (FsDiskFile *)(uintptr_t)fi->fh;
    g_mutex_lock(&ctx->disks->lock);
    g_hash_table_remove(ctx->disks->open, file);
    g_mutex_unlock(&ctx->disks->lock);
    disk_file_close(file);
    fuse_reply_err(req, 0);
}

void
fs_ops_disks_init(struct fuse_lowlevel_ops *ops)
{
    file_ops = *ops;
    ops->open = fs_op_disk_open;
    ops->read = fs_op_disk_read;
    ops->release = fs_op_disk_release;
    ops->lseek = fs_op_disk_lseek;
}

FsDisks *
fs_disks_new(void)
{
    FsDisks *disks = g_new0(FsDisks, 1);

    g_mutex_init(&disks->lock);
    disks->open = g_hash_table_new(NULL, NULL);
    return disks;
}

void
fs_disks_free(FsDisks *disks)
{
    GHashTableIter iter;
    gpointer file;

    if (disks == NULL)
        return;
    if (disks->pool != NULL)
        g_thread_pool_free(disks->pool, FALSE, TRUE);
    g_hash_table_iter_init(&iter, disks->open);
    while (g_hash_table_iter_next(&iter, &file, NULL))
        disk_file_close(file);
    g_hash_table_destroy(disks->open);
    g_mutex_clear(&disks->lock);
    g_free(disks);
}
