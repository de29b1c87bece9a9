/* inode-table.h: FUSE nodeids <-> tree identities, with the kernel's lookup counts. */
#pragma once

#include <glib.h>
#include <sys/stat.h>

#include "fs-attr.h"

G_BEGIN_DECLS

/* One object the kernel knows by nodeid. Refcounted (fs_node_ref/unref)
 * because a handler may still hold it when the kernel forgets it. The
 * identity fields never change after creation; the rest belongs to the
 * table's lock. */
typedef struct {
    guint64 nodeid; /* never reused while mounted */
    FsNodeKind kind;
    char *domain;   /* NULL for the root; a GRefString, shared */
    char *snapshot; /* snapshot kinds (nested and flat); else NULL; shared */
    guint64 ino;    /* stable st_ino, fs_attr_ino() */
} FsNode;

FsNode *fs_node_ref(FsNode *node);
void fs_node_unref(FsNode *node);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FsNode, fs_node_unref)

typedef struct _FsInodeTable FsInodeTable;

/* A table holding only the root (nodeid 1). Thread-safe throughout. */
FsInodeTable *fs_inode_table_new(void);
void fs_inode_table_free(FsInodeTable *table);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FsInodeTable, fs_inode_table_free)

/* The node with @nodeid, attached or unlinked, or NULL. (transfer full) */
FsNode *fs_inode_table_get(FsInodeTable *table, guint64 nodeid);

/* The attached node of this identity, or NULL when the kernel was never
 * given one (so it can hold nothing to invalidate). (transfer full) */
FsNode *fs_inode_table_find(FsInodeTable *table, FsNodeKind kind, const char *domain,
                            const char *snapshot);

/* The nodeids of every attached node of @kind in @domain. */
GArray *fs_inode_table_find_all(FsInodeTable *table, FsNodeKind kind, const char *domain);

/* The attached node of this identity, created with a fresh nodeid when
 * there is none, with its lookup count raised by one and @st recorded as
 * its last attributes: call it right before a reply that hands the nodeid
 * to the kernel, and fs_inode_table_forget(1) if that reply fails.
 * (transfer full) */
FsNode *fs_inode_table_lookup_ref(FsInodeTable *table, FsNodeKind kind,
                                  const char *domain, const char *snapshot,
                                  const struct stat *st);

/* The kernel dropped @nlookup references; the node goes when none are
 * left. The root is never dropped. */
void fs_inode_table_forget(FsInodeTable *table, guint64 nodeid, guint64 nlookup);

/* The object of this identity is gone: its node becomes unlinked (getattr
 * answers its last attributes, lookups of the name create a new node) and
 * stays until the kernel forgets it. No-op when there is none. */
void fs_inode_table_detach(FsInodeTable *table, FsNodeKind kind, const char *domain,
                           const char *snapshot);

/* The domain is gone: every attached node of it is detached as above. */
void fs_inode_table_detach_domain(FsInodeTable *table, const char *domain);

/* Records @st as @node's last attributes. */
void fs_inode_table_set_stat(FsInodeTable *table, FsNode *node, const struct stat *st);

/* Copies @node's last attributes into @st; FALSE when none were recorded. */
gboolean fs_inode_table_last_stat(FsInodeTable *table, FsNode *node, struct stat *st);

G_END_DECLS
