/* snap-engine-revert.c: reverting a domain to a snapshot, internal or external. */
#include "snap-engine-ops.h"

#include <string.h>

#include "crash-point.h"
#include "snap-external.h"

/* libvirt's rule for REVERT_FORCE: loading a live snapshot into a running
 * QEMU whose definition differs from the snapshot's (@def_differs) means
 * replacing that QEMU, and a snapshot without its <domain> cannot be
 * checked at all; both are refused without force. @restart tells the
 * backend to replace the running QEMU. */
static gboolean
revert_allowed(SnapOp *op, const SnapshotDef *def, gboolean def_differs,
               SnapRevertFlags flags, gboolean *restart, GError **error)
{
    gboolean active = snap_domain_state(op->engine, op->dom) != SNAP_DOMAIN_SHUTOFF;
    const char *why = NULL;

    *restart = FALSE;
    if (!snapshot_def_has_memory(def))
        return TRUE;
    if (def->domain_xml == NULL)
        why = "the snapshot records no domain definition to check against";
    else if (active && def_differs)
        why = "the snapshot's domain definition differs from the running one, so "
              "QEMU must be restarted";
    if (why != NULL && !(flags & SNAP_REVERT_FORCE)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_BUSY,
                    "revert to '%s' requires force: %s (write 'force' to revert)",
                    def->name, why);
        return FALSE;
    }
    *restart = active && def_differs;
    return TRUE;
}

/* Whether external snapshot @def's recorded domain differs from @dom's
 * definition in more than the files its disks are on (those always
 * differ: a revert puts them on new overlays). */
static gboolean
external_def_differs(SnapDomain *dom, const SnapshotDef *def)
{
    g_autoptr(DomainDef) recorded = NULL;
    g_autofree char *xml = NULL;

    if (def->domain_xml == NULL)
        return FALSE;
    recorded = domain_def_parse(def->domain_xml, strlen(def->domain_xml),
                                dom->engine->state_dir, NULL);
    if (recorded == NULL)
        return TRUE;
    for (guint i = 0; i < recorded->disks->len; i++) {
        DomainDisk *disk = recorded->disks->pdata[i];
        DomainDisk *now = domain_def_find_disk(dom->def, disk->target);

        if (now != NULL) {
            g_free(disk->source);
            disk->source = g_strdup(now->source);
            disk->format = now->format;
        }
    }
    xml = domain_def_format(recorded);
    return g_strcmp0(xml, dom->def_xml) != 0;
}

/* Drops the overlays a revert left behind (@files: the active images
 * before it), once nothing needs them. A failure leaves a file, which
 * harms nothing: it is only logged. */
void
snap_op_drop_abandoned(SnapOp *op, GPtrArray *files)
{
    SnapDiskBackend *backend = op->engine->disk;

    for (guint i = 0; files && i < files->len; i++) {
        g_autoptr(GError) local = NULL;

        if (!snap_ext_verify_unused(op->dom, files->pdata[i], NULL, &local) ||
            !backend->ops->remove_image(backend, op->dom->def, files->pdata[i], &local))
            g_debug("%s: keeping '%s': %s", op->dom->name, (char *)files->pdata[i],
                    local->message);
    }
}

/* The new overlays of @target rest on the files @def froze: known without
 * asking qemu-img. */
static void
remember_overlays(SnapDomain *dom, const DomainDef *target, const SnapshotDef *def)
{
    g_autoptr(GPtrArray) ext = snap_external_disks(def, NULL, NULL);

    for (guint i = 0; ext && i < ext->len; i++) {
        SnapExtDisk *e = ext->pdata[i];
        DomainDisk *disk = domain_def_find_disk(target, e->target);

        if (disk != NULL)
            snap_ext_remember_overlay(dom, disk->source, e->frozen);
    }
}

/* The external half of a revert: new overlays on the snapshot's images
 * become the active layers, domain.xml says so, and the overlays the
 * domain used before are dropped when nothing needs them. */
static gboolean
revert_external(SnapOp *op, const SnapshotDef *def, SnapRevertFlags flags,
                gboolean restart, GError **error)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) steps =
        g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    g_autoptr(GPtrArray) abandoned = NULL;
    g_autoptr(DomainDef) target = snap_ext_revert_target(dom, def, files, error);
    g_autofree char *target_xml = NULL;

    if (target == NULL)
        return FALSE;
    target_xml = domain_def_format(target);
    abandoned = snap_ext_abandoned(dom, dom->def, target);
    for (guint i = 0; i < abandoned->len; i++)
        g_ptr_array_add(steps,
                        g_strdupv((char *[]){"abandon", abandoned->pdata[i], NULL}));
    g_ptr_array_add(steps, g_strdupv((char *[]){"domain", target_xml, NULL}));
    if (!snap_op_journal_intent_files(op, "revert", def->name, files, steps, 0, error)) {
        snap_ext_discard(files);
        return FALSE;
    }
    snap_crash_point("revert-journaled");
    if (!engine->disk->ops->revert(engine->disk, dom->def, target, restart, def, flags,
                                   snap_op_progress, op, op->cancellable, error)) {
        snap_ext_discard(files);
        snap_op_journal_clear(op);
        return FALSE;
    }
    snap_crash_point("revert-disks-done");
    remember_overlays(dom, target, def);
    /* From here the journal stays on failure: the next start finishes. */
    if (!snap_write_domain_file(dom, target_xml, error))
        return FALSE;
    snap_crash_point("revert-domain-written");
    snap_op_set_domain_def(op, g_steal_pointer(&target), g_steal_pointer(&target_xml));
    snap_op_drop_abandoned(op, abandoned);
    return TRUE;
}

