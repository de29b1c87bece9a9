/* snap-engine.c: domains, snapshot trees and the per-domain mutation workers. */
#include "snap-engine-private.h"

#include <errno.h>
#include <string.h>
#include <sys/stat.h>
#ifdef __GLIBC__
#include <malloc.h>
#endif

#include <glib/gstdio.h>

#include "crash-point.h"
#include "journal.h"
#include "qemu-img.h"
#include "snap-confine.h"
#include "snap-disks.h"
#include "snap-names.h"
#include "snapshot-store.h"
#include "snapshot-xml.h"

#define ERROR_LOG_LINES 100
#define ACTIVE_LINE "  <active>1</active>\n"
#define ACTIVE_LEN (sizeof(ACTIVE_LINE) - 1)

typedef enum {
    OP_CREATE,
    OP_CREATE_XML,
    OP_DELETE,
    OP_REVERT,
    OP_ACTION,
    OP_RECOVER,
    OP_RECONCILE,
    OP_FLUSH,
} OpKind;

typedef struct {
    SnapChangeKind kind;
    char *snapshot;
    char *parent;
    char *old_parent;
    char *message;
} PendingChange;

struct _SnapOp {
    OpKind kind;
    SnapEngine *engine;
    SnapDomain *dom; /* NULL when the domain does not exist */
    char *domain_name;
    char *name; /* snapshot */
    char *in_dir;
    char *xml;
    gsize len;
    guint flags;
    SnapDomainAction action;
    GCancellable *cancellable;
    SnapDoneFunc done;
    gpointer user_data;
    char *opname; /* "mkdir s1": the errors and job prefix */
    gboolean job_set;
    gboolean domain_file_changed;
    GArray *changes; /* of PendingChange */
    /* File work whose loss harms nothing, done after the reply so the
     * caller does not wait for it: the old current snapshot's file loses
     * its <active>, the journal is cleared. */
    char *post_inactive;
    gboolean post_journal_clear;
    gboolean journaled; /* an intent of this operation is in the journal */
    /* A queued operation that Ctrl-C cancels is answered at once by the
     * engine's canceller, not when its domain's worker reaches it; the
     * worker then only frees it. OP_QUEUED -> OP_CLAIMED (the worker runs
     * it) or OP_QUEUED -> OP_CANCELLING -> OP_CANCELLED (the canceller
     * answered it). */
    gint claim;
    gulong cancel_id;
};

enum {
    OP_QUEUED,
    OP_CLAIMED,
    OP_CANCELLING,
    OP_CANCELLED,
};

static void
pending_change_clear(gpointer data)
{
    PendingChange *c = data;

    g_free(c->snapshot);
    g_free(c->parent);
    g_free(c->old_parent);
    g_free(c->message);
}

static void
snap_op_free(SnapOp *op)
{
    g_free(op->post_inactive);
    g_free(op->domain_name);
    g_free(op->name);
    g_free(op->in_dir);
    g_free(op->xml);
    g_clear_object(&op->cancellable);
    g_free(op->opname);
    g_array_unref(op->changes);
    g_free(op);
}

static SnapOp *
snap_op_new(SnapEngine *engine, OpKind kind, const char *domain,
            GCancellable *cancellable, SnapDoneFunc done, gpointer user_data)
{
    SnapOp *op = g_new0(SnapOp, 1);

    op->kind = kind;
    op->engine = engine;
    op->domain_name = g_strdup(domain);
    op->dom = domain ? g_hash_table_lookup(engine->domains, domain) : NULL;
    op->cancellable = cancellable ? g_object_ref(cancellable) : NULL;
    op->done = done;
    op->user_data = user_data;
    op->changes = g_array_new(FALSE, TRUE, sizeof(PendingChange));
    g_array_set_clear_func(op->changes, pending_change_clear);
    return op;
}

SnapDomain *
snap_op_domain(SnapOp *op)
{
    return op->dom;
}

void
snap_op_change(SnapOp *op, SnapChangeKind kind, const char *snapshot, const char *parent,
               const char *old_parent)
{
    PendingChange c = {
        .kind = kind,
        .snapshot = g_strdup(snapshot),
        .parent = g_strdup(parent),
        .old_parent = g_strdup(old_parent),
    };

    g_array_append_val(op->changes, c);
}

static void
emit_change(SnapEngine *engine, const char *domain, const PendingChange *c)
{
    SnapChangeFunc func;
    gpointer data;
    SnapChange change = {
        .kind = c->kind,
        .domain = domain,
        .snapshot = c->snapshot,
        .parent = c->parent,
        .old_parent = c->old_parent,
        .message = c->message,
    };

    g_rw_lock_reader_lock(&engine->lock);
    func = engine->change_func;
    data = engine->change_data;
    g_rw_lock_reader_unlock(&engine->lock);
    if (func)
        func(&change, data);
}

void
snap_op_report(SnapOp *op, const char *operation, const char *message)
{
    SnapDomain *dom = op->dom;
    PendingChange c = {.kind = SNAP_CHANGE_ERROR};

    g_debug("%s: %s: %s", dom->name, operation, message);
    g_rw_lock_writer_lock(&op->engine->lock);
    error_log_add(dom->errors, operation, message);
    dom->mtime = g_get_real_time() / G_USEC_PER_SEC;
    g_rw_lock_writer_unlock(&op->engine->lock);

    c.message = g_strdup_printf("%s: %s", operation, message);
    g_array_append_val(op->changes, c);
    op->domain_file_changed = TRUE;
}

/* Shows what a long step does in the `job` file; the event goes out at
 * once so a reader polling `job` sees the progress. */
static void
op_progress(const char *what, gpointer data)
{
    SnapOp *op = data;
    SnapDomain *dom = op->dom;
    g_autofree char *job = g_strdup_printf("%s: %s\n", op->opname, what);
    PendingChange c = {.kind = SNAP_CHANGE_DOMAIN_FILE};

    g_rw_lock_writer_lock(&op->engine->lock);
    g_free(dom->job);
    dom->job = g_steal_pointer(&job);
    g_rw_lock_writer_unlock(&op->engine->lock);
    op->job_set = TRUE;
    emit_change(op->engine, dom->name, &c);
}

static gboolean write_snapshot_file_full(SnapDomain *dom, const char *name,
                                         const char *xml, gboolean current,
                                         SnapStoreSync sync, GError **error);

/* The deferred file work of @op, on its worker, before the domain's next
 * operation starts. */
static void
op_post_reply(SnapOp *op)
{
    SnapDomain *dom = op->dom;
    g_autoptr(GError) error = NULL;

    if (dom == NULL)
        return;
    if (op->post_inactive != NULL || op->post_journal_clear)
        snap_crash_point("reply-sent");
    if (op->post_inactive != NULL) {
        SnapNode *node = snap_tree_lookup(dom->tree, op->post_inactive);

        if (node != NULL && node != snap_tree_get_current(dom->tree) &&
            !write_snapshot_file_full(dom, node->name, node->xml, FALSE,
                                      SNAP_STORE_SYNC_NONE, &error)) {
            g_debug("%s: %s", dom->name, error->message);
            g_clear_error(&error);
        }
    }
    if (op->post_journal_clear)
        snap_crash_point("journal-clear");
    if (op->post_journal_clear &&
        !snap_journal_remove(op->engine->state_dir, dom->name, &error))
        g_debug("%s: %s", dom->name, error->message);
    /* Only this worker writes the domain's snapshot files: they may share
     * a spare. */
    if (op->kind != OP_FLUSH) {
        g_autofree char *dir =
            g_build_filename(op->engine->state_dir, "snapshots", dom->name, NULL);

        if (g_file_test(dir, G_FILE_TEST_IS_DIR))
            snap_store_prepare_spare(dir);
    }
}

/* Answers @op: logs a failure, clears the job, emits the changes with no
 * lock held, then calls the completion callback, so that a listener can
 * make caches forget the old tree before the caller hears of the new. */
