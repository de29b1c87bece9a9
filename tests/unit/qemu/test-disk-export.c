/* test-disk-export.c: SEEK_DATA/SEEK_HOLE walks, qemu-nbd command lines, and
 * real exports: reads, sharing, retirement and the idle stop. */
#include <string.h>
#include <glib/gstdio.h>

#include "disk-export.h"
#include "qemu-img.h"
#include "snap-error.h"

#define MIB (1024 * 1024)

static char *tmpdir;

/* ---- disk_seek over a table of extents ---------------------------------------- */

typedef struct {
    guint64 start;
    guint64 len;
    gboolean hole;
} Extent;

typedef struct {
    const Extent *extents;
    gsize n;
    guint calls;
} ExtentTable;

static gboolean
table_extent(gpointer data, guint64 offset, gboolean *hole, guint64 *length,
             GError **error)
{
    ExtentTable *t = data;

    t->calls++;
    for (gsize i = 0; i < t->n; i++) {
        const Extent *e = &t->extents[i];

        if (offset >= e->start && offset < e->start + e->len) {
            *hole = e->hole;
            *length = e->start + e->len - offset;
            return TRUE;
        }
    }
    g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_QEMU, "no extent");
    return FALSE;
}

/* Returns the offset, or -1 for ENXIO. */
static gint64
seek(ExtentTable *t, guint64 size, guint64 offset, gboolean data)
{
    g_autoptr(GError) error = NULL;
    guint64 out = 0;
    gboolean found = FALSE;

    g_assert_true(disk_seek(size, offset, data, table_extent, t, &out, &found, &error));
    g_assert_no_error(error);
    return found ? (gint64)out : -1;
}

static void
test_seek(void)
{
    /* data [0,10) hole [10,20) data [20,30) hole [30,40) */
    static const Extent extents[] = {
        {0, 10, FALSE}, {10, 10, TRUE}, {20, 10, FALSE}, {30, 10, TRUE}};
    ExtentTable t = {extents, G_N_ELEMENTS(extents), 0};

    g_assert_cmpint(seek(&t, 40, 0, TRUE), ==, 0);
    g_assert_cmpint(seek(&t, 40, 5, TRUE), ==, 5);
    g_assert_cmpint(seek(&t, 40, 10, TRUE), ==, 20);
    g_assert_cmpint(seek(&t, 40, 15, TRUE), ==, 20);
    g_assert_cmpint(seek(&t, 40, 30, TRUE), ==, -1);
    g_assert_cmpint(seek(&t, 40, 40, TRUE), ==, -1);
    g_assert_cmpint(seek(&t, 40, 0, FALSE), ==, 10);
    g_assert_cmpint(seek(&t, 40, 12, FALSE), ==, 12);
    g_assert_cmpint(seek(&t, 40, 25, FALSE), ==, 30);
    g_assert_cmpint(seek(&t, 40, 39, FALSE), ==, 39);
    g_assert_cmpint(seek(&t, 40, 40, FALSE), ==, -1);
    g_assert_cmpint(seek(&t, 40, 100, FALSE), ==, -1);
}

static void
test_seek_all_data(void)
{
    static const Extent extents[] = {{0, 64, FALSE}};
    ExtentTable t = {extents, G_N_ELEMENTS(extents), 0};

    /* The end of the disk is the implicit hole. */
    g_assert_cmpint(seek(&t, 64, 0, FALSE), ==, 64);
    g_assert_cmpint(seek(&t, 64, 63, TRUE), ==, 63);
    g_assert_cmpuint(t.calls, ==, 2);
}

