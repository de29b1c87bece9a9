/* interchange.c: snapshot files and their tree, for the import and export tools. */
#include "interchange.h"

#include <string.h>

#include "snap-error.h"
#include "snap-names.h"
#include "snapshot-xml.h"

#define DOMAIN_NAME_MAX_BYTES 200

gboolean
interchange_domain_name_ok(const char *name, GError **error)
{
    g_autofree char *escaped = g_strescape(name ? name : "", NULL);
    const char *why = NULL;

    if (name == NULL || name[0] == '\0')
        why = "it is empty";
    else if (strlen(name) > DOMAIN_NAME_MAX_BYTES)
        why = "it is longer than 200 bytes";
    else if (!g_utf8_validate(name, -1, NULL))
        why = "it is not valid UTF-8";
    else if (name[0] == '.')
        why = "it starts with '.'";
    else if (strchr(name, '/') != NULL)
        why = "it contains '/'";
    for (const char *p = name; why == NULL && *p != '\0'; p++)
        if (g_ascii_iscntrl(*p))
            why = "it contains a control character";
    if (why == NULL)
        return TRUE;
    g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID, "invalid domain name '%s': %s",
                escaped, why);
    return FALSE;
}

SnapshotDef *
interchange_read_snapshot(const char *path, GError **error)
{
    g_autofree char *text = NULL;
    gsize len;
    SnapshotDef *def;

    if (!g_file_get_contents(path, &text, &len, error))
        return NULL;
    def = snapshot_xml_parse(text, len, error);
    if (def == NULL) {
        g_prefix_error(error, "%s: ", path);
        return NULL;
    }
    if (def->name == NULL) {
        snapshot_def_free(def);
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "%s: the snapshot has no <name>", path);
        return NULL;
    }
    return def;
}

static int
sibling_cmp(gconstpointer a, gconstpointer b)
{
    const SnapshotDef *x = *(SnapshotDef *const *)a;
    const SnapshotDef *y = *(SnapshotDef *const *)b;

    if (x->creation_time != y->creation_time)
        return x->creation_time < y->creation_time ? -1 : 1;
    return strcmp(x->name, y->name);
}

/* Every snapshot not placed has a parent not placed: following parents
 * from one for as many steps as there are snapshots ends inside a cycle,
 * which the error then spells out. */
static GPtrArray *
cycle_error(GPtrArray *sorted, GHashTable *by_name, GHashTable *placed, GError **error)
{
    g_autoptr(GString) path = g_string_new(NULL);
    SnapshotDef *def = NULL;
    SnapshotDef *walk;

    for (guint i = 0; def == NULL && i < sorted->len; i++)
        if (!g_hash_table_contains(placed, ((SnapshotDef *)sorted->pdata[i])->name))
            def = sorted->pdata[i];
    for (guint i = 0; i < sorted->len; i++)
        def = g_hash_table_lookup(by_name, def->parent);
    walk = def;
    do {
        g_string_append_printf(path, "'%s' -> ", walk->name);
        walk = g_hash_table_lookup(by_name, walk->parent);
    } while (walk != def);
    g_string_append_printf(path, "'%s'", def->name);
    g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                "snapshot '%s' would be its own ancestor: a cycle of parents (child -> "
                "parent: %s)",
                def->name, path->str);
    return NULL;
}

GPtrArray *
interchange_order(GPtrArray *defs, GError **error)
{
    g_autoptr(GHashTable) by_name = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GHashTable) placed = g_hash_table_new(g_str_hash, g_str_equal);
    g_autoptr(GPtrArray) order = g_ptr_array_new();
    g_autoptr(GPtrArray) sorted = g_ptr_array_new();

    for (guint i = 0; i < defs->len; i++) {
        SnapshotDef *def = defs->pdata[i];

        if (!snap_name_validate(def->name, error))
            return NULL;
        if (g_hash_table_contains(by_name, def->name)) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_EXISTS,
                        "snapshot '%s' is defined twice", def->name);
            return NULL;
        }
        if (def->creation_time < 0) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "snapshot '%s' has no <creationTime>: only an existing "
                        "snapshot's definition can be redefined",
                        def->name);
            return NULL;
        }
        g_hash_table_insert(by_name, def->name, def);
        g_ptr_array_add(sorted, def);
    }
    for (guint i = 0; i < defs->len; i++) {
        SnapshotDef *def = defs->pdata[i];

        if (def->parent != NULL && !g_hash_table_contains(by_name, def->parent)) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "the parent '%s' of snapshot '%s' is not among the snapshots",
                        def->parent, def->name);
            return NULL;
        }
    }
    /* Parents first: a pass places every snapshot whose parent is placed,
     * in sibling order; a pass that places none means the rest are in a
     * cycle (or hang below one). */
    g_ptr_array_sort(sorted, sibling_cmp);
    while (order->len < defs->len) {
        guint before = order->len;

        for (guint i = 0; i < sorted->len; i++) {
            SnapshotDef *def = sorted->pdata[i];

            if (g_hash_table_contains(placed, def->name) ||
                (def->parent != NULL && !g_hash_table_contains(placed, def->parent)))
                continue;
            g_hash_table_add(placed, def->name);
            g_ptr_array_add(order, def);
        }
        if (order->len == before)
            return cycle_error(sorted, by_name, placed, error);
    }
    return g_steal_pointer(&order);
}
