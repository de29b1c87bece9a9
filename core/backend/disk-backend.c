/* disk-backend.c: the values a disk backend hands to the engine. */
#include "disk-backend.h"

void
snap_image_layer_free(SnapImageLayer *layer)
{
    if (layer == NULL)
        return;
    g_free(layer->file);
    g_free(layer->format);
    g_free(layer);
}

void
snap_image_tag_free(SnapImageTag *tag)
{
    if (tag == NULL)
        return;
    g_free(tag->name);
    g_free(tag);
}
