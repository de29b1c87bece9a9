/* backend-libvirt-fleet.c: several libvirt hosts behind one backend, their domains
 * named "HOST/DOMAIN".
 *
 * Each host is a libvirt backend of its own (connections, keepalive,
 * reconnect back-off), polled by a thread of its own, so that a host
 * that does not answer holds only that thread and the workers of its own
 * domains; its domain list is cached, so listing new domains never waits
 * for it either. */
#include <string.h>

#include "backend-libvirt-private.h"

#define FLEET_POLL_PERIOD (500 * G_TIME_SPAN_MILLISECOND)

typedef struct _FleetBackend FleetBackend;

typedef struct {
    FleetBackend *fleet;
    char *name; /* the HOST directory */
    char *uri;
    gboolean local;
    SnapCatalogue *backend;
    GThread *poller;
    GPtrArray *domains; /* its last domain list (char*), under fleet->lock */
} FleetHost;

struct _FleetBackend {
    SnapCatalogue parent;
    GPtrArray *hosts; /* FleetHost* */
    GMutex lock;      /* domains of each host, quit */
    GCond wake;
    gboolean quit;
    gboolean watching;
    SnapBackendEventFunc event_func;
    gpointer event_data;
    SnapBackendRefreshFunc refresh_func;
    gpointer refresh_data;
};

static void
fleet_host_free(FleetHost *host)
{
    if (host->backend != NULL)
        snap_backend_free(&host->backend->parent);
    g_clear_pointer(&host->domains, g_ptr_array_unref);
    g_free(host->name);
    g_free(host->uri);
    g_free(host);
}

/* The host of a tree name "HOST/DOMAIN", and the host's own name of the
 * domain in @rest; NULL when there is no such host. */
static FleetHost *
fleet_split(FleetBackend *self, const char *domain, const char **rest)
{
    const char *slash = domain ? strchr(domain, '/') : NULL;

    if (slash == NULL)
        return NULL;
    for (guint i = 0; i < self->hosts->len; i++) {
        FleetHost *host = self->hosts->pdata[i];

        if (strlen(host->name) == (gsize)(slash - domain) &&
            strncmp(host->name, domain, slash - domain) == 0) {
            *rest = slash + 1;
            return host;
        }
    }
    return NULL;
}

static FleetHost *
fleet_host_of(FleetBackend *self, const char *domain, const char **rest, GError **error)
{
    FleetHost *host = fleet_split(self, domain, rest);

    if (host == NULL)
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND, "no such domain: %s",
                    domain);
    return host;
}

/* The host of @dom, with @own set to @dom under the host's own name for
 * it (a shallow copy: it lives as long as @dom); NULL with @error when no
 * host has it. */
static FleetHost *
fleet_host_of_def(FleetBackend *self, const DomainDef *dom, DomainDef *own,
                  GError **error)
{
    const char *rest;
    FleetHost *host = fleet_host_of(self, dom->name, &rest, error);

    if (host != NULL) {
        *own = *dom;
        own->name = (char *)rest;
    }
    return host;
}

/* ---- what the hosts report, with their names prefixed ---- */

static void
on_host_event(const char *domain, SnapDomainState state, const char *message,
              gpointer user_data)
{
    FleetHost *host = user_data;
    FleetBackend *self = host->fleet;
    g_autofree char *name = g_strconcat(host->name, "/", domain, NULL);

    if (self->event_func)
        self->event_func(name, state, message, self->event_data);
}

static void
on_host_refresh(const char *domain, gboolean with_xml, gpointer user_data)
{
    FleetHost *host = user_data;
    FleetBackend *self = host->fleet;
    g_autofree char *name = domain ? g_strconcat(host->name, "/", domain, NULL) : NULL;

    if (self->refresh_func)
        self->refresh_func(name, with_xml, self->refresh_data);
}

static void
fleet_set_event_func(SnapBackend *backend, SnapBackendEventFunc func, gpointer user_data)
{
    FleetBackend *self = (FleetBackend *)backend;

    self->event_func = func;
    self->event_data = user_data;
    for (guint i = 0; i < self->hosts->len; i++) {
        FleetHost *host = self->hosts->pdata[i];

        host->backend->parent.ops->set_event_func(&host->backend->parent, on_host_event,
                                                  host);
    }
}

