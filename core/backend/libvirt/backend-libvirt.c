/* backend-libvirt.c: the libvirt backend's connection, events, reconnects and domain
 * calls. */
#include "backend-libvirt-private.h"

#include <libvirt/virterror.h>

#include "backend-libvirt-names.h"

#define LV_BACKOFF_MIN (500 * G_TIME_SPAN_MILLISECOND)
#define LV_BACKOFF_MAX (30 * G_TIME_SPAN_SECOND)
/* A daemon that stops answering is declared dead after about
 * INTERVAL * (COUNT + 1) seconds: its pending calls fail, the close
 * callback fires and poll() reconnects. */
#define LV_KEEPALIVE_INTERVAL 1
#define LV_KEEPALIVE_COUNT 3
/* An open that takes longer fails (the daemon accepted the socket but does
 * not answer); the open itself finishes, or not, on its own thread. */
#define LV_OPEN_TIMEOUT                                                                  \
    (LV_KEEPALIVE_INTERVAL * (LV_KEEPALIVE_COUNT + 1) * G_TIME_SPAN_SECOND)

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

static LvConn *
lv_conn_ref(LvConn *c)
{
    return g_atomic_rc_box_acquire(c);
}

static void
lv_conn_clear(gpointer data)
{
    LvConn *c = data;

    /* On a daemon that does not answer, this waits for the keepalive at
     * most. */
    virConnectClose(c->conn);
}

static void
lv_conn_unref(LvConn *c)
{
    g_atomic_rc_box_release_full(c, lv_conn_clear);
}
G_DEFINE_AUTOPTR_CLEANUP_FUNC(LvConn, lv_conn_unref)

/* ---- opening a connection in bounded time ---- */

typedef struct {
    GMutex lock;
    GCond done_cond;
    char *uri;
    virConnectPtr conn;
    GError *error;
    gboolean done;
    gboolean abandoned; /* the caller gave up: the opener closes what it got */
} LvOpening;

static void
lv_opening_clear(gpointer data)
{
    LvOpening *o = data;

    g_mutex_clear(&o->lock);
    g_cond_clear(&o->done_cond);
    g_free(o->uri);
    g_clear_error(&o->error);
}

static gpointer
lv_opener(gpointer data)
{
    LvOpening *o = data;
    g_autoptr(GError) error = NULL;
    virConnectPtr conn = virConnectOpenAuth(o->uri, virConnectAuthPtrDefault, 0);
    gboolean abandoned;

    if (conn == NULL)
        lv_set_error(&error, "cannot connect");
    g_mutex_lock(&o->lock);
    abandoned = o->abandoned;
    if (!abandoned) {
        o->conn = g_steal_pointer(&conn);
        o->error = g_steal_pointer(&error);
    }
    o->done = TRUE;
    g_cond_signal(&o->done_cond);
    g_mutex_unlock(&o->lock);
    if (conn != NULL)
        virConnectClose(conn);
    g_atomic_rc_box_release_full(o, lv_opening_clear);
    return NULL;
}

/* virConnectOpenAuth(@uri), or EIO when it has not answered within
 * LV_OPEN_TIMEOUT: libvirt's open has no keepalive yet, and a daemon that
 * accepted the socket but is stopped would hold the caller for ever. The
 * open runs on a thread of its own, joined when it answered in time (the
 * daemon forks after the first opens: no thread of ours may be left
 * then); one that did not is left to finish and close what it got. */
