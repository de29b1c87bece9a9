/* snap-error.c: the SNAP_ERROR domain and the one place GErrors become errnos. */
#include "snap-error.h"

#include <errno.h>
#include <gio/gio.h>

/* The first argument is stringified into the quark name. */
/* clang-format off */
G_DEFINE_QUARK(snap-error-quark, snap_error)
/* clang-format on */

/* Indexed by SnapErrorCode; the FUSE layer relies on each code meaning
 * exactly one errno, so this table is the only place that decides it. */
/* clang-format off */
static const int snap_error_errnos[] = {
    [SNAP_ERROR_FAILED] = EIO,
    [SNAP_ERROR_NOT_FOUND] = ENOENT,
    [SNAP_ERROR_EXISTS] = EEXIST,
    [SNAP_ERROR_INVALID] = EINVAL,
    [SNAP_ERROR_NOT_CURRENT] = EPERM,
    [SNAP_ERROR_BUSY] = EBUSY,
    [SNAP_ERROR_QEMU] = EIO,
    [SNAP_ERROR_UNSUPPORTED] = EOPNOTSUPP,
    [SNAP_ERROR_READ_ONLY] = EROFS,
    [SNAP_ERROR_CANCELLED] = EINTR,
    [SNAP_ERROR_NO_SPACE] = ENOSPC,
    [SNAP_ERROR_STALE] = ESTALE,
};
/* clang-format on */

static int
io_error_to_errno(int code)
{
    switch (code) {
    case G_IO_ERROR_NOT_FOUND:
        return ENOENT;
    case G_IO_ERROR_EXISTS:
        return EEXIST;
    case G_IO_ERROR_PERMISSION_DENIED:
        return EACCES;
    case G_IO_ERROR_NO_SPACE:
        return ENOSPC;
    case G_IO_ERROR_CANCELLED:
        return EINTR;
    case G_IO_ERROR_INVALID_ARGUMENT:
        return EINVAL;
    case G_IO_ERROR_READ_ONLY:
        return EROFS;
    case G_IO_ERROR_BUSY:
        return EBUSY;
    case G_IO_ERROR_TIMED_OUT:
        return ETIMEDOUT;
    default:
        return EIO;
    }
}

static int
file_error_to_errno(int code)
{
    switch (code) {
    case G_FILE_ERROR_NOENT:
        return ENOENT;
    case G_FILE_ERROR_EXIST:
        return EEXIST;
    case G_FILE_ERROR_ACCES:
        return EACCES;
    case G_FILE_ERROR_NOSPC:
        return ENOSPC;
    case G_FILE_ERROR_ROFS:
        return EROFS;
    default:
        return EIO;
    }
}

int
snap_error_to_errno(const GError *error)
{
    g_return_val_if_fail(error != NULL, EIO);

    if (error->domain == SNAP_ERROR) {
        if (error->code >= 0 && (gsize)error->code < G_N_ELEMENTS(snap_error_errnos))
            return snap_error_errnos[error->code];
        return EIO;
    }
    if (error->domain == G_IO_ERROR)
        return io_error_to_errno(error->code);
    if (error->domain == G_FILE_ERROR)
        return file_error_to_errno(error->code);
    return EIO;
}

gboolean
snap_error_check_cancelled(GCancellable *cancellable, GError **error)
{
    if (!g_cancellable_is_cancelled(cancellable))
        return TRUE;
    g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_CANCELLED, "operation cancelled");
    return FALSE;
}
