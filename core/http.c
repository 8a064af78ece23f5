/* http.c - the store API client: one curl multi handle, a priority queue,
 * the pacer, and retries. Runs in the caller's thread. */
#include "http.h"
#include "log.h"

#include <curl/curl.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <time.h>

typedef struct job {
    struct job *next;
    char *method, *url;
    struct curl_slist *headers;
    char *body;
    size_t body_len;
    int priority, retry_posts, no_pacing;
    int timer; /* no request: just call done when not_before passes */
    o7_sink_fn sink;
    void *sink_ud;
    int sink_started;
    o7_rc sink_rc;
    o7_http_done_fn done;
    void *ud;
    int64_t not_before;
    CURL *easy;
    o7_http_resp resp;
    char errbuf[CURL_ERROR_SIZE];
} job;

struct o7_http {
    o7_http_opts opts;
    CURLM *multi;
    job *queue;       /* waiting, highest priority first, FIFO within one */
    job *inflight;    /* on the wire, linked through next */
    int active;       /* how many are in flight */
    CURL *pool[64];   /* idle easy handles, kept for their settings */
    int npool;
    o7_pacer pacer;
    o7_http_stats stats;
    volatile sig_atomic_t stopped;
    unsigned rng;
};

int64_t o7_now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static double jitter(o7_http *h)
{
    h->rng = h->rng * 1103515245u + 12345u;
    return (double)((h->rng >> 8) & 0xffff) / 65536.0;
}

o7_rc o7_http_new(const o7_http_opts *opts, o7_http **out, o7_err *err)
{
    static int global_done;
    if (!global_done) {
        if (curl_global_init(CURL_GLOBAL_DEFAULT) != CURLE_OK)
            return o7_fail(err, O7_ERR_HTTP, "libcurl failed to initialise");
        global_done = 1;
    }
    o7_http *h = calloc(1, sizeof *h);
    if (h == NULL)
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    h->opts = *opts;
    if (h->opts.concurrency < 1)
        h->opts.concurrency = 1;
    h->multi = curl_multi_init();
    if (h->multi == NULL) {
        free(h);
        return o7_fail(err, O7_ERR_HTTP, "libcurl could not make a multi handle");
    }
    /* One connection per request in flight, reused across requests. */
    curl_multi_setopt(h->multi, CURLMOPT_MAX_HOST_CONNECTIONS, (long)h->opts.concurrency);
    curl_multi_setopt(h->multi, CURLMOPT_MAXCONNECTS, (long)h->opts.concurrency + 2);
    o7_pacer_init(&h->pacer);
    h->rng = (unsigned)o7_now_ms() ^ 0x9e3779b9u;
    *out = h;
    return O7_OK;
}

static void job_free(job *j)
{
    free(j->method);
    free(j->url);
    free(j->body);
    curl_slist_free_all(j->headers);
    o7_buf_free(&j->resp.body);
    free(j);
}

static void enqueue(o7_http *h, job *j)
{
    job **pp = &h->queue;
    while (*pp && (*pp)->priority >= j->priority)
        pp = &(*pp)->next;
    j->next = *pp;
    *pp = j;
}

o7_rc o7_http_after(o7_http *h, int64_t ms, o7_http_done_fn done, void *ud)
{
    job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return O7_ERR_NOMEM;
    j->timer = 1;
    j->no_pacing = 1;
    j->priority = 1000;
    j->not_before = o7_now_ms() + ms;
    j->done = done;
    j->ud = ud;
    enqueue(h, j);
    return O7_OK;
}

