/* snaptreefs-export: writes a domain of a snaptreefs STATE directory and its
 * snapshot tree in libvirt's layout, with a virsh script that redefines them. */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <glib/gstdio.h>
#include <libxml/tree.h>

#include "interchange.h"
#include "snap-error.h"
#include "snapshot-store.h"
#include "snapshot-xml.h"
#include "xml-writer.h"

static const char usage_text[] =
    "Usage: snaptreefs-export STATE_DIR DOMAIN OUT_DIR\n"
    "\n"
    "Writes DOMAIN of STATE_DIR as libvirt keeps it, into OUT_DIR (created; it\n"
    "must be empty or absent):\n"
    "  OUT_DIR/DOMAIN.xml                 the <domain> (disk paths made absolute)\n"
    "  OUT_DIR/snapshot/DOMAIN/SNAP.xml   one <domainsnapshot> per snapshot, the\n"
    "                                     current one with <active>1</active>\n"
    "  OUT_DIR/redefine.virsh             virsh commands: define, then\n"
    "                                     snapshot-create --redefine [--current],\n"
    "                                     parents first\n"
    "Run the script with `virsh -c URI < OUT_DIR/redefine.virsh`. No disk is read\n"
    "or written; STATE_DIR is only read.\n";

static int
fail(const char *what, const GError *error)
{
    fprintf(stderr, "snaptreefs-export: %s%s%s\n", what, error ? ": " : "",
            error ? error->message : "");
    return EXIT_FAILURE;
}

/* The domain's own file, with each relative <source file> made absolute
 * (relative ones are relative to STATE_DIR here, to nothing in libvirt);
 * everything else as stored. (transfer full) */
static char *
domain_xml_for_libvirt(const char *state_dir, const char *path, GError **error)
{
    g_autofree char *text = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    xmlNodePtr devices;
    xmlChar *out = NULL;
    int out_len = 0;
    char *result;
    gsize len;

    if (!g_file_get_contents(path, &text, &len, error))
        return NULL;
    doc = xml_parse_safe(text, len, error);
    if (doc == NULL)
        return NULL;
    devices = xml_child(xmlDocGetRootElement(doc), "devices");
    for (xmlNodePtr disk = devices ? devices->children : NULL; disk; disk = disk->next) {
        xmlNodePtr source;
        g_autofree char *file = NULL;

        if (disk->type != XML_ELEMENT_NODE || !xmlStrEqual(disk->name, BAD_CAST "disk"))
            continue;
        source = xml_child(disk, "source");
        file = xml_prop(source, "file");
        if (file != NULL && !g_path_is_absolute(file)) {
            g_autofree char *abs = g_canonicalize_filename(file, state_dir);

            xmlSetProp(source, BAD_CAST "file", BAD_CAST abs);
        }
    }
    xmlDocDumpMemory(doc, &out, &out_len);
    result = g_strndup((const char *)out, out_len);
    xmlFree(out);
    return result;
}

static gboolean
write_file(const char *path, const char *text, GError **error)
{
    return snap_store_write_atomic(path, text, strlen(text), error);
}

/* The snapshots of STATE_DIR/snapshots/DOMAIN, and which is current: of
 * several claimants the last written, as snaptreefs decides. */
static gboolean
read_snapshots(const char *dir, GPtrArray *defs, const char **current, GError **error)
{
    g_autoptr(GDir) d = g_dir_open(dir, 0, NULL);
    gint64 current_mtime = G_MININT64;
    const char *f;

    *current = NULL;
    while (d && (f = g_dir_read_name(d)) != NULL) {
        g_autofree char *path = NULL;
        SnapshotDef *def;
        GStatBuf st;

        if (f[0] == '.' || !g_str_has_suffix(f, ".xml"))
            continue;
        path = g_build_filename(dir, f, NULL);
        def = interchange_read_snapshot(path, error);
        if (def == NULL)
            return FALSE;
        g_ptr_array_add(defs, def);
        if (def->active == 1 && g_stat(path, &st) == 0 &&
            (gint64)st.st_mtime * 1000000000 + st.st_mtim.tv_nsec > current_mtime) {
            current_mtime = (gint64)st.st_mtime * 1000000000 + st.st_mtim.tv_nsec;
            *current = def->name;
        }
    }
    return TRUE;
}

