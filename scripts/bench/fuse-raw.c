/* fuse-raw.c: the benchmarks' FUSE ceiling. Serves one file, read only, as
 * MOUNTPOINT/data, answering each read with a pread(2) of it and nothing
 * else: no NBD, no QEMU, no lookups. What `dd` gets through it is the most
 * any FUSE filesystem can give on this machine, the bar against which
 * scripts/bench/disks sets disks/vda. Same request sizes as snaptreefs
 * (1 MiB, asynchronous direct I/O, a multi-threaded loop).
 *   fuse-raw FILE MOUNTPOINT   (runs until unmounted) */
#include <errno.h>
#include <fcntl.h>
#include <fuse_lowlevel.h>
#include <glib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define DATA_INO 2

static int data_fd = -1;
static off_t data_size;

static void
raw_init(void *userdata, struct fuse_conn_info *conn)
{
    conn->max_write = 1024 * 1024;
    if (conn->capable & FUSE_CAP_ASYNC_DIO)
        conn->want |= FUSE_CAP_ASYNC_DIO;
}

static void
fill_stat(fuse_ino_t ino, struct stat *st)
{
    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    if (ino == FUSE_ROOT_ID) {
        st->st_mode = S_IFDIR | 0555;
        st->st_nlink = 2;
    } else {
        st->st_mode = S_IFREG | 0444;
        st->st_nlink = 1;
        st->st_size = data_size;
        st->st_blksize = 1024 * 1024;
    }
}

static void
raw_lookup(fuse_req_t req, fuse_ino_t parent, const char *name)
{
    struct fuse_entry_param e = {
        .ino = DATA_INO, .attr_timeout = 60, .entry_timeout = 60};

    if (parent != FUSE_ROOT_ID || strcmp(name, "data") != 0) {
        fuse_reply_err(req, ENOENT);
        return;
    }
    fill_stat(DATA_INO, &e.attr);
    fuse_reply_entry(req, &e);
}

static void
raw_getattr(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    struct stat st;

    fill_stat(ino, &st);
    fuse_reply_attr(req, &st, 60);
}

static void
raw_open(fuse_req_t req, fuse_ino_t ino, struct fuse_file_info *fi)
{
    if (ino != DATA_INO) {
        fuse_reply_err(req, EISDIR);
        return;
    }
    fi->direct_io = 1;
    fuse_reply_open(req, fi);
}

static void
raw_read(fuse_req_t req, fuse_ino_t ino, size_t size, off_t off,
         struct fuse_file_info *fi)
{
    g_autofree char *buf = g_malloc(MAX(size, 1));
    ssize_t n = pread(data_fd, buf, size, off);

    if (n < 0)
        fuse_reply_err(req, errno);
    else
        fuse_reply_buf(req, buf, (size_t)n);
}

static const struct fuse_lowlevel_ops raw_ops = {
    .init = raw_init,
    .lookup = raw_lookup,
    .getattr = raw_getattr,
    .open = raw_open,
    .read = raw_read,
};

int
main(int argc, char **argv)
{
    char *fuse_argv[] = {argv[0], NULL};
    struct fuse_args args = FUSE_ARGS_INIT(1, fuse_argv);
    struct fuse_loop_config *config;
    struct fuse_session *se;
    struct stat st;
    int rc;

    if (argc != 3) {
        g_printerr("usage: %s FILE MOUNTPOINT\n", argv[0]);
        return 2;
    }
    data_fd = open(argv[1], O_RDONLY | O_CLOEXEC);
    if (data_fd < 0 || fstat(data_fd, &st) < 0) {
        g_printerr("%s: %s\n", argv[1], g_strerror(errno));
        return 1;
    }
    data_size = st.st_size;
    se = fuse_session_new(&args, &raw_ops, sizeof(raw_ops), NULL);
    if (se == NULL || fuse_session_mount(se, argv[2]) != 0)
        return 1;
    config = fuse_loop_cfg_create();
    rc = fuse_session_loop_mt(se, config);
    fuse_loop_cfg_destroy(config);
    fuse_session_unmount(se);
    fuse_session_destroy(se);
    close(data_fd);
    return rc == 0 ? 0 : 1;
}