static void
op_answer(SnapOp *op, const GError *error)
{
    SnapDomain *dom = op->dom;

    if (error != NULL && dom != NULL && op->opname != NULL)
        snap_op_report(op, op->opname, error->message);
    if (dom != NULL && op->job_set) {
        g_rw_lock_writer_lock(&op->engine->lock);
        g_free(dom->job);
        dom->job = g_strdup("");
        g_rw_lock_writer_unlock(&op->engine->lock);
        op->domain_file_changed = TRUE;
    }
    if (op->domain_file_changed)
        snap_op_change(op, SNAP_CHANGE_DOMAIN_FILE, NULL, NULL, NULL);
    for (guint i = 0; i < op->changes->len; i++)
        emit_change(op->engine, op->domain_name,
                    &g_array_index(op->changes, PendingChange, i));
    if (op->done)
        op->done(error, op->user_data);
}

/* Ends @op on its domain's worker: answers it, does its deferred file
 * work, frees it. */
static void
op_finish(SnapOp *op, const GError *error)
{
    op_answer(op, error);
    op_post_reply(op);
    snap_op_free(op);
}

static void
op_refuse(SnapOp *op, SnapErrorCode code, const char *message)
{
    g_autoptr(GError) error = g_error_new_literal(SNAP_ERROR, code, message);

    op_finish(op, error);
}

/* ---- helpers --------------------------------------------------------------- */

static gint64
now_seconds(void)
{
    return g_get_real_time() / G_USEC_PER_SEC;
}

/* metadata.xml of a current snapshot: libvirt's <active>1</active> goes
 * last, so it is the plain text with one line inserted. */
static char *
xml_with_active(const char *xml)
{
    const char *end = g_strrstr(xml, "</domainsnapshot>");

    if (end == NULL)
        return g_strconcat(xml, ACTIVE_LINE, NULL);
    return g_strdup_printf("%.*s" ACTIVE_LINE "%s", (int)(end - xml), xml, end);
}

static gboolean
check_cancelled(SnapOp *op, GError **error)
{
    return snap_error_check_cancelled(op->cancellable, error);
}

static SnapDomainState
domain_state(SnapEngine *engine, SnapDomain *dom)
{
    return engine->backend->ops->domain_state(engine->backend, dom->def);
}

static SnapshotDef *
node_def(SnapNode *node, GError **error)
{
    return snapshot_xml_parse(node->xml, strlen(node->xml), error);
}

static gboolean
write_snapshot_file_full(SnapDomain *dom, const char *name, const char *xml,
                         gboolean current, SnapStoreSync sync, GError **error)
{
    g_autofree char *path =
        snap_store_snapshot_path(dom->engine->state_dir, dom->name, name);
    g_autofree char *active = current ? xml_with_active(xml) : NULL;
    const char *text = current ? active : xml;

    if (!snap_store_ensure_domain_dir(dom->engine->state_dir, dom->name, error))
        return FALSE;
    return snap_store_write_atomic_full(path, text, strlen(text), sync, error);
}

/* Writes @node's file durably, with <active> when @current. */
static gboolean
write_snapshot_file(SnapDomain *dom, const char *name, const char *xml, gboolean current,
                    GError **error)
{
    return write_snapshot_file_full(dom, name, xml, current, SNAP_STORE_SYNC_ALL, error);
}

/* The old current snapshot loses its <active>, after the new current's
 * file was written durably. Losing this write (a failure, a power cut)
 * only leaves two files claiming current, which loading settles: the
 * most recently written one wins. So it needs no fsync. */
static void
rewrite_inactive(SnapOp *op, SnapNode *node)
{
    if (node != NULL) {
        g_free(op->post_inactive);
        op->post_inactive = g_strdup(node->name);
    }
}

static GPtrArray *
disk_paths(GPtrArray *disks)
{
    GPtrArray *paths = g_ptr_array_new_with_free_func(g_free);

    for (guint i = 0; i < disks->len; i++)
        g_ptr_array_add(paths, g_strdup(((DomainDisk *)disks->pdata[i])->source));
    return paths;
}

static gboolean
journal_intent(SnapOp *op, const char *what, guint flags, const DomainDef *ddef,
               const SnapshotDef *def, GError **error)
{
    g_autoptr(GPtrArray) disks = snap_disks_internal(ddef, def);
    g_autoptr(GPtrArray) paths = disk_paths(disks);

    /* A new intent replaces the one an earlier step of @op cleared. */
    op->post_journal_clear = FALSE;
    op->journaled = snap_journal_write(op->engine->state_dir, op->dom->name, what,
                                       def->name, flags, paths, error);
    return op->journaled;
}

/* The operation is over, whatever its outcome: its intent goes once the
 * reply is out (see op_post_reply()). */
static void
journal_clear(SnapOp *op)
{
    op->post_journal_clear = TRUE;
}

/* After the backend failed: the operation changed nothing, unless it was
 * live and its QEMU still runs: a QEMU that did not answer in time can
 * resume and finish the job. Its intent then stays, to be finished or
 * rolled back before the domain's next operation (see op_run()). */
static void
journal_settle(SnapOp *op, gboolean live, GError **error)
{
    if (!live || error == NULL || !g_error_matches(*error, SNAP_ERROR, SNAP_ERROR_QEMU) ||
        domain_state(op->engine, op->dom) == SNAP_DOMAIN_SHUTOFF)
        journal_clear(op);
}

static void
touch(SnapDomain *dom)
{
    dom->mtime = now_seconds();
}

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
 * internal), with the description, memory and disk choices of @tmpl when
 * given, refused where libvirt's qemu driver refuses them. */
static SnapshotDef *
new_snapshot_def(SnapDomain *dom, SnapDomainState run, const SnapshotDef *tmpl,
                 const char *name, GError **error)
{
    g_autoptr(SnapshotDef) def = snapshot_def_new();
    SnapNode *current = snap_tree_get_current(dom->tree);
    SnapMemoryMode memory = tmpl ? tmpl->memory : SNAP_MEMORY_DEFAULT;
    gboolean live = run != SNAP_DOMAIN_SHUTOFF;
    guint ninternal = 0;

    if (!live && (memory == SNAP_MEMORY_INTERNAL || memory == SNAP_MEMORY_EXTERNAL)) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "memory state cannot be saved with offline or disk-only "
                            "snapshot");
        return NULL;
    }
    if (live && memory == SNAP_MEMORY_NO) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "internal snapshot of a running VM must include the memory "
                            "state");
        return NULL;
    }
    if (live && memory == SNAP_MEMORY_EXTERNAL) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_UNSUPPORTED,
                            "external memory snapshots are not supported yet");
        return NULL;
    }
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
    def->state = run == SNAP_DOMAIN_RUNNING  ? SNAP_STATE_RUNNING
                 : run == SNAP_DOMAIN_PAUSED ? SNAP_STATE_PAUSED
                                             : SNAP_STATE_SHUTOFF;
    def->parent = current ? g_strdup(current->name) : NULL;
    def->creation_time = now_seconds();
    def->memory = live ? SNAP_MEMORY_INTERNAL : SNAP_MEMORY_NO;
    def->has_disks = TRUE;
    for (guint i = 0; i < dom->def->disks->len; i++) {
        DomainDisk *disk = dom->def->disks->pdata[i];
        SnapshotDiskDef *sd = template_disk(tmpl, disk);
        DiskSnapshotMode mode = domain_disk_snapshot_mode(disk);
        SnapshotDiskDef *out;

        if (sd != NULL && sd->snapshot != DISK_SNAPSHOT_DEFAULT)
            mode = sd->snapshot;
        if (mode == DISK_SNAPSHOT_EXTERNAL || mode == DISK_SNAPSHOT_MANUAL) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_UNSUPPORTED,
                        "disk %s: %s snapshots are not supported yet", disk->target,
                        disk_snapshot_mode_to_string(mode));
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
        out = g_new0(SnapshotDiskDef, 1);
        out->name = g_strdup(disk->target);
        out->snapshot = mode;
        g_ptr_array_add(def->disks, out);
    }
    if (ninternal == 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "domain '%s' has no disk to snapshot", dom->name);
        return NULL;
    }
    def->domain_xml = g_strdup(dom->def_xml);
    return g_steal_pointer(&def);
}

