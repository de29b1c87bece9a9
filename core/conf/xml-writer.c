/* xml-writer.c: safe parsing and libvirt-style writing with libxml2. */
#include "xml-writer.h"

#include <string.h>

#include "snap-error.h"

/* libxml2 wants xmlInitParser() once before threads use it. */
static void
xml_init_once(void)
{
    static gsize initialized = 0;

    if (g_once_init_enter(&initialized)) {
        xmlInitParser();
        g_once_init_leave(&initialized, 1);
    }
}

/* How much of libxml2's messages an error keeps. */
#define XML_MESSAGES_MAX_BYTES 1024

typedef struct {
    GString *messages; /* libxml2's errors, one a line */
    gboolean saw_dtd;
} ParseState;

/* Errors arrive on the parser context's own structured handler, never a
 * global one, so parses on other threads cannot mix their messages. */
static void
collect_parse_error(void *data, xmlErrorPtr err)
{
    xmlParserCtxtPtr ctxt = data;
    ParseState *state = ctxt != NULL ? ctxt->_private : NULL;
    g_autofree char *message = NULL;

    if (state == NULL || err == NULL || err->message == NULL)
        return;
    /* A refused DOCTYPE stops the parser, which reports that as an error
     * of its own; the DOCTYPE is the reason worth showing. */
    if (state->saw_dtd && err->code == XML_ERR_USER_STOP)
        return;
    /* The first messages say what is wrong; a flood of follow-ups would
     * only bury them in the errors file. */
    if (state->messages->len >= XML_MESSAGES_MAX_BYTES)
        return;
    /* libxml2 quotes the input, which need not be UTF-8; GError
     * messages, the errors file and the log must be. */
    message = g_strstrip(g_utf8_make_valid(err->message, -1));
    if (state->messages->len > 0)
        g_string_append(state->messages, "; ");
    if (err->line > 0)
        g_string_append_printf(state->messages, "line %d: ", err->line);
    g_string_append(state->messages, message);
}

/* Stops the parse at <!DOCTYPE, before any entity declaration in it is
 * read: a snapshot or domain document never needs a DTD, and refusing it
 * outright is what keeps entity bombs and external entities out. */
static void
refuse_internal_subset(void *data, const xmlChar *name, const xmlChar *external_id,
                       const xmlChar *system_id)
{
    xmlParserCtxtPtr ctxt = data;
    ParseState *state = ctxt->_private;

    state->saw_dtd = TRUE;
    xmlStopParser(ctxt);
}

static void
ignore_generic_error(void *ctx, const char *msg, ...)
{
}

xmlDocPtr
xml_parse_safe(const char *xml, gsize len, GError **error)
{
    g_autoptr(GString) messages = g_string_new(NULL);
    ParseState state = {.messages = messages, .saw_dtd = FALSE};
    xmlParserCtxtPtr ctxt;
    g_autoptr(xmlDoc) doc = NULL;
    /* No XML_PARSE_NOENT (entity substitution), DTDLOAD, DTDATTR or
     * DTDVALID; NOCDATA turns CDATA into plain text for the copier. */
    const int options =
        XML_PARSE_NONET | XML_PARSE_NOCDATA | XML_PARSE_NOERROR | XML_PARSE_NOWARNING;

    g_return_val_if_fail(xml != NULL || len == 0, NULL);

    xml_init_once();

    if (len > G_MAXINT) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "XML document too large (%" G_GSIZE_FORMAT " bytes)", len);
        return NULL;
    }
    if (len == 0) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID, "empty XML document");
        return NULL;
    }

    ctxt = xmlNewParserCtxt();
    if (ctxt == NULL) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_FAILED,
                            "cannot allocate an XML parser");
        return NULL;
    }
    ctxt->_private = &state;
    ctxt->sax->serror = collect_parse_error;
    ctxt->sax->internalSubset = refuse_internal_subset;
    /* Encoding errors bypass the context's handler and go to libxml2's
     * generic one (per thread), which prints to stderr: silence it, the
     * parse fails with its structured error anyway. */
    xmlSetGenericErrorFunc(NULL, ignore_generic_error);

    doc = xmlCtxtReadMemory(ctxt, xml, (int)len, NULL, NULL, options);
    xmlFreeParserCtxt(ctxt);

    if (state.saw_dtd ||
        (doc != NULL && (doc->intSubset != NULL || doc->extSubset != NULL))) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "XML with a DOCTYPE is refused (no DTDs or entities)");
        return NULL;
    }
    if (doc == NULL) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID, "XML does not parse: %s",
                    messages->len > 0 ? messages->str : "unknown error");
        return NULL;
    }
    if (xmlDocGetRootElement(doc) == NULL) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "XML document has no root element");
        return NULL;
    }
    return g_steal_pointer(&doc);
}

xmlTextWriterPtr
xml_writer_new(xmlBufferPtr buf)
{
    xmlTextWriterPtr writer;

    xml_init_once();
    writer = xmlNewTextWriterMemory(buf, 0);
    g_return_val_if_fail(writer != NULL, NULL);
    xmlTextWriterSetIndent(writer, 1);
    xmlTextWriterSetIndentString(writer, BAD_CAST "  ");
    xmlTextWriterSetQuoteChar(writer, '\'');
    return writer;
}

