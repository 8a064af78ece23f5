/* restore.c - the restore driver: verify, plan, safety backup, then each
 * type's records through its plugin's restore hook, batch by batch, on the
 * same paced HTTP client as backups. One thread; hooks are coroutines. */
#include "restore.h"
#include "buf.h"
#include "codec.h"
#include "crypto.h"
#include "engine.h"
#include "json.h"
#include "log.h"
#include "manifest.h"

#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

/* One record of a type's plan: where its line is in the spool file. */
typedef struct line {
    int64_t off;
    size_t len;
    char id[64];
    char parent[64];
    int depth;
    char probed[16]; /* --only dependencies: the outcome a dry pass found */
} line;

/* A set of record ids, as text. */
typedef struct idlist {
    char (*ids)[64];
    size_t n, cap;
} idlist;

static int idlist_has(const idlist *l, const char *id)
{
    for (size_t i = 0; i < l->n; i++)
        if (strcmp(l->ids[i], id) == 0)
            return 1;
    return 0;
}

/* Adds id unless present; returns 1 when it was new. */
static int idlist_add(idlist *l, const char *id)
{
    if (id[0] == '\0' || strcmp(id, "0") == 0 || idlist_has(l, id))
        return 0;
    if (l->n == l->cap) {
        size_t cap = l->cap ? l->cap * 2 : 16;
        void *p = realloc(l->ids, cap * sizeof *l->ids);
        if (p == NULL)
            return 0;
        l->ids = p;
        l->cap = cap;
    }
    snprintf(l->ids[l->n++], 64, "%s", id);
    return 1;
}

typedef struct rrun rrun;

typedef struct rtype {
    rrun *r;
    const o7_plugin *p;
    o7_restore_type *res;
    FILE *spool;
    line *lines;
    size_t nlines, next;
    int inflight;
    int filtered;   /* only the records in filter (--only and what they need) */
    idlist filter;
    int probe;      /* a dependency of --only: create what is missing, touch nothing else */
    int probing;    /* the dry pass of a probe is running */
} rtype;

typedef struct task {
    rtype *t;
    int dry;        /* writes refused for this batch */
    o7_fetch *f;
    size_t n;
    char **raws;
    size_t *lens;
    char (*ids)[64];
    int *reported;
    char error[512];
} task;

struct rrun {
    const o7_conf *conf;
    o7_catalog *cat;
    o7_storage *st;
    o7_plugins *ps;
    const o7_restore_opts *opts;
    o7_restore_result *res;
    o7_http *http;
    o7_restore_ctx ctx;
    char auth[512];
    const char *get_headers[3];
    const char *write_headers[4];
    char fatal[1024];
};

static void task_step(task *k, long status, const char *body, size_t blen);

/* ---- results ------------------------------------------------------------ */

static void add_item(rrun *r, const char *type, const char *id, const char *outcome,
                     const char *detail, const char *fields)
{
    o7_restore_result *res = r->res;
    if (res->nitems == res->cap) {
        size_t cap = res->cap ? res->cap * 2 : 64;
        o7_restore_item *it = realloc(res->items, cap * sizeof *it);
        if (it == NULL)
            return;
        res->items = it;
        res->cap = cap;
    }
    o7_restore_item *it = &res->items[res->nitems++];
    snprintf(it->type, sizeof it->type, "%s", type);
    snprintf(it->id, sizeof it->id, "%s", id);
    snprintf(it->outcome, sizeof it->outcome, "%s", outcome);
    snprintf(it->detail, sizeof it->detail, "%s", detail ? detail : "");
    snprintf(it->fields, sizeof it->fields, "%s", fields ? fields : "");
}

static int tally(rrun *r, rtype *t, const char *id, const char *outcome, const char *detail,
                 const char *fields);

/* The dry pass over an --only dependency: a record that would be created is
 * missing and gets the real pass; any other is settled now, and one that
 * exists but differs is kept as it is. */
static int probed(rrun *r, rtype *t, const char *id, const char *outcome, const char *detail,
                  const char *fields)
{
    for (size_t i = 0; i < t->nlines; i++) {
        if (strcmp(t->lines[i].id, id) != 0)
            continue;
        snprintf(t->lines[i].probed, sizeof t->lines[i].probed, "%s", outcome);
        break;
    }
    if (strcmp(outcome, "created") == 0)
        return 0;
    if (strcmp(outcome, "updated") == 0) {
        char why[512];
        snprintf(why, sizeof why, "exists in the target and differs from the backup; left as it "
                 "is, since --only brings along only missing records");
        return tally(r, t, id, "kept", why, fields);
    }
    return tally(r, t, id, outcome, detail, fields);
}

/* Counts an outcome; during a dependency's dry pass, notes it instead. */
static int count(rrun *r, rtype *t, const char *id, const char *outcome, const char *detail,
                 const char *fields)
{
    if (t->probing)
        return probed(r, t, id, outcome, detail, fields);
    return tally(r, t, id, outcome, detail, fields);
}

/* Counts an outcome; records that need a line get one. */
static int tally(rrun *r, rtype *t, const char *id, const char *outcome, const char *detail,
                 const char *fields)
{
    o7_restore_counts *c = &t->res->c;
    int line_needed = 0;
    /* A created or updated record gets a line too when the plugin has
     * something to say about it (a password to reset, a reference that
     * could not be mapped, an order number that changed). */
    int noted = detail != NULL && detail[0] != '\0';
    if (strcmp(outcome, "created") == 0)
        c->created++, line_needed = noted;
    else if (strcmp(outcome, "updated") == 0)
        c->updated++, line_needed = r->ctx.dry_run || noted;
    else if (strcmp(outcome, "unchanged") == 0)
        c->unchanged++;
    else if (strcmp(outcome, "skipped") == 0)
        c->skipped++, line_needed = 1;
    else if (strcmp(outcome, "kept") == 0)
        c->kept++, line_needed = 1;
    else if (strcmp(outcome, "failed") == 0)
        c->failed++, line_needed = 1;
    else
        return -1;
    if (line_needed)
        add_item(r, t->p->type, id, outcome, detail, fields);
    if (strcmp(outcome, "failed") == 0)
        o7_warn("restore", "%s %s failed: %s", t->p->type, id, detail ? detail : "");
    return 0;
}

