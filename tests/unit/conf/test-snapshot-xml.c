/* test-snapshot-xml.c: <domainsnapshot> round trips, schema validity, hostile input. */
#include <string.h>
#include <unistd.h>
#include <glib/gstdio.h>
#include <gio/gio.h>

#include "snap-error.h"
#include "snapshot-xml.h"
#include "xml-writer.h"

#define SNAPSHOT_RNG "/usr/share/libvirt/schemas/domainsnapshot.rng"

static char *
read_data(const char *name)
{
    g_autofree char *path =
        g_test_build_filename(G_TEST_DIST, "data", "snapshot-xml", name, NULL);
    g_autoptr(GError) error = NULL;
    char *contents = NULL;

    g_assert_true(g_file_get_contents(path, &contents, NULL, &error));
    g_assert_no_error(error);
    return contents;
}

static SnapshotDef *
parse_ok(const char *xml)
{
    g_autoptr(GError) error = NULL;
    SnapshotDef *def = snapshot_xml_parse(xml, strlen(xml), &error);

    g_assert_no_error(error);
    g_assert_nonnull(def);
    return def;
}

static void
assert_parse_fails(const char *xml, const char *why)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SnapshotDef) def = snapshot_xml_parse(xml, strlen(xml), &error);

    g_assert_null(def);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_test_message("refused: %s", error->message);
    g_assert_nonnull(strstr(error->message, why));
}

static gboolean
have_schema(void)
{
    if (g_file_test(SNAPSHOT_RNG, G_FILE_TEST_EXISTS))
        return TRUE;
    g_test_skip("libvirt's domainsnapshot.rng is not installed");
    return FALSE;
}

/* Validates @xml both through snapshot_xml_validate() and with xmllint,
 * the command DESIGN.md names. */
static void
assert_schema_valid(const char *xml)
{
    g_autoptr(GError) error = NULL;
    g_autofree char *tmp_path = NULL;
    g_autofree char *out = NULL;
    g_autofree char *err = NULL;
    int fd;
    int status;

    if (!have_schema())
        return;

    g_assert_true(snapshot_xml_validate(xml, strlen(xml), SNAPSHOT_RNG, &error));
    g_assert_no_error(error);

    fd = g_file_open_tmp("test-snapshot-xml-XXXXXX.xml", &tmp_path, &error);
    g_assert_no_error(error);
    close(fd);
    g_assert_true(g_file_set_contents(tmp_path, xml, -1, &error));
    g_assert_no_error(error);
    {
        const char *argv[] = {"xmllint",    "--noout", "--relaxng",
                              SNAPSHOT_RNG, tmp_path,  NULL};

        g_assert_true(g_spawn_sync(NULL, (char **)argv, NULL, G_SPAWN_SEARCH_PATH, NULL,
                                   NULL, &out, &err, &status, &error));
    }
    g_assert_no_error(error);
    g_unlink(tmp_path);
    if (!g_spawn_check_wait_status(status, NULL))
        g_error("xmllint refused:\n%s\n%s", xml, err);
}

/* The canonical files are what the formatter itself writes: byte equal. */
static void
test_canonical(gconstpointer data)
{
    const char *name = data;
    g_autofree char *xml = read_data(name);
    g_autoptr(SnapshotDef) def = parse_ok(xml);
    gboolean current = def->active == 1;
    g_autofree char *formatted = snapshot_xml_format(def, current);
    g_autoptr(SnapshotDef) again = parse_ok(formatted);
    g_autofree char *twice = snapshot_xml_format(again, current);

    g_assert_cmpstr(formatted, ==, xml);
    g_assert_cmpstr(twice, ==, xml);
    assert_schema_valid(formatted);
}

/* virsh's own output: stable through a round trip, and valid. */
static void
test_virsh(gconstpointer data)
{
    const char *name = data;
    g_autofree char *xml = read_data(name);
    g_autoptr(SnapshotDef) def = parse_ok(xml);
    g_autofree char *formatted = snapshot_xml_format(def, FALSE);
    g_autoptr(SnapshotDef) again = parse_ok(formatted);
    g_autofree char *twice = snapshot_xml_format(again, FALSE);
    g_autofree char *trimmed_xml = g_strchomp(g_strdup(xml));
    g_autofree char *trimmed_formatted = g_strchomp(g_strdup(formatted));

    g_assert_cmpstr(twice, ==, formatted);
    /* virsh prints one blank line after the document; the rest is equal. */
    g_assert_cmpstr(trimmed_formatted, ==, trimmed_xml);
    assert_schema_valid(formatted);
}

