/* test_json.c - the byte-preserving JSON reader: strict acceptance, lookup,
 * iteration, splicing, and survival of truncated and mutated input.
 *
 * Texts are copied into heap blocks of exactly their length before parsing,
 * so the sanitizer build catches any read past the end. */
#include "check.h"
#include "json.h"

#include <stdint.h>
#include <stdlib.h>

/* ---- helpers ------------------------------------------------------------ */

typedef struct text {
    char *p; /* exactly len bytes, no NUL after them */
    size_t len;
} text;

static text text_of(const char *s, size_t len)
{
    text t = {malloc(len ? len : 1), len};
    if (t.p == NULL) {
        fprintf(stderr, "out of memory\n");
        exit(2);
    }
    memcpy(t.p, s, len);
    return t;
}

static o7_rc parse_n(const char *s, size_t len, o7_json_span *out, o7_err *err)
{
    text t = text_of(s, len);
    o7_rc rc = o7_json_parse(t.p, t.len, out, err);
    free(t.p);
    return rc;
}

/* Parses a literal text that must be valid; the span points into s. */
static o7_json_span must_parse(const char *s)
{
    o7_json_span v = {NULL, 0, O7_JSON_INVALID};
    o7_err err = {0};
    o7_rc rc = o7_json_parse(s, strlen(s), &v, &err);
    if (rc != O7_OK)
        fprintf(stderr, "  parse failed: %s\n", err.msg);
    return v;
}

static char *repeat(const char *unit, size_t times, char *at)
{
    size_t n = strlen(unit);
    for (size_t i = 0; i < times; i++, at += n)
        memcpy(at, unit, n);
    return at;
}

/* ---- strict acceptance -------------------------------------------------- */

typedef struct reject_case {
    const char *text;
    size_t len; /* 0: strlen(text) */
    const char *why; /* must appear in the error sentence */
} reject_case;

static const reject_case rejects[] = {
    {"", 0, "unexpected end of text"},
    {" \t\r\n ", 0, "unexpected end of text"},
    {"[1,]", 0, "expected a value"},
    {"{\"a\":1,}", 0, "expected a member name"},
    {"[1,,2]", 0, "expected a value"},
    {"[,1]", 0, "expected a value"},
    {"[1 2]", 0, "expected ',' or ']'"},
    {"{\"a\":1 \"b\":2}", 0, "expected ',' or '}'"},
    {"{\"a\" 1}", 0, "expected ':'"},
    {"{\"a\"}", 0, "expected ':'"},
    {"{\"a\":}", 0, "expected a value"},
    {"{a:1}", 0, "expected a member name"},
    {"{1:1}", 0, "expected a member name"},
    {"{'a':1}", 0, "expected a member name"},
    {"['a']", 0, "expected a value"},
    {"/* note */ 1", 0, "expected a value"},
    {"[1] // note", 0, "unexpected text after the value"},
    {"[1,/**/2]", 0, "expected a value"},
    {"NaN", 0, "expected a value"},
    {"Infinity", 0, "expected a value"},
    {"-Infinity", 0, "digit expected in number"},
    {"01", 0, "leading zero"},
    {"-01", 0, "leading zero"},
    {"[00]", 0, "leading zero"},
    {"+1", 0, "expected a value"},
    {".5", 0, "expected a value"},
    {"1.", 0, "digit expected after decimal point"},
    {"1.e5", 0, "digit expected after decimal point"},
    {"1e", 0, "digit expected in exponent"},
    {"1E+", 0, "digit expected in exponent"},
    {"-", 0, "digit expected in number"},
    {"- 1", 0, "digit expected in number"},
    {"0x10", 0, "unexpected text after the value"},
    {"1 2", 0, "unexpected text after the value"},
    {"[1] [2]", 0, "unexpected text after the value"},
    {"tru", 0, "invalid literal"},
    {"True", 0, "expected a value"},
    {"nul", 0, "invalid literal"},
    {"truex", 0, "unexpected text after the value"},
    {"[", 0, "unexpected end of text"},
    {"{\"a\":[1,2", 0, "unexpected end of text"},
    {"[1}", 0, "expected ',' or ']'"},
    {"{\"a\":1]", 0, "expected ',' or '}'"},
    {"\"abc", 0, "unterminated string"},
    {"\"\\", 0, "unterminated escape"},
    {"\"a\tb\"", 0, "control character"},
    {"\"a\nb\"", 0, "control character"},
    {"\"\x01\"", 0, "control character"},
    {"\"a\0b\"", 5, "control character"},
    {"\"\\x41\"", 0, "invalid escape"},
    {"\"\\a\"", 0, "invalid escape"},
    {"\"\\U0041\"", 0, "invalid escape"},
    {"\"\\'\"", 0, "invalid escape"},
    {"\"\\u12\"", 0, "4 hex digits"},
    {"\"\\u12G4\"", 0, "4 hex digits"},
    {"\"\\u00e", 0, "4 hex digits"},
    {"\"\\uD800\"", 0, "high surrogate"},
    {"\"\\uDBFF x\"", 0, "high surrogate"},
    {"\"\\uD800\\u0041\"", 0, "high surrogate"},
    {"\"\\uD800\\uD800\"", 0, "high surrogate"},
    {"\"\\uDC00\"", 0, "low surrogate"},
    {"\"\\uDFFF\\uD800\"", 0, "low surrogate"},
    {"\"\xC0\xAF\"", 0, "invalid UTF-8 lead byte"},
    {"\"\xC1\xBF\"", 0, "invalid UTF-8 lead byte"},
    {"\"\xE0\x80\xAF\"", 0, "invalid UTF-8 sequence"},
    {"\"\xF0\x80\x80\xAF\"", 0, "invalid UTF-8 sequence"},
    {"\"\xED\xA0\x80\"", 0, "invalid UTF-8 sequence"},
    {"\"\xED\xBF\xBF\"", 0, "invalid UTF-8 sequence"},
    {"\"\xF4\x90\x80\x80\"", 0, "invalid UTF-8 sequence"},
    {"\"\xF5\x80\x80\x80\"", 0, "invalid UTF-8 lead byte"},
    {"\"\xFF\"", 0, "invalid UTF-8 lead byte"},
    {"\"\x80\"", 0, "invalid UTF-8 lead byte"},
    {"\"\xE2\x82\"", 0, "invalid UTF-8 sequence"},
    {"\"\xC3\"", 0, "invalid UTF-8 sequence"},
    {"\"\xE2\x82", 0, "truncated UTF-8"},
    {"\xEF\xBB\xBF{}", 0, "expected a value"},
    {"\f1", 0, "expected a value"},
    {"1\v", 0, "unexpected text after the value"},
    {"[1\0]", 4, "expected ',' or ']'"},
};

