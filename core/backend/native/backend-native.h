/* backend-native.h: the native backend, a disk backend: qemu-img for
 * shut-off domains, QEMU and QMP for running ones. */
#pragma once

#include "disk-backend.h"

G_BEGIN_DECLS

/* The native backend over STATE directory @state_dir (the QEMUs' run
 * files live there). (transfer full: snap_backend_free(&self->parent)) */
SnapDiskBackend *snap_backend_native_new(const char *state_dir);

G_END_DECLS