static virConnectPtr
lv_open(const char *uri, GError **error)
{
    LvOpening *o = g_atomic_rc_box_new0(LvOpening);
    gint64 deadline = g_get_monotonic_time() + LV_OPEN_TIMEOUT;
    virConnectPtr conn = NULL;
    GThread *opener;
    gboolean done;

    g_mutex_init(&o->lock);
    g_cond_init(&o->done_cond);
    o->uri = g_strdup(uri);
    opener = g_thread_new("libvirt-open", lv_opener, g_atomic_rc_box_acquire(o));
    g_mutex_lock(&o->lock);
    while (!o->done && g_cond_wait_until(&o->done_cond, &o->lock, deadline))
        ;
    if (o->done) {
        conn = g_steal_pointer(&o->conn);
        if (conn == NULL)
            g_propagate_error(error, g_steal_pointer(&o->error));
    } else {
        o->abandoned = TRUE;
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "%s accepted the connection but did not answer within %d s", uri,
                    (int)(LV_OPEN_TIMEOUT / G_TIME_SPAN_SECOND));
    }
    done = o->done;
    g_mutex_unlock(&o->lock);
    if (done)
        g_thread_join(opener);
    else
        g_thread_unref(opener);
    g_atomic_rc_box_release_full(o, lv_opening_clear);
    return conn;
}

/* ---- the calling thread's connection ---- */

/* Each thread's connections: backend id -> LvConn*. */
static GPrivate thread_conns = G_PRIVATE_INIT((GDestroyNotify)g_hash_table_unref);

/* The calling thread's connection to @self (opened on first use, and again
 * after a reconnect), or NOT CONNECTED (EIO) while the connection is
 * lost. Takes `lock` only briefly. (transfer full) */
static LvConn *
lv_conn(LvBackend *self, GError **error)
{
    GHashTable *mine = g_private_get(&thread_conns);
    gpointer key = GUINT_TO_POINTER(self->id);
    g_autoptr(GError) local = NULL;
    virConnectPtr conn;
    gboolean usable;
    guint generation;
    LvConn *c;

    g_mutex_lock(&self->lock);
    usable = self->conn != NULL && !self->lost;
    generation = self->generation;
    g_mutex_unlock(&self->lock);
    if (!usable) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                    "not connected to %s (reconnecting)", self->uri);
        return NULL;
    }
    if (mine == NULL) {
        mine = g_hash_table_new_full(NULL, NULL, NULL, (GDestroyNotify)lv_conn_unref);
        g_private_set(&thread_conns, mine);
    }
    c = g_hash_table_lookup(mine, key);
    if (c != NULL && (c->generation != generation || virConnectIsAlive(c->conn) != 1)) {
        g_hash_table_remove(mine, key);
        c = NULL;
    }
    if (c == NULL) {
        conn = lv_open(self->uri, &local);
        if (conn == NULL) {
            g_propagate_prefixed_error(error, g_steal_pointer(&local),
                                       "not connected to %s: ", self->uri);
            return NULL;
        }
        if (virConnectSetKeepAlive(conn, LV_KEEPALIVE_INTERVAL, LV_KEEPALIVE_COUNT) < 0)
            virResetLastError();
        c = g_atomic_rc_box_new0(LvConn);
        c->conn = conn;
        c->lifecycle_id = -1;
        c->generation = generation;
        g_hash_table_insert(mine, key, c);
    }
    return lv_conn_ref(c);
}

virDomainPtr
lv_domain(LvBackend *self, const char *domain, GError **error)
{
    g_autofree char *name = lv_name_unescape(domain, FALSE, error);
    g_autoptr(LvConn) c = NULL;
    virDomainPtr dom;

    if (name == NULL)
        return NULL;
    c = lv_conn(self, error);
    if (c == NULL)
        return NULL;
    /* The domain holds its own reference to the connection. */
    dom = virDomainLookupByName(c->conn, name);
    if (dom == NULL)
        lv_set_error(error, "no such domain");
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
        /* The domain list; this domain's definition is read below. */
        lv_refresh(self, NULL, FALSE);
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
    /* A connection poll() already replaced says nothing about this one. */
    if (self->conn == NULL || self->conn->conn != conn) {
        g_mutex_unlock(&self->lock);
        return;
    }
    self->lost = TRUE;
    g_hash_table_iter_init(&iter, self->states);
    while (g_hash_table_iter_next(&iter, &key, NULL))
        g_ptr_array_add(names, g_strdup(key));
    g_mutex_unlock(&self->lock);
    for (guint i = 0; self->event_func && i < names->len; i++) {
        SnapDomainState state = self->parent.parent.ops->domain_state(
            &self->parent.parent, &(DomainDef){.name = names->pdata[i]});

        self->event_func(names->pdata[i], state, message, self->event_data);
    }
}

