/* snap-engine-create.c: new snapshots (mkdir, the create file) and redefined ones. */
#include "snap-engine-ops.h"

#include <glib/gstdio.h>

#include "crash-point.h"
#include "snap-confine.h"
#include "snap-disks.h"
#include "snap-external.h"
#include "snap-names.h"
#include "snapshot-xml.h"

/* ---- create ------------------------------------------------------------------ */

static SnapshotDiskDef *
template_disk(const SnapshotDef *tmpl, const DomainDisk *disk)
{
    for (guint i = 0; tmpl && tmpl->disks && i < tmpl->disks->len; i++) {
        SnapshotDiskDef *sd = tmpl->disks->pdata[i];

        if (g_strcmp0(sd->name, disk->target) == 0 ||
            g_strcmp0(sd->name, disk->source) == 0)
            return sd;
    }
    return NULL;
}

/* The definition of a new snapshot of @dom in run state @run: libvirt's
 * defaults (shut off: the disks; running or paused: memory and disks,
 * internal, or external memory with external disks), with the
 * description, memory and disk choices of @tmpl when given, refused where
 * libvirt's qemu driver refuses them. */
static SnapshotDef *
new_snapshot_def(SnapDomain *dom, SnapDomainState run, const SnapshotDef *tmpl,
                 const char *name, GError **error)
{
    g_autoptr(SnapshotDef) def = snapshot_def_new();
    SnapNode *current = snap_tree_get_current(dom->tree);
    SnapMemoryMode memory = tmpl ? tmpl->memory : SNAP_MEMORY_DEFAULT;
    gboolean live = run != SNAP_DOMAIN_SHUTOFF;
    guint ninternal = 0;
    guint nexternal = 0;

    for (guint i = 0; tmpl && tmpl->disks && i < tmpl->disks->len; i++) {
        SnapshotDiskDef *sd = tmpl->disks->pdata[i];

        if (snap_disk_resolve(dom->def, sd->name) == NULL) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "domain '%s' has no disk '%s'", dom->name, sd->name);
            return NULL;
        }
    }

    def->name = g_strdup(name);
    def->description = tmpl ? g_strdup(tmpl->description) : NULL;
    def->parent = current ? g_strdup(current->name) : NULL;
    def->creation_time = snap_now_seconds();
    def->has_disks = TRUE;
    for (guint i = 0; i < dom->def->disks->len; i++) {
        DomainDisk *disk = dom->def->disks->pdata[i];
        SnapshotDiskDef *sd = template_disk(tmpl, disk);
        DiskSnapshotMode mode = domain_disk_snapshot_mode(disk);
        SnapshotDiskDef *out;

        if (sd != NULL && sd->snapshot != DISK_SNAPSHOT_DEFAULT)
            mode = sd->snapshot;
        if (mode == DISK_SNAPSHOT_MANUAL) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_UNSUPPORTED,
                        "disk %s: manual snapshots are not supported", disk->target);
            return NULL;
        }
        if (mode == DISK_SNAPSHOT_INTERNAL && disk->format != DISK_FORMAT_QCOW2) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "disk %s: internal snapshots need a qcow2 image, not %s",
                        disk->target, disk_format_to_string(disk->format));
            return NULL;
        }
        if (mode == DISK_SNAPSHOT_INTERNAL)
            ninternal++;
        if (mode == DISK_SNAPSHOT_EXTERNAL)
            nexternal++;
        out = g_new0(SnapshotDiskDef, 1);
        out->name = g_strdup(disk->target);
        out->snapshot = mode;
        if (mode == DISK_SNAPSHOT_EXTERNAL && sd != NULL)
            out->source_file = g_strdup(sd->source_file);
        g_ptr_array_add(def->disks, out);
    }
    if (ninternal == 0 && nexternal == 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "domain '%s' has no disk to snapshot", dom->name);
        return NULL;
    }
    if (!snap_ext_check_mixing(dom, def, error))
        return NULL;

    if (!live && (memory == SNAP_MEMORY_INTERNAL || memory == SNAP_MEMORY_EXTERNAL)) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "memory state cannot be saved with offline or disk-only "
                            "snapshot");
        return NULL;
    }
    if (live && nexternal == 0 && memory == SNAP_MEMORY_EXTERNAL) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "external memory needs external disk snapshots");
        return NULL;
    }
    if (live && nexternal > 0 && memory == SNAP_MEMORY_INTERNAL) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "internal memory needs internal disk snapshots");
        return NULL;
    }
    if (!live) {
        def->state = SNAP_STATE_SHUTOFF;
        def->memory = SNAP_MEMORY_NO;
    } else if (memory == SNAP_MEMORY_NO) {
        /* --disk-only of a running domain: the disks alone, no memory.
         * libvirt refuses internal ones; QEMU takes them in one
         * transaction, which is what a backup wants. */
        def->state = SNAP_STATE_DISK_SNAPSHOT;
        def->memory = SNAP_MEMORY_NO;
    } else {
        def->state = run == SNAP_DOMAIN_RUNNING ? SNAP_STATE_RUNNING : SNAP_STATE_PAUSED;
        def->memory = nexternal > 0 ? SNAP_MEMORY_EXTERNAL : SNAP_MEMORY_INTERNAL;
        if (nexternal > 0 && tmpl != NULL)
            def->memory_file = g_strdup(tmpl->memory_file);
    }
    def->domain_xml = g_strdup(dom->def_xml);
    return g_steal_pointer(&def);
}

