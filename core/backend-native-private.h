/* backend-native-private.h: shared by the native backend's files only. */
#pragma once

#include "backend.h"
#include "qemu-vm.h"

G_BEGIN_DECLS

typedef struct {
    SnapBackend parent;
    char *state_dir;
    GMutex lock;     /* vms */
    GHashTable *vms; /* domain name -> QemuVm* (owned) */
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

/* The tags of every disk (qemu-img info -U), see SnapBackendOps. */
GHashTable *native_offline_disk_snapshots(const DomainDef *dom, GPtrArray *problems,
                                          GCancellable *cancellable);

/* ---- running: QMP jobs on the domain's QEMU ---- */

/* snapshot-save: memory and every internal disk of @snap. */
gboolean native_live_save(QemuVm *vm, const DomainDef *dom, const SnapshotDef *snap,
                          SnapProgressFunc progress, gpointer progress_data,
                          GCancellable *cancellable, GError **error);

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

G_END_DECLS