static void
fleet_set_refresh_func(SnapCatalogue *backend, SnapBackendRefreshFunc func,
                       gpointer user_data)
{
    FleetBackend *self = (FleetBackend *)backend;

    self->refresh_func = func;
    self->refresh_data = user_data;
    for (guint i = 0; i < self->hosts->len; i++) {
        FleetHost *host = self->hosts->pdata[i];

        host->backend->ops->set_refresh_func(host->backend, on_host_refresh, host);
    }
}

/* ---- per-host polling ---- */

/* The host's domain list with the host's prefix. (transfer full) */
static GPtrArray *
prefixed(FleetHost *host, GPtrArray *names)
{
    GPtrArray *out = g_ptr_array_new_full(names->len, g_free);

    for (guint i = 0; i < names->len; i++)
        g_ptr_array_add(out, g_strconcat(host->name, "/", names->pdata[i], NULL));
    return out;
}

static gpointer
poller(gpointer data)
{
    FleetHost *host = data;
    FleetBackend *self = host->fleet;

    g_mutex_lock(&self->lock);
    while (!self->quit) {
        gint64 next = g_get_monotonic_time() + FLEET_POLL_PERIOD;
        g_autoptr(GPtrArray) names = NULL;
        g_autoptr(GError) error = NULL;

        g_mutex_unlock(&self->lock);
        if (host->backend->ops->poll(host->backend)) {
            names = host->backend->ops->list_domains(host->backend, &error);
            if (names == NULL)
                g_debug("%s: domains: %s", host->name, error->message);
        }
        g_mutex_lock(&self->lock);
        if (names != NULL) {
            g_clear_pointer(&host->domains, g_ptr_array_unref);
            host->domains = prefixed(host, names);
        }
        while (!self->quit && g_cond_wait_until(&self->wake, &self->lock, next))
            ;
    }
    g_mutex_unlock(&self->lock);
    return NULL;
}

static void
fleet_watch(SnapBackend *backend)
{
    FleetBackend *self = (FleetBackend *)backend;

    self->watching = TRUE;
    for (guint i = 0; i < self->hosts->len; i++) {
        FleetHost *host = self->hosts->pdata[i];
        g_autofree char *name = g_strconcat("poll-", host->name, NULL);

        host->backend->parent.ops->watch(&host->backend->parent);
        host->poller = g_thread_new(name, poller, host);
    }
}

/* The pollers reconnect; the engine's refresher goes on with what is
 * connected (a lost host's calls fail at once). */
static gboolean
fleet_poll(SnapCatalogue *backend)
{
    return TRUE;
}

static GPtrArray *
fleet_list_domains(SnapCatalogue *backend, GError **error)
{
    FleetBackend *self = (FleetBackend *)backend;
    GPtrArray *all = g_ptr_array_new_with_free_func(g_free);

    for (guint i = 0; i < self->hosts->len; i++) {
        FleetHost *host = self->hosts->pdata[i];
        g_autoptr(GPtrArray) names = NULL;

        /* At load, each host's answer (one that cannot answer has no
         * domains until its poller reconnects); afterwards the pollers'
         * lists, so that a stopped host delays nothing. */
        if (!self->watching) {
            g_autoptr(GError) local = NULL;
            g_autoptr(GPtrArray) own =
                host->backend->ops->list_domains(host->backend, &local);

            if (own == NULL) {
                g_debug("%s: domains: %s", host->name, local->message);
                continue;
            }
            names = prefixed(host, own);
            g_mutex_lock(&self->lock);
            g_clear_pointer(&host->domains, g_ptr_array_unref);
            host->domains = g_ptr_array_ref(names);
            g_mutex_unlock(&self->lock);
        } else {
            g_mutex_lock(&self->lock);
            names = host->domains ? g_ptr_array_ref(host->domains) : NULL;
            g_mutex_unlock(&self->lock);
        }
        for (guint j = 0; names != NULL && j < names->len; j++)
            g_ptr_array_add(all, g_strdup(names->pdata[j]));
    }
    return all;
}

/* ---- the calls, to the domain's host ---- */

static SnapDomainState
fleet_domain_state(SnapBackend *backend, const DomainDef *dom)
{
    DomainDef own;
    FleetHost *host = fleet_host_of_def((FleetBackend *)backend, dom, &own, NULL);

    if (host == NULL)
        return SNAP_DOMAIN_SHUTOFF;
    return host->backend->parent.ops->domain_state(&host->backend->parent, &own);
}

static gboolean
fleet_attach(SnapBackend *backend, const DomainDef *dom, GError **error)
{
    return TRUE;
}

