/* backend-libvirt-snapshots.c: the libvirt backend's snapshot calls (list, XML, create,
 * delete, revert). */
#include "backend-libvirt-private.h"

#include <string.h>

#include <libvirt/virterror.h>

#include "backend-libvirt-names.h"
#include "qemu-img.h"
#include "xml-writer.h"

/* What a <domainsnapshot> says of itself, read without network access or
 * entity expansion. */
typedef struct {
    char *name;
    char *parent;
    gboolean has_creation_time;
    gint64 creation_time;
    gboolean active;
} LvSnapXml;

static void
lv_snap_xml_clear(LvSnapXml *x)
{
    g_free(x->name);
    g_free(x->parent);
}
G_DEFINE_AUTO_CLEANUP_CLEAR_FUNC(LvSnapXml, lv_snap_xml_clear)

static gboolean
lv_snap_xml_read(const char *xml, LvSnapXml *out, GError **error)
{
    /* The user's XML for create goes through here before libvirt sees
     * it: the project's parser, which refuses DTDs (so entities) and
     * never touches the network. */
    g_autoptr(xmlDoc) doc = xml_parse_safe(xml, strlen(xml), error);
    xmlNodePtr root;
    xmlNodePtr parent;
    g_autofree char *ctime = NULL;
    g_autofree char *active = NULL;

    if (doc == NULL)
        return FALSE;
    root = xmlDocGetRootElement(doc);
    if (!xmlStrEqual(root->name, BAD_CAST "domainsnapshot")) {
        g_set_error_literal(error, SNAP_ERROR, SNAP_ERROR_INVALID,
                            "the root element is not <domainsnapshot>");
        return FALSE;
    }
    out->name = xml_child_text(root, "name");
    parent = xml_child(root, "parent");
    out->parent = parent ? xml_child_text(parent, "name") : NULL;
    ctime = xml_child_text(root, "creationTime");
    active = xml_child_text(root, "active");
    out->has_creation_time = ctime != NULL;
    out->creation_time = ctime ? g_ascii_strtoll(ctime, NULL, 10) : 0;
    out->active = active != NULL && g_strcmp0(g_strstrip(active), "1") == 0;
    return TRUE;
}

static virDomainSnapshotPtr
lv_snapshot(LvBackend *self, const char *domain, const char *snapshot,
            virDomainPtr *out_dom, GError **error)
{
    g_autofree char *name = lv_name_unescape(snapshot, TRUE, error);
    virDomainPtr dom;
    virDomainSnapshotPtr snap;

    if (name == NULL)
        return NULL;
    dom = lv_domain(self, domain, error);
    if (dom == NULL)
        return NULL;
    snap = virDomainSnapshotLookupByName(dom, name, 0);
    if (snap == NULL)
        lv_set_error(error, "no such snapshot");
    if (out_dom != NULL && snap != NULL)
        *out_dom = dom;
    else
        virDomainFree(dom);
    return snap;
}

gboolean
lv_domain_view(SnapCatalogue *backend, const char *domain, gboolean with_xml,
               SnapBackendView *view, GError **error)
{
    LvBackend *self = (LvBackend *)backend;
    virDomainPtr dom = lv_domain(self, domain, error);
    virDomainSnapshotPtr *snaps = NULL;
    virDomainSnapshotPtr current;
    int state, reason, n;
    gboolean ok = FALSE;

    if (dom == NULL)
        return FALSE;
    memset(view, 0, sizeof(*view));
    if (virDomainGetState(dom, &state, &reason, 0) < 0 ||
        (n = virDomainListAllSnapshots(dom, &snaps, 0)) < 0) {
        lv_set_error(error, "cannot read the domain");
        goto out;
    }
    view->state = lv_state_from_libvirt(state);
    view->names = g_ptr_array_new_full(n, g_free);
    for (int i = 0; i < n; i++) {
        g_ptr_array_add(view->names,
                        lv_name_escape(virDomainSnapshotGetName(snaps[i]), TRUE));
        virDomainSnapshotFree(snaps[i]);
    }
    free(snaps);
    /* One call: "no current snapshot" is an error code, not a failure. */
    current = virDomainSnapshotCurrent(dom, 0);
    if (current != NULL) {
        view->current = lv_name_escape(virDomainSnapshotGetName(current), TRUE);
        virDomainSnapshotFree(current);
    } else if (virGetLastErrorCode() != VIR_ERR_NO_DOMAIN_SNAPSHOT) {
        lv_set_error(error, "cannot read the current snapshot");
        goto out;
    }
    virResetLastError();
    if (with_xml) {
        char *xml = virDomainGetXMLDesc(dom, 0);

        if (xml == NULL) {
            lv_set_error(error, "cannot read the domain's definition");
            goto out;
        }
        view->def_xml = g_strdup(xml);
        free(xml);
    }
    lv_set_state(self, domain, view->state);
    ok = TRUE;
out:
    if (!ok)
        snap_backend_view_clear(view);
    virDomainFree(dom);
    return ok;
}

