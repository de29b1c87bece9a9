/* backend-libvirt.c: the libvirt backend's connection, events, reconnects and domain
 * calls. */
#include "backend-libvirt-private.h"

#include <libvirt/virterror.h>

#include "backend-libvirt-names.h"

#define LV_BACKOFF_MIN (500 * G_TIME_SPAN_MILLISECOND)
#define LV_BACKOFF_MAX (30 * G_TIME_SPAN_SECOND)

void
snap_backend_view_clear(SnapBackendView *view)
{
    g_clear_pointer(&view->names, g_ptr_array_unref);
    g_clear_pointer(&view->current, g_free);
    g_clear_pointer(&view->def_xml, g_free);
}

void
snap_backend_snapshot_clear(SnapBackendSnapshot *snap)
{
    g_clear_pointer(&snap->xml, g_free);
    g_clear_pointer(&snap->parent, g_free);
}

void
lv_set_error(GError **error, const char *fallback)
{
    virErrorPtr err = virGetLastError();
    const char *message = err && err->message ? err->message : fallback;
    SnapErrorCode code = SNAP_ERROR_QEMU;

    switch (err ? err->code : VIR_ERR_OK) {
    case VIR_ERR_OPERATION_INVALID:
        code = SNAP_ERROR_BUSY;
        break;
    case VIR_ERR_NO_DOMAIN:
    case VIR_ERR_NO_DOMAIN_SNAPSHOT:
        code = SNAP_ERROR_NOT_FOUND;
        break;
    case VIR_ERR_XML_ERROR:
    case VIR_ERR_XML_DETAIL:
    case VIR_ERR_INVALID_ARG:
        code = SNAP_ERROR_INVALID;
        break;
    case VIR_ERR_NO_SUPPORT:
    case VIR_ERR_ARGUMENT_UNSUPPORTED:
        code = SNAP_ERROR_UNSUPPORTED;
        break;
    default:
        break;
    }
    g_set_error_literal(error, SNAP_ERROR, code, message);
    virResetLastError();
}

/* A reference to the connection, or NOT CONNECTED (EIO) while it is lost. */
static virConnectPtr
lv_conn(LvBackend *self, GError **error)
{
    virConnectPtr conn;

    g_mutex_lock(&self->lock);
    conn = self->conn;
    if (conn != NULL)
        virConnectRef(conn);
    g_mutex_unlock(&self->lock);
    if (conn == NULL)
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "not connected to %s (reconnecting)", self->uri);
    return conn;
}

virDomainPtr
lv_domain(LvBackend *self, const char *domain, GError **error)
{
    g_autofree char *name = lv_name_unescape(domain, FALSE, error);
    virConnectPtr conn;
    virDomainPtr dom;

    if (name == NULL)
        return NULL;
    conn = lv_conn(self, error);
    if (conn == NULL)
        return NULL;
    dom = virDomainLookupByName(conn, name);
    if (dom == NULL)
        lv_set_error(error, "no such domain");
    virConnectClose(conn);
    return dom;
}

SnapDomainState
lv_state_from_libvirt(int state)
{
    switch (state) {
    case VIR_DOMAIN_RUNNING:
    case VIR_DOMAIN_BLOCKED:
        return SNAP_DOMAIN_RUNNING;
    case VIR_DOMAIN_PAUSED:
    case VIR_DOMAIN_PMSUSPENDED:
        return SNAP_DOMAIN_PAUSED;
    default:
        return SNAP_DOMAIN_SHUTOFF;
    }
}

gboolean
lv_set_state(LvBackend *self, const char *domain, SnapDomainState state)
{
    gpointer old;
    gboolean changed;

    g_mutex_lock(&self->lock);
    old = g_hash_table_lookup(self->states, domain);
    changed = old == NULL || GPOINTER_TO_INT(old) != (int)state + 1;
    if (changed)
        g_hash_table_insert(self->states, g_strdup(domain), GINT_TO_POINTER(state + 1));
    g_mutex_unlock(&self->lock);
    return changed;
}