/* ---- the spool: a type's records, decompressed, on disk ------------------ */

typedef struct spool_w {
    FILE *f;
    o7_codec *dec;
} spool_w;

static o7_rc to_file(void *ud, const void *data, size_t len)
{
    spool_w *w = ud;
    return fwrite(data, 1, len, w->f) == len ? O7_OK : O7_ERR_IO;
}

static o7_rc to_decoder(void *ud, const void *data, size_t len)
{
    spool_w *w = ud;
    return o7_codec_write(w->dec, data, len, NULL);
}

/* The key (and parent) of a record line, as text. */
static void key_text(const o7_json_span *rec, const char *member, char out[64])
{
    o7_json_span v;
    out[0] = '\0';
    if (member == NULL || o7_json_get(rec, member, &v) != O7_OK)
        return;
    if (v.kind == O7_JSON_STRING) {
        char *s = NULL;
        if (o7_json_str(&v, &s) == O7_OK)
            snprintf(out, 64, "%s", s);
        free(s);
    } else if (v.kind == O7_JSON_NUMBER) {
        snprintf(out, 64, "%.*s", (int)(v.len < 63 ? v.len : 63), v.p);
    }
}

static int wanted(const rtype *t, const char *id)
{
    return !t->filtered || idlist_has(&t->filter, id);
}

static int by_depth(const void *a, const void *b)
{
    const line *x = a, *y = b;
    if (x->depth != y->depth)
        return x->depth - y->depth;
    return x->off < y->off ? -1 : x->off > y->off;
}

/* Parents before children: depth by following parent links in the plan. */
static void order_parents_first(rtype *t)
{
    for (size_t i = 0; i < t->nlines; i++) {
        int depth = 0;
        const char *parent = t->lines[i].parent;
        while (parent[0] && strcmp(parent, "0") != 0 && depth < 64) {
            const char *next = NULL;
            for (size_t j = 0; j < t->nlines; j++)
                if (strcmp(t->lines[j].id, parent) == 0)
                    next = t->lines[j].parent;
            if (next == NULL)
                break;
            depth++;
            parent = next;
        }
        t->lines[i].depth = depth;
    }
    qsort(t->lines, t->nlines, sizeof *t->lines, by_depth);
}

static o7_rc spool(rrun *r, rtype *t, const o7_manifest *m, const o7_manifest_type *mt,
                   o7_err *err)
{
    char key[512];
    snprintf(key, sizeof key, "%s/%s/%s", m->store_hash, m->backup_id, mt->object);
    spool_w w = {tmpfile(), NULL};
    if (w.f == NULL)
        return o7_fail(err, O7_ERR_IO, "cannot make a temporary file: %s", strerror(errno));
    t->spool = w.f;
    o7_rc rc = o7_decoder_new((o7_codec_kind)o7_codec_parse(mt->codec), to_file, &w, &w.dec);
    if (rc == O7_OK)
        rc = o7_storage_get(r->st, key, to_decoder, &w, err);
    if (rc == O7_OK)
        rc = o7_codec_finish(w.dec, err);
    o7_codec_free(w.dec);
    if (rc != O7_OK || fflush(w.f) != 0)
        return o7_fail(err, rc ? rc : O7_ERR_IO, "cannot read %s back", key);
    rewind(w.f);

    const char *keym = t->p->has_list && t->p->list.key ? t->p->list.key : "id";
    char *buf = NULL;
    size_t cap = 0;
    ssize_t n;
    int64_t off = 0;
    while ((n = getline(&buf, &cap, w.f)) > 0) {
        size_t len = (size_t)n - (buf[n - 1] == '\n');
        o7_json_span rec;
        line l = {.off = off, .len = len};
        off += n;
        if (o7_json_parse(buf, len, &rec, NULL) != O7_OK)
            continue; /* verify has already vouched for every line */
        key_text(&rec, keym, l.id);
        key_text(&rec, t->p->restore_parent, l.parent);
        if (!wanted(t, l.id))
            continue;
        line *ls = realloc(t->lines, (t->nlines + 1) * sizeof *ls);
        if (ls == NULL) {
            free(buf);
            return o7_fail(err, O7_ERR_NOMEM, "out of memory");
        }
        t->lines = ls;
        t->lines[t->nlines++] = l;
    }
    free(buf);
    if (t->p->restore_parent)
        order_parents_first(t);
    t->res->records = (int64_t)t->nlines;
    return O7_OK;
}

/* ---- batches -------------------------------------------------------------- */

static void task_free(task *k)
{
    for (size_t i = 0; i < k->n; i++)
        free(k->raws[i]);
    free(k->raws);
    free(k->lens);
    free(k->ids);
    free(k->reported);
    o7_fetch_free(k->f);
    free(k);
}

static void type_pump(rtype *t);

/* The hook returned (or failed): every record it did not report fails. */
static void task_end(task *k)
{
    rtype *t = k->t;
    rrun *r = t->r;
    for (size_t i = 0; i < k->n; i++)
        if (!k->reported[i])
            count(r, t, k->ids[i], "failed",
                  k->error[0] ? k->error
                              : "the plugin did not say what happened to this record",
                  NULL);
    t->inflight--;
    task_free(k);
    type_pump(t);
}

