/*
 * Payload coding: what the mark says, and how it survives bit errors.
 *
 * The payload is a 64-bit issue id (random per stamped copy; the ledger maps
 * it to recipient, asset and time). It is protected in two layers:
 *
 *   id (64 bits) --> + CRC-24 --> 88 info bits --> conv. code --> 282 bits
 *
 * 1. CRC-24 (OpenPGP: polynomial 0x864CFB, initial value 0xB704CE, RFC 4880
 *    section 6.1) over the 8 id bytes, big-endian. The info bits are the id
 *    MSB first, then the 24 CRC bits MSB first (88 bits).
 *    - 24 bits, not 16: a blind decode of noise passes a 16-bit CRC once in
 *      65,536 tries; 24 bits make that once in 16.7 million. The CRC is only
 *      a sanity check of a blind decode, though: the decision is made by the
 *      calibrated correlation score (cm__payload_correlate), see DESIGN.md.
 *    - The non-zero initial value means the all-zero info word is not a
 *      valid codeword, so an empty/flat input (all-zero soft values, which
 *      Viterbi resolves to all zeros) can never pass the CRC.
 *    - OpenPGP's parameters are a published standard with a check value
 *      ("123456789" -> 0x21CF02), so the tests can pin them.
 *
 * 2. A convolutional code, constraint length K = 7, rate 1/3, generators
 *    133, 171, 165 (octal): the code of LTE (3GPP TS 36.212 5.1.3.1), which
 *    has the largest free distance for K = 7 at rate 1/3 (d_free = 15).
 *    K = 7 keeps the decoder at 64 states, cheap enough to run a few times per
 *    detection. Rate 1/3 (not 1/2) because the channel is very noisy: each
 *    coded bit is later spread over several keyed chips and read back as one
 *    soft value, and more redundancy buys more than more chips per bit at
 *    the same tile size. The encoder starts in state 0 and is flushed with
 *    K - 1 = 6 zero tail bits so the decoder also ends in state 0 (zero
 *    termination costs 18 coded bits, about 6 %, and keeps the Viterbi
 *    exact maximum-likelihood without tail-biting's wrap-around search).
 *    Coded length: (88 + 6) * 3 = 282 bits.
 *
 *    Encoder (one step per input bit u_k; D = one-bit delay):
 *
 *        u_k --+--> D --> D --> D --> D --> D --> D
 *              |   u_k-1 u_k-2 u_k-3 u_k-4 u_k-5 u_k-6
 *              |     |     |     |     |     |     |
 *      taps:  u_k  k-1   k-2   k-3   k-4   k-5   k-6
 *      g0 133:  1    0     1     1     0     1     1  -> c0 = XOR of taps
 *      g1 171:  1    1     1     1     0     0     1  -> c1
 *      g2 165:  1    1     1     0     1     0     1  -> c2
 *
 *    The octal generator read as 7 bits, MSB first, gives the taps from u_k
 *    (no delay) to u_k-6. The outputs of each step are emitted c0, c1, c2.
 *    In code: the 7-bit register r = u_k << 6 | state, state = the previous
 *    six inputs (u_k-1 in bit 5 ... u_k-6 in bit 0), c_i = parity(r & g_i),
 *    next state = r >> 1.
 *
 * 3. Decoding: soft-decision Viterbi. Soft value y_i > 0 means coded bit i is
 *    more likely 1, |y_i| is the confidence (for Gaussian noise y = A(2c-1) +
 *    n, maximising the correlation sum y_i (2 c_i - 1) is maximum likelihood).
 *    Path metrics are floats, maximised, renormalised every step by
 *    subtracting the best one (the subtracted total is added back for the
 *    reported metric); survivors are one 64-bit word per step (bit s = which
 *    predecessor state s came from); traceback starts from state 0 after the
 *    tail. Ties go to the even predecessor, so decoding is deterministic.
 *
 * Scoring: a blind decode is the best of 2^64 codewords, so its metric is not
 * N(0,1) under "no mark". cm__payload_correlate scores one given codeword
 * (normalised correlation, ~N(0,1) when the soft values are unrelated to it),
 * which is what the decision stage calibrates.
 */
#include "watermark/payload.h"

#include <assert.h>
#include <math.h>
#include <stdlib.h>

