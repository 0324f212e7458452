/* Unit tests: the ordered worker pool (core/pool.c). */
#include <setjmp.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdint.h>
#include <cmocka.h>

#include <stdatomic.h>
#include <stdlib.h>
#include <time.h>

#include "core/pool.h"

#define MAX_JOBS 8

typedef struct item {
    int index;
    int skip;         /* submitted with skip */
    atomic_int calls; /* times fn ran on it */
    atomic_int ended; /* times fn returned for it */
    int worker;       /* the worker that ran it */
    uint32_t result;  /* what fn computed */
    int done_seq;     /* when its work ended, among all items */
    int dropped;      /* times cm__pool_free dropped it */
} item;

typedef struct run {
    int fail_every; /* fn fails for index % fail_every == fail_every - 1 (0: never) */
    int slow_ms;    /* extra sleep for items whose index has slow_bit set */
    int slow_bit;
    atomic_int done_seq;
    atomic_int busy[MAX_JOBS]; /* a worker index in use by a call under way */
    atomic_int clashes;        /* calls that found their worker index busy */
} run;

static uint32_t expected_result(int index)
{
    return (uint32_t)index * 2654435761u ^ 0x5a5a5a5au;
}

static int expected_ret(const run *r, const item *it)
{
    if (it->skip || !r->fail_every)
        return CM_OK;
    return it->index % r->fail_every == r->fail_every - 1 ? CM_E_CORRUPT : CM_OK;
}

static void sleep_us(long us)
{
    struct timespec ts = {us / 1000000, us % 1000000 * 1000};
    while (nanosleep(&ts, &ts))
        ;
}

/* Sleeps rather than spins: the machine is shared with timing work. */
static int work(void *opaque, int worker, void *arg)
{
    run *r = opaque;
    item *it = arg;
    atomic_fetch_add(&it->calls, 1);
    it->worker = worker;
    int in_range = worker >= 0 && worker < MAX_JOBS;
    if (in_range && atomic_exchange(&r->busy[worker], 1))
        atomic_fetch_add(&r->clashes, 1);
    /* the first of every four sleeps longest, so later items often end first */
    sleep_us((3 - it->index % 4) * 100L);
    if (r->slow_ms && (it->index & r->slow_bit))
        sleep_us(r->slow_ms * 1000L);
    it->result = expected_result(it->index);
    it->done_seq = atomic_fetch_add(&r->done_seq, 1);
    if (in_range)
        atomic_store(&r->busy[worker], 0);
    atomic_fetch_add(&it->ended, 1);
    return expected_ret(r, it);
}

static void drop(void *arg)
{
    ((item *)arg)->dropped++;
}

typedef struct checker {
    run *r;
    item *items;
    int jobs;
    int next;      /* index the next take must give */
    int max_seq;   /* latest done_seq among the items taken */
    int reordered; /* items whose work ended before an earlier one's */
} checker;

static void check_taken(checker *c, void *got, int skipped, int ret)
{
    item *it = got;
    assert_ptr_equal(it, &c->items[c->next]);
    c->next++;
    assert_int_equal(skipped, it->skip);
    assert_int_equal(ret, expected_ret(c->r, it));
    if (it->skip) {
        assert_int_equal(atomic_load(&it->calls), 0);
        return;
    }
    assert_int_equal(atomic_load(&it->calls), 1);
    assert_int_equal(atomic_load(&it->ended), 1);
    assert_int_equal(it->result, expected_result(it->index));
    assert_in_range(it->worker, 0, c->jobs - 1);
    if (it->done_seq < c->max_seq)
        c->reordered++;
    else
        c->max_seq = it->done_seq;
}

/* Take what is done (wait 0) or everything pending (wait 1), oldest first. */
static void take_done(cm__pool *p, int wait, checker *c)
{
    for (;;) {
        void *got;
        int skipped = -1;
        int ret = cm__pool_take(p, wait, &got, &skipped);
        if (!got) {
            assert_int_equal(ret, CM_OK);
            return;
        }
        check_taken(c, got, skipped, ret);
    }
}

