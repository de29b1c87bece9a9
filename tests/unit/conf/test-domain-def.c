/* test-domain-def.c: the <domain> subset: parse, resolve, format, round trip. */
#include <string.h>

#include "domain-def.h"
#include "snap-error.h"
#include "snapshot-xml.h"
#include "xml-writer.h"

#define DOMAIN_RNG "/usr/share/libvirt/schemas/domain.rng"
#define SNAPSHOT_RNG "/usr/share/libvirt/schemas/domainsnapshot.rng"

static char *
read_data(const char *name, gsize *len)
{
    g_autofree char *path =
        g_test_build_filename(G_TEST_DIST, "data", "domain", name, NULL);
    g_autoptr(GError) error = NULL;
    char *contents = NULL;

    g_assert_true(g_file_get_contents(path, &contents, len, &error));
    g_assert_no_error(error);
    return contents;
}

static DomainDef *
parse_ok(const char *xml, const char *base_dir)
{
    g_autoptr(GError) error = NULL;
    DomainDef *def = domain_def_parse(xml, strlen(xml), base_dir, &error);

    g_assert_no_error(error);
    g_assert_nonnull(def);
    return def;
}

static void
assert_parse_fails(const char *xml, const char *why)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(DomainDef) def = domain_def_parse(xml, strlen(xml), "/srv", &error);

    g_assert_null(def);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_test_message("refused: %s", error->message);
    g_assert_nonnull(strstr(error->message, why));
}

/* format(parse(format(x))) == format(x), and the formatted text is what
 * the golden file holds. */
static void
assert_round_trip(const DomainDef *def, const char *golden, const char *base_dir)
{
    g_autofree char *first = domain_def_format(def);
    g_autoptr(DomainDef) again = parse_ok(first, base_dir);
    g_autofree char *second = domain_def_format(again);
    g_autofree char *expected = read_data(golden, NULL);

    g_assert_cmpstr(first, ==, expected);
    g_assert_cmpstr(second, ==, first);
    g_assert_true(g_str_has_suffix(first, "</domain>\n"));
    g_assert_false(g_str_has_prefix(first, "<?xml"));
}

static void
assert_validates(const char *xml, const char *rng)
{
    g_autoptr(GError) error = NULL;

    if (!g_file_test(rng, G_FILE_TEST_EXISTS)) {
        g_test_skip("libvirt's RelaxNG schemas are not installed");
        return;
    }
    g_assert_true(snapshot_xml_validate(xml, strlen(xml), rng, &error));
    g_assert_no_error(error);
}

static void
test_virsh_dumpxml(void)
{
    gsize len;
    g_autofree char *xml = read_data("virsh-test.xml", &len);
    g_autoptr(GError) error = NULL;
    g_autoptr(DomainDef) def = domain_def_parse(xml, len, "/srv/state", &error);
    g_autofree char *formatted = NULL;
    DomainDisk *disk;

    g_assert_no_error(error);
    g_assert_nonnull(def);
    g_assert_cmpstr(def->type, ==, "test");
    g_assert_cmpstr(def->name, ==, "test");
    g_assert_cmpstr(def->uuid, ==, "6695eb01-f6a4-8304-79aa-97f2502e193f");
    g_assert_cmpuint(def->memory_kib, ==, 8388608);
    g_assert_cmpuint(def->vcpus, ==, 2);
    g_assert_cmpstr(def->arch, ==, "i686");
    g_assert_null(def->machine);
    g_assert_null(def->emulator);
    g_assert_cmpuint(def->disks->len, ==, 1);

    disk = g_ptr_array_index(def->disks, 0);
    g_assert_cmpstr(disk->target, ==, "vda");
    g_assert_cmpstr(disk->bus, ==, "virtio");
    g_assert_cmpstr(disk->source, ==, "/guest/diskimage1");
    /* No <driver>: raw, as libvirt assumes without format probing. */
    g_assert_cmpint(disk->format, ==, DISK_FORMAT_RAW);
    g_assert_cmpint(disk->snapshot, ==, DISK_SNAPSHOT_DEFAULT);
    g_assert_cmpint(domain_disk_snapshot_mode(disk), ==, DISK_SNAPSHOT_NO);
    g_assert_true(domain_def_find_disk(def, "vda") == disk);
    g_assert_null(domain_def_find_disk(def, "vdb"));

    assert_round_trip(def, "virsh-test.out.xml", "/srv/state");
    formatted = domain_def_format(def);
    assert_validates(formatted, DOMAIN_RNG);
}

