/* snapshot-xml.c: <domainsnapshot> XML <-> SnapshotDef, libvirt's layout. */
#include "snapshot-xml.h"

#include <string.h>
#include <libxml/relaxng.h>

#include "snap-error.h"
#include "xml-writer.h"

/* Serializes @node alone, indented from column 0, so a foreign subtree
 * (<domain>, <cookie>) is kept whole and normalized. (transfer full) */
static char *
serialize_element(xmlNodePtr node)
{
    g_autoptr(xmlBuffer) buf = xmlBufferCreate();
    xmlTextWriterPtr writer = xml_writer_new(buf);

    xml_writer_copy_node(writer, node);
    xmlFreeTextWriter(writer);
    return g_strndup((const char *)xmlBufferContent(buf), xmlBufferLength(buf));
}

static gboolean
parse_memory(SnapshotDef *def, xmlNodePtr node, GError **error)
{
    g_autofree char *snapshot = xml_prop(node, "snapshot");

    def->memory_file = xml_prop(node, "file");
    if (snapshot == NULL) {
        /* libvirt: a file alone means external memory. */
        def->memory =
            def->memory_file != NULL ? SNAP_MEMORY_EXTERNAL : SNAP_MEMORY_DEFAULT;
    } else if (strcmp(snapshot, "no") == 0) {
        def->memory = SNAP_MEMORY_NO;
    } else if (strcmp(snapshot, "internal") == 0) {
        def->memory = SNAP_MEMORY_INTERNAL;
    } else if (strcmp(snapshot, "external") == 0) {
        def->memory = SNAP_MEMORY_EXTERNAL;
    } else {
        g_autofree char *escaped = g_strescape(snapshot, NULL);

        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "domainsnapshot: unknown memory snapshot mode '%s'", escaped);
        return FALSE;
    }
    return TRUE;
}

static gboolean
parse_disks(SnapshotDef *def, xmlNodePtr disks, GError **error)
{
    def->has_disks = TRUE;
    for (xmlNodePtr node = disks->children; node != NULL; node = node->next) {
        g_autoptr(SnapshotDiskDef) disk = NULL;
        g_autofree char *snapshot = NULL;
        xmlNodePtr source;

        if (node->type != XML_ELEMENT_NODE)
            continue;
        if (!xmlStrEqual(node->name, BAD_CAST "disk")) {
            g_debug("domainsnapshot: ignoring <disks><%s>", (const char *)node->name);
            continue;
        }

        disk = g_new0(SnapshotDiskDef, 1);
        disk->name = xml_prop(node, "name");
        if (disk->name == NULL || disk->name[0] == '\0') {
            g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                                "domainsnapshot: a <disk> has no name");
            return FALSE;
        }
        if (snapshot_def_find_disk(def, disk->name) != NULL) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "domainsnapshot: disk '%s' is listed twice", disk->name);
            return FALSE;
        }
        snapshot = xml_prop(node, "snapshot");
        if (snapshot == NULL) {
            disk->snapshot = DISK_SNAPSHOT_DEFAULT;
        } else if (!disk_snapshot_mode_from_string(snapshot, &disk->snapshot)) {
            g_autofree char *escaped = g_strescape(snapshot, NULL);

            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "domainsnapshot: disk '%s' has unknown snapshot mode '%s'",
                        disk->name, escaped);
            return FALSE;
        }
        disk->type = xml_prop(node, "type");
        disk->driver_type = xml_prop(xml_child(node, "driver"), "type");
        source = xml_child(node, "source");
        disk->source_file = xml_prop(source, "file");
        if (source != NULL && disk->source_file == NULL)
            g_debug("domainsnapshot: disk '%s': only <source file> is kept", disk->name);
        g_ptr_array_add(def->disks, g_steal_pointer(&disk));
    }
    return TRUE;
}

static const char *const known_elements[] = {
    "name",  "description", "state",          "parent", "creationTime", "memory",
    "disks", "domain",      "inactiveDomain", "cookie", "active",       NULL,
};

