/* test_codec.c - gzip and zstd streams: round trips, the command-line tools
 * as independent readers and writers, and every way a stream can be broken. */
#include "buf.h"
#include "check.h"
#include "codec.h"

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

static const o7_codec_kind kinds[] = {O7_CODEC_GZIP, O7_CODEC_ZSTD};

static char tmpdir[] = "/tmp/o7-test-codec-XXXXXX";

/* ---- helpers ------------------------------------------------------------- */

static o7_rc to_buf(void *ud, const void *data, size_t len)
{
    return o7_buf_append(ud, data, len) == O7_OK ? O7_OK : O7_ERR_NOMEM;
}

static o7_rc refuse(void *ud, const void *data, size_t len)
{
    return O7_ERR_STORAGE;
}

/* Piece sizes that fall on no power of two, so chunk edges land everywhere. */
static size_t piece(size_t i)
{
    static const size_t sizes[] = {1, 7, 4093, 65537, 3, 100003, 511, 131071};
    return sizes[i % (sizeof sizes / sizeof sizes[0])];
}

/* Feeds data to c in odd pieces (or all in pieces of `fixed` bytes). */
static o7_rc feed(o7_codec *c, const void *data, size_t len, size_t fixed, o7_err *err)
{
    const unsigned char *p = data;
    for (size_t i = 0, off = 0; off < len; i++) {
        size_t n = fixed ? fixed : piece(i);
        if (n > len - off)
            n = len - off;
        o7_rc rc = o7_codec_write(c, p + off, n, err);
        if (rc != O7_OK)
            return rc;
        off += n;
    }
    return o7_codec_finish(c, err);
}

static o7_rc encode(o7_codec_kind kind, const void *data, size_t len, o7_buf *out)
{
    o7_codec *c = NULL;
    o7_err err = {0};
    o7_rc rc = o7_encoder_new(kind, 0, to_buf, out, &c);
    if (rc == O7_OK)
        rc = feed(c, data, len, 0, &err);
    if (rc != O7_OK)
        fprintf(stderr, "  encode: %s: %s\n", o7_rc_str(rc), err.msg);
    o7_codec_free(c);
    return rc;
}

/* Decodes into out; err (when not NULL) gets the sentence. */
static o7_rc decode(o7_codec_kind kind, const void *data, size_t len, size_t fixed, o7_buf *out,
                    o7_err *err)
{
    o7_codec *c = NULL;
    o7_rc rc = o7_decoder_new(kind, to_buf, out, &c);
    if (rc == O7_OK)
        rc = feed(c, data, len, fixed, err);
    o7_codec_free(c);
    return rc;
}

static uint64_t rng_state = 0x9e3779b97f4a7c15u;

static uint64_t rng(void)
{
    rng_state ^= rng_state << 13;
    rng_state ^= rng_state >> 7;
    rng_state ^= rng_state << 17;
    return rng_state;
}

static unsigned char *random_bytes(size_t n)
{
    unsigned char *p = malloc(n ? n : 1);
    for (size_t i = 0; p && i < n; i++)
        p[i] = (unsigned char)(rng() >> 24);
    return p;
}

/* Text that compresses well but not trivially: NDJSON-like records. */
static char *text_bytes(size_t n)
{
    static const char *words[] = {"product",  "order", "customer",  "\"sku\":", "price",
                                  "{\"id\":", "}\n",   "inventory", "true",     "null"};
    char *p = malloc(n + 1);
    size_t off = 0;
    while (p && off < n) {
        const char *w = words[rng() % 10];
        size_t wl = strlen(w);
        if (wl > n - off)
            wl = n - off;
        memcpy(p + off, w, wl);
        off += wl;
        if (off < n)
            p[off++] = (char)('0' + rng() % 10);
    }
    return p;
}

static void roundtrip(o7_codec_kind kind, const void *data, size_t len)
{
    o7_buf z = O7_BUF_INIT, back = O7_BUF_INIT;
    o7_err err = {0};
    CHECK_INT(encode(kind, data, len, &z), O7_OK);
    CHECK(z.len > 0); /* even an empty stream has a header */
    CHECK_INT(decode(kind, z.data, z.len, 0, &back, &err), O7_OK);
    if (err.rc != O7_OK)
        fprintf(stderr, "  decode: %s\n", err.msg);
    CHECK_MEM(back.data ? back.data : "", back.len, data, len);
    o7_buf_free(&z);
    o7_buf_free(&back);
}