static void
test_seek_error(void)
{
    static const Extent extents[] = {{0, 10, TRUE}};
    ExtentTable t = {extents, G_N_ELEMENTS(extents), 0};
    g_autoptr(GError) error = NULL;
    guint64 out = 7;
    gboolean found = FALSE;

    /* [10, 20) has no extent: the walk fails with its error. */
    g_assert_false(disk_seek(20, 0, TRUE, table_extent, &t, &out, &found, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
}

/* ---- command line ------------------------------------------------------------------ */

static void
test_argv(void)
{
    DiskExportSource src = {"/a,b/disk.qcow2", "qcow2", "s,1"};
    g_auto(GStrv) argv = disk_export_argv("/run/x.sock", &src);
    g_autofree char *line = g_strjoinv(" ", argv);

    g_assert_cmpstr(argv[0], ==, disk_export_binary());
    /* Commas in values are doubled, as QEMU's option syntax wants. */
    g_assert_cmpstr(line, ==,
                    "qemu-nbd --read-only --shared=0 --socket=/run/x.sock --image-opts "
                    "driver=qcow2,force-share=on,file.driver=file,"
                    "file.filename=/a,,b/disk.qcow2 --load-snapshot=snapshot.name=s,,1");

    src.snapshot = NULL;
    src.format = "raw";
    g_clear_pointer(&argv, g_strfreev);
    argv = disk_export_argv("/run/x.sock", &src);
    g_assert_cmpuint(g_strv_length(argv), ==, 6);
    g_assert_cmpstr(
        argv[5], ==,
        "driver=raw,force-share=on,file.driver=file,file.filename=/a,,b/disk.qcow2");
}

/* ---- real exports --------------------------------------------------------------- */

static void
run_ok(const char *const *argv)
{
    g_autoptr(GError) error = NULL;
    int status = 0;

    g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL,
                               G_SPAWN_SEARCH_PATH | G_SPAWN_STDOUT_TO_DEV_NULL, NULL,
                               NULL, NULL, NULL, &status, &error));
    g_assert_no_error(error);
    g_assert_true(g_spawn_check_wait_status(status, NULL));
}

/* An 8 MiB qcow2 with snapshot "s1" holding 0x11 over its first MiB, and
 * 0x22 written over it after. */
static char *
make_image(const char *name)
{
    char *file = g_build_filename(tmpdir, name, NULL);
    g_autoptr(GError) error = NULL;

    g_assert_true(qemu_img_create(file, "qcow2", 8 * MIB, &error));
    g_assert_no_error(error);
    run_ok((const char *const[]){"qemu-io", "-f", "qcow2", "-c", "write -P 0x11 0 1M",
                                 file, NULL});
    g_assert_true(qemu_img_snapshot_create(file, "s1", NULL, &error));
    g_assert_no_error(error);
    run_ok((const char *const[]){"qemu-io", "-f", "qcow2", "-c", "write -P 0x22 0 1M",
                                 file, NULL});
    return file;
}

/* disk_reader_read() into @buf: the count read, -1 on error. */
static gssize
read_into(DiskReader *reader, void *buf, gsize count, guint64 offset, GError **error)
{
    g_autoptr(GBytes) bytes = disk_reader_read(reader, count, offset, error);
    gsize n;
    gconstpointer data;

    if (bytes == NULL)
        return -1;
    data = g_bytes_get_data(bytes, &n);
    g_assert_cmpuint(n, <=, count);
    if (n > 0)
        memcpy(buf, data, n);
    return (gssize)n;
}

static gboolean
all_bytes(const guint8 *buf, gsize len, guint8 byte)
{
    for (gsize i = 0; i < len; i++)
        if (buf[i] != byte)
            return FALSE;
    return TRUE;
}