static void
test_relative_paths(void)
{
    gsize len;
    g_autofree char *xml = read_data("relative.xml", &len);
    g_autoptr(GError) error = NULL;
    g_autoptr(DomainDef) def = domain_def_parse(xml, len, "/srv/state", &error);
    g_autofree char *formatted = NULL;
    DomainDisk *disk;

    g_assert_no_error(error);
    g_assert_cmpstr(def->type, ==, "qemu");
    g_assert_cmpstr(def->name, ==, "web");
    g_assert_null(def->uuid);
    g_assert_cmpuint(def->memory_kib, ==, 2 * 1024 * 1024);
    g_assert_cmpuint(def->vcpus, ==, 4);
    g_assert_cmpstr(def->machine, ==, "pc-q35-7.2");
    g_assert_cmpstr(def->emulator, ==, "/usr/bin/qemu-system-x86_64");

    /* The cdrom and the network disk are not file disks: skipped. */
    g_assert_cmpuint(def->disks->len, ==, 3);
    g_assert_null(domain_def_find_disk(def, "sda"));
    g_assert_null(domain_def_find_disk(def, "vdc"));

    disk = domain_def_find_disk(def, "vda");
    g_assert_cmpstr(disk->source, ==, "/srv/state/images/web-root.qcow2");
    g_assert_cmpint(disk->format, ==, DISK_FORMAT_QCOW2);
    g_assert_cmpint(disk->snapshot, ==, DISK_SNAPSHOT_INTERNAL);

    disk = domain_def_find_disk(def, "vdb");
    g_assert_cmpstr(disk->source, ==, "/srv/state/images/scratch.img");
    g_assert_cmpint(disk->format, ==, DISK_FORMAT_RAW);
    g_assert_cmpint(disk->snapshot, ==, DISK_SNAPSHOT_NO);

    disk = domain_def_find_disk(def, "vdd");
    g_assert_cmpstr(disk->source, ==, "/var/lib/images/data.qcow2");
    g_assert_null(disk->bus);
    g_assert_cmpint(disk->snapshot, ==, DISK_SNAPSHOT_DEFAULT);
    g_assert_cmpint(domain_disk_snapshot_mode(disk), ==, DISK_SNAPSHOT_INTERNAL);

    assert_round_trip(def, "relative.out.xml", "/elsewhere");
    formatted = domain_def_format(def);
    assert_validates(formatted, DOMAIN_RNG);
}

static void
test_relative_without_base(void)
{
    gsize len;
    g_autofree char *xml = read_data("relative.xml", &len);
    g_autoptr(GError) error = NULL;
    g_autoptr(DomainDef) def = domain_def_parse(xml, len, NULL, &error);

    g_assert_no_error(error);
    g_assert_cmpstr(domain_def_find_disk(def, "vda")->source, ==,
                    "images/web-root.qcow2");
    g_assert_cmpstr(domain_def_find_disk(def, "vdd")->source, ==,
                    "/var/lib/images/data.qcow2");
}

static void
test_memory_units(void)
{
    static const struct {
        const char *unit; /* NULL: attribute absent */
        const char *value;
        guint64 kib;
    } table[] = {
        {NULL, "1024", 1024},
        {"b", "1024", 1},
        {"bytes", "1025", 2}, /* rounded up to whole KiB */
        {"b", "1", 1},
        {"KB", "1024", 1000},
        {"k", "7", 7},
        {"KiB", "5", 5},
        {"kib", "5", 5},
        {"MB", "1", 977}, /* 1e6 / 1024 = 976.56 */
        {"M", "1", 1024},
        {"MiB", "2", 2048},
        {"GB", "1", 976563}, /* 1e9 / 1024 = 976562.5 */
        {"G", "1", 1048576},
        {"GiB", "3", 3145728},
        {"TB", "1", 976562500},
        {"T", "1", 1073741824},
        {"TiB", "2", 2147483648},
        {"KiB", " 42 ", 42},
    };

    for (gsize i = 0; i < G_N_ELEMENTS(table); i++) {
        g_autofree char *unit = table[i].unit != NULL
                                    ? g_strdup_printf(" unit='%s'", table[i].unit)
                                    : g_strdup("");
        g_autofree char *xml = g_strdup_printf(
            "<domain type='kvm'><name>m</name><memory%s>%s</memory></domain>", unit,
            table[i].value);
        g_autoptr(DomainDef) def = parse_ok(xml, NULL);

        g_test_message("%s %s", table[i].value, table[i].unit ? table[i].unit : "(none)");
        g_assert_cmpuint(def->memory_kib, ==, table[i].kib);
    }

    assert_parse_fails("<domain type='kvm'><name>m</name><memory unit='kilos'>1</memory>"
                       "</domain>",
                       "unknown memory unit 'kilos'");
    assert_parse_fails("<domain type='kvm'><name>m</name><memory unit='KiBB'>1</memory>"
                       "</domain>",
                       "unknown memory unit");
    assert_parse_fails("<domain type='kvm'><name>m</name><memory>12abc</memory></domain>",
                       "invalid memory size '12abc'");
    assert_parse_fails("<domain type='kvm'><name>m</name><memory>-1</memory></domain>",
                       "invalid memory size");
    assert_parse_fails("<domain type='kvm'><name>m</name><memory unit='GiB'>"
                       "18446744073709551615</memory></domain>",
                       "invalid memory size");
}