gboolean
lv_snapshot_get(SnapCatalogue *backend, const char *domain, const char *snapshot,
                SnapBackendSnapshot *out, GError **error)
{
    virDomainSnapshotPtr snap =
        lv_snapshot((LvBackend *)backend, domain, snapshot, NULL, error);
    g_auto(LvSnapXml) x = {0};
    char *xml;

    if (snap == NULL)
        return FALSE;
    xml = virDomainSnapshotGetXMLDesc(snap, 0);
    virDomainSnapshotFree(snap);
    if (xml == NULL) {
        lv_set_error(error, "cannot read the snapshot");
        return FALSE;
    }
    out->xml = g_strdup(xml);
    free(xml);
    if (!lv_snap_xml_read(out->xml, &x, error)) {
        snap_backend_snapshot_clear(out);
        return FALSE;
    }
    out->parent = x.parent ? lv_name_escape(x.parent, TRUE) : NULL;
    out->creation_time = x.creation_time;
    return TRUE;
}

gboolean
lv_snapshot_take(SnapCatalogue *backend, const char *domain, const char *name,
                 const char *xml, char **out_name, GError **error)
{
    LvBackend *self = (LvBackend *)backend;
    g_autofree char *made = NULL;
    g_auto(LvSnapXml) x = {0};
    virDomainPtr dom;
    virDomainSnapshotPtr snap;
    unsigned int flags = 0;

    if (xml == NULL) {
        g_autofree char *real = lv_name_unescape(name, TRUE, error);
        g_autofree char *escaped = NULL;

        if (real == NULL)
            return FALSE;
        escaped = g_markup_escape_text(real, -1);
        made =
            g_strdup_printf("<domainsnapshot><name>%s</name></domainsnapshot>", escaped);
        xml = made;
    } else {
        if (!lv_snap_xml_read(xml, &x, error))
            return FALSE;
        /* creationTime is what only a redefine may give (libvirt's own
         * parser ignores it otherwise): it asks for metadata only. */
        if (x.has_creation_time)
            flags |= VIR_DOMAIN_SNAPSHOT_CREATE_REDEFINE |
                     (x.active ? VIR_DOMAIN_SNAPSHOT_CREATE_CURRENT : 0);
    }
    dom = lv_domain(self, domain, error);
    if (dom == NULL)
        return FALSE;
    if (xml == made || (x.name != NULL && !x.has_creation_time)) {
        const char *real = xml == made ? NULL : x.name;
        g_autofree char *unescaped = real ? NULL : lv_name_unescape(name, TRUE, NULL);
        virDomainSnapshotPtr old =
            virDomainSnapshotLookupByName(dom, real ? real : unescaped, 0);

        virResetLastError();
        if (old != NULL) {
            virDomainSnapshotFree(old);
            virDomainFree(dom);
            g_set_error(error, SNAP_ERROR, SNAP_ERROR_EXISTS,
                        "snapshot '%s' already exists (a redefine gives its "
                        "creationTime)",
                        real ? real : unescaped);
            return FALSE;
        }
    }
    snap = virDomainSnapshotCreateXML(dom, xml, flags);
    if (snap == NULL) {
        lv_set_error(error, "cannot create the snapshot");
        virDomainFree(dom);
        return FALSE;
    }
    if (out_name)
        *out_name = lv_name_escape(virDomainSnapshotGetName(snap), TRUE);
    virDomainSnapshotFree(snap);
    virDomainFree(dom);
    return TRUE;
}

