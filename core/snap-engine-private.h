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
typedef struct _SnapEngineDisks SnapEngineDisks;

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
    SnapEngineDisks *disks; /* snap-engine-disks.c; made when first used */
};

/* Queues a change event of @op, emitted after its completion callback. */
void snap_op_change(SnapOp *op, SnapChangeKind kind, const char *snapshot,
                    const char *parent, const char *old_parent);

/* Adds "OPERATION: MESSAGE" to the domain's errors and queues the
 * SNAP_CHANGE_ERROR and DOMAIN_FILE events. Takes the writer lock. */
void snap_op_report(SnapOp *op, const char *operation, const char *message);

SnapDomain *snap_op_domain(SnapOp *op);

/* Before @snapshot's data leaves the disks (or its metadata goes): stops
 * the exports reading its disks and makes their readers stale; no export
 * of it starts again until snap_engine_disks_unretire(), called once the
 * snapshot is out of the tree or its deletion failed with the disks
 * untouched. Waits for the exports' processes to exit. */
void snap_engine_disks_retire(SnapEngine *engine, const char *domain,
                              const char *snapshot);
void snap_engine_disks_unretire(SnapEngine *engine, const char *domain,
                                const char *snapshot);

/* At snap_engine_free(), after the workers: stops every export. */
void snap_engine_disks_free(SnapEngine *engine);

/* The start-up check of one domain's metadata against its images; reports
 * on the domain's errors, changes nothing. Runs on the domain's worker. */
void snap_engine_reconcile_domain(SnapOp *op);

G_END_DECLS