static void
test_fields_virsh_s2(void)
{
    g_autofree char *xml = read_data("virsh-s2.xml");
    g_autoptr(SnapshotDef) def = parse_ok(xml);
    SnapshotDiskDef *disk;

    g_assert_cmpstr(def->name, ==, "s2");
    g_assert_null(def->description);
    g_assert_cmpint(def->state, ==, SNAP_STATE_RUNNING);
    g_assert_cmpstr(def->parent, ==, "s1");
    g_assert_cmpint(def->creation_time, ==, 1795299484);
    g_assert_cmpint(def->memory, ==, SNAP_MEMORY_INTERNAL);
    g_assert_null(def->memory_file);
    g_assert_true(def->has_disks);
    g_assert_cmpuint(def->disks->len, ==, 1);
    disk = snapshot_def_find_disk(def, "vda");
    g_assert_nonnull(disk);
    g_assert_cmpint(disk->snapshot, ==, DISK_SNAPSHOT_INTERNAL);
    g_assert_null(disk->type);
    g_assert_null(disk->driver_type);
    g_assert_null(disk->source_file);
    g_assert_null(snapshot_def_find_disk(def, "vdb"));
    g_assert_cmpint(def->active, ==, -1);
    g_assert_null(def->inactive_domain_xml);
    g_assert_null(def->cookie_xml);

    /* The domain is kept whole, unknown elements included, from column 0. */
    g_assert_true(
        g_str_has_prefix(def->domain_xml, "<domain type='test'>\n  <name>test</name>\n"));
    g_assert_nonnull(strstr(def->domain_xml, "\n    <interface type='network'>\n"));
    g_assert_nonnull(strstr(def->domain_xml,
                            "<address type='pci' domain='0x0000' bus='0x00' "
                            "slot='0x02' function='0x0'/>"));
    g_assert_true(g_str_has_suffix(def->domain_xml, "</domain>\n"));
}

static void
test_fields_external(void)
{
    g_autofree char *xml = read_data("external.xml");
    g_autoptr(SnapshotDef) def = parse_ok(xml);
    SnapshotDiskDef *disk = snapshot_def_find_disk(def, "vda");

    g_assert_cmpstr(def->description, ==, "d");
    g_assert_cmpint(def->state, ==, SNAP_STATE_NONE);
    g_assert_null(def->parent);
    g_assert_cmpint(def->creation_time, ==, -1);
    g_assert_cmpint(def->memory, ==, SNAP_MEMORY_EXTERNAL);
    g_assert_cmpstr(def->memory_file, ==, "/var/lib/libvirt/qemu/snap/ext1.mem");
    g_assert_cmpint(disk->snapshot, ==, DISK_SNAPSHOT_EXTERNAL);
    g_assert_cmpstr(disk->driver_type, ==, "qcow2");
    g_assert_cmpstr(disk->source_file, ==, "/var/lib/libvirt/images/vda.ext1.qcow2");
    g_assert_null(def->domain_xml);
}

static void
test_description_escaping(void)
{
    g_autofree char *xml = read_data("description.xml");
    g_autoptr(SnapshotDef) def = parse_ok(xml);

    g_assert_cmpstr(def->description, ==,
                    "Before the upgrade: <kernel> 6.1 & \"old\" config\nsecond line");
}

static void
test_active(void)
{
    g_autofree char *xml = read_data("offline-internal.xml");
    g_autoptr(SnapshotDef) def = parse_ok(xml);
    g_autofree char *current = snapshot_xml_format(def, TRUE);
    g_autofree char *not_current = NULL;
    g_autoptr(SnapshotDef) reparsed = NULL;

    g_assert_cmpint(def->active, ==, -1);
    g_assert_true(g_str_has_suffix(current, "  </domain>\n  <active>1</active>\n"
                                            "</domainsnapshot>\n"));
    g_assert_cmpuint(strlen(current), ==, strlen(xml) + strlen("  <active>1</active>\n"));

    reparsed = parse_ok(current);
    g_assert_cmpint(reparsed->active, ==, 1);
    /* def->active is ignored by the formatter: only @current counts. */
    not_current = snapshot_xml_format(reparsed, FALSE);
    g_assert_cmpstr(not_current, ==, xml);
    g_assert_null(strstr(not_current, "<active>"));

    assert_schema_valid(current);
}

