/* fuzz-snapshot-xml.c: snapshot_xml_parse() and the format/parse round trip. */
#include "fuzz-common.h"

#include "snapshot-xml.h"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_make_criticals_fatal();
    return 0;
}

/* Formats @def, parses the result and formats that again: the second
 * text must equal the first (snapshot-xml.h promises
 * format(parse(x)) == x for every x format produces), and <active> must
 * be there exactly when @current asks for it. */
static void
check_round_trip(const SnapshotDef *def, gboolean current)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *first = snapshot_xml_format(def, current);
    g_autoptr(SnapshotDef) again = NULL;
    g_autofree char *second = NULL;

    if (first == NULL)
        fuzz_fail("snapshot_xml_format() returned NULL", NULL);
    again = snapshot_xml_parse(first, strlen(first), &error);
    if (again == NULL) {
        fprintf(stderr, "---- formatted:\n%s\n", first);
        fuzz_fail("snapshot_xml_format() output does not parse", error);
    }
    if (again->active != (current ? 1 : -1))
        fuzz_mismatch("<active> not as asked by @current", first, current ? "1" : "-1");
    second = snapshot_xml_format(again, current);
    if (strcmp(first, second) != 0)
        fuzz_mismatch("snapshot XML round trip is not stable", first, second);
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SnapshotDef) def = snapshot_xml_parse((const char *)data, size, &error);

    fuzz_check_result(def != NULL, error);
    if (def == NULL)
        return 0;
    check_round_trip(def, def->active == 1);
    /* The other @current too: it must not disturb the rest. */
    check_round_trip(def, def->active != 1);
    return 0;
}
