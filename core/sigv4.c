/* sigv4.c - AWS Signature Version 4: canonical request, string to sign,
 * signing key and signature, for header and query (pre-signed) signing.
 *
 * Hashing and HMAC come from crypto.h (OpenSSL). Nothing here logs. */
#include "sigv4.h"

#include "crypto.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ALGORITHM "AWS4-HMAC-SHA256"

static int is_unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '.' || c == '_' || c == '~';
}

o7_rc o7_sigv4_encode(o7_buf *out, const char *s, size_t len, int keep_slash)
{
    static const char hexdig[] = "0123456789ABCDEF";
    o7_rc rc = o7_buf_reserve(out, len * 3);
    for (size_t i = 0; rc == O7_OK && i < len; i++) {
        unsigned char c = (unsigned char)s[i];
        if (is_unreserved(c) || (keep_slash && c == '/')) {
            rc = o7_buf_putc(out, (char)c);
        } else {
            char enc[3] = {'%', hexdig[c >> 4], hexdig[c & 15]};
            rc = o7_buf_append(out, enc, 3);
        }
    }
    return rc;
}

void o7_sigv4_amz_date(time_t t, char out[17])
{
    struct tm tm;
    gmtime_r(&t, &tm);
    strftime(out, 17, "%Y%m%dT%H%M%SZ", &tm);
}

/* ---- canonical query ------------------------------------------------- */

typedef struct enc_pair {
    char *key;
    char *value;
} enc_pair;

static int cmp_pair(const void *a, const void *b)
{
    const enc_pair *x = a, *y = b;
    int c = strcmp(x->key, y->key);
    return c ? c : strcmp(x->value, y->value);
}

static char *encode_dup(const char *s)
{
    o7_buf b = O7_BUF_INIT;
    const char *v = s ? s : "";
    if (o7_sigv4_encode(&b, v, strlen(v), 0) != O7_OK || o7_buf_putc(&b, '\0') != O7_OK) {
        o7_buf_free(&b);
        return NULL;
    }
    return o7_buf_steal(&b);
}

o7_rc o7_sigv4_canonical_query(o7_buf *out, const o7_sigv4_param *params, size_t n)
{
    if (n == 0)
        return O7_OK;
    enc_pair *pairs = calloc(n, sizeof *pairs);
    o7_rc rc = pairs ? O7_OK : O7_ERR_NOMEM;
    for (size_t i = 0; rc == O7_OK && i < n; i++) {
        pairs[i].key = encode_dup(params[i].key);
        pairs[i].value = encode_dup(params[i].value);
        if (!pairs[i].key || !pairs[i].value)
            rc = O7_ERR_NOMEM;
    }
    if (rc == O7_OK)
        qsort(pairs, n, sizeof *pairs, cmp_pair);
    for (size_t i = 0; rc == O7_OK && i < n; i++)
        rc = o7_buf_printf(out, "%s%s=%s", i ? "&" : "", pairs[i].key, pairs[i].value);
    for (size_t i = 0; pairs && i < n; i++) {
        free(pairs[i].key);
        free(pairs[i].value);
    }
    free(pairs);
    return rc;
}

/* ---- canonical headers ----------------------------------------------- */

typedef struct canon_header {
    char *name;  /* lower case */
    char *value; /* trimmed, inner runs of spaces squeezed to one */
    size_t order;
} canon_header;

static int cmp_header(const void *a, const void *b)
{
    const canon_header *x = a, *y = b;
    int c = strcmp(x->name, y->name);
    if (c)
        return c;
    /* Same name: keep the order sent, values are never sorted. */
    return x->order < y->order ? -1 : x->order > y->order;
}

static char *lower_dup(const char *s)
{
    size_t n = strlen(s);
    char *d = malloc(n + 1);
    for (size_t i = 0; d && i <= n; i++)
        d[i] = (s[i] >= 'A' && s[i] <= 'Z') ? (char)(s[i] - 'A' + 'a') : s[i];
    return d;
}

static char *trim_dup(const char *s)
{
    size_t n = strlen(s), j = 0;
    char *d = malloc(n + 1);
    if (!d)
        return NULL;
    for (size_t i = 0; i < n; i++) {
        int space = s[i] == ' ' || s[i] == '\t';
        if (space && (j == 0 || d[j - 1] == ' '))
            continue;
        d[j++] = space ? ' ' : s[i];
    }
    while (j > 0 && d[j - 1] == ' ')
        j--;
    d[j] = '\0';
    return d;
}

