/* domain-def.c: parsing and writing the <domain> subset snaptreefs knows. */
#include "domain-def.h"

#include <string.h>

#include "snap-error.h"
#include "xml-writer.h"

void
domain_disk_free(DomainDisk *disk)
{
    if (disk == NULL)
        return;
    g_free(disk->target);
    g_free(disk->bus);
    g_free(disk->source);
    g_free(disk);
}

void
domain_def_free(DomainDef *def)
{
    if (def == NULL)
        return;
    g_free(def->type);
    g_free(def->name);
    g_free(def->uuid);
    g_free(def->arch);
    g_free(def->machine);
    g_free(def->emulator);
    g_free(def->video);
    g_clear_pointer(&def->disks, g_ptr_array_unref);
    g_free(def);
}

const char *
disk_snapshot_mode_to_string(DiskSnapshotMode mode)
{
    switch (mode) {
    case DISK_SNAPSHOT_NO:
        return "no";
    case DISK_SNAPSHOT_INTERNAL:
        return "internal";
    case DISK_SNAPSHOT_EXTERNAL:
        return "external";
    case DISK_SNAPSHOT_MANUAL:
        return "manual";
    case DISK_SNAPSHOT_DEFAULT:
    default:
        return "default";
    }
}

const char *
disk_format_to_string(DiskFormat format)
{
    switch (format) {
    case DISK_FORMAT_QCOW2:
        return "qcow2";
    case DISK_FORMAT_RAW:
    default:
        return "raw";
    }
}

DiskSnapshotMode
domain_disk_snapshot_mode(const DomainDisk *disk)
{
    if (disk->snapshot != DISK_SNAPSHOT_DEFAULT)
        return disk->snapshot;
    return disk->format == DISK_FORMAT_QCOW2 ? DISK_SNAPSHOT_INTERNAL : DISK_SNAPSHOT_NO;
}

DomainDisk *
domain_def_find_disk(const DomainDef *def, const char *target)
{
    for (guint i = 0; i < def->disks->len; i++) {
        DomainDisk *disk = g_ptr_array_index(def->disks, i);

        if (g_strcmp0(disk->target, target) == 0)
            return disk;
    }
    return NULL;
}

/* The stripped text content of @node. (transfer full) */
static char *
node_text(xmlNodePtr node)
{
    return g_strstrip(xml_node_text(node));
}

gboolean
disk_snapshot_mode_from_string(const char *s, DiskSnapshotMode *mode)
{
    static const DiskSnapshotMode modes[] = {
        DISK_SNAPSHOT_NO,
        DISK_SNAPSHOT_INTERNAL,
        DISK_SNAPSHOT_EXTERNAL,
        DISK_SNAPSHOT_MANUAL,
    };

    for (gsize i = 0; i < G_N_ELEMENTS(modes); i++) {
        if (strcmp(s, disk_snapshot_mode_to_string(modes[i])) == 0) {
            *mode = modes[i];
            return TRUE;
        }
    }
    return FALSE;
}

/* Bytes per unit of a libvirt scaled integer, as virScaleInteger reads
 * suffixes: case-insensitive, "KB" decimal and "K"/"KiB" binary. 0 for an
 * unknown suffix. @unit NULL or empty means KiB, <memory>'s default. */
static guint64
memory_unit_scale(const char *unit)
{
    guint64 base;
    guint64 scale = 1;
    int power;

    if (unit == NULL || unit[0] == '\0')
        return 1024;
    if (g_ascii_strcasecmp(unit, "b") == 0 || g_ascii_strcasecmp(unit, "byte") == 0 ||
        g_ascii_strcasecmp(unit, "bytes") == 0)
        return 1;

    if (unit[1] == '\0' || g_ascii_strcasecmp(unit + 1, "iB") == 0)
        base = 1024;
    else if (g_ascii_tolower(unit[1]) == 'b' && unit[2] == '\0')
        base = 1000;
    else
        return 0;

    switch (g_ascii_tolower(unit[0])) {
    case 'k':
        power = 1;
        break;
    case 'm':
        power = 2;
        break;
    case 'g':
        power = 3;
        break;
    case 't':
        power = 4;
        break;
    case 'p':
        power = 5;
        break;
    case 'e':
        power = 6;
        break;
    default:
        return 0;
    }
    while (power-- > 0)
        scale *= base;
    return scale;
}