/* Runs cmd with its standard input from the file holding in; returns its
 * exit status and collects its output. */
static int run_filter(const char *cmd, const void *in, size_t inlen, o7_buf *out)
{
    char path[64], line[256];
    snprintf(path, sizeof path, "%s/input", tmpdir);
    FILE *f = fopen(path, "wb");
    if (f == NULL || fwrite(in, 1, inlen, f) != inlen || fclose(f) != 0)
        return -1;
    snprintf(line, sizeof line, "%s < '%s'", cmd, path);
    FILE *p = popen(line, "r");
    if (p == NULL)
        return -1;
    char chunk[65536];
    size_t n;
    while ((n = fread(chunk, 1, sizeof chunk, p)) > 0)
        o7_buf_append(out, chunk, n);
    return pclose(p);
}

static int have_zstd_cli(void)
{
    return system("command -v zstd >/dev/null 2>&1") == 0;
}

/* ---- names --------------------------------------------------------------- */

TEST(names)
{
    CHECK_STR(o7_codec_name(O7_CODEC_GZIP), "gzip");
    CHECK_STR(o7_codec_name(O7_CODEC_ZSTD), "zstd");
    CHECK(o7_codec_name((o7_codec_kind)7) == NULL);
    CHECK_INT(o7_codec_parse("gzip"), O7_CODEC_GZIP);
    CHECK_INT(o7_codec_parse("zstd"), O7_CODEC_ZSTD);
    CHECK_INT(o7_codec_parse("brotli"), -1);
    CHECK_INT(o7_codec_parse(""), -1);
    CHECK_STR(o7_codec_suffix(O7_CODEC_GZIP), ".gz");
    CHECK_STR(o7_codec_suffix(O7_CODEC_ZSTD), ".zst");
}

TEST(bad_level_refused)
{
    o7_codec *c = NULL;
    o7_buf b = O7_BUF_INIT;
    CHECK_INT(o7_encoder_new(O7_CODEC_GZIP, 10, to_buf, &b, &c), O7_ERR_CONFIG);
    CHECK(c == NULL);
    CHECK_INT(o7_encoder_new(O7_CODEC_ZSTD, 99, to_buf, &b, &c), O7_ERR_CONFIG);
    CHECK_INT(o7_encoder_new(O7_CODEC_GZIP, 9, to_buf, &b, &c), O7_OK);
    o7_codec_free(c);
}

/* ---- round trips --------------------------------------------------------- */

TEST(roundtrip_empty)
{
    for (int k = 0; k < 2; k++)
        roundtrip(kinds[k], "", 0);
}

TEST(roundtrip_one_byte)
{
    for (int k = 0; k < 2; k++)
        roundtrip(kinds[k], "x", 1);
}

TEST(roundtrip_random_10mb)
{
    size_t n = 10u * 1000 * 1000;
    unsigned char *data = random_bytes(n);
    for (int k = 0; k < 2; k++)
        roundtrip(kinds[k], data, n);
    free(data);
}

TEST(roundtrip_text_10mb)
{
    size_t n = 10u * 1000 * 1000;
    char *data = text_bytes(n);
    for (int k = 0; k < 2; k++) {
        o7_buf z = O7_BUF_INIT;
        CHECK_INT(encode(kinds[k], data, n, &z), O7_OK);
        CHECK(z.len < n / 3); /* it really compressed */
        o7_buf_free(&z);
        roundtrip(kinds[k], data, n);
    }
    free(data);
}

TEST(levels_change_output)
{
    size_t n = 200000;
    char *data = text_bytes(n);
    for (int k = 0; k < 2; k++) {
        o7_buf fast = O7_BUF_INIT, best = O7_BUF_INIT, back = O7_BUF_INIT;
        o7_codec *c = NULL;
        o7_err err = {0};
        CHECK_INT(o7_encoder_new(kinds[k], 1, to_buf, &fast, &c), O7_OK);
        CHECK_INT(feed(c, data, n, 0, &err), O7_OK);
        o7_codec_free(c);
        CHECK_INT(o7_encoder_new(kinds[k], 9, to_buf, &best, &c), O7_OK);
        CHECK_INT(feed(c, data, n, 0, &err), O7_OK);
        o7_codec_free(c);
        CHECK(best.len < fast.len);
        CHECK_INT(decode(kinds[k], best.data, best.len, 0, &back, &err), O7_OK);
        CHECK_MEM(back.data, back.len, data, n);
        o7_buf_free(&fast);
        o7_buf_free(&best);
        o7_buf_free(&back);
    }
    free(data);
}

