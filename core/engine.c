/* engine.c - the backup engine. See engine.h for the path a record takes.
 *
 * Everything runs in one thread around the HTTP client's loop: responses
 * arrive as callbacks, each callback does one step (split a page, start
 * child calls, write records, ask for the next page) and returns. */
#include "engine.h"
#include "buf.h"
#include "codec.h"
#include "crypto.h"
#include "json.h"
#include "log.h"

#include <errno.h>
#include <stdarg.h>
#include <stdint.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

/* Records waiting for child calls, across all types, before scans pause. */
#define PENDING_HIGH 800
#define PENDING_LOW 400
/* How often a page-numbered type may be rescanned after a shift. */
#define MAX_ATTEMPTS 3

/* ---- a set of record ids ------------------------------------------------ */

typedef struct idset {
    int64_t *slots; /* 0 = empty; ids are stored + 1 so id 0 works */
    size_t cap, n;
} idset;

static void idset_free(idset *s)
{
    free(s->slots);
    memset(s, 0, sizeof *s);
}

static size_t id_hash(int64_t v, size_t cap)
{
    uint64_t x = (uint64_t)v * 0x9e3779b97f4a7c15ull;
    return (size_t)(x >> 17) & (cap - 1);
}

/* Adds v; returns 1 if it was new, 0 if already there, -1 out of memory. */
static int idset_add(idset *s, int64_t v)
{
    if ((s->n + 1) * 2 > s->cap) {
        size_t cap = s->cap ? s->cap * 2 : 1024;
        int64_t *slots = calloc(cap, sizeof *slots);
        if (slots == NULL)
            return -1;
        for (size_t i = 0; i < s->cap; i++) {
            if (s->slots[i] == 0)
                continue;
            size_t h = id_hash(s->slots[i], cap);
            while (slots[h])
                h = (h + 1) & (cap - 1);
            slots[h] = s->slots[i];
        }
        free(s->slots);
        s->slots = slots;
        s->cap = cap;
    }
    int64_t key = v + 1;
    size_t h = id_hash(key, s->cap);
    while (s->slots[h]) {
        if (s->slots[h] == key)
            return 0;
        h = (h + 1) & (s->cap - 1);
    }
    s->slots[h] = key;
    s->n++;
    return 1;
}

/* ---- the state of one run ------------------------------------------------ */

typedef struct run run;

typedef struct stream {
    run *r;
    const o7_plugin *p;
    o7_type_result *res;
    o7_writer *w;
    o7_codec *enc;
    o7_sha256 *sha;
    int failed, done;
    int scans;      /* scan tasks still going */
    int pending;    /* records waiting for child calls */
    int fetching;   /* a fetch hook is running */
    int attempt;    /* page/cursor types: rescans after a shift */
    idset seen;
    int64_t total_hint;   /* about how many records, for progress */
    int64_t total_first;  /* page paging: the total on the first page */
    int64_t count_before; /* v2 page paging: the count endpoint at start */
} stream;

typedef enum { SCAN_FIRST, SCAN_PROBE, SCAN_RANGE, SCAN_PAGE, SCAN_CURSOR } scan_kind;

typedef struct scan {
    stream *s;
    scan_kind kind;
    int attempt;      /* the stream attempt it belongs to */
    int64_t lo;       /* keyset: records with id > lo */
    int64_t hi;       /* keyset: and id <= hi; -1 = open */
    int64_t page;     /* page paging: next page number */
    char *cursor;     /* cursor paging: next `after` */
    int parked;       /* waiting for pending records to drain */
    struct scan *next_parked;
} scan;

typedef struct pending {
    stream *s;
    int attempt;
    o7_buf raw;
    o7_child_spec *specs;
    size_t nspecs;
    o7_buf *arrays; /* one raw JSON array body per spec, without brackets */
    size_t *counts;
    int waiting;
    int dropped; /* the parent vanished mid-backup */
} pending;

typedef struct child {
    pending *pr;
    size_t i;
    int64_t page;
} child;

typedef struct fetch_task {
    stream *s;
    o7_fetch *f;
    o7_buf last_body; /* the last answer, for checking attach URLs */
    o7_fetch_op op;
    /* an attachment download in progress */
    o7_writer *aw;
    o7_sha256 *asha;
    int64_t abytes;
    char aobject[256];
} fetch_task;

struct run {
    const o7_conf *conf;
    o7_storage *st;
    o7_plugins *ps;
    const o7_backup_opts *opts;
    o7_backup_result *res;
    o7_http *http;
    char prefix[192]; /* "<store>/<backup>/" */
    char auth[512];   /* "X-Auth-Token: ..." */
    const char *headers[4];
    const char *post_headers[5];
    stream *streams;
    size_t nstreams;
    int pending_total;
    scan *parked;
    char fatal[1024]; /* stops the whole run: rejected token, interrupted */
    int64_t last_progress;
    int progress_shown;
};

