/* snap-engine.h: the core API, the only header the FUSE daemon includes.
 *
 * A SnapEngine owns the domains and snapshot trees of one STATE directory.
 *
 * Threads: every read function may be called from any thread at any time;
 * it answers from memory under a reader lock, never waits for QEMU and
 * returns copies (transfer full) or plain values. Mutations are queued on
 * the domain's own worker: one at a time per domain, in submission order,
 * domains in parallel. Their completion callback runs on that worker
 * thread (or, for input refused before queuing, on the caller's thread
 * before the *_async function returns). A failed mutation records one
 * line in the domain's `errors` file itself. */
#pragma once

#include <gio/gio.h>
#include "control-words.h"
#include "snap-error.h"
#include "snap-types.h"

G_BEGIN_DECLS

typedef struct _SnapEngine SnapEngine;

typedef struct {
    gboolean read_only;    /* every mutation fails with SNAP_ERROR_READ_ONLY */
    gboolean no_reconcile; /* skip the start-up check against the images */
    /* -o memory=no: mkdir of a running or paused domain takes a disk-only
     * snapshot (as <memory snapshot='no'/> in `create`), not its memory. */
    gboolean memory_no;
    /* Not NULL: the libvirt backend on this connection URI instead of a
     * STATE directory (snap_engine_new's @state_dir is then NULL). The
     * trees mirror libvirt's domains and snapshots, names escaped as
     * backend-libvirt-names.h says; libvirt's changes show up within
     * about half a second. */
    const char *libvirt_uri;
    /* libvirt backend: where screen.png files are kept (NULL: none). */
    const char *cache_dir;
    /* Not NULL (NULL-terminated, two or more): a fleet of libvirt hosts
     * instead of libvirt_uri; the domains are then "HOST/DOMAIN" and
     * snap_engine_hosts() names the hosts. */
    const char *const *libvirt_uris;
    /* disks/ will be read (-o disks): the libvirt backend then needs a
     * local URI, since qemu-nbd opens the image files libvirt names. */
    gboolean disks;
} SnapEngineOptions;

/* Loads STATE/domains/NAME.xml and STATE/snapshots/NAME/SNAP.xml. A domain
 * or snapshot file that does not parse is skipped and reported in that
 * domain's errors (nothing is deleted). Fails only when @state_dir itself
 * is unusable. Starts no thread (the daemon forks after this): workers
 * start in snap_engine_start(). @opts may be NULL. With opts->libvirt_uri
 * it connects to libvirt instead (@state_dir NULL) and reads every domain
 * and snapshot from there; fails when the connection does. (transfer full) */
SnapEngine *snap_engine_new(const char *state_dir, const SnapEngineOptions *opts,
                            GError **error);

/* The hosts of a fleet mount (opts->libvirt_uris), in the order given;
 * NULL for any other engine. (transfer full: char*) */
GPtrArray *snap_engine_hosts(SnapEngine *engine);

/* Starts the workers, finishes or rolls back operations a crash
 * interrupted (STATE/journal/), and queues the start-up reconcile of every
 * domain on its worker (metadata against `qemu-img info`), so mounting is
 * not delayed by it. Mutations submitted before this wait for it. */
void snap_engine_start(SnapEngine *engine);

/* Stops the engine: every operation that has not started, queued or
 * submitted from now on, is answered with SNAP_ERROR_CANCELLED and never
 * runs; the running ones finish (and are answered). Returns when no
 * worker runs. Idempotent. */
void snap_engine_stop(SnapEngine *engine);

/* Stops the engine (snap_engine_stop()), then frees. NULL is allowed. */
void snap_engine_free(SnapEngine *engine);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapEngine, snap_engine_free)

/* ---- change notification ------------------------------------------------ */

typedef enum {
    SNAP_CHANGE_SNAPSHOT_ADDED,   /* @snapshot appeared under @parent */
    SNAP_CHANGE_SNAPSHOT_REMOVED, /* @snapshot vanished from under @old_parent */
    SNAP_CHANGE_SNAPSHOT_MOVED,   /* @snapshot moved from @old_parent to @parent */
    SNAP_CHANGE_SNAPSHOT_XML,     /* @snapshot's metadata.xml content changed */
    SNAP_CHANGE_CURRENT,          /* the `current` link changed or (dis)appeared */
    SNAP_CHANGE_DOMAIN_FILE,      /* domain.xml, state, errors or job changed */
    SNAP_CHANGE_ERROR,            /* a line was added to `errors`: @message */
    SNAP_CHANGE_DOMAIN_REMOVED,   /* the domain was undefined: every name in it is gone */
    SNAP_CHANGE_DOMAIN_ADDED,     /* a domain appeared (libvirt backend) */
} SnapChangeKind;

