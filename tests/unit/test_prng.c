/* Unit tests: keyed pseudo-random streams (watermark/prng.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdlib.h>
#include <string.h>

#include "watermark/prng.h"

static void key_bytes(uint8_t key[32], uint8_t base)
{
    for (int i = 0; i < 32; i++)
        key[i] = (uint8_t)(base + i);
}

static void test_known_answer(void **state)
{
    /* AES-256-CTR keystream, key 00..1f, IV = LE64(0x0102030405060708) || 0:
     * `head -c 32 /dev/zero | openssl enc -aes-256-ctr -K 0001..1f
     *  -iv 08070605040302010000000000000000 | xxd -p` */
    static const uint8_t expect[32] = {
        0x9f, 0x99, 0x83, 0x50, 0xfa, 0x19, 0xfa, 0xce, 0x61, 0x3c, 0x30,
        0x5b, 0xd9, 0x15, 0x52, 0x99, 0x34, 0xf4, 0x6c, 0x6f, 0x66, 0x0b,
        0xa1, 0xe8, 0xa1, 0x48, 0xcb, 0x3a, 0xaf, 0x65, 0x45, 0xe5};
    uint8_t key[32], out[32];
    cm__prng p;
    (void)state;

    key_bytes(key, 0);
    assert_int_equal(cm__prng_init(&p, key, 0x0102030405060708ull), CM_OK);
    assert_int_equal(cm__prng_bytes(&p, out, 32), CM_OK);
    assert_memory_equal(out, expect, 32);
    cm__prng_free(&p);

    /* u32 is assembled little-endian from the same bytes */
    assert_int_equal(cm__prng_init(&p, key, 0x0102030405060708ull), CM_OK);
    assert_int_equal(cm__prng_u32(&p), 0x5083999fu);
    assert_int_equal(cm__prng_u32(&p), 0xcefa19fau);
    cm__prng_free(&p);
    cm__prng_free(&p); /* twice is fine */
}

static void test_determinism(void **state)
{
    uint8_t key[32], a[5000], b[5000];
    cm__prng p, q;
    (void)state;

    key_bytes(key, 7);
    assert_int_equal(cm__prng_init(&p, key, 42), CM_OK);
    assert_int_equal(cm__prng_init(&q, key, 42), CM_OK);
    /* different chunkings of the same stream agree */
    assert_int_equal(cm__prng_bytes(&p, a, sizeof(a)), CM_OK);
    for (size_t off = 0, step = 1; off < sizeof(b);
         off += step, step = step * 3 % 997 + 1) {
        size_t n = off + step > sizeof(b) ? sizeof(b) - off : step;
        assert_int_equal(cm__prng_bytes(&q, b + off, n), CM_OK);
    }
    assert_memory_equal(a, b, sizeof(a));
    cm__prng_free(&p);
    cm__prng_free(&q);

    /* mixed calls reproduce */
    assert_int_equal(cm__prng_init(&p, key, 42), CM_OK);
    assert_int_equal(cm__prng_init(&q, key, 42), CM_OK);
    for (int i = 0; i < 2000; i++) {
        assert_int_equal(cm__prng_u32(&p), cm__prng_u32(&q));
        assert_int_equal(cm__prng_below(&p, 1000 + (uint32_t)i),
                         cm__prng_below(&q, 1000 + (uint32_t)i));
        assert_int_equal(cm__prng_sign(&p), cm__prng_sign(&q));
    }
    cm__prng_free(&p);
    cm__prng_free(&q);
}

static void test_different_nonce_key(void **state)
{
    uint8_t k1[32], k2[32], a[256], b[256], c[256];
    cm__prng p;
    (void)state;

    key_bytes(k1, 0);
    key_bytes(k2, 0);
    k2[31] ^= 1;
    assert_int_equal(cm__prng_init(&p, k1, 1), CM_OK);
    cm__prng_bytes(&p, a, sizeof(a));
    cm__prng_free(&p);
    assert_int_equal(cm__prng_init(&p, k1, 2), CM_OK);
    cm__prng_bytes(&p, b, sizeof(b));
    cm__prng_free(&p);
    assert_int_equal(cm__prng_init(&p, k2, 1), CM_OK);
    cm__prng_bytes(&p, c, sizeof(c));
    cm__prng_free(&p);
    assert_memory_not_equal(a, b, sizeof(a));
    assert_memory_not_equal(a, c, sizeof(a));
    assert_memory_not_equal(b, c, sizeof(a));
    /* nonce 1 << 32 differs from nonce 1 (all 64 bits used) */
    assert_int_equal(cm__prng_init(&p, k1, (uint64_t)1 << 32 | 1), CM_OK);
    cm__prng_bytes(&p, b, sizeof(b));
    cm__prng_free(&p);
    assert_memory_not_equal(a, b, sizeof(a));

    assert_int_equal(cm__prng_init(NULL, k1, 0), CM_E_INVAL);
    assert_int_equal(cm__prng_init(&p, NULL, 0), CM_E_INVAL);
    cm__prng_free(&p);
}

