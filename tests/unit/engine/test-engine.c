/* test-engine.c: the snapshot engine on real qcow2 images in a temp STATE dir. */
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "qemu-img.h"
#include "snap-engine.h"
#include "snap-error.h"
#include "snapshot-xml.h"

#define DOM "vm1"

typedef struct {
    char *state;
    SnapEngine *engine;
    GMutex lock;
    GCond cond;
    GPtrArray *events; /* "KIND snapshot parent old_parent", "DONE" */
    gboolean done;
    GError *error;
} Fx;

/* ---- fixture ------------------------------------------------------------------ */

static void
fx_setup(Fx *fx, gconstpointer data)
{
    fx->state = g_dir_make_tmp("engine-XXXXXX", NULL);
    g_assert_nonnull(fx->state);
    g_mutex_init(&fx->lock);
    g_cond_init(&fx->cond);
    fx->events = g_ptr_array_new_with_free_func(g_free);
}

static void
rm_rf(const char *path)
{
    g_autoptr(GDir) d = g_dir_open(path, 0, NULL);
    const char *name;

    while (d && (name = g_dir_read_name(d)) != NULL) {
        g_autofree char *child = g_build_filename(path, name, NULL);

        if (g_file_test(child, G_FILE_TEST_IS_DIR) &&
            !g_file_test(child, G_FILE_TEST_IS_SYMLINK))
            rm_rf(child);
        else
            g_unlink(child);
    }
    g_rmdir(path);
}

static void
fx_teardown(Fx *fx, gconstpointer data)
{
    g_clear_pointer(&fx->engine, snap_engine_free);
    rm_rf(fx->state);
    g_free(fx->state);
    g_clear_error(&fx->error);
    g_ptr_array_unref(fx->events);
    g_mutex_clear(&fx->lock);
    g_cond_clear(&fx->cond);
}

static const char *const kind_names[] = {
    [SNAP_CHANGE_SNAPSHOT_ADDED] = "ADDED", [SNAP_CHANGE_SNAPSHOT_REMOVED] = "REMOVED",
    [SNAP_CHANGE_SNAPSHOT_MOVED] = "MOVED", [SNAP_CHANGE_SNAPSHOT_XML] = "XML",
    [SNAP_CHANGE_CURRENT] = "CURRENT",      [SNAP_CHANGE_DOMAIN_FILE] = "DOMAIN_FILE",
    [SNAP_CHANGE_ERROR] = "ERROR",
};

static void
on_change(const SnapChange *c, gpointer data)
{
    Fx *fx = data;
    GString *s = g_string_new(kind_names[c->kind]);

    g_assert_cmpstr(c->domain, ==, DOM);
    if (c->snapshot)
        g_string_append_printf(s, " %s", c->snapshot);
    if (c->kind == SNAP_CHANGE_SNAPSHOT_ADDED || c->kind == SNAP_CHANGE_SNAPSHOT_MOVED)
        g_string_append_printf(s, " parent=%s", c->parent ? c->parent : "-");
    if (c->kind == SNAP_CHANGE_SNAPSHOT_REMOVED || c->kind == SNAP_CHANGE_SNAPSHOT_MOVED)
        g_string_append_printf(s, " old=%s", c->old_parent ? c->old_parent : "-");
    if (c->kind == SNAP_CHANGE_ERROR)
        g_assert_nonnull(c->message);
    g_mutex_lock(&fx->lock);
    g_ptr_array_add(fx->events, g_string_free(s, FALSE));
    g_cond_broadcast(&fx->cond);
    g_mutex_unlock(&fx->lock);
}

static void
on_done(const GError *error, gpointer data)
{
    Fx *fx = data;

    g_mutex_lock(&fx->lock);
    fx->error = error ? g_error_copy(error) : NULL;
    fx->done = TRUE;
    g_ptr_array_add(fx->events, g_strdup("DONE"));
    g_cond_broadcast(&fx->cond);
    g_mutex_unlock(&fx->lock);
}

static void
fx_arm(Fx *fx)
{
    g_mutex_lock(&fx->lock);
    fx->done = FALSE;
    g_clear_error(&fx->error);
    g_mutex_unlock(&fx->lock);
}

/* Waits for the completion callback; returns its error (transfer full). */
static GError *
fx_wait(Fx *fx)
{
    gint64 deadline = g_get_monotonic_time() + 60 * G_USEC_PER_SEC;
    GError *error;

    g_mutex_lock(&fx->lock);
    while (!fx->done)
        g_assert_true(g_cond_wait_until(&fx->cond, &fx->lock, deadline));
    error = g_steal_pointer(&fx->error);
    g_mutex_unlock(&fx->lock);
    return error;
}

/* Waits until @count events have arrived. */
static void
fx_wait_event(Fx *fx, guint count)
{
    gint64 deadline = g_get_monotonic_time() + 30 * G_USEC_PER_SEC;

    g_mutex_lock(&fx->lock);
    while (fx->events->len < count)
        g_assert_true(g_cond_wait_until(&fx->cond, &fx->lock, deadline));
    g_mutex_unlock(&fx->lock);
}

static char *
path_in(Fx *fx, const char *rel)
{
    return g_build_filename(fx->state, rel, NULL);
}

static void
run_or_die(const char *cmd)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int status = 0;

    g_assert_true(g_spawn_command_line_sync(cmd, &out, &err, &status, &error));
    g_assert_no_error(error);
    if (!g_spawn_check_wait_status(status, NULL))
        g_error("'%s' failed: %s%s", cmd, out, err);
}

/* Writes STATE/domains/vm1.xml with one qcow2 disk per target in
 * @targets (images created under STATE, referred to relatively), and
 * @extra_disks XML appended verbatim. */
static void
fx_domain(Fx *fx, const char *const *targets, const char *extra_disks)
{
    g_autofree char *dir = path_in(fx, "domains");
    g_autofree char *file = g_build_filename(dir, DOM ".xml", NULL);
    GString *xml = g_string_new("<domain type='qemu'>\n"
                                "  <name>" DOM "</name>\n"
                                "  <memory unit='KiB'>65536</memory>\n"
                                "  <vcpu>1</vcpu>\n"
                                "  <os>\n"
                                "    <type arch='x86_64' machine='pc'>hvm</type>\n"
                                "  </os>\n"
                                "  <devices>\n");

    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    for (guint i = 0; targets[i]; i++) {
        g_autofree char *img = g_strdup_printf("%s.qcow2", targets[i]);
        g_autofree char *img_path = path_in(fx, img);
        g_autoptr(GError) error = NULL;

        g_assert_true(qemu_img_create(img_path, "qcow2", 1024 * 1024, &error));
        g_string_append_printf(xml,
                               "    <disk type='file' device='disk'>\n"
                               "      <driver name='qemu' type='qcow2'/>\n"
                               "      <source file='%s'/>\n"
                               "      <target dev='%s' bus='virtio'/>\n"
                               "    </disk>\n",
                               img, targets[i]);
    }
    if (extra_disks)
        g_string_append(xml, extra_disks);
    g_string_append(xml, "  </devices>\n</domain>\n");
    g_assert_true(g_file_set_contents(file, xml->str, -1, NULL));
    g_string_free(xml, TRUE);
}