/* ---- events ----------------------------------------------------------- */

static void
lv_refresh(LvBackend *self, const char *domain, gboolean with_xml)
{
    if (self->refresh_func)
        self->refresh_func(domain, with_xml, self->refresh_data);
}

/* On the event thread: a domain started, stopped, was (un)defined... The
 * state word follows from the event itself (no call back into libvirt
 * from its own loop); the rest is left to a refresh. */
static int
on_lifecycle(virConnectPtr conn, virDomainPtr dom, int event, int detail, void *opaque)
{
    LvBackend *self = opaque;
    g_autofree char *name = lv_name_escape(virDomainGetName(dom), FALSE);
    int state = -1;

    switch (event) {
    case VIR_DOMAIN_EVENT_STARTED:
    case VIR_DOMAIN_EVENT_RESUMED:
        state = SNAP_DOMAIN_RUNNING;
        break;
    case VIR_DOMAIN_EVENT_SUSPENDED:
    case VIR_DOMAIN_EVENT_PMSUSPENDED:
        state = SNAP_DOMAIN_PAUSED;
        break;
    case VIR_DOMAIN_EVENT_STOPPED:
    case VIR_DOMAIN_EVENT_CRASHED:
        state = SNAP_DOMAIN_SHUTOFF;
        break;
    case VIR_DOMAIN_EVENT_DEFINED:
    case VIR_DOMAIN_EVENT_UNDEFINED:
        lv_refresh(self, NULL, TRUE);
        break;
    default:
        break;
    }
    g_debug("libvirt: %s: lifecycle event %d/%d", name, event, detail);
    if (state >= 0 && lv_set_state(self, name, state) && self->event_func)
        self->event_func(name, state, NULL, self->event_data);
    lv_refresh(self, name, TRUE);
    return 0;
}

/* On the event thread: the connection went (daemon gone, keepalive
 * timeout). Only noted here: poll() reconnects, off libvirt's loop. */
static void
on_close(virConnectPtr conn, int reason, void *opaque)
{
    LvBackend *self = opaque;
    GHashTableIter iter;
    gpointer key;
    g_autoptr(GPtrArray) names = g_ptr_array_new_with_free_func(g_free);
    static const char *const reasons[] = {"an error", "end of file", "keepalive timeout",
                                          "a client request"};
    const char *why = reason >= 0 && reason < (int)G_N_ELEMENTS(reasons)
                          ? reasons[reason]
                          : "an unknown reason";
    g_autofree char *message =
        g_strdup_printf("connection to %s lost (%s); showing the last known tree, "
                        "reconnecting",
                        self->uri, why);

    g_mutex_lock(&self->lock);
    self->lost = TRUE;
    g_hash_table_iter_init(&iter, self->states);
    while (g_hash_table_iter_next(&iter, &key, NULL))
        g_ptr_array_add(names, g_strdup(key));
    g_mutex_unlock(&self->lock);
    for (guint i = 0; self->event_func && i < names->len; i++) {
        SnapDomainState state = self->parent.ops->domain_state(
            &self->parent, &(DomainDef){.name = names->pdata[i]});

        self->event_func(names->pdata[i], state, message, self->event_data);
    }
}

static void
silence(void *data, virErrorPtr err)
{
    /* Errors reach the caller through virGetLastError; the default
     * handler would print them on stderr as well. */
}

