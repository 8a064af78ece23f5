/* codec.c - streaming gzip (zlib) and zstd, both ways, in bounded memory.
 *
 * Every codec owns one fixed output chunk; whatever the library produces is
 * handed to the sink chunk by chunk, so memory never grows with the object. */
#include "codec.h"

#include <stdint.h>
#include <stdlib.h>
#include <string.h>

/* zlib then declares next_in const, which it is: it never writes input. */
#define ZLIB_CONST
#include <zlib.h>
#include <zstd.h>

/* Output is produced in chunks of this size: large enough to keep the sink's
 * per-call cost small, small enough to stay out of the way. */
#define CHUNK (64 * 1024)

#define GZIP_DEFAULT_LEVEL 6
#define ZSTD_DEFAULT_LEVEL 3

struct o7_codec {
    o7_codec_kind kind;
    int encode;
    o7_sink_fn sink;
    void *ud;
    unsigned char *out; /* CHUNK bytes */

    z_stream z;       /* gzip, either way */
    int z_ready;      /* z must be ended */
    ZSTD_CStream *zc; /* zstd encoder */
    ZSTD_DStream *zd; /* zstd decoder */

    /* Decoder: the input so far ends exactly after a complete gzip member or
     * zstd frame, so the stream may end here. */
    int at_boundary;
    /* Sticky state: once failed or finished, the codec takes nothing more. */
    o7_rc failed;
    int finished;
};

const char *o7_codec_name(o7_codec_kind kind)
{
    switch (kind) {
    case O7_CODEC_GZIP: return "gzip";
    case O7_CODEC_ZSTD: return "zstd";
    }
    return NULL;
}

int o7_codec_parse(const char *name)
{
    if (name == NULL)
        return -1;
    if (strcmp(name, "gzip") == 0)
        return O7_CODEC_GZIP;
    if (strcmp(name, "zstd") == 0)
        return O7_CODEC_ZSTD;
    return -1;
}

const char *o7_codec_suffix(o7_codec_kind kind)
{
    switch (kind) {
    case O7_CODEC_GZIP: return ".gz";
    case O7_CODEC_ZSTD: return ".zst";
    }
    return NULL;
}

/* ---- construction ------------------------------------------------------ */

static o7_rc codec_alloc(o7_codec_kind kind, int encode, o7_sink_fn sink, void *ud, o7_codec **out)
{
    *out = NULL;
    if (kind != O7_CODEC_GZIP && kind != O7_CODEC_ZSTD)
        return O7_ERR_USAGE;
    o7_codec *c = calloc(1, sizeof *c);
    if (c == NULL)
        return O7_ERR_NOMEM;
    c->out = malloc(CHUNK);
    if (c->out == NULL) {
        free(c);
        return O7_ERR_NOMEM;
    }
    c->kind = kind;
    c->encode = encode;
    c->sink = sink;
    c->ud = ud;
    *out = c;
    return O7_OK;
}

static o7_rc gzip_encoder_init(o7_codec *c, int level)
{
    if (level == 0)
        level = GZIP_DEFAULT_LEVEL;
    if (level < 1 || level > 9)
        return O7_ERR_CONFIG;
    /* windowBits 15 + 16 asks zlib for the gzip wrapper (header + CRC-32). */
    int zr = deflateInit2(&c->z, level, Z_DEFLATED, 15 + 16, 8, Z_DEFAULT_STRATEGY);
    if (zr != Z_OK)
        return zr == Z_MEM_ERROR ? O7_ERR_NOMEM : O7_ERR_INTERNAL;
    c->z_ready = 1;
    return O7_OK;
}

static o7_rc zstd_encoder_init(o7_codec *c, int level)
{
    if (level == 0)
        level = ZSTD_DEFAULT_LEVEL;
    if (level < 1 || level > ZSTD_maxCLevel())
        return O7_ERR_CONFIG;
    c->zc = ZSTD_createCStream();
    if (c->zc == NULL)
        return O7_ERR_NOMEM;
    /* The content checksum lets the decoder catch a changed byte. */
    if (ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_compressionLevel, level)) ||
        ZSTD_isError(ZSTD_CCtx_setParameter(c->zc, ZSTD_c_checksumFlag, 1)))
        return O7_ERR_INTERNAL;
    return O7_OK;
}

o7_rc o7_encoder_new(o7_codec_kind kind, int level, o7_sink_fn sink, void *ud, o7_codec **out)
{
    o7_codec *c;
    o7_rc rc = codec_alloc(kind, 1, sink, ud, &c);
    if (rc != O7_OK)
        return rc;
    rc = kind == O7_CODEC_GZIP ? gzip_encoder_init(c, level) : zstd_encoder_init(c, level);
    if (rc != O7_OK) {
        o7_codec_free(c);
        return rc;
    }
    *out = c;
    return O7_OK;
}

