/* test-control-words.c: the words written to `revert` and `state`. */
#include <string.h>

#include "control-words.h"
#include "snap-error.h"

/* Copies @len bytes into an exactly sized heap buffer with no terminating
 * NUL, so AddressSanitizer catches any read past @len. */
static char *
exact_copy(const char *buf, gsize len)
{
    return len > 0 ? g_memdup2(buf, len) : NULL;
}

static void
assert_revert_ok(const char *buf, gsize len, SnapRevertFlags expected)
{
    g_autofree char *copy = exact_copy(buf, len);
    g_autoptr(GError) error = NULL;
    SnapRevertFlags flags = 0xff;

    g_assert_true(snap_revert_flags_parse(copy, len, &flags, &error));
    g_assert_no_error(error);
    g_assert_cmpint(flags, ==, expected);
}

static void
assert_revert_bad(const char *buf, gsize len, const char *why)
{
    g_autofree char *copy = exact_copy(buf, len);
    g_autoptr(GError) error = NULL;
    SnapRevertFlags flags = 0xff;

    g_assert_false(snap_revert_flags_parse(copy, len, &flags, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_test_message("refused: %s", error->message);
    g_assert_nonnull(strstr(error->message, why));
    /* Out parameters are left alone on failure. */
    g_assert_cmpint(flags, ==, 0xff);
}

#define REVERT_OK(s, f) assert_revert_ok(s, sizeof(s) - 1, f)
#define REVERT_BAD(s, why) assert_revert_bad(s, sizeof(s) - 1, why)

static void
test_revert_empty(void)
{
    assert_revert_ok(NULL, 0, 0);
    REVERT_OK("", 0);
    REVERT_OK("\n", 0);
    REVERT_OK("\r\n", 0);
    REVERT_OK("  \t \n", 0);
    REVERT_OK(" ", 0);
}

static void
test_revert_words(void)
{
    REVERT_OK("running", SNAP_REVERT_RUNNING);
    REVERT_OK("running\n", SNAP_REVERT_RUNNING);
    REVERT_OK("running\r\n", SNAP_REVERT_RUNNING);
    REVERT_OK("paused\n", SNAP_REVERT_PAUSED);
    REVERT_OK("force\n", SNAP_REVERT_FORCE);
    REVERT_OK("running force\n", SNAP_REVERT_RUNNING | SNAP_REVERT_FORCE);
    REVERT_OK("force\tpaused\n", SNAP_REVERT_PAUSED | SNAP_REVERT_FORCE);
    REVERT_OK("  force   running  \t\n", SNAP_REVERT_RUNNING | SNAP_REVERT_FORCE);
    REVERT_OK("force force\n", SNAP_REVERT_FORCE);
    REVERT_OK("running running\n", SNAP_REVERT_RUNNING);
    REVERT_OK("force \n\n", SNAP_REVERT_FORCE);
}

static void
test_revert_exclusive(void)
{
    REVERT_BAD("running paused\n", "mutually exclusive");
    REVERT_BAD("paused force running", "mutually exclusive");
}

static void
test_revert_unknown(void)
{
    g_autofree char *long_word = g_strnfill(5000 / 2, 'x');
    g_autoptr(GError) error = NULL;

    REVERT_BAD("run\n", "unknown word 'run'");
    REVERT_BAD("Running\n", "unknown word 'Running'");
    REVERT_BAD("running,paused\n", "unknown word 'running,paused'");
    REVERT_BAD("force now\n", "unknown word 'now'");
    REVERT_BAD("\xff\xfe\n", "unknown word '\\377\\376'");
    REVERT_BAD("esc\x1b[2J\n", "unknown word 'esc\\033[2J'");
    REVERT_BAD("force\rrunning", "only one line");
    REVERT_BAD("running\nforce\n", "only one line");
    REVERT_BAD("\nrunning\n", "only one line");

    /* A long unknown word is named, but only its start. */
    g_assert_false(snap_revert_flags_parse(long_word, 2500, NULL, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_assert_cmpuint(strlen(error->message), <, 200);
    g_assert_nonnull(strstr(error->message, "xxxx'..."));
}

static void
test_revert_binary(void)
{
    g_autofree char *big = g_strnfill(4097, ' ');
    g_autofree char *limit = g_strnfill(4096, ' ');
    g_autofree char *junk = g_malloc(1024 * 1024);
    g_autoptr(GError) error = NULL;

    REVERT_BAD("running\0", "NUL");
    REVERT_BAD("\0", "NUL");
    REVERT_BAD("force\0paused", "NUL");

    /* 4096 blanks are still one (empty) line; one byte more is junk. */
    assert_revert_ok(limit, 4096, 0);
    assert_revert_bad(big, 4097, "at most 4096");

    for (gsize i = 0; i < 1024 * 1024; i++)
        junk[i] = (char)g_test_rand_int_range(0, 256);
    g_assert_false(snap_revert_flags_parse(junk, 1024 * 1024, NULL, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
}

static void
test_revert_fuzzish(void)
{
    /* Random short buffers of the alphabet that matters: whatever comes
     * out, the parser answers with TRUE or INVALID and stays in bounds. */
    static const char alphabet[] = "runigpaedfoc \t\r\n\0x";

    for (guint round = 0; round < 20000; round++) {
        gsize len = g_test_rand_int_range(0, 40);
        g_autofree char *buf = g_malloc(len + 1);
        g_autoptr(GError) error = NULL;
        SnapRevertFlags flags = 0;

        for (gsize i = 0; i < len; i++)
            buf[i] = alphabet[g_test_rand_int_range(0, sizeof(alphabet) - 1)];
        if (snap_revert_flags_parse(len > 0 ? buf : NULL, len, &flags, &error)) {
            g_assert_no_error(error);
            g_assert_false((flags & SNAP_REVERT_RUNNING) && (flags & SNAP_REVERT_PAUSED));
        } else {
            g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
        }
    }
}

static void
assert_action_ok(const char *buf, gsize len, SnapDomainAction expected)
{
    g_autofree char *copy = exact_copy(buf, len);
    g_autoptr(GError) error = NULL;
    SnapDomainAction action = 99;

    g_assert_true(snap_domain_action_parse(copy, len, &action, &error));
    g_assert_no_error(error);
    g_assert_cmpint(action, ==, expected);
}

static void
assert_action_bad(const char *buf, gsize len, const char *why)
{
    g_autofree char *copy = exact_copy(buf, len);
    g_autoptr(GError) error = NULL;
    SnapDomainAction action = 99;

    g_assert_false(snap_domain_action_parse(copy, len, &action, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_test_message("refused: %s", error->message);
    g_assert_nonnull(strstr(error->message, why));
    g_assert_cmpint(action, ==, 99);
}

#define ACTION_OK(s, a) assert_action_ok(s, sizeof(s) - 1, a)
#define ACTION_BAD(s, why) assert_action_bad(s, sizeof(s) - 1, why)

static void
test_action_words(void)
{
    ACTION_OK("start", SNAP_ACTION_START);
    ACTION_OK("start\n", SNAP_ACTION_START);
    ACTION_OK("shutdown\n", SNAP_ACTION_SHUTDOWN);
    ACTION_OK("destroy\r\n", SNAP_ACTION_DESTROY);
    ACTION_OK("pause \n", SNAP_ACTION_PAUSE);
    ACTION_OK(" resume\t\n", SNAP_ACTION_RESUME);
}

static void
test_action_bad(void)
{
    g_autofree char *junk = g_malloc(1024 * 1024);

    assert_action_bad(NULL, 0, "got 0 words");
    ACTION_BAD("", "got 0 words");
    ACTION_BAD("\n", "got 0 words");
    ACTION_BAD("start stop\n", "got 2 words");
    ACTION_BAD("start start\n", "got 2 words");
    ACTION_BAD("stop\n", "unknown word 'stop'");
    ACTION_BAD("START\n", "unknown word 'START'");
    ACTION_BAD("running\n", "unknown word 'running'");
    ACTION_BAD("start\0", "NUL");
    ACTION_BAD("start\nstart\n", "only one line");

    memset(junk, 'A', 1024 * 1024);
    assert_action_bad(junk, 1024 * 1024, "at most 4096");
    for (gsize i = 0; i < 1024 * 1024; i++)
        junk[i] = (char)g_test_rand_int_range(0, 256);
    assert_action_bad(junk, 1024 * 1024, "at most 4096");
}

/* .forget: MODE, one space, then the name up to one trailing newline. */
static void
test_forget_lines(void)
{
    static const struct {
        const char *line;
        SnapDeleteFlags flags;
        const char *name;
    } good[] = {
        {"snapshot s1\n", SNAP_DELETE_METADATA_ONLY, "s1"},
        {"snapshot s1", SNAP_DELETE_METADATA_ONLY, "s1"},
        {"children a b \n", SNAP_DELETE_METADATA_ONLY | SNAP_DELETE_CHILDREN, "a b "},
        {"children-only x", SNAP_DELETE_METADATA_ONLY | SNAP_DELETE_CHILDREN_ONLY, "x"},
        /* One space separates: a second one starts the name. */
        {"snapshot  s1", SNAP_DELETE_METADATA_ONLY, " s1"},
    };
    static const char *const bad[] = {
        "",
        "\n",
        "snapshot",
        "snapshot \n",
        "bogus s1",
        "Snapshot s1",
        "snapshot .x",
        "snapshot a/b",
        "snapshot s1\n\n",
        "children-only",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(good); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *name = NULL;
        SnapDeleteFlags flags = 0;

        g_assert_true(
            snap_forget_parse(good[i].line, strlen(good[i].line), &flags, &name, &error));
        g_assert_no_error(error);
        g_assert_cmpint(flags, ==, good[i].flags);
        g_assert_cmpstr(name, ==, good[i].name);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *name = NULL;

        g_assert_false(snap_forget_parse(bad[i], strlen(bad[i]), NULL, &name, &error));
        g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
        g_assert_null(name);
    }
}

static void
test_undefine_words(void)
{
    static const char *const bad[] = {"",           "\n",    "Full", "metadata full",
                                      "full\nfull", "delete"};
    SnapUndefineMode mode = SNAP_UNDEFINE_FULL;

    g_assert_true(snap_undefine_mode_parse("metadata\n", 9, &mode, NULL));
    g_assert_cmpint(mode, ==, SNAP_UNDEFINE_METADATA);
    g_assert_true(snap_undefine_mode_parse(" full ", 6, &mode, NULL));
    g_assert_cmpint(mode, ==, SNAP_UNDEFINE_FULL);
    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;

        g_assert_false(snap_undefine_mode_parse(bad[i], strlen(bad[i]), &mode, &error));
        g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    }
    g_assert_false(snap_undefine_mode_parse("full\0", 5, &mode, NULL));
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/control-words/revert/empty", test_revert_empty);
    g_test_add_func("/control-words/forget/lines", test_forget_lines);
    g_test_add_func("/control-words/undefine/words", test_undefine_words);
    g_test_add_func("/control-words/revert/words", test_revert_words);
    g_test_add_func("/control-words/revert/exclusive", test_revert_exclusive);
    g_test_add_func("/control-words/revert/unknown", test_revert_unknown);
    g_test_add_func("/control-words/revert/binary", test_revert_binary);
    g_test_add_func("/control-words/revert/fuzzish", test_revert_fuzzish);
    g_test_add_func("/control-words/action/words", test_action_words);
    g_test_add_func("/control-words/action/bad", test_action_bad);
    return g_test_run();
}
