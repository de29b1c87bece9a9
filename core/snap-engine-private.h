/* snap-engine-private.h: the engine's internals, shared by snap-engine*.c only. */
#pragma once

#include "snap-engine.h"
#include "backend.h"
#include "domain-def.h"
#include "error-log.h"
#include "snapshot-tree.h"

G_BEGIN_DECLS

typedef struct _SnapDomain SnapDomain;
typedef struct _SnapOp SnapOp;

/* One domain. The worker of the domain is the only thread that changes
 * it, so the worker reads it without the lock and takes the writer lock
 * only to change it; every other thread reads under the reader lock. */
struct _SnapDomain {
    SnapEngine *engine;
    char *name;
    DomainDef *def;
    char *def_xml; /* domain.xml: domain_def_format(def) */
    SnapTree *tree;
    ErrorLog *errors;
    char *job; /* the `job` file; "" when idle */
    gint64 mtime;
    GThreadPool *pool; /* max 1 thread: one operation at a time */
    GPtrArray *early;  /* ops submitted before snap_engine_start() */
    /* Snapshots whose files claim <active> but lost to a later one at
     * load (an operation died before its deferred rewrite); recovery
     * rewrites them. NULL when none. */
    GPtrArray *stale_active;
    /* The journal keeps the intent of a live operation that failed while
     * its QEMU still ran; it is settled before the next operation. */
    gboolean recover_pending;
};

struct _SnapEngine {
    char *state_dir;
    SnapEngineOptions opts;
    GRWLock lock;        /* all in-memory state of every domain */
    GHashTable *domains; /* name -> SnapDomain*; fixed after load */
    SnapBackend *backend;
    GMutex start_lock; /* guards started and every early list */
    gboolean started;
    GThreadPool *cancel_pool; /* answers queued operations Ctrl-C cancelled */
    SnapChangeFunc change_func;
    gpointer change_data;
};

/* Queues a change event of @op, emitted after its completion callback. */
void snap_op_change(SnapOp *op, SnapChangeKind kind, const char *snapshot,
                    const char *parent, const char *old_parent);

/* Adds "OPERATION: MESSAGE" to the domain's errors and queues the
 * SNAP_CHANGE_ERROR and DOMAIN_FILE events. Takes the writer lock. */
void snap_op_report(SnapOp *op, const char *operation, const char *message);

SnapDomain *snap_op_domain(SnapOp *op);

/* The start-up check of one domain's metadata against its images; reports
 * on the domain's errors, changes nothing. Runs on the domain's worker. */
void snap_engine_reconcile_domain(SnapOp *op);

G_END_DECLS