/* Subscribes to the connection's events; with the lock held. */
static void
lv_subscribe(LvBackend *self)
{
    if (self->conn == NULL || !self->watching)
        return;
    self->lifecycle_id = virConnectDomainEventRegisterAny(
        self->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
        VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), self, NULL);
    if (self->lifecycle_id < 0) {
        g_debug("libvirt: no lifecycle events: %s", virGetLastErrorMessage());
        virResetLastError();
    }
    if (virConnectRegisterCloseCallback(self->conn, on_close, self, NULL) < 0) {
        g_debug("libvirt: no close callback: %s", virGetLastErrorMessage());
        virResetLastError();
    }
    /* A dead peer is noticed within seconds; local drivers have no
     * keepalive (and say so). */
    if (virConnectSetKeepAlive(self->conn, 2, 3) < 0)
        virResetLastError();
}

/* Drops the connection; with the lock held. */
static void
lv_disconnect(LvBackend *self)
{
    if (self->conn == NULL)
        return;
    if (self->lifecycle_id >= 0)
        virConnectDomainEventDeregisterAny(self->conn, self->lifecycle_id);
    self->lifecycle_id = -1;
    virConnectUnregisterCloseCallback(self->conn, on_close);
    virResetLastError();
    virConnectClose(self->conn);
    self->conn = NULL;
}

static gboolean
lv_connect(LvBackend *self, GError **error)
{
    virConnectPtr conn = virConnectOpenAuth(self->uri, virConnectAuthPtrDefault, 0);

    if (conn == NULL) {
        lv_set_error(error, "cannot connect");
        return FALSE;
    }
    self->conn = conn;
    self->lost = FALSE;
    self->backoff = LV_BACKOFF_MIN;
    lv_subscribe(self);
    return TRUE;
}

static gpointer
event_thread(gpointer data)
{
    LvBackend *self = data;

    while (!g_atomic_int_get(&self->quit))
        if (virEventRunDefaultImpl() < 0) {
            g_debug("libvirt: event loop: %s", virGetLastErrorMessage());
            virResetLastError();
        }
    return NULL;
}

static void
wake_loop(int timer, void *opaque)
{
    virEventRemoveTimeout(timer);
}

/* ---- the ops -------------------------------------------------------- */

static void
lv_set_event_func(SnapBackend *backend, SnapBackendEventFunc func, gpointer user_data)
{
    LvBackend *self = (LvBackend *)backend;

    self->event_func = func;
    self->event_data = user_data;
}

static void
lv_set_refresh_func(SnapBackend *backend, SnapBackendRefreshFunc func, gpointer user_data)
{
    LvBackend *self = (LvBackend *)backend;

    self->refresh_func = func;
    self->refresh_data = user_data;
}

static SnapDomainState
lv_domain_state(SnapBackend *backend, const DomainDef *dom)
{
    LvBackend *self = (LvBackend *)backend;
    gpointer state;

    g_mutex_lock(&self->lock);
    state = g_hash_table_lookup(self->states, dom->name);
    g_mutex_unlock(&self->lock);
    return state ? GPOINTER_TO_INT(state) - 1 : SNAP_DOMAIN_SHUTOFF;
}

static gboolean
lv_attach(SnapBackend *backend, const DomainDef *dom, GError **error)
{
    return TRUE;
}

static void
lv_watch(SnapBackend *backend)
{
    LvBackend *self = (LvBackend *)backend;

    g_mutex_lock(&self->lock);
    self->watching = TRUE;
    lv_subscribe(self);
    g_mutex_unlock(&self->lock);
    self->event_thread = g_thread_new("libvirt-events", event_thread, self);
}

static gboolean
lv_poll(SnapBackend *backend)
{
    LvBackend *self = (LvBackend *)backend;
    g_autoptr(GError) error = NULL;
    gint64 now = g_get_monotonic_time();
    gboolean reconnected = FALSE;
    gboolean connected;

    g_mutex_lock(&self->lock);
    if (self->conn != NULL && (self->lost || virConnectIsAlive(self->conn) != 1)) {
        self->lost = TRUE;
        lv_disconnect(self);
        self->next_try = now;
    }
    if (self->conn == NULL && now >= self->next_try) {
        reconnected = lv_connect(self, &error);
        if (!reconnected) {
            g_debug("libvirt: reconnecting to %s: %s", self->uri, error->message);
            self->next_try = now + self->backoff;
            self->backoff = MIN(self->backoff * 2, LV_BACKOFF_MAX);
        }
    }
    connected = self->conn != NULL;
    g_mutex_unlock(&self->lock);
    if (reconnected) {
        g_message("libvirt: reconnected to %s", self->uri);
        lv_refresh(self, NULL, TRUE);
    }
    return connected;
}

