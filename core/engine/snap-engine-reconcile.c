/* snap-engine-reconcile.c: the start-up check of metadata against what the images hold.
 */
#include "snap-engine-ops.h"

#include <string.h>

#include "snap-disks.h"
#include "snapshot-xml.h"

static gboolean
names_contain(GPtrArray *names, const char *name)
{
    for (guint i = 0; names && i < names->len; i++) {
        if (g_strcmp0(names->pdata[i], name) == 0)
            return TRUE;
    }
    return FALSE;
}

/* A screen.png kept for no snapshot (a metadata-only delete keeps it for
 * a redefine; a crash may leave one). */
static void
report_orphan_pictures(SnapOp *op, SnapDomain *dom)
{
    g_autofree char *dir =
        g_build_filename(dom->engine->state_dir, "snapshots", dom->name, NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    const char *file;

    while (d != NULL && (file = g_dir_read_name(d)) != NULL) {
        g_autofree char *name = NULL;
        g_autofree char *msg = NULL;

        if (!g_str_has_suffix(file, ".png") || file[0] == '.')
            continue;
        name = g_strndup(file, strlen(file) - 4);
        if (snap_tree_lookup(dom->tree, name) != NULL)
            continue;
        msg = g_strdup_printf("%s/%s is the screen.png of no snapshot; writing the "
                              "metadata of '%s' to create brings it back",
                              dir, file, name);
        snap_op_report(op, "reconcile", msg);
    }
}

/* Every domain's check is queued at start, each on its own worker: run
 * all at once, a thousand domains were a thousand qemu-img processes
 * starting together, and the mount answered its first request 2 s after
 * it was ready instead of 0.5 s. So a check waits for one of a few slots
 * (one per CPU), unless an operation waits behind it on its domain: the
 * user's mkdir never waits for other domains' checks. FALSE when the
 * engine stops meanwhile: the check is skipped. */
static gboolean
check_slot_take(SnapEngine *engine, SnapDomain *dom)
{
    gboolean taken = FALSE;

    g_mutex_lock(&engine->check_lock);
    while (!g_atomic_int_get(&engine->stopping)) {
        if (engine->check_slots > 0 ||
            (dom->pool != NULL && g_thread_pool_unprocessed(dom->pool) > 0)) {
            engine->check_slots--;
            taken = TRUE;
            break;
        }
        /* Woken by a slot freed, an operation queued or the stop; the
         * timeout is only a safety net. */
        g_cond_wait_until(&engine->check_cond, &engine->check_lock,
                          g_get_monotonic_time() + G_TIME_SPAN_SECOND);
    }
    g_mutex_unlock(&engine->check_lock);
    return taken;
}

static void
check_slot_give(SnapEngine *engine)
{
    g_mutex_lock(&engine->check_lock);
    engine->check_slots++;
    g_cond_signal(&engine->check_cond);
    g_mutex_unlock(&engine->check_lock);
}

void
snap_engine_check_wake(SnapEngine *engine)
{
    g_mutex_lock(&engine->check_lock);
    g_cond_broadcast(&engine->check_cond);
    g_mutex_unlock(&engine->check_lock);
}

static void reconcile_domain(SnapOp *op);

void
snap_engine_reconcile_domain(SnapOp *op)
{
    SnapEngine *engine = snap_op_domain(op)->engine;

    if (!check_slot_take(engine, snap_op_domain(op)))
        return;
    reconcile_domain(op);
    check_slot_give(engine);
}

/* Runs on the domain's worker, the only thread that changes the domain,
 * so it reads the tree without the lock. It reports and deletes nothing:
 * which side is right is for the user to decide. */
static void
reconcile_domain(SnapOp *op)
{
    SnapDomain *dom = snap_op_domain(op);
    SnapEngine *engine = dom->engine;
    g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GHashTable) tags = NULL;
    g_autoptr(GPtrArray) nodes = NULL;

    tags = engine->disk->ops->disk_snapshots(engine->disk, dom->def, problems, NULL);
    for (guint i = 0; i < problems->len; i++)
        snap_op_report(op, "reconcile", problems->pdata[i]);

    nodes = snap_tree_list(dom->tree, NULL, SNAP_LIST_TOPOLOGICAL);
    for (guint i = 0; i < nodes->len; i++) {
        SnapNode *node = nodes->pdata[i];
        g_autoptr(GError) error = NULL;
        g_autoptr(SnapshotDef) def = snap_node_def(node, &error);
        g_autoptr(GPtrArray) disks = NULL;

        if (def == NULL) {
            g_autofree char *msg =
                g_strdup_printf("snapshot '%s': %s", node->name, error->message);

            snap_op_report(op, "reconcile", msg);
            continue;
        }
        disks = snap_disks_internal(dom->def, def);
        for (guint j = 0; j < disks->len; j++) {
            DomainDisk *disk = disks->pdata[j];
            g_autofree char *msg = NULL;
            GPtrArray *names;

            /* An unreadable disk was reported once above. */
            if (!g_hash_table_lookup_extended(tags, disk->target, NULL,
                                              (gpointer *)&names) ||
                names == NULL || names_contain(names, node->name))
                continue;
            msg = g_strdup_printf("snapshot '%s' is missing from disk %s (%s)",
                                  node->name, disk->target, disk->source);
            snap_op_report(op, "reconcile", msg);
        }
    }

    for (guint i = 0; i < dom->def->disks->len; i++) {
        DomainDisk *disk = dom->def->disks->pdata[i];
        GPtrArray *names = g_hash_table_lookup(tags, disk->target);

        for (guint j = 0; names && j < names->len; j++) {
            const char *tag = names->pdata[j];
            g_autofree char *msg = NULL;

            if (snap_tree_lookup(dom->tree, tag) != NULL)
                continue;
            snap_domain_orphan_add(dom, tag);
            msg =
                g_strdup_printf("disk %s (%s) holds snapshot '%s' that has no metadata; "
                                "write its <domainsnapshot> to create to redefine it",
                                disk->target, disk->source, tag);
            snap_op_report(op, "reconcile", msg);
        }
    }
    report_orphan_pictures(op, dom);
}