/* Generator polynomials (octal, MSB = tap on the current input). */
#define G0 0133u
#define G1 0171u
#define G2 0165u
#define NSTATES 64 /* 2^(K-1) */

/* CRC-24/OpenPGP. */
#define CRC24_INIT 0xB704CEu
#define CRC24_POLY 0x1864CFBu /* 0x864CFB with the x^24 term */

/* "Minus infinity" for unreachable states: finite so that renormalising
 * (subtracting the best metric) never produces inf - inf. */
#define METRIC_NEG (-1e30f)

static unsigned parity7(unsigned r)
{
    r ^= r >> 4;
    r ^= r >> 2;
    r ^= r >> 1;
    return r & 1u;
}

/* Three output bits of register r (7 bits) as c0 << 2 | c1 << 1 | c2. */
static unsigned conv_output(unsigned r)
{
    return parity7(r & G0) << 2 | parity7(r & G1) << 1 | parity7(r & G2);
}

uint32_t cm__crc24(const uint8_t *data, size_t len)
{
    uint32_t crc = CRC24_INIT;

    assert(data || len == 0);
    for (size_t i = 0; i < len; i++) {
        crc ^= (uint32_t)data[i] << 16;
        for (int b = 0; b < 8; b++) {
            crc <<= 1;
            if (crc & 0x1000000u)
                crc ^= CRC24_POLY;
        }
    }
    return crc & 0xFFFFFFu;
}

void cm__conv_encode(const uint8_t *in, int n, uint8_t *out)
{
    unsigned state = 0;

    assert(n >= 0 && (in || n == 0) && out);
    for (int k = 0; k < n + CM_PAYLOAD_TAIL_BITS; k++) {
        unsigned u = k < n ? (in[k] & 1u) : 0u;
        unsigned r = u << 6 | state;
        unsigned c = conv_output(r);
        out[3 * k] = (uint8_t)(c >> 2 & 1u);
        out[3 * k + 1] = (uint8_t)(c >> 1 & 1u);
        out[3 * k + 2] = (uint8_t)(c & 1u);
        state = r >> 1;
    }
}

/* Correlation of one step's 3 soft values with each 3-bit output c. */
static void branch_metrics(const float y[3], float bm[8])
{
    for (unsigned c = 0; c < 8; c++)
        bm[c] = (c & 4 ? y[0] : -y[0]) + (c & 2 ? y[1] : -y[1]) + (c & 1 ? y[2] : -y[2]);
}

void cm__viterbi_decode(const float *soft, int n, uint8_t *out, float *metric)
{
    uint64_t survivors[CM__VITERBI_MAX_BITS + CM_PAYLOAD_TAIL_BITS];
    uint8_t outputs[2 * NSTATES]; /* conv_output of every register value */
    float pm[NSTATES], next[NSTATES];
    double offset = 0.0; /* sum of the per-step renormalisations */
    int steps = n + CM_PAYLOAD_TAIL_BITS;
    unsigned state;

    assert(soft && out && n > 0 && n <= CM__VITERBI_MAX_BITS);
    for (unsigned r = 0; r < 2 * NSTATES; r++)
        outputs[r] = (uint8_t)conv_output(r);
    for (int s = 0; s < NSTATES; s++)
        pm[s] = METRIC_NEG;
    pm[0] = 0.0f;

    for (int t = 0; t < steps; t++) {
        const float *y = soft + 3 * t;
        float bm[8], best = METRIC_NEG;
        uint64_t decisions = 0;
        /* During the tail the input is 0, so only states < 32 are entered. */
        int reachable = t < n ? NSTATES : NSTATES / 2;

        branch_metrics(y, bm);
        for (int ns = 0; ns < NSTATES; ns++) {
            unsigned u = (unsigned)ns >> 5;
            unsigned p0 = ((unsigned)ns << 1) & (NSTATES - 1), p1 = p0 | 1u;
            float m0, m1;
            if (ns >= reachable) {
                next[ns] = METRIC_NEG;
                continue;
            }
            m0 = pm[p0] + bm[outputs[u << 6 | p0]];
            m1 = pm[p1] + bm[outputs[u << 6 | p1]];
            if (m1 > m0) {
                next[ns] = m1;
                decisions |= (uint64_t)1 << ns;
            } else {
                next[ns] = m0;
            }
            if (next[ns] > best)
                best = next[ns];
        }
        survivors[t] = decisions;
        for (int s = 0; s < NSTATES; s++)
            pm[s] = next[s] - best;
        offset += best;
    }

    if (metric)
        *metric = (float)(offset + pm[0]);
    state = 0;
    for (int t = steps - 1; t >= 0; t--) {
        if (t < n)
            out[t] = (uint8_t)(state >> 5);
        state = ((state << 1) & (NSTATES - 1)) |
                (unsigned)(survivors[t] >> state & 1u);
    }
    assert(state == 0);
}

