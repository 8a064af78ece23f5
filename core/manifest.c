/* manifest.c - manifest parsing and backup verification. */
#include "manifest.h"
#include "buf.h"
#include "codec.h"
#include "crypto.h"
#include "json.h"
#include "log.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

static void str_member(const o7_json_span *obj, const char *key, char *out, size_t n)
{
    o7_json_span v;
    char *s = NULL;
    out[0] = '\0';
    if (o7_json_get(obj, key, &v) == O7_OK && v.kind == O7_JSON_STRING &&
        o7_json_str(&v, &s) == O7_OK)
        snprintf(out, n, "%s", s);
    free(s);
}

static int64_t int_member(const o7_json_span *obj, const char *key)
{
    o7_json_span v;
    int64_t n = -1;
    if (o7_json_get(obj, key, &v) == O7_OK)
        o7_json_int(&v, &n);
    return n;
}

o7_rc o7_manifest_parse(const char *text, size_t len, o7_manifest *out, o7_err *err)
{
    memset(out, 0, sizeof *out);
    o7_json_span root, types, atts;
    o7_rc rc = o7_json_parse(text, len, &root, err);
    if (rc != O7_OK)
        return o7_fail(err, O7_ERR_CORRUPT, "the manifest is not valid JSON");
    if (root.kind != O7_JSON_OBJECT)
        return o7_fail(err, O7_ERR_CORRUPT, "the manifest is not a JSON object");
    out->format = (int)int_member(&root, "format");
    if (out->format != 1)
        return o7_fail(err, O7_ERR_CORRUPT,
                       "the manifest has format %d; this o7 reads format 1", out->format);
    str_member(&root, "store_hash", out->store_hash, sizeof out->store_hash);
    str_member(&root, "backup_id", out->backup_id, sizeof out->backup_id);
    str_member(&root, "started_at", out->started_at, sizeof out->started_at);
    str_member(&root, "finished_at", out->finished_at, sizeof out->finished_at);
    str_member(&root, "o7_version", out->o7_version, sizeof out->o7_version);
    if (!out->store_hash[0] || !out->backup_id[0])
        return o7_fail(err, O7_ERR_CORRUPT, "the manifest lacks store_hash or backup_id");
    if (o7_json_get(&root, "types", &types) != O7_OK || types.kind != O7_JSON_OBJECT)
        return o7_fail(err, O7_ERR_CORRUPT, "the manifest has no types object");
    size_t nt = o7_json_count(&types);
    out->types = calloc(nt ? nt : 1, sizeof *out->types);
    if (out->types == NULL)
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    o7_json_iter it;
    o7_json_span k, v;
    o7_json_iter_init(&it, &types);
    while (o7_json_next(&it, &k, &v)) {
        o7_manifest_type *t = &out->types[out->ntypes++];
        char *name = NULL;
        if (o7_json_str(&k, &name) == O7_OK)
            snprintf(t->type, sizeof t->type, "%s", name);
        free(name);
        str_member(&v, "object", t->object, sizeof t->object);
        str_member(&v, "codec", t->codec, sizeof t->codec);
        str_member(&v, "sha256", t->sha256, sizeof t->sha256);
        str_member(&v, "plugin", t->plugin, sizeof t->plugin);
        str_member(&v, "plugin_version", t->plugin_version, sizeof t->plugin_version);
        t->records = int_member(&v, "records");
        t->bytes = int_member(&v, "bytes");
        t->stored_bytes = int_member(&v, "stored_bytes");
        if (!t->object[0] || strstr(t->object, "..") || t->object[0] == '/' ||
            o7_codec_parse(t->codec) < 0 || strlen(t->sha256) != 64 || t->records < 0)
            return o7_fail(err, O7_ERR_CORRUPT, "the manifest's entry for type %s is incomplete",
                           t->type);
    }
    if (o7_json_get(&root, "attachments", &atts) == O7_OK && atts.kind == O7_JSON_ARRAY) {
        size_t na = o7_json_count(&atts);
        out->attachments = calloc(na ? na : 1, sizeof *out->attachments);
        if (out->attachments == NULL)
            return o7_fail(err, O7_ERR_NOMEM, "out of memory");
        o7_json_iter_init(&it, &atts);
        while (o7_json_next(&it, &k, &v)) {
            o7_attachment *a = &out->attachments[out->nattachments++];
            str_member(&v, "object", a->object, sizeof a->object);
            str_member(&v, "type", a->type, sizeof a->type);
            str_member(&v, "sha256", a->sha256, sizeof a->sha256);
            a->bytes = int_member(&v, "bytes");
            if (!a->object[0] || strstr(a->object, "..") || strlen(a->sha256) != 64)
                return o7_fail(err, O7_ERR_CORRUPT, "the manifest lists an incomplete "
                               "attachment");
        }
    }
    return O7_OK;
}

