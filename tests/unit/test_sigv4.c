/* test_sigv4.c - replays AWS's published SigV4 vectors (copied into
 * testdata/sigv4/) and the S3 documentation examples through the signer.
 *
 * Each vector folder is one named test. The request files are parsed here;
 * the query string is percent-decoded before it reaches the signer, which
 * encodes it again, so a vector that arrives already encoded proves the
 * encoding is done exactly once. */
#include "check.h"
#include "crypto.h"
#include "sigv4.h"

#include <stdlib.h>
#include <string.h>
#include <time.h>

#define DATA "testdata/sigv4"
#define MAXH 16
#define MAXP 16

static const time_t vector_time = 1440938160; /* 2015-08-30T12:36:00Z */

/* ---- small helpers ----------------------------------------------------- */

static char *slurp(const char *path, size_t *len)
{
    FILE *f = fopen(path, "rb");
    if (!f)
        return NULL;
    o7_buf b = O7_BUF_INIT;
    char chunk[4096];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, f)) > 0)
        o7_buf_append(&b, chunk, n);
    fclose(f);
    o7_buf_putc(&b, '\0');
    if (len)
        *len = b.len - 1;
    return o7_buf_steal(&b);
}

static char *slurpf(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s", dir, name);
    char *s = slurp(path, NULL);
    if (!s) {
        CHECK_FAILED_AT();
        fprintf(stderr, "cannot read %s\n", path);
    }
    return s;
}