/* Takes @def on the disks, writes its metadata and makes it current. */
static gboolean
take_snapshot(SnapOp *op, const SnapshotDef *def, GError **error)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;
    SnapNode *old = snap_tree_get_current(dom->tree);
    gboolean live = domain_state(engine, dom) != SNAP_DOMAIN_SHUTOFF;
    g_autofree char *xml = NULL;
    g_autoptr(GError) local = NULL;
    SnapNode *node = NULL;

    if (!check_cancelled(op, error))
        return FALSE;
    if (!journal_intent(op, "create", 0, dom->def, def, error))
        return FALSE;
    snap_crash_point("create-journaled");
    if (!engine->backend->ops->create(engine->backend, dom->def, def, op_progress, op,
                                      op->cancellable, error)) {
        journal_settle(op, live, error);
        return FALSE;
    }
    snap_crash_point("create-disks-done");
    xml = snapshot_xml_format(def, FALSE);
    if (!write_snapshot_file(dom, def->name, xml, TRUE, error)) {
        /* The metadata could not be kept: take the disk snapshots back
         * rather than leave snapshots nobody knows about. */
        if (!engine->backend->ops->delete (engine->backend, dom->def, def, NULL, NULL,
                                           NULL, &local))
            g_debug("%s: rolling back %s: %s", dom->name, def->name, local->message);
        journal_clear(op);
        return FALSE;
    }
    snap_crash_point("create-metadata-written");
    rewrite_inactive(op, old);
    journal_clear(op);

    g_rw_lock_writer_lock(&engine->lock);
    snap_tree_add(dom->tree, def->name, old, def->creation_time, g_steal_pointer(&xml),
                  &node, NULL);
    snap_tree_set_current(dom->tree, node);
    touch(dom);
    g_rw_lock_writer_unlock(&engine->lock);

    snap_op_change(op, SNAP_CHANGE_SNAPSHOT_ADDED, def->name, old ? old->name : NULL,
                   NULL);
    if (old)
        snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, old->name, NULL, NULL);
    snap_op_change(op, SNAP_CHANGE_CURRENT, NULL, NULL, NULL);
    return TRUE;
}

static gboolean
op_create(SnapOp *op, GError **error)
{
    SnapDomain *dom = op->dom;
    SnapNode *current = snap_tree_get_current(dom->tree);
    g_autoptr(SnapshotDef) def = NULL;

    if (snap_tree_lookup(dom->tree, op->name)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_EXISTS, "snapshot '%s' already exists",
                    op->name);
        return FALSE;
    }
    if (g_strcmp0(op->in_dir, current ? current->name : NULL) != 0) {
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
    def = new_snapshot_def(dom, domain_state(op->engine, dom), NULL, op->name, error);
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
        g_autoptr(SnapshotDef) prev = node_def(existing, error);

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

    if (!write_snapshot_file(dom, def->name, xml, make_current, error))
        return FALSE;
    snap_crash_point("redefine-metadata-written");
    if (make_current && old_current != existing)
        rewrite_inactive(op, old_current);

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
    if (make_current)
        snap_tree_set_current(dom->tree, node);
    touch(dom);
    g_rw_lock_writer_unlock(&engine->lock);

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

/* TRUE when every disk @def lists as internal holds the tag @def->name. */
static gboolean
exists_on_disks(SnapOp *op, const SnapshotDef *def)
{
    SnapEngine *engine = op->engine;
    g_autoptr(GHashTable) tags = NULL;
    guint nlisted = 0;

    tags = engine->backend->ops->disk_snapshots(engine->backend, op->dom->def, NULL,
                                                op->cancellable);
    for (guint i = 0; def->disks && i < def->disks->len; i++) {
        SnapshotDiskDef *sd = def->disks->pdata[i];
        DomainDisk *disk;
        GPtrArray *names;
        gboolean found = FALSE;

        if (sd->snapshot != DISK_SNAPSHOT_INTERNAL)
            continue;
        nlisted++;
        disk = snap_disk_resolve(op->dom->def, sd->name);
        names = disk ? g_hash_table_lookup(tags, disk->target) : NULL;
        for (guint j = 0; names && j < names->len; j++)
            found = found || g_strcmp0(names->pdata[j], def->name) == 0;
        if (!found)
            return FALSE;
    }
    return nlisted > 0;
}

static gboolean
op_create_xml(SnapOp *op, GError **error)
{
    SnapDomain *dom = op->dom;
    g_autoptr(SnapshotDef) tmpl = snapshot_xml_parse(op->xml, op->len, error);
    g_autoptr(SnapshotDef) def = NULL;
    SnapNode *existing;

    if (tmpl == NULL)
        return FALSE;
    if (tmpl->name == NULL)
        tmpl->name = g_strdup_printf("%" G_GINT64_FORMAT, now_seconds());
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
        return redefine(op, tmpl, existing, error);
    if (tmpl->creation_time >= 0) {
        if (!exists_on_disks(op, tmpl)) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "snapshot %s does not exist on the disks; omit creationTime to "
                        "create it",
                        tmpl->name);
            return FALSE;
        }
        return redefine(op, tmpl, NULL, error);
    }
    def = new_snapshot_def(dom, domain_state(op->engine, dom), tmpl, tmpl->name, error);
    return def != NULL && take_snapshot(op, def, error);
}

/* ---- delete --------------------------------------------------------------------- */

/* Deletes one snapshot: its disk data (unless @metadata_only), then its
 * metadata; its children move to its parent and, when it was current,
 * the parent becomes current. With @write_current FALSE the new current
 * snapshot's file is left for the caller (a subtree delete writes it once
 * at the end). */
static gboolean
delete_one(SnapOp *op, const char *name, gboolean metadata_only, gboolean write_current,
           GError **error)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;
    SnapNode *node = snap_tree_lookup(dom->tree, name);
    SnapNode *parent = snap_node_parent(node);
    SnapNode *current = snap_tree_get_current(dom->tree);
    gboolean was_current = current == node;
    g_autoptr(SnapshotDef) def = node_def(node, error);
    g_autoptr(GPtrArray) child_xml = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) children = g_ptr_array_new();
    g_autofree char *path = NULL;
    g_autofree char *parent_name = parent ? g_strdup(parent->name) : NULL;
    gboolean live = domain_state(engine, dom) != SNAP_DOMAIN_SHUTOFF;

    if (def == NULL)
        return FALSE;
    if (!journal_intent(op, "delete", 0, dom->def, def, error))
        return FALSE;
    snap_crash_point("delete-journaled");
    if (!metadata_only && !engine->backend->ops->delete (engine->backend, dom->def, def,
                                                         op_progress, op, NULL, error)) {
        journal_settle(op, live, error);
        return FALSE;
    }
    snap_crash_point("delete-disks-done");
    /* From here a failure keeps the journal: the disks changed, and the
     * next start finishes the delete. */
    for (SnapNode *c = node->first_child; c; c = c->next_sibling) {
        g_autoptr(SnapshotDef) cdef = node_def(c, error);
        char *cxml;

        if (cdef == NULL)
            return FALSE;
        g_free(cdef->parent);
        cdef->parent = g_strdup(parent_name);
        cxml = snapshot_xml_format(cdef, FALSE);
        g_ptr_array_add(child_xml, cxml);
        g_ptr_array_add(children, c);
        if (!write_snapshot_file_full(dom, c->name, cxml, c == current,
                                      SNAP_STORE_SYNC_FILE, error))
            return FALSE;
        snap_crash_point("delete-child-written");
    }
    if (was_current && parent && write_current) {
        if (!write_snapshot_file_full(dom, parent->name, parent->xml, TRUE,
                                      SNAP_STORE_SYNC_FILE, error))
            return FALSE;
        snap_crash_point("delete-parent-written");
    }
    /* Every file above is in this one directory: syncing it once, after
     * the removal, makes all the renames and the removal durable. */
    path = snap_store_snapshot_path(engine->state_dir, dom->name, name);
    if (!snap_store_remove(path, error))
        return FALSE;
    snap_crash_point("delete-metadata-removed");
    journal_clear(op);

    g_rw_lock_writer_lock(&engine->lock);
    for (guint i = 0; i < children->len; i++) {
        SnapNode *c = children->pdata[i];

        snap_tree_set_xml(c, g_steal_pointer(&child_xml->pdata[i]), c->creation_time);
    }
    snap_tree_remove(dom->tree, node);
    touch(dom);
    g_rw_lock_writer_unlock(&engine->lock);

    for (guint i = 0; i < children->len; i++) {
        SnapNode *c = children->pdata[i];

        snap_op_change(op, SNAP_CHANGE_SNAPSHOT_MOVED, c->name, parent_name, name);
        snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, c->name, NULL, NULL);
    }
    snap_op_change(op, SNAP_CHANGE_SNAPSHOT_REMOVED, name, NULL, parent_name);
    if (was_current && write_current) {
        if (parent_name)
            snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, parent_name, NULL, NULL);
        snap_op_change(op, SNAP_CHANGE_CURRENT, NULL, NULL, NULL);
    }
    return TRUE;
}