/* The definition to return to: the one the snapshot recorded, when it
 * parses and differs from today's; NULL for both otherwise. Both are
 * written by domain_def_format(), so the same text means the same
 * definition and the common case needs no parse. */
static void
revert_new_def(SnapDomain *dom, const SnapshotDef *def, DomainDef **new_def,
               char **new_def_xml)
{
    g_autoptr(GError) local = NULL;
    g_autoptr(DomainDef) parsed = NULL;
    g_autofree char *xml = NULL;

    *new_def = NULL;
    *new_def_xml = NULL;
    if (def->domain_xml == NULL || g_strcmp0(def->domain_xml, dom->def_xml) == 0)
        return;
    parsed = domain_def_parse(def->domain_xml, strlen(def->domain_xml),
                              dom->engine->state_dir, &local);
    if (parsed == NULL) {
        g_debug("%s: snapshot %s: embedded domain: %s", dom->name, def->name,
                local->message);
        return;
    }
    if (g_strcmp0(parsed->name, dom->name) != 0)
        return;
    xml = domain_def_format(parsed);
    if (g_strcmp0(xml, dom->def_xml) == 0)
        return;
    *new_def = g_steal_pointer(&parsed);
    *new_def_xml = g_steal_pointer(&xml);
}

/* The metadata half of a revert whose disks are done (the journal says
 * so): domain.xml when @new_def (taken on success), @node's file as
 * current, the tree, the changes; @old is the current before. */
static gboolean
revert_metadata(SnapOp *op, SnapNode *node, SnapNode *old, DomainDef **new_def,
                char **new_def_xml, GError **error)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;

    if (*new_def) {
        if (!snap_write_domain_file(dom, *new_def_xml, error))
            return FALSE;
        snap_crash_point("revert-domain-written");
    }
    if (old != node) {
        g_autofree char *xml = snap_node_xml(node);

        if (!snap_write_snapshot_file(dom, node->name, xml, TRUE, error))
            return FALSE;
        snap_crash_point("revert-metadata-written");
        snap_op_rewrite_inactive(op, old);
    }
    snap_op_journal_clear(op);

    if (*new_def)
        snap_op_set_domain_def(op, g_steal_pointer(new_def),
                               g_steal_pointer(new_def_xml));
    g_rw_lock_writer_lock(&engine->lock);
    snap_tree_set_current(dom->tree, node);
    snap_touch(dom);
    g_rw_lock_writer_unlock(&engine->lock);

    if (old != node) {
        if (old)
            snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, old->name, NULL, NULL);
        snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, node->name, NULL, NULL);
        snap_op_change(op, SNAP_CHANGE_CURRENT, NULL, NULL, NULL);
    }
    return TRUE;
}

/* The run state a revert to @def ends in (libvirt's rule): the one
 * @flags ask for, else the snapshot's. */
static SnapDomainState
revert_wanted_state(const SnapshotDef *def, SnapRevertFlags flags)
{
    if (flags & SNAP_REVERT_RUNNING)
        return SNAP_DOMAIN_RUNNING;
    if (flags & SNAP_REVERT_PAUSED)
        return SNAP_DOMAIN_PAUSED;
    if (snapshot_def_has_memory(def))
        return def->state == SNAP_STATE_RUNNING ? SNAP_DOMAIN_RUNNING
                                                : SNAP_DOMAIN_PAUSED;
    return SNAP_DOMAIN_SHUTOFF;
}

/* What the backend is asked for: the disks (and memory) only, so that no
 * guest runs on them before the journal says they are done. It leaves the
 * domain shut off, or paused with the snapshot's memory loaded. */
static SnapRevertFlags
revert_disk_flags(const SnapshotDef *def, SnapRevertFlags flags)
{
    flags &= ~(SNAP_REVERT_RUNNING | SNAP_REVERT_PAUSED);
    return snapshot_def_has_memory(def) ? flags | SNAP_REVERT_PAUSED : flags;
}

/* After the disks: the domain (on definition @ddef) starts or resumes as
 * the revert wants. */
