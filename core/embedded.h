/* embedded.h - the core's Lua sources, compiled into the binary by
 * scripts/embed-lua.cmake from core/lua/ (every .lua file). */
#ifndef O7_EMBEDDED_H
#define O7_EMBEDDED_H

#include <stddef.h>

struct o7_embedded {
    const char *name; /* file name without .lua; NULL ends the table */
    const char *src;
    size_t len;
};

extern const struct o7_embedded o7_embedded_lua[];

#endif
