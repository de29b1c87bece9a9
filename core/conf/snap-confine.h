/* snap-confine.h: which disk files the XML written to `create` may name. */
#pragma once

#include "domain-def.h"
#include "snapshot-def.h"

G_BEGIN_DECLS

/* TRUE when every file @def names (the <source file> of its <disks> and
 * of the disks of its embedded <domain>) is one of @dom's disk files or
 * inside a directory holding one of them; otherwise FALSE with
 * SNAP_ERROR_INVALID naming the file. Relative paths resolve against
 * @state_dir, as in a domain definition. So the definition in
 * STATE/domains/ (the administrator's) says where images may be; a
 * snapshot written to `create`, which a revert may make the domain's
 * definition, cannot point snaptreefs at any other file. */
gboolean snap_confine_snapshot(const DomainDef *dom, const SnapshotDef *def,
                               const char *state_dir, GError **error);

G_END_DECLS
