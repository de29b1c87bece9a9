/* fuse-tree.c: the benchmarks' FUSE ceiling for walks. Serves, read only,
 * a tree of the shape scripts/bench/browse makes snaptreefs show:
 * MOUNTPOINT/domNNN/s000/..., where each snapshot directory sIII holds
 * metadata.xml (788 fixed bytes), revert (empty) and its children (a
 * binary tree: the parent of sI is s((I-1)/2)); the few files of a domain
 * directory itself (domain.xml, state, current, create) are left out, one
 * in a hundred entries at 100 snapshots a domain. Every answer is computed
 * from the inode number: no table, no allocation but the reply buffers,
 * nothing beyond the FUSE protocol itself. It makes snaptreefs's choices
 * (one thread, readdirplus, no opendir, default_permissions, timeouts of
 * an hour, keep_cache), so what find, find -exec cat and ls -lR take
 * through it is the most any FUSE filesystem can give on this machine:
 * the bar against which browse sets snaptreefs.
 * --no-open also refuses open (FUSE_CAP_NO_OPEN_SUPPORT): the kernel then
 * sends no OPEN or RELEASE, which is what a warm cat walk would cost if
 * files needed no open at all.
 *   fuse-tree NDOM NSNAP MOUNTPOINT [--no-open]   (runs until unmounted) */
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <glib.h>
#include <signal.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define TIMEOUT 3600.0
#define META_SIZE 788
#define MAX_COUNT 1000000

typedef enum { K_ROOT, K_DOMAIN, K_SNAP, K_META, K_REVERT } Kind;

typedef struct {
    Kind kind;
    guint64 dom, snap;
} Node;

static guint64 ndom, nsnap;
static gboolean want_no_open, no_open, no_opendir;
static char meta[META_SIZE];
static uid_t uid;
static gid_t gid;

/* Inodes: 1 is the root; then a block per domain: its directory, then
 * per snapshot its directory, metadata.xml and revert. */
static guint64
block_size(void)
{
    return 1 + 3 * nsnap;
}

static fuse_ino_t
ino_of(const Node *n)
{
    guint64 base = 2 + n->dom * block_size();

    switch (n->kind) {
    case K_ROOT:
        return FUSE_ROOT_ID;
    case K_DOMAIN:
        return base;
    default:
        return base + 1 + 3 * n->snap + (n->kind - K_SNAP);
    }
}

static gboolean
node_of(fuse_ino_t ino, Node *n)
{
    guint64 x, off;

    if (ino == FUSE_ROOT_ID) {
        *n = (Node){K_ROOT, 0, 0};
        return TRUE;
    }
    if (ino < 2 || (x = ino - 2) / block_size() >= ndom)
        return FALSE;
    off = x % block_size();
    n->dom = x / block_size();
    n->snap = off == 0 ? 0 : (off - 1) / 3;
    n->kind = off == 0 ? K_DOMAIN : (Kind)(K_SNAP + (off - 1) % 3);
    return TRUE;
}

/* Number of child snapshots of snapshot @i. */
static guint
nchildren(guint64 i)
{
    return (2 * i + 1 < nsnap) + (2 * i + 2 < nsnap);
}

static void
fill_stat(const Node *n, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino_of(n);
    st->st_uid = uid;
    st->st_gid = gid;
    st->st_blksize = 4096;
    st->st_atime = st->st_mtime = st->st_ctime = 1700000000;
    switch (n->kind) {
    case K_ROOT:
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2 + ndom;
        break;
    case K_DOMAIN:
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 3;
        break;
    case K_SNAP:
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2 + nchildren(n->snap);
        break;
    case K_META:
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = META_SIZE;
        st->st_blocks = (META_SIZE + 511) / 512;
        break;
    case K_REVERT:
        st->st_mode = S_IFREG | 0600;
        st->st_nlink = 1;
        break;
    }
}

/* The parent directory of directory @n (the root's is itself). */
static Node
parent_of(const Node *n)
{
    switch (n->kind) {
    case K_DOMAIN:
        return (Node){K_ROOT, 0, 0};
    case K_SNAP:
        if (n->snap == 0)
            return (Node){K_DOMAIN, n->dom, 0};
        return (Node){K_SNAP, n->dom, (n->snap - 1) / 2};
    default:
        return (Node){K_ROOT, 0, 0};
    }
}

/* The entry at index @idx of directory @dir ("." and ".." first): its name
 * into @name and its node into @child; FALSE past the end. */
