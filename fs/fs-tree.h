/* fs-tree.h: the shape of the mounted tree, answered from the engine's memory. */
#pragma once

#include <errno.h>
#include <glib.h>
#include <sys/stat.h>

#include "fs-context.h"

G_BEGIN_DECLS

/* Fills @st for the object (@kind, @domain, @snapshot) as it is now;
 * FALSE when it does not exist (any more). */
gboolean fs_tree_stat(FsContext *ctx, FsNodeKind kind, const char *domain,
                      const char *snapshot, struct stat *st);

/* Resolves @name inside the directory @parent. Returns 0 and the child's
 * identity (@out_snapshot: transfer full, NULL for kinds without one), or
 * ENOENT / ENOTDIR. The child's domain is @parent's, or @name under the
 * root. */
/* The domain field of @parent's child @name: the name itself at the top,
 * "HOST/NAME" in a fleet's host directory, else @parent's. (transfer full) */
char *fs_tree_child_domain(const FsNode *parent, const char *name);

int fs_tree_lookup(FsContext *ctx, const FsNode *parent, const char *name,
                   FsNodeKind *out_kind, char **out_snapshot);

/* One directory entry of a listing, with its attributes as of the listing. */
typedef struct {
    char *name;
    FsNodeKind kind;
    char *domain;
    char *snapshot;
    struct stat st;
} FsDirEntry;

void fs_dir_entry_free(FsDirEntry *entry);

/* The entries of directory @dir, "." and ".." first (those two with only
 * st_ino and st_mode set), taken at once so offsets into it stay valid
 * while the tree changes. Sets @out_errno (ENOENT, ENOTDIR) and returns
 * NULL on failure. (transfer full: FsDirEntry *) */
GPtrArray *fs_tree_list(FsContext *ctx, const FsNode *dir, int *out_errno);

/* The target of the symlink `current` (@kind FS_NODE_CURRENT, the only
 * link), relative to its domain directory: the nested path while it is at
 * most 1024 bytes, else .by-name/SNAP; NULL when there is no current
 * snapshot. (transfer full) */
char *fs_tree_link_target(FsContext *ctx, FsNodeKind kind, const char *domain,
                          const char *snapshot);

/* The kernel cache timeouts for a node of @kind. */
void fs_tree_timeouts(FsContext *ctx, FsNodeKind kind, double *entry_timeout,
                      double *attr_timeout);

G_END_DECLS
