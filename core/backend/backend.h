/* backend.h: what the engine needs from whatever runs the domains, and
 * what both kinds of backend share.
 *
 * There are two kinds (docs/ARCHITECTURE.md): a disk backend
 * (disk-backend.h) runs disk operations for an engine that owns the
 * snapshot metadata in STATE (native); a catalogue (catalogue.h) owns the
 * metadata itself and the engine mirrors it (libvirt). Each is a
 * SnapBackend first: the run state of a domain (start, stop, its events)
 * is common to both. The engine learns which kind it has once, when it is
 * made. Every function is called on the domain's worker thread, one at a
 * time per domain, and may block, unless it says otherwise. */
#pragma once

#include <gio/gio.h>

#include "domain-def.h"
#include "snap-error.h"
#include "snap-types.h"

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

/* The run state of the domains: both kinds of backend. */
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

    /* Writes the guest's display, as PNG, to @file (replacing it), within
     * a few seconds. SNAP_ERROR_UNSUPPORTED when there is no picture to
     * take: @dom does not run, or has no display device. */
    gboolean (*screenshot)(SnapBackend *self, const DomainDef *dom, const char *file,
                           GError **error);

    void (*free)(SnapBackend *self);
} SnapBackendOps;

struct _SnapBackend {
    const SnapBackendOps *ops;
};

static inline void
snap_backend_free(SnapBackend *backend)
{
    if (backend)
        backend->ops->free(backend);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapBackend, snap_backend_free)

G_END_DECLS
