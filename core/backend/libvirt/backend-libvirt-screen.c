/* backend-libvirt-screen.c: screen.png in the libvirt backend: libvirt has
 * no place for a snapshot's picture, so virDomainScreenshot's image goes
 * to a cache directory, under a name made from this host, the connection
 * URI, the domain and the snapshot (two hosts or two domains sharing the
 * directory never collide). */
#include "backend-libvirt-private.h"

#include <errno.h>
#include <glib/gstdio.h>
#include <string.h>

#include "backend-libvirt-names.h"
#include "screen-png.h"
#include "snap-error.h"
#include "snapshot-store.h"

/* A screenshot is a few MB at most; more is a runaway stream. */
#define LV_SCREEN_MAX (64 * 1024 * 1024)

void
snap_backend_libvirt_set_cache_dir(SnapCatalogue *backend, const char *dir)
{
    LvBackend *self = (LvBackend *)backend;

    if (snap_backend_libvirt_is_fleet(backend)) {
        snap_backend_libvirt_fleet_set_cache_dir(backend, dir);
        return;
    }
    g_free(self->cache_dir);
    self->cache_dir = g_strdup(dir);
}

char *
lv_screen_file(SnapCatalogue *backend, const char *domain, const char *snapshot)
{
    LvBackend *self = (LvBackend *)backend;
    g_autofree char *key = NULL;
    g_autofree char *hash = NULL;
    g_autofree char *file = NULL;

    if (self->cache_dir == NULL)
        return NULL;
    /* NUL-free separators: none of the parts holds a newline that matters
     * (a name with one still hashes to its own key). */
    key =
        g_strdup_printf("%s\n%s\n%s\n%s", g_get_host_name(), self->uri, domain, snapshot);
    hash = g_compute_checksum_for_string(G_CHECKSUM_SHA256, key, -1);
    file = g_strconcat("screen-", hash, ".png", NULL);
    return g_build_filename(self->cache_dir, file, NULL);
}

/* The whole stream of a screenshot. (transfer full) */
static GBytes *
receive_all(virStreamPtr st, GError **error)
{
    g_autoptr(GByteArray) buf = g_byte_array_new();
    char chunk[65536];
    int n;

    while ((n = virStreamRecv(st, chunk, sizeof(chunk))) > 0) {
        g_byte_array_append(buf, (const guint8 *)chunk, n);
        if (buf->len > LV_SCREEN_MAX) {
            virStreamAbort(st);
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_QEMU,
                        "the screenshot is larger than %d bytes", LV_SCREEN_MAX);
            return NULL;
        }
    }
    if (n < 0 || virStreamFinish(st) < 0) {
        lv_set_error(error, "reading the screenshot failed");
        if (n < 0)
            virStreamAbort(st);
        return NULL;
    }
    return g_byte_array_free_to_bytes(g_steal_pointer(&buf));
}

/* Whether the running definition has a display device (libvirt gives a
 * <graphics> a <video>); one that does not parse is tried all the same. */
static gboolean
has_display(virDomainPtr dom)
{
    g_autofree char *xml = virDomainGetXMLDesc(dom, 0);
    g_autoptr(DomainDef) def =
        xml != NULL ? domain_def_parse(xml, strlen(xml), NULL, NULL) : NULL;

    return def == NULL || (def->video != NULL && g_strcmp0(def->video, "none") != 0);
}

gboolean
lv_screenshot(SnapBackend *backend, const DomainDef *def, const char *file,
              GError **error)
{
    LvBackend *self = (LvBackend *)backend;
    g_autoptr(GBytes) image = NULL;
    g_autoptr(GBytes) png = NULL;
    g_autofree char *mime = NULL;
    g_autofree char *dir = NULL;
    virDomainPtr dom;
    virStreamPtr st;
    const char *data;
    gsize len;

    dom = lv_domain(self, def->name, error);
    if (dom == NULL)
        return FALSE;
    if (virDomainIsActive(dom) != 1 || !has_display(dom)) {
        virDomainFree(dom);
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_UNSUPPORTED,
                    "domain '%s' does not run or has no display", def->name);
        return FALSE;
    }
    st = virStreamNew(virDomainGetConnect(dom), 0);
    mime = st != NULL ? virDomainScreenshot(dom, st, 0, 0) : NULL;
    if (mime == NULL)
        lv_set_error(error, "virDomainScreenshot failed");
    else
        image = receive_all(st, error);
    if (st != NULL)
        virStreamFree(st);
    virDomainFree(dom);
    if (image == NULL)
        return FALSE;
    g_debug("%s: screenshot: %s, %zu bytes", def->name, mime, g_bytes_get_size(image));
    png = screen_png_from_image(image, error);
    if (png == NULL)
        return FALSE;
    dir = g_path_get_dirname(file);
    if (g_mkdir_with_parents(dir, 0700) < 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_FAILED, "cannot create %s: %s", dir,
                    g_strerror(errno));
        return FALSE;
    }
    data = g_bytes_get_data(png, &len);
    return snap_store_write_atomic(file, data, len, error);
}
