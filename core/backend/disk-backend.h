/* disk-backend.h: a backend that runs disk operations for an engine that
 * owns the snapshot metadata (its STATE directory): the native backend.
 * The engine decides what a snapshot is and journals it; this does it to
 * the disks, images and QEMU. */
#pragma once

#include "backend.h"
#include "snapshot-def.h"

G_BEGIN_DECLS

typedef struct _SnapDiskBackend SnapDiskBackend;

/* One image of a backing chain. */
typedef struct {
    char *file;
    char *format;
} SnapImageLayer;

void snap_image_layer_free(SnapImageLayer *layer);

/* An internal snapshot an image holds (image_tags). */
typedef struct {
    char *name;            /* the tag */
    gint64 date_sec;       /* when it was taken */
    guint64 vm_state_size; /* bytes of memory state; 0: disk only */
} SnapImageTag;

void snap_image_tag_free(SnapImageTag *tag);

typedef struct {
    /* Takes the disk (and memory) state of @snap on @dom: every disk that
     * @snap lists with snapshot='internal' gets the internal snapshot
     * @snap->name, with the memory too when @dom runs (snap->state is then
     * running or paused and snap->memory internal). Every disk it lists
     * with snapshot='external' gets the overlay its <source file> names
     * (a file the engine created empty), on top of the disk's image,
     * which a running QEMU then writes to; the memory of a running domain
     * goes to snap->memory_file when snap->memory is external. All or
     * nothing: when disk i fails, the snapshot is deleted again from disks
     * 0..i-1 before returning FALSE. */
    gboolean (*create)(SnapDiskBackend *self, const DomainDef *dom,
                       const SnapshotDef *snap, SnapProgressFunc progress,
                       gpointer progress_data, GCancellable *cancellable, GError **error);

    /* Returns @dom to @snap, as virDomainRevertToSnapshot: the disks, the
     * memory of a live snapshot, and the run state the snapshot was taken
     * in (or the one SNAP_REVERT_RUNNING/PAUSED ask for). @target is the
     * definition to run from then on (the snapshot's); @restart says that
     * a running QEMU must be replaced because it differs from @target
     * (the engine has checked SNAP_REVERT_FORCE for that). For an
     * external snapshot, each external disk of @target names a new
     * overlay (an empty file the engine reserved) to create on the file
     * the snapshot froze; a running QEMU is stopped first, and a memory
     * file is loaded into a QEMU started on @target. */
    gboolean (*revert)(SnapDiskBackend *self, const DomainDef *dom,
                       const DomainDef *target, gboolean restart, const SnapshotDef *snap,
                       SnapRevertFlags flags, SnapProgressFunc progress,
                       gpointer progress_data, GCancellable *cancellable, GError **error);

    /* Removes @snap's data from every disk that holds it; a disk that no
     * longer has it is not an error. */
    gboolean (*delete)(SnapDiskBackend *self, const DomainDef *dom,
                       const SnapshotDef *snap, SnapProgressFunc progress,
                       gpointer progress_data, GCancellable *cancellable, GError **error);

    /* The internal snapshot names each disk of @dom holds: a hash table
     * from disk target to a GPtrArray of names (strings). A disk that
     * cannot be read maps to NULL and its error goes to @problems.
     * (transfer full) */
    GHashTable *(*disk_snapshots)(SnapDiskBackend *self, const DomainDef *dom,
                                  GPtrArray *problems, GCancellable *cancellable);

    /* ---- external snapshots: image files and their chains ---- */

    /* The backing chain of @file: [0] is @file itself, then its backing
     * file, and so on. (transfer full: GPtrArray of SnapImageLayer*) */
    GPtrArray *(*image_chain)(SnapDiskBackend *self, const DomainDef *dom,
                              const char *file, GError **error);

    /* Merges the data of @top into @base, the image right under it, as
     * block-commit does. When a running QEMU of @dom uses @top, QEMU does
     * it and relinks what it has open above @top (@top being its active
     * layer, @base becomes the active layer); files it does not have open
     * still name @top as their backing: the caller rebases them. */
    gboolean (*commit)(SnapDiskBackend *self, const DomainDef *dom, const char *top,
                       const char *base, SnapProgressFunc progress,
                       gpointer progress_data, GError **error);

    /* Makes @backing (NULL: none; format @backing_format) the backing
     * file of @file. Safe (@unsafe FALSE): what @file shows is unchanged,
     * the data that differs is copied into it. Unsafe: only the link
     * changes, for a @backing that holds what the old one held. */
    gboolean (*rebase)(SnapDiskBackend *self, const DomainDef *dom, const char *file,
                       const char *backing, const char *backing_format, gboolean unsafe,
                       SnapProgressFunc progress, gpointer progress_data, GError **error);

    /* Removes an image (or memory) file that nothing uses any more; absent
     * is success. */
    gboolean (*remove_image)(SnapDiskBackend *self, const DomainDef *dom,
                             const char *file, GError **error);

    /* The internal snapshots image @file holds, read as @format (NULL:
     * probed), in the image's order. (transfer full: SnapImageTag*) */
    GPtrArray *(*image_tags)(SnapDiskBackend *self, const char *file, const char *format,
                             GCancellable *cancellable, GError **error);
} SnapDiskBackendOps;

/* A disk backend is a SnapBackend (its run-state half) first. */
struct _SnapDiskBackend {
    SnapBackend parent;
    const SnapDiskBackendOps *ops;
};

G_END_DECLS
