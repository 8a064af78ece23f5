/* storage_s3.c - the S3 backend: objects in any S3 API (DigitalOcean Spaces,
 * AWS, MinIO...), signed with our own SigV4 core (sigv4.h) over libcurl.
 *
 * Small requests run one at a time on one easy handle; multipart parts run
 * s3_parallel at once on a multi handle. Both keep their connections. Every
 * request is signed afresh, also on a retry. Logs name the object, the
 * bytes and the parts; never a secret, an Authorization header or a URL
 * carrying a signature. */
#include "storage_s3.h"

#include "crypto.h"
#include "log.h"
#include "sigv4.h"
#include "storage.h"

#include <curl/curl.h>
#include <openssl/evp.h>

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

#define SUB "s3"
#define MAX_TRIES 6
#define BACKOFF_BASE_MS 250
#define BACKOFF_CAP_MS 8000
#define MAX_TTL 604800
#define EMPTY_SHA256 "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
#define MAX_XML (64L * 1024 * 1024)
#define WRITE_SLICE ((size_t)256 * 1024)

/* ---- the plan and the XML scanner (storage_s3.h) ------------------------ */

long long o7_s3_part_size(long long base, int n)
{
    long long size = base;
    for (int step = (n - 1) / O7_S3_PARTS_PER_STEP; step > 0 && size < O7_S3_MAX_PART; step--)
        size *= 2;
    return size < O7_S3_MAX_PART ? size : O7_S3_MAX_PART;
}

long o7_s3_plan_parts(long long base, unsigned long long size)
{
    unsigned long long covered = 0;
    long n = 0;
    while (covered < size || n == 0) {
        if (n == O7_S3_MAX_PARTS)
            return -1;
        n++;
        covered += (unsigned long long)o7_s3_part_size(base, (int)n);
    }
    return n;
}

/* Appends the character reference or entity at s (after '&', up to ';'). */
static o7_rc xml_entity(o7_buf *out, const char *s, size_t n)
{
    static const struct {
        const char *name;
        char c;
    } named[] = {{"amp", '&'}, {"lt", '<'}, {"gt", '>'}, {"quot", '"'}, {"apos", '\''}};
    for (size_t i = 0; i < sizeof named / sizeof named[0]; i++)
        if (strlen(named[i].name) == n && memcmp(named[i].name, s, n) == 0)
            return o7_buf_putc(out, named[i].c);
    if (n < 2 || n > 10 || s[0] != '#')
        return O7_ERR_CORRUPT;
    char num[12];
    memcpy(num, s + 1, n - 1);
    num[n - 1] = '\0';
    int hex = num[0] == 'x' || num[0] == 'X';
    char *end;
    errno = 0;
    unsigned long cp = strtoul(num + hex, &end, hex ? 16 : 10);
    if (errno || *end || end == num + hex || cp == 0 || cp > 0x10FFFF)
        return O7_ERR_CORRUPT;
    /* UTF-8 of the code point. */
    unsigned char u[4];
    size_t k;
    if (cp < 0x80) {
        u[0] = (unsigned char)cp, k = 1;
    } else if (cp < 0x800) {
        u[0] = (unsigned char)(0xC0 | cp >> 6), u[1] = (unsigned char)(0x80 | (cp & 63)), k = 2;
    } else if (cp < 0x10000) {
        u[0] = (unsigned char)(0xE0 | cp >> 12);
        u[1] = (unsigned char)(0x80 | ((cp >> 6) & 63));
        u[2] = (unsigned char)(0x80 | (cp & 63)), k = 3;
    } else {
        u[0] = (unsigned char)(0xF0 | cp >> 18);
        u[1] = (unsigned char)(0x80 | ((cp >> 12) & 63));
        u[2] = (unsigned char)(0x80 | ((cp >> 6) & 63));
        u[3] = (unsigned char)(0x80 | (cp & 63)), k = 4;
    }
    return o7_buf_append(out, u, k);
}

static o7_rc xml_decode(o7_buf *out, const char *s, size_t n)
{
    o7_rc rc = O7_OK;
    for (size_t i = 0; rc == O7_OK && i < n; i++) {
        if (s[i] != '&') {
            rc = o7_buf_putc(out, s[i]);
            continue;
        }
        const char *semi = memchr(s + i, ';', n - i);
        if (!semi)
            return O7_ERR_CORRUPT;
        rc = xml_entity(out, s + i + 1, (size_t)(semi - s - i - 1));
        i = (size_t)(semi - s);
    }
    return rc;
}

static const char *find_in(const char *hay, size_t len, const char *needle)
{
    size_t n = strlen(needle);
    for (size_t i = 0; n <= len && i <= len - n; i++)
        if (hay[i] == needle[0] && memcmp(hay + i, needle, n) == 0)
            return hay + i;
    return NULL;
}

/* Finds the next <tag>...</tag> from *pos; the value is decoded when
 * decode is set, else copied raw (for a block scanned again inside, so its
 * entities are decoded exactly once). */
static int xml_scan(const char *xml, size_t len, size_t *pos, const char *tag, o7_buf *out,
                    int decode)
{
    char open[80], close[80], empty[80];
    snprintf(open, sizeof open, "<%s>", tag);
    snprintf(close, sizeof close, "</%s>", tag);
    snprintf(empty, sizeof empty, "<%s/>", tag);
    o7_buf_reset(out);
    if (!xml || *pos > len)
        return 0;
    const char *base = xml + *pos;
    size_t left = len - *pos;
    const char *a = find_in(base, left, open), *e = find_in(base, left, empty);
    if (e && (!a || e < a)) {
        *pos = (size_t)(e - xml) + strlen(empty);
        return o7_buf_puts(out, "") == O7_OK;
    }
    if (!a)
        return 0;
    const char *v = a + strlen(open);
    const char *b = find_in(v, (size_t)(xml + len - v), close);
    if (!b)
        return 0;
    size_t n = (size_t)(b - v);
    o7_rc rc = decode ? xml_decode(out, v, n) : o7_buf_append(out, v, n);
    if (rc != O7_OK || o7_buf_puts(out, "") != O7_OK)
        return 0;
    *pos = (size_t)(b - xml) + strlen(close);
    return 1;
}

int o7_s3_xml_next(const char *xml, size_t len, size_t *pos, const char *tag, o7_buf *out)
{
    return xml_scan(xml, len, pos, tag, out, 1);
}

/* ---- types ------------------------------------------------------------ */

typedef struct s3_store {
    o7_storage base;
    char *bucket;
    char *prefix;   /* "" or ending in '/', taken literally */
    char *endpoint; /* as configured, no trailing '/' */
    char *scheme;   /* "http" or "https" */
    char *host;     /* host[:port] of the endpoint */
    char *region;
    char *access_key;
    char *secret_key;
    int virtual_host;
    long long part_size;
    int parallel;
    long long skew; /* seconds to add to our clock, learnt from the server */
    CURL *easy;
    CURLM *multi;
} s3_store;

/* One request: what to send and what came back. */
typedef struct s3_req {
    const char *method;
    const char *key; /* full key (prefix included); NULL for the bucket */
    o7_sigv4_param params[4];
    size_t nparams;
    const char *body;
    size_t body_len, body_off;
    const char *payload_sha; /* NULL: hash of body */
    int acl_private;
    /* response */
    struct curl_slist *headers;
    CURLcode cc;
    long status;
    o7_buf resp;
    o7_sink_fn sink;
    void *ud;
    o7_rc sink_rc;
    uint64_t delivered;
    char etag[96];
    char date[64];
    char last_modified[64];
    uint64_t content_length;
    int have_length;
} s3_req;

enum outcome { OUT_OK, OUT_RETRY, OUT_SKEW, OUT_NOTFOUND, OUT_FAIL };

/* ---- opening ---------------------------------------------------------- */

static int is_loopback(const char *host)
{
    size_t n = strcspn(host, ":");
    if (host[0] == '[')
        return strncmp(host, "[::1]", 5) == 0;
    if (n == 9 && strncmp(host, "localhost", 9) == 0)
        return 1;
    if (n > 10 && strncmp(host + n - 10, ".localhost", 10) == 0)
        return 1;
    return strncmp(host, "127.", 4) == 0;
}