static void stream_fail(stream *s, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
static void scan_next(scan *sc);
static void stream_maybe_done(stream *s);

static void run_fatal(run *r, const char *msg)
{
    if (r->fatal[0] == '\0')
        snprintf(r->fatal, sizeof r->fatal, "%s", msg);
    o7_http_stop(r->http);
}

#define INTERRUPTED_MSG "interrupted by a signal before the backup finished"

/* A request that ended because the run was stopped: nothing may be
 * committed after this, so the run is marked before any type can finish. */
static int stopped(run *r, const o7_http_resp *resp)
{
    if (resp->rc != O7_ERR_INTERRUPTED)
        return 0;
    run_fatal(r, INTERRUPTED_MSG);
    return 1;
}

/* ---- URLs --------------------------------------------------------------- */

static int unreserved(unsigned char c)
{
    return (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') || (c >= '0' && c <= '9') ||
           c == '-' || c == '.' || c == '_' || c == '~' || c == ',' || c == ':';
}

static o7_rc put_escaped(o7_buf *b, const char *s)
{
    static const char hex[] = "0123456789ABCDEF";
    for (; *s; s++) {
        unsigned char c = (unsigned char)*s;
        if (unreserved(c)) {
            if (o7_buf_putc(b, (char)c) != O7_OK)
                return O7_ERR_NOMEM;
        } else {
            char e[3] = {'%', hex[c >> 4], hex[c & 15]};
            if (o7_buf_append(b, e, 3) != O7_OK)
                return O7_ERR_NOMEM;
        }
    }
    return O7_OK;
}

o7_rc o7_api_url(o7_buf *out, const char *api_url, const char *store_hash, int v2,
                 const char *path, const o7_query_param *q, size_t nq, const char *extra_name,
                 const char *extra_value)
{
    o7_buf_reset(out);
    o7_rc rc = o7_buf_printf(out, "%s/stores/%s/%s%s", api_url, store_hash, v2 ? "v2" : "v3",
                             path);
    char sep = strchr(path, '?') ? '&' : '?';
    for (size_t i = 0; rc == O7_OK && i < nq + (extra_name != NULL); i++) {
        const char *n = i < nq ? q[i].name : extra_name;
        const char *v = i < nq ? q[i].value : extra_value;
        rc = o7_buf_putc(out, sep);
        sep = '&';
        if (rc == O7_OK)
            rc = put_escaped(out, n);
        if (rc == O7_OK)
            rc = o7_buf_putc(out, '=');
        if (rc == O7_OK)
            rc = put_escaped(out, v);
    }
    return rc;
}

/* Query parameters of a list request: the plugin's fixed ones, then the
 * paging ones. */
typedef struct qlist {
    o7_query_param p[32]; /* names and values point at strings that outlive the request */
    size_t n;
    char nums[8][32];
    size_t nnums;
} qlist;

static void q_add(qlist *q, const char *name, const char *value)
{
    if (q->n < sizeof q->p / sizeof q->p[0]) {
        q->p[q->n].name = (char *)(uintptr_t)name;
        q->p[q->n].value = (char *)(uintptr_t)value;
        q->n++;
    }
}

static void q_add_int(qlist *q, const char *name, int64_t v)
{
    if (q->nnums >= 8)
        return;
    snprintf(q->nums[q->nnums], sizeof q->nums[0], "%lld", (long long)v);
    q_add(q, name, q->nums[q->nnums++]);
}

typedef void (*resp_fn)(void *ud, o7_http_resp *resp);

static void get(run *r, stream *s, int v2, const char *path, const qlist *q, int priority,
                resp_fn fn, void *ud)
{
    o7_buf url = O7_BUF_INIT;
    o7_rc rc = o7_api_url(&url, r->conf->api_url, r->opts->store_hash, v2, path, q->p, q->n,
                          NULL, NULL);
    o7_http_req req = {.method = "GET", .url = url.data, .headers = r->headers,
                       .priority = priority};
    if (rc == O7_OK)
        rc = o7_http_submit(r->http, &req, fn, ud);
    o7_buf_free(&url);
    if (rc != O7_OK) {
        run_fatal(r, "out of memory queueing a request");
        return;
    }
    if (s)
        s->res->requests++;
}

/* ---- answers ------------------------------------------------------------- */

/* Checks an answer: O7_OK for a 2xx; for 401/403 the whole run stops. */
static o7_rc check_answer(run *r, stream *s, o7_http_resp *resp, const char *what)
{
    if (stopped(r, resp))
        return O7_ERR_INTERRUPTED;
    if (resp->rc != O7_OK) {
        stream_fail(s, "%s: no answer from the store API after %d tries: %s", what,
                    resp->attempts, resp->error);
        return O7_ERR_HTTP;
    }
    if (resp->status == 401) {
        run_fatal(r, "the store rejected the API token (401): re-add the store with a valid "
                     "token (o7 store add)");
        return O7_ERR_AUTH;
    }
    if (resp->status == 403) {
        char msg[512];
        snprintf(msg, sizeof msg,
                 "the API token lacks a scope (403) needed for %s: give the API account the "
                 "%s scope and re-add the store",
                 s ? s->p->type : what, s ? s->p->scope : "required");
        run_fatal(r, msg);
        return O7_ERR_AUTH;
    }
    if (resp->status < 200 || resp->status > 299) {
        char body[200];
        size_t n = resp->body.len < sizeof body - 1 ? resp->body.len : sizeof body - 1;
        for (size_t i = 0; i < n; i++)
            body[i] = (resp->body.data[i] >= 32 && resp->body.data[i] < 127) ? resp->body.data[i]
                                                                             : ' ';
        body[n] = '\0';
        stream_fail(s, "%s: the store API answered %ld after %d tries: %s", what, resp->status,
                    resp->attempts, body);
        return O7_ERR_HTTP;
    }
    return O7_OK;
}

/* The records of a page: v3 `data`, v2 the bare array (empty on 204). */
static o7_rc page_records(stream *s, o7_http_resp *resp, int v2, o7_json_span *doc,
                          o7_json_span *records, const char *what)
{
    static const char empty[] = "[]";
    if (resp->status == 204 || resp->body.len == 0) {
        o7_json_parse(empty, 2, records, NULL);
        doc->kind = O7_JSON_INVALID;
        return O7_OK;
    }
    o7_err e = {0};
    if (o7_json_parse(resp->body.data, resp->body.len, doc, &e) != O7_OK) {
        stream_fail(s, "%s: the store API sent a page that is not JSON: %s", what, e.msg);
        return O7_ERR_CORRUPT;
    }
    if (v2) {
        *records = *doc;
    } else if (doc->kind != O7_JSON_OBJECT || o7_json_get(doc, "data", records) != O7_OK) {
        stream_fail(s, "%s: the page has no data member", what);
        return O7_ERR_CORRUPT;
    }
    if (records->kind != O7_JSON_ARRAY) {
        stream_fail(s, "%s: the page's records are not a JSON array", what);
        return O7_ERR_CORRUPT;
    }
    return O7_OK;
}

static int64_t meta_int(const o7_json_span *doc, const char *path, int64_t dflt)
{
    o7_json_span v;
    int64_t n;
    if (doc->kind == O7_JSON_OBJECT && o7_json_path(doc, path, &v) == O7_OK &&
        o7_json_int(&v, &n) == O7_OK)
        return n;
    return dflt;
}

/* A page is full when it holds as many records as a page can: then there
 * may be more. Totals are never trusted to end a scan. */
static int page_full(const stream *s, const o7_json_span *doc, size_t count, int limit)
{
    int64_t per_page = meta_int(doc, "meta.pagination.per_page",
                                meta_int(doc, "meta.cursor_pagination.per_page", limit));
    if (per_page <= 0 || per_page > limit)
        per_page = limit;
    return count > 0 && (int64_t)count >= per_page;
}

/* ---- writing records ---------------------------------------------------- */

static o7_rc to_storage(void *ud, const void *data, size_t len)
{
    stream *s = ud;
    o7_sha256_update(s->sha, data, len);
    s->res->stored_bytes += (int64_t)len;
    o7_err e = {0};
    o7_rc rc = o7_writer_write(s->w, data, len, &e);
    if (rc != O7_OK)
        stream_fail(s, "%s", e.msg);
    return rc;
}

static o7_rc stream_open(stream *s)
{
    run *r = s->r;
    char key[384];
    o7_err e = {0};
    snprintf(s->res->object, sizeof s->res->object, "%s.ndjson%s", s->p->type,
             o7_codec_suffix(r->conf->codec));
    snprintf(key, sizeof key, "%s%s", r->prefix, s->res->object);
    s->sha = o7_sha256_new();
    if (s->sha == NULL)
        return O7_ERR_NOMEM;
    o7_rc rc = o7_storage_writer(r->st, key, &s->w, &e);
    if (rc == O7_OK)
        rc = o7_encoder_new(r->conf->codec, r->conf->level, to_storage, s, &s->enc);
    if (rc != O7_OK)
        stream_fail(s, "cannot start object %s: %s", key, e.msg[0] ? e.msg : o7_rc_str(rc));
    return rc;
}

static void stream_discard(stream *s)
{
    o7_codec_free(s->enc);
    s->enc = NULL;
    o7_writer_abort(s->w);
    s->w = NULL;
    if (s->sha) {
        char hex[65];
        o7_sha256_final_hex(s->sha, hex);
        s->sha = NULL;
    }
}

static void show_progress(run *r, int force);

static void write_record(stream *s, const char *raw, size_t len)
{
    if (s->failed || s->r->fatal[0])
        return;
    o7_err e = {0};
    o7_rc rc = o7_codec_write(s->enc, raw, len, &e);
    if (rc == O7_OK)
        rc = o7_codec_write(s->enc, "\n", 1, &e);
    if (rc != O7_OK) {
        stream_fail(s, "writing %s: %s", s->res->object, e.msg);
        return;
    }
    s->res->records++;
    s->res->bytes += (int64_t)len + 1;
    show_progress(s->r, 0);
}

static void stream_fail(stream *s, const char *fmt, ...)
{
    if (s == NULL || s->failed)
        return;
    s->failed = 1;
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(s->res->error, sizeof s->res->error, fmt, ap);
    va_end(ap);
    snprintf(s->res->status, sizeof s->res->status, "failed");
    o7_error("engine", "%s failed: %s", s->p->type, s->res->error);
    stream_discard(s);
}

static void stream_maybe_done(stream *s)
{
    if (s->done || s->scans > 0 || s->pending > 0 || s->fetching)
        return;
    s->done = 1;
    if (s->failed || s->r->fatal[0])
        return;
    o7_err e = {0};
    o7_rc rc = o7_codec_finish(s->enc, &e);
    o7_codec_free(s->enc);
    s->enc = NULL;
    if (rc != O7_OK) {
        stream_fail(s, "finishing %s: %s", s->res->object, e.msg);
        return;
    }
    o7_sha256_final_hex(s->sha, s->res->sha256);
    s->sha = NULL;
    rc = o7_writer_commit(s->w, &e);
    s->w = NULL;
    if (rc != O7_OK) {
        s->failed = 1;
        snprintf(s->res->status, sizeof s->res->status, "failed");
        snprintf(s->res->error, sizeof s->res->error, "storing %s: %s", s->res->object, e.msg);
        o7_error("engine", "%s failed: %s", s->p->type, s->res->error);
        return;
    }
    snprintf(s->res->status, sizeof s->res->status, "complete");
    o7_info("engine", "%s: %lld records, %lld bytes, stored %lld bytes as %s",
            s->p->type, (long long)s->res->records, (long long)s->res->bytes,
            (long long)s->res->stored_bytes, s->res->object);
    show_progress(s->r, 1);
}

/* ---- records with child calls -------------------------------------------- */

static void unpark(run *r)
{
    while (r->parked && r->pending_total < PENDING_LOW) {
        scan *sc = r->parked;
        r->parked = sc->next_parked;
        sc->parked = 0;
        scan_next(sc);
    }
}

static void pending_free(pending *pr)
{
    o7_buf_free(&pr->raw);
    for (size_t i = 0; i < pr->nspecs; i++)
        o7_buf_free(&pr->arrays[i]);
    free(pr->arrays);
    free(pr->counts);
    o7_child_specs_free(pr->specs, pr->nspecs);
    free(pr);
}

/* All child calls of a record are in: splice them and write it. */
static void pending_done(pending *pr)
{
    stream *s = pr->s;
    run *r = s->r;
    if (!pr->dropped && pr->attempt == s->attempt && !s->failed) {
        o7_buf rec = O7_BUF_INIT, tmp = O7_BUF_INIT, arr = O7_BUF_INIT;
        o7_rc rc = o7_buf_append(&rec, pr->raw.data, pr->raw.len);
        for (size_t i = 0; rc == O7_OK && i < pr->nspecs; i++) {
            o7_json_span obj;
            o7_buf_reset(&arr);
            rc = o7_buf_putc(&arr, '[');
            if (rc == O7_OK && pr->arrays[i].len)
                rc = o7_buf_append(&arr, pr->arrays[i].data, pr->arrays[i].len);
            if (rc == O7_OK)
                rc = o7_buf_putc(&arr, ']');
            if (rc == O7_OK)
                rc = o7_json_parse(rec.data, rec.len, &obj, NULL);
            o7_buf_reset(&tmp);
            if (rc == O7_OK)
                rc = o7_json_set(&obj, pr->specs[i].member, arr.data, arr.len, &tmp);
            if (rc == O7_OK) {
                o7_buf swap = rec;
                rec = tmp;
                tmp = swap;
            }
        }
        if (rc == O7_OK)
            write_record(s, rec.data, rec.len);
        else
            stream_fail(s, "cannot add child records to a %s record (%s)", s->p->type,
                        o7_rc_str(rc));
        o7_buf_free(&rec);
        o7_buf_free(&tmp);
        o7_buf_free(&arr);
    }
    s->pending--;
    r->pending_total--;
    pending_free(pr);
    unpark(r);
    stream_maybe_done(s);
}

static void child_get(child *c);

static void on_child(void *ud, o7_http_resp *resp)
{
    child *c = ud;
    pending *pr = c->pr;
    stream *s = pr->s;
    o7_child_spec *spec = &pr->specs[c->i];
    char what[256];
    snprintf(what, sizeof what, "%s %s", s->p->type, spec->path);

    if (pr->attempt != s->attempt || s->failed || s->r->fatal[0]) {
        /* Stale or failed: just account for it. */
    } else if (resp->rc == O7_OK && resp->status == 404) {
        /* The parent was deleted while we read it: it did not exist for the
         * whole backup, so it is left out, and said so. */
        if (!pr->dropped)
            o7_info("engine", "%s: a record vanished during the backup (%s answered 404); "
                    "left out", s->p->type, spec->path);
        pr->dropped = 1;
    } else if (check_answer(s->r, s, resp, what) == O7_OK) {
        o7_json_span doc, recs;
        if (page_records(s, resp, spec->v2, &doc, &recs, what) == O7_OK) {
            o7_json_iter it;
            o7_json_span k, v;
            size_t n = 0;
            o7_json_iter_init(&it, &recs);
            while (o7_json_next(&it, &k, &v)) {
                if (pr->counts[c->i]++ > 0)
                    o7_buf_putc(&pr->arrays[c->i], ',');
                o7_buf_append(&pr->arrays[c->i], v.p, v.len);
                n++;
            }
            if (page_full(s, &doc, n, spec->limit)) {
                c->page++;
                child_get(c);
                return;
            }
        }
    }
    free(c);
    if (--pr->waiting == 0)
        pending_done(pr);
}

static void child_get(child *c)
{
    pending *pr = c->pr;
    o7_child_spec *spec = &pr->specs[c->i];
    qlist q = {0};
    for (size_t i = 0; i < spec->nquery; i++)
        q_add(&q, spec->query[i].name, spec->query[i].value);
    q_add_int(&q, "limit", spec->limit);
    q_add_int(&q, "page", c->page);
    /* Child calls go first: they free memory, pages add to it. */
    get(pr->s->r, pr->s, spec->v2, spec->path, &q, 10, on_child, c);
}

/* One record from a page: written now, or held for its child calls. */
static void take_record(stream *s, int attempt, const char *raw, size_t len)
{
    if (!s->p->has_children) {
        write_record(s, raw, len);
        return;
    }
    o7_err e = {0};
    pending *pr = calloc(1, sizeof *pr);
    if (pr == NULL || o7_buf_append(&pr->raw, raw, len) != O7_OK) {
        free(pr);
        stream_fail(s, "out of memory");
        return;
    }
    pr->s = s;
    pr->attempt = attempt;
    if (o7_plugin_children(s->r->ps, s->p, raw, len, &pr->specs, &pr->nspecs, &e) != O7_OK) {
        stream_fail(s, "%s", e.msg);
        pending_free(pr);
        return;
    }
    if (pr->nspecs == 0) {
        write_record(s, raw, len);
        pending_free(pr);
        return;
    }
    pr->arrays = calloc(pr->nspecs, sizeof *pr->arrays);
    pr->counts = calloc(pr->nspecs, sizeof *pr->counts);
    if (pr->arrays == NULL || pr->counts == NULL) {
        stream_fail(s, "out of memory");
        pending_free(pr);
        return;
    }
    s->pending++;
    s->r->pending_total++;
    /* One extra count held while the calls start, so the record cannot
     * complete before the last one is queued. */
    pr->waiting = 1;
    for (size_t i = 0; i < pr->nspecs; i++) {
        if (pr->specs[i].empty)
            continue;
        pr->waiting++;
        child *c = calloc(1, sizeof *c);
        if (c == NULL) {
            stream_fail(s, "out of memory");
            if (--pr->waiting == 0)
                pending_done(pr);
            continue;
        }
        c->pr = pr;
        c->i = i;
        c->page = 1;
        child_get(c);
    }
    if (--pr->waiting == 0)
        pending_done(pr);
}

/* ---- scans ----------------------------------------------------------------- */

static scan *scan_new(stream *s, scan_kind kind)
{
    scan *sc = calloc(1, sizeof *sc);
    if (sc == NULL) {
        stream_fail(s, "out of memory");
        return NULL;
    }
    sc->s = s;
    sc->kind = kind;
    sc->attempt = s->attempt;
    sc->hi = -1;
    sc->page = 1;
    s->scans++;
    return sc;
}

static void scan_end(scan *sc)
{
    stream *s = sc->s;
    free(sc->cursor);
    free(sc);
    s->scans--;
    stream_maybe_done(s);
}

static void on_page(void *ud, o7_http_resp *resp);

static void scan_next(scan *sc)
{
    stream *s = sc->s;
    run *r = s->r;
    const o7_list_spec *l = &s->p->list;
    if (s->failed || r->fatal[0] || sc->attempt != s->attempt) {
        scan_end(sc);
        return;
    }
    if (r->pending_total >= PENDING_HIGH && sc->kind != SCAN_PROBE) {
        sc->parked = 1;
        sc->next_parked = r->parked;
        r->parked = sc;
        return;
    }
    qlist q = {0};
    if (sc->kind == SCAN_PROBE) {
        for (size_t i = 0; i < l->nnewest; i++)
            q_add(&q, l->newest[i].name, l->newest[i].value);
        for (size_t i = 0; i < l->nquery; i++)
            if (strcmp(l->query[i].name, "sort") != 0 && strcmp(l->query[i].name, "direction"))
                q_add(&q, l->query[i].name, l->query[i].value);
        q_add_int(&q, "limit", 1);
        get(r, s, l->v2, l->path, &q, 0, on_page, sc);
        return;
    }
    for (size_t i = 0; i < l->nquery; i++)
        q_add(&q, l->query[i].name, l->query[i].value);
    q_add_int(&q, "limit", l->limit);
    switch (sc->kind) {
    case SCAN_FIRST:
    case SCAN_RANGE:
        if (l->after)
            q_add_int(&q, l->after, sc->lo);
        else
            q_add_int(&q, l->from, sc->lo + 1);
        if (sc->hi >= 0)
            q_add_int(&q, l->upto, sc->hi);
        break;
    case SCAN_PAGE:
        q_add_int(&q, "page", sc->page);
        break;
    case SCAN_CURSOR:
        if (sc->cursor)
            q_add(&q, "after", sc->cursor);
        break;
    case SCAN_PROBE:
        break;
    }
    get(r, s, l->v2, l->path, &q, 0, on_page, sc);
}

/* Splits (lo, newest] into ranges scanned side by side. */
static void split_ranges(stream *s, int64_t lo, int64_t newest)
{
    run *r = s->r;
    int64_t span = newest - lo;
    int64_t parts = r->conf->concurrency;
    int64_t by_pages = span / s->p->list.limit + 1;
    if (parts > by_pages)
        parts = by_pages;
    if (parts < 1)
        parts = 1;
    for (int64_t i = 0; i < parts; i++) {
        scan *sc = scan_new(s, SCAN_RANGE);
        if (sc == NULL)
            return;
        sc->lo = lo + span * i / parts;
        /* The last range stays open, so records added past the newest id
         * seen at the start are read too. */
        sc->hi = i == parts - 1 ? -1 : lo + span * (i + 1) / parts;
        scan_next(sc);
    }
}

/* Throws away what a page-numbered scan wrote and starts again. Call it
 * before ending the scan that found the shift: that scan's end must not
 * be the type's last, or the type would be finished (and its object
 * stored) with the shifted pages in it. */
static void rescan(stream *s, const char *why)
{
    run *r = s->r;
    if (s->attempt + 1 >= MAX_ATTEMPTS) {
        stream_fail(s, "the list kept shifting while o7 read it (%s) %d times; try again when "
                    "the store is quieter", why, MAX_ATTEMPTS);
        return;
    }
    o7_warn("engine", "%s: %s; reading the type again", s->p->type, why);
    stream_discard(s);
    s->attempt++;
    s->res->records = s->res->bytes = s->res->stored_bytes = 0;
    idset_free(&s->seen);
    s->total_first = -1;
    if (stream_open(s) != O7_OK)
        return;
    scan *sc = scan_new(s, s->p->list.paging == O7_PAGING_CURSOR ? SCAN_CURSOR : SCAN_PAGE);
    if (sc)
        scan_next(sc);
    (void)r;
}

static void on_count(void *ud, o7_http_resp *resp);

static void on_page(void *ud, o7_http_resp *resp)
{
    scan *sc = ud;
    stream *s = sc->s;
    run *r = s->r;
    const o7_list_spec *l = &s->p->list;
    char what[256];
    snprintf(what, sizeof what, "%s %s", s->p->type, l->path);

    if (sc->attempt != s->attempt || s->failed || r->fatal[0] ||
        check_answer(r, s, resp, what) != O7_OK) {
        scan_end(sc);
        return;
    }
    o7_json_span doc, recs;
    if (page_records(s, resp, l->v2, &doc, &recs, what) != O7_OK) {
        scan_end(sc);
        return;
    }
    size_t n = o7_json_count(&recs);
    if (s->total_hint < 0)
        s->total_hint = meta_int(&doc, "meta.pagination.total", -1);

    if (sc->kind == SCAN_PROBE) {
        /* The newest record's id bounds the ranges. */
        int64_t newest = sc->lo;
        o7_json_iter it;
        o7_json_span k, v, id;
        o7_json_iter_init(&it, &recs);
        if (o7_json_next(&it, &k, &v) && o7_json_get(&v, l->key, &id) == O7_OK)
            o7_json_int(&id, &newest);
        int64_t lo = sc->lo;
        /* The ranges start before the probe ends, so the type is not seen
         * as finished in between. */
        split_ranges(s, lo, newest > lo ? newest : lo);
        scan_end(sc);
        return;
    }

    o7_json_iter it;
    o7_json_span k, v, idv;
    o7_json_iter_init(&it, &recs);
    int64_t last = sc->lo;
    while (o7_json_next(&it, &k, &v)) {
        int64_t id;
        if (v.kind != O7_JSON_OBJECT || o7_json_get(&v, l->key, &idv) != O7_OK ||
            o7_json_int(&idv, &id) != O7_OK) {
            stream_fail(s, "%s: a record has no whole-number %s member", what, l->key);
            scan_end(sc);
            return;
        }
        if (sc->kind == SCAN_FIRST || sc->kind == SCAN_RANGE) {
            if (id <= last || (sc->hi >= 0 && id > sc->hi)) {
                stream_fail(s, "%s: the API returned records out of id order (%lld after "
                            "%lld), so o7 cannot page it exactly", what, (long long)id,
                            (long long)last);
                scan_end(sc);
                return;
            }
            last = id;
            take_record(s, sc->attempt, v.p, v.len);
            continue;
        }
        int added = idset_add(&s->seen, id);
        if (added < 0) {
            stream_fail(s, "out of memory");
            scan_end(sc);
            return;
        }
        if (added == 0) {
            char why[128];
            snprintf(why, sizeof why, "record %lld was listed twice", (long long)id);
            rescan(s, why);
            scan_end(sc);
            return;
        }
        take_record(s, sc->attempt, v.p, v.len);
    }
    if (s->failed) {
        scan_end(sc);
        return;
    }
    int more = page_full(s, &doc, n, l->limit);

    switch (sc->kind) {
    case SCAN_FIRST:
        sc->lo = last;
        if (!more) {
            scan_end(sc);
            return;
        }
        /* More than a page: find the newest id, then read ranges side by
         * side. */
        sc->kind = SCAN_PROBE;
        scan_next(sc);
        return;
    case SCAN_RANGE:
        sc->lo = last;
        if (!more) {
            scan_end(sc);
            return;
        }
        break;
    case SCAN_PAGE:
        if (sc->page == 1)
            s->total_first = meta_int(&doc, "meta.pagination.total", -1);
        if (!more) {
            int64_t total_last = meta_int(&doc, "meta.pagination.total", -1);
            if (s->total_first >= 0 && total_last >= 0 && total_last != s->total_first) {
                char why[128];
                snprintf(why, sizeof why, "the total moved from %lld to %lld",
                         (long long)s->total_first, (long long)total_last);
                rescan(s, why);
                scan_end(sc);
                return;
            }
            if (l->v2 && l->count_path) {
                /* Ask the count again: if it moved, the pages shifted. */
                qlist q = {0};
                get(r, s, 1, l->count_path, &q, 5, on_count, sc);
                return;
            }
            scan_end(sc);
            return;
        }
        sc->page++;
        break;
    case SCAN_CURSOR: {
        o7_json_span c;
        free(sc->cursor);
        sc->cursor = NULL;
        if (o7_json_path(&doc, "meta.cursor_pagination.end_cursor", &c) == O7_OK &&
            c.kind == O7_JSON_STRING)
            o7_json_str(&c, &sc->cursor);
        if (n == 0 || sc->cursor == NULL || sc->cursor[0] == '\0') {
            scan_end(sc);
            return;
        }
        break;
    }
    case SCAN_PROBE:
        break;
    }
    scan_next(sc);
}

static int64_t count_of(o7_http_resp *resp)
{
    o7_json_span doc, c;
    int64_t n = -1;
    if (resp->rc == O7_OK && resp->status == 200 &&
        o7_json_parse(resp->body.data, resp->body.len, &doc, NULL) == O7_OK &&
        o7_json_get(&doc, "count", &c) == O7_OK)
        o7_json_int(&c, &n);
    return n;
}

/* The count at the end of a v2 page scan, against the one at the start. */
static void on_count(void *ud, o7_http_resp *resp)
{
    scan *sc = ud;
    stream *s = sc->s;
    int64_t after = count_of(resp);
    if (sc->attempt == s->attempt && !s->failed && s->count_before >= 0 && after >= 0 &&
        after != s->count_before) {
        char why[128];
        snprintf(why, sizeof why, "the count moved from %lld to %lld",
                 (long long)s->count_before, (long long)after);
        s->count_before = after;
        rescan(s, why);
        scan_end(sc);
        return;
    }
    scan_end(sc);
}

/* The count before a v2 page scan starts; then the scan. */
static void on_count_before(void *ud, o7_http_resp *resp)
{
    scan *sc = ud;
    stream *s = sc->s;
    if (stopped(s->r, resp)) {
        scan_end(sc);
        return;
    }
    s->count_before = count_of(resp);
    if (s->total_hint < 0)
        s->total_hint = s->count_before;
    scan_next(sc);
}

/* ---- fetch hooks ------------------------------------------------------- */

static void fetch_step(fetch_task *t, long status, const char *body, size_t blen);

static void fetch_end(fetch_task *t)
{
    stream *s = t->s;
    o7_writer_abort(t->aw);
    if (t->asha) {
        char hex[65];
        o7_sha256_final_hex(t->asha, hex);
    }
    o7_fetch_free(t->f);
    o7_buf_free(&t->last_body);
    free(t);
    s->fetching = 0;
    stream_maybe_done(s);
}

static void on_fetch_http(void *ud, o7_http_resp *resp)
{
    fetch_task *t = ud;
    stream *s = t->s;
    if (stopped(s->r, resp) || s->r->fatal[0]) {
        fetch_end(t);
        return;
    }
    if (resp->rc != O7_OK) {
        stream_fail(s, "%s: no answer from the store API: %s", s->p->type, resp->error);
        fetch_end(t);
        return;
    }
    if (resp->status == 401 || resp->status == 403) {
        check_answer(s->r, s, resp, s->p->type);
        fetch_end(t);
        return;
    }
    o7_buf_reset(&t->last_body);
    o7_buf_append(&t->last_body, resp->body.data ? resp->body.data : "", resp->body.len);
    fetch_step(t, resp->status, resp->body.data ? resp->body.data : "", resp->body.len);
}

static void on_fetch_timer(void *ud, o7_http_resp *resp)
{
    fetch_task *t = ud;
    if (stopped(t->s->r, resp)) {
        fetch_end(t);
        return;
    }
    fetch_step(t, -1, NULL, 0);
}

static o7_rc attach_sink(void *ud, const void *data, size_t len)
{
    fetch_task *t = ud;
    o7_err e = {0};
    o7_sha256_update(t->asha, data, len);
    t->abytes += (int64_t)len;
    return o7_writer_write(t->aw, data, len, &e);
}

static void on_attach(void *ud, o7_http_resp *resp)
{
    fetch_task *t = ud;
    stream *s = t->s;
    run *r = s->r;
    o7_err e = {0};
    const char *fail = NULL;
    char why[256];
    if (stopped(r, resp) || r->fatal[0]) {
        fetch_end(t);
        return;
    }
    if (resp->rc != O7_OK || resp->status != 200) {
        snprintf(why, sizeof why, "the download failed (%s%ld)",
                 resp->rc != O7_OK ? resp->error : "HTTP ", resp->status);
        fail = why;
    }
    o7_attachment a = {0};
    if (fail == NULL) {
        o7_sha256_final_hex(t->asha, a.sha256);
        t->asha = NULL;
        if (o7_writer_commit(t->aw, &e) != O7_OK) {
            snprintf(why, sizeof why, "%s", e.msg);
            fail = why;
        }
        t->aw = NULL;
    }
    if (fail == NULL) {
        o7_attachment *as =
            realloc(r->res->attachments, (r->res->nattachments + 1) * sizeof *as);
        if (as) {
            snprintf(a.object, sizeof a.object, "%s", t->aobject);
            snprintf(a.type, sizeof a.type, "%s", s->p->type);
            a.bytes = t->abytes;
            as[r->res->nattachments++] = a;
            r->res->attachments = as;
            o7_info("engine", "%s: stored attachment %s (%lld bytes)", s->p->type, t->aobject,
                    (long long)t->abytes);
        }
        fetch_step(t, O7_FETCH_ANSWER_OBJECT, t->aobject, strlen(t->aobject));
        return;
    }
    o7_writer_abort(t->aw);
    t->aw = NULL;
    fetch_step(t, O7_FETCH_ANSWER_NIL_ERR, fail, strlen(fail));
}

static int safe_name(const char *s)
{
    if (*s == '\0' || *s == '.')
        return 0;
    for (; *s; s++)
        if (!((*s >= 'a' && *s <= 'z') || (*s >= 'A' && *s <= 'Z') || (*s >= '0' && *s <= '9') ||
              *s == '-' || *s == '_' || *s == '.'))
            return 0;
    return 1;
}

/* Whether url occurs in the API's answer, as written or with '/' escaped. */
static int handed_back(const o7_buf *body, const char *url)
{
    if (body->len == 0)
        return 0;
    if (strstr(body->data, url))
        return 1;
    o7_buf esc = O7_BUF_INIT;
    for (const char *p = url; *p; p++)
        if (*p == '/' ? o7_buf_puts(&esc, "\\/") : o7_buf_putc(&esc, *p))
            break;
    int found = esc.data && strstr(body->data, esc.data) != NULL;
    o7_buf_free(&esc);
    return found;
}

static void start_attach(fetch_task *t, const o7_fetch_request *q)
{
    stream *s = t->s;
    run *r = s->r;
    /* Only a link the store's API just handed back may be fetched. */
    if (!safe_name(q->a)) {
        stream_fail(s, "plugin %s: attachment name %s holds characters other than letters, "
                    "digits, '-', '_' and '.'", s->p->type, q->a);
        fetch_end(t);
        return;
    }
    if (!handed_back(&t->last_body, q->b) ||
        (strncmp(q->b, "https://", 8) != 0 && strncmp(q->b, "http://127.", 11) != 0)) {
        stream_fail(s, "plugin %s: attach() accepts only a download link from the API's last "
                    "answer", s->p->type);
        fetch_end(t);
        return;
    }
    char key[512];
    snprintf(t->aobject, sizeof t->aobject, "attachments/%s/%s", s->p->type, q->a);
    snprintf(key, sizeof key, "%s%s", r->prefix, t->aobject);
    o7_err e = {0};
    t->asha = o7_sha256_new();
    t->abytes = 0;
    if (t->asha == NULL || o7_storage_writer(r->st, key, &t->aw, &e) != O7_OK) {
        stream_fail(s, "cannot store attachment %s: %s", t->aobject, e.msg);
        fetch_end(t);
        return;
    }
    /* No token goes to a download host, and it is not the store's quota. */
    static const char *no_headers[] = {NULL};
    o7_http_req req = {.method = "GET", .url = q->b, .headers = no_headers, .priority = 5,
                       .sink = attach_sink, .sink_ud = t, .no_pacing = 1};
    if (o7_http_submit(r->http, &req, on_attach, t) != O7_OK) {
        stream_fail(s, "out of memory");
        fetch_end(t);
        return;
    }
    s->res->requests++;
}

static void fetch_step(fetch_task *t, long status, const char *body, size_t blen)
{
    stream *s = t->s;
    run *r = s->r;
    for (;;) {
        o7_fetch_request q;
        o7_err e = {0};
        if (s->failed || r->fatal[0]) {
            fetch_end(t);
            return;
        }
        if (o7_fetch_resume(t->f, status, body, blen, &q, &e) != O7_OK) {
            stream_fail(s, "%s", e.msg);
            fetch_end(t);
            return;
        }
        status = -1, body = NULL, blen = 0;
        switch (q.op) {
        case O7_FETCH_DONE:
            fetch_end(t);
            return;
        case O7_FETCH_EMIT: {
            o7_json_span v;
            if (o7_json_parse(q.a, q.alen, &v, &e) != O7_OK || v.kind != O7_JSON_OBJECT) {
                stream_fail(s, "plugin %s emitted a record that is not a JSON object%s%s",
                            s->p->type, e.msg[0] ? ": " : "", e.msg);
                fetch_end(t);
                return;
            }
            write_record(s, q.a, q.alen);
            status = 1; /* true */
            continue;
        }
        case O7_FETCH_GET:
        case O7_FETCH_POST: {
            int v2 = strncmp(q.a, "/v2/", 4) == 0;
            const char *path = q.a + ((v2 || strncmp(q.a, "/v3/", 4) == 0) ? 3 : 0);
            o7_buf url = O7_BUF_INIT;
            o7_rc rc = o7_api_url(&url, r->conf->api_url, r->opts->store_hash, v2, path,
                                  q.query, q.nquery, NULL, NULL);
            o7_http_req req = {.method = q.op == O7_FETCH_GET ? "GET" : "POST",
                               .url = url.data,
                               .headers = q.op == O7_FETCH_GET ? r->headers : r->post_headers,
                               .body = q.b, .body_len = q.blen, .priority = 5,
                               .retry_posts = 1};
            if (rc == O7_OK)
                rc = o7_http_submit(r->http, &req, on_fetch_http, t);
            o7_buf_free(&url);
            if (rc != O7_OK) {
                stream_fail(s, "out of memory");
                fetch_end(t);
            } else {
                s->res->requests++;
            }
            return;
        }
        case O7_FETCH_SLEEP:
            if (o7_http_after(r->http, q.ms > 0 ? q.ms : 0, on_fetch_timer, t) != O7_OK) {
                stream_fail(s, "out of memory");
                fetch_end(t);
            }
            return;
        case O7_FETCH_ATTACH:
            start_attach(t, &q);
            return;
        case O7_FETCH_PUT:
        case O7_FETCH_DELETE:
        case O7_FETCH_MAP:
        case O7_FETCH_REMEMBER:
        case O7_FETCH_REPORT:
        case O7_FETCH_UPLOAD:
            /* The fetch api has no such calls; only restore hooks do. */
            stream_fail(s, "plugin %s: fetch asked for a restore-only operation", s->p->type);
            fetch_end(t);
            return;
        }
    }
}

/* ---- starting a type ------------------------------------------------------ */

static void stream_start(stream *s)
{
    const o7_plugin *p = s->p;
    run *r = s->r;
    s->total_hint = -1;
    s->total_first = -1;
    s->count_before = -1;
    if (stream_open(s) != O7_OK)
        return;
    if (p->has_fetch) {
        fetch_task *t = calloc(1, sizeof *t);
        o7_err e = {0};
        if (t == NULL || o7_fetch_start(r->ps, p, &t->f, &e) != O7_OK) {
            free(t);
            stream_fail(s, "%s", e.msg[0] ? e.msg : "out of memory");
            return;
        }
        t->s = s;
        s->fetching = 1;
        fetch_step(t, -1, NULL, 0);
        return;
    }
    scan *sc;
    switch (p->list.paging) {
    case O7_PAGING_KEYSET:
        sc = scan_new(s, SCAN_FIRST);
        if (sc)
            scan_next(sc);
        break;
    case O7_PAGING_CURSOR:
        sc = scan_new(s, SCAN_CURSOR);
        if (sc)
            scan_next(sc);
        break;
    case O7_PAGING_PAGE:
        sc = scan_new(s, SCAN_PAGE);
        if (sc == NULL)
            break;
        if (p->list.v2 && p->list.count_path) {
            qlist q = {0};
            get(r, s, 1, p->list.count_path, &q, 5, on_count_before, sc);
        } else {
            scan_next(sc);
        }
        break;
    }
}

/* ---- progress -------------------------------------------------------------- */

static void show_progress(run *r, int force)
{
    int64_t now = o7_now_ms();
    int tty = r->opts->progress;
    if (!force && now - r->last_progress < (tty ? 200 : 10000))
        return;
    if (!tty && !force)
        r->last_progress = now;
    if (!tty) {
        if (force)
            return;
        for (size_t i = 0; i < r->nstreams; i++) {
            stream *s = &r->streams[i];
            if (!s->done && s->res->records > 0 && s->total_hint > 0)
                o7_info("engine", "%s: %lld records so far, of about %lld", s->p->type,
                        (long long)s->res->records, (long long)s->total_hint);
            else if (!s->done && s->res->records > 0)
                o7_info("engine", "%s: %lld records so far", s->p->type,
                        (long long)s->res->records);
        }
        return;
    }
    r->last_progress = now;
    char line[1024];
    size_t n = 0;
    for (size_t i = 0; i < r->nstreams && n < sizeof line - 64; i++) {
        stream *s = &r->streams[i];
        if (s->total_hint > 0 && !s->done)
            n += (size_t)snprintf(line + n, sizeof line - n, "%s %lld/~%lld  ", s->p->type,
                                  (long long)s->res->records, (long long)s->total_hint);
        else
            n += (size_t)snprintf(line + n, sizeof line - n, "%s %lld%s  ", s->p->type,
                                  (long long)s->res->records, s->done ? " done" : "");
    }
    fprintf(stderr, "\r\033[K%s", line);
    r->progress_shown = 1;
}

/* ---- the manifest ----------------------------------------------------------- */

static void rfc3339(int64_t t, char out[32])
{
    time_t tt = (time_t)t;
    struct tm tm;
    gmtime_r(&tt, &tm);
    strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm);
}

static o7_rc manifest_json(const run *r, o7_buf *b)
{
    const o7_backup_result *res = r->res;
    char started[32], finished[32];
    rfc3339(res->started_at, started);
    rfc3339(res->finished_at, finished);
    o7_rc rc = o7_buf_printf(b,
                             "{\n  \"format\": 1,\n  \"store_hash\": \"%s\",\n  \"backup_id\": "
                             "\"%s\",\n  \"started_at\": \"%s\",\n  \"finished_at\": \"%s\",\n  "
                             "\"o7_version\": \"%s\",\n  \"types\": {",
                             res->store_hash, res->id, started, finished, O7_VERSION);
    for (size_t i = 0; rc == O7_OK && i < res->ntypes; i++) {
        const o7_type_result *t = &res->types[i];
        rc = o7_buf_printf(b,
                           "%s\n    \"%s\": {\"object\": \"%s\", \"codec\": \"%s\", \"records\": "
                           "%lld, \"bytes\": %lld, \"stored_bytes\": %lld, \"sha256\": \"%s\", "
                           "\"plugin\": \"%s\", \"plugin_version\": \"%s\"}",
                           i ? "," : "", t->type, t->object, o7_codec_name(r->conf->codec),
                           (long long)t->records, (long long)t->bytes,
                           (long long)t->stored_bytes, t->sha256, t->type, t->plugin_version);
    }
    if (rc == O7_OK)
        rc = o7_buf_puts(b, res->ntypes ? "\n  },\n  \"attachments\": [" : "},\n  \"attachments\": [");
    for (size_t i = 0; rc == O7_OK && i < res->nattachments; i++) {
        const o7_attachment *a = &res->attachments[i];
        rc = o7_buf_printf(b,
                           "%s\n    {\"object\": \"%s\", \"type\": \"%s\", \"bytes\": %lld, "
                           "\"sha256\": \"%s\"}",
                           i ? "," : "", a->object, a->type, (long long)a->bytes, a->sha256);
    }
    if (rc == O7_OK)
        rc = o7_buf_puts(b, res->nattachments ? "\n  ]\n}\n" : "]\n}\n");
    return rc;
}

static o7_rc write_manifest(run *r, char sha[65], o7_err *err)
{
    o7_buf b = O7_BUF_INIT;
    o7_rc rc = manifest_json(r, &b);
    if (rc != O7_OK) {
        o7_buf_free(&b);
        return o7_fail(err, rc, "cannot build the manifest");
    }
    o7_sha256_hex(b.data, b.len, sha);
    char key[384];
    snprintf(key, sizeof key, "%smanifest.json", r->prefix);
    o7_writer *w = NULL;
    rc = o7_storage_writer(r->st, key, &w, err);
    if (rc == O7_OK)
        rc = o7_writer_write(w, b.data, b.len, err);
    if (rc == O7_OK)
        rc = o7_writer_commit(w, err);
    else
        o7_writer_abort(w);
    o7_buf_free(&b);
    return rc;
}

/* ---- locks, ids, cleanup --------------------------------------------------- */

o7_rc o7_store_lock(const o7_conf *conf, const char *store_hash, int *fd, o7_err *err)
{
    char dir[4096], path[4200];
    snprintf(dir, sizeof dir, "%s", conf->catalog_path);
    char *slash = strrchr(dir, '/');
    if (slash)
        *slash = '\0';
    size_t n = strlen(dir);
    snprintf(dir + n, sizeof dir - n, "/locks");
    if (mkdir(dir, 0700) != 0 && errno != EEXIST)
        return o7_fail(err, O7_ERR_IO, "cannot create the lock folder %s: %s", dir,
                       strerror(errno));
    snprintf(path, sizeof path, "%s/%s.lock", dir, store_hash);
    int f = open(path, O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    if (f < 0)
        return o7_fail(err, O7_ERR_IO, "cannot open lock file %s: %s", path, strerror(errno));
    if (flock(f, LOCK_EX | LOCK_NB) != 0) {
        char pid[32] = "";
        ssize_t got = pread(f, pid, sizeof pid - 1, 0);
        pid[got > 0 ? got : 0] = '\0';
        pid[strcspn(pid, "\n")] = '\0';
        close(f);
        return o7_fail(err, O7_ERR_BUSY,
                       "a backup or restore of store %s is already running%s%s%s; o7 runs one "
                       "at a time per store, try again when it has finished",
                       store_hash, pid[0] ? " (process " : "", pid, pid[0] ? ")" : "");
    }
    char pid[32];
    int len = snprintf(pid, sizeof pid, "%d\n", (int)getpid());
    if (ftruncate(f, 0) == 0 && pwrite(f, pid, (size_t)len, 0) < 0)
        o7_debug("engine", "could not note our pid in %s", path);
    *fd = f;
    return O7_OK;
}

void o7_store_unlock(int fd)
{
    if (fd >= 0) {
        if (ftruncate(fd, 0) != 0)
            o7_debug("engine", "could not clear the lock file");
        flock(fd, LOCK_UN);
        close(fd);
    }
}

void o7_backup_id_new(char out[64])
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[32];
    strftime(stamp, sizeof stamp, "%Y%m%dT%H%M%S", &tm);
    unsigned char rnd[3] = {0};
    o7_random(rnd, sizeof rnd);
    snprintf(out, 64, "%s.%03ldZ-%02x%02x%02x", stamp, ts.tv_nsec / 1000000, rnd[0], rnd[1],
             rnd[2]);
}

typedef struct gc_folder {
    char id[64];
    int has_manifest;
    int64_t newest_mtime;
} gc_folder;

typedef struct gc_state {
    const char *store;
    gc_folder *f;
    size_t n, cap;
} gc_state;

static o7_rc gc_collect(void *ud, const o7_object_info *info)
{
    gc_state *g = ud;
    const char *rest = info->key + strlen(g->store) + 1;
    const char *slash = strchr(rest, '/');
    if (slash == NULL || (size_t)(slash - rest) >= 64)
        return O7_OK;
    size_t idlen = (size_t)(slash - rest);
    gc_folder *f = g->n ? &g->f[g->n - 1] : NULL;
    if (f == NULL || strlen(f->id) != idlen || strncmp(f->id, rest, idlen) != 0) {
        if (g->n == g->cap) {
            size_t cap = g->cap ? g->cap * 2 : 16;
            gc_folder *nf = realloc(g->f, cap * sizeof *nf);
            if (nf == NULL)
                return O7_ERR_NOMEM;
            g->f = nf;
            g->cap = cap;
        }
        f = &g->f[g->n++];
        memset(f, 0, sizeof *f);
        memcpy(f->id, rest, idlen);
    }
    if (strcmp(slash + 1, "manifest.json") == 0)
        f->has_manifest = 1;
    if (info->mtime > f->newest_mtime)
        f->newest_mtime = info->mtime;
    return O7_OK;
}

typedef struct gc_del {
    o7_storage *st;
    o7_err *err;
} gc_del;

static o7_rc gc_delete_one(void *ud, const o7_object_info *info)
{
    gc_del *d = ud;
    return o7_storage_delete(d->st, info->key, d->err);
}

o7_rc o7_backup_gc_store(o7_storage *st, o7_catalog *cat, const char *store_hash,
                         int64_t max_age, int *removed, o7_err *err)
{
    char prefix[128];
    snprintf(prefix, sizeof prefix, "%s/", store_hash);
    gc_state g = {.store = store_hash};
    *removed = 0;
    o7_rc rc = o7_storage_list(st, prefix, gc_collect, &g, err);
    int64_t now = (int64_t)time(NULL);
    for (size_t i = 0; rc == O7_OK && i < g.n; i++) {
        gc_folder *f = &g.f[i];
        if (f->has_manifest || (f->newest_mtime && now - f->newest_mtime < max_age))
            continue;
        o7_backup_row row = {0};
        o7_err e = {0};
        o7_rc got = o7_catalog_backup_get(cat, f->id, &row, &e);
        int failed_or_unknown = got == O7_ERR_NOTFOUND ||
                                (got == O7_OK && strcmp(row.status, "failed") == 0);
        o7_backup_row_free(&row);
        if (!failed_or_unknown)
            continue;
        char folder[192];
        snprintf(folder, sizeof folder, "%s/%s/", store_hash, f->id);
        gc_del d = {st, err};
        rc = o7_storage_list(st, folder, gc_delete_one, &d, err);
        if (rc == O7_OK) {
            (*removed)++;
            o7_info("engine", "removed unfinished backup folder %s (no manifest)", folder);
        }
    }
    free(g.f);
    return rc;
}

/* ---- the run ------------------------------------------------------------------ */

void o7_backup_result_free(o7_backup_result *res)
{
    free(res->types);
    free(res->attachments);
    res->types = NULL;
    res->attachments = NULL;
    res->ntypes = res->nattachments = 0;
}

static o7_rc pick_types(run *r, o7_err *err)
{
    const o7_backup_opts *o = r->opts;
    o7_plugins *ps = r->ps;
    size_t n = o->types ? o->ntypes : ps->n;
    r->streams = calloc(n ? n : 1, sizeof *r->streams);
    r->res->types = calloc(n ? n : 1, sizeof *r->res->types);
    if (r->streams == NULL || r->res->types == NULL)
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < n; i++) {
        const o7_plugin *p = o->types ? o7_plugins_find(ps, o->types[i]) : &ps->items[i];
        if (p == NULL)
            return o7_fail(err, O7_ERR_USAGE,
                           "no plugin provides type %s (see o7 plugins for the loaded ones)",
                           o->types[i]);
        for (size_t j = 0; j < r->nstreams; j++)
            if (r->streams[j].p == p)
                return o7_fail(err, O7_ERR_USAGE, "type %s is named twice", p->type);
        stream *s = &r->streams[r->nstreams];
        o7_type_result *t = &r->res->types[r->nstreams];
        r->nstreams++;
        s->r = r;
        s->p = p;
        s->res = t;
        snprintf(t->type, sizeof t->type, "%s", p->type);
        snprintf(t->plugin_version, sizeof t->plugin_version, "%s", p->version);
        snprintf(t->status, sizeof t->status, "running");
    }
    r->res->ntypes = r->nstreams;
    if (r->nstreams == 0)
        return o7_fail(err, O7_ERR_USAGE, "no types to back up: no plugin loaded from %s",
                       r->conf->plugins_dir);
    return O7_OK;
}