/* Appends "name:value\n" lines (duplicates joined by ',') to canon and the
 * "a;b;c" list to signed_list. */
static o7_rc canonical_headers(const o7_sigv4_header *hs, size_t n, o7_buf *canon,
                               o7_buf *signed_list)
{
    canon_header *ch = calloc(n ? n : 1, sizeof *ch);
    o7_rc rc = ch ? O7_OK : O7_ERR_NOMEM;
    for (size_t i = 0; rc == O7_OK && i < n; i++) {
        ch[i].name = lower_dup(hs[i].name);
        ch[i].value = trim_dup(hs[i].value ? hs[i].value : "");
        ch[i].order = i;
        if (!ch[i].name || !ch[i].value)
            rc = O7_ERR_NOMEM;
    }
    if (rc == O7_OK)
        qsort(ch, n, sizeof *ch, cmp_header);
    for (size_t i = 0; rc == O7_OK && i < n; i++) {
        int same = i > 0 && strcmp(ch[i].name, ch[i - 1].name) == 0;
        if (same) {
            rc = o7_buf_printf(canon, ",%s", ch[i].value);
            continue;
        }
        if (i > 0)
            rc = o7_buf_putc(canon, '\n');
        if (rc == O7_OK)
            rc = o7_buf_printf(canon, "%s:%s", ch[i].name, ch[i].value);
        if (rc == O7_OK)
            rc = o7_buf_printf(signed_list, "%s%s", signed_list->len ? ";" : "", ch[i].name);
    }
    if (rc == O7_OK && n > 0)
        rc = o7_buf_putc(canon, '\n');
    for (size_t i = 0; ch && i < n; i++) {
        free(ch[i].name);
        free(ch[i].value);
    }
    free(ch);
    return rc;
}

/* ---- the signing steps ----------------------------------------------- */

static o7_rc canonical_request(const o7_sigv4_req *req, const o7_sigv4_param *params,
                               size_t nparams, o7_buf *out, o7_buf *signed_list)
{
    const char *path = req->path && req->path[0] ? req->path : "/";
    o7_rc rc = o7_buf_printf(out, "%s\n", req->method);
    if (rc == O7_OK)
        rc = o7_sigv4_encode(out, path, strlen(path), 1);
    if (rc == O7_OK)
        rc = o7_buf_putc(out, '\n');
    if (rc == O7_OK)
        rc = o7_sigv4_canonical_query(out, params, nparams);
    if (rc == O7_OK)
        rc = o7_buf_putc(out, '\n');
    if (rc == O7_OK)
        rc = canonical_headers(req->headers, req->nheaders, out, signed_list);
    if (rc == O7_OK)
        rc = o7_buf_printf(out, "\n%s\n%s", signed_list->data ? signed_list->data : "",
                           req->payload_hash);
    return rc;
}

static o7_rc scope_of(const o7_sigv4_cred *cred, const char *amz_date, o7_buf *out)
{
    return o7_buf_printf(out, "%.8s/%s/%s/aws4_request", amz_date, cred->region, cred->service);
}

/* String to sign from the canonical request, then the signature with the
 * derived key (secret -> date -> region -> service -> "aws4_request"). */
static o7_rc sign_canonical(const o7_sigv4_cred *cred, const char *amz_date, const char *scope,
                            o7_sigv4_result *res)
{
    char creq_hex[65];
    o7_sha256_hex(res->canonical.data, res->canonical.len, creq_hex);
    o7_rc rc =
        o7_buf_printf(&res->string_to_sign, ALGORITHM "\n%s\n%s\n%s", amz_date, scope, creq_hex);
    if (rc != O7_OK)
        return rc;

    o7_buf k0 = O7_BUF_INIT;
    rc = o7_buf_printf(&k0, "AWS4%s", cred->secret_key);
    if (rc != O7_OK) {
        o7_buf_free(&k0);
        return rc;
    }
    /* Two key buffers in turn: HMAC's output never aliases its key. */
    unsigned char ka[32], kb[32], sig[32];
    o7_hmac_sha256(k0.data, k0.len, amz_date, 8, ka);
    o7_wipe(k0.data, k0.len);
    o7_buf_free(&k0);
    o7_hmac_sha256(ka, 32, cred->region, strlen(cred->region), kb);
    o7_hmac_sha256(kb, 32, cred->service, strlen(cred->service), ka);
    o7_hmac_sha256(ka, 32, "aws4_request", 12, kb);
    o7_hmac_sha256(kb, 32, res->string_to_sign.data, res->string_to_sign.len, sig);
    o7_wipe(ka, sizeof ka);
    o7_wipe(kb, sizeof kb);
    o7_hex(sig, 32, res->signature);
    return O7_OK;
}

