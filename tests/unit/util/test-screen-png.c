/* test-screen-png.c: screenshots become PNG: a PNG as it is, a PPM (what
 * QEMU's screendump gives without format=png) converted, junk refused. */
#include <string.h>
#include <gdk-pixbuf/gdk-pixbuf.h>

#include "screen-png.h"
#include "snap-error.h"

/* A 4x2 PPM: the top row red, the bottom row blue. */
static GBytes *
make_ppm(void)
{
    GString *s = g_string_new("P6\n4 2\n255\n");

    for (int i = 0; i < 4; i++)
        g_string_append_len(s, "\xff\x00\x00", 3);
    for (int i = 0; i < 4; i++)
        g_string_append_len(s, "\x00\x00\xff", 3);
    return g_string_free_to_bytes(s);
}

static GdkPixbuf *
decode(GBytes *png)
{
    g_autoptr(GdkPixbufLoader) loader = gdk_pixbuf_loader_new_with_type("png", NULL);
    g_autoptr(GError) error = NULL;
    GdkPixbuf *pixbuf;

    g_assert_nonnull(loader);
    g_assert_true(gdk_pixbuf_loader_write(loader, g_bytes_get_data(png, NULL),
                                          g_bytes_get_size(png), &error));
    g_assert_true(gdk_pixbuf_loader_close(loader, &error));
    g_assert_no_error(error);
    pixbuf = gdk_pixbuf_loader_get_pixbuf(loader);
    g_assert_nonnull(pixbuf);
    return g_object_ref(pixbuf);
}

static void
test_ppm_to_png(void)
{
    g_autoptr(GBytes) ppm = make_ppm();
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) png = screen_png_from_image(ppm, &error);
    g_autoptr(GdkPixbuf) pixbuf = NULL;
    const guint8 *px;
    int stride;

    g_assert_no_error(error);
    g_assert_nonnull(png);
    g_assert_cmpint(memcmp(g_bytes_get_data(png, NULL), "\x89PNG\r\n\x1a\n", 8), ==, 0);
    pixbuf = decode(png);
    g_assert_cmpint(gdk_pixbuf_get_width(pixbuf), ==, 4);
    g_assert_cmpint(gdk_pixbuf_get_height(pixbuf), ==, 2);
    px = gdk_pixbuf_read_pixels(pixbuf);
    stride = gdk_pixbuf_get_rowstride(pixbuf);
    g_assert_cmpint(px[0], ==, 0xff);
    g_assert_cmpint(px[2], ==, 0x00);
    g_assert_cmpint(px[stride + 0], ==, 0x00);
    g_assert_cmpint(px[stride + 2], ==, 0xff);
}

static void
test_png_kept(void)
{
    g_autoptr(GBytes) ppm = make_ppm();
    g_autoptr(GBytes) png = screen_png_from_image(ppm, NULL);
    g_autoptr(GBytes) again = screen_png_from_image(png, NULL);

    g_assert_true(g_bytes_equal(png, again));
}

static void
test_junk(void)
{
    g_autoptr(GBytes) junk = g_bytes_new_static("not an image at all", 19);
    g_autoptr(GError) error = NULL;
    g_autoptr(GBytes) png = screen_png_from_image(junk, &error);

    g_assert_null(png);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/screen-png/ppm-to-png", test_ppm_to_png);
    g_test_add_func("/screen-png/png-kept", test_png_kept);
    g_test_add_func("/screen-png/junk", test_junk);
    return g_test_run();
}
