/* backend-libvirt-private.h: the libvirt backend's state, shared by backend-libvirt*.c
 * only. */
#pragma once

#include <libvirt/libvirt.h>

#include "backend.h"

G_BEGIN_DECLS

typedef struct {
    SnapBackend parent;
    char *uri;
    GMutex lock;        /* conn, states, the connection's bookkeeping */
    virConnectPtr conn; /* NULL while the connection is lost */
    GHashTable *states; /* tree's domain name -> SnapDomainState + 1 */
    int lifecycle_id;   /* event callback, -1 when none */
    gboolean lost;      /* the close callback fired: poll() reconnects */
    gint64 next_try;    /* monotonic µs of the next reconnect attempt */
    gint64 backoff;     /* µs, doubles up to LV_BACKOFF_MAX */
    gboolean watching;  /* watch() ran: events are subscribed */
    GThread *event_thread;
    gint quit;
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
gboolean lv_domain_view(SnapBackend *backend, const char *domain, gboolean with_xml,
                        SnapBackendView *view, GError **error);
gboolean lv_snapshot_get(SnapBackend *backend, const char *domain, const char *snapshot,
                         SnapBackendSnapshot *out, GError **error);
gboolean lv_snapshot_take(SnapBackend *backend, const char *domain, const char *name,
                          const char *xml, char **out_name, GError **error);
gboolean lv_snapshot_remove(SnapBackend *backend, const char *domain,
                            const char *snapshot, SnapDeleteFlags flags, GError **error);
gboolean lv_snapshot_revert(SnapBackend *backend, const char *domain,
                            const char *snapshot, SnapRevertFlags flags, GError **error);

/* ---- backend-libvirt-screen.c ---- */
char *lv_screen_file(SnapBackend *backend, const char *domain, const char *snapshot);
gboolean lv_screenshot(SnapBackend *backend, const DomainDef *def, const char *file,
                       GError **error);

G_END_DECLS
