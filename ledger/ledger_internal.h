/* Library-internal parts of the ledger shared by ledger.c, chain.c and the
 * unit tests. Not installed. */
#ifndef CELMARK_LEDGER_INTERNAL_H
#define CELMARK_LEDGER_INTERNAL_H

#include "celmark/ledger.h"
#include "internal.h"

#include <stddef.h>
#include <stdint.h>

/* Domain-separation tag: the first field of every row's canonical bytes. */
#define CM__LEDGER_ROW_TAG "celmark.ledger.row/1"

/*
 * The canonical bytes of a row (see chain.c for the exact encoding): every
 * field except the signature, in a fixed order, each length-prefixed.
 * *buf is malloc'ed (free()). Returns 0, CM_E_INVAL or CM_E_NOMEM.
 */
CM__HIDDEN int cm__ledger_canonical(const cm_ledger_row *row, uint8_t **buf, size_t *len);

/* SHA-256 of the row's canonical bytes (the next row's prev_hash). */
CM__HIDDEN int cm__ledger_row_hash(const cm_ledger_row *row,
                                   uint8_t out[CM_LEDGER_HASH_BYTES]);

/* Fill row->signature with key's Ed25519 signature over the canonical bytes. */
CM__HIDDEN int cm__ledger_sign(cm_ledger_row *row, const cm_key *key);

/* SHA-256 of a buffer. Returns 0 or CM_E_CRYPTO. */
CM__HIDDEN int cm__sha256(const void *data, size_t len, uint8_t out[CM_LEDGER_HASH_BYTES]);

#endif