TEST(rejects_each_rule)
{
    size_t n = sizeof rejects / sizeof rejects[0];
    CHECK(n >= 40);
    for (size_t i = 0; i < n; i++) {
        const reject_case *c = &rejects[i];
        size_t len = c->len ? c->len : strlen(c->text);
        o7_json_span v;
        o7_err err = {0};
        o7_rc rc = parse_n(c->text, len, &v, &err);
        if (rc != O7_ERR_CORRUPT || err.rc != O7_ERR_CORRUPT ||
            strncmp(err.msg, "invalid JSON at byte ", 21) != 0 || !strstr(err.msg, c->why)) {
            CHECK_FAILED_AT();
            fprintf(stderr, "reject case %zu: rc %d, \"%s\" (wanted \"%s\")\n", i, (int)rc,
                    err.msg, c->why);
        }
    }
}

TEST(error_names_the_byte_offset)
{
    o7_json_span v;
    o7_err err = {0};
    CHECK_INT(parse_n("[1,]", 4, &v, &err), O7_ERR_CORRUPT);
    CHECK_STR(err.msg, "invalid JSON at byte 3: expected a value");

    o7_err_clear(&err);
    const char *s = "{\"data\": [1, \"unterminated]}";
    CHECK_INT(parse_n(s, strlen(s), &v, &err), O7_ERR_CORRUPT);
    CHECK_STR(err.msg, "invalid JSON at byte 13: unterminated string");

    o7_err_clear(&err);
    s = "  [\"ok\", \"\xC3\xA9\", \"\xE0\x80\xAF\"]";
    CHECK_INT(parse_n(s, strlen(s), &v, &err), O7_ERR_CORRUPT);
    CHECK_STR(err.msg, "invalid JSON at byte 16: invalid UTF-8 sequence in string");

    /* a NULL err is allowed: the result alone tells the failure */
    CHECK_INT(parse_n("01", 2, &v, NULL), O7_ERR_CORRUPT);
}

/* The string scanner looks at 8 bytes at a time; a byte that needs a closer
 * look must be caught wherever it falls in a word, and nothing else may be. */
TEST(string_bytes_at_every_position)
{
    static const struct {
        const char *bytes;
        int ok;
        const char *why;
        size_t shift; /* the error's offset past the byte's own */
    } kinds[] = {
        {"\x01", 0, "control character", 0}, {"\x1F", 0, "control character", 0},
        {"\x80", 0, "invalid UTF-8", 0},     {"\xC3", 0, "invalid UTF-8", 0},
        {"\\q", 0, "invalid escape", 0},    {"\"", 0, "unexpected text", 1},
        {"\x7F", 1, NULL, 0},                {" ", 1, NULL, 0},
        {"\\\"", 1, NULL, 0},              {"\xC3\xA9", 1, NULL, 0},
        {"\xF0\x9F\x98\x80", 1, NULL, 0}, {"!#[]{}~", 1, NULL, 0},
    };
    char s[64];
    size_t failures = 0;
    for (size_t k = 0; k < sizeof kinds / sizeof kinds[0]; k++) {
        size_t blen = strlen(kinds[k].bytes);
        for (size_t at = 0; at < 24; at++) {
            size_t len = 0;
            s[len++] = '"';
            memset(s + len, 'a', at), len += at;
            memcpy(s + len, kinds[k].bytes, blen), len += blen;
            memset(s + len, 'b', 24 - at), len += 24 - at;
            s[len++] = '"';
            o7_json_span v;
            o7_err err = {0};
            o7_rc rc = parse_n(s, len, &v, &err);
            unsigned long off = 0;
            int good = kinds[k].ok ? rc == O7_OK && v.len == len
                                   : rc == O7_ERR_CORRUPT && strstr(err.msg, kinds[k].why) &&
                                         sscanf(err.msg, "invalid JSON at byte %lu", &off) == 1 &&
                                         off == at + 1 + kinds[k].shift;
            if (!good && failures++ < 5) {
                CHECK_FAILED_AT();
                fprintf(stderr, "kind %zu at %zu: rc %d \"%s\"\n", k, at, (int)rc, err.msg);
            }
        }
    }
    CHECK_INT(failures, 0);
}

typedef struct accept_case {
    const char *text;
    size_t len;        /* 0: strlen(text) */
    size_t lead, vlen; /* where the value's span starts and its length; vlen 0: to the end */
    o7_json_kind kind;
} accept_case;

