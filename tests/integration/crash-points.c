/* crash-points.c: prints every step name SNAPTREEFS_CRASH_AT accepts, one a line. */
#include <stdio.h>

#include "crash-point.h"

int
main(void)
{
    for (guint i = 0; snap_crash_point_names[i] != NULL; i++)
        printf("%s\n", snap_crash_point_names[i]);
    return 0;
}
