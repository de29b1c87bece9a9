/* snap-engine-domain.c: the domain table: lookups, and a domain's memory. */
#include "snap-engine-private.h"

void
snap_domain_free(SnapDomain *dom)
{
    if (dom == NULL)
        return;
    g_free(dom->name);
    domain_def_free(dom->def);
    g_free(dom->def_xml);
    snap_tree_free(dom->tree);
    error_log_free(dom->errors);
    g_clear_pointer(&dom->chains, g_hash_table_unref);
    g_free(dom->job);
    g_clear_pointer(&dom->stale_active, g_ptr_array_unref);
    g_clear_pointer(&dom->orphan_tags, g_hash_table_unref);
    if (dom->early)
        g_ptr_array_unref(dom->early);
    g_free(dom);
}

void
snap_domain_orphan_add(SnapDomain *dom, const char *name)
{
    if (dom->orphan_tags == NULL)
        dom->orphan_tags = g_hash_table_new_full(g_str_hash, g_str_equal, g_free, NULL);
    g_hash_table_add(dom->orphan_tags, g_strdup(name));
}

void
snap_domain_orphan_remove(SnapDomain *dom, const char *name)
{
    if (dom->orphan_tags != NULL)
        g_hash_table_remove(dom->orphan_tags, name);
}

gboolean
snap_domain_orphan_has(SnapDomain *dom, const char *name)
{
    return dom->orphan_tags != NULL && g_hash_table_contains(dom->orphan_tags, name);
}

/* An undefined domain leaves the table but is not freed before the
 * engine is, so a pointer found here stays valid. */
SnapDomain *
snap_engine_find_domain(SnapEngine *engine, const char *domain)
{
    SnapDomain *dom;

    if (domain == NULL)
        return NULL;
    g_rw_lock_reader_lock(&engine->lock);
    dom = g_hash_table_lookup(engine->domains, domain);
    g_rw_lock_reader_unlock(&engine->lock);
    return dom;
}

GPtrArray *
snap_engine_domains(SnapEngine *engine, gboolean removed_too)
{
    GPtrArray *doms = g_ptr_array_new();
    GHashTableIter iter;
    gpointer value;

    g_rw_lock_reader_lock(&engine->lock);
    g_hash_table_iter_init(&iter, engine->domains);
    while (g_hash_table_iter_next(&iter, NULL, &value))
        g_ptr_array_add(doms, value);
    for (guint i = 0; removed_too && i < engine->removed->len; i++)
        g_ptr_array_add(doms, engine->removed->pdata[i]);
    g_rw_lock_reader_unlock(&engine->lock);
    return doms;
}
