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

G_END_DECLS