static int hexval(char c)
{
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

/* Percent-decodes s in place. */
static void pct_decode(char *s)
{
    char *d = s;
    for (; *s; s++) {
        if (s[0] == '%' && hexval(s[1]) >= 0 && hexval(s[2]) >= 0) {
            *d++ = (char)(hexval(s[1]) * 16 + hexval(s[2]));
            s += 2;
        } else {
            *d++ = *s;
        }
    }
    *d = '\0';
}

/* Value of "key": "..." / true / number in a flat JSON text; NULL if absent.
 * The caller frees. Good enough for the vectors' context.json files. */
static char *json_get(const char *json, const char *key)
{
    char pat[64];
    snprintf(pat, sizeof pat, "\"%s\"", key);
    const char *p = strstr(json, pat);
    if (!p)
        return NULL;
    p = strchr(p + strlen(pat), ':');
    if (!p)
        return NULL;
    p++;
    while (*p == ' ')
        p++;
    const char *end;
    if (*p == '"') {
        p++;
        end = strchr(p, '"');
    } else {
        end = p + strcspn(p, ",\n}");
    }
    if (!end)
        return NULL;
    return strndup(p, (size_t)(end - p));
}

/* ---- a parsed request file --------------------------------------------- */

typedef struct parsed {
    char *text; /* owns every string below */
    char *method, *path, *body;
    size_t body_len;
    o7_sigv4_header h[MAXH];
    size_t nh;
    o7_sigv4_param p[MAXP];
    size_t np;
} parsed;

static void parse_query(parsed *r, char *q)
{
    while (q && *q && r->np < MAXP) {
        char *next = strchr(q, '&');
        if (next)
            *next++ = '\0';
        char *eq = strchr(q, '=');
        if (eq)
            *eq++ = '\0';
        pct_decode(q);
        if (eq)
            pct_decode(eq);
        r->p[r->np++] = (o7_sigv4_param){q, eq ? eq : ""};
        q = next;
    }
}

/* "METHOD target HTTP/1.1\nName:value\n...\n\nbody". The target may hold a
 * space (get-space), so it ends at the last " HTTP/". */
static int parse_request(parsed *r, const char *path)
{
    memset(r, 0, sizeof *r);
    size_t len;
    r->text = slurp(path, &len);
    if (!r->text)
        return -1;
    char *line_end = strchr(r->text, '\n');
    if (line_end)
        *line_end = '\0';
    char *sp = strchr(r->text, ' ');
    char *proto = strstr(r->text, " HTTP/");
    if (!sp || !proto)
        return -1;
    *sp = '\0';
    *proto = '\0';
    r->method = r->text;
    r->path = sp + 1;
    char *q = strchr(r->path, '?');
    if (q)
        *q++ = '\0';
    parse_query(r, q);

    char *line = line_end ? line_end + 1 : NULL;
    while (line && *line && *line != '\n' && r->nh < MAXH) {
        char *nl = strchr(line, '\n');
        if (nl)
            *nl = '\0';
        char *colon = strchr(line, ':');
        if (colon) {
            *colon = '\0';
            r->h[r->nh++] = (o7_sigv4_header){line, colon + 1};
        }
        line = nl ? nl + 1 : NULL;
    }
    r->body = (line && *line == '\n') ? line + 1 : (char *)"";
    r->body_len = strlen(r->body);
    return 0;
}

static void check_file(const char *dir, const char *name, const char *got)
{
    char *want = slurpf(dir, name);
    if (want && strcmp(want, got) != 0) {
        CHECK_FAILED_AT();
        fprintf(stderr, "%s/%s differs:\n--- want\n%s\n--- got\n%s\n", dir, name, want, got);
    }
    free(want);
}

/* ---- the classic suite ------------------------------------------------- */

static const o7_sigv4_cred vector_cred = {"AKIDEXAMPLE", "wJalrXUtnFEMI/K7MDENG+bPxRfiCYEXAMPLEKEY",
                                          NULL, "us-east-1", "service"};

static void sign_parsed(const parsed *r, o7_sigv4_result *res)
{
    char hash[65];
    o7_sha256_hex(r->body, r->body_len, hash);
    o7_sigv4_req req = {r->method, r->path, r->p, r->np, r->h, r->nh, hash};
    CHECK_INT(o7_sigv4_sign_header(&vector_cred, &req, vector_time, res), O7_OK);
}

/* check_creq 0: the .creq file is known wrong (see the README); compare the
 * string to sign and Authorization only. */
static void classic_case(const char *dir, const char *name, int check_creq)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.req", dir, name);
    parsed r;
    if (parse_request(&r, path) != 0) {
        CHECK_FAILED_AT();
        fprintf(stderr, "cannot parse %s\n", path);
        free(r.text);
        return;
    }
    o7_sigv4_result res = {0};
    sign_parsed(&r, &res);
    char file[256];
    if (check_creq) {
        snprintf(file, sizeof file, "%s.creq", name);
        check_file(dir, file, res.canonical.data);
    }
    snprintf(file, sizeof file, "%s.sts", name);
    check_file(dir, file, res.string_to_sign.data);
    snprintf(file, sizeof file, "%s.authz", name);
    check_file(dir, file, res.authorization.data);
    o7_sigv4_result_free(&res);
    free(r.text);
}

/* The second line of a canonical request: the canonical URI. */
static char *creq_uri(const char *creq)
{
    const char *a = strchr(creq, '\n');
    if (!a)
        return strdup("");
    const char *b = strchr(a + 1, '\n');
    return strndup(a + 1, b ? (size_t)(b - a - 1) : strlen(a + 1));
}

/* A generic-service normalising case: we must keep the path as sent
 * (encoded once), where the vector removed dot segments or slashes. */
static void classic_unnormalized(const char *dir, const char *name)
{
    char path[512];
    snprintf(path, sizeof path, "%s/%s.req", dir, name);
    parsed r;
    CHECK_INT(parse_request(&r, path), 0);
    o7_sigv4_result res = {0};
    sign_parsed(&r, &res);
    o7_buf enc = O7_BUF_INIT;
    o7_sigv4_encode(&enc, r.path, strlen(r.path), 1);
    char *ours = creq_uri(res.canonical.data);
    CHECK_STR(ours, enc.data);
    snprintf(path, sizeof path, "%s.creq", name);
    char *theirs_creq = slurpf(dir, path);
    char *theirs = creq_uri(theirs_creq ? theirs_creq : "");
    /* The vector normalised; our path differs from it, as S3 requires. */
    CHECK(strcmp(ours, theirs) != 0);
    free(ours);
    free(theirs);
    free(theirs_creq);
    o7_buf_free(&enc);
    o7_sigv4_result_free(&res);
    free(r.text);
}