static void
fx_one_disk(Fx *fx)
{
    const char *targets[] = {"vda", NULL};

    fx_domain(fx, targets, NULL);
}

static void
fx_start_opts(Fx *fx, const SnapEngineOptions *opts)
{
    g_autoptr(GError) error = NULL;

    g_clear_pointer(&fx->engine, snap_engine_free);
    fx->engine = snap_engine_new(fx->state, opts, &error);
    g_assert_no_error(error);
    g_assert_nonnull(fx->engine);
    snap_engine_set_change_func(fx->engine, on_change, fx);
    snap_engine_start(fx->engine);
}

static void
fx_start(Fx *fx)
{
    SnapEngineOptions opts = {.no_reconcile = TRUE};

    fx_start_opts(fx, &opts);
}

static GError *
do_mkdir(Fx *fx, const char *in_dir, const char *name)
{
    fx_arm(fx);
    snap_engine_create_async(fx->engine, DOM, in_dir, name, NULL, on_done, fx);
    return fx_wait(fx);
}

static void
mkdir_ok(Fx *fx, const char *in_dir, const char *name)
{
    g_autoptr(GError) error = do_mkdir(fx, in_dir, name);

    g_assert_no_error(error);
}

static GError *
do_delete(Fx *fx, const char *name, SnapDeleteFlags flags)
{
    fx_arm(fx);
    snap_engine_delete_async(fx->engine, DOM, name, flags, NULL, on_done, fx);
    return fx_wait(fx);
}

static GError *
do_revert(Fx *fx, const char *name, SnapRevertFlags flags)
{
    fx_arm(fx);
    snap_engine_revert_async(fx->engine, DOM, name, flags, NULL, on_done, fx);
    return fx_wait(fx);
}

static GError *
do_create_xml(Fx *fx, const char *xml)
{
    fx_arm(fx);
    snap_engine_create_xml_async(fx->engine, DOM, xml, strlen(xml), NULL, on_done, fx);
    return fx_wait(fx);
}

/* The tags in @image ("vda.qcow2" under STATE), space separated. */
static char *
disk_tags(Fx *fx, const char *image)
{
    g_autofree char *path = path_in(fx, image);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) snaps = qemu_img_info(path, "qcow2", NULL, NULL, &error);
    GString *s = g_string_new(NULL);

    g_assert_no_error(error);
    for (guint i = 0; i < snaps->len; i++) {
        if (i)
            g_string_append_c(s, ' ');
        g_string_append(s, ((QemuImgSnapshot *)snaps->pdata[i])->name);
    }
    return g_string_free(s, FALSE);
}

#define assert_tags(fx, image, expect)                                                   \
    do {                                                                                 \
        g_autofree char *got_ = disk_tags(fx, image);                                    \
        g_assert_cmpstr(got_, ==, expect);                                               \
    } while (0)

/* STATE/snapshots/vm1/NAME.xml, or NULL. */
static char *
snap_file(Fx *fx, const char *name)
{
    g_autofree char *file = g_strconcat(name, ".xml", NULL);
    g_autofree char *path = g_build_filename(fx->state, "snapshots", DOM, file, NULL);
    char *text = NULL;

    if (!g_file_get_contents(path, &text, NULL, NULL))
        return NULL;
    return text;
}

static char *
engine_xml(Fx *fx, const char *name)
{
    g_autoptr(GBytes) b = snap_engine_snapshot_xml(fx->engine, DOM, name);
    gsize len;
    const char *data;

    if (b == NULL)
        return NULL;
    data = g_bytes_get_data(b, &len);
    return g_strndup(data, len);
}

static char *
parent_of(Fx *fx, const char *name)
{
    char *parent = NULL;

    g_assert_true(snap_engine_snapshot_parent(fx->engine, DOM, name, &parent));
    return parent;
}

#define assert_parent(fx, name, expect)                                                  \
    do {                                                                                 \
        g_autofree char *got_ = parent_of(fx, name);                                     \
        g_assert_cmpstr(got_, ==, expect);                                               \
    } while (0)

#define assert_current(fx, expect)                                                       \
    do {                                                                                 \
        g_autofree char *got_ = snap_engine_current((fx)->engine, DOM);                  \
        g_assert_cmpstr(got_, ==, expect);                                               \
    } while (0)

static char *
domain_file(Fx *fx, SnapDomainFile which)
{
    g_autoptr(GBytes) b = snap_engine_domain_file(fx->engine, DOM, which);
    gsize len;
    const char *data = g_bytes_get_data(b, &len);

    /* An empty GBytes may have no data pointer at all. */
    return len ? g_strndup(data, len) : g_strdup("");
}

/* The journal holds no intent once the domain's worker is idle: the
 * file is absent or empty. */
static gboolean
journal_clear_at(Fx *fx, const char *path)
{
    GStatBuf st;

    snap_engine_flush(fx->engine, DOM);
    return g_stat(path, &st) < 0 || st.st_size == 0;
}

/* Checks that metadata.xml (engine), its stored file and the size the
 * engine reports agree, and that the file is marked current exactly when
 * the snapshot is current. */
static void
assert_consistent(Fx *fx, const char *name)
{
    g_autofree char *mem = NULL;
    g_autofree char *disk = NULL;
    g_autofree char *current = snap_engine_current(fx->engine, DOM);
    SnapSnapshotInfo info;

    /* The old current's file is settled just after the reply. */
    snap_engine_flush(fx->engine, DOM);
    mem = engine_xml(fx, name);
    disk = snap_file(fx, name);
    g_assert_nonnull(mem);
    g_assert_cmpstr(mem, ==, disk);
    g_assert_true(snap_engine_snapshot_info(fx->engine, DOM, name, FALSE, NULL, &info));
    g_assert_cmpuint(info.xml_size, ==, strlen(mem));
    g_assert_cmpint(info.is_current, ==, g_strcmp0(current, name) == 0);
    g_assert_cmpint(strstr(mem, "<active>1</active>") != NULL, ==, info.is_current);
    /* The <active> line the engine inserts is exactly the formatter's. */
    {
        g_autoptr(SnapshotDef) def = snapshot_xml_parse(mem, strlen(mem), NULL);
        g_autofree char *formatted = NULL;

        g_assert_nonnull(def);
        formatted = snapshot_xml_format(def, info.is_current);
        g_assert_cmpstr(formatted, ==, mem);
    }
}

/* ---- tests ------------------------------------------------------------------------ */