static int find_id(const task *k, const char *id)
{
    for (size_t i = 0; i < k->n; i++)
        if (!k->reported[i] && strcmp(k->ids[i], id) == 0)
            return (int)i;
    return -1;
}

static void on_task_http(void *ud, o7_http_resp *resp)
{
    task *k = ud;
    if (resp->rc == O7_ERR_INTERRUPTED || k->t->r->fatal[0]) {
        snprintf(k->error, sizeof k->error, "the restore stopped before this record was written");
        task_end(k);
        return;
    }
    if (resp->rc != O7_OK) {
        /* No answer at all: the hook sees status 0 and the reason. */
        task_step(k, 0, resp->error, strlen(resp->error));
        return;
    }
    if (resp->status == 401 || resp->status == 403) {
        char msg[512];
        snprintf(msg, sizeof msg, "the target store %s (%ld): re-add it with a token that has the "
                 "modify scope %s", resp->status == 401 ? "rejected the token"
                                                       : "refused the token for lack of a scope",
                 resp->status, k->t->p->scope);
        if (k->t->r->fatal[0] == '\0')
            snprintf(k->t->r->fatal, sizeof k->t->r->fatal, "%s", msg);
        snprintf(k->error, sizeof k->error, "%s", msg);
        o7_http_stop(k->t->r->http);
        task_end(k);
        return;
    }
    task_step(k, resp->status, resp->body.data ? resp->body.data : "", resp->body.len);
}

static void on_task_timer(void *ud, o7_http_resp *resp)
{
    task *k = ud;
    if (resp->rc == O7_ERR_INTERRUPTED) {
        task_end(k);
        return;
    }
    task_step(k, O7_FETCH_ANSWER_NONE, NULL, 0);
}

static o7_rc send(task *k, const char *method, const o7_fetch_request *q)
{
    rrun *r = k->t->r;
    int v2 = strncmp(q->a, "/v2/", 4) == 0;
    const char *path = q->a + ((v2 || strncmp(q->a, "/v3/", 4) == 0) ? 3 : 0);
    o7_buf url = O7_BUF_INIT;
    o7_rc rc = o7_api_url(&url, r->conf->api_url, r->ctx.target_store, v2, path, q->query,
                          q->nquery, NULL, NULL);
    int get = strcmp(method, "GET") == 0;
    o7_http_req req = {.method = method, .url = url.data,
                       .headers = get ? r->get_headers : r->write_headers,
                       .body = get ? NULL : q->b, .body_len = get ? 0 : q->blen, .priority = 5};
    if (rc == O7_OK)
        rc = o7_http_submit(r->http, &req, on_task_http, k);
    o7_buf_free(&url);
    return rc;
}

/* ---- uploads: an attachment of the backup, sent as multipart/form-data ---- */

#define UPLOAD_MAX_BYTES (64 * 1024 * 1024) /* above the API's 50 MB theme limit */

static o7_rc to_buf(void *ud, const void *data, size_t len)
{
    o7_buf *b = ud;
    if (b->len + len > UPLOAD_MAX_BYTES)
        return O7_ERR_IO;
    return o7_buf_append(b, data, len);
}

/* An object name a plugin may upload: one of the backup's attachments. */
static int attachment_name_ok(const char *object, const char *field)
{
    if (strncmp(object, "attachments/", 12) != 0 || strstr(object, "..") || strchr(object, '"')
        || strchr(object, '\r') || strchr(object, '\n'))
        return 0;
    for (const char *c = field; *c; c++)
        if (!((*c >= 'a' && *c <= 'z') || (*c >= 'A' && *c <= 'Z') || (*c >= '0' && *c <= '9')
              || *c == '_' || *c == '-'))
            return 0;
    return field[0] != '\0';
}

/* The multipart body: one part, the file, under a boundary its bytes do not
 * hold. */
static o7_rc multipart(const o7_buf *file, const char *field, const char *object, o7_buf *out,
                       char boundary[48])
{
    unsigned char rnd[12];
    const char *base = strrchr(object, '/') ? strrchr(object, '/') + 1 : object;
    do {
        char hex[25];
        if (o7_random(rnd, sizeof rnd) != O7_OK)
            return O7_ERR_IO;
        o7_hex(rnd, sizeof rnd, hex);
        snprintf(boundary, 48, "o7-%s", hex);
    } while (file->len && memmem(file->data, file->len, boundary, strlen(boundary)));
    o7_rc rc = o7_buf_printf(out, "--%s\r\nContent-Disposition: form-data; name=\"%s\"; "
                             "filename=\"%s\"\r\nContent-Type: application/octet-stream\r\n\r\n",
                             boundary, field, base);
    if (rc == O7_OK && file->len)
        rc = o7_buf_append(out, file->data, file->len);
    if (rc == O7_OK)
        rc = o7_buf_printf(out, "\r\n--%s--\r\n", boundary);
    return rc;
}

/* upload(path, field, object): reads the attachment back from storage and
 * POSTs it; the hook is resumed with the status and body like a post. */
