/* test-snap-error.c: every error code maps to exactly the errno DESIGN.md implies. */
#include <errno.h>
#include <gio/gio.h>

#include "snap-error.h"

static int
errno_of(GQuark domain, int code)
{
    g_autoptr(GError) error = g_error_new_literal(domain, code, "test");

    return snap_error_to_errno(error);
}

static void
test_snap_codes(void)
{
    static const struct {
        SnapErrorCode code;
        int errnum;
    } table[] = {
        {SNAP_ERROR_FAILED, EIO},        {SNAP_ERROR_NOT_FOUND, ENOENT},
        {SNAP_ERROR_EXISTS, EEXIST},     {SNAP_ERROR_INVALID, EINVAL},
        {SNAP_ERROR_NOT_CURRENT, EPERM}, {SNAP_ERROR_BUSY, EBUSY},
        {SNAP_ERROR_QEMU, EIO},          {SNAP_ERROR_UNSUPPORTED, EOPNOTSUPP},
        {SNAP_ERROR_READ_ONLY, EROFS},   {SNAP_ERROR_CANCELLED, EINTR},
        {SNAP_ERROR_NO_SPACE, ENOSPC},   {SNAP_ERROR_STALE, ESTALE},
    };

    /* The table above must cover every code: STALE is the last one. */
    g_assert_cmpuint(G_N_ELEMENTS(table), ==, SNAP_ERROR_STALE + 1);
    for (gsize i = 0; i < G_N_ELEMENTS(table); i++) {
        g_test_message("code %d", table[i].code);
        g_assert_cmpint(table[i].code, ==, i);
        g_assert_cmpint(errno_of(SNAP_ERROR, table[i].code), ==, table[i].errnum);
    }
}

static void
test_snap_unknown_code(void)
{
    g_assert_cmpint(errno_of(SNAP_ERROR, SNAP_ERROR_STALE + 1), ==, EIO);
    g_assert_cmpint(errno_of(SNAP_ERROR, 1000), ==, EIO);
    g_assert_cmpint(errno_of(SNAP_ERROR, -1), ==, EIO);
}

static void
test_io_codes(void)
{
    static const struct {
        GIOErrorEnum code;
        int errnum;
    } table[] = {
        {G_IO_ERROR_NOT_FOUND, ENOENT},         {G_IO_ERROR_EXISTS, EEXIST},
        {G_IO_ERROR_PERMISSION_DENIED, EACCES}, {G_IO_ERROR_NO_SPACE, ENOSPC},
        {G_IO_ERROR_CANCELLED, EINTR},          {G_IO_ERROR_INVALID_ARGUMENT, EINVAL},
        {G_IO_ERROR_READ_ONLY, EROFS},          {G_IO_ERROR_BUSY, EBUSY},
        {G_IO_ERROR_TIMED_OUT, ETIMEDOUT},      {G_IO_ERROR_FAILED, EIO},
        {G_IO_ERROR_BROKEN_PIPE, EIO},          {G_IO_ERROR_NOT_SUPPORTED, EIO},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(table); i++) {
        g_test_message("G_IO_ERROR code %d", table[i].code);
        g_assert_cmpint(errno_of(G_IO_ERROR, table[i].code), ==, table[i].errnum);
    }
}

static void
test_file_codes(void)
{
    static const struct {
        GFileError code;
        int errnum;
    } table[] = {
        {G_FILE_ERROR_NOENT, ENOENT}, {G_FILE_ERROR_EXIST, EEXIST},
        {G_FILE_ERROR_ACCES, EACCES}, {G_FILE_ERROR_NOSPC, ENOSPC},
        {G_FILE_ERROR_ROFS, EROFS},   {G_FILE_ERROR_FAILED, EIO},
        {G_FILE_ERROR_ISDIR, EIO},    {G_FILE_ERROR_IO, EIO},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(table); i++) {
        g_test_message("G_FILE_ERROR code %d", table[i].code);
        g_assert_cmpint(errno_of(G_FILE_ERROR, table[i].code), ==, table[i].errnum);
    }
}

static void
test_unknown_domain(void)
{
    GQuark other = g_quark_from_static_string("test-other-error-quark");

    g_assert_cmpint(errno_of(other, 0), ==, EIO);
    g_assert_cmpint(errno_of(other, SNAP_ERROR_NOT_FOUND), ==, EIO);
    g_assert_cmpint(errno_of(G_KEY_FILE_ERROR, G_KEY_FILE_ERROR_NOT_FOUND), ==, EIO);
}

static void
test_quark(void)
{
    g_assert_cmpstr(g_quark_to_string(SNAP_ERROR), ==, "snap-error-quark");
    g_assert_true(SNAP_ERROR == snap_error_quark());
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/snap-error/quark", test_quark);
    g_test_add_func("/snap-error/snap-codes", test_snap_codes);
    g_test_add_func("/snap-error/snap-unknown-code", test_snap_unknown_code);
    g_test_add_func("/snap-error/io-codes", test_io_codes);
    g_test_add_func("/snap-error/file-codes", test_file_codes);
    g_test_add_func("/snap-error/unknown-domain", test_unknown_domain);
    return g_test_run();
}
