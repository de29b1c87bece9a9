/* snapshot-store.c: atomic, durable metadata files (temp, fsync, rename, fsync dir). */
#include "snapshot-store.h"

#include <errno.h>
#include <fcntl.h>
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "snap-error.h"

static gboolean
set_errno_error(GError **error, int err, const char *what, const char *path)
{
    g_set_error(error, SNAP_ERROR,
                err == ENOSPC ? SNAP_ERROR_NO_SPACE : SNAP_ERROR_FAILED,
                "cannot %s '%s': %s", what, path, g_strerror(err));
    return FALSE;
}

static gboolean
fsync_dir_of(const char *path, GError **error)
{
    g_autofree char *dir = g_path_get_dirname(path);
    int fd = open(dir, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    int err;

    if (fd < 0)
        return set_errno_error(error, errno, "open directory", dir);
    /* The rename or unlink is durable only once the directory is. */
    if (fsync(fd) < 0 && errno != EINVAL) {
        err = errno;
        close(fd);
        return set_errno_error(error, err, "sync directory", dir);
    }
    close(fd);
    return TRUE;
}

gboolean
snap_store_write_atomic(const char *path, const char *data, gsize len, GError **error)
{
    return snap_store_write_atomic_full(path, data, len, SNAP_STORE_SYNC_ALL, error);
}

gboolean
snap_store_write_atomic_full(const char *path, const char *data, gsize len,
                             SnapStoreSync sync, GError **error)
{
    /* The temp file sits beside @path so rename(2) stays on one file
     * system; it does not end in .xml, so a loader never takes it. A
     * spare file left there by snap_store_prepare_spare() saves creating
     * one now. */
    g_autofree char *dir = g_path_get_dirname(path);
    g_autofree char *tmp = g_build_filename(dir, SNAP_STORE_SPARE, NULL);
    gsize done = 0;
    int fd;
    int err;

    fd = open(tmp, O_WRONLY | O_TRUNC | O_CLOEXEC | O_NOFOLLOW);
    if (fd < 0) {
        g_free(tmp);
        tmp = g_strconcat(path, ".XXXXXX", NULL);
        fd = g_mkstemp_full(tmp, O_WRONLY | O_CLOEXEC, 0644);
    }
    if (fd < 0)
        return set_errno_error(error, errno, "create a file beside", path);

    while (done < len) {
        gssize n = write(fd, data + done, len - done);

        if (n < 0) {
            if (errno == EINTR)
                continue;
            err = errno;
            goto fail;
        }
        done += n;
    }
    if ((sync & SNAP_STORE_SYNC_FILE) && fsync(fd) < 0) {
        err = errno;
        goto fail;
    }
    if (close(fd) < 0) {
        err = errno;
        fd = -1;
        goto fail;
    }
    fd = -1;
    if (rename(tmp, path) < 0) {
        err = errno;
        goto fail;
    }
    return !(sync & SNAP_STORE_SYNC_DIR) || fsync_dir_of(path, error);

fail:
    if (fd >= 0)
        close(fd);
    g_unlink(tmp);
    return set_errno_error(error, err, "write", path);
}

gboolean
snap_store_remove(const char *path, GError **error)
{
    return snap_store_remove_full(path, SNAP_STORE_SYNC_DIR, error);
}

gboolean
snap_store_remove_full(const char *path, SnapStoreSync sync, GError **error)
{
    if (g_unlink(path) < 0) {
        if (errno == ENOENT)
            return TRUE;
        return set_errno_error(error, errno, "remove", path);
    }
    return !(sync & SNAP_STORE_SYNC_DIR) || fsync_dir_of(path, error);
}

char *
snap_store_snapshot_path(const char *state_dir, const char *domain, const char *snapshot)
{
    g_autofree char *file = g_strconcat(snapshot, ".xml", NULL);

    return g_build_filename(state_dir, "snapshots", domain, file, NULL);
}

gboolean
snap_store_ensure_domain_dir(const char *state_dir, const char *domain, GError **error)
{
    g_autofree char *dir = g_build_filename(state_dir, "snapshots", domain, NULL);

    if (g_mkdir_with_parents(dir, 0755) < 0)
        return set_errno_error(error, errno, "create directory", dir);
    return TRUE;
}

void
snap_store_prepare_spare(const char *dir)
{
    g_autofree char *spare = g_build_filename(dir, SNAP_STORE_SPARE, NULL);
    int fd = open(spare, O_WRONLY | O_CREAT | O_CLOEXEC | O_NOFOLLOW, 0644);

    if (fd < 0)
        g_debug("cannot prepare '%s': %s", spare, g_strerror(errno));
    else
        close(fd);
}
