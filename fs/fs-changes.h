/* fs-changes.h: engine changes -> kernel cache invalidations. */
#pragma once

#include "fs-context.h"

G_BEGIN_DECLS

/* A SnapChangeFunc; @user_data is the FsContext. Runs on an engine
 * worker: it updates the inode table (a removed snapshot's nodes become
 * unlinked at once, before the next mutation can reuse the name) and
 * queues notifications for the nodes the kernel knows, never sending them
 * itself. */
void fs_changes_on_change(const SnapChange *change, gpointer user_data);

G_END_DECLS