o7_rc o7_decoder_new(o7_codec_kind kind, o7_sink_fn sink, void *ud, o7_codec **out)
{
    o7_codec *c;
    o7_rc rc = codec_alloc(kind, 0, sink, ud, &c);
    if (rc != O7_OK)
        return rc;
    if (kind == O7_CODEC_GZIP) {
        int zr = inflateInit2(&c->z, 15 + 16); /* gzip wrapper only, no raw zlib */
        if (zr == Z_OK)
            c->z_ready = 1;
        else
            rc = zr == Z_MEM_ERROR ? O7_ERR_NOMEM : O7_ERR_INTERNAL;
    } else {
        c->zd = ZSTD_createDStream();
        if (c->zd == NULL)
            rc = O7_ERR_NOMEM;
    }
    if (rc != O7_OK) {
        o7_codec_free(c);
        return rc;
    }
    *out = c;
    return O7_OK;
}

void o7_codec_free(o7_codec *c)
{
    if (c == NULL)
        return;
    if (c->z_ready) {
        if (c->encode)
            deflateEnd(&c->z);
        else
            inflateEnd(&c->z);
    }
    ZSTD_freeCStream(c->zc);
    ZSTD_freeDStream(c->zd);
    free(c->out);
    free(c);
}

/* ---- the sink ------------------------------------------------------------ */

static o7_rc emit(o7_codec *c, size_t n, o7_err *err)
{
    if (n == 0)
        return O7_OK;
    o7_rc rc = c->sink(c->ud, c->out, n);
    if (rc != O7_OK)
        return o7_fail(err, rc, "the %s %s stopped because its output was refused (%s)",
                       o7_codec_name(c->kind), c->encode ? "encoder" : "decoder", o7_rc_str(rc));
    return O7_OK;
}

/* ---- gzip ---------------------------------------------------------------- */

static o7_rc gzip_deflate(o7_codec *c, int flush, o7_err *err)
{
    for (;;) {
        c->z.next_out = c->out;
        c->z.avail_out = CHUNK;
        int zr = deflate(&c->z, flush);
        if (zr == Z_STREAM_ERROR)
            return o7_fail(err, O7_ERR_INTERNAL, "gzip encoder failed: %s",
                           c->z.msg ? c->z.msg : "stream error");
        o7_rc rc = emit(c, CHUNK - c->z.avail_out, err);
        if (rc != O7_OK)
            return rc;
        if (flush == Z_FINISH) {
            if (zr == Z_STREAM_END)
                return O7_OK;
        } else if (c->z.avail_in == 0 && c->z.avail_out != 0) {
            return O7_OK; /* all input taken and nothing left pending */
        }
    }
}

static o7_rc gzip_inflate(o7_codec *c, o7_err *err)
{
    for (;;) {
        /* A new member may follow a finished one (`cat a.gz b.gz`). Anything
         * that is not a gzip header fails in inflate: trailing garbage. */
        if (c->at_boundary && c->z.avail_in > 0) {
            inflateReset(&c->z);
            c->at_boundary = 0;
        }
        c->z.next_out = c->out;
        c->z.avail_out = CHUNK;
        int zr = inflate(&c->z, Z_NO_FLUSH);
        o7_rc rc = emit(c, CHUNK - c->z.avail_out, err);
        if (rc != O7_OK)
            return rc;
        switch (zr) {
        case Z_STREAM_END:
            c->at_boundary = 1;
            if (c->z.avail_in == 0)
                return O7_OK;
            break;
        case Z_OK:
            /* A full chunk may leave output pending inside zlib. */
            if (c->z.avail_in == 0 && c->z.avail_out != 0)
                return O7_OK;
            break;
        case Z_BUF_ERROR: return O7_OK; /* no progress possible: it needs more input */
        case Z_MEM_ERROR: return o7_fail(err, O7_ERR_NOMEM, "gzip decoder ran out of memory");
        default:
            return o7_fail(err, O7_ERR_CORRUPT, "the gzip data is corrupt (%s)",
                           c->z.msg ? c->z.msg : "invalid data");
        }
    }
}

static o7_rc gzip_write(o7_codec *c, const void *data, size_t len, o7_err *err)
{
    const unsigned char *p = data;
    /* avail_in is an unsigned int: feed very large buffers in slices. */
    while (len > 0) {
        size_t n = len > (1u << 30) ? (1u << 30) : len;
        c->z.next_in = p;
        c->z.avail_in = (unsigned)n;
        o7_rc rc = c->encode ? gzip_deflate(c, Z_NO_FLUSH, err) : gzip_inflate(c, err);
        if (rc != O7_OK)
            return rc;
        p += n;
        len -= n;
    }
    return O7_OK;
}

