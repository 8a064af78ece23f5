/* json.c - strict single-pass JSON validation and byte-preserving access.
 *
 * o7_json_parse checks a whole text once (RFC 8259 grammar, UTF-8, nesting)
 * with a fixed stack and no allocation. The accessors trust that check and
 * only skip over values, yet never step past the span they were given. */
#include "json.h"

#include <stdlib.h>
#include <string.h>

/* Deeper documents are refused: no API record nests anywhere near this, and
 * the bound keeps the parser's stack a fixed 512 bytes. */
#define MAX_DEPTH 512

#define ONES 0x0101010101010101ULL
#define HIGHS 0x8080808080808080ULL

typedef enum parse_state {
    WANT_VALUE, /* a value must start here */
    OPENED,     /* just after '[' or '{': a first element or the close */
    AFTER_VALUE /* a value ended: ',' or the close, or the end of the text */
} parse_state;

typedef struct parser {
    const char *start; /* the text, so errors can give byte offsets */
    const char *end;
    o7_err *err;
    size_t depth;
    unsigned char in_object[MAX_DEPTH]; /* per level: 1 object, 0 array */
} parser;

static int is_digit(unsigned char c)
{
    return c >= '0' && c <= '9';
}

static int is_ws(unsigned char c)
{
    return c == ' ' || c == '\n' || c == '\r' || c == '\t';
}

static const char *skip_ws(const char *p, const char *end)
{
    while (p < end && is_ws((unsigned char)*p))
        p++;
    return p;
}

static o7_json_kind kind_of(unsigned char c)
{
    switch (c) {
    case '{': return O7_JSON_OBJECT;
    case '[': return O7_JSON_ARRAY;
    case '"': return O7_JSON_STRING;
    case 't': return O7_JSON_TRUE;
    case 'f': return O7_JSON_FALSE;
    case 'n': return O7_JSON_NULL;
    default: return c == '-' || is_digit(c) ? O7_JSON_NUMBER : O7_JSON_INVALID;
    }
}

/* Returns NULL so callers can write `return syntax_error(...)` where a
 * position is expected; the parser turns NULL into O7_ERR_CORRUPT. */
static const char *syntax_error(const parser *ps, const char *at, const char *what)
{
    o7_fail(ps->err, O7_ERR_CORRUPT, "invalid JSON at byte %zu: %s", (size_t)(at - ps->start),
            what);
    return NULL;
}

/* ---- strings ------------------------------------------------------------ */

/* Word-at-a-time scanning. Each *_bytes() function returns a mask with the
 * high bit set in every byte that matters; the lowest set bit always marks a
 * real hit (borrows only run upwards), so first_flagged() can jump straight
 * to it. Most bytes of a record sit in runs that need no look at all. */

static uint64_t load8(const char *p)
{
    uint64_t x;
    memcpy(&x, p, sizeof x);
#if defined(__BYTE_ORDER__) && __BYTE_ORDER__ == __ORDER_BIG_ENDIAN__
    x = __builtin_bswap64(x); /* byte 0 must be the lowest */
#endif
    return x;
}

static size_t first_flagged(uint64_t mask)
{
    return (size_t)__builtin_ctzll(mask) >> 3;
}

static uint64_t zero_bytes(uint64_t x)
{
    return (x - ONES) & ~x & HIGHS;
}

/* Bytes a string cannot hold as they are: '"', '\\', controls, non-ASCII. */
static uint64_t special_string_bytes(uint64_t x)
{
    uint64_t controls = (x - ONES * 0x20) & ~x & HIGHS;
    return controls | zero_bytes(x ^ (ONES * '"')) | zero_bytes(x ^ (ONES * '\\')) | (x & HIGHS);
}

/* '"' and '\\': all that matters inside a string already checked. */
static uint64_t quote_bytes(uint64_t x)
{
    return zero_bytes(x ^ (ONES * '"')) | zero_bytes(x ^ (ONES * '\\'));
}

/* '"', '[', ']', '{' and '}'. Setting bit 5 turns '[' into '{' and ']' into
 * '}' and maps no other byte onto them. */
static uint64_t structural_bytes(uint64_t x)
{
    uint64_t folded = x | (ONES * 0x20);
    return zero_bytes(x ^ (ONES * '"')) | zero_bytes(folded ^ (ONES * '{')) |
           zero_bytes(folded ^ (ONES * '}'));
}

