/* storage.c - picks the backend by the URL's scheme and forwards to it. */
#include "storage.h"

#include <string.h>

static const struct o7_storage_ops *backend_for(const char *url)
{
    if (strncmp(url, "file://", 7) == 0)
        return &o7_storage_file_ops;
    if (strncmp(url, "s3://", 5) == 0)
        return &o7_storage_s3_ops;
    return NULL;
}

o7_rc o7_storage_open(const o7_conf *conf, o7_storage **out, o7_err *err)
{
    const struct o7_storage_ops *ops = backend_for(conf->storage_url);
    if (ops == NULL)
        return o7_fail(err, O7_ERR_CONFIG, "storage url %s has a scheme o7 does not know",
                       conf->storage_url);
    o7_rc rc = ops->open(conf, out, err);
    if (rc == O7_OK)
        (*out)->ops = ops;
    return rc;
}

void o7_storage_close(o7_storage *st)
{
    if (st)
        st->ops->close(st);
}

const char *o7_storage_describe(const o7_storage *st)
{
    return st->describe;
}

o7_rc o7_storage_writer(o7_storage *st, const char *key, o7_writer **out, o7_err *err)
{
    o7_rc rc = st->ops->writer(st, key, out, err);
    if (rc == O7_OK)
        (*out)->st = st;
    return rc;
}

o7_rc o7_writer_write(o7_writer *w, const void *data, size_t len, o7_err *err)
{
    return w->st->ops->write(w, data, len, err);
}

o7_rc o7_writer_commit(o7_writer *w, o7_err *err)
{
    return w->st->ops->commit(w, err);
}

void o7_writer_abort(o7_writer *w)
{
    if (w)
        w->st->ops->abort(w);
}

o7_rc o7_storage_get(o7_storage *st, const char *key, o7_sink_fn sink, void *ud, o7_err *err)
{
    return st->ops->get(st, key, sink, ud, err);
}

o7_rc o7_storage_head(o7_storage *st, const char *key, o7_object_info *info, o7_err *err)
{
    return st->ops->head(st, key, info, err);
}

o7_rc o7_storage_list(o7_storage *st, const char *prefix, o7_list_fn fn, void *ud, o7_err *err)
{
    return st->ops->list(st, prefix, fn, ud, err);
}

o7_rc o7_storage_delete(o7_storage *st, const char *key, o7_err *err)
{
    return st->ops->del(st, key, err);
}

o7_rc o7_storage_presign(o7_storage *st, const char *key, int ttl, char **url, o7_err *err)
{
    return st->ops->presign(st, key, ttl, url, err);
}

o7_rc o7_storage_gc(o7_storage *st, int64_t max_age, o7_err *err)
{
    return st->ops->gc(st, max_age, err);
}
