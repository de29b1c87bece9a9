/* test-external.c: external snapshots' files: what a snapshot froze, new
 * names that never clobber, renames in metadata, journaled plans, and the
 * qemu-img chain operations they run. */
#include <glib.h>
#include <glib/gstdio.h>
#include <string.h>

#include "journal.h"
#include "qemu-img.h"
#include "snap-error.h"
#include "snap-external.h"
#include "snapshot-xml.h"

static const char *ext_xml =
    "<domainsnapshot>\n"
    "  <name>s1</name>\n"
    "  <state>shutoff</state>\n"
    "  <creationTime>1000</creationTime>\n"
    "  <memory snapshot='no'/>\n"
    "  <disks>\n"
    "    <disk name='vda' snapshot='external'>\n"
    "      <driver type='qcow2'/>\n"
    "      <source file='/img/vm-vda.s1.qcow2'/>\n"
    "    </disk>\n"
    "    <disk name='vdb' snapshot='no'/>\n"
    "  </disks>\n"
    "  <domain type='kvm'>\n"
    "    <name>vm</name>\n"
    "    <memory unit='KiB'>65536</memory>\n"
    "    <vcpu>1</vcpu>\n"
    "    <os><type arch='x86_64' machine='pc'>hvm</type></os>\n"
    "    <devices>\n"
    "      <disk type='file' device='disk' snapshot='external'>\n"
    "        <driver name='qemu' type='qcow2'/>\n"
    "        <source file='/img/vm-vda.qcow2'/>\n"
    "        <target dev='vda' bus='virtio'/>\n"
    "      </disk>\n"
    "      <disk type='file' device='disk' snapshot='no'>\n"
    "        <driver name='qemu' type='raw'/>\n"
    "        <source file='/img/vm-vdb.raw'/>\n"
    "        <target dev='vdb' bus='virtio'/>\n"
    "      </disk>\n"
    "    </devices>\n"
    "  </domain>\n"
    "</domainsnapshot>\n";

static SnapshotDef *
parse(const char *xml)
{
    g_autoptr(GError) error = NULL;
    SnapshotDef *def = snapshot_xml_parse(xml, strlen(xml), &error);

    g_assert_no_error(error);
    return def;
}

static void
test_frozen_files(void)
{
    g_autoptr(SnapshotDef) def = parse(ext_xml);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) disks = NULL;
    SnapExtDisk *d;

    g_assert_true(snap_external_is_external(def));
    g_assert_false(snap_external_is_internal(def));
    disks = snap_external_disks(def, NULL, &error);
    g_assert_no_error(error);
    /* vdb has snapshot='no': not part of it. */
    g_assert_cmpuint(disks->len, ==, 1);
    d = disks->pdata[0];
    g_assert_cmpstr(d->target, ==, "vda");
    g_assert_cmpstr(d->frozen, ==, "/img/vm-vda.qcow2");
    g_assert_cmpstr(d->frozen_format, ==, "qcow2");
    g_assert_cmpstr(d->overlay, ==, "/img/vm-vda.s1.qcow2");

    /* Without its <domain> nobody knows which file froze. */
    g_clear_pointer(&def->domain_xml, g_free);
    g_clear_pointer(&disks, g_ptr_array_unref);
    disks = snap_external_disks(def, NULL, &error);
    g_assert_null(disks);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
}

static void
test_rename(void)
{
    g_autoptr(SnapshotDef) def = parse(ext_xml);
    g_autofree char *xml = NULL;
    g_autoptr(SnapshotDef) again = NULL;
    g_autoptr(GPtrArray) disks = NULL;

    g_assert_false(snap_external_rename_file(def, "/img/none", "/img/x", NULL));
    g_assert_true(
        snap_external_rename_file(def, "/img/vm-vda.qcow2", "/img/merged.qcow2", NULL));
    g_assert_true(
        snap_external_rename_file(def, "/img/vm-vda.s1.qcow2", "/img/o.qcow2", NULL));
    xml = snapshot_xml_format(def, FALSE);
    again = parse(xml);
    disks = snap_external_disks(again, NULL, NULL);
    g_assert_cmpstr(((SnapExtDisk *)disks->pdata[0])->frozen, ==, "/img/merged.qcow2");
    g_assert_cmpstr(((SnapExtDisk *)disks->pdata[0])->overlay, ==, "/img/o.qcow2");
    /* The other disk is untouched. */
    g_assert_nonnull(strstr(xml, "/img/vm-vdb.raw"));
}

