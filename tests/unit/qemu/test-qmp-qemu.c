/* test-qmp-qemu.c: the QMP client against a real qemu-system-x86_64 (skipped without
 * one). */
#include <signal.h>
#include <string.h>
#include <sys/prctl.h>
#include <glib/gstdio.h>

#include "qemu-img.h"
#include "qmp-client.h"
#include "snap-error.h"

#define TIMEOUT_MS 10000

typedef struct {
    char *dir;
    char *image;
    char *sock;
    char *pidfile;
    GSubprocess *proc;
    QmpClient *qmp;
    GPtrArray *events; /* names seen by the event function */
} Qemu;

static const char *
qemu_binary(void)
{
    const char *bin = g_getenv("SNAPTREEFS_QEMU_SYSTEM");

    return bin && *bin ? bin : "qemu-system-x86_64";
}

/* QEMU must not outlive a test that aborts half-way: it gets SIGKILL when
 * the test process dies, whatever the way. That is why it is not
 * daemonized here (a daemon's fork drops the death signal). */
static void
die_with_parent(gpointer data)
{
    prctl(PR_SET_PDEATHSIG, SIGKILL);
}

static void
record_event(QmpClient *c, const QmpEvent *event, gpointer events)
{
    g_ptr_array_add(events, g_strdup(event->name));
}

static void
qemu_setup(Qemu *q, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GSubprocessLauncher) launcher = NULL;
    g_autofree char *path = g_find_program_in_path(qemu_binary());
    g_autofree char *qmp_arg = NULL;
    g_autofree char *file_arg = NULL;
    g_autofree char *log = NULL;
    gint64 deadline;

    q->events = g_ptr_array_new_with_free_func(g_free);
    if (path == NULL)
        return; /* each test skips */
    q->dir = g_dir_make_tmp("qmp-qemu-XXXXXX", &error);
    g_assert_no_error(error);
    q->image = g_build_filename(q->dir, "disk.qcow2", NULL);
    q->sock = g_build_filename(q->dir, "qmp.sock", NULL);
    q->pidfile = g_build_filename(q->dir, "qemu.pid", NULL);
    log = g_build_filename(q->dir, "qemu.log", NULL);
    g_assert_true(qemu_img_create(q->image, "qcow2", 16 * 1024 * 1024, &error));
    g_assert_no_error(error);

    qmp_arg = g_strdup_printf("unix:%s,server=on,wait=off", q->sock);
    file_arg = g_strdup_printf("driver=file,filename=%s,node-name=file0", q->image);
    launcher = g_subprocess_launcher_new(G_SUBPROCESS_FLAGS_STDOUT_SILENCE);
    g_subprocess_launcher_set_stderr_file_path(launcher, log);
    g_subprocess_launcher_set_child_setup(launcher, die_with_parent, NULL, NULL);
    /* TCG, not KVM: the same on every host, and fast enough with no guest
     * code to run but the BIOS. */
    q->proc = g_subprocess_launcher_spawn(
        launcher, &error, path, "-M", "pc", "-accel", "tcg", "-m", "32", "-nodefaults",
        "-display", "none", "-pidfile", q->pidfile, "-qmp", qmp_arg, "-blockdev",
        file_arg, "-blockdev", "driver=qcow2,file=file0,node-name=disk0", "-device",
        "virtio-blk-pci,drive=disk0", NULL);
    g_assert_no_error(error);

    /* QEMU creates the socket early; the greeting follows once it runs. */
    deadline = g_get_monotonic_time() + TIMEOUT_MS * G_TIME_SPAN_MILLISECOND;
    while (!g_file_test(q->sock, G_FILE_TEST_EXISTS)) {
        g_autofree char *out = NULL;

        if (g_get_monotonic_time() > deadline ||
            g_subprocess_get_identifier(q->proc) == NULL) {
            g_file_get_contents(log, &out, NULL, NULL);
            g_error("QEMU did not create %s: %s", q->sock, out ? out : "");
        }
        g_usleep(10 * G_TIME_SPAN_MILLISECOND);
    }
    q->qmp = qmp_client_connect(q->sock, TIMEOUT_MS, &error);
    g_assert_no_error(error);
    qmp_client_set_event_func(q->qmp, record_event, g_ptr_array_ref(q->events),
                              (GDestroyNotify)g_ptr_array_unref);
}

static void
remove_dir(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);

    for (const char *name; d && (name = g_dir_read_name(d));) {
        g_autofree char *path = g_build_filename(dir, name, NULL);

        g_unlink(path);
    }
    g_rmdir(dir);
}

