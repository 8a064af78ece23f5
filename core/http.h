/* http.h - o7's HTTP client for store APIs: libcurl's multi interface in one
 * thread, with pacing, retries and bounded concurrency.
 *
 * Callers submit requests with a completion callback, then run the loop;
 * callbacks run inside o7_http_run and may submit more. Requests that fail
 * for a passing reason (429, 500, 502, 503, 504, timeouts, resets) are
 * retried here, with the pacer's wait or a backoff with jitter, within a
 * bound; the callback sees only the final outcome. Request headers may hold
 * a token: they are never logged, and neither is a URL's query. */
#ifndef O7_HTTP_H
#define O7_HTTP_H

#include "buf.h"
#include "codec.h"
#include "pacer.h"
#include "result.h"

#include <signal.h>
#include <stdint.h>

typedef struct o7_http o7_http;

typedef struct o7_http_opts {
    int concurrency;       /* requests in flight at most (>= 1) */
    int timeout_s;         /* whole transfer */
    int connect_timeout_s;
    int max_retries;       /* extra tries after the first, for 5xx and transport failures */
    const char *user_agent;
    volatile sig_atomic_t *stop_flag; /* when set non-zero (a signal handler), run stops */
} o7_http_opts;

typedef struct o7_http_resp {
    o7_rc rc;         /* O7_OK when an HTTP answer arrived, whatever its status */
    long status;      /* 0 when there was no answer */
    o7_buf body;      /* the (decompressed) body, unless the request had a sink */
    char error[256];  /* why there was no answer */
    int attempts;
    o7_rate_headers rate; /* of the final answer */
} o7_http_resp;

/** Receives the final outcome. resp and its body belong to the client and
 * are freed after the callback returns; o7_buf_steal takes the body. */
typedef void (*o7_http_done_fn)(void *ud, o7_http_resp *resp);

typedef struct o7_http_req {
    const char *method;          /* "GET", "POST", ... */
    const char *url;             /* copied */
    const char *const *headers;  /* NULL-terminated "Name: value" list, copied */
    const void *body;            /* copied; may be NULL */
    size_t body_len;
    int priority;                /* higher is sent first */
    int retry_posts;             /* POST is retried only when this is set */
    o7_sink_fn sink;             /* when set, 2xx body bytes go here, not to resp.body,
                                    and a failure after the first byte is not retried */
    void *sink_ud;
    int no_pacing;               /* for URLs outside the store API (signed downloads) */
} o7_http_req;

typedef struct o7_http_stats {
    uint64_t sent;        /* attempts put on the wire */
    uint64_t retries;
    uint64_t throttled;   /* 429s received */
    uint64_t server_errors;
    uint64_t bytes_in;
    uint64_t quota_waits; /* times the pacer held a request back */
} o7_http_stats;

o7_rc o7_http_new(const o7_http_opts *opts, o7_http **out, o7_err *err);
void o7_http_free(o7_http *h);

/** Queues a request; nothing is sent before o7_http_run. */
o7_rc o7_http_submit(o7_http *h, const o7_http_req *req, o7_http_done_fn done, void *ud);

/** Calls done(ud, resp) from inside o7_http_run after ms milliseconds, with
 * resp->rc O7_OK and status 0 (or O7_ERR_INTERRUPTED when stopped first). */
o7_rc o7_http_after(o7_http *h, int64_t ms, o7_http_done_fn done, void *ud);

/** Runs until no request is queued or in flight, or o7_http_stop. */
o7_rc o7_http_run(o7_http *h, o7_err *err);

/** Makes o7_http_run return soon; queued requests are completed with
 * O7_ERR_INTERRUPTED. Safe to call from a callback or a signal handler. */
void o7_http_stop(o7_http *h);

const o7_http_stats *o7_http_get_stats(const o7_http *h);

/** Milliseconds on a monotonic clock. */
int64_t o7_now_ms(void);

#endif
