/* backend.h: what the engine needs from whatever runs the snapshots.
 *
 * A table of functions, so that the native backend (qemu-img, later QMP)
 * and a libvirt backend can sit behind the same engine. Every function is
 * called on the domain's worker thread, one at a time per domain, and may
 * block. */
#pragma once

#include <gio/gio.h>
#include "domain-def.h"
#include "snapshot-def.h"
#include "snap-engine.h"

G_BEGIN_DECLS

typedef struct _SnapBackend SnapBackend;

/* Reports what a long step is doing, for the domain's `job` file. */
typedef void (*SnapProgressFunc)(const char *what, gpointer user_data);

/* Tells the engine that @domain's run state changed by itself (QEMU's
 * events, QEMU exiting); @message, when not NULL, is a line for the
 * domain's errors (e.g. QEMU exited without being asked to). Called on
 * any thread, with backend locks held: it must not call the backend. */
typedef void (*SnapBackendEventFunc)(const char *domain, SnapDomainState state,
                                     const char *message, gpointer user_data);

/* One image of a backing chain. */
typedef struct {
    char *file;
    char *format;
} SnapImageLayer;

void snap_image_layer_free(SnapImageLayer *layer);

/* A domain as a metadata-owning backend sees it (domain_view). */
typedef struct {
    SnapDomainState state;
    GPtrArray *names; /* every snapshot's name (char*, owned) */
    char *current;    /* the current snapshot, or NULL */
    char *def_xml;    /* the <domain> definition, when asked for */
} SnapBackendView;

void snap_backend_view_clear(SnapBackendView *view);
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(SnapBackendView, snap_backend_view_clear)

/* One snapshot as such a backend gives it (snapshot_get). */
typedef struct {
    char *xml;    /* <domainsnapshot>, as `virsh snapshot-dumpxml` shows it */
    char *parent; /* the parent's name, NULL for a root */
    gint64 creation_time;
} SnapBackendSnapshot;

void snap_backend_snapshot_clear(SnapBackendSnapshot *snap);

/* Tells the engine to refresh @domain (NULL: every domain and the domain
 * list) from the backend; @with_xml: its definition may have changed. */
typedef void (*SnapBackendRefreshFunc)(const char *domain, gboolean with_xml,
                                       gpointer user_data);