static gboolean
fleet_start(SnapBackend *backend, const DomainDef *dom, gboolean paused, GError **error)
{
    DomainDef own;
    FleetHost *host = fleet_host_of_def((FleetBackend *)backend, dom, &own, error);

    if (host == NULL)
        return FALSE;
    return host->backend->parent.ops->start(&host->backend->parent, &own, paused, error);
}

static gboolean
fleet_action(SnapBackend *backend, const DomainDef *dom, SnapDomainAction action,
             GError **error)
{
    DomainDef own;
    FleetHost *host = fleet_host_of_def((FleetBackend *)backend, dom, &own, error);

    if (host == NULL)
        return FALSE;
    return host->backend->parent.ops->action(&host->backend->parent, &own, action, error);
}

static gboolean
fleet_domain_view(SnapCatalogue *backend, const char *domain, gboolean with_xml,
                  SnapBackendView *view, GError **error)
{
    const char *rest;
    FleetHost *host = fleet_host_of((FleetBackend *)backend, domain, &rest, error);

    return host != NULL &&
           host->backend->ops->domain_view(host->backend, rest, with_xml, view, error);
}

static gboolean
fleet_snapshot_get(SnapCatalogue *backend, const char *domain, const char *snapshot,
                   SnapBackendSnapshot *out, GError **error)
{
    const char *rest;
    FleetHost *host = fleet_host_of((FleetBackend *)backend, domain, &rest, error);

    return host != NULL &&
           host->backend->ops->snapshot_get(host->backend, rest, snapshot, out, error);
}

static gboolean
fleet_snapshot_take(SnapCatalogue *backend, const char *domain, const char *name,
                    const char *xml, char **out_name, GError **error)
{
    const char *rest;
    FleetHost *host = fleet_host_of((FleetBackend *)backend, domain, &rest, error);

    return host != NULL && host->backend->ops->snapshot_take(host->backend, rest, name,
                                                             xml, out_name, error);
}

static gboolean
fleet_snapshot_remove(SnapCatalogue *backend, const char *domain, const char *snapshot,
                      SnapDeleteFlags flags, GError **error)
{
    const char *rest;
    FleetHost *host = fleet_host_of((FleetBackend *)backend, domain, &rest, error);

    return host != NULL && host->backend->ops->snapshot_remove(host->backend, rest,
                                                               snapshot, flags, error);
}

static gboolean
fleet_snapshot_revert(SnapCatalogue *backend, const char *domain, const char *snapshot,
                      SnapRevertFlags flags, GError **error)
{
    const char *rest;
    FleetHost *host = fleet_host_of((FleetBackend *)backend, domain, &rest, error);

    return host != NULL && host->backend->ops->snapshot_revert(host->backend, rest,
                                                               snapshot, flags, error);
}

static gboolean
fleet_undefine(SnapCatalogue *backend, const char *domain, SnapUndefineMode mode,
               GError **error)
{
    const char *rest;
    FleetHost *host = fleet_host_of((FleetBackend *)backend, domain, &rest, error);

    return host != NULL && host->backend->ops->undefine(host->backend, rest, mode, error);
}

static GPtrArray *
fleet_hosts(SnapCatalogue *backend)
{
    FleetBackend *self = (FleetBackend *)backend;
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);

    for (guint i = 0; i < self->hosts->len; i++)
        g_ptr_array_add(names, g_strdup(((FleetHost *)self->hosts->pdata[i])->name));
    return names;
}

static gboolean
fleet_domain_is_local(SnapCatalogue *backend, const char *domain)
{
    const char *rest;
    FleetHost *host = fleet_split((FleetBackend *)backend, domain, &rest);

    return host != NULL && host->local;
}

static void
fleet_free(SnapBackend *backend)
{
    FleetBackend *self = (FleetBackend *)backend;

    g_mutex_lock(&self->lock);
    self->quit = TRUE;
    g_cond_broadcast(&self->wake);
    g_mutex_unlock(&self->lock);
    for (guint i = 0; i < self->hosts->len; i++) {
        FleetHost *host = self->hosts->pdata[i];

        if (host->poller != NULL)
            g_thread_join(g_steal_pointer(&host->poller));
    }
    g_ptr_array_unref(self->hosts);
    g_mutex_clear(&self->lock);
    g_cond_clear(&self->wake);
    g_free(self);
}

static gboolean
fleet_screenshot(SnapBackend *backend, const DomainDef *dom, const char *file,
                 GError **error)
{
    DomainDef own;
    FleetHost *host = fleet_host_of_def((FleetBackend *)backend, dom, &own, error);

    if (host == NULL)
        return FALSE;
    return host->backend->parent.ops->screenshot(&host->backend->parent, &own, file,
                                                 error);
}