static o7_rc parse_url(s3_store *s, const char *url, o7_err *err)
{
    const char *b = url + 5; /* after "s3://" */
    size_t blen = strcspn(b, "/");
    if (blen == 0)
        return o7_fail(err, O7_ERR_CONFIG, "storage url %s names no bucket", url);
    s->bucket = strndup(b, blen);
    const char *p = b + blen + (b[blen] == '/');
    size_t plen = strlen(p);
    s->prefix = malloc(plen + 2);
    if (!s->bucket || !s->prefix)
        return O7_ERR_NOMEM;
    memcpy(s->prefix, p, plen + 1);
    if (plen > 0 && p[plen - 1] != '/')
        memcpy(s->prefix + plen, "/", 2);
    return O7_OK;
}

static o7_rc parse_endpoint(s3_store *s, const char *ep, o7_err *err)
{
    if (!ep || !*ep)
        return o7_fail(err, O7_ERR_CONFIG, "[storage] s3_endpoint is not set");
    const char *rest;
    if (strncmp(ep, "https://", 8) == 0) {
        s->scheme = strdup("https"), rest = ep + 8;
    } else if (strncmp(ep, "http://", 7) == 0) {
        s->scheme = strdup("http"), rest = ep + 7;
    } else {
        return o7_fail(err, O7_ERR_CONFIG,
                       "s3_endpoint %s must start with https:// (or http:// for a local "
                       "test server)",
                       ep);
    }
    size_t hlen = strcspn(rest, "/?#");
    if (hlen == 0 || (rest[hlen] && strcmp(rest + hlen, "/") != 0))
        return o7_fail(err, O7_ERR_CONFIG,
                       "s3_endpoint %s must be a scheme and a host, with no path", ep);
    s->host = strndup(rest, hlen);
    s->endpoint = strndup(ep, (size_t)(rest - ep) + hlen);
    if (!s->scheme || !s->host || !s->endpoint)
        return O7_ERR_NOMEM;
    if (strcmp(s->scheme, "http") == 0 && !is_loopback(s->host))
        return o7_fail(err, O7_ERR_CONFIG,
                       "s3_endpoint %s uses plain http; only a loopback test server may "
                       "(use https://)",
                       ep);
    return O7_OK;
}

static o7_rc check_part_size(s3_store *s, const o7_conf *conf, o7_err *err)
{
    s->part_size = conf->s3_part_size > 0 ? conf->s3_part_size : 8LL * 1024 * 1024;
    const char *tiny = getenv("O7_TEST_TINY_PARTS");
    int tiny_ok = tiny && strcmp(tiny, "1") == 0;
    if (s->part_size < O7_S3_MIN_PART && !tiny_ok)
        return o7_fail(err, O7_ERR_CONFIG, "s3_part_size %lld is below S3's minimum part of 5 MiB",
                       s->part_size);
    if (s->part_size > O7_S3_MAX_PART)
        return o7_fail(err, O7_ERR_CONFIG, "s3_part_size %lld is above S3's 5 GiB part limit",
                       s->part_size);
    s->parallel = conf->s3_parallel > 0 ? conf->s3_parallel : 4;
    if (s->parallel > 64)
        s->parallel = 64;
    return O7_OK;
}

static void s3_close(o7_storage *st)
{
    s3_store *s = (s3_store *)st;
    if (!s)
        return;
    if (s->easy)
        curl_easy_cleanup(s->easy);
    if (s->multi)
        curl_multi_cleanup(s->multi);
    if (s->secret_key) {
        o7_wipe(s->secret_key, strlen(s->secret_key));
        free(s->secret_key);
    }
    free(s->bucket);
    free(s->prefix);
    free(s->endpoint);
    free(s->scheme);
    free(s->host);
    free(s->region);
    free(s->access_key);
    free(s);
    curl_global_cleanup();
}

static o7_rc s3_open(const o7_conf *conf, o7_storage **out, o7_err *err)
{
    if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
        return o7_fail(err, O7_ERR_INTERNAL, "libcurl could not start");
    s3_store *s = calloc(1, sizeof *s);
    if (!s) {
        curl_global_cleanup();
        return O7_ERR_NOMEM;
    }
    o7_rc rc = parse_url(s, conf->storage_url, err);
    if (rc == O7_OK)
        rc = parse_endpoint(s, conf->s3_endpoint, err);
    if (rc == O7_OK)
        rc = check_part_size(s, conf, err);
    if (rc == O7_OK && (!conf->s3_access_key || !*conf->s3_access_key || !conf->s3_secret_key ||
                        !*conf->s3_secret_key))
        rc = o7_fail(err, O7_ERR_CONFIG,
                     "storage %s needs an access key and a secret key (s3_access_key, "
                     "s3_secret_key or AWS_ACCESS_KEY_ID, AWS_SECRET_ACCESS_KEY)",
                     conf->storage_url);
    if (rc == O7_OK) {
        s->region = strdup(conf->s3_region && *conf->s3_region ? conf->s3_region : "us-east-1");
        s->access_key = strdup(conf->s3_access_key);
        s->secret_key = strdup(conf->s3_secret_key);
        s->virtual_host = conf->s3_virtual;
        s->easy = curl_easy_init();
        s->multi = curl_multi_init();
        if (!s->region || !s->access_key || !s->secret_key || !s->easy || !s->multi)
            rc = o7_fail(err, O7_ERR_NOMEM, "out of memory opening %s", conf->storage_url);
    }
    if (rc != O7_OK) {
        s3_close(&s->base);
        return rc;
    }
    snprintf(s->base.describe, sizeof s->base.describe, "s3://%s/%s at %s", s->bucket, s->prefix,
             s->endpoint);
    *out = &s->base;
    return O7_OK;
}

/* ---- building and signing a request ----------------------------------- */

static time_t s3_now(const s3_store *s)
{
    return time(NULL) + (time_t)s->skew;
}

/* The raw (unencoded) path and the Host header value of a request. */
static o7_rc req_target(const s3_store *s, const char *key, o7_buf *path, o7_buf *host)
{
    o7_rc rc;
    if (s->virtual_host) {
        rc = o7_buf_printf(host, "%s.%s", s->bucket, s->host);
        if (rc == O7_OK)
            rc = o7_buf_printf(path, "/%s", key ? key : "");
    } else {
        rc = o7_buf_puts(host, s->host);
        /* No trailing '/' on a bare bucket: some servers refuse "/bucket/". */
        if (rc == O7_OK)
            rc = key ? o7_buf_printf(path, "/%s/%s", s->bucket, key)
                     : o7_buf_printf(path, "/%s", s->bucket);
    }
    return rc;
}

/* The URL: scheme://host + the path encoded once + the canonical query.
 * Sending exactly what was signed keeps client and server in step. */
static o7_rc req_url(const s3_store *s, const char *host, const char *path,
                     const o7_sigv4_param *ps, size_t n, const char *signed_query, o7_buf *url)
{
    o7_rc rc = o7_buf_printf(url, "%s://%s", s->scheme, host);
    if (rc == O7_OK)
        rc = o7_sigv4_encode(url, path, strlen(path), 1);
    if (rc == O7_OK && signed_query) {
        rc = o7_buf_printf(url, "?%s", signed_query);
    } else if (rc == O7_OK && n > 0) {
        rc = o7_buf_putc(url, '?');
        if (rc == O7_OK)
            rc = o7_sigv4_canonical_query(url, ps, n);
    }
    return rc;
}

static o7_rc add_header(struct curl_slist **list, const char *name, const char *value)
{
    char line[2048];
    snprintf(line, sizeof line, "%s: %s", name, value);
    struct curl_slist *l = curl_slist_append(*list, line);
    if (!l)
        return O7_ERR_NOMEM;
    *list = l;
    return O7_OK;
}

