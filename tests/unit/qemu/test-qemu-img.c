/* test-qemu-img.c: the qemu-img wrappers against real images in a temp dir. */
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>

#include "qemu-img.h"
#include "snap-error.h"

static char *tmpdir;

static char *
tags(GPtrArray *snaps)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < snaps->len; i++) {
        if (i)
            g_string_append_c(s, ' ');
        g_string_append(s, ((QemuImgSnapshot *)snaps->pdata[i])->name);
    }
    return g_string_free(s, FALSE);
}

static char *
list_tags(const char *file)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) snaps = qemu_img_info(file, "qcow2", NULL, NULL, &error);

    g_assert_no_error(error);
    g_assert_nonnull(snaps);
    return tags(snaps);
}

static void
test_snapshot_cycle(void)
{
    g_autofree char *file = g_build_filename(tmpdir, "a.qcow2", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) snaps = NULL;
    guint64 size = 0;
    gint64 before = g_get_real_time() / G_USEC_PER_SEC;

    g_assert_true(qemu_img_create(file, "qcow2", 1024 * 1024, &error));
    g_assert_no_error(error);
    snaps = qemu_img_info(file, "qcow2", &size, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(snaps->len, ==, 0);
    g_assert_cmpuint(size, ==, 1024 * 1024);
    g_clear_pointer(&snaps, g_ptr_array_unref);

    g_assert_true(qemu_img_snapshot_create(file, "s1", NULL, &error));
    g_assert_true(qemu_img_snapshot_create(file, "s two", NULL, &error));
    g_assert_no_error(error);
    snaps = qemu_img_info(file, "qcow2", NULL, NULL, &error);
    g_assert_cmpuint(snaps->len, ==, 2);
    g_assert_cmpstr(((QemuImgSnapshot *)snaps->pdata[1])->name, ==, "s two");
    g_assert_cmpint(((QemuImgSnapshot *)snaps->pdata[0])->date_sec, >=, before - 1);
    g_assert_cmpuint(((QemuImgSnapshot *)snaps->pdata[0])->vm_state_size, ==, 0);

    g_assert_true(qemu_img_snapshot_apply(file, "s1", NULL, &error));
    g_assert_no_error(error);
    g_assert_true(qemu_img_snapshot_delete(file, "s1", NULL, &error));
    g_assert_no_error(error);
    {
        g_autofree char *left = list_tags(file);

        g_assert_cmpstr(left, ==, "s two");
    }

    /* A missing tag: qemu-img's own complaint comes back. */
    g_assert_false(qemu_img_snapshot_apply(file, "nosuch", NULL, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_test_message("apply nosuch: %s", error->message);
    g_assert_nonnull(strstr(error->message, "nosuch"));
    g_clear_error(&error);
    g_unlink(file);
}

static void
test_missing_file(void)
{
    g_autofree char *file = g_build_filename(tmpdir, "absent.qcow2", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) snaps = NULL;

    g_assert_false(qemu_img_snapshot_create(file, "s1", NULL, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_test_message("%s", error->message);
    /* stderr, stripped: names the file, no trailing newline */
    g_assert_nonnull(strstr(error->message, "absent.qcow2"));
    g_assert_false(g_str_has_suffix(error->message, "\n"));
    g_clear_error(&error);

    snaps = qemu_img_info(file, "qcow2", NULL, NULL, &error);
    g_assert_null(snaps);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_nonnull(strstr(error->message, "absent.qcow2"));
}

static gpointer
cancel_later(gpointer data)
{
    g_usleep(300 * 1000);
    g_cancellable_cancel(data);
    return NULL;
}

static void
test_binary_override(void)
{
    g_autofree char *script = g_build_filename(tmpdir, "fake-qemu-img", NULL);
    g_autofree char *silent = g_build_filename(tmpdir, "silent-qemu-img", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GCancellable) cancel = g_cancellable_new();
    GThread *thread;
    gint64 start;

    g_assert_true(g_file_set_contents(script, "#!/bin/sh\nsleep 30\n", -1, NULL));
    g_assert_cmpint(g_chmod(script, 0755), ==, 0);
    g_assert_true(g_file_set_contents(silent, "#!/bin/sh\nexit 3\n", -1, NULL));
    g_assert_cmpint(g_chmod(silent, 0755), ==, 0);

    g_setenv("SNAPTREEFS_QEMU_IMG", silent, TRUE);
    g_assert_cmpstr(qemu_img_binary(), ==, silent);
    g_assert_false(qemu_img_snapshot_create("x", "s1", NULL, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_cmpstr(error->message, ==, "qemu-img exited with status 3");
    g_clear_error(&error);

    /* Cancelling kills the child rather than waiting 30 s for it. */
    g_setenv("SNAPTREEFS_QEMU_IMG", script, TRUE);
    thread = g_thread_new("cancel", cancel_later, cancel);
    start = g_get_monotonic_time();
    g_assert_false(qemu_img_snapshot_create("x", "s1", cancel, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_CANCELLED);
    g_assert_cmpint(g_get_monotonic_time() - start, <, 10 * G_USEC_PER_SEC);
    g_thread_join(thread);
    g_clear_error(&error);

    /* Cancelled before it starts: nothing runs. */
    g_assert_false(qemu_img_snapshot_create("x", "s1", cancel, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_CANCELLED);
    g_unsetenv("SNAPTREEFS_QEMU_IMG");
    g_unlink(script);
    g_unlink(silent);
}

/* qcow2 IDs are "1", "2", ...: a tag of digits must still mean its own
 * snapshot (apply goes by that snapshot's ID), and a tag that is another
 * snapshot's ID is reported as one QEMU's snapshot-load would misread. */
static void
test_digit_tags(void)
{
    g_autofree char *file = g_build_filename(tmpdir, "digits.qcow2", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) snaps = NULL;

    g_assert_true(qemu_img_create(file, "qcow2", 1024 * 1024, &error));
    g_assert_true(qemu_img_snapshot_create(file, "base", NULL, &error)); /* ID 1 */
    g_assert_true(qemu_img_snapshot_create(file, "2", NULL, &error));    /* ID 2 */
    g_assert_true(qemu_img_snapshot_create(file, "1", NULL, &error));    /* ID 3 */
    g_assert_no_error(error);
    snaps = qemu_img_info(file, "qcow2", NULL, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpstr(((QemuImgSnapshot *)snaps->pdata[0])->id, ==, "1");
    g_assert_cmpstr(((QemuImgSnapshot *)snaps->pdata[2])->id, ==, "3");

    g_assert_true(qemu_img_tag_is_exact(file, "base", NULL, &error));
    g_assert_true(qemu_img_tag_is_exact(file, "2", NULL, &error)); /* its own ID */
    g_assert_true(qemu_img_tag_is_exact(file, "10", NULL, &error));
    g_assert_no_error(error);
    g_assert_false(qemu_img_tag_is_exact(file, "1", NULL, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, "'base'"));
    g_clear_error(&error);

    g_assert_true(qemu_img_snapshot_apply(file, "1", NULL, &error));
    g_assert_no_error(error);
    g_assert_false(qemu_img_snapshot_apply(file, "3", NULL, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
}

/* A raw disk whose guest wrote a qcow2 header naming another file as
 * its backing: read as the raw disk the domain says it is, it has no
 * backing chain and no snapshot table, and nothing reads the other file. */
static void
test_raw_with_qcow2_header(void)
{
    g_autofree char *secret = g_build_filename(tmpdir, "secret.qcow2", NULL);
    g_autofree char *header = g_build_filename(tmpdir, "header.qcow2", NULL);
    g_autofree char *raw = g_build_filename(tmpdir, "guest.raw", NULL);
    g_autofree char *bytes = NULL;
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) files = NULL;
    g_autoptr(GPtrArray) formats = NULL;
    g_autoptr(GPtrArray) snaps = NULL;
    guint64 size = 0;
    gsize len;

    g_assert_true(qemu_img_create(secret, "qcow2", 1024 * 1024, &error));
    g_assert_true(qemu_img_create_overlay(header, secret, "qcow2", &error));
    g_assert_true(qemu_img_snapshot_create(header, "planted", NULL, &error));
    g_assert_no_error(error);
    /* The guest's disk holds those bytes (a raw disk of 4 MiB). */
    g_assert_true(g_file_get_contents(header, &bytes, &len, &error));
    g_assert_true(g_file_set_contents(raw, bytes, len, &error));
    g_assert_cmpint(truncate(raw, 4 * 1024 * 1024), ==, 0);

    g_assert_true(qemu_img_chain(raw, "raw", &files, &formats, NULL, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(files->len, ==, 1);
    g_assert_cmpstr(files->pdata[0], ==, raw);
    g_assert_cmpstr(formats->pdata[0], ==, "raw");

    snaps = qemu_img_info(raw, "raw", &size, NULL, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(snaps->len, ==, 0);
    g_assert_cmpuint(size, ==, 4 * 1024 * 1024);
    g_unlink(raw);
    g_unlink(header);
    g_unlink(secret);
}

int
main(int argc, char **argv)
{
    g_autofree char *qemu_img = g_find_program_in_path("qemu-img");
    int ret;

    g_test_init(&argc, &argv, NULL);
    if (qemu_img == NULL) {
        g_print("1..0 # SKIP qemu-img not installed\n");
        return 0;
    }
    tmpdir = g_dir_make_tmp("qemu-img-XXXXXX", NULL);
    g_test_add_func("/qemu-img/snapshot-cycle", test_snapshot_cycle);
    g_test_add_func("/qemu-img/missing-file", test_missing_file);
    g_test_add_func("/qemu-img/digit-tags", test_digit_tags);
    g_test_add_func("/qemu-img/raw-with-qcow2-header", test_raw_with_qcow2_header);
    g_test_add_func("/qemu-img/binary-override", test_binary_override);
    ret = g_test_run();
    g_rmdir(tmpdir);
    return ret;
}