void
xml_writer_write_attribute(xmlTextWriterPtr writer, const char *name, const char *value)
{
    g_autoptr(GString) escaped = g_string_sized_new(strlen(value) + 16);

    for (const char *p = value; *p != '\0'; p++) {
        switch (*p) {
        case '&':
            g_string_append(escaped, "&amp;");
            break;
        case '<':
            g_string_append(escaped, "&lt;");
            break;
        case '>':
            g_string_append(escaped, "&gt;");
            break;
        case '"':
            g_string_append(escaped, "&quot;");
            break;
        case '\'':
            g_string_append(escaped, "&apos;");
            break;
        /* Character references, because a parser normalizes literal
         * whitespace in attribute values to spaces. */
        case '\n':
            g_string_append(escaped, "&#10;");
            break;
        case '\r':
            g_string_append(escaped, "&#13;");
            break;
        case '\t':
            g_string_append(escaped, "&#9;");
            break;
        default:
            g_string_append_c(escaped, *p);
            break;
        }
    }
    xmlTextWriterStartAttribute(writer, BAD_CAST name);
    xmlTextWriterWriteRaw(writer, BAD_CAST escaped->str);
    xmlTextWriterEndAttribute(writer);
}

static char *
qualified_name(const xmlNs *ns, const xmlChar *name)
{
    if (ns != NULL && ns->prefix != NULL)
        return g_strdup_printf("%s:%s", (const char *)ns->prefix, (const char *)name);
    return g_strdup((const char *)name);
}

/* The URI of @ns as written. libxml2 2.9 decodes the entities of an
 * xmlns value except &amp;, which it keeps as the character reference
 * "&#38;"; written as it is, that would be escaped again and grow on
 * every round trip. (transfer full) */
static char *
namespace_href(xmlNsPtr ns)
{
    g_auto(GStrv) parts = NULL;

    if (ns->href == NULL)
        return g_strdup("");
    parts = g_strsplit((const char *)ns->href, "&#38;", -1);
    return g_strjoinv("&", parts);
}

/* TRUE when @node has both element children and text that is not
 * blank. */
static gboolean
has_mixed_content(xmlNodePtr node)
{
    gboolean text = FALSE, element = FALSE;

    for (xmlNodePtr c = node->children; c != NULL; c = c->next) {
        if (c->type == XML_ELEMENT_NODE)
            element = TRUE;
        else if ((c->type == XML_TEXT_NODE || c->type == XML_CDATA_SECTION_NODE) &&
                 !xmlIsBlankNode(c))
            text = TRUE;
    }
    return text && element;
}

/* @indent: whether @writer indents here (it does unless inside mixed
 * content; libxml2 cannot be asked). */
static void
copy_node(xmlTextWriterPtr writer, xmlNodePtr node, gboolean indent)
{
    g_autofree char *name = NULL;
    gboolean mixed;

    switch (node->type) {
    case XML_TEXT_NODE:
    case XML_CDATA_SECTION_NODE:
        /* Blank text is the source's indentation; ours replaces it. */
        if (node->content != NULL && !xmlIsBlankNode(node))
            xmlTextWriterWriteString(writer, node->content);
        return;
    case XML_ELEMENT_NODE:
        break;
    default:
        /* Comments, processing instructions and the like are dropped. */
        return;
    }

    name = qualified_name(node->ns, node->name);
    xmlTextWriterStartElement(writer, BAD_CAST name);

    for (xmlNsPtr ns = node->nsDef; ns != NULL; ns = ns->next) {
        g_autofree char *attr =
            ns->prefix != NULL ? g_strdup_printf("xmlns:%s", (const char *)ns->prefix)
                               : g_strdup("xmlns");

        g_autofree char *href = namespace_href(ns);

        xml_writer_write_attribute(writer, attr, href);
    }
    for (xmlAttrPtr attr = node->properties; attr != NULL; attr = attr->next) {
        g_autofree char *attr_name = qualified_name(attr->ns, attr->name);
        xmlChar *value = xmlNodeGetContent((xmlNodePtr)attr);

        xml_writer_write_attribute(writer, attr_name,
                                   value != NULL ? (const char *)value : "");
        xmlFree(value);
    }
    /* Text beside elements (mixed content) is data, so no indentation may
     * be added around it: written as it is, it reads back the same. */
    mixed = indent && has_mixed_content(node);
    if (mixed)
        xmlTextWriterSetIndent(writer, 0);
    for (xmlNodePtr child = node->children; child != NULL; child = child->next)
        copy_node(writer, child, indent && !mixed);

    xmlTextWriterEndElement(writer);
    if (mixed)
        xmlTextWriterSetIndent(writer, 1);
}

void
xml_writer_copy_node(xmlTextWriterPtr writer, xmlNodePtr node)
{
    copy_node(writer, node, TRUE);
}

xmlNodePtr
xml_child(xmlNodePtr parent, const char *name)
{
    if (parent == NULL)
        return NULL;
    for (xmlNodePtr child = parent->children; child != NULL; child = child->next) {
        if (child->type == XML_ELEMENT_NODE && xmlStrEqual(child->name, BAD_CAST name))
            return child;
    }
    return NULL;
}

char *
xml_child_text(xmlNodePtr parent, const char *name)
{
    xmlNodePtr child = xml_child(parent, name);

    return child != NULL ? xml_node_text(child) : NULL;
}

char *
xml_node_text(xmlNodePtr node)
{
    xmlChar *content = xmlNodeGetContent(node);
    char *text = g_strdup(content != NULL ? (const char *)content : "");

    xmlFree(content);
    return text;
}

char *
xml_prop(xmlNodePtr node, const char *name)
{
    xmlChar *value;
    char *copy;

    if (node == NULL)
        return NULL;
    value = xmlGetNoNsProp(node, BAD_CAST name);
    if (value == NULL)
        return NULL;
    copy = g_strdup((const char *)value);
    xmlFree(value);
    return copy;
}
