/* fs-attr.c: node kinds to modes, stable inode numbers and struct stat. */
#include "fs-attr.h"

#include <string.h>

static const struct {
    const char *name;
    mode_t mode;
} fs_attr_kinds[] = {
    [FS_NODE_ROOT] = {NULL, S_IFDIR | 0755},
    [FS_NODE_DOMAIN] = {NULL, S_IFDIR | 0755},
    [FS_NODE_DOMAIN_XML] = {"domain.xml", S_IFREG | 0444},
    [FS_NODE_STATE] = {"state", S_IFREG | 0644},
    [FS_NODE_CURRENT] = {"current", S_IFLNK | 0777},
    [FS_NODE_CREATE] = {"create", S_IFREG | 0600},
    [FS_NODE_ERRORS] = {"errors", S_IFREG | 0444},
    [FS_NODE_JOB] = {"job", S_IFREG | 0444},
    [FS_NODE_BY_NAME] = {".by-name", S_IFDIR | 0755},
    [FS_NODE_SNAPSHOT] = {NULL, S_IFDIR | 0755},
    [FS_NODE_METADATA] = {"metadata.xml", S_IFREG | 0444},
    [FS_NODE_REVERT] = {"revert", S_IFREG | 0600},
    [FS_NODE_DISKS] = {"disks", S_IFDIR | 0755},
    [FS_NODE_DISK] = {NULL, S_IFREG | 0444},
    [FS_NODE_FORGET] = {".forget", S_IFREG | 0600},
    [FS_NODE_UNDEFINE] = {".undefine", S_IFREG | 0600},
    [FS_NODE_SCREEN] = {"screen.png", S_IFREG | 0444},
    [FS_NODE_FILES] = {"files", S_IFDIR | 0755},
    /* The guest's own modes, from fs-ops-files.c. */
    [FS_NODE_GUEST] = {NULL, 0},
    [FS_NODE_HOST] = {NULL, S_IFDIR | 0755},
};

/* Disk files tell readers (cp, cat) to read in large blocks: each read
 * is a round trip to qemu-nbd. */
#define DISK_BLKSIZE (1024 * 1024)

const char *
fs_attr_kind_name(FsNodeKind kind)
{
    kind = fs_node_kind_base(kind);
    g_return_val_if_fail((gsize)kind < G_N_ELEMENTS(fs_attr_kinds), NULL);
    return fs_attr_kinds[kind].name;
}

mode_t
fs_attr_kind_mode(FsNodeKind kind)
{
    kind = fs_node_kind_base(kind);
    g_return_val_if_fail((gsize)kind < G_N_ELEMENTS(fs_attr_kinds), 0);
    return fs_attr_kinds[kind].mode;
}

gboolean
fs_attr_kind_is_volatile(FsNodeKind kind)
{
    kind = fs_node_kind_base(kind);
    return kind == FS_NODE_STATE || kind == FS_NODE_ERRORS || kind == FS_NODE_JOB ||
           kind == FS_NODE_DOMAIN_XML;
}

char *
fs_attr_disk_id(const char *snapshot, const char *target)
{
    return g_strconcat(snapshot, "/", target, NULL);
}

gboolean
fs_attr_disk_id_split(const char *id, char **snapshot, char **target)
{
    const char *slash = id != NULL ? strchr(id, '/') : NULL;

    if (slash == NULL || slash == id || slash[1] == '\0')
        return FALSE;
    *snapshot = g_strndup(id, slash - id);
    *target = g_strdup(slash + 1);
    return TRUE;
}

static guint64
fnv1a_update(guint64 hash, const char *s)
{
    /* The terminating NUL is hashed too, so ("ab", "c") and ("a", "bc")
     * differ. */
    const guchar *p = (const guchar *)(s != NULL ? s : "");

    do {
        hash ^= *p;
        hash *= G_GUINT64_CONSTANT(0x100000001b3);
    } while (*p++ != '\0');
    return hash;
}

guint64
fs_attr_ino(FsNodeKind kind, const char *domain, const char *snapshot)
{
    guint64 hash = G_GUINT64_CONSTANT(0xcbf29ce484222325);
    /* Nested kinds hash as they always did, so their numbers stay. */
    char k[3] = {(char)('A' + fs_node_kind_base(kind)),
                 fs_node_kind_is_flat(kind) ? 'F' : '\0', '\0'};

    if (kind == FS_NODE_ROOT)
        return 1;
    hash = fnv1a_update(hash, k);
    hash = fnv1a_update(hash, domain);
    hash = fnv1a_update(hash, snapshot);
    /* 0 is no inode at all and 1 is the root's. */
    if (hash <= 1)
        hash += 2;
    return hash;
}

void
fs_attr_fill(FsNodeKind kind, guint64 ino, const FsAttrValues *values, uid_t uid,
             gid_t gid, struct stat *st)
{
    guint64 data = values->has_allocated ? values->allocated : values->size;

    memset(st, 0, sizeof(*st));
    st->st_ino = ino;
    st->st_mode = fs_attr_kind_mode(kind);
    st->st_nlink = S_ISDIR(st->st_mode) ? values->nlink : 1;
    st->st_uid = uid;
    st->st_gid = gid;
    st->st_size = S_ISDIR(st->st_mode) ? 0 : (off_t)values->size;
    st->st_blksize = fs_node_kind_base(kind) == FS_NODE_DISK ? DISK_BLKSIZE : 4096;
    st->st_blocks = S_ISREG(st->st_mode) ? (blkcnt_t)((data + 511) / 512) : 0;
    st->st_atim.tv_sec = values->mtime;
    st->st_mtim.tv_sec = values->mtime;
    st->st_ctim.tv_sec = values->mtime;
}
