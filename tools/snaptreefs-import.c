/* snaptreefs-import: defines a libvirt domain and its whole snapshot tree in a
 * snaptreefs STATE directory, from libvirt's XML, touching no disk. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>

#include "domain-def.h"
#include "interchange.h"
#include "snap-error.h"
#include "snapshot-store.h"
#include "snapshot-xml.h"

static const char usage_text[] =
    "Usage: snaptreefs-import [--current NAME] STATE_DIR DOMAIN.xml "
    "[SNAPSHOT.xml|DIR]...\n"
    "\n"
    "Defines the domain of DOMAIN.xml (`virsh dumpxml` output) and its snapshots\n"
    "(<domainsnapshot> files: libvirt's on-disk form, where <active>1</active>\n"
    "marks the current one, or `virsh snapshot-dumpxml` output; a DIR gives all\n"
    "its *.xml files) in STATE_DIR, for snaptreefs to mount. No disk is read or\n"
    "written. Refused, with nothing written: a domain name STATE_DIR already\n"
    "has, an invalid name, XML that does not parse, a missing parent, a cycle\n"
    "of parents, a snapshot without creationTime, two current snapshots.\n"
    "\n"
    "  --current NAME   make NAME the current snapshot (whatever <active> says)\n";

static int
fail(const char *what, const GError *error)
{
    fprintf(stderr, "snaptreefs-import: %s%s%s\n", what, error ? ": " : "",
            error ? error->message : "");
    return EXIT_FAILURE;
}

static int
path_cmp(gconstpointer a, gconstpointer b)
{
    return strcmp(*(char *const *)a, *(char *const *)b);
}

/* The snapshot files named on the command line: files, or every *.xml of
 * a directory, sorted. */
static gboolean
collect_files(char **args, int nargs, GPtrArray *files, GError **error)
{
    for (int i = 0; i < nargs; i++) {
        g_autoptr(GDir) d = NULL;
        g_autoptr(GPtrArray) names = NULL;
        const char *f;

        if (!g_file_test(args[i], G_FILE_TEST_IS_DIR)) {
            g_ptr_array_add(files, g_strdup(args[i]));
            continue;
        }
        d = g_dir_open(args[i], 0, error);
        if (d == NULL)
            return FALSE;
        names = g_ptr_array_new_with_free_func(g_free);
        while ((f = g_dir_read_name(d)) != NULL)
            if (g_str_has_suffix(f, ".xml") && f[0] != '.')
                g_ptr_array_add(names, g_build_filename(args[i], f, NULL));
        g_ptr_array_sort(names, path_cmp);
        for (guint j = 0; j < names->len; j++)
            g_ptr_array_add(files, g_strdup(names->pdata[j]));
    }
    return TRUE;
}

/* Which snapshot is current: --current, else the one <active>1</active>
 * marks; NULL when none. */
static gboolean
pick_current(GPtrArray *defs, const char *option, const char **current, GError **error)
{
    *current = NULL;
    for (guint i = 0; i < defs->len; i++) {
        SnapshotDef *def = defs->pdata[i];

        if (option != NULL) {
            if (strcmp(def->name, option) == 0)
                *current = def->name;
            continue;
        }
        if (def->active != 1)
            continue;
        if (*current != NULL) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "snapshots '%s' and '%s' both say <active>1</active>; name the "
                        "current one with --current",
                        *current, def->name);
            return FALSE;
        }
        *current = def->name;
    }
    if (option != NULL && *current == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "--current %s: no such snapshot among the files", option);
        return FALSE;
    }
    return TRUE;
}

/* STATE_DIR must not know the domain yet, in any of its files. */
static gboolean
check_free(const char *state_dir, const char *name, GError **error)
{
    g_autofree char *xml = g_strconcat(name, ".xml", NULL);
    g_autofree char *json = g_strconcat(name, ".json", NULL);
    g_autofree char *def_path = g_build_filename(state_dir, "domains", xml, NULL);
    g_autofree char *snap_dir = g_build_filename(state_dir, "snapshots", name, NULL);
    g_autofree char *journal = g_build_filename(state_dir, "journal", json, NULL);
    GStatBuf st;

    if (g_file_test(def_path, G_FILE_TEST_EXISTS)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_EXISTS,
                    "domain '%s' already exists in %s", name, state_dir);
        return FALSE;
    }
    if (g_rmdir(snap_dir) < 0 && errno != ENOENT) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_EXISTS,
                    "%s holds snapshot files of an earlier domain '%s'; move them away",
                    snap_dir, name);
        return FALSE;
    }
    if (g_stat(journal, &st) == 0 && st.st_size > 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_EXISTS,
                    "%s holds an unfinished operation on an earlier domain '%s'; mount "
                    "the state directory once to finish it",
                    journal, name);
        return FALSE;
    }
    return TRUE;
}

