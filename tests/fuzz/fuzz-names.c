/* fuzz-names.c: snap_name_validate() against DESIGN.md's rules for names. */
#include "fuzz-common.h"

#include "snap-names.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_make_criticals_fatal();
    return 0;
}

/* DESIGN.md "Names and bad input", restated without snap-names.c: valid
 * UTF-8, 1..200 bytes, no '/', no control character, not "." or "..",
 * not starting with '.', not reserved. */
static gboolean
reference_valid(const char *name)
{
    static const char *const reserved[] = {
        "metadata.xml", "revert",  "disks",  "files",  "screen.png", "domain.xml",
        "state",        "current", "create", "errors", "job",        NULL,
    };
    gsize len = strlen(name);

    if (len < 1 || len > 200 || !g_utf8_validate(name, -1, NULL))
        return FALSE;
    if (strchr(name, '/') != NULL || name[0] == '.')
        return FALSE;
    for (const char *p = name; *p != '\0'; p = g_utf8_next_char(p)) {
        if (g_unichar_iscntrl(g_utf8_get_char(p)))
            return FALSE;
    }
    return !g_strv_contains(reserved, name);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    /* A name reaches the core as a C string: it ends at the first NUL. */
    g_autofree char *name = g_strndup(size > 0 ? (const char *)data : "", size);
    gboolean ok = snap_name_validate(name, &error);

    fuzz_check_result(ok, error);
    if (ok != reference_valid(name))
        fuzz_fail(ok ? "accepted a name DESIGN.md forbids"
                     : "refused a name DESIGN.md allows",
                  error);
    /* The reason is quoted into the errors file: short, whatever the name. */
    if (!ok && strlen(error->message) > 1024)
        fuzz_fail("error message longer than 1024 bytes", error);
    return 0;
}
