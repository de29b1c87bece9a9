/* fs-ops-file.c: open/read/write/release/setattr of metadata, status and control
 * files. */
#include "fs-ops.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>

#include "fs-reply.h"
#include "fs-tree.h"

/* A `create` document larger than this is refused: real ones are a few
 * kilobytes, and the buffer lives in the daemon. */
#define CREATE_MAX_BYTES (1024 * 1024)

/* Buffered writers flush in blocks of at least this: stdio, cat and
 * Python in multiples of st_blksize (4096), libxml2 tools (xmllint,
 * xmlstarlet) in blocks of 4000 to 4095 bytes. */
#define CREATE_PART_MIN_BYTES 4000

typedef struct {
    FsNode *node;
    GBytes *content;     /* readable files: the content at open */
    GMutex lock;         /* guards pending */
    GByteArray *pending; /* create: the document written so far */
} FsFileHandle;

static void
fs_file_handle_free(FsFileHandle *h)
{
    g_clear_pointer(&h->node, fs_node_unref);
    g_clear_pointer(&h->content, g_bytes_unref);
    g_clear_pointer(&h->pending, g_byte_array_unref);
    g_mutex_clear(&h->lock);
    g_free(h);
}

/* Closes @h, which the kernel will not use again. */
static void
handle_close(FsContext *ctx, FsFileHandle *h)
{
    g_mutex_lock(&ctx->open_lock);
    g_hash_table_remove(ctx->open_files, h);
    g_mutex_unlock(&ctx->open_lock);
    fs_file_handle_free(h);
}

static FsFileHandle *
handle_of(struct fuse_file_info *fi)
{
    return (FsFileHandle *)(uintptr_t)fi->fh;
}

static GBytes *
file_content(FsContext *ctx, const FsNode *node)
{
    switch (fs_node_kind_base(node->kind)) {
    case FS_NODE_METADATA:
        return snap_engine_snapshot_xml(ctx->engine, node->domain, node->snapshot);
    case FS_NODE_SCREEN:
        return snap_engine_snapshot_screen(ctx->engine, node->domain, node->snapshot);
    case FS_NODE_DOMAIN_XML:
        return snap_engine_domain_file(ctx->engine, node->domain, SNAP_DOMAIN_FILE_XML);
    case FS_NODE_STATE:
        return snap_engine_domain_file(ctx->engine, node->domain, SNAP_DOMAIN_FILE_STATE);
    case FS_NODE_ERRORS:
        return snap_engine_domain_file(ctx->engine, node->domain,
                                       SNAP_DOMAIN_FILE_ERRORS);
    case FS_NODE_JOB:
        return snap_engine_domain_file(ctx->engine, node->domain, SNAP_DOMAIN_FILE_JOB);
    case FS_NODE_REVERT:
    case FS_NODE_CREATE:
    case FS_NODE_FORGET:
    case FS_NODE_UNDEFINE:
        /* Control files read as empty, so backup tools copy them. */
        return g_bytes_new_static("", 0);
    default:
        return NULL;
    }
}