/* ---- aws-c-auth-v4 ------------------------------------------------------ */

typedef struct ctx {
    char *json, *token;
    int sign_body, omit_token;
    long expires;
} ctx;

static void load_ctx(ctx *c, const char *dir)
{
    memset(c, 0, sizeof *c);
    c->json = slurpf(dir, "context.json");
    if (!c->json)
        return;
    c->token = json_get(c->json, "token");
    char *v = json_get(c->json, "sign_body");
    c->sign_body = v && strcmp(v, "true") == 0;
    free(v);
    v = json_get(c->json, "omit_session_token");
    c->omit_token = v && strcmp(v, "true") == 0;
    free(v);
    v = json_get(c->json, "expiration_in_seconds");
    c->expires = v ? strtol(v, NULL, 10) : 0;
    free(v);
    v = json_get(c->json, "timestamp");
    CHECK_STR(v, "2015-08-30T12:36:00Z");
    free(v);
}

/* Header signing the way the CRT signer does it: X-Amz-Date added, the
 * session token header added unless omitted, x-amz-content-sha256 when
 * sign_body. cmp_dir: where the expected files live (the -unnormalized twin
 * for a -normalized case). */
static void crt_header(const char *dir, const char *cmp_dir, const ctx *c, parsed *r, int full)
{
    char hash[65], amz_date[17];
    o7_sha256_hex(r->body, r->body_len, hash);
    o7_sigv4_amz_date(vector_time, amz_date);
    o7_sigv4_header hs[MAXH + 3];
    size_t n = r->nh;
    memcpy(hs, r->h, n * sizeof *hs);
    hs[n++] = (o7_sigv4_header){"X-Amz-Date", amz_date};
    if (c->token && !c->omit_token)
        hs[n++] = (o7_sigv4_header){"X-Amz-Security-Token", c->token};
    if (c->sign_body)
        hs[n++] = (o7_sigv4_header){"x-amz-content-sha256", hash};
    o7_sigv4_req req = {r->method, r->path, r->p, r->np, hs, n, hash};
    o7_sigv4_result res = {0};
    CHECK_INT(o7_sigv4_sign_header(&vector_cred, &req, vector_time, &res), O7_OK);
    check_file(cmp_dir, "header-canonical-request.txt", res.canonical.data);
    if (full) {
        check_file(dir, "header-string-to-sign.txt", res.string_to_sign.data);
        check_file(dir, "header-signature.txt", res.signature);
    }
    o7_sigv4_result_free(&res);
}

static void crt_query(const char *dir, const ctx *c, parsed *r)
{
    char hash[65];
    o7_sha256_hex(r->body, r->body_len, hash);
    o7_sigv4_cred cred = vector_cred;
    cred.token = c->token;
    o7_sigv4_req req = {r->method, r->path, r->p, r->np, r->h, r->nh, hash};
    o7_sigv4_result res = {0};
    CHECK_INT(o7_sigv4_sign_query(&cred, &req, vector_time, c->expires, c->omit_token, &res),
              O7_OK);
    check_file(dir, "query-canonical-request.txt", res.canonical.data);
    check_file(dir, "query-string-to-sign.txt", res.string_to_sign.data);
    check_file(dir, "query-signature.txt", res.signature);
    /* The signed request line carries our signature and, when omitted from
     * signing, the token all the same. */
    char *sreq = slurpf(dir, "query-signed-request.txt");
    char want[96];
    snprintf(want, sizeof want, "X-Amz-Signature=%s", res.signature);
    CHECK(sreq && strstr(sreq, want) != NULL);
    CHECK(strstr(res.query.data, want) != NULL);
    if (c->token)
        CHECK(strstr(res.query.data, "X-Amz-Security-Token=") != NULL);
    free(sreq);
    o7_sigv4_result_free(&res);
}

