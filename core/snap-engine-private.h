/* snap-engine-private.h: the engine's internals, shared by snap-engine*.c only. */
#pragma once

#include "snap-engine.h"
#include "backend.h"
#include "domain-def.h"
#include "error-log.h"
#include "journal.h"
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
    GHashTable *domains; /* name -> SnapDomain*; loses undefined domains */
    GPtrArray *removed;  /* undefined SnapDomain*, freed with the engine */
    SnapBackend *backend;
    GMutex start_lock; /* guards started and every early list */
    gboolean started;
    GThreadPool *cancel_pool; /* answers queued operations Ctrl-C cancelled */
    gint stopping; /* atomic; set: queued and new operations are answered, not run */
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

/* Before @snapshot's data leaves the disks (or its metadata goes): stops
 * the exports reading its disks and makes their readers stale; no export
 * of it starts again until snap_engine_disks_unretire(), called once the
 * snapshot is out of the tree or its deletion failed with the disks
 * untouched. Waits for the exports' processes to exit. */
void snap_engine_disks_retire(SnapEngine *engine, const char *domain,
                              const char *snapshot);
void snap_engine_disks_unretire(SnapEngine *engine, const char *domain,
                                const char *snapshot);

/* snap-engine-files.c: the same for the appliances reading a snapshot's
 * disks (files/); no-ops unless files/ is enabled. Called by the disks'
 * retire, unretire and free. */
void snap_engine_files_retire(SnapEngine *engine, const char *domain,
                              const char *snapshot);
void snap_engine_files_unretire(SnapEngine *engine, const char *domain,
                                const char *snapshot);
void snap_engine_files_free(SnapEngine *engine);

/* At snap_engine_free(), after the workers: stops every export. */
void snap_engine_disks_free(SnapEngine *engine);

/* The start-up check of one domain's metadata against its images; reports
 * on the domain's errors, changes nothing. Runs on the domain's worker. */
void snap_engine_reconcile_domain(SnapOp *op);

/* ---- the op machinery and shared helpers (snap-engine.c) ---- */

/* The last line of a current snapshot's metadata.xml (libvirt's). */
#define SNAP_ACTIVE_LINE "  <active>1</active>\n"
#define SNAP_ACTIVE_LEN (sizeof(SNAP_ACTIVE_LINE) - 1)

/* Calls the engine's change function with @c; takes the reader lock. */
void snap_engine_emit_change(SnapEngine *engine, const char *domain,
                             const PendingChange *c);

/* The SnapProgressFunc of an operation (@data: its SnapOp): sets the job file. */
void snap_op_progress(const char *what, gpointer data);

/* A domain worker's GThreadPool function: runs one SnapOp (@data). */
void snap_op_worker(gpointer data, gpointer pool_data);

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

/* ---- loading and the domain table (snap-engine-load.c) ---- */

/* snap-engine-rebuild.c: snapshot @name of @dom, whose file @path did not
 * parse (@why), rebuilt from the qcow2 tags of its disks; the file is
 * moved aside to PATH.corrupt and the rebuilt one written in its place.
 * What happened goes to the log and @problems. NULL when no disk holds
 * the tag (the file is then left as it is). (transfer full) */
SnapshotDef *snap_engine_rebuild_snapshot(SnapDomain *dom, const char *name,
                                          const char *path, const char *why,
                                          GPtrArray *problems);

/* The domain @domain in the table, or NULL. (transfer none) */
SnapDomain *snap_engine_find_domain(SnapEngine *engine, const char *domain);

/* ---- the operations, on the domain's worker ---- */

/* snap-engine-create.c */

/* Creates snapshot @op->name in @op->in_dir (mkdir). */
gboolean snap_op_create(SnapOp *op, GError **error);

/* Creates or redefines the snapshot @op->xml describes (the create file). */
gboolean snap_op_create_xml(SnapOp *op, GError **error);

/* The domain moves onto external snapshot @def's overlays (domain.xml, durably). */
gboolean snap_op_switch_to_overlays(SnapOp *op, const SnapshotDef *def, GError **error);

/* snap-engine-delete.c */

/* Deletes snapshot @op->name as @op->flags say. */
gboolean snap_op_delete(SnapOp *op, GError **error);