static void test_below(void **state)
{
    static const uint32_t ns[] = {1,    2,     3,           7,          10,
                                  1000, 65537, 0x80000001u, 0xFFFFFFFFu};
    uint8_t key[32];
    uint32_t counts[10] = {0};
    const int samples = 100000;
    double chi2 = 0.0, expect = samples / 10.0;
    cm__prng p;
    (void)state;

    key_bytes(key, 99);
    assert_int_equal(cm__prng_init(&p, key, 5), CM_OK);
    for (size_t k = 0; k < sizeof(ns) / sizeof(ns[0]); k++)
        for (int i = 0; i < 2000; i++)
            assert_true(cm__prng_below(&p, ns[k]) < ns[k]);
    assert_int_equal(cm__prng_below(&p, 1), 0);

    /* chi-square over 10 bins; df = 9, the 0.1 % critical value is 27.88
     * (the stream is fixed, so this either always passes or never does) */
    for (int i = 0; i < samples; i++)
        counts[cm__prng_below(&p, 10)]++;
    for (int b = 0; b < 10; b++)
        chi2 += (counts[b] - expect) * (counts[b] - expect) / expect;
    assert_true(chi2 < 27.88);

    /* n just above 2^31 rejects almost half the draws: still uniform halves */
    {
        uint32_t lo = 0;
        for (int i = 0; i < 20000; i++)
            lo += cm__prng_below(&p, 0x80000001u) < 0x40000000u;
        assert_in_range(lo, 9500, 10500);
    }
    cm__prng_free(&p);
}

static void test_permutation(void **state)
{
    enum { N = 1000 };
    uint8_t key[32];
    uint32_t perm[N], perm2[N];
    uint8_t seen[N];
    int fixed = 0;
    cm__prng p;
    (void)state;

    key_bytes(key, 3);
    assert_int_equal(cm__prng_init(&p, key, 77), CM_OK);
    cm__prng_permutation(&p, perm, N);
    memset(seen, 0, sizeof(seen));
    for (int i = 0; i < N; i++) {
        assert_true(perm[i] < N);
        assert_int_equal(seen[perm[i]], 0);
        seen[perm[i]] = 1;
        fixed += perm[i] == (uint32_t)i;
    }
    /* a random permutation has ~1 fixed point on average */
    assert_true(fixed < 10);
    /* the next one differs */
    cm__prng_permutation(&p, perm2, N);
    assert_memory_not_equal(perm, perm2, sizeof(perm));
    /* tiny sizes */
    cm__prng_permutation(&p, perm, 0);
    cm__prng_permutation(&p, perm, 1);
    assert_int_equal(perm[0], 0);
    cm__prng_permutation(&p, perm, 2);
    assert_true((perm[0] == 0 && perm[1] == 1) ||
                (perm[0] == 1 && perm[1] == 0));
    cm__prng_free(&p);

    /* position of element 0 after shuffling 4 items is uniform */
    {
        uint32_t where[4] = {0}, q[4];
        assert_int_equal(cm__prng_init(&p, key, 78), CM_OK);
        for (int t = 0; t < 40000; t++) {
            cm__prng_permutation(&p, q, 4);
            for (int i = 0; i < 4; i++)
                if (q[i] == 0)
                    where[i]++;
        }
        for (int i = 0; i < 4; i++)
            assert_in_range(where[i], 9500, 10500);
        cm__prng_free(&p);
    }
}

static void test_sign(void **state)
{
    uint8_t key[32];
    int plus = 0;
    cm__prng p;
    (void)state;

    key_bytes(key, 11);
    assert_int_equal(cm__prng_init(&p, key, 0), CM_OK);
    for (int i = 0; i < 100000; i++) {
        int s = cm__prng_sign(&p);
        assert_true(s == 1 || s == -1);
        plus += s == 1;
    }
    /* binomial(1e5, 0.5): sd 158, so +-1000 is > 6 sd */
    assert_in_range(plus, 49000, 51000);
    cm__prng_free(&p);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_known_answer),
        cmocka_unit_test(test_determinism),
        cmocka_unit_test(test_different_nonce_key),
        cmocka_unit_test(test_below),
        cmocka_unit_test(test_permutation),
        cmocka_unit_test(test_sign),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
