/* test-snapshot-tree.c: links, re-parenting, repairs and listings of SnapTree. */
#include <string.h>

#include "snap-error.h"
#include "snap-types.h"
#include "snapshot-tree.h"

static SnapNode *
add(SnapTree *tree, const char *name, const char *parent, gint64 t)
{
    SnapNode *node = NULL;
    g_autoptr(GError) error = NULL;

    g_assert_true(snap_tree_add(tree, name,
                                parent ? snap_tree_lookup(tree, parent) : NULL, t,
                                g_strdup_printf("<%s/>", name), &node, &error));
    g_assert_no_error(error);
    return node;
}

/* The names of @nodes joined with spaces. */
static char *
names(GPtrArray *nodes)
{
    GString *s = g_string_new(NULL);

    for (guint i = 0; i < nodes->len; i++) {
        if (i)
            g_string_append_c(s, ' ');
        g_string_append(s, ((SnapNode *)nodes->pdata[i])->name);
    }
    return g_string_free(s, FALSE);
}

static char *
children(SnapTree *tree, const char *parent)
{
    SnapNode *p = parent ? snap_tree_lookup(tree, parent) : snap_tree_metaroot(tree);
    g_autoptr(GPtrArray) arr = g_ptr_array_new();
    guint n = 0;

    for (SnapNode *c = p->first_child; c; c = c->next_sibling) {
        g_assert_true(c->parent == p);
        if (c->next_sibling)
            g_assert_true(c->next_sibling->prev_sibling == c);
        else
            g_assert_true(p->last_child == c);
        g_ptr_array_add(arr, c);
        n++;
    }
    g_assert_cmpuint(p->nchildren, ==, n);
    return names(arr);
}

#define assert_children(tree, parent, expect)                                            \
    do {                                                                                 \
        g_autofree char *got_ = children(tree, parent);                                  \
        g_assert_cmpstr(got_, ==, expect);                                               \
    } while (0)

/*  a
 *  +- b
 *  |  +- d
 *  |  +- e
 *  +- c
 *  f            */
static SnapTree *
sample(void)
{
    SnapTree *tree = snap_tree_new();

    add(tree, "a", NULL, 1);
    add(tree, "b", "a", 2);
    add(tree, "c", "a", 3);
    add(tree, "d", "b", 4);
    add(tree, "e", "b", 5);
    add(tree, "f", NULL, 6);
    return tree;
}

