/* fs-context.c: creation and teardown of the shared daemon state. */
#include "fs-context.h"

#include "fs-ops.h"

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
    g_mutex_init(&ctx->listings_lock);
    ctx->listings = g_hash_table_new_full(g_int64_hash, g_int64_equal, g_free,
                                          (GDestroyNotify)g_ptr_array_unref);
    g_mutex_init(&ctx->open_lock);
    ctx->open_files = g_hash_table_new(NULL, NULL);
    return ctx;
}

void
fs_context_free(FsContext *ctx)
{
    if (ctx == NULL)
        return;
    fs_ops_file_close_all(ctx);
    g_clear_pointer(&ctx->open_files, g_hash_table_unref);
    g_mutex_clear(&ctx->open_lock);
    /* Its readers are the engine's, and close before it. */
    g_clear_pointer(&ctx->disks, fs_disks_free);
#ifdef HAVE_GUESTFS
    g_clear_pointer(&ctx->files, fs_files_free);
#endif
    g_clear_pointer(&ctx->hosts, g_ptr_array_unref);
    /* Not g_clear_pointer: callbacks of draining operations use it. */
    snap_engine_free(ctx->engine);
    ctx->engine = NULL;
    g_clear_pointer(&ctx->invalidator, fs_invalidator_free);
    g_clear_pointer(&ctx->inodes, fs_inode_table_free);
    g_clear_pointer(&ctx->listings, g_hash_table_unref);
    g_mutex_clear(&ctx->listings_lock);
    g_free(ctx);
}