static GPtrArray *
lv_list_domains(SnapBackend *backend, GError **error)
{
    LvBackend *self = (LvBackend *)backend;
    virConnectPtr conn = lv_conn(self, error);
    virDomainPtr *doms = NULL;
    GPtrArray *names;
    int n;

    if (conn == NULL)
        return NULL;
    n = virConnectListAllDomains(conn, &doms, 0);
    if (n < 0) {
        lv_set_error(error, "cannot list domains");
        virConnectClose(conn);
        return NULL;
    }
    names = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < n; i++) {
        g_ptr_array_add(names, lv_name_escape(virDomainGetName(doms[i]), FALSE));
        virDomainFree(doms[i]);
    }
    free(doms);
    virConnectClose(conn);
    return names;
}

static gboolean
lv_start(SnapBackend *backend, const DomainDef *def, gboolean paused, GError **error)
{
    virDomainPtr dom = lv_domain((LvBackend *)backend, def->name, error);
    int ret;

    if (dom == NULL)
        return FALSE;
    /* Some drivers call that an internal error; the file model says BUSY. */
    if (virDomainIsActive(dom) == 1) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_BUSY, "domain %s is already running",
                    def->name);
        virDomainFree(dom);
        return FALSE;
    }
    ret = virDomainCreateWithFlags(dom, paused ? VIR_DOMAIN_START_PAUSED : 0);
    if (ret < 0)
        lv_set_error(error, "cannot start");
    virDomainFree(dom);
    return ret == 0;
}

static gboolean
action_allowed(virDomainPtr dom, const char *name, SnapDomainAction action,
               GError **error)
{
    int state, reason;
    SnapDomainState now;
    gboolean ok;

    if (virDomainGetState(dom, &state, &reason, 0) < 0) {
        lv_set_error(error, "cannot read the domain's state");
        return FALSE;
    }
    now = lv_state_from_libvirt(state);
    ok = action == SNAP_ACTION_PAUSE    ? now == SNAP_DOMAIN_RUNNING
         : action == SNAP_ACTION_RESUME ? now == SNAP_DOMAIN_PAUSED
                                        : now != SNAP_DOMAIN_SHUTOFF;
    if (!ok)
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_BUSY, "domain %s is %s", name,
                    now == SNAP_DOMAIN_RUNNING  ? "running"
                    : now == SNAP_DOMAIN_PAUSED ? "paused"
                                                : "shut off");
    return ok;
}

static gboolean
lv_action(SnapBackend *backend, const DomainDef *def, SnapDomainAction action,
          GError **error)
{
    virDomainPtr dom = lv_domain((LvBackend *)backend, def->name, error);
    int ret = -1;

    if (dom == NULL)
        return FALSE;
    if (action == SNAP_ACTION_START) {
        virDomainFree(dom);
        return lv_start(backend, def, FALSE, error);
    }
    /* Some drivers call a state that does not allow the action an
     * internal error; the file model says BUSY, as the native backend. */
    if (!action_allowed(dom, def->name, action, error)) {
        virDomainFree(dom);
        return FALSE;
    }
    switch (action) {
    case SNAP_ACTION_START:
        break;
    case SNAP_ACTION_SHUTDOWN:
        ret = virDomainShutdown(dom);
        break;
    case SNAP_ACTION_DESTROY:
        ret = virDomainDestroy(dom);
        break;
    case SNAP_ACTION_PAUSE:
        ret = virDomainSuspend(dom);
        break;
    case SNAP_ACTION_RESUME:
        ret = virDomainResume(dom);
        break;
    }
    if (ret < 0)
        lv_set_error(error, "failed");
    virDomainFree(dom);
    return ret == 0;
}