/* ---- the command-line tools as independent readers and writers ---------- */

static void check_with_cli(o7_codec_kind kind, const char *decompress, const char *compress)
{
    size_t n = 3u * 1000 * 1000;
    char *data = text_bytes(n);
    o7_buf z = O7_BUF_INIT, plain = O7_BUF_INIT, theirs = O7_BUF_INIT, back = O7_BUF_INIT;
    o7_err err = {0};

    CHECK_INT(encode(kind, data, n, &z), O7_OK);
    CHECK_INT(run_filter(decompress, z.data, z.len, &plain), 0);
    CHECK_MEM(plain.data, plain.len, data, n);

    CHECK_INT(run_filter(compress, data, n, &theirs), 0);
    CHECK_INT(decode(kind, theirs.data, theirs.len, 0, &back, &err), O7_OK);
    CHECK_MEM(back.data, back.len, data, n);

    o7_buf_free(&z);
    o7_buf_free(&plain);
    o7_buf_free(&theirs);
    o7_buf_free(&back);
    free(data);
}

TEST(gzip_cli_agrees)
{
    check_with_cli(O7_CODEC_GZIP, "gzip -dc", "gzip -c");
}

TEST(zstd_cli_agrees)
{
    if (!have_zstd_cli()) {
        printf("skip zstd_cli_agrees: no zstd command on this machine\n");
        return;
    }
    check_with_cli(O7_CODEC_ZSTD, "zstd -q -dc", "zstd -q -c");
}

/* ---- broken streams ------------------------------------------------------ */

TEST(truncated_fails)
{
    size_t n = 300000;
    char *data = text_bytes(n);
    for (int k = 0; k < 2; k++) {
        o7_buf z = O7_BUF_INIT;
        CHECK_INT(encode(kinds[k], data, n, &z), O7_OK);
        size_t cuts[] = {0, 1, 2, 5, 10, 18, z.len / 3, z.len / 2, z.len - 9, z.len - 4, z.len - 1};
        for (size_t i = 0; i < sizeof cuts / sizeof cuts[0]; i++) {
            o7_buf back = O7_BUF_INIT;
            o7_err err = {0};
            o7_rc rc = decode(kinds[k], z.data, cuts[i], 0, &back, &err);
            if (rc != O7_ERR_CORRUPT)
                fprintf(stderr, "  %s cut at %zu of %zu\n", o7_codec_name(kinds[k]), cuts[i],
                        z.len);
            CHECK_INT(rc, O7_ERR_CORRUPT);
            CHECK(strstr(err.msg, o7_codec_name(kinds[k])) != NULL);
            o7_buf_free(&back);
        }
        o7_buf_free(&z);
    }
    free(data);
}

TEST(flipped_byte_fails)
{
    size_t n = 300000;
    char *data = text_bytes(n);
    for (int k = 0; k < 2; k++) {
        o7_buf z = O7_BUF_INIT;
        CHECK_INT(encode(kinds[k], data, n, &z), O7_OK);
        /* Bytes past the headers: a gzip header's time stamp is not checked. */
        size_t at[] = {z.len / 4, z.len / 2, z.len * 3 / 4, z.len - 2};
        for (size_t i = 0; i < sizeof at / sizeof at[0]; i++) {
            o7_buf back = O7_BUF_INIT;
            o7_err err = {0};
            z.data[at[i]] ^= 0x20;
            CHECK_INT(decode(kinds[k], z.data, z.len, 0, &back, &err), O7_ERR_CORRUPT);
            CHECK(err.msg[0] != '\0');
            z.data[at[i]] ^= 0x20;
            o7_buf_free(&back);
        }
        o7_buf_free(&z);
    }
    free(data);
}

