/* snapshot-tree.c: one domain's snapshot tree (metaroot, sibling links, name hash). */
#include "snapshot-tree.h"

#include <string.h>

#include "snap-error.h"
#include "snap-types.h"

struct _SnapTree {
    SnapNode metaroot;   /* name NULL; its children are the roots */
    GHashTable *by_name; /* node->name -> SnapNode*, owns the nodes */
    SnapNode *current;
};

static void
snap_node_free(SnapNode *node)
{
    if (node == NULL)
        return;
    g_free(node->name);
    g_free(node->xml_own);
    g_clear_pointer(&node->xml_domain, g_ref_string_release);
    g_free(node->parent_name);
    g_free(node);
}

SnapTree *
snap_tree_new(void)
{
    SnapTree *tree = g_new0(SnapTree, 1);

    /* Keys are the nodes' own names, so only the value is freed. */
    tree->by_name = g_hash_table_new_full(g_str_hash, g_str_equal, NULL,
                                          (GDestroyNotify)snap_node_free);
    return tree;
}

void
snap_tree_free(SnapTree *tree)
{
    if (tree == NULL)
        return;
    g_hash_table_destroy(tree->by_name);
    g_free(tree);
}

SnapNode *
snap_tree_metaroot(SnapTree *tree)
{
    return &tree->metaroot;
}

guint
snap_tree_size(SnapTree *tree)
{
    return g_hash_table_size(tree->by_name);
}

SnapNode *
snap_tree_lookup(SnapTree *tree, const char *name)
{
    if (name == NULL)
        return NULL;
    return g_hash_table_lookup(tree->by_name, name);
}

static void
node_append_child(SnapNode *parent, SnapNode *node)
{
    node->parent = parent;
    node->prev_sibling = parent->last_child;
    node->next_sibling = NULL;
    if (parent->last_child)
        parent->last_child->next_sibling = node;
    else
        parent->first_child = node;
    parent->last_child = node;
    parent->nchildren++;
}

static void
node_unlink(SnapNode *node)
{
    SnapNode *parent = node->parent;

    if (parent == NULL)
        return;
    if (node->prev_sibling)
        node->prev_sibling->next_sibling = node->next_sibling;
    else
        parent->first_child = node->next_sibling;
    if (node->next_sibling)
        node->next_sibling->prev_sibling = node->prev_sibling;
    else
        parent->last_child = node->prev_sibling;
    parent->nchildren--;
    node->parent = NULL;
    node->prev_sibling = node->next_sibling = NULL;
}

/* Stores @xml (taken) in @node as described at SnapNode. The element is
 * looked for as snapshot_xml_format() writes it, on lines of its own
 * indented by two; any text is kept exactly, split or not. */
static void
node_store_xml(SnapNode *node, char *xml)
{
    static const char open_tag[] = "\n  <domain";
    static const char close_tag[] = "\n  </domain>\n";
    const char *start = xml ? strstr(xml, open_tag) : NULL;
    const char *end = start ? g_strrstr(start, close_tag) : NULL;
    g_autofree char *element = NULL;
    gsize head, middle, tail;

    g_free(node->xml_own);
    g_clear_pointer(&node->xml_domain, g_ref_string_release);
    if (end == NULL) {
        node->xml_own = xml;
        return;
    }
    start += 1; /* the element's line starts after the newline */
    end += sizeof(close_tag) - 1;
    head = (gsize)(start - xml);
    middle = (gsize)(end - start);
    tail = strlen(end);
    element = g_strndup(start, middle);
    node->xml_domain = g_ref_string_new_intern(element);
    node->xml_own = g_malloc(head + 1 + tail + 1);
    memcpy(node->xml_own, xml, head);
    node->xml_own[head] = '\0';
    memcpy(node->xml_own + head + 1, end, tail + 1);
    g_free(xml);
}

static SnapNode *
node_new(const char *name, gint64 creation_time, char *xml)
{
    SnapNode *node = g_new0(SnapNode, 1);

    node->name = g_strdup(name);
    node->creation_time = creation_time;
    node_store_xml(node, xml);
    return node;
}