static o7_rc upload(task *k, const o7_fetch_request *q, o7_err *err)
{
    rrun *r = k->t->r;
    const char *field = q->b, *object = q->c ? q->c : "";
    if (!attachment_name_ok(object, field))
        return o7_fail(err, O7_ERR_USAGE, "upload takes a field name and an object under "
                       "attachments/ of the backup, not \"%s\"", object);
    char key[1024];
    snprintf(key, sizeof key, "%s/%s/%s", r->ctx.source_store, r->ctx.backup_id, object);
    o7_buf file = O7_BUF_INIT, body = O7_BUF_INIT, url = O7_BUF_INIT;
    char boundary[48], ctype[96];
    o7_err ge = {0};
    o7_rc rc = o7_storage_get(r->st, key, to_buf, &file, &ge);
    if (rc != O7_OK)
        o7_fail(err, rc, "cannot read %s of backup %s back: %s", object, r->ctx.backup_id,
                ge.msg[0] ? ge.msg : "too big or unreadable");
    if (rc == O7_OK && (rc = multipart(&file, field, object, &body, boundary)) != O7_OK)
        o7_fail(err, rc, "out of memory");
    int v2 = strncmp(q->a, "/v2/", 4) == 0;
    const char *path = q->a + ((v2 || strncmp(q->a, "/v3/", 4) == 0) ? 3 : 0);
    if (rc == O7_OK)
        rc = o7_api_url(&url, r->conf->api_url, r->ctx.target_store, v2, path, NULL, 0, NULL,
                        NULL);
    if (rc == O7_OK) {
        snprintf(ctype, sizeof ctype, "Content-Type: multipart/form-data; boundary=%s",
                 boundary);
        const char *headers[] = {r->auth, "Accept: application/json", ctype, NULL};
        o7_http_req req = {.method = "POST", .url = url.data, .headers = headers,
                           .body = body.data, .body_len = body.len, .priority = 5};
        rc = o7_http_submit(r->http, &req, on_task_http, k);
        if (rc != O7_OK)
            o7_fail(err, rc, "cannot send the upload of %s", object);
    }
    if (rc == O7_OK)
        o7_info("restore", "%s: uploading %s (%zu bytes) to store %s", k->t->p->type, object,
                file.len, r->ctx.target_store);
    o7_buf_free(&file);
    o7_buf_free(&body);
    o7_buf_free(&url);
    return rc;
}

/* Runs the hook until it waits for the network or ends. */
static void task_step(task *k, long status, const char *body, size_t blen)
{
    rrun *r = k->t->r;
    rtype *t = k->t;
    char mapped[64]; /* a map answer; copied into Lua by the next resume */
    for (;;) {
        o7_fetch_request q;
        o7_err e = {0};
        if (o7_fetch_resume(k->f, status, body, blen, &q, &e) != O7_OK) {
            snprintf(k->error, sizeof k->error, "%s", e.msg);
            task_end(k);
            return;
        }
        status = O7_FETCH_ANSWER_NONE, body = NULL, blen = 0;
        switch (q.op) {
        case O7_FETCH_DONE:
            task_end(k);
            return;
        case O7_FETCH_GET:
        case O7_FETCH_POST:
        case O7_FETCH_PUT:
        case O7_FETCH_DELETE: {
            const char *m = q.op == O7_FETCH_GET ? "GET" : q.op == O7_FETCH_POST ? "POST"
                            : q.op == O7_FETCH_PUT ? "PUT" : "DELETE";
            if (k->dry && q.op != O7_FETCH_GET) {
                snprintf(k->error, sizeof k->error, "plugin %s tried to write in a dry run",
                         t->p->type);
                task_end(k);
                return;
            }
            if (send(k, m, &q) != O7_OK) {
                snprintf(k->error, sizeof k->error, "out of memory");
                task_end(k);
            }
            return;
        }
        case O7_FETCH_SLEEP:
            if (o7_http_after(r->http, q.ms > 0 ? q.ms : 0, on_task_timer, k) != O7_OK)
                task_end(k);
            return;
        case O7_FETCH_MAP: {
            char *to = NULL;
            if (o7_catalog_idmap_get(r->cat, r->ctx.source_store, r->ctx.target_store, q.a, q.b,
                                     &to, NULL) == O7_OK) {
                status = O7_FETCH_ANSWER_OBJECT;
                snprintf(mapped, sizeof mapped, "%s", to);
                free(to);
                body = mapped;
                blen = strlen(mapped);
            } else {
                status = O7_FETCH_ANSWER_NIL;
            }
            continue;
        }
        case O7_FETCH_REMEMBER:
            /* A dependency's dry pass may note records it found: that is a
             * fact about the target, not a write to it. */
            if (!r->ctx.dry_run && (!k->dry || t->probing) && q.c)
                o7_catalog_idmap_put(r->cat, r->ctx.source_store, r->ctx.target_store, q.a, q.b,
                                     q.c, NULL);
            status = 1;
            continue;
        case O7_FETCH_REPORT: {
            int i = find_id(k, q.a);
            if (i < 0) {
                snprintf(k->error, sizeof k->error,
                         "plugin %s reported record %s, which is not in its batch (or twice)",
                         t->p->type, q.a);
                task_end(k);
                return;
            }
            if (count(r, t, q.a, q.b, q.c, q.d) != 0) {
                snprintf(k->error, sizeof k->error, "plugin %s reported outcome \"%s\", which "
                         "is not created, updated, unchanged, skipped, kept or failed",
                         t->p->type, q.b);
                task_end(k);
                return;
            }
            k->reported[i] = 1;
            status = 1;
            continue;
        }
        case O7_FETCH_UPLOAD: {
            if (r->ctx.dry_run) {
                snprintf(k->error, sizeof k->error, "plugin %s tried to write in a dry run",
                         t->p->type);
                task_end(k);
                return;
            }
            o7_err ue = {0};
            if (upload(k, &q, &ue) == O7_OK)
                return;
            /* Nothing was sent: the hook gets nil and the reason. */
            snprintf(k->error, sizeof k->error, "%s", ue.msg);
            status = O7_FETCH_ANSWER_NIL_ERR;
            body = k->error;
            blen = strlen(body);
            continue;
        }
        case O7_FETCH_EMIT:
        case O7_FETCH_ATTACH:
            snprintf(k->error, sizeof k->error, "plugin %s: emit and attach are backup calls",
                     t->p->type);
            task_end(k);
            return;
        }
    }
}

