/* core/codec_format.h: the byte format shared by the codec's encoder
 * (codec_encode.c) and decoder (codec_decode.c); rules in codec.c. */
#ifndef CURIO_CODEC_FORMAT_H
#define CURIO_CODEC_FORMAT_H

#define CODEC_MAGIC "CL\1"
#define CODEC_MAGIC_LEN 3

enum {
  TAG_NIL, TAG_FALSE, TAG_TRUE, TAG_INT, TAG_FLOAT, TAG_STRING, TAG_TABLE,
  TAG_END, TAG_REF, TAG_LFUNC, TAG_GLOBALS, TAG_CFUNC, TAG_SHARED
};

#define CODEC_MAX_DEPTH 200 /* tables and functions nested */

#endif