/* mode 0: must pass, header and query. mode 1: a generic-service
 * normalising case, checked against its -unnormalized twin. */
static void crt_case(const char *name, int mode)
{
    char dir[256], path[512];
    snprintf(dir, sizeof dir, DATA "/aws-c-auth-v4/%s", name);
    snprintf(path, sizeof path, "%s/request.txt", dir);
    ctx c;
    load_ctx(&c, dir);
    parsed r;
    if (!c.json || parse_request(&r, path) != 0) {
        CHECK_FAILED_AT();
        fprintf(stderr, "cannot load %s\n", dir);
        free(c.json);
        free(c.token);
        return;
    }
    if (mode == 0) {
        crt_header(dir, dir, &c, &r, 1);
        crt_query(dir, &c, &r);
    } else {
        /* "get-x-normalized" -> "get-x-unnormalized": same request, and
         * the expected canonical request of an S3-style signer. */
        char twin[256];
        size_t base = strlen(dir) - strlen("normalized");
        snprintf(twin, sizeof twin, "%.*sunnormalized", (int)base, dir);
        crt_header(dir, twin, &c, &r, 0);
    }
    free(r.text);
    free(c.json);
    free(c.token);
}

/* ---- running named cases ------------------------------------------------ */

static void run_named(const char *name, void (*fn)(const char *), const char *arg)
{
    check_current_failed = 0;
    fn(arg);
    if (check_current_failed) {
        check_failed++;
        printf("FAIL %s\n", name);
    } else {
        check_passed++;
        printf("ok   %s\n", name);
    }
}

static void classic_must(const char *name)
{
    char dir[256];
    snprintf(dir, sizeof dir, DATA "/%s", name);
    classic_case(dir, name, 1);
}

static void classic_sts(const char *name)
{
    char dir[256];
    snprintf(dir, sizeof dir, DATA "/post-sts-token/%s", name);
    classic_case(dir, name, 1);
}

static void classic_norm_space(const char *name)
{
    classic_case(DATA "/normalize-path/get-space", name, 1);
}

static void classic_norm(const char *name)
{
    char dir[256];
    snprintf(dir, sizeof dir, DATA "/normalize-path/%s", name);
    classic_unnormalized(dir, name);
}

static void classic_form(const char *name)
{
    char dir[256];
    snprintf(dir, sizeof dir, DATA "/%s", name);
    classic_case(dir, name, 0);
}

static void crt_must(const char *name)
{
    crt_case(name, 0);
}

static void crt_norm(const char *name)
{
    crt_case(name, 1);
}

static const char *const classic_names[] = {"get-vanilla",
                                            "get-vanilla-query",
                                            "get-vanilla-empty-query-key",
                                            "get-vanilla-query-order-key",
                                            "get-vanilla-query-order-value",
                                            "get-vanilla-query-order-key-case",
                                            "get-vanilla-query-unreserved",
                                            "get-vanilla-utf8-query",
                                            "get-unreserved",
                                            "get-utf8",
                                            "get-header-key-duplicate",
                                            "get-header-value-order",
                                            "get-header-value-trim",
                                            "post-vanilla",
                                            "post-vanilla-query",
                                            "post-vanilla-empty-query-value",
                                            "post-header-key-case",
                                            "post-header-key-sort",
                                            "post-header-value-case"};

static const char *const normalizing_names[] = {
    "get-relative",        "get-relative-relative",   "get-slash",
    "get-slash-dot-slash", "get-slash-pointless-dot", "get-slashes"};