static o7_rc batch_start(rtype *t)
{
    rrun *r = t->r;
    size_t n = t->nlines - t->next;
    if (n > (size_t)t->p->restore_batch)
        n = (size_t)t->p->restore_batch;
    task *k = calloc(1, sizeof *k);
    if (k == NULL)
        return O7_ERR_NOMEM;
    k->t = t;
    k->raws = calloc(n, sizeof *k->raws);
    k->lens = calloc(n, sizeof *k->lens);
    k->ids = calloc(n, sizeof *k->ids);
    k->reported = calloc(n, sizeof *k->reported);
    if (!k->raws || !k->lens || !k->ids || !k->reported) {
        task_free(k);
        return O7_ERR_NOMEM;
    }
    for (size_t i = 0; i < n; i++) {
        line *l = &t->lines[t->next + i];
        k->raws[i] = malloc(l->len + 1);
        if (k->raws[i] == NULL || pread(fileno(t->spool), k->raws[i], l->len, l->off) !=
                                      (ssize_t)l->len) {
            k->n = i + (k->raws[i] != NULL);
            task_free(k);
            return O7_ERR_IO;
        }
        k->raws[i][l->len] = '\0';
        k->lens[i] = l->len;
        snprintf(k->ids[i], sizeof k->ids[i], "%s", l->id);
        k->n = i + 1;
    }
    t->next += n;
    o7_err e = {0};
    k->dry = r->ctx.dry_run || t->probing;
    o7_restore_ctx ctx = r->ctx;
    ctx.dry_run = k->dry;
    if (o7_restore_start(r->ps, t->p, (const char *const *)k->raws, k->lens, n, &ctx, &k->f,
                         &e) != O7_OK) {
        snprintf(k->error, sizeof k->error, "%s", e.msg);
        t->inflight++;
        task_end(k);
        return O7_OK;
    }
    t->inflight++;
    task_step(k, O7_FETCH_ANSWER_NONE, NULL, 0);
    return O7_OK;
}

/* Starts batches until the type's parallelism is used or the plan is out. */
static void type_pump(rtype *t)
{
    rrun *r = t->r;
    while (!r->fatal[0] && t->next < t->nlines && t->inflight < t->p->restore_parallel) {
        if (batch_start(t) != O7_OK) {
            snprintf(r->fatal, sizeof r->fatal, "cannot read %s records back from the spool",
                     t->p->type);
            o7_http_stop(r->http);
            return;
        }
    }
}

/* ---- planning ------------------------------------------------------------- */

static int type_index(const o7_manifest *m, const char *type)
{
    for (size_t i = 0; i < m->ntypes; i++)
        if (strcmp(m->types[i].type, type) == 0)
            return (int)i;
    return -1;
}

/* Types of the plan, each after the types it depends on (within the plan). */
static o7_rc plan_types(rrun *r, const o7_manifest *m, const char *const *names, size_t nnames,
                        const o7_plugin ***out, size_t *n, o7_err *err)
{
    const o7_restore_opts *o = r->opts;
    const o7_plugin **pick = calloc(m->ntypes + 1, sizeof *pick);
    size_t np = 0;
    if (pick == NULL)
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    if (o->only_type) {
        if (type_index(m, o->only_type) < 0) {
            free(pick);
            return o7_fail(err, O7_ERR_USAGE, "backup %s has no type %s", m->backup_id,
                           o->only_type);
        }
    }
    for (size_t i = 0; i < o->ntypes; i++)
        if (type_index(m, o->types[i]) < 0) {
            free(pick);
            return o7_fail(err, O7_ERR_USAGE, "backup %s has no type %s", m->backup_id,
                           o->types[i]);
        }
    for (size_t i = 0; i < m->ntypes; i++) {
        const char *type = m->types[i].type;
        int in = o->only_type ? strcmp(o->only_type, type) == 0 : o->types == NULL;
        for (size_t j = 0; j < o->ntypes; j++)
            in |= strcmp(o->types[j], type) == 0;
        if (names) {
            in = 0;
            for (size_t j = 0; j < nnames; j++)
                in |= strcmp(names[j], type) == 0;
        }
        if (in)
            pick[np++] = o7_plugins_find(r->ps, type) ? o7_plugins_find(r->ps, type) : NULL;
        if (in && pick[np - 1] == NULL) {
            free(pick);
            return o7_fail(err, O7_ERR_USAGE, "no plugin for type %s is loaded, so it cannot be "
                           "restored (o7 plugins lists them)", type);
        }
    }
    /* A stable topological order: repeatedly take the first type whose
     * dependencies in the plan are all placed. */
    const o7_plugin **sorted = calloc(np + 1, sizeof *sorted);
    int *placed = calloc(np + 1, sizeof *placed);
    size_t ns = 0;
    while (sorted && placed && ns < np) {
        size_t before = ns;
        for (size_t i = 0; i < np; i++) {
            if (placed[i])
                continue;
            int ready = 1;
            for (size_t d = 0; d < pick[i]->ndepends; d++)
                for (size_t j = 0; j < np; j++)
                    if (!placed[j] && j != i && strcmp(pick[j]->type, pick[i]->depends[d]) == 0)
                        ready = 0;
            if (ready) {
                placed[i] = 1;
                sorted[ns++] = pick[i];
                break;
            }
        }
        if (ns == before) { /* a cycle: keep the rest in manifest order */
            for (size_t i = 0; i < np; i++)
                if (!placed[i])
                    placed[i] = 1, sorted[ns++] = pick[i];
        }
    }
    free(placed);
    free(pick);
    if (sorted == NULL)
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    *out = sorted;
    *n = ns;
    return O7_OK;
}

/* ---- the run ----------------------------------------------------------------- */

void o7_restore_result_free(o7_restore_result *res)
{
    free(res->types);
    free(res->items);
    res->types = NULL;
    res->items = NULL;
    res->ntypes = res->nitems = res->cap = 0;
}

