/* snap-engine-files.c: files/ on the engine: which disks an appliance reads, and when it
 * must stop. */
#include "snap-engine-ops.h"
#include "snap-engine-files.h"

#include <string.h>

/* An appliance nobody uses stops after this, or after as long as its
 * launch took (20-30 s under TCG) when that is longer: long enough for a
 * tool that walks, then reads (find, then tar), and never more than a
 * relaunch would cost. */
#define FILES_IDLE_MS 5000
/* Each appliance's memory. Its kernel, guestfsd and the mounts need about
 * 200 MiB; the rest is the guest page cache, which caching listings and
 * reading files once each makes of little use. libguestfs's minimum is
 * 256; 512 leaves room for inspection and for filesystems whose mount
 * wants memory (btrfs, XFS log recovery of a running guest's snapshot).
 * QEMU touches guest memory lazily, so an appliance that only walked a
 * small filesystem costs far less. */
#define FILES_MEMORY_MB 512

char *
snap_engine_files_owner(const char *domain, const char *snapshot)
{
    /* Neither name can contain '/'. */
    return g_strconcat(domain, "/", snapshot, NULL);
}

GuestFiles *
snap_engine_guest_files(SnapEngine *engine)
{
    return engine->files;
}

#ifdef HAVE_GUESTFS

/* What keeps a snapshot's exports serving while an appliance reads them. */
static void
drives_close(gpointer hold)
{
    if (hold != NULL)
        g_ptr_array_unref(hold);
}

static GPtrArray *
drives_open(const char *owner, gpointer data, gpointer *out_hold, GError **error)
{
    SnapEngine *engine = data;
    const char *slash = strchr(owner, '/');
    g_autofree char *domain = g_strndup(owner, slash - owner);
    const char *snapshot = slash + 1;
    g_autoptr(GPtrArray) targets = snap_engine_snapshot_disks(engine, domain, snapshot);
    g_autoptr(GPtrArray) readers = NULL;
    g_autoptr(GPtrArray) drives = NULL;

    if (targets == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_STALE, "snapshot '%s' is gone",
                    snapshot);
        return NULL;
    }
    readers = g_ptr_array_new_with_free_func((GDestroyNotify)snap_disk_reader_close);
    drives = g_ptr_array_new_with_free_func((GDestroyNotify)guest_drive_free);
    for (guint i = 0; i < targets->len; i++) {
        SnapDiskReader *r =
            snap_engine_disk_open(engine, domain, snapshot, targets->pdata[i], error);
        GuestDrive *d;

        if (r == NULL)
            return NULL;
        g_ptr_array_add(readers, r);
        d = g_new0(GuestDrive, 1);
        d->target = g_strdup(targets->pdata[i]);
        d->socket = g_strdup(snap_disk_reader_socket(r));
        g_ptr_array_add(drives, d);
    }
    *out_hold = g_steal_pointer(&readers);
    return g_steal_pointer(&drives);
}

gboolean
snap_engine_files_supported(void)
{
    return TRUE;
}

gboolean
snap_engine_files_enable(SnapEngine *engine, const SnapFilesOptions *options,
                         GError **error)
{
    GuestFilesOptions opts = {
        .max = MAX(options->max, 1),
        .idle_ms = FILES_IDLE_MS,
        .memory_mb = FILES_MEMORY_MB,
        .drives_open = drives_open,
        .drives_close = drives_close,
        .drives_data = engine,
        .log = options->log,
        .log_data = options->log_data,
    };

    g_return_val_if_fail(engine->files == NULL, FALSE);
    engine->files = guest_files_new(&opts);
    return TRUE;
}

void
snap_engine_files_retire(SnapEngine *engine, const char *domain, const char *snapshot)
{
    g_autofree char *owner = NULL;

    if (engine->files == NULL)
        return;
    owner = snap_engine_files_owner(domain, snapshot);
    guest_files_retire(engine->files, owner);
}

void
snap_engine_files_unretire(SnapEngine *engine, const char *domain, const char *snapshot)
{
    g_autofree char *owner = NULL;

    if (engine->files == NULL)
        return;
    owner = snap_engine_files_owner(domain, snapshot);
    guest_files_unretire(engine->files, owner);
}

void
snap_engine_files_free(SnapEngine *engine)
{
    g_clear_pointer(&engine->files, guest_files_free);
}

#else /* !HAVE_GUESTFS */

gboolean
snap_engine_files_supported(void)
{
    return FALSE;
}

gboolean
snap_engine_files_enable(SnapEngine *engine, const SnapFilesOptions *options,
                         GError **error)
{
    g_set_error(error, SNAP_ERROR, SNAP_ERROR_UNSUPPORTED,
                "-o files needs libguestfs, and this build has none (meson -Dguestfs)");
    return FALSE;
}

void
snap_engine_files_retire(SnapEngine *engine, const char *domain, const char *snapshot)
{
}

void
snap_engine_files_unretire(SnapEngine *engine, const char *domain, const char *snapshot)
{
}

void
snap_engine_files_free(SnapEngine *engine)
{
}

#endif

void
snap_engine_exports_retire(SnapEngine *engine, const char *domain, const char *snapshot)
{
    /* The appliances reading its exports go first. */
    snap_engine_files_retire(engine, domain, snapshot);
    snap_engine_disks_retire(engine, domain, snapshot);
}

void
snap_engine_exports_unretire(SnapEngine *engine, const char *domain, const char *snapshot)
{
    snap_engine_disks_unretire(engine, domain, snapshot);
    snap_engine_files_unretire(engine, domain, snapshot);
}

void
snap_engine_exports_free(SnapEngine *engine)
{
    /* The appliances read the exports: they stop first. */
    snap_engine_files_free(engine);
    snap_engine_disks_free(engine);
}
