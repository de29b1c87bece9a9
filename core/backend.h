/* backend.h: what the engine needs from whatever runs the snapshots.
 *
 * A table of functions, so that the native backend (qemu-img, later QMP)
 * and a libvirt backend can sit behind the same engine. Every function is
 * called on the domain's worker thread, one at a time per domain, and may
 * block. */
#pragma once

#include <gio/gio.h>
#include "domain-def.h"
#include "snapshot-def.h"
#include "snap-engine.h"

G_BEGIN_DECLS

typedef struct _SnapBackend SnapBackend;

/* Reports what a long step is doing, for the domain's `job` file. */
typedef void (*SnapProgressFunc)(const char *what, gpointer user_data);

typedef struct {
    const char *name;

    /* The run state of @dom (native: shut off unless its QEMU runs). */
    SnapDomainState (*domain_state)(SnapBackend *self, const DomainDef *dom);

    /* Takes the disk (and memory) state of @snap on @dom: every disk that
     * @snap lists with snapshot='internal' gets the internal snapshot
     * @snap->name. All or nothing: when disk i fails, the snapshot is
     * deleted again from disks 0..i-1 before returning FALSE. */
    gboolean (*create)(SnapBackend *self, const DomainDef *dom,
                       const SnapshotDef *snap, SnapProgressFunc progress,
                       gpointer progress_data, GCancellable *cancellable,
                       GError **error);

    /* Returns every disk of @snap to it. */
    gboolean (*revert)(SnapBackend *self, const DomainDef *dom,
                       const SnapshotDef *snap, SnapRevertFlags flags,
                       SnapProgressFunc progress, gpointer progress_data,
                       GCancellable *cancellable, GError **error);

    /* Removes @snap's data from every disk that holds it; a disk that no
     * longer has it is not an error. */
    gboolean (*delete)(SnapBackend *self, const DomainDef *dom,
                       const SnapshotDef *snap, SnapProgressFunc progress,
                       gpointer progress_data, GCancellable *cancellable,
                       GError **error);

    /* The internal snapshot names each disk of @dom holds: a hash table
     * from disk target to a GPtrArray of names (strings). A disk that
     * cannot be read maps to NULL and its error goes to @problems.
     * (transfer full) */
    GHashTable *(*disk_snapshots)(SnapBackend *self, const DomainDef *dom,
                                  GPtrArray *problems, GCancellable *cancellable);

    void (*free)(SnapBackend *self);
} SnapBackendOps;

struct _SnapBackend {
    const SnapBackendOps *ops;
};

/* The native backend: qemu-img for shut-off domains. (transfer full) */
SnapBackend *snap_backend_native_new(const char *state_dir);

static inline void snap_backend_free(SnapBackend *backend)
{
    if (backend)
        backend->ops->free(backend);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapBackend, snap_backend_free)

G_END_DECLS