static void
test_add_lookup(void)
{
    g_autoptr(SnapTree) tree = sample();
    g_autoptr(GError) error = NULL;
    SnapNode *out = NULL;
    g_autofree char *path = NULL;

    g_assert_cmpuint(snap_tree_size(tree), ==, 6);
    g_assert_nonnull(snap_tree_lookup(tree, "e"));
    g_assert_null(snap_tree_lookup(tree, "zz"));
    assert_children(tree, NULL, "a f");
    assert_children(tree, "a", "b c");
    assert_children(tree, "b", "d e");
    g_assert_false(snap_tree_add(tree, "d", NULL, 9, g_strdup("x"), &out, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_EXISTS);
    g_assert_null(out);
    g_assert_cmpuint(snap_tree_size(tree), ==, 6);

    path = snap_node_path(snap_tree_lookup(tree, "e"));
    g_assert_cmpstr(path, ==, "a/b/e");
    g_assert_false(snap_node_has_parent(snap_tree_lookup(tree, "a")));
    g_assert_null(snap_node_parent(snap_tree_lookup(tree, "a")));
    g_assert_true(snap_node_parent(snap_tree_lookup(tree, "d")) ==
                  snap_tree_lookup(tree, "b"));
    g_assert_true(
        snap_node_is_ancestor(snap_tree_lookup(tree, "a"), snap_tree_lookup(tree, "e")));
    g_assert_false(
        snap_node_is_ancestor(snap_tree_lookup(tree, "c"), snap_tree_lookup(tree, "e")));
    g_assert_false(
        snap_node_is_ancestor(snap_tree_lookup(tree, "e"), snap_tree_lookup(tree, "e")));
}

static void
test_remove(void)
{
    g_autoptr(SnapTree) tree = sample();

    /* b's children take its place, in order, between nothing and c. */
    snap_tree_set_current(tree, snap_tree_lookup(tree, "b"));
    snap_tree_remove(tree, snap_tree_lookup(tree, "b"));
    g_assert_null(snap_tree_lookup(tree, "b"));
    g_assert_cmpuint(snap_tree_size(tree), ==, 5);
    assert_children(tree, "a", "d e c");
    g_assert_true(snap_tree_get_current(tree) == snap_tree_lookup(tree, "a"));

    /* A middle child with children of its own. */
    add(tree, "g", "e", 7);
    add(tree, "h", "e", 8);
    snap_tree_remove(tree, snap_tree_lookup(tree, "e"));
    assert_children(tree, "a", "d g h c");

    /* A leaf. */
    snap_tree_remove(tree, snap_tree_lookup(tree, "g"));
    assert_children(tree, "a", "d h c");

    /* A current root leaves no current snapshot; its children become roots. */
    snap_tree_remove(tree, snap_tree_lookup(tree, "a"));
    g_assert_null(snap_tree_get_current(tree));
    assert_children(tree, NULL, "d h c f");
    g_assert_false(snap_node_has_parent(snap_tree_lookup(tree, "h")));

    snap_tree_set_current(tree, snap_tree_lookup(tree, "c"));
    snap_tree_remove(tree, snap_tree_lookup(tree, "d"));
    g_assert_true(snap_tree_get_current(tree) == snap_tree_lookup(tree, "c"));
    assert_children(tree, NULL, "h c f");
}

static void
test_link_all(void)
{
    g_autoptr(SnapTree) tree = snap_tree_new();
    g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);

    /* Added children first, in an order unlike the creation order. */
    g_assert_true(snap_tree_add_unlinked(tree, "c2", "root", 30, g_strdup("x"), NULL));
    g_assert_true(snap_tree_add_unlinked(tree, "c1", "root", 20, g_strdup("x"), NULL));
    g_assert_true(snap_tree_add_unlinked(tree, "root", NULL, 10, g_strdup("x"), NULL));
    g_assert_true(
        snap_tree_add_unlinked(tree, "orphan", "gone", 40, g_strdup("x"), NULL));
    g_assert_true(snap_tree_add_unlinked(tree, "x", "z", 50, g_strdup("x"), NULL));
    g_assert_true(snap_tree_add_unlinked(tree, "y", "x", 51, g_strdup("x"), NULL));
    g_assert_true(snap_tree_add_unlinked(tree, "z", "y", 52, g_strdup("x"), NULL));
    g_assert_true(
        snap_tree_add_unlinked(tree, "under-cycle", "y", 53, g_strdup("x"), NULL));
    g_assert_true(snap_tree_add_unlinked(tree, "self", "self", 60, g_strdup("x"), NULL));
    g_assert_false(snap_tree_add_unlinked(tree, "self", NULL, 61, g_strdup("x"), NULL));
    snap_tree_link_all(tree, problems);

    assert_children(tree, "root", "c1 c2");
    /* orphan, the cut cycle member x (first in creation order), self */
    assert_children(tree, NULL, "root orphan x self");
    assert_children(tree, "x", "y");
    assert_children(tree, "y", "z under-cycle");
    assert_children(tree, "z", "");
    g_assert_cmpuint(problems->len, ==, 3);
    g_assert_nonnull(strstr(problems->pdata[0], "gone"));
    g_assert_nonnull(strstr(problems->pdata[1], "'self' is its own parent"));
    g_assert_nonnull(strstr(problems->pdata[2], "'x' is on a parent cycle"));
    for (guint i = 0; i < problems->len; i++)
        g_test_message("%s", (char *)problems->pdata[i]);
    g_assert_null(snap_tree_lookup(tree, "c1")->parent_name);

    /* A second bulk load links to nodes already linked. */
    g_assert_true(snap_tree_add_unlinked(tree, "late", "c1", 70, g_strdup("x"), NULL));
    snap_tree_link_all(tree, NULL);
    assert_children(tree, "c1", "late");
    g_assert_cmpuint(snap_tree_size(tree), ==, 10);
}

