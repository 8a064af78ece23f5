/* sigv4.h - AWS Signature Version 4, the generic core and the encoding rules.
 *
 * The core signs exactly the headers it is given with the payload hash it is
 * given; it adds nothing of its own, so the published vectors of any service
 * can be replayed through it. The S3 layer (storage_s3.c) adds
 * x-amz-content-sha256 and x-amz-date around it. Paths are encoded once and
 * never normalised: that is the S3 rule, and the one this core keeps. */
#ifndef O7_SIGV4_H
#define O7_SIGV4_H

#include "buf.h"
#include "result.h"

#include <stddef.h>
#include <time.h>

/** One request header; name in any case, value as sent. */
typedef struct o7_sigv4_header {
    const char *name;
    const char *value;
} o7_sigv4_header;

/** One query parameter, NOT encoded (the core encodes it). value NULL or ""
 * both canonicalise to "key=". */
typedef struct o7_sigv4_param {
    const char *key;
    const char *value;
} o7_sigv4_param;

/** Who signs, and for what scope. token may be NULL. */
typedef struct o7_sigv4_cred {
    const char *access_key;
    const char *secret_key;
    const char *token; /* session token; query signing only, see below */
    const char *region;
    const char *service; /* "s3" */
} o7_sigv4_cred;

/** The request to sign. path is the raw path (e.g. "/bucket/my key"),
 * encoded once by the core, '/' kept; nothing is normalised. */
typedef struct o7_sigv4_req {
    const char *method;
    const char *path;
    const o7_sigv4_param *params;
    size_t nparams;
    const o7_sigv4_header *headers;
    size_t nheaders;
    const char *payload_hash; /* 64 hex digits or "UNSIGNED-PAYLOAD" */
} o7_sigv4_req;

/** Everything a signing step produced. Each buffer is owned by the struct:
 * free with o7_sigv4_result_free. Holds no secret, but `query` and
 * `authorization` are credentials for a while: never log them. */
typedef struct o7_sigv4_result {
    o7_buf canonical; /* the canonical request */
    o7_buf string_to_sign;
    char signature[65];   /* lower-case hex */
    o7_buf authorization; /* header mode: the Authorization header value */
    o7_buf query;         /* query mode: the whole signed query string */
} o7_sigv4_result;

/** Appends s[0..len) to out encoded the S3 way: A-Z a-z 0-9 - . _ ~ kept,
 * '/' kept when keep_slash, every other byte %XX in upper-case hex (a space
 * is %20, never '+'). */
o7_rc o7_sigv4_encode(o7_buf *out, const char *s, size_t len, int keep_slash);

/** Appends the canonical query string of params: each key and value
 * encoded, pairs sorted by encoded key then encoded value, joined by '&'. */
o7_rc o7_sigv4_canonical_query(o7_buf *out, const o7_sigv4_param *params, size_t n);

/** "YYYYMMDDTHHMMSSZ" of t (UTC) into out. */
void o7_sigv4_amz_date(time_t t, char out[17]);

/** Header signing at time t: fills res (zero it first) with the canonical
 * request, string to sign, signature and Authorization value. Signs every
 * header in req->headers and nothing else. */
o7_rc o7_sigv4_sign_header(const o7_sigv4_cred *cred, const o7_sigv4_req *req, time_t t,
                           o7_sigv4_result *res);

/** Query signing (a pre-signed URL) valid for expires seconds from t: adds
 * X-Amz-Algorithm, -Credential, -Date, -Expires, -SignedHeaders and, when
 * cred->token is set, X-Amz-Security-Token (signed; or appended after
 * signing when token_unsigned) to req->params, and fills res->query with the
 * full query string ending in X-Amz-Signature. Signs every header given
 * (S3 pre-signed GETs give just Host). */
o7_rc o7_sigv4_sign_query(const o7_sigv4_cred *cred, const o7_sigv4_req *req, time_t t,
                          long expires, int token_unsigned, o7_sigv4_result *res);

void o7_sigv4_result_free(o7_sigv4_result *res);

#endif