static void
test_active_values(void)
{
    g_autoptr(SnapshotDef) zero =
        parse_ok("<domainsnapshot><name>a</name><active>0</active></domainsnapshot>");

    g_assert_cmpint(zero->active, ==, 0);
    assert_parse_fails(
        "<domainsnapshot><name>a</name><active>2</active></domainsnapshot>",
        "<active> must be 0 or 1");
    assert_parse_fails(
        "<domainsnapshot><name>a</name><active>yes</active></domainsnapshot>",
        "<active> must be 0 or 1");
}

static void
test_minimal(void)
{
    g_autoptr(SnapshotDef) def = parse_ok("<domainsnapshot/>");
    g_autofree char *formatted = snapshot_xml_format(def, FALSE);
    g_autoptr(SnapshotDef) empty = snapshot_def_new();
    g_autofree char *from_new = snapshot_xml_format(empty, FALSE);

    g_assert_null(def->name);
    g_assert_cmpint(def->state, ==, SNAP_STATE_NONE);
    g_assert_cmpint(def->creation_time, ==, -1);
    g_assert_cmpint(def->memory, ==, SNAP_MEMORY_DEFAULT);
    g_assert_false(def->has_disks);
    g_assert_cmpuint(def->disks->len, ==, 0);
    g_assert_cmpint(def->active, ==, -1);
    g_assert_cmpstr(formatted, ==, "<domainsnapshot/>\n");
    g_assert_cmpstr(from_new, ==, "<domainsnapshot/>\n");
    assert_schema_valid(formatted);
}

static void
test_empty_disks(void)
{
    g_autoptr(SnapshotDef) def =
        parse_ok("<domainsnapshot><name>a</name><disks/></domainsnapshot>");
    g_autofree char *formatted = snapshot_xml_format(def, FALSE);

    g_assert_true(def->has_disks);
    g_assert_cmpstr(formatted, ==,
                    "<domainsnapshot>\n  <name>a</name>\n  <disks/>\n"
                    "</domainsnapshot>\n");
}

static void
test_memory_file_only(void)
{
    g_autoptr(SnapshotDef) def =
        parse_ok("<domainsnapshot><memory file='/var/m.mem'/></domainsnapshot>");
    g_autofree char *formatted = snapshot_xml_format(def, FALSE);

    /* libvirt: a memory file without a mode is an external memory snapshot. */
    g_assert_cmpint(def->memory, ==, SNAP_MEMORY_EXTERNAL);
    g_assert_nonnull(
        strstr(formatted, "<memory snapshot='external' file='/var/m.mem'/>"));
    assert_schema_valid(formatted);
}

static void
test_unknown_elements(void)
{
    const char *xml = "<domainsnapshot>\n"
                      "  <name>u</name>\n"
                      "  <revertDisks><disk name='vda'/></revertDisks>\n"
                      "  <futureThing attr='1'>text</futureThing>\n"
                      "  <state>shutoff</state>\n"
                      "</domainsnapshot>\n";
    g_autoptr(SnapshotDef) def = parse_ok(xml);
    g_autofree char *formatted = snapshot_xml_format(def, FALSE);

    g_assert_cmpstr(def->name, ==, "u");
    g_assert_cmpint(def->state, ==, SNAP_STATE_SHUTOFF);
    g_assert_cmpstr(formatted, ==,
                    "<domainsnapshot>\n  <name>u</name>\n"
                    "  <state>shutoff</state>\n</domainsnapshot>\n");
}

/* Foreign XML is re-indented: comments, PIs and the source's own blank
 * text are dropped; CDATA becomes text; namespaces survive. */
