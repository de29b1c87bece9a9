/* snapshot-tree.h: one domain's snapshot tree, in memory.
 *
 * libvirt's model (virdomainmomentobjlist.c): a metaroot is the parent of
 * every root; each node links to its parent, first/last child and
 * siblings, and keeps nchildren; a hash gives O(1) lookup by name. Not
 * thread-safe: the engine serialises access. */
#pragma once

#include <glib.h>

G_BEGIN_DECLS

typedef struct _SnapNode SnapNode;
struct _SnapNode {
    char *name;
    SnapNode *parent; /* the metaroot for a root snapshot */
    SnapNode *first_child;
    SnapNode *last_child;
    SnapNode *prev_sibling;
    SnapNode *next_sibling;
    guint nchildren;
    guint32 screen_size; /* bytes of its screen.png; 0: it has none */
    gint64 creation_time;
    /* metadata.xml without <active>1</active> (snapshot_xml_format(def,
     * FALSE)), read with snap_node_xml(). Its <domain> element, half of
     * the text and mostly the same in every snapshot of a domain, is
     * interned (a GRefString) and so kept once: xml_own holds what comes
     * before it, a NUL, then what comes after. With no such element
     * xml_domain is NULL and xml_own is the whole text. */
    char *xml_own;
    char *xml_domain;
    char *parent_name; /* only during bulk load, before link_all */
};

typedef struct _SnapTree SnapTree;

SnapTree *snap_tree_new(void);
void snap_tree_free(SnapTree *tree);
G_DEFINE_AUTOPTR_CLEANUP_FUNC(SnapTree, snap_tree_free)

/* The metaroot: its children are the roots. (transfer none) */
SnapNode *snap_tree_metaroot(SnapTree *tree);
guint snap_tree_size(SnapTree *tree);

/* O(1). NULL when absent. (transfer none) */
SnapNode *snap_tree_lookup(SnapTree *tree, const char *name);

/* Adds a node as the last child of @parent (NULL: a root); takes
 * ownership of @xml. FALSE with SNAP_ERROR_EXISTS when the name is taken.
 * (the new node is returned in @out when not NULL) */
gboolean snap_tree_add(SnapTree *tree, const char *name, SnapNode *parent,
                       gint64 creation_time, char *xml, SnapNode **out, GError **error);

/* Bulk load: adds a node whose parent may not be loaded yet; call
 * snap_tree_link_all() once everything is added. */
gboolean snap_tree_add_unlinked(SnapTree *tree, const char *name, const char *parent_name,
                                gint64 creation_time, char *xml, GError **error);

/* Links every node added with snap_tree_add_unlinked() to its parent.
 * A node whose parent is missing, or that sits on a cycle, becomes a root;
 * each such repair is described in @problems (strings, may be NULL). */
void snap_tree_link_all(SnapTree *tree, GPtrArray *problems);

/* Moves @node under @new_parent (NULL: root). Refuses (FALSE,
 * SNAP_ERROR_INVALID) when @new_parent is @node or one of its descendants. */
gboolean snap_tree_reparent(SnapTree *tree, SnapNode *node, SnapNode *new_parent,
                            GError **error);

/* Removes @node; its children move to its parent, keeping their order, in
 * the place @node had. If @node was current, its parent becomes current
 * (none for a root). Frees @node. */
void snap_tree_remove(SnapTree *tree, SnapNode *node);

/* Replaces @node's xml (takes ownership) and creation time. */
void snap_tree_set_xml(SnapNode *node, char *xml, gint64 creation_time);

/* @node's metadata.xml, whole. (transfer full) */
char *snap_node_xml(const SnapNode *node);

/* The length in bytes of snap_node_xml(). */
gsize snap_node_xml_len(const SnapNode *node);

/* TRUE when snap_node_xml() would be @xml. */
gboolean snap_node_xml_equal(const SnapNode *node, const char *xml);

/* Copies snap_node_xml() into @buf, which has room for
 * snap_node_xml_len() bytes (no NUL is written); returns the end. */
char *snap_node_xml_copy(const SnapNode *node, char *buf);

SnapNode *snap_tree_get_current(SnapTree *tree);            /* may be NULL */
void snap_tree_set_current(SnapTree *tree, SnapNode *node); /* NULL: none */

/* TRUE for a real snapshot's parent, FALSE when @node is a root. */
static inline gboolean
snap_node_has_parent(const SnapNode *node)
{
    return node->parent != NULL && node->parent->name != NULL;
}

/* The parent snapshot, or NULL for a root. */
SnapNode *snap_node_parent(const SnapNode *node);

/* TRUE when @ancestor is a strict ancestor of @node. */
gboolean snap_node_is_ancestor(const SnapNode *ancestor, const SnapNode *node);

/* "root/child/node". (transfer full) */
char *snap_node_path(const SnapNode *node);

/* Listing with libvirt's filters. @from NULL: the whole tree (ROOTS:
 * roots only); @from a node: its children (ROOTS: all its descendants).
 * LEAVES / NO_LEAVES filter by nchildren. TOPOLOGICAL: parents before
 * children (pre-order); otherwise sorted by name. (transfer container:
 * GPtrArray of SnapNode*) */
GPtrArray *snap_tree_list(SnapTree *tree, SnapNode *from, guint flags);

/* The descendants of @node in post-order (leaves first; @node last when
 * @include_self). (transfer container) */
GPtrArray *snap_tree_postorder(SnapNode *node, gboolean include_self);

G_END_DECLS