static gboolean
op_delete(SnapOp *op, GError **error)
{
    SnapDomain *dom = op->dom;
    SnapNode *node = snap_tree_lookup(dom->tree, op->name);
    gboolean metadata_only = (op->flags & SNAP_DELETE_METADATA_ONLY) != 0;
    g_autoptr(GPtrArray) order = NULL;
    g_autoptr(GPtrArray) names = NULL;
    g_autofree char *old_name = NULL;
    SnapNode *old_current;
    SnapNode *new_current;

    if (node == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND, "snapshot '%s' not found",
                    op->name);
        return FALSE;
    }
    if (!check_cancelled(op, error))
        return FALSE;
    if (!(op->flags & (SNAP_DELETE_CHILDREN | SNAP_DELETE_CHILDREN_ONLY)))
        return delete_one(op, op->name, metadata_only, TRUE, error);

    /* Post-order: every snapshot deleted is a leaf by then, so nothing is
     * re-parented, and `current` climbs to the first survivor. */
    order = snap_tree_postorder(node, (op->flags & SNAP_DELETE_CHILDREN) != 0);
    names = g_ptr_array_new_with_free_func(g_free);
    for (guint i = 0; i < order->len; i++)
        g_ptr_array_add(names, g_strdup(((SnapNode *)order->pdata[i])->name));
    old_current = snap_tree_get_current(dom->tree);
    old_name = old_current ? g_strdup(old_current->name) : NULL;
    for (guint i = 0; i < names->len; i++) {
        if (!delete_one(op, names->pdata[i], metadata_only, FALSE, error))
            return FALSE;
    }
    new_current = snap_tree_get_current(dom->tree);
    if (g_strcmp0(old_name, new_current ? new_current->name : NULL) != 0) {
        if (new_current &&
            !write_snapshot_file(dom, new_current->name, new_current->xml, TRUE, error))
            return FALSE;
        if (new_current)
            snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, new_current->name, NULL, NULL);
        snap_op_change(op, SNAP_CHANGE_CURRENT, NULL, NULL, NULL);
    }
    return TRUE;
}

/* ---- revert ----------------------------------------------------------------------- */

/* libvirt's rule for REVERT_FORCE: loading a live snapshot into a running
 * QEMU whose definition differs from the snapshot's (@def_differs) means
 * replacing that QEMU, and a snapshot without its <domain> cannot be
 * checked at all; both are refused without force. @restart tells the
 * backend to replace the running QEMU. */
static gboolean
revert_allowed(SnapOp *op, const SnapshotDef *def, gboolean def_differs,
               SnapRevertFlags flags, gboolean *restart, GError **error)
{
    gboolean active = domain_state(op->engine, op->dom) != SNAP_DOMAIN_SHUTOFF;
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

static gboolean
do_revert(SnapOp *op, SnapNode *node, SnapRevertFlags flags, GError **error)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;
    SnapNode *old = snap_tree_get_current(dom->tree);
    g_autoptr(SnapshotDef) def = node_def(node, error);
    g_autoptr(DomainDef) new_def = NULL;
    g_autofree char *new_def_xml = NULL;
    gboolean restart = FALSE;

    if (def == NULL)
        return FALSE;
    if (!check_cancelled(op, error))
        return FALSE;

    /* The definition to return to: the one the snapshot recorded, when
     * it parses and differs from today's. Both are written by
     * domain_def_format(), so the same text means the same definition and
     * the common case needs no parse. */
    if (def->domain_xml != NULL && g_strcmp0(def->domain_xml, dom->def_xml) != 0) {
        g_autoptr(GError) local = NULL;

        new_def = domain_def_parse(def->domain_xml, strlen(def->domain_xml),
                                   engine->state_dir, &local);
        if (new_def == NULL)
            g_debug("%s: snapshot %s: embedded domain: %s", dom->name, def->name,
                    local->message);
        else if (g_strcmp0(new_def->name, dom->name) != 0)
            g_clear_pointer(&new_def, domain_def_free);
        if (new_def) {
            new_def_xml = domain_def_format(new_def);
            if (g_strcmp0(new_def_xml, dom->def_xml) == 0) {
                g_clear_pointer(&new_def, domain_def_free);
                g_clear_pointer(&new_def_xml, g_free);
            }
        }
    }

    if (!revert_allowed(op, def, new_def != NULL, flags, &restart, error))
        return FALSE;

    if (!journal_intent(op, "revert", flags, dom->def, def, error))
        return FALSE;
    snap_crash_point("revert-journaled");
    if (!engine->backend->ops->revert(engine->backend, dom->def,
                                      new_def ? new_def : dom->def, restart, def, flags,
                                      op_progress, op, op->cancellable, error)) {
        journal_settle(op, domain_state(engine, dom) != SNAP_DOMAIN_SHUTOFF, error);
        return FALSE;
    }
    snap_crash_point("revert-disks-done");
    if (new_def) {
        g_autofree char *file = g_strconcat(dom->name, ".xml", NULL);
        g_autofree char *path =
            g_build_filename(engine->state_dir, "domains", file, NULL);

        if (!snap_store_write_atomic(path, new_def_xml, strlen(new_def_xml), error))
            return FALSE;
        snap_crash_point("revert-domain-written");
    }
    if (old != node) {
        if (!write_snapshot_file(dom, node->name, node->xml, TRUE, error))
            return FALSE;
        snap_crash_point("revert-metadata-written");
        rewrite_inactive(op, old);
    }
    journal_clear(op);

    g_rw_lock_writer_lock(&engine->lock);
    if (new_def) {
        domain_def_free(dom->def);
        dom->def = g_steal_pointer(&new_def);
        g_free(dom->def_xml);
        dom->def_xml = g_steal_pointer(&new_def_xml);
        op->domain_file_changed = TRUE;
    }
    snap_tree_set_current(dom->tree, node);
    touch(dom);
    g_rw_lock_writer_unlock(&engine->lock);

    if (old != node) {
        if (old)
            snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, old->name, NULL, NULL);
        snap_op_change(op, SNAP_CHANGE_SNAPSHOT_XML, node->name, NULL, NULL);
        snap_op_change(op, SNAP_CHANGE_CURRENT, NULL, NULL, NULL);
    }
    return TRUE;
}

static gboolean
op_revert(SnapOp *op, GError **error)
{
    SnapNode *node = snap_tree_lookup(op->dom->tree, op->name);

    if (node == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND, "snapshot '%s' not found",
                    op->name);
        return FALSE;
    }
    return do_revert(op, node, op->flags, error);
}

/* ---- domain actions ---------------------------------------------------------------- */

static gboolean
op_action(SnapOp *op, GError **error)
{
    SnapBackend *backend = op->engine->backend;

    if (!check_cancelled(op, error))
        return FALSE;
    if (op->action == SNAP_ACTION_START)
        return backend->ops->start(backend, op->dom->def, FALSE, error);
    return backend->ops->action(backend, op->dom->def, op->action, error);
}

/* ---- journal recovery ---------------------------------------------------------------
 */

/* Removes @tag from the image files @paths that still hold it, through
 * the backend: a running QEMU holds its images, and only it can change
 * them then. Files the domain no longer has are left alone. @n: how many
 * held it. FALSE when the backend failed (said in @problems). */