static gboolean
parse_memory(xmlNodePtr node, guint64 *kib, GError **error)
{
    g_autofree char *unit = xml_prop(node, "unit");
    g_autofree char *text = node_text(node);
    guint64 scale = memory_unit_scale(unit);
    guint64 value;

    if (scale == 0) {
        g_autofree char *escaped = g_strescape(unit, NULL);

        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "domain: unknown memory unit '%s'", escaped);
        return FALSE;
    }
    if (!g_ascii_string_to_unsigned(text, 10, 0, G_MAXUINT64, &value, NULL) ||
        value > G_MAXUINT64 / scale) {
        g_autofree char *escaped = g_strescape(text, NULL);

        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "domain: invalid memory size '%s'", escaped);
        return FALSE;
    }
    /* libvirt keeps KiB and rounds a byte count up to the next KiB. */
    value *= scale;
    value = value / 1024 + (value % 1024 != 0 ? 1 : 0);
    /* Kept in KiB, it must read back in bytes too (unit='b' of 2^64-1
     * rounds up to a KiB count whose bytes do not fit). */
    if (value > G_MAXUINT64 / 1024) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "domain: memory size too large: %s", text);
        return FALSE;
    }
    *kib = value;
    return TRUE;
}

static gboolean
parse_vcpu(xmlNodePtr node, guint *vcpus, GError **error)
{
    g_autofree char *text = node_text(node);
    guint64 value;

    if (!g_ascii_string_to_unsigned(text, 10, 1, G_MAXUINT, &value, NULL)) {
        g_autofree char *escaped = g_strescape(text, NULL);

        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "domain: invalid vcpu count '%s'", escaped);
        return FALSE;
    }
    *vcpus = (guint)value;
    return TRUE;
}

/* How a <domain> is read: ours (STATE/domains, strict) or one libvirt
 * wrote (foreign: block disks too, and a disk outside the subset is left
 * out with a note in @skipped instead of failing the whole definition). */
typedef struct {
    const char *base_dir;
    gboolean foreign;
    GPtrArray *skipped; /* char*, may be NULL */
    GPtrArray *ignored; /* char*: what was ignored, may be NULL */
} ParseOpts;

/* Records that @what (an element outside the subset) was ignored: always
 * a debug line, and a note in @ignored when the caller collects them. */
static void
note_ignored(const ParseOpts *opts, const char *domain, const char *what)
{
    g_debug("domain %s: ignoring %s", domain ? domain : "?", what);
    if (opts->ignored != NULL)
        g_ptr_array_add(opts->ignored, g_strdup(what));
}

static void
note_skipped(const ParseOpts *opts, const char *target, const char *why)
{
    if (opts->skipped != NULL)
        g_ptr_array_add(opts->skipped, g_strdup_printf("disk %s: %s", target, why));
}

/* One <disk>. Returns TRUE with *out NULL for a disk outside the subset
 * (cdrom, block, network...), which is skipped. */
