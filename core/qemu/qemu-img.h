/* qemu-img.h: one wrapper per qemu-img subcommand, run with an argv (never a
 * shell) by snap_spawn_sync(). A failure's message is qemu-img's own
 * stderr, in SNAP_ERROR_QEMU. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

/* The qemu-img binary: $SNAPTREEFS_QEMU_IMG, else "qemu-img" from PATH. */
const char *qemu_img_binary(void);

/* qemu-img snapshot -c|-a|-d TAG FILE. -c and -d find the snapshot by
 * its tag; -a would look TAG up as an ID first, so apply passes the ID
 * of the snapshot tagged TAG (from qemu_img_info()) and loads exactly
 * that one. */
gboolean qemu_img_snapshot_create(const char *file, const char *tag,
                                  GCancellable *cancellable, GError **error);
gboolean qemu_img_snapshot_apply(const char *file, const char *tag,
                                 GCancellable *cancellable, GError **error);
gboolean qemu_img_snapshot_delete(const char *file, const char *tag,
                                  GCancellable *cancellable, GError **error);

typedef struct {
    char *id;   /* qcow2's snapshot ID ("1", "2", ...); may be NULL */
    char *name; /* the tag */
    gint64 date_sec;
    guint64 vm_state_size;
} QemuImgSnapshot;

void qemu_img_snapshot_free(QemuImgSnapshot *snap);

/* `qemu-img info --output=json -U -f FORMAT FILE`: the internal snapshot
 * table of FILE (GPtrArray of QemuImgSnapshot*), in the image's order,
 * and its virtual size when @virtual_size is not NULL. @format ("qcow2",
 * "raw") is the one the domain gives: qemu-img never probes, so a guest
 * that writes a qcow2 header into a raw disk is still read as raw. */
GPtrArray *qemu_img_info(const char *file, const char *format, guint64 *virtual_size,
                         GCancellable *cancellable, GError **error);

/* FALSE with SNAP_ERROR_INVALID when another snapshot of FILE has @tag
 * as its ID: QEMU (QMP snapshot-load, HMP loadvm, and libvirt through
 * them) looks a tag up as an ID first and would load that one. */
gboolean qemu_img_tag_is_exact(const char *file, const char *tag,
                               GCancellable *cancellable, GError **error);

/* `qemu-img info --backing-chain -U -f FORMAT FILE`: FILE, its backing
 * file and so on, as paths QEMU opened, in @files; their formats in
 * @formats (both GPtrArray of char*, transfer full). FILE is read as
 * @format (never probed); each layer below as its overlay records. */
gboolean qemu_img_chain(const char *file, const char *format, GPtrArray **files,
                        GPtrArray **formats, GCancellable *cancellable, GError **error);

/* `qemu-img create -f qcow2 -b BACKING -F FMT FILE`: an empty overlay,
 * of BACKING's size. FILE may exist (it is overwritten): the caller
 * reserves the name first. */
gboolean qemu_img_create_overlay(const char *file, const char *backing,
                                 const char *backing_format, GError **error);

/* The percentage done of a long qemu-img run (`-p`), as it changes. */
typedef void (*QemuImgProgressFunc)(int percent, gpointer user_data);

/* `qemu-img commit -b BASE TOP`: TOP's data goes into BASE, an image in
 * TOP's backing chain; TOP is left as it was (-d). @progress may be NULL. */
gboolean qemu_img_commit(const char *top, const char *base, QemuImgProgressFunc progress,
                         gpointer progress_data, GCancellable *cancellable,
                         GError **error);

/* `qemu-img rebase`: FILE's backing becomes BACKING (NULL: none) of
 * format @backing_format. Safe mode (@unsafe FALSE) copies into FILE what
 * differs, so what FILE shows is unchanged; unsafe mode only rewrites the
 * header, for a BACKING that holds the same data as the old one. */
gboolean qemu_img_rebase(const char *file, const char *backing,
                         const char *backing_format, gboolean unsafe,
                         QemuImgProgressFunc progress, gpointer progress_data,
                         GCancellable *cancellable, GError **error);

/* `qemu-img create -f FMT FILE SIZE` (used by tests and the demo). */
gboolean qemu_img_create(const char *file, const char *format, guint64 size,
                         GError **error);

G_END_DECLS