static o7_rc collect(void *ud, const void *data, size_t len)
{
    o7_buf *b = ud;
    if (b->len + len > (64u << 20))
        return O7_ERR_CORRUPT;
    return o7_buf_append(b, data, len);
}

o7_rc o7_manifest_read(o7_storage *st, const char *store_hash, const char *backup_id,
                       o7_manifest *out, o7_err *err)
{
    char key[256];
    snprintf(key, sizeof key, "%s/%s/manifest.json", store_hash, backup_id);
    o7_buf b = O7_BUF_INIT;
    o7_rc rc = o7_storage_get(st, key, collect, &b, err);
    if (rc == O7_OK) {
        rc = o7_manifest_parse(b.data ? b.data : "", b.len, out, err);
        if (rc == O7_OK && (strcmp(out->store_hash, store_hash) != 0 ||
                            strcmp(out->backup_id, backup_id) != 0))
            rc = o7_fail(err, O7_ERR_CORRUPT,
                         "manifest %s names another backup (%s/%s)", key, out->store_hash,
                         out->backup_id);
    }
    o7_buf_free(&b);
    return rc;
}

void o7_manifest_free(o7_manifest *m)
{
    free(m->types);
    free(m->attachments);
    m->types = NULL;
    m->attachments = NULL;
}

const o7_manifest_type *o7_manifest_type_find(const o7_manifest *m, const char *type)
{
    for (size_t i = 0; i < m->ntypes; i++)
        if (strcmp(m->types[i].type, type) == 0)
            return &m->types[i];
    return NULL;
}

int64_t o7_rfc3339_parse(const char *s)
{
    struct tm tm = {0};
    const char *end = strptime(s, "%Y-%m-%dT%H:%M:%SZ", &tm);
    if (end == NULL || *end != '\0')
        return -1;
    return (int64_t)timegm(&tm);
}

/* ---- verify -------------------------------------------------------------- */

typedef struct vstate {
    o7_sha256 *sha;
    o7_codec *dec; /* NULL for attachments */
    int64_t stored, bytes, lines;
    int last_newline;
    o7_err derr;
} vstate;

static o7_rc count_plain(void *ud, const void *data, size_t len)
{
    vstate *v = ud;
    const char *p = data;
    v->bytes += (int64_t)len;
    for (size_t i = 0; i < len; i++)
        v->lines += p[i] == '\n';
    if (len)
        v->last_newline = p[len - 1] == '\n';
    return O7_OK;
}

static o7_rc check_stored(void *ud, const void *data, size_t len)
{
    vstate *v = ud;
    o7_sha256_update(v->sha, data, len);
    v->stored += (int64_t)len;
    if (v->dec)
        return o7_codec_write(v->dec, data, len, &v->derr);
    return O7_OK;
}

