/* backend-libvirt-names.h: libvirt's snapshot and domain names <-> names the mounted tree
 * can show. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

/* The name the tree shows for libvirt's @name. libvirt allows names the
 * file model cannot show or reserves, so these bytes are percent-encoded
 * (%XX, upper-case hex): '%' itself, '/', control characters (below 0x20
 * and 0x7f), a leading '.', and every byte >= 0x80 of a name that is not
 * valid UTF-8; a reserved name (metadata.xml, revert, disks, domain.xml,
 * state, current, create, errors, job) gets its first byte encoded
 * ("revert" -> "%72evert"). Any other name is shown as it is. With
 * @snapshot FALSE (a domain name) reserved names stay as they are.
 * (transfer full) */
char *lv_name_escape(const char *name, gboolean snapshot);

/* libvirt's name for the tree's @name: percent-decoding. NULL (and
 * SNAP_ERROR_INVALID) when @name is not exactly what lv_name_escape()
 * gives for the decoded name, so every name maps one way only.
 * (transfer full) */
char *lv_name_unescape(const char *name, gboolean snapshot, GError **error);

G_END_DECLS
