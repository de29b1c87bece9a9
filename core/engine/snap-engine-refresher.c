/* snap-engine-refresher.c: an engine over a backend that owns the metadata
 * (libvirt): its domains read at load, and the refresher thread that
 * queues a refresh of each domain on the backend's events and twice a
 * second. */
#include "snap-engine-refresher.h"

#define REFRESH_PERIOD (500 * G_TIME_SPAN_MILLISECOND)

struct _SnapEngineRemote {
    GThread *thread;
    GMutex lock;
    GCond cond;
    gboolean quit;
    gboolean kick_all;    /* the domain list may have changed */
    guint kick_all_flags; /* refresh flags for every domain (a reconnect) */
    GHashTable *kicked;   /* domain -> refresh flags + 1, from events */
};

/* ---- loading and the refresher thread ------------------------------------ */

gboolean
snap_remote_load(SnapEngine *engine, GError **error)
{
    SnapCatalogue *catalogue = engine->catalogue;
    g_autoptr(GPtrArray) names = catalogue->ops->list_domains(catalogue, error);

    if (names == NULL)
        return FALSE;
    for (guint i = 0; i < names->len; i++) {
        SnapDomain *dom = snap_engine_add_domain(engine, names->pdata[i]);

        snap_engine_refresh_now(engine, dom, SNAP_REFRESH_DEF | SNAP_REFRESH_ALL);
    }
    return TRUE;
}

/* Domains the backend has and the engine does not yet. */
static void
add_new_domains(SnapEngine *engine)
{
    SnapCatalogue *catalogue = engine->catalogue;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) names = catalogue->ops->list_domains(catalogue, &error);

    if (names == NULL) {
        g_debug("refresh: domains: %s", error->message);
        return;
    }
    for (guint i = 0; i < names->len; i++) {
        gboolean known;

        g_rw_lock_reader_lock(&engine->lock);
        known = g_hash_table_contains(engine->domains, names->pdata[i]);
        g_rw_lock_reader_unlock(&engine->lock);
        if (!known)
            snap_engine_queue_refresh(engine,
                                      snap_engine_add_domain(engine, names->pdata[i]),
                                      SNAP_REFRESH_DEF | SNAP_REFRESH_ALL);
    }
}

static gpointer
refresher(gpointer data)
{
    SnapEngine *engine = data;
    SnapEngineRemote *r = engine->remote;
    gint64 next = g_get_monotonic_time() + REFRESH_PERIOD;

    g_mutex_lock(&r->lock);
    while (!r->quit) {
        g_autoptr(GHashTable) kicked = NULL;
        g_autoptr(GPtrArray) doms = NULL;
        gboolean periodic, all;
        guint all_flags;

        if (!r->kick_all && g_hash_table_size(r->kicked) == 0 &&
            g_cond_wait_until(&r->cond, &r->lock, next))
            continue;
        periodic = g_get_monotonic_time() >= next;
        all = r->kick_all || periodic;
        all_flags = r->kick_all_flags;
        r->kick_all = FALSE;
        r->kick_all_flags = 0;
        kicked = g_steal_pointer(&r->kicked);
        r->kicked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
        g_mutex_unlock(&r->lock);

        if (periodic)
            next = g_get_monotonic_time() + REFRESH_PERIOD;
        if (engine->catalogue->ops->poll(engine->catalogue)) {
            if (all)
                add_new_domains(engine);
            doms = snap_engine_domains(engine, FALSE);
            for (guint i = 0; i < doms->len; i++) {
                SnapDomain *dom = doms->pdata[i];
                gpointer flags = g_hash_table_lookup(kicked, dom->name);

                if (flags != NULL)
                    snap_engine_queue_refresh(engine, dom,
                                              (GPOINTER_TO_UINT(flags) - 1) | all_flags);
                else if (all)
                    snap_engine_queue_refresh(engine, dom, all_flags);
            }
        }
        g_mutex_lock(&r->lock);
    }
    g_mutex_unlock(&r->lock);
    return NULL;
}

/* The backend's events: on its event thread, so only noted here. */
static void
on_refresh(const char *domain, gboolean with_xml, gpointer user_data)
{
    SnapEngineRemote *r = ((SnapEngine *)user_data)->remote;

    g_mutex_lock(&r->lock);
    if (domain == NULL) {
        r->kick_all = TRUE;
        /* Everything may have changed unseen (a reconnect): read it all. */
        if (with_xml)
            r->kick_all_flags |= SNAP_REFRESH_DEF | SNAP_REFRESH_ALL;
    } else {
        guint flags = GPOINTER_TO_UINT(g_hash_table_lookup(r->kicked, domain));

        flags = (flags ? flags - 1 : 0) | (with_xml ? SNAP_REFRESH_DEF : 0);
        g_hash_table_insert(r->kicked, g_strdup(domain), GUINT_TO_POINTER(flags + 1));
    }
    g_cond_signal(&r->cond);
    g_mutex_unlock(&r->lock);
}

void
snap_remote_start(SnapEngine *engine)
{
    SnapEngineRemote *r = g_new0(SnapEngineRemote, 1);

    g_mutex_init(&r->lock);
    g_cond_init(&r->cond);
    r->kicked = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    engine->remote = r;
    engine->catalogue->ops->set_refresh_func(engine->catalogue, on_refresh, engine);
    r->thread = g_thread_new("snap-refresh", refresher, engine);
}

void
snap_remote_stop(SnapEngine *engine)
{
    SnapEngineRemote *r = engine->remote;

    if (r == NULL)
        return;
    g_mutex_lock(&r->lock);
    r->quit = TRUE;
    g_cond_signal(&r->cond);
    g_mutex_unlock(&r->lock);
    g_thread_join(r->thread);
    r->thread = NULL;
}

void
snap_remote_free(SnapEngine *engine)
{
    SnapEngineRemote *r = engine->remote;

    if (r == NULL)
        return;
    g_hash_table_unref(r->kicked);
    g_mutex_clear(&r->lock);
    g_cond_clear(&r->cond);
    g_free(r);
    engine->remote = NULL;
}