/* ---- checking strings --------------------------------------------------- */

static int hex4(const char *p, const char *end, unsigned *out)
{
    if (end - p < 4)
        return 0;
    unsigned v = 0;
    for (int i = 0; i < 4; i++) {
        unsigned char c = (unsigned char)p[i];
        unsigned d;
        if (is_digit(c))
            d = c - '0';
        else if (c >= 'a' && c <= 'f')
            d = c - 'a' + 10;
        else if (c >= 'A' && c <= 'F')
            d = c - 'A' + 10;
        else
            return 0;
        v = v << 4 | d;
    }
    *out = v;
    return 1;
}

static int is_high_surrogate(unsigned cp)
{
    return cp >= 0xD800 && cp <= 0xDBFF;
}

static int is_low_surrogate(unsigned cp)
{
    return cp >= 0xDC00 && cp <= 0xDFFF;
}

/* p is at a backslash inside a string. */
static const char *check_escape(const parser *ps, const char *p)
{
    if (ps->end - p < 2)
        return syntax_error(ps, p, "unterminated escape in string");
    switch (p[1]) {
    case '"': case '\\': case '/': case 'b': case 'f': case 'n': case 'r': case 't':
        return p + 2;
    case 'u':
        break;
    default:
        return syntax_error(ps, p, "invalid escape in string");
    }

    unsigned cp, lo;
    if (!hex4(p + 2, ps->end, &cp))
        return syntax_error(ps, p, "\\u escape without 4 hex digits");
    if (is_low_surrogate(cp))
        return syntax_error(ps, p, "low surrogate escape without a high one before it");
    if (!is_high_surrogate(cp))
        return p + 6;
    /* A high surrogate only means something as the first half of a pair. */
    if (ps->end - p < 12 || p[6] != '\\' || p[7] != 'u' || !hex4(p + 8, ps->end, &lo) ||
        !is_low_surrogate(lo))
        return syntax_error(ps, p, "high surrogate escape without a low one after it");
    return p + 12;
}

/* p is at a byte >= 0x80. Accepts exactly the well-formed sequences of
 * Unicode's table 3-7: no overlongs, no encoded surrogates, nothing past
 * U+10FFFF. */
static const char *check_utf8(const parser *ps, const char *p)
{
    const unsigned char *u = (const unsigned char *)p;
    unsigned char lo = 0x80, hi = 0xBF;
    size_t tail;
    if (u[0] >= 0xC2 && u[0] <= 0xDF)
        tail = 1;
    else if (u[0] >= 0xE0 && u[0] <= 0xEF)
        tail = 2;
    else if (u[0] >= 0xF0 && u[0] <= 0xF4)
        tail = 3;
    else
        return syntax_error(ps, p, "invalid UTF-8 lead byte in string");
    if (u[0] == 0xE0)
        lo = 0xA0; /* shorter forms are overlong */
    else if (u[0] == 0xED)
        hi = 0x9F; /* U+D800..U+DFFF are surrogates */
    else if (u[0] == 0xF0)
        lo = 0x90; /* overlong */
    else if (u[0] == 0xF4)
        hi = 0x8F; /* past U+10FFFF */

    if ((size_t)(ps->end - p) <= tail)
        return syntax_error(ps, p, "truncated UTF-8 sequence in string");
    if (u[1] < lo || u[1] > hi)
        return syntax_error(ps, p, "invalid UTF-8 sequence in string");
    for (size_t i = 2; i <= tail; i++)
        if ((u[i] & 0xC0) != 0x80)
            return syntax_error(ps, p, "invalid UTF-8 sequence in string");
    return p + 1 + tail;
}

/* p is at the opening quote; returns the byte after the closing one. */
static const char *check_string(const parser *ps, const char *p)
{
    const char *open = p;
    const char *end = ps->end;
    p++;
    for (;;) {
        if (end - p >= 8) {
            uint64_t mask = special_string_bytes(load8(p));
            if (mask == 0) {
                p += 8;
                continue;
            }
            p += first_flagged(mask);
        }
        if (p >= end)
            return syntax_error(ps, open, "unterminated string");
        unsigned char c = (unsigned char)*p;
        if (c == '"')
            return p + 1;
        if (c == '\\')
            p = check_escape(ps, p);
        else if (c < 0x20)
            return syntax_error(ps, p, "control character in string");
        else if (c < 0x80)
            p++;
        else
            p = check_utf8(ps, p);
        if (p == NULL)
            return NULL;
    }
}