static void
fs_op_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = fs_inode_table_get(ctx->inodes, ino);
    g_autoptr(FsNode) live = NULL;
    int acc = fi->flags & O_ACCMODE;
    gboolean readable = FALSE;
    FsNodeKind kind;
    FsFileHandle *h;

    if (node != NULL)
        live = fs_inode_table_find(ctx->inodes, node->kind, node->domain, node->snapshot);
    if (node == NULL || live != node) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    kind = fs_node_kind_base(node->kind);
    switch (kind) {
    case FS_NODE_METADATA:
    case FS_NODE_SCREEN:
    case FS_NODE_DOMAIN_XML:
    case FS_NODE_ERRORS:
    case FS_NODE_JOB:
        /* Root passes the kernel's permission check on 0444 files. */
        if (acc != O_RDONLY) {
            fuse_reply_err(req, ctx->read_only ? EROFS : EACCES);
            return;
        }
        readable = TRUE;
        break;
    case FS_NODE_STATE:
        if (acc != O_RDONLY && ctx->read_only) {
            fuse_reply_err(req, EROFS);
            return;
        }
        readable = acc != O_WRONLY;
        break;
    case FS_NODE_REVERT:
    case FS_NODE_CREATE:
    case FS_NODE_FORGET:
    case FS_NODE_UNDEFINE:
        /* Writable to act; readable (empty) so that rsync, tar, cp -a
         * and restic walk a domain without a warning. */
        if (acc != O_RDONLY && ctx->read_only) {
            fuse_reply_err(req, EROFS);
            return;
        }
        readable = acc != O_WRONLY;
        break;
    default:
        fuse_reply_err(req, EISDIR);
        return;
    }

    h = g_new0(FsFileHandle, 1);
    g_mutex_init(&h->lock);
    h->node = g_steal_pointer(&node);
    if (readable) {
        h->content = file_content(ctx, h->node);
        if (h->content == NULL) {
            fs_file_handle_free(h);
            fuse_reply_err(req, ENOENT);
            return;
        }
    }
    if (kind == FS_NODE_CREATE && acc != O_RDONLY)
        h->pending = g_byte_array_new();

    if (kind == FS_NODE_METADATA || kind == FS_NODE_SCREEN) {
        /* Changes arrive as inode invalidations, sent before the reply
         * that reports them, so the page cache stays valid between opens. */
        fi->keep_cache = 1;
    } else {
        /* Status files and domain.xml change behind the kernel's back (a
         * refusal on a request thread, a QEMU event, a definition a
         * revert or an external snapshot rewrote) and their invalidation
         * is queued: a reader must see the new content at once. Control
         * files must report each write's result from write(2) itself. */
        fi->direct_io = 1;
        /* Opened for reading (a backup tool), a control file is an
         * ordinary empty file: cmp -s and tar lseek(2) it. */
        if ((kind == FS_NODE_REVERT || kind == FS_NODE_CREATE || kind == FS_NODE_FORGET ||
             kind == FS_NODE_UNDEFINE) &&
            acc != O_RDONLY)
            fi->nonseekable = 1;
    }
    fi->fh = (uint64_t)(uintptr_t)h;
    g_mutex_lock(&ctx->open_lock);
    g_hash_table_add(ctx->open_files, h);
    g_mutex_unlock(&ctx->open_lock);
    if (fuse_reply_open(req, fi) != 0)
        handle_close(ctx, h);
}

/* A cached file's content is taken at open. If it changed since, the
 * change's invalidation may have reached the kernel before the pages this
 * read just filled: drop them again, now that the reply is in, so no later
 * open finds the old content in the page cache. */
static void
drop_if_outdated(FsContext *ctx, fuse_ino_t ino, const FsFileHandle *h)
{
    g_autoptr(GBytes) now = file_content(ctx, h->node);

    if (now == NULL || !g_bytes_equal(now, h->content))
        fs_invalidator_inode(ctx->invalidator, ino, 0);
}

static void
fs_op_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
           struct fuse_file_info *fi)
{
    FsContext *ctx = fs_ctx(req);
    FsFileHandle *h = handle_of(fi);
    gsize len;
    const char *data;

    if (h->content == NULL) {
        fuse_reply_err(req, EBADF);
        return;
    }
    data = g_bytes_get_data(h->content, &len);
    if (off < 0 || (guint64)off >= len)
        fuse_reply_buf(req, NULL, 0);
    else
        fuse_reply_buf(req, data + off, MIN(size, len - (gsize)off));
    /* The kinds fs_op_open gives keep_cache (the kernel does not pass that
     * flag back with a read). */
    if (fs_node_kind_base(h->node->kind) == FS_NODE_METADATA ||
        fs_node_kind_base(h->node->kind) == FS_NODE_SCREEN)
        drop_if_outdated(ctx, ino, h);
}

