/* test-names.c: snapshot name validation, rule by rule, at the boundaries. */
#include <string.h>

#include "snap-error.h"
#include "snap-names.h"

static void
assert_valid(const char *name)
{
    g_autoptr(GError) error = NULL;

    g_test_message("valid: %s", name);
    g_assert_true(snap_name_validate(name, &error));
    g_assert_no_error(error);
}

/* Asserts @name is refused with a message containing @why, and that the
 * message carries no raw control character (it goes to logs). */
static void
assert_invalid(const char *name, const char *why)
{
    g_autoptr(GError) error = NULL;

    g_assert_false(snap_name_validate(name, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_test_message("refused: %s", error->message);
    g_assert_nonnull(strstr(error->message, why));
    g_assert_true(g_utf8_validate(error->message, -1, NULL));
    for (const char *p = error->message; *p != '\0'; p = g_utf8_next_char(p)) {
        gunichar c = g_utf8_get_char(p);

        g_assert_true(c >= 0x20 && c != 0x7f && (c < 0x80 || c > 0x9f));
    }
}

static char *
repeat(const char *unit, guint times)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < times; i++)
        g_string_append(s, unit);
    return g_string_free(s, FALSE);
}

static void
test_valid(void)
{
    assert_valid("s1");
    assert_valid("before upgrade");
    assert_valid("a.b");
    assert_valid("snap.");
    assert_valid("x..y");
    assert_valid("-rf");
    assert_valid("Revert"); /* reserved names are case-sensitive */
    assert_valid("metadata.xml.bak");
    assert_valid("current2");
    assert_valid("Überprüfung-€-日本");
    assert_valid("nbsp\xc2\xa0ok"); /* U+00A0 is not a control character */
    assert_valid("1795299439");
}

static void
test_empty(void)
{
    assert_invalid("", "empty");
    assert_invalid(NULL, "empty");
}

static void
test_length(void)
{
    g_autofree char *ascii200 = repeat("a", 200);
    g_autofree char *ascii201 = repeat("a", 201);
    g_autofree char *two_byte200 = repeat("\xc3\xa9", 100);      /* é: 100 chars */
    g_autofree char *three_byte201 = repeat("\xe2\x82\xac", 67); /* €: 67 chars */
    g_autofree char *three_byte198 = repeat("\xe2\x82\xac", 66);
    g_autofree char *huge = repeat("b", 100000);
    g_autoptr(GError) error = NULL;

    assert_valid("a");
    assert_valid(ascii200);
    assert_invalid(ascii201, "201 bytes");
    assert_valid(two_byte200);
    assert_valid(three_byte198);
    /* 67 characters, but 201 bytes: the limit counts bytes. */
    assert_invalid(three_byte201, "201 bytes");
    assert_invalid(huge, "at most 200");

    /* The message quotes only the start of a long name. */
    g_assert_false(snap_name_validate(huge, &error));
    g_assert_cmpuint(strlen(error->message), <, 200);
}

static void
test_slash(void)
{
    assert_invalid("a/b", "'/'");
    assert_invalid("/", "'/'");
    assert_invalid("trailing/", "'/'");
}

static void
test_control(void)
{
    assert_invalid("tab\there", "control character U+0009");
    assert_invalid("new\nline", "control character U+000A");
    assert_invalid("\x01", "control character U+0001");
    assert_invalid("esc\x1b[31m", "control character U+001B");
    assert_invalid("del\x7f", "control character U+007F");
    assert_invalid("c1\xc2\x80", "control character U+0080");
    assert_invalid("nel\xc2\x85", "control character U+0085");
    assert_invalid("c1\xc2\x9f", "control character U+009F");
    /* The name is quoted readably, its control characters escaped. */
    assert_invalid("\xe2\x82\xac-\x1b]0;x\x07", "'\xe2\x82\xac-\\u001B]0;x\\u0007'");
    assert_invalid("nel\xc2\x85", "'nel\\u0085'");
}

static void
test_utf8(void)
{
    assert_invalid("\xff", "not valid UTF-8");
    assert_invalid("latin1-\xe9t\xe9", "not valid UTF-8");
    assert_invalid("overlong-\xc0\xaf", "not valid UTF-8");
    assert_invalid("truncated-\xe2\x82", "not valid UTF-8");
    assert_invalid("surrogate-\xed\xa0\x80", "not valid UTF-8");
}

static void
test_dots(void)
{
    assert_invalid(".", "'.' and '..'");
    assert_invalid("..", "'.' and '..'");
    assert_invalid(".hidden", "start with '.'");
    assert_invalid("...", "start with '.'");
    assert_invalid(".by-name", "start with '.'");
}

static void
test_reserved(void)
{
    static const char *const expected[] = {
        "metadata.xml", "revert", "disks",  "files", "domain.xml", "state",
        "current",      "create", "errors", "job",   NULL,
    };
    guint n = 0;

    for (; snap_reserved_names[n] != NULL; n++)
        g_assert_true(g_strv_contains(expected, snap_reserved_names[n]));
    g_assert_cmpuint(n, ==, g_strv_length((char **)expected));

    for (guint i = 0; expected[i] != NULL; i++)
        assert_invalid(expected[i], "reserved");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/names/valid", test_valid);
    g_test_add_func("/names/empty", test_empty);
    g_test_add_func("/names/length", test_length);
    g_test_add_func("/names/slash", test_slash);
    g_test_add_func("/names/control", test_control);
    g_test_add_func("/names/utf8", test_utf8);
    g_test_add_func("/names/dots", test_dots);
    g_test_add_func("/names/reserved", test_reserved);
    return g_test_run();
}