/* n items through a pool of jobs workers, fed as formats/video_write.c
 * feeds frames: take what is done, wait for the oldest when the ring is
 * full, submit; at the end take everything. Returns items reordered. */
static int feed(int jobs, int spare, int n, int skip_every, run *r)
{
    item *items = calloc((size_t)n, sizeof(*items));
    assert_non_null(items);
    for (int i = 0; i < n; i++) {
        items[i].index = i;
        items[i].skip = skip_every && i % skip_every == 0;
        items[i].worker = -1;
    }
    int asked = jobs;
    cm__pool *p;
    assert_int_equal(cm__pool_new(&jobs, spare, work, r, &p), CM_OK);
    assert_non_null(p);
    assert_int_equal(jobs, asked < 1 ? 1 : asked);
    assert_true(jobs <= MAX_JOBS);

    checker c = {.r = r, .items = items, .jobs = jobs, .max_seq = -1};
    for (int i = 0; i < n; i++) {
        take_done(p, 0, &c);
        if (cm__pool_full(p)) {
            void *got;
            int skipped = -1;
            int ret = cm__pool_take(p, 1, &got, &skipped);
            assert_non_null(got);
            check_taken(&c, got, skipped, ret);
        }
        assert_false(cm__pool_full(p));
        cm__pool_submit(p, &items[i], items[i].skip);
    }
    take_done(p, 1, &c);
    assert_int_equal(c.next, n);

    /* nothing pending: take gives no item, even when asked to wait */
    void *got = &got;
    int skipped;
    assert_int_equal(cm__pool_take(p, 1, &got, &skipped), CM_OK);
    assert_null(got);

    cm__pool_free(&p, drop);
    assert_null(p);
    /* no work ran twice or after its item was taken, and nothing taken was dropped */
    for (int i = 0; i < n; i++) {
        assert_int_equal(atomic_load(&items[i].calls), items[i].skip ? 0 : 1);
        assert_int_equal(items[i].dropped, 0);
    }
    assert_int_equal(atomic_load(&r->clashes), 0);
    free(items);
    return c.reordered;
}

static void test_order(void **state)
{
    static const int jobs[] = {1, 2, 4}, spare[] = {0, 2};
    (void)state;

    for (size_t j = 0; j < sizeof(jobs) / sizeof(*jobs); j++) {
        for (size_t s = 0; s < sizeof(spare) / sizeof(*spare); s++) {
            run r = {0};
            int reordered = feed(jobs[j], spare[s], 200, 0, &r);
            /* with several workers some item must have ended before an
             * earlier one in 200 (each first of four sleeps 300 us more than
             * the fourth), or the order checks proved nothing */
            if (jobs[j] > 1)
                assert_true(reordered > 0);
        }
    }
}

static void test_skip(void **state)
{
    (void)state;

    /* every third item skipped, the first included */
    for (int jobs = 1; jobs <= 4; jobs *= 2) {
        run r = {0};
        feed(jobs, 2, 200, 3, &r);
    }
    /* all skipped: nothing for the workers, still taken in order */
    run r = {0};
    feed(2, 0, 50, 1, &r);
}

static void test_error(void **state)
{
    (void)state;

    /* fn fails for every seventh item: take returns its error with the item,
     * the rest come back CM_OK and done */
    for (int jobs = 1; jobs <= 4; jobs *= 2) {
        run r = {.fail_every = 7};
        feed(jobs, 2, 200, 0, &r);
    }
    /* a skipped item is not worked on, so it cannot fail */
    run r = {.fail_every = 3};
    feed(2, 0, 200, 3, &r);
}

static void test_worker_index(void **state)
{
    (void)state;

    /* check_taken holds each index to 0..jobs-1 and feed sees no two calls
     * under way with the same index; jobs 0 starts one worker */
    run r = {0};
    feed(0, 2, 20, 0, &r);
    run r4 = {0};
    feed(4, 2, 200, 0, &r4);
}