o7_rc o7_http_submit(o7_http *h, const o7_http_req *req, o7_http_done_fn done, void *ud)
{
    job *j = calloc(1, sizeof *j);
    if (j == NULL)
        return O7_ERR_NOMEM;
    j->method = strdup(req->method);
    j->url = strdup(req->url);
    if (j->method == NULL || j->url == NULL)
        goto nomem;
    for (const char *const *hd = req->headers; hd && *hd; hd++) {
        struct curl_slist *l = curl_slist_append(j->headers, *hd);
        if (l == NULL)
            goto nomem;
        j->headers = l;
    }
    if (req->body_len) {
        j->body = malloc(req->body_len);
        if (j->body == NULL)
            goto nomem;
        memcpy(j->body, req->body, req->body_len);
        j->body_len = req->body_len;
    }
    j->priority = req->priority;
    j->retry_posts = req->retry_posts;
    j->no_pacing = req->no_pacing;
    j->sink = req->sink;
    j->sink_ud = req->sink_ud;
    j->done = done;
    j->ud = ud;
    enqueue(h, j);
    return O7_OK;
nomem:
    job_free(j);
    return O7_ERR_NOMEM;
}

static int64_t header_num(const char *v)
{
    char *end;
    long long n = strtoll(v, &end, 10);
    return end == v || n < 0 ? -1 : (int64_t)n;
}

static void rate_reset(o7_rate_headers *r)
{
    r->quota = r->left = r->reset_ms = r->window_ms = r->retry_after_s = -1;
}

/* Rate-limit headers, matched without regard to case. */
static size_t on_header(char *data, size_t size, size_t n, void *ud)
{
    job *j = ud;
    size_t len = size * n;
    if (len >= 5 && strncmp(data, "HTTP/", 5) == 0) {
        rate_reset(&j->resp.rate);
        return len;
    }
    static const struct {
        const char *name;
        size_t off;
    } names[] = {
        {"x-rate-limit-requests-quota", offsetof(o7_rate_headers, quota)},
        {"x-rate-limit-requests-left", offsetof(o7_rate_headers, left)},
        {"x-rate-limit-time-reset-ms", offsetof(o7_rate_headers, reset_ms)},
        {"x-rate-limit-time-window-ms", offsetof(o7_rate_headers, window_ms)},
        {"x-retry-after", offsetof(o7_rate_headers, retry_after_s)},
    };
    const char *colon = memchr(data, ':', len);
    if (colon == NULL)
        return len;
    size_t nlen = (size_t)(colon - data);
    for (size_t i = 0; i < sizeof names / sizeof names[0]; i++) {
        if (strlen(names[i].name) == nlen && strncasecmp(data, names[i].name, nlen) == 0) {
            char val[32];
            size_t vlen = len - nlen - 1;
            if (vlen >= sizeof val)
                vlen = sizeof val - 1;
            memcpy(val, colon + 1, vlen);
            val[vlen] = '\0';
            *(int64_t *)((char *)&j->resp.rate + names[i].off) = header_num(val);
        }
    }
    return len;
}

static size_t on_body(char *data, size_t size, size_t n, void *ud)
{
    job *j = ud;
    size_t len = size * n;
    long status = 0;
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    if (j->sink && status >= 200 && status < 300) {
        j->sink_started = 1;
        j->sink_rc = j->sink(j->sink_ud, data, len);
        return j->sink_rc == O7_OK ? len : 0;
    }
    /* Error bodies and buffered responses. A page is a few MB at most;
     * refuse anything absurd rather than exhaust memory. */
    if (j->resp.body.len + len > (256u << 20))
        return 0;
    return o7_buf_append(&j->resp.body, data, len) == O7_OK ? len : 0;
}

static CURL *take_easy(o7_http *h)
{
    if (h->npool > 0) {
        CURL *e = h->pool[--h->npool];
        curl_easy_reset(e);
        return e;
    }
    return curl_easy_init();
}

static void give_easy(o7_http *h, CURL *e)
{
    if (h->npool < (int)(sizeof h->pool / sizeof h->pool[0]))
        h->pool[h->npool++] = e;
    else
        curl_easy_cleanup(e);
}