static gboolean
entry_at(const Node *dir, guint64 idx, char *name, size_t len, Node *child)
{
    guint64 c;

    if (idx == 0 || idx == 1) {
        g_strlcpy(name, idx == 0 ? "." : "..", len);
        *child = idx == 0 ? *dir : parent_of(dir);
        return TRUE;
    }
    idx -= 2;
    switch (dir->kind) {
    case K_ROOT:
        if (idx >= ndom)
            return FALSE;
        *child = (Node){K_DOMAIN, idx, 0};
        snprintf(name, len, "dom%03" G_GUINT64_FORMAT, idx);
        return TRUE;
    case K_DOMAIN:
        if (idx > 0)
            return FALSE;
        *child = (Node){K_SNAP, dir->dom, 0};
        g_strlcpy(name, "s000", len);
        return TRUE;
    case K_SNAP:
        if (idx < 2) {
            *child = (Node){idx == 0 ? K_META : K_REVERT, dir->dom, dir->snap};
            g_strlcpy(name, idx == 0 ? "metadata.xml" : "revert", len);
            return TRUE;
        }
        c = 2 * dir->snap + 1 + (idx - 2);
        if (idx > 3 || c >= nsnap)
            return FALSE;
        *child = (Node){K_SNAP, dir->dom, c};
        snprintf(name, len, "s%03" G_GUINT64_FORMAT, c);
        return TRUE;
    default:
        return FALSE;
    }
}

/* Whether @name is @prefix then a number printed with %03 (so "s7" and
 * "s0007" are not snapshots); the number into @n. */
static gboolean
parse_name(const char *name, const char *prefix, guint64 *n)
{
    char again[64];
    size_t plen = strlen(prefix);

    if (strncmp(name, prefix, plen) != 0 ||
        !g_ascii_string_to_unsigned(name + plen, 10, 0, G_MAXUINT32, n, NULL))
        return FALSE;
    snprintf(again, sizeof(again), "%s%03" G_GUINT64_FORMAT, prefix, *n);
    return strcmp(again, name) == 0;
}

static gboolean
child_named(const Node *dir, const char *name, Node *child)
{
    guint64 i;

    switch (dir->kind) {
    case K_ROOT:
        *child = (Node){K_DOMAIN, 0, 0};
        return parse_name(name, "dom", &child->dom) && child->dom < ndom;
    case K_DOMAIN:
        *child = (Node){K_SNAP, dir->dom, 0};
        return strcmp(name, "s000") == 0;
    case K_SNAP:
        if (strcmp(name, "metadata.xml") == 0 || strcmp(name, "revert") == 0) {
            *child = (Node){name[0] == 'm' ? K_META : K_REVERT, dir->dom, dir->snap};
            return TRUE;
        }
        *child = (Node){K_SNAP, dir->dom, 0};
        if (!parse_name(name, "s", &i) || i == 0 || i >= nsnap ||
            (i - 1) / 2 != dir->snap)
            return FALSE;
        child->snap = i;
        return TRUE;
    default:
        return FALSE;
    }
}

static void
tree_init(void *userdata, struct fuse_conn_info *conn)
{
    if (conn->capable & FUSE_CAP_READDIRPLUS)
        conn->want |= FUSE_CAP_READDIRPLUS;
    if (conn->capable & FUSE_CAP_READDIRPLUS_AUTO)
        conn->want |= FUSE_CAP_READDIRPLUS_AUTO;
    if (conn->capable & FUSE_CAP_NO_OPENDIR_SUPPORT) {
        conn->want |= FUSE_CAP_NO_OPENDIR_SUPPORT;
        no_opendir = TRUE;
    }
    if (want_no_open) {
        if (conn->capable & FUSE_CAP_NO_OPEN_SUPPORT) {
            conn->want |= FUSE_CAP_NO_OPEN_SUPPORT;
            no_open = TRUE;
        } else {
            g_printerr("fuse-tree: the kernel has no FUSE_CAP_NO_OPEN_SUPPORT; "
                       "serving open\n");
        }
    }
    /* As snaptreefs: max_pages follows max_write, and the kernel sizes its
     * readdir requests by it. */
    conn->max_write = 1024 * 1024;
    conn->want &= ~(FUSE_CAP_WRITEBACK_CACHE | FUSE_CAP_CACHE_SYMLINKS);
}

static void
tree_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e;
    Node dir, child;

    memset(&e, 0, sizeof(e));
    /* A miss is a negative entry the kernel keeps, as in snaptreefs. */
    e.entry_timeout = TIMEOUT;
    if (!node_of(parent, &dir)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (child_named(&dir, name, &child)) {
        e.ino = ino_of(&child);
        e.attr_timeout = TIMEOUT;
        fill_stat(&child, &e.attr);
    }
    fuse_reply_entry(req, &e);
}

static void
tree_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;
    Node n;

    if (!node_of(ino, &n)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    fill_stat(&n, &st);
    fuse_reply_attr(req, &st, TIMEOUT);
}

