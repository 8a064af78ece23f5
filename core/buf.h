/* buf.h - a growable byte buffer, the unit of ownership for bytes in o7.
 *
 * The buffer owns `data`; o7_buf_free releases it. `data` is always
 * NUL-terminated past `len` (when not NULL), so text can be used in place. */
#ifndef O7_BUF_H
#define O7_BUF_H

#include "result.h"

#include <stdarg.h>
#include <stddef.h>

typedef struct o7_buf {
    char *data;
    size_t len;
    size_t cap;
} o7_buf;

#define O7_BUF_INIT {NULL, 0, 0}

/** Makes room for `extra` more bytes. */
o7_rc o7_buf_reserve(o7_buf *b, size_t extra);
o7_rc o7_buf_append(o7_buf *b, const void *data, size_t len);
o7_rc o7_buf_puts(o7_buf *b, const char *s);
o7_rc o7_buf_putc(o7_buf *b, char c);
o7_rc o7_buf_printf(o7_buf *b, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
o7_rc o7_buf_vprintf(o7_buf *b, const char *fmt, va_list ap);
/** Appends s as a JSON string literal, quotes included. */
o7_rc o7_buf_json_str(o7_buf *b, const char *s, size_t len);
/** Empties the buffer but keeps its memory. */
void o7_buf_reset(o7_buf *b);
/** Hands the bytes to the caller (who frees them) and empties the buffer. */
char *o7_buf_steal(o7_buf *b);
void o7_buf_free(o7_buf *b);

#endif
