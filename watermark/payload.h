/*
 * Payload coding: 64-bit issue id -> CRC-24 -> K=7 rate-1/3 convolutional
 * code, and the soft-decision Viterbi decoder. Library-internal.
 * See payload.c for the method. Bits are uint8_t 0/1; soft values are floats
 * with soft > 0 meaning "more likely 1" and |soft| the confidence.
 */
#ifndef CELMARK_PAYLOAD_H
#define CELMARK_PAYLOAD_H

#include "internal.h"

#include <stddef.h>
#include <stdint.h>

#define CM_PAYLOAD_ID_BITS 64
#define CM_PAYLOAD_CRC_BITS 24
/* Information bits: id (64, MSB first) then CRC-24 (24, MSB first). */
#define CM_PAYLOAD_INFO_BITS 88
/* Constraint length 7: 6 memory bits, flushed with 6 zero tail bits. */
#define CM_PAYLOAD_CONV_K 7
#define CM_PAYLOAD_TAIL_BITS 6
#define CM_PAYLOAD_CONV_RATE 3 /* coded bits per input bit */
/* (88 + 6) * 3 */
#define CM_PAYLOAD_CODED_BITS 282

/* Longest info-bit sequence cm__viterbi_decode accepts (its survivor memory
 * is a fixed stack array: (max + 6) * 8 bytes). */
#define CM__VITERBI_MAX_BITS 1024

/* CRC-24/OpenPGP (RFC 4880 6.1): poly 0x864CFB, init 0xB704CE, no
 * reflection, no final xor. "123456789" -> 0x21CF02. */
CM__HIDDEN uint32_t cm__crc24(const uint8_t *data, size_t len);

/* Encode n bits in[0..n-1] (0/1) followed by 6 zero tail bits:
 * out gets 3 * (n + 6) bits, ordered (g0, g1, g2) per input bit. */
CM__HIDDEN void cm__conv_encode(const uint8_t *in, int n, uint8_t *out);

/* Soft-decision Viterbi for the code above: soft has 3 * (n + 6) values,
 * out receives the n most likely info bits (path starting and ending in the
 * zero state). metric (may be NULL) receives that path's correlation
 * sum_i soft[i] * (2 c_i - 1). 0 < n <= CM__VITERBI_MAX_BITS. */
CM__HIDDEN void cm__viterbi_decode(const float *soft, int n, uint8_t *out,
                                   float *metric);

/* Most paths a list decode keeps per state. */
#define CM__VITERBI_MAX_LIST 256

/* List Viterbi: the L best distinct paths through the trellis that start
 * and end in the zero state, best first. out gets L rows of n info bits,
 * metrics[k] row k's correlation sum_i soft[i] * (2 c_i - 1). Returns the
 * number of rows found (fewer than L only when the trellis has fewer
 * paths), or -1 when out of memory. 1 <= L <= CM__VITERBI_MAX_LIST. */
CM__HIDDEN int cm__viterbi_list_decode(const float *soft, int n, int L, uint8_t *out,
                                       float *metrics);

/* Info bits of id (id then its CRC-24), encoded: 282 coded bits. */
CM__HIDDEN void cm__payload_encode(uint64_t id,
                                   uint8_t coded[CM_PAYLOAD_CODED_BITS]);

/* Viterbi-decode 282 soft values. *id gets the decoded id (the best guess
 * even when the CRC fails), *metric (may be NULL) the path correlation.
 * Returns 1 when the decoded CRC-24 matches the decoded id, else 0.
 * Note: this is a maximum over all codewords, so its metric is not N(0,1)
 * under "no mark"; score a decoded id with cm__payload_correlate on
 * independent soft values instead. */
CM__HIDDEN int cm__payload_decode(const float soft[CM_PAYLOAD_CODED_BITS],
                                  uint64_t *id, float *metric);

/* List-decode 282 soft values: ids (room for L) gets the ids of the L best
 * trellis paths whose CRC-24 matches, best path first. Returns how many,
 * or -1 when out of memory. The same caveat as cm__payload_decode: score
 * the ids, do not trust the path metric. */
CM__HIDDEN int cm__payload_decode_list(const float soft[CM_PAYLOAD_CODED_BITS], int L,
                                       uint64_t *ids);

/* Normalised correlation of soft values with one codeword:
 * sum soft_i (2 c_i - 1) / sqrt(sum soft_i^2), 0 when all soft are 0.
 * For soft values independent of the codeword and i.i.d. symmetric it is
 * ~N(0,1); for soft = 2c - 1 exactly it is sqrt(n). */
CM__HIDDEN float cm__payload_correlate(const float *soft, const uint8_t *coded,
                                       int n);

#endif