static void
tree_opendir(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    /* ENOSYS once, and the kernel stops sending opendir and releasedir. */
    if (no_opendir) {
        fuse_reply_err(req, ENOSYS);
        return;
    }
    fi->cache_readdir = 1;
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
}

static void
do_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off, gboolean plus)
{
    g_autofree char *buf = g_malloc(size);
    size_t pos = 0, need;
    char name[64];
    Node dir, child;
    guint64 idx;

    if (!node_of(ino, &dir)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    for (idx = off < 0 ? 0 : (guint64)off;
         entry_at(&dir, idx, name, sizeof(name), &child); idx++) {
        struct fuse_entry_param e;

        memset(&e, 0, sizeof(e));
        fill_stat(&child, &e.attr);
        if (!plus) {
            need = fuse_add_direntry(req, buf + pos, size - pos, name, &e.attr,
                                     (off_t)idx + 1);
        } else {
            /* "." and ".." get no dentry (ino 0), as in snaptreefs. */
            if (idx >= 2) {
                e.ino = e.attr.st_ino;
                e.entry_timeout = e.attr_timeout = TIMEOUT;
            }
            need = fuse_add_direntry_plus(req, buf + pos, size - pos, name, &e,
                                          (off_t)idx + 1);
        }
        if (need > size - pos)
            break;
        pos += need;
    }
    fuse_reply_buf(req, buf, pos);
}

static void
tree_readdir(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
             struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, FALSE);
}

static void
tree_readdirplus(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
                 struct fuse_file_info *fi)
{
    do_readdir(req, ino, size, off, TRUE);
}

static void
tree_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    Node n;

    /* ENOSYS once, and the kernel stops sending open and release. */
    if (no_open) {
        fuse_reply_err(req, ENOSYS);
        return;
    }
    if (!node_of(ino, &n)) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    if (n.kind != K_META && n.kind != K_REVERT) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    if ((fi->flags & O_ACCMODE) != O_RDONLY) {
        fuse_reply_err(req, EROFS);
        return;
    }
    fi->keep_cache = 1;
    fuse_reply_open(req, fi);
}

static void
tree_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
          struct fuse_file_info *fi)
{
    Node n;

    if (!node_of(ino, &n) || n.kind != K_META || off < 0 || off >= META_SIZE)
        fuse_reply_buf(req, NULL, 0);
    else
        fuse_reply_buf(req, meta + off, MIN(size, (size_t)(META_SIZE - off)));
}

/* No forget: inodes are computed, and libfuse answers forgets itself when
 * there is no handler. No release either: libfuse replies 0. */
static const struct fuse_lowlevel_ops tree_ops = {
    .init = tree_init,
    .lookup = tree_lookup,
    .getattr = tree_getattr,
    .opendir = tree_opendir,
    .readdir = tree_readdir,
    .readdirplus = tree_readdirplus,
    .open = tree_open,
    .read = tree_read,
};

static gboolean
parse_count(const char *s, guint64 *n)
{
    return g_ascii_string_to_unsigned(s, 10, 1, MAX_COUNT, n, NULL);
}

int
main(int argc, char **argv)
{
    static char options[] = "-odefault_permissions,fsname=fuse-tree";
    char *fuse_argv[] = {argv[0], options, NULL};
    struct fuse_args args = FUSE_ARGS_INIT(2, fuse_argv);
    struct fuse_session *se;
    int rc;

    if (argc == 5 && strcmp(argv[4], "--no-open") == 0)
        want_no_open = TRUE;
    if ((argc != 4 && !want_no_open) || !parse_count(argv[1], &ndom) ||
        !parse_count(argv[2], &nsnap)) {
        g_printerr(
            "usage: %s NDOM NSNAP MOUNTPOINT [--no-open]   (NDOM, NSNAP: 1 to %d)\n",
            argv[0], MAX_COUNT);
        return 2;
    }
    /* Lines of 63 characters, each ended by a newline, as text would be. */
    for (size_t i = 0; i < META_SIZE; i++)
        meta[i] = i % 64 == 63 ? '\n' : (char)('a' + i % 26);
    uid = getuid();
    gid = getgid();
    se = fuse_session_new(&args, &tree_ops, sizeof(tree_ops), NULL);
    /* The parse may have copied the arguments into memory of its own. */
    fuse_opt_free_args(&args);
    if (se == NULL)
        return 1;
    if (fuse_set_signal_handlers(se) != 0 || fuse_session_mount(se, argv[3]) != 0) {
        fuse_session_destroy(se);
        return 1;
    }
    rc = fuse_session_loop(se);
    fuse_session_unmount(se);
    fuse_remove_signal_handlers(se);
    fuse_session_destroy(se);
    /* The loop returns the signal that ended it, 0 on an unmount. */
    return rc == 0 || rc == SIGTERM || rc == SIGINT || rc == SIGHUP ? 0 : 1;
}
