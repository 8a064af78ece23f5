/* json.h - a byte-preserving JSON reader.
 *
 * It validates a text and locates values in it, but never rebuilds them:
 * a record keeps the exact bytes the API sent (every digit of a number,
 * every escape of a string, [] stays [] and {} stays {}). Edits are splices
 * of raw bytes into a new buffer. Spans point into the caller's text and
 * live as long as it does. */
#ifndef O7_JSON_H
#define O7_JSON_H

#include "buf.h"
#include "result.h"

#include <stddef.h>
#include <stdint.h>

typedef enum o7_json_kind {
    O7_JSON_INVALID = 0,
    O7_JSON_OBJECT,
    O7_JSON_ARRAY,
    O7_JSON_STRING, /* the span includes the quotes */
    O7_JSON_NUMBER,
    O7_JSON_TRUE,
    O7_JSON_FALSE,
    O7_JSON_NULL
} o7_json_kind;

typedef struct o7_json_span {
    const char *p;
    size_t len;
    o7_json_kind kind;
} o7_json_span;

/** Parses the whole text as exactly one JSON value (white space around it
 * allowed) and checks it strictly (RFC 8259, UTF-8, nesting up to 512).
 * On failure err says what and at which byte offset. */
o7_rc o7_json_parse(const char *p, size_t len, o7_json_span *out, o7_err *err);

/** The value of member key in object obj (the first, if repeated).
 * O7_ERR_NOTFOUND when absent or obj is not an object. obj must come from
 * o7_json_parse (already valid). */
o7_rc o7_json_get(const o7_json_span *obj, const char *key, o7_json_span *out);
/** Follows a dotted path: "meta.pagination.total". */
o7_rc o7_json_path(const o7_json_span *root, const char *path, o7_json_span *out);

/** Iterates an object's members or an array's elements:
 *     o7_json_iter it; o7_json_iter_init(&it, &span);
 *     o7_json_span k, v;
 *     while (o7_json_next(&it, &k, &v)) ...
 * For arrays k.kind is O7_JSON_INVALID. */
typedef struct o7_json_iter {
    const char *p, *end;
    int is_object;
} o7_json_iter;
void o7_json_iter_init(o7_json_iter *it, const o7_json_span *container);
int o7_json_next(o7_json_iter *it, o7_json_span *key, o7_json_span *value);
/** Number of elements or members. */
size_t o7_json_count(const o7_json_span *container);

/** An integer number (no fraction or exponent) that fits int64. */
o7_rc o7_json_int(const o7_json_span *v, int64_t *out);
/** Decodes a string value (escapes, \u surrogate pairs) into *out (caller
 * frees, NUL-terminated). */
o7_rc o7_json_str(const o7_json_span *v, char **out);
/** Whether a string value equals s after decoding. */
int o7_json_str_eq(const o7_json_span *v, const char *s);
/** Whether a number value is zero (0, 0.0, "-0.00e5", ...); strings holding
 * a decimal number ("0.0000", as v2 sends money) count too. */
int o7_json_is_zero(const o7_json_span *v);

/** Writes obj with member key set to the raw JSON bytes val: the member's
 * value is replaced in place when present, or the member is appended last.
 * Everything else keeps its bytes. */
o7_rc o7_json_set(const o7_json_span *obj, const char *key, const char *val, size_t vlen,
                  o7_buf *out);

#endif