o7_rc o7_restore_source(o7_catalog *cat, const char *backup_id, char store[64], o7_err *err)
{
    o7_backup_row row = {0};
    o7_rc rc = o7_catalog_backup_get(cat, backup_id, &row, err);
    if (rc == O7_ERR_NOTFOUND) {
        err->rc = O7_OK;
        rc = o7_fail(err, O7_ERR_NOTFOUND,
                     "no backup %s in the catalog (o7 backups STORE lists them)", backup_id);
    }
    if (rc == O7_OK)
        snprintf(store, 64, "%s", row.store_hash);
    o7_backup_row_free(&row);
    return rc;
}

static void types_csv(const o7_plugin *const *ts, size_t n, char *out, size_t cap)
{
    size_t at = 0;
    out[0] = '\0';
    for (size_t i = 0; i < n && at < cap; i++)
        at += (size_t)snprintf(out + at, cap - at, "%s%s", i ? "," : "", ts[i]->type);
}

/* Verify, and a safety backup of what will be touched. */
static o7_rc prepare(rrun *r, const o7_manifest *m, const o7_plugin **plan, size_t np,
                     o7_err *err)
{
    o7_verify_item *items = NULL;
    size_t n = 0;
    o7_rc rc = o7_verify(r->st, m, &items, &n, err);
    free(items);
    if (rc != O7_OK) {
        o7_err e = *err;
        o7_err_clear(err);
        return o7_fail(err, O7_ERR_CORRUPT, "restore refused before writing anything: %s",
                       e.msg);
    }
    if (r->ctx.dry_run)
        return O7_OK;
    const char **types = calloc(np + 1, sizeof *types);
    if (types == NULL)
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    for (size_t i = 0; i < np; i++)
        types[i] = plan[i]->type;
    o7_backup_opts bo = {.store_hash = r->ctx.target_store, .token = r->opts->token,
                         .types = types, .ntypes = np, .actor = r->opts->actor,
                         .kind = "safety", .interrupted = r->opts->interrupted,
                         .lock_held = 1};
    o7_backup_result br;
    o7_err be = {0};
    rc = o7_backup_run(r->conf, r->cat, r->st, r->ps, &bo, &br, &be);
    free(types);
    snprintf(r->res->safety_backup_id, sizeof r->res->safety_backup_id, "%s", br.id);
    o7_backup_result_free(&br);
    if (rc != O7_OK)
        return o7_fail(err, rc, "restore refused: the safety backup of store %s failed: %s",
                       r->ctx.target_store, be.msg);
    o7_info("restore", "safety backup %s of store %s taken before writing",
            r->res->safety_backup_id, r->ctx.target_store);
    return O7_OK;
}

static o7_rc run_type(rrun *r, rtype *t, const o7_manifest *m, o7_err *err)
{
    const o7_manifest_type *mt = &m->types[type_index(m, t->p->type)];
    o7_rc rc = t->spool ? O7_OK : spool(r, t, m, mt, err);
    if (rc != O7_OK)
        return rc;
    o7_info("restore", "%s: %zu records to %s store %s", t->p->type, t->nlines,
            r->ctx.dry_run ? "plan for" : "restore into", r->ctx.target_store);
    o7_err loop = {0};
    if (t->probe) {
        /* First a dry pass to learn which of these dependencies the target
         * lacks; only those go through the real pass. */
        t->probing = 1;
        type_pump(t);
        rc = o7_http_run(r->http, &loop);
        t->probing = 0;
        size_t keep = 0;
        for (size_t i = 0; i < t->nlines; i++)
            if (strcmp(t->lines[i].probed, "created") == 0)
                t->lines[keep++] = t->lines[i];
        t->nlines = keep;
        t->next = 0;
        if (rc != O7_OK && r->fatal[0] == '\0')
            snprintf(r->fatal, sizeof r->fatal, "%s", loop.msg);
        if (keep)
            o7_info("restore", "%s: %zu missing in store %s, needed by the records named",
                    t->p->type, keep, r->ctx.target_store);
    }
    type_pump(t);
    rc = o7_http_run(r->http, &loop);
    if (rc != O7_OK && r->fatal[0] == '\0')
        snprintf(r->fatal, sizeof r->fatal, "%s", loop.msg);
    /* Whatever the plan still held never got a chance: it failed. */
    for (; t->next < t->nlines; t->next++)
        count(r, t, t->lines[t->next].id, "failed",
              r->fatal[0] ? r->fatal : "not attempted", NULL);
    snprintf(t->res->status, sizeof t->res->status, "%s",
             t->res->c.failed ? "failed" : "complete");
    return O7_OK;
}

/* ---- --only and what it needs ---------------------------------------------- */

/* The ids a need ("member" or "member.sub") finds in one record. */
static void need_ids(const o7_json_span *rec, const char *need, idlist *out, int *grew)
{
    char member[64], sub[64] = "";
    const char *dot = strchr(need, '.');
    snprintf(member, sizeof member, "%.*s", (int)(dot ? (size_t)(dot - need) : strlen(need)),
             need);
    if (dot)
        snprintf(sub, sizeof sub, "%s", dot + 1);
    o7_json_span v, e, k;
    if (o7_json_get(rec, member, &v) != O7_OK)
        return;
    char id[64];
    if (v.kind == O7_JSON_ARRAY) {
        o7_json_iter it;
        o7_json_iter_init(&it, &v);
        while (o7_json_next(&it, &k, &e)) {
            if (sub[0] && e.kind == O7_JSON_OBJECT)
                key_text(&e, sub, id);
            else
                snprintf(id, sizeof id, "%.*s", (int)(e.len < 63 ? e.len : 63), e.p);
            if (e.kind == O7_JSON_STRING && !sub[0]) {
                char *s = NULL;
                if (o7_json_str(&e, &s) == O7_OK)
                    snprintf(id, sizeof id, "%s", s);
                free(s);
            }
            *grew |= idlist_add(out, id);
        }
    } else if (sub[0] && v.kind == O7_JSON_OBJECT) {
        key_text(&v, sub, id);
        *grew |= idlist_add(out, id);
    } else {
        key_text(rec, member, id);
        *grew |= idlist_add(out, id);
    }
}