/* ---- scalars ------------------------------------------------------------ */

static const char *skip_digits(const char *p, const char *end)
{
    while (p < end && is_digit((unsigned char)*p))
        p++;
    return p;
}

/* -? (0 | [1-9][0-9]*) (. [0-9]+)? ([eE] [+-]? [0-9]+)? */
static const char *check_number(const parser *ps, const char *p)
{
    const char *end = ps->end;
    if (*p == '-')
        p++;
    if (p >= end || !is_digit((unsigned char)*p))
        return syntax_error(ps, p, "digit expected in number");
    if (*p == '0') {
        p++;
        if (p < end && is_digit((unsigned char)*p))
            return syntax_error(ps, p - 1, "leading zero in number");
    } else {
        p = skip_digits(p, end);
    }

    if (p < end && *p == '.') {
        p++;
        if (p >= end || !is_digit((unsigned char)*p))
            return syntax_error(ps, p, "digit expected after decimal point");
        p = skip_digits(p, end);
    }
    if (p < end && (*p == 'e' || *p == 'E')) {
        p++;
        if (p < end && (*p == '+' || *p == '-'))
            p++;
        if (p >= end || !is_digit((unsigned char)*p))
            return syntax_error(ps, p, "digit expected in exponent");
        p = skip_digits(p, end);
    }
    return p;
}

static const char *check_literal(const parser *ps, const char *p, const char *word)
{
    size_t n = strlen(word);
    if ((size_t)(ps->end - p) < n || memcmp(p, word, n) != 0)
        return syntax_error(ps, p, "invalid literal (expected true, false or null)");
    return p + n;
}

/* ---- the parser --------------------------------------------------------- */

/* p is at a value's first byte. A scalar is consumed whole; a container only
 * its opening bracket, which is pushed. */
static const char *begin_value(parser *ps, const char *p, parse_state *state)
{
    *state = AFTER_VALUE;
    switch (*p) {
    case '{': case '[':
        if (ps->depth == MAX_DEPTH)
            return syntax_error(ps, p, "nesting deeper than 512 levels");
        ps->in_object[ps->depth++] = *p == '{';
        *state = OPENED;
        return p + 1;
    case '"': return check_string(ps, p);
    case 't': return check_literal(ps, p, "true");
    case 'f': return check_literal(ps, p, "false");
    case 'n': return check_literal(ps, p, "null");
    default:
        if (*p == '-' || is_digit((unsigned char)*p))
            return check_number(ps, p);
        return syntax_error(ps, p, "expected a value");
    }
}

/* p is where a member must start: its name, white space and the colon. */
static const char *member_name(const parser *ps, const char *p)
{
    if (p >= ps->end || *p != '"')
        return syntax_error(ps, p, "expected a member name in quotes");
    p = check_string(ps, p);
    if (p == NULL)
        return NULL;
    p = skip_ws(p, ps->end);
    if (p >= ps->end || *p != ':')
        return syntax_error(ps, p, "expected ':' after member name");
    return p + 1;
}

/* p is past white space inside a container, after '[', '{' or a value. */
static const char *continue_container(parser *ps, const char *p, parse_state *state)
{
    int object = ps->in_object[ps->depth - 1];
    if (*p == (object ? '}' : ']')) {
        ps->depth--;
        *state = AFTER_VALUE;
        return p + 1;
    }
    if (*state == AFTER_VALUE) {
        if (*p != ',')
            return syntax_error(ps, p, object ? "expected ',' or '}'" : "expected ',' or ']'");
        p = skip_ws(p + 1, ps->end);
    }
    *state = WANT_VALUE;
    return object ? member_name(ps, p) : p;
}