static gboolean
remove_tags(SnapOp *op, GPtrArray *paths, const char *tag, GPtrArray *problems, guint *n)
{
    SnapBackend *backend = op->engine->backend;
    g_autoptr(SnapshotDef) def = snapshot_def_new();
    g_autoptr(GError) local = NULL;
    gboolean live = domain_state(op->engine, op->dom) != SNAP_DOMAIN_SHUTOFF;

    *n = 0;
    def->name = g_strdup(tag);
    def->has_disks = TRUE;
    for (guint i = 0; i < paths->len; i++) {
        const char *file = paths->pdata[i];
        g_autoptr(GPtrArray) snaps = qemu_img_info(file, NULL, NULL, NULL, &local);
        gboolean has = FALSE;

        for (guint j = 0; snaps && j < snaps->len; j++)
            has = has || g_strcmp0(((QemuImgSnapshot *)snaps->pdata[j])->name, tag) == 0;
        if (local != NULL) {
            g_ptr_array_add(problems, g_strdup_printf("%s: %s", file, local->message));
            g_clear_error(&local);
        }
        *n += has;
        /* A running QEMU may still be finishing a job that adds the tag:
         * its snapshot-delete waits for that job, and skips a disk that
         * does not hold the tag. */
        if (has || live) {
            SnapshotDiskDef *disk = g_new0(SnapshotDiskDef, 1);

            disk->name = g_strdup(file);
            disk->snapshot = DISK_SNAPSHOT_INTERNAL;
            g_ptr_array_add(def->disks, disk);
        }
    }
    if (def->disks->len == 0)
        return TRUE;
    if (!backend->ops->delete (backend, op->dom->def, def, NULL, NULL, NULL, &local)) {
        g_ptr_array_add(problems, g_strdup(local->message));
        return FALSE;
    }
    return TRUE;
}

/* Finishes or rolls back the operation the journal names, at start or
 * (@label: the operation waiting for it) before the domain's next
 * operation. FALSE when the intent stays: recovering failed. */
static gboolean
op_recover(SnapOp *op, const char *label)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;
    g_autoptr(GError) error = NULL;
    g_autoptr(SnapJournal) j = snap_journal_read(engine->state_dir, dom->name, &error);
    g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
    g_autofree char *done = NULL;
    SnapNode *node;

    /* What the interrupted operation's deferred work would have done:
     * the old current snapshot's file loses its <active>. */
    for (guint i = 0; dom->stale_active && i < dom->stale_active->len; i++) {
        SnapNode *stale = snap_tree_lookup(dom->tree, dom->stale_active->pdata[i]);
        g_autoptr(GError) local = NULL;

        if (stale != NULL && stale != snap_tree_get_current(dom->tree) &&
            !write_snapshot_file(dom, stale->name, stale->xml, FALSE, &local))
            snap_op_report(op, label, local->message);
    }
    g_clear_pointer(&dom->stale_active, g_ptr_array_unref);
    if (j == NULL) {
        /* An intent that does not parse was cut short while being
         * written: nothing of it reached a disk. */
        if (error) {
            g_autofree char *msg = g_strdup_printf(
                "%s; it was being written when snaptreefs stopped, before any "
                "disk was touched, and is cleared",
                error->message);

            snap_op_report(op, label, msg);
            journal_clear(op);
        }
        return TRUE;
    }
    node = snap_tree_lookup(dom->tree, j->snapshot);
    if (g_str_equal(j->op, "create")) {
        g_autofree char *path =
            snap_store_snapshot_path(engine->state_dir, dom->name, j->snapshot);

        if (g_file_test(path, G_FILE_TEST_EXISTS)) {
            done = g_strdup_printf(
                "recovered: the interrupted create of '%s' had completed", j->snapshot);
        } else {
            guint n = 0;

            if (remove_tags(op, j->disks, j->snapshot, problems, &n))
                done = g_strdup_printf(
                    "recovered: rolled back the interrupted create of '%s' "
                    "(removed from %u of %u disks)",
                    j->snapshot, n, j->disks->len);
        }
    } else if (g_str_equal(j->op, "delete")) {
        if (node != NULL) {
            if (delete_one(op, j->snapshot, FALSE, TRUE, &error))
                done = g_strdup_printf(
                    "recovered: finished the interrupted delete of '%s'", j->snapshot);
        } else {
            guint n = 0;

            if (remove_tags(op, j->disks, j->snapshot, problems, &n))
                done = g_strdup_printf("recovered: finished the interrupted delete of "
                                       "'%s' (removed from %u disks)",
                                       j->snapshot, n);
        }
    } else if (g_str_equal(j->op, "revert")) {
        if (node == NULL)
            done = g_strdup_printf("recovered: the interrupted revert to '%s' cannot be "
                                   "re-applied: no such snapshot",
                                   j->snapshot);
        else if (do_revert(op, node, j->flags, &error))
            done = g_strdup_printf("recovered: re-applied the interrupted revert to '%s'",
                                   j->snapshot);
    } else {
        done = g_strdup_printf("recovered: ignored a journal entry for unknown operation "
                               "'%s'",
                               j->op);
    }
    for (guint i = 0; i < problems->len; i++)
        snap_op_report(op, label, problems->pdata[i]);
    if (done == NULL) {
        g_autofree char *msg =
            g_strdup_printf("recovering the interrupted %s of '%s' "
                            "failed: %s",
                            j->op, j->snapshot, error ? error->message : "unknown error");

        snap_op_report(op, label, msg);
        return FALSE;
    }
    snap_op_report(op, label, done);
    journal_clear(op);
    return TRUE;
}

/* ---- the worker
 * ------------------------------------------------------------------------ */

static void
op_run(SnapOp *op)
{
    g_autoptr(GError) error = NULL;
    gboolean ok = TRUE;

    if (op->dom != NULL && op->dom->recover_pending && op->kind != OP_FLUSH &&
        op->kind != OP_RECONCILE) {
        op->dom->recover_pending = FALSE;
        if (!op_recover(op, op->opname ? op->opname : "recover"))
            op->dom->recover_pending = TRUE;
    }
    switch (op->kind) {
    case OP_CREATE:
        ok = op_create(op, &error);
        break;
    case OP_CREATE_XML:
        ok = op_create_xml(op, &error);
        break;
    case OP_DELETE:
        ok = op_delete(op, &error);
        break;
    case OP_REVERT:
        ok = op_revert(op, &error);
        break;
    case OP_ACTION:
        ok = op_action(op, &error);
        break;
    case OP_RECOVER:
        if (!op_recover(op, "start"))
            op->dom->recover_pending = TRUE;
        break;
    case OP_RECONCILE:
        snap_engine_reconcile_domain(op);
        break;
    case OP_FLUSH:
        break;
    }
    if (!ok && error == NULL)
        g_set_error_literal(&error, SNAP_ERROR, SNAP_ERROR_FAILED, "operation failed");
    /* A failure that kept its intent (the disks changed, or QEMU may still
     * change them) is settled before the domain's next operation, not only
     * at the next start. */
    if (!ok && op->journaled && !op->post_journal_clear)
        op->dom->recover_pending = TRUE;
    op_finish(op, ok ? NULL : error);
}

static void
op_worker(gpointer data, gpointer pool_data)
{
    SnapOp *op = data;

    /* No cancel callback runs after this returns. */
    if (op->cancel_id != 0)
        g_cancellable_disconnect(op->cancellable, op->cancel_id);
    op->cancel_id = 0;
    if (!g_atomic_int_compare_and_exchange(&op->claim, OP_QUEUED, OP_CLAIMED)) {
        /* Answered by the canceller already; it may still be at it. */
        while (g_atomic_int_get(&op->claim) != OP_CANCELLED)
            g_usleep(1000);
        snap_op_free(op);
        return;
    }
    op_run(op);
}

/* The engine's canceller thread: answers a cancelled queued operation
 * with EINTR, leaving its memory to the domain's worker. */
static void
cancel_worker(gpointer data, gpointer pool_data)
{
    SnapOp *op = data;
    g_autoptr(GError) error =
        g_error_new_literal(SNAP_ERROR, SNAP_ERROR_CANCELLED, "operation cancelled");

    op_answer(op, error);
    g_atomic_int_set(&op->claim, OP_CANCELLED);
}

/* GCancellable::cancelled, on the thread that cancelled (for the daemon:
 * libfuse's interrupt handler, holding the request's lock, so nothing
 * may be answered from here). */
