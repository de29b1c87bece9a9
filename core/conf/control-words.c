/* control-words.c: parsing of the words written to `revert` and `state`.
 *
 * The buffers come straight from write(2): not NUL-terminated, possibly
 * binary, possibly huge. Nothing here reads past @len. */
#include "control-words.h"

#include <string.h>

#include "snap-error.h"

/* A control write is a line of a few words; anything longer is junk. */
#define CONTROL_MAX_BYTES 4096
/* Error messages quote at most this much of a rejected word. */
#define CONTROL_QUOTE_BYTES 64

typedef struct {
    const char *start;
    gsize len;
} Word;

static gboolean
is_blank(char c)
{
    return c == ' ' || c == '\t';
}

static gboolean
is_trailing_space(char c)
{
    return is_blank(c) || c == '\n' || c == '\r';
}

/* @word quoted for an error message: escaped so binary junk never reaches
 * the errors file raw, and cut short. */
static char *
quote_word(const Word *word)
{
    g_autofree char *head = g_strndup(word->start, MIN(word->len, CONTROL_QUOTE_BYTES));
    g_autofree char *escaped = g_strescape(head, NULL);

    return g_strdup_printf("'%s'%s", escaped,
                           word->len > CONTROL_QUOTE_BYTES ? "..." : "");
}

static gboolean
word_is(const Word *word, const char *literal)
{
    gsize n = strlen(literal);

    return word->len == n && memcmp(word->start, literal, n) == 0;
}

/* Splits one line into blank-separated words. Trailing blanks, "\n" and
 * "\r\n" (what echo and editors add) are dropped; an embedded newline
 * means more than one line and is refused. Returns a GArray of Word
 * pointing into @buf. */
static GArray *
split_words(const char *what, const char *buf, gsize len, GError **error)
{
    g_autoptr(GArray) words = g_array_new(FALSE, FALSE, sizeof(Word));
    gsize end = len;
    gsize i = 0;

    if (len > CONTROL_MAX_BYTES) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "%s: %zu bytes written, at most %d accepted", what, len,
                    CONTROL_MAX_BYTES);
        return NULL;
    }
    if (len > 0 && memchr(buf, '\0', len) != NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "%s: the text contains a NUL byte", what);
        return NULL;
    }

    while (end > 0 && is_trailing_space(buf[end - 1]))
        end--;

    while (i < end) {
        Word word;

        if (is_blank(buf[i])) {
            i++;
            continue;
        }
        if (buf[i] == '\n' || buf[i] == '\r') {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "%s: only one line of words is accepted", what);
            return NULL;
        }
        word.start = buf + i;
        while (i < end && !is_blank(buf[i]) && buf[i] != '\n' && buf[i] != '\r')
            i++;
        word.len = (gsize)(buf + i - word.start);
        g_array_append_val(words, word);
    }
    return g_steal_pointer(&words);
}

gboolean
snap_revert_flags_parse(const char *buf, gsize len, SnapRevertFlags *flags,
                        GError **error)
{
    g_autoptr(GArray) words = NULL;
    SnapRevertFlags result = 0;

    g_return_val_if_fail(buf != NULL || len == 0, FALSE);

    words = split_words("revert", buf, len, error);
    if (words == NULL)
        return FALSE;

    for (guint i = 0; i < words->len; i++) {
        const Word *word = &g_array_index(words, Word, i);

        if (word_is(word, "running")) {
            result |= SNAP_REVERT_RUNNING;
        } else if (word_is(word, "paused")) {
            result |= SNAP_REVERT_PAUSED;
        } else if (word_is(word, "force")) {
            result |= SNAP_REVERT_FORCE;
        } else {
            g_autofree char *quoted = quote_word(word);

            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "revert: unknown word %s (expected running, paused or force)",
                        quoted);
            return FALSE;
        }
    }

    /* libvirt refuses VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING | _PAUSED too. */
    if ((result & SNAP_REVERT_RUNNING) && (result & SNAP_REVERT_PAUSED)) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "revert: 'running' and 'paused' are mutually exclusive");
        return FALSE;
    }

    if (flags != NULL)
        *flags = result;
    return TRUE;
}

static const struct {
    const char *word;
    SnapDomainAction action;
} domain_actions[] = {
    {"start", SNAP_ACTION_START},     {"shutdown", SNAP_ACTION_SHUTDOWN},
    {"destroy", SNAP_ACTION_DESTROY}, {"pause", SNAP_ACTION_PAUSE},
    {"resume", SNAP_ACTION_RESUME},
};

gboolean
snap_domain_action_parse(const char *buf, gsize len, SnapDomainAction *action,
                         GError **error)
{
    g_autoptr(GArray) words = NULL;
    const Word *word;
    g_autofree char *quoted = NULL;

    g_return_val_if_fail(buf != NULL || len == 0, FALSE);

    words = split_words("state", buf, len, error);
    if (words == NULL)
        return FALSE;

    if (words->len != 1) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "state: expected exactly one of start, shutdown, destroy, pause, "
                    "resume; got %u words",
                    words->len);
        return FALSE;
    }

    word = &g_array_index(words, Word, 0);
    for (gsize i = 0; i < G_N_ELEMENTS(domain_actions); i++) {
        if (word_is(word, domain_actions[i].word)) {
            if (action != NULL)
                *action = domain_actions[i].action;
            return TRUE;
        }
    }

    quoted = quote_word(word);
    g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                "state: unknown word %s (expected start, shutdown, destroy, pause or "
                "resume)",
                quoted);
    return FALSE;
}