o7_rc o7_json_parse(const char *p, size_t len, o7_json_span *out, o7_err *err)
{
    if (p == NULL)
        return o7_fail(err, O7_ERR_CORRUPT, "invalid JSON at byte 0: no text");
    parser ps;
    ps.start = p;
    ps.end = p + len;
    ps.err = err;
    ps.depth = 0;

    const char *first = skip_ws(p, ps.end);
    const char *cur = first;
    parse_state state = WANT_VALUE;
    while (!(state == AFTER_VALUE && ps.depth == 0)) {
        cur = skip_ws(cur, ps.end);
        if (cur >= ps.end)
            cur = syntax_error(&ps, cur, "unexpected end of text");
        else if (state == WANT_VALUE)
            cur = begin_value(&ps, cur, &state);
        else
            cur = continue_container(&ps, cur, &state);
        if (cur == NULL)
            return O7_ERR_CORRUPT;
    }

    if (skip_ws(cur, ps.end) != ps.end) {
        syntax_error(&ps, skip_ws(cur, ps.end), "unexpected text after the value");
        return O7_ERR_CORRUPT;
    }
    out->p = first;
    out->len = (size_t)(cur - first);
    out->kind = kind_of((unsigned char)*first);
    return O7_OK;
}

/* ---- skipping over values already checked ------------------------------- */

/* p is just past an opening quote; returns the byte after the closing one.
 * Strings in records are many and short, so this scans inline rather than
 * paying for a library call per string. */
static const char *skip_string(const char *p, const char *end)
{
    while (p < end) {
        if (end - p >= 8) {
            uint64_t mask = quote_bytes(load8(p));
            if (mask == 0) {
                p += 8;
                continue;
            }
            p += first_flagged(mask);
        }
        if (*p == '"')
            return p + 1;
        if (*p == '\\' && end - p < 2)
            break;
        p += *p == '\\' ? 2 : 1;
    }
    return end;
}

static const char *skip_container(const char *p, const char *end)
{
    size_t depth = 0;
    while (p < end) {
        if (end - p >= 8) {
            uint64_t mask = structural_bytes(load8(p));
            if (mask == 0) {
                p += 8;
                continue;
            }
            p += first_flagged(mask);
        }
        switch (*p) {
        case '"':
            p = skip_string(p + 1, end);
            continue;
        case '{': case '[':
            depth++;
            break;
        case '}': case ']':
            if (--depth == 0)
                return p + 1;
            break;
        default:
            break;
        }
        p++;
    }
    return end;
}

static const char *skip_value(const char *p, const char *end)
{
    if (p >= end)
        return end;
    switch (*p) {
    case '"': return skip_string(p + 1, end);
    case '{': case '[': return skip_container(p, end);
    default:
        /* Numbers and literals run to the next delimiter. The first byte is
         * always taken, so iterating unchecked text like "[1]]" still ends. */
        do
            p++;
        while (p < end && !is_ws((unsigned char)*p) && *p != ',' && *p != ']' && *p != '}');
        return p;
    }
}

/* ---- iteration and lookup ----------------------------------------------- */

void o7_json_iter_init(o7_json_iter *it, const o7_json_span *container)
{
    it->is_object = container->kind == O7_JSON_OBJECT;
    if ((container->kind == O7_JSON_OBJECT || container->kind == O7_JSON_ARRAY) &&
        container->len >= 2) {
        it->p = container->p + 1;
        it->end = container->p + container->len - 1; /* the closing bracket */
    } else {
        it->p = it->end = container->p;
    }
}

static int iter_stop(o7_json_iter *it)
{
    it->p = it->end;
    return 0;
}

int o7_json_next(o7_json_iter *it, o7_json_span *key, o7_json_span *value)
{
    const char *end = it->end;
    const char *p = skip_ws(it->p, end);
    if (p < end && *p == ',')
        p = skip_ws(p + 1, end);
    if (p >= end)
        return iter_stop(it);

    o7_json_span k = {NULL, 0, O7_JSON_INVALID};
    if (it->is_object) {
        if (*p != '"')
            return iter_stop(it);
        const char *kend = skip_string(p + 1, end);
        k.p = p;
        k.len = (size_t)(kend - p);
        k.kind = O7_JSON_STRING;
        p = skip_ws(kend, end);
        if (p >= end || *p != ':')
            return iter_stop(it);
        p = skip_ws(p + 1, end);
        if (p >= end)
            return iter_stop(it);
    }

    const char *vend = skip_value(p, end);
    if (key)
        *key = k;
    if (value) {
        value->p = p;
        value->len = (size_t)(vend - p);
        value->kind = kind_of((unsigned char)*p);
    }
    it->p = vend;
    return 1;
}