static gboolean
revert_run_state(SnapOp *op, const DomainDef *ddef, const SnapshotDef *def,
                 SnapRevertFlags flags, GError **error)
{
    SnapBackend *backend = op->engine->backend;
    SnapDomainState want = revert_wanted_state(def, flags);
    SnapDomainState now = snap_domain_state(op->engine, op->dom);
    gboolean ok = TRUE;

    if (want == now || want == SNAP_DOMAIN_SHUTOFF)
        return TRUE;
    if (now == SNAP_DOMAIN_SHUTOFF)
        ok = backend->ops->start(backend, ddef, want == SNAP_DOMAIN_PAUSED, error);
    else if (want == SNAP_DOMAIN_RUNNING)
        ok = backend->ops->action(backend, ddef, SNAP_ACTION_RESUME, error);
    if (!ok)
        g_prefix_error(error, "reverted to '%s', but the domain did not %s: ", def->name,
                       now == SNAP_DOMAIN_SHUTOFF ? "start" : "resume");
    return ok;
}

/* The steps after "disks-done": the run state (unless @run_state is
 * FALSE), then the metadata, which is written even when the domain did
 * not start: the disks hold the snapshot. */
static gboolean
revert_finish(SnapOp *op, SnapNode *node, SnapNode *old, const SnapshotDef *def,
              SnapRevertFlags flags, gboolean run_state, DomainDef **new_def,
              char **new_def_xml, GError **error)
{
    g_autoptr(GError) run_error = NULL;

    if (run_state &&
        !revert_run_state(op, *new_def ? *new_def : op->dom->def, def, flags, &run_error))
        g_debug("%s: %s", op->dom->name, run_error->message);
    if (!revert_metadata(op, node, old, new_def, new_def_xml, error))
        return FALSE;
    if (run_error != NULL) {
        g_propagate_error(error, g_steal_pointer(&run_error));
        return FALSE;
    }
    return TRUE;
}

gboolean
snap_op_finish_revert(SnapOp *op, SnapNode *node, SnapRevertFlags flags, const char *run,
                      GError **error)
{
    g_autoptr(SnapshotDef) def = snap_node_def(node, error);
    g_autoptr(DomainDef) new_def = NULL;
    g_autofree char *new_def_xml = NULL;
    g_autofree char *now = snap_domain_run_identity(op->engine, op->dom);

    if (def == NULL)
        return FALSE;
    revert_new_def(op->dom, def, &new_def, &new_def_xml);
    /* The run state only while the domain is as the disks step left it:
     * a QEMU started or stopped since is left alone. */
    return revert_finish(op, node, snap_tree_get_current(op->dom->tree), def, flags,
                         g_strcmp0(now, run) == 0, &new_def, &new_def_xml, error);
}

gboolean
snap_op_do_revert(SnapOp *op, SnapNode *node, SnapRevertFlags flags, GError **error)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;
    SnapNode *old = snap_tree_get_current(dom->tree);
    g_autoptr(SnapshotDef) def = snap_node_def(node, error);
    g_autoptr(DomainDef) new_def = NULL;
    g_autofree char *new_def_xml = NULL;
    gboolean restart = FALSE;
    gboolean external;

    if (def == NULL)
        return FALSE;
    if (!snap_op_check_cancelled(op, error))
        return FALSE;
    external = snap_external_is_external(def);
    if (!external)
        revert_new_def(dom, def, &new_def, &new_def_xml);

    if (!revert_allowed(op, def,
                        external ? external_def_differs(dom, def) : new_def != NULL,
                        flags, &restart, error))
        return FALSE;

    if (external) {
        if (!revert_external(op, def, flags, restart, error))
            return FALSE;
    } else {
        if (!snap_op_journal_revert_intent(op, flags, dom->def, def, error))
            return FALSE;
        snap_crash_point("revert-journaled");
        if (!engine->disk->ops->revert(engine->disk, dom->def,
                                       new_def ? new_def : dom->def, restart, def,
                                       revert_disk_flags(def, flags), snap_op_progress,
                                       op, op->cancellable, error)) {
            snap_op_journal_settle(
                op, snap_domain_state(engine, dom) != SNAP_DOMAIN_SHUTOFF, error);
            return FALSE;
        }
        snap_crash_point("revert-disks-done");
        /* From here recovery finishes the metadata and never touches the
         * disks again: the guest may run on them already. */
        if (!snap_op_journal_step(op, "disks-done", error))
            return FALSE;
        snap_crash_point("revert-disks-journaled");
    }
    return revert_finish(op, node, old, def, flags, !external, &new_def, &new_def_xml,
                         error);
}

gboolean
snap_op_revert(SnapOp *op, GError **error)
{
    SnapNode *node = snap_tree_lookup(op->dom->tree, op->name);

    if (node == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND, "snapshot '%s' not found",
                    op->name);
        return FALSE;
    }
    return snap_op_do_revert(op, node, op->flags, error);
}
