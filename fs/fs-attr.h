/* fs-attr.h: the attributes of every kind of node in the tree (pure). */
#pragma once

#include <glib.h>
#include <sys/stat.h>

G_BEGIN_DECLS

/* What a node is; together with its domain and snapshot names this is its
 * identity, which decides its nodeid while mounted and its st_ino forever. */
typedef enum {
    FS_NODE_ROOT,
    FS_NODE_DOMAIN,     /* MOUNT/NAME/ */
    FS_NODE_DOMAIN_XML, /* NAME/domain.xml */
    FS_NODE_STATE,      /* NAME/state */
    FS_NODE_CURRENT,    /* NAME/current (symlink) */
    FS_NODE_CREATE,     /* NAME/create */
    FS_NODE_ERRORS,     /* NAME/errors */
    FS_NODE_JOB,        /* NAME/job */
    FS_NODE_BY_NAME,    /* NAME/.by-name/ (hidden from NAME's listing) */
    /* Was .by-name/SNAP as a symlink; its slot keeps the kinds after it,
     * and so their inode numbers, where they were. No node has it. */
    FS_NODE_RETIRED_LINK,
    FS_NODE_SNAPSHOT, /* a snapshot's directory */
    FS_NODE_METADATA, /* SNAP/metadata.xml */
    FS_NODE_REVERT,   /* SNAP/revert */
    FS_NODE_DISKS,    /* SNAP/disks/ (-o disks) */
    FS_NODE_DISK,     /* SNAP/disks/TARGET; its snapshot is "SNAP/TARGET" */
    FS_NODE_FORGET,   /* NAME/.forget: metadata-only delete */
    FS_NODE_UNDEFINE, /* NAME/.undefine: remove the domain */
    FS_NODE_SCREEN,   /* SNAP/screen.png, when the snapshot has a picture */
    FS_NODE_FILES,    /* SNAP/files/ (-o files) */
    FS_NODE_GUEST,    /* SNAP/files/PATH; its snapshot is "SNAP/PATH" */
    FS_NODE_HOST,     /* MOUNT/HOST/ of a fleet; its domain field is HOST,
                       * its domains' "HOST/NAME" */
    /* A flag on the kinds above: the object as seen under the flat view,
     * NAME/.by-name/SNAP/... A directory inode has one dentry in the
     * kernel, so the flat directory of a snapshot, and everything under
     * it, is another node than the nested one (another st_ino too). */
    FS_NODE_FLAT = 1 << 8,
} FsNodeKind;

/* @kind without FS_NODE_FLAT: what the node is, whatever the view. */
static inline FsNodeKind
fs_node_kind_base(FsNodeKind kind)
{
    return (FsNodeKind)(kind & ~FS_NODE_FLAT);
}

/* TRUE when @kind is under NAME/.by-name/SNAP/. */
static inline gboolean
fs_node_kind_is_flat(FsNodeKind kind)
{
    return (kind & FS_NODE_FLAT) != 0;
}

/* @base in the view of @like (flat or nested). */
static inline FsNodeKind
fs_node_kind_as(FsNodeKind base, FsNodeKind like)
{
    return (FsNodeKind)(base | (like & FS_NODE_FLAT));
}

/* The snapshot field of an FS_NODE_DISK's identity: "SNAP/TARGET"
 * (snapshot names hold no '/'). (transfer full) */
char *fs_attr_disk_id(const char *snapshot, const char *target);

/* Splits such a field into its snapshot and target (transfer full);
 * FALSE when @id is not one. */
gboolean fs_attr_disk_id_split(const char *id, char **snapshot, char **target);

/* The variable part of a node's attributes, read from the engine. */
typedef struct {
    guint64 size; /* files: content length; symlinks: target length */
    gint64 mtime; /* epoch seconds; also atime and ctime */
    guint nlink;  /* directories: 2 + subdirectories; others 1 */
    /* Files: the bytes that hold data, for st_blocks (sparse disk files
     * report fewer than their size); 0 with has_allocated FALSE means all. */
    gboolean has_allocated;
    guint64 allocated;
} FsAttrValues;

/* The fixed name of a node kind inside its parent ("domain.xml"), or NULL
 * for kinds named after their object (domains, snapshots, disks). The
 * functions taking a kind accept flat ones. */
const char *fs_attr_kind_name(FsNodeKind kind);

/* The file type and permission bits of @kind (S_IFDIR | 0755, ...). */
mode_t fs_attr_kind_mode(FsNodeKind kind);

/* TRUE for the files whose content may change before their inode is
 * told (state, errors, job, domain.xml): no attribute caching, direct I/O. */
gboolean fs_attr_kind_is_volatile(FsNodeKind kind);

/* A stable 64-bit inode number for the identity (@kind, @domain,
 * @snapshot): FNV-1a over the three, never 0 or 1 (1 is the root's). The
 * same identity gets the same number across restarts; a flat kind's
 * differs from its nested one's. */
guint64 fs_attr_ino(FsNodeKind kind, const char *domain, const char *snapshot);

/* Fills @st for a node of @kind with inode number @ino, owned by
 * @uid/@gid. Every field is set; nothing is read from anywhere else. */
void fs_attr_fill(FsNodeKind kind, guint64 ino, const FsAttrValues *values, uid_t uid,
                  gid_t gid, struct stat *st);

G_END_DECLS