size_t o7_json_count(const o7_json_span *container)
{
    o7_json_iter it;
    size_t n = 0;
    o7_json_iter_init(&it, container);
    while (o7_json_next(&it, NULL, NULL))
        n++;
    return n;
}

/* ---- decoding strings --------------------------------------------------- */

static size_t utf8_encode(unsigned cp, char *buf)
{
    if (cp < 0x80) {
        buf[0] = (char)cp;
        return 1;
    }
    if (cp < 0x800) {
        buf[0] = (char)(0xC0 | cp >> 6);
        buf[1] = (char)(0x80 | (cp & 0x3F));
        return 2;
    }
    if (cp < 0x10000) {
        buf[0] = (char)(0xE0 | cp >> 12);
        buf[1] = (char)(0x80 | (cp >> 6 & 0x3F));
        buf[2] = (char)(0x80 | (cp & 0x3F));
        return 3;
    }
    buf[0] = (char)(0xF0 | cp >> 18);
    buf[1] = (char)(0x80 | (cp >> 12 & 0x3F));
    buf[2] = (char)(0x80 | (cp >> 6 & 0x3F));
    buf[3] = (char)(0x80 | (cp & 0x3F));
    return 4;
}

/* The code point of the \u escape at *pp (its backslash), whose 4 hex digits
 * gave cp, joined with a following low surrogate escape when cp is a high
 * one; moves *pp past what it used. Lone surrogates can only come from text
 * that skipped o7_json_parse; they become U+FFFD, whose 3 bytes are fewer
 * than the 6 of the escape. */
static unsigned decode_u_escape(const char **pp, const char *end, unsigned cp)
{
    const char *p = *pp;
    unsigned lo;
    *pp = p + 6;
    if (is_high_surrogate(cp) && end - p >= 12 && p[6] == '\\' && p[7] == 'u' &&
        hex4(p + 8, end, &lo) && is_low_surrogate(lo)) {
        *pp = p + 12;
        return 0x10000 + ((cp - 0xD800) << 10) + (lo - 0xDC00);
    }
    return is_high_surrogate(cp) || is_low_surrogate(cp) ? 0xFFFD : cp;
}

/* Decodes the character at *pp (between a string's quotes) into buf, which
 * holds 4 bytes; returns how many it wrote and moves *pp past it. */
static size_t decode_char(const char **pp, const char *end, char *buf)
{
    const char *p = *pp;
    if (*p != '\\' || end - p < 2) {
        buf[0] = *p;
        *pp = p + 1;
        return 1;
    }
    *pp = p + 2;
    switch (p[1]) {
    case 'b': buf[0] = '\b'; return 1;
    case 'f': buf[0] = '\f'; return 1;
    case 'n': buf[0] = '\n'; return 1;
    case 'r': buf[0] = '\r'; return 1;
    case 't': buf[0] = '\t'; return 1;
    case 'u':
        break;
    default: buf[0] = p[1]; return 1; /* '"', '\\' and '/' stand for themselves */
    }
    unsigned cp;
    if (!hex4(p + 2, end, &cp)) {
        buf[0] = 'u'; /* only unchecked text gets here; never write more than was read */
        return 1;
    }
    *pp = p;
    return utf8_encode(decode_u_escape(pp, end, cp), buf);
}

/* Compares the raw content of a string (between its quotes) with s. */
static int content_equals(const char *p, size_t len, const char *s, size_t n)
{
    if (memchr(p, '\\', len) == NULL)
        return len == n && memcmp(p, s, n) == 0;

    const char *end = p + len;
    size_t i = 0;
    char buf[4];
    while (p < end) {
        size_t k = decode_char(&p, end, buf);
        if (k > n - i || memcmp(buf, s + i, k) != 0)
            return 0;
        i += k;
    }
    return i == n;
}

static int string_equals(const o7_json_span *v, const char *s, size_t n)
{
    if (v->kind != O7_JSON_STRING || v->len < 2)
        return 0;
    return content_equals(v->p + 1, v->len - 2, s, n);
}

int o7_json_str_eq(const o7_json_span *v, const char *s)
{
    return string_equals(v, s, strlen(s));
}