static gboolean
lv_undefine(SnapBackend *backend, const char *domain, SnapUndefineMode mode,
            GError **error)
{
    virDomainPtr dom;
    int ret;

    if (mode == SNAP_UNDEFINE_FULL) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_UNSUPPORTED,
                            "the libvirt backend removes no storage (libvirt does that "
                            "through its storage pools); write 'metadata'");
        return FALSE;
    }
    dom = lv_domain((LvBackend *)backend, domain, error);
    if (dom == NULL)
        return FALSE;
    ret = virDomainIsActive(dom);
    if (ret != 0) {
        if (ret < 0)
            lv_set_error(error, "cannot read the domain's state");
        else
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_BUSY,
                        "domain %s is not shut off; stop it (write destroy or shutdown "
                        "to state) before undefining it",
                        domain);
        virDomainFree(dom);
        return FALSE;
    }
    ret = virDomainUndefineFlags(dom, VIR_DOMAIN_UNDEFINE_SNAPSHOTS_METADATA |
                                          VIR_DOMAIN_UNDEFINE_CHECKPOINTS_METADATA |
                                          VIR_DOMAIN_UNDEFINE_MANAGED_SAVE);
    if (ret < 0)
        lv_set_error(error, "cannot undefine");
    virDomainFree(dom);
    return ret == 0;
}

static void
lv_free(SnapBackend *backend)
{
    LvBackend *self = (LvBackend *)backend;

    if (self->event_thread != NULL) {
        g_atomic_int_set(&self->quit, 1);
        /* Adding a timer wakes the loop's poll. */
        virEventAddTimeout(0, wake_loop, NULL, NULL);
        g_thread_join(self->event_thread);
    }
    g_mutex_lock(&self->lock);
    lv_disconnect(self);
    g_mutex_unlock(&self->lock);
    g_hash_table_unref(self->states);
    g_mutex_clear(&self->lock);
    g_free(self->uri);
    g_free(self->cache_dir);
    g_free(self);
}

static const SnapBackendOps lv_ops = {
    .name = "libvirt",
    .set_event_func = lv_set_event_func,
    .domain_state = lv_domain_state,
    .attach = lv_attach,
    .watch = lv_watch,
    .start = lv_start,
    .action = lv_action,
    .list_domains = lv_list_domains,
    .domain_view = lv_domain_view,
    .snapshot_get = lv_snapshot_get,
    .snapshot_take = lv_snapshot_take,
    .screenshot = lv_screenshot,
    .screen_file = lv_screen_file,
    .snapshot_remove = lv_snapshot_remove,
    .snapshot_revert = lv_snapshot_revert,
    .undefine = lv_undefine,
    .set_refresh_func = lv_set_refresh_func,
    .poll = lv_poll,
    .free = lv_free,
};

SnapBackend *
snap_backend_libvirt_new(const char *uri, GError **error)
{
    static gsize once;
    LvBackend *self;

    /* Before the first connection: a remote connection registers its
     * socket with the event loop when it opens. */
    if (g_once_init_enter(&once)) {
        virSetErrorFunc(NULL, silence);
        virEventRegisterDefaultImpl();
        g_once_init_leave(&once, 1);
    }
    self = g_new0(LvBackend, 1);
    self->parent.ops = &lv_ops;
    self->uri = g_strdup(uri);
    self->lifecycle_id = -1;
    self->backoff = LV_BACKOFF_MIN;
    g_mutex_init(&self->lock);
    self->states = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    if (!lv_connect(self, error)) {
        lv_free(&self->parent);
        return NULL;
    }
    return &self->parent;
}