static void
test_mkdir(Fx *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *s1 = NULL;
    g_autoptr(GPtrArray) kids = NULL;
    g_autofree char *path = NULL;
    SnapDomainInfo dinfo;

    fx_one_disk(fx);
    fx_start(fx);
    assert_current(fx, NULL);

    mkdir_ok(fx, NULL, "s1");
    assert_current(fx, "s1");
    assert_tags(fx, "vda.qcow2", "s1");
    assert_consistent(fx, "s1");
    s1 = snap_file(fx, "s1");
    g_assert_nonnull(strstr(s1, "<state>shutoff</state>"));
    g_assert_nonnull(strstr(s1, "<disk name='vda' snapshot='internal'"));
    g_assert_nonnull(strstr(s1, "<domain type='qemu'>"));
    g_assert_null(strstr(s1, "<parent>"));

    /* Not in the current snapshot's directory. */
    error = do_mkdir(fx, NULL, "s2");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_NOT_CURRENT);
    g_clear_error(&error);
    error = do_mkdir(fx, "nosuch", "s2");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_NOT_CURRENT);
    g_clear_error(&error);
    mkdir_ok(fx, "s1", "s2");
    assert_parent(fx, "s2", "s1");
    assert_consistent(fx, "s1");
    assert_consistent(fx, "s2");
    g_clear_pointer(&s1, g_free);
    s1 = snap_file(fx, "s1");
    g_assert_null(strstr(s1, "<active>"));

    error = do_mkdir(fx, "s2", "s1");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_EXISTS);
    g_clear_error(&error);
    error = do_mkdir(fx, "s2", "a/b");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_clear_error(&error);
    error = do_mkdir(fx, "s2", ".hidden");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_clear_error(&error);
    error = do_mkdir(fx, "s2", "metadata.xml");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_clear_error(&error);

    fx_arm(fx);
    snap_engine_create_async(fx->engine, "nodom", NULL, "x", NULL, on_done, fx);
    error = fx_wait(fx);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND);
    g_clear_error(&error);

    assert_tags(fx, "vda.qcow2", "s1 s2");
    kids = snap_engine_list_children(fx->engine, DOM, "s1");
    g_assert_cmpuint(kids->len, ==, 1);
    g_assert_cmpstr(((SnapEntry *)kids->pdata[0])->name, ==, "s2");
    g_assert_true(((SnapEntry *)kids->pdata[0])->info.is_current);
    path = snap_engine_snapshot_path(fx->engine, DOM, "s2");
    g_assert_cmpstr(path, ==, "s1/s2");
    g_assert_true(snap_engine_domain_info(fx->engine, DOM, &dinfo));
    g_assert_cmpuint(dinfo.nsnapshots, ==, 2);
    g_assert_cmpuint(dinfo.nroots, ==, 1);
    g_assert_true(dinfo.has_current);
    g_assert_cmpint(dinfo.state, ==, SNAP_DOMAIN_SHUTOFF);
    g_assert_true(snap_engine_snapshot_info(fx->engine, DOM, "s2", TRUE, "s1", NULL));
    g_assert_false(snap_engine_snapshot_info(fx->engine, DOM, "s2", TRUE, NULL, NULL));
    g_assert_true(snap_engine_snapshot_info(fx->engine, DOM, "s1", TRUE, NULL, NULL));

    /* Each refused mkdir left one line in errors; none came from success. */
    {
        g_autofree char *errors = domain_file(fx, SNAP_DOMAIN_FILE_ERRORS);
        g_auto(GStrv) lines = g_strsplit(errors, "\n", -1);

        g_test_message("errors:\n%s", errors);
        g_assert_cmpuint(g_strv_length(lines), ==, 7);
        g_assert_nonnull(strstr(lines[0], " mkdir s2: "));
        g_assert_nonnull(strstr(lines[2], " mkdir s1: "));
    }

    /* What was written loads back the same. */
    fx_start(fx);
    assert_current(fx, "s2");
    assert_parent(fx, "s2", "s1");
    assert_consistent(fx, "s1");
    assert_consistent(fx, "s2");
}

static void
test_delete(Fx *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *s3 = NULL;

    fx_one_disk(fx);
    fx_start(fx);
    mkdir_ok(fx, NULL, "s1");
    mkdir_ok(fx, "s1", "s2");
    mkdir_ok(fx, "s2", "s3");

    /* s2 goes; s3 moves up to s1; current (s3) stays. */
    error = do_delete(fx, "s2", 0);
    g_assert_no_error(error);
    assert_parent(fx, "s3", "s1");
    assert_current(fx, "s3");
    assert_tags(fx, "vda.qcow2", "s1 s3");
    g_assert_null(snap_file(fx, "s2"));
    s3 = snap_file(fx, "s3");
    g_assert_nonnull(strstr(s3, "<parent>\n    <name>s1</name>\n  </parent>"));
    assert_consistent(fx, "s3");

    /* Deleting the current snapshot makes its parent current. */
    error = do_delete(fx, "s3", 0);
    g_assert_no_error(error);
    assert_current(fx, "s1");
    assert_consistent(fx, "s1");
    assert_tags(fx, "vda.qcow2", "s1");

    error = do_delete(fx, "nosuch", 0);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND);
    g_clear_error(&error);

    /* A current root leaves no current snapshot. */
    error = do_delete(fx, "s1", 0);
    g_assert_no_error(error);
    assert_current(fx, NULL);
    assert_tags(fx, "vda.qcow2", "");
    mkdir_ok(fx, NULL, "again");
    assert_parent(fx, "again", NULL);
}

static void
test_delete_children(Fx *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    fx_one_disk(fx);
    fx_start(fx);
    mkdir_ok(fx, NULL, "s1");
    mkdir_ok(fx, "s1", "s2");
    mkdir_ok(fx, "s2", "s3");
    mkdir_ok(fx, "s3", "s4");

    /* CHILDREN_ONLY: s3 and s4 go, s2 stays and becomes current. */
    error = do_delete(fx, "s2", SNAP_DELETE_CHILDREN_ONLY);
    g_assert_no_error(error);
    assert_current(fx, "s2");
    assert_tags(fx, "vda.qcow2", "s1 s2");
    g_assert_null(snap_file(fx, "s3"));
    g_assert_null(snap_file(fx, "s4"));
    assert_consistent(fx, "s2");

    mkdir_ok(fx, "s2", "s5");
    mkdir_ok(fx, "s5", "s6");
    /* CHILDREN: s2 and all below; s1 becomes current. */
    error = do_delete(fx, "s2", SNAP_DELETE_CHILDREN);
    g_assert_no_error(error);
    assert_current(fx, "s1");
    assert_tags(fx, "vda.qcow2", "s1");
    assert_consistent(fx, "s1");
    g_assert_false(snap_engine_snapshot_info(fx->engine, DOM, "s5", FALSE, NULL, NULL));

    /* METADATA_ONLY: the disk keeps its data. */
    error = do_delete(fx, "s1", SNAP_DELETE_METADATA_ONLY);
    g_assert_no_error(error);
    assert_current(fx, NULL);
    g_assert_null(snap_file(fx, "s1"));
    assert_tags(fx, "vda.qcow2", "s1");
}