static void
test_reparent(void)
{
    g_autoptr(SnapTree) tree = sample();
    g_autoptr(GError) error = NULL;
    SnapNode *a = snap_tree_lookup(tree, "a");
    SnapNode *b = snap_tree_lookup(tree, "b");
    SnapNode *e = snap_tree_lookup(tree, "e");

    g_assert_false(snap_tree_reparent(tree, a, e, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_clear_error(&error);
    g_assert_false(snap_tree_reparent(tree, b, b, &error));
    g_assert_error(error, SNAP_ERROR, SNAP_ERROR_INVALID);
    g_clear_error(&error);
    assert_children(tree, "a", "b c");

    g_assert_true(snap_tree_reparent(tree, b, snap_tree_lookup(tree, "f"), &error));
    g_assert_no_error(error);
    assert_children(tree, "a", "c");
    assert_children(tree, "f", "b");
    g_assert_true(snap_tree_reparent(tree, b, NULL, &error));
    assert_children(tree, NULL, "a f b");
    g_assert_true(snap_tree_reparent(tree, e, NULL, &error));
    assert_children(tree, NULL, "a f b e");
    assert_children(tree, "b", "d");

    snap_tree_set_xml(e, g_strdup("<new/>"), 99);
    {
        g_autofree char *xml = snap_node_xml(e);

        g_assert_cmpstr(xml, ==, "<new/>");
    }
    g_assert_cmpint(e->creation_time, ==, 99);
}

/* metadata.xml is stored in parts, the <domain> element shared between
 * snapshots: every text comes back byte for byte, split or not. */
static void
test_xml_parts(void)
{
    static const char *const texts[] = {
        "<domainsnapshot>\n  <name>a</name>\n  <domain type='kvm'>\n    <name>d</name>\n"
        "  </domain>\n</domainsnapshot>\n",
        "<domainsnapshot>\n  <name>b</name>\n  <domain type='kvm'>\n    <name>d</name>\n"
        "  </domain>\n  <active>0</active>\n</domainsnapshot>\n",
        /* Not as snapshot_xml_format() writes it: kept whole. */
        "<domainsnapshot><domain type='kvm'/></domainsnapshot>",
        "<domainsnapshot>\n  <domain type='kvm'>\n</domainsnapshot>\n",
        "\n  <domain>\n  </domain>\n",
        "",
    };
    g_autoptr(SnapTree) tree = snap_tree_new();
    SnapNode *nodes[G_N_ELEMENTS(texts)];

    for (guint i = 0; i < G_N_ELEMENTS(texts); i++) {
        g_autofree char *name = g_strdup_printf("s%u", i);
        g_autofree char *xml = NULL;
        g_autofree char *other = g_strconcat(texts[i], "x", NULL);

        g_assert_true(
            snap_tree_add(tree, name, NULL, i, g_strdup(texts[i]), &nodes[i], NULL));
        xml = snap_node_xml(nodes[i]);
        g_assert_cmpstr(xml, ==, texts[i]);
        g_assert_cmpuint(snap_node_xml_len(nodes[i]), ==, strlen(texts[i]));
        g_assert_true(snap_node_xml_equal(nodes[i], texts[i]));
        g_assert_false(snap_node_xml_equal(nodes[i], other));
        if (*texts[i] != '\0')
            g_assert_false(snap_node_xml_equal(nodes[i], texts[i] + 1));
    }
    /* The first two embed the same element, and keep it once. */
    g_assert_nonnull(nodes[0]->xml_domain);
    g_assert_true(nodes[0]->xml_domain == nodes[1]->xml_domain);
    g_assert_nonnull(nodes[4]->xml_domain);
    g_assert_null(nodes[2]->xml_domain);
    g_assert_null(nodes[3]->xml_domain);

    /* A new text replaces both parts. */
    snap_tree_set_xml(nodes[1], g_strdup(texts[2]), 7);
    g_assert_null(nodes[1]->xml_domain);
    g_assert_true(snap_node_xml_equal(nodes[1], texts[2]));
    snap_tree_set_xml(nodes[2], g_strdup(texts[0]), 7);
    g_assert_true(nodes[2]->xml_domain == nodes[0]->xml_domain);
}

static char *
list(SnapTree *tree, const char *from, guint flags)
{
    g_autoptr(GPtrArray) nodes =
        snap_tree_list(tree, from ? snap_tree_lookup(tree, from) : NULL, flags);

    return names(nodes);
}

#define assert_list(tree, from, flags, expect)                                           \
    do {                                                                                 \
        g_autofree char *got_ = list(tree, from, flags);                                 \
        g_assert_cmpstr(got_, ==, expect);                                               \
    } while (0)

static void
test_list(void)
{
    g_autoptr(SnapTree) tree = snap_tree_new();

    /* Names sort differently from the tree order. */
    add(tree, "m", NULL, 1);
    add(tree, "z", "m", 2);
    add(tree, "b", "m", 3);
    add(tree, "y", "z", 4);
    add(tree, "a", NULL, 5);

    assert_list(tree, NULL, SNAP_LIST_ALL, "a b m y z");
    assert_list(tree, NULL, SNAP_LIST_ROOTS, "a m");
    assert_list(tree, NULL, SNAP_LIST_LEAVES, "a b y");
    assert_list(tree, NULL, SNAP_LIST_NO_LEAVES, "m z");
    assert_list(tree, NULL, SNAP_LIST_LEAVES | SNAP_LIST_NO_LEAVES, "a b m y z");
    assert_list(tree, NULL, SNAP_LIST_TOPOLOGICAL, "m z y b a");
    assert_list(tree, NULL, SNAP_LIST_ROOTS | SNAP_LIST_TOPOLOGICAL, "m a");
    assert_list(tree, "m", SNAP_LIST_ALL, "b z");
    assert_list(tree, "m", SNAP_LIST_ROOTS, "b y z");
    assert_list(tree, "m", SNAP_LIST_ROOTS | SNAP_LIST_TOPOLOGICAL, "z y b");
    assert_list(tree, "m", SNAP_LIST_ROOTS | SNAP_LIST_LEAVES, "b y");
    assert_list(tree, "y", SNAP_LIST_ROOTS, "");
}

static void
test_postorder(void)
{
    g_autoptr(SnapTree) tree = sample();
    g_autoptr(GPtrArray) all = snap_tree_postorder(snap_tree_lookup(tree, "a"), TRUE);
    g_autoptr(GPtrArray) below = snap_tree_postorder(snap_tree_lookup(tree, "a"), FALSE);
    g_autoptr(GPtrArray) leaf = snap_tree_postorder(snap_tree_lookup(tree, "c"), FALSE);
    g_autoptr(GPtrArray) leaf_self =
        snap_tree_postorder(snap_tree_lookup(tree, "c"), TRUE);
    g_autofree char *s1 = names(all);
    g_autofree char *s2 = names(below);
    g_autofree char *s3 = names(leaf);
    g_autofree char *s4 = names(leaf_self);

    g_assert_cmpstr(s1, ==, "d e b c a");
    g_assert_cmpstr(s2, ==, "d e b c");
    g_assert_cmpstr(s3, ==, "");
    g_assert_cmpstr(s4, ==, "c");
}

static void
test_deep_chain(void)
{
    g_autoptr(SnapTree) tree = snap_tree_new();
    g_autoptr(GPtrArray) problems = g_ptr_array_new_with_free_func(g_free);
    g_autoptr(GPtrArray) post = NULL;
    g_autoptr(GPtrArray) topo = NULL;
    const guint n = 20000;

    /* Deep enough that recursion would be a risk; added leaf first. */
    for (guint i = n; i > 0; i--) {
        g_autofree char *name = g_strdup_printf("s%u", i);
        g_autofree char *parent = i > 1 ? g_strdup_printf("s%u", i - 1) : NULL;

        g_assert_true(snap_tree_add_unlinked(tree, name, parent, i, g_strdup("x"), NULL));
    }
    snap_tree_link_all(tree, problems);
    g_assert_cmpuint(problems->len, ==, 0);
    topo = snap_tree_list(tree, NULL, SNAP_LIST_TOPOLOGICAL);
    g_assert_cmpuint(topo->len, ==, n);
    g_assert_cmpstr(((SnapNode *)topo->pdata[0])->name, ==, "s1");
    g_assert_cmpstr(((SnapNode *)topo->pdata[n - 1])->name, ==, "s20000");
    post = snap_tree_postorder(snap_tree_lookup(tree, "s1"), TRUE);
    g_assert_cmpstr(((SnapNode *)post->pdata[0])->name, ==, "s20000");
}

int
main(int argc, char **argv)
{
    g_test_init(&argc, &argv, NULL);
    g_test_add_func("/snapshot-tree/add-lookup", test_add_lookup);
    g_test_add_func("/snapshot-tree/remove", test_remove);
    g_test_add_func("/snapshot-tree/link-all", test_link_all);
    g_test_add_func("/snapshot-tree/reparent", test_reparent);
    g_test_add_func("/snapshot-tree/list", test_list);
    g_test_add_func("/snapshot-tree/postorder", test_postorder);
    g_test_add_func("/snapshot-tree/deep-chain", test_deep_chain);
    g_test_add_func("/snapshot-tree/xml-parts", test_xml_parts);
    return g_test_run();
}
