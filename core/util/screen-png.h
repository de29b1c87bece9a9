/* screen-png.h: a screenshot as PNG, whatever format it came in. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* @image as PNG: itself when it already is one (its signature says so),
 * else decoded by gdk-pixbuf (e.g. the PPM of an older libvirt or QEMU)
 * and encoded as PNG. SNAP_ERROR_INVALID when it is no image gdk-pixbuf
 * reads. (transfer full) */
GBytes *screen_png_from_image(GBytes *image, GError **error);

G_END_DECLS