static const accept_case accepts[] = {
    {"0", 0, 0, 0, O7_JSON_NUMBER},
    {"-0", 0, 0, 0, O7_JSON_NUMBER},
    {"-0.0e-0", 0, 0, 0, O7_JSON_NUMBER},
    {"1e400", 0, 0, 0, O7_JSON_NUMBER},
    {"-1E-400", 0, 0, 0, O7_JSON_NUMBER},
    {"0.1e+5", 0, 0, 0, O7_JSON_NUMBER},
    {"123456789012345678901234567890", 0, 0, 0, O7_JSON_NUMBER},
    {"3.1415926535897931", 0, 0, 0, O7_JSON_NUMBER},
    {"1.7976931348623157e308", 0, 0, 0, O7_JSON_NUMBER},
    {"[]", 0, 0, 0, O7_JSON_ARRAY},
    {"{}", 0, 0, 0, O7_JSON_OBJECT},
    {" \t\r\n[ ] \n", 0, 4, 3, O7_JSON_ARRAY},
    {"\n{\n}\n", 0, 1, 3, O7_JSON_OBJECT},
    {"\"\"", 0, 0, 0, O7_JSON_STRING},
    {"\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t \\u0041 \\u00e9 \\u20AC\"", 0, 0, 0, O7_JSON_STRING},
    {"\"\\uD83D\\uDE00\"", 0, 0, 0, O7_JSON_STRING},
    {"\"\\ud834\\udd1e\"", 0, 0, 0, O7_JSON_STRING},
    {"\"\\u0000\"", 0, 0, 0, O7_JSON_STRING},
    {"\"\xF0\x9F\x98\x80 \xC3\xA9 \xE2\x82\xAC \x7F\"", 0, 0, 0, O7_JSON_STRING},
    {"\"\xF4\x8F\xBF\xBF\xEF\xBF\xBF\xED\x9F\xBF\xEE\x80\x80\"", 0, 0, 0, O7_JSON_STRING},
    {"true", 0, 0, 0, O7_JSON_TRUE},
    {"  false ", 0, 2, 5, O7_JSON_FALSE},
    {"null", 0, 0, 0, O7_JSON_NULL},
    {"[[],{},[{}],\"\",0]", 0, 0, 0, O7_JSON_ARRAY},
    {"{\"a\":1,\"a\":2}", 0, 0, 0, O7_JSON_OBJECT},
    {"{ \"a\" : [ 1 , { \"b\" : null } ] , \"c\" : \"d\" }", 0, 0, 0, O7_JSON_OBJECT},
    {"\"<p>long enough to take the 8-byte path, \\\"quoted\\\" too</p>\"", 0, 0, 0,
     O7_JSON_STRING},
};

TEST(accepts_valid_texts)
{
    size_t n = sizeof accepts / sizeof accepts[0];
    CHECK(n >= 20);
    for (size_t i = 0; i < n; i++) {
        const accept_case *c = &accepts[i];
        size_t len = c->len ? c->len : strlen(c->text);
        size_t vlen = c->vlen ? c->vlen : len - c->lead;
        text t = text_of(c->text, len);
        o7_json_span v = {NULL, 0, O7_JSON_INVALID};
        o7_err err = {0};
        o7_rc rc = o7_json_parse(t.p, t.len, &v, &err);
        if (rc != O7_OK || v.p != t.p + c->lead || v.len != vlen || v.kind != c->kind) {
            CHECK_FAILED_AT();
            fprintf(stderr, "accept case %zu (%s): rc %d \"%s\", span +%td len %zu kind %d\n",
                    i, c->text, (int)rc, err.msg, v.p ? v.p - t.p : -1, v.len, (int)v.kind);
        }
        free(t.p);
    }
}

/* depth levels of [ ... ] or {"a": ... } around a 1. */
static o7_rc parse_nested(size_t depth, int objects, o7_err *err, o7_json_span *v)
{
    char *s = malloc(depth * 6 + 1); /* {"a": and } per level */
    if (s == NULL)
        return O7_ERR_NOMEM;
    char *at = repeat(objects ? "{\"a\":" : "[", depth, s);
    *at++ = '1';
    at = repeat(objects ? "}" : "]", depth, at);
    o7_rc rc = o7_json_parse(s, (size_t)(at - s), v, err);
    free(s);
    return rc;
}

TEST(nesting_limit)
{
    o7_json_span v;
    o7_err err = {0};
    CHECK_INT(parse_nested(500, 0, &err, &v), O7_OK);
    CHECK_INT(v.kind, O7_JSON_ARRAY);
    CHECK_INT(parse_nested(500, 1, &err, &v), O7_OK);
    CHECK_INT(parse_nested(512, 0, &err, &v), O7_OK);
    CHECK_INT(parse_nested(512, 1, &err, &v), O7_OK);

    CHECK_INT(parse_nested(513, 0, &err, &v), O7_ERR_CORRUPT);
    CHECK_STR(err.msg, "invalid JSON at byte 512: nesting deeper than 512 levels");
    o7_err_clear(&err);
    CHECK_INT(parse_nested(513, 1, &err, &v), O7_ERR_CORRUPT);
    CHECK(strstr(err.msg, "nesting deeper than 512") != NULL);
    o7_err_clear(&err);
    CHECK_INT(parse_nested(200000, 0, &err, &v), O7_ERR_CORRUPT);
    CHECK(strstr(err.msg, "nesting deeper than 512") != NULL);

    /* a deep but legal document is still walkable */
    const char *deep = "[[[[[[[[[[{\"k\":[7]}]]]]]]]]]]";
    o7_json_span d = must_parse(deep), cur = d;
    for (int i = 0; i < 10; i++) {
        o7_json_iter it;
        o7_json_iter_init(&it, &cur);
        CHECK(o7_json_next(&it, NULL, &cur));
    }
    o7_json_span k;
    CHECK_INT(o7_json_path(&cur, "k.0", &k), O7_OK);
    CHECK_MEM(k.p, k.len, "7", 1);
}

/* ---- lookup and iteration on API pages ---------------------------------- */

static const char v3_page[] =
    "{\"data\":[\n"
    "  {\"id\":77,\"name\":\"Plain T-Shirt\",\"type\":\"physical\",\"price\":29.990,"
    "\"sale_price\":0,\"weight\":1.5e0,\"custom_fields\":[],\"meta_fields\":{},"
    "\"description\":\"<p>Soft \\\"cotton\\\"</p>\\n\",\"is_visible\":true,"
    "\"categories\":[23,45]},\n"
    "  {\"id\":78,\"name\":\"Caf\\u00e9 Mug \xE2\x98\x95\",\"type\":\"physical\","
    "\"price\":12.5,\"sale_price\":0.0,\"custom_fields\":[{\"id\":1,\"name\":\"glaze\","
    "\"value\":\"matte\"}],\"meta_fields\":{},\"description\":\"\",\"is_visible\":false,"
    "\"categories\":[]},\n"
    "  {\"\\u0069d\":79,\"name\":\"Gift Card\",\"type\":\"digital\",\"price\":25,"
    "\"sale_price\":null,\"custom_fields\":[],\"meta_fields\":{\"a\":{\"b\":[{}]}},"
    "\"description\":\"\\ud83c\\udf81\",\"is_visible\":true,\"categories\":[45]}\n"
    "],\n"
    "\"meta\":{\"pagination\":{\"total\":3,\"count\":3,\"per_page\":250,"
    "\"current_page\":1,\"total_pages\":1,\"links\":{\"current\":\"?page=1&limit=250\"}}}}";