/* An external snapshot's files exist and hold it: the domain moves to the
 * overlays (domain.xml, durably). */
gboolean
snap_op_switch_to_overlays(SnapOp *op, const SnapshotDef *def, GError **error)
{
    g_autoptr(DomainDef) new_def = snap_ext_def_after_create(op->dom, def, error);
    g_autofree char *new_xml = NULL;

    if (new_def == NULL)
        return FALSE;
    new_xml = domain_def_format(new_def);
    if (!snap_write_domain_file(op->dom, new_xml, error))
        return FALSE;
    snap_op_set_domain_def(op, g_steal_pointer(&new_def), g_steal_pointer(&new_xml));
    return TRUE;
}

/* Takes @def on the disks, writes its metadata and makes it current. */
static gboolean
take_snapshot(SnapOp *op, SnapshotDef *def, GError **error)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;
    SnapNode *old = snap_tree_get_current(dom->tree);
    gboolean live = snap_domain_state(engine, dom) != SNAP_DOMAIN_SHUTOFF;
    g_autofree char *xml = NULL;
    g_autoptr(GError) local = NULL;
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    gboolean external = snap_external_is_external(def);
    g_autofree char *screen = NULL;
    guint32 screen_size = 0;
    SnapNode *node = NULL;

    if (!snap_op_check_cancelled(op, error))
        return FALSE;
    if (external) {
        g_autoptr(GPtrArray) steps =
            g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);

        if (!snap_ext_reserve_create(dom, def, files, error))
            return FALSE;
        xml = snapshot_xml_format(def, FALSE);
        g_ptr_array_add(steps, g_strdupv((char *[]){"metadata", xml, NULL}));
        if (!snap_op_journal_intent_files(op, "create", def->name, files, steps, 0,
                                          error)) {
            snap_ext_discard(files);
            return FALSE;
        }
    } else if (!snap_op_journal_intent(op, "create", 0, dom->def, def, error)) {
        return FALSE;
    }
    snap_crash_point("create-journaled");
    /* The display just before the snapshot; a picture that fails is a
     * line in errors, never a failed snapshot. */
    if (live)
        screen = snap_op_screen_take(op, def->name);
    if (!engine->disk->ops->create(engine->disk, dom->def, def, snap_op_progress, op,
                                   op->cancellable, error)) {
        if (screen != NULL)
            g_unlink(screen);
        snap_op_journal_settle(op, live, error);
        /* A QEMU that may still finish keeps its overlays: the intent
         * settles them before the next operation. */
        if (op->post_journal_clear)
            snap_ext_discard(files);
        return FALSE;
    }
    snap_crash_point("create-disks-done");
    if (screen != NULL) {
        snap_op_screen_keep(op, screen, def->name);
        screen_size = snap_screen_size(engine, dom->name, def->name);
    }
    if (xml == NULL)
        xml = snapshot_xml_format(def, FALSE);
    if (!snap_write_snapshot_file(dom, def->name, xml, TRUE, error)) {
        snap_screen_remove(engine, dom->name, def->name);
        /* The metadata could not be kept: take the disk snapshots back
         * rather than leave snapshots nobody knows about. An external one
         * may have a running QEMU writing to its overlays already: its
         * intent stays, and the next start finishes it. */
        if (external)
            return FALSE;
        if (!engine->disk->ops->delete (engine->disk, dom->def, def, NULL, NULL, NULL,
                                        &local))
            g_debug("%s: rolling back %s: %s", dom->name, def->name, local->message);
        snap_op_journal_clear(op);
        return FALSE;
    }
    snap_crash_point("create-metadata-written");
    if (external) {
        for (guint i = 0; i < def->disks->len; i++) {
            SnapshotDiskDef *sd = def->disks->pdata[i];
            DomainDisk *disk = snap_disk_resolve(dom->def, sd->name);

            if (sd->snapshot == DISK_SNAPSHOT_EXTERNAL && disk != NULL)
                snap_ext_remember_overlay(dom, sd->source_file, disk->source);
        }
        if (!snap_op_switch_to_overlays(op, def, error))
            return FALSE;
    }
    snap_op_rewrite_inactive(op, old);
    snap_op_journal_clear(op);

    g_rw_lock_writer_lock(&engine->lock);
    snap_tree_add(dom->tree, def->name, old, def->creation_time, g_steal_pointer(&xml),
                  &node, NULL);
    node->screen_size = screen_size;
    snap_tree_set_current(dom->tree, node);
    snap_touch(dom);
    g_rw_lock_writer_unlock(&engine->lock);

    snap_op_change(op, SNAP_CHANGE_SNAPSHOT_ADDED, def->name, old ? old->name : NULL,
                   NULL);
    if (old)
        snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, old->name, NULL, NULL);
    snap_op_change(op, SNAP_CHANGE_CURRENT, NULL, NULL, NULL);
    return TRUE;
}

