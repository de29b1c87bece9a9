/* snap-engine-private.h: the engine's internals, shared by snap-engine*.c
 * only: its structures and what lies below the operations (an operation's
 * life and shared helpers, snap-engine-op.c; the domain table,
 * snap-engine-domain.c).
 *
 * The engine's files in layers, each calling only the ones below:
 *   snap-engine.c, snap-engine-load.c,
 *   snap-engine-refresher.c          public calls, loading, refresher
 *   snap-engine-dispatch.c            workers: queue, claim, run by kind
 *   snap-engine-{create,delete,revert,recover,reconcile,remote}.c
 *                                     the operations (ops.h)
 *   snap-engine-{external,screen,rebuild,files,disks}.c
 *                                     what they share (ops.h; files above disks)
 *   snap-engine-read.c                the reads
 *   snap-engine-op.c, snap-engine-domain.c   this header */
#pragma once

#include "snap-engine.h"
#include "catalogue.h"
#include "disk-backend.h"
#include "domain-def.h"
#include "error-log.h"
#include "journal.h"
#include "snapshot-def.h"
#include "snapshot-store.h"
#include "snapshot-tree.h"

G_BEGIN_DECLS

typedef struct _SnapDomain SnapDomain;
typedef struct _SnapOp SnapOp;
typedef struct _SnapEngineDisks SnapEngineDisks;
typedef struct _SnapEngineRemote SnapEngineRemote;

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
    GThreadPool *pool;  /* max 1 thread: one operation at a time */
    GPtrArray *early;   /* ops submitted before snap_engine_start() */
    GHashTable *chains; /* image file -> its backing, cached (worker only) */
    gboolean removed;   /* undefined: out of the table, answering NOT_FOUND */
    /* A refresh from the backend waits in the queue (libvirt). */
    gint refresh_queued;
    /* Where the next refresh's sweep of snapshot XML starts (worker only). */
    guint sweep_next;
    /* Snapshots whose files claim <active> but lost to a later one at
     * load (an operation died before its deferred rewrite); recovery
     * rewrites them. NULL when none. */
    GPtrArray *stale_active;
    /* The journal keeps the intent of a live operation that failed while
     * its QEMU still ran; it is settled before the next operation. */
    gboolean recover_pending;
    /* Names a disk holds as internal snapshots with no metadata (found at
     * start, or left by .forget): a new snapshot may not take one, since
     * qcow2 would keep two tags of that name and find the older first.
     * Worker only; NULL when none. */
    GHashTable *orphan_tags;
};

struct _SnapEngine {
    char *state_dir;
    SnapEngineOptions opts;
    GRWLock lock;        /* all in-memory state of every domain */
    GHashTable *domains; /* name -> SnapDomain*; loses undefined domains */
    GPtrArray *removed;  /* undefined SnapDomain*, freed with the engine */
    /* The backend, of one of two kinds, chosen once in snap_engine_new():
     * @backend is its run-state half (both kinds); exactly one of @disk
     * (the engine owns the metadata in @state_dir) and @catalogue (the
     * backend owns it, @state_dir is NULL) is set, to the same object. */
    SnapBackend *backend;
    SnapDiskBackend *disk;
    SnapCatalogue *catalogue;
    GMutex start_lock; /* guards started and every early list */
    gboolean started;
    GThreadPool *cancel_pool; /* answers queued operations Ctrl-C cancelled */
    gint stopping; /* atomic; set: queued and new operations are answered, not run */
    /* The start-up checks running at once (snap-engine-reconcile.c). */
    GMutex check_lock;
    GCond check_cond;
    gint check_slots; /* free slots; below 0 while urgent checks overrun */
    SnapChangeFunc change_func;
    gpointer change_data;
    SnapEngineDisks *disks;    /* snap-engine-disks.c; made when first used */
    struct _GuestFiles *files; /* snap-engine-files.c; NULL unless -o files */
    /* snap-engine-remote.c: the refresher of a libvirt engine, else NULL. */
    SnapEngineRemote *remote;
};

/* What a SnapOp does. */
typedef enum {
    OP_CREATE,
    OP_CREATE_XML,
    OP_DELETE,
    OP_REVERT,
    OP_ACTION,
    OP_RECOVER,
    OP_RECONCILE,
    OP_FLUSH,
    OP_UNDEFINE,
    OP_REFRESH,
} OpKind;