TEST(concatenated_members)
{
    const char *a = "first part, ", *b = "second part, ";
    size_t big = 200000;
    char *c = text_bytes(big);
    for (int k = 0; k < 2; k++) {
        o7_buf all = O7_BUF_INIT, want = O7_BUF_INIT;
        CHECK_INT(encode(kinds[k], a, strlen(a), &all), O7_OK);
        CHECK_INT(encode(kinds[k], "", 0, &all), O7_OK); /* an empty member between */
        CHECK_INT(encode(kinds[k], b, strlen(b), &all), O7_OK);
        CHECK_INT(encode(kinds[k], c, big, &all), O7_OK);
        o7_buf_puts(&want, a);
        o7_buf_puts(&want, b);
        o7_buf_append(&want, c, big);

        /* In odd pieces, and byte by byte so a boundary falls between writes. */
        size_t fixed[] = {0, 1};
        for (int f = 0; f < 2; f++) {
            o7_buf back = O7_BUF_INIT;
            o7_err err = {0};
            CHECK_INT(decode(kinds[k], all.data, all.len, fixed[f], &back, &err), O7_OK);
            CHECK_MEM(back.data, back.len, want.data, want.len);
            o7_buf_free(&back);
        }
        o7_buf_free(&all);
        o7_buf_free(&want);
    }
    free(c);
}

TEST(trailing_garbage_fails)
{
    const char *tails[] = {"this is not compressed data", "\n", "\0\0\0\0\0\0\0\0"};
    size_t tail_len[] = {27, 1, 8};
    for (int k = 0; k < 2; k++) {
        for (int t = 0; t < 3; t++) {
            o7_buf z = O7_BUF_INIT, back = O7_BUF_INIT;
            o7_err err = {0};
            CHECK_INT(encode(kinds[k], "hello", 5, &z), O7_OK);
            o7_buf_append(&z, tails[t], tail_len[t]);
            CHECK_INT(decode(kinds[k], z.data, z.len, 0, &back, &err), O7_ERR_CORRUPT);
            CHECK(err.msg[0] != '\0');
            o7_buf_free(&z);
            o7_buf_free(&back);
        }
    }
}

TEST(wrong_codec_fails)
{
    o7_buf z = O7_BUF_INIT, back = O7_BUF_INIT;
    o7_err err = {0};
    CHECK_INT(encode(O7_CODEC_ZSTD, "hello", 5, &z), O7_OK);
    CHECK_INT(decode(O7_CODEC_GZIP, z.data, z.len, 0, &back, &err), O7_ERR_CORRUPT);
    o7_buf_free(&z);
    o7_buf_free(&back);
}

TEST(sink_failure_stops_stream)
{
    size_t n = 500000;
    unsigned char *data = random_bytes(n);
    for (int k = 0; k < 2; k++) {
        o7_codec *c = NULL;
        o7_err err = {0};
        CHECK_INT(o7_encoder_new(kinds[k], 0, refuse, NULL, &c), O7_OK);
        o7_rc rc = o7_codec_write(c, data, n, &err);
        if (rc == O7_OK)
            rc = o7_codec_finish(c, &err);
        CHECK_INT(rc, O7_ERR_STORAGE);
        CHECK(strstr(err.msg, "refused") != NULL);
        /* A failed stream stays failed. */
        CHECK_INT(o7_codec_write(c, "x", 1, NULL), O7_ERR_STORAGE);
        o7_codec_free(c);
    }
    free(data);
}

int main(void)
{
    if (mkdtemp(tmpdir) == NULL) {
        perror("mkdtemp");
        return 1;
    }
    RUN(names);
    RUN(bad_level_refused);
    RUN(roundtrip_empty);
    RUN(roundtrip_one_byte);
    RUN(roundtrip_random_10mb);
    RUN(roundtrip_text_10mb);
    RUN(levels_change_output);
    RUN(gzip_cli_agrees);
    RUN(zstd_cli_agrees);
    RUN(truncated_fails);
    RUN(flipped_byte_fails);
    RUN(concatenated_members);
    RUN(trailing_garbage_fails);
    RUN(wrong_codec_fails);
    RUN(sink_failure_stops_stream);

    char path[64];
    snprintf(path, sizeof path, "%s/input", tmpdir);
    unlink(path);
    rmdir(tmpdir);
    return check_summary();
}
