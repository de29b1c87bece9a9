/* fs-context.h: what every request handler shares (engine, inodes, policy). */
#pragma once

#include <fuse_lowlevel.h>
#include <glib.h>

#include "snap-engine.h"
#include "inode-table.h"
#include "invalidator.h"

G_BEGIN_DECLS

/* The disk files' workers and open files (fs-ops-disks.c). */
typedef struct _FsDisks FsDisks;

/* The guest files' open files and pending requests (fs-ops-files.c). */
typedef struct _FsFiles FsFiles;

typedef struct {
    SnapEngine *engine;         /* owned */
    FsInodeTable *inodes;       /* owned */
    FsInvalidator *invalidator; /* owned; its thread starts after daemonizing */
    struct fuse_session *se;    /* not owned */
    double entry_timeout;       /* names, including negative lookups */
    double attr_timeout;        /* attributes, except the status files' */
    gboolean read_only;
    FsDisks *disks;   /* owned; NULL without -o disks (no disks/ then) */
    FsFiles *files;   /* owned; NULL without -o files (no files/ then) */
    GPtrArray *hosts; /* owned; a fleet's host names (the top level), else NULL */
    uid_t uid;        /* owner of every node: the mounting user */
    gid_t gid;
    gint64 mount_time; /* the root directory's times */
    /* The kernel sends no opendir/releasedir (FUSE_CAP_NO_OPENDIR_SUPPORT)
     * and caches every listing; a listing that takes several readdir
     * replies is kept here between them, per reader: each listing has a
     * generation, carried in its offsets (fs-ops-dir.c). */
    gboolean no_opendir;
    GMutex listings_lock;
    GHashTable *listings; /* generation (guint64) -> GPtrArray of FsDirEntry* */
    guint64 listing_gen;  /* the last generation handed out */
    /* The handles of open status, control and metadata files
     * (fs-ops-file.c): a RELEASE still in the kernel when the mount goes
     * never comes, and these are closed at teardown instead. */
    GMutex open_lock;
    GHashTable *open_files; /* set of FsFileHandle* */
} FsContext;

/* A context with an empty inode table and an idle invalidator; the engine
 * and session are filled in by main(). (transfer full) */
FsContext *fs_context_new(void);
void fs_context_free(FsContext *ctx);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(FsContext, fs_context_free)

static inline FsContext *
fs_ctx(fuse_req_t req)
{
    return fuse_req_userdata(req);
}

G_END_DECLS
