/* fs-snapshot-dir.h: a snapshot directory's own entries (metadata.xml,
 * revert, disks/, ...): the one table that both the nested directory and
 * the flat one (.by-name/SNAP/) show. */
#pragma once

#include <glib.h>

#include "fs-context.h"

G_BEGIN_DECLS

/* The kinds (nested, FsNodeKind as guint) of the entries @snapshot's
 * directory holds besides its child snapshots, in listing order, as they
 * are for it now; their names are fs_attr_kind_name(). Does not check
 * that @snapshot exists. (transfer full) */
GArray *fs_snapshot_dir_own_kinds(FsContext *ctx, const char *domain,
                                  const char *snapshot);

/* The own entry of @snapshot named @name: TRUE and its nested kind in
 * @out_kind, FALSE when @name is none of them (a child snapshot's name,
 * say). Does not check that @snapshot exists. */
gboolean fs_snapshot_dir_own_lookup(FsContext *ctx, const char *domain,
                                    const char *snapshot, const char *name,
                                    FsNodeKind *out_kind);

/* How many of @snapshot's own entries are directories (disks/, ...):
 * its st_nlink is 2 + this + its child snapshots (none in the flat view). */
guint fs_snapshot_dir_own_subdirs(FsContext *ctx, const char *domain,
                                  const char *snapshot);

G_END_DECLS
