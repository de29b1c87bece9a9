/* catalogue.h: a backend that owns the snapshot metadata itself (libvirt):
 * the engine keeps no files for it, mirrors in memory what it reports and
 * calls it for every mutation. */
#pragma once

#include "backend.h"

G_BEGIN_DECLS

typedef struct _SnapCatalogue SnapCatalogue;

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
 * list) from the backend; @with_xml: its definition may have changed. With
 * @domain NULL, @with_xml says that anything may have changed without an
 * event (a reconnect): every definition and snapshot is read again. */
typedef void (*SnapBackendRefreshFunc)(const char *domain, gboolean with_xml,
                                       gpointer user_data);

typedef struct {
    /* Names are the tree's (the backend maps them to its own). */

    /* Every domain's name. (transfer full: char*) */
    GPtrArray *(*list_domains)(SnapCatalogue *self, GError **error);

    /* What @domain is now: run state, snapshot names and current one, and
     * with @with_xml its definition. SNAP_ERROR_NOT_FOUND when it is gone;
     * another error (a lost connection) says nothing about it. */
    gboolean (*domain_view)(SnapCatalogue *self, const char *domain, gboolean with_xml,
                            SnapBackendView *view, GError **error);

    /* One snapshot: its <domainsnapshot> and its parent. */
    gboolean (*snapshot_get)(SnapCatalogue *self, const char *domain,
                             const char *snapshot, SnapBackendSnapshot *out,
                             GError **error);

    /* mkdir (@xml NULL: snapshot @name with the defaults) or the `create`
     * file (@xml, @name NULL: a create, or a redefine when it gives a
     * creationTime; <active>1</active> then also makes it current).
     * @out_name gets the tree's name of the snapshot. */
    gboolean (*snapshot_take)(SnapCatalogue *self, const char *domain, const char *name,
                              const char *xml, char **out_name, GError **error);

    /* virDomainSnapshotDelete with @flags. */
    gboolean (*snapshot_remove)(SnapCatalogue *self, const char *domain,
                                const char *snapshot, SnapDeleteFlags flags,
                                GError **error);

    /* virDomainRevertToSnapshot with @flags. */
    gboolean (*snapshot_revert)(SnapCatalogue *self, const char *domain,
                                const char *snapshot, SnapRevertFlags flags,
                                GError **error);

    /* virDomainUndefineFlags with the snapshots' metadata. */
    gboolean (*undefine)(SnapCatalogue *self, const char *domain, SnapUndefineMode mode,
                         GError **error);

    /* Where "@domain changed by itself" goes (NULL: any domain, or the
     * domain list); called on the backend's event thread. */
    void (*set_refresh_func)(SnapCatalogue *self, SnapBackendRefreshFunc func,
                             gpointer user_data);

    /* Called about twice a second from the engine's refresher thread:
     * reconnects a lost connection (with back-off). FALSE while not
     * connected. */
    gboolean (*poll)(SnapCatalogue *self);

    /* Where the backend keeps @snapshot's screen.png (transfer full). */
    char *(*screen_file)(SnapCatalogue *self, const char *domain, const char *snapshot);

    /* The hosts of a fleet of libvirt hosts, in the order given, whose
     * domains are named "HOST/DOMAIN" in the tree; NULL for a catalogue on
     * one host. (transfer full: char*) */
    GPtrArray *(*hosts)(SnapCatalogue *self);

    /* Whether @domain's host is this machine, where qemu-nbd can open its
     * images (disks/); always TRUE on one host (a mount on a remote URI
     * refuses -o disks). */
    gboolean (*domain_is_local)(SnapCatalogue *self, const char *domain);
} SnapCatalogueOps;

/* A catalogue is a SnapBackend (its run-state half) first. */
struct _SnapCatalogue {
    SnapBackend parent;
    const SnapCatalogueOps *ops;
};

G_END_DECLS