/* FALSE (EEXIST) when a disk holds @name without metadata: qcow2 would
 * take a second tag of that name and find the older one first, so the new
 * snapshot would revert to the old data and its delete take the old tag. */
static gboolean
name_free_on_disks(SnapDomain *dom, const char *name, GError **error)
{
    if (!snap_domain_orphan_has(dom, name))
        return TRUE;
    g_set_error(error, SNAP_ERROR, SNAP_ERROR_EXISTS,
                "a disk already holds a snapshot '%s' with no metadata (found at start, "
                "or kept by .forget): write its <domainsnapshot> to create to redefine "
                "it, or choose another name",
                name);
    return FALSE;
}

gboolean
snap_op_create(SnapOp *op, GError **error)
{
    SnapDomain *dom = op->dom;
    SnapNode *current = snap_tree_get_current(dom->tree);
    g_autoptr(SnapshotDef) tmpl = NULL;
    g_autoptr(SnapshotDef) def = NULL;

    if (snap_tree_lookup(dom->tree, op->name)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_EXISTS, "snapshot '%s' already exists",
                    op->name);
        return FALSE;
    }
    if (!name_free_on_disks(dom, op->name, error))
        return FALSE;
    if (!op->in_current && g_strcmp0(op->in_dir, current ? current->name : NULL) != 0) {
        if (current)
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_NOT_CURRENT,
                        "a new snapshot's parent is the current snapshot '%s'; create it "
                        "in that directory",
                        current->name);
        else
            g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_NOT_CURRENT,
                                "there is no current snapshot; create the new one in the "
                                "domain directory");
        return FALSE;
    }
    if (op->engine->opts.memory_no) {
        /* -o memory=no: mkdir asks for what <memory snapshot='no'/> does. */
        tmpl = snapshot_def_new();
        tmpl->memory = SNAP_MEMORY_NO;
    }
    def =
        new_snapshot_def(dom, snap_domain_state(op->engine, dom), tmpl, op->name, error);
    return def != NULL && take_snapshot(op, def, error);
}

/* ---- redefine ------------------------------------------------------------------ */

