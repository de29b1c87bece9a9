/* fs-snapshot-dir.c: the table of a snapshot directory's own entries. */
#include "fs-snapshot-dir.h"

#include <string.h>
#include <sys/stat.h>

typedef gboolean (*PresentFunc)(FsContext *ctx, const char *domain, const char *snapshot);

static gboolean
always(FsContext *ctx, const char *domain, const char *snapshot)
{
    return TRUE;
}

/* disks/ exists only with -o disks, so a backup walk reads no disk. */
static gboolean
with_disks(FsContext *ctx, const char *domain, const char *snapshot)
{
    return ctx->disks != NULL;
}

/* files/ exists only with -o files, so a backup walk boots no appliance. */
static gboolean
with_files(FsContext *ctx, const char *domain, const char *snapshot)
{
    return ctx->files != NULL;
}

/* screen.png exists when the snapshot has a picture. */
static gboolean
with_screen(FsContext *ctx, const char *domain, const char *snapshot)
{
    SnapSnapshotInfo info;

    return snap_engine_snapshot_info(ctx->engine, domain, snapshot, FALSE, NULL, &info) &&
           info.screen_size > 0;
}

/* Add an entry here and both views show it. */
static const struct {
    FsNodeKind kind;
    PresentFunc present;
} own_entries[] = {
    {FS_NODE_METADATA, always},    {FS_NODE_REVERT, always},
    {FS_NODE_SCREEN, with_screen}, {FS_NODE_DISKS, with_disks},
    {FS_NODE_FILES, with_files},
};

GArray *
fs_snapshot_dir_own_kinds(FsContext *ctx, const char *domain, const char *snapshot)
{
    GArray *kinds =
        g_array_sized_new(FALSE, FALSE, sizeof(guint), G_N_ELEMENTS(own_entries));

    for (gsize i = 0; i < G_N_ELEMENTS(own_entries); i++) {
        guint kind = own_entries[i].kind;

        if (own_entries[i].present(ctx, domain, snapshot))
            g_array_append_val(kinds, kind);
    }
    return kinds;
}

gboolean
fs_snapshot_dir_own_lookup(FsContext *ctx, const char *domain, const char *snapshot,
                           const char *name, FsNodeKind *out_kind)
{
    for (gsize i = 0; i < G_N_ELEMENTS(own_entries); i++) {
        if (strcmp(name, fs_attr_kind_name(own_entries[i].kind)) != 0)
            continue;
        if (!own_entries[i].present(ctx, domain, snapshot))
            return FALSE;
        *out_kind = own_entries[i].kind;
        return TRUE;
    }
    return FALSE;
}

guint
fs_snapshot_dir_own_subdirs(FsContext *ctx, const char *domain, const char *snapshot)
{
    guint n = 0;

    for (gsize i = 0; i < G_N_ELEMENTS(own_entries); i++)
        if (S_ISDIR(fs_attr_kind_mode(own_entries[i].kind)) &&
            own_entries[i].present(ctx, domain, snapshot))
            n++;
    return n;
}
