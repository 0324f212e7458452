/*
 * Fuzz target: the detector on arbitrary planes (cm_verifier_plane) and on
 * evidence summed over frames (cm_evidence_add / cm_verifier_evidence).
 *
 * Input layout (little-endian):
 *   0-1   width  selector     w = sel % 600 (0 tests the refusal)
 *   2-3   height selector     h = sel % 600
 *   4     flags: bit 0 raw floats (else bytes as code values), bit 1
 *         evidence mode, bits 2-3 frames to add - 1, bit 4 a chroma
 *         plane, bit 5 second frame of another size, bit 6 candidates
 *   5...  content, repeated to fill the plane (a short input still makes
 *         a large plane: the detector's geometry search needs 64+ px)
 * Raw floats include NaN and infinities: an EXR or a host program can
 * hand those in, and the detector must refuse or survive them.
 */
#include "celmark/verify.h"
#include "watermark/key_internal.h"

#include <stdlib.h>
#include <string.h>

#define MAX_SIDE 600

static cm_verifier *verifier, *verifier_cand;
static cm_key *key;

static void setup(void)
{
    uint8_t secret[CM__KEY_SECRET_BYTES], seed[CM__KEY_SEED_BYTES];
    for (int i = 0; i < 32; i++) {
        secret[i] = (uint8_t)(i * 7 + 1);
        seed[i] = (uint8_t)(i * 13 + 5);
    }
    static const uint64_t cands[3] = {0x00c0ffee12345678u, 1, 0xffffffffffffffffu};
    cm_verify_params vp;
    cm_verify_params_default(&vp);
    if (cm__key_from_bytes(&key, secret, seed) || cm_verifier_new(NULL, key, NULL, &verifier))
        abort();
    vp.candidates = cands;
    vp.ncandidates = 3;
    if (cm_verifier_new(NULL, key, &vp, &verifier_cand))
        abort();
}

static void fill(cm_plane *p, const uint8_t *c, size_t n, int raw, size_t phase)
{
    const size_t total = (size_t)p->width * (size_t)p->height;
    for (size_t i = 0; i < total; i++) {
        float v;
        if (raw && n >= 4) {
            size_t k = ((i + phase) * 4) % (n - n % 4);
            memcpy(&v, c + k, 4);
        } else {
            v = n ? (float)c[(i + phase) % n] : 128.0f;
        }
        p->data[i] = v;
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (!verifier)
        setup();
    if (size < 5)
        return 0;
    int w = (data[0] | data[1] << 8) % MAX_SIDE;
    int h = (data[2] | data[3] << 8) % MAX_SIDE;
    unsigned flags = data[4];
    const uint8_t *c = data + 5;
    size_t n = size - 5;
    int raw = flags & 1, evidence = flags & 2, frames = 1 + ((flags >> 2) & 3);
    cm_verifier *v = (flags & 64) ? verifier_cand : verifier;
    cm_verify_result res;

    cm_plane p;
    if (w == 0 || h == 0) {
        /* an empty or bogus plane must be refused, not read */
        cm_plane bad = {NULL, w, h, w};
        if (cm_verifier_plane(v, &bad, &res) == CM_OK)
            abort();
        return 0;
    }
    if (cm_plane_alloc(&p, w, h))
        abort();
    fill(&p, c, n, raw, 0);
    if (!evidence) {
        (void)cm_verifier_plane(v, &p, &res);
        cm_plane_free(&p);
        return 0;
    }
    cm_evidence *e = NULL;
    if (cm_evidence_new(&e))
        abort();
    cm_plane chroma = {0};
    if ((flags & 16) && cm_plane_alloc(&chroma, w, h))
        abort();
    for (int f = 0; f < frames; f++) {
        fill(&p, c, n, raw, (size_t)f * 977);
        if (chroma.data)
            fill(&chroma, c, n, raw, (size_t)f * 131 + 7);
        (void)cm_evidence_add(e, &p, chroma.data ? &chroma : NULL);
    }
    if (flags & 32) {
        /* a frame of another size must be refused (frames under 64 px a
         * side carry nothing and are only counted: verify/verifier.c) */
        cm_plane q;
        if (cm_plane_alloc(&q, w + 1, h))
            abort();
        if (cm_evidence_add(e, &q, NULL) == CM_OK && w >= 64 && h >= 64)
            abort();
        cm_plane_free(&q);
    }
    (void)cm_verifier_evidence(v, e, &res);
    cm_evidence_free(&e);
    cm_plane_free(&chroma);
    cm_plane_free(&p);
    return 0;
}