static void
test_foreign_normalized(void)
{
    const char *xml =
        "<domainsnapshot><name>n</name>"
        "<domain type='kvm'><!-- a comment --><name>vm</name>"
        "<description><![CDATA[a <b> & c]]></description>"
        "<?pi data?>"
        "<devices>\n\n\t\t<disk type='file' device='disk'><source file='/x'/>"
        "<target dev='vda'/></disk></devices></domain>"
        "<cookie><cpu xmlns:q='http://example.org/q'><q:feature name='f' "
        "q:on='yes'/></cpu>"
        "</cookie>"
        "<inactiveDomain type='kvm'><name>vm</name></inactiveDomain>"
        "</domainsnapshot>";
    g_autoptr(SnapshotDef) def = parse_ok(xml);
    g_autofree char *formatted = snapshot_xml_format(def, FALSE);
    g_autoptr(SnapshotDef) again = parse_ok(formatted);
    g_autofree char *twice = snapshot_xml_format(again, FALSE);

    g_assert_cmpstr(def->domain_xml, ==,
                    "<domain type='kvm'>\n"
                    "  <name>vm</name>\n"
                    "  <description>a &lt;b&gt; &amp; c</description>\n"
                    "  <devices>\n"
                    "    <disk type='file' device='disk'>\n"
                    "      <source file='/x'/>\n"
                    "      <target dev='vda'/>\n"
                    "    </disk>\n"
                    "  </devices>\n"
                    "</domain>\n");
    g_assert_cmpstr(def->cookie_xml, ==,
                    "<cookie>\n"
                    "  <cpu xmlns:q='http://example.org/q'>\n"
                    "    <q:feature name='f' q:on='yes'/>\n"
                    "  </cpu>\n"
                    "</cookie>\n");
    g_assert_cmpstr(
        def->inactive_domain_xml, ==,
        "<inactiveDomain type='kvm'>\n  <name>vm</name>\n</inactiveDomain>\n");
    g_assert_cmpstr(formatted, ==,
                    "<domainsnapshot>\n"
                    "  <name>n</name>\n"
                    "  <domain type='kvm'>\n"
                    "    <name>vm</name>\n"
                    "    <description>a &lt;b&gt; &amp; c</description>\n"
                    "    <devices>\n"
                    "      <disk type='file' device='disk'>\n"
                    "        <source file='/x'/>\n"
                    "        <target dev='vda'/>\n"
                    "      </disk>\n"
                    "    </devices>\n"
                    "  </domain>\n"
                    "  <inactiveDomain type='kvm'>\n"
                    "    <name>vm</name>\n"
                    "  </inactiveDomain>\n"
                    "  <cookie>\n"
                    "    <cpu xmlns:q='http://example.org/q'>\n"
                    "      <q:feature name='f' q:on='yes'/>\n"
                    "    </cpu>\n"
                    "  </cookie>\n"
                    "</domainsnapshot>\n");
    g_assert_cmpstr(twice, ==, formatted);
}

static void
test_apostrophes(void)
{
    const char *xml =
        "<domainsnapshot><name>it's</name>"
        "<memory snapshot='external' file=\"/var/o'brien &amp; &lt;x&gt;.mem\"/>"
        "<disks><disk name=\"/img/it's.qcow2\" snapshot='external'>"
        "<source file=\"/img/it's.new\"/></disk></disks>"
        "<domain type='kvm'><name>vm</name><devices><disk type='file' device='disk'>"
        "<source file=\"/img/it's.qcow2\"/><target dev='vda'/></disk></devices></domain>"
        "</domainsnapshot>";
    g_autoptr(SnapshotDef) def = parse_ok(xml);
    g_autofree char *formatted = snapshot_xml_format(def, FALSE);
    g_autoptr(SnapshotDef) again = parse_ok(formatted);

    g_assert_nonnull(strstr(formatted, "file='/var/o&apos;brien &amp; &lt;x&gt;.mem'"));
    g_assert_nonnull(strstr(formatted, "<disk name='/img/it&apos;s.qcow2'"));
    g_assert_cmpstr(again->name, ==, "it's");
    g_assert_cmpstr(again->memory_file, ==, "/var/o'brien & <x>.mem");
    g_assert_cmpstr(snapshot_def_find_disk(again, "/img/it's.qcow2")->source_file, ==,
                    "/img/it's.new");
    g_assert_cmpstr(again->domain_xml, ==, def->domain_xml);
    assert_schema_valid(formatted);
}