/* Reads t's planned records and adds what they need to the filters of the
 * types they point at. Returns 1 when some filter grew. */
static int collect_needs(rtype *t, rtype *all, size_t nall)
{
    int grew = 0;
    char *buf = NULL;
    for (size_t i = 0; i < t->nlines; i++) {
        line *l = &t->lines[i];
        char *nb = realloc(buf, l->len + 1);
        if (nb == NULL)
            break;
        buf = nb;
        if (pread(fileno(t->spool), buf, l->len, l->off) != (ssize_t)l->len)
            break;
        o7_json_span rec;
        if (o7_json_parse(buf, l->len, &rec, NULL) != O7_OK)
            continue;
        for (size_t n = 0; n < t->p->nneeds; n++) {
            for (size_t j = 0; j < nall; j++) {
                rtype *d = &all[j];
                if (d->p == NULL || strcmp(d->p->type, t->p->restore_needs[n].value) != 0)
                    continue;
                int added = 0;
                need_ids(&rec, t->p->restore_needs[n].name, &d->filter, &added);
                d->filtered = 1;
                grew |= added;
            }
        }
    }
    free(buf);
    return grew;
}

static void rtype_unspool(rtype *t)
{
    if (t->spool)
        fclose(t->spool);
    t->spool = NULL;
    free(t->lines);
    t->lines = NULL;
    t->nlines = t->next = 0;
}

static void free_rtypes(rtype *ts, size_t n)
{
    for (size_t i = 0; ts && i < n; i++) {
        rtype_unspool(&ts[i]);
        free(ts[i].filter.ids);
    }
    free(ts);
}

/* For --only TYPE:IDS: those records, and every record they need (through
 * the plugins' restore.needs, followed until nothing new turns up) that the
 * backup holds. Fills all[] (one per manifest type, spooled and filtered)
 * and names[] with the types that have something to restore. */
static o7_rc plan_only(rrun *r, const o7_manifest *m, rtype *all, o7_restore_type *scratch,
                       const char **names, size_t *nnames, o7_err *err)
{
    const o7_restore_opts *o = r->opts;
    int only = type_index(m, o->only_type);
    if (only < 0)
        return o7_fail(err, O7_ERR_USAGE, "backup %s has no type %s", m->backup_id,
                       o->only_type);
    for (size_t i = 0; i < m->ntypes; i++) {
        all[i].r = r;
        all[i].p = o7_plugins_find(r->ps, m->types[i].type);
        all[i].res = &scratch[i];
        if (all[i].p && !all[i].p->has_restore)
            all[i].p = NULL;
    }
    if (all[only].p == NULL)
        return o7_fail(err, O7_ERR_USAGE, "no loaded plugin can restore type %s",
                       o->only_type);
    all[only].filtered = 1;
    for (size_t i = 0; i < o->nonly; i++)
        idlist_add(&all[only].filter, o->only_ids[i]);
    for (int round = 0; round < 16; round++) {
        int grew = 0;
        for (size_t i = 0; i < m->ntypes; i++) {
            rtype *t = &all[i];
            if (t->p == NULL || !t->filtered)
                continue;
            rtype_unspool(t);
            o7_rc rc = spool(r, t, m, &m->types[i], err);
            if (rc != O7_OK)
                return rc;
            grew |= collect_needs(t, all, m->ntypes);
        }
        if (!grew)
            break;
    }
    *nnames = 0;
    for (size_t i = 0; i < m->ntypes; i++) {
        if (all[i].p == NULL || !all[i].filtered || (all[i].nlines == 0 && (int)i != only))
            continue;
        all[i].probe = (int)i != only;
        names[(*nnames)++] = m->types[i].type;
    }
    return O7_OK;
}