/* A change event an operation queued, emitted once it is answered. */
typedef struct {
    SnapChangeKind kind;
    char *snapshot;
    char *parent;
    char *old_parent;
    char *message;
} PendingChange;

struct _SnapOp {
    OpKind kind;
    SnapEngine *engine;
    SnapDomain *dom; /* NULL when the domain does not exist */
    char *domain_name;
    char *name; /* snapshot */
    char *in_dir;
    gboolean in_current; /* create: in_dir is whatever is current then */
    char *xml;
    gsize len;
    guint flags;
    SnapDomainAction action;
    GCancellable *cancellable;
    SnapDoneFunc done;
    gpointer user_data;
    char *opname; /* "mkdir s1": the errors and job prefix */
    gboolean job_set;
    gboolean domain_file_changed;
    GArray *changes; /* of PendingChange */
    /* File work whose loss harms nothing, done after the reply so the
     * caller does not wait for it: the old current snapshot's file loses
     * its <active>, the journal is cleared. */
    char *post_inactive;
    gboolean post_journal_clear;
    gboolean journaled; /* an intent of this operation is in the journal */
    /* A queued operation that Ctrl-C cancels is answered at once by the
     * engine's canceller, not when its domain's worker reaches it; the
     * worker then only frees it. OP_QUEUED -> OP_CLAIMED (the worker runs
     * it) or OP_QUEUED -> OP_CANCELLING -> OP_CANCELLED (the canceller
     * answered it). */
    gint claim;
    gulong cancel_id;
};

/* Queues a change event of @op, emitted after its completion callback. */
void snap_op_change(SnapOp *op, SnapChangeKind kind, const char *snapshot,
                    const char *parent, const char *old_parent);

/* Adds "OPERATION: MESSAGE" to the domain's errors and queues the
 * SNAP_CHANGE_ERROR and DOMAIN_FILE events. Takes the writer lock. */
void snap_op_report(SnapOp *op, const char *operation, const char *message);

SnapDomain *snap_op_domain(SnapOp *op);

/* ---- helpers every operation shares (snap-engine-op.c) ---- */

/* The last line of a current snapshot's metadata.xml (libvirt's). */
#define SNAP_ACTIVE_LINE "  <active>1</active>\n"
#define SNAP_ACTIVE_LEN (sizeof(SNAP_ACTIVE_LINE) - 1)

/* Calls the engine's change function with @c; takes the reader lock. */
void snap_engine_emit_change(SnapEngine *engine, const char *domain,
                             const PendingChange *c);

/* The SnapProgressFunc of an operation (@data: its SnapOp): sets the job file. */
void snap_op_progress(const char *what, gpointer data);

/* The wall-clock time in seconds. */
gint64 snap_now_seconds(void);

/* @xml with SNAP_ACTIVE_LINE inserted last. (transfer full) */
char *snap_xml_with_active(const char *xml);

/* FALSE with SNAP_ERROR_CANCELLED once @op was cancelled. */
gboolean snap_op_check_cancelled(SnapOp *op, GError **error);

/* @dom's run state, from the backend. */
SnapDomainState snap_domain_state(SnapEngine *engine, SnapDomain *dom);

/* @node's XML, parsed. (transfer full) */
SnapshotDef *snap_node_def(SnapNode *node, GError **error);

/* Writes snapshot @name's file (@xml, with <active> when @current) as @sync says. */
gboolean snap_write_snapshot_file_full(SnapDomain *dom, const char *name, const char *xml,
                                       gboolean current, SnapStoreSync sync,
                                       GError **error);

/* Writes snapshot @name's file durably, with <active> when @current. */
gboolean snap_write_snapshot_file(SnapDomain *dom, const char *name, const char *xml,
                                  gboolean current, GError **error);

/* After @op's reply, @node's file (the old current) loses its <active>. */
void snap_op_rewrite_inactive(SnapOp *op, SnapNode *node);

/* Journals the intent @what of @op on snapshot @def and its internal disks. */
gboolean snap_op_journal_intent(SnapOp *op, const char *what, guint flags,
                                const DomainDef *ddef, const SnapshotDef *def,
                                GError **error);