static void
test_refused(void)
{
    assert_parse_fails("<domain type='kvm'><name>x</name></domain>",
                       "expected a <domainsnapshot> document, found <domain>");
    assert_parse_fails("<domainsnapshot><name>a</name>", "does not parse");
    assert_parse_fails("", "empty");
    assert_parse_fails(
        "<domainsnapshot><creationTime>1.5</creationTime></domainsnapshot>",
        "creationTime '1.5'");
    assert_parse_fails(
        "<domainsnapshot><creationTime>abc</creationTime></domainsnapshot>",
        "creationTime 'abc'");
    assert_parse_fails("<domainsnapshot><creationTime></creationTime></domainsnapshot>",
                       "creationTime ''");
    assert_parse_fails("<domainsnapshot><creationTime>-5</creationTime></domainsnapshot>",
                       "creationTime '-5'");
    assert_parse_fails("<domainsnapshot><creationTime>99999999999999999999</creationTime>"
                       "</domainsnapshot>",
                       "creationTime");
    assert_parse_fails("<domainsnapshot><state>sleeping</state></domainsnapshot>",
                       "unknown state 'sleeping'");
    assert_parse_fails("<domainsnapshot><state>nostate</state></domainsnapshot>",
                       "unknown state 'nostate'");
    assert_parse_fails("<domainsnapshot><state></state></domainsnapshot>",
                       "unknown state");
    assert_parse_fails("<domainsnapshot><memory snapshot='maybe'/></domainsnapshot>",
                       "unknown memory snapshot mode 'maybe'");
    assert_parse_fails("<domainsnapshot><disks><disk snapshot='internal'/></disks>"
                       "</domainsnapshot>",
                       "a <disk> has no name");
    assert_parse_fails(
        "<domainsnapshot><disks><disk name='vda' snapshot='often'/></disks>"
        "</domainsnapshot>",
        "unknown snapshot mode 'often'");
    assert_parse_fails(
        "<domainsnapshot><disks><disk name='vda'/><disk name='vda'/></disks>"
        "</domainsnapshot>",
        "listed twice");
    assert_parse_fails("<domainsnapshot><parent/></domainsnapshot>", "<parent> without");

    /* Whitespace around a number is what an editor leaves; accepted. */
    {
        g_autoptr(SnapshotDef) def = parse_ok(
            "<domainsnapshot><creationTime>\n  42\n</creationTime></domainsnapshot>");

        g_assert_cmpint(def->creation_time, ==, 42);
    }
}

static const char billion_laughs[] =
    "<?xml version='1.0'?>\n"
    "<!DOCTYPE domainsnapshot [\n"
    " <!ENTITY lol 'lol'>\n"
    " <!ENTITY lol1 '&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;&lol;'>\n"
    " <!ENTITY lol2 '&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;&lol1;'>\n"
    " <!ENTITY lol3 '&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;&lol2;'>\n"
    " <!ENTITY lol4 '&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;&lol3;'>\n"
    " <!ENTITY lol5 '&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;&lol4;'>\n"
    " <!ENTITY lol6 '&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;&lol5;'>\n"
    " <!ENTITY lol7 '&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;&lol6;'>\n"
    " <!ENTITY lol8 '&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;&lol7;'>\n"
    " <!ENTITY lol9 '&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;&lol8;'>\n"
    "]>\n"
    "<domainsnapshot><name>&lol9;</name><description>&lol9;</description></"
    "domainsnapshot>\n";

static const char external_entity[] =
    "<?xml version='1.0'?>\n"
    "<!DOCTYPE domainsnapshot [ <!ENTITY xxe SYSTEM 'file:///etc/passwd'> ]>\n"
    "<domainsnapshot><name>x</name><description>&xxe;</description></domainsnapshot>\n";

static const char external_dtd[] =
    "<!DOCTYPE domainsnapshot SYSTEM 'http://127.0.0.1:9/evil.dtd'>\n"
    "<domainsnapshot><name>x</name></domainsnapshot>\n";

static const char parameter_entity[] =
    "<!DOCTYPE domainsnapshot [ <!ENTITY % pe SYSTEM 'file:///etc/passwd'> %pe; ]>\n"
    "<domainsnapshot><name>x</name></domainsnapshot>\n";