/* Signs req at the current (corrected) time and fills the header list. */
static o7_rc sign_req(const s3_store *s, s3_req *r, const char *host, const char *path)
{
    char amz_date[17], sha[65];
    o7_sigv4_amz_date(s3_now(s), amz_date);
    if (r->payload_sha)
        snprintf(sha, sizeof sha, "%s", r->payload_sha);
    else
        o7_sha256_hex(r->body ? r->body : "", r->body_len, sha);
    o7_sigv4_header hs[4] = {
        {"host", host}, {"x-amz-content-sha256", sha}, {"x-amz-date", amz_date}};
    size_t nh = 3;
    if (r->acl_private)
        hs[nh++] = (o7_sigv4_header){"x-amz-acl", "private"};
    o7_sigv4_cred cred = {s->access_key, s->secret_key, NULL, s->region, "s3"};
    o7_sigv4_req sreq = {r->method, path, r->params, r->nparams, hs, nh, sha};
    o7_sigv4_result res = {0};
    o7_rc rc = o7_sigv4_sign_header(&cred, &sreq, s3_now(s), &res);
    for (size_t i = 1; rc == O7_OK && i < nh; i++)
        rc = add_header(&r->headers, hs[i].name, hs[i].value);
    if (rc == O7_OK)
        rc = add_header(&r->headers, "Authorization", res.authorization.data);
    /* No "Expect: 100-continue" round trip before each part. */
    if (rc == O7_OK)
        rc = add_header(&r->headers, "Expect", "");
    if (rc == O7_OK && s->virtual_host)
        rc = add_header(&r->headers, "Host", host);
    o7_sigv4_result_free(&res);
    return rc;
}

/* ---- libcurl callbacks ------------------------------------------------ */

static size_t on_read(char *buf, size_t size, size_t nitems, void *ud)
{
    s3_req *r = ud;
    size_t n = size * nitems, left = r->body_len - r->body_off;
    if (n > left)
        n = left;
    if (n)
        memcpy(buf, r->body + r->body_off, n);
    r->body_off += n;
    return n;
}

static size_t on_write(char *data, size_t size, size_t nmemb, void *ud)
{
    s3_req *r = ud;
    size_t n = size * nmemb;
    /* Only a 2xx body reaches the sink; an error body is kept to read. */
    if (r->sink && r->status >= 200 && r->status < 300) {
        r->sink_rc = r->sink(r->ud, data, n);
        if (r->sink_rc != O7_OK)
            return 0;
        r->delivered += n;
        return n;
    }
    if (r->resp.len + n > (size_t)MAX_XML || o7_buf_append(&r->resp, data, n) != O7_OK)
        return 0;
    return n;
}

static void copy_value(char *dst, size_t cap, const char *v, size_t n)
{
    while (n > 0 && (v[n - 1] == '\r' || v[n - 1] == '\n' || v[n - 1] == ' '))
        n--;
    while (n > 0 && *v == ' ')
        v++, n--;
    if (n >= 2 && v[0] == '"' && v[n - 1] == '"')
        v++, n -= 2;
    if (n >= cap)
        n = cap - 1;
    memcpy(dst, v, n);
    dst[n] = '\0';
}

static size_t on_header(char *data, size_t size, size_t nitems, void *ud)
{
    s3_req *r = ud;
    size_t n = size * nitems;
    if (n > 5 && strncmp(data, "HTTP/", 5) == 0) {
        /* A new response (e.g. after 100 Continue): learn its status now so
         * the body callback can decide where the bytes go. */
        long code = 0;
        const char *sp = memchr(data, ' ', n);
        if (sp)
            code = strtol(sp + 1, NULL, 10);
        r->status = code;
        return n;
    }
    const char *colon = memchr(data, ':', n);
    if (!colon)
        return n;
    size_t nl = (size_t)(colon - data);
    const char *v = colon + 1;
    size_t vl = n - nl - 1;
    if (nl == 4 && strncasecmp(data, "etag", 4) == 0) {
        copy_value(r->etag, sizeof r->etag, v, vl);
    } else if (nl == 4 && strncasecmp(data, "date", 4) == 0) {
        copy_value(r->date, sizeof r->date, v, vl);
    } else if (nl == 13 && strncasecmp(data, "last-modified", 13) == 0) {
        copy_value(r->last_modified, sizeof r->last_modified, v, vl);
    } else if (nl == 14 && strncasecmp(data, "content-length", 14) == 0) {
        char num[32];
        copy_value(num, sizeof num, v, vl);
        char *end;
        errno = 0;
        unsigned long long len = strtoull(num, &end, 10);
        r->have_length = !errno && end != num && *end == '\0';
        r->content_length = len;
    }
    return n;
}

/* ---- one request: prepare, perform, judge ------------------------------ */

static void req_reset_response(s3_req *r)
{
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    o7_buf_reset(&r->resp);
    r->cc = CURLE_OK;
    r->status = 0;
    r->body_off = 0;
    r->sink_rc = O7_OK;
    r->etag[0] = r->date[0] = r->last_modified[0] = '\0';
    r->content_length = 0;
    r->have_length = 0;
}

static void req_free(s3_req *r)
{
    curl_slist_free_all(r->headers);
    r->headers = NULL;
    o7_buf_free(&r->resp);
}

/* Sets every option of easy for r, signed now. */
static o7_rc req_prepare(s3_store *s, CURL *easy, s3_req *r)
{
    o7_buf path = O7_BUF_INIT, host = O7_BUF_INIT, url = O7_BUF_INIT;
    req_reset_response(r);
    o7_rc rc = req_target(s, r->key, &path, &host);
    if (rc == O7_OK)
        rc = req_url(s, host.data, path.data, r->params, r->nparams, NULL, &url);
    if (rc == O7_OK)
        rc = sign_req(s, r, host.data, path.data);
    if (rc == O7_OK) {
        curl_easy_reset(easy);
        curl_easy_setopt(easy, CURLOPT_URL, url.data);
        curl_easy_setopt(easy, CURLOPT_PATH_AS_IS, 1L);
        curl_easy_setopt(easy, CURLOPT_PROTOCOLS_STR, "http,https");
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYPEER, 1L);
        curl_easy_setopt(easy, CURLOPT_SSL_VERIFYHOST, 2L);
        curl_easy_setopt(easy, CURLOPT_NOSIGNAL, 1L);
        curl_easy_setopt(easy, CURLOPT_CONNECTTIMEOUT, 15L);
        /* A stalled transfer (under 1 KiB/s for 30 s) is a timeout. */
        curl_easy_setopt(easy, CURLOPT_LOW_SPEED_LIMIT, 1024L);
        curl_easy_setopt(easy, CURLOPT_LOW_SPEED_TIME, 30L);
        curl_easy_setopt(easy, CURLOPT_HTTPHEADER, r->headers);
        curl_easy_setopt(easy, CURLOPT_CUSTOMREQUEST, r->method);
        curl_easy_setopt(easy, CURLOPT_WRITEFUNCTION, on_write);
        curl_easy_setopt(easy, CURLOPT_WRITEDATA, r);
        curl_easy_setopt(easy, CURLOPT_HEADERFUNCTION, on_header);
        curl_easy_setopt(easy, CURLOPT_HEADERDATA, r);
        curl_easy_setopt(easy, CURLOPT_PRIVATE, r);
        if (strcmp(r->method, "HEAD") == 0)
            curl_easy_setopt(easy, CURLOPT_NOBODY, 1L);
        if (strcmp(r->method, "PUT") == 0 || strcmp(r->method, "POST") == 0) {
            curl_easy_setopt(easy, CURLOPT_UPLOAD, 1L);
            curl_easy_setopt(easy, CURLOPT_READFUNCTION, on_read);
            curl_easy_setopt(easy, CURLOPT_READDATA, r);
            curl_easy_setopt(easy, CURLOPT_INFILESIZE_LARGE, (curl_off_t)r->body_len);
            /* Fewer, larger reads and sends than the 64 KiB default. */
            curl_easy_setopt(easy, CURLOPT_UPLOAD_BUFFERSIZE, 512L * 1024);
        }
    }
    o7_wipe(url.data, url.len);
    o7_buf_free(&path);
    o7_buf_free(&host);
    o7_buf_free(&url);
    return rc;
}

/* The <Code> of an S3 error body, or "" when there is none. */
static void error_code(const s3_req *r, char *code, size_t cap)
{
    o7_buf v = O7_BUF_INIT;
    size_t pos = 0;
    code[0] = '\0';
    if (r->resp.len && o7_s3_xml_next(r->resp.data, r->resp.len, &pos, "Code", &v))
        snprintf(code, cap, "%s", v.data);
    o7_buf_free(&v);
}

