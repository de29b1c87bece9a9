/* test-snapshot-store.c: atomic metadata writes and removals. */
#include <signal.h>
#include <string.h>
#include <sys/resource.h>
#include <glib/gstdio.h>

#include "snap-error.h"
#include "snapshot-store.h"

static int
name_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The names in @dir, sorted, joined with spaces. */
static char *
dir_names(const char *dir)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    g_autoptr(GPtrArray) names = g_ptr_array_new();
    const char *name;

    g_assert_nonnull(d);
    while ((name = g_dir_read_name(d)) != NULL)
        g_ptr_array_add(names, (gpointer)name);
    g_ptr_array_sort(names, name_cmp);
    g_ptr_array_add(names, NULL);
    return g_strjoinv(" ", (char **)names->pdata);
}

static void
assert_content(const char *path, const char *expect)
{
    g_autofree char *text = NULL;

    g_assert_true(g_file_get_contents(path, &text, NULL, NULL));
    g_assert_cmpstr(text, ==, expect);
}

static void
test_write_replaces(void)
{
    g_autofree char *dir = g_dir_make_tmp("store-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "s1.xml", NULL);
    g_autoptr(GError) error = NULL;
    g_autofree char *listing = NULL;
    GStatBuf st;

    g_assert_true(snap_store_write_atomic(path, "first\n", 6, &error));
    g_assert_no_error(error);
    assert_content(path, "first\n");
    g_assert_true(snap_store_write_atomic(path, "second, longer\n", 15, &error));
    g_assert_no_error(error);
    assert_content(path, "second, longer\n");
    g_assert_true(snap_store_write_atomic(path, "", 0, &error));
    assert_content(path, "");
    g_assert_cmpint(g_stat(path, &st), ==, 0);
    g_assert_cmpint(st.st_mode & 0777, ==, 0644);

    listing = dir_names(dir);
    g_assert_cmpstr(listing, ==, "s1.xml");

    g_assert_true(snap_store_remove(path, &error));
    g_assert_false(g_file_test(path, G_FILE_TEST_EXISTS));
    /* Removing what is gone is success. */
    g_assert_true(snap_store_remove(path, &error));
    g_assert_no_error(error);
    g_assert_cmpint(g_rmdir(dir), ==, 0);
}

static void
test_failure_keeps_old(void)
{
    g_autofree char *dir = g_dir_make_tmp("store-XXXXXX", NULL);
    g_autofree char *path = g_build_filename(dir, "s1.xml", NULL);
    g_autofree char *big = g_strnfill(64 * 1024, 'x');
    g_autoptr(GError) error = NULL;
    g_autofree char *listing = NULL;
    struct rlimit old_limit, limit;

    g_assert_true(snap_store_write_atomic(path, "old\n", 4, &error));

    /* A file size limit makes write(2) fail with EFBIG even for root,
     * for whom permissions would not. */
    g_assert_cmpint(getrlimit(RLIMIT_FSIZE, &old_limit), ==, 0);
    limit = old_limit;
    limit.rlim_cur = 4096;
    signal(SIGXFSZ, SIG_IGN);
    g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &limit), ==, 0);
    g_assert_false(snap_store_write_atomic(path, big, strlen(big), &error));
    g_assert_cmpint(setrlimit(RLIMIT_FSIZE, &old_limit), ==, 0);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_FAILED);
    g_test_message("%s", error->message);
    g_clear_error(&error);

    assert_content(path, "old\n");
    listing = dir_names(dir);
    g_assert_cmpstr(listing, ==, "s1.xml");

    /* A directory that does not exist: nothing is created. */
    {
        g_autofree char *missing = g_build_filename(dir, "nodir", "s2.xml", NULL);

        g_assert_false(snap_store_write_atomic(missing, "x", 1, &error));
        g_assert_error(error, SNAP_ERROR, SNAP_ERROR_FAILED);
        g_clear_error(&error);
    }
    /* @path is a non-empty directory: rename(2) fails, the temp goes. */
    {
        g_autofree char *blocker = g_build_filename(dir, "blocked.xml", NULL);
        g_autofree char *inner = g_build_filename(blocker, "keep", NULL);
        g_autofree char *listing2 = NULL;

        g_assert_cmpint(g_mkdir(blocker, 0755), ==, 0);
        g_assert_true(g_file_set_contents(inner, "k", 1, NULL));
        g_assert_false(snap_store_write_atomic(blocker, "x", 1, &error));
        g_assert_nonnull(error);
        g_clear_error(&error);
        listing2 = dir_names(dir);
        g_assert_cmpstr(listing2, ==, "blocked.xml s1.xml");
        g_unlink(inner);
        g_rmdir(blocker);
    }
    g_unlink(path);
    g_rmdir(dir);
}

static void
test_paths(void)
{
    g_autofree char *dir = g_dir_make_tmp("store-XXXXXX", NULL);
    g_autofree char *path = snap_store_snapshot_path(dir, "vm1", "s1");
    g_autofree char *expect = g_build_filename(dir, "snapshots", "vm1", "s1.xml", NULL);
    g_autofree char *domdir = g_build_filename(dir, "snapshots", "vm1", NULL);
    g_autofree char *snapdir = g_build_filename(dir, "snapshots", NULL);
    g_autoptr(GError) error = NULL;

    g_assert_cmpstr(path, ==, expect);
    g_assert_true(snap_store_ensure_domain_dir(dir, "vm1", &error));
    g_assert_no_error(error);
    g_assert_true(g_file_test(domdir, G_FILE_TEST_IS_DIR));
    g_assert_true(snap_store_ensure_domain_dir(dir, "vm1", &error));
    g_assert_true(snap_store_write_atomic(path, "x", 1, &error));
    g_assert_true(snap_store_remove(path, &error));
    g_rmdir(domdir);
    g_rmdir(snapdir);
    g_rmdir(dir);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/snapshot-store/write-replaces", test_write_replaces);
    g_test_add_func("/snapshot-store/failure-keeps-old", test_failure_keeps_old);
    g_test_add_func("/snapshot-store/paths", test_paths);
    return g_test_run();
}