static void
test_export_read(void)
{
    g_autofree char *file = make_image("read.qcow2");
    g_autofree char *run = g_build_filename(tmpdir, "run-read", NULL);
    DiskExports *exports = disk_exports_new(run, 60000);
    DiskExportSource snap = {file, "qcow2", "s1"};
    DiskExportSource active = {file, "qcow2", NULL};
    g_autoptr(GError) error = NULL;
    g_autofree guint8 *buf = g_malloc(2 * MIB);
    DiskReader *a, *b, *c;
    guint64 out = 0;
    gboolean found = FALSE;

    a = disk_exports_open(exports, "d/s1", &snap, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(disk_reader_size(a), ==, 8 * MIB);
    /* A second reader of the same owner and source shares the export;
     * the active layer is another. */
    b = disk_exports_open(exports, "d/s1", &snap, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(disk_exports_count(exports), ==, 1);
    c = disk_exports_open(exports, "d/active", &active, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(disk_exports_count(exports), ==, 2);

    /* Sequential reads (the second one served from what was read ahead),
     * then one across the end. */
    g_assert_cmpint(read_into(a, buf, 512 * 1024, 0, &error), ==, 512 * 1024);
    g_assert_true(all_bytes(buf, 512 * 1024, 0x11));
    g_assert_cmpint(read_into(a, buf, 512 * 1024, 512 * 1024, &error), ==, 512 * 1024);
    g_assert_true(all_bytes(buf, 512 * 1024, 0x11));
    g_assert_cmpint(read_into(a, buf, 2 * MIB, 0, &error), ==, 2 * MIB);
    g_assert_true(all_bytes(buf, MIB, 0x11));
    g_assert_true(all_bytes(buf + MIB, MIB, 0));
    g_assert_cmpint(read_into(b, buf, 2 * MIB, 7 * MIB, &error), ==, MIB);
    g_assert_cmpint(read_into(b, buf, 2 * MIB, 8 * MIB, &error), ==, 0);
    g_assert_cmpint(read_into(c, buf, MIB, 0, &error), ==, MIB);
    g_assert_true(all_bytes(buf, MIB, 0x22));
    g_assert_no_error(error);

    /* One MiB of data in 8, at the snapshot as in the active layer. */
    g_assert_true(disk_reader_allocated(a, &out, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(out, ==, MIB);
    g_assert_true(disk_reader_allocated(c, &out, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(out, ==, MIB);

    g_assert_true(disk_reader_seek(a, 0, FALSE, &out, &found, &error));
    g_assert_true(found);
    g_assert_cmpuint(out, ==, MIB);
    g_assert_true(disk_reader_seek(a, MIB, TRUE, &out, &found, &error));
    g_assert_false(found);
    g_assert_no_error(error);

    disk_reader_close(a);
    disk_reader_close(b);
    disk_reader_close(c);
    disk_exports_free(exports);
    /* Every process is gone and its files with it. */
    g_assert_cmpint(g_rmdir(run), ==, 0);
    g_unlink(file);
}

/* An 8 MiB qcow2 @name with 64 KiB written every @stride bytes, each
 * piece filled with @byte_at(its offset). (transfer full: the path) */
static char *
make_pieces_image(const char *name, guint64 stride, guint8 (*byte_at)(guint64 offset))
{
    char *file = g_build_filename(tmpdir, name, NULL);
    g_autoptr(GPtrArray) argv = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;

    g_assert_true(qemu_img_create(file, "qcow2", 8 * MIB, &error));
    g_assert_no_error(error);
    g_ptr_array_add(argv, g_strdup("qemu-io"));
    g_ptr_array_add(argv, g_strdup("-f"));
    g_ptr_array_add(argv, g_strdup("qcow2"));
    for (guint64 off = 0; off < 8 * MIB; off += stride) {
        g_ptr_array_add(argv, g_strdup("-c"));
        g_ptr_array_add(argv, g_strdup_printf("write -P %u %" G_GUINT64_FORMAT " 64k",
                                              byte_at(off), off));
    }
    g_ptr_array_add(argv, g_strdup(file));
    g_ptr_array_add(argv, NULL);
    run_ok((const char *const *)argv->pdata);
    return file;
}

/* Byte @offset of the image of test_export_read_ahead. */
static guint8
chunk_byte(guint64 offset)
{
    return (guint8)(offset / (64 * 1024) % 255 + 1);
}

static void
check_range(DiskReader *reader, guint64 offset, gsize count)
{
    g_autoptr(GError) error = NULL;
    g_autofree guint8 *buf = g_malloc(count);

    g_assert_cmpint(read_into(reader, buf, count, offset, &error), ==, count);
    g_assert_no_error(error);
    for (gsize i = 0; i < count; i++)
        if (buf[i] != chunk_byte(offset + i))
            g_error("byte %" G_GUINT64_FORMAT ": %#x, not %#x", offset + i, buf[i],
                    chunk_byte(offset + i));
}

/* Reads served from what was read ahead (several ranges of it, handed out
 * without a copy) return the bytes at their own offsets, also after the
 * reader jumps back or reads across ranges. */
static void
test_export_read_ahead(void)
{
    g_autofree char *file = make_pieces_image("ahead.qcow2", 64 * 1024, chunk_byte);
    g_autofree char *run = g_build_filename(tmpdir, "run-ahead", NULL);
    DiskExports *exports = disk_exports_new(run, 60000);
    DiskExportSource active = {file, "qcow2", NULL};
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) end = NULL;
    g_autofree guint8 *big = g_malloc(MIB);
    DiskReader *reader;

    reader = disk_exports_open(exports, "d/active", &active, &error);
    g_assert_no_error(error);
    for (guint64 off = 0; off < 8 * MIB; off += 256 * 1024)
        check_range(reader, off, 256 * 1024);
    end = disk_reader_read(reader, 4096, 8 * MIB, &error);
    g_assert_no_error(error);
    g_assert_cmpuint(g_bytes_get_size(end), ==, 0);
    /* Smaller reads inside ranges read ahead: 0 and 256 KiB start them
     * (256 KiB each from 512 KiB on), the next ones fall inside. */
    check_range(reader, 0, 256 * 1024);
    check_range(reader, 256 * 1024, 256 * 1024);
    for (guint64 off = 512 * 1024; off < 2 * MIB; off += 48 * 1024)
        check_range(reader, off, 48 * 1024);
    /* A jump back, then sequential again with another size. */
    for (guint64 off = MIB; off < 4 * MIB; off += 100 * 1024)
        check_range(reader, off, 100 * 1024);
    /* Reads that straddle ranges read ahead, and a short one at the end. */
    check_range(reader, 700 * 1024, 300 * 1024);
    check_range(reader, 1000 * 1024, 300 * 1024);
    g_assert_cmpint(read_into(reader, big, MIB, 8 * MIB - 4096, &error), ==, 4096);
    g_assert_no_error(error);

    disk_reader_close(reader);
    disk_exports_free(exports);
    g_assert_cmpint(g_rmdir(run), ==, 0);
    g_unlink(file);
}

static guint8
byte_5a(guint64 offset)
{
    return 0x5a;
}

/* The data of a disk whose 64 KiB pieces alternate with holes: many
 * extents in one block status reply. */
static void
test_export_allocated(void)
{
    g_autofree char *file = make_pieces_image("holes.qcow2", 256 * 1024, byte_5a);
    g_autofree char *run = g_build_filename(tmpdir, "run-holes", NULL);
    DiskExports *exports = disk_exports_new(run, 60000);
    DiskExportSource active = {file, "qcow2", NULL};
    g_autoptr(GError) error = NULL;
    DiskReader *reader;
    guint64 bytes = 0;

    reader = disk_exports_open(exports, "d/active", &active, &error);
    g_assert_no_error(error);
    g_assert_true(disk_reader_allocated(reader, &bytes, &error));
    g_assert_no_error(error);
    g_assert_cmpuint(bytes, ==, 32 * 64 * 1024);

    disk_reader_close(reader);
    disk_exports_free(exports);
    g_assert_cmpint(g_rmdir(run), ==, 0);
    g_unlink(file);
}

static void
test_export_retire(void)
{
    g_autofree char *file = make_image("retire.qcow2");
    g_autofree char *run = g_build_filename(tmpdir, "run-retire", NULL);
    DiskExports *exports = disk_exports_new(run, 60000);
    DiskExportSource snap = {file, "qcow2", "s1"};
    g_autoptr(GError) error = NULL;
    guint8 buf[4096];
    DiskReader *a, *b;

    a = disk_exports_open(exports, "d/s1", &snap, &error);
    g_assert_no_error(error);
    g_assert_cmpint(read_into(a, buf, sizeof(buf), 0, &error), ==, sizeof(buf));

    disk_exports_retire(exports, "d/s1");
    g_assert_cmpuint(disk_exports_count(exports), ==, 0);
    g_assert_cmpint(read_into(a, buf, sizeof(buf), 0, &error), ==, -1);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_STALE);
    g_clear_error(&error);
    /* The read ahead of the first read is refused too. */
    g_assert_cmpint(read_into(a, buf, sizeof(buf), sizeof(buf), &error), ==, -1);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_STALE);
    g_clear_error(&error);
    g_assert_null(disk_exports_open(exports, "d/s1", &snap, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_STALE);
    g_clear_error(&error);

    /* The deletion failed: the snapshot can be read again. */
    disk_exports_unretire(exports, "d/s1");
    b = disk_exports_open(exports, "d/s1", &snap, &error);
    g_assert_no_error(error);
    g_assert_cmpint(read_into(b, buf, sizeof(buf), 0, &error), ==, sizeof(buf));
    g_assert_true(all_bytes(buf, sizeof(buf), 0x11));
    disk_reader_close(a);
    disk_reader_close(b);
    disk_exports_free(exports);
    g_assert_cmpint(g_rmdir(run), ==, 0);
    g_unlink(file);
}

static void
test_export_idle_and_errors(void)
{
    g_autofree char *file = make_image("idle.qcow2");
    g_autofree char *run = g_build_filename(tmpdir, "run-idle", NULL);
    DiskExports *exports = disk_exports_new(run, 200);
    DiskExportSource snap = {file, "qcow2", "s1"};
    DiskExportSource missing = {file, "qcow2", "nope"};
    g_autoptr(GError) error = NULL;
    gint64 deadline;
    DiskReader *a;

    /* qemu-nbd's own complaint comes back. */
    g_assert_null(disk_exports_open(exports, "d/nope", &missing, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_QEMU);
    g_assert_nonnull(strstr(error->message, "snapshot"));
    g_clear_error(&error);
    g_assert_cmpuint(disk_exports_count(exports), ==, 0);

    a = disk_exports_open(exports, "d/s1", &snap, &error);
    g_assert_no_error(error);
    g_usleep(400 * 1000);
    /* Open readers keep it. */
    g_assert_cmpuint(disk_exports_count(exports), ==, 1);
    disk_reader_close(a);
    deadline = g_get_monotonic_time() + 10 * G_USEC_PER_SEC;
    while (disk_exports_count(exports) > 0 && g_get_monotonic_time() < deadline)
        g_usleep(20 * 1000);
    g_assert_cmpuint(disk_exports_count(exports), ==, 0);
    disk_exports_free(exports);
    g_assert_cmpint(g_rmdir(run), ==, 0);
    g_unlink(file);
}

int
main(int argc, char *argv[])
{
    g_autofree char *qemu_nbd = g_find_program_in_path(disk_export_binary());
    int ret;

    g_test_init(&argc, &argv, NULL);
    if (qemu_nbd == NULL) {
        g_print("1..0 # SKIP qemu-nbd not installed\n");
        return 0;
    }
    tmpdir = g_dir_make_tmp("test-disk-export-XXXXXX", NULL);
    g_assert_nonnull(tmpdir);
    g_test_add_func("/disk-export/seek", test_seek);
    g_test_add_func("/disk-export/seek-all-data", test_seek_all_data);
    g_test_add_func("/disk-export/seek-error", test_seek_error);
    g_test_add_func("/disk-export/argv", test_argv);
    g_test_add_func("/disk-export/read", test_export_read);
    g_test_add_func("/disk-export/read-ahead", test_export_read_ahead);
    g_test_add_func("/disk-export/allocated", test_export_allocated);
    g_test_add_func("/disk-export/retire", test_export_retire);
    g_test_add_func("/disk-export/idle-and-errors", test_export_idle_and_errors);
    ret = g_test_run();
    g_rmdir(tmpdir);
    g_free(tmpdir);
    return ret;
}