static gboolean
redefine(SnapOp *op, SnapshotDef *def, SnapNode *existing, GError **error)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;
    SnapNode *parent = NULL;
    SnapNode *old_current = snap_tree_get_current(dom->tree);
    SnapNode *node = existing;
    g_autofree char *old_parent = NULL;
    g_autofree char *xml = NULL;
    gboolean make_current;
    gboolean moved = FALSE;
    guint32 screen_size;

    if (def->parent != NULL) {
        parent = snap_tree_lookup(dom->tree, def->parent);
        if (parent == NULL) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID, "parent %s not found",
                        def->parent);
            return FALSE;
        }
        if (existing && (parent == existing || snap_node_is_ancestor(existing, parent))) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "parent %s would make snapshot %s its own ancestor", def->parent,
                        def->name);
            return FALSE;
        }
    }
    if (existing && (def->creation_time < 0 || def->state == SNAP_STATE_NONE)) {
        g_autoptr(SnapshotDef) prev = snap_node_def(existing, error);

        if (prev == NULL)
            return FALSE;
        if (def->creation_time < 0)
            def->creation_time = prev->creation_time;
        if (def->state == SNAP_STATE_NONE)
            def->state = prev->state;
    }
    if (def->state == SNAP_STATE_NONE)
        def->state = SNAP_STATE_SHUTOFF;
    make_current = def->active == 1 || (existing != NULL && existing == old_current);
    xml = snapshot_xml_format(def, FALSE);
    /* A picture a metadata-only delete kept comes back with the metadata. */
    screen_size = snap_screen_size(engine, dom->name, def->name);

    if (!snap_write_snapshot_file(dom, def->name, xml, make_current, error))
        return FALSE;
    snap_crash_point("redefine-metadata-written");
    if (make_current && old_current != existing)
        snap_op_rewrite_inactive(op, old_current);

    g_rw_lock_writer_lock(&engine->lock);
    if (existing) {
        SnapNode *prev_parent = snap_node_parent(existing);

        old_parent = prev_parent ? g_strdup(prev_parent->name) : NULL;
        moved = prev_parent != parent;
        snap_tree_reparent(dom->tree, existing, parent, NULL);
        snap_tree_set_xml(existing, g_steal_pointer(&xml), def->creation_time);
    } else {
        snap_tree_add(dom->tree, def->name, parent, def->creation_time,
                      g_steal_pointer(&xml), &node, NULL);
    }
    node->screen_size = screen_size;
    if (make_current)
        snap_tree_set_current(dom->tree, node);
    snap_touch(dom);
    g_rw_lock_writer_unlock(&engine->lock);
    /* Its tags have metadata again. */
    snap_domain_orphan_remove(dom, def->name);

    if (existing == NULL)
        snap_op_change(op, SNAP_CHANGE_SNAPSHOT_ADDED, def->name, def->parent, NULL);
    else if (moved)
        snap_op_change(op, SNAP_CHANGE_SNAPSHOT_MOVED, def->name, def->parent,
                       old_parent);
    if (existing)
        snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, def->name, NULL, NULL);
    if (make_current && old_current != node) {
        if (old_current)
            snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, old_current->name, NULL, NULL);
        snap_op_change(op, SNAP_CHANGE_CURRENT, NULL, NULL, NULL);
    }
    return TRUE;
}

/* A redefine must agree with the disks: each disk it lists is one of the
 * domain's, each internal one holds the tag @def->name, and memory it
 * claims (a live snapshot) is a VM state in one of those tags. With
 * @must_exist (no metadata names the snapshot) at least one internal disk
 * must be listed: the snapshot exists only if a disk holds it. */
static gboolean
redefine_agrees(SnapOp *op, const SnapshotDef *def, gboolean must_exist, GError **error)
{
    gboolean wants_memory =
        snapshot_def_has_memory(def) || def->memory == SNAP_MEMORY_INTERNAL;
    gboolean has_memory = FALSE;
    guint ninternal = 0;

    /* An external snapshot's data is the files its <domain> names. */
    if (snap_external_is_external(def)) {
        g_autoptr(GPtrArray) ext =
            must_exist ? snap_external_disks(def, op->engine->state_dir, NULL) : NULL;

        for (guint i = 0; ext && i < ext->len; i++) {
            const char *frozen = ((SnapExtDisk *)ext->pdata[i])->frozen;

            if (!g_file_test(frozen, G_FILE_TEST_EXISTS)) {
                g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "snapshot %s does not exist on the disks: its image %s is "
                            "missing; omit creationTime to create it",
                            def->name, frozen);
                return FALSE;
            }
        }
        if (must_exist && (ext == NULL || ext->len == 0)) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "snapshot %s does not exist on the disks (its <domain> names no "
                        "image); omit creationTime to create it",
                        def->name);
            return FALSE;
        }
        return TRUE;
    }
    for (guint i = 0; def->disks && i < def->disks->len; i++) {
        SnapshotDiskDef *sd = def->disks->pdata[i];
        DomainDisk *disk = snap_disk_resolve(op->dom->def, sd->name);
        g_autoptr(GPtrArray) tags = NULL;
        gboolean found = FALSE;

        if (disk == NULL) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "snapshot %s names disk '%s', which domain %s does not have",
                        def->name, sd->name, op->dom->name);
            return FALSE;
        }
        if (sd->snapshot != DISK_SNAPSHOT_INTERNAL)
            continue;
        ninternal++;
        tags = op->engine->disk->ops->image_tags(op->engine->disk, disk->source,
                                                 disk_format_to_string(disk->format),
                                                 op->cancellable, error);
        if (tags == NULL)
            return FALSE;
        for (guint j = 0; j < tags->len; j++) {
            SnapImageTag *t = tags->pdata[j];

            if (g_strcmp0(t->name, def->name) != 0)
                continue;
            found = TRUE;
            has_memory = has_memory || t->vm_state_size > 0;
        }
        if (!found) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "snapshot %s does not exist on the disks: disk %s (%s) does not "
                        "hold it%s",
                        def->name, disk->target, disk->source,
                        must_exist ? "; omit creationTime to create it" : "");
            return FALSE;
        }
    }
    if (must_exist && ninternal == 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "snapshot %s does not exist on the disks (its <disks> lists no "
                    "internal one); omit creationTime to create it",
                    def->name);
        return FALSE;
    }
    if (wants_memory && ninternal > 0 && !has_memory) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "snapshot %s claims the memory of a running domain (state %s), but "
                    "no disk holds a VM state for it",
                    def->name, snap_state_to_string(def->state));
        return FALSE;
    }
    return TRUE;
}

