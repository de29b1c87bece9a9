/* domain-removal.h: the file work of undefining a domain, step by step and
 * idempotent, so an interrupted removal can be finished from its journal. */
#pragma once

#include <gio/gio.h>

#include "domain-def.h"

G_BEGIN_DECLS

/* The image files a full removal deletes: the <source file> of every disk
 * of @def and of every disk named by the snapshot documents @snapshot_xmls
 * (their <disks> entries and their embedded <domain>), absolute, each
 * once, in that order. Backing files an image merely refers to are not
 * followed: only what the definition names. Relative paths resolve
 * against @state_dir. With @formats, each file's image format ("qcow2",
 * "raw") goes there at the same index. (transfer full: char*) */
GPtrArray *domain_removal_files(const DomainDef *def, GPtrArray *snapshot_xmls,
                                const char *state_dir, GPtrArray **formats);

/* The files @file's backing chain opens (@file first, read as @format,
 * never probed; its layers with the formats they record), added to @in_use by identity
 * (st_dev, st_ino), so another spelling of the same file (a symlink, "..") compares
 * equal. A missing
 * @file adds nothing; a chain that cannot be read is an error. */
gboolean domain_removal_add_chain(GHashTable *in_use, const char *file,
                                  const char *format, GCancellable *cancellable,
                                  GError **error);

/* A set for domain_removal_add_chain(). (transfer full) */
GHashTable *domain_removal_in_use_new(void);

/* Whether @file (followed if a symlink) is one of the files in @in_use. */
gboolean domain_removal_is_in_use(GHashTable *in_use, const char *file);

/* Removes, in this order, every STATE/snapshots/@domain/ file and that
 * directory, then each of @files (NULL: none), then
 * STATE/domains/@domain.xml (from then on the domain no longer loads),
 * then its STATE/run/ files. Missing files are success, so a repeat
 * finishes what a crash interrupted. Stops at the first failure. */
gboolean domain_removal_run(const char *state_dir, const char *domain, GPtrArray *files,
                            GError **error);

G_END_DECLS