static void
on_write_done(const GError *error, gpointer user_data)
{
    g_autoptr(FsRequest) r = user_data;
    fuse_req_t req = fs_request_finish(r);

    if (error != NULL)
        fs_reply_gerror(req, error, r->what);
    else
        fuse_reply_write(req, r->size);
}

static void
reply_write_now(gpointer data, gpointer unused)
{
    g_autoptr(FsRequest) r = data;

    fuse_reply_write(fs_request_finish(r), r->size);
}

/* Writes that add, move or remove snapshot directories (create, .forget):
 * their entry invalidations are queued, since a mkdir or rmdir in the
 * directory may hold its lock, waiting for the same worker; the reply
 * follows them, so `ls` and `stat` right after the write see the change.
 * The request holds no directory lock itself, so nothing waits for it. */
static void
on_tree_write_done(const GError *error, gpointer user_data)
{
    FsRequest *r = user_data;

    if (error != NULL) {
        on_write_done(error, r);
        return;
    }
    fs_invalidator_after(r->ctx->invalidator, r->domain, reply_write_now, r);
}

/* FALSE when @doc cannot be the start of an XML document: after optional
 * whitespace (or a UTF-8 byte order mark) it must begin with '<'. */
static gboolean
create_doc_start_ok(const GByteArray *doc)
{
    const guint8 *s = doc->data;
    gsize len = doc->len;
    gsize i = 0;

    if (len >= 3 && s[0] == 0xEF && s[1] == 0xBB && s[2] == 0xBF)
        i = 3;
    while (i < len && g_ascii_isspace(s[i]))
        i++;
    return i == len || s[i] == '<';
}

/* TRUE when @doc looks like a whole <domainsnapshot> document: it ends
 * with the root's end tag, or is one self-closing root element, then
 * optional whitespace. The engine's parser has the last word. */
static gboolean
create_doc_complete(const GByteArray *doc)
{
    static const char end_tag[] = "</domainsnapshot>";
    gsize len = doc->len;
    const char *s = (const char *)doc->data;

    while (len > 0 && g_ascii_isspace(s[len - 1]))
        len--;
    if (len >= sizeof(end_tag) - 1 &&
        memcmp(s + len - (sizeof(end_tag) - 1), end_tag, sizeof(end_tag) - 1) == 0)
        return TRUE;
    if (len >= 2 && s[len - 2] == '/' && s[len - 1] == '>') {
        /* "<domainsnapshot/>" or with attributes: the last element start
         * is the root's and nothing was opened before it. */
        g_autofree char *text = g_strndup(s, len);
        const char *root = g_strrstr(text, "<domainsnapshot");

        return root != NULL && strchr(root + 1, '<') == NULL &&
               strstr(text, "</") == NULL;
    }
    return FALSE;
}

static gboolean
is_blank(const guint8 *data, gsize len)
{
    for (gsize i = 0; i < len; i++)
        if (!g_ascii_isspace(data[i]))
            return FALSE;
    return TRUE;
}