static int transient_curl(CURLcode cc)
{
    switch (cc) {
    case CURLE_COULDNT_CONNECT:
    case CURLE_OPERATION_TIMEDOUT:
    case CURLE_SEND_ERROR:
    case CURLE_RECV_ERROR:
    case CURLE_GOT_NOTHING:
    case CURLE_PARTIAL_FILE:
    case CURLE_SSL_CONNECT_ERROR:
    case CURLE_HTTP2:
    case CURLE_HTTP2_STREAM: return 1;
    default: return 0;
    }
}

static enum outcome classify(const s3_req *r)
{
    if (r->cc != CURLE_OK)
        return transient_curl(r->cc) && r->delivered == 0 ? OUT_RETRY : OUT_FAIL;
    if (r->status >= 200 && r->status < 300)
        return OUT_OK;
    if (r->status == 404 && r->resp.len == 0)
        return OUT_NOTFOUND;
    char code[64];
    error_code(r, code, sizeof code);
    if (strcmp(code, "NoSuchKey") == 0 || (r->status == 404 && strcmp(code, "NoSuchBucket")))
        return OUT_NOTFOUND;
    if (strcmp(code, "RequestTimeTooSkewed") == 0)
        return OUT_SKEW;
    /* 501 Not Implemented and 505 will not change on a retry. */
    if ((r->status >= 500 && r->status != 501 && r->status != 505) || r->status == 429 ||
        strcmp(code, "SlowDown") == 0 ||
        strcmp(code, "RequestTimeout") == 0 || strcmp(code, "InternalError") == 0)
        return OUT_RETRY;
    return OUT_FAIL;
}

/* Learns the server's clock from its Date header. Returns 1 when it did. */
static int learn_skew(s3_store *s, const s3_req *r)
{
    time_t server = r->date[0] ? curl_getdate(r->date, NULL) : -1;
    if (server <= 0)
        return 0;
    s->skew = (long long)(server - time(NULL));
    o7_warn(SUB, "clock differs from %s by %lld s; correcting and retrying", s->endpoint, s->skew);
    return 1;
}

/* What to tell the operator to check, by S3 error code. */
static const char *hint_for(const char *code, long status)
{
    if (!strcmp(code, "SignatureDoesNotMatch") || !strcmp(code, "InvalidAccessKeyId"))
        return "check the access key and secret key";
    if (!strcmp(code, "AccessDenied"))
        return "check that the credentials may use this bucket";
    if (!strcmp(code, "NoSuchBucket"))
        return "check the bucket name";
    if (!strcmp(code, "AuthorizationHeaderMalformed") || !strcmp(code, "PermanentRedirect") ||
        status == 301)
        return "check the region (s3_region) and the endpoint";
    return "check the credentials, the bucket name and the region";
}

static o7_rc fail_req(const s3_store *s, const s3_req *r, const char *what, const char *key,
                      o7_err *err)
{
    if (r->sink_rc != O7_OK)
        return r->sink_rc;
    if (r->cc != CURLE_OK)
        return o7_fail(err, O7_ERR_STORAGE,
                       "could not %s %s in bucket %s at %s: %s; check the endpoint and the "
                       "network",
                       what, key ? key : "", s->bucket, s->endpoint, curl_easy_strerror(r->cc));
    char code[64];
    error_code(r, code, sizeof code);
    if (r->status == 501)
        return o7_fail(err, O7_ERR_STORAGE,
                       "the S3 server at %s does not implement what o7 asked (%s%s%s in bucket "
                       "%s: HTTP 501)",
                       s->endpoint, what, key && *key ? " " : "", key ? key : "", s->bucket);
    return o7_fail(err, O7_ERR_STORAGE, "S3 refused to %s%s%s in bucket %s at %s (HTTP %ld%s%s); %s",
                   what, key && *key ? " " : "", key ? key : "", s->bucket, s->endpoint,
                   r->status, code[0] ? " " : "", code, hint_for(code, r->status));
}

static long backoff_ms(int attempt)
{
    long cap = BACKOFF_BASE_MS << (attempt < 6 ? attempt : 6);
    if (cap > BACKOFF_CAP_MS)
        cap = BACKOFF_CAP_MS;
    unsigned short rnd = 0;
    if (o7_random(&rnd, sizeof rnd) != O7_OK)
        rnd = 0x7fff;
    /* Between half and all of the cap: spread, never zero. */
    return cap / 2 + (long)(rnd % (unsigned long)(cap / 2 + 1));
}

static void sleep_ms(long ms)
{
    struct timespec ts = {ms / 1000, (ms % 1000) * 1000000L};
    while (nanosleep(&ts, &ts) != 0 && errno == EINTR) {
    }
}

/* Runs r on the store's easy handle with retries. OUT_OK and OUT_NOTFOUND
 * come back as O7_OK / O7_ERR_NOTFOUND; the rest fail with a sentence. */
static o7_rc perform(s3_store *s, s3_req *r, const char *what, o7_err *err)
{
    int skew_fixed = 0;
    for (int attempt = 0;; attempt++) {
        o7_rc rc = req_prepare(s, s->easy, r);
        if (rc != O7_OK)
            return o7_fail(err, rc, "could not prepare a request for %s", s->base.describe);
        r->cc = curl_easy_perform(s->easy);
        curl_easy_getinfo(s->easy, CURLINFO_RESPONSE_CODE, &r->status);
        enum outcome o = classify(r);
        if (o == OUT_OK)
            return O7_OK;
        if (o == OUT_NOTFOUND)
            return O7_ERR_NOTFOUND;
        if (o == OUT_SKEW && !skew_fixed && learn_skew(s, r)) {
            skew_fixed = 1;
            attempt--;
            continue;
        }
        if (o != OUT_RETRY || attempt + 1 >= MAX_TRIES)
            return fail_req(s, r, what, r->key, err);
        long ms = backoff_ms(attempt);
        o7_warn(SUB, "%s %s: HTTP %ld%s, retry %d of %d in %ld ms", what,
                r->key ? r->key : s->bucket, r->status, r->cc ? " (transfer failed)" : "",
                attempt + 1, MAX_TRIES - 1, ms);
        sleep_ms(ms);
    }
}

/* The key rules of storage.h: no empty key, no leading '/', no empty,
 * "." or ".." part. S3 itself would take them, but o7 never makes such
 * keys, so one is a bug to report, not to store. */
static o7_rc check_key(const s3_store *s, const char *key, o7_err *err)
{
    const char *part = key;
    int bad = !key || !*key;
    while (!bad) {
        size_t n = strcspn(part, "/");
        bad = n == 0 || (n == 1 && part[0] == '.') || (n == 2 && !strncmp(part, "..", 2));
        if (!part[n])
            break;
        part += n + 1;
    }
    if (bad)
        return o7_fail(err, O7_ERR_STORAGE, "key \"%s\" is not a valid object key for %s",
                       key ? key : "", s->base.describe);
    return O7_OK;
}

static char *full_key(const s3_store *s, const char *key)
{
    size_t a = strlen(s->prefix), b = strlen(key);
    char *k = malloc(a + b + 1);
    if (k) {
        memcpy(k, s->prefix, a);
        memcpy(k + a, key, b + 1);
    }
    return k;
}

static void md5_hex(const void *data, size_t len, char out[33])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int n = 0;
    if (EVP_Digest(data, len, md, &n, EVP_md5(), NULL) != 1 || n != 16) {
        out[0] = '\0';
        return;
    }
    o7_hex(md, 16, out);
}

/* ---- get / head / delete / presign ------------------------------------ */

static o7_rc s3_get(o7_storage *st, const char *key, o7_sink_fn sink, void *ud, o7_err *err)
{
    s3_store *s = (s3_store *)st;
    s3_req r = {.method = "GET", .sink = sink, .ud = ud};
    if (check_key(s, key, err) != O7_OK)
        return O7_ERR_STORAGE;
    char *k = full_key(s, key);
    if (!k)
        return O7_ERR_NOMEM;
    r.key = k;
    o7_rc rc = perform(s, &r, "read", err);
    if (rc == O7_ERR_NOTFOUND)
        o7_fail(err, rc, "no object %s in %s", key, s->base.describe);
    else if (rc == O7_OK)
        o7_debug(SUB, "read %s (%llu bytes)", key, (unsigned long long)r.delivered);
    req_free(&r);
    free(k);
    return rc;
}

