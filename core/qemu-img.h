/* qemu-img.h: one wrapper per qemu-img subcommand, run with an argv (never a
 * shell) by snap_spawn_sync(). A failure's message is qemu-img's own
 * stderr, in SNAP_ERROR_QEMU. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The qemu-img binary: $SNAPTREEFS_QEMU_IMG, else "qemu-img" from PATH. */
const char *qemu_img_binary(void);

/* qemu-img snapshot -c|-a|-d TAG FILE. */
gboolean qemu_img_snapshot_create(const char *file, const char *tag,
                                  GCancellable *cancellable, GError **error);
gboolean qemu_img_snapshot_apply(const char *file, const char *tag,
                                 GCancellable *cancellable, GError **error);
gboolean qemu_img_snapshot_delete(const char *file, const char *tag,
                                  GCancellable *cancellable, GError **error);

typedef struct {
    char *name; /* the tag */
    gint64 date_sec;
    guint64 vm_state_size;
} QemuImgSnapshot;

void qemu_img_snapshot_free(QemuImgSnapshot *snap);

/* `qemu-img info --output=json -U FILE`: the internal snapshot table of
 * FILE (GPtrArray of QemuImgSnapshot*), in the image's order. Also gives
 * the format and virtual size when the pointers are not NULL. */
GPtrArray *qemu_img_info(const char *file, char **format, guint64 *virtual_size,
                         GCancellable *cancellable, GError **error);

/* `qemu-img create -f FMT FILE SIZE` (used by tests and the demo). */
gboolean qemu_img_create(const char *file, const char *format, guint64 size,
                         GError **error);

G_END_DECLS