static void types_csv(const run *r, char *out, size_t n)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < r->nstreams && at < n; i++)
        at += (size_t)snprintf(out + at, n - at, "%s%s", i ? "," : "", r->streams[i].p->type);
}

static void fill_row(const run *r, o7_backup_row *row)
{
    const o7_backup_result *res = r->res;
    memset(row, 0, sizeof *row);
    snprintf(row->id, sizeof row->id, "%s", res->id);
    snprintf(row->store_hash, sizeof row->store_hash, "%s", res->store_hash);
    snprintf(row->status, sizeof row->status, "%s", res->status);
    snprintf(row->kind, sizeof row->kind, "%s", r->opts->kind ? r->opts->kind : "manual");
    snprintf(row->actor, sizeof row->actor, "%s", r->opts->actor ? r->opts->actor : "cli");
    snprintf(row->error, sizeof row->error, "%s", res->error);
    row->started_at = res->started_at;
    row->finished_at = res->finished_at;
}

/* Pages every type through the HTTP loop. */
static o7_rc run_types(run *r, o7_err *err)
{
    o7_http_opts ho = {.concurrency = r->conf->concurrency,
                       .stop_flag = r->opts->interrupted,
                       .timeout_s = r->conf->timeout_s,
                       .connect_timeout_s = r->conf->connect_timeout_s,
                       .max_retries = r->conf->max_retries,
                       .user_agent = "o7/" O7_VERSION};
    o7_rc rc = o7_http_new(&ho, &r->http, err);
    if (rc != O7_OK)
        return rc;
    for (size_t i = 0; i < r->nstreams; i++)
        stream_start(&r->streams[i]);
    o7_err loop_err = {0};
    volatile sig_atomic_t *stop = r->opts->interrupted;
    /* The loop returns on its own when all is done; a signal makes the
     * handler's flag visible here through o7_http_stop's wakeup. */
    while ((rc = o7_http_run(r->http, &loop_err)) == O7_OK && stop && *stop == 0) {
        int busy = 0;
        for (size_t i = 0; i < r->nstreams; i++)
            busy |= !r->streams[i].done && !r->streams[i].failed;
        if (!busy)
            break;
    }
    if (stop && *stop)
        run_fatal(r, INTERRUPTED_MSG);
    if (rc != O7_OK && r->fatal[0] == '\0')
        run_fatal(r, loop_err.msg);
    r->res->http = *o7_http_get_stats(r->http);
    if (r->progress_shown)
        fputc('\n', stderr);
    return O7_OK;
}

