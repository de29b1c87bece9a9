/* fs-context.c: creation and teardown of the shared daemon state. */
#include "fs-context.h"

#include <unistd.h>

FsContext *
fs_context_new(void)
{
    FsContext *ctx = g_new0(FsContext, 1);

    ctx->inodes = fs_inode_table_new();
    ctx->invalidator = fs_invalidator_new();
    /* Every change goes through the engine, which tells us, so the kernel
     * may keep names and attributes until we invalidate them. */
    ctx->entry_timeout = 3600.0;
    ctx->attr_timeout = 3600.0;
    ctx->uid = getuid();
    ctx->gid = getgid();
    ctx->mount_time = g_get_real_time() / G_USEC_PER_SEC;
    return ctx;
}

void
fs_context_free(FsContext *ctx)
{
    if (ctx == NULL)
        return;
    g_clear_pointer(&ctx->engine, snap_engine_free);
    g_clear_pointer(&ctx->invalidator, fs_invalidator_free);
    g_clear_pointer(&ctx->inodes, fs_inode_table_free);
    g_free(ctx);
}
