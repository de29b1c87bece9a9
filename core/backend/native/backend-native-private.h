/* backend-native-private.h: shared by the native backend's files only. */
#pragma once

#include "backend-native.h"
#include "qemu-vm.h"

G_BEGIN_DECLS

typedef struct {
    SnapDiskBackend parent;
    char *state_dir;
    GMutex lock;     /* vms */
    GHashTable *vms; /* domain name -> QemuVm* (owned) */
    /* Domains whose errors already say their disk-only snapshots are
     * crash-consistent (under lock). */
    GHashTable *unfrozen_noted;
    /* Agent sockets of reattached QEMUs, thawed once watching starts. */
    GPtrArray *thaw_at_watch;
    SnapBackendEventFunc event_func;
    gpointer event_data;
} NativeBackend;

/* ---- shut off: qemu-img on every disk ---- */

/* qemu-img snapshot -c on every internal disk of @snap; all or nothing. */
gboolean native_offline_create(const DomainDef *dom, const SnapshotDef *snap,
                               SnapProgressFunc progress, gpointer progress_data,
                               GCancellable *cancellable, GError **error);

/* qemu-img snapshot -a on every internal disk (each checked first when
 * there are several, so none changes unless all can). */
gboolean native_offline_apply(const DomainDef *dom, const SnapshotDef *snap,
                              SnapProgressFunc progress, gpointer progress_data,
                              GCancellable *cancellable, GError **error);

/* qemu-img snapshot -d; a disk without the tag is fine. */
gboolean native_offline_delete(const DomainDef *dom, const SnapshotDef *snap,
                               SnapProgressFunc progress, gpointer progress_data,
                               GCancellable *cancellable, GError **error);

/* The tags of every disk (qemu-img info -U), see SnapDiskBackendOps. */
GHashTable *native_offline_disk_snapshots(const DomainDef *dom, GPtrArray *problems,
                                          GCancellable *cancellable);

/* ---- external snapshots, shut off: qemu-img on image files ---- */

/* The backing chain of @file (SnapImageLayer*), read with the format
 * @dom's disks give (never probed): @file's own when it is a disk's
 * file, the one its overlay records when it lies in a disk's chain,
 * qcow2 (an overlay snaptreefs made) otherwise. (transfer full) */
GPtrArray *native_image_chain(const DomainDef *dom, const char *file, GError **error);

/* qemu-img create of the overlay each external disk of @snap names, on the
 * disk's image in @dom. */
gboolean native_offline_create_overlays(const DomainDef *dom, const SnapshotDef *snap,
                                        SnapProgressFunc progress, gpointer progress_data,
                                        GError **error);

/* qemu-img create of the overlay each external disk of @target names, on
 * the file @snap froze. */
gboolean native_offline_revert_overlays(const DomainDef *target, const SnapshotDef *snap,
                                        const char *state_dir, SnapProgressFunc progress,
                                        gpointer progress_data, GError **error);

gboolean native_offline_commit(const char *top, const char *base,
                               SnapProgressFunc progress, gpointer progress_data,
                               GError **error);

gboolean native_offline_rebase(const char *file, const char *backing,
                               const char *backing_format, gboolean unsafe,
                               SnapProgressFunc progress, gpointer progress_data,
                               GError **error);

gboolean native_remove_file(const char *file, GError **error);

/* A QMP job's progress for the domain's `job` file: "VERB 42%". */
typedef struct {
    const char *verb;
    SnapProgressFunc progress;
    gpointer progress_data;
} NativeJobProgress;

/* A QmpProgressFunc; @data is a NativeJobProgress. */
void native_job_progress(guint64 current, guint64 total, gpointer data);

/* ---- running: QMP jobs on the domain's QEMU ---- */

/* snapshot-save: memory and every internal disk of @snap. */
gboolean native_live_save(QemuVm *vm, const DomainDef *dom, const SnapshotDef *snap,
                          SnapProgressFunc progress, gpointer progress_data,
                          GCancellable *cancellable, GError **error);

/* FALSE with SNAP_ERROR_INVALID when @snap's name is the qcow2 ID of
 * another snapshot in one of its disks: snapshot-load looks a tag up as
 * an ID first and has no form that takes a name only, so such a load is
 * refused before anything changes. */
gboolean native_live_check_tag(const DomainDef *dom, const SnapshotDef *snap,
                               GError **error);

/* snapshot-load of @snap's memory and disks; then set the run state with
 * native_live_set_running(). */
gboolean native_live_load(QemuVm *vm, const DomainDef *dom, const SnapshotDef *snap,
                          SnapProgressFunc progress, gpointer progress_data,
                          GError **error);

/* snapshot-delete on every internal disk of @snap. */
gboolean native_live_delete(QemuVm *vm, const DomainDef *dom, const SnapshotDef *snap,
                            SnapProgressFunc progress, gpointer progress_data,
                            GError **error);

/* `stop` or `cont` unless QEMU is in that state already. */
gboolean native_live_set_running(QemuVm *vm, gboolean running, GError **error);

/* A disk-only snapshot of every internal disk of @snap in one QMP
 * transaction (the guest keeps running), its filesystems frozen around it
 * through the guest agent when the domain has one that answers. */
gboolean native_live_save_disk_only(NativeBackend *nb, QemuVm *vm, const DomainDef *dom,
                                    const SnapshotDef *snap, SnapProgressFunc progress,
                                    gpointer progress_data, GError **error);

/* ---- running, external: overlays, memory files, block jobs ---- */

/* Whether the domain's QEMU has @file open in a disk's chain. */
gboolean native_live_uses_file(QemuVm *vm, const char *file, gboolean *used,
                               GError **error);

/* block-commit of @top into @base; an active commit is completed (pivot). */
gboolean native_live_commit(QemuVm *vm, const char *top, const char *base,
                            SnapProgressFunc progress, gpointer progress_data,
                            GError **error);

/* block-stream into @file of what lies between it and @backing (NULL:
 * everything), which becomes its backing file. */
gboolean native_live_rebase(QemuVm *vm, const char *file, const char *backing,
                            SnapProgressFunc progress, gpointer progress_data,
                            GError **error);

/* An external snapshot of a running domain: memory to snap->memory_file
 * (when external; the guest is stopped meanwhile), then every external
 * disk's overlay in one transaction. */
gboolean native_live_save_external(QemuVm *vm, const DomainDef *dom,
                                   const SnapshotDef *snap, SnapProgressFunc progress,
                                   gpointer progress_data, GError **error);

/* migrate-incoming from @file into a QEMU started with -incoming defer. */
gboolean native_live_load_memory(QemuVm *vm, const char *file, SnapProgressFunc progress,
                                 gpointer progress_data, GError **error);

G_END_DECLS