static const char *const crt_names[] = {"get-vanilla",
                                        "get-vanilla-query",
                                        "get-vanilla-empty-query-key",
                                        "get-vanilla-query-order-key-case",
                                        "get-vanilla-query-unreserved",
                                        "get-vanilla-utf8-query",
                                        "get-unreserved",
                                        "get-utf8",
                                        "get-header-key-duplicate",
                                        "get-header-value-order",
                                        "get-header-value-trim",
                                        "post-vanilla",
                                        "post-vanilla-query",
                                        "post-vanilla-empty-query-value",
                                        "post-header-key-case",
                                        "post-header-key-sort",
                                        "post-header-value-case",
                                        "post-sts-header-before",
                                        "post-sts-header-after",
                                        "get-vanilla-query-order-encoded",
                                        "get-vanilla-with-session-token",
                                        "post-x-www-form-urlencoded",
                                        "post-x-www-form-urlencoded-parameters",
                                        "get-space-unnormalized",
                                        "get-relative-unnormalized",
                                        "get-relative-relative-unnormalized",
                                        "get-slash-unnormalized",
                                        "get-slash-dot-slash-unnormalized",
                                        "get-slash-pointless-dot-unnormalized",
                                        "get-slashes-unnormalized"};

static const char *const crt_norm_names[] = {
    "get-space-normalized",  "get-relative-normalized",        "get-relative-relative-normalized",
    "get-slash-normalized",  "get-slash-dot-slash-normalized", "get-slash-pointless-dot-normalized",
    "get-slashes-normalized"};

#define COUNT(a) (sizeof(a) / sizeof((a)[0]))

static void run_vectors(void)
{
    char name[160];
    for (size_t i = 0; i < COUNT(classic_names); i++) {
        snprintf(name, sizeof name, "classic/%s", classic_names[i]);
        run_named(name, classic_must, classic_names[i]);
    }
    run_named("classic/post-sts-header-before", classic_sts, "post-sts-header-before");
    run_named("classic/post-sts-header-after", classic_sts, "post-sts-header-after");
    run_named("classic/normalize-path/get-space", classic_norm_space, "get-space");
    for (size_t i = 0; i < COUNT(normalizing_names); i++) {
        snprintf(name, sizeof name, "classic/normalize-path/%s (kept as sent)",
                 normalizing_names[i]);
        run_named(name, classic_norm, normalizing_names[i]);
    }
    run_named("classic/post-x-www-form-urlencoded (sts+authz)", classic_form,
              "post-x-www-form-urlencoded");
    printf("skip classic/get-header-value-multiline: obsolete line folding, the two suites "
           "disagree on it\n");
    printf("skip classic/post-x-www-form-urlencoded-parameters: its .creq moves the form "
           "body into the query (old SDK behaviour, not S3)\n");
    printf("skip aws-c-auth-v4/get-header-value-multiline: obsolete line folding\n");
    for (size_t i = 0; i < COUNT(crt_names); i++) {
        snprintf(name, sizeof name, "aws-c-auth-v4/%s", crt_names[i]);
        run_named(name, crt_must, crt_names[i]);
    }
    for (size_t i = 0; i < COUNT(crt_norm_names); i++) {
        snprintf(name, sizeof name, "aws-c-auth-v4/%s (kept as sent)", crt_norm_names[i]);
        run_named(name, crt_norm, crt_norm_names[i]);
    }
}

/* ---- S3 documentation examples ----------------------------------------- */

static const o7_sigv4_cred s3_cred = {
    "AKIAIOSFODNN7EXAMPLE", "wJalrXUtnFEMI/K7MDENG/bPxRfiCYEXAMPLEKEY", NULL, "us-east-1", "s3"};
static const time_t s3_time = 1369353600; /* 2013-05-24T00:00:00Z */
#define EMPTY_SHA "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define S3_HOST "examplebucket.s3.amazonaws.com"

static void check_creq_hash(const o7_sigv4_result *res, const char *want)
{
    char hex[65];
    o7_sha256_hex(res->canonical.data, res->canonical.len, hex);
    CHECK_STR(hex, want);
}