static gboolean
parse_disk(xmlNodePtr node, const ParseOpts *opts, DomainDisk **out, GError **error)
{
    const char *base_dir = opts->base_dir;
    g_autofree char *type = xml_prop(node, "type");
    g_autofree char *device = xml_prop(node, "device");
    g_autofree char *snapshot = xml_prop(node, "snapshot");
    g_autofree char *driver_type = xml_prop(xml_child(node, "driver"), "type");
    gboolean block = opts->foreign && g_strcmp0(type, "block") == 0;
    g_autofree char *source = xml_prop(xml_child(node, "source"), block ? "dev" : "file");
    xmlNodePtr target = xml_child(node, "target");
    g_autoptr(DomainDisk) disk = g_new0(DomainDisk, 1);

    *out = NULL;
    /* libvirt's defaults for absent attributes: a file-backed disk. */
    if ((type != NULL && strcmp(type, "file") != 0 && !block) ||
        (device != NULL && strcmp(device, "disk") != 0)) {
        g_autofree char *what = g_strdup_printf(
            "disk type='%s' device='%s'", type ? type : "file", device ? device : "disk");

        note_ignored(opts, NULL, what);
        if (device == NULL || strcmp(device, "disk") == 0) {
            g_autofree char *dev = xml_prop(target, "dev");
            g_autofree char *why =
                g_strdup_printf("a %s disk, neither a file nor a block device", type);

            note_skipped(opts, dev ? dev : "?", why);
        }
        return TRUE;
    }
    if (opts->foreign && (source == NULL || source[0] == '\0')) {
        g_autofree char *dev = xml_prop(target, "dev");

        note_skipped(opts, dev ? dev : "?", "no source");
        return TRUE;
    }
    if (opts->foreign && driver_type != NULL && strcmp(driver_type, "raw") != 0 &&
        strcmp(driver_type, "qcow2") != 0) {
        g_autofree char *dev = xml_prop(target, "dev");
        g_autofree char *why =
            g_strdup_printf("format %s (only qcow2 and raw)", driver_type);

        note_skipped(opts, dev ? dev : "?", why);
        return TRUE;
    }

    disk->target = xml_prop(target, "dev");
    disk->bus = xml_prop(target, "bus");
    if (disk->target == NULL || disk->target[0] == '\0') {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "domain: a disk has no <target dev>");
        return FALSE;
    }
    if (source == NULL || source[0] == '\0') {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "domain: disk '%s' has no <source file>", disk->target);
        return FALSE;
    }

    if (driver_type == NULL || strcmp(driver_type, "raw") == 0) {
        disk->format = DISK_FORMAT_RAW;
    } else if (strcmp(driver_type, "qcow2") == 0) {
        disk->format = DISK_FORMAT_QCOW2;
    } else {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "domain: disk '%s' has driver type '%s'; only qcow2 and raw are "
                    "supported",
                    disk->target, driver_type);
        return FALSE;
    }

    if (snapshot == NULL) {
        disk->snapshot = DISK_SNAPSHOT_DEFAULT;
    } else if (!disk_snapshot_mode_from_string(snapshot, &disk->snapshot)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "domain: disk '%s' has unknown snapshot mode '%s'", disk->target,
                    snapshot);
        return FALSE;
    }

    if (base_dir != NULL && !g_path_is_absolute(source))
        disk->source = g_canonicalize_filename(source, base_dir);
    else
        disk->source = g_steal_pointer(&source);

    *out = g_steal_pointer(&disk);
    return TRUE;
}

static gboolean
parse_devices(DomainDef *def, xmlNodePtr devices, const ParseOpts *opts, GError **error)
{
    for (xmlNodePtr node = devices->children; node != NULL; node = node->next) {
        DomainDisk *disk = NULL;

        if (node->type != XML_ELEMENT_NODE)
            continue;
        if (xmlStrEqual(node->name, BAD_CAST "emulator")) {
            g_free(def->emulator);
            def->emulator = node_text(node);
            continue;
        }
        if (xmlStrEqual(node->name, BAD_CAST "channel")) {
            g_autofree char *name = xml_prop(xml_child(node, "target"), "name");

            if (g_strcmp0(name, DOMAIN_GUEST_AGENT_CHANNEL) == 0) {
                def->guest_agent = TRUE;
            } else {
                g_autofree char *what =
                    g_strdup_printf("<channel> '%s'", name ? name : "");

                note_ignored(opts, def->name, what);
            }
            continue;
        }
        if (xmlStrEqual(node->name, BAD_CAST "video")) {
            g_autofree char *model = xml_prop(xml_child(node, "model"), "type");

            g_free(def->video);
            def->video = g_strdup(model ? model : "vga");
            continue;
        }
        if (xmlStrEqual(node->name, BAD_CAST "graphics")) {
            /* libvirt gives a <graphics> without <video> a VGA card. */
            if (def->video == NULL)
                def->video = g_strdup("vga");
            continue;
        }
        if (!xmlStrEqual(node->name, BAD_CAST "disk")) {
            g_autofree char *what =
                g_strdup_printf("device <%s>", (const char *)node->name);

            note_ignored(opts, def->name, what);
            continue;
        }
        if (!parse_disk(node, opts, &disk, error))
            return FALSE;
        if (disk == NULL)
            continue;
        if (domain_def_find_disk(def, disk->target) != NULL) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "domain: two disks have target '%s'", disk->target);
            domain_disk_free(disk);
            return FALSE;
        }
        g_ptr_array_add(def->disks, disk);
    }
    return TRUE;
}

