/* screen-png.c: any screenshot to PNG, with gdk-pixbuf. */
#include "screen-png.h"

#include <string.h>
#include <gdk-pixbuf/gdk-pixbuf.h>

#include "snap-error.h"

static const guint8 png_signature[8] = {0x89, 'P', 'N', 'G', '\r', '\n', 0x1a, '\n'};

GBytes *
screen_png_from_image(GBytes *image, GError **error)
{
    gsize len = 0;
    const guint8 *data = g_bytes_get_data(image, &len);
    g_autoptr(GdkPixbufLoader) loader = NULL;
    g_autoptr(GError) local = NULL;
    g_autofree char *png = NULL;
    gsize png_len = 0;
    GdkPixbuf *pixbuf;

    if (len >= sizeof(png_signature) && memcmp(data, png_signature, 8) == 0)
        return g_bytes_ref(image);
    loader = gdk_pixbuf_loader_new();
    if (!gdk_pixbuf_loader_write(loader, data, len, &local) ||
        !gdk_pixbuf_loader_close(loader, &local) ||
        (pixbuf = gdk_pixbuf_loader_get_pixbuf(loader)) == NULL ||
        !gdk_pixbuf_save_to_buffer(pixbuf, &png, &png_len, "png", &local, NULL)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "the screenshot is no image that can be made a PNG: %s",
                    local ? local->message : "unknown format");
        return NULL;
    }
    return g_bytes_new_take(g_steal_pointer(&png), png_len);
}
