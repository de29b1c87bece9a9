/* xml-writer.h: libxml2 helpers shared by the XML formatters and parsers. */
#pragma once

#include <glib.h>
#include <libxml/parser.h>
#include <libxml/tree.h>
#include <libxml/xmlwriter.h>
#include <libxml/xmlsave.h>

G_BEGIN_DECLS

G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlDoc, xmlFreeDoc)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlTextWriter, xmlFreeTextWriter)
G_DEFINE_AUTOPTR_CLEANUP_FUNC(xmlBuffer, xmlBufferFree)

/* Parses @xml safely: XML_PARSE_NONET, no entity substitution, no DTD
 * loading, and any <!DOCTYPE> refused. Returns NULL with
 * SNAP_ERROR_INVALID carrying libxml2's message. */
xmlDocPtr xml_parse_safe(const char *xml, gsize len, GError **error);

/* A writer into @buf with libvirt's conventions: 2-space indent, single
 * quotes. */
xmlTextWriterPtr xml_writer_new(xmlBufferPtr buf);

/* Writes attribute @name='@value' through @writer. Use this instead of
 * xmlTextWriterWriteAttribute(): with the single quote as quote char,
 * libxml2 (2.9) leaves an apostrophe in the value unescaped and the output
 * does not parse. This escapes it (&apos;) as libvirt does. */
void xml_writer_write_attribute(xmlTextWriterPtr writer, const char *name,
                                const char *value);

/* Writes @node and its subtree through @writer (elements, attributes,
 * non-blank text, CDATA, comments dropped), so that embedded foreign XML
 * comes out with the same indentation as the rest. */
void xml_writer_copy_node(xmlTextWriterPtr writer, xmlNodePtr node);

/* The text content of the first child element of @parent named @name, or
 * NULL. (transfer full) */
char *xml_child_text(xmlNodePtr parent, const char *name);

/* The text content of @node ("" when it has none). (transfer full) */
char *xml_node_text(xmlNodePtr node);

/* The first child element of @parent named @name, or NULL. */
xmlNodePtr xml_child(xmlNodePtr parent, const char *name);

/* Attribute @name of @node, or NULL. (transfer full) */
char *xml_prop(xmlNodePtr node, const char *name);

G_END_DECLS
