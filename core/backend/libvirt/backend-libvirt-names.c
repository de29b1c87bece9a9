/* backend-libvirt-names.c: the percent-encoding of names the mounted tree cannot show as
 * they are. */
#include "backend-libvirt-names.h"

#include <string.h>

#include "snap-error.h"
#include "snap-names.h"

static gboolean
is_reserved(const char *name)
{
    return g_strv_contains(snap_reserved_names, name);
}

char *
lv_name_escape(const char *name, gboolean snapshot)
{
    gboolean utf8 = g_utf8_validate(name, -1, NULL);
    gboolean first_too = snapshot && is_reserved(name);
    GString *out = g_string_sized_new(strlen(name) + 8);

    for (const char *p = name; *p; p++) {
        guchar c = (guchar)*p;
        gboolean encode = c == '%' || c == '/' || c < 0x20 || c == 0x7f ||
                          (c >= 0x80 && !utf8) || (p == name && (c == '.' || first_too));

        if (encode)
            g_string_append_printf(out, "%%%02X", c);
        else
            g_string_append_c(out, (char)c);
    }
    return g_string_free(out, FALSE);
}

char *
lv_name_unescape(const char *name, gboolean snapshot, GError **error)
{
    GString *out = g_string_sized_new(strlen(name));
    g_autofree char *again = NULL;
    g_autofree char *decoded = NULL;

    for (const char *p = name; *p; p++) {
        int hi, lo;

        if (*p != '%') {
            g_string_append_c(out, *p);
            continue;
        }
        hi = g_ascii_xdigit_value(p[1]);
        lo = hi >= 0 ? g_ascii_xdigit_value(p[2]) : -1;
        if (lo < 0 || (hi == 0 && lo == 0)) {
            g_string_free(out, TRUE);
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "'%s': a '%%' starts no %%XX escape (write '%%' as %%25)", name);
            return NULL;
        }
        g_string_append_c(out, (char)(hi * 16 + lo));
        p += 2;
    }
    decoded = g_string_free(out, FALSE);
    again = lv_name_escape(decoded, snapshot);
    if (decoded[0] == '\0' || strcmp(again, name) != 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "'%s' is not a name as the mount shows it (escaped, it would be "
                    "'%s'): write '%%' as %%25",
                    name, again);
        return NULL;
    }
    return g_steal_pointer(&decoded);
}