TEST(s3_doc_get_range)
{
    o7_sigv4_header hs[] = {{"Host", S3_HOST},
                            {"Range", "bytes=0-9"},
                            {"x-amz-content-sha256", EMPTY_SHA},
                            {"x-amz-date", "20130524T000000Z"}};
    o7_sigv4_req req = {"GET", "/test.txt", NULL, 0, hs, 4, EMPTY_SHA};
    o7_sigv4_result res = {0};
    CHECK_INT(o7_sigv4_sign_header(&s3_cred, &req, s3_time, &res), O7_OK);
    check_creq_hash(&res, "7344ae5b7ee6c3e7e6b0fe0640412a37625d1fbfff95c48bbb2dc43964946972");
    CHECK_STR(res.signature, "f0e8bdb87c964420e857bd35b5d6ed310bd44f0170aba48dd91039c6036bdb41");
    CHECK(strstr(res.authorization.data,
                 "SignedHeaders=host;range;x-amz-content-sha256;x-amz-date,") != NULL);
    o7_sigv4_result_free(&res);
}

TEST(s3_doc_presigned_get)
{
    o7_sigv4_header hs[] = {{"Host", S3_HOST}};
    o7_sigv4_req req = {"GET", "/test.txt", NULL, 0, hs, 1, "UNSIGNED-PAYLOAD"};
    o7_sigv4_result res = {0};
    CHECK_INT(o7_sigv4_sign_query(&s3_cred, &req, s3_time, 86400, 0, &res), O7_OK);
    const char *cq = "X-Amz-Algorithm=AWS4-HMAC-SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE"
                     "%2F20130524%2Fus-east-1%2Fs3%2Faws4_request&X-Amz-Date=20130524T000000Z"
                     "&X-Amz-Expires=86400&X-Amz-SignedHeaders=host";
    CHECK(strstr(res.canonical.data, cq) != NULL);
    check_creq_hash(&res, "3bfa292879f6447bbcda7001decf97f4a54dc650c8942174ae0a9121cf58ad04");
    CHECK_STR(res.signature, "aeeed9bbccd4d02ee5c0109b86d86835f995330da4c265957d157751f604d404");
    char url[1024];
    snprintf(url, sizeof url, "https://" S3_HOST "/test.txt?%s", res.query.data);
    CHECK_STR(url, "https://examplebucket.s3.amazonaws.com/test.txt?X-Amz-Algorithm=AWS4-HMAC-"
                   "SHA256&X-Amz-Credential=AKIAIOSFODNN7EXAMPLE%2F20130524%2Fus-east-1%2Fs3%2F"
                   "aws4_request&X-Amz-Date=20130524T000000Z&X-Amz-Expires=86400&X-Amz-"
                   "SignedHeaders=host&X-Amz-Signature=aeeed9bbccd4d02ee5c0109b86d86835f99533"
                   "0da4c265957d157751f604d404");
    o7_sigv4_result_free(&res);
}

TEST(s3_doc_put_object)
{
    const char *body = "Welcome to Amazon S3.";
    char hash[65];
    o7_sha256_hex(body, strlen(body), hash);
    CHECK_STR(hash, "44ce7dd67c959e0d3524ffac1771dfbba87d2b6b4b4e99e42034a8b803f8b072");
    o7_sigv4_header hs[] = {{"Host", S3_HOST},
                            {"Date", "Fri, 24 May 2013 00:00:00 GMT"},
                            {"x-amz-date", "20130524T000000Z"},
                            {"x-amz-storage-class", "REDUCED_REDUNDANCY"},
                            {"x-amz-content-sha256", hash}};
    o7_sigv4_req req = {"PUT", "/test$file.text", NULL, 0, hs, 5, hash};
    o7_sigv4_result res = {0};
    CHECK_INT(o7_sigv4_sign_header(&s3_cred, &req, s3_time, &res), O7_OK);
    CHECK(strncmp(res.canonical.data, "PUT\n/test%24file.text\n", 22) == 0);
    check_creq_hash(&res, "9e0e90d9c76de8fa5b200d8c849cd5b8dc7a3be3951ddb7f6a76b4158342019d");
    CHECK_STR(res.signature, "98ad721746da40c64f1a55b78f14c238d841ea1380cd77a1b5971af0ece108bd");
    o7_sigv4_result_free(&res);
}

