/* snap-engine-refresher.h: an engine over a backend that owns the
 * metadata, loaded and kept in step (snap-engine-refresher.c). */
#pragma once

#include "snap-engine-dispatch.h"

G_BEGIN_DECLS

/* At snap_engine_new(): every domain of the backend, fully read. */
gboolean snap_remote_load(SnapEngine *engine, GError **error);

/* Starts the refresher thread: every REFRESH_PERIOD (and at once on the
 * backend's events) it lets the backend reconnect, adds new domains and
 * queues a refresh of every domain. */
void snap_remote_start(SnapEngine *engine);

/* Stops the refresher thread (before the workers go). */
void snap_remote_stop(SnapEngine *engine);

/* Frees what the refresher used (after the backend's event thread went). */
void snap_remote_free(SnapEngine *engine);

G_END_DECLS
