/* backend-libvirt.h: the libvirt backend, a catalogue: libvirt owns the
 * domains and the snapshots' metadata, on any libvirt URI. */
#pragma once

#include "catalogue.h"

G_BEGIN_DECLS

/* The libvirt backend on connection @uri. Registers libvirt's default
 * event loop and connects; starts no thread before watch(). (transfer
 * full: snap_backend_free(&self->parent)) */
SnapCatalogue *snap_backend_libvirt_new(const char *uri, GError **error);

G_END_DECLS