o7_rc o7_json_str(const o7_json_span *v, char **out)
{
    if (v->kind != O7_JSON_STRING || v->len < 2)
        return O7_ERR_CORRUPT;
    /* Decoding never lengthens: every escape is longer than its UTF-8. */
    char *s = malloc(v->len - 1);
    if (s == NULL)
        return O7_ERR_NOMEM;
    const char *p = v->p + 1, *end = v->p + v->len - 1;
    size_t n = 0;
    while (p < end)
        n += decode_char(&p, end, s + n);
    s[n] = '\0';
    *out = s;
    return O7_OK;
}

/* ---- lookup ------------------------------------------------------------- */

static o7_rc get_member(const o7_json_span *obj, const char *key, size_t keylen,
                        o7_json_span *out)
{
    if (obj->kind != O7_JSON_OBJECT)
        return O7_ERR_NOTFOUND;
    o7_json_iter it;
    o7_json_span k, v;
    o7_json_iter_init(&it, obj);
    while (o7_json_next(&it, &k, &v)) {
        if (string_equals(&k, key, keylen)) {
            *out = v;
            return O7_OK;
        }
    }
    return O7_ERR_NOTFOUND;
}

o7_rc o7_json_get(const o7_json_span *obj, const char *key, o7_json_span *out)
{
    return get_member(obj, key, strlen(key), out);
}

/* A path segment of digits indexes an array ("data.0.id"); arrays have no
 * member names, so this cannot shadow one. */
static o7_rc get_element(const o7_json_span *arr, const char *seg, size_t n, o7_json_span *out)
{
    size_t index = 0;
    if (n == 0 || n > 18)
        return O7_ERR_NOTFOUND;
    for (size_t i = 0; i < n; i++) {
        if (!is_digit((unsigned char)seg[i]))
            return O7_ERR_NOTFOUND;
        index = index * 10 + (size_t)(seg[i] - '0');
    }
    o7_json_iter it;
    o7_json_span v;
    o7_json_iter_init(&it, arr);
    while (o7_json_next(&it, NULL, &v)) {
        if (index-- == 0) {
            *out = v;
            return O7_OK;
        }
    }
    return O7_ERR_NOTFOUND;
}

o7_rc o7_json_path(const o7_json_span *root, const char *path, o7_json_span *out)
{
    o7_json_span cur = *root;
    for (;;) {
        const char *dot = strchr(path, '.');
        size_t n = dot ? (size_t)(dot - path) : strlen(path);
        o7_rc rc = cur.kind == O7_JSON_ARRAY ? get_element(&cur, path, n, &cur)
                                              : get_member(&cur, path, n, &cur);
        if (rc != O7_OK)
            return rc;
        if (dot == NULL)
            break;
        path = dot + 1;
    }
    *out = cur;
    return O7_OK;
}

/* ---- numbers ------------------------------------------------------------ */

o7_rc o7_json_int(const o7_json_span *v, int64_t *out)
{
    if (v->kind != O7_JSON_NUMBER || v->len == 0)
        return O7_ERR_CORRUPT;
    const char *p = v->p, *end = v->p + v->len;
    int neg = *p == '-';
    if (neg)
        p++;
    if (p == end)
        return O7_ERR_CORRUPT;

    uint64_t limit = neg ? (uint64_t)INT64_MAX + 1 : (uint64_t)INT64_MAX;
    uint64_t n = 0;
    for (; p < end; p++) {
        if (!is_digit((unsigned char)*p))
            return O7_ERR_CORRUPT; /* a fraction or an exponent */
        unsigned d = (unsigned)(*p - '0');
        if (n > (limit - d) / 10)
            return O7_ERR_CORRUPT;
        n = n * 10 + d;
    }
    if (!neg)
        *out = (int64_t)n;
    else if (n == limit)
        *out = INT64_MIN;
    else
        *out = -(int64_t)n;
    return O7_OK;
}

typedef enum zero_state {
    Z_START,    /* nothing yet: sign, digit or '.' */
    Z_MANTISSA, /* in the digits, before or after the point */
    Z_EXP_START,
    Z_EXP_SIGN,
    Z_EXP,
    Z_NOT_ZERO /* not a number, or a number that is not zero */
} zero_state;