static DomainDef *
parse_node(xmlNodePtr root, const ParseOpts *opts, GError **error)
{
    g_autoptr(DomainDef) def = g_new0(DomainDef, 1);

    g_return_val_if_fail(root != NULL, NULL);

    def->disks = g_ptr_array_new_with_free_func((GDestroyNotify)domain_disk_free);
    def->vcpus = 1;

    if (root->type != XML_ELEMENT_NODE || !xmlStrEqual(root->name, BAD_CAST "domain")) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "expected a <domain> element, found <%s>", (const char *)root->name);
        return NULL;
    }

    def->type = xml_prop(root, "type");
    if (def->type == NULL || def->type[0] == '\0') {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "domain: missing type attribute");
        return NULL;
    }
    def->name = xml_child_text(root, "name");
    if (def->name != NULL)
        g_strstrip(def->name);
    if (def->name == NULL || def->name[0] == '\0') {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "domain: missing <name>");
        return NULL;
    }

    for (xmlNodePtr node = root->children; node != NULL; node = node->next) {
        const char *element = (const char *)node->name;

        if (node->type != XML_ELEMENT_NODE)
            continue;
        if (strcmp(element, "name") == 0) {
            continue;
        } else if (strcmp(element, "uuid") == 0) {
            g_free(def->uuid);
            def->uuid = node_text(node);
        } else if (strcmp(element, "memory") == 0) {
            if (!parse_memory(node, &def->memory_kib, error))
                return NULL;
        } else if (strcmp(element, "vcpu") == 0) {
            if (!parse_vcpu(node, &def->vcpus, error))
                return NULL;
        } else if (strcmp(element, "os") == 0) {
            xmlNodePtr os = xml_child(node, "type");

            g_free(def->arch);
            g_free(def->machine);
            def->arch = xml_prop(os, "arch");
            def->machine = xml_prop(os, "machine");
        } else if (strcmp(element, "devices") == 0) {
            if (!parse_devices(def, node, opts, error))
                return NULL;
        } else {
            g_autofree char *what = g_strdup_printf("<%s>", element);

            note_ignored(opts, def->name, what);
        }
    }
    return g_steal_pointer(&def);
}

DomainDef *
domain_def_parse_node(xmlNodePtr root, const char *base_dir, GError **error)
{
    ParseOpts opts = {.base_dir = base_dir};

    return parse_node(root, &opts, error);
}

DomainDef *
domain_def_parse(const char *xml, gsize len, const char *base_dir, GError **error)
{
    return domain_def_parse_noting(xml, len, base_dir, NULL, error);
}

DomainDef *
domain_def_parse_noting(const char *xml, gsize len, const char *base_dir,
                        GPtrArray *ignored, GError **error)
{
    g_autoptr(xmlDoc) doc = xml_parse_safe(xml, len, error);
    ParseOpts opts = {.base_dir = base_dir, .ignored = ignored};

    if (doc == NULL)
        return NULL;
    return parse_node(xmlDocGetRootElement(doc), &opts, error);
}

DomainDef *
domain_def_parse_foreign(const char *xml, gsize len, GPtrArray *skipped, GError **error)
{
    g_autoptr(xmlDoc) doc = xml_parse_safe(xml, len, error);
    ParseOpts opts = {.foreign = TRUE, .skipped = skipped};

    if (doc == NULL)
        return NULL;
    return parse_node(xmlDocGetRootElement(doc), &opts, error);
}

