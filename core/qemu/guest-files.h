/* guest-files.h: a guest's filesystems at a snapshot, read through libguestfs appliances.
 *
 * An owner (one snapshot: "domain/snapshot") has a session: its drives
 * (NBD sockets serving the snapshot's disks, from the GuestDrivesOpen
 * callback), at most one libguestfs appliance reading them, and caches of
 * every listing and attribute it has read, which outlive the appliance
 * (a snapshot never changes). Each filesystem libguestfs finds is mounted
 * read-only at "/NAME" in the appliance (NAME: the guest's device, "vda1",
 * "vdb", "vg0-root"), and an operating system found by inspection at "/os"
 * with its mount points assembled; paths here are relative to that root
 * ("" is the list of filesystems, "vda1/etc/passwd" a file).
 *
 * Appliances start on first need, are stopped when idle (no call in
 * flight, no open file, for idle_ms or as long as their launch took) and when more than
 * max would run, and are restarted when one died. Blocking calls may take an appliance
 * launch (seconds): call them from the owner's queue (guest_files_submit),
 * never from a thread that must stay responsive; the guest_files_cached_*
 * calls never block on an appliance. Thread-safe throughout.
 *
 * Errors (SNAP_ERROR): STALE once the owner is retired (its snapshot is
 * going); NOT_FOUND for a path that does not exist; QEMU when libguestfs
 * fails (its message); FAILED for what the guest's data makes unreadable. */
#pragma once

#include <gio/gio.h>
#include <sys/stat.h>

G_BEGIN_DECLS

typedef struct _GuestFiles GuestFiles;
typedef struct _GuestFile GuestFile;

/* One disk the appliance reads. */
typedef struct {
    char *target; /* the guest's name for it: "vda" */
    char *socket; /* a unix socket of an NBD server serving its bytes, read only */
} GuestDrive;

void guest_drive_free(GuestDrive *drive);

/* The drives of @owner, in the guest's disk order (transfer full: an
 * array freeing its GuestDrive*), and in @out_hold what keeps their
 * servers running until passed to the GuestDrivesClose function. */
typedef GPtrArray *(*GuestDrivesOpen)(const char *owner, gpointer data,
                                      gpointer *out_hold, GError **error);
typedef void (*GuestDrivesClose)(gpointer hold);

/* Notable events (launch times, the KVM fallback, appliances stopped), one
 * line each, for the daemon's log. Called on any thread. */
typedef void (*GuestFilesLogFunc)(const char *line, gpointer data);

typedef struct {
    guint max;       /* appliances running at once, >= 1 */
    guint idle_ms;   /* an appliance nobody uses stops after this, or after
                      * as long as its launch took if that is longer */
    guint memory_mb; /* each appliance's memory */
    GuestDrivesOpen drives_open;
    GuestDrivesClose drives_close;
    gpointer drives_data;
    GuestFilesLogFunc log;
    gpointer log_data;
} GuestFilesOptions;

/* A registry; starts no thread or appliance until first used.
 * (transfer full) */
GuestFiles *guest_files_new(const GuestFilesOptions *options);

/* Stops every appliance (killed by pid and waited for) and frees the
 * caches. No call may be in flight or queued; files still open fail with
 * STALE from then on and must still be closed. NULL is allowed. */
void guest_files_free(GuestFiles *gf);

/* One directory entry, with the guest's attributes: st_ino and st_dev are
 * the guest's own. */
typedef struct {
    char *name;
    struct stat st;
    char *link; /* a symlink's target; else NULL */
} GuestEntry;

/* Runs @func(@data) on @owner's queue: one thread per owner, one call at
 * a time (an appliance answers one call at a time anyway), so a slow
 * launch for one owner never delays another's calls. */
void guest_files_submit(GuestFiles *gf, const char *owner, GFunc func, gpointer data);

/* The entries of directory @path (no "." or ".."), sorted by name; for ""
 * the filesystems (and "os"). Blocking. (transfer full: GuestEntry*, the
 * cache's own, never to be changed) */
GPtrArray *guest_files_list(GuestFiles *gf, const char *owner, const char *path,
                            GError **error);

/* The entry at @path (not ""), from its directory's listing. Blocking.
 * (transfer full: a copy) */
GuestEntry *guest_files_stat(GuestFiles *gf, const char *owner, const char *path,
                             GError **error);

/* What guest_files_list() would return, if its listing is cached; NULL
 * otherwise, or when the owner is retired. Never blocks on an appliance.
 * (transfer full) */
GPtrArray *guest_files_cached_list(GuestFiles *gf, const char *owner, const char *path);

/* What guest_files_stat() would say, if the listing of @path's directory
 * is cached: TRUE with @out (transfer full; NULL when there is no such
 * entry), FALSE when not cached. Never blocks on an appliance. */
gboolean guest_files_cached_stat(GuestFiles *gf, const char *owner, const char *path,
                                 GuestEntry **out);

/* Opens the regular file @path for reading; keeps the owner's appliance
 * from stopping while open. Never blocks on an appliance (checked against
 * the cache when it holds @path's directory). (transfer full) */
GuestFile *guest_files_open(GuestFiles *gf, const char *owner, const char *path,
                            GError **error);

/* Up to @count bytes at @offset: fewer only at the end of the file. A
 * sequential reader's next bytes are read ahead in large pieces (one
 * appliance call per MiB). Blocking; call on the owner's queue. */
GBytes *guest_file_read(GuestFile *file, gsize count, guint64 offset, GError **error);

/* NULL is allowed. */
void guest_file_close(GuestFile *file);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GuestFile, guest_file_close)

void guest_entry_free(GuestEntry *entry);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(GuestEntry, guest_entry_free)

/* Stops @owner's appliance (waiting for the call in flight), forgets its
 * caches and makes its open files and calls fail with STALE, until
 * guest_files_unretire(). Call before the snapshot's data goes. */
void guest_files_retire(GuestFiles *gf, const char *owner);
void guest_files_unretire(GuestFiles *gf, const char *owner);

/* The number of appliances running now. */
guint guest_files_running(GuestFiles *gf);

G_END_DECLS