static void
qemu_teardown(Qemu *q, gconstpointer data)
{
    g_clear_pointer(&q->qmp, qmp_client_free);
    if (q->proc) {
        /* Whatever the test did: its QEMU goes. */
        g_subprocess_force_exit(q->proc);
        g_subprocess_wait(q->proc, NULL, NULL);
        g_clear_object(&q->proc);
    }
    if (q->dir)
        remove_dir(q->dir);
    g_free(q->dir);
    g_free(q->image);
    g_free(q->sock);
    g_free(q->pidfile);
    g_ptr_array_unref(q->events);
}

static gboolean
skipped(Qemu *q)
{
    if (q->qmp == NULL) {
        g_test_skip("no qemu-system-x86_64");
        return TRUE;
    }
    return FALSE;
}

static char *
run_status(Qemu *q)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret =
        qmp_client_execute(q->qmp, "query-status", NULL, TIMEOUT_MS, &error);

    g_assert_no_error(error);
    return g_strdup(json_object_get_string_member(json_node_get_object(ret), "status"));
}

static void
execute_ok(Qemu *q, const char *command)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret =
        qmp_client_execute(q->qmp, command, NULL, TIMEOUT_MS, &error);

    g_assert_no_error(error);
    g_assert_nonnull(ret);
}

static void
expect_event(Qemu *q, const char *name)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(QmpEvent) event = qmp_client_wait_event(q->qmp, qmp_event_match_name,
                                                      (gpointer)name, TIMEOUT_MS, &error);

    g_assert_no_error(error);
    g_assert_cmpstr(event->name, ==, name);
    g_assert_cmpint(event->timestamp_us, >, 0);
}

static void
test_status(Qemu *q, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;
    g_autofree char *status = NULL;
    guint major = 0;

    if (skipped(q))
        return;
    qmp_client_get_version(q->qmp, &major, NULL, NULL);
    g_assert_cmpuint(major, >=, 2);
    status = run_status(q);
    g_assert_cmpstr(status, ==, "running");
    g_clear_pointer(&status, g_free);

    qmp_client_clear_events(q->qmp);
    execute_ok(q, "stop");
    expect_event(q, "STOP");
    status = run_status(q);
    g_assert_cmpstr(status, ==, "paused");
    g_clear_pointer(&status, g_free);

    execute_ok(q, "cont");
    expect_event(q, "RESUME");
    status = run_status(q);
    g_assert_cmpstr(status, ==, "running");

    ret = qmp_client_execute(q->qmp, "no-such-command", NULL, TIMEOUT_MS, &error);
    g_assert_null(ret);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==, "The command no-such-command has not been found");
    g_assert_cmpstr(qmp_client_last_error_class(q->qmp), ==, "CommandNotFound");
    g_assert_true(qmp_client_is_connected(q->qmp));
}

static JsonNode *
snapshot_args(const char *job_id, const char *tag, const char *vmstate)
{
    g_autoptr(JsonBuilder) b = json_builder_new();

    json_builder_begin_object(b);
    json_builder_set_member_name(b, "job-id");
    json_builder_add_string_value(b, job_id);
    json_builder_set_member_name(b, "tag");
    json_builder_add_string_value(b, tag);
    if (vmstate) {
        json_builder_set_member_name(b, "vmstate");
        json_builder_add_string_value(b, vmstate);
    }
    json_builder_set_member_name(b, "devices");
    json_builder_begin_array(b);
    json_builder_add_string_value(b, "disk0");
    json_builder_end_array(b);
    json_builder_end_object(b);
    return json_builder_get_root(b);
}

static void
record_progress(guint64 current, guint64 total, gpointer calls)
{
    g_assert_cmpuint(current, <=, total);
    (*(guint *)calls)++;
}

static char *
image_tags(Qemu *q)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) snaps = qemu_img_info(q->image, "qcow2", NULL, NULL, &error);
    GString *s = g_string_new(NULL);

    g_assert_no_error(error);
    for (guint i = 0; i < snaps->len; i++)
        g_string_append_printf(s, "%s%s", i ? " " : "",
                               ((QemuImgSnapshot *)snaps->pdata[i])->name);
    return g_string_free(s, FALSE);
}

static void
assert_no_jobs(Qemu *q)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) jobs =
        qmp_client_execute(q->qmp, "query-jobs", NULL, TIMEOUT_MS, &error);

    g_assert_no_error(error);
    g_assert_cmpuint(json_array_get_length(json_node_get_array(jobs)), ==, 0);
}