static void
silence(void *data, virErrorPtr err)
{
    /* Errors reach the caller through virGetLastError; the default
     * handler would print them on stderr as well. */
}

/* Subscribes to @c's events, close callback and keepalive; with
 * conn_lock held (libvirt calls: never with `lock`). */
static void
lv_subscribe(LvBackend *self, LvConn *c)
{
    if (c->subscribed)
        return;
    c->subscribed = TRUE;
    c->lifecycle_id = virConnectDomainEventRegisterAny(
        c->conn, NULL, VIR_DOMAIN_EVENT_ID_LIFECYCLE,
        VIR_DOMAIN_EVENT_CALLBACK(on_lifecycle), self, NULL);
    if (c->lifecycle_id < 0) {
        g_debug("libvirt: no lifecycle events: %s", virGetLastErrorMessage());
        virResetLastError();
    }
    if (virConnectRegisterCloseCallback(c->conn, on_close, self, NULL) < 0) {
        g_debug("libvirt: no close callback: %s", virGetLastErrorMessage());
        virResetLastError();
    }
    /* A daemon that stops answering is noticed in bounded time (the
     * event thread runs the keepalive); the in-process test driver has
     * none and says so. */
    if (virConnectSetKeepAlive(c->conn, LV_KEEPALIVE_INTERVAL, LV_KEEPALIVE_COUNT) < 0) {
        g_debug("libvirt: no keepalive: %s", virGetLastErrorMessage());
        virResetLastError();
    }
}

/* Undoes lv_subscribe; with conn_lock held. */
static void
lv_unsubscribe(LvConn *c)
{
    if (!c->subscribed)
        return;
    if (c->lifecycle_id >= 0)
        virConnectDomainEventDeregisterAny(c->conn, c->lifecycle_id);
    c->lifecycle_id = -1;
    virConnectUnregisterCloseCallback(c->conn, on_close);
    virResetLastError();
    c->subscribed = FALSE;
}

/* Takes the connection out (readers see "not connected" from then on),
 * then unsubscribes and drops it outside `lock`; with conn_lock held. */
static void
lv_disconnect(LvBackend *self)
{
    LvConn *c;

    g_mutex_lock(&self->lock);
    c = g_steal_pointer(&self->conn);
    g_mutex_unlock(&self->lock);
    if (c == NULL)
        return;
    lv_unsubscribe(c);
    lv_conn_unref(c);
}

/* Opens a new connection and installs it; with conn_lock held. The open
 * may wait on a daemon that does not answer: `lock` is free meanwhile. */
static gboolean
lv_connect(LvBackend *self, GError **error)
{
    virConnectPtr conn;
    LvConn *c;
    gboolean watching;

    g_mutex_lock(&self->lock);
    watching = self->watching;
    g_mutex_unlock(&self->lock);
    conn = lv_open(self->uri, error);
    if (conn == NULL)
        return FALSE;
    c = g_atomic_rc_box_new0(LvConn);
    c->conn = conn;
    c->lifecycle_id = -1;
    if (watching)
        lv_subscribe(self, c);
    g_mutex_lock(&self->lock);
    self->conn = c;
    c->generation = ++self->generation;
    self->lost = FALSE;
    self->backoff = LV_BACKOFF_MIN;
    g_mutex_unlock(&self->lock);
    return TRUE;
}

/* One thread runs libvirt's default event loop for every backend of the
 * process (a fleet has several): started by the first watch(), stopped
 * when the last backend that watched is freed. */
static GMutex event_lock;
static guint event_users;
static GThread *event_loop_thread;
static gint event_quit;

