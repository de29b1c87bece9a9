/* snap-engine-read.c: the engine's read-only API: domains, snapshots, their files. */
#include "snap-engine-private.h"

#include <string.h>

static int
str_ptr_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

GPtrArray *
snap_engine_list_domains(SnapEngine *engine)
{
    GPtrArray *names = g_ptr_array_new_with_free_func(g_free);
    GHashTableIter iter;
    gpointer key;

    g_rw_lock_reader_lock(&engine->lock);
    g_hash_table_iter_init(&iter, engine->domains);
    while (g_hash_table_iter_next(&iter, &key, NULL))
        g_ptr_array_add(names, g_strdup(key));
    g_rw_lock_reader_unlock(&engine->lock);
    g_ptr_array_sort(names, str_ptr_cmp);
    return names;
}

gboolean
snap_engine_domain_info(SnapEngine *engine, const char *domain, SnapDomainInfo *info)
{
    SnapDomain *dom = snap_engine_find_domain(engine, domain);

    if (dom == NULL)
        return FALSE;
    if (info == NULL)
        return TRUE;
    g_rw_lock_reader_lock(&engine->lock);
    info->state = snap_domain_state(engine, dom);
    info->nroots = snap_tree_metaroot(dom->tree)->nchildren;
    info->nsnapshots = snap_tree_size(dom->tree);
    info->has_current = snap_tree_get_current(dom->tree) != NULL;
    info->mtime = dom->mtime;
    g_rw_lock_reader_unlock(&engine->lock);
    return TRUE;
}

static const char *
state_word(SnapDomainState state)
{
    switch (state) {
    case SNAP_DOMAIN_RUNNING:
        return "running\n";
    case SNAP_DOMAIN_PAUSED:
        return "paused\n";
    case SNAP_DOMAIN_SHUTOFF:
    default:
        return "shutoff\n";
    }
}

GBytes *
snap_engine_domain_file(SnapEngine *engine, const char *domain, SnapDomainFile file)
{
    SnapDomain *dom = snap_engine_find_domain(engine, domain);
    GBytes *out = NULL;

    if (dom == NULL)
        return NULL;
    g_rw_lock_reader_lock(&engine->lock);
    switch (file) {
    case SNAP_DOMAIN_FILE_XML:
        out = g_bytes_new(dom->def_xml, strlen(dom->def_xml));
        break;
    case SNAP_DOMAIN_FILE_STATE: {
        const char *word = state_word(snap_domain_state(engine, dom));

        out = g_bytes_new_static(word, strlen(word));
        break;
    }
    case SNAP_DOMAIN_FILE_ERRORS:
        out = error_log_contents(dom->errors);
        break;
    case SNAP_DOMAIN_FILE_JOB:
        out = g_bytes_new(dom->job, strlen(dom->job));
        break;
    }
    g_rw_lock_reader_unlock(&engine->lock);
    return out;
}

static void
fill_info(SnapDomain *dom, SnapNode *node, SnapSnapshotInfo *info)
{
    info->creation_time = node->creation_time;
    info->nchildren = node->nchildren;
    info->is_current = snap_tree_get_current(dom->tree) == node;
    info->xml_size = snap_node_xml_len(node) + (info->is_current ? SNAP_ACTIVE_LEN : 0);
    info->screen_size = node->screen_size;
}

gboolean
snap_engine_snapshot_info(SnapEngine *engine, const char *domain, const char *snapshot,
                          gboolean parent_check, const char *parent,
                          SnapSnapshotInfo *info)
{
    SnapDomain *dom = snap_engine_find_domain(engine, domain);
    SnapNode *node;
    gboolean ok = FALSE;

    if (dom == NULL)
        return FALSE;
    g_rw_lock_reader_lock(&engine->lock);
    node = snap_tree_lookup(dom->tree, snapshot);
    if (node != NULL) {
        SnapNode *p = snap_node_parent(node);

        ok = !parent_check || g_strcmp0(p ? p->name : NULL, parent) == 0;
        if (ok && info)
            fill_info(dom, node, info);
    }
    g_rw_lock_reader_unlock(&engine->lock);
    return ok;
}

void
snap_entry_free(SnapEntry *entry)
{
    if (entry == NULL)
        return;
    g_free(entry->name);
    g_free(entry);
}

static SnapEntry *
entry_new(SnapDomain *dom, SnapNode *node)
{
    SnapEntry *e = g_new0(SnapEntry, 1);

    e->name = g_strdup(node->name);
    fill_info(dom, node, &e->info);
    return e;
}

static int
entry_cmp_time(gconstpointer a, gconstpointer b)
{
    const SnapEntry *ea = *(SnapEntry *const *)a;
    const SnapEntry *eb = *(SnapEntry *const *)b;

    if (ea->info.creation_time != eb->info.creation_time)
        return ea->info.creation_time < eb->info.creation_time ? -1 : 1;
    return strcmp(ea->name, eb->name);
}

