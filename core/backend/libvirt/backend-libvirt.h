/* backend-libvirt.h: the libvirt backend, a catalogue: libvirt owns the
 * domains and the snapshots' metadata, on any libvirt URI or a fleet of
 * them. */
#pragma once

#include "catalogue.h"

G_BEGIN_DECLS

/* The libvirt backend on connection @uri. Registers libvirt's default
 * event loop and connects; starts no thread before watch(). (transfer
 * full: snap_backend_free(&self->parent)) */
SnapCatalogue *snap_backend_libvirt_new(const char *uri, GError **error);

/* snap_backend_libvirt_new(), but a first connection that fails is not
 * the end: @connect_error says why, every call fails with EIO until it
 * connects, and poll() tries again with the usual back-off. Never NULL.
 * (transfer full) */
SnapCatalogue *snap_backend_libvirt_open(const char *uri, GError **connect_error);

/* Where the libvirt backend (one host or a fleet) keeps screen.png files (created when
 * first needed); without one, its snapshots have none. */
void snap_backend_libvirt_set_cache_dir(SnapCatalogue *backend, const char *dir);

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
 * (SNAP_ERROR_INVALID). The hosts are connected at once, in parallel; one
 * that cannot be reached now is logged and has no domains until it
 * answers. (transfer full) */
SnapCatalogue *snap_backend_libvirt_fleet_new(const char *const *uris, GError **error);

G_END_DECLS
