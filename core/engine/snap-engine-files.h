/* snap-engine-files.h: files/ (-o files): the guest's filesystems at each snapshot. */
#pragma once

#include "snap-engine.h"
#include "guest-files.h"

G_BEGIN_DECLS

/* What files/ is configured with. */
typedef struct {
    guint max; /* appliances running at once */
    GuestFilesLogFunc log;
    gpointer log_data;
} SnapFilesOptions;

/* TRUE when this build has libguestfs (-Dguestfs). */
gboolean snap_engine_files_supported(void);

/* Enables files/ on @engine: its appliances read each snapshot's disks
 * through the same exports as disks/. Call once, before any use.
 * SNAP_ERROR_UNSUPPORTED in a build without libguestfs. */
gboolean snap_engine_files_enable(SnapEngine *engine, const SnapFilesOptions *options,
                                  GError **error);

/* The appliances and caches of files/, or NULL when not enabled.
 * Owners are snap_engine_files_owner() keys; the owner of a snapshot
 * that is deleted is retired before its data goes. (transfer none) */
GuestFiles *snap_engine_guest_files(SnapEngine *engine);

/* The owner key of @snapshot of @domain. (transfer full) */
char *snap_engine_files_owner(const char *domain, const char *snapshot);

G_END_DECLS