o7_rc o7_sigv4_sign_header(const o7_sigv4_cred *cred, const o7_sigv4_req *req, time_t t,
                           o7_sigv4_result *res)
{
    char amz_date[17];
    o7_buf scope = O7_BUF_INIT, signed_list = O7_BUF_INIT;
    o7_sigv4_amz_date(t, amz_date);

    o7_rc rc = scope_of(cred, amz_date, &scope);
    if (rc == O7_OK)
        rc = canonical_request(req, req->params, req->nparams, &res->canonical, &signed_list);
    if (rc == O7_OK)
        rc = sign_canonical(cred, amz_date, scope.data, res);
    if (rc == O7_OK)
        rc = o7_buf_printf(
            &res->authorization, ALGORITHM " Credential=%s/%s, SignedHeaders=%s, Signature=%s",
            cred->access_key, scope.data, signed_list.data ? signed_list.data : "", res->signature);
    o7_buf_free(&scope);
    o7_buf_free(&signed_list);
    return rc;
}

/* The signed-headers list alone, as X-Amz-SignedHeaders needs it before
 * the canonical request is built. */
static o7_rc signed_list_of(const o7_sigv4_req *req, o7_buf *out)
{
    o7_buf scratch = O7_BUF_INIT;
    o7_rc rc = canonical_headers(req->headers, req->nheaders, &scratch, out);
    o7_buf_free(&scratch);
    return rc;
}

o7_rc o7_sigv4_sign_query(const o7_sigv4_cred *cred, const o7_sigv4_req *req, time_t t,
                          long expires, int token_unsigned, o7_sigv4_result *res)
{
    char amz_date[17], exp[24];
    o7_buf scope = O7_BUF_INIT, cred_param = O7_BUF_INIT, signed_list = O7_BUF_INIT,
           ignored = O7_BUF_INIT;
    size_t n = req->nparams;
    o7_sigv4_param *ps = calloc(n + 6, sizeof *ps);
    if (!ps)
        return O7_ERR_NOMEM;
    o7_sigv4_amz_date(t, amz_date);
    snprintf(exp, sizeof exp, "%ld", expires);

    o7_rc rc = scope_of(cred, amz_date, &scope);
    if (rc == O7_OK)
        rc = o7_buf_printf(&cred_param, "%s/%s", cred->access_key, scope.data);
    if (rc == O7_OK)
        rc = signed_list_of(req, &signed_list);
    if (rc == O7_OK) {
        if (n)
            memcpy(ps, req->params, n * sizeof *ps);
        ps[n++] = (o7_sigv4_param){"X-Amz-Algorithm", ALGORITHM};
        ps[n++] = (o7_sigv4_param){"X-Amz-Credential", cred_param.data};
        ps[n++] = (o7_sigv4_param){"X-Amz-Date", amz_date};
        ps[n++] = (o7_sigv4_param){"X-Amz-Expires", exp};
        ps[n++] = (o7_sigv4_param){"X-Amz-SignedHeaders", signed_list.data};
        if (cred->token && !token_unsigned)
            ps[n++] = (o7_sigv4_param){"X-Amz-Security-Token", cred->token};
        rc = canonical_request(req, ps, n, &res->canonical, &ignored);
    }
    if (rc == O7_OK)
        rc = sign_canonical(cred, amz_date, scope.data, res);
    if (rc == O7_OK)
        rc = o7_sigv4_canonical_query(&res->query, ps, n);
    if (rc == O7_OK && cred->token && token_unsigned) {
        rc = o7_buf_puts(&res->query, "&X-Amz-Security-Token=");
        if (rc == O7_OK)
            rc = o7_sigv4_encode(&res->query, cred->token, strlen(cred->token), 0);
    }
    if (rc == O7_OK)
        rc = o7_buf_printf(&res->query, "&X-Amz-Signature=%s", res->signature);
    free(ps);
    o7_buf_free(&scope);
    o7_buf_free(&cred_param);
    o7_buf_free(&signed_list);
    o7_buf_free(&ignored);
    return rc;
}

void o7_sigv4_result_free(o7_sigv4_result *res)
{
    if (!res)
        return;
    o7_buf_free(&res->canonical);
    o7_buf_free(&res->string_to_sign);
    o7_buf_free(&res->authorization);
    o7_buf_free(&res->query);
    memset(res->signature, 0, sizeof res->signature);
}