static o7_rc head_full(s3_store *s, const char *k, o7_object_info *info, s3_req *r, o7_err *err)
{
    r->method = "HEAD";
    r->key = k;
    o7_rc rc = perform(s, r, "look up", err);
    if (rc != O7_OK)
        return rc;
    memset(info, 0, sizeof *info);
    info->size = r->content_length;
    snprintf(info->etag, sizeof info->etag, "%s", r->etag);
    time_t t = r->last_modified[0] ? curl_getdate(r->last_modified, NULL) : 0;
    info->mtime = t > 0 ? (int64_t)t : 0;
    return O7_OK;
}

static o7_rc s3_head(o7_storage *st, const char *key, o7_object_info *info, o7_err *err)
{
    s3_store *s = (s3_store *)st;
    s3_req r = {0};
    if (check_key(s, key, err) != O7_OK)
        return O7_ERR_STORAGE;
    char *k = full_key(s, key);
    if (!k)
        return O7_ERR_NOMEM;
    o7_rc rc = head_full(s, k, info, &r, err);
    if (rc == O7_ERR_NOTFOUND)
        o7_fail(err, rc, "no object %s in %s", key, s->base.describe);
    info->key = key;
    req_free(&r);
    free(k);
    return rc;
}

static o7_rc s3_del(o7_storage *st, const char *key, o7_err *err)
{
    s3_store *s = (s3_store *)st;
    s3_req r = {.method = "DELETE"};
    if (check_key(s, key, err) != O7_OK)
        return O7_ERR_STORAGE;
    char *k = full_key(s, key);
    if (!k)
        return O7_ERR_NOMEM;
    r.key = k;
    o7_rc rc = perform(s, &r, "delete", err);
    if (rc == O7_ERR_NOTFOUND)
        rc = O7_OK;
    if (rc == O7_OK)
        o7_info(SUB, "deleted %s", key);
    req_free(&r);
    free(k);
    return rc;
}

static o7_rc s3_presign(o7_storage *st, const char *key, int ttl, char **url, o7_err *err)
{
    s3_store *s = (s3_store *)st;
    if (ttl < 1 || ttl > MAX_TTL)
        return o7_fail(err, O7_ERR_USAGE,
                       "a pre-signed link lives 1 to %d seconds (7 days), not %d", MAX_TTL, ttl);
    if (check_key(s, key, err) != O7_OK)
        return O7_ERR_STORAGE;
    o7_buf path = O7_BUF_INIT, host = O7_BUF_INIT, out = O7_BUF_INIT;
    o7_sigv4_result res = {0};
    char *k = full_key(s, key);
    o7_rc rc = k ? req_target(s, k, &path, &host) : O7_ERR_NOMEM;
    if (rc == O7_OK) {
        o7_sigv4_header hs[] = {{"host", host.data}};
        o7_sigv4_cred cred = {s->access_key, s->secret_key, NULL, s->region, "s3"};
        o7_sigv4_req req = {"GET", path.data, NULL, 0, hs, 1, "UNSIGNED-PAYLOAD"};
        rc = o7_sigv4_sign_query(&cred, &req, s3_now(s), ttl, 0, &res);
    }
    if (rc == O7_OK)
        rc = req_url(s, host.data, path.data, NULL, 0, res.query.data, &out);
    if (rc == O7_OK) {
        *url = o7_buf_steal(&out);
        o7_info(SUB, "pre-signed a link to %s for %d s", key, ttl);
    } else {
        o7_fail(err, rc, "could not pre-sign a link to %s", key);
    }
    o7_sigv4_result_free(&res);
    o7_buf_free(&path);
    o7_buf_free(&host);
    o7_buf_free(&out);
    free(k);
    return rc;
}

/* ---- list ------------------------------------------------------------- */

/* Calls fn for each <Contents> of one ListObjectsV2 page. */
static o7_rc list_page(const s3_store *s, const o7_buf *xml, o7_list_fn fn, void *ud, o7_err *err)
{
    o7_buf item = O7_BUF_INIT, v = O7_BUF_INIT;
    size_t pos = 0;
    o7_rc rc = O7_OK;
    size_t plen = strlen(s->prefix);
    while (rc == O7_OK && xml_scan(xml->data, xml->len, &pos, "Contents", &item, 0)) {
        o7_object_info info = {0};
        size_t p = 0;
        if (!o7_s3_xml_next(item.data, item.len, &p, "Key", &v) ||
            strncmp(v.data, s->prefix, plen) != 0) {
            rc = o7_fail(err, O7_ERR_CORRUPT, "a listing of %s held a key outside its prefix",
                         s->base.describe);
            break;
        }
        char *key = strdup(v.data + plen);
        p = 0;
        if (o7_s3_xml_next(item.data, item.len, &p, "Size", &v))
            info.size = strtoull(v.data, NULL, 10);
        p = 0;
        if (o7_s3_xml_next(item.data, item.len, &p, "ETag", &v))
            copy_value(info.etag, sizeof info.etag, v.data, v.len);
        p = 0;
        if (o7_s3_xml_next(item.data, item.len, &p, "LastModified", &v)) {
            struct tm tm = {0};
            if (strptime(v.data, "%Y-%m-%dT%H:%M:%S", &tm))
                info.mtime = (int64_t)timegm(&tm);
        }
        info.key = key;
        rc = key ? fn(ud, &info) : O7_ERR_NOMEM;
        free(key);
    }
    o7_buf_free(&item);
    o7_buf_free(&v);
    return rc;
}

static o7_rc s3_list(o7_storage *st, const char *prefix, o7_list_fn fn, void *ud, o7_err *err)
{
    s3_store *s = (s3_store *)st;
    char *full = full_key(s, prefix ? prefix : "");
    o7_buf token = O7_BUF_INIT, v = O7_BUF_INIT;
    if (!full)
        return O7_ERR_NOMEM;
    o7_rc rc = O7_OK;
    int more = 1, pages = 0;
    while (rc == O7_OK && more) {
        s3_req r = {
            .method = "GET", .params = {{"list-type", "2"}, {"prefix", full}}, .nparams = 2};
        if (token.len)
            r.params[r.nparams++] = (o7_sigv4_param){"continuation-token", token.data};
        rc = perform(s, &r, "list", err);
        if (rc == O7_ERR_NOTFOUND)
            rc = o7_fail(err, O7_ERR_STORAGE,
                         "bucket %s at %s was not found; check the "
                         "bucket name and the region",
                         s->bucket, s->endpoint);
        if (rc == O7_OK)
            rc = list_page(s, &r.resp, fn, ud, err);
        size_t pos = 0;
        more = rc == O7_OK && o7_s3_xml_next(r.resp.data, r.resp.len, &pos, "IsTruncated", &v) &&
               strcmp(v.data, "true") == 0;
        pos = 0;
        if (more && o7_s3_xml_next(r.resp.data, r.resp.len, &pos, "NextContinuationToken", &v)) {
            o7_buf_reset(&token);
            rc = o7_buf_puts(&token, v.data);
        } else if (more) {
            rc = o7_fail(err, O7_ERR_CORRUPT, "a truncated listing of %s gave no continuation",
                         s->base.describe);
        }
        pages++;
        req_free(&r);
    }
    o7_debug(SUB, "listed %s under %s in %d pages", prefix ? prefix : "", s->bucket, pages);
    o7_buf_free(&token);
    o7_buf_free(&v);
    free(full);
    return rc;
}

/* ---- gc: abort stale multipart uploads -------------------------------- */

static o7_rc abort_upload(s3_store *s, const char *key, const char *upload_id, o7_err *err)
{
    s3_req r = {.method = "DELETE", .key = key, .params = {{"uploadId", upload_id}}, .nparams = 1};
    o7_rc rc = perform(s, &r, "abort the upload of", err);
    if (rc == O7_ERR_NOTFOUND)
        rc = O7_OK;
    req_free(&r);
    return rc;
}