void
domain_def_write(const DomainDef *def, xmlTextWriterPtr writer)
{
    xmlTextWriterStartElement(writer, BAD_CAST "domain");
    xml_writer_write_attribute(writer, "type", def->type != NULL ? def->type : "kvm");
    xmlTextWriterWriteElement(writer, BAD_CAST "name", BAD_CAST def->name);
    if (def->uuid != NULL)
        xmlTextWriterWriteElement(writer, BAD_CAST "uuid", BAD_CAST def->uuid);
    if (def->memory_kib > 0) {
        xmlTextWriterStartElement(writer, BAD_CAST "memory");
        xml_writer_write_attribute(writer, "unit", "KiB");
        xmlTextWriterWriteFormatString(writer, "%" G_GUINT64_FORMAT, def->memory_kib);
        xmlTextWriterEndElement(writer);
    }
    xmlTextWriterStartElement(writer, BAD_CAST "vcpu");
    xml_writer_write_attribute(writer, "placement", "static");
    xmlTextWriterWriteFormatString(writer, "%u", def->vcpus);
    xmlTextWriterEndElement(writer);

    xmlTextWriterStartElement(writer, BAD_CAST "os");
    xmlTextWriterStartElement(writer, BAD_CAST "type");
    if (def->arch != NULL)
        xml_writer_write_attribute(writer, "arch", def->arch);
    if (def->machine != NULL)
        xml_writer_write_attribute(writer, "machine", def->machine);
    xmlTextWriterWriteString(writer, BAD_CAST "hvm");
    xmlTextWriterEndElement(writer);
    xmlTextWriterEndElement(writer);

    xmlTextWriterStartElement(writer, BAD_CAST "devices");
    if (def->emulator != NULL)
        xmlTextWriterWriteElement(writer, BAD_CAST "emulator", BAD_CAST def->emulator);
    for (guint i = 0; i < def->disks->len; i++) {
        const DomainDisk *disk = g_ptr_array_index(def->disks, i);

        xmlTextWriterStartElement(writer, BAD_CAST "disk");
        xml_writer_write_attribute(writer, "type", "file");
        xml_writer_write_attribute(writer, "device", "disk");
        if (disk->snapshot != DISK_SNAPSHOT_DEFAULT)
            xml_writer_write_attribute(writer, "snapshot",
                                       disk_snapshot_mode_to_string(disk->snapshot));
        xmlTextWriterStartElement(writer, BAD_CAST "driver");
        xml_writer_write_attribute(writer, "name", "qemu");
        xml_writer_write_attribute(writer, "type", disk_format_to_string(disk->format));
        xmlTextWriterEndElement(writer);
        xmlTextWriterStartElement(writer, BAD_CAST "source");
        xml_writer_write_attribute(writer, "file", disk->source);
        xmlTextWriterEndElement(writer);
        xmlTextWriterStartElement(writer, BAD_CAST "target");
        xml_writer_write_attribute(writer, "dev", disk->target);
        if (disk->bus != NULL)
            xml_writer_write_attribute(writer, "bus", disk->bus);
        xmlTextWriterEndElement(writer);
        xmlTextWriterEndElement(writer);
    }
    if (def->guest_agent) {
        xmlTextWriterStartElement(writer, BAD_CAST "channel");
        xml_writer_write_attribute(writer, "type", "unix");
        xmlTextWriterStartElement(writer, BAD_CAST "target");
        xml_writer_write_attribute(writer, "type", "virtio");
        xml_writer_write_attribute(writer, "name", DOMAIN_GUEST_AGENT_CHANNEL);
        xmlTextWriterEndElement(writer);
        xmlTextWriterEndElement(writer);
    }
    if (def->video != NULL) {
        xmlTextWriterStartElement(writer, BAD_CAST "video");
        xmlTextWriterStartElement(writer, BAD_CAST "model");
        xml_writer_write_attribute(writer, "type", def->video);
        xmlTextWriterEndElement(writer);
        xmlTextWriterEndElement(writer);
    }
    xmlTextWriterEndElement(writer);

    xmlTextWriterEndElement(writer);
}

char *
domain_def_format(const DomainDef *def)
{
    g_autoptr(xmlBuffer) buf = xmlBufferCreate();
    xmlTextWriterPtr writer = xml_writer_new(buf);

    domain_def_write(def, writer);
    /* Freeing the writer flushes it into @buf. */
    xmlFreeTextWriter(writer);
    return g_strndup((const char *)xmlBufferContent(buf), xmlBufferLength(buf));
}
