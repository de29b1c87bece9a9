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

/* TRUE when @xml validates against the RelaxNG schema at @rng_path
 * (loaded once per path, its includes from local files only, never the
 * network); FALSE with SNAP_ERROR_INVALID and the validator's messages,
 * SNAP_ERROR_FAILED when the schema cannot be loaded. Any thread. */
gboolean snapshot_xml_validate(const char *xml, gsize len, const char *rng_path,
                               GError **error);

/* libvirt's domainsnapshot.rng: $SNAPTREEFS_SNAPSHOT_SCHEMA, else
 * /usr/share/libvirt/schemas/domainsnapshot.rng (package libvirt0). */
const char *snapshot_xml_schema_path(void);

/* The check of XML written to `create`, as `virsh snapshot-create
 * --validate`: snapshot_xml_validate() against snapshot_xml_schema_path();
 * when that file is missing, a strict check that <domainsnapshot> holds
 * only the elements the schema allows. FALSE with SNAP_ERROR_INVALID. */
gboolean snapshot_xml_check_schema(const char *xml, gsize len, GError **error);

G_END_DECLS
