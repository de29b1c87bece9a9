/* replay.c: runs a fuzz target over files, without libFuzzer, so that the
 * seed corpus and the kept reproducers are regression tests of every
 * build (gcc, ASan). Arguments: files or directories of inputs. */
#include <glib.h>

#include "fuzz-common.h"

static int
replay_file(const char *path)
{
    g_autofree char *data = NULL;
    gsize len = 0;

    if (!g_file_get_contents(path, &data, &len, NULL)) {
        fprintf(stderr, "cannot read %s\n", path);
        return 1;
    }
    LLVMFuzzerTestOneInput((const uint8_t *)data, len);
    return 0;
}

int
main(int argc, char **argv)
{
    guint n = 0;
    int failed = 0;

    LLVMFuzzerInitialize(&argc, &argv);
    for (int i = 1; i < argc; i++) {
        g_autoptr(GDir) dir = g_dir_open(argv[i], 0, NULL);
        const char *name;

        if (dir == NULL) {
            failed |= replay_file(argv[i]);
            n++;
            continue;
        }
        while ((name = g_dir_read_name(dir)) != NULL) {
            g_autofree char *path = g_build_filename(argv[i], name, NULL);

            failed |= replay_file(path);
            n++;
        }
    }
    /* A finding aborts inside the target; reaching here means none. */
    printf("%u inputs replayed\n", n);
    return failed;
}
