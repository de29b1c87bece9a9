/* test-fs-inodes.c: stable inode numbers, attributes and the kernel's lookup counts. */
#include <string.h>

#include "fs-attr.h"
#include "inode-table.h"

static void
test_ino_stable(void)
{
    guint64 a = fs_attr_ino(FS_NODE_SNAPSHOT, "d1", "s1");

    /* Pinned: st_ino must not change between releases or restarts. */
    g_assert_cmpuint(a, ==, G_GUINT64_CONSTANT(8636140695390382885));
    g_assert_cmpuint(fs_attr_ino(FS_NODE_ROOT, NULL, NULL), ==, 1);
    g_assert_cmpuint(a, !=, fs_attr_ino(FS_NODE_METADATA, "d1", "s1"));
    g_assert_cmpuint(a, !=, fs_attr_ino(FS_NODE_SNAPSHOT, "d2", "s1"));
    /* The separator is hashed: ("d1x", "") is not ("d1", "x"). */
    g_assert_cmpuint(fs_attr_ino(FS_NODE_SNAPSHOT, "d1x", ""), !=,
                     fs_attr_ino(FS_NODE_SNAPSHOT, "d1", "x"));
    g_assert_cmpuint(fs_attr_ino(FS_NODE_DOMAIN, "d1", NULL), >, 1);
}

static void
test_attr_fill(void)
{
    FsAttrValues dir = {.size = 99, .mtime = 1700000000, .nlink = 5};
    FsAttrValues file = {.size = 624, .mtime = 1700000000, .nlink = 7};
    struct stat st;

    fs_attr_fill(FS_NODE_SNAPSHOT, 42, &dir, 1000, 1001, &st);
    g_assert_cmpuint(st.st_mode, ==, S_IFDIR | 0755);
    g_assert_cmpuint(st.st_nlink, ==, 5);
    g_assert_cmpint(st.st_size, ==, 0);
    g_assert_cmpint(st.st_mtim.tv_sec, ==, 1700000000);
    g_assert_cmpuint(st.st_ino, ==, 42);
    g_assert_cmpuint(st.st_uid, ==, 1000);
    g_assert_cmpuint(st.st_gid, ==, 1001);

    fs_attr_fill(FS_NODE_METADATA, 43, &file, 0, 0, &st);
    g_assert_cmpuint(st.st_mode, ==, S_IFREG | 0444);
    g_assert_cmpuint(st.st_nlink, ==, 1);
    g_assert_cmpint(st.st_size, ==, 624);

    /* Control files read as empty for their owner (backup walks). */
    g_assert_cmpuint(fs_attr_kind_mode(FS_NODE_REVERT), ==, S_IFREG | 0600);
    g_assert_cmpuint(fs_attr_kind_mode(FS_NODE_CREATE), ==, S_IFREG | 0600);
    g_assert_cmpuint(fs_attr_kind_mode(FS_NODE_FORGET), ==, S_IFREG | 0600);
    g_assert_cmpuint(fs_attr_kind_mode(FS_NODE_UNDEFINE), ==, S_IFREG | 0600);
    /* The flat view: same modes, other inode numbers. */
    g_assert_cmpuint(fs_attr_kind_mode(FS_NODE_SNAPSHOT | FS_NODE_FLAT), ==,
                     S_IFDIR | 0755);
    g_assert_cmpuint(fs_attr_kind_mode(FS_NODE_REVERT | FS_NODE_FLAT), ==,
                     S_IFREG | 0600);
    g_assert_cmpuint(fs_attr_ino(FS_NODE_SNAPSHOT | FS_NODE_FLAT, "d1", "s1"), !=,
                     fs_attr_ino(FS_NODE_SNAPSHOT, "d1", "s1"));
    g_assert_cmpuint(fs_attr_kind_mode(FS_NODE_STATE), ==, S_IFREG | 0644);
    g_assert_cmpuint(fs_attr_kind_mode(FS_NODE_CURRENT), ==, S_IFLNK | 0777);
    g_assert_cmpstr(fs_attr_kind_name(FS_NODE_BY_NAME), ==, ".by-name");
    g_assert_true(fs_attr_kind_is_volatile(FS_NODE_ERRORS));
    g_assert_false(fs_attr_kind_is_volatile(FS_NODE_METADATA));
}

