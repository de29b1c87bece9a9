/* snap-engine-ops.h: the operations, run on a domain's worker by the
 * dispatcher (snap-engine-dispatch.c); they call only what
 * snap-engine-private.h declares and each other downwards (recover
 * finishes what create, delete and revert began; those use external,
 * disks and rebuild). */
#pragma once

#include "snap-engine-private.h"

G_BEGIN_DECLS

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

/* snap-engine-reconcile.c */

/* The start-up check of one domain's metadata against its images; reports
 * on the domain's errors, changes nothing. Runs on the domain's worker. */
void snap_engine_reconcile_domain(SnapOp *op);

/* An operation was queued, or the engine is stopping: a check waiting for
 * its turn looks again (see snap_engine_reconcile_domain()). */
void snap_engine_check_wake(SnapEngine *engine);

/* ---- disk exports (snap-engine-disks.c) ---- */

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

/* ---- files/ over those exports (snap-engine-files.c) ---- */

/* The same for the appliances reading a snapshot's disks (files/); no-ops
 * unless files/ is enabled. */
void snap_engine_files_retire(SnapEngine *engine, const char *domain,
                              const char *snapshot);
void snap_engine_files_unretire(SnapEngine *engine, const char *domain,
                                const char *snapshot);
void snap_engine_files_free(SnapEngine *engine);

/* What the operations call: files/ reads through the exports of disks/,
 * so its appliances are retired first and allowed again last (and freed
 * first), then the disks' exports. */
void snap_engine_exports_retire(SnapEngine *engine, const char *domain,
                                const char *snapshot);
void snap_engine_exports_unretire(SnapEngine *engine, const char *domain,
                                  const char *snapshot);
void snap_engine_exports_free(SnapEngine *engine);

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

/* ---- snapshot files rebuilt at load (snap-engine-rebuild.c) ---- */

/* snap-engine-rebuild.c: snapshot @name of @dom, whose file @path did not
 * parse (@why), rebuilt from the qcow2 tags of its disks; the file is
 * moved aside to PATH.corrupt and the rebuilt one written in its place.
 * What happened goes to the log and @problems. NULL when no disk holds
 * the tag (the file is then left as it is). (transfer full) */
SnapshotDef *snap_engine_rebuild_snapshot(SnapDomain *dom, const char *name,
                                          const char *path, const char *why,
                                          GPtrArray *problems);

/* ---- over a backend that owns the metadata (snap-engine-remote.c) ---- */

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

G_END_DECLS