typedef struct {
    const char *name;

    /* Where run-state changes go; set once, before anything else. */
    void (*set_event_func)(SnapBackend *self, SnapBackendEventFunc func,
                           gpointer user_data);

    /* The run state of @dom, from memory (never waits for QEMU). */
    SnapDomainState (*domain_state)(SnapBackend *self, const DomainDef *dom);

    /* At load, before the daemon forks (no thread may start): takes over
     * the QEMU of @dom that an earlier run left running, if any, and
     * learns its state. Kills nothing; an error says what is wrong. */
    gboolean (*attach)(SnapBackend *self, const DomainDef *dom, GError **error);

    /* After the fork: starts following every attached QEMU. */
    void (*watch)(SnapBackend *self);

    /* Starts @dom (paused: CPUs stopped). SNAP_ERROR_BUSY when it runs. */
    gboolean (*start)(SnapBackend *self, const DomainDef *dom, gboolean paused,
                      GError **error);

    /* shutdown (a power-down request; returns at once), destroy, pause,
     * resume; SNAP_ERROR_BUSY when the domain's state does not allow it. */
    gboolean (*action)(SnapBackend *self, const DomainDef *dom, SnapDomainAction action,
                       GError **error);

    /* Takes the disk (and memory) state of @snap on @dom: every disk that
     * @snap lists with snapshot='internal' gets the internal snapshot
     * @snap->name, with the memory too when @dom runs (snap->state is then
     * running or paused and snap->memory internal). Every disk it lists
     * with snapshot='external' gets the overlay its <source file> names
     * (a file the engine created empty), on top of the disk's image,
     * which a running QEMU then writes to; the memory of a running domain
     * goes to snap->memory_file when snap->memory is external. All or
     * nothing: when disk i fails, the snapshot is deleted again from disks
     * 0..i-1 before returning FALSE. */
    gboolean (*create)(SnapBackend *self, const DomainDef *dom, const SnapshotDef *snap,
                       SnapProgressFunc progress, gpointer progress_data,
                       GCancellable *cancellable, GError **error);

    /* Returns @dom to @snap, as virDomainRevertToSnapshot: the disks, the
     * memory of a live snapshot, and the run state the snapshot was taken
     * in (or the one SNAP_REVERT_RUNNING/PAUSED ask for). @target is the
     * definition to run from then on (the snapshot's); @restart says that
     * a running QEMU must be replaced because it differs from @target
     * (the engine has checked SNAP_REVERT_FORCE for that). For an
     * external snapshot, each external disk of @target names a new
     * overlay (an empty file the engine reserved) to create on the file
     * the snapshot froze; a running QEMU is stopped first, and a memory
     * file is loaded into a QEMU started on @target. */
    gboolean (*revert)(SnapBackend *self, const DomainDef *dom, const DomainDef *target,
                       gboolean restart, const SnapshotDef *snap, SnapRevertFlags flags,
                       SnapProgressFunc progress, gpointer progress_data,
                       GCancellable *cancellable, GError **error);

    /* Writes the guest's display, as PNG, to @file (replacing it), within
     * a few seconds. SNAP_ERROR_UNSUPPORTED when there is no picture to
     * take: @dom does not run, or has no display device. NULL in a
     * backend that has no screenshots. */
    gboolean (*screenshot)(SnapBackend *self, const DomainDef *dom, const char *file,
                           GError **error);

    /* Where the backend keeps @snapshot's screen.png (transfer full);
     * NULL in the native backend (STATE/snapshots/DOM/SNAP.png). */
    char *(*screen_file)(SnapBackend *self, const char *domain, const char *snapshot);

    /* Removes @snap's data from every disk that holds it; a disk that no
     * longer has it is not an error. */
    gboolean (*delete)(SnapBackend *self, const DomainDef *dom, const SnapshotDef *snap,
                       SnapProgressFunc progress, gpointer progress_data,
                       GCancellable *cancellable, GError **error);

    /* The internal snapshot names each disk of @dom holds: a hash table
     * from disk target to a GPtrArray of names (strings). A disk that
     * cannot be read maps to NULL and its error goes to @problems.
     * (transfer full) */
    GHashTable *(*disk_snapshots)(SnapBackend *self, const DomainDef *dom,
                                  GPtrArray *problems, GCancellable *cancellable);

    /* ---- external snapshots: image files and their chains ---- */

    /* The backing chain of @file: [0] is @file itself, then its backing
     * file, and so on. (transfer full: GPtrArray of SnapImageLayer*) */
    GPtrArray *(*image_chain)(SnapBackend *self, const DomainDef *dom, const char *file,
                              GError **error);

    /* Merges the data of @top into @base, the image right under it, as
     * block-commit does. When a running QEMU of @dom uses @top, QEMU does
     * it and relinks what it has open above @top (@top being its active
     * layer, @base becomes the active layer); files it does not have open
     * still name @top as their backing: the caller rebases them. */
    gboolean (*commit)(SnapBackend *self, const DomainDef *dom, const char *top,
                       const char *base, SnapProgressFunc progress,
                       gpointer progress_data, GError **error);

    /* Makes @backing (NULL: none; format @backing_format) the backing
     * file of @file. Safe (@unsafe FALSE): what @file shows is unchanged,
     * the data that differs is copied into it. Unsafe: only the link
     * changes, for a @backing that holds what the old one held. */
    gboolean (*rebase)(SnapBackend *self, const DomainDef *dom, const char *file,
                       const char *backing, const char *backing_format, gboolean unsafe,
                       SnapProgressFunc progress, gpointer progress_data, GError **error);

    /* Removes an image (or memory) file that nothing uses any more; absent
     * is success. */
    gboolean (*remove_image)(SnapBackend *self, const DomainDef *dom, const char *file,
                             GError **error);

    /* ---- backends that own the snapshot metadata (libvirt) ----
     * The engine keeps no files for them: it mirrors in memory what these
     * report and calls them for every mutation. NULL in the native
     * backend. Names are the tree's (the backend maps them to its own). */

    /* Every domain's name. (transfer full: char*) */
    GPtrArray *(*list_domains)(SnapBackend *self, GError **error);

    /* What @domain is now: run state, snapshot names and current one, and
     * with @with_xml its definition. SNAP_ERROR_NOT_FOUND when it is gone;
     * another error (a lost connection) says nothing about it. */
    gboolean (*domain_view)(SnapBackend *self, const char *domain, gboolean with_xml,
                            SnapBackendView *view, GError **error);

    /* One snapshot: its <domainsnapshot> and its parent. */
    gboolean (*snapshot_get)(SnapBackend *self, const char *domain, const char *snapshot,
                             SnapBackendSnapshot *out, GError **error);

    /* mkdir (@xml NULL: snapshot @name with the defaults) or the `create`
     * file (@xml, @name NULL: a create, or a redefine when it gives a
     * creationTime; <active>1</active> then also makes it current).
     * @out_name gets the tree's name of the snapshot. */
    gboolean (*snapshot_take)(SnapBackend *self, const char *domain, const char *name,
                              const char *xml, char **out_name, GError **error);

    /* virDomainSnapshotDelete with @flags. */
    gboolean (*snapshot_remove)(SnapBackend *self, const char *domain,
                                const char *snapshot, SnapDeleteFlags flags,
                                GError **error);

    /* virDomainRevertToSnapshot with @flags. */
    gboolean (*snapshot_revert)(SnapBackend *self, const char *domain,
                                const char *snapshot, SnapRevertFlags flags,
                                GError **error);

    /* virDomainUndefineFlags with the snapshots' metadata. */
    gboolean (*undefine)(SnapBackend *self, const char *domain, SnapUndefineMode mode,
                         GError **error);

    /* Where "@domain changed by itself" goes (NULL: any domain, or the
     * domain list); called on the backend's event thread. */
    void (*set_refresh_func)(SnapBackend *self, SnapBackendRefreshFunc func,
                             gpointer user_data);

    /* Called about twice a second from the engine's refresher thread:
     * reconnects a lost connection (with back-off). FALSE while not
     * connected. */
    gboolean (*poll)(SnapBackend *self);

    /* ---- a fleet of libvirt hosts (NULL elsewhere) ----
     * Its domains are named "HOST/DOMAIN" in the tree. */

    /* The hosts, in the order given. (transfer full: char*) */
    GPtrArray *(*hosts)(SnapBackend *self);

    /* Whether @domain's host is this machine, where qemu-nbd can open its
     * images (disks/). NULL: every domain is. */
    gboolean (*domain_is_local)(SnapBackend *self, const char *domain);

    void (*free)(SnapBackend *self);
} SnapBackendOps;