static o7_rc start(o7_http *h, job *j)
{
    CURL *e = take_easy(h);
    if (e == NULL)
        return O7_ERR_NOMEM;
    j->easy = e;
    j->errbuf[0] = '\0';
    o7_buf_reset(&j->resp.body);
    rate_reset(&j->resp.rate);
    curl_easy_setopt(e, CURLOPT_URL, j->url);
    curl_easy_setopt(e, CURLOPT_PRIVATE, j);
    curl_easy_setopt(e, CURLOPT_HTTPHEADER, j->headers);
    curl_easy_setopt(e, CURLOPT_USERAGENT, h->opts.user_agent ? h->opts.user_agent : "o7");
    curl_easy_setopt(e, CURLOPT_ACCEPT_ENCODING, "");
    curl_easy_setopt(e, CURLOPT_WRITEFUNCTION, on_body);
    curl_easy_setopt(e, CURLOPT_WRITEDATA, j);
    curl_easy_setopt(e, CURLOPT_HEADERFUNCTION, on_header);
    curl_easy_setopt(e, CURLOPT_HEADERDATA, j);
    curl_easy_setopt(e, CURLOPT_ERRORBUFFER, j->errbuf);
    curl_easy_setopt(e, CURLOPT_NOSIGNAL, 1L);
    curl_easy_setopt(e, CURLOPT_TIMEOUT, (long)h->opts.timeout_s);
    curl_easy_setopt(e, CURLOPT_CONNECTTIMEOUT, (long)h->opts.connect_timeout_s);
    curl_easy_setopt(e, CURLOPT_PROTOCOLS_STR, "http,https");
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYPEER, 1L);
    curl_easy_setopt(e, CURLOPT_SSL_VERIFYHOST, 2L);
    if (strcmp(j->method, "GET") != 0) {
        curl_easy_setopt(e, CURLOPT_CUSTOMREQUEST, j->method);
        curl_easy_setopt(e, CURLOPT_POSTFIELDS, j->body ? j->body : "");
        curl_easy_setopt(e, CURLOPT_POSTFIELDSIZE_LARGE, (curl_off_t)j->body_len);
    }
    if (curl_multi_add_handle(h->multi, e) != CURLM_OK) {
        give_easy(h, e);
        j->easy = NULL;
        return O7_ERR_HTTP;
    }
    j->resp.attempts++;
    j->next = h->inflight;
    h->inflight = j;
    h->active++;
    h->stats.sent++;
    if (!j->no_pacing)
        o7_pacer_sent(&h->pacer, o7_now_ms());
    return O7_OK;
}

/* Sends what may go now; *wake is lowered to when the next may. */
static void start_ready(o7_http *h, int64_t now, int64_t *wake)
{
    job **pp = &h->queue;
    while (*pp && h->active < h->opts.concurrency) {
        job *j = *pp;
        int64_t wait = j->not_before > now ? j->not_before - now : 0;
        if (wait == 0 && !j->no_pacing) {
            wait = o7_pacer_wait(&h->pacer, now);
            if (wait > 0)
                h->stats.quota_waits++;
        }
        if (wait > 0) {
            if (wait < *wake)
                *wake = wait;
            pp = &j->next;
            continue;
        }
        *pp = j->next;
        j->next = NULL;
        if (j->timer) {
            j->done(j->ud, &j->resp);
            job_free(j);
            continue;
        }
        if (start(h, j) != O7_OK) {
            j->next = NULL;
            j->resp.rc = O7_ERR_HTTP;
            snprintf(j->resp.error, sizeof j->resp.error, "could not start the request");
            j->done(j->ud, &j->resp);
            job_free(j);
        }
    }
}

static int retryable_status(long s)
{
    return s == 429 || s == 500 || s == 502 || s == 503 || s == 504;
}

/* For debug lines: the URL's path, without scheme, host or query (a query
 * may carry a signature). Downloads from signed links show no URL at all. */