static void
qemu_io(Fx *fx, const char *cmd, gboolean expect_ok)
{
    g_autofree char *img = path_in(fx, "vda.qcow2");
    g_autofree char *line = g_strdup_printf("qemu-io -f qcow2 -c '%s' %s", cmd, img);
    g_autofree char *out = NULL;
    int status = 0;

    g_assert_true(g_spawn_command_line_sync(line, &out, NULL, &status, NULL));
    /* qemu-io exits 0 even when a pattern does not match; it says so. */
    g_assert_cmpint(g_spawn_check_wait_status(status, NULL) &&
                        strstr(out, "Pattern verification failed") == NULL,
                    ==, expect_ok);
}

static void
test_revert(Fx *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;

    fx_one_disk(fx);
    fx_start(fx);
    qemu_io(fx, "write -P 0xaa 0 64k", TRUE);
    mkdir_ok(fx, NULL, "s1");
    qemu_io(fx, "write -P 0xbb 0 64k", TRUE);
    mkdir_ok(fx, "s1", "s2");
    qemu_io(fx, "write -P 0xcc 0 64k", TRUE);
    qemu_io(fx, "read -P 0xaa 0 64k", FALSE);

    error = do_revert(fx, "s1", 0);
    g_assert_no_error(error);
    qemu_io(fx, "read -P 0xaa 0 64k", TRUE);
    assert_current(fx, "s1");
    assert_consistent(fx, "s1");
    assert_consistent(fx, "s2");

    /* A new snapshot now branches off s1. */
    mkdir_ok(fx, "s1", "b1");
    assert_parent(fx, "b1", "s1");

    error = do_revert(fx, "s2", 0);
    g_assert_no_error(error);
    qemu_io(fx, "read -P 0xbb 0 64k", TRUE);

    error = do_revert(fx, "nosuch", 0);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND);
    g_clear_error(&error);

    /* The tag vanished behind our back: QEMU's error, nothing changes. */
    {
        g_autofree char *img = path_in(fx, "vda.qcow2");
        g_autofree char *cmd = g_strdup_printf("qemu-img snapshot -d s1 %s", img);

        run_or_die(cmd);
    }
    error = do_revert(fx, "s1", 0);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_nonnull(strstr(error->message, "vda"));
    g_clear_error(&error);
    assert_current(fx, "s2");
}

static void
test_revert_domain_def(Fx *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *before = NULL;
    g_autofree char *after = NULL;
    g_autofree char *reverted = NULL;
    g_autofree char *dompath = path_in(fx, "domains/" DOM ".xml");
    g_autofree char *text = NULL;
    g_autofree char *changed = NULL;
    g_auto(GStrv) parts = NULL;

    fx_one_disk(fx);
    fx_start(fx);
    mkdir_ok(fx, NULL, "s1");
    before = domain_file(fx, SNAP_DOMAIN_FILE_XML);

    /* The definition changes after the snapshot (more memory). */
    g_assert_true(g_file_get_contents(dompath, &text, NULL, NULL));
    parts = g_strsplit(text, "65536", -1);
    changed = g_strjoinv("131072", parts);
    g_assert_true(g_file_set_contents(dompath, changed, -1, NULL));
    fx_start(fx);
    after = domain_file(fx, SNAP_DOMAIN_FILE_XML);
    g_assert_cmpstr(before, !=, after);

    error = do_revert(fx, "s1", 0);
    g_assert_no_error(error);
    reverted = domain_file(fx, SNAP_DOMAIN_FILE_XML);
    g_assert_cmpstr(reverted, ==, before);
    g_clear_pointer(&text, g_free);
    g_assert_true(g_file_get_contents(dompath, &text, NULL, NULL));
    g_assert_nonnull(strstr(text, "65536"));
}

static void
test_two_disks_all_or_nothing(Fx *fx, gconstpointer data)
{
    const char *targets[] = {"vda", "vdb", NULL};
    g_autoptr(GError) error = NULL;
    g_autofree char *vdb = path_in(fx, "vdb.qcow2");
    g_autofree char *errors = NULL;

    fx_domain(fx, targets, NULL);
    fx_start(fx);
    mkdir_ok(fx, NULL, "s1");
    assert_tags(fx, "vda.qcow2", "s1");
    assert_tags(fx, "vdb.qcow2", "s1");

    /* vdb stops being an image: qemu-img fails on it, after vda. */
    g_assert_true(g_file_set_contents(vdb, "this is not a qcow2 image\n", -1, NULL));
    error = do_mkdir(fx, "s1", "s2");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_test_message("%s", error->message);
    g_assert_nonnull(strstr(error->message, "vdb"));
    assert_tags(fx, "vda.qcow2", "s1");
    g_assert_null(snap_file(fx, "s2"));
    g_assert_false(snap_engine_snapshot_info(fx->engine, DOM, "s2", FALSE, NULL, NULL));
    assert_current(fx, "s1");
    assert_consistent(fx, "s1");
    errors = domain_file(fx, SNAP_DOMAIN_FILE_ERRORS);
    g_assert_nonnull(strstr(errors, "Z mkdir s2: disk vdb"));
    {
        g_autofree char *journal = path_in(fx, "journal/" DOM ".json");

        g_assert_true(journal_clear_at(fx, journal));
    }
}

