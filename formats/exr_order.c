/*
 * Physical chunk order of a written EXR (library-internal, for
 * formats/exr_write.c).
 *
 * OpenEXR 3.1's Core writer accepts the chunks of a scanline part only in
 * increasing y (its decreasing-y branch is commented out), whatever the
 * part's lineOrder says. The chunk offset table is right either way, but
 * OpenEXR's C++ reader of a single-part scanline file does not seek between
 * chunks when the next one should follow in the declared order: it reads
 * the chunk after the one it just read, and a "decreasingY" file written
 * in increasing order ends early ("Early end of file", "Unexpected end of
 * file"). So after the Core writer is done, the chunks of each decreasing-y
 * scanline part are put back in the order the header promises and the
 * offset table is rewritten:
 *
 *   header | offset tables (8 bytes per chunk, all parts) | chunks ...
 *            table[i] -> chunk i        part p: [c0][c1]...[cn-1]
 *                                       becomes [cn-1]...[c1][c0]
 *
 * Every chunk keeps its bytes (its own header names its y), so only where
 * it sits changes. The Core writer puts the tables right after the header
 * and each part's chunks next to each other; anything else is refused.
 */
#include "format.h"

#include <stdlib.h>
#include <string.h>

static uint64_t get64(const uint8_t *p)
{
    uint64_t v = 0;
    for (int i = 7; i >= 0; i--)
        v = (v << 8) | p[i];
    return v;
}

static void put64(uint8_t *p, uint64_t v)
{
    for (int i = 0; i < 8; i++, v >>= 8)
        p[i] = (uint8_t)(v & 0xff);
}

static int cmp_u64(const void *a, const void *b)
{
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* End of the chunk starting at off: the next chunk's start, or the end of
 * the file (sorted holds every chunk offset in increasing order). */
static uint64_t chunk_end(const uint64_t *sorted, size_t n, uint64_t off, uint64_t len)
{
    size_t lo = 0, hi = n;
    while (lo < hi) { /* first offset > off */
        size_t mid = lo + (hi - lo) / 2;
        if (sorted[mid] <= off)
            lo = mid + 1;
        else
            hi = mid;
    }
    return lo < n ? sorted[lo] : len;
}

/* Where the header (all parts' headers) ends and the tables begin. */
static int header_end(const uint8_t *b, size_t len, uint64_t *end)
{
    if (len < 9)
        return -1;
    const int multi = (b[5] & 0x10) != 0; /* version flag bit 12: multi-part */
    size_t p = 8;
    for (;;) {
        while (p < len && b[p] != 0) { /* attribute: name\0 type\0 size data */
            for (int s = 0; s < 2; s++) {
                const uint8_t *z = memchr(b + p, 0, len - p);
                if (!z)
                    return -1;
                p = (size_t)(z - b) + 1;
            }
            if (len - p < 4)
                return -1;
            uint32_t size = (uint32_t)b[p] | (uint32_t)b[p + 1] << 8 |
                            (uint32_t)b[p + 2] << 16 | (uint32_t)b[p + 3] << 24;
            p += 4;
            if (size > len - p)
                return -1;
            p += size;
        }
        if (p >= len)
            return -1;
        p++; /* the header's terminating 0 */
        if (!multi)
            break;
        if (p >= len)
            return -1;
        if (b[p] == 0) { /* an empty header ends the list */
            p++;
            break;
        }
    }
    *end = p;
    return 0;
}

int cm__exr_reverse_chunks(uint8_t *buf, size_t len, int nparts, const int32_t *counts,
                           const int *reverse)
{
    uint64_t total = 0;
    for (int p = 0; p < nparts; p++) {
        if (counts[p] <= 0)
            return -1;
        total += (uint64_t)counts[p];
    }
    if (total == 0 || total > len / 8)
        return -1;
    uint64_t *sorted = cm__malloc_array((size_t)total, sizeof(*sorted));
    if (!sorted)
        return CM_E_NOMEM;
    int ret = -1;
    uint8_t *tmp = NULL;
    uint64_t tables;
    if (header_end(buf, len, &tables) < 0 || tables + 8 * total > len)
        goto done;
    const uint64_t first = tables + 8 * total;
    for (uint64_t i = 0; i < total; i++) {
        sorted[i] = get64(buf + tables + 8 * i);
        if (sorted[i] < first || sorted[i] >= len)
            goto done;
    }
    qsort(sorted, (size_t)total, sizeof(*sorted), cmp_u64);
    if (sorted[0] != first)
        goto done;
    uint64_t base = tables;
    for (int p = 0; p < nparts; base += 8 * (uint64_t)counts[p], p++) {
        if (!reverse[p] || counts[p] < 2)
            continue;
        const int32_t n = counts[p];
        uint64_t lo = UINT64_MAX, hi = 0, sum = 0;
        for (int32_t i = 0; i < n; i++) {
            uint64_t off = get64(buf + base + 8 * (uint64_t)i);
            uint64_t end = chunk_end(sorted, (size_t)total, off, len);
            lo = off < lo ? off : lo;
            hi = end > hi ? end : hi;
            sum += end - off;
        }
        if (sum != hi - lo) /* the part's chunks are not side by side */
            goto done;
        uint8_t *t2 = realloc(tmp, (size_t)sum);
        if (!t2) {
            ret = CM_E_NOMEM;
            goto done;
        }
        tmp = t2;
        uint64_t pos = lo;
        for (int32_t i = n - 1; i >= 0; i--) {
            uint64_t off = get64(buf + base + 8 * (uint64_t)i);
            uint64_t size = chunk_end(sorted, (size_t)total, off, len) - off;
            memcpy(tmp + (pos - lo), buf + off, (size_t)size);
            put64(buf + base + 8 * (uint64_t)i, pos);
            pos += size;
        }
        memcpy(buf + lo, tmp, (size_t)sum);
    }
    ret = 0;
done:
    free(tmp);
    free(sorted);
    return ret;
}