gboolean
snap_tree_add(SnapTree *tree, const char *name, SnapNode *parent, gint64 creation_time,
              char *xml, SnapNode **out, GError **error)
{
    SnapNode *node;

    if (g_hash_table_contains(tree->by_name, name)) {
        g_free(xml);
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_EXISTS, "snapshot '%s' already exists",
                    name);
        return FALSE;
    }
    node = node_new(name, creation_time, xml);
    g_hash_table_insert(tree->by_name, node->name, node);
    node_append_child(parent ? parent : &tree->metaroot, node);
    if (out)
        *out = node;
    return TRUE;
}

gboolean
snap_tree_add_unlinked(SnapTree *tree, const char *name, const char *parent_name,
                       gint64 creation_time, char *xml, GError **error)
{
    SnapNode *node;

    if (g_hash_table_contains(tree->by_name, name)) {
        g_free(xml);
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_EXISTS, "snapshot '%s' already exists",
                    name);
        return FALSE;
    }
    node = node_new(name, creation_time, xml);
    node->parent_name = g_strdup(parent_name);
    g_hash_table_insert(tree->by_name, node->name, node);
    return TRUE;
}

static int
node_cmp_time_name(gconstpointer a, gconstpointer b)
{
    const SnapNode *na = *(SnapNode *const *)a;
    const SnapNode *nb = *(SnapNode *const *)b;

    if (na->creation_time != nb->creation_time)
        return na->creation_time < nb->creation_time ? -1 : 1;
    return strcmp(na->name, nb->name);
}

/* MARK_LINKED (absent from the table) is a node linked before. */
enum { MARK_LINKED, MARK_NEW, MARK_ACTIVE, MARK_DONE };

void
snap_tree_link_all(SnapTree *tree, GPtrArray *problems)
{
    g_autoptr(GPtrArray) pending = g_ptr_array_new();
    g_autoptr(GHashTable) marks = g_hash_table_new(NULL, NULL);
    g_autoptr(GPtrArray) chain = g_ptr_array_new();
    GHashTableIter iter;
    gpointer value;

    /* Unlinked nodes have no parent pointer yet; resolve the names first,
     * then break cycles, then build the child lists in creation order so
     * the result does not depend on directory order. */
    g_hash_table_iter_init(&iter, tree->by_name);
    while (g_hash_table_iter_next(&iter, NULL, &value)) {
        SnapNode *node = value;

        if (node->parent != NULL)
            continue;
        g_ptr_array_add(pending, node);
    }
    g_ptr_array_sort(pending, node_cmp_time_name);

    for (guint i = 0; i < pending->len; i++) {
        SnapNode *node = pending->pdata[i];
        SnapNode *parent = &tree->metaroot;

        if (node->parent_name != NULL) {
            parent = snap_tree_lookup(tree, node->parent_name);
            if (parent == NULL) {
                if (problems)
                    g_ptr_array_add(problems,
                                    g_strdup_printf("snapshot '%s': parent '%s' not "
                                                    "found, made it a root",
                                                    node->name, node->parent_name));
                parent = &tree->metaroot;
            } else if (parent == node) {
                if (problems)
                    g_ptr_array_add(problems,
                                    g_strdup_printf("snapshot '%s' is its own parent, "
                                                    "made it a root",
                                                    node->name));
                parent = &tree->metaroot;
            }
        }
        /* Only the parent pointer for now: the sibling lists come after
         * the cycle check. */
        node->parent = parent;
    }

    /* A walk up from each node that meets a node of its own walk has
     * found a cycle; cutting that node loose makes it a root. Nodes linked
     * before this call hang off the metaroot already, so a walk stops at
     * them. */
    for (guint i = 0; i < pending->len; i++)
        g_hash_table_insert(marks, pending->pdata[i], GUINT_TO_POINTER(MARK_NEW));
    for (guint i = 0; i < pending->len; i++) {
        SnapNode *node = pending->pdata[i];

        g_ptr_array_set_size(chain, 0);
        while (node != &tree->metaroot) {
            guint mark = GPOINTER_TO_UINT(g_hash_table_lookup(marks, node));

            if (mark == MARK_DONE || mark == MARK_LINKED)
                break;
            if (mark == MARK_ACTIVE) {
                if (problems)
                    g_ptr_array_add(problems,
                                    g_strdup_printf("snapshot '%s' is on a parent cycle, "
                                                    "made it a root",
                                                    node->name));
                node->parent = &tree->metaroot;
                break;
            }
            g_hash_table_insert(marks, node, GUINT_TO_POINTER(MARK_ACTIVE));
            g_ptr_array_add(chain, node);
            node = node->parent;
        }
        for (guint j = 0; j < chain->len; j++)
            g_hash_table_insert(marks, chain->pdata[j], GUINT_TO_POINTER(MARK_DONE));
    }

    for (guint i = 0; i < pending->len; i++) {
        SnapNode *node = pending->pdata[i];
        SnapNode *parent = node->parent;

        node->parent = NULL;
        node_append_child(parent, node);
        g_clear_pointer(&node->parent_name, g_free);
    }
}

