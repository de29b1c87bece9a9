/* snap-error.h: the SNAP_ERROR GError domain and its one mapping to errno. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

#define SNAP_ERROR (snap_error_quark())

/* Every failure the core reports carries one of these codes. Each maps to
 * exactly one errno at the FUSE boundary (snap_error_to_errno()). */
typedef enum {
    SNAP_ERROR_FAILED,      /* internal error                       -> EIO */
    SNAP_ERROR_NOT_FOUND,   /* no such domain or snapshot           -> ENOENT */
    SNAP_ERROR_EXISTS,      /* name already taken                   -> EEXIST */
    SNAP_ERROR_INVALID,     /* bad name, word or XML                -> EINVAL */
    SNAP_ERROR_NOT_CURRENT, /* mkdir outside the current snapshot   -> EPERM */
    SNAP_ERROR_BUSY,        /* conflicting state (e.g. running)     -> EBUSY */
    SNAP_ERROR_QEMU,        /* qemu-img / QEMU failed               -> EIO */
    SNAP_ERROR_UNSUPPORTED, /* not possible for this domain/disk    -> EOPNOTSUPP */
    SNAP_ERROR_READ_ONLY,   /* mounted -o ro                        -> EROFS */
    SNAP_ERROR_CANCELLED,   /* interrupted before touching a disk   -> EINTR */
    SNAP_ERROR_NO_SPACE,    /* ENOSPC writing metadata              -> ENOSPC */
    SNAP_ERROR_STALE,       /* an open disk's snapshot was deleted  -> ESTALE */
} SnapErrorCode;

GQuark snap_error_quark(void);

/* The errno for @error: SNAP_ERROR codes by the table in snap-error.c,
 * G_IO_ERROR and G_FILE_ERROR by their own meaning, anything else EIO.
 * @error must not be NULL. */
int snap_error_to_errno(const GError *error);

/* TRUE while @cancellable (may be NULL) is not cancelled; else FALSE with
 * SNAP_ERROR_CANCELLED, for the checks before an operation touches a
 * disk. */
gboolean snap_error_check_cancelled(GCancellable *cancellable, GError **error);

G_END_DECLS