static void run_cleanup(run *r)
{
    for (size_t i = 0; i < r->nstreams; i++) {
        stream *s = &r->streams[i];
        if (!s->done || s->failed || r->fatal[0])
            stream_discard(s);
        if (strcmp(s->res->status, "complete") != 0 && strcmp(s->res->status, "failed") != 0)
            snprintf(s->res->status, sizeof s->res->status, "failed");
        idset_free(&s->seen);
    }
    /* Scans parked when the run stopped. */
    while (r->parked) {
        scan *sc = r->parked;
        r->parked = sc->next_parked;
        free(sc->cursor);
        free(sc);
    }
    o7_http_free(r->http);
    free(r->streams);
    o7_wipe(r->auth, sizeof r->auth);
}

static void sentence_for_failure(run *r)
{
    o7_backup_result *res = r->res;
    if (r->fatal[0]) {
        snprintf(res->error, sizeof res->error, "%s", r->fatal);
        return;
    }
    size_t at = 0;
    for (size_t i = 0; i < r->nstreams && at < sizeof res->error; i++) {
        stream *s = &r->streams[i];
        if (s->failed)
            at += (size_t)snprintf(res->error + at, sizeof res->error - at, "%s%s: %s",
                                   at ? "; " : "", s->p->type, s->res->error);
    }
}