SnapshotDef *
snapshot_xml_parse(const char *xml, gsize len, GError **error)
{
    g_autoptr(xmlDoc) doc = xml_parse_safe(xml, len, error);
    g_autoptr(SnapshotDef) def = NULL;
    xmlNodePtr root;
    xmlNodePtr node;

    if (doc == NULL)
        return NULL;

    root = xmlDocGetRootElement(doc);
    if (!xmlStrEqual(root->name, BAD_CAST "domainsnapshot")) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "expected a <domainsnapshot> document, found <%s>",
                    (const char *)root->name);
        return NULL;
    }

    def = snapshot_def_new();

    /* The first of each element counts, as libvirt's XPath lookups do. */
    def->name = xml_child_text(root, "name");
    def->description = xml_child_text(root, "description");

    if ((node = xml_child(root, "state")) != NULL) {
        g_autofree char *text = g_strstrip(xml_node_text(node));

        def->state = snap_state_from_string(text);
        if (def->state == SNAP_STATE_NONE) {
            g_autofree char *escaped = g_strescape(text, NULL);

            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "domainsnapshot: unknown state '%s'", escaped);
            return NULL;
        }
    }

    if ((node = xml_child(root, "parent")) != NULL) {
        def->parent = xml_child_text(node, "name");
        if (def->parent == NULL || def->parent[0] == '\0') {
            g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                                "domainsnapshot: <parent> without a <name>");
            return NULL;
        }
    }

    if ((node = xml_child(root, "creationTime")) != NULL) {
        g_autofree char *text = g_strstrip(xml_node_text(node));
        gint64 value;

        if (!g_ascii_string_to_signed(text, 10, 0, G_MAXINT64, &value, NULL)) {
            g_autofree char *escaped = g_strescape(text, NULL);

            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "domainsnapshot: creationTime '%s' is not a number of seconds",
                        escaped);
            return NULL;
        }
        def->creation_time = value;
    }

    if ((node = xml_child(root, "memory")) != NULL && !parse_memory(def, node, error))
        return NULL;
    if ((node = xml_child(root, "disks")) != NULL && !parse_disks(def, node, error))
        return NULL;

    if ((node = xml_child(root, "domain")) != NULL)
        def->domain_xml = serialize_element(node);
    if ((node = xml_child(root, "inactiveDomain")) != NULL)
        def->inactive_domain_xml = serialize_element(node);
    if ((node = xml_child(root, "cookie")) != NULL)
        def->cookie_xml = serialize_element(node);

    if ((node = xml_child(root, "active")) != NULL) {
        g_autofree char *text = g_strstrip(xml_node_text(node));

        if (strcmp(text, "0") == 0) {
            def->active = 0;
        } else if (strcmp(text, "1") == 0) {
            def->active = 1;
        } else {
            g_autofree char *escaped = g_strescape(text, NULL);

            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "domainsnapshot: <active> must be 0 or 1, not '%s'", escaped);
            return NULL;
        }
    }

    for (node = root->children; node != NULL; node = node->next) {
        if (node->type == XML_ELEMENT_NODE &&
            !g_strv_contains((const char *const *)known_elements,
                             (const char *)node->name))
            g_debug("domainsnapshot: ignoring <%s>", (const char *)node->name);
    }

    return g_steal_pointer(&def);
}

/* Writes a kept foreign element (a standalone serialization) at the
 * writer's current depth. */
static void
write_foreign(xmlTextWriterPtr writer, const char *xml, const char *what)
{
    g_autoptr(GError) error = NULL;
    g_autoptr(xmlDoc) doc = NULL;

    if (xml == NULL)
        return;
    doc = xml_parse_safe(xml, strlen(xml), &error);
    if (doc == NULL) {
        /* Only a hand-built SnapshotDef can get here: parse output always
         * re-parses. Dropping it keeps the rest of the document valid. */
        g_debug("domainsnapshot: dropping unparsable <%s>: %s", what, error->message);
        return;
    }
    xml_writer_copy_node(writer, xmlDocGetRootElement(doc));
}

static void
write_disk(xmlTextWriterPtr writer, const SnapshotDiskDef *disk)
{
    xmlTextWriterStartElement(writer, BAD_CAST "disk");
    xml_writer_write_attribute(writer, "name", disk->name);
    if (disk->snapshot != DISK_SNAPSHOT_DEFAULT)
        xml_writer_write_attribute(writer, "snapshot",
                                   disk_snapshot_mode_to_string(disk->snapshot));
    if (disk->type != NULL)
        xml_writer_write_attribute(writer, "type", disk->type);
    if (disk->driver_type != NULL) {
        xmlTextWriterStartElement(writer, BAD_CAST "driver");
        xml_writer_write_attribute(writer, "type", disk->driver_type);
        xmlTextWriterEndElement(writer);
    }
    if (disk->source_file != NULL) {
        xmlTextWriterStartElement(writer, BAD_CAST "source");
        xml_writer_write_attribute(writer, "file", disk->source_file);
        xmlTextWriterEndElement(writer);
    }
    xmlTextWriterEndElement(writer);
}