static void
test_snapshot_jobs(Qemu *q, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *tags = NULL;
    g_autofree char *status = NULL;
    guint calls = 0;

    if (skipped(q))
        return;
    if (!qmp_client_version_at_least(q->qmp, 6, 0)) {
        g_test_skip("snapshot-save needs QEMU >= 6.0");
        return;
    }

    g_assert_true(qmp_client_run_job(q->qmp, "snapshot-save",
                                     snapshot_args("save-t1", "t1", "disk0"), "save-t1",
                                     TIMEOUT_MS, record_progress, &calls, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(calls, >=, 1);
    tags = image_tags(q);
    g_assert_cmpstr(tags, ==, "t1");
    g_clear_pointer(&tags, g_free);
    status = run_status(q);
    g_assert_cmpstr(status, ==, "running");
    g_clear_pointer(&status, g_free);
    assert_no_jobs(q);

    /* A failed job concludes with QEMU's message, and is dismissed too:
     * its id can be used again at once. */
    g_assert_false(qmp_client_run_job(q->qmp, "snapshot-save",
                                      snapshot_args("save-t1", "t1", "disk0"), "save-t1",
                                      TIMEOUT_MS, NULL, NULL, NULL, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_true(g_str_has_prefix(error->message, "Snapshot 't1' already exists"));
    g_assert_null(qmp_client_last_error_class(q->qmp));
    g_clear_error(&error);
    assert_no_jobs(q);

    g_assert_false(qmp_client_run_job(q->qmp, "snapshot-save",
                                      snapshot_args("save-t2", "t2", "nosuch"), "save-t2",
                                      TIMEOUT_MS, NULL, NULL, NULL, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_nonnull(strstr(error->message, "'nosuch'"));
    g_clear_error(&error);

    g_assert_true(qmp_client_run_job(q->qmp, "snapshot-load",
                                     snapshot_args("load-t1", "t1", "disk0"), "load-t1",
                                     TIMEOUT_MS, NULL, NULL, NULL, &error));
    g_assert_no_error(error);
    status = run_status(q);
    g_assert_cmpstr(status, ==, "running");
    g_clear_pointer(&status, g_free);

    g_assert_true(qmp_client_run_job(q->qmp, "snapshot-delete",
                                     snapshot_args("delete-t1", "t1", NULL), "delete-t1",
                                     TIMEOUT_MS, NULL, NULL, NULL, &error));
    g_assert_no_error(error);
    tags = image_tags(q);
    g_assert_cmpstr(tags, ==, "");
    g_clear_pointer(&tags, g_free);

    /* Loading what is not there fails, and leaves the VM stopped. */
    g_assert_false(qmp_client_run_job(q->qmp, "snapshot-load",
                                      snapshot_args("load-t1", "t1", "disk0"), "load-t1",
                                      TIMEOUT_MS, NULL, NULL, NULL, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_true(g_str_has_prefix(error->message, "Snapshot 't1' does not exist"));
    assert_no_jobs(q);
    g_assert_true(qmp_client_is_connected(q->qmp));
}

static void
test_quit(Qemu *q, gconstpointer data)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(JsonNode) ret = NULL;
    g_autofree char *pid_text = NULL;

    if (skipped(q))
        return;
    /* The pidfile names the process we started. */
    g_assert_true(g_file_get_contents(q->pidfile, &pid_text, NULL, &error));
    g_assert_cmpstr(g_strstrip(pid_text), ==, g_subprocess_get_identifier(q->proc));

    execute_ok(q, "quit");
    expect_event(q, "SHUTDOWN");
    ret = qmp_client_execute(q->qmp, "query-status", NULL, TIMEOUT_MS, &error);
    g_assert_null(ret);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==, "QEMU closed the monitor connection");
    g_assert_false(qmp_client_is_connected(q->qmp));
    g_assert_true(g_subprocess_wait(q->proc, NULL, &error));
    g_assert_true(g_subprocess_get_if_exited(q->proc));
    g_assert_cmpint(g_subprocess_get_exit_status(q->proc), ==, 0);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);

    g_test_add("/qmp-qemu/status", Qemu, NULL, qemu_setup, test_status, qemu_teardown);
    g_test_add("/qmp-qemu/snapshot-jobs", Qemu, NULL, qemu_setup, test_snapshot_jobs,
               qemu_teardown);
    g_test_add("/qmp-qemu/quit", Qemu, NULL, qemu_setup, test_quit, qemu_teardown);
    return g_test_run();
}