/* Deletes snapshot @name, resuming the interrupted delete @resume when not NULL. */
gboolean snap_op_delete_one_full(SnapOp *op, const char *name, gboolean metadata_only,
                                 gboolean write_current, SnapJournal *resume,
                                 GError **error);

/* Undefines @op's domain (mode in @op->flags). */
gboolean snap_op_undefine(SnapOp *op, GError **error);

/* The journaled steps of an undefine that removes @files; recovery repeats them. */
gboolean snap_op_undefine_steps(SnapOp *op, GPtrArray *files, GError **error);

/* "full" or "metadata". */
const char *snap_undefine_word(SnapUndefineMode mode);

/* snap-engine-revert.c */

/* Reverts to snapshot @op->name. */
gboolean snap_op_revert(SnapOp *op, GError **error);

/* Reverts @op's domain to @node with @flags. */
gboolean snap_op_do_revert(SnapOp *op, SnapNode *node, SnapRevertFlags flags,
                           GError **error);

/* Finishes an internal revert to @node with @flags whose disks are done:
 * domain.xml, @node current, and the run state @flags want while the
 * domain's QEMU is still the one of identity @run (see
 * snap_domain_run_identity()). Touches no disk. */
gboolean snap_op_finish_revert(SnapOp *op, SnapNode *node, SnapRevertFlags flags,
                               const char *run, GError **error);

/* Removes the images @files that nothing needs any more; a failure is only logged. */
void snap_op_drop_abandoned(SnapOp *op, GPtrArray *files);

/* snap-engine-recover.c */

/* Finishes or rolls back the journal's intent; FALSE when it stays. */
gboolean snap_op_recover(SnapOp *op, const char *label);

/* ---- external snapshots (snap-engine-external.c), on the worker ---- */

/* Refuses (SNAP_ERROR_INVALID) a snapshot that takes some disks
 * internally and others externally, or whose kind differs from the
 * domain's other snapshots: commits and overlays would lose internal
 * snapshots held in the files they merge or drop. */
gboolean snap_ext_check_mixing(SnapDomain *dom, const SnapshotDef *def, GError **error);

/* Chooses and creates (empty, O_EXCL) the overlay file of every external
 * disk of the new snapshot @def, and its memory file when it has external
 * memory; a file the XML named must be new and in the disk's directory.
 * Adds each to @files; on failure removes them again. */
gboolean snap_ext_reserve_create(SnapDomain *dom, SnapshotDef *def, GPtrArray *files,
                                 GError **error);

/* Removes the files in @files (reserved, never used). */
void snap_ext_discard(GPtrArray *files);

/* @dom's definition once @def was taken: its external disks on their
 * overlays. (transfer full) */
DomainDef *snap_ext_def_after_create(SnapDomain *dom, const SnapshotDef *def,
                                     GError **error);

/* The definition to revert to for external snapshot @snap: its recorded
 * <domain> with every external disk on a new overlay, whose file is
 * reserved and added to @files. (transfer full) */
DomainDef *snap_ext_revert_target(SnapDomain *dom, const SnapshotDef *snap,
                                  GPtrArray *files, GError **error);

/* Records that @overlay, just made, rests on @backing, so that its chain
 * needs no qemu-img run while it stays unwritten. */
void snap_ext_remember_overlay(SnapDomain *dom, const char *overlay, const char *backing);

/* The active images of @old_def that no snapshot needs once @new_def is
 * the definition, and that are overlays made on a snapshot's image (never
 * a file the user brought). (transfer full: char*) */
GPtrArray *snap_ext_abandoned(SnapDomain *dom, const DomainDef *old_def,
                              const DomainDef *new_def);

/* FALSE when @file is still needed: it is, or lies in the backing chain
 * of, the image of a snapshot other than @skip or an active disk. */
gboolean snap_ext_verify_unused(SnapDomain *dom, const char *file, SnapNode *skip,
                                GError **error);

/* The steps that delete external snapshot @snap's data (GPtrArray of
 * GStrv): "commit TOP BASE", "relink FILE BACKING FORMAT", "rebase FILE
 * BACKING FORMAT", "rename OLD NEW" (metadata naming OLD names NEW),
 * "remove FILE", "remove-memory FILE". (transfer full) */
GPtrArray *snap_ext_plan_delete(SnapDomain *dom, SnapNode *node, const SnapshotDef *snap,
                                GError **error);