/* Each host names its pictures by its own URI, so two hosts never share one. */
static char *
fleet_screen_file(SnapCatalogue *backend, const char *domain, const char *snapshot)
{
    const char *rest;
    FleetHost *host = fleet_split((FleetBackend *)backend, domain, &rest);

    return host != NULL ? host->backend->ops->screen_file(host->backend, rest, snapshot)
                        : NULL;
}

static const SnapBackendOps fleet_ops = {
    .name = "libvirt-fleet",
    .set_event_func = fleet_set_event_func,
    .domain_state = fleet_domain_state,
    .attach = fleet_attach,
    .watch = fleet_watch,
    .start = fleet_start,
    .action = fleet_action,
    .screenshot = fleet_screenshot,
    .free = fleet_free,
};

static const SnapCatalogueOps fleet_catalogue_ops = {
    .screen_file = fleet_screen_file,
    .list_domains = fleet_list_domains,
    .domain_view = fleet_domain_view,
    .snapshot_get = fleet_snapshot_get,
    .snapshot_take = fleet_snapshot_take,
    .snapshot_remove = fleet_snapshot_remove,
    .snapshot_revert = fleet_snapshot_revert,
    .undefine = fleet_undefine,
    .set_refresh_func = fleet_set_refresh_func,
    .poll = fleet_poll,
    .hosts = fleet_hosts,
    .domain_is_local = fleet_domain_is_local,
};

gboolean
snap_backend_libvirt_is_fleet(SnapCatalogue *backend)
{
    return backend->ops == &fleet_catalogue_ops;
}

void
snap_backend_libvirt_fleet_set_cache_dir(SnapCatalogue *backend, const char *dir)
{
    FleetBackend *self = (FleetBackend *)backend;

    for (guint i = 0; i < self->hosts->len; i++)
        snap_backend_libvirt_set_cache_dir(((FleetHost *)self->hosts->pdata[i])->backend,
                                           dir);
}

/* Connects @host's backend, on a thread of its own: a host that does not
 * answer costs the mount one open timeout, not one per host. */
static gpointer
fleet_host_open(gpointer data)
{
    FleetHost *host = data;
    g_autoptr(GError) error = NULL;

    host->backend = snap_backend_libvirt_open(host->uri, &error);
    if (error != NULL)
        g_message("libvirt: host %s (%s) cannot be reached: %s; it has no domains "
                  "until it answers",
                  host->name, host->uri, error->message);
    return NULL;
}

SnapCatalogue *
snap_backend_libvirt_fleet_new(const char *const *uris, GError **error)
{
    g_autoptr(GPtrArray) openers = g_ptr_array_new();
    FleetBackend *self = g_new0(FleetBackend, 1);

    self->parent.parent.ops = &fleet_ops;
    self->parent.ops = &fleet_catalogue_ops;
    self->hosts = g_ptr_array_new_with_free_func((GDestroyNotify)fleet_host_free);
    g_mutex_init(&self->lock);
    g_cond_init(&self->wake);
    for (guint i = 0; uris[i] != NULL; i++) {
        g_autofree char *name = snap_backend_libvirt_uri_host(uris[i], error);
        FleetHost *host;

        if (name == NULL) {
            fleet_free(&self->parent.parent);
            return NULL;
        }
        for (guint j = 0; j < self->hosts->len; j++) {
            FleetHost *other = self->hosts->pdata[j];

            /* Host names are case-insensitive (RFC 4343): H1 is h1. */
            if (g_ascii_strcasecmp(other->name, name) == 0) {
                g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "%s and another URI both name host '%s': each host once",
                            uris[i], name);
                fleet_free(&self->parent.parent);
                return NULL;
            }
        }
        host = g_new0(FleetHost, 1);
        host->fleet = self;
        host->name = g_steal_pointer(&name);
        host->uri = g_strdup(uris[i]);
        host->local = snap_backend_libvirt_uri_is_local(uris[i]);
        g_ptr_array_add(self->hosts, host);
    }
    for (guint i = 0; i < self->hosts->len; i++)
        g_ptr_array_add(
            openers, g_thread_new("open-host", fleet_host_open, self->hosts->pdata[i]));
    for (guint i = 0; i < openers->len; i++)
        g_thread_join(openers->pdata[i]);
    return &self->parent;
}
