/* core/codec_frame.c: the size prefix of a Channel's messages (codec.h:
 * Frames). The reader trusts nothing: a header is checked whole against
 * the limit before its size is used for anything (rule 2 of codec.c). */
#include "codec.h"

size_t codec_frame_header(size_t size, unsigned char out[CODEC_FRAME_HEAD_MAX]) {
  if (size <= 0x7fffffff) {
    for (int i = 0; i < 4; i++) out[i] = (unsigned char)(size >> (8 * (3 - i)));
    return 4;
  }
  uint64_t big = size;
  for (int i = 0; i < 4; i++) out[i] = 0xff;
  for (int i = 0; i < 8; i++) out[4 + i] = (unsigned char)(big >> (8 * (7 - i)));
  return 12;
}

int codec_frame_parse(const unsigned char *p, size_t n, uint64_t limit, uint64_t *size) {
  if (n < 4) { *size = 4; return 0; }
  uint32_t small = (uint32_t)p[0] << 24 | (uint32_t)p[1] << 16 | (uint32_t)p[2] << 8 | p[3];
  int hlen = 4;
  uint64_t v = small;
  if (small == 0xffffffffu) { /* -1: the 8-byte form */
    if (n < 12) { *size = 12; return 0; }
    v = 0;
    for (int i = 0; i < 8; i++) v = v << 8 | p[4 + i];
    if (v >> 63) return -1;
    hlen = 12;
  } else if (small & 0x80000000u) {
    return -1; /* negative */
  }
  *size = v;
  return v > limit ? -2 : hlen;
}
