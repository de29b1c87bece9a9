/* catalogue.c: the values a catalogue hands to the engine. */
#include "catalogue.h"

void
snap_backend_view_clear(SnapBackendView *view)
{
    g_clear_pointer(&view->names, g_ptr_array_unref);
    g_clear_pointer(&view->current, g_free);
    g_clear_pointer(&view->def_xml, g_free);
}

void
snap_backend_snapshot_clear(SnapBackendSnapshot *snap)
{
    g_clear_pointer(&snap->xml, g_free);
    g_clear_pointer(&snap->parent, g_free);
}