/* Parents are snapshot names; NULL means the domain directory itself. */
typedef struct {
    SnapChangeKind kind;
    const char *domain;
    const char *snapshot;
    const char *parent;
    const char *old_parent;
    const char *message; /* SNAP_CHANGE_ERROR: the line, for the log */
} SnapChange;

typedef void (*SnapChangeFunc)(const SnapChange *change, gpointer user_data);

/* Sets the one listener for changes. It is called without engine locks
 * held, on the worker thread for the changes of an operation, before that
 * operation's completion callback (so caches can forget the old tree
 * before the reply reports the new one); the domain-file changes of a
 * refusal may come on the caller's thread. It must not wait for the
 * reply of a request that is still in flight (e.g. a notification that
 * takes a directory lock the mkdir being answered holds): queue those. */
void snap_engine_set_change_func(SnapEngine *engine, SnapChangeFunc func,
                                 gpointer user_data);

/* ---- reads: domains ------------------------------------------------------ */

/* Domain names, sorted. (transfer full: array owns the strings) */
GPtrArray *snap_engine_list_domains(SnapEngine *engine);

typedef struct {
    SnapDomainState state;
    guint nroots; /* snapshots without a parent */
    guint nsnapshots;
    gboolean has_current;
    gint64 mtime; /* last change on this domain, epoch seconds */
} SnapDomainInfo;

/* FALSE when there is no such domain. */
gboolean snap_engine_domain_info(SnapEngine *engine, const char *domain,
                                 SnapDomainInfo *info);

typedef enum {
    SNAP_DOMAIN_FILE_XML,    /* domain.xml: the definition, paths absolute */
    SNAP_DOMAIN_FILE_STATE,  /* "running\n" | "paused\n" | "shutoff\n" */
    SNAP_DOMAIN_FILE_ERRORS, /* the last errors, one a line */
    SNAP_DOMAIN_FILE_JOB,    /* the operation in progress, or empty */
} SnapDomainFile;

/* The content of one of a domain's files, or NULL when there is no such
 * domain. (transfer full) */
GBytes *snap_engine_domain_file(SnapEngine *engine, const char *domain,
                                SnapDomainFile file);

/* ---- reads: snapshots ---------------------------------------------------- */

typedef struct {
    gint64 creation_time; /* epoch seconds */
    guint nchildren;
    gboolean is_current;
    gsize xml_size;    /* exact size of metadata.xml */
    gsize screen_size; /* exact size of screen.png; 0: there is none */
} SnapSnapshotInfo;

/* Looks up @snapshot of @domain. With @parent_check TRUE it also requires
 * that its parent is @parent (NULL: that it is a root), which is what a
 * lookup in a directory needs. FALSE when not found. @info may be NULL. */
gboolean snap_engine_snapshot_info(SnapEngine *engine, const char *domain,
                                   const char *snapshot, gboolean parent_check,
                                   const char *parent, SnapSnapshotInfo *info);

typedef struct {
    char *name;
    SnapSnapshotInfo info;
} SnapEntry;

void snap_entry_free(SnapEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapEntry, snap_entry_free)

/* The children of @parent (NULL: the roots), taken atomically, ordered by
 * creation time then name. NULL when the domain or parent does not exist.
 * (transfer full: GPtrArray of SnapEntry*) */
GPtrArray *snap_engine_list_children(SnapEngine *engine, const char *domain,
                                     const char *parent);

/* libvirt's virDomainListAllSnapshots (@from NULL) and
 * virDomainSnapshotListAllChildren (@from a snapshot; SNAP_LIST_ROOTS then
 * means all descendants), taken atomically. Without TOPOLOGICAL the order
 * is by name. NULL when not found. (transfer full: SnapEntry*) */
GPtrArray *snap_engine_list_snapshots(SnapEngine *engine, const char *domain,
                                      const char *from, SnapListFlags flags);