GPtrArray *
snap_engine_list_children(SnapEngine *engine, const char *domain, const char *parent)
{
    SnapDomain *dom = snap_engine_find_domain(engine, domain);
    GPtrArray *out = NULL;
    SnapNode *top;

    if (dom == NULL)
        return NULL;
    g_rw_lock_reader_lock(&engine->lock);
    top = parent ? snap_tree_lookup(dom->tree, parent) : snap_tree_metaroot(dom->tree);
    if (top != NULL) {
        out = g_ptr_array_new_full(top->nchildren, (GDestroyNotify)snap_entry_free);
        for (SnapNode *c = top->first_child; c; c = c->next_sibling)
            g_ptr_array_add(out, entry_new(dom, c));
    }
    g_rw_lock_reader_unlock(&engine->lock);
    if (out)
        g_ptr_array_sort(out, entry_cmp_time);
    return out;
}

GPtrArray *
snap_engine_list_snapshots(SnapEngine *engine, const char *domain, const char *from,
                           SnapListFlags flags)
{
    SnapDomain *dom = snap_engine_find_domain(engine, domain);
    GPtrArray *out = NULL;
    SnapNode *top = NULL;

    if (dom == NULL)
        return NULL;
    g_rw_lock_reader_lock(&engine->lock);
    if (from != NULL)
        top = snap_tree_lookup(dom->tree, from);
    if (from == NULL || top != NULL) {
        g_autoptr(GPtrArray) nodes = snap_tree_list(dom->tree, top, flags);

        out = g_ptr_array_new_full(nodes->len, (GDestroyNotify)snap_entry_free);
        for (guint i = 0; i < nodes->len; i++)
            g_ptr_array_add(out, entry_new(dom, nodes->pdata[i]));
    }
    g_rw_lock_reader_unlock(&engine->lock);
    return out;
}

gboolean
snap_engine_snapshot_parent(SnapEngine *engine, const char *domain, const char *snapshot,
                            char **out_parent)
{
    SnapDomain *dom = snap_engine_find_domain(engine, domain);
    SnapNode *node;

    if (dom == NULL)
        return FALSE;
    g_rw_lock_reader_lock(&engine->lock);
    node = snap_tree_lookup(dom->tree, snapshot);
    if (node && out_parent) {
        SnapNode *p = snap_node_parent(node);

        *out_parent = p ? g_strdup(p->name) : NULL;
    }
    g_rw_lock_reader_unlock(&engine->lock);
    return node != NULL;
}

GBytes *
snap_engine_snapshot_xml(SnapEngine *engine, const char *domain, const char *snapshot)
{
    SnapDomain *dom = snap_engine_find_domain(engine, domain);
    SnapNode *node;
    GBytes *out = NULL;

    if (dom == NULL)
        return NULL;
    g_rw_lock_reader_lock(&engine->lock);
    node = snap_tree_lookup(dom->tree, snapshot);
    if (node != NULL) {
        g_autofree char *xml = snap_node_xml(node);

        if (snap_tree_get_current(dom->tree) == node) {
            char *with_active = snap_xml_with_active(xml);

            out = g_bytes_new_take(with_active, strlen(with_active));
        } else {
            gsize len = strlen(xml);

            out = g_bytes_new_take(g_steal_pointer(&xml), len);
        }
    }
    g_rw_lock_reader_unlock(&engine->lock);
    return out;
}

char *
snap_engine_snapshot_path(SnapEngine *engine, const char *domain, const char *snapshot)
{
    SnapDomain *dom = snap_engine_find_domain(engine, domain);
    SnapNode *node;
    char *out = NULL;

    if (dom == NULL)
        return NULL;
    g_rw_lock_reader_lock(&engine->lock);
    node = snap_tree_lookup(dom->tree, snapshot);
    if (node != NULL)
        out = snap_node_path(node);
    g_rw_lock_reader_unlock(&engine->lock);
    return out;
}

char *
snap_engine_current(SnapEngine *engine, const char *domain)
{
    SnapDomain *dom = snap_engine_find_domain(engine, domain);
    SnapNode *node;
    char *out = NULL;

    if (dom == NULL)
        return NULL;
    g_rw_lock_reader_lock(&engine->lock);
    node = snap_tree_get_current(dom->tree);
    if (node != NULL)
        out = g_strdup(node->name);
    g_rw_lock_reader_unlock(&engine->lock);
    return out;
}

GPtrArray *
snap_engine_hosts(SnapEngine *engine)
{
    /* Only a catalogue can be a fleet; one libvirt host answers NULL. */
    if (!snap_engine_is_remote(engine))
        return NULL;
    return engine->catalogue->ops->hosts(engine->catalogue);
}