static void
on_op_cancelled(GCancellable *cancellable, gpointer data)
{
    SnapOp *op = data;

    if (g_atomic_int_compare_and_exchange(&op->claim, OP_QUEUED, OP_CANCELLING))
        g_thread_pool_push(op->engine->cancel_pool, op, NULL);
}

static void
op_submit(SnapOp *op)
{
    SnapEngine *engine = op->engine;
    SnapDomain *dom = op->dom;

    g_mutex_lock(&engine->start_lock);
    if (!engine->started) {
        g_ptr_array_add(dom->early, op);
        g_mutex_unlock(&engine->start_lock);
        return;
    }
    g_mutex_unlock(&engine->start_lock);
    if (dom->pool == NULL) {
        op_run(op);
        return;
    }
    if (op->cancellable != NULL && engine->cancel_pool != NULL)
        op->cancel_id =
            g_cancellable_connect(op->cancellable, G_CALLBACK(on_op_cancelled), op, NULL);
    g_thread_pool_push(dom->pool, op, NULL);
}

/* Refusals that need no worker: no such domain, read-only. TRUE when @op
 * was finished here. */
static gboolean
op_precheck(SnapOp *op)
{
    if (op->dom == NULL) {
        g_autofree char *msg = g_strdup_printf("domain '%s' not found", op->domain_name);

        op_refuse(op, SNAP_ERROR_NOT_FOUND, msg);
        return TRUE;
    }
    if (op->engine->opts.read_only) {
        op_refuse(op, SNAP_ERROR_READ_ONLY, "mounted read-only");
        return TRUE;
    }
    return FALSE;
}

/* ---- loading
 * ----------------------------------------------------------------------------- */

static void
domain_free(SnapDomain *dom)
{
    if (dom == NULL)
        return;
    g_free(dom->name);
    domain_def_free(dom->def);
    g_free(dom->def_xml);
    snap_tree_free(dom->tree);
    error_log_free(dom->errors);
    g_free(dom->job);
    g_clear_pointer(&dom->stale_active, g_ptr_array_unref);
    if (dom->early)
        g_ptr_array_unref(dom->early);
    g_free(dom);
}

static gboolean
has_xml_suffix(const char *file)
{
    return file[0] != '.' && g_str_has_suffix(file, ".xml") && strlen(file) > 4;
}

/* One snapshot file, read and parsed; filled by a loader thread. */
typedef struct {
    char *path;
    char *name;       /* from the file name */
    gint64 mtime_ns;  /* when it was last written */
    SnapshotDef *def; /* NULL when it did not load */
    char *xml;        /* snapshot_xml_format(def, FALSE) */
    char *problem;
} LoadItem;

typedef struct {
    GPtrArray *items;
    guint first;
    guint step;
} LoadSlice;

static void
load_item_clear(LoadItem *item)
{
    g_free(item->path);
    g_free(item->name);
    snapshot_def_free(item->def);
    g_free(item->xml);
    g_free(item->problem);
}

static gpointer
load_slice(gpointer data)
{
    LoadSlice *slice = data;

    for (guint i = slice->first; i < slice->items->len; i += slice->step) {
        LoadItem *item = slice->items->pdata[i];
        g_autofree char *text = NULL;
        g_autoptr(GError) error = NULL;
        gsize len;

        GStatBuf st;

        if (!g_file_get_contents(item->path, &text, &len, &error) ||
            (item->def = snapshot_xml_parse(text, len, &error)) == NULL) {
            item->problem = g_strdup_printf("snapshot file '%s' skipped: %s", item->path,
                                            error->message);
            continue;
        }
        if (g_strcmp0(item->def->name, item->name) != 0) {
            item->problem =
                g_strdup_printf("snapshot file '%s' skipped: it names snapshot "
                                "'%s'",
                                item->path, item->def->name ? item->def->name : "");
            g_clear_pointer(&item->def, snapshot_def_free);
            continue;
        }
        if (g_stat(item->path, &st) == 0)
            item->mtime_ns = (gint64)st.st_mtim.tv_sec * G_GINT64_CONSTANT(1000000000) +
                             st.st_mtim.tv_nsec;
        item->xml = snapshot_xml_format(item->def, FALSE);
    }
    return NULL;
}

/* Parsing dominates a large load, so it is spread over the CPUs. The
 * threads are joined before this returns: the engine still owns no
 * thread when the daemon forks. */
static void
load_parse_all(GPtrArray *items)
{
    guint nthreads = MIN(g_get_num_processors(), 8);
    g_autofree LoadSlice *slices = NULL;
    g_autofree GThread **threads = NULL;

    if (items->len < 512 || nthreads < 2) {
        LoadSlice one = {items, 0, 1};

        load_slice(&one);
        return;
    }
    slices = g_new0(LoadSlice, nthreads);
    threads = g_new0(GThread *, nthreads);
    for (guint t = 0; t < nthreads; t++) {
        slices[t] = (LoadSlice){items, t, nthreads};
        threads[t] = t ? g_thread_new("snap-load", load_slice, &slices[t]) : NULL;
    }
    load_slice(&slices[0]);
    for (guint t = 1; t < nthreads; t++)
        g_thread_join(threads[t]);
}

static void
load_item_free(gpointer data)
{
    load_item_clear(data);
    g_free(data);
}

static void
load_snapshots(SnapEngine *engine, SnapDomain *dom)
{
    g_autofree char *dir =
        g_build_filename(engine->state_dir, "snapshots", dom->name, NULL);
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GHashTable) parents =
        g_hash_table_new_full(g_str_hash, g_str_equal, g_free, g_free);
    g_autoptr(GPtrArray) items = g_ptr_array_new_with_free_func(load_item_free);
    g_autofree char *current = NULL;
    g_autoptr(GPtrArray) claimants = g_ptr_array_new_with_free_func(g_free);
    gint64 current_mtime = G_MININT64;
    guint ncurrent = 0;
    const char *file;

    if (d == NULL)
        return;
    while ((file = g_dir_read_name(d)) != NULL) {
        LoadItem *item;

        if (!has_xml_suffix(file))
            continue;
        item = g_new0(LoadItem, 1);
        item->path = g_build_filename(dir, file, NULL);
        item->name = g_strndup(file, strlen(file) - 4);
        g_ptr_array_add(items, item);
    }
    load_parse_all(items);

    for (guint i = 0; i < items->len; i++) {
        LoadItem *item = items->pdata[i];
        SnapshotDef *def = item->def;

        if (def == NULL) {
            g_ptr_array_add(problems, g_steal_pointer(&item->problem));
            continue;
        }
        /* The current snapshot's file is written before the old one's
         * <active> goes, so of several claimants the last written is
         * current. */
        if (def->active == 1) {
            ncurrent++;
            g_ptr_array_add(claimants, g_strdup(def->name));
            if (current == NULL || item->mtime_ns > current_mtime) {
                g_free(current);
                current = g_strdup(def->name);
                current_mtime = item->mtime_ns;
            }
        }
        g_hash_table_insert(parents, g_strdup(def->name), g_strdup(def->parent));
        snap_tree_add_unlinked(dom->tree, def->name, def->parent, def->creation_time,
                               g_steal_pointer(&item->xml), NULL);
        /* Free as we go: 10,000 parsed definitions add up. */
        g_clear_pointer(&item->def, snapshot_def_free);
    }
    g_clear_pointer(&items, g_ptr_array_unref);
    snap_tree_link_all(dom->tree, problems);
    if (problems->len > 0) {
        /* A repaired link must show in metadata.xml too, so what `ls`
         * shows and what the XML says agree. The files stay as they are. */
        GHashTableIter iter;
        gpointer key, value;

        g_hash_table_iter_init(&iter, parents);
        while (g_hash_table_iter_next(&iter, &key, &value)) {
            SnapNode *node = snap_tree_lookup(dom->tree, key);
            SnapNode *parent = snap_node_parent(node);
            g_autoptr(SnapshotDef) def = NULL;

            if (g_strcmp0(value, parent ? parent->name : NULL) == 0)
                continue;
            def = node_def(node, NULL);
            if (def == NULL)
                continue;
            g_free(def->parent);
            def->parent = parent ? g_strdup(parent->name) : NULL;
            snap_tree_set_xml(node, snapshot_xml_format(def, FALSE), node->creation_time);
        }
    }
    if (ncurrent > 1)
        g_ptr_array_add(problems, g_strdup_printf("%u snapshots claim to be current; the "
                                                  "last written, '%s', is",
                                                  ncurrent, current));
    snap_tree_set_current(dom->tree, snap_tree_lookup(dom->tree, current));
    if (ncurrent > 1) {
        for (guint i = 0; i < claimants->len; i++)
            if (g_strcmp0(claimants->pdata[i], current) == 0)
                g_ptr_array_remove_index_fast(claimants, i);
        dom->stale_active = g_steal_pointer(&claimants);
    }
    for (guint i = 0; i < problems->len; i++)
        error_log_add(dom->errors, "load", problems->pdata[i]);
}