/* List Viterbi (parallel list Viterbi algorithm): every state keeps its L
 * best distinct paths instead of one. Each state's list comes from merging
 * its two predecessors' sorted lists, each extended by the branch metric;
 * a survivor entry records which predecessor and which of its ranks it came
 * from, so every one of the L paths ending in state 0 can be traced back.
 * With L = 1 it is cm__viterbi_decode (tests/unit/test_payload.c checks). */
typedef struct lva_entry {
    uint8_t bit;  /* predecessor state's low bit */
    uint8_t rank; /* rank in the predecessor's list */
} lva_entry;
_Static_assert(CM__VITERBI_MAX_LIST <= 256, "a survivor's rank is one byte");

int cm__viterbi_list_decode(const float *soft, int n, int L, uint8_t *out, float *metrics)
{
    uint8_t outputs[2 * NSTATES];
    int steps = n + CM_PAYLOAD_TAIL_BITS;
    double offset = 0.0;

    assert(soft && out && metrics && n > 0 && n <= CM__VITERBI_MAX_BITS);
    assert(L >= 1 && L <= CM__VITERBI_MAX_LIST);
    /* path metrics (this step's and the next) and the survivors, on the
     * heap: 64 KiB and 1.5 MiB at the largest L */
    float(*pm)[CM__VITERBI_MAX_LIST] = malloc(2 * sizeof(*pm) * NSTATES);
    lva_entry *surv = malloc(sizeof(lva_entry) * (size_t)steps * NSTATES * (size_t)L);
    if (!pm || !surv) {
        free(pm);
        free(surv);
        return -1;
    }
    float(*next)[CM__VITERBI_MAX_LIST] = pm + NSTATES;
    for (unsigned r = 0; r < 2 * NSTATES; r++)
        outputs[r] = (uint8_t)conv_output(r);
    for (int s = 0; s < NSTATES; s++)
        for (int k = 0; k < L; k++)
            pm[s][k] = METRIC_NEG;
    pm[0][0] = 0.0f;

    for (int t = 0; t < steps; t++) {
        const float *y = soft + 3 * t;
        float bm[8], best = METRIC_NEG;
        int reachable = t < n ? NSTATES : NSTATES / 2;
        lva_entry *st = surv + (size_t)t * NSTATES * (size_t)L;

        branch_metrics(y, bm);
        for (int ns = 0; ns < NSTATES; ns++) {
            unsigned u = (unsigned)ns >> 5;
            unsigned p0 = ((unsigned)ns << 1) & (NSTATES - 1), p1 = p0 | 1u;
            if (ns >= reachable) {
                for (int k = 0; k < L; k++)
                    next[ns][k] = METRIC_NEG;
                continue;
            }
            float b0 = bm[outputs[u << 6 | p0]], b1 = bm[outputs[u << 6 | p1]];
            int i0 = 0, i1 = 0;
            for (int k = 0; k < L; k++) {
                float m0 = pm[p0][i0] + b0, m1 = pm[p1][i1] + b1;
                lva_entry *e = &st[(size_t)ns * L + k];
                if (m1 > m0) {
                    next[ns][k] = m1;
                    e->bit = 1;
                    e->rank = (uint8_t)i1++;
                } else {
                    next[ns][k] = m0;
                    e->bit = 0;
                    e->rank = (uint8_t)i0++;
                }
            }
            if (next[ns][0] > best)
                best = next[ns][0];
        }
        for (int s = 0; s < NSTATES; s++)
            for (int k = 0; k < L; k++)
                pm[s][k] = next[s][k] - best;
        offset += best;
    }

    int found = 0;
    for (int k = 0; k < L && pm[0][k] > METRIC_NEG / 2; k++, found++) {
        unsigned state = 0, rank = (unsigned)k;
        uint8_t *o = out + (size_t)k * n;
        metrics[k] = (float)(offset + pm[0][k]);
        for (int t = steps - 1; t >= 0; t--) {
            const lva_entry *e = &surv[((size_t)t * NSTATES + state) * (size_t)L + rank];
            if (t < n)
                o[t] = (uint8_t)(state >> 5);
            state = ((state << 1) & (NSTATES - 1)) | e->bit;
            rank = e->rank;
        }
        assert(state == 0 && rank == 0);
    }
    free(pm);
    free(surv);
    return found;
}