static void log_done(const job *j)
{
    if (O7_LOG_DEBUG < o7_log_min)
        return;
    const char *p = strstr(j->url, "://");
    p = p ? strchr(p + 3, '/') : NULL;
    int len = p ? (int)strcspn(p, "?") : 0;
    if (j->no_pacing || p == NULL)
        p = "(a download link)", len = (int)strlen(p);
    o7_debug("http", "%s %.*s -> %ld%s%s (attempt %d)", j->method, len, p, j->resp.status,
             j->resp.rc != O7_OK ? ", " : "", j->resp.rc != O7_OK ? j->resp.error : "",
             j->resp.attempts);
}

static void finish(o7_http *h, job *j)
{
    if (!j->timer)
        log_done(j);
    j->done(j->ud, &j->resp);
    job_free(j);
}

static void schedule_retry(o7_http *h, job *j, int64_t delay)
{
    h->stats.retries++;
    j->not_before = o7_now_ms() + delay;
    enqueue(h, j);
}

/* Exponential backoff with jitter: 0.5 s, 1 s, 2 s ... capped at 30 s. */
static int64_t backoff_ms(o7_http *h, int attempt)
{
    int64_t base = 500LL << (attempt < 7 ? attempt - 1 : 6);
    if (base > 30000)
        base = 30000;
    return base / 2 + (int64_t)(jitter(h) * (double)base / 2);
}

static void unlink_inflight(o7_http *h, job *j)
{
    for (job **pp = &h->inflight; *pp; pp = &(*pp)->next) {
        if (*pp == j) {
            *pp = j->next;
            j->next = NULL;
            return;
        }
    }
}

static void completed(o7_http *h, job *j, CURLcode res)
{
    int64_t now = o7_now_ms();
    unlink_inflight(h, j);
    long status = 0;
    curl_easy_getinfo(j->easy, CURLINFO_RESPONSE_CODE, &status);
    curl_off_t got = 0;
    curl_easy_getinfo(j->easy, CURLINFO_SIZE_DOWNLOAD_T, &got);
    h->stats.bytes_in += (uint64_t)got;
    curl_multi_remove_handle(h->multi, j->easy);
    give_easy(h, j->easy);
    j->easy = NULL;
    h->active--;

    int may_retry = strcmp(j->method, "GET") == 0 || strcmp(j->method, "HEAD") == 0 ||
                    strcmp(j->method, "PUT") == 0 || j->retry_posts;
    may_retry = may_retry && !j->sink_started;
    int tries_left = j->resp.attempts <= h->opts.max_retries;

    if (j->sink_rc != O7_OK) {
        if (!j->no_pacing)
            o7_pacer_lost(&h->pacer);
        j->resp.rc = j->sink_rc;
        snprintf(j->resp.error, sizeof j->resp.error, "the receiver refused the data");
        finish(h, j);
        return;
    }
    if (res != CURLE_OK) {
        if (!j->no_pacing)
            o7_pacer_lost(&h->pacer);
        snprintf(j->resp.error, sizeof j->resp.error, "%s",
                 j->errbuf[0] ? j->errbuf : curl_easy_strerror(res));
        if (may_retry && tries_left) {
            o7_debug("http", "%s failed (%s); retry %d", j->method, j->resp.error,
                     j->resp.attempts);
            schedule_retry(h, j, backoff_ms(h, j->resp.attempts));
            return;
        }
        j->resp.rc = O7_ERR_HTTP;
        j->resp.status = 0;
        finish(h, j);
        return;
    }
    if (!j->no_pacing)
        o7_pacer_answered(&h->pacer, now, &j->resp.rate);
    j->resp.status = status;
    j->resp.rc = O7_OK;
    if (status == 429) {
        h->stats.throttled++;
        int64_t wait = o7_pacer_throttled(&h->pacer, now, &j->resp.rate, jitter(h));
        /* Waiting as told is the right answer to a 429, so it gets a longer
         * leash than server errors do, but not an endless one. */
        /* A 429 was refused before any work was done, so even a POST is
         * safe to send again. */
        if (!j->sink_started && j->resp.attempts <= h->opts.max_retries + 12) {
            o7_info("http", "throttled by the store (429); waiting %lld ms", (long long)wait);
            schedule_retry(h, j, wait);
            return;
        }
    } else if (retryable_status(status)) {
        h->stats.server_errors++;
        if (may_retry && tries_left) {
            o7_info("http", "server answered %ld; retry %d", status, j->resp.attempts);
            schedule_retry(h, j, backoff_ms(h, j->resp.attempts));
            return;
        }
    }
    finish(h, j);
}

