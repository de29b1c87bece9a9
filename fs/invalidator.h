/* invalidator.h: a thread that sends the kernel cache invalidations. */
#pragma once

#include <fuse_lowlevel.h>
#include <glib.h>

G_BEGIN_DECLS

/* Notifications are queued from any thread and sent from this one thread
 * only, because the kernel may block a notification on a directory lock
 * that a request we have not answered yet holds (doc/README.notifications
 * in libfuse). */
typedef struct _FsInvalidator FsInvalidator;

/* A queue without a thread: notifications wait until fs_invalidator_start. */
FsInvalidator *fs_invalidator_new(void);

/* Starts the thread sending to @se. Call after fuse_daemonize(). */
void fs_invalidator_start(FsInvalidator *inval, struct fuse_session *se);

/* From now on notifications are dropped, queued ones too (calls queued
 * with fs_invalidator_after() still run, in order). For the shutdown,
 * once the session loop has ended: a request the kernel sends from then
 * on is never read, and if it holds a directory's lock (a mkdir), a
 * notification for that directory would wait for it in the kernel
 * forever. The mount goes, and its caches with it. */
void fs_invalidator_quiesce(FsInvalidator *inval);

/* Stops the thread after the notifications queued so far, then frees.
 * NULL is allowed. */
void fs_invalidator_free(FsInvalidator *inval);

/* Queues fuse_lowlevel_notify_inval_entry(@parent, @name), unless a hold
 * names that entry (see fs_invalidator_hold()). */
void fs_invalidator_entry(FsInvalidator *inval, fuse_ino_t parent, const char *name);

/* Queues fuse_lowlevel_notify_inval_inode(@ino, @off, 0): @off 0 drops
 * cached data (and a directory's cached listing) and attributes, -1 only
 * the attributes. */
void fs_invalidator_inode(FsInvalidator *inval, fuse_ino_t ino, off_t off);

/* Sends that inode invalidation at once, from the calling thread (queues
 * it before fs_invalidator_start). For the engine's workers, so that a
 * change is invisible to nobody once the reply that reports it arrives:
 * the kernel takes no directory lock for it, only the inode's pages,
 * which no request waiting on that worker holds. Never call it from a
 * FUSE request handler; a worker answering an open(2) may drop the
 * attributes (@off -1), which takes no lock at all. */
void fs_invalidator_inode_now(FsInvalidator *inval, fuse_ino_t ino, off_t off);

/* Sends fuse_lowlevel_notify_inval_entry(@parent, @name) at once, from
 * the calling thread (queues it before fs_invalidator_start). The kernel
 * takes @parent's directory lock for it, so only for a parent whose lock
 * no request waiting on the caller can hold: the root, where every
 * mutation is refused without waiting. Never from a request handler. */
void fs_invalidator_entry_now(FsInvalidator *inval, fuse_ino_t parent, const char *name);

/* A request that the kernel sent while holding @dir's lock (mkdir and
 * rmdir hold their parent's, rmdir its victim's too) is being answered.
 * Entry invalidations in @dir are parked, in this process, until every
 * hold on it is released, while the others go on: the kernel would make
 * them wait for the same reply, but uninterruptibly, so that a daemon
 * killed meanwhile could never exit nor free the caller until someone
 * aborted the connection, and one long mkdir would delay every domain. @name, if not
 * NULL, is the entry the request itself makes or removes in @dir: the
 * kernel updates it from the reply, so invalidations of it are dropped
 * until the release. @dir is one of @domain's directories. */
void fs_invalidator_hold(FsInvalidator *inval, fuse_ino_t dir, const char *name,
                         const char *domain);

/* Ends one fs_invalidator_hold() with the same arguments; call after the
 * reply was sent. */
void fs_invalidator_release(FsInvalidator *inval, fuse_ino_t dir, const char *name);

/* Calls @func(@data, NULL) on the invalidator's thread once every
 * notification queued before it has been sent or parked (at once when the
 * thread has not started). Parked ones in @domain's directories (NULL:
 * none) come first too; those of other domains do not delay @func. For a reply that must
 * not arrive before the kernel forgot the names it changes, when the request holds no
 * directory lock (a write to a control file): a stat right after it then sees the change.
 */
void fs_invalidator_after(FsInvalidator *inval, const char *domain, GFunc func,
                          gpointer data);

G_END_DECLS