static const char plain_doctype[] =
    "<!DOCTYPE domainsnapshot>\n<domainsnapshot><name>x</name></domainsnapshot>\n";

static void
assert_hostile_refused(const char *xml)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(SnapshotDef) def = NULL;
    g_autoptr(xmlDoc) doc = NULL;
    gint64 start = g_get_monotonic_time();

    def = snapshot_xml_parse(xml, strlen(xml), &error);
    g_assert_null(def);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_test_message("refused: %s", error->message);
    g_assert_nonnull(strstr(error->message, "DOCTYPE"));
    /* Nothing of the expansion or of the file leaks into the message. */
    g_assert_null(strstr(error->message, "lollol"));
    g_assert_null(strstr(error->message, "root:"));
    g_clear_error(&error);

    doc = xml_parse_safe(xml, strlen(xml), &error);
    g_assert_null(doc);
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_clear_error(&error);

    g_assert_false(snapshot_xml_validate(xml, strlen(xml), SNAPSHOT_RNG, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);

    /* Refused at <!DOCTYPE, before any entity is even declared: an
     * expansion would take far longer than this bound, set far from any
     * load (ASan, a busy machine). */
    g_assert_cmpint(g_get_monotonic_time() - start, <, 10 * G_USEC_PER_SEC);
}

static void
test_hostile(void)
{
    assert_hostile_refused(billion_laughs);
    assert_hostile_refused(external_entity);
    assert_hostile_refused(external_dtd);
    assert_hostile_refused(parameter_entity);
    assert_hostile_refused(plain_doctype);
}

static void
test_undeclared_entity(void)
{
    /* Without a DTD an entity reference is simply an error. */
    assert_parse_fails("<domainsnapshot><name>&xxe;</name></domainsnapshot>",
                       "does not parse");
}

static void
test_parse_not_terminated(void)
{
    /* The length bounds the parse: trailing bytes beyond it are not read. */
    const char buf[] = "<domainsnapshot><name>n</name></domainsnapshot>GARBAGE";
    g_autofree char *copy = g_memdup2(buf, sizeof(buf) - 1 - strlen("GARBAGE"));
    g_autoptr(GError) error = NULL;
    g_autoptr(SnapshotDef) def =
        snapshot_xml_parse(copy, sizeof(buf) - 1 - strlen("GARBAGE"), &error);

    g_assert_no_error(error);
    g_assert_cmpstr(def->name, ==, "n");
}