/* Completes the finished transfers; returns how many. */
static int drain(o7_http *h)
{
    CURLMsg *m;
    int left, n = 0;
    while ((m = curl_multi_info_read(h->multi, &left))) {
        if (m->msg != CURLMSG_DONE)
            continue;
        job *j;
        curl_easy_getinfo(m->easy_handle, CURLINFO_PRIVATE, (char **)&j);
        completed(h, j, m->data.result);
        n++;
    }
    return n;
}

static void fail_all(o7_http *h)
{
    while (h->inflight) {
        job *j = h->inflight;
        h->inflight = j->next;
        curl_multi_remove_handle(h->multi, j->easy);
        give_easy(h, j->easy);
        j->easy = NULL;
        h->active--;
        if (!j->no_pacing)
            o7_pacer_lost(&h->pacer);
        j->resp.rc = O7_ERR_INTERRUPTED;
        snprintf(j->resp.error, sizeof j->resp.error, "stopped");
        finish(h, j);
    }
    while (h->queue) {
        job *j = h->queue;
        h->queue = j->next;
        j->resp.rc = O7_ERR_INTERRUPTED;
        snprintf(j->resp.error, sizeof j->resp.error, "stopped");
        finish(h, j);
    }
}

o7_rc o7_http_run(o7_http *h, o7_err *err)
{
    while (!h->stopped && (h->queue || h->active)) {
        if (h->opts.stop_flag && *h->opts.stop_flag)
            h->stopped = 1;
        int64_t wake = 250;
        start_ready(h, o7_now_ms(), &wake);
        int running = 0;
        if (curl_multi_perform(h->multi, &running) != CURLM_OK)
            return o7_fail(err, O7_ERR_HTTP, "libcurl's event loop failed");
        /* The callbacks run in drain and usually queue the next page, and
         * a slot is free: go round at once so it is sent now. Waiting here
         * instead held it until another transfer stirred or the 250 ms
         * wake passed (with one request in flight, every page waited). */
        if (drain(h) > 0)
            continue;
        if (h->opts.stop_flag && *h->opts.stop_flag)
            h->stopped = 1;
        if (h->stopped || (!h->queue && !h->active))
            break;
        if (h->active == 0 && wake > 0) {
            struct timespec ts = {wake / 1000, (long)(wake % 1000) * 1000000L};
            nanosleep(&ts, NULL);
            continue;
        }
        curl_multi_poll(h->multi, NULL, 0, (int)(wake > 0 ? wake : 1), NULL);
    }
    if (h->stopped) {
        fail_all(h);
        return o7_fail(err, O7_ERR_INTERRUPTED, "stopped before the requests finished");
    }
    return O7_OK;
}

void o7_http_stop(o7_http *h)
{
    h->stopped = 1;
    curl_multi_wakeup(h->multi);
}

const o7_http_stats *o7_http_get_stats(const o7_http *h)
{
    return &h->stats;
}

void o7_http_free(o7_http *h)
{
    if (h == NULL)
        return;
    fail_all(h);
    for (int i = 0; i < h->npool; i++)
        curl_easy_cleanup(h->pool[i]);
    curl_multi_cleanup(h->multi);
    free(h);
}