static void
test_create_xml(Fx *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *s2_xml = NULL;
    g_autofree char *s2_back = NULL;
    g_autofree char *s1_xml = NULL;

    fx_one_disk(fx);
    fx_start(fx);
    error = do_create_xml(fx, "<domainsnapshot>\n"
                              "  <name>s1</name>\n"
                              "  <description>first one</description>\n"
                              "  <memory snapshot='no'/>\n"
                              "</domainsnapshot>\n");
    g_assert_no_error(error);
    s1_xml = snap_file(fx, "s1");
    g_assert_nonnull(strstr(s1_xml, "<description>first one</description>"));
    assert_tags(fx, "vda.qcow2", "s1");
    mkdir_ok(fx, "s1", "s2");

    /* Redefine round trip: s2 loses its metadata, its XML brings it back
     * with its parent and as current. */
    s2_xml = engine_xml(fx, "s2");
    g_assert_nonnull(strstr(s2_xml, "<active>1</active>"));
    error = do_delete(fx, "s2", SNAP_DELETE_METADATA_ONLY);
    g_assert_no_error(error);
    assert_current(fx, "s1");
    assert_tags(fx, "vda.qcow2", "s1 s2");
    error = do_create_xml(fx, s2_xml);
    g_assert_no_error(error);
    assert_current(fx, "s2");
    assert_parent(fx, "s2", "s1");
    s2_back = snap_file(fx, "s2");
    g_assert_cmpstr(s2_back, ==, s2_xml);
    assert_consistent(fx, "s1");
    assert_tags(fx, "vda.qcow2", "s1 s2");

    /* Redefining an existing snapshot edits it in place. */
    {
        /* s1's file now, without <active>: s2 stays current. */
        g_autofree char *s1_now = snap_file(fx, "s1");
        g_auto(GStrv) parts =
            g_strsplit(s1_now, "<description>first one</description>", -1);
        g_autofree char *edited = g_strjoinv("<description>edited</description>", parts);
        g_autofree char *now = NULL;

        error = do_create_xml(fx, edited);
        g_assert_no_error(error);
        now = snap_file(fx, "s1");
        g_assert_nonnull(strstr(now, "<description>edited</description>"));
        assert_current(fx, "s2");
    }

    /* Bad input. */
    error = do_create_xml(fx, "<domainsnapshot><name>x</name>");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_clear_error(&error);
    error =
        do_create_xml(fx, "<domainsnapshot><name>m</name><memory snapshot='internal'/>"
                          "</domainsnapshot>");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_assert_cmpstr(error->message, ==,
                    "memory state cannot be saved with offline or disk-only snapshot");
    g_clear_error(&error);
    error = do_create_xml(fx, "<domainsnapshot><name>d</name><disks><disk name='vdz' "
                              "snapshot='internal'/></disks></domainsnapshot>");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_clear_error(&error);
    /* An external snapshot in a domain whose snapshots are internal. */
    error = do_create_xml(fx, "<domainsnapshot><name>e</name><disks><disk name='vda' "
                              "snapshot='external'/></disks></domainsnapshot>");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, "mixing internal and external"));
    g_clear_error(&error);
    error = do_create_xml(fx, "<domainsnapshot><name>ghost</name>"
                              "<creationTime>1000</creationTime><disks><disk name='vda' "
                              "snapshot='internal'/></disks></domainsnapshot>");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, "does not exist on the disks"));
    g_clear_error(&error);
    error = do_create_xml(fx, "<domainsnapshot><name>s9</name><parent><name>nope</name>"
                              "</parent></domainsnapshot>");
    g_assert_no_error(error); /* new: the parent given is ignored */
    assert_parent(fx, "s9", "s2");
    /* A redefine that would make s1 its own descendant. */
    error = do_create_xml(fx, "<domainsnapshot><name>s1</name><parent><name>s9</name>"
                              "</parent><creationTime>5</creationTime></domainsnapshot>");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_clear_error(&error);
    assert_tags(fx, "vda.qcow2", "s1 s2 s9");

    /* No name: epoch seconds, as libvirt. */
    error = do_create_xml(fx, "<domainsnapshot/>");
    g_assert_no_error(error);
    {
        g_autofree char *cur = snap_engine_current(fx->engine, DOM);

        g_assert_true(g_ascii_isdigit(cur[0]));
    }
}

static void
test_refusals(Fx *fx, gconstpointer data)
{
    const char *targets[] = {"vda", NULL};
    SnapEngineOptions ro = {.read_only = TRUE, .no_reconcile = TRUE};
    g_autoptr(GError) error = NULL;
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    g_autofree char *pidfile = path_in(fx, "run/" DOM ".pid");
    g_autofree char *rundir = path_in(fx, "run");
    g_autofree char *pid = g_strdup_printf("%d\n", (int)getpid());
    g_autofree char *state = NULL;

    fx_domain(fx, targets,
              "    <disk type='file' device='disk'>\n"
              "      <driver name='qemu' type='raw'/>\n"
              "      <source file='data.raw'/>\n"
              "      <target dev='vdc' bus='virtio'/>\n"
              "    </disk>\n");
    fx_start(fx);

    /* Cancelled before it touched a disk. */
    g_cancellable_cancel(cancel);
    fx_arm(fx);
    snap_engine_create_async(fx->engine, DOM, NULL, "c1", cancel, on_done, fx);
    error = fx_wait(fx);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_CANCELLED);
    g_clear_error(&error);
    assert_tags(fx, "vda.qcow2", "");

    /* A raw disk takes no internal snapshot (default: excluded). */
    mkdir_ok(fx, NULL, "s1");
    {
        g_autofree char *s1 = snap_file(fx, "s1");

        g_assert_nonnull(strstr(s1, "<disk name='vdc' snapshot='no'/>"));
    }
    error = do_create_xml(fx, "<domainsnapshot><name>r</name><disks><disk name='vdc' "
                              "snapshot='internal'/></disks></domainsnapshot>");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_clear_error(&error);
    error = do_create_xml(fx, "<domainsnapshot><name>r</name><disks><disk name='vda' "
                              "snapshot='no'/></disks></domainsnapshot>");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID); /* nothing to snapshot */
    g_clear_error(&error);

    /* Actions that need a running QEMU, on a shut-off domain. */
    for (SnapDomainAction a = SNAP_ACTION_SHUTDOWN; a <= SNAP_ACTION_RESUME; a++) {
        fx_arm(fx);
        snap_engine_domain_action_async(fx->engine, DOM, a, NULL, on_done, fx);
        error = fx_wait(fx);
        g_assert_error(error, SNAP_ERROR, SNAP_ERROR_BUSY);
        g_clear_error(&error);
    }
    {
        g_autofree char *errors = domain_file(fx, SNAP_DOMAIN_FILE_ERRORS);

        g_assert_nonnull(strstr(errors, "Z state shutdown: domain is not running\n"));
        g_assert_nonnull(strstr(errors, "Z state resume: domain is not running\n"));
    }
    state = domain_file(fx, SNAP_DOMAIN_FILE_STATE);
    g_assert_cmpstr(state, ==, "shutoff\n");

    /* A stale pidfile (no such process) is no running domain, and goes. */
    g_assert_cmpint(g_mkdir_with_parents(rundir, 0755), ==, 0);
    g_assert_true(g_file_set_contents(pidfile, pid, -1, NULL));
    fx_start(fx);
    snap_engine_flush(fx->engine, DOM);
    g_clear_pointer(&state, g_free);
    state = domain_file(fx, SNAP_DOMAIN_FILE_STATE);
    g_assert_cmpstr(state, ==, "shutoff\n");
    g_assert_false(g_file_test(pidfile, G_FILE_TEST_EXISTS));

    /* Read-only: every mutation refused, nothing changes. */
    fx_start_opts(fx, &ro);
    error = do_mkdir(fx, NULL, "s3");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_READ_ONLY);
    g_clear_error(&error);
    error = do_create_xml(fx, "<domainsnapshot/>");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_READ_ONLY);
    g_clear_error(&error);
    error = do_revert(fx, "s1", 0);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_READ_ONLY);
    g_clear_error(&error);
    error = do_delete(fx, "s1", 0);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_READ_ONLY);
    g_clear_error(&error);
    assert_tags(fx, "vda.qcow2", "s1");
}

static void
write_snapshot_file(Fx *fx, const char *file, const char *xml)
{
    g_autofree char *dir = g_build_filename(fx->state, "snapshots", DOM, NULL);
    g_autofree char *path = g_build_filename(dir, file, NULL);

    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    g_assert_true(g_file_set_contents(path, xml, -1, NULL));
}