static void item_fail(o7_verify_item *it, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void item_fail(o7_verify_item *it, const char *fmt, ...)
{
    snprintf(it->status, sizeof it->status, "failed");
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(it->error, sizeof it->error, fmt, ap);
    va_end(ap);
}

static o7_rc verify_object(o7_storage *st, const o7_manifest *m, const char *object, int codec,
                           o7_verify_item *it, o7_err *err)
{
    char key[512];
    snprintf(key, sizeof key, "%s/%s/%s", m->store_hash, m->backup_id, object);
    vstate v = {0};
    v.last_newline = 1;
    v.sha = o7_sha256_new();
    if (v.sha == NULL)
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    o7_rc rc = O7_OK;
    if (codec >= 0)
        rc = o7_decoder_new((o7_codec_kind)codec, count_plain, &v, &v.dec);
    o7_err gerr = {0};
    if (rc == O7_OK)
        rc = o7_storage_get(st, key, check_stored, &v, &gerr);
    if (rc == O7_OK && v.dec)
        rc = o7_codec_finish(v.dec, &v.derr);
    o7_sha256_final_hex(v.sha, it->sha256);
    o7_codec_free(v.dec);
    it->stored_bytes = v.stored;
    it->bytes = codec >= 0 ? v.bytes : v.stored;
    it->records = v.lines;
    snprintf(it->object, sizeof it->object, "%s", object);
    snprintf(it->status, sizeof it->status, "ok");
    if (rc == O7_ERR_NOTFOUND)
        item_fail(it, "object %s is missing", object);
    else if (rc != O7_OK)
        item_fail(it, "%s: %s", object,
                  v.derr.msg[0] ? v.derr.msg : gerr.msg[0] ? gerr.msg : o7_rc_str(rc));
    else if (codec >= 0 && !v.last_newline)
        item_fail(it, "%s does not end with a complete record", object);
    return rc == O7_OK ? O7_OK : O7_ERR_CORRUPT;
}

o7_rc o7_verify(o7_storage *st, const o7_manifest *m, o7_verify_item **items, size_t *n,
                o7_err *err)
{
    size_t total = m->ntypes + m->nattachments;
    o7_verify_item *out = calloc(total ? total : 1, sizeof *out);
    if (out == NULL)
        return o7_fail(err, O7_ERR_NOMEM, "out of memory");
    *items = out;
    *n = total;
    int bad = 0;
    for (size_t i = 0; i < m->ntypes; i++) {
        const o7_manifest_type *t = &m->types[i];
        o7_verify_item *it = &out[i];
        snprintf(it->type, sizeof it->type, "%s", t->type);
        o7_rc rc = verify_object(st, m, t->object, o7_codec_parse(t->codec), it, err);
        if (rc == O7_OK && strcmp(it->sha256, t->sha256) != 0)
            item_fail(it, "%s: sha256 differs from the manifest", t->object);
        else if (rc == O7_OK && it->stored_bytes != t->stored_bytes)
            item_fail(it, "%s: %lld bytes stored, the manifest says %lld", t->object,
                      (long long)it->stored_bytes, (long long)t->stored_bytes);
        else if (rc == O7_OK && it->records != t->records)
            item_fail(it, "%s: %lld records, the manifest says %lld", t->object,
                      (long long)it->records, (long long)t->records);
        else if (rc == O7_OK && it->bytes != t->bytes)
            item_fail(it, "%s: %lld bytes when decompressed, the manifest says %lld",
                      t->object, (long long)it->bytes, (long long)t->bytes);
        bad |= strcmp(it->status, "ok") != 0;
    }
    for (size_t i = 0; i < m->nattachments; i++) {
        const o7_attachment *a = &m->attachments[i];
        o7_verify_item *it = &out[m->ntypes + i];
        snprintf(it->type, sizeof it->type, "%s", a->type);
        o7_rc rc = verify_object(st, m, a->object, -1, it, err);
        it->records = 0;
        if (rc == O7_OK && strcmp(it->sha256, a->sha256) != 0)
            item_fail(it, "%s: sha256 differs from the manifest", a->object);
        else if (rc == O7_OK && it->bytes != a->bytes)
            item_fail(it, "%s: %lld bytes, the manifest says %lld", a->object,
                      (long long)it->bytes, (long long)a->bytes);
        bad |= strcmp(it->status, "ok") != 0;
    }
    if (!bad)
        return O7_OK;
    for (size_t i = 0; i < total; i++)
        if (strcmp(out[i].status, "ok") != 0)
            return o7_fail(err, O7_ERR_CORRUPT, "backup %s is damaged: %s", m->backup_id,
                           out[i].error);
    return O7_ERR_CORRUPT;
}