int
main(int argc, char **argv)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) defs =
        g_ptr_array_new_with_free_func((GDestroyNotify)snapshot_def_free);
    g_autoptr(GPtrArray) order = NULL;
    g_autoptr(GString) script = g_string_new(NULL);
    g_autofree char *domain_file = NULL;
    g_autofree char *domain_path = NULL;
    g_autofree char *snap_src = NULL;
    g_autofree char *out_dir = NULL;
    g_autofree char *snap_out = NULL;
    g_autofree char *out_domain = NULL;
    g_autofree char *domain_xml = NULL;
    g_autofree char *quoted = NULL;
    g_autofree char *script_path = NULL;
    g_autoptr(GDir) existing = NULL;
    const char *current = NULL;
    const char *domain;

    if (argc == 2 && (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0)) {
        fputs(usage_text, stdout);
        return EXIT_SUCCESS;
    }
    if (argc != 4) {
        fputs(usage_text, stderr);
        return 2;
    }
    domain = argv[2];
    if (!interchange_domain_name_ok(domain, &error))
        return fail("bad domain", error);
    domain_file = g_strconcat(domain, ".xml", NULL);
    domain_path = g_build_filename(argv[1], "domains", domain_file, NULL);
    snap_src = g_build_filename(argv[1], "snapshots", domain, NULL);
    out_dir = g_canonicalize_filename(argv[3], NULL);
    snap_out = g_build_filename(out_dir, "snapshot", domain, NULL);
    out_domain = g_build_filename(out_dir, domain_file, NULL);
    script_path = g_build_filename(out_dir, "redefine.virsh", NULL);

    domain_xml = domain_xml_for_libvirt(argv[1], domain_path, &error);
    if (domain_xml == NULL)
        return fail("cannot read the domain", error);
    if (!read_snapshots(snap_src, defs, &current, &error))
        return fail("cannot read the snapshots", error);
    order = interchange_order(defs, &error);
    if (order == NULL)
        return fail("the snapshots do not form a tree", error);
    existing = g_dir_open(out_dir, 0, NULL);
    if (existing != NULL && g_dir_read_name(existing) != NULL) {
        fprintf(stderr, "snaptreefs-export: %s is not empty\n", out_dir);
        return EXIT_FAILURE;
    }
    if (g_mkdir_with_parents(snap_out, 0755) < 0) {
        fprintf(stderr, "snaptreefs-export: cannot create %s: %s\n", snap_out,
                g_strerror(errno));
        return EXIT_FAILURE;
    }
    if (!write_file(out_domain, domain_xml, &error))
        return fail("cannot write", error);
    quoted = g_shell_quote(out_domain);
    g_string_append_printf(script, "define %s\n", quoted);
    for (guint i = 0; i < order->len; i++) {
        SnapshotDef *def = order->pdata[i];
        gboolean is_current = g_strcmp0(def->name, current) == 0;
        g_autofree char *text = snapshot_xml_format(def, is_current);
        g_autofree char *file = g_strconcat(def->name, ".xml", NULL);
        g_autofree char *path = g_build_filename(snap_out, file, NULL);
        g_autofree char *qdom = g_shell_quote(domain);
        g_autofree char *qpath = g_shell_quote(path);

        if (!write_file(path, text, &error))
            return fail("cannot write", error);
        g_string_append_printf(script, "snapshot-create %s --redefine%s %s\n", qdom,
                               is_current ? " --current" : "", qpath);
    }
    if (!write_file(script_path, script->str, &error))
        return fail("cannot write", error);
    printf("exported domain %s with %u snapshots%s%s to %s\n", domain, order->len,
           current ? ", current " : "", current ? current : "", out_dir);
    return EXIT_SUCCESS;
}