static void test_free_drops(void **state)
{
    item items[6] = {{0}};
    run r = {.slow_ms = 20, .slow_bit = 4}; /* items 4 and 5 slow */
    int jobs = 2;
    cm__pool *p;
    (void)state;

    for (int i = 0; i < 6; i++)
        items[i].index = i;
    items[3].skip = 1;
    assert_int_equal(cm__pool_new(&jobs, 2, work, &r, &p), CM_OK);
    for (int i = 0; i < 4; i++)
        cm__pool_submit(p, &items[i], items[i].skip);
    assert_true(cm__pool_full(p));
    for (int i = 0; i < 2; i++) {
        void *got;
        int skipped;
        assert_int_equal(cm__pool_take(p, 1, &got, &skipped), CM_OK);
        assert_ptr_equal(got, &items[i]);
    }
    /* 4 and 5 sleep 20 ms: likely under way when the pool is freed */
    cm__pool_submit(p, &items[4], 0);
    cm__pool_submit(p, &items[5], 0);
    cm__pool_free(&p, drop);
    assert_null(p);

    /* taken items are the caller's; the rest, done or not, dropped once */
    for (int i = 0; i < 6; i++)
        assert_int_equal(items[i].dropped, i < 2 ? 0 : 1);
    /* free waited for the work it found under way */
    for (int i = 0; i < 6; i++)
        assert_int_equal(atomic_load(&items[i].ended), atomic_load(&items[i].calls));
    assert_int_equal(atomic_load(&items[3].calls), 0);

    /* without a drop function the items are left alone */
    assert_int_equal(cm__pool_new(&jobs, 0, work, &r, &p), CM_OK);
    cm__pool_submit(p, &items[0], 0);
    cm__pool_free(&p, NULL);
    assert_null(p);
    assert_int_equal(items[0].dropped, 0);
    cm__pool_free(&p, drop); /* NULL is fine */
}

static void test_ring_size(void **state)
{
    static const int cases[][2] = {{1, 0}, {1, 2}, {2, 0}, {2, 2}, {4, 2}};
    item items[8] = {{0}};
    (void)state;

    for (int i = 0; i < 8; i++)
        items[i].index = i;
    for (size_t k = 0; k < sizeof(cases) / sizeof(*cases); k++) {
        run r = {0};
        int jobs = cases[k][0], depth = cases[k][0] + cases[k][1];
        cm__pool *p;
        assert_int_equal(cm__pool_new(&jobs, cases[k][1], work, &r, &p), CM_OK);
        /* full counts submitted items, done or not: exactly jobs + spare */
        for (int i = 0; i < depth; i++) {
            assert_false(cm__pool_full(p));
            cm__pool_submit(p, &items[i], 0);
        }
        assert_true(cm__pool_full(p));
        void *got;
        int skipped;
        assert_int_equal(cm__pool_take(p, 1, &got, &skipped), CM_OK);
        assert_ptr_equal(got, &items[0]);
        assert_false(cm__pool_full(p));
        cm__pool_submit(p, &items[depth], 1);
        assert_true(cm__pool_full(p));
        for (int i = 1; i <= depth; i++) {
            assert_int_equal(cm__pool_take(p, 1, &got, &skipped), CM_OK);
            assert_ptr_equal(got, &items[i]);
        }
        assert_false(cm__pool_full(p));
        cm__pool_free(&p, drop);
    }
    for (int i = 0; i < 8; i++)
        assert_int_equal(items[i].dropped, 0);
}

int main(void)
{
    const struct CMUnitTest tests[] = {
        cmocka_unit_test(test_order),      cmocka_unit_test(test_skip),
        cmocka_unit_test(test_error),      cmocka_unit_test(test_worker_index),
        cmocka_unit_test(test_free_drops), cmocka_unit_test(test_ring_size),
    };
    return cmocka_run_group_tests(tests, NULL, NULL);
}
