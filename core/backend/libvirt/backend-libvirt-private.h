/* backend-libvirt-private.h: the libvirt backend's state, shared by backend-libvirt*.c
 * only. */
#pragma once

#include <libvirt/libvirt.h>

#include "backend-libvirt.h"

G_BEGIN_DECLS

/* One open connection and what is subscribed on it. Refcounted so that a
 * caller can use it outside LvBackend.lock while poll() replaces it; the
 * last reference closes it. */
typedef struct {
    virConnectPtr conn;
    guint generation;    /* LvBackend.generation when it was opened */
    int lifecycle_id;    /* event callback, -1 when none */
    gboolean subscribed; /* events, close callback and keepalive are set */
} LvConn;

/* Connections: `conn` carries the events, the close callback and the
 * keepalive that notices a daemon that stopped answering; the calls go
 * through one connection per calling thread (lv_conn), because libvirt's
 * client (9.0) leaves the other threads waiting on a shared connection
 * hanging or crashing when its keepalive closes it.
 *
 * Lock rules: `lock` guards the plain fields below (conn, lost, states,
 * generation, next_try, backoff, watching) and is never held across a
 * libvirt call,
 * so that run states and the connection pointer stay readable while the
 * daemon does not answer; libvirt's own callbacks (on_close runs under
 * libvirt's close-callback lock) may take it. `conn_lock` serialises
 * connecting and disconnecting (poll, watch, free) and is held across
 * those libvirt calls; nothing else takes it, and never with `lock`
 * held. */
typedef struct {
    SnapCatalogue parent;
    char *uri;
    GMutex lock;
    GMutex conn_lock;
    guint id;           /* this backend's key in each thread's connections */
    guint generation;   /* bumped at every (re)connect: older thread
                         * connections are dropped */
    LvConn *conn;       /* NULL while the connection is lost */
    GHashTable *states; /* tree's domain name -> SnapDomainState + 1 */
    gboolean lost;      /* the close callback fired: poll() reconnects */
    gint64 next_try;    /* monotonic µs of the next reconnect attempt */
    gint64 backoff;     /* µs, doubles up to LV_BACKOFF_MAX */
    gboolean watching;  /* watch() ran: events are subscribed */
    SnapBackendEventFunc event_func;
    gpointer event_data;
    SnapBackendRefreshFunc refresh_func;
    gpointer refresh_data;
    char *cache_dir; /* where screen.png files go (backend-libvirt-screen.c) */
} LvBackend;

/* Sets @error from libvirt's last error: its message, and the code by
 * libvirt's (OPERATION_INVALID: BUSY; NO_DOMAIN, NO_DOMAIN_SNAPSHOT:
 * NOT_FOUND; XML_ERROR, XML_DETAIL, INVALID_ARG: INVALID; NO_SUPPORT,
 * ARGUMENT_UNSUPPORTED: UNSUPPORTED; else QEMU, i.e. EIO). */
void lv_set_error(GError **error, const char *fallback);

/* The domain named @domain in the tree, looked up on the connection.
 * (transfer full: virDomainFree) */
virDomainPtr lv_domain(LvBackend *self, const char *domain, GError **error);

/* Records @state for @domain; TRUE when it differs from what was known. */
gboolean lv_set_state(LvBackend *self, const char *domain, SnapDomainState state);

/* libvirt's state word -> the engine's. */
SnapDomainState lv_state_from_libvirt(int state);

/* ---- backend-libvirt-snapshots.c ---- */
gboolean lv_domain_view(SnapCatalogue *backend, const char *domain, gboolean with_xml,
                        SnapBackendView *view, GError **error);
gboolean lv_snapshot_get(SnapCatalogue *backend, const char *domain, const char *snapshot,
                         SnapBackendSnapshot *out, GError **error);
gboolean lv_snapshot_take(SnapCatalogue *backend, const char *domain, const char *name,
                          const char *xml, char **out_name, GError **error);
gboolean lv_snapshot_remove(SnapCatalogue *backend, const char *domain,
                            const char *snapshot, SnapDeleteFlags flags, GError **error);
gboolean lv_snapshot_revert(SnapCatalogue *backend, const char *domain,
                            const char *snapshot, SnapRevertFlags flags, GError **error);

/* ---- backend-libvirt-screen.c ---- */
char *lv_screen_file(SnapCatalogue *backend, const char *domain, const char *snapshot);
gboolean lv_screenshot(SnapBackend *backend, const DomainDef *def, const char *file,
                       GError **error);

/* Whether @backend is a fleet (backend-libvirt-fleet.c) rather than one host. */
gboolean snap_backend_libvirt_is_fleet(SnapCatalogue *backend);

/* Gives every host of the fleet @backend the cache directory @dir. */
void snap_backend_libvirt_fleet_set_cache_dir(SnapCatalogue *backend, const char *dir);

G_END_DECLS
