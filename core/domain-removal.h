/* domain-removal.h: the file work of undefining a domain, step by step and
 * idempotent, so an interrupted removal can be finished from its journal. */
#pragma once

#include <glib.h>

#include "domain-def.h"

G_BEGIN_DECLS

/* The image files a full removal deletes: the <source file> of every disk
 * of @def and of every disk named by the snapshot documents @snapshot_xmls
 * (their <disks> entries and their embedded <domain>), absolute, each
 * once, in that order. Backing files an image merely refers to are not
 * followed: only what the definition names. Relative paths resolve
 * against @state_dir. (transfer full: char*) */
GPtrArray *domain_removal_files(const DomainDef *def, GPtrArray *snapshot_xmls,
                                const char *state_dir);

/* Removes, in this order, every STATE/snapshots/@domain/ file and that
 * directory, then each of @files (NULL: none), then
 * STATE/domains/@domain.xml (from then on the domain no longer loads),
 * then its STATE/run/ files. Missing files are success, so a repeat
 * finishes what a crash interrupted. Stops at the first failure. */
gboolean domain_removal_run(const char *state_dir, const char *domain, GPtrArray *files,
                            GError **error);

G_END_DECLS