/* A redefine of an existing snapshot, as libvirt's: it may not move the
 * snapshot between online and offline, or disk-only and full, and what it
 * leaves out (<domain>, <disks>, <memory>) is kept from the existing
 * definition, so a partial one loses nothing its data depends on. */
static gboolean
redefine_inherit(SnapNode *existing, SnapshotDef *def, GError **error)
{
    g_autoptr(SnapshotDef) prev = snap_node_def(existing, error);

    if (prev == NULL)
        return FALSE;
    if (def->state != SNAP_STATE_NONE) {
        if (snapshot_def_has_memory(def) != snapshot_def_has_memory(prev)) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "cannot change between online and offline snapshot state in "
                        "snapshot %s",
                        def->name);
            return FALSE;
        }
        if ((def->state == SNAP_STATE_DISK_SNAPSHOT) !=
            (prev->state == SNAP_STATE_DISK_SNAPSHOT)) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "cannot change between disk only and full system in snapshot %s",
                        def->name);
            return FALSE;
        }
    }
    if (def->domain_xml == NULL)
        def->domain_xml = g_steal_pointer(&prev->domain_xml);
    if (!def->has_disks && prev->has_disks) {
        g_clear_pointer(&def->disks, g_ptr_array_unref);
        def->disks = g_steal_pointer(&prev->disks);
        def->has_disks = TRUE;
    }
    if (def->memory == SNAP_MEMORY_DEFAULT) {
        def->memory = prev->memory;
        def->memory_file = g_steal_pointer(&prev->memory_file);
    }
    return TRUE;
}

gboolean
snap_op_create_xml(SnapOp *op, GError **error)
{
    SnapDomain *dom = op->dom;
    g_autoptr(SnapshotDef) tmpl = snapshot_xml_parse(op->xml, op->len, error);
    g_autoptr(SnapshotDef) def = NULL;
    SnapNode *existing;

    if (tmpl == NULL || !snapshot_xml_check_schema(op->xml, op->len, error))
        return FALSE;
    if (tmpl->name == NULL)
        tmpl->name = g_strdup_printf("%" G_GINT64_FORMAT, snap_now_seconds());
    if (!snap_name_validate(tmpl->name, error))
        return FALSE;
    if (!snap_confine_snapshot(dom->def, tmpl, op->engine->state_dir, error))
        return FALSE;
    existing = snap_tree_lookup(dom->tree, tmpl->name);
    /* A redefine names its snapshot's creationTime, as metadata.xml does;
     * without it this asks for a new snapshot under a name that is taken. */
    if (existing && tmpl->creation_time < 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_EXISTS,
                    "snapshot '%s' already exists (a redefine gives its creationTime)",
                    tmpl->name);
        return FALSE;
    }
    if (existing)
        return redefine_inherit(existing, tmpl, error) &&
               redefine_agrees(op, tmpl, FALSE, error) &&
               redefine(op, tmpl, existing, error);
    if (tmpl->creation_time >= 0)
        return redefine_agrees(op, tmpl, TRUE, error) && redefine(op, tmpl, NULL, error);
    if (!name_free_on_disks(dom, tmpl->name, error))
        return FALSE;
    def = new_snapshot_def(dom, snap_domain_state(op->engine, dom), tmpl, tmpl->name,
                           error);
    return def != NULL && take_snapshot(op, def, error);
}