static o7_rc gc_page(s3_store *s, const o7_buf *xml, int64_t max_age, int *aborted, o7_err *err)
{
    o7_buf up = O7_BUF_INIT, key = O7_BUF_INIT, id = O7_BUF_INIT, when = O7_BUF_INIT;
    size_t pos = 0;
    o7_rc rc = O7_OK;
    time_t now = s3_now(s);
    while (rc == O7_OK && xml_scan(xml->data, xml->len, &pos, "Upload", &up, 0)) {
        size_t p1 = 0, p2 = 0, p3 = 0;
        if (!o7_s3_xml_next(up.data, up.len, &p1, "Key", &key) ||
            !o7_s3_xml_next(up.data, up.len, &p2, "UploadId", &id) ||
            !o7_s3_xml_next(up.data, up.len, &p3, "Initiated", &when))
            continue;
        struct tm tm = {0};
        if (!strptime(when.data, "%Y-%m-%dT%H:%M:%S", &tm))
            continue;
        if ((int64_t)(now - timegm(&tm)) <= max_age)
            continue;
        rc = abort_upload(s, key.data, id.data, err);
        if (rc == O7_OK) {
            (*aborted)++;
            o7_info(SUB, "aborted a stale multipart upload of %s started %s", key.data, when.data);
        }
    }
    o7_buf_free(&up);
    o7_buf_free(&key);
    o7_buf_free(&id);
    o7_buf_free(&when);
    return rc;
}

static o7_rc s3_gc(o7_storage *st, int64_t max_age, o7_err *err)
{
    s3_store *s = (s3_store *)st;
    o7_buf kmark = O7_BUF_INIT, imark = O7_BUF_INIT, v = O7_BUF_INIT;
    o7_rc rc = O7_OK;
    int more = 1, aborted = 0;
    while (rc == O7_OK && more) {
        s3_req r = {
            .method = "GET", .params = {{"uploads", NULL}, {"prefix", s->prefix}}, .nparams = 2};
        if (kmark.len) {
            r.params[r.nparams++] = (o7_sigv4_param){"key-marker", kmark.data};
            r.params[r.nparams++] = (o7_sigv4_param){"upload-id-marker", imark.data};
        }
        rc = perform(s, &r, "list the unfinished uploads of", err);
        if (rc == O7_OK)
            rc = gc_page(s, &r.resp, max_age, &aborted, err);
        size_t pos = 0, p2 = 0;
        more = rc == O7_OK && o7_s3_xml_next(r.resp.data, r.resp.len, &pos, "IsTruncated", &v) &&
               strcmp(v.data, "true") == 0;
        pos = 0;
        if (more && o7_s3_xml_next(r.resp.data, r.resp.len, &pos, "NextKeyMarker", &kmark) &&
            o7_s3_xml_next(r.resp.data, r.resp.len, &p2, "NextUploadIdMarker", &imark)) {
            /* markers copied */
        } else {
            more = 0;
        }
        req_free(&r);
    }
    if (rc == O7_OK)
        o7_info(SUB, "gc of %s: aborted %d stale multipart uploads", s->base.describe, aborted);
    o7_buf_free(&kmark);
    o7_buf_free(&imark);
    o7_buf_free(&v);
    return rc;
}

/* ---- the writer ------------------------------------------------------- */

enum slot_state { SLOT_FREE, SLOT_FILLING, SLOT_WAITING, SLOT_RUNNING };

typedef struct part_slot {
    enum slot_state state;
    CURL *easy;
    char *data;
    size_t len, cap;
    int number;
    int tries;
    int skew_fixed;
    double start_at;     /* monotonic seconds: when a waiting part may go */
    EVP_MD_CTX *md5_ctx; /* hashes run as bytes arrive, while still in cache */
    o7_sha256 *sha_ctx;
    char md5[33];
    char sha[65];
    s3_req req;
} part_slot;

typedef struct s3_writer {
    o7_writer base;
    s3_store *s;
    char *key;  /* relative, for logs and errors */
    char *full; /* prefix + key */
    char *upload_id;
    part_slot *slots;
    part_slot *filling;
    int nslots;
    int parts_sent; /* highest part number handed out */
    char (*etags)[40];
    int etags_cap;
    uint64_t bytes;
    int retries;
    int failed;
    o7_err fail;
} s3_writer;

static double mono_now(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec + (double)ts.tv_nsec / 1e9;
}

static o7_rc s3_writer_new(o7_storage *st, const char *key, o7_writer **out, o7_err *err)
{
    s3_store *s = (s3_store *)st;
    if (check_key(s, key, err) != O7_OK)
        return O7_ERR_STORAGE;
    s3_writer *w = calloc(1, sizeof *w);
    if (!w)
        return O7_ERR_NOMEM;
    w->s = s;
    w->key = strdup(key);
    w->full = full_key(s, key);
    /* One slot fills while s3_parallel parts are in flight. */
    w->nslots = s->parallel + 1;
    w->slots = calloc((size_t)w->nslots, sizeof *w->slots);
    if (!w->key || !w->full || !w->slots) {
        free(w->key);
        free(w->full);
        free(w->slots);
        free(w);
        return o7_fail(err, O7_ERR_NOMEM, "out of memory starting %s", key);
    }
    *out = &w->base;
    return O7_OK;
}

static void writer_free(s3_writer *w)
{
    for (int i = 0; i < w->nslots; i++) {
        part_slot *p = &w->slots[i];
        if (p->easy) {
            if (p->state == SLOT_RUNNING)
                curl_multi_remove_handle(w->s->multi, p->easy);
            curl_easy_cleanup(p->easy);
        }
        req_free(&p->req);
        EVP_MD_CTX_free(p->md5_ctx);
        if (p->sha_ctx) {
            char ignored[65];
            o7_sha256_final_hex(p->sha_ctx, ignored);
        }
        free(p->data);
    }
    free(w->slots);
    free(w->etags);
    free(w->upload_id);
    free(w->key);
    free(w->full);
    free(w);
}

/* Records the first failure of the writer; later ones are dropped. */
static void writer_failed(s3_writer *w, o7_rc rc)
{
    if (!w->failed) {
        w->failed = 1;
        if (w->fail.rc == O7_OK)
            o7_fail(&w->fail, rc, "upload of %s to %s failed", w->key, w->s->base.describe);
    }
}

static o7_rc create_upload(s3_writer *w)
{
    s3_req r = {.method = "POST",
                .key = w->full,
                .params = {{"uploads", NULL}},
                .nparams = 1,
                .acl_private = 1};
    o7_rc rc = perform(w->s, &r, "start a multipart upload of", &w->fail);
    o7_buf id = O7_BUF_INIT;
    size_t pos = 0;
    if (rc == O7_OK && !o7_s3_xml_next(r.resp.data, r.resp.len, &pos, "UploadId", &id))
        rc = o7_fail(&w->fail, O7_ERR_STORAGE, "%s gave no upload id for %s", w->s->base.describe,
                     w->key);
    if (rc == O7_OK)
        w->upload_id = o7_buf_steal(&id);
    o7_buf_free(&id);
    req_free(&r);
    return rc;
}

static o7_rc remember_etag(s3_writer *w, int number, const char *etag)
{
    if (number > w->etags_cap) {
        int cap = w->etags_cap ? w->etags_cap * 2 : 64;
        while (cap < number)
            cap *= 2;
        char(*e)[40] = realloc(w->etags, (size_t)cap * sizeof *e);
        if (!e)
            return O7_ERR_NOMEM;
        memset(e + w->etags_cap, 0, (size_t)(cap - w->etags_cap) * sizeof *e);
        w->etags = e;
        w->etags_cap = cap;
    }
    /* The ETag was checked equal to the part's MD5: 32 hex digits. */
    size_t n = strnlen(etag, sizeof w->etags[0] - 1);
    memcpy(w->etags[number - 1], etag, n);
    w->etags[number - 1][n] = '\0';
    return O7_OK;
}

