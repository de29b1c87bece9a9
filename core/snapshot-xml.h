/* snapshot-xml.h: <domainsnapshot> XML <-> SnapshotDef, with no file I/O. */
#pragma once

#include <glib.h>
#include "snapshot-def.h"

G_BEGIN_DECLS

/* Parses one <domainsnapshot> document, as virsh snapshot-dumpxml prints
 * it or as libvirt stores it (with <active>). Unknown elements are ignored
 * with a g_debug() line. Parsing uses no network, expands no entities and
 * refuses documents with a DTD. Returns NULL with SNAP_ERROR_INVALID. */
SnapshotDef *snapshot_xml_parse(const char *xml, gsize len, GError **error);

/* Formats @def in libvirt's element order (name, description, state,
 * parent, creationTime, memory, disks, domain, inactiveDomain, cookie),
 * 2-space indent, single-quoted attributes, ending with a newline.
 * With @current, `<active>1</active>` is written last, as libvirt marks
 * the current snapshot; def->active is otherwise ignored.
 * snapshot_xml_format(snapshot_xml_parse(x)) == x for every x this
 * function produces. (transfer full) */
char *snapshot_xml_format(const SnapshotDef *def, gboolean current);

/* TRUE when @xml validates against libvirt's domainsnapshot.rng at
 * @rng_path; FALSE with SNAP_ERROR_INVALID and the validator's messages.
 * Used by tests and by the create file when the schema is installed. */
gboolean snapshot_xml_validate(const char *xml, gsize len, const char *rng_path,
                               GError **error);

G_END_DECLS