static gpointer
event_thread(gpointer data)
{
    while (!g_atomic_int_get(&event_quit))
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
lv_set_refresh_func(SnapCatalogue *backend, SnapBackendRefreshFunc func,
                    gpointer user_data)
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
    LvConn *c;

    g_mutex_lock(&event_lock);
    if (event_users++ == 0) {
        g_atomic_int_set(&event_quit, 0);
        event_loop_thread = g_thread_new("libvirt-events", event_thread, NULL);
    }
    g_mutex_unlock(&event_lock);
    g_mutex_lock(&self->conn_lock);
    g_mutex_lock(&self->lock);
    self->watching = TRUE;
    c = self->conn ? lv_conn_ref(self->conn) : NULL;
    g_mutex_unlock(&self->lock);
    if (c != NULL) {
        lv_subscribe(self, c);
        lv_conn_unref(c);
    }
    g_mutex_unlock(&self->conn_lock);
}

static gboolean
lv_poll(SnapCatalogue *backend)
{
    LvBackend *self = (LvBackend *)backend;
    g_autoptr(GError) error = NULL;
    g_autoptr(LvConn) c = NULL;
    gint64 now = g_get_monotonic_time();
    gboolean reconnected = FALSE;
    gboolean lost, retry;

    g_mutex_lock(&self->conn_lock);
    g_mutex_lock(&self->lock);
    c = self->conn ? lv_conn_ref(self->conn) : NULL;
    lost = self->lost;
    g_mutex_unlock(&self->lock);
    if (c != NULL && (lost || virConnectIsAlive(c->conn) != 1)) {
        g_mutex_lock(&self->lock);
        self->lost = TRUE;
        self->next_try = now;
        g_mutex_unlock(&self->lock);
        lv_disconnect(self);
        g_clear_pointer(&c, lv_conn_unref);
    }
    g_mutex_lock(&self->lock);
    retry = c == NULL && now >= self->next_try;
    g_mutex_unlock(&self->lock);
    if (retry) {
        reconnected = lv_connect(self, &error);
        if (!reconnected) {
            g_debug("libvirt: reconnecting to %s: %s", self->uri, error->message);
            g_mutex_lock(&self->lock);
            self->next_try = now + self->backoff;
            self->backoff = MIN(self->backoff * 2, LV_BACKOFF_MAX);
            g_mutex_unlock(&self->lock);
        }
    }
    g_mutex_unlock(&self->conn_lock);
    if (reconnected) {
        g_message("libvirt: reconnected to %s", self->uri);
        lv_refresh(self, NULL, TRUE);
    }
    return c != NULL || reconnected;
}