/* ---- zstd ---------------------------------------------------------------- */

static o7_rc zstd_compress(o7_codec *c, ZSTD_inBuffer *in, ZSTD_EndDirective mode, o7_err *err)
{
    for (;;) {
        ZSTD_outBuffer out = {c->out, CHUNK, 0};
        size_t left = ZSTD_compressStream2(c->zc, &out, in, mode);
        if (ZSTD_isError(left))
            return o7_fail(err, O7_ERR_INTERNAL, "zstd encoder failed: %s",
                           ZSTD_getErrorName(left));
        o7_rc rc = emit(c, out.pos, err);
        if (rc != O7_OK)
            return rc;
        if (mode == ZSTD_e_end) {
            if (left == 0)
                return O7_OK; /* frame written and flushed */
        } else if (in->pos == in->size && out.pos < out.size) {
            return O7_OK;
        }
    }
}

static o7_rc zstd_decompress(o7_codec *c, ZSTD_inBuffer *in, o7_err *err)
{
    while (in->pos < in->size) {
        ZSTD_outBuffer out = {c->out, CHUNK, 0};
        size_t hint = ZSTD_decompressStream(c->zd, &out, in);
        if (ZSTD_isError(hint))
            return o7_fail(err, O7_ERR_CORRUPT, "the zstd data is corrupt (%s)",
                           ZSTD_getErrorName(hint));
        o7_rc rc = emit(c, out.pos, err);
        if (rc != O7_OK)
            return rc;
        /* 0 means a frame just ended and is fully flushed; the next call, if
         * input remains, starts the next frame. Not 0 with a full chunk means
         * output may be pending: go round even when the input is used up. */
        c->at_boundary = hint == 0;
        while (hint != 0 && out.pos == out.size && in->pos == in->size) {
            out.pos = 0;
            hint = ZSTD_decompressStream(c->zd, &out, in);
            if (ZSTD_isError(hint))
                return o7_fail(err, O7_ERR_CORRUPT, "the zstd data is corrupt (%s)",
                               ZSTD_getErrorName(hint));
            rc = emit(c, out.pos, err);
            if (rc != O7_OK)
                return rc;
            c->at_boundary = hint == 0;
        }
    }
    return O7_OK;
}

static o7_rc zstd_write(o7_codec *c, const void *data, size_t len, o7_err *err)
{
    ZSTD_inBuffer in = {data, len, 0};
    return c->encode ? zstd_compress(c, &in, ZSTD_e_continue, err) : zstd_decompress(c, &in, err);
}

/* ---- the stream ---------------------------------------------------------- */

static o7_rc check_usable(o7_codec *c, o7_err *err)
{
    if (c->failed != O7_OK)
        return o7_fail(err, c->failed, "the %s stream already failed", o7_codec_name(c->kind));
    if (c->finished)
        return o7_fail(err, O7_ERR_INTERNAL, "the %s stream was already finished",
                       o7_codec_name(c->kind));
    return O7_OK;
}

o7_rc o7_codec_write(o7_codec *c, const void *data, size_t len, o7_err *err)
{
    o7_rc rc = check_usable(c, err);
    if (rc != O7_OK || len == 0)
        return rc;
    rc = c->kind == O7_CODEC_GZIP ? gzip_write(c, data, len, err) : zstd_write(c, data, len, err);
    c->failed = rc;
    return rc;
}

static o7_rc decoder_finish(o7_codec *c, o7_err *err)
{
    /* An encoder always writes at least one member or frame, so an empty
     * stream is as cut short as one that stops half-way. */
    if (!c->at_boundary)
        return o7_fail(err, O7_ERR_CORRUPT, "the %s data ends too early: the stream was cut short",
                       o7_codec_name(c->kind));
    return O7_OK;
}

o7_rc o7_codec_finish(o7_codec *c, o7_err *err)
{
    o7_rc rc = check_usable(c, err);
    if (rc != O7_OK)
        return rc;
    if (!c->encode) {
        rc = decoder_finish(c, err);
    } else if (c->kind == O7_CODEC_GZIP) {
        c->z.next_in = NULL;
        c->z.avail_in = 0;
        rc = gzip_deflate(c, Z_FINISH, err);
    } else {
        ZSTD_inBuffer in = {NULL, 0, 0};
        rc = zstd_compress(c, &in, ZSTD_e_end, err);
    }
    c->failed = rc;
    c->finished = rc == O7_OK;
    return rc;
}