o7_rc o7_backup_run(const o7_conf *conf, o7_catalog *cat, o7_storage *st, o7_plugins *ps,
                    const o7_backup_opts *opts, o7_backup_result *res, o7_err *err)
{
    memset(res, 0, sizeof *res);
    run r = {.conf = conf, .st = st, .ps = ps, .opts = opts, .res = res};
    snprintf(res->store_hash, sizeof res->store_hash, "%s", opts->store_hash);
    snprintf(res->status, sizeof res->status, "failed");

    o7_rc rc = pick_types(&r, err);
    if (rc != O7_OK) {
        free(r.streams);
        return rc;
    }
    int lock = -1;
    rc = opts->lock_held ? O7_OK : o7_store_lock(conf, opts->store_hash, &lock, err);
    if (rc != O7_OK) {
        free(r.streams);
        return rc;
    }
    int stale = 0, removed = 0;
    o7_catalog_backup_fail_running(cat, opts->store_hash,
                                   "the process running this backup stopped before it finished",
                                   &stale, NULL);
    o7_err gc_err = {0};
    if (o7_backup_gc_store(st, cat, opts->store_hash, 24 * 3600, &removed, &gc_err) != O7_OK)
        o7_warn("engine", "cleanup of unfinished backups skipped: %s", gc_err.msg);

    o7_backup_id_new(res->id);
    o7_log_set_job(res->id);
    snprintf(r.prefix, sizeof r.prefix, "%s/%s/", opts->store_hash, res->id);
    snprintf(r.auth, sizeof r.auth, "X-Auth-Token: %s", opts->token);
    r.headers[0] = r.auth;
    r.headers[1] = "Accept: application/json";
    r.headers[2] = NULL;
    r.post_headers[0] = r.auth;
    r.post_headers[1] = "Accept: application/json";
    r.post_headers[2] = "Content-Type: application/json";
    r.post_headers[3] = NULL;
    res->started_at = (int64_t)time(NULL);
    res->started_ms = o7_now_ms();

    char types[1024];
    types_csv(&r, types, sizeof types);
    o7_backup_row row;
    snprintf(res->status, sizeof res->status, "running");
    fill_row(&r, &row);
    rc = o7_catalog_backup_begin(cat, &row, err);
    if (rc != O7_OK) {
        o7_store_unlock(lock);
        free(r.streams);
        o7_log_set_job(NULL);
        return rc;
    }
    o7_catalog_audit(cat, opts->store_hash, row.actor, "backup", types, "started", res->id, NULL);
    o7_info("engine", "backup of store %s to %s: %s", opts->store_hash,
            o7_storage_describe(st), types);

    run_types(&r, err);

    int ok = r.fatal[0] == '\0';
    for (size_t i = 0; i < r.nstreams; i++)
        ok &= r.streams[i].done && !r.streams[i].failed;
    res->finished_at = (int64_t)time(NULL);
    res->finished_ms = o7_now_ms();
    char manifest_sha[65] = "";
    if (ok) {
        o7_err merr = {0};
        if (write_manifest(&r, manifest_sha, &merr) != O7_OK) {
            ok = 0;
            snprintf(r.fatal, sizeof r.fatal, "the manifest could not be stored: %s", merr.msg);
        }
    }
    if (!ok)
        sentence_for_failure(&r);
    snprintf(res->status, sizeof res->status, "%s", ok ? "complete" : "failed");
    run_cleanup(&r);

    /* The catalog says complete only after the manifest is durable. */
    fill_row(&r, &row);
    snprintf(row.manifest_sha256, sizeof row.manifest_sha256, "%s", manifest_sha);
    o7_backup_type_row *trows = calloc(res->ntypes ? res->ntypes : 1, sizeof *trows);
    for (size_t i = 0; trows && i < res->ntypes; i++) {
        o7_type_result *t = &res->types[i];
        snprintf(trows[i].type, sizeof trows[i].type, "%s", t->type);
        snprintf(trows[i].object, sizeof trows[i].object, "%s", t->object);
        snprintf(trows[i].codec, sizeof trows[i].codec, "%s", o7_codec_name(conf->codec));
        snprintf(trows[i].status, sizeof trows[i].status, "%s", t->status);
        snprintf(trows[i].sha256, sizeof trows[i].sha256, "%s", t->sha256);
        snprintf(trows[i].plugin_version, sizeof trows[i].plugin_version, "%s",
                 t->plugin_version);
        trows[i].records = t->records;
        trows[i].bytes = t->bytes;
        trows[i].stored_bytes = t->stored_bytes;
        row.records += t->records;
        row.bytes += t->bytes;
        row.stored_bytes += t->stored_bytes;
    }
    row.types = trows;
    row.ntypes = trows ? res->ntypes : 0;
    o7_err cerr = {0};
    if (o7_catalog_backup_finish(cat, &row, &cerr) != O7_OK) {
        o7_error("engine", "%s", cerr.msg);
        if (ok) {
            ok = 0;
            snprintf(res->status, sizeof res->status, "failed");
            snprintf(res->error, sizeof res->error,
                     "the backup is stored but the catalog could not record it: %s (o7 catalog "
                     "rebuild will find it)",
                     cerr.msg);
        }
    }
    free(trows);
    o7_catalog_audit(cat, opts->store_hash, row.actor, "backup", types,
                     ok ? "completed" : "failed", ok ? res->id : res->error, NULL);
    if (ok)
        o7_info("engine", "backup %s complete", res->id);
    else
        o7_error("engine", "backup %s failed: %s", res->id, res->error);
    o7_log_set_job(NULL);
    o7_store_unlock(lock);
    if (ok)
        return O7_OK;
    return o7_fail(err, r.fatal[0] && strstr(r.fatal, "interrupted") ? O7_ERR_INTERRUPTED
                                                                       : O7_ERR_HTTP,
                   "%s", res->error);
}
