/* codec.h - streaming gzip and zstd, both ways.
 *
 * An encoder takes plain bytes and hands compressed bytes to a sink as they
 * come; a decoder does the reverse. Neither ever holds a whole object. A
 * decoder fails loudly (O7_ERR_CORRUPT) on corrupt input and, at finish, on
 * a stream that ended early. */
#ifndef O7_CODEC_H
#define O7_CODEC_H

#include "conf.h"
#include "result.h"

#include <stddef.h>

/** Receives bytes; returns O7_OK or a failure that stops the stream. */
typedef o7_rc (*o7_sink_fn)(void *ud, const void *data, size_t len);

typedef struct o7_codec o7_codec;

/** "gzip" or "zstd"; NULL for anything else. */
const char *o7_codec_name(o7_codec_kind kind);
/** Parses "gzip"/"zstd"; returns -1 for anything else. */
int o7_codec_parse(const char *name);
/** The object name suffix, ".gz" or ".zst". */
const char *o7_codec_suffix(o7_codec_kind kind);

/** A compressor writing to sink. level 0 means the codec's default. */
o7_rc o7_encoder_new(o7_codec_kind kind, int level, o7_sink_fn sink, void *ud, o7_codec **out);
/** A decompressor writing plain bytes to sink. */
o7_rc o7_decoder_new(o7_codec_kind kind, o7_sink_fn sink, void *ud, o7_codec **out);
/** Feeds bytes in; output goes to the sink as it is produced. */
o7_rc o7_codec_write(o7_codec *c, const void *data, size_t len, o7_err *err);
/** Ends the stream: flushes an encoder; checks a decoder saw a whole
 * stream (O7_ERR_CORRUPT if it was cut short). */
o7_rc o7_codec_finish(o7_codec *c, o7_err *err);
void o7_codec_free(o7_codec *c);

#endif
