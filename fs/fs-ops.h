/* fs-ops.h: the FUSE lowlevel handlers, split by what they act on. */
#pragma once

#include <fuse_lowlevel.h>

#include "fs-context.h"

G_BEGIN_DECLS

/* Fills @ops with every handler of fs-ops-dir.c and fs-ops-file.c; the
 * session's userdata must be the FsContext. */
void fs_ops_init(struct fuse_lowlevel_ops *ops);

/* fs-ops-dir.c */
void fs_ops_dir_init(struct fuse_lowlevel_ops *ops);

/* fs-ops-file.c */
void fs_ops_file_init(struct fuse_lowlevel_ops *ops);

/* Closes the files the kernel left open (no RELEASE came before the
 * session ended); their pending create documents are dropped. */
void fs_ops_file_close_all(FsContext *ctx);

/* fs-ops-disks.c: wraps open, read, release (and sets lseek) so that the
 * disk files are served from worker threads; the other files go to the
 * handlers @ops held before. Call after fs_ops_file_init(). */
void fs_ops_disks_init(struct fuse_lowlevel_ops *ops);

/* fs-ops-files.c: wraps lookup, getattr, readlink, the directory and
 * file handlers, unlink and rmdir, so that files/ and below are answered
 * from the caches or each snapshot's queue, and the other mutations, so
 * that there they are EROFS; everything else goes to the handlers @ops
 * held before. Call last. */
void fs_ops_files_init(struct fuse_lowlevel_ops *ops);

/* Enables files/ on @engine with at most @max appliances at once; NULL
 * with the reason when this build cannot (no libguestfs). (transfer full) */
FsFiles *fs_files_new(SnapEngine *engine, guint max, GError **error);

/* Waits for the requests in progress, then closes the guest files the
 * kernel left open. Call before the engine is freed. NULL is allowed. */
void fs_files_free(FsFiles *files);

/* The workers of -o disks. Starts no thread until the first disk file
 * opens (the daemon forks after this). (transfer full) */
FsDisks *fs_disks_new(void);

/* Waits for the requests in progress, then closes the disk files the
 * kernel left open. Call before the engine is freed. NULL is allowed. */
void fs_disks_free(FsDisks *disks);

G_END_DECLS