static void
test_validate_refuses(void)
{
    const char *bad = "<domainsnapshot><name>a</name><bogus/></domainsnapshot>";
    const char *bad_state = "<domainsnapshot><state>sleeping</state></domainsnapshot>";
    g_autoptr(GError) error = NULL;

    if (!have_schema())
        return;

    g_assert_false(snapshot_xml_validate(bad, strlen(bad), SNAPSHOT_RNG, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_test_message("refused: %s", error->message);
    g_assert_nonnull(strstr(error->message, "bogus"));
    g_clear_error(&error);

    g_assert_false(
        snapshot_xml_validate(bad_state, strlen(bad_state), SNAPSHOT_RNG, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_clear_error(&error);

    g_assert_false(
        snapshot_xml_validate("<domainsnapshot/>", 17, "/nonexistent/x.rng", &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_FAILED);
}

static gpointer
validate_thread(gpointer data)
{
    const char *xml = data;

    for (int i = 0; i < 20; i++) {
        if (!snapshot_xml_validate(xml, strlen(xml), SNAPSHOT_RNG, NULL))
            return GINT_TO_POINTER(FALSE);
    }
    return GINT_TO_POINTER(TRUE);
}

static void
test_validate_threads(void)
{
    g_autofree char *xml = NULL;
    GThread *threads[4];

    if (!have_schema())
        return;
    xml = read_data("virsh-s2.xml");
    for (gsize i = 0; i < G_N_ELEMENTS(threads); i++)
        threads[i] = g_thread_new("validate", validate_thread, xml);
    for (gsize i = 0; i < G_N_ELEMENTS(threads); i++)
        g_assert_true(GPOINTER_TO_INT(g_thread_join(threads[i])));
}

/* Without the schema file, create still refuses an unknown element. */
static void
test_check_without_schema(void)
{
    const char *good = "<domainsnapshot><name>a</name><description>d</description>"
                       "<active>1</active></domainsnapshot>";
    const char *bad = "<domainsnapshot><name>a</name><bogus/></domainsnapshot>";
    g_autoptr(GError) error = NULL;

    g_setenv("SNAPTREEFS_SNAPSHOT_SCHEMA", "/nonexistent/domainsnapshot.rng", TRUE);
    g_assert_true(snapshot_xml_check_schema(good, strlen(good), &error));
    g_assert_no_error(error);
    g_assert_false(snapshot_xml_check_schema(bad, strlen(bad), &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_assert_nonnull(strstr(error->message, "bogus"));
    g_clear_error(&error);
    g_assert_false(snapshot_xml_check_schema("<domain/>", 9, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_unsetenv("SNAPTREEFS_SNAPSHOT_SCHEMA");
}

/* With the schema installed, create's check is libvirt's RelaxNG. */
static void
test_check_with_schema(void)
{
    const char *bad = "<domainsnapshot><name>a</name><memory snapshot='no'>"
                      "<extra/></memory></domainsnapshot>";
    g_autofree char *virsh = NULL;
    g_autoptr(GError) error = NULL;

    if (!have_schema())
        return;
    virsh = read_data("virsh-s2.xml");
    g_assert_true(snapshot_xml_check_schema(virsh, strlen(virsh), &error));
    g_assert_no_error(error);
    /* Only the schema sees this one: a child of <memory>. */
    g_assert_false(snapshot_xml_check_schema(bad, strlen(bad), &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
}

/* A schema that includes a URL: loading it must not connect anywhere. */
static void
test_schema_no_network(void)
{
    g_autoptr(GSocket) sock = g_socket_new(G_SOCKET_FAMILY_IPV4, G_SOCKET_TYPE_STREAM,
                                           G_SOCKET_PROTOCOL_TCP, NULL);
    g_autoptr(GInetAddress) lo = g_inet_address_new_loopback(G_SOCKET_FAMILY_IPV4);
    g_autoptr(GSocketAddress) addr = g_inet_socket_address_new(lo, 0);
    g_autoptr(GSocketAddress) bound = NULL;
    g_autoptr(GSocket) conn = NULL;
    g_autoptr(GError) error = NULL;
    g_autofree char *dir = g_dir_make_tmp("test-rng-XXXXXX", NULL);
    g_autofree char *rng = g_build_filename(dir, "net.rng", NULL);
    g_autofree char *text = NULL;
    const char *xml = "<domainsnapshot/>";

    g_assert_nonnull(sock);
    g_assert_true(g_socket_bind(sock, addr, TRUE, &error));
    g_assert_true(g_socket_listen(sock, &error));
    bound = g_socket_get_local_address(sock, &error);
    g_assert_no_error(error);
    text = g_strdup_printf(
        "<grammar xmlns='http://relaxng.org/ns/structure/1.0'>"
        "<include href='http://127.0.0.1:%u/remote.rng'/>"
        "<start><element name='domainsnapshot'><empty/></element></start></grammar>",
        g_inet_socket_address_get_port(G_INET_SOCKET_ADDRESS(bound)));
    g_assert_true(g_file_set_contents(rng, text, -1, &error));

    g_assert_false(snapshot_xml_validate(xml, strlen(xml), rng, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_FAILED);
    g_clear_error(&error);

    g_socket_set_blocking(sock, FALSE);
    conn = g_socket_accept(sock, NULL, &error);
    g_assert_null(conn);
    g_assert_error(error, G_IO_ERROR, G_IO_ERROR_WOULD_BLOCK);
    g_unlink(rng);
    g_rmdir(dir);
}

static void
test_state_strings(void)
{
    static const char *const names[] = {
        "running", "blocked", "paused", "shutdown", "shutoff", "crashed", "disk-snapshot",
    };

    for (gsize i = 0; i < G_N_ELEMENTS(names); i++) {
        SnapState state = snap_state_from_string(names[i]);

        g_assert_cmpint(state, ==, SNAP_STATE_RUNNING + i);
        g_assert_cmpstr(snap_state_to_string(state), ==, names[i]);
    }
    g_assert_cmpint(snap_state_from_string("Running"), ==, SNAP_STATE_NONE);
    g_assert_cmpint(snap_state_from_string(NULL), ==, SNAP_STATE_NONE);
    g_assert_cmpstr(snap_memory_mode_to_string(SNAP_MEMORY_NO), ==, "no");
    g_assert_cmpstr(snap_memory_mode_to_string(SNAP_MEMORY_INTERNAL), ==, "internal");
    g_assert_cmpstr(snap_memory_mode_to_string(SNAP_MEMORY_EXTERNAL), ==, "external");
}

static void
test_xml_helpers(void)
{
    const char *xml = "<r a='1'><x>one</x><y/><x>two</x></r>";
    g_autoptr(xmlDoc) doc = xml_parse_safe(xml, strlen(xml), NULL);
    xmlNodePtr root = xmlDocGetRootElement(doc);
    g_autofree char *x = xml_child_text(root, "x");
    g_autofree char *y = xml_child_text(root, "y");
    g_autofree char *a = xml_prop(root, "a");
    g_autofree char *b = xml_prop(root, "b");

    g_assert_cmpstr(x, ==, "one");
    g_assert_cmpstr(y, ==, "");
    g_assert_null(xml_child_text(root, "z"));
    g_assert_null(xml_child(root, "z"));
    g_assert_null(xml_child(NULL, "x"));
    g_assert_cmpstr(a, ==, "1");
    g_assert_null(b);
    g_assert_null(xml_prop(NULL, "a"));
}

int
main(int argc, char **argv)
{
    static const char *const canonical[] = {
        "offline-internal.xml", "current.xml",  "root.xml",
        "description.xml",      "external.xml",
    };
    static const char *const virsh[] = {"virsh-s1.xml", "virsh-s2.xml"};

    g_test_init(&argc, &argv, NULL);
    for (gsize i = 0; i < G_N_ELEMENTS(canonical); i++) {
        g_autofree char *path =
            g_strdup_printf("/snapshot-xml/canonical/%s", canonical[i]);

        g_test_add_data_func(path, canonical[i], test_canonical);
    }
    for (gsize i = 0; i < G_N_ELEMENTS(virsh); i++) {
        g_autofree char *path = g_strdup_printf("/snapshot-xml/virsh/%s", virsh[i]);

        g_test_add_data_func(path, virsh[i], test_virsh);
    }
    g_test_add_func("/snapshot-xml/fields/virsh-s2", test_fields_virsh_s2);
    g_test_add_func("/snapshot-xml/fields/external", test_fields_external);
    g_test_add_func("/snapshot-xml/description-escaping", test_description_escaping);
    g_test_add_func("/snapshot-xml/active", test_active);
    g_test_add_func("/snapshot-xml/active-values", test_active_values);
    g_test_add_func("/snapshot-xml/minimal", test_minimal);
    g_test_add_func("/snapshot-xml/empty-disks", test_empty_disks);
    g_test_add_func("/snapshot-xml/memory-file-only", test_memory_file_only);
    g_test_add_func("/snapshot-xml/unknown-elements", test_unknown_elements);
    g_test_add_func("/snapshot-xml/foreign-normalized", test_foreign_normalized);
    g_test_add_func("/snapshot-xml/apostrophes", test_apostrophes);
    g_test_add_func("/snapshot-xml/refused", test_refused);
    g_test_add_func("/snapshot-xml/hostile", test_hostile);
    g_test_add_func("/snapshot-xml/undeclared-entity", test_undeclared_entity);
    g_test_add_func("/snapshot-xml/not-terminated", test_parse_not_terminated);
    g_test_add_func("/snapshot-xml/validate-refuses", test_validate_refuses);
    g_test_add_func("/snapshot-xml/validate-threads", test_validate_threads);
    g_test_add_func("/snapshot-xml/check-without-schema", test_check_without_schema);
    g_test_add_func("/snapshot-xml/check-with-schema", test_check_with_schema);
    g_test_add_func("/snapshot-xml/schema-no-network", test_schema_no_network);
    g_test_add_func("/snapshot-xml/state-strings", test_state_strings);
    g_test_add_func("/snapshot-xml/xml-helpers", test_xml_helpers);
    return g_test_run();
}
