/* snap-engine-screen.c: screen.png, the guest's display when a snapshot of
 * a running or paused domain was taken: taken just before the snapshot,
 * kept beside its metadata (STATE/snapshots/DOM/SNAP.png), gone with it. */
#include "snap-engine-ops.h"

#include <errno.h>
#include <glib/gstdio.h>

#include "snapshot-store.h"

char *
snap_screen_path(SnapEngine *engine, const char *domain, const char *snapshot)
{
    g_autofree char *file = NULL;

    if (snap_engine_is_remote(engine))
        return engine->catalogue->ops->screen_file(engine->catalogue, domain, snapshot);
    file = g_strconcat(snapshot, ".png", NULL);
    return g_build_filename(engine->state_dir, "snapshots", domain, file, NULL);
}

/* Where a picture waits until its snapshot exists: a hidden name in the
 * same directory, so that keeping it is a rename. */
static char *
screen_temp_path(SnapEngine *engine, const char *domain, const char *snapshot)
{
    g_autofree char *file = NULL;

    if (snap_engine_is_remote(engine)) {
        g_autofree char *path = snap_screen_path(engine, domain, snapshot);

        return path ? g_strconcat(path, ".tmp", NULL) : NULL;
    }
    file = g_strconcat(".", snapshot, ".png.tmp", NULL);
    return g_build_filename(engine->state_dir, "snapshots", domain, file, NULL);
}

guint32
snap_screen_size(SnapEngine *engine, const char *domain, const char *snapshot)
{
    g_autofree char *path = snap_screen_path(engine, domain, snapshot);
    GStatBuf st;

    if (path == NULL || g_stat(path, &st) < 0 || !S_ISREG(st.st_mode) ||
        st.st_size > G_MAXUINT32)
        return 0;
    return (guint32)st.st_size;
}

char *
snap_op_screen_take(SnapOp *op, const char *snapshot)
{
    SnapEngine *engine = op->engine;
    SnapBackend *backend = engine->backend;
    g_autofree char *tmp = NULL;
    g_autoptr(GError) error = NULL;

    tmp = screen_temp_path(engine, op->dom->name, snapshot);
    if (tmp == NULL)
        return NULL;
    /* A picture an interrupted create left is replaced. */
    g_unlink(tmp);
    if ((engine->state_dir == NULL ||
         snap_store_ensure_domain_dir(engine->state_dir, op->dom->name, &error)) &&
        backend->ops->screenshot(backend, op->dom->def, tmp, &error))
        return g_steal_pointer(&tmp);
    if (!g_error_matches(error, SNAP_ERROR, SNAP_ERROR_UNSUPPORTED)) {
        g_autofree char *msg = g_strdup_printf(
            "no screen.png for '%s' (the snapshot is taken all the same): %s", snapshot,
            error ? error->message : "unknown error");

        snap_op_report(op, op->opname, msg);
    }
    /* A half-written picture is not kept (a directory in its way is). */
    g_unlink(tmp);
    return NULL;
}

void
snap_op_screen_keep(SnapOp *op, const char *tmp, const char *snapshot)
{
    g_autofree char *path = snap_screen_path(op->engine, op->dom->name, snapshot);

    /* The metadata written next syncs this directory, the rename with it. */
    if (g_rename(tmp, path) < 0) {
        g_autofree char *msg = g_strdup_printf("cannot keep screen.png of '%s': %s",
                                               snapshot, g_strerror(errno));

        snap_op_report(op, op->opname, msg);
        g_unlink(tmp);
    }
}

void
snap_screen_remove(SnapEngine *engine, const char *domain, const char *snapshot)
{
    g_autofree char *path = snap_screen_path(engine, domain, snapshot);
    g_autofree char *tmp = screen_temp_path(engine, domain, snapshot);

    if (path != NULL && g_unlink(path) < 0 && errno != ENOENT)
        g_message("%s: cannot remove %s: %s", domain, path, g_strerror(errno));
    if (tmp != NULL)
        g_unlink(tmp);
}

GBytes *
snap_engine_snapshot_screen(SnapEngine *engine, const char *domain, const char *snapshot)
{
    g_autofree char *path = NULL;
    g_autofree char *data = NULL;
    gsize len = 0;

    if (!snap_engine_snapshot_info(engine, domain, snapshot, FALSE, NULL, NULL))
        return NULL;
    path = snap_screen_path(engine, domain, snapshot);
    if (path == NULL || !g_file_get_contents(path, &data, &len, NULL))
        return NULL;
    return g_bytes_new_take(g_steal_pointer(&data), len);
}