static GPtrArray *
lv_list_domains(SnapCatalogue *backend, GError **error)
{
    LvBackend *self = (LvBackend *)backend;
    g_autoptr(LvConn) c = lv_conn(self, error);
    virDomainPtr *doms = NULL;
    GPtrArray *names;
    int n;

    if (c == NULL)
        return NULL;
    n = virConnectListAllDomains(c->conn, &doms, 0);
    if (n < 0) {
        lv_set_error(error, "cannot list domains");
        return NULL;
    }
    names = g_ptr_array_new_with_free_func(g_free);
    for (int i = 0; i < n; i++) {
        g_ptr_array_add(names, lv_name_escape(virDomainGetName(doms[i]), FALSE));
        virDomainFree(doms[i]);
    }
    free(doms);
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
lv_undefine(SnapCatalogue *backend, const char *domain, SnapUndefineMode mode,
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

    if (self->watching) {
        g_mutex_lock(&event_lock);
        if (--event_users == 0) {
            g_atomic_int_set(&event_quit, 1);
            /* Adding a timer wakes the loop's poll. */
            virEventAddTimeout(0, wake_loop, NULL, NULL);
            g_thread_join(g_steal_pointer(&event_loop_thread));
        }
        g_mutex_unlock(&event_lock);
    }
    g_mutex_lock(&self->conn_lock);
    lv_disconnect(self);
    g_mutex_unlock(&self->conn_lock);
    g_hash_table_unref(self->states);
    g_mutex_clear(&self->lock);
    g_mutex_clear(&self->conn_lock);
    g_free(self->uri);
    g_free(self->cache_dir);
    g_free(self);
}

/* One host is no fleet. */
static GPtrArray *
lv_hosts(SnapCatalogue *backend)
{
    return NULL;
}

/* One host's domains are all where its URI is; a remote URI refuses
 * -o disks before this is asked (engine_new_libvirt()). */
static gboolean
lv_domain_is_local(SnapCatalogue *backend, const char *domain)
{
    return TRUE;
}

static const SnapBackendOps lv_ops = {
    .name = "libvirt",
    .set_event_func = lv_set_event_func,
    .domain_state = lv_domain_state,
    .attach = lv_attach,
    .watch = lv_watch,
    .start = lv_start,
    .action = lv_action,
    .screenshot = lv_screenshot,
    .free = lv_free,
};

static const SnapCatalogueOps lv_catalogue_ops = {
    .list_domains = lv_list_domains,
    .domain_view = lv_domain_view,
    .snapshot_get = lv_snapshot_get,
    .snapshot_take = lv_snapshot_take,
    .snapshot_remove = lv_snapshot_remove,
    .snapshot_revert = lv_snapshot_revert,
    .undefine = lv_undefine,
    .set_refresh_func = lv_set_refresh_func,
    .poll = lv_poll,
    .screen_file = lv_screen_file,
    .hosts = lv_hosts,
    .domain_is_local = lv_domain_is_local,
};

gboolean
snap_backend_libvirt_uri_is_local(const char *uri)
{
    g_autoptr(GUri) parsed = g_uri_parse(uri, G_URI_FLAGS_NON_DNS, NULL);
    const char *host = parsed ? g_uri_get_host(parsed) : NULL;

    return parsed != NULL && (host == NULL || *host == '\0');
}

char *
snap_backend_libvirt_uri_host(const char *uri, GError **error)
{
    g_autoptr(GUri) parsed = g_uri_parse(uri, G_URI_FLAGS_NON_DNS, NULL);
    const char *host = parsed ? g_uri_get_host(parsed) : NULL;

    if (parsed == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID, "'%s' is not a libvirt URI",
                    uri);
        return NULL;
    }
    return g_strdup(host == NULL || *host == '\0' ? "localhost" : host);
}

SnapCatalogue *
snap_backend_libvirt_open(const char *uri, GError **connect_error)
{
    static gsize once;
    static gint next_id;
    LvBackend *self;

    /* Before the first connection: a remote connection registers its
     * socket with the event loop when it opens. */
    if (g_once_init_enter(&once)) {
        virSetErrorFunc(NULL, silence);
        virEventRegisterDefaultImpl();
        g_once_init_leave(&once, 1);
    }
    self = g_new0(LvBackend, 1);
    self->parent.parent.ops = &lv_ops;
    self->parent.ops = &lv_catalogue_ops;
    self->uri = g_strdup(uri);
    self->id = g_atomic_int_add(&next_id, 1) + 1;
    self->backoff = LV_BACKOFF_MIN;
    g_mutex_init(&self->lock);
    g_mutex_init(&self->conn_lock);
    self->states = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_mutex_lock(&self->conn_lock);
    if (!lv_connect(self, connect_error)) {
        self->next_try = g_get_monotonic_time() + self->backoff;
        self->backoff *= 2;
    }
    g_mutex_unlock(&self->conn_lock);
    return &self->parent;
}

SnapCatalogue *
snap_backend_libvirt_new(const char *uri, GError **error)
{
    g_autoptr(GError) local = NULL;
    SnapCatalogue *self = snap_backend_libvirt_open(uri, &local);

    if (local != NULL) {
        snap_backend_free(&self->parent);
        g_propagate_error(error, g_steal_pointer(&local));
        return NULL;
    }
    return self;
}