static void
test_defaults(void)
{
    g_autoptr(DomainDef) def =
        parse_ok("<domain type='kvm'><name> spaced </name></domain>", NULL);
    g_autofree char *formatted = domain_def_format(def);

    g_assert_cmpstr(def->name, ==, "spaced");
    g_assert_cmpuint(def->vcpus, ==, 1);
    g_assert_cmpuint(def->memory_kib, ==, 0);
    g_assert_cmpuint(def->disks->len, ==, 0);
    g_assert_cmpstr(formatted, ==,
                    "<domain type='kvm'>\n"
                    "  <name>spaced</name>\n"
                    "  <vcpu placement='static'>1</vcpu>\n"
                    "  <os>\n"
                    "    <type>hvm</type>\n"
                    "  </os>\n"
                    "  <devices/>\n"
                    "</domain>\n");
}

static void
test_special_characters(void)
{
    const char *xml = "<domain type='kvm'><name>o'brien &amp; &lt;co&gt;</name><devices>"
                      "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
                      "<source file=\"/srv/o'brien &amp; &quot;x&quot;.qcow2\"/><target "
                      "dev='vda'/></disk>"
                      "</devices></domain>";
    g_autoptr(DomainDef) def = parse_ok(xml, NULL);
    g_autofree char *formatted = domain_def_format(def);
    g_autoptr(DomainDef) again = parse_ok(formatted, NULL);

    g_assert_cmpstr(def->name, ==, "o'brien & <co>");
    g_assert_cmpstr(domain_def_find_disk(def, "vda")->source, ==,
                    "/srv/o'brien & \"x\".qcow2");
    g_assert_nonnull(
        strstr(formatted, "file='/srv/o&apos;brien &amp; &quot;x&quot;.qcow2'"));
    g_assert_cmpstr(again->name, ==, def->name);
    g_assert_cmpstr(domain_def_find_disk(again, "vda")->source, ==,
                    domain_def_find_disk(def, "vda")->source);
}

static void
test_errors(void)
{
    assert_parse_fails("<domain type='kvm'><uuid>x</uuid></domain>", "missing <name>");
    assert_parse_fails("<domain type='kvm'><name>  </name></domain>", "missing <name>");
    assert_parse_fails("<domain><name>a</name></domain>", "missing type");
    assert_parse_fails("<domainsnapshot><name>a</name></domainsnapshot>",
                       "expected a <domain>");
    assert_parse_fails("<domain type='kvm'><name>a</name>", "does not parse");
    assert_parse_fails("not xml at all", "does not parse");
    assert_parse_fails("<!DOCTYPE domain [<!ENTITY n 'x'>]>"
                       "<domain type='kvm'><name>&n;</name></domain>",
                       "DOCTYPE");
    assert_parse_fails("<domain type='kvm'><name>a</name><vcpu>0</vcpu></domain>",
                       "invalid vcpu count '0'");
    assert_parse_fails("<domain type='kvm'><name>a</name><vcpu>two</vcpu></domain>",
                       "invalid vcpu count");
    assert_parse_fails("<domain type='kvm'><name>a</name><devices>"
                       "<disk type='file' device='disk'><source file='/a'/></disk>"
                       "</devices></domain>",
                       "no <target dev>");
    assert_parse_fails("<domain type='kvm'><name>a</name><devices>"
                       "<disk type='file' device='disk'><target dev='vda'/></disk>"
                       "</devices></domain>",
                       "disk 'vda' has no <source file>");
    assert_parse_fails("<domain type='kvm'><name>a</name><devices>"
                       "<disk type='file' device='disk'><source file='/a'/>"
                       "<target dev='vda'/></disk>"
                       "<disk type='file' device='disk'><source file='/b'/>"
                       "<target dev='vda'/></disk>"
                       "</devices></domain>",
                       "two disks have target 'vda'");
    assert_parse_fails("<domain type='kvm'><name>a</name><devices>"
                       "<disk type='file' device='disk'><driver name='qemu' type='vmdk'/>"
                       "<source file='/a'/><target dev='vda'/></disk>"
                       "</devices></domain>",
                       "driver type 'vmdk'");
    assert_parse_fails("<domain type='kvm'><name>a</name><devices>"
                       "<disk type='file' device='disk' snapshot='sometimes'>"
                       "<source file='/a'/><target dev='vda'/></disk>"
                       "</devices></domain>",
                       "unknown snapshot mode 'sometimes'");
}