/* Journals the intent of @op on external snapshot files: @files, @steps (@done done). */
gboolean snap_op_journal_intent_files(SnapOp *op, const char *what, const char *snapshot,
                                      GPtrArray *files, GPtrArray *steps, guint done,
                                      GError **error);

/* Journals the intent of an internal revert of @op to @def, with the
 * identity of the QEMU running now (step "run"). */
gboolean snap_op_journal_revert_intent(SnapOp *op, guint flags, const DomainDef *ddef,
                                       const SnapshotDef *def, GError **error);

/* Records durably that @op's step @verb happened (with the QEMU's identity
 * now), e.g. "disks-done"; see RECOVERY_POLICY in snap-engine-recover.c. */
gboolean snap_op_journal_step(SnapOp *op, const char *verb, GError **error);

/* "PID:STARTTIME" of the QEMU running @dom, "" when none. (transfer full) */
char *snap_domain_run_identity(SnapEngine *engine, SnapDomain *dom);

/* @op's intent goes from the journal once its reply is out. */
void snap_op_journal_clear(SnapOp *op);

/* After the backend failed: clears @op's intent unless its QEMU may still finish. */
void snap_op_journal_settle(SnapOp *op, gboolean live, GError **error);

/* @dom changed now (its mtime). Under the writer lock. */
void snap_touch(SnapDomain *dom);

/* Writes STATE/domains/NAME.xml durably. */
gboolean snap_write_domain_file(SnapDomain *dom, const char *xml, GError **error);

/* Makes @def (transfer full, already in domain.xml) @op's domain's definition. */
void snap_op_set_domain_def(SnapOp *op, DomainDef *def, char *def_xml);

/* ---- the op's life (snap-engine-op.c) ---- */

/* A new operation of @kind on @domain (op->dom NULL when there is no
 * such domain); @done gets its answer. (transfer full) */
SnapOp *snap_op_new(SnapEngine *engine, OpKind kind, const char *domain,
                    GCancellable *cancellable, SnapDoneFunc done, gpointer user_data);

void snap_op_free(SnapOp *op);

/* Answers @op (@error NULL: success): logs a failure in the domain's
 * errors, clears the job, emits the queued changes with no lock held,
 * then calls the completion callback. Does not free @op. */
void snap_op_answer(SnapOp *op, const GError *error);

/* Ends @op on its domain's worker: answers it, does its deferred file
 * work, frees it. */
void snap_op_finish(SnapOp *op, const GError *error);

/* Finishes @op with a new error @code, @message. */
void snap_op_refuse(SnapOp *op, SnapErrorCode code, const char *message);

/* ---- the domain table (snap-engine-domain.c) ---- */

/* The lines a domain's `errors` file keeps. */
#define ERROR_LOG_LINES 100

/* The domain @domain in the table, or NULL. (transfer none) */
SnapDomain *snap_engine_find_domain(SnapEngine *engine, const char *domain);

/* Every domain in the table, and with @removed_too every undefined one
 * (kept until the engine is freed), all taken at once (for the loops that run while
 * workers may undefine a domain). (transfer container) */
GPtrArray *snap_engine_domains(SnapEngine *engine, gboolean removed_too);

/* Frees @dom (NULL allowed); its worker is gone. */
void snap_domain_free(SnapDomain *dom);

/* The set of orphan tag names of @dom (see SnapDomain.orphan_tags), on
 * its worker. */
void snap_domain_orphan_add(SnapDomain *dom, const char *name);
void snap_domain_orphan_remove(SnapDomain *dom, const char *name);
gboolean snap_domain_orphan_has(SnapDomain *dom, const char *name);

/* ---- backends that own the metadata ----
 * state_dir is NULL: no file is written; the trees mirror the backend. */

static inline gboolean
snap_engine_is_remote(const SnapEngine *engine)
{
    return engine->catalogue != NULL;
}

typedef enum {
    SNAP_REFRESH_DEF = 1 << 0, /* read the domain's definition again */
    SNAP_REFRESH_ALL = 1 << 1, /* read every snapshot's XML again */
} SnapRefreshFlags;

G_END_DECLS
