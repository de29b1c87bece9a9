/* snap-names.c: which strings may name a snapshot directory. */
#include "snap-names.h"

#include <string.h>

#include "snap-error.h"

#define SNAP_NAME_MAX_BYTES 200
/* Error messages quote at most this much of a rejected name. */
#define SNAP_NAME_QUOTE_BYTES 64

const char *const snap_reserved_names[] = {
    "metadata.xml", "revert", "disks",  "files", "domain.xml", "state",
    "current",      "create", "errors", "job",   NULL,
};

static gboolean
is_control_char(gunichar c)
{
    return c < 0x20 || c == 0x7f || (c >= 0x80 && c <= 0x9f);
}

/* @name quoted for an error message: control characters escaped (as
 * \u001B; all bytes of invalid UTF-8 as octal) so they never reach the
 * errors file or a terminal raw, and cut short so a hostile name cannot
 * flood them. */
static char *
quote_name(const char *name)
{
    gsize len = strlen(name);
    GString *quoted = g_string_new("'");

    if (!g_utf8_validate(name, len, NULL)) {
        g_autofree char *head = g_strndup(name, MIN(len, SNAP_NAME_QUOTE_BYTES));
        g_autofree char *escaped = g_strescape(head, NULL);

        g_string_append(quoted, escaped);
    } else {
        const char *p = name;

        for (; *p != '\0' && (gsize)(p - name) < SNAP_NAME_QUOTE_BYTES;
             p = g_utf8_next_char(p)) {
            gunichar c = g_utf8_get_char(p);

            if (is_control_char(c) || c == '\\' || c == '\'')
                g_string_append_printf(quoted, "\\u%04X", c);
            else
                g_string_append_unichar(quoted, c);
        }
    }
    g_string_append(quoted, len > SNAP_NAME_QUOTE_BYTES ? "'..." : "'");
    return g_string_free(quoted, FALSE);
}

gboolean
snap_name_validate(const char *name, GError **error)
{
    g_autofree char *quoted = NULL;
    gsize len;

    if (name == NULL || name[0] == '\0') {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "invalid snapshot name: the name is empty");
        return FALSE;
    }

    quoted = quote_name(name);
    len = strlen(name);

    if (!g_utf8_validate(name, len, NULL)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "invalid snapshot name %s: not valid UTF-8", quoted);
        return FALSE;
    }
    if (len > SNAP_NAME_MAX_BYTES) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "invalid snapshot name %s: %zu bytes long, at most %d allowed",
                    quoted, len, SNAP_NAME_MAX_BYTES);
        return FALSE;
    }
    if (strchr(name, '/') != NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "invalid snapshot name %s: contains '/'", quoted);
        return FALSE;
    }
    for (const char *p = name; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);

        if (is_control_char(c)) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "invalid snapshot name %s: contains control character U+%04X",
                        quoted, c);
            return FALSE;
        }
    }
    if (strcmp(name, ".") == 0 || strcmp(name, "..") == 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "invalid snapshot name %s: '.' and '..' are not allowed", quoted);
        return FALSE;
    }
    if (name[0] == '.') {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "invalid snapshot name %s: must not start with '.'", quoted);
        return FALSE;
    }
    for (gsize i = 0; snap_reserved_names[i] != NULL; i++) {
        if (strcmp(name, snap_reserved_names[i]) == 0) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "invalid snapshot name %s: reserved for a file of the tree",
                        quoted);
            return FALSE;
        }
    }
    return TRUE;
}