/* The parent's name of @snapshot in @out_parent (NULL for a root).
 * FALSE when not found. */
gboolean snap_engine_snapshot_parent(SnapEngine *engine, const char *domain,
                                     const char *snapshot, char **out_parent);

/* metadata.xml of @snapshot (with <active>1</active> when current), or
 * NULL when not found. (transfer full) */
GBytes *snap_engine_snapshot_xml(SnapEngine *engine, const char *domain,
                                 const char *snapshot);

/* screen.png of @snapshot, or NULL when it has none (read from the file
 * kept beside its metadata). (transfer full) */
GBytes *snap_engine_snapshot_screen(SnapEngine *engine, const char *domain,
                                    const char *snapshot);

/* The directory path of @snapshot relative to its domain directory
 * ("base/child/snap"), or NULL when not found. (transfer full) */
char *snap_engine_snapshot_path(SnapEngine *engine, const char *domain,
                                const char *snapshot);

/* The current snapshot's name, or NULL when there is none. (transfer full) */
char *snap_engine_current(SnapEngine *engine, const char *domain);

/* Records a failure of @operation (e.g. "revert s1") on @domain in its
 * errors file and the debug log; for input the daemon refused itself
 * (a control word it does not know) before any engine call. */
void snap_engine_report_error(SnapEngine *engine, const char *domain,
                              const char *operation, const GError *error);

/* Waits until every operation submitted on @domain so far has finished,
 * its deferred file work included (the old current snapshot's file and
 * the journal are settled just after the reply). For tests and tools
 * that read STATE directly; must not be called from a done callback. */
void snap_engine_flush(SnapEngine *engine, const char *domain);

/* ---- reads: disk contents (-o disks) -------------------------------------- */

/* The targets ("vda", ...) of the disks that hold data at @snapshot, in
 * the domain's disk order, or NULL when there is no such snapshot. From
 * memory. (transfer full: strings) */
GPtrArray *snap_engine_snapshot_disks(SnapEngine *engine, const char *domain,
                                      const char *snapshot);

/* The guest-visible size in bytes of disk @target at @snapshot. Known
 * from an export of it, else the image's virtual size, which the first
 * call for an image asks `qemu-img info` (once). @allocated (may be NULL):
 * how many of those bytes hold data, known once an export of it was
 * opened, else all of them. NOT_FOUND when the snapshot has no such
 * disk. */
gboolean snap_engine_snapshot_disk_size(SnapEngine *engine, const char *domain,
                                        const char *snapshot, const char *target,
                                        guint64 *size, guint64 *allocated,
                                        GError **error);

/* An open disk: its content at one snapshot, read through QEMU's block
 * layer (a read-only qemu-nbd export that the engine starts on the first
 * open, shares between opens and stops when idle). Once the snapshot is
 * deleted (its exports are stopped before its data leaves the disks),
 * every call fails with SNAP_ERROR_STALE. Thread-safe; reads of one disk
 * run in parallel. */
typedef struct _SnapDiskReader SnapDiskReader;

/* Opens disk @target of @snapshot of @domain. Blocks while the export
 * starts (tens of milliseconds): call it off the request loop. NOT_FOUND
 * when there is no such snapshot or disk; QEMU when qemu-nbd fails.
 * (transfer full) */
SnapDiskReader *snap_engine_disk_open(SnapEngine *engine, const char *domain,
                                      const char *snapshot, const char *target,
                                      GError **error);

/* The unix socket of the NBD export the open disk reads (for libguestfs);
 * it serves while @reader is open. (transfer none) */
const char *snap_disk_reader_socket(SnapDiskReader *reader);

/* The exact size of the open disk, in bytes. */
guint64 snap_disk_reader_size(SnapDiskReader *reader);

/* Reads up to @count bytes at @offset; fewer only at the end (none past
 * it). NULL on error. (transfer full) */
GBytes *snap_disk_reader_read(SnapDiskReader *reader, gsize count, guint64 offset,
                              GError **error);

/* lseek's SEEK_DATA (@data TRUE) or SEEK_HOLE from @offset; a hole is
 * what the image has not allocated. @found FALSE means ENXIO. */
gboolean snap_disk_reader_seek(SnapDiskReader *reader, guint64 offset, gboolean data,
                               guint64 *out, gboolean *found, GError **error);

/* NULL is allowed. Any reader left at snap_engine_free() must still be
 * closed, after it. */