struct _SnapBackend {
    const SnapBackendOps *ops;
};

/* The native backend: qemu-img for shut-off domains, QEMU and QMP for
 * running ones. (transfer full) */
SnapBackend *snap_backend_native_new(const char *state_dir);

/* The libvirt backend on connection @uri (any libvirt URI). Registers
 * libvirt's default event loop and connects; starts no thread before
 * watch(). (transfer full) */
SnapBackend *snap_backend_libvirt_new(const char *uri, GError **error);

/* Where the libvirt backend (one host or a fleet) keeps screen.png files (created when
 * first needed); without one, its snapshots have none. */
void snap_backend_libvirt_set_cache_dir(SnapBackend *backend, const char *dir);

/* Whether @uri reaches a libvirt on this machine: no host part
 * (qemu:///system, qemu+unix:///system?socket=..., test:///default). A
 * URI that does not parse is not local. */
gboolean snap_backend_libvirt_uri_is_local(const char *uri);

/* The host name a fleet shows for @uri: its host part, or "localhost" for
 * a local URI; NULL (with SNAP_ERROR_INVALID) when it does not parse.
 * (transfer full) */
char *snap_backend_libvirt_uri_host(const char *uri, GError **error);

/* A fleet: one libvirt backend per URI of @uris (NULL-terminated, at least
 * one), each with its own connections, reconnects and poller thread, so a
 * host that does not answer never delays another. Its domains are
 * "HOST/DOMAIN". Two URIs with the same host name are refused
 * (SNAP_ERROR_INVALID), and so is a host that cannot be reached now.
 * (transfer full) */
SnapBackend *snap_backend_libvirt_fleet_new(const char *const *uris, GError **error);

static inline void
snap_backend_free(SnapBackend *backend)
{
    if (backend)
        backend->ops->free(backend);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapBackend, snap_backend_free)

G_END_DECLS