char *
snapshot_xml_format(const SnapshotDef *def, gboolean current)
{
    g_autoptr(xmlBuffer) buf = xmlBufferCreate();
    xmlTextWriterPtr writer = xml_writer_new(buf);

    xmlTextWriterStartElement(writer, BAD_CAST "domainsnapshot");
    if (def->name != NULL)
        xmlTextWriterWriteElement(writer, BAD_CAST "name", BAD_CAST def->name);
    if (def->description != NULL)
        xmlTextWriterWriteElement(writer, BAD_CAST "description",
                                  BAD_CAST def->description);
    if (def->state != SNAP_STATE_NONE)
        xmlTextWriterWriteElement(writer, BAD_CAST "state",
                                  BAD_CAST snap_state_to_string(def->state));
    if (def->parent != NULL) {
        xmlTextWriterStartElement(writer, BAD_CAST "parent");
        xmlTextWriterWriteElement(writer, BAD_CAST "name", BAD_CAST def->parent);
        xmlTextWriterEndElement(writer);
    }
    if (def->creation_time >= 0)
        xmlTextWriterWriteFormatElement(writer, BAD_CAST "creationTime",
                                        "%" G_GINT64_FORMAT, def->creation_time);
    if (def->memory != SNAP_MEMORY_DEFAULT || def->memory_file != NULL) {
        xmlTextWriterStartElement(writer, BAD_CAST "memory");
        if (def->memory != SNAP_MEMORY_DEFAULT)
            xml_writer_write_attribute(writer, "snapshot",
                                       snap_memory_mode_to_string(def->memory));
        if (def->memory_file != NULL)
            xml_writer_write_attribute(writer, "file", def->memory_file);
        xmlTextWriterEndElement(writer);
    }
    if (def->has_disks || def->disks->len > 0) {
        xmlTextWriterStartElement(writer, BAD_CAST "disks");
        for (guint i = 0; i < def->disks->len; i++)
            write_disk(writer, g_ptr_array_index(def->disks, i));
        xmlTextWriterEndElement(writer);
    }
    write_foreign(writer, def->domain_xml, "domain");
    write_foreign(writer, def->inactive_domain_xml, "inactiveDomain");
    write_foreign(writer, def->cookie_xml, "cookie");
    if (current)
        xmlTextWriterWriteElement(writer, BAD_CAST "active", BAD_CAST "1");
    xmlTextWriterEndElement(writer);

    /* Freeing the writer flushes it into @buf. */
    xmlFreeTextWriter(writer);
    return g_strndup((const char *)xmlBufferContent(buf), xmlBufferLength(buf));
}

/* ---- validation ----------------------------------------------------------- */

/* Parsing libvirt's schema takes a noticeable fraction of a second, so
 * each one is parsed once and kept for the life of the process. */
static GMutex schema_lock;
/* How much of the validator's messages an error keeps. */
#define VALIDATE_MESSAGES_MAX_BYTES 1024

static GHashTable *schema_cache; /* rng path -> xmlRelaxNGPtr */

static void
collect_messages(void *data, xmlErrorPtr err)
{
    GString *messages = data;
    g_autofree char *message = NULL;

    if (err == NULL || err->message == NULL)
        return;
    /* The first messages say what is wrong; a flood of follow-ups would
     * only bury them in the errors file. */
    if (messages->len >= VALIDATE_MESSAGES_MAX_BYTES)
        return;
    message = g_strstrip(g_strdup(err->message));
    if (messages->len > 0)
        g_string_append(messages, "; ");
    if (err->line > 0)
        g_string_append_printf(messages, "line %d: ", err->line);
    g_string_append(messages, message);
}

static xmlExternalEntityLoader default_loader;

/* A schema's includes (domaincommon.rng, ...) are files beside it; a URL
 * with any other scheme is refused, so loading one never reaches the
 * network. */
static xmlParserInputPtr
local_only_loader(const char *url, const char *id, xmlParserCtxtPtr ctxt)
{
    if (url != NULL && strstr(url, "://") != NULL && !g_str_has_prefix(url, "file://"))
        return NULL;
    return default_loader(url, id, ctxt);
}

/* Called with schema_lock held. Process-wide: every other parse goes
 * through xml_parse_safe(), which loads no external entity at all. */
static void
install_local_loader(void)
{
    if (default_loader != NULL)
        return;
    xmlInitParser();
    default_loader = xmlGetExternalEntityLoader();
    xmlSetExternalEntityLoader(local_only_loader);
}