void snap_disk_reader_close(SnapDiskReader *reader);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapDiskReader, snap_disk_reader_close)

/* ---- mutations ------------------------------------------------------------ */

/* @error is NULL on success. (transfer none) */
typedef void (*SnapDoneFunc)(const GError *error, gpointer user_data);

/* mkdir: takes snapshot @name of @domain with libvirt's defaults (shut
 * off: internal disk snapshot with qemu-img; running or paused: a live
 * snapshot with memory, QMP snapshot-save). @in_dir is the snapshot
 * whose directory the mkdir happened in (NULL: the domain directory); it
 * must be the current snapshot (NULL when there is none), else
 * SNAP_ERROR_NOT_CURRENT. Bad name: INVALID; taken: EXISTS. The new
 * snapshot becomes current. @cancellable cancels it until it has touched
 * a disk. */
void snap_engine_create_async(SnapEngine *engine, const char *domain, const char *in_dir,
                              const char *name, GCancellable *cancellable,
                              SnapDoneFunc done, gpointer user_data);

/* mkdir .by-name/NEW: as snap_engine_create_async() with @in_dir the
 * snapshot that is current when the operation runs (after those queued
 * before it), so it never fails with NOT_CURRENT. */
void snap_engine_create_in_current_async(SnapEngine *engine, const char *domain,
                                         const char *name, GCancellable *cancellable,
                                         SnapDoneFunc done, gpointer user_data);

/* The domain's `create` file: @xml is a <domainsnapshot>. A name that does
 * not exist yet creates a snapshot honouring description, memory and disk
 * choices (virDomainSnapshotCreateXML); one that exists with its disk
 * snapshots present and a creationTime redefines metadata only (REDEFINE,
 * and CURRENT when it says <active>1</active>). Bad XML: INVALID. */
void snap_engine_create_xml_async(SnapEngine *engine, const char *domain, const char *xml,
                                  gsize len, GCancellable *cancellable, SnapDoneFunc done,
                                  gpointer user_data);

/* virDomainSnapshotDelete: without flags the children are re-parented to
 * the snapshot's parent, and if it was current its parent becomes current
 * (or no snapshot is current when it was a root). */
void snap_engine_delete_async(SnapEngine *engine, const char *domain,
                              const char *snapshot, SnapDeleteFlags flags,
                              GCancellable *cancellable, SnapDoneFunc done,
                              gpointer user_data);

/* virDomainRevertToSnapshot: the disks, the memory of a live snapshot and
 * the definition return to @snapshot, which becomes current; the domain
 * ends in the state the snapshot was taken in, or running / paused as
 * @flags ask. Replacing a running QEMU (the snapshot's definition differs)
 * needs SNAP_REVERT_FORCE, else SNAP_ERROR_BUSY. */
void snap_engine_revert_async(SnapEngine *engine, const char *domain,
                              const char *snapshot, SnapRevertFlags flags,
                              GCancellable *cancellable, SnapDoneFunc done,
                              gpointer user_data);

/* Changes the domain's run state: start (SNAP_ERROR_BUSY when it runs),
 * shutdown (an ACPI request; returns at once), destroy, pause, resume
 * (SNAP_ERROR_BUSY when the state does not allow it). */
void snap_engine_domain_action_async(SnapEngine *engine, const char *domain,
                                     SnapDomainAction action, GCancellable *cancellable,
                                     SnapDoneFunc done, gpointer user_data);

/* virDomainUndefineFlags(SNAPSHOTS_METADATA), and with SNAP_UNDEFINE_FULL
 * the removal of storage too: the domain's definition, every snapshot's
 * metadata, its journal and run files go, and with FULL every image file
 * its definition or its snapshots' definitions name (never a backing file
 * they merely refer to, never one another domain names; the disks'
 * internal snapshots go with their files). A running or paused domain is
 * SNAP_ERROR_BUSY. The steps are journaled: a crash part-way is finished
 * at the next start. On success the domain is gone from every read and
 * SNAP_CHANGE_DOMAIN_REMOVED is emitted; later operations on it answer
 * NOT_FOUND. */
void snap_engine_undefine_async(SnapEngine *engine, const char *domain,
                                SnapUndefineMode mode, GCancellable *cancellable,
                                SnapDoneFunc done, gpointer user_data);

G_END_DECLS