static void
test_load_repairs(Fx *fx, gconstpointer data)
{
    g_autofree char *errors = NULL;
    g_autofree char *bad = NULL;

    fx_one_disk(fx);
    write_snapshot_file(fx, "a.xml",
                        "<domainsnapshot><name>a</name><state>shutoff</state>"
                        "<creationTime>10</creationTime><active>1</active>"
                        "</domainsnapshot>\n");
    write_snapshot_file(fx, "b.xml",
                        "<domainsnapshot><name>b</name><state>shutoff</state>"
                        "<parent><name>a</name></parent>"
                        "<creationTime>20</creationTime><active>1</active>"
                        "</domainsnapshot>\n");
    write_snapshot_file(fx, "orphan.xml",
                        "<domainsnapshot><name>orphan</name>"
                        "<state>shutoff</state><parent><name>gone</name>"
                        "</parent><creationTime>30</creationTime>"
                        "</domainsnapshot>\n");
    write_snapshot_file(fx, "bad.xml", "<domainsnapshot><name>bad</name>");
    write_snapshot_file(fx, "renamed.xml",
                        "<domainsnapshot><name>other</name>"
                        "<creationTime>40</creationTime></domainsnapshot>\n");
    write_snapshot_file(fx, "notes.txt", "ignored");
    fx_start(fx);

    assert_current(fx, "b");
    assert_parent(fx, "b", "a");
    assert_parent(fx, "orphan", NULL);
    g_assert_false(snap_engine_snapshot_info(fx->engine, DOM, "bad", FALSE, NULL, NULL));
    g_assert_false(
        snap_engine_snapshot_info(fx->engine, DOM, "other", FALSE, NULL, NULL));
    g_assert_false(
        snap_engine_snapshot_info(fx->engine, DOM, "renamed", FALSE, NULL, NULL));
    {
        /* The repaired orphan's metadata.xml agrees with the tree. */
        g_autofree char *orphan = engine_xml(fx, "orphan");

        g_assert_null(strstr(orphan, "gone"));
    }
    errors = domain_file(fx, SNAP_DOMAIN_FILE_ERRORS);
    g_test_message("errors:\n%s", errors);
    g_assert_nonnull(strstr(errors, "bad.xml"));
    g_assert_nonnull(strstr(errors, "renamed.xml"));
    g_assert_nonnull(strstr(errors, "'gone' not found"));
    g_assert_nonnull(strstr(errors, "2 snapshots claim to be current"));
    /* Nothing was deleted or rewritten. */
    bad = snap_file(fx, "bad");
    g_assert_cmpstr(bad, ==, "<domainsnapshot><name>bad</name>");
    {
        g_autofree char *orphan = snap_file(fx, "orphan");

        g_assert_nonnull(strstr(orphan, "gone"));
    }
}

static void
test_reconcile(Fx *fx, gconstpointer data)
{
    const char *targets[] = {"vda", "vdb", NULL};
    SnapEngineOptions opts = {0};
    g_autofree char *vda = path_in(fx, "vda.qcow2");
    g_autofree char *vdb = path_in(fx, "vdb.qcow2");
    g_autofree char *cmd1 = g_strdup_printf("qemu-img snapshot -c stray %s", vda);
    g_autofree char *cmd2 = g_strdup_printf("qemu-img snapshot -d s1 %s", vda);
    g_autofree char *errors = NULL;
    g_autoptr(GError) error = NULL;

    fx_domain(fx, targets, NULL);
    fx_start(fx);
    mkdir_ok(fx, NULL, "s1");
    mkdir_ok(fx, "s1", "s2");
    fx_start(fx);
    g_clear_pointer(&fx->engine, snap_engine_free);

    run_or_die(cmd1);
    run_or_die(cmd2);
    g_assert_cmpint(g_unlink(vdb), ==, 0);
    fx_start_opts(fx, &opts);
    /* Queued behind the reconcile: when it is done, so is the check. */
    error = do_delete(fx, "nosuch", 0);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_NOT_FOUND);
    errors = domain_file(fx, SNAP_DOMAIN_FILE_ERRORS);
    g_test_message("errors:\n%s", errors);
    g_assert_nonnull(
        strstr(errors, "reconcile: snapshot 's1' is missing from disk vda ("));
    g_assert_null(strstr(errors, "'s2' is missing"));
    g_assert_nonnull(strstr(errors, "reconcile: disk vda ("));
    g_assert_nonnull(strstr(errors,
                            "holds snapshot 'stray' that has no metadata; write its "
                            "<domainsnapshot> to create to redefine it"));
    g_assert_nonnull(strstr(errors, "reconcile: disk vdb ("));
    /* Nothing deleted. */
    assert_current(fx, "s2");
    assert_tags(fx, "vda.qcow2", "s2 stray");
}

static void
plant_journal(Fx *fx, const char *op, const char *snapshot)
{
    g_autofree char *dir = path_in(fx, "journal");
    g_autofree char *file = g_build_filename(dir, DOM ".json", NULL);
    g_autofree char *vda = path_in(fx, "vda.qcow2");
    g_autofree char *json = g_strdup_printf("{\"op\": \"%s\", \"snapshot\": \"%s\", "
                                            "\"disks\": [\"%s\"]}\n",
                                            op, snapshot, vda);

    g_assert_cmpint(g_mkdir_with_parents(dir, 0755), ==, 0);
    g_assert_true(g_file_set_contents(file, json, -1, NULL));
}

static void
test_journal_recovery(Fx *fx, gconstpointer data)
{
    g_autofree char *vda = path_in(fx, "vda.qcow2");
    g_autofree char *cmd = g_strdup_printf("qemu-img snapshot -c ghost %s", vda);
    g_autofree char *journal = path_in(fx, "journal/" DOM ".json");
    g_autofree char *errors = NULL;
    g_autoptr(GError) error = NULL;

    fx_one_disk(fx);
    fx_start(fx);
    mkdir_ok(fx, NULL, "s1");
    mkdir_ok(fx, "s1", "s2");
    g_clear_pointer(&fx->engine, snap_engine_free);

    /* A create that died after qemu-img, before its metadata. */
    run_or_die(cmd);
    plant_journal(fx, "create", "ghost");
    fx_start(fx);
    error = do_delete(fx, "nosuch", 0); /* queued behind the recovery */
    g_clear_error(&error);
    assert_tags(fx, "vda.qcow2", "s1 s2");
    g_assert_true(journal_clear_at(fx, journal));
    errors = domain_file(fx, SNAP_DOMAIN_FILE_ERRORS);
    g_assert_nonnull(
        strstr(errors, "recovered: rolled back the interrupted create of 'ghost'"));
    g_clear_pointer(&errors, g_free);
    g_clear_pointer(&fx->engine, snap_engine_free);

    /* A create that finished its metadata: kept. */
    plant_journal(fx, "create", "s2");
    fx_start(fx);
    error = do_delete(fx, "nosuch", 0);
    g_clear_error(&error);
    assert_tags(fx, "vda.qcow2", "s1 s2");
    g_assert_true(journal_clear_at(fx, journal));
    g_clear_pointer(&fx->engine, snap_engine_free);

    /* A delete of s1 interrupted after its disk: finished, s2 re-parented. */
    {
        g_autofree char *del = g_strdup_printf("qemu-img snapshot -d s1 %s", vda);

        run_or_die(del);
    }
    plant_journal(fx, "delete", "s1");
    fx_start(fx);
    error = do_delete(fx, "nosuch", 0);
    g_clear_error(&error);
    g_assert_false(snap_engine_snapshot_info(fx->engine, DOM, "s1", FALSE, NULL, NULL));
    g_assert_null(snap_file(fx, "s1"));
    assert_parent(fx, "s2", NULL);
    assert_consistent(fx, "s2");
    assert_tags(fx, "vda.qcow2", "s2");
    errors = domain_file(fx, SNAP_DOMAIN_FILE_ERRORS);
    g_test_message("errors:\n%s", errors);
    g_assert_nonnull(
        strstr(errors, "recovered: finished the interrupted delete of 's1'"));
    g_assert_true(journal_clear_at(fx, journal));
}

