/*
 * TIFF directory entries read and patched as bytes (library-internal, for
 * formats/tiff_read.c and formats/tiff_write.c), where libtiff's own view
 * of a tag differs from what the file stores.
 *
 * IPTC (RichTIFFIPTC, 33723) is a byte stream that many writers (exiftool,
 * Photoshop) store as an array of LONGs. libtiff 4.5 reads such an entry as
 * LONGs in host order and hands it out as bytes, so from a big-endian file
 * every group of four bytes comes back reversed ("1c 02 19 00" as
 * "00 19 02 1c"), and it writes the tag as UNDEFINED. The writer therefore
 * takes the value from the source file's bytes (file order is the stream's
 * order) and, once libtiff has written the copy, gives the entry back the
 * source's type and count (UNDEFINED n*4 -> LONG n: the same bytes).
 */
#include "format.h"

#include <string.h>

static uint64_t rd(const uint8_t *p, int n, int be)
{
    uint64_t v = 0;
    for (int i = 0; i < n; i++)
        v |= (uint64_t)p[be ? n - 1 - i : i] << (8 * i);
    return v;
}

static void wr(uint8_t *p, int n, int be, uint64_t v)
{
    for (int i = 0; i < n; i++, v >>= 8)
        p[be ? n - 1 - i : i] = (uint8_t)(v & 0xff);
}

/* Bytes per value of a TIFF field type (0: unknown type). */
static unsigned type_size(unsigned type)
{
    static const unsigned sizes[19] = {0, 1, 1, 2, 4, 8, 1, 1, 2, 4, 8, 4, 8, 4, 0, 0, 8, 8, 8};
    return type < 19 ? sizes[type] : 0;
}

int cm__tiff_raw_entry(const uint8_t *f, size_t size, int be, int big, uint64_t ifd,
                       uint16_t tag, cm__tiff_entry *e)
{
    const uint64_t head = big ? 8 : 2, esz = big ? 20 : 12, inl = big ? 8 : 4;
    memset(e, 0, sizeof(*e));
    if (ifd > size || size - ifd < head)
        return -1;
    uint64_t n = rd(f + ifd, (int)head, be);
    if ((size - ifd - head) / esz < n)
        return -1;
    for (uint64_t i = 0; i < n; i++) {
        const uint64_t at = ifd + head + i * esz;
        if (rd(f + at, 2, be) != tag)
            continue;
        e->entry = at;
        e->type = (uint16_t)rd(f + at + 2, 2, be);
        e->count = rd(f + at + 4, big ? 8 : 4, be);
        const unsigned ts = type_size(e->type);
        if (!ts || e->count > (uint64_t)size / ts)
            return -1;
        e->bytes = e->count * ts;
        const uint64_t vat = at + 4 + (big ? 8 : 4);
        if (e->bytes <= inl) {
            e->value = f + vat;
        } else {
            uint64_t off = rd(f + vat, (int)inl, be);
            if (off > size || size - off < e->bytes)
                return -1;
            e->value = f + off;
        }
        return 1;
    }
    return 0;
}

uint64_t cm__tiff_next_ifd(const uint8_t *f, size_t size, int be, int big, uint64_t ifd)
{
    const uint64_t head = big ? 8 : 2, esz = big ? 20 : 12;
    if (ifd > size || size - ifd < head)
        return 0;
    uint64_t n = rd(f + ifd, (int)head, be);
    if ((size - ifd - head) / esz < n || size - ifd - head - n * esz < (big ? 8u : 4u))
        return 0;
    return rd(f + ifd + head + n * esz, big ? 8 : 4, be);
}

uint64_t cm__tiff_first_ifd(const uint8_t *f, size_t size, int be, int big)
{
    if (size < (big ? 16u : 8u))
        return 0;
    return rd(f + 4, big ? 8 : 4, be);
}

int cm__tiff_retype(uint8_t *f, size_t size, int be, int big, uint64_t ifd, uint16_t tag,
                    uint16_t type)
{
    cm__tiff_entry e;
    if (cm__tiff_raw_entry(f, size, be, big, ifd, tag, &e) != 1)
        return -1;
    const unsigned ts = type_size(type);
    if (!ts || e.bytes % ts)
        return -1;
    wr(f + e.entry + 2, 2, be, type);
    wr(f + e.entry + 4, big ? 8 : 4, be, e.bytes / ts);
    return 0;
}