TEST(v3_page_envelope)
{
    o7_json_span root = must_parse(v3_page), data, v;
    CHECK_INT(root.kind, O7_JSON_OBJECT);
    CHECK_INT(o7_json_count(&root), 2);

    int64_t n = 0;
    CHECK_INT(o7_json_path(&root, "meta.pagination.total", &v), O7_OK);
    CHECK_INT(o7_json_int(&v, &n), O7_OK);
    CHECK_INT(n, 3);
    CHECK_INT(o7_json_path(&root, "meta.pagination.per_page", &v), O7_OK);
    CHECK_INT(o7_json_int(&v, &n), O7_OK);
    CHECK_INT(n, 250);
    CHECK_INT(o7_json_path(&root, "meta.pagination.links.current", &v), O7_OK);
    CHECK(o7_json_str_eq(&v, "?page=1&limit=250"));
    CHECK_INT(o7_json_path(&root, "meta.pagination.nope", &v), O7_ERR_NOTFOUND);
    CHECK_INT(o7_json_path(&root, "meta.pagination.total.deeper", &v), O7_ERR_NOTFOUND);
    CHECK_INT(o7_json_path(&root, "data.3.id", &v), O7_ERR_NOTFOUND);
    CHECK_INT(o7_json_path(&root, "data.x", &v), O7_ERR_NOTFOUND);

    CHECK_INT(o7_json_get(&root, "data", &data), O7_OK);
    CHECK_INT(data.kind, O7_JSON_ARRAY);
    CHECK_INT(o7_json_count(&data), 3);
    CHECK_INT(o7_json_get(&data, "id", &v), O7_ERR_NOTFOUND);

    /* each record is found with its id, and its span is its exact bytes */
    o7_json_iter it;
    o7_json_span key, rec;
    int64_t ids[3] = {0, 0, 0};
    size_t i = 0;
    o7_json_iter_init(&it, &data);
    while (o7_json_next(&it, &key, &rec) && i < 3) {
        CHECK_INT(key.kind, O7_JSON_INVALID);
        CHECK_INT(rec.kind, O7_JSON_OBJECT);
        CHECK_INT(rec.p[0], '{');
        CHECK_INT(rec.p[rec.len - 1], '}');
        CHECK_INT(o7_json_get(&rec, "id", &v), O7_OK);
        CHECK_INT(o7_json_int(&v, &ids[i]), O7_OK);
        i++;
    }
    CHECK_INT(i, 3);
    CHECK_INT(ids[0], 77);
    CHECK_INT(ids[1], 78);
    CHECK_INT(ids[2], 79); /* its key is written "\u0069d" */

    const char *second = strstr(v3_page, "{\"id\":78");
    const char *second_end = strstr(second, "]},\n") + 2;
    CHECK_INT(o7_json_path(&root, "data.1", &rec), O7_OK);
    CHECK_MEM(rec.p, rec.len, second, (size_t)(second_end - second));

    /* [] stays [], {} stays {}, numbers keep their spelling */
    CHECK_INT(o7_json_path(&root, "data.0.custom_fields", &v), O7_OK);
    CHECK_MEM(v.p, v.len, "[]", 2);
    CHECK_INT(o7_json_count(&v), 0);
    CHECK_INT(o7_json_path(&root, "data.0.meta_fields", &v), O7_OK);
    CHECK_MEM(v.p, v.len, "{}", 2);
    CHECK_INT(o7_json_count(&v), 0);
    CHECK_INT(o7_json_path(&root, "data.0.price", &v), O7_OK);
    CHECK_MEM(v.p, v.len, "29.990", 6);
    CHECK_INT(o7_json_int(&v, &n), O7_ERR_CORRUPT);
    CHECK_INT(o7_json_path(&root, "data.0.weight", &v), O7_OK);
    CHECK_MEM(v.p, v.len, "1.5e0", 5);
    CHECK_INT(o7_json_path(&root, "data.2.meta_fields.a.b.0", &v), O7_OK);
    CHECK_MEM(v.p, v.len, "{}", 2);

    CHECK_INT(o7_json_path(&root, "data.0.description", &v), O7_OK);
    CHECK(o7_json_str_eq(&v, "<p>Soft \"cotton\"</p>\n"));
    CHECK_INT(o7_json_path(&root, "data.1.name", &v), O7_OK);
    CHECK(o7_json_str_eq(&v, "Caf\xC3\xA9 Mug \xE2\x98\x95"));
    CHECK_INT(o7_json_path(&root, "data.2.description", &v), O7_OK);
    CHECK(o7_json_str_eq(&v, "\xF0\x9F\x8E\x81"));
    CHECK_INT(o7_json_path(&root, "data.1.is_visible", &v), O7_OK);
    CHECK_INT(v.kind, O7_JSON_FALSE);
    CHECK_INT(o7_json_path(&root, "data.2.sale_price", &v), O7_OK);
    CHECK_INT(v.kind, O7_JSON_NULL);
    CHECK_INT(o7_json_path(&root, "data.1.custom_fields.0.value", &v), O7_OK);
    CHECK(o7_json_str_eq(&v, "matte"));
}