static void
load_domain(SnapEngine *engine, const char *path, const char *name)
{
    g_autofree char *text = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(DomainDef) def = NULL;
    SnapDomain *dom;
    GStatBuf st;
    gsize len;

    if (!g_file_get_contents(path, &text, &len, &error) ||
        (def = domain_def_parse(text, len, engine->state_dir, &error)) == NULL) {
        g_debug("domain file '%s' skipped: %s", path, error->message);
        return;
    }
    if (g_strcmp0(def->name, name) != 0) {
        g_debug("domain file '%s' skipped: it defines domain '%s'", path, def->name);
        return;
    }
    dom = g_new0(SnapDomain, 1);
    dom->engine = engine;
    dom->name = g_strdup(name);
    dom->def_xml = domain_def_format(def);
    dom->def = g_steal_pointer(&def);
    dom->tree = snap_tree_new();
    dom->errors = error_log_new(ERROR_LOG_LINES);
    dom->job = g_strdup("");
    dom->early = g_ptr_array_new();
    dom->mtime = g_stat(path, &st) == 0 ? st.st_mtime : now_seconds();
    load_snapshots(engine, dom);
    g_hash_table_insert(engine->domains, dom->name, dom);
}

static SnapDomain *
find_domain(SnapEngine *engine, const char *domain)
{
    return domain ? g_hash_table_lookup(engine->domains, domain) : NULL;
}

/* A domain's run state changed by itself (QEMU's events, or QEMU exiting):
 * the state file changes, and an exit nobody asked for is an error line. */
static void
on_backend_event(const char *domain, SnapDomainState state, const char *message,
                 gpointer user_data)
{
    SnapEngine *engine = user_data;
    SnapDomain *dom = find_domain(engine, domain);
    PendingChange file = {.kind = SNAP_CHANGE_DOMAIN_FILE};

    if (dom == NULL)
        return;
    g_rw_lock_writer_lock(&engine->lock);
    if (message != NULL)
        error_log_add(dom->errors, "qemu", message);
    touch(dom);
    g_rw_lock_writer_unlock(&engine->lock);
    if (message != NULL) {
        g_autofree char *line = g_strdup_printf("qemu: %s", message);
        PendingChange err = {.kind = SNAP_CHANGE_ERROR, .message = line};

        g_debug("%s: %s", domain, line);
        emit_change(engine, domain, &err);
    }
    emit_change(engine, domain, &file);
}

/* Takes over the QEMUs an earlier run left running, before the mount is
 * ready (and before the daemon forks: no thread starts here), so that the
 * first read of `state` already says running. */
static void
attach_all(SnapEngine *engine)
{
    SnapBackend *backend = engine->backend;
    GHashTableIter iter;
    gpointer value;

    g_hash_table_iter_init(&iter, engine->domains);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        SnapDomain *dom = value;
        g_autoptr(GError) error = NULL;

        if (!backend->ops->attach(backend, dom->def, &error))
            error_log_add(dom->errors, "start", error->message);
    }
}

SnapEngine *
snap_engine_new(const char *state_dir, const SnapEngineOptions *opts, GError **error)
{
    g_autofree char *abs = g_canonicalize_filename(state_dir, NULL);
    g_autofree char *domains = g_build_filename(abs, "domains", NULL);
    g_autoptr(GDir) d = NULL;
    SnapEngine *engine;
    const char *file;

    if (!g_file_test(abs, G_FILE_TEST_IS_DIR)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND,
                    "state directory '%s' does not exist", state_dir);
        return NULL;
    }
    engine = g_new0(SnapEngine, 1);
    engine->state_dir = g_steal_pointer(&abs);
    if (opts)
        engine->opts = *opts;
    g_rw_lock_init(&engine->lock);
    g_mutex_init(&engine->start_lock);
    engine->domains =
        g_hash_table_new_full(g_str_hash, g_str_equal, NULL, (GDestroyNotify)domain_free);
    engine->backend = snap_backend_native_new(engine->state_dir);
    engine->backend->ops->set_event_func(engine->backend, on_backend_event, engine);

    d = g_dir_open(domains, 0, NULL);
    while (d && (file = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = NULL;
        g_autofree char *name = NULL;

        if (!has_xml_suffix(file))
            continue;
        path = g_build_filename(domains, file, NULL);
        name = g_strndup(file, strlen(file) - 4);
        load_domain(engine, path, name);
    }
    attach_all(engine);
#ifdef __GLIBC__
    /* The parse buffers freed above, many in the loader threads' arenas,
     * go back to the system instead of staying in the daemon's RSS. */
    malloc_trim(0);
#endif
    return engine;
}

void
snap_engine_start(SnapEngine *engine)
{
    GHashTableIter iter;
    gpointer value;

    g_mutex_lock(&engine->start_lock);
    if (engine->started) {
        g_mutex_unlock(&engine->start_lock);
        return;
    }
    engine->backend->ops->watch(engine->backend);
    engine->cancel_pool = g_thread_pool_new(cancel_worker, NULL, 1, FALSE, NULL);
    g_hash_table_iter_init(&iter, engine->domains);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        SnapDomain *dom = value;
        g_autoptr(GError) error = NULL;

        dom->pool = g_thread_pool_new(op_worker, NULL, 1, FALSE, &error);
        if (dom->pool == NULL)
            g_debug("%s: no worker, operations run inline: %s", dom->name,
                    error->message);
        /* Recovery first, then the check, then what was submitted early:
         * the queue runs in order. */
        if (!engine->opts.read_only)
            g_ptr_array_insert(
                dom->early, 0,
                snap_op_new(engine, OP_RECOVER, dom->name, NULL, NULL, NULL));
        if (!engine->opts.no_reconcile)
            g_ptr_array_insert(
                dom->early, engine->opts.read_only ? 0 : 1,
                snap_op_new(engine, OP_RECONCILE, dom->name, NULL, NULL, NULL));
    }
    /* Pushed under the lock, so nothing submitted from now on can
     * overtake what waited for the start. */
    g_hash_table_iter_init(&iter, engine->domains);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        SnapDomain *dom = value;

        if (dom->pool == NULL)
            continue;
        for (guint i = 0; i < dom->early->len; i++)
            g_thread_pool_push(dom->pool, dom->early->pdata[i], NULL);
        g_ptr_array_set_size(dom->early, 0);
    }
    engine->started = TRUE;
    g_mutex_unlock(&engine->start_lock);

    g_hash_table_iter_init(&iter, engine->domains);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        SnapDomain *dom = value;

        for (guint i = 0; i < dom->early->len; i++)
            op_run(dom->early->pdata[i]);
        g_ptr_array_set_size(dom->early, 0);
    }
}

void
snap_engine_free(SnapEngine *engine)
{
    GHashTableIter iter;
    gpointer value;

    if (engine == NULL)
        return;
    g_hash_table_iter_init(&iter, engine->domains);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        SnapDomain *dom = value;

        if (dom->pool)
            g_thread_pool_free(dom->pool, FALSE, TRUE);
        dom->pool = NULL;
        /* Never started: what was queued is answered, not dropped. */
        for (guint i = 0; i < dom->early->len; i++)
            op_refuse(dom->early->pdata[i], SNAP_ERROR_CANCELLED, "the engine stopped");
        g_ptr_array_set_size(dom->early, 0);
    }
    /* Every op the canceller answered has been freed by its worker. */
    if (engine->cancel_pool)
        g_thread_pool_free(engine->cancel_pool, FALSE, TRUE);
    /* The backend's watchers report to the domains: they stop first. */
    snap_backend_free(engine->backend);
    g_hash_table_destroy(engine->domains);
    g_rw_lock_clear(&engine->lock);
    g_mutex_clear(&engine->start_lock);
    g_free(engine->state_dir);
    g_free(engine);
}

