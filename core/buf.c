/* buf.c - growable byte buffers. */
#include "buf.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

o7_rc o7_buf_reserve(o7_buf *b, size_t extra)
{
    if (b->len + extra + 1 <= b->cap)
        return O7_OK;
    size_t cap = b->cap ? b->cap : 256;
    while (cap < b->len + extra + 1) {
        if (cap > SIZE_MAX / 2)
            return O7_ERR_NOMEM;
        cap *= 2;
    }
    char *p = realloc(b->data, cap);
    if (p == NULL)
        return O7_ERR_NOMEM;
    b->data = p;
    b->cap = cap;
    return O7_OK;
}

o7_rc o7_buf_append(o7_buf *b, const void *data, size_t len)
{
    if (o7_buf_reserve(b, len) != O7_OK)
        return O7_ERR_NOMEM;
    if (len)
        memcpy(b->data + b->len, data, len);
    b->len += len;
    b->data[b->len] = '\0';
    return O7_OK;
}

o7_rc o7_buf_puts(o7_buf *b, const char *s)
{
    return o7_buf_append(b, s, strlen(s));
}

o7_rc o7_buf_putc(o7_buf *b, char c)
{
    return o7_buf_append(b, &c, 1);
}

o7_rc o7_buf_vprintf(o7_buf *b, const char *fmt, va_list ap)
{
    va_list copy;
    va_copy(copy, ap);
    int n = vsnprintf(NULL, 0, fmt, copy);
    va_end(copy);
    if (n < 0)
        return O7_ERR_INTERNAL;
    if (o7_buf_reserve(b, (size_t)n) != O7_OK)
        return O7_ERR_NOMEM;
    vsnprintf(b->data + b->len, (size_t)n + 1, fmt, ap);
    b->len += (size_t)n;
    return O7_OK;
}

o7_rc o7_buf_printf(o7_buf *b, const char *fmt, ...)
{
    va_list ap;
    va_start(ap, fmt);
    o7_rc rc = o7_buf_vprintf(b, fmt, ap);
    va_end(ap);
    return rc;
}

o7_rc o7_buf_json_str(o7_buf *b, const char *s, size_t len)
{
    static const char hex[] = "0123456789abcdef";
    if (o7_buf_reserve(b, len + 2) != O7_OK)
        return O7_ERR_NOMEM;
    o7_buf_putc(b, '"');
    for (size_t i = 0; i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        char esc[7];
        size_t n = 0;
        switch (c) {
        case '"': n = 2, esc[0] = '\\', esc[1] = '"'; break;
        case '\\': n = 2, esc[0] = '\\', esc[1] = '\\'; break;
        case '\n': n = 2, esc[0] = '\\', esc[1] = 'n'; break;
        case '\r': n = 2, esc[0] = '\\', esc[1] = 'r'; break;
        case '\t': n = 2, esc[0] = '\\', esc[1] = 't'; break;
        default:
            if (c < 0x20) {
                memcpy(esc, "\\u00", 4);
                esc[4] = hex[c >> 4];
                esc[5] = hex[c & 15];
                n = 6;
            }
        }
        o7_rc rc = n ? o7_buf_append(b, esc, n) : o7_buf_putc(b, (char)c);
        if (rc != O7_OK)
            return rc;
    }
    return o7_buf_putc(b, '"');
}

void o7_buf_reset(o7_buf *b)
{
    b->len = 0;
    if (b->data)
        b->data[0] = '\0';
}

char *o7_buf_steal(o7_buf *b)
{
    char *p = b->data;
    if (p == NULL)
        p = calloc(1, 1);
    b->data = NULL;
    b->len = b->cap = 0;
    return p;
}

void o7_buf_free(o7_buf *b)
{
    free(b->data);
    b->data = NULL;
    b->len = b->cap = 0;
}