TEST(iterates_members_in_order)
{
    const char *s = "{ \"a\" : 1 , \"b\":[ 2, 3 ] ,\"c\" :{\"d\":\"}\"},\"e\":\"x\\\\\"}";
    o7_json_span obj = must_parse(s), k, v;
    const char *keys[] = {"a", "b", "c", "e"};
    const char *vals[] = {"1", "[ 2, 3 ]", "{\"d\":\"}\"}", "\"x\\\\\""};
    o7_json_kind kinds[] = {O7_JSON_NUMBER, O7_JSON_ARRAY, O7_JSON_OBJECT, O7_JSON_STRING};
    o7_json_iter it;
    size_t i = 0;
    o7_json_iter_init(&it, &obj);
    while (o7_json_next(&it, &k, &v)) {
        if (i < 4) {
            CHECK_INT(k.kind, O7_JSON_STRING);
            CHECK(o7_json_str_eq(&k, keys[i]));
            CHECK_MEM(v.p, v.len, vals[i], strlen(vals[i]));
            CHECK_INT(v.kind, kinds[i]);
        }
        i++;
    }
    CHECK_INT(i, 4);
    CHECK_INT(o7_json_next(&it, &k, &v), 0); /* stays finished */
    CHECK_INT(o7_json_count(&obj), 4);

    /* a scalar has nothing to iterate; get on it finds nothing */
    o7_json_span num = must_parse("42");
    CHECK_INT(o7_json_count(&num), 0);
    CHECK_INT(o7_json_get(&num, "a", &v), O7_ERR_NOTFOUND);

    /* the first of repeated names wins */
    o7_json_span dup = must_parse("{\"a\":1,\"a\":2}");
    CHECK_INT(o7_json_get(&dup, "a", &v), O7_OK);
    CHECK_MEM(v.p, v.len, "1", 1);
}

static const char v2_orders[] =
    "[\n"
    " {\"id\":100,\"status\":\"Shipped\",\"total_inc_tax\":\"0.0000\",\"discount_amount\":"
    "\"-0.00\",\"products\":{\"url\":\"https://example.invalid/api/v2/orders/100/products\","
    "\"resource\":\"/orders/100/products\"},\"coupons\":{\"url\":\"u\",\"resource\":\"/c\"}},\n"
    " {\"id\":101,\"status\":\"Pending\",\"total_inc_tax\":\"19.9500\",\"discount_amount\":"
    "\"0.0000\",\"products\":{\"url\":\"https://example.invalid/api/v2/orders/101/products\","
    "\"resource\":\"/orders/101/products\"},\"coupons\":{\"url\":\"u\",\"resource\":\"/c\"}}\n"
    "]";

TEST(v2_bare_array)
{
    o7_json_span root = must_parse(v2_orders), rec, v;
    CHECK_INT(root.kind, O7_JSON_ARRAY);
    CHECK_INT(o7_json_count(&root), 2);

    o7_json_iter it;
    int64_t id = 0, sum = 0;
    int zero_totals = 0;
    o7_json_iter_init(&it, &root);
    while (o7_json_next(&it, NULL, &rec)) {
        CHECK_INT(o7_json_get(&rec, "id", &v), O7_OK);
        CHECK_INT(o7_json_int(&v, &id), O7_OK);
        sum += id;
        CHECK_INT(o7_json_get(&rec, "total_inc_tax", &v), O7_OK);
        zero_totals += o7_json_is_zero(&v);
    }
    CHECK_INT(sum, 201);
    CHECK_INT(zero_totals, 1);

    CHECK_INT(o7_json_path(&root, "1.products.resource", &v), O7_OK);
    CHECK(o7_json_str_eq(&v, "/orders/101/products"));
    CHECK_INT(o7_json_path(&root, "0.discount_amount", &v), O7_OK);
    CHECK(o7_json_is_zero(&v));
}

/* ---- scalars ------------------------------------------------------------ */

static o7_rc int_of(const char *s, int64_t *out)
{
    o7_json_span v = must_parse(s);
    return o7_json_int(&v, out);
}

TEST(int_range_edges)
{
    int64_t n = 1;
    CHECK_INT(int_of("9223372036854775807", &n), O7_OK);
    CHECK(n == INT64_MAX);
    CHECK_INT(int_of("-9223372036854775808", &n), O7_OK);
    CHECK(n == INT64_MIN);
    CHECK_INT(int_of("9223372036854775806", &n), O7_OK);
    CHECK(n == INT64_MAX - 1);
    CHECK_INT(int_of("-9223372036854775807", &n), O7_OK);
    CHECK(n == INT64_MIN + 1);

    n = 5;
    CHECK_INT(int_of("9223372036854775808", &n), O7_ERR_CORRUPT);
    CHECK_INT(int_of("-9223372036854775809", &n), O7_ERR_CORRUPT);
    CHECK_INT(int_of("18446744073709551616", &n), O7_ERR_CORRUPT);
    CHECK_INT(int_of("123456789012345678901234567890", &n), O7_ERR_CORRUPT);
    CHECK_INT(n, 5); /* untouched on failure */

    CHECK_INT(int_of("0", &n), O7_OK);
    CHECK_INT(n, 0);
    CHECK_INT(int_of("-0", &n), O7_OK);
    CHECK_INT(n, 0);
    CHECK_INT(int_of("-42", &n), O7_OK);
    CHECK_INT(n, -42);
    CHECK_INT(int_of("1.0", &n), O7_ERR_CORRUPT);
    CHECK_INT(int_of("1e2", &n), O7_ERR_CORRUPT);
    CHECK_INT(int_of("10E0", &n), O7_ERR_CORRUPT);
    CHECK_INT(int_of("\"5\"", &n), O7_ERR_CORRUPT);
    CHECK_INT(int_of("null", &n), O7_ERR_CORRUPT);
}

static int str_is(const char *json, const char *want, size_t want_len)
{
    o7_json_span v = must_parse(json);
    char *s = NULL;
    if (o7_json_str(&v, &s) != O7_OK)
        return 0;
    int same = memcmp(s, want, want_len + 1) == 0; /* the NUL too */
    free(s);
    return same;
}

