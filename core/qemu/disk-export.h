/* disk-export.h: read-only qemu-nbd exports of disk images, shared by their readers.
 *
 * Each export is one `qemu-nbd --read-only` process serving one image (at
 * one internal snapshot, or as it is) on a unix socket, read through
 * libnbd connections. Readers of the same owner and source share it; it
 * stops a while after its last reader closed, when its owner is retired
 * and when the registry is freed. Exports never lock the image (QEMU's
 * force-share), so a running QEMU and qemu-img keep working beside them;
 * the data they serve stays valid as long as the internal snapshot they
 * load exists, which is why an owner is retired before its snapshot is
 * deleted. Thread-safe throughout. */
#pragma once

#include <gio/gio.h>

G_BEGIN_DECLS

typedef struct _DiskExports DiskExports;
typedef struct _DiskReader DiskReader;

/* What an export serves. */
typedef struct {
    const char *image;    /* the file */
    const char *format;   /* its format: "qcow2", "raw" */
    const char *snapshot; /* the internal snapshot to load; NULL: the file as it is */
} DiskExportSource;

/* The qemu-nbd binary: $SNAPTREEFS_QEMU_NBD, else "qemu-nbd" from PATH. */
const char *disk_export_binary(void);

/* The command line of the qemu-nbd serving @source on @socket. (transfer full) */
GStrv disk_export_argv(const char *socket, const DiskExportSource *source);

/* A registry whose sockets live in @run_dir (made 0700 when first
 * needed); an export nobody reads is stopped after @idle_ms. Starts no
 * thread until the first export starts. (transfer full) */
DiskExports *disk_exports_new(const char *run_dir, guint idle_ms);

/* Stops every export, waiting for their processes to exit; readers still
 * open fail from then on with SNAP_ERROR_STALE and must still be closed.
 * NULL is allowed. */
void disk_exports_free(DiskExports *exports);

/* A reader of @source for @owner (a key that disk_exports_retire()
 * matches), on the export already running for them or on one started now:
 * blocks until qemu-nbd answers. SNAP_ERROR_STALE while @owner is retired;
 * SNAP_ERROR_QEMU, with qemu-nbd's message, when it cannot start (e.g. no
 * such snapshot in the image). (transfer full) */
DiskReader *disk_exports_open(DiskExports *exports, const char *owner,
                              const DiskExportSource *source, GError **error);

/* Stops the exports of @owner, waiting for their processes to exit, and
 * makes their readers stale; until disk_exports_unretire() no export of
 * @owner starts. Call it before the data they serve is deleted. */
void disk_exports_retire(DiskExports *exports, const char *owner);
void disk_exports_unretire(DiskExports *exports, const char *owner);

/* The number of exports running now. */
guint disk_exports_count(DiskExports *exports);

/* The size in bytes of what @reader reads: the guest-visible disk. */
guint64 disk_reader_size(DiskReader *reader);

/* The unix socket of the export @reader reads, for other NBD clients
 * (libguestfs): it serves while @reader is open. (transfer none) */
const char *disk_reader_socket(DiskReader *reader);

/* Reads up to @count bytes at @offset: fewer only at the end of the disk
 * (none at or past it). What a sequential reader asks for next is read
 * ahead, and returned without a copy. Readers and calls may run in
 * parallel, each on a connection of its own. NULL with SNAP_ERROR_STALE
 * once the export was stopped under the reader, SNAP_ERROR_QEMU when the
 * read fails. (transfer full) */
GBytes *disk_reader_read(DiskReader *reader, gsize count, guint64 offset, GError **error);

/* lseek(2)'s SEEK_DATA (@data TRUE) or SEEK_HOLE from @offset, from the
 * image's allocation (NBD block status "base:allocation"): a hole is a
 * range that is not allocated and reads as zeros. @found FALSE means
 * ENXIO (no data after @offset, or @offset at or past the end). */
gboolean disk_reader_seek(DiskReader *reader, guint64 offset, gboolean data, guint64 *out,
                          gboolean *found, GError **error);

/* How many bytes of the disk hold data (what SEEK_DATA finds), from the
 * image's allocation, walked with as few block status requests as the
 * server allows; the whole size when it tells no allocation. */
gboolean disk_reader_allocated(DiskReader *reader, guint64 *bytes, GError **error);

/* NULL is allowed. */
void disk_reader_close(DiskReader *reader);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(DiskReader, disk_reader_close)

/* The extent at @offset: whether it is a hole and its length (> 0). */
typedef gboolean (*DiskExtentFunc)(gpointer data, guint64 offset, gboolean *hole,
                                   guint64 *length, GError **error);

/* The SEEK_DATA / SEEK_HOLE walk of disk_reader_seek() over a disk of
 * @size bytes whose extents @extent tells. */
gboolean disk_seek(guint64 size, guint64 offset, gboolean data, DiskExtentFunc extent,
                   gpointer extent_data, guint64 *out, gboolean *found, GError **error);

G_END_DECLS