static o7_rc part_start(s3_writer *w, part_slot *p)
{
    char num[16];
    snprintf(num, sizeof num, "%d", p->number);
    /* The params point into the slot; num is copied by signing and URL
     * building inside req_prepare, which runs before this returns. */
    p->req.method = "PUT";
    p->req.key = w->full;
    p->req.params[0] = (o7_sigv4_param){"partNumber", num};
    p->req.params[1] = (o7_sigv4_param){"uploadId", w->upload_id};
    p->req.nparams = 2;
    p->req.body = p->data;
    p->req.body_len = p->len;
    p->req.payload_sha = p->sha;
    if (!p->easy && !(p->easy = curl_easy_init()))
        return O7_ERR_NOMEM;
    o7_rc rc = req_prepare(w->s, p->easy, &p->req);
    p->req.params[0].value = NULL; /* num goes out of scope */
    if (rc != O7_OK)
        return rc;
    if (curl_multi_add_handle(w->s->multi, p->easy) != CURLM_OK)
        return O7_ERR_INTERNAL;
    p->state = SLOT_RUNNING;
    return O7_OK;
}

/* A part finished: keep its ETag, or schedule a retry, or fail. */
static void part_done(s3_writer *w, part_slot *p, CURLcode cc)
{
    s3_req *r = &p->req;
    r->cc = cc;
    curl_easy_getinfo(p->easy, CURLINFO_RESPONSE_CODE, &r->status);
    curl_multi_remove_handle(w->s->multi, p->easy);
    enum outcome o = classify(r);
    if (o == OUT_OK && strcmp(r->etag, p->md5) != 0) {
        o7_warn(SUB, "%s part %d: ETag does not match the MD5 of the bytes sent", w->key,
                p->number);
        o = OUT_RETRY;
    }
    if (o == OUT_OK) {
        if (remember_etag(w, p->number, r->etag) != O7_OK)
            writer_failed(w, O7_ERR_NOMEM);
        p->state = SLOT_FREE;
        p->len = 0;
        return;
    }
    if (o == OUT_SKEW && !p->skew_fixed && learn_skew(w->s, r)) {
        p->skew_fixed = 1;
        p->state = SLOT_WAITING;
        p->start_at = mono_now();
        return;
    }
    if (o == OUT_RETRY && ++p->tries < MAX_TRIES) {
        long ms = backoff_ms(p->tries - 1);
        w->retries++;
        o7_warn(SUB, "%s part %d: HTTP %ld%s, retry %d of %d in %ld ms", w->key, p->number,
                r->status, cc ? " (transfer failed)" : "", p->tries, MAX_TRIES - 1, ms);
        p->state = SLOT_WAITING;
        p->start_at = mono_now() + (double)ms / 1000.0;
        return;
    }
    o7_err e = {0};
    fail_req(w->s, r, "upload a part of", w->key, &e);
    if (w->fail.rc == O7_OK)
        o7_fail(&w->fail, e.rc, "%s", e.msg);
    writer_failed(w, e.rc);
    p->state = SLOT_FREE;
}

static int count_state(const s3_writer *w, enum slot_state st)
{
    int n = 0;
    for (int i = 0; i < w->nslots; i++)
        n += w->slots[i].state == st;
    return n;
}

/* Runs the parts in flight until a slot is free (all == 0) or nothing is
 * left in flight (all == 1), or the writer failed. */
/* One step of the pool without waiting: start the parts whose backoff is
 * over, move the transfers on, and settle the finished ones. Returns when
 * the next waiting part may start. */
static double pool_pump(s3_writer *w)
{
    double now = mono_now(), next = now + 0.1;
    for (int i = 0; i < w->nslots && !w->failed; i++) {
        part_slot *p = &w->slots[i];
        if (p->state == SLOT_WAITING && p->start_at <= now && part_start(w, p) != O7_OK)
            writer_failed(w, O7_ERR_NOMEM);
        if (p->state == SLOT_WAITING && p->start_at < next)
            next = p->start_at;
    }
    if (count_state(w, SLOT_RUNNING) == 0)
        return next;
    int running = 0;
    curl_multi_perform(w->s->multi, &running);
    CURLMsg *m;
    int left;
    while ((m = curl_multi_info_read(w->s->multi, &left)) != NULL) {
        if (m->msg != CURLMSG_DONE)
            continue;
        for (int i = 0; i < w->nslots; i++)
            if (w->slots[i].easy == m->easy_handle && w->slots[i].state == SLOT_RUNNING)
                part_done(w, &w->slots[i], m->data.result);
    }
    return next;
}

static void pool_drive(s3_writer *w, int all)
{
    for (;;) {
        int busy = count_state(w, SLOT_RUNNING) + count_state(w, SLOT_WAITING);
        if (w->failed || busy == 0 || (!all && count_state(w, SLOT_FREE) > 0))
            return;
        double next = pool_pump(w);
        int wait_ms = (int)((next - mono_now()) * 1000.0);
        if (count_state(w, SLOT_RUNNING) > 0)
            curl_multi_poll(w->s->multi, NULL, 0, wait_ms > 0 ? wait_ms : 1, NULL);
        else if (wait_ms > 0)
            sleep_ms(wait_ms);
    }
}

/* Starts the part's hashes; the bytes are hashed as s3_write copies them
 * in, slice by slice, so they are read while still in cache and the pool
 * keeps moving between slices. */
static o7_rc hash_begin(part_slot *p)
{
    if (!p->md5_ctx && !(p->md5_ctx = EVP_MD_CTX_new()))
        return O7_ERR_NOMEM;
    if (EVP_DigestInit_ex(p->md5_ctx, EVP_md5(), NULL) != 1)
        return O7_ERR_CRYPTO;
    if (p->sha_ctx) {
        char ignored[65];
        o7_sha256_final_hex(p->sha_ctx, ignored);
    }
    p->sha_ctx = o7_sha256_new();
    return p->sha_ctx ? O7_OK : O7_ERR_NOMEM;
}

static void hash_update(part_slot *p, const char *data, size_t len)
{
    if (EVP_DigestUpdate(p->md5_ctx, data, len) != 1)
        p->md5[0] = '!'; /* marks a failed hash; checked at the end */
    o7_sha256_update(p->sha_ctx, data, len);
}

static o7_rc hash_end(part_slot *p)
{
    unsigned char d[EVP_MAX_MD_SIZE];
    unsigned int dn = 0;
    int ok = p->md5[0] != '!' && EVP_DigestFinal_ex(p->md5_ctx, d, &dn) == 1 && dn == 16;
    if (ok)
        o7_hex(d, 16, p->md5);
    o7_sha256_final_hex(p->sha_ctx, p->sha);
    p->sha_ctx = NULL;
    return ok ? O7_OK : O7_ERR_CRYPTO;
}

/* Hands the filled slot to the pool as the next part. */
static o7_rc part_submit(s3_writer *w, part_slot *p)
{
    if (!w->upload_id && create_upload(w) != O7_OK) {
        writer_failed(w, w->fail.rc ? w->fail.rc : O7_ERR_STORAGE);
        return w->fail.rc;
    }
    if (w->parts_sent >= O7_S3_MAX_PARTS) {
        o7_fail(&w->fail, O7_ERR_STORAGE, "%s is larger than 10,000 parts can hold", w->key);
        writer_failed(w, O7_ERR_STORAGE);
        return O7_ERR_STORAGE;
    }
    p->number = ++w->parts_sent;
    p->tries = 0;
    p->skew_fixed = 0;
    o7_rc rc = hash_end(p);
    if (rc == O7_OK)
        rc = part_start(w, p);
    if (rc != O7_OK)
        writer_failed(w, rc);
    return rc;
}

static part_slot *free_slot(s3_writer *w)
{
    for (int i = 0; i < w->nslots; i++)
        if (w->slots[i].state == SLOT_FREE)
            return &w->slots[i];
    return NULL;
}

/* A slot to fill with the next part, its buffer sized by the plan. */
static o7_rc take_slot(s3_writer *w)
{
    pool_drive(w, 0);
    part_slot *p = w->failed ? NULL : free_slot(w);
    if (!p)
        return w->fail.rc ? w->fail.rc : O7_ERR_STORAGE;
    size_t want = (size_t)o7_s3_part_size(w->s->part_size, w->parts_sent + 1);
    if (p->cap < want) {
        char *d = realloc(p->data, want);
        if (!d)
            return O7_ERR_NOMEM;
        p->data = d;
        p->cap = want;
    }
    p->len = 0;
    p->md5[0] = '\0';
    p->state = SLOT_FILLING;
    w->filling = p;
    return hash_begin(p);
}