TEST(str_decodes_escapes)
{
    CHECK(str_is("\"plain\"", "plain", 5));
    CHECK(str_is("\"\"", "", 0));
    CHECK(str_is("\"\\\" \\\\ \\/ \\b \\f \\n \\r \\t\"", "\" \\ / \b \f \n \r \t", 15));
    CHECK(str_is("\"\\u0041\\u00e9\\u20AC\"", "A\xC3\xA9\xE2\x82\xAC", 6));
    CHECK(str_is("\"\\uD83D\\uDE00!\"", "\xF0\x9F\x98\x80!", 5));
    CHECK(str_is("\"\\udbff\\udfff\"", "\xF4\x8F\xBF\xBF", 4));
    CHECK(str_is("\"\xF0\x9F\x98\x80\"", "\xF0\x9F\x98\x80", 4));
    CHECK(str_is("\"a\\u0000b\"", "a\0b", 3));

    char *s = (char *)"unchanged";
    o7_json_span num = must_parse("12");
    CHECK_INT(o7_json_str(&num, &s), O7_ERR_CORRUPT);
    CHECK_STR(s, "unchanged");
}

TEST(str_eq_compares_decoded)
{
    o7_json_span v = must_parse("\"\\u0069d\"");
    CHECK(o7_json_str_eq(&v, "id"));
    CHECK(!o7_json_str_eq(&v, "i"));
    CHECK(!o7_json_str_eq(&v, "idx"));
    CHECK(!o7_json_str_eq(&v, "\\u0069d"));

    v = must_parse("\"id\"");
    CHECK(o7_json_str_eq(&v, "id"));
    CHECK(!o7_json_str_eq(&v, "ID"));
    CHECK(!o7_json_str_eq(&v, ""));

    v = must_parse("\"caf\\u00E9 \\ud83d\\ude00\"");
    CHECK(o7_json_str_eq(&v, "caf\xC3\xA9 \xF0\x9F\x98\x80"));
    CHECK(!o7_json_str_eq(&v, "caf\xC3\xA9 \xF0\x9F\x98"));

    v = must_parse("\"a\\u0000b\"");
    CHECK(!o7_json_str_eq(&v, "a"));

    v = must_parse("7");
    CHECK(!o7_json_str_eq(&v, "7"));
}

static int zero(const char *json)
{
    o7_json_span v = must_parse(json);
    return o7_json_is_zero(&v);
}

TEST(is_zero_spellings)
{
    const char *zeros[] = {"0", "-0", "0.0", "-0.00e5", "0E0", "0e-7", "0.0e-0", "\"0\"",
                           "\"0.0000\"", "\"-0.00\"", "\"+0\"", "\"00.0\"", "\"0e5\"",
                           "\"\\u0030.00\""};
    const char *others[] = {"1", "-1", "0.001", "1e-400", "0.000000000000000000001e0", "10",
                            "\"0.0001\"", "\"\"", "\"-\"", "\"abc\"", "\"0x0\"", "\"00.0a\"",
                            "\" 0\"", "\"0.0.0\"", "\".\"", "\"0e\"", "\"1.00\"", "null", "false",
                            "true", "[]", "{}", "[0]"};
    for (size_t i = 0; i < sizeof zeros / sizeof zeros[0]; i++)
        if (!zero(zeros[i])) {
            CHECK_FAILED_AT();
            fprintf(stderr, "%s should be zero\n", zeros[i]);
        }
    for (size_t i = 0; i < sizeof others / sizeof others[0]; i++)
        if (zero(others[i])) {
            CHECK_FAILED_AT();
            fprintf(stderr, "%s should not be zero\n", others[i]);
        }
}

/* ---- splicing ----------------------------------------------------------- */

/* Sets key in the object text obj to val; returns what was written after
 * the prefix out already held, or NULL on failure. Caller frees. */
static char *set_of(const char *obj, const char *key, const char *val, o7_rc *rc)
{
    o7_json_span o = must_parse(obj);
    o7_buf out = O7_BUF_INIT;
    o7_buf_puts(&out, "prefix|");
    *rc = o7_json_set(&o, key, val, strlen(val), &out);
    char *all = o7_buf_steal(&out);
    if (strncmp(all, "prefix|", 7) != 0) {
        free(all);
        return NULL;
    }
    memmove(all, all + 7, strlen(all + 7) + 1);
    return all;
}

static void check_set(const char *obj, const char *key, const char *val, const char *want)
{
    o7_rc rc;
    char *got = set_of(obj, key, val, &rc);
    if (rc != O7_OK || got == NULL || strcmp(got, want) != 0) {
        CHECK_FAILED_AT();
        fprintf(stderr, "set %s in %s: rc %d\n    \"%s\"\n != \"%s\"\n", key, obj, (int)rc,
                got ? got : "(null)", want);
    }
    free(got);
}

TEST(set_replaces_in_place)
{
    check_set("{\"id\":100,\"products\":{\"url\":\"u\",\"resource\":\"/r\"},\"x\":2}", "products",
              "[{\"id\":9,\"qty\":1.50}]",
              "{\"id\":100,\"products\":[{\"id\":9,\"qty\":1.50}],\"x\":2}");
    check_set("{ \"a\" : 1 ,\n  \"b\" : true\n}", "b", "false",
              "{ \"a\" : 1 ,\n  \"b\" : false\n}");
    check_set("{\"a\":1,\"a\":2}", "a", "[]", "{\"a\":[],\"a\":2}");
    check_set("{\"\\u0069d\":1}", "id", "2", "{\"\\u0069d\":2}");
    check_set("{\"last\":\"x\"}", "last", "{}", "{\"last\":{}}");
    check_set("{\"a\":{\"a\":1}}", "a", "null", "{\"a\":null}");
    check_set("{\"n\":-0.0e+1}", "n", "\"", "{\"n\":\"}"); /* val is not checked */
}