static void
write_create(fuse_req_t req, FsFileHandle *h, const char *buf, size_t size)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(GByteArray) doc = NULL;
    g_autofree char *what = NULL;
    FsRequest *r;

    g_mutex_lock(&h->lock);
    g_byte_array_append(h->pending, (const guint8 *)buf, size);
    /* Refused in the write that shows it, rather than at close, which
     * nobody checks: more than any snapshot's XML, or a start that no
     * XML document has. */
    if (h->pending->len >= CREATE_MAX_BYTES || !create_doc_start_ok(h->pending)) {
        g_autoptr(GError) error = NULL;

        if (h->pending->len >= CREATE_MAX_BYTES)
            g_set_error(&error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "snapshot XML of %d bytes or more refused", CREATE_MAX_BYTES);
        else
            g_set_error_literal(&error, SNAP_ERROR, SNAP_ERROR_INVALID,
                                "not XML: a <domainsnapshot> document starts with '<'");
        g_byte_array_set_size(h->pending, 0);
        g_mutex_unlock(&h->lock);
        fs_reply_refused(req, ctx, h->node->domain, "create", error);
        return;
    }
    /* Writers that split a document (cat, stdio, Python, libxml2) send
     * full buffers, of at least CREATE_PART_MIN_BYTES, before the rest;
     * a shorter write ends the document, so `echo '<domainsnapshot>' >
     * create` fails in write(2) itself, where the shell sees it. */
    if (!create_doc_complete(h->pending) && size >= CREATE_PART_MIN_BYTES) {
        /* Wait for the rest of the document; this part is accepted. */
        g_mutex_unlock(&h->lock);
        fuse_reply_write(req, size);
        return;
    }
    doc = g_steal_pointer(&h->pending);
    h->pending = g_byte_array_new();
    g_mutex_unlock(&h->lock);

    what = g_strdup_printf("%s: create", h->node->domain);
    r = fs_request_new(req, h->node->domain, NULL, what);
    r->size = size;
    snap_engine_create_xml_async(ctx->engine, h->node->domain, (const char *)doc->data,
                                 doc->len, r->cancellable, on_tree_write_done, r);
}

static void
fs_op_write(fuse_req_t req, fuse_ino_t ino, const char *buf, size_t size, off_t off,
            struct fuse_file_info *fi)
{
    FsContext *ctx = fs_ctx(req);
    FsFileHandle *h = handle_of(fi);
    const FsNode *node = h->node;
    g_autoptr(GError) error = NULL;
    g_autofree char *what = NULL;
    FsRequest *r;

    /* A handle opened for reading only gets no write from the kernel. */
    switch (fs_node_kind_base(node->kind)) {
    case FS_NODE_REVERT: {
        g_autofree char *operation = g_strdup_printf("revert %s", node->snapshot);
        SnapRevertFlags flags = 0;

        if (!snap_revert_flags_parse(buf, size, &flags, &error)) {
            fs_reply_refused(req, ctx, node->domain, operation, error);
            return;
        }
        what = g_strdup_printf("%s: %s", node->domain, operation);
        r = fs_request_new(req, node->domain, node->snapshot, what);
        r->size = size;
        snap_engine_revert_async(ctx->engine, node->domain, node->snapshot, flags,
                                 r->cancellable, on_write_done, r);
        return;
    }
    case FS_NODE_STATE: {
        SnapDomainAction action;

        if (!snap_domain_action_parse(buf, size, &action, &error)) {
            fs_reply_refused(req, ctx, node->domain, "state", error);
            return;
        }
        what = g_strdup_printf("%s: state", node->domain);
        r = fs_request_new(req, node->domain, NULL, what);
        r->size = size;
        snap_engine_domain_action_async(ctx->engine, node->domain, action, r->cancellable,
                                        on_write_done, r);
        return;
    }
    case FS_NODE_CREATE:
        write_create(req, h, buf, size);
        return;
    case FS_NODE_FORGET: {
        g_autofree char *name = NULL;
        SnapDeleteFlags flags = 0;

        if (!snap_forget_parse(buf, size, &flags, &name, &error)) {
            fs_reply_refused(req, ctx, node->domain, ".forget", error);
            return;
        }
        what = g_strdup_printf("%s: .forget %s", node->domain, name);
        r = fs_request_new(req, node->domain, name, what);
        r->size = size;
        snap_engine_delete_async(ctx->engine, node->domain, name, flags, r->cancellable,
                                 on_tree_write_done, r);
        return;
    }
    case FS_NODE_UNDEFINE: {
        SnapUndefineMode mode;

        if (!snap_undefine_mode_parse(buf, size, &mode, &error)) {
            fs_reply_refused(req, ctx, node->domain, ".undefine", error);
            return;
        }
        what = g_strdup_printf("%s: .undefine", node->domain);
        r = fs_request_new(req, node->domain, NULL, what);
        r->size = size;
        snap_engine_undefine_async(ctx->engine, node->domain, mode, r->cancellable,
                                   on_write_done, r);
        return;
    }
    default:
        fuse_reply_err(req, EBADF);
        return;
    }
}

