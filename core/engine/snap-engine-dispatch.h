/* snap-engine-dispatch.h: the domain workers (snap-engine-dispatch.c),
 * above the operations they run, below the engine's public calls. */
#pragma once

#include "snap-engine-ops.h"

G_BEGIN_DECLS

/* A domain worker's GThreadPool function: runs one SnapOp (@data), or
 * only frees it when the canceller answered it already. */
void snap_op_worker(gpointer data, gpointer pool_data);

/* The engine's canceller's GThreadPool function: answers a cancelled
 * queued operation, leaving its memory to the domain's worker. */
void snap_op_cancel_worker(gpointer data, gpointer pool_data);

/* Runs @op on this thread (its domain's worker, or inline when the domain
 * has none) and finishes it. */
void snap_op_run(SnapOp *op);

/* Queues @op on its domain's worker (kept until start when the engine has
 * not started; refused once it stops). */
void snap_op_submit(SnapOp *op);

/* Refusals that need no worker: no such domain, read-only. TRUE when @op
 * was finished here. */
gboolean snap_op_precheck(SnapOp *op);

/* A domain the backend has: added to the table (with a worker once the
 * engine runs; SNAP_CHANGE_DOMAIN_ADDED then), empty until a refresh
 * fills it. An existing one is returned as it is. (transfer none) */
SnapDomain *snap_engine_add_domain(SnapEngine *engine, const char *name);

/* Refreshes @dom from the backend now, on this thread (loading only). */
void snap_engine_refresh_now(SnapEngine *engine, SnapDomain *dom, guint flags);

/* Queues a refresh of @dom on its worker, unless one already waits. */
void snap_engine_queue_refresh(SnapEngine *engine, SnapDomain *dom, guint flags);

G_END_DECLS