TEST(set_appends_when_absent)
{
    check_set("{\"a\":1}", "b", "2", "{\"a\":1,\"b\":2}");
    check_set("{\"a\":1 \n}", "b", "[3]", "{\"a\":1,\"b\":[3] \n}");
    check_set("{\"a\":{\"b\":1}}", "b", "2", "{\"a\":{\"b\":1},\"b\":2}");
    check_set("{}", "key", "[1,2]", "{\"key\":[1,2]}");
    check_set("{ }", "k", "1", "{\"k\":1 }");
    check_set("{\"x\":0}", "say \"hi\"", "true", "{\"x\":0,\"say \\\"hi\\\"\":true}");
}

TEST(set_refuses_non_objects)
{
    o7_json_span arr = must_parse("[1]");
    o7_buf out = O7_BUF_INIT;
    o7_buf_puts(&out, "kept");
    CHECK_INT(o7_json_set(&arr, "a", "1", 1, &out), O7_ERR_CORRUPT);
    CHECK_MEM(out.data, out.len, "kept", 4);
    o7_buf_free(&out);
}

/* ---- broken input ------------------------------------------------------- */

/* A product record of about 2 KB, as v3 sends it. */
static size_t build_record(char *buf, size_t cap)
{
    int n = snprintf(buf, cap,
        "{\"id\":112,\"name\":\"Orbit Terrarium - Large \\u2013 \\\"glass\\\"\",\"type\":"
        "\"physical\",\"sku\":\"OTL-1\",\"description\":\"<p>A handblown glass orb "
        "\\u003cwith\\u003e care \xE2\x9C\xA8 and \\ud83c\\udf31 seedlings.</p>\\r\\n<ul>"
        "<li>Height: 25cm</li><li>Tab\\there</li></ul>\",\"weight\":3.25,\"width\":0,"
        "\"depth\":0.0,\"height\":-0,\"price\":109.00000000000001,\"cost_price\":1e400,"
        "\"retail_price\":123456789012345678901234567890,\"sale_price\":0,\"tax_class_id\":0,"
        "\"categories\":[23,18,40],\"brand_id\":0,\"inventory_level\":-9223372036854775808,"
        "\"is_visible\":true,\"is_featured\":false,\"related_products\":[-1],\"warranty\":"
        "\"\",\"bin_picking_number\":null,\"search_keywords\":\"orb, glass, \xC3\xA9t\xC3\xA9\","
        "\"availability\":\"available\",\"custom_fields\":[{\"id\":5,\"name\":\"Material\","
        "\"value\":\"Glass\"},{\"id\":6,\"name\":\"Care\",\"value\":\"Wipe \\/ dust\"}],"
        "\"bulk_pricing_rules\":[],\"images\":[{\"id\":300,\"product_id\":112,\"is_thumbnail\":"
        "true,\"sort_order\":1,\"description\":\"\",\"image_file\":\"k/067/ot__09111.jpg\","
        "\"url_zoom\":\"https://cdn.example.invalid/s-abc/images/stencil/1280x1280/products/"
        "112/300/ot__09111.1599140478.jpg?c=1\",\"date_modified\":\"2020-09-03T13:41:18+00:00\""
        "}],\"variants\":[{\"id\":77,\"product_id\":112,\"sku\":\"OTL-1\",\"sku_id\":null,"
        "\"price\":null,\"calculated_price\":109,\"sale_price\":null,\"retail_price\":null,"
        "\"map_price\":null,\"weight\":null,\"width\":null,\"height\":null,\"depth\":null,"
        "\"is_free_shipping\":false,\"fixed_cost_shipping_price\":null,\"purchasing_disabled\":"
        "false,\"purchasing_disabled_message\":\"\",\"image_url\":\"\",\"cost_price\":0,"
        "\"upc\":\"\",\"mpn\":\"\",\"gtin\":\"\",\"inventory_level\":0,"
        "\"inventory_warning_level\":0,\"bin_picking_number\":\"\",\"option_values\":[]}],"
        "\"meta_fields\":{},\"custom_url\":{\"url\":\"/orbit-terrarium-large/\","
        "\"is_customized\":false},\"open_graph_type\":\"product\",\"open_graph_title\":\"\","
        "\"open_graph_description\":\"\",\"open_graph_use_meta_description\":true,"
        "\"open_graph_use_product_name\":true,\"open_graph_use_image\":true,"
        "\"gift_wrapping_options_type\":\"any\",\"gift_wrapping_options_list\":[],"
        "\"date_created\":\"2018-08-15T14:48:46+00:00\",\"date_modified\":"
        "\"2020-09-03T13:41:18+00:00\",\"view_count\":10,\"preorder_release_date\":null,"
        "\"preorder_message\":\"\",\"is_preorder_only\":false,\"is_price_hidden\":false,"
        "\"price_hidden_label\":\"\",\"base_variant_id\":77,\"total_sold\":3,"
        "\"reviews_rating_sum\":9,\"reviews_count\":2,\"layout_file\":\"product.html\","
        "\"page_title\":\"\",\"meta_keywords\":[],\"meta_description\":\"\",\"nested\":"
        "[[[{\"a\":[{},[],{\"b\":{\"c\":[true,false,null]}}]}]]],\"order_quantity_minimum\":0,"
        "\"order_quantity_maximum\":0,\"upc\":\"\",\"condition\":\"New\"}");
    return n < 0 ? 0 : (size_t)n;
}

TEST(every_truncation_is_rejected)
{
    char rec[4096];
    size_t len = build_record(rec, sizeof rec);
    CHECK(len >= 2000 && len < sizeof rec);

    o7_json_span v;
    o7_err err = {0};
    CHECK_INT(o7_json_parse(rec, len, &v, &err), O7_OK);
    CHECK_INT(o7_json_count(&v), 59);

    size_t wrongly_accepted = 0, bad_offsets = 0;
    for (size_t cut = 0; cut < len; cut++) {
        o7_err_clear(&err);
        if (parse_n(rec, cut, &v, &err) != O7_ERR_CORRUPT)
            wrongly_accepted++;
        unsigned long at = 0;
        if (sscanf(err.msg, "invalid JSON at byte %lu:", &at) != 1 || at > cut)
            bad_offsets++;
    }
    CHECK_INT(wrongly_accepted, 0);
    CHECK_INT(bad_offsets, 0);
}