/* The 88 info bits of id: id MSB first, then CRC-24 MSB first. */
static void info_bits(uint64_t id, uint8_t bits[CM_PAYLOAD_INFO_BITS])
{
    uint8_t bytes[8];
    uint32_t crc;

    for (int i = 0; i < 8; i++)
        bytes[i] = (uint8_t)(id >> (56 - 8 * i));
    crc = cm__crc24(bytes, sizeof(bytes));
    for (int i = 0; i < CM_PAYLOAD_ID_BITS; i++)
        bits[i] = (uint8_t)(id >> (63 - i) & 1u);
    for (int i = 0; i < CM_PAYLOAD_CRC_BITS; i++)
        bits[CM_PAYLOAD_ID_BITS + i] = (uint8_t)(crc >> (23 - i) & 1u);
}

void cm__payload_encode(uint64_t id, uint8_t coded[CM_PAYLOAD_CODED_BITS])
{
    uint8_t bits[CM_PAYLOAD_INFO_BITS];

    info_bits(id, bits);
    cm__conv_encode(bits, CM_PAYLOAD_INFO_BITS, coded);
}

/* The id and CRC check of decoded info bits. */
static int info_to_id(const uint8_t bits[CM_PAYLOAD_INFO_BITS], uint64_t *id)
{
    uint8_t bytes[8];
    uint64_t v = 0;
    uint32_t crc = 0;

    for (int i = 0; i < CM_PAYLOAD_ID_BITS; i++)
        v = v << 1 | bits[i];
    for (int i = 0; i < CM_PAYLOAD_CRC_BITS; i++)
        crc = crc << 1 | bits[CM_PAYLOAD_ID_BITS + i];
    for (int i = 0; i < 8; i++)
        bytes[i] = (uint8_t)(v >> (56 - 8 * i));
    *id = v;
    return cm__crc24(bytes, sizeof(bytes)) == crc;
}

int cm__payload_decode(const float soft[CM_PAYLOAD_CODED_BITS], uint64_t *id,
                       float *metric)
{
    uint8_t bits[CM_PAYLOAD_INFO_BITS];

    assert(soft && id);
    cm__viterbi_decode(soft, CM_PAYLOAD_INFO_BITS, bits, metric);
    return info_to_id(bits, id);
}

int cm__payload_decode_list(const float soft[CM_PAYLOAD_CODED_BITS], int L, uint64_t *ids)
{
    uint8_t bits[CM__VITERBI_MAX_LIST][CM_PAYLOAD_INFO_BITS];
    float metrics[CM__VITERBI_MAX_LIST];

    assert(soft && ids && L >= 1 && L <= CM__VITERBI_MAX_LIST);
    int found = cm__viterbi_list_decode(soft, CM_PAYLOAD_INFO_BITS, L, &bits[0][0], metrics);
    if (found < 0)
        return -1;
    int nvalid = 0;
    for (int k = 0; k < found; k++) {
        uint64_t id;
        if (info_to_id(bits[k], &id))
            ids[nvalid++] = id;
    }
    return nvalid;
}

float cm__payload_correlate(const float *soft, const uint8_t *coded, int n)
{
    double dot = 0.0, energy = 0.0;

    assert((soft && coded) || n == 0);
    for (int i = 0; i < n; i++) {
        double s = soft[i];
        dot += coded[i] ? s : -s;
        energy += s * s;
    }
    if (energy <= 0.0)
        return 0.0f;
    return (float)(dot / sqrt(energy));
}