/* Runs one step on image files; "rename" is left to the caller. Each is
 * safe to run again after a crash; "remove" first checks that nothing
 * other than @node needs the file. */
gboolean snap_ext_run_file_step(SnapDomain *dom, SnapNode *node, char **step,
                                SnapProgressFunc progress, gpointer progress_data,
                                GError **error);

/* ---- backends that own the metadata (snap-engine-remote.c) ----
 * state_dir is NULL: no file is written; the trees mirror the backend. */

static inline gboolean
snap_engine_is_remote(const SnapEngine *engine)
{
    return engine->backend->ops->domain_view != NULL;
}

typedef enum {
    SNAP_REFRESH_DEF = 1 << 0, /* read the domain's definition again */
    SNAP_REFRESH_ALL = 1 << 1, /* read every snapshot's XML again */
} SnapRefreshFlags;

/* A domain the backend has: added to the table (with a worker once the
 * engine runs; SNAP_CHANGE_DOMAIN_ADDED then), empty until a refresh
 * fills it. An existing one is returned as it is. (transfer none) */
SnapDomain *snap_engine_add_domain(SnapEngine *engine, const char *name);

/* Every domain in the table, and with @removed_too every undefined one
 * (kept until the engine is freed), all taken at once (for the loops that run while
 * workers may undefine a domain). (transfer container) */
GPtrArray *snap_engine_domains(SnapEngine *engine, gboolean removed_too);

/* Refreshes @dom from the backend now, on this thread (loading only). */
void snap_engine_refresh_now(SnapEngine *engine, SnapDomain *dom, guint flags);

/* Queues a refresh of @dom on its worker, unless one already waits. */
void snap_engine_queue_refresh(SnapEngine *engine, SnapDomain *dom, guint flags);

/* The domain of @op leaves the table (SNAP_CHANGE_DOMAIN_REMOVED). */
void snap_op_unlink_domain(SnapOp *op);

/* Makes @op's domain what the backend says: snapshots added, removed,
 * moved (libvirt re-parents on delete), XML changed (@hint, or every one
 * with SNAP_REFRESH_ALL; new ones and the children of removed ones are
 * always read), current, definition, run state; each difference queues
 * exactly its change event. A domain the backend no longer has is
 * unlinked. FALSE when the backend could not answer (tree unchanged). */
gboolean snap_remote_refresh(SnapOp *op, guint flags, const char *hint);

/* The mutations, through the backend, each followed by a refresh. */
gboolean snap_remote_create(SnapOp *op, const char *in_dir, gboolean in_current,
                            const char *name, GError **error);
gboolean snap_remote_create_xml(SnapOp *op, const char *xml, GError **error);
gboolean snap_remote_delete(SnapOp *op, const char *name, SnapDeleteFlags flags,
                            GError **error);
gboolean snap_remote_revert(SnapOp *op, const char *name, SnapRevertFlags flags,
                            GError **error);
gboolean snap_remote_action(SnapOp *op, SnapDomainAction action, GError **error);
gboolean snap_remote_undefine(SnapOp *op, SnapUndefineMode mode, GError **error);

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

/* ---- screen.png (snap-engine-screen.c) ---- */

/* Where @snapshot's picture is kept: STATE/snapshots/DOM/SNAP.png, or the
 * backend's own place (libvirt: its cache). (transfer full) */
char *snap_screen_path(SnapEngine *engine, const char *domain, const char *snapshot);

/* The size of @snapshot's picture file; 0 when it has none. Reads the
 * disk: callers store it in the node (screen_size). */
guint32 snap_screen_size(SnapEngine *engine, const char *domain, const char *snapshot);

/* Takes the picture of @op's domain for the snapshot @snapshot about to
 * be taken, into a temporary file whose path it returns; NULL when there
 * is none (no display, not running, or a failure, which gets an errors
 * line). (transfer full) */
char *snap_op_screen_take(SnapOp *op, const char *snapshot);

/* Makes the temporary picture @tmp the snapshot's screen.png. */
void snap_op_screen_keep(SnapOp *op, const char *tmp, const char *snapshot);

/* Removes @snapshot's picture (and any temporary one): it goes with the
 * snapshot. */
void snap_screen_remove(SnapEngine *engine, const char *domain, const char *snapshot);

G_END_DECLS
