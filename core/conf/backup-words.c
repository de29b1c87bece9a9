/* backup-words.c: parsing of what is written to `.forget` and `.undefine`.
 *
 * The buffers come straight from write(2): not NUL-terminated, possibly
 * binary. Nothing here reads past @len. */
#include "control-words.h"

#include <string.h>

#include "snap-error.h"
#include "snap-names.h"

/* One line of a mode and a snapshot name (at most 200 bytes). */
#define BACKUP_LINE_MAX_BYTES 1024

static gboolean
check_line(const char *what, const char *buf, gsize len, GError **error)
{
    if (len > BACKUP_LINE_MAX_BYTES) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "%s: %zu bytes written, at most %d accepted", what, len,
                    BACKUP_LINE_MAX_BYTES);
        return FALSE;
    }
    if (len > 0 && memchr(buf, '\0', len) != NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "%s: the text contains a NUL byte", what);
        return FALSE;
    }
    return TRUE;
}

static const struct {
    const char *word;
    SnapDeleteFlags flags;
} forget_modes[] = {
    {"snapshot", SNAP_DELETE_METADATA_ONLY},
    {"children", SNAP_DELETE_METADATA_ONLY | SNAP_DELETE_CHILDREN},
    {"children-only", SNAP_DELETE_METADATA_ONLY | SNAP_DELETE_CHILDREN_ONLY},
};

gboolean
snap_forget_parse(const char *buf, gsize len, SnapDeleteFlags *flags, char **name,
                  GError **error)
{
    g_autofree char *line = NULL;
    g_autofree char *escaped = NULL;
    const char *space;
    gsize mode_len;

    g_return_val_if_fail(buf != NULL || len == 0, FALSE);

    if (!check_line(".forget", buf, len, error))
        return FALSE;
    /* Exactly one newline goes: a name may end with anything else. */
    if (len > 0 && buf[len - 1] == '\n')
        len--;
    line = g_strndup(buf, len);
    space = strchr(line, ' ');
    mode_len = space ? (gsize)(space - line) : len;
    for (gsize i = 0; i < G_N_ELEMENTS(forget_modes); i++) {
        if (strlen(forget_modes[i].word) != mode_len ||
            memcmp(line, forget_modes[i].word, mode_len) != 0)
            continue;
        if (space == NULL || space[1] == '\0') {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        ".forget: '%s' needs a snapshot name: write \"%s NAME\"",
                        forget_modes[i].word, forget_modes[i].word);
            return FALSE;
        }
        if (!snap_name_validate(space + 1, error)) {
            g_prefix_error(error, ".forget: ");
            return FALSE;
        }
        if (flags != NULL)
            *flags = forget_modes[i].flags;
        if (name != NULL)
            *name = g_strdup(space + 1);
        return TRUE;
    }
    line[MIN(mode_len, 64)] = '\0';
    escaped = g_strescape(line, NULL);
    g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                ".forget: unknown mode '%s' (expected \"snapshot NAME\", \"children "
                "NAME\" or \"children-only NAME\")",
                escaped);
    return FALSE;
}

gboolean
snap_undefine_mode_parse(const char *buf, gsize len, SnapUndefineMode *mode,
                         GError **error)
{
    g_autofree char *line = NULL;
    g_autofree char *escaped = NULL;

    g_return_val_if_fail(buf != NULL || len == 0, FALSE);

    if (!check_line(".undefine", buf, len, error))
        return FALSE;
    line = g_strstrip(g_strndup(buf, len));
    if (strcmp(line, "metadata") == 0 || strcmp(line, "full") == 0) {
        if (mode != NULL)
            *mode = line[0] == 'm' ? SNAP_UNDEFINE_METADATA : SNAP_UNDEFINE_FULL;
        return TRUE;
    }
    line[MIN(strlen(line), 64)] = '\0';
    escaped = g_strescape(line, NULL);
    g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                ".undefine: expected exactly one word, 'metadata' (keep the disks) or "
                "'full' (delete them too); got '%s'",
                escaped);
    return FALSE;
}
