/* snap-names.h: validation of snapshot names (DESIGN.md "Names and bad input"). */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* Names of the files the tree shows beside snapshot directories; no
 * snapshot may take one of them. NULL-terminated. */
extern const char *const snap_reserved_names[];

/* TRUE when @name is a valid snapshot name: valid UTF-8, 1..200 bytes,
 * no '/', no control characters, not '.' or '..', not starting with '.',
 * not reserved. Otherwise FALSE with SNAP_ERROR_INVALID saying why. */
gboolean snap_name_validate(const char *name, GError **error);

G_END_DECLS
