/* fuzz-control-words.c: the parsers of the words written to `revert` and `state`. */
#include "fuzz-common.h"

#include "control-words.h"

/* Beyond this many bytes a write is refused whatever it says
 * (control-words.c); below it the reference below must agree. */
#define CONTROL_MAX_BYTES 4096

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_make_criticals_fatal();
    return 0;
}

/* The reference reading of a control write, from snap-engine.h and
 * DESIGN.md, written independently of control-words.c: one line of
 * blank-separated words, trailing blanks and "\n" / "\r\n" ignored.
 * Returns the words, or NULL when the text is not one such line. */
static GStrv
reference_words(const char *buf, gsize len)
{
    g_autofree char *text = NULL;
    g_auto(GStrv) pieces = NULL;
    g_autoptr(GStrvBuilder) words = g_strv_builder_new();
    gsize end = len;

    if (len > 0 && memchr(buf, '\0', len) != NULL)
        return NULL;
    text = g_strndup(buf, len);
    while (end > 0 && strchr(" \t\r\n", text[end - 1]) != NULL)
        text[--end] = '\0';
    if (strpbrk(text, "\r\n") != NULL)
        return NULL;
    pieces = g_strsplit_set(text, " \t", -1);
    for (char **p = pieces; *p != NULL; p++) {
        if (**p != '\0')
            g_strv_builder_add(words, *p);
    }
    return g_strv_builder_end(words);
}

static gboolean
reference_revert(const char *buf, gsize len, SnapRevertFlags *flags)
{
    g_auto(GStrv) words = reference_words(buf, len);
    SnapRevertFlags result = 0;

    if (words == NULL)
        return FALSE;
    for (char **w = words; *w != NULL; w++) {
        if (strcmp(*w, "running") == 0)
            result |= SNAP_REVERT_RUNNING;
        else if (strcmp(*w, "paused") == 0)
            result |= SNAP_REVERT_PAUSED;
        else if (strcmp(*w, "force") == 0)
            result |= SNAP_REVERT_FORCE;
        else
            return FALSE;
    }
    if ((result & SNAP_REVERT_RUNNING) && (result & SNAP_REVERT_PAUSED))
        return FALSE;
    *flags = result;
    return TRUE;
}

static gboolean
reference_action(const char *buf, gsize len, SnapDomainAction *action)
{
    static const char *const names[] = {"start", "shutdown", "destroy", "pause",
                                        "resume"};
    static const SnapDomainAction actions[] = {
        SNAP_ACTION_START, SNAP_ACTION_SHUTDOWN, SNAP_ACTION_DESTROY,
        SNAP_ACTION_PAUSE, SNAP_ACTION_RESUME,
    };
    g_auto(GStrv) words = reference_words(buf, len);

    if (words == NULL || g_strv_length(words) != 1)
        return FALSE;
    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        if (strcmp(words[0], names[i]) == 0) {
            *action = actions[i];
            return TRUE;
        }
    }
    return FALSE;
}

/* @buf is exactly @len bytes of heap, not NUL-terminated, so ASan sees
 * any read past the end. */
static void
check_buffer(const char *buf, gsize len)
{
    g_autoptr(GError) revert_error = NULL;
    g_autoptr(GError) action_error = NULL;
    SnapRevertFlags flags = 0xdead;
    SnapRevertFlags expected_flags = 0;
    SnapDomainAction action = (SnapDomainAction)0xdead;
    SnapDomainAction expected_action = SNAP_ACTION_START;
    gboolean ok;

    ok = snap_revert_flags_parse(buf, len, &flags, &revert_error);
    fuzz_check_result(ok, revert_error);
    if (ok && (flags & ~(SNAP_REVERT_RUNNING | SNAP_REVERT_PAUSED | SNAP_REVERT_FORCE)))
        fuzz_fail("revert: flags outside the enum", NULL);
    if (len <= CONTROL_MAX_BYTES) {
        gboolean expected = reference_revert(buf, len, &expected_flags);

        if (ok != expected)
            fuzz_fail(ok ? "revert: accepted what the reference refuses"
                         : "revert: refused what the reference accepts",
                      revert_error);
        if (ok && flags != expected_flags)
            fuzz_fail("revert: flags differ from the reference", NULL);
    } else if (ok) {
        fuzz_fail("revert: accepted an oversized write", NULL);
    }

    ok = snap_domain_action_parse(buf, len, &action, &action_error);
    fuzz_check_result(ok, action_error);
    if (len <= CONTROL_MAX_BYTES) {
        gboolean expected = reference_action(buf, len, &expected_action);

        if (ok != expected)
            fuzz_fail(ok ? "state: accepted what the reference refuses"
                         : "state: refused what the reference accepts",
                      action_error);
        if (ok && action != expected_action)
            fuzz_fail("state: action differs from the reference", NULL);
    } else if (ok) {
        fuzz_fail("state: accepted an oversized write", NULL);
    }
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autofree char *with_newline = g_malloc(size + 1);

    /* libFuzzer's own copy of the input is exactly @size bytes. */
    check_buffer(size > 0 ? (const char *)data : "", size);

    /* What echo writes: the same words and a newline. */
    if (size > 0)
        memcpy(with_newline, data, size);
    with_newline[size] = '\n';
    check_buffer(with_newline, size + 1);
    return 0;
}