static void
test_lookup_counts(void)
{
    g_autoptr(FsInodeTable) t = fs_inode_table_new();
    struct stat st = {.st_ino = 7};
    g_autoptr(FsNode) a = fs_inode_table_lookup_ref(t, FS_NODE_SNAPSHOT, "d1", "s1", &st);
    g_autoptr(FsNode) b =
        fs_inode_table_lookup_ref(t, FS_NODE_SNAPSHOT, "d1", "s1", NULL);
    g_autoptr(FsNode) gone = NULL;
    guint64 id = a->nodeid;

    g_assert_true(a == b);
    g_assert_cmpuint(id, >, 1);
    fs_inode_table_forget(t, id, 1);
    g_autoptr(FsNode) still = fs_inode_table_get(t, id);
    g_assert_nonnull(still);
    fs_inode_table_forget(t, id, 1);
    gone = fs_inode_table_get(t, id);
    g_assert_null(gone);
    /* The caller's reference keeps the node's fields valid. */
    g_assert_cmpstr(a->snapshot, ==, "s1");

    /* A forgotten identity comes back with a new nodeid. */
    g_autoptr(FsNode) c =
        fs_inode_table_lookup_ref(t, FS_NODE_SNAPSHOT, "d1", "s1", NULL);
    g_assert_cmpuint(c->nodeid, >, id);

    /* The root is never dropped. */
    fs_inode_table_forget(t, 1, 100);
    g_autoptr(FsNode) root = fs_inode_table_get(t, 1);
    g_assert_nonnull(root);
}

static void
test_detach(void)
{
    g_autoptr(FsInodeTable) t = fs_inode_table_new();
    struct stat st = {.st_ino = fs_attr_ino(FS_NODE_SNAPSHOT, "d1", "s1"),
                      .st_mode = S_IFDIR | 0755,
                      .st_nlink = 2,
                      .st_mtim.tv_sec = 1700000000};
    struct stat last;
    g_autoptr(FsNode) old =
        fs_inode_table_lookup_ref(t, FS_NODE_SNAPSHOT, "d1", "s1", &st);
    g_autoptr(FsNode) found = NULL;
    g_autoptr(FsNode) by_id = NULL;
    g_autoptr(FsNode) fresh = NULL;
    g_autoptr(GArray) ids = NULL;

    fs_inode_table_detach(t, FS_NODE_SNAPSHOT, "d1", "s1");
    found = fs_inode_table_find(t, FS_NODE_SNAPSHOT, "d1", "s1");
    g_assert_null(found);
    /* Unlinked: still known by nodeid, with its last attributes. */
    by_id = fs_inode_table_get(t, old->nodeid);
    g_assert_true(by_id == old);
    g_assert_true(fs_inode_table_last_stat(t, old, &last));
    g_assert_cmpuint(last.st_ino, ==, old->ino);
    g_assert_cmpuint(last.st_ino, ==, st.st_ino);
    g_assert_cmpuint(last.st_mode, ==, st.st_mode);
    g_assert_cmpuint(last.st_nlink, ==, 2);
    g_assert_cmpint(last.st_mtim.tv_sec, ==, 1700000000);
    g_assert_cmpint(last.st_ctim.tv_sec, ==, 1700000000);

    /* A new snapshot of the same name is a new node. */
    fresh = fs_inode_table_lookup_ref(t, FS_NODE_SNAPSHOT, "d1", "s1", NULL);
    g_assert_cmpuint(fresh->nodeid, !=, old->nodeid);
    g_assert_cmpuint(fresh->ino, ==, old->ino);
    ids = fs_inode_table_find_all(t, FS_NODE_SNAPSHOT, "d1");
    g_assert_cmpuint(ids->len, ==, 1);
    g_assert_cmpuint(g_array_index(ids, guint64, 0), ==, fresh->nodeid);

    /* Forgetting the unlinked node leaves the new one attached. */
    fs_inode_table_forget(t, old->nodeid, 1);
    g_clear_pointer(&found, fs_node_unref);
    found = fs_inode_table_find(t, FS_NODE_SNAPSHOT, "d1", "s1");
    g_assert_true(found == fresh);
}

int
main(int argc, char *argv[])
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/fs/attr/ino-stable", test_ino_stable);
    g_test_add_func("/fs/attr/fill", test_attr_fill);
    g_test_add_func("/fs/inodes/lookup-counts", test_lookup_counts);
    g_test_add_func("/fs/inodes/detach", test_detach);
    return g_test_run();
}