static guint
events_len(Fx *fx)
{
    guint n;

    g_mutex_lock(&fx->lock);
    n = fx->events->len;
    g_mutex_unlock(&fx->lock);
    return n;
}

/* The events from index @from on, joined with "|". */
static char *
events_since(Fx *fx, guint from)
{
    GString *s = g_string_new(NULL);

    g_mutex_lock(&fx->lock);
    for (guint i = from; i < fx->events->len; i++) {
        if (s->len)
            g_string_append_c(s, '|');
        g_string_append(s, fx->events->pdata[i]);
    }
    g_mutex_unlock(&fx->lock);
    return g_string_free(s, FALSE);
}

static void
test_events(Fx *fx, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    guint mark;

    fx_one_disk(fx);
    fx_start(fx);
    mkdir_ok(fx, NULL, "s1");
    fx_wait_event(fx, 5);

    /* Progress first (job), then what changed, then the reply. */
    mark = events_len(fx);
    mkdir_ok(fx, "s1", "s2");
    fx_wait_event(fx, mark + 6);
    {
        g_autofree char *got = events_since(fx, mark);

        g_assert_cmpstr(got, ==,
                        "DOMAIN_FILE|ADDED s2 parent=s1|XML s1|CURRENT|"
                        "DOMAIN_FILE|DONE");
    }

    mark = events_len(fx);
    mkdir_ok(fx, "s2", "s3");
    fx_wait_event(fx, mark + 6);
    mark = events_len(fx);
    error = do_delete(fx, "s2", 0);
    g_assert_no_error(error);
    fx_wait_event(fx, mark + 6);
    {
        g_autofree char *got = events_since(fx, mark);

        g_assert_cmpstr(got, ==,
                        "DOMAIN_FILE|MOVED s3 parent=s1 old=s2|XML s3|"
                        "REMOVED s2 old=s1|DOMAIN_FILE|DONE");
    }

    mark = events_len(fx);
    error = do_delete(fx, "s3", SNAP_DELETE_METADATA_ONLY);
    g_assert_no_error(error);
    fx_wait_event(fx, mark + 4);
    {
        g_autofree char *got = events_since(fx, mark);

        g_assert_cmpstr(got, ==, "REMOVED s3 old=s1|XML s1|CURRENT|DONE");
    }

    /* A failure: the errors line and the file change, then the reply. */
    mark = events_len(fx);
    error = do_mkdir(fx, NULL, "x");
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_NOT_CURRENT);
    fx_wait_event(fx, mark + 3);
    {
        g_autofree char *got = events_since(fx, mark);

        g_assert_cmpstr(got, ==, "ERROR|DOMAIN_FILE|DONE");
    }
}

/* A qemu-img that takes its time, so a running job can be watched. */
/* Points the engine at a qemu-img whose `snapshot` runs take @seconds
 * longer, so an operation can be caught while it runs. */
static void
fx_slow_qemu_img(Fx *fx, guint seconds)
{
    g_autofree char *script = path_in(fx, "slow-qemu-img");
    g_autofree char *text = g_strdup_printf("#!/bin/sh\n"
                                            "[ \"$1\" = snapshot ] && sleep %u\n"
                                            "exec qemu-img \"$@\"\n",
                                            seconds);

    g_assert_true(g_file_set_contents(script, text, -1, NULL));
    g_assert_cmpint(g_chmod(script, 0755), ==, 0);
    g_setenv("SNAPTREEFS_QEMU_IMG", script, TRUE);
}

/* Waits (10 s at most) for the job file to show an operation running; its
 * content. (transfer full) */
static char *
fx_wait_job(Fx *fx)
{
    gint64 deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    char *job = NULL;

    do {
        g_free(job);
        g_usleep(20 * 1000);
        job = domain_file(fx, SNAP_DOMAIN_FILE_JOB);
    } while (job[0] == '\0' && g_get_monotonic_time() < deadline);
    return job;
}

static void
test_job_file(Fx *fx, gconstpointer data)
{
    g_autofree char *job = NULL;
    g_autoptr(GError) error = NULL;

    fx_one_disk(fx);
    fx_slow_qemu_img(fx, 1);
    fx_start(fx);

    fx_arm(fx);
    snap_engine_create_async(fx->engine, DOM, NULL, "s1", NULL, on_done, fx);
    job = fx_wait_job(fx);
    g_assert_cmpstr(job, ==, "mkdir s1: qemu-img snapshot -c vda (1/1)\n");
    /* Reads are not blocked while it runs. */
    g_assert_true(snap_engine_domain_info(fx->engine, DOM, NULL));
    error = fx_wait(fx);
    g_assert_no_error(error);
    g_clear_pointer(&job, g_free);
    job = domain_file(fx, SNAP_DOMAIN_FILE_JOB);
    g_assert_cmpstr(job, ==, "");
    g_unsetenv("SNAPTREEFS_QEMU_IMG");
}

typedef struct {
    GMutex lock;
    GCond cond;
    gboolean done;
    GError *error;
    gint64 when;
} Waiter;

static void
on_waiter_done(const GError *error, gpointer data)
{
    Waiter *w = data;

    g_mutex_lock(&w->lock);
    w->error = error ? g_error_copy(error) : NULL;
    w->when = g_get_monotonic_time();
    w->done = TRUE;
    g_cond_broadcast(&w->cond);
    g_mutex_unlock(&w->lock);
}

/* Ctrl-C on an operation queued behind a slow one answers it at once,
 * with CANCELLED, and it never runs. */