o7_rc o7_restore_run(const o7_conf *conf, o7_catalog *cat, o7_storage *st, o7_plugins *ps,
                     const o7_restore_opts *opts, o7_restore_result *res, o7_err *err)
{
    memset(res, 0, sizeof *res);
    rrun r = {.conf = conf, .cat = cat, .st = st, .ps = ps, .opts = opts, .res = res};
    char source[64];
    o7_rc rc = o7_restore_source(cat, opts->backup_id, source, err);
    if (rc != O7_OK)
        return rc;
    o7_manifest m = {0};
    rc = o7_manifest_read(st, source, opts->backup_id, &m, err);
    if (rc == O7_ERR_NOTFOUND) {
        err->rc = O7_OK;
        rc = o7_fail(err, O7_ERR_CORRUPT, "backup %s has no manifest: it is not a complete "
                     "backup and cannot be restored", opts->backup_id);
    }
    if (rc != O7_OK) {
        o7_manifest_free(&m);
        return rc;
    }
    snprintf(res->backup_id, sizeof res->backup_id, "%s", opts->backup_id);
    snprintf(res->source_store, sizeof res->source_store, "%s", source);
    snprintf(res->target_store, sizeof res->target_store, "%s",
             opts->target_store ? opts->target_store : source);
    res->dry_run = opts->dry_run;
    r.ctx = (o7_restore_ctx){.dry_run = opts->dry_run,
                             .same_store = strcmp(res->source_store, res->target_store) == 0,
                             .activate = opts->activate, .source_store = res->source_store,
                             .target_store = res->target_store, .backup_id = res->backup_id};

    const o7_plugin **plan = NULL;
    size_t np = 0;
    rtype *all = NULL;
    o7_restore_type *scratch = NULL;
    const char **names = NULL;
    size_t nnames = 0;
    if (opts->only_type) {
        all = calloc(m.ntypes + 1, sizeof *all);
        scratch = calloc(m.ntypes + 1, sizeof *scratch);
        names = calloc(m.ntypes + 1, sizeof *names);
        rc = all && scratch && names
                 ? plan_only(&r, &m, all, scratch, names, &nnames, err)
                 : o7_fail(err, O7_ERR_NOMEM, "out of memory");
    }
    if (rc == O7_OK)
        rc = plan_types(&r, &m, names, nnames, &plan, &np, err);
    int lock = -1;
    if (rc == O7_OK && !opts->dry_run)
        rc = o7_store_lock(conf, res->target_store, &lock, err);
    char types[1024] = "";
    if (rc == O7_OK) {
        types_csv(plan, np, types, sizeof types);
        rc = prepare(&r, &m, plan, np, err);
    }
    if (rc != O7_OK) {
        if (rc != O7_ERR_USAGE && rc != O7_ERR_BUSY && !opts->dry_run)
            o7_catalog_audit(cat, res->target_store, opts->actor, "restore", types, "refused",
                             err->msg, NULL);
        o7_store_unlock(lock);
        free(plan);
        free_rtypes(all, all ? m.ntypes : 0);
        free(scratch);
        free(names);
        o7_manifest_free(&m);
        return rc;
    }
    res->types = calloc(np + 1, sizeof *res->types);
    rtype *ts = calloc(np + 1, sizeof *ts);
    o7_http_opts ho = {.concurrency = conf->concurrency, .timeout_s = conf->timeout_s,
                       .connect_timeout_s = conf->connect_timeout_s,
                       .max_retries = conf->max_retries, .user_agent = "o7/" O7_VERSION,
                       .stop_flag = opts->interrupted};
    if (res->types == NULL || ts == NULL || o7_http_new(&ho, &r.http, err) != O7_OK) {
        free(ts);
        free(plan);
        o7_manifest_free(&m);
        o7_store_unlock(lock);
        return err->rc ? err->rc : o7_fail(err, O7_ERR_NOMEM, "out of memory");
    }
    res->ntypes = np;
    snprintf(r.auth, sizeof r.auth, "X-Auth-Token: %s", opts->token);
    r.get_headers[0] = r.auth;
    r.get_headers[1] = "Accept: application/json";
    r.write_headers[0] = r.auth;
    r.write_headers[1] = "Accept: application/json";
    r.write_headers[2] = "Content-Type: application/json";
    res->started_at = (int64_t)time(NULL);
    res->started_ms = o7_now_ms();
    if (!opts->dry_run)
        o7_catalog_audit(cat, res->target_store, opts->actor, "restore", types, "started",
                         res->backup_id, NULL);

    for (size_t i = 0; i < np; i++) {
        rtype *t = &ts[i];
        t->r = &r;
        t->p = plan[i];
        t->res = &res->types[i];
        snprintf(t->res->type, sizeof t->res->type, "%s", plan[i]->type);
        for (size_t j = 0; all && j < m.ntypes; j++) {
            if (all[j].p != plan[i])
                continue;
            /* Planned and spooled already: take it over. */
            o7_restore_type *keep = t->res;
            *t = all[j];
            t->res = keep;
            t->res->records = (int64_t)t->nlines;
            all[j].spool = NULL;
            all[j].lines = NULL;
            all[j].filter.ids = NULL;
        }
        if (!plan[i]->has_restore) {
            snprintf(t->res->status, sizeof t->res->status, "skipped");
            snprintf(t->res->error, sizeof t->res->error,
                     "plugin %s cannot restore its type yet", plan[i]->type);
            continue;
        }
        if (r.fatal[0]) {
            snprintf(t->res->status, sizeof t->res->status, "failed");
            snprintf(t->res->error, sizeof t->res->error, "%s", r.fatal);
            continue;
        }
        o7_err te = {0};
        if (run_type(&r, t, &m, &te) != O7_OK) {
            snprintf(t->res->status, sizeof t->res->status, "failed");
            snprintf(t->res->error, sizeof t->res->error, "%s", te.msg);
        }
    }
    free_rtypes(ts, np);
    free_rtypes(all, all ? m.ntypes : 0);
    free(scratch);
    free(names);
    free(plan);
    o7_manifest_free(&m);
    res->http = *o7_http_get_stats(r.http);
    o7_http_free(r.http);
    o7_wipe(r.auth, sizeof r.auth);
    res->finished_at = (int64_t)time(NULL);
    res->finished_ms = o7_now_ms();

    int64_t failed = 0, skipped_types = 0;
    for (size_t i = 0; i < np; i++) {
        failed += res->types[i].c.failed;
        skipped_types += strcmp(res->types[i].status, "skipped") == 0;
        if (strcmp(res->types[i].status, "failed") == 0 && res->types[i].c.failed == 0)
            failed++;
    }
    if (r.fatal[0])
        snprintf(res->error, sizeof res->error, "%s", r.fatal);
    else if (failed)
        snprintf(res->error, sizeof res->error, "%lld records failed (listed in the report)",
                 (long long)failed);
    snprintf(res->status, sizeof res->status, "%s",
             failed || r.fatal[0] ? "failed" : opts->dry_run ? "planned" : "complete");
    if (!opts->dry_run)
        o7_catalog_audit(cat, res->target_store, opts->actor, "restore", types,
                         failed || r.fatal[0] ? "failed" : "completed",
                         res->error[0] ? res->error : res->backup_id, NULL);
    o7_store_unlock(lock);
    (void)skipped_types;
    if (failed || r.fatal[0])
        return o7_fail(err, O7_ERR_HTTP, "%s", res->error);
    return O7_OK;
}
