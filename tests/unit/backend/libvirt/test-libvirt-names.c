/* test-libvirt-names.c: the libvirt backend's escaping of names, both ways, for every
 * rule. */
#include "backend-libvirt-names.h"
#include "snap-error.h"
#include "snap-names.h"

#include <string.h>

static const struct {
    const char *real;
    const char *shown;
} cases[] = {
    {"s1", "s1"},
    {"with space", "with space"},
    {"caf\xc3\xa9", "caf\xc3\xa9"},
    {"a/b", "a%2Fb"},
    {"50%", "50%25"},
    {"%2F", "%252F"},
    {".hid", "%2Ehid"},
    {".", "%2E"},
    {"..", "%2E."},
    {"a.b", "a.b"},
    {"tab\there", "tab%09here"},
    {"del\x7f", "del%7F"},
    {"bad\xff", "bad%FF"},
    {"revert", "%72evert"},
    {"metadata.xml", "%6Detadata.xml"},
    {"current", "%63urrent"},
    {"files", "%66iles"},
    {"screen.png", "%73creen.png"},
    {"reverted", "reverted"},
};

static void
test_round_trip(void)
{
    for (gsize i = 0; i < G_N_ELEMENTS(cases); i++) {
        g_autofree char *shown = lv_name_escape(cases[i].real, TRUE);
        g_autofree char *back = NULL;
        g_autoptr(GError) error = NULL;

        g_assert_cmpstr(shown, ==, cases[i].shown);
        back = lv_name_unescape(shown, TRUE, &error);
        g_assert_no_error(error);
        g_assert_cmpstr(back, ==, cases[i].real);
        /* What the tree shows is always a name the file model accepts. */
        if (strlen(shown) <= 200)
            g_assert_true(snap_name_validate(shown, NULL));
    }
}

static void
test_domain_names_keep_reserved(void)
{
    g_autofree char *shown = lv_name_escape("revert", FALSE);
    g_autofree char *dot = lv_name_escape(".d", FALSE);

    g_assert_cmpstr(shown, ==, "revert");
    g_assert_cmpstr(dot, ==, "%2Ed");
}

static void
test_not_canonical(void)
{
    static const char *const bad[] = {"a%",  "a%z1",       "%00", "%41",
                                      "%2f", "%72%65vert", "x%2"};

    for (gsize i = 0; i < G_N_ELEMENTS(bad); i++) {
        g_autoptr(GError) error = NULL;
        g_autofree char *out = lv_name_unescape(bad[i], TRUE, &error);

        g_test_message("%s: %s", bad[i], error ? error->message : "accepted");
        g_assert_null(out);
        g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    }
}

int
main(int argc, char *argv[])
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/libvirt-names/round-trip", test_round_trip);
    g_test_add_func("/libvirt-names/domain", test_domain_names_keep_reserved);
    g_test_add_func("/libvirt-names/not-canonical", test_not_canonical);
    return g_test_run();
}
