/* control-words.h: parsing of the words written to the control files
 * (`revert`, `state`, `.forget`, `.undefine`) into the flags of
 * snap-types.h. The buffers come straight from write(2): not
 * NUL-terminated, possibly binary; nothing reads past @len. */
#pragma once

#include <gio/gio.h>

#include "snap-types.h"

G_BEGIN_DECLS

/* The words of a write to `revert`: empty (just "\n"), or any of
 * "running", "paused", "force" separated by blanks; "running paused" is
 * INVALID, as libvirt's flags are mutually exclusive. */
gboolean snap_revert_flags_parse(const char *buf, gsize len, SnapRevertFlags *flags,
                                 GError **error);

/* The one word of a write to `state`. */
gboolean snap_domain_action_parse(const char *buf, gsize len, SnapDomainAction *action,
                                  GError **error);

/* The line written to a domain's `.forget` file: "MODE NAME", MODE one of
 * `snapshot` (METADATA_ONLY), `children` (| CHILDREN) or `children-only`
 * (| CHILDREN_ONLY), NAME the rest of the line after one space (names may
 * hold spaces; one trailing newline is dropped). @flags always include
 * SNAP_DELETE_METADATA_ONLY. Unknown mode, no name, a bad name: INVALID.
 * (@name: transfer full) */
gboolean snap_forget_parse(const char *buf, gsize len, SnapDeleteFlags *flags,
                           char **name, GError **error);

/* The one word written to a domain's `.undefine` file: "metadata" or
 * "full"; anything else is INVALID. */
gboolean snap_undefine_mode_parse(const char *buf, gsize len, SnapUndefineMode *mode,
                                  GError **error);

G_END_DECLS