void
snap_engine_set_change_func(SnapEngine *engine, SnapChangeFunc func, gpointer user_data)
{
    g_rw_lock_writer_lock(&engine->lock);
    engine->change_func = func;
    engine->change_data = user_data;
    g_rw_lock_writer_unlock(&engine->lock);
}

/* ---- reads
 * ------------------------------------------------------------------------------- */

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

    g_hash_table_iter_init(&iter, engine->domains);
    while (g_hash_table_iter_next(&iter, &key, NULL))
        g_ptr_array_add(names, g_strdup(key));
    g_ptr_array_sort(names, str_ptr_cmp);
    return names;
}

gboolean
snap_engine_domain_info(SnapEngine *engine, const char *domain, SnapDomainInfo *info)
{
    SnapDomain *dom = find_domain(engine, domain);

    if (dom == NULL)
        return FALSE;
    if (info == NULL)
        return TRUE;
    g_rw_lock_reader_lock(&engine->lock);
    info->state = domain_state(engine, dom);
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
    SnapDomain *dom = find_domain(engine, domain);
    GBytes *out = NULL;

    if (dom == NULL)
        return NULL;
    g_rw_lock_reader_lock(&engine->lock);
    switch (file) {
    case SNAP_DOMAIN_FILE_XML:
        out = g_bytes_new(dom->def_xml, strlen(dom->def_xml));
        break;
    case SNAP_DOMAIN_FILE_STATE: {
        const char *word = state_word(domain_state(engine, dom));

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
    info->xml_size = strlen(node->xml) + (info->is_current ? ACTIVE_LEN : 0);
}

gboolean
snap_engine_snapshot_info(SnapEngine *engine, const char *domain, const char *snapshot,
                          gboolean parent_check, const char *parent,
                          SnapSnapshotInfo *info)
{
    SnapDomain *dom = find_domain(engine, domain);
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
    SnapDomain *dom = find_domain(engine, domain);
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
    SnapDomain *dom = find_domain(engine, domain);
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
    SnapDomain *dom = find_domain(engine, domain);
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
    SnapDomain *dom = find_domain(engine, domain);
    SnapNode *node;
    GBytes *out = NULL;

    if (dom == NULL)
        return NULL;
    g_rw_lock_reader_lock(&engine->lock);
    node = snap_tree_lookup(dom->tree, snapshot);
    if (node != NULL) {
        if (snap_tree_get_current(dom->tree) == node) {
            char *xml = xml_with_active(node->xml);

            out = g_bytes_new_take(xml, strlen(xml));
        } else {
            out = g_bytes_new(node->xml, strlen(node->xml));
        }
    }
    g_rw_lock_reader_unlock(&engine->lock);
    return out;
}

char *
snap_engine_snapshot_path(SnapEngine *engine, const char *domain, const char *snapshot)
{
    SnapDomain *dom = find_domain(engine, domain);
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
    SnapDomain *dom = find_domain(engine, domain);
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

void
snap_engine_report_error(SnapEngine *engine, const char *domain, const char *operation,
                         const GError *error)
{
    SnapOp *op;

    if (find_domain(engine, domain) == NULL) {
        g_debug("%s: %s: %s", domain, operation, error->message);
        return;
    }
    op = snap_op_new(engine, OP_ACTION, domain, NULL, NULL, NULL);
    snap_op_report(op, operation, error->message);
    op_finish(op, NULL);
}

/* ---- mutations
 * ---------------------------------------------------------------------------- */

void
snap_engine_create_async(SnapEngine *engine, const char *domain, const char *in_dir,
                         const char *name, GCancellable *cancellable, SnapDoneFunc done,
                         gpointer user_data)
{
    SnapOp *op = snap_op_new(engine, OP_CREATE, domain, cancellable, done, user_data);
    g_autoptr(GError) error = NULL;

    op->name = g_strdup(name);
    op->in_dir = g_strdup(in_dir);
    op->opname = g_strdup_printf("mkdir %s", name);
    if (op_precheck(op))
        return;
    if (!snap_name_validate(name, &error)) {
        op_finish(op, error);
        return;
    }
    op_submit(op);
}

void
snap_engine_create_xml_async(SnapEngine *engine, const char *domain, const char *xml,
                             gsize len, GCancellable *cancellable, SnapDoneFunc done,
                             gpointer user_data)
{
    SnapOp *op = snap_op_new(engine, OP_CREATE_XML, domain, cancellable, done, user_data);

    op->xml = g_strndup(xml, len);
    op->len = len;
    op->opname = g_strdup("create");
    if (op_precheck(op))
        return;
    op_submit(op);
}

void
snap_engine_delete_async(SnapEngine *engine, const char *domain, const char *snapshot,
                         SnapDeleteFlags flags, GCancellable *cancellable,
                         SnapDoneFunc done, gpointer user_data)
{
    SnapOp *op = snap_op_new(engine, OP_DELETE, domain, cancellable, done, user_data);
    GString *opname = g_string_new("delete ");

    if (flags & SNAP_DELETE_CHILDREN)
        g_string_append(opname, "--children ");
    if (flags & SNAP_DELETE_CHILDREN_ONLY)
        g_string_append(opname, "--children-only ");
    if (flags & SNAP_DELETE_METADATA_ONLY)
        g_string_append(opname, "--metadata ");
    g_string_append(opname, snapshot);
    op->name = g_strdup(snapshot);
    op->flags = flags;
    op->opname = g_string_free(opname, FALSE);
    if (op_precheck(op))
        return;
    op_submit(op);
}

void
snap_engine_revert_async(SnapEngine *engine, const char *domain, const char *snapshot,
                         SnapRevertFlags flags, GCancellable *cancellable,
                         SnapDoneFunc done, gpointer user_data)
{
    SnapOp *op = snap_op_new(engine, OP_REVERT, domain, cancellable, done, user_data);

    op->name = g_strdup(snapshot);
    op->flags = flags;
    op->opname = g_strdup_printf("revert %s", snapshot);
    if (op_precheck(op))
        return;
    op_submit(op);
}

static const char *
action_word(SnapDomainAction action)
{
    switch (action) {
    case SNAP_ACTION_START:
        return "start";
    case SNAP_ACTION_SHUTDOWN:
        return "shutdown";
    case SNAP_ACTION_DESTROY:
        return "destroy";
    case SNAP_ACTION_PAUSE:
        return "pause";
    case SNAP_ACTION_RESUME:
        return "resume";
    }
    return "?";
}

void
snap_engine_domain_action_async(SnapEngine *engine, const char *domain,
                                SnapDomainAction action, GCancellable *cancellable,
                                SnapDoneFunc done, gpointer user_data)
{
    SnapOp *op = snap_op_new(engine, OP_ACTION, domain, cancellable, done, user_data);

    op->action = action;
    op->opname = g_strdup_printf("state %s", action_word(action));
    if (op_precheck(op))
        return;
    op_submit(op);
}

typedef struct {
    GMutex lock;
    GCond cond;
    gboolean done;
} FlushWait;

static void
flush_done(const GError *error, gpointer user_data)
{
    FlushWait *w = user_data;

    g_mutex_lock(&w->lock);
    w->done = TRUE;
    g_cond_signal(&w->cond);
    g_mutex_unlock(&w->lock);
}

void
snap_engine_flush(SnapEngine *engine, const char *domain)
{
    FlushWait w = {.done = FALSE};
    SnapOp *op;

    if (find_domain(engine, domain) == NULL)
        return;
    g_mutex_init(&w.lock);
    g_cond_init(&w.cond);
    op = snap_op_new(engine, OP_FLUSH, domain, NULL, flush_done, &w);
    op_submit(op);
    g_mutex_lock(&w.lock);
    while (!w.done)
        g_cond_wait(&w.cond, &w.lock);
    g_mutex_unlock(&w.lock);
    g_mutex_clear(&w.lock);
    g_cond_clear(&w.cond);
}