static o7_rc s3_write(o7_writer *wr, const void *data, size_t len, o7_err *err)
{
    s3_writer *w = (s3_writer *)wr;
    const char *in = data;
    while (len > 0 && !w->failed) {
        part_slot *p = w->filling;
        size_t want = (size_t)o7_s3_part_size(w->s->part_size, w->parts_sent + 1);
        /* A full part is sent only once more bytes come, so an object of
         * exactly one part still goes up as a single PUT. */
        if (p && p->len == want) {
            w->filling = NULL;
            if (part_submit(w, p) != O7_OK)
                break;
            p = NULL;
        }
        if (!p && take_slot(w) != O7_OK)
            break;
        p = w->filling;
        size_t n = want - p->len < len ? want - p->len : len;
        if (n > WRITE_SLICE)
            n = WRITE_SLICE;
        memcpy(p->data + p->len, in, n);
        hash_update(p, p->data + p->len, n);
        p->len += n;
        in += n;
        len -= n;
        w->bytes += n;
        /* Keep the parts in flight moving while bytes come in. */
        pool_pump(w);
    }
    if (w->failed || len > 0) {
        writer_failed(w, O7_ERR_STORAGE);
        return o7_fail(err, w->fail.rc ? w->fail.rc : O7_ERR_STORAGE, "%s", w->fail.msg);
    }
    return O7_OK;
}

/* HEAD after the write: the object is there with the size (and, for a
 * single PUT, the ETag) we sent. */
static o7_rc confirm_head(s3_writer *w, const char *md5, o7_err *err)
{
    o7_object_info info;
    s3_req r = {0};
    o7_rc rc = head_full(w->s, w->full, &info, &r, err);
    req_free(&r);
    if (rc == O7_ERR_NOTFOUND)
        return o7_fail(err, O7_ERR_STORAGE,
                       "%s was not found in %s right after it was "
                       "written",
                       w->key, w->s->base.describe);
    if (rc != O7_OK)
        return rc;
    if (info.size != w->bytes || (md5 && strcmp(info.etag, md5) != 0))
        return o7_fail(err, O7_ERR_STORAGE,
                       "%s in %s holds %llu bytes (etag %s) after writing %llu bytes", w->key,
                       w->s->base.describe, (unsigned long long)info.size, info.etag,
                       (unsigned long long)w->bytes);
    return O7_OK;
}

/* A commit that cannot be confirmed is a failed commit: take the object
 * away again (best effort), so a failure never leaves it visible. */
static o7_rc confirm(s3_writer *w, const char *md5, o7_err *err)
{
    o7_rc rc = confirm_head(w, md5, err);
    if (rc != O7_OK) {
        s3_req r = {.method = "DELETE", .key = w->full};
        o7_err ignored = {0};
        if (perform(w->s, &r, "delete", &ignored) == O7_OK)
            o7_warn(SUB, "removed %s again: its commit could not be confirmed", w->key);
        req_free(&r);
    }
    return rc;
}

static o7_rc put_single(s3_writer *w, o7_err *err)
{
    part_slot *p = w->filling;
    char md5[33], sha[65];
    const char *body = p ? p->data : "";
    size_t len = p ? p->len : 0;
    md5_hex(body, len, md5);
    o7_sha256_hex(body, len, sha);
    s3_req r = {.method = "PUT",
                .key = w->full,
                .body = body,
                .body_len = len,
                .payload_sha = sha,
                .acl_private = 1};
    o7_rc rc = perform(w->s, &r, "store", err);
    if (rc == O7_ERR_NOTFOUND)
        rc = fail_req(w->s, &r, "store", w->key, err);
    if (rc == O7_OK && strcmp(r.etag, md5) != 0)
        rc = o7_fail(err, O7_ERR_STORAGE,
                     "%s: the ETag %s sent back for %s is not the MD5 "
                     "of the bytes sent",
                     w->s->base.describe, r.etag, w->key);
    req_free(&r);
    if (rc == O7_OK)
        rc = confirm(w, md5, err);
    if (rc == O7_OK)
        o7_info(SUB, "stored %s (%llu bytes, 1 part)", w->key, (unsigned long long)w->bytes);
    return rc;
}

static o7_rc complete_body(const s3_writer *w, o7_buf *xml)
{
    o7_rc rc = o7_buf_puts(xml, "<CompleteMultipartUpload>");
    for (int i = 1; rc == O7_OK && i <= w->parts_sent; i++)
        rc = o7_buf_printf(xml, "<Part><PartNumber>%d</PartNumber><ETag>\"%s\"</ETag></Part>", i,
                           w->etags[i - 1]);
    if (rc == O7_OK)
        rc = o7_buf_puts(xml, "</CompleteMultipartUpload>");
    return rc;
}

static o7_rc complete_multipart(s3_writer *w, o7_err *err)
{
    if (w->filling && w->filling->len > 0) {
        part_slot *p = w->filling;
        w->filling = NULL;
        part_submit(w, p);
    }
    pool_drive(w, 1);
    if (w->failed)
        return o7_fail(err, w->fail.rc ? w->fail.rc : O7_ERR_STORAGE, "%s", w->fail.msg);
    o7_buf xml = O7_BUF_INIT;
    o7_rc rc = complete_body(w, &xml);
    s3_req r = {.method = "POST",
                .key = w->full,
                .params = {{"uploadId", w->upload_id}},
                .nparams = 1,
                .body = xml.data,
                .body_len = xml.len};
    if (rc == O7_OK)
        rc = perform(w->s, &r, "complete the upload of", err);
    if (rc == O7_ERR_NOTFOUND)
        rc = fail_req(w->s, &r, "complete the upload of", w->key, err);
    /* S3 may answer 200 and still put an <Error> in the body. */
    if (rc == O7_OK && find_in(r.resp.data ? r.resp.data : "", r.resp.len, "<Error>"))
        rc = fail_req(w->s, &r, "complete the upload of", w->key, err);
    req_free(&r);
    o7_buf_free(&xml);
    if (rc == O7_OK)
        rc = confirm(w, NULL, err);
    if (rc == O7_OK)
        o7_info(SUB, "stored %s (%llu bytes, %d parts, %d retries)", w->key,
                (unsigned long long)w->bytes, w->parts_sent, w->retries);
    return rc;
}

static void abort_writer(s3_writer *w)
{
    /* Stop parts in flight first, so none lands after the abort. */
    for (int i = 0; i < w->nslots; i++) {
        part_slot *p = &w->slots[i];
        if (p->state == SLOT_RUNNING)
            curl_multi_remove_handle(w->s->multi, p->easy);
        p->state = SLOT_FREE;
    }
    if (w->upload_id) {
        o7_err e = {0};
        if (abort_upload(w->s, w->full, w->upload_id, &e) == O7_OK)
            o7_info(SUB, "aborted the upload of %s (%d parts sent)", w->key, w->parts_sent);
        else
            o7_warn(SUB, "could not abort the upload of %s: %s", w->key, e.msg);
    }
}

static o7_rc s3_commit(o7_writer *wr, o7_err *err)
{
    s3_writer *w = (s3_writer *)wr;
    o7_rc rc;
    if (w->failed)
        rc = o7_fail(err, w->fail.rc ? w->fail.rc : O7_ERR_STORAGE, "%s", w->fail.msg);
    else if (!w->upload_id)
        rc = put_single(w, err);
    else
        rc = complete_multipart(w, err);
    if (rc != O7_OK && w->upload_id)
        abort_writer(w);
    writer_free(w);
    return rc;
}

static void s3_abort(o7_writer *wr)
{
    s3_writer *w = (s3_writer *)wr;
    abort_writer(w);
    writer_free(w);
}

const struct o7_storage_ops o7_storage_s3_ops = {
    .scheme = "s3",
    .open = s3_open,
    .close = s3_close,
    .writer = s3_writer_new,
    .write = s3_write,
    .commit = s3_commit,
    .abort = s3_abort,
    .get = s3_get,
    .head = s3_head,
    .list = s3_list,
    .del = s3_del,
    .presign = s3_presign,
    .gc = s3_gc,
};