typedef struct zero_scan {
    zero_state state;
    int digits, point;
} zero_scan;

/* Feeds one byte of a decimal number: [+-]? digits with at most one '.',
 * then an optional exponent. It is zero when every mantissa digit is. */
static void zero_feed(zero_scan *z, unsigned char c)
{
    switch (z->state) {
    case Z_START:
        z->state = Z_MANTISSA;
        if (c == '-' || c == '+')
            return;
        /* fall through */
    case Z_MANTISSA:
        if (c == '0')
            z->digits++;
        else if (c == '.' && !z->point)
            z->point = 1;
        else if ((c == 'e' || c == 'E') && z->digits)
            z->state = Z_EXP_START;
        else
            z->state = Z_NOT_ZERO;
        return;
    case Z_EXP_START:
        if (c == '-' || c == '+') {
            z->state = Z_EXP_SIGN;
            return;
        }
        /* fall through */
    case Z_EXP_SIGN:
    case Z_EXP:
        z->state = is_digit(c) ? Z_EXP : Z_NOT_ZERO;
        return;
    case Z_NOT_ZERO:
        return;
    }
}

static int zero_done(const zero_scan *z)
{
    return (z->state == Z_MANTISSA && z->digits > 0) || z->state == Z_EXP;
}

int o7_json_is_zero(const o7_json_span *v)
{
    zero_scan z = {Z_START, 0, 0};
    if (v->kind == O7_JSON_NUMBER) {
        for (size_t i = 0; i < v->len && z.state != Z_NOT_ZERO; i++)
            zero_feed(&z, (unsigned char)v->p[i]);
        return zero_done(&z);
    }
    if (v->kind != O7_JSON_STRING || v->len < 2)
        return 0;
    const char *p = v->p + 1, *end = v->p + v->len - 1;
    char buf[4];
    while (p < end && z.state != Z_NOT_ZERO) {
        size_t k = decode_char(&p, end, buf);
        for (size_t i = 0; i < k; i++)
            zero_feed(&z, (unsigned char)buf[i]);
    }
    return zero_done(&z);
}

/* ---- editing ------------------------------------------------------------ */

/* Appends obj's bytes with [cut, cut_end) replaced: by val alone when
 * replacing a member's value, or by ,"key":val when appending a member. */
static o7_rc splice(o7_buf *out, const o7_json_span *obj, const char *cut, const char *cut_end,
                    const char *key, int comma, const char *val, size_t vlen)
{
    o7_rc rc = o7_buf_append(out, obj->p, (size_t)(cut - obj->p));
    if (rc == O7_OK && comma)
        rc = o7_buf_putc(out, ',');
    if (rc == O7_OK && key != NULL)
        rc = o7_buf_json_str(out, key, strlen(key));
    if (rc == O7_OK && key != NULL)
        rc = o7_buf_putc(out, ':');
    if (rc == O7_OK)
        rc = o7_buf_append(out, val, vlen);
    if (rc == O7_OK)
        rc = o7_buf_append(out, cut_end, (size_t)(obj->p + obj->len - cut_end));
    return rc;
}

o7_rc o7_json_set(const o7_json_span *obj, const char *key, const char *val, size_t vlen,
                  o7_buf *out)
{
    if (obj->kind != O7_JSON_OBJECT || obj->len < 2)
        return O7_ERR_CORRUPT;
    size_t mark = out->len;
    size_t keylen = strlen(key);
    o7_json_iter it;
    o7_json_span k, v;
    o7_rc rc = O7_ERR_NOTFOUND;

    /* A new member goes right after the last value, so white space before
     * the closing brace stays where it was. */
    const char *tail = obj->p + 1;
    o7_json_iter_init(&it, obj);
    while (rc == O7_ERR_NOTFOUND && o7_json_next(&it, &k, &v)) {
        if (string_equals(&k, key, keylen))
            rc = splice(out, obj, v.p, v.p + v.len, NULL, 0, val, vlen);
        tail = v.p + v.len;
    }
    if (rc == O7_ERR_NOTFOUND)
        rc = splice(out, obj, tail, tail, key, tail != obj->p + 1, val, vlen);

    if (rc != O7_OK && out->data != NULL) {
        out->len = mark; /* leave out as the caller gave it */
        out->data[mark] = '\0';
    }
    return rc;
}