/* Called with schema_lock held. (transfer none) */
static xmlRelaxNGPtr
load_schema(const char *rng_path, GError **error)
{
    g_autoptr(GString) messages = g_string_new(NULL);
    xmlRelaxNGParserCtxtPtr pctxt;
    xmlRelaxNGPtr schema;

    if (schema_cache == NULL)
        schema_cache = g_hash_table_new_full(g_str_hash, g_str_equal, g_free,
                                             (GDestroyNotify)xmlRelaxNGFree);
    schema = g_hash_table_lookup(schema_cache, rng_path);
    if (schema != NULL)
        return schema;

    if (!g_file_test(rng_path, G_FILE_TEST_IS_REGULAR)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_FAILED, "schema %s is not installed",
                    rng_path);
        return NULL;
    }
    install_local_loader();
    pctxt = xmlRelaxNGNewParserCtxt(rng_path);
    if (pctxt == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_FAILED,
                    "cannot create a RelaxNG parser for %s", rng_path);
        return NULL;
    }
    xmlRelaxNGSetParserStructuredErrors(pctxt, collect_messages, messages);
    schema = xmlRelaxNGParse(pctxt);
    xmlRelaxNGFreeParserCtxt(pctxt);
    if (schema == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_FAILED, "schema %s does not load: %s",
                    rng_path, messages->len > 0 ? messages->str : "unknown error");
        return NULL;
    }
    g_hash_table_insert(schema_cache, g_strdup(rng_path), schema);
    return schema;
}

gboolean
snapshot_xml_validate(const char *xml, gsize len, const char *rng_path, GError **error)
{
    g_autoptr(GString) messages = g_string_new(NULL);
    g_autoptr(xmlDoc) doc = NULL;
    G_GNUC_UNUSED g_autoptr(GMutexLocker) locker = NULL;
    xmlRelaxNGValidCtxtPtr vctxt;
    xmlRelaxNGPtr schema;
    int ret;

    g_return_val_if_fail(rng_path != NULL, FALSE);

    doc = xml_parse_safe(xml, len, error);
    if (doc == NULL)
        return FALSE;

    /* Held through validation too: libxml2 does not promise that one
     * compiled schema may validate on several threads at once. */
    locker = g_mutex_locker_new(&schema_lock);
    schema = load_schema(rng_path, error);
    if (schema == NULL)
        return FALSE;

    vctxt = xmlRelaxNGNewValidCtxt(schema);
    if (vctxt == NULL) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_FAILED,
                            "cannot create a RelaxNG validator");
        return FALSE;
    }
    xmlRelaxNGSetValidStructuredErrors(vctxt, collect_messages, messages);
    ret = xmlRelaxNGValidateDoc(vctxt, doc);
    xmlRelaxNGFreeValidCtxt(vctxt);

    if (ret != 0) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "domainsnapshot does not validate against %s: %s", rng_path,
                    messages->len > 0 ? messages->str : "unknown error");
        return FALSE;
    }
    return TRUE;
}

const char *
snapshot_xml_schema_path(void)
{
    const char *env = g_getenv("SNAPTREEFS_SNAPSHOT_SCHEMA");

    return env != NULL && env[0] != '\0'
               ? env
               : "/usr/share/libvirt/schemas/domainsnapshot.rng";
}

/* The elements domainsnapshot.rng allows directly under <domainsnapshot>:
 * the check when the schema is not installed. */
static gboolean
check_elements(const char *xml, gsize len, GError **error)
{
    static const char *const known[] = {
        "name",  "description", "state",          "creationTime", "parent", "memory",
        "disks", "domain",      "inactiveDomain", "active",       "cookie", NULL,
    };
    g_autoptr(xmlDoc) doc = xml_parse_safe(xml, len, error);
    xmlNodePtr root;

    if (doc == NULL)
        return FALSE;
    root = xmlDocGetRootElement(doc);
    if (!xmlStrEqual(root->name, BAD_CAST "domainsnapshot")) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "domainsnapshot does not validate: the root element is <%s>",
                    (const char *)root->name);
        return FALSE;
    }
    for (xmlNodePtr n = root->children; n != NULL; n = n->next) {
        if (n->type == XML_ELEMENT_NODE &&
            !g_strv_contains(known, (const char *)n->name)) {
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                        "domainsnapshot does not validate: unknown element <%s>",
                        (const char *)n->name);
            return FALSE;
        }
    }
    return TRUE;
}

gboolean
snapshot_xml_check_schema(const char *xml, gsize len, GError **error)
{
    const char *rng = snapshot_xml_schema_path();

    if (!g_file_test(rng, G_FILE_TEST_IS_REGULAR)) {
        g_debug("%s is not installed: checking <domainsnapshot>'s elements only", rng);
        return check_elements(xml, len, error);
    }
    return snapshot_xml_validate(xml, len, rng, error);
}
