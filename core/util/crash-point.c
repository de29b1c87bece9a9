/* crash-point.c: SNAPTREEFS_CRASH_AT, for the crash tests of the journal's recovery. */
#include "crash-point.h"

#include <signal.h>
#include <string.h>

/* Where each one is (o: shut-off domains only, l: running ones only):
 * create   take_snapshot() for mkdir and a new snapshot written to create
 * redefine redefine()
 * delete   delete_one(), once per rmdir (rm -r is one rmdir per directory)
 * revert   do_revert() and native_revert()
 * reply    op_post_reply(): the answer is out, deferred file work remains
 * start    native_start()
 * ext      delete_external_data(): external snapshots (test-crash-points-external) */
const char *const snap_crash_point_names[] = {
    "create-journaled",          /* the intent is durable, no disk touched */
    "create-disk-done",          /* o: qemu-img snapshot -c of one disk done */
    "create-frozen",             /* l: disk-only: the guest agent was asked to
                                  * freeze (or did not answer); no disk touched */
    "create-disks-done",         /* every disk (and the memory) has the tag */
    "create-metadata-written",   /* SNAP.xml with <active> is durable */
    "redefine-metadata-written", /* the redefined SNAP.xml is durable */
    "delete-journaled",
    "delete-disk-done",        /* o: qemu-img snapshot -d of one disk done */
    "delete-disks-done",       /* no disk holds the tag any more */
    "delete-child-written",    /* one child's file names its new parent */
    "delete-parent-written",   /* the parent's file became the current one */
    "delete-metadata-removed", /* SNAP.xml removed, the directory synced */
    "revert-journaled",
    "revert-vm-stopped",       /* the QEMU that could not stay was destroyed */
    "revert-vm-started",       /* l: a QEMU was started paused for the load */
    "revert-disk-done",        /* o: qemu-img snapshot -a of one disk done */
    "revert-loaded",           /* l: snapshot-load done, run state not yet set */
    "revert-disks-done",       /* the domain is in the snapshot's state */
    "revert-disks-journaled",  /* the journal says the disks are done */
    "revert-domain-written",   /* the snapshot's <domain> replaced NAME.xml */
    "revert-metadata-written", /* SNAP.xml with <active> is durable */
    "reply-sent",              /* answered; old current and intent not yet updated */
    "journal-clear",           /* the intent is about to be cleared */
    "start-launched",          /* QEMU runs, the caller not yet answered */
    "ext-step-done",           /* one step of an external delete's plan done */
    NULL,
};

typedef struct {
    char *step; /* NULL: not armed */
    gint hits_left;
} CrashArm;

static const CrashArm *
crash_arm(void)
{
    static CrashArm arm;
    static gsize once;

    if (g_once_init_enter(&once)) {
        const char *env = g_getenv(SNAP_CRASH_AT_ENV);
        const char *colon = env ? strrchr(env, ':') : NULL;

        if (env != NULL && *env != '\0') {
            arm.step = colon ? g_strndup(env, colon - env) : g_strdup(env);
            arm.hits_left = colon ? (gint)g_ascii_strtoll(colon + 1, NULL, 10) : 1;
        }
        g_once_init_leave(&once, 1);
    }
    return &arm;
}

void
snap_crash_point(const char *step)
{
    CrashArm *arm = (CrashArm *)crash_arm();
    gboolean known = FALSE;

    for (guint i = 0; snap_crash_point_names[i] != NULL && !known; i++)
        known = strcmp(snap_crash_point_names[i], step) == 0;
    g_return_if_fail(known);
    if (arm->step == NULL || strcmp(arm->step, step) != 0)
        return;
    if (g_atomic_int_dec_and_test(&arm->hits_left)) {
        g_debug("crash point %s: SIGKILL", step);
        raise(SIGKILL);
    }
}