static void
test_cancel_queued(Fx *fx, gconstpointer data)
{
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    g_autoptr(GError) error = NULL;
    g_autofree char *job = NULL;
    Waiter w = {.done = FALSE};
    gint64 deadline, t0;

    fx_one_disk(fx);
    fx_slow_qemu_img(fx, 2);
    fx_start(fx);
    g_mutex_init(&w.lock);
    g_cond_init(&w.cond);

    fx_arm(fx);
    snap_engine_create_async(fx->engine, DOM, NULL, "s1", NULL, on_done, fx);
    job = fx_wait_job(fx);
    g_assert_cmpstr(job, !=, "");
    deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;

    snap_engine_create_async(fx->engine, DOM, "s1", "s2", cancel, on_waiter_done, &w);
    t0 = g_get_monotonic_time();
    g_cancellable_cancel(cancel);
    g_mutex_lock(&w.lock);
    while (!w.done)
        g_assert_true(g_cond_wait_until(&w.cond, &w.lock, deadline));
    g_mutex_unlock(&w.lock);
    g_test_message("answered %" G_GINT64_FORMAT " ms after the cancel",
                   (w.when - t0) / 1000);
    g_assert_error(w.error, SNAP_ERROR, SNAP_ERROR_CANCELLED);
    /* s1 still runs: s2 was answered without waiting for it. */
    g_mutex_lock(&fx->lock);
    g_assert_false(fx->done);
    g_mutex_unlock(&fx->lock);

    error = fx_wait(fx);
    g_assert_no_error(error);
    snap_engine_flush(fx->engine, DOM);
    g_assert_false(snap_engine_snapshot_info(fx->engine, DOM, "s2", FALSE, NULL, NULL));
    assert_tags(fx, "vda.qcow2", "s1");
    g_clear_error(&w.error);
    g_mutex_clear(&w.lock);
    g_cond_clear(&w.cond);
    g_unsetenv("SNAPTREEFS_QEMU_IMG");
}

static gsize
rss_bytes(void)
{
    g_autofree char *text = NULL;
    unsigned long size = 0, resident = 0;

    if (!g_file_get_contents("/proc/self/statm", &text, NULL, NULL) ||
        sscanf(text, "%lu %lu", &size, &resident) != 2)
        return 0;
    return (gsize)resident * (gsize)sysconf(_SC_PAGESIZE);
}

static void
test_load_10k(Fx *fx, gconstpointer data)
{
    const guint n = 10000;
    g_autofree char *domxml = NULL;
    g_autofree char *dompath = NULL;
    SnapEngineOptions opts = {.no_reconcile = TRUE};
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) all = NULL;
    gsize rss0, rss1, xml_total = 0;
    gint64 t0, t1;
    SnapEngine *engine;

    fx_one_disk(fx);
    dompath = path_in(fx, "domains/" DOM ".xml");
    g_assert_true(g_file_get_contents(dompath, &domxml, NULL, NULL));
    /* A tree: 100 chains of 100, each snapshot embedding the domain. */
    for (guint i = 0; i < n; i++) {
        g_autofree char *name = g_strdup_printf("snap-%05u", i);
        g_autofree char *file = g_strconcat(name, ".xml", NULL);
        g_autofree char *parent = i % 100
                                      ? g_strdup_printf("<parent>\n    <name>snap-%05u"
                                                        "</name>\n  </parent>\n  ",
                                                        i - 1)
                                      : g_strdup("");
        g_autofree char *xml =
            g_strdup_printf("<domainsnapshot>\n  <name>%s</name>\n"
                            "  <state>shutoff</state>\n  %s"
                            "<creationTime>%u</creationTime>\n"
                            "  <memory snapshot='no'/>\n"
                            "  <disks>\n"
                            "    <disk name='vda' snapshot='internal'/>\n"
                            "  </disks>\n%s%s</domainsnapshot>\n",
                            name, parent, 1000000 + i, domxml,
                            i == n - 1 ? "  <active>1</active>\n" : "");

        write_snapshot_file(fx, file, xml);
    }
    rss0 = rss_bytes();
    t0 = g_get_monotonic_time();
    engine = snap_engine_new(fx->state, &opts, &error);
    t1 = g_get_monotonic_time();
    g_assert_no_error(error);
    rss1 = rss_bytes();
    all = snap_engine_list_snapshots(engine, DOM, NULL, SNAP_LIST_ALL);
    g_assert_cmpuint(all->len, ==, n);
    for (guint i = 0; i < all->len; i++)
        xml_total += ((SnapEntry *)all->pdata[i])->info.xml_size;
    {
        g_autofree char *cur = snap_engine_current(engine, DOM);
        g_autofree char *path = snap_engine_snapshot_path(engine, DOM, "snap-00150");

        g_assert_cmpstr(cur, ==, "snap-09999");
        g_assert_cmpstr(path, ==,
                        "snap-00100/snap-00101/snap-00102/snap-00103/snap-00104/"
                        "snap-00105/snap-00106/snap-00107/snap-00108/snap-00109/"
                        "snap-00110/snap-00111/snap-00112/snap-00113/snap-00114/"
                        "snap-00115/snap-00116/snap-00117/snap-00118/snap-00119/"
                        "snap-00120/snap-00121/snap-00122/snap-00123/snap-00124/"
                        "snap-00125/snap-00126/snap-00127/snap-00128/snap-00129/"
                        "snap-00130/snap-00131/snap-00132/snap-00133/snap-00134/"
                        "snap-00135/snap-00136/snap-00137/snap-00138/snap-00139/"
                        "snap-00140/snap-00141/snap-00142/snap-00143/snap-00144/"
                        "snap-00145/snap-00146/snap-00147/snap-00148/snap-00149/"
                        "snap-00150");
    }
    g_test_message("loaded %u snapshots in %.3f s; RSS +%.1f MiB = %.0f bytes/snapshot, "
                   "of which %.0f bytes of XML text; %.0f bytes beyond the XML",
                   n, (t1 - t0) / 1e6, (rss1 - rss0) / 1048576.0,
                   (double)(rss1 - rss0) / n, (double)xml_total / n,
                   ((double)(rss1 - rss0) - xml_total) / n);
    snap_engine_free(engine);
}

int
main(int argc, char **argv)
{
    g_autofree char *qemu_img = g_find_program_in_path("qemu-img");

    g_test_init(&argc, &argv, NULL);
    if (qemu_img == NULL) {
        g_print("1..0 # SKIP qemu-img not installed\n");
        return 0;
    }
#define ADD(path, fn) g_test_add("/engine/" path, Fx, NULL, fx_setup, fn, fx_teardown)
    ADD("mkdir", test_mkdir);
    ADD("delete", test_delete);
    ADD("delete-children", test_delete_children);
    ADD("revert", test_revert);
    ADD("revert-domain-def", test_revert_domain_def);
    ADD("two-disks-all-or-nothing", test_two_disks_all_or_nothing);
    ADD("create-xml", test_create_xml);
    ADD("refusals", test_refusals);
    ADD("load-repairs", test_load_repairs);
    ADD("reconcile", test_reconcile);
    ADD("journal-recovery", test_journal_recovery);
    ADD("events", test_events);
    ADD("job-file", test_job_file);
    ADD("cancel-queued", test_cancel_queued);
    ADD("load-10k", test_load_10k);
    return g_test_run();
}