/* Takes what a `create` handle holds that no write completed; NULL when
 * there is nothing but whitespace. */
static GByteArray *
take_leftover(FsFileHandle *h)
{
    g_autoptr(GByteArray) doc = NULL;
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = g_mutex_locker_new(&h->lock);

    if (h->pending == NULL || is_blank(h->pending->data, h->pending->len))
        return NULL;
    doc = g_steal_pointer(&h->pending);
    h->pending = g_byte_array_new();
    return g_steal_pointer(&doc);
}

/* A leftover document has no write left to answer for it; the engine
 * still takes it, and records in `errors` why it refused it. */
static void
on_leftover_done(const GError *error, gpointer user_data)
{
}

static void
fs_op_release(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    FsContext *ctx = fs_ctx(req);
    FsFileHandle *h = handle_of(fi);
    g_autoptr(GByteArray) doc = take_leftover(h);

    /* Writes that did not end a document (the last of them one of
     * CREATE_PART_MIN_BYTES or more): the whole document is taken at
     * close. There is no flush handler, so that the kernel sends no FLUSH
     * for every close of every file (a third of the round trips of
     * `cat metadata.xml`). */
    if (doc != NULL)
        snap_engine_create_xml_async(ctx->engine, h->node->domain,
                                     (const char *)doc->data, doc->len, NULL,
                                     on_leftover_done, NULL);
    handle_close(ctx, h);
    fuse_reply_err(req, 0);
}

void
fs_ops_file_close_all(FsContext *ctx)
{
    GHashTableIter iter;
    gpointer h;

    g_hash_table_iter_init(&iter, ctx->open_files);
    while (g_hash_table_iter_next(&iter, &h, NULL))
        fs_file_handle_free(h);
    g_hash_table_remove_all(ctx->open_files);
}

static void
fs_op_setattr(fuse_req_t req, fuse_ino_t ino, struct stat *attr, int to_set,
              struct fuse_file_info *fi)
{
    FsContext *ctx = fs_ctx(req);
    g_autoptr(FsNode) node = fs_inode_table_get(ctx->inodes, ino);
    const int times = FUSE_SET_ATTR_ATIME | FUSE_SET_ATTR_MTIME |
                      FUSE_SET_ATTR_ATIME_NOW | FUSE_SET_ATTR_MTIME_NOW |
                      FUSE_SET_ATTR_CTIME;
    double entry_timeout, attr_timeout;
    FsNodeKind kind;
    struct stat st;

    if (node == NULL) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    kind = fs_node_kind_base(node->kind);
    if (ctx->read_only) {
        fuse_reply_err(req, EROFS);
        return;
    }
    /* `echo x > revert` truncates before it writes (O_TRUNC, or this
     * setattr when the kernel cannot pass O_TRUNC to open): accept it and
     * change nothing. */
    if ((kind == FS_NODE_REVERT || kind == FS_NODE_CREATE || kind == FS_NODE_STATE ||
         kind == FS_NODE_FORGET || kind == FS_NODE_UNDEFINE) &&
        (to_set & FUSE_SET_ATTR_SIZE) && attr->st_size == 0 &&
        (to_set & ~(FUSE_SET_ATTR_SIZE | times)) == 0) {
        if (!fs_tree_stat(ctx, node->kind, node->domain, node->snapshot, &st)) {
            fuse_reply_err(req, ENOENT);
            return;
        }
        fs_tree_timeouts(ctx, node->kind, &entry_timeout, &attr_timeout);
        fuse_reply_attr(req, &st, attr_timeout);
        return;
    }
    fuse_reply_err(req, EPERM);
}

void
fs_ops_file_init(struct fuse_lowlevel_ops *ops)
{
    ops->open = fs_op_open;
    ops->read = fs_op_read;
    ops->write = fs_op_write;
    ops->release = fs_op_release;
    ops->setattr = fs_op_setattr;
}