static void
test_reserve_never_clobbers(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-external-XXXXXX", NULL);
    g_autofree char *taken = g_build_filename(dir, "vm-vda.s1.qcow2", NULL);
    g_autofree char *a = NULL;
    g_autofree char *b = NULL;
    g_autofree char *c = NULL;
    g_autofree char *content = NULL;
    g_autoptr(GError) error = NULL;
    char long_name[201];

    g_assert_true(g_file_set_contents(taken, "mine", -1, NULL));
    a = snap_external_reserve_file(dir, "vm", "vda", "s1", "qcow2", &error);
    g_assert_no_error(error);
    b = snap_external_reserve_file(dir, "vm", "vda", "s1", "qcow2", &error);
    g_assert_no_error(error);
    g_assert_true(g_str_has_suffix(a, "/vm-vda.s1-1.qcow2"));
    g_assert_true(g_str_has_suffix(b, "/vm-vda.s1-2.qcow2"));
    g_assert_true(g_file_get_contents(taken, &content, NULL, NULL));
    g_assert_cmpstr(content, ==, "mine");

    /* A 200-byte snapshot name still gives a name a filesystem takes. */
    memset(long_name, 'x', 200);
    long_name[200] = '\0';
    c = snap_external_reserve_file(dir, "vm", "vda", long_name, "qcow2", &error);
    g_assert_no_error(error);
    g_assert_cmpuint(strlen(strrchr(c, '/') + 1), <, 255);

    g_unlink(a);
    g_unlink(b);
    g_unlink(c);
    g_unlink(taken);
    g_rmdir(dir);
}

static void
test_journal_steps(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-external-XXXXXX", NULL);
    g_autoptr(GPtrArray) steps =
        g_ptr_array_new_with_free_func((GDestroyNotify)g_strfreev);
    g_autoptr(GError) error = NULL;
    g_autoptr(SnapJournal) j = NULL;
    g_autofree char *jdir = g_build_filename(dir, "journal", NULL);
    g_autofree char *jfile = g_build_filename(jdir, "vm.json", NULL);

    g_ptr_array_add(steps,
                    g_strdupv((char *[]){"commit", "/img/top", "/img/base", NULL}));
    g_ptr_array_add(steps, g_strdupv((char *[]){"remove", "/img/top", NULL}));
    g_assert_true(
        snap_journal_write_steps(dir, "vm", "delete", "s1", 0, NULL, steps, 1, &error));
    g_assert_no_error(error);
    j = snap_journal_read(dir, "vm", &error);
    g_assert_no_error(error);
    g_assert_cmpstr(j->op, ==, "delete");
    g_assert_cmpuint(j->steps->len, ==, 2);
    g_assert_cmpuint(j->done, ==, 1);
    g_assert_cmpstr(((char **)j->steps->pdata[0])[2], ==, "/img/base");
    g_assert_cmpstr(((char **)j->steps->pdata[1])[0], ==, "remove");
    g_unlink(jfile);
    g_rmdir(jdir);
    g_rmdir(dir);
}

/* qemu-img create -b, chain, commit and rebase on real images. */
static void
test_chain_operations(void)
{
    g_autofree char *dir = g_dir_make_tmp("test-external-XXXXXX", NULL);
    g_autofree char *base = g_build_filename(dir, "base.qcow2", NULL);
    g_autofree char *mid = g_build_filename(dir, "mid.qcow2", NULL);
    g_autofree char *top = g_build_filename(dir, "top.qcow2", NULL);
    g_autoptr(GError) error = NULL;
    g_autoptr(GPtrArray) files = NULL;
    g_autoptr(GPtrArray) formats = NULL;

    g_assert_true(qemu_img_create(base, "qcow2", 1 << 20, &error));
    g_assert_true(qemu_img_create_overlay(mid, base, "qcow2", &error));
    g_assert_true(qemu_img_create_overlay(top, mid, "qcow2", &error));
    g_assert_no_error(error);
    g_assert_true(qemu_img_chain(top, "qcow2", &files, &formats, NULL, &error));
    g_assert_cmpuint(files->len, ==, 3);
    g_assert_cmpstr(files->pdata[1], ==, mid);
    g_assert_cmpstr(files->pdata[2], ==, base);
    g_assert_cmpstr(formats->pdata[2], ==, "qcow2");
    g_clear_pointer(&files, g_ptr_array_unref);
    g_clear_pointer(&formats, g_ptr_array_unref);

    /* mid merges into base; top then rests on base. */
    g_assert_true(qemu_img_commit(mid, base, NULL, NULL, NULL, &error));
    g_assert_true(qemu_img_rebase(top, base, "qcow2", TRUE, NULL, NULL, NULL, &error));
    g_assert_no_error(error);
    g_assert_true(qemu_img_chain(top, "qcow2", &files, NULL, NULL, &error));
    g_assert_cmpuint(files->len, ==, 2);
    g_assert_cmpstr(files->pdata[1], ==, base);
    g_clear_pointer(&files, g_ptr_array_unref);

    /* A safe rebase onto nothing makes top stand alone. */
    g_assert_true(qemu_img_rebase(top, NULL, NULL, FALSE, NULL, NULL, NULL, &error));
    g_assert_true(qemu_img_chain(top, "qcow2", &files, NULL, NULL, &error));
    g_assert_cmpuint(files->len, ==, 1);

    g_unlink(top);
    g_unlink(mid);
    g_unlink(base);
    g_rmdir(dir);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/external/frozen-files", test_frozen_files);
    g_test_add_func("/external/rename", test_rename);
    g_test_add_func("/external/reserve-never-clobbers", test_reserve_never_clobbers);
    g_test_add_func("/external/journal-steps", test_journal_steps);
    g_test_add_func("/external/chain-operations", test_chain_operations);
    return g_test_run();
}