gboolean
snap_tree_reparent(SnapTree *tree, SnapNode *node, SnapNode *new_parent, GError **error)
{
    SnapNode *target = new_parent ? new_parent : &tree->metaroot;

    if (target == node || snap_node_is_ancestor(node, target)) {
        g_set_error(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                    "making '%s' the parent of '%s' would create a cycle", target->name,
                    node->name);
        return FALSE;
    }
    if (node->parent == target)
        return TRUE;
    node_unlink(node);
    node_append_child(target, node);
    return TRUE;
}

void
snap_tree_remove(SnapTree *tree, SnapNode *node)
{
    SnapNode *parent = node->parent ? node->parent : &tree->metaroot;
    SnapNode *first = node->first_child;
    SnapNode *last = node->last_child;

    /* Splice the children into the parent's list where @node was. */
    for (SnapNode *c = first; c; c = c->next_sibling)
        c->parent = parent;
    if (first != NULL) {
        first->prev_sibling = node->prev_sibling;
        last->next_sibling = node->next_sibling;
        if (node->prev_sibling)
            node->prev_sibling->next_sibling = first;
        else
            parent->first_child = first;
        if (node->next_sibling)
            node->next_sibling->prev_sibling = last;
        else
            parent->last_child = last;
        parent->nchildren += node->nchildren;
        parent->nchildren--;
        node->parent = NULL;
    } else {
        node_unlink(node);
    }
    if (tree->current == node)
        tree->current = parent == &tree->metaroot ? NULL : parent;
    g_hash_table_remove(tree->by_name, node->name);
}

void
snap_tree_set_xml(SnapNode *node, char *xml, gint64 creation_time)
{
    node_store_xml(node, xml);
    node->creation_time = creation_time;
}

gsize
snap_node_xml_len(const SnapNode *node)
{
    gsize head = node->xml_own ? strlen(node->xml_own) : 0;

    if (node->xml_domain == NULL)
        return head;
    return head + g_ref_string_length(node->xml_domain) +
           strlen(node->xml_own + head + 1);
}

char *
snap_node_xml_copy(const SnapNode *node, char *buf)
{
    gsize head = node->xml_own ? strlen(node->xml_own) : 0;
    gsize middle, tail;

    if (head > 0)
        memcpy(buf, node->xml_own, head);
    if (node->xml_domain == NULL)
        return buf + head;
    middle = g_ref_string_length(node->xml_domain);
    tail = strlen(node->xml_own + head + 1);
    memcpy(buf + head, node->xml_domain, middle);
    memcpy(buf + head + middle, node->xml_own + head + 1, tail);
    return buf + head + middle + tail;
}

gboolean
snap_node_xml_equal(const SnapNode *node, const char *xml)
{
    gsize head = node->xml_own ? strlen(node->xml_own) : 0;
    gsize middle;

    if (strncmp(xml, node->xml_own ? node->xml_own : "", head) != 0)
        return FALSE;
    if (node->xml_domain == NULL)
        return xml[head] == '\0';
    middle = g_ref_string_length(node->xml_domain);
    return strncmp(xml + head, node->xml_domain, middle) == 0 &&
           strcmp(xml + head + middle, node->xml_own + head + 1) == 0;
}