gboolean
lv_snapshot_remove(SnapCatalogue *backend, const char *domain, const char *snapshot,
                   SnapDeleteFlags flags, GError **error)
{
    virDomainSnapshotPtr snap =
        lv_snapshot((LvBackend *)backend, domain, snapshot, NULL, error);
    unsigned int lv_flags = 0;
    int ret;

    if (snap == NULL)
        return FALSE;
    if (flags & SNAP_DELETE_CHILDREN)
        lv_flags |= VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN;
    if (flags & SNAP_DELETE_CHILDREN_ONLY)
        lv_flags |= VIR_DOMAIN_SNAPSHOT_DELETE_CHILDREN_ONLY;
    if (flags & SNAP_DELETE_METADATA_ONLY)
        lv_flags |= VIR_DOMAIN_SNAPSHOT_DELETE_METADATA_ONLY;
    ret = virDomainSnapshotDelete(snap, lv_flags);
    if (ret < 0)
        lv_set_error(error, "cannot delete the snapshot");
    virDomainSnapshotFree(snap);
    return ret == 0;
}

/* libvirt reverts with `qemu-img snapshot -a NAME` or QMP snapshot-load,
 * and qcow2 looks NAME up as a snapshot ID first. IDs are digits, so a
 * name of digits that is another snapshot's ID in one of @dom's qcow2
 * disks is refused before libvirt sees it. A disk this host cannot read
 * (a remote libvirt's) cannot be checked and is left to libvirt. */
static gboolean
lv_check_tag(virDomainPtr dom, const char *name, GError **error)
{
    g_autoptr(xmlDoc) doc = NULL;
    xmlNodePtr devices;
    char *xml;

    for (const char *p = name; *p != '\0'; p++)
        if (!g_ascii_isdigit(*p))
            return TRUE;
    xml = virDomainGetXMLDesc(dom, 0);
    if (xml == NULL) {
        lv_set_error(error, "cannot read the domain's definition");
        return FALSE;
    }
    doc = xml_parse_safe(xml, strlen(xml), error);
    free(xml);
    if (doc == NULL)
        return FALSE;
    devices = xml_child(xmlDocGetRootElement(doc), "devices");
    for (xmlNodePtr n = devices ? devices->children : NULL; n != NULL; n = n->next) {
        g_autofree char *type = NULL;
        g_autofree char *file = NULL;
        xmlNodePtr driver, source;
        g_autoptr(GError) local = NULL;

        if (n->type != XML_ELEMENT_NODE || !xmlStrEqual(n->name, BAD_CAST "disk"))
            continue;
        driver = xml_child(n, "driver");
        source = xml_child(n, "source");
        type = driver ? xml_prop(driver, "type") : NULL;
        file = source ? xml_prop(source, "file") : NULL;
        if (g_strcmp0(type, "qcow2") != 0 || file == NULL)
            continue;
        if (!qemu_img_tag_is_exact(file, name, NULL, &local)) {
            if (g_error_matches(local, SNAP_ERROR, SNAP_ERROR_INVALID)) {
                g_propagate_error(error, g_steal_pointer(&local));
                return FALSE;
            }
            g_debug("snapshot '%s': %s cannot be checked: %s", name, file,
                    local->message);
        }
    }
    return TRUE;
}

gboolean
lv_snapshot_revert(SnapCatalogue *backend, const char *domain, const char *snapshot,
                   SnapRevertFlags flags, GError **error)
{
    virDomainPtr dom = NULL;
    virDomainSnapshotPtr snap =
        lv_snapshot((LvBackend *)backend, domain, snapshot, &dom, error);
    unsigned int lv_flags = 0;
    int ret;

    if (snap == NULL)
        return FALSE;
    if (!lv_check_tag(dom, virDomainSnapshotGetName(snap), error)) {
        virDomainSnapshotFree(snap);
        virDomainFree(dom);
        return FALSE;
    }
    virDomainFree(dom);
    if (flags & SNAP_REVERT_RUNNING)
        lv_flags |= VIR_DOMAIN_SNAPSHOT_REVERT_RUNNING;
    if (flags & SNAP_REVERT_PAUSED)
        lv_flags |= VIR_DOMAIN_SNAPSHOT_REVERT_PAUSED;
    if (flags & SNAP_REVERT_FORCE)
        lv_flags |= VIR_DOMAIN_SNAPSHOT_REVERT_FORCE;
    ret = virDomainRevertToSnapshot(snap, lv_flags);
    if (ret < 0)
        lv_set_error(error, "cannot revert");
    virDomainSnapshotFree(snap);
    return ret == 0;
}
