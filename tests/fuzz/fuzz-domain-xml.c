/* fuzz-domain-xml.c: domain_def_parse() and the format/parse round trip. */
#include "fuzz-common.h"

#include "domain-def.h"

/* Relative <source file> paths resolve against this, as under a mount's
 * state directory. */
#define BASE_DIR "/state"

int
LLVMFuzzerInitialize(int *argc, char ***argv)
{
    fuzz_make_criticals_fatal();
    return 0;
}

int
LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomainDef) def =
        domain_def_parse((const char *)data, size, BASE_DIR, &error);
    g_autoptr(DomainDef) again = NULL;
    g_autofree char *first = NULL;
    g_autofree char *second = NULL;

    fuzz_check_result(def != NULL, error);
    if (def == NULL)
        return 0;

    /* What the parser accepted it resolved: every kept source is absolute. */
    for (guint i = 0; i < def->disks->len; i++) {
        const DomainDisk *disk = g_ptr_array_index(def->disks, i);

        if (!g_path_is_absolute(disk->source))
            fuzz_mismatch("a disk source is not absolute", disk->target, disk->source);
    }

    first = domain_def_format(def);
    if (first == NULL)
        fuzz_fail("domain_def_format() returned NULL", NULL);
    again = domain_def_parse(first, strlen(first), BASE_DIR, &error);
    if (again == NULL) {
        fprintf(stderr, "---- formatted:\n%s\n", first);
        fuzz_fail("domain_def_format() output does not parse", error);
    }
    second = domain_def_format(again);
    if (strcmp(first, second) != 0)
        fuzz_mismatch("domain XML round trip is not stable", first, second);
    return 0;
}