/* Snapshot files first, the definition last: the domain exists for
 * snaptreefs only once its definition does. On failure what was written
 * goes again. */
static gboolean
write_all(const char *state_dir, const char *name, const char *domain_xml, gsize len,
          GPtrArray *order, const char *current, GError **error)
{
    g_autofree char *xml = g_strconcat(name, ".xml", NULL);
    g_autofree char *domains = g_build_filename(state_dir, "domains", NULL);
    g_autofree char *def_path = g_build_filename(domains, xml, NULL);
    g_autofree char *snap_dir = g_build_filename(state_dir, "snapshots", name, NULL);
    g_autoptr(GPtrArray) written = g_ptr_array_new_with_free_func(g_free);
    gboolean ok =
        g_mkdir_with_parents(domains, 0755) == 0 &&
        (order->len == 0 || snap_store_ensure_domain_dir(state_dir, name, error));

    if (!ok && error != NULL && *error == NULL)
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_FAILED, "cannot create %s: %s", domains,
                    g_strerror(errno));
    for (guint i = 0; ok && i < order->len; i++) {
        SnapshotDef *def = order->pdata[i];
        g_autofree char *text =
            snapshot_xml_format(def, g_strcmp0(def->name, current) == 0);
        char *path = snap_store_snapshot_path(state_dir, name, def->name);

        g_ptr_array_add(written, path);
        ok = snap_store_write_atomic(path, text, strlen(text), error);
    }
    if (ok)
        ok = snap_store_write_atomic(def_path, domain_xml, len, error);
    if (ok)
        return TRUE;
    for (guint i = 0; i < written->len; i++)
        g_unlink(written->pdata[i]);
    g_rmdir(snap_dir);
    return FALSE;
}

int
main(int argc, char **argv)
{
    g_autofree char *current_opt = NULL;
    gboolean help = FALSE;
    GOptionEntry entries[] = {
        {"current", 0, 0, G_OPTION_ARG_STRING, &current_opt, "the current snapshot",
         "NAME"},
        {"help", 'h', 0, G_OPTION_ARG_NONE, &help, "this help", NULL},
        G_OPTION_ENTRY_NULL,
    };
    g_autoptr(GOptionContext) octx = g_option_context_new(NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) files = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) defs =
        g_ptr_array_new_with_free_func((GDestroyNotify)snapshot_def_free);
    g_autoptr(GPtrArray) order = NULL;
    g_autoptr(DomainDef) ddef = NULL;
    g_autofree char *domain_xml = NULL;
    const char *current = NULL;
    gsize len;

    g_option_context_set_help_enabled(octx, FALSE);
    g_option_context_add_main_entries(octx, entries, NULL);
    if (!g_option_context_parse(octx, &argc, &argv, &error)) {
        fprintf(stderr, "snaptreefs-import: %s\n%s", error->message, usage_text);
        return 2;
    }
    if (help) {
        fputs(usage_text, stdout);
        return EXIT_SUCCESS;
    }
    if (argc < 3) {
        fputs(usage_text, stderr);
        return 2;
    }
    if (!g_file_get_contents(argv[2], &domain_xml, &len, &error))
        return fail("cannot read the domain", error);
    /* Kept relative: the file is stored as given, and the engine resolves
     * relative sources against STATE_DIR when it loads it. */
    ddef = domain_def_parse(domain_xml, len, NULL, &error);
    if (ddef == NULL)
        return fail(argv[2], error);
    if (!interchange_domain_name_ok(ddef->name, &error))
        return fail(argv[2], error);
    if (!collect_files(argv + 3, argc - 3, files, &error))
        return fail("cannot list the snapshot files", error);
    for (guint i = 0; i < files->len; i++) {
        SnapshotDef *def = interchange_read_snapshot(files->pdata[i], &error);

        if (def == NULL)
            return fail("bad snapshot file", error);
        g_ptr_array_add(defs, def);
    }
    order = interchange_order(defs, &error);
    if (order == NULL)
        return fail("the snapshots do not form a tree", error);
    if (!pick_current(defs, current_opt, &current, &error))
        return fail("cannot tell the current snapshot", error);
    if (!check_free(argv[1], ddef->name, &error))
        return fail("refused", error);
    if (!write_all(argv[1], ddef->name, domain_xml, len, order, current, &error))
        return fail("cannot write", error);
    printf("defined domain %s with %u snapshots%s%s in %s\n", ddef->name, order->len,
           current ? ", current " : "", current ? current : "", argv[1]);
    return EXIT_SUCCESS;
}