static void
test_parse_node(void)
{
    const char *xml = "<wrapper><domain type='kvm'><name>inner</name></domain></wrapper>";
    g_autoptr(xmlDoc) doc = xml_parse_safe(xml, strlen(xml), NULL);
    xmlNodePtr node = xmlDocGetRootElement(doc)->children;
    g_autoptr(GError) error = NULL;
    g_autoptr(DomainDef) def = domain_def_parse_node(node, NULL, &error);
    g_autoptr(DomainDef) wrong = NULL;

    g_assert_no_error(error);
    g_assert_cmpstr(def->name, ==, "inner");

    wrong = domain_def_parse_node(xmlDocGetRootElement(doc), NULL, &error);
    g_assert_null(wrong);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
}

static void
test_strings(void)
{
    g_assert_cmpstr(disk_snapshot_mode_to_string(DISK_SNAPSHOT_NO), ==, "no");
    g_assert_cmpstr(disk_snapshot_mode_to_string(DISK_SNAPSHOT_INTERNAL), ==, "internal");
    g_assert_cmpstr(disk_snapshot_mode_to_string(DISK_SNAPSHOT_EXTERNAL), ==, "external");
    g_assert_cmpstr(disk_snapshot_mode_to_string(DISK_SNAPSHOT_MANUAL), ==, "manual");
    g_assert_cmpstr(disk_snapshot_mode_to_string(DISK_SNAPSHOT_DEFAULT), ==, "default");
    g_assert_cmpstr(disk_format_to_string(DISK_FORMAT_QCOW2), ==, "qcow2");
    g_assert_cmpstr(disk_format_to_string(DISK_FORMAT_RAW), ==, "raw");
}

/* A formatted domain embedded in a <domainsnapshot> is what metadata.xml
 * carries, so it must pass libvirt's snapshot schema there. */
static void
test_embedded_validates(void)
{
    gsize len;
    g_autofree char *xml = read_data("relative.xml", &len);
    g_autoptr(DomainDef) domain = domain_def_parse(xml, len, "/srv/state", NULL);
    g_autoptr(SnapshotDef) snap = snapshot_def_new();
    g_autoptr(SnapshotDiskDef) disk = g_new0(SnapshotDiskDef, 1);
    g_autofree char *formatted = NULL;

    g_assert_nonnull(domain);
    snap->name = g_strdup("s1");
    snap->state = SNAP_STATE_SHUTOFF;
    snap->creation_time = 1795299439;
    snap->memory = SNAP_MEMORY_NO;
    disk->name = g_strdup("vda");
    disk->snapshot = DISK_SNAPSHOT_INTERNAL;
    g_ptr_array_add(snap->disks, g_steal_pointer(&disk));
    snap->domain_xml = domain_def_format(domain);

    formatted = snapshot_xml_format(snap, TRUE);
    g_assert_nonnull(
        strstr(formatted, "\n  <domain type='qemu'>\n    <name>web</name>\n"));
    assert_validates(formatted, SNAPSHOT_RNG);
}

/* The guest agent channel and the display device: parsed from what virsh
 * dumpxml shows, written back in libvirt's form, which its schema takes. */