char *
snap_node_xml(const SnapNode *node)
{
    char *xml = g_malloc(snap_node_xml_len(node) + 1);

    *snap_node_xml_copy(node, xml) = '\0';
    return xml;
}

SnapNode *
snap_tree_get_current(SnapTree *tree)
{
    return tree->current;
}

void
snap_tree_set_current(SnapTree *tree, SnapNode *node)
{
    tree->current = node;
}

SnapNode *
snap_node_parent(const SnapNode *node)
{
    return snap_node_has_parent(node) ? node->parent : NULL;
}

gboolean
snap_node_is_ancestor(const SnapNode *ancestor, const SnapNode *node)
{
    for (const SnapNode *p = node->parent; p != NULL; p = p->parent) {
        if (p == ancestor)
            return TRUE;
    }
    return FALSE;
}

char *
snap_node_path(const SnapNode *node)
{
    g_autoptr(GPtrArray) parts = g_ptr_array_new();
    GString *path = g_string_new(NULL);

    for (const SnapNode *p = node; p != NULL && p->name != NULL; p = p->parent)
        g_ptr_array_add(parts, p->name);
    for (guint i = parts->len; i > 0; i--) {
        if (path->len)
            g_string_append_c(path, '/');
        g_string_append(path, parts->pdata[i - 1]);
    }
    return g_string_free(path, FALSE);
}

/* Pre-order walk of the strict descendants of @top, without recursion so
 * a 10,000-deep chain cannot overflow the stack. */
static void
collect_preorder(SnapNode *top, GPtrArray *out)
{
    SnapNode *n = top->first_child;

    while (n != NULL) {
        g_ptr_array_add(out, n);
        if (n->first_child) {
            n = n->first_child;
            continue;
        }
        while (n != top && n->next_sibling == NULL)
            n = n->parent;
        if (n == top)
            break;
        n = n->next_sibling;
    }
}

static int
node_cmp_name(gconstpointer a, gconstpointer b)
{
    const SnapNode *na = *(SnapNode *const *)a;
    const SnapNode *nb = *(SnapNode *const *)b;

    return strcmp(na->name, nb->name);
}

GPtrArray *
snap_tree_list(SnapTree *tree, SnapNode *from, guint flags)
{
    SnapNode *top = from ? from : &tree->metaroot;
    g_autoptr(GPtrArray) all = g_ptr_array_new();
    GPtrArray *out = g_ptr_array_new();
    gboolean deep =
        from ? (flags & SNAP_LIST_ROOTS) != 0 : (flags & SNAP_LIST_ROOTS) == 0;

    if (deep) {
        collect_preorder(top, all);
    } else {
        for (SnapNode *c = top->first_child; c; c = c->next_sibling)
            g_ptr_array_add(all, c);
    }
    for (guint i = 0; i < all->len; i++) {
        SnapNode *n = all->pdata[i];

        if ((flags & SNAP_LIST_LEAVES) && !(flags & SNAP_LIST_NO_LEAVES) &&
            n->nchildren != 0)
            continue;
        if ((flags & SNAP_LIST_NO_LEAVES) && !(flags & SNAP_LIST_LEAVES) &&
            n->nchildren == 0)
            continue;
        g_ptr_array_add(out, n);
    }
    if (!(flags & SNAP_LIST_TOPOLOGICAL))
        g_ptr_array_sort(out, node_cmp_name);
    return out;
}

GPtrArray *
snap_tree_postorder(SnapNode *node, gboolean include_self)
{
    GPtrArray *out = g_ptr_array_new();
    SnapNode *n = node;

    /* Descend to the first leaf, then: after each node, go to the next
     * sibling's first leaf, or up to the parent. */
    while (n->first_child)
        n = n->first_child;
    while (n != node) {
        g_ptr_array_add(out, n);
        if (n->next_sibling) {
            n = n->next_sibling;
            while (n->first_child)
                n = n->first_child;
        } else {
            n = n->parent;
        }
    }
    if (include_self)
        g_ptr_array_add(out, node);
    return out;
}