static uint64_t rng_state = 0x6F37A5B1C2D3E4F5ULL;

static uint64_t rng(void)
{
    /* xorshift64: a fixed seed makes every run mutate the same way */
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

/* One random edit of buf (len bytes, room for cap); returns the new length. */
static size_t mutate(char *buf, size_t len, size_t cap)
{
    static const char interesting[] = "{}[]\",:\\u0e.-+ \x80\xC3\xED\xF4\xFF";
    size_t at = len ? (size_t)(rng() % len) : 0;
    char c = (rng() & 1) ? (char)(rng() & 0xFF) : interesting[rng() % (sizeof interesting - 1)];
    switch (rng() % 5) {
    case 0: /* overwrite */
        if (len)
            buf[at] = c;
        return len;
    case 1: /* insert */
        if (len + 1 > cap)
            return len;
        memmove(buf + at + 1, buf + at, len - at);
        buf[at] = c;
        return len + 1;
    case 2: /* delete */
        if (len)
            memmove(buf + at, buf + at + 1, len - at - 1);
        return len ? len - 1 : 0;
    case 3: { /* copy a run over another place */
        size_t from = len ? (size_t)(rng() % len) : 0, n = (size_t)(rng() % 16);
        if (from + n > len || at + n > len)
            return len;
        memmove(buf + at, buf + from, n);
        return len;
    }
    default: /* truncate */
        return at;
    }
}

/* Walks every value of a span with the accessors, as o7 does after a parse. */
static size_t walk(const o7_json_span *v, int depth)
{
    size_t seen = 1;
    o7_json_span tmp;
    int64_t n;
    char *s = NULL;
    (void)o7_json_is_zero(v);
    (void)o7_json_int(v, &n);
    (void)o7_json_str_eq(v, "id");
    if (o7_json_str(v, &s) == O7_OK)
        free(s);
    (void)o7_json_get(v, "id", &tmp);
    (void)o7_json_path(v, "custom_fields.0.value", &tmp);
    if (depth > 8)
        return seen;
    o7_json_iter it;
    o7_json_span k, val;
    o7_json_iter_init(&it, v);
    while (o7_json_next(&it, &k, &val))
        seen += walk(&val, depth + 1);
    return seen;
}

TEST(random_mutations_never_crash)
{
    char rec[4096];
    size_t len = build_record(rec, sizeof rec);
    size_t accepted = 0, rejected = 0, other = 0, bad_spans = 0;
    for (int round = 0; round < 10000; round++) {
        char buf[4200];
        memcpy(buf, rec, len);
        size_t n = len;
        int edits = 1 + (int)(rng() % 4);
        for (int e = 0; e < edits; e++)
            n = mutate(buf, n, sizeof buf);

        text t = text_of(buf, n);
        o7_json_span v;
        o7_err err = {0};
        o7_rc rc = o7_json_parse(t.p, t.len, &v, &err);
        if (rc == O7_OK) {
            accepted++;
            if (v.p < t.p || v.p + v.len > t.p + t.len || v.kind == O7_JSON_INVALID)
                bad_spans++;
            walk(&v, 0);
            o7_buf out = O7_BUF_INIT;
            if (v.kind == O7_JSON_OBJECT && o7_json_set(&v, "id", "1", 1, &out) == O7_OK &&
                parse_n(out.data, out.len, &v, NULL) != O7_OK)
                bad_spans++; /* replacing a value by a valid one keeps the text valid */
            o7_buf_free(&out);
        } else if (rc == O7_ERR_CORRUPT && strncmp(err.msg, "invalid JSON at byte ", 21) == 0) {
            rejected++;
            /* the accessors must stay in bounds even on text that failed */
            o7_json_span raw = {t.p, t.len, O7_JSON_OBJECT};
            walk(&raw, 0);
            raw.kind = O7_JSON_ARRAY;
            walk(&raw, 0);
        } else {
            other++;
        }
        free(t.p);
    }
    printf("     mutations: %zu accepted, %zu rejected\n", accepted, rejected);
    CHECK_INT(accepted + rejected, 10000);
    CHECK_INT(other, 0);
    CHECK_INT(bad_spans, 0);
    CHECK(accepted > 0);
    CHECK(rejected > 5000);
}

TEST(accessors_on_unchecked_bytes)
{
    /* Spans that never went through a parse: everything must stay inside. */
    const char *bad[] = {"{\"a", "{\"a\":", "{\"a\":\"\\", "[\"\\u12", "{\"\\uD800\":1", "[[[",
                         "{\"id\"  ", "\"\\u", "\"\\", "{\"a\":1,\"id\":[{\"x\":\"\\\\\"}"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        for (int kind = O7_JSON_OBJECT; kind <= O7_JSON_NULL; kind++) {
            text t = text_of(bad[i], strlen(bad[i]));
            o7_json_span raw = {t.p, t.len, (o7_json_kind)kind};
            CHECK(walk(&raw, 0) >= 1);
            o7_buf out = O7_BUF_INIT;
            (void)o7_json_set(&raw, "id", "1", 1, &out);
            o7_buf_free(&out);
            free(t.p);
        }
    }
}

int main(void)
{
    RUN(rejects_each_rule);
    RUN(error_names_the_byte_offset);
    RUN(string_bytes_at_every_position);
    RUN(accepts_valid_texts);
    RUN(nesting_limit);
    RUN(v3_page_envelope);
    RUN(iterates_members_in_order);
    RUN(v2_bare_array);
    RUN(int_range_edges);
    RUN(str_decodes_escapes);
    RUN(str_eq_compares_decoded);
    RUN(is_zero_spellings);
    RUN(set_replaces_in_place);
    RUN(set_appends_when_absent);
    RUN(set_refuses_non_objects);
    RUN(every_truncation_is_rejected);
    RUN(random_mutations_never_crash);
    RUN(accessors_on_unchecked_bytes);
    return check_summary();
}