static void
test_agent_and_video(void)
{
    const char *xml =
        "<domain type='kvm'><name>g</name><devices>"
        "<disk type='file' device='disk'><driver name='qemu' type='qcow2'/>"
        "<source file='/srv/g.qcow2'/><target dev='vda' bus='virtio'/></disk>"
        "<channel type='unix'><source mode='bind' path='/run/x.agent'/>"
        "<target type='virtio' name='org.qemu.guest_agent.0' state='connected'/>"
        "<address type='virtio-serial' controller='0' bus='0' port='1'/></channel>"
        "<channel type='spicevmc'><target type='virtio' name='com.redhat.spice.0'/>"
        "</channel>"
        "<graphics type='vnc' port='-1'/>"
        "<video><model type='cirrus' vram='16384' heads='1'/></video>"
        "</devices></domain>";
    g_autoptr(DomainDef) def = parse_ok(xml, NULL);
    g_autoptr(DomainDef) plain =
        parse_ok("<domain type='kvm'><name>p</name><devices><graphics type='vnc'/>"
                 "</devices></domain>",
                 NULL);
    g_autoptr(DomainDef) none =
        parse_ok("<domain type='kvm'><name>n</name></domain>", NULL);
    g_autofree char *formatted = domain_def_format(def);
    g_autoptr(DomainDef) again = parse_ok(formatted, NULL);
    g_autofree char *formatted2 = domain_def_format(again);

    g_assert_true(def->guest_agent);
    g_assert_cmpstr(def->video, ==, "cirrus");
    g_assert_cmpstr(plain->video, ==, "vga");
    g_assert_false(plain->guest_agent);
    g_assert_null(none->video);
    g_assert_false(none->guest_agent);
    g_assert_cmpstr(formatted, ==, formatted2);
    g_assert_nonnull(strstr(formatted, "name='org.qemu.guest_agent.0'"));
    g_assert_nonnull(strstr(formatted, "<model type='cirrus'/>"));
    assert_validates(formatted, DOMAIN_RNG);
}

/* A definition libvirt wrote: file and block disks are kept (a block
 * disk's source is its <source dev>), the others are left out with a
 * note, and the ones the strict parser refuses do not fail it. */
static void
test_foreign(void)
{
    static const char xml[] =
        "<domain type='kvm'><name>lv</name><devices>"
        "<disk type='file' device='disk'><driver type='qcow2'/>"
        "<source file='/img/a.qcow2'/><target dev='vda'/></disk>"
        "<disk type='block' device='disk'><driver type='raw'/>"
        "<source dev='/dev/vg/b'/><target dev='vdb'/></disk>"
        "<disk type='network' device='disk'><driver type='raw'/>"
        "<source protocol='nbd' name='x'><host name='h'/></source>"
        "<target dev='vdc'/></disk>"
        "<disk type='file' device='disk'><driver type='vmdk'/>"
        "<source file='/img/d.vmdk'/><target dev='vdd'/></disk>"
        "<disk type='file' device='disk'><target dev='vde'/></disk>"
        "<disk type='file' device='cdrom'><target dev='sda'/></disk>"
        "</devices></domain>";
    g_autoptr(GPtrArray) skipped = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GError) error = NULL;
    g_autoptr(DomainDef) def =
        domain_def_parse_foreign(xml, strlen(xml), skipped, &error);
    g_autoptr(DomainDef) strict = NULL;

    g_assert_no_error(error);
    g_assert_cmpuint(def->disks->len, ==, 2);
    g_assert_cmpstr(((DomainDisk *)def->disks->pdata[0])->source, ==, "/img/a.qcow2");
    g_assert_cmpstr(((DomainDisk *)def->disks->pdata[1])->target, ==, "vdb");
    g_assert_cmpstr(((DomainDisk *)def->disks->pdata[1])->source, ==, "/dev/vg/b");
    g_assert_cmpuint(skipped->len, ==, 3);
    g_assert_cmpstr(skipped->pdata[0], ==,
                    "disk vdc: a network disk, neither a file nor a block device");
    g_assert_cmpstr(skipped->pdata[1], ==, "disk vdd: format vmdk (only qcow2 and raw)");
    g_assert_cmpstr(skipped->pdata[2], ==, "disk vde: no source");
    /* Ours stays strict: the vmdk disk fails it. */
    strict = domain_def_parse(xml, strlen(xml), NULL, &error);
    g_assert_null(strict);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/domain-def/virsh-dumpxml", test_virsh_dumpxml);
    g_test_add_func("/domain-def/relative-paths", test_relative_paths);
    g_test_add_func("/domain-def/relative-without-base", test_relative_without_base);
    g_test_add_func("/domain-def/memory-units", test_memory_units);
    g_test_add_func("/domain-def/defaults", test_defaults);
    g_test_add_func("/domain-def/special-characters", test_special_characters);
    g_test_add_func("/domain-def/errors", test_errors);
    g_test_add_func("/domain-def/parse-node", test_parse_node);
    g_test_add_func("/domain-def/strings", test_strings);
    g_test_add_func("/domain-def/embedded-validates", test_embedded_validates);
    g_test_add_func("/domain-def/agent-and-video", test_agent_and_video);
    g_test_add_func("/domain-def/foreign", test_foreign);
    return g_test_run();
}