TEST(s3_doc_get_lifecycle)
{
    o7_sigv4_header hs[] = {
        {"Host", S3_HOST}, {"x-amz-content-sha256", EMPTY_SHA}, {"x-amz-date", "20130524T000000Z"}};
    o7_sigv4_param ps[] = {{"lifecycle", NULL}};
    o7_sigv4_req req = {"GET", "/", ps, 1, hs, 3, EMPTY_SHA};
    o7_sigv4_result res = {0};
    CHECK_INT(o7_sigv4_sign_header(&s3_cred, &req, s3_time, &res), O7_OK);
    CHECK(strncmp(res.canonical.data, "GET\n/\nlifecycle=\n", 17) == 0);
    CHECK_STR(res.signature, "fea454ca298b7da1c68078a5d1bdbfbbe0d65c699e0f91ac7a200a0136783543");
    o7_sigv4_result_free(&res);
}

TEST(s3_doc_list_objects)
{
    o7_sigv4_header hs[] = {
        {"Host", S3_HOST}, {"x-amz-content-sha256", EMPTY_SHA}, {"x-amz-date", "20130524T000000Z"}};
    o7_sigv4_param ps[] = {{"prefix", "J"}, {"max-keys", "2"}};
    o7_sigv4_req req = {"GET", "/", ps, 2, hs, 3, EMPTY_SHA};
    o7_sigv4_result res = {0};
    CHECK_INT(o7_sigv4_sign_header(&s3_cred, &req, s3_time, &res), O7_OK);
    CHECK(strncmp(res.canonical.data, "GET\n/\nmax-keys=2&prefix=J\n", 26) == 0);
    CHECK_STR(res.signature, "34b48302e7b5fa45bde8084f4b7868a86f0a534bc59db6670ed5711ef69dc6f7");
    o7_sigv4_result_free(&res);
}

/* ---- the encoding rules on their own ------------------------------------ */

static char *enc(const char *s, int keep_slash)
{
    o7_buf b = O7_BUF_INIT;
    o7_sigv4_encode(&b, s, strlen(s), keep_slash);
    o7_buf_putc(&b, '\0');
    return o7_buf_steal(&b);
}

TEST(encode_plus_and_space_differ)
{
    char *a = enc("a+b", 1), *b = enc("a b", 1);
    CHECK_STR(a, "a%2Bb");
    CHECK_STR(b, "a%20b");
    free(a);
    free(b);
}

TEST(encode_keeps_path_as_sent)
{
    char *a = enc("/b/./x/../y//z/", 1);
    CHECK_STR(a, "/b/./x/../y//z/");
    free(a);
    a = enc("my backups/é~=:", 1);
    CHECK_STR(a, "my%20backups/%C3%A9~%3D%3A");
    free(a);
    a = enc("a/b", 0);
    CHECK_STR(a, "a%2Fb");
    free(a);
}

TEST(encode_query_sub_delims)
{
    o7_sigv4_param ps[] = {{"prefix", "x(1)*!'"}, {"b", ""}, {"a", "2"}, {"a", "1"}};
    o7_buf b = O7_BUF_INIT;
    CHECK_INT(o7_sigv4_canonical_query(&b, ps, 4), O7_OK);
    CHECK_STR(b.data, "a=1&a=2&b=&prefix=x%281%29%2A%21%27");
    o7_buf_free(&b);
}

TEST(amz_date_format)
{
    char d[17];
    o7_sigv4_amz_date(vector_time, d);
    CHECK_STR(d, "20150830T123600Z");
}

int main(void)
{
    run_vectors();
    RUN(s3_doc_get_range);
    RUN(s3_doc_presigned_get);
    RUN(s3_doc_put_object);
    RUN(s3_doc_get_lifecycle);
    RUN(s3_doc_list_objects);
    RUN(encode_plus_and_space_differ);
    RUN(encode_keeps_path_as_sent);
    RUN(encode_query_sub_delims);
    RUN(amz_date_format);
    return check_summary();
}
